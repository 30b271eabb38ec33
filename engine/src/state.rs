//! The replicated state of one partition, and the event appliers that change it.
//!
//! ```text
//! processes      key -> DeployedProcess (model + resource)   by_id: id -> version -> key
//! instances      element instance key -> ElementInstance      children: (scope, child)
//! variables      scope -> variables (see `variables`)
//! jobs           key -> Job        activatable: type -> keys; deadlines, backoffs: (ms, key)
//! incidents      key -> IncidentRecord
//! awaiting       process instance key -> request waiting for the result
//! keys           the key generator;  last_processed_position
//! ```
//!
//! Only `apply` changes this state, and only from events (and rejections, for
//! the position), so the leader (which applies what it produces) and a
//! follower (which applies what it reads) hold the same state. Every map is
//! ordered, so a snapshot of equal states gives equal bytes.

use crate::bpmn::parse_bpmn;
use crate::key::KeyGenerator;
use crate::model::Process;

use crate::record::*;
use crate::variables::Variables;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A deployed process definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "ProcessRecord", try_from = "ProcessRecord")]
pub struct DeployedProcess {
    /// Identity, version and checksum.
    pub metadata: ProcessMetadata,
    /// The resource it came from.
    pub resource: Arc<[u8]>,
    /// The executable model.
    pub model: Arc<Process>,
}

impl From<DeployedProcess> for ProcessRecord {
    fn from(p: DeployedProcess) -> Self {
        ProcessRecord {
            metadata: p.metadata,
            resource: p.resource,
        }
    }
}

impl TryFrom<ProcessRecord> for DeployedProcess {
    type Error = String;
    fn try_from(r: ProcessRecord) -> Result<Self, String> {
        let processes =
            parse_bpmn(&r.metadata.resource_name, &r.resource).map_err(|e| e.to_string())?;
        let model = processes
            .into_iter()
            .find(|p| p.bpmn_process_id == r.metadata.bpmn_process_id)
            .ok_or_else(|| {
                format!(
                    "resource '{}' has no process '{}'",
                    r.metadata.resource_name, r.metadata.bpmn_process_id
                )
            })?;
        Ok(DeployedProcess {
            metadata: r.metadata,
            resource: r.resource,
            model: Arc::new(model),
        })
    }
}

/// Lifecycle state of an element instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElementState {
    /// `ELEMENT_ACTIVATING` written; input mappings or evaluation pending or failed.
    Activating,
    /// Active (waiting for a job, or for children).
    Activated,
    /// `ELEMENT_COMPLETING` written; output mappings pending or failed.
    Completing,
    /// `ELEMENT_TERMINATING` written; waiting for children to terminate.
    Terminating,
}

/// One active element instance (the process instance itself included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementInstance {
    /// Process definition.
    pub process_definition_key: i64,
    /// Process instance (root element instance).
    pub process_instance_key: i64,
    /// Enclosing element instance, `-1` for the process.
    pub flow_scope_key: i64,
    /// Element index in the model.
    pub element: u32,
    /// Lifecycle state.
    pub state: ElementState,
    /// Child element instances that are active.
    pub active_children: u32,
    /// Sequence flows taken inside this scope whose target is not yet active.
    pub active_flows: u32,
    /// Job of a job-worker task, or `-1`.
    pub job_key: i64,
    /// Open incident on this element, or `-1`.
    pub incident_key: i64,
    /// A terminate end event ended this scope: nothing more is activated in it.
    pub interrupted: bool,
    /// Tokens waiting at joining gateways of this scope: (flow index, count).
    pub joins: Vec<(u32, u32)>,
}

/// Lifecycle state of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Can be activated.
    Activatable,
    /// Activated by a worker until its deadline.
    Activated,
    /// Failed: waiting for the back-off, or without retries (incident).
    Failed,
    /// A BPMN error was thrown and not caught (incident).
    ErrorThrown,
}

/// One job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The job as last written (variables field empty).
    pub record: JobRecord,
    /// Lifecycle state.
    pub state: JobState,
}

/// A client waiting for the result of a process instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingResult {
    /// The request to answer.
    pub request_id: u64,
    /// Variables to return (empty = all).
    pub fetch_variables: Vec<String>,
}

/// The replicated state of a partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// Key generator.
    pub keys: KeyGenerator,
    /// Highest command position whose results are in the state.
    pub last_processed_position: i64,
    /// Deployed processes by key.
    pub processes: BTreeMap<i64, Arc<DeployedProcess>>,
    /// Process keys by id and version.
    pub process_versions: BTreeMap<Arc<str>, BTreeMap<i32, i64>>,
    /// Element instances by key.
    pub instances: BTreeMap<i64, ElementInstance>,
    /// (flow scope key, child key) of every element instance with a scope.
    pub children: BTreeSet<(i64, i64)>,
    /// Variables.
    pub variables: Variables,
    /// Jobs by key.
    pub jobs: BTreeMap<i64, Job>,
    /// Activatable job keys by type.
    pub activatable: BTreeMap<Arc<str>, BTreeSet<i64>>,
    /// (deadline, key) of activated jobs.
    pub deadlines: BTreeSet<(i64, i64)>,
    /// (recur at, key) of failed jobs waiting for their back-off.
    pub backoffs: BTreeSet<(i64, i64)>,
    /// Open incidents.
    pub incidents: BTreeMap<i64, IncidentRecord>,
    /// Clients waiting for process instance results.
    pub awaiting: BTreeMap<i64, AwaitingResult>,
}

impl State {
    /// Empty state of `partition_id`.
    pub fn new(partition_id: u32) -> Self {
        Self {
            keys: KeyGenerator::new(partition_id),
            last_processed_position: -1,
            processes: BTreeMap::new(),
            process_versions: BTreeMap::new(),
            instances: BTreeMap::new(),
            children: BTreeSet::new(),
            variables: Variables::default(),
            jobs: BTreeMap::new(),
            activatable: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            backoffs: BTreeSet::new(),
            incidents: BTreeMap::new(),
            awaiting: BTreeMap::new(),
        }
    }

    /// The process definition `key`.
    pub fn process(&self, key: i64) -> Option<&Arc<DeployedProcess>> {
        self.processes.get(&key)
    }

    /// Latest version of `bpmn_process_id`.
    pub fn latest_process(&self, bpmn_process_id: &str) -> Option<&Arc<DeployedProcess>> {
        let (_, key) = self
            .process_versions
            .get(bpmn_process_id)?
            .last_key_value()?;
        self.processes.get(key)
    }

    /// Version `version` of `bpmn_process_id`.
    pub fn process_version(
        &self,
        bpmn_process_id: &str,
        version: i32,
    ) -> Option<&Arc<DeployedProcess>> {
        let key = self.process_versions.get(bpmn_process_id)?.get(&version)?;
        self.processes.get(key)
    }

    /// Keys of the active children of `scope`.
    pub fn children_of(&self, scope: i64) -> Vec<i64> {
        self.children
            .range((scope, i64::MIN)..=(scope, i64::MAX))
            .map(|&(_, c)| c)
            .collect()
    }

    /// Applies an event (or the position of a rejection). Commands are ignored.
    pub fn apply(&mut self, record: &Record) {
        match record.record_type {
            RecordType::Command => return,
            RecordType::CommandRejection => {
                self.advance_position(record);
                return;
            }
            RecordType::Event => {}
        }
        self.advance_position(record);
        self.keys.observe(record.key);
        match (&record.value, record.intent) {
            (RecordValue::Process(p), Intent::Created) => self.apply_process(p),
            (RecordValue::ProcessInstanceCreation(c), Intent::Created) if c.await_result => {
                if let Some(request_id) = record.request_id {
                    self.awaiting.insert(
                        c.process_instance_key,
                        AwaitingResult {
                            request_id,
                            fetch_variables: c.fetch_variables.clone(),
                        },
                    );
                }
            }
            (RecordValue::ProcessInstance(pi), intent) => {
                self.apply_process_instance(record.key, pi, intent)
            }
            (RecordValue::Variable(v), Intent::Created | Intent::Updated) => {
                self.variables
                    .set(v.scope_key, &v.name, record.key, &v.value)
            }
            (RecordValue::Job(job), intent) => self.apply_job(record.key, job, intent),
            (RecordValue::JobBatch(batch), Intent::Activated) => {
                for (key, activated) in batch.job_keys.iter().zip(&batch.jobs) {
                    let job = self.jobs.get_mut(key).expect("activated job exists");
                    assert_eq!(
                        job.state,
                        JobState::Activatable,
                        "job {key} activated twice"
                    );
                    job.state = JobState::Activated;
                    job.record.worker = activated.worker.clone();
                    job.record.deadline_ms = activated.deadline_ms;
                    job.record.timeout_ms = activated.timeout_ms;
                    let ty = job.record.job_type.clone();
                    remove_activatable(&mut self.activatable, &ty, *key);
                    self.deadlines.insert((activated.deadline_ms, *key));
                }
            }
            (RecordValue::Incident(incident), Intent::Created) => {
                if let Some(el) = self.instances.get_mut(&incident.element_instance_key) {
                    el.incident_key = record.key;
                }
                self.incidents.insert(record.key, incident.clone());
            }
            (RecordValue::Incident(incident), Intent::Resolved) => {
                self.incidents.remove(&record.key);
                if let Some(el) = self.instances.get_mut(&incident.element_instance_key) {
                    if el.incident_key == record.key {
                        el.incident_key = NO_KEY;
                    }
                }
                if let Some(job) = self.jobs.get_mut(&incident.job_key) {
                    if job.record.retries > 0
                        && matches!(job.state, JobState::Failed | JobState::ErrorThrown)
                    {
                        job.state = JobState::Activatable;
                        let ty = job.record.job_type.clone();
                        self.backoffs
                            .remove(&(job.record.recurring_at_ms, incident.job_key));
                        self.activatable
                            .entry(ty)
                            .or_default()
                            .insert(incident.job_key);
                    }
                }
            }
            _ => {}
        }
    }

    fn advance_position(&mut self, record: &Record) {
        if record.source_record_position > self.last_processed_position {
            self.last_processed_position = record.source_record_position;
        }
    }

    fn apply_process(&mut self, p: &ProcessRecord) {
        let key = p.metadata.process_definition_key;
        if self.processes.contains_key(&key) {
            return;
        }
        let deployed = DeployedProcess::try_from(p.clone())
            .expect("a process in a CREATED event was validated when it was deployed");
        self.process_versions
            .entry(p.metadata.bpmn_process_id.clone())
            .or_default()
            .insert(p.metadata.version, key);
        self.processes.insert(key, Arc::new(deployed));
    }

    fn apply_process_instance(&mut self, key: i64, pi: &ProcessInstanceRecord, intent: Intent) {
        match intent {
            Intent::ElementActivating => {
                let model = self
                    .processes
                    .get(&pi.process_definition_key)
                    .expect("process of an activated element is deployed")
                    .model
                    .clone();
                let element = model
                    .index_of(&pi.element_id)
                    .expect("activated element is in its model");
                if pi.flow_scope_key != NO_KEY {
                    let el = model.element(element);
                    let scope = self
                        .instances
                        .get_mut(&pi.flow_scope_key)
                        .expect("flow scope of an activated element is active");
                    scope.active_children += 1;
                    if el.is_join() {
                        for &f in &el.incoming {
                            if let Some(pos) = scope.joins.iter().position(|&(jf, _)| jf == f) {
                                scope.joins[pos].1 -= 1;
                                if scope.joins[pos].1 == 0 {
                                    scope.joins.remove(pos);
                                }
                                scope.active_flows = scope.active_flows.saturating_sub(1);
                            }
                        }
                    } else if !el.incoming.is_empty() {
                        scope.active_flows = scope.active_flows.saturating_sub(1);
                    }
                    self.children.insert((pi.flow_scope_key, key));
                }
                self.instances.insert(
                    key,
                    ElementInstance {
                        process_definition_key: pi.process_definition_key,
                        process_instance_key: pi.process_instance_key,
                        flow_scope_key: pi.flow_scope_key,
                        element,
                        state: ElementState::Activating,
                        active_children: 0,
                        active_flows: 0,
                        job_key: NO_KEY,
                        incident_key: NO_KEY,
                        interrupted: false,
                        joins: Vec::new(),
                    },
                );
            }
            Intent::ElementActivated => self.set_element_state(key, ElementState::Activated),
            Intent::ElementCompleting => self.set_element_state(key, ElementState::Completing),
            Intent::ElementTerminating => {
                let el = self
                    .instances
                    .get_mut(&key)
                    .expect("terminating element is active");
                el.state = ElementState::Terminating;
                el.active_flows = 0;
                el.joins.clear();
            }
            Intent::ElementCompleted | Intent::ElementTerminated => {
                let el = self
                    .instances
                    .remove(&key)
                    .expect("ended element was active");
                self.variables.remove_scope(key);
                if el.flow_scope_key == NO_KEY {
                    self.awaiting.remove(&key);
                    return;
                }
                self.children.remove(&(el.flow_scope_key, key));
                let terminate = intent == Intent::ElementCompleted
                    && pi.bpmn_event_type == BpmnEventType::Terminate;
                let scope = self
                    .instances
                    .get_mut(&el.flow_scope_key)
                    .expect("flow scope outlives its children");
                scope.active_children -= 1;
                if terminate {
                    scope.interrupted = true;
                    scope.active_flows = 0;
                    scope.joins.clear();
                }
            }
            Intent::SequenceFlowTaken => {
                let model = &self
                    .processes
                    .get(&pi.process_definition_key)
                    .expect("process of a taken flow is deployed")
                    .model;
                let flow = model
                    .flow_index_of(&pi.element_id)
                    .expect("taken flow is in its model");
                let is_join = model.element(model.flow(flow).target).is_join();
                let scope = self
                    .instances
                    .get_mut(&pi.flow_scope_key)
                    .expect("scope of a taken flow is active");
                scope.active_flows += 1;
                if is_join {
                    match scope.joins.iter_mut().find(|(f, _)| *f == flow) {
                        Some(entry) => entry.1 += 1,
                        None => scope.joins.push((flow, 1)),
                    }
                }
            }
            _ => {}
        }
    }

    fn set_element_state(&mut self, key: i64, state: ElementState) {
        self.instances
            .get_mut(&key)
            .expect("element changing state is active")
            .state = state;
    }

    fn apply_job(&mut self, key: i64, value: &JobRecord, intent: Intent) {
        if intent == Intent::Created {
            let mut record = value.clone();
            record.variables = String::new();
            if let Some(el) = self.instances.get_mut(&record.element_instance_key) {
                el.job_key = key;
            }
            self.activatable
                .entry(record.job_type.clone())
                .or_default()
                .insert(key);
            self.jobs.insert(
                key,
                Job {
                    record,
                    state: JobState::Activatable,
                },
            );
            return;
        }
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        let ty = job.record.job_type.clone();
        match intent {
            Intent::Completed | Intent::Canceled => {
                let job = self.jobs.remove(&key).expect("job exists");
                remove_activatable(&mut self.activatable, &ty, key);
                self.deadlines.remove(&(job.record.deadline_ms, key));
                self.backoffs.remove(&(job.record.recurring_at_ms, key));
                if let Some(el) = self.instances.get_mut(&job.record.element_instance_key) {
                    el.job_key = NO_KEY;
                }
            }
            Intent::Failed => {
                self.deadlines.remove(&(job.record.deadline_ms, key));
                job.record.deadline_ms = NO_KEY;
                job.record.retries = value.retries;
                job.record.error_message = value.error_message.clone();
                job.record.retry_backoff_ms = value.retry_backoff_ms;
                job.record.recurring_at_ms = value.recurring_at_ms;
                if value.retries > 0 && value.recurring_at_ms == NO_KEY {
                    job.state = JobState::Activatable;
                    self.activatable.entry(ty).or_default().insert(key);
                } else {
                    job.state = JobState::Failed;
                    if value.retries > 0 {
                        self.backoffs.insert((value.recurring_at_ms, key));
                    }
                }
            }
            Intent::TimedOut | Intent::Yielded => {
                self.deadlines.remove(&(job.record.deadline_ms, key));
                job.record.deadline_ms = NO_KEY;
                job.state = JobState::Activatable;
                self.activatable.entry(ty).or_default().insert(key);
            }
            Intent::RecurredAfterBackoff => {
                self.backoffs.remove(&(job.record.recurring_at_ms, key));
                job.record.recurring_at_ms = NO_KEY;
                job.state = JobState::Activatable;
                self.activatable.entry(ty).or_default().insert(key);
            }
            Intent::RetriesUpdated => job.record.retries = value.retries,
            Intent::TimeoutUpdated => {
                self.deadlines.remove(&(job.record.deadline_ms, key));
                job.record.deadline_ms = value.deadline_ms;
                self.deadlines.insert((value.deadline_ms, key));
            }
            Intent::ErrorThrown => {
                remove_activatable(&mut self.activatable, &ty, key);
                self.deadlines.remove(&(job.record.deadline_ms, key));
                job.record.deadline_ms = NO_KEY;
                job.record.error_code = value.error_code.clone();
                job.record.error_message = value.error_message.clone();
                job.state = JobState::ErrorThrown;
            }
            _ => {}
        }
    }
}

fn remove_activatable(index: &mut BTreeMap<Arc<str>, BTreeSet<i64>>, ty: &Arc<str>, key: i64) {
    if let Some(set) = index.get_mut(ty) {
        set.remove(&key);
        if set.is_empty() {
            index.remove(ty);
        }
    }
}

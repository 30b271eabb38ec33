//! The replicated state of one partition, and the event appliers that change it.
//!
//! ```text
//! processes      key -> DeployedProcess (model + resource)   by_id: id -> version -> key
//!                highest version per id; being deleted: keys; (definition, process instance)
//! instances      element instance key -> ElementInstance      children: (scope, child)
//! variables      scope -> variables (see `variables`)
//! jobs           key -> Job        activatable: type -> keys; deadlines, backoffs: (ms, key)
//! incidents      key -> IncidentRecord
//! awaiting       process instance key -> request waiting for the result
//! timers         key -> TimerRecord   due: (ms, key); by owner: (element instance, key)
//! process message subscriptions (this partition's instances): key -> sub; by owner
//! message subscriptions (messages of this partition): key -> sub; by (name, correlation key)
//! messages       key -> MessageRecord; by (name, key), deadline, message id; correlated
//!                (message, process id); message-started instances (process id, key)
//! signal subscriptions  key -> sub; by name; by owner
//! event triggers key -> ProcessEventRecord; by scope
//! distributions  sent: key -> command; pending (target partition, key)
//!                received: source partition -> highest key applied here
//! keys           the key generator;  last_processed_position
//! decisions      deployed DRGs and decisions (see `decision_state`)
//! ```
//!
//! Only `apply` changes this state, and only from events (and rejections, for
//! the position), so the leader (which applies what it produces) and a
//! follower (which applies what it reads) hold the same state. Every map is
//! ordered, so a snapshot of equal states gives equal bytes.

use crate::bpmn::parse_bpmn;
use crate::collectives::Kind;
use crate::decision_state::DecisionState;
use crate::key::{partition_of, KeyGenerator};
use crate::model::Process;

use crate::record::*;
use crate::tenancy::{scoped, scoped_arc};
use crate::variables::Variables;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Deepest nesting of call activities followed when walking up.
pub const MAX_CALL_DEPTH: usize = 1_000;

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
    /// Job of a job-worker task, user task of a Camunda user task, or `-1`.
    pub job_key: i64,
    /// Open incident on this element, or `-1`.
    pub incident_key: i64,
    /// A terminate end event ended this scope: nothing more is activated in it.
    pub interrupted: bool,
    /// Tokens waiting at joining gateways of this scope: (flow index, count).
    pub joins: Vec<(u32, u32)>,
    /// Root of a called process instance: the call activity instance, else `-1`.
    pub parent_element_instance_key: i64,
    /// Inner instance of a multi-instance body: its 1-based loop counter;
    /// on the body: how many inner instances were activated.
    pub loop_counter: u32,
    /// Execution listener jobs of this instance completed so far (start
    /// listeners first, then end listeners).
    pub listeners_done: u32,
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
    /// Timestamp of the command that created the job (epoch ms), for the
    /// latency from creation to activation.
    pub created_ms: i64,
}

/// A client waiting for the result of a process instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingResult {
    /// The request to answer.
    pub request_id: u64,
    /// Variables to return (empty = all).
    pub fetch_variables: Vec<String>,
}

/// State of a process message subscription, seen from the instance's partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionState {
    /// Asked the message partition to open it; not yet acknowledged.
    Opening,
    /// Open on the message partition.
    Opened,
    /// Asked the message partition to close it; not yet acknowledged.
    Closing,
}

/// A process message subscription of a waiting element instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMessageSubscription {
    /// The subscription.
    pub record: MessageSubscriptionRecord,
    /// Where the exchange with the message partition stands.
    pub state: SubscriptionState,
}

/// A message subscription on the message's partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSubscription {
    /// The subscription.
    pub record: MessageSubscriptionRecord,
    /// A message was sent to the instance and is not yet acknowledged.
    pub correlating: bool,
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
    /// Process keys by id and version (definitions being deleted are left out).
    pub process_versions: BTreeMap<Arc<str>, BTreeMap<i32, i64>>,
    /// Highest version ever deployed per process id: a deleted version is not reused.
    pub highest_versions: BTreeMap<Arc<str>, i32>,
    /// Definitions with `PROCESS DELETING` written, waiting for their
    /// instances to end before `PROCESS DELETED` removes them.
    pub processes_deleting: BTreeSet<i64>,
    /// (process definition, instance) of every active process instance,
    /// called ones included.
    pub instances_by_definition: BTreeSet<(i64, i64)>,
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
    /// Timers by key.
    pub timers: BTreeMap<i64, TimerRecord>,
    /// (due, timer key).
    pub timer_due: BTreeSet<(i64, i64)>,
    /// (element instance, timer key).
    pub timers_by_owner: BTreeSet<(i64, i64)>,
    /// Process message subscriptions of this partition's instances.
    pub process_message_subscriptions: BTreeMap<i64, ProcessMessageSubscription>,
    /// (element instance, subscription key).
    pub pms_by_owner: BTreeSet<(i64, i64)>,
    /// Message subscriptions of messages that live on this partition.
    pub message_subscriptions: BTreeMap<i64, MessageSubscription>,
    /// (message name, correlation key, subscription key).
    pub ms_by_name: BTreeSet<(String, String, i64)>,
    /// (element instance, message name) -> subscription key.
    pub ms_by_owner: BTreeMap<(i64, String), i64>,
    /// Buffered messages.
    pub messages: BTreeMap<i64, MessageRecord>,
    /// (name, correlation key, message key).
    pub messages_by_name: BTreeSet<(String, String, i64)>,
    /// (deadline, message key).
    pub message_deadlines: BTreeSet<(i64, i64)>,
    /// (name, correlation key, message id) -> message key.
    pub message_ids: BTreeMap<(String, String, String), i64>,
    /// (message key, process id): the message correlated to that process.
    pub message_correlated: BTreeSet<(i64, Arc<str>)>,
    /// (process id, correlation key) -> instance started by a message, while active.
    pub message_started: BTreeMap<(Arc<str>, String), i64>,
    /// Signal subscriptions by key.
    pub signal_subscriptions: BTreeMap<i64, SignalSubscriptionRecord>,
    /// (signal name, subscription key).
    pub signal_by_name: BTreeSet<(String, i64)>,
    /// (element instance, subscription key).
    pub signal_by_owner: BTreeSet<(i64, i64)>,
    /// Event triggers waiting to activate their target.
    pub event_triggers: BTreeMap<i64, ProcessEventRecord>,
    /// (scope, trigger key).
    pub triggers_by_scope: BTreeSet<(i64, i64)>,
    /// (waiting element instance, message key) -> process instance: messages
    /// correlated on this partition, kept while the instance lives so that a
    /// correlation sent again is acknowledged, not applied twice.
    pub pms_correlated: BTreeMap<(i64, i64), i64>,
    /// (process instance, element instance, message key) of `pms_correlated`.
    pub pms_correlated_by_instance: BTreeSet<(i64, i64, i64)>,
    /// Commands this partition distributes, by distribution key (`STARTED`
    /// until `FINISHED`).
    pub distributed_commands: BTreeMap<i64, CommandDistributionRecord>,
    /// (target partition, distribution key) not yet acknowledged; per target
    /// they are sent in key order, one at a time.
    pub distribution_pending: BTreeSet<(u32, i64)>,
    /// Source partition -> highest distribution key applied here. Sources
    /// send one command at a time in key order, so a key at or below it is
    /// a duplicate.
    pub distributions_received: BTreeMap<u32, i64>,
    /// Compensation subscriptions of completed activities.
    pub compensations: BTreeMap<i64, CompensationSubscriptionRecord>,
    /// (scope, compensation subscription key).
    pub compensations_by_scope: BTreeSet<(i64, i64)>,
    /// Camunda user tasks by key (variables, action and changed attributes
    /// left empty).
    pub user_tasks: BTreeMap<i64, UserTaskRecord>,
    /// Deployed DRGs and decisions.
    pub decisions: DecisionState,
    /// User task transitions in progress (waiting for task listeners), by
    /// user task key.
    pub task_transitions: BTreeMap<i64, crate::listeners::TaskTransition>,
    /// Deployed forms.
    pub forms: crate::forms::FormState,
    /// Users. Encoded after the rest of the snapshot, only when not empty
    /// (see `Engine::snapshot`), hence skipped here.
    #[serde(skip)]
    pub identity: crate::identity::Identity,
    /// Tenants of definitions, messages and subscriptions; encoded after
    /// the identity state, only when not empty.
    #[serde(skip)]
    pub tenancy: crate::tenancy::Tenancy,
}

impl State {
    /// Empty state of `partition_id`.
    pub fn new(partition_id: u32) -> Self {
        Self {
            keys: KeyGenerator::new(partition_id),
            last_processed_position: -1,
            processes: BTreeMap::new(),
            process_versions: BTreeMap::new(),
            highest_versions: BTreeMap::new(),
            processes_deleting: BTreeSet::new(),
            instances_by_definition: BTreeSet::new(),
            instances: BTreeMap::new(),
            children: BTreeSet::new(),
            variables: Variables::default(),
            jobs: BTreeMap::new(),
            activatable: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            backoffs: BTreeSet::new(),
            incidents: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            timers: BTreeMap::new(),
            timer_due: BTreeSet::new(),
            timers_by_owner: BTreeSet::new(),
            process_message_subscriptions: BTreeMap::new(),
            pms_by_owner: BTreeSet::new(),
            message_subscriptions: BTreeMap::new(),
            ms_by_name: BTreeSet::new(),
            ms_by_owner: BTreeMap::new(),
            messages: BTreeMap::new(),
            messages_by_name: BTreeSet::new(),
            message_deadlines: BTreeSet::new(),
            message_ids: BTreeMap::new(),
            message_correlated: BTreeSet::new(),
            message_started: BTreeMap::new(),
            signal_subscriptions: BTreeMap::new(),
            signal_by_name: BTreeSet::new(),
            signal_by_owner: BTreeSet::new(),
            event_triggers: BTreeMap::new(),
            triggers_by_scope: BTreeSet::new(),
            distributed_commands: BTreeMap::new(),
            distribution_pending: BTreeSet::new(),
            distributions_received: BTreeMap::new(),
            compensations: BTreeMap::new(),
            compensations_by_scope: BTreeSet::new(),
            user_tasks: BTreeMap::new(),
            pms_correlated: BTreeMap::new(),
            pms_correlated_by_instance: BTreeSet::new(),
            decisions: DecisionState::default(),
            task_transitions: BTreeMap::new(),
            forms: Default::default(),
            identity: Default::default(),
            tenancy: Default::default(),
        }
    }

    /// The root process instance of `process_instance_key`, following call
    /// activities up to the instance that was not called.
    pub fn root_process_instance(&self, process_instance_key: i64) -> i64 {
        let mut pi = process_instance_key;
        for _ in 0..MAX_CALL_DEPTH {
            let parent = self
                .instances
                .get(&pi)
                .map(|i| i.parent_element_instance_key)
                .unwrap_or(NO_KEY);
            match self.instances.get(&parent) {
                Some(call) => pi = call.process_instance_key,
                None => return pi,
            }
        }
        pi
    }

    /// Keys of the (element instance, key) pairs in `index` for `owner`.
    pub fn owned(index: &BTreeSet<(i64, i64)>, owner: i64) -> Vec<i64> {
        index
            .range((owner, i64::MIN)..=(owner, i64::MAX))
            .map(|&(_, k)| k)
            .collect()
    }

    /// The process definition `key`.
    pub fn process(&self, key: i64) -> Option<&Arc<DeployedProcess>> {
        self.processes.get(&key)
    }

    /// The tenant of process definition `key`.
    pub fn process_tenant(&self, key: i64) -> Tenant {
        self.tenancy.of(key)
    }

    /// The tenant of the process instance (or element instance) `key`, if
    /// it is active here.
    pub fn instance_tenant(&self, key: i64) -> Option<Tenant> {
        let instance = self.instances.get(&key)?;
        Some(self.tenancy.of(instance.process_definition_key))
    }

    /// The versions of `bpmn_process_id` in `tenant`.
    fn versions_of(&self, tenant: &Tenant, bpmn_process_id: &str) -> Option<&BTreeMap<i32, i64>> {
        self.process_versions
            .get(scoped(tenant, bpmn_process_id).as_ref())
    }

    /// Latest version of `bpmn_process_id` in `tenant`.
    pub fn latest_process(
        &self,
        tenant: &Tenant,
        bpmn_process_id: &str,
    ) -> Option<&Arc<DeployedProcess>> {
        let (_, key) = self
            .versions_of(tenant, bpmn_process_id)?
            .last_key_value()?;
        self.processes.get(key)
    }

    /// The highest version of `bpmn_process_id` ever deployed in `tenant`.
    pub fn highest_version(&self, tenant: &Tenant, bpmn_process_id: &str) -> i32 {
        let id = scoped(tenant, bpmn_process_id);
        self.highest_versions.get(id.as_ref()).copied().unwrap_or(0)
    }

    /// Latest version of `bpmn_process_id` in `tenant` whose
    /// `zeebe:versionTag` is `tag`.
    pub fn process_with_tag(
        &self,
        tenant: &Tenant,
        bpmn_process_id: &str,
        tag: &str,
    ) -> Option<&Arc<DeployedProcess>> {
        self.versions_of(tenant, bpmn_process_id)?
            .values()
            .rev()
            .filter_map(|key| self.processes.get(key))
            .find(|p| p.model.version_tag.as_deref() == Some(tag))
    }

    /// The version of `bpmn_process_id` created by deployment `deployment_key`.
    pub fn process_of_deployment(
        &self,
        tenant: &Tenant,
        deployment_key: i64,
        bpmn_process_id: &str,
    ) -> Option<&Arc<DeployedProcess>> {
        self.versions_of(tenant, bpmn_process_id)?
            .values()
            .filter(|key| self.decisions.process_deployment.get(key) == Some(&deployment_key))
            .find_map(|key| self.processes.get(key))
    }

    /// The latest version of every process of `tenant`, by process id.
    pub fn latest_processes(&self, tenant: &Tenant) -> Vec<Arc<DeployedProcess>> {
        self.process_versions
            .values()
            .filter_map(|versions| versions.last_key_value())
            .filter(|(_, &k)| self.tenancy.of(k) == *tenant)
            .filter_map(|(_, k)| self.processes.get(k).cloned())
            .collect()
    }

    /// Whether definition `key` is being deleted (instances still ending).
    pub fn is_deleting(&self, key: i64) -> bool {
        self.processes_deleting.contains(&key)
    }

    /// Active process instances (called ones included) of definition `key`.
    pub fn instances_of_definition(&self, key: i64) -> Vec<i64> {
        Self::owned(&self.instances_by_definition, key)
    }

    /// The first unacknowledged distribution key for `partition`: the one
    /// to send (again).
    pub fn distribution_head(&self, partition: u32) -> Option<i64> {
        self.distribution_pending
            .range((partition, i64::MIN)..=(partition, i64::MAX))
            .next()
            .map(|&(_, k)| k)
    }

    /// Whether distributed command `key` from `source` was applied here.
    pub fn distribution_received(&self, source: u32, key: i64) -> bool {
        self.distributions_received
            .get(&source)
            .is_some_and(|&highest| key <= highest)
    }

    /// Version `version` of `bpmn_process_id` in `tenant`.
    pub fn process_version(
        &self,
        tenant: &Tenant,
        bpmn_process_id: &str,
        version: i32,
    ) -> Option<&Arc<DeployedProcess>> {
        let key = self.versions_of(tenant, bpmn_process_id)?.get(&version)?;
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
        if crate::migration::apply(self, record) {
            return;
        }
        let owned = owned_by_tenant(record);
        if owned == Some(true) {
            self.tenancy.own(record.key, &record.tenant);
        }
        self.apply_event(record);
        if owned == Some(false) {
            self.tenancy.release(record.key);
        }
    }

    fn apply_event(&mut self, record: &Record) {
        match (&record.value, record.intent) {
            (RecordValue::Process(p), Intent::Created) => self.apply_process(p, &record.tenant),
            (RecordValue::Deployment(d), Intent::Created) => {
                self.decisions.apply_deployment(record.key, d);
                self.forms.apply_deployment(record.key, d)
            }
            (RecordValue::Deployment(d), Intent::Distributed) => {
                self.note_distribution_received(record.key);
                self.decisions.apply_deployment(record.key, d);
                self.forms.apply_deployment(record.key, d)
            }
            (RecordValue::Form(f), Intent::Created) => {
                let tenant = self.tenancy.of(record.key);
                self.forms.apply_created(f, &tenant)
            }
            (RecordValue::User(u), intent) => {
                self.note_distribution_received(record.key);
                self.identity.apply_user(intent, u)
            }
            (RecordValue::Role(c), intent) => {
                self.note_distribution_received(record.key);
                self.identity.apply_collective(Kind::Role, intent, c)
            }
            (RecordValue::Group(c), intent) => {
                self.note_distribution_received(record.key);
                self.identity.apply_collective(Kind::Group, intent, c)
            }
            (RecordValue::Tenant(c), intent) => {
                self.note_distribution_received(record.key);
                self.identity.apply_collective(Kind::Tenant, intent, c)
            }
            (RecordValue::MappingRule(r), intent) => {
                self.note_distribution_received(record.key);
                self.identity.apply_mapping_rule(intent, r)
            }
            (RecordValue::Authorization(a), intent) => {
                self.note_distribution_received(record.key);
                self.identity.apply_authorization(intent, a)
            }
            (RecordValue::Form(f), Intent::Deleted) => {
                let tenant = self.tenancy.of(record.key);
                self.forms.apply_deleted(&f.metadata, &tenant)
            }
            (RecordValue::ResourceDeletion(_), Intent::Deleted) => {
                self.note_distribution_received(record.key)
            }
            (RecordValue::DecisionRequirements(r), Intent::Created) => {
                let tenant = self.tenancy.of(record.key);
                self.decisions.apply_drg_created(r, &tenant)
            }
            (RecordValue::DecisionRequirements(r), Intent::Deleted) => {
                let tenant = self.tenancy.of(record.key);
                self.decisions.apply_drg_deleted(&r.metadata, &tenant)
            }
            (RecordValue::Decision(d), Intent::Created) => {
                let tenant = self.tenancy.of(record.key);
                self.decisions.apply_decision_created(d, &tenant)
            }
            (RecordValue::Decision(d), Intent::Deleted) => {
                let tenant = self.tenancy.of(record.key);
                self.decisions.apply_decision_deleted(d, &tenant)
            }
            (RecordValue::CommandDistribution(d), intent) => {
                self.apply_command_distribution(record.key, d, intent)
            }
            (RecordValue::Scale(_), Intent::PartitionBootstrapped | Intent::ScaledUp) => {
                self.note_distribution_received(record.key)
            }
            (RecordValue::Process(p), Intent::Deleting) => self.apply_process_deleting(&p.metadata),
            (RecordValue::Process(p), Intent::Deleted) => {
                let key = p.metadata.process_definition_key;
                self.apply_process_deleting(&p.metadata);
                self.processes_deleting.remove(&key);
                self.processes.remove(&key);
                self.decisions.process_deployment.remove(&key);
                self.tenancy.release(key);
            }
            (RecordValue::ProcessInstanceCreation(c), Intent::Created)
                if !c.await_result && !c.variables.is_empty() =>
            {
                self.variables
                    .reserve(c.process_instance_key, c.variables.len());
            }
            (RecordValue::ProcessInstanceCreation(c), Intent::Created) if c.await_result => {
                if !c.variables.is_empty() {
                    self.variables
                        .reserve(c.process_instance_key, c.variables.len());
                }
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
            (RecordValue::UserTask(task), intent) => {
                self.apply_task_transition(record, task);
                self.apply_user_task(record.key, task, intent)
            }
            (RecordValue::Job(job), intent) => {
                self.apply_listener_job(record.key, job, intent);
                self.apply_job(record.key, job, intent, record.timestamp_ms)
            }
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
            (RecordValue::Timer(t), intent) => self.apply_timer(record.key, t, intent),
            (RecordValue::Message(m), intent) => self.apply_message(record.key, m, intent),
            (RecordValue::MessageSubscription(m), intent) => {
                self.apply_message_subscription(record.key, m, intent, &record.tenant)
            }
            (RecordValue::ProcessMessageSubscription(m), intent) => {
                self.apply_process_message_subscription(record.key, m, intent)
            }
            (RecordValue::ProcessEvent(e), intent) => {
                self.apply_process_event(record.key, e, intent)
            }
            (RecordValue::SignalSubscription(sub), Intent::Created) => {
                let tenant = self.tenancy.of(sub.process_definition_key);
                let name = scoped(&tenant, &sub.signal_name).into_owned();
                self.signal_by_name.insert((name, record.key));
                self.signal_by_owner
                    .insert((sub.element_instance_key, record.key));
                self.signal_subscriptions.insert(record.key, sub.clone());
            }
            (RecordValue::SignalSubscription(_), Intent::Deleted) => {
                if let Some(sub) = self.signal_subscriptions.remove(&record.key) {
                    let tenant = self.tenancy.of(sub.process_definition_key);
                    let name = scoped(&tenant, &sub.signal_name).into_owned();
                    self.signal_by_name.remove(&(name, record.key));
                    self.signal_by_owner
                        .remove(&(sub.element_instance_key, record.key));
                }
            }
            (RecordValue::CompensationSubscription(c), Intent::Created) => {
                self.compensations_by_scope
                    .insert((c.scope_key, record.key));
                self.compensations.insert(record.key, c.clone());
            }
            (RecordValue::CompensationSubscription(_), Intent::Triggered | Intent::Deleted) => {
                if let Some(c) = self.compensations.remove(&record.key) {
                    self.compensations_by_scope
                        .remove(&(c.scope_key, record.key));
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

    /// A distributed command (key of another partition) was applied here.
    fn note_distribution_received(&mut self, key: i64) {
        let source = partition_of(key);
        if key <= 0 || source == self.keys.partition_id() {
            return;
        }
        let highest = self.distributions_received.entry(source).or_insert(key);
        *highest = (*highest).max(key);
    }

    fn apply_command_distribution(
        &mut self,
        key: i64,
        d: &CommandDistributionRecord,
        intent: Intent,
    ) {
        match intent {
            Intent::Started => {
                self.distributed_commands.insert(key, d.clone());
            }
            Intent::Distributing => {
                self.distribution_pending.insert((d.partition_id, key));
            }
            Intent::Acknowledged => {
                self.distribution_pending.remove(&(d.partition_id, key));
            }
            Intent::Finished => {
                self.distributed_commands.remove(&key);
            }
            _ => {}
        }
    }

    fn apply_timer(&mut self, key: i64, t: &TimerRecord, intent: Intent) {
        match intent {
            Intent::Created => {
                self.timer_due.insert((t.due_date_ms, key));
                self.timers_by_owner.insert((t.element_instance_key, key));
                self.timers.insert(key, t.clone());
            }
            Intent::Triggered | Intent::Canceled => {
                if let Some(t) = self.timers.remove(&key) {
                    self.timer_due.remove(&(t.due_date_ms, key));
                    self.timers_by_owner.remove(&(t.element_instance_key, key));
                }
            }
            _ => {}
        }
    }

    fn apply_message(&mut self, key: i64, m: &MessageRecord, intent: Intent) {
        let name = scoped(&self.tenancy.of(key), &m.name).into_owned();
        match intent {
            Intent::Published => {
                self.messages_by_name
                    .insert((name.clone(), m.correlation_key.clone(), key));
                self.message_deadlines.insert((m.deadline_ms, key));
                if !m.message_id.is_empty() {
                    self.message_ids
                        .insert((name, m.correlation_key.clone(), m.message_id.clone()), key);
                }
                self.messages.insert(key, m.clone());
            }
            Intent::Expired => {
                if let Some(m) = self.messages.remove(&key) {
                    self.messages_by_name
                        .remove(&(name.clone(), m.correlation_key.clone(), key));
                    self.message_deadlines.remove(&(m.deadline_ms, key));
                    let id = (name, m.correlation_key, m.message_id);
                    if self.message_ids.get(&id) == Some(&key) {
                        self.message_ids.remove(&id);
                    }
                    let correlated: Vec<_> = self
                        .message_correlated
                        .range((key, Arc::from(""))..)
                        .take_while(|(k, _)| *k == key)
                        .cloned()
                        .collect();
                    for c in correlated {
                        self.message_correlated.remove(&c);
                    }
                }
            }
            _ => {}
        }
    }

    fn apply_message_subscription(
        &mut self,
        key: i64,
        m: &MessageSubscriptionRecord,
        intent: Intent,
        tenant: &Tenant,
    ) {
        match intent {
            Intent::Created => {
                let name = scoped(&self.tenancy.of(key), &m.message_name).into_owned();
                self.ms_by_name
                    .insert((name, m.correlation_key.clone(), key));
                self.ms_by_owner
                    .insert((m.element_instance_key, m.message_name.clone()), key);
                self.message_subscriptions.insert(
                    key,
                    MessageSubscription {
                        record: m.clone(),
                        correlating: false,
                    },
                );
            }
            Intent::Correlating => {
                self.message_correlated
                    .insert((m.message_key, m.bpmn_process_id.clone()));
                if let Some(sub) = self.message_subscriptions.get_mut(&key) {
                    sub.correlating = true;
                    sub.record.message_key = m.message_key;
                    sub.record.variables = m.variables.clone();
                }
            }
            Intent::Correlated if m.element_instance_key == NO_KEY => {
                // A message start event created an instance.
                self.message_correlated
                    .insert((m.message_key, m.bpmn_process_id.clone()));
                if !m.correlation_key.is_empty() {
                    let id = scoped_arc(tenant, &m.bpmn_process_id);
                    self.message_started
                        .insert((id, m.correlation_key.clone()), m.process_instance_key);
                }
            }
            Intent::Correlated => {
                let interrupting = match self.message_subscriptions.get_mut(&key) {
                    Some(sub) => {
                        sub.correlating = false;
                        sub.record.variables = String::new();
                        sub.record.interrupting
                    }
                    None => false,
                };
                if interrupting {
                    self.remove_message_subscription(key);
                }
            }
            Intent::Rejected => {
                self.message_correlated
                    .remove(&(m.message_key, m.bpmn_process_id.clone()));
                if let Some(sub) = self.message_subscriptions.get_mut(&key) {
                    sub.correlating = false;
                }
            }
            Intent::Deleted => self.remove_message_subscription(key),
            _ => {}
        }
    }

    fn remove_message_subscription(&mut self, key: i64) {
        if let Some(sub) = self.message_subscriptions.remove(&key) {
            let r = sub.record;
            let name = scoped(&self.tenancy.of(key), &r.message_name).into_owned();
            self.ms_by_name.remove(&(name, r.correlation_key, key));
            self.tenancy.release(key);
            self.ms_by_owner
                .remove(&(r.element_instance_key, r.message_name));
        }
    }

    fn apply_process_message_subscription(
        &mut self,
        key: i64,
        m: &MessageSubscriptionRecord,
        intent: Intent,
    ) {
        match intent {
            Intent::Creating => {
                self.pms_by_owner.insert((m.element_instance_key, key));
                self.process_message_subscriptions.insert(
                    key,
                    ProcessMessageSubscription {
                        record: m.clone(),
                        state: SubscriptionState::Opening,
                    },
                );
            }
            Intent::Created => {
                if let Some(sub) = self.process_message_subscriptions.get_mut(&key) {
                    if sub.state == SubscriptionState::Opening {
                        sub.state = SubscriptionState::Opened;
                    }
                }
            }
            Intent::Correlated => {
                self.pms_correlated.insert(
                    (m.element_instance_key, m.message_key),
                    m.process_instance_key,
                );
                self.pms_correlated_by_instance.insert((
                    m.process_instance_key,
                    m.element_instance_key,
                    m.message_key,
                ));
                if m.interrupting {
                    self.process_message_subscriptions.remove(&key);
                    self.pms_by_owner.remove(&(m.element_instance_key, key));
                } else if let Some(sub) = self.process_message_subscriptions.get_mut(&key) {
                    sub.state = SubscriptionState::Opened;
                }
            }
            Intent::Deleting => {
                if let Some(sub) = self.process_message_subscriptions.get_mut(&key) {
                    sub.state = SubscriptionState::Closing;
                }
            }
            Intent::Deleted => {
                self.process_message_subscriptions.remove(&key);
                self.pms_by_owner.remove(&(m.element_instance_key, key));
            }
            _ => {}
        }
    }

    fn apply_process_event(&mut self, key: i64, e: &ProcessEventRecord, intent: Intent) {
        match intent {
            Intent::Triggering => {
                if let Some(scope) = self.instances.get_mut(&e.scope_key) {
                    if e.interrupted_key == e.scope_key {
                        // An interrupting event sub-process: nothing else runs in the scope.
                        scope.interrupted = true;
                        scope.active_flows = 0;
                        scope.joins.clear();
                    }
                    scope.active_flows += 1;
                }
                self.triggers_by_scope.insert((e.scope_key, key));
                self.event_triggers.insert(key, e.clone());
            }
            Intent::Triggered if self.event_triggers.remove(&key).is_some() => {
                self.triggers_by_scope.remove(&(e.scope_key, key));
                if let Some(scope) = self.instances.get_mut(&e.scope_key) {
                    scope.active_flows = scope.active_flows.saturating_sub(1);
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

    fn apply_process(&mut self, p: &ProcessRecord, tenant: &Tenant) {
        let key = p.metadata.process_definition_key;
        if self.processes.contains_key(&key) {
            return;
        }
        let deployed = DeployedProcess::try_from(p.clone())
            .expect("a process in a CREATED event was validated when it was deployed");
        self.tenancy.own(key, tenant);
        let id = scoped_arc(tenant, &p.metadata.bpmn_process_id);
        self.process_versions
            .entry(id.clone())
            .or_default()
            .insert(p.metadata.version, key);
        let highest = self.highest_versions.entry(id).or_insert(0);
        *highest = (*highest).max(p.metadata.version);
        self.processes.insert(key, Arc::new(deployed));
    }

    /// `PROCESS DELETING`: the definition leaves the lookups by id and
    /// version (the previous version becomes the latest) but stays while its
    /// instances end.
    fn apply_process_deleting(&mut self, m: &ProcessMetadata) {
        let key = m.process_definition_key;
        if !self.processes.contains_key(&key) {
            return;
        }
        let id = scoped_arc(&self.tenancy.of(key), &m.bpmn_process_id);
        if let Some(versions) = self.process_versions.get_mut(&id) {
            if versions.get(&m.version) == Some(&key) {
                versions.remove(&m.version);
            }
            if versions.is_empty() {
                self.process_versions.remove(&id);
            }
        }
        self.processes_deleting.insert(key);
    }

    fn apply_process_instance(&mut self, key: i64, pi: &ProcessInstanceRecord, intent: Intent) {
        match intent {
            Intent::ElementActivating => {
                let model = &self
                    .processes
                    .get(&pi.process_definition_key)
                    .expect("process of an activated element is deployed")
                    .model;
                let element = model
                    .instance_element(&pi.element_id, pi.bpmn_element_type)
                    .expect("activated element is in its model");
                let mut loop_counter = 0;
                if pi.flow_scope_key == NO_KEY {
                    self.instances_by_definition
                        .insert((pi.process_definition_key, key));
                }
                if pi.flow_scope_key == NO_KEY && pi.parent_element_instance_key != NO_KEY {
                    if let Some(call) = self.instances.get_mut(&pi.parent_element_instance_key) {
                        call.active_children += 1;
                        self.children.insert((pi.parent_element_instance_key, key));
                    }
                }
                if pi.flow_scope_key != NO_KEY {
                    let body = model.element(element).flow_scope.map(|s| model.element(s));
                    if body.is_some_and(|b| b.element_type == BpmnElementType::MultiInstanceBody) {
                        let body = self
                            .instances
                            .get_mut(&pi.flow_scope_key)
                            .expect("multi-instance body of an inner instance is active");
                        body.loop_counter += 1;
                        loop_counter = body.loop_counter;
                    }
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
                        parent_element_instance_key: pi.parent_element_instance_key,
                        loop_counter,
                        listeners_done: 0,
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
                    self.instances_by_definition
                        .remove(&(el.process_definition_key, key));
                    self.awaiting.remove(&key);
                    let tenant = self.tenancy.of(el.process_definition_key);
                    let started = self
                        .processes
                        .get(&el.process_definition_key)
                        .map(|p| scoped_arc(&tenant, &p.metadata.bpmn_process_id));
                    if let Some(id) = started {
                        let ended: Vec<_> = self
                            .message_started
                            .range((id.clone(), String::new())..)
                            .take_while(|((p, _), _)| *p == id)
                            .filter(|(_, &pi)| pi == key)
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in ended {
                            self.message_started.remove(&k);
                        }
                    }
                    let correlated: Vec<(i64, i64, i64)> = self
                        .pms_correlated_by_instance
                        .range((key, i64::MIN, i64::MIN)..=(key, i64::MAX, i64::MAX))
                        .copied()
                        .collect();
                    for c in correlated {
                        self.pms_correlated_by_instance.remove(&c);
                        self.pms_correlated.remove(&(c.1, c.2));
                    }
                    let parent = el.parent_element_instance_key;
                    if let Some(call) = self.instances.get_mut(&parent) {
                        call.active_children -= 1;
                        self.children.remove(&(parent, key));
                    }
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

    fn apply_job(&mut self, key: i64, value: &JobRecord, intent: Intent, timestamp_ms: i64) {
        if intent == Intent::Created {
            let mut record = value.clone();
            record.variables = String::new();
            if let Some(el) = self.instances.get_mut(&record.element_instance_key) {
                // A task listener job runs beside the user task the element holds.
                if record.job_kind != JobKind::TaskListener {
                    el.job_key = key;
                }
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
                    created_ms: timestamp_ms,
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
                    if job.record.job_kind != JobKind::TaskListener {
                        el.job_key = NO_KEY;
                    }
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

/// Whether `record` makes its key an entity with a tenant of its own
/// (`Some(true)`, see `Tenancy::owners`) or ends one (`Some(false)`).
/// Processes are owned by `apply_process`, everything in an instance
/// through its process definition.
fn owned_by_tenant(record: &Record) -> Option<bool> {
    use Intent::*;
    match (record.value_type, record.intent) {
        (ValueType::DecisionRequirements | ValueType::Decision | ValueType::Form, Created)
        | (ValueType::Message, Published)
        | (ValueType::MessageSubscription, Created)
        | (ValueType::CommandDistribution, Started) => Some(true),
        (ValueType::DecisionRequirements | ValueType::Decision | ValueType::Form, Deleted)
        | (ValueType::Message, Expired)
        | (ValueType::CommandDistribution, Finished) => Some(false),
        _ => None,
    }
}

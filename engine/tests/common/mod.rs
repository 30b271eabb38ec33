//! Test harness: a minimal broker around one engine. It assigns positions,
//! timestamps (a manual clock) and request ids, appends everything to an
//! in-memory log (through the binary codec), and processes follow-up commands
//! in log order, as the broker does.

#![allow(dead_code)]

use ::engine::*;
use std::collections::{BTreeMap, VecDeque};

pub const CORPUS: &str = "../../shared/bpmn-corpus";

pub struct Harness {
    pub engine: Engine,
    pub log: Vec<Record>,
    pub now_ms: i64,
    next_request: u64,
    pub responses: BTreeMap<u64, Result<ResponseValue, Rejection>>,
    pub pushed: Vec<JobPush>,
    pub distributions: Vec<(u32, Record)>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_engine(Engine::new(1, 1))
    }

    pub fn with_engine(engine: Engine) -> Self {
        Self {
            engine,
            log: Vec::new(),
            now_ms: 1_000_000,
            next_request: 1,
            responses: BTreeMap::new(),
            pushed: Vec::new(),
            distributions: Vec::new(),
        }
    }

    fn append(&mut self, mut record: Record) -> Record {
        record.position = self.log.len() as i64 + 1;
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        let decoded = Record::decode(&bytes).expect("every record decodes");
        assert_eq!(decoded, record, "codec round trip");
        self.log.push(record.clone());
        record
    }

    /// Appends and processes a command (and the follow-up commands it causes).
    pub fn submit(&mut self, mut command: Record, with_request: bool) -> u64 {
        let request = self.next_request;
        self.next_request += 1;
        command.request_id = with_request.then_some(request);
        command.timestamp_ms = self.now_ms;
        self.submit_as_is(command);
        request
    }

    /// Appends and processes a command keeping its request id and timestamp.
    pub fn submit_as_is(&mut self, command: Record) {
        let mut queue = VecDeque::from([command]);
        while let Some(cmd) = queue.pop_front() {
            let cmd = self.append(cmd);
            let out = self.engine.process(&cmd);
            for r in out.records {
                let is_command = r.record_type == RecordType::Command;
                if is_command {
                    queue.push_back(r);
                } else {
                    self.append(r);
                }
            }
            for (id, resp) in out.responses {
                self.responses.insert(id, resp);
            }
            self.pushed.extend(out.pushed_jobs);
            self.distributions.extend(out.distributions);
        }
    }

    pub fn request(&mut self, command: Record) -> Result<ResponseValue, Rejection> {
        let id = self.submit(command, true);
        self.responses
            .remove(&id)
            .expect("a client command gets a response")
    }

    pub fn tick(&mut self) {
        let due = self.engine.due_commands(self.now_ms, 100);
        for c in due {
            self.submit(c, false);
        }
    }

    /// Moves the clock forward and processes every due command.
    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        for _ in 0..100 {
            let due = self.engine.due_commands(self.now_ms, 100);
            if due.is_empty() {
                return;
            }
            for c in due {
                self.submit(c, false);
            }
        }
    }

    pub fn publish(
        &mut self,
        name: &str,
        correlation_key: &str,
        ttl_ms: i64,
        message_id: &str,
        variables: &str,
    ) -> Result<ResponseValue, Rejection> {
        self.request(message_command(
            name,
            correlation_key,
            ttl_ms,
            message_id,
            variables,
        ))
    }

    pub fn broadcast(&mut self, name: &str, variables: &str) -> Result<ResponseValue, Rejection> {
        self.request(Record::command(
            NO_KEY,
            Intent::Broadcast,
            RecordValue::Signal(SignalRecord {
                signal_name: name.into(),
                variables: variables.into(),
            }),
            None,
        ))
    }

    /// Events of value type `value_type` with `intent`.
    pub fn count(&self, value_type: ValueType, intent: Intent) -> usize {
        self.log
            .iter()
            .filter(|r| {
                r.record_type == RecordType::Event
                    && r.value_type == value_type
                    && r.intent == intent
            })
            .count()
    }

    /// Instances of process `process_id` that were activated.
    pub fn instances_of(&self, process_id: &str) -> Vec<i64> {
        self.log
            .iter()
            .filter(|r| r.record_type == RecordType::Event && r.intent == Intent::ElementActivating)
            .filter_map(|r| match &r.value {
                RecordValue::ProcessInstance(v)
                    if v.bpmn_element_type == BpmnElementType::Process
                        && &*v.bpmn_process_id == process_id =>
                {
                    Some(r.key)
                }
                _ => None,
            })
            .collect()
    }

    pub fn deploy(&mut self, name: &str, xml: &str) -> Result<ResponseValue, Rejection> {
        self.deploy_bytes(name, xml.as_bytes().to_vec())
    }

    pub fn deploy_bytes(
        &mut self,
        name: &str,
        content: Vec<u8>,
    ) -> Result<ResponseValue, Rejection> {
        self.request(Record::command(
            NO_KEY,
            Intent::Create,
            RecordValue::Deployment(DeploymentRecord {
                resources: vec![DeploymentResource {
                    name: name.into(),
                    content,
                }],
                processes: vec![],
                decision_requirements: Vec::new(),
                decisions: Vec::new(),
                forms: Vec::new(),
            }),
            None,
        ))
    }

    pub fn create(&mut self, process_id: &str, variables: &str) -> i64 {
        match self.request(create_command(process_id, -1, variables, false)) {
            Ok(ResponseValue::ProcessInstanceCreated {
                process_instance_key,
                ..
            }) => process_instance_key,
            other => panic!("create {process_id}: {other:?}"),
        }
    }

    pub fn activate(&mut self, job_type: &str, max: i32) -> Vec<ActivatedJob> {
        self.activate_fetch(job_type, max, vec![])
    }

    pub fn activate_fetch(
        &mut self,
        job_type: &str,
        max: i32,
        fetch: Vec<String>,
    ) -> Vec<ActivatedJob> {
        match self.request(Record::command(
            NO_KEY,
            Intent::Activate,
            RecordValue::JobBatch(JobBatchRecord {
                job_type: job_type.into(),
                worker: "test-worker".into(),
                timeout_ms: 30_000,
                max_jobs_to_activate: max,
                fetch_variables: fetch,
                job_keys: vec![],
                jobs: vec![],
                truncated: false,
            }),
            None,
        )) {
            Ok(ResponseValue::JobBatch { jobs, .. }) => jobs,
            other => panic!("activate {job_type}: {other:?}"),
        }
    }

    pub fn job(
        &mut self,
        intent: Intent,
        key: i64,
        f: impl FnOnce(&mut JobRecord),
    ) -> Result<ResponseValue, Rejection> {
        let mut value = JobRecord::empty();
        f(&mut value);
        self.request(Record::command(
            key,
            intent,
            RecordValue::Job(Box::new(value)),
            None,
        ))
    }

    pub fn complete(&mut self, key: i64, variables: &str) -> Result<ResponseValue, Rejection> {
        self.job(Intent::Complete, key, |j| j.variables = variables.into())
    }

    pub fn resolve(&mut self, incident_key: i64) -> Result<ResponseValue, Rejection> {
        self.request(Record::command(
            incident_key,
            Intent::Resolve,
            RecordValue::Incident(IncidentRecord {
                error_type: ErrorType::JobNoRetries,
                error_message: String::new(),
                bpmn_process_id: "".into(),
                process_definition_key: NO_KEY,
                process_instance_key: NO_KEY,
                element_id: "".into(),
                element_instance_key: NO_KEY,
                job_key: NO_KEY,
                variable_scope_key: NO_KEY,
            }),
            None,
        ))
    }

    pub fn set_variables(
        &mut self,
        scope: i64,
        variables: &str,
        local: bool,
    ) -> Result<ResponseValue, Rejection> {
        self.request(Record::command(
            scope,
            Intent::Update,
            RecordValue::VariableDocument(VariableDocumentRecord {
                scope_key: scope,
                local,
                variables: variables.into(),
            }),
            None,
        ))
    }

    pub fn cancel(&mut self, pi_key: i64) -> Result<ResponseValue, Rejection> {
        self.request(cancel_command(pi_key))
    }

    /// Events of element `element_id` of instance `pi`, as intent names.
    pub fn element_intents(&self, pi: i64, element_id: &str) -> Vec<&'static str> {
        self.log
            .iter()
            .filter(|r| r.record_type == RecordType::Event)
            .filter_map(|r| match &r.value {
                RecordValue::ProcessInstance(v)
                    if v.process_instance_key == pi && &*v.element_id == element_id =>
                {
                    Some(r.intent.name())
                }
                _ => None,
            })
            .collect()
    }

    pub fn is_completed(&self, pi: i64) -> bool {
        self.log.iter().any(|r| {
            r.key == pi
                && r.intent == Intent::ElementCompleted
                && r.record_type == RecordType::Event
        })
    }

    pub fn is_terminated(&self, pi: i64) -> bool {
        self.log.iter().any(|r| {
            r.key == pi
                && r.intent == Intent::ElementTerminated
                && r.record_type == RecordType::Event
        })
    }

    pub fn incidents(&self) -> Vec<(i64, IncidentRecord)> {
        self.engine
            .state()
            .incidents
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Value of a root variable of instance `pi`.
    pub fn variable(&self, scope: i64, name: &str) -> Option<String> {
        self.engine
            .state()
            .variables
            .get(scope, name)
            .map(|v| v.value.to_string())
    }

    /// Completes every activatable job (any type) until none are left or
    /// `max_rounds` is reached.
    pub fn auto_complete(&mut self, max_rounds: usize) {
        for _ in 0..max_rounds {
            let types: Vec<String> = self
                .engine
                .state()
                .activatable
                .keys()
                .map(|k| k.to_string())
                .collect();
            if types.is_empty() {
                return;
            }
            for t in types {
                for job in self.activate(&t, 100) {
                    self.complete(job.key, "{}").expect("auto-complete");
                }
            }
        }
    }
}

pub fn message_command(
    name: &str,
    correlation_key: &str,
    ttl_ms: i64,
    message_id: &str,
    variables: &str,
) -> Record {
    Record::command(
        NO_KEY,
        Intent::Publish,
        RecordValue::Message(MessageRecord {
            name: name.into(),
            correlation_key: correlation_key.into(),
            time_to_live_ms: ttl_ms,
            message_id: message_id.into(),
            variables: variables.into(),
            deadline_ms: NO_KEY,
        }),
        None,
    )
}

/// Several partitions, each a harness, with the commands between them
/// delivered in order until none are left.
pub struct Cluster {
    pub partitions: Vec<Harness>,
}

impl Cluster {
    pub fn new(count: u32) -> Self {
        Self {
            partitions: (1..=count)
                .map(|p| Harness::with_engine(Engine::new(p, count)))
                .collect(),
        }
    }

    pub fn partition(&mut self, id: u32) -> &mut Harness {
        &mut self.partitions[id as usize - 1]
    }

    /// Delivers every pending inter-partition command (and what it causes).
    pub fn deliver(&mut self) {
        for _ in 0..1000 {
            let mut pending = Vec::new();
            for h in &mut self.partitions {
                pending.append(&mut h.distributions);
            }
            if pending.is_empty() {
                return;
            }
            for (target, mut cmd) in pending {
                let h = self.partition(target);
                cmd.timestamp_ms = h.now_ms;
                h.submit_as_is(cmd);
            }
        }
        panic!("inter-partition commands did not settle");
    }

    pub fn deploy(&mut self, name: &str, xml: &str) {
        self.partition(1).deploy(name, xml).expect("deployment");
        self.deliver();
    }

    pub fn publish(
        &mut self,
        name: &str,
        correlation_key: &str,
        ttl_ms: i64,
        variables: &str,
    ) -> u32 {
        let p = message_partition(correlation_key, self.partitions.len() as u32);
        self.partition(p)
            .publish(name, correlation_key, ttl_ms, "", variables)
            .expect("publish");
        self.deliver();
        p
    }

    pub fn advance(&mut self, ms: i64) {
        for h in &mut self.partitions {
            h.advance(ms);
        }
        self.deliver();
    }
}

/// CancelProcessInstance for instance `pi_key`.
pub fn cancel_command(pi_key: i64) -> Record {
    let mut value = pi_stub();
    value.process_instance_key = pi_key;
    Record::command(
        pi_key,
        Intent::Cancel,
        RecordValue::ProcessInstance(value),
        None,
    )
}

pub fn pi_stub() -> ProcessInstanceRecord {
    ProcessInstanceRecord {
        bpmn_process_id: "".into(),
        version: -1,
        process_definition_key: NO_KEY,
        process_instance_key: NO_KEY,
        element_id: "".into(),
        flow_scope_key: NO_KEY,
        bpmn_element_type: BpmnElementType::Process,
        bpmn_event_type: BpmnEventType::None,
        parent_process_instance_key: NO_KEY,
        parent_element_instance_key: NO_KEY,
    }
}

pub fn create_command(
    process_id: &str,
    version: i32,
    variables: &str,
    await_result: bool,
) -> Record {
    Record::command(
        NO_KEY,
        if await_result {
            Intent::CreateWithAwaitingResult
        } else {
            Intent::Create
        },
        RecordValue::ProcessInstanceCreation(ProcessInstanceCreationRecord {
            bpmn_process_id: process_id.into(),
            version,
            process_definition_key: NO_KEY,
            process_instance_key: NO_KEY,
            variables: variables.into(),
            fetch_variables: vec![],
            await_result,
            start_instructions: vec![],
        }),
        None,
    )
}

/// Deploys `(name, text)` resources in one deployment.
pub fn deploy_all(h: &mut Harness, resources: &[(&str, &str)]) -> Result<ResponseValue, Rejection> {
    h.request(Record::command(
        NO_KEY,
        Intent::Create,
        RecordValue::Deployment(DeploymentRecord {
            resources: resources
                .iter()
                .map(|(name, text)| DeploymentResource {
                    name: name.to_string(),
                    content: text.as_bytes().to_vec(),
                })
                .collect(),
            processes: vec![],
            decision_requirements: vec![],
            decisions: vec![],
            forms: vec![],
        }),
        None,
    ))
}

/// Wraps process body XML into a definitions document.
pub fn bpmn(process_id: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs">
<bpmn:process id="{process_id}" isExecutable="true">{body}</bpmn:process></bpmn:definitions>"#
    )
}

pub fn service_task(id: &str, job_type: &str, extra: &str) -> String {
    format!(
        r#"<bpmn:serviceTask id="{id}"><bpmn:extensionElements><zeebe:taskDefinition type="{job_type}"/>{extra}</bpmn:extensionElements></bpmn:serviceTask>"#
    )
}

pub fn flow(id: &str, from: &str, to: &str) -> String {
    format!(r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"/>"#)
}

pub fn cond_flow(id: &str, from: &str, to: &str, condition: &str) -> String {
    format!(
        r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"><bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"#
    )
}

/// start → service task (type `work`) → end.
pub fn one_task(process_id: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", ""),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    )
}

/// Deploys and returns the process definition key.
pub fn deploy_key(h: &mut Harness, name: &str, xml: &str) -> i64 {
    match h.deploy(name, xml) {
        Ok(ResponseValue::Deployment { processes, .. }) => processes[0].process_definition_key,
        other => panic!("deploy {name}: {other:?}"),
    }
}

/// Shared by the migration and modification tests.
pub fn mapping(pairs: &[(&str, &str)]) -> Vec<MappingInstruction> {
    pairs
        .iter()
        .map(|(s, t)| MappingInstruction {
            source_element_id: s.to_string(),
            target_element_id: t.to_string(),
        })
        .collect()
}

/// Shared by the migration and modification tests.
pub fn migrate(
    h: &mut Harness,
    pi: i64,
    target: i64,
    pairs: &[(&str, &str)],
) -> Result<ResponseValue, Rejection> {
    h.request(Record::command(
        pi,
        Intent::Migrate,
        RecordValue::ProcessInstanceMigration(ProcessInstanceMigrationRecord {
            process_instance_key: pi,
            target_process_definition_key: target,
            mapping_instructions: mapping(pairs),
        }),
        None,
    ))
}

/// Shared by the migration and modification tests.
pub fn assert_replay_matches(h: &Harness) {
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert!(follower.snapshot() == h.engine.snapshot(), "replayed state");
}

/// The key of the active instance of `element_id` in instance `pi`.
pub fn element_key(h: &Harness, pi: i64, element_id: &str) -> i64 {
    let state = h.engine.state();
    *state
        .instances
        .iter()
        .find(|(_, i)| {
            i.process_instance_key == pi
                && state
                    .process(i.process_definition_key)
                    .is_some_and(|p| &*p.model.element(i.element).id == element_id)
        })
        .map(|(k, _)| k)
        .unwrap_or_else(|| panic!("no active instance of {element_id}"))
}

/// The message `paid`, correlated by `=orderId`.
pub const ORDER_MESSAGE: &str = r#"<bpmn:message id="m" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>"#;

pub fn with_message(process_id: &str, body: &str) -> String {
    bpmn(process_id, body).replace(
        "</bpmn:definitions>",
        &format!("{ORDER_MESSAGE}</bpmn:definitions>"),
    )
}

/// start → message catch `paid` (key `=orderId`) → end, as process `order`.
pub fn catch_process() -> String {
    with_message(
        "order",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m"/></bpmn:intermediateCatchEvent><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "wait"),
            flow("f2", "wait", "e")
        ),
    )
}

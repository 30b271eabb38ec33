//! The executable form of a BPMN process, built once per deployment.
//!
//! ```text
//! Process
//!   elements: Vec<Element>   index 0 is the process itself; every other element
//!                            names its flow scope (the process or a sub-process)
//!   flows:    Vec<SequenceFlow>  source/target are element indexes
//! ```
//!
//! Elements and flows refer to each other by `u32` index, so instance state
//! stores an index instead of an id and the engine never searches the model on
//! the hot path. Expressions are compiled at deployment.

use crate::expression::Expression;
use crate::record::{BpmnElementType, BpmnEventType};
use crate::timer::TimerKind;
use std::collections::HashMap;
use std::sync::Arc;

/// Job type of job-based user tasks (Zeebe's `Protocol.USER_TASK_JOB_TYPE`).
pub const USER_TASK_JOB_TYPE: &str = "io.camunda.zeebe:userTask";
/// Retries of a job when the model does not say.
pub const DEFAULT_JOB_RETRIES: &str = "3";

/// One input or output mapping.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// Expression producing the value.
    pub source: Expression,
    /// Variable name, or a dotted path into a context (`order.total`).
    pub target: String,
}

/// How a job-worker task creates its job.
#[derive(Clone, Debug)]
pub struct JobDefinition {
    /// `zeebe:taskDefinition type`.
    pub job_type: Expression,
    /// `zeebe:taskDefinition retries`.
    pub retries: Expression,
    /// Static custom headers as a JSON object.
    pub custom_headers: Arc<str>,
    /// Headers whose values are FEEL expressions (user task assignment).
    pub dynamic_headers: Vec<(String, Expression)>,
}

/// A Camunda user task's attributes (`zeebe:assignmentDefinition`,
/// `zeebe:taskSchedule`, `zeebe:priorityDefinition`, `zeebe:formDefinition`,
/// `zeebe:taskHeaders`), each static or FEEL, evaluated when it is activated.
#[derive(Clone, Debug, Default)]
pub struct UserTaskDefinition {
    /// `assignee`.
    pub assignee: Option<Expression>,
    /// `candidateGroups`: a list, or comma-separated text.
    pub candidate_groups: Option<Expression>,
    /// `candidateUsers`: a list, or comma-separated text.
    pub candidate_users: Option<Expression>,
    /// `dueDate`: an ISO 8601 date-time.
    pub due_date: Option<Expression>,
    /// `followUpDate`: an ISO 8601 date-time.
    pub follow_up_date: Option<Expression>,
    /// `priority`: 0 to 100 (50 when absent).
    pub priority: Option<Expression>,
    /// `formId` of a linked form, resolved to a form key at activation.
    pub form_id: Option<Arc<str>>,
    /// `bindingType` (and `versionTag`) of the linked form.
    pub form_binding: DecisionBinding,
    /// `formKey` or `externalReference`.
    pub external_form_reference: Option<Expression>,
    /// Custom headers as a JSON object.
    pub custom_headers: Arc<str>,
}

/// `zeebe:script`.
#[derive(Clone, Debug)]
pub struct ScriptDefinition {
    /// The FEEL expression.
    pub expression: Expression,
    /// Variable that receives the result.
    pub result_variable: String,
}

/// A timer event definition.
#[derive(Clone, Debug)]
pub struct TimerDefinition {
    /// `timeDate`, `timeDuration` or `timeCycle`.
    pub kind: TimerKind,
    /// The text or FEEL expression.
    pub expression: Expression,
}

/// The event definition of an event (or receive task).
#[derive(Clone, Debug)]
pub enum EventDefinition {
    /// Timer.
    Timer(TimerDefinition),
    /// Message with its name and correlation key (the key is absent on start events).
    Message {
        /// Message name.
        name: Expression,
        /// `zeebe:subscription correlationKey`.
        correlation_key: Option<Expression>,
    },
    /// Signal with its name.
    Signal {
        /// Signal name.
        name: Expression,
    },
    /// Error with its code; `None` catches every error.
    Error {
        /// Error code.
        code: Option<Arc<str>>,
    },
    /// Escalation with its code; `None` catches every escalation.
    Escalation {
        /// Escalation code.
        code: Option<Arc<str>>,
    },
    /// Link: a throw event continues at the catch event of the same name in
    /// its scope.
    Link {
        /// Link name.
        name: Arc<str>,
    },
    /// Compensation: a boundary event naming a handler, or a throw event
    /// compensating one activity (`activityRef`) or all of its scope.
    Compensation {
        /// `activityRef` of a throw event.
        activity: Option<Arc<str>>,
    },
}

impl EventDefinition {
    /// Timer, message and signal events need a subscription while their
    /// scope is active; errors and escalations are looked up when thrown.
    pub fn needs_subscription(&self) -> bool {
        matches!(
            self,
            EventDefinition::Timer(_)
                | EventDefinition::Message { .. }
                | EventDefinition::Signal { .. }
        )
    }
}

/// `zeebe:calledElement`.
#[derive(Clone, Debug)]
pub struct CallDefinition {
    /// Process id of the called process (static or FEEL).
    pub process_id: Expression,
    /// Copy every variable of the child to the call activity on completion.
    pub propagate_all_child_variables: bool,
    /// Give the child every variable visible from the call activity.
    pub propagate_all_parent_variables: bool,
    /// Which version of the called process (`bindingType`, `versionTag`).
    pub binding: DecisionBinding,
}

/// Which version of a called decision a business rule task evaluates
/// (`zeebe:calledDecision bindingType`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DecisionBinding {
    /// `latest` (the default): the latest deployed version.
    #[default]
    Latest,
    /// `deployment`: the version deployed together with the process.
    Deployment,
    /// `versionTag`: the latest version with this `versionTag`.
    VersionTag(String),
}

/// `zeebe:calledDecision` of a business rule task.
#[derive(Clone, Debug)]
pub struct CalledDecision {
    /// Decision id (static or FEEL).
    pub decision_id: Expression,
    /// Variable that receives the decision output.
    pub result_variable: String,
    /// Which version to evaluate.
    pub binding: DecisionBinding,
}

/// `zeebe:loopCharacteristics` of a multi-instance activity.
#[derive(Clone, Debug)]
pub struct MultiInstanceDefinition {
    /// The activity that runs once per element (its own element index).
    pub inner: u32,
    /// One after the other (`isSequential="true"`) or all at once.
    pub sequential: bool,
    /// FEEL expression giving the list.
    pub input_collection: Expression,
    /// Variable holding the item in each inner instance.
    pub input_element: Option<String>,
    /// Variable collecting the results.
    pub output_collection: Option<String>,
    /// FEEL expression giving each result.
    pub output_element: Option<Expression>,
    /// FEEL condition checked after each inner instance completes.
    pub completion_condition: Option<Expression>,
}

/// What an element does when it is activated.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// Start, end, throw events, undefined and manual tasks: pass through.
    PassThrough,
    /// Terminate end event.
    Terminate,
    /// Creates a job and waits for it.
    Job(JobDefinition),
    /// Evaluates a FEEL script.
    Script(ScriptDefinition),
    /// Business rule task: evaluates a deployed DMN decision.
    Decision(CalledDecision),
    /// Exclusive gateway.
    Exclusive,
    /// Parallel gateway.
    Parallel,
    /// Inclusive gateway.
    Inclusive,
    /// Process or embedded sub-process: activates its none start event.
    Container,
    /// Intermediate catch event or receive task: waits for its event.
    Catch,
    /// Event-based gateway: waits for the first of the events after it.
    EventGateway,
    /// Error end event: throws the error.
    ThrowError(Arc<str>),
    /// Escalation throw or end event.
    ThrowEscalation(Arc<str>),
    /// Signal throw or end event: broadcasts the signal.
    ThrowSignal(Expression),
    /// Call activity: starts a child process instance and waits for it.
    CallActivity(CallDefinition),
    /// Multi-instance body: runs its inner activity once per item.
    MultiInstance(MultiInstanceDefinition),
    /// Link throw event: continues at the link catch event (element index).
    ThrowLink(u32),
    /// Compensation throw or end event: runs the handlers of the completed
    /// activities of its scope (or of the one named) and waits for them.
    ThrowCompensation(Option<Arc<str>>),
    /// Camunda user task (`zeebe:userTask`): creates a user task and waits for it.
    UserTask(Box<UserTaskDefinition>),
    /// Message throw or end event, or send task, with `zeebe:publishMessage`:
    /// publishes the message itself.
    PublishMessage(Box<crate::publish::PublishMessageDefinition>),
    /// Ad-hoc sub-process (`zeebe:adHoc`): activates the elements named on
    /// entry or by activation commands.
    AdHoc(Box<crate::adhoc::AdHocDefinition>),
}

/// One flow node of a process (or the process itself at index 0).
#[derive(Clone, Debug)]
pub struct Element {
    /// Element id.
    pub id: Arc<str>,
    /// Type written in records.
    pub element_type: BpmnElementType,
    /// Event type written in records.
    pub event_type: BpmnEventType,
    /// What it does.
    pub behavior: Behavior,
    /// Enclosing process or sub-process (`None` for the process).
    pub flow_scope: Option<u32>,
    /// Incoming sequence flows.
    pub incoming: Vec<u32>,
    /// Outgoing sequence flows.
    pub outgoing: Vec<u32>,
    /// Default flow of a gateway.
    pub default_flow: Option<u32>,
    /// None start event of a container.
    pub start_event: Option<u32>,
    /// Input mappings (create local variables).
    pub inputs: Vec<Mapping>,
    /// Output mappings (restrict what is propagated).
    pub outputs: Vec<Mapping>,
    /// For an inclusive joining gateway: the elements of its scope from which
    /// it can be reached (sorted), to decide whether to wait for more tokens.
    pub reachable_from: Vec<u32>,
    /// Event definition of an event, receive task or event sub-process start.
    pub event: Option<EventDefinition>,
    /// Boundary event: the activity it is attached to.
    pub attached_to: Option<u32>,
    /// Boundary event or event sub-process start event that cancels its scope.
    pub interrupting: bool,
    /// Boundary events attached to this activity.
    pub boundary_events: Vec<u32>,
    /// Event sub-processes of this container.
    pub event_subprocesses: Vec<u32>,
    /// Catch elements (timer, message, signal) whose subscriptions an
    /// instance of this element opens while it is active.
    pub subscriptions: Vec<u32>,
    /// Process: its message, timer and signal start events.
    pub event_starts: Vec<u32>,
    /// Activity with a compensation boundary event: its handler.
    pub compensation_handler: Option<u32>,
    /// A compensation handler (`isForCompensation="true"`).
    pub for_compensation: bool,
    /// Execution and task listeners (`zeebe:executionListeners`,
    /// `zeebe:taskListeners`).
    pub listeners: Option<Arc<crate::listeners::Listeners>>,
}

impl Element {
    /// True for gateways that wait for several incoming flows.
    pub fn is_join(&self) -> bool {
        self.incoming.len() > 1 && matches!(self.behavior, Behavior::Parallel | Behavior::Inclusive)
    }
}

/// A sequence flow.
#[derive(Clone, Debug)]
pub struct SequenceFlow {
    /// Flow id.
    pub id: Arc<str>,
    /// Source element index.
    pub source: u32,
    /// Target element index.
    pub target: u32,
    /// Condition (only on flows leaving exclusive and inclusive gateways).
    pub condition: Option<Expression>,
}

/// An executable process.
#[derive(Clone, Debug)]
pub struct Process {
    /// BPMN process id.
    pub bpmn_process_id: Arc<str>,
    /// `zeebe:versionTag value` of the process, if any.
    pub version_tag: Option<Arc<str>>,
    /// Flow nodes; index 0 is the process.
    pub elements: Vec<Element>,
    /// Sequence flows.
    pub flows: Vec<SequenceFlow>,
    /// Element index by id (lookups only; never iterated).
    pub element_index: HashMap<Arc<str>, u32, FnvBuild>,
    /// Flow index by id (lookups only; never iterated).
    pub flow_index: HashMap<Arc<str>, u32, FnvBuild>,
}

/// FNV-1a: element ids are short and come from the model, not from an
/// adversary, so a fast hash beats SipHash on every applied record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Builds `Fnv` hashers.
pub type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

impl Process {
    /// The element at `index` (an index taken from this model).
    pub fn element(&self, index: u32) -> &Element {
        &self.elements[index as usize]
    }

    /// The flow at `index` (an index taken from this model).
    pub fn flow(&self, index: u32) -> &SequenceFlow {
        &self.flows[index as usize]
    }

    /// Index of a sequence flow by id.
    pub fn flow_index_of(&self, id: &str) -> Option<u32> {
        self.flow_index.get(id).copied()
    }

    /// Index of an element by id (the multi-instance body for a
    /// multi-instance activity).
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.element_index.get(id).copied()
    }

    /// Index of the element an instance record names: the inner activity of
    /// a multi-instance body shares the body's id.
    pub fn instance_element(&self, id: &str, element_type: BpmnElementType) -> Option<u32> {
        let index = self.index_of(id)?;
        match &self.element(index).behavior {
            Behavior::MultiInstance(mi) if element_type != BpmnElementType::MultiInstanceBody => {
                Some(mi.inner)
            }
            _ => Some(index),
        }
    }
}

/// Headers of a job-based user task that carry a list of names.
const CANDIDATE_LIST_HEADERS: [&str; 2] = [
    "io.camunda.zeebe:candidateGroups",
    "io.camunda.zeebe:candidateUsers",
];

/// True for the job-based user task headers that hold a list.
pub(crate) fn is_candidate_list_header(name: &str) -> bool {
    CANDIDATE_LIST_HEADERS.contains(&name)
}

/// A candidate groups or users header as Zeebe writes it: the JSON text of
/// a list of names, from a list or from comma-separated text (`"a, b"`).
pub(crate) fn candidate_list_header(value: &serde_json::Value) -> String {
    let names: Vec<serde_json::Value> = match value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(s) => serde_json::Value::from(s.trim()),
                other => serde_json::Value::from(other.to_string()),
            })
            .collect(),
        serde_json::Value::String(text) => text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(serde_json::Value::from)
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![serde_json::Value::from(other.to_string())],
    };
    serde_json::Value::Array(names).to_string()
}

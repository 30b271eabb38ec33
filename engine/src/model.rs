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

/// `zeebe:script`.
#[derive(Clone, Debug)]
pub struct ScriptDefinition {
    /// The FEEL expression.
    pub expression: Expression,
    /// Variable that receives the result.
    pub result_variable: String,
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
    /// Exclusive gateway.
    Exclusive,
    /// Parallel gateway.
    Parallel,
    /// Inclusive gateway.
    Inclusive,
    /// Process or embedded sub-process: activates its none start event.
    Container,
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
    /// Flow nodes; index 0 is the process.
    pub elements: Vec<Element>,
    /// Sequence flows.
    pub flows: Vec<SequenceFlow>,
    /// Element index by id (lookups only; never iterated).
    pub element_index: HashMap<Arc<str>, u32>,
    /// Flow index by id (lookups only; never iterated).
    pub flow_index: HashMap<Arc<str>, u32>,
}

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

    /// Index of an element by id.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.element_index.get(id).copied()
    }
}

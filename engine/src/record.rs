//! Records: the unit of the partition log, modelled on Zeebe's.
//!
//! ```text
//! Record { position, key, record_type, value_type, intent, timestamp_ms,
//!          source_record_position, rejection (type, reason), request_id, value }
//! ```
//!
//! Commands are what clients (or the engine itself) ask for; events are the
//! facts the engine derived from a command and that the appliers fold into the
//! state; rejections answer a command that could not be processed. Names of
//! value types and intents follow Zeebe (`ELEMENT_ACTIVATING`, `JOB_BATCH`, ...).
//! Strings that are repeated in many records of one process (process id,
//! element id, job type, custom headers) are `Arc<str>` shared with the model,
//! so building a record does not copy them.

pub use crate::decision_record::*;
pub use crate::tenancy::Tenant;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Key value of "no key" (Zeebe's `-1`).
pub const NO_KEY: i64 = -1;

/// Command, event or rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordType {
    /// A request to change the state.
    Command,
    /// A fact derived from a command; applied to the state.
    Event,
    /// A command that was refused.
    CommandRejection,
}

/// The kind of value a record carries (Zeebe's `ValueType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ValueType {
    /// `JOB`
    Job,
    /// `DEPLOYMENT`
    Deployment,
    /// `PROCESS_INSTANCE`
    ProcessInstance,
    /// `INCIDENT`
    Incident,
    /// `JOB_BATCH`
    JobBatch,
    /// `VARIABLE`
    Variable,
    /// `VARIABLE_DOCUMENT`
    VariableDocument,
    /// `PROCESS_INSTANCE_CREATION`
    ProcessInstanceCreation,
    /// `PROCESS`
    Process,
    /// `TIMER`
    Timer,
    /// `MESSAGE`
    Message,
    /// `MESSAGE_SUBSCRIPTION` (on the message's partition)
    MessageSubscription,
    /// `PROCESS_MESSAGE_SUBSCRIPTION` (on the process instance's partition)
    ProcessMessageSubscription,
    /// `PROCESS_EVENT`: an event trigger stored for a scope
    ProcessEvent,
    /// `SIGNAL`
    Signal,
    /// `SIGNAL_SUBSCRIPTION`
    SignalSubscription,
    /// `COMPENSATION_SUBSCRIPTION`
    CompensationSubscription,
    /// `RESOURCE_DELETION`
    ResourceDeletion,
    /// `COMMAND_DISTRIBUTION`: a command sent to every other partition until
    /// each acknowledged it
    CommandDistribution,
    /// `USER_TASK`: a Camunda user task (`zeebe:userTask`)
    UserTask,
    /// `DECISION_REQUIREMENTS`: a deployed DRG
    DecisionRequirements,
    /// `DECISION`: a deployed decision
    Decision,
    /// `DECISION_EVALUATION`
    DecisionEvaluation,
    /// `AD_HOC_SUB_PROCESS_INSTRUCTION`: activate elements of an ad-hoc sub-process
    AdHocSubProcessInstruction,
    /// `PROCESS_INSTANCE_MODIFICATION`: terminate and activate elements of a
    /// running instance
    ProcessInstanceModification,
    /// `PROCESS_INSTANCE_MIGRATION`: move a running instance to another
    /// process definition
    ProcessInstanceMigration,
    /// `FORM`: a deployed Camunda Form
    Form,
    /// `USER`: a user of basic authentication
    User,
    /// `ROLE`: a role and its members
    Role,
    /// `AUTHORIZATION`: permissions granted to an owner
    Authorization,
    /// `GROUP`: a group and its members
    Group,
    /// `TENANT`: a tenant and its members
    Tenant,
    /// `MAPPING_RULE`: token claims that make a caller a member
    MappingRule,
    /// `SCALE`: partitions added at run time
    Scale,
}

impl ValueType {
    /// Whether records of this type are about data of a tenant, whose
    /// commands a caller of other tenants may not give. Users, roles,
    /// groups, tenants, mapping rules and authorizations belong to no
    /// tenant; a job batch is filtered by tenant instead.
    pub fn is_tenant_owned(self) -> bool {
        !matches!(
            self,
            ValueType::JobBatch
                | ValueType::User
                | ValueType::Role
                | ValueType::Group
                | ValueType::Tenant
                | ValueType::MappingRule
                | ValueType::Authorization
                | ValueType::Scale
        )
    }

    /// Zeebe's name of the value type.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Job => "JOB",
            ValueType::Deployment => "DEPLOYMENT",
            ValueType::ProcessInstance => "PROCESS_INSTANCE",
            ValueType::Incident => "INCIDENT",
            ValueType::JobBatch => "JOB_BATCH",
            ValueType::Variable => "VARIABLE",
            ValueType::VariableDocument => "VARIABLE_DOCUMENT",
            ValueType::ProcessInstanceCreation => "PROCESS_INSTANCE_CREATION",
            ValueType::Process => "PROCESS",
            ValueType::Timer => "TIMER",
            ValueType::Message => "MESSAGE",
            ValueType::MessageSubscription => "MESSAGE_SUBSCRIPTION",
            ValueType::ProcessMessageSubscription => "PROCESS_MESSAGE_SUBSCRIPTION",
            ValueType::ProcessEvent => "PROCESS_EVENT",
            ValueType::Signal => "SIGNAL",
            ValueType::SignalSubscription => "SIGNAL_SUBSCRIPTION",
            ValueType::CompensationSubscription => "COMPENSATION_SUBSCRIPTION",
            ValueType::ResourceDeletion => "RESOURCE_DELETION",
            ValueType::CommandDistribution => "COMMAND_DISTRIBUTION",
            ValueType::UserTask => "USER_TASK",
            ValueType::DecisionRequirements => "DECISION_REQUIREMENTS",
            ValueType::Decision => "DECISION",
            ValueType::DecisionEvaluation => "DECISION_EVALUATION",
            ValueType::AdHocSubProcessInstruction => "AD_HOC_SUB_PROCESS_INSTRUCTION",
            ValueType::ProcessInstanceModification => "PROCESS_INSTANCE_MODIFICATION",
            ValueType::ProcessInstanceMigration => "PROCESS_INSTANCE_MIGRATION",
            ValueType::Form => "FORM",
            ValueType::User => "USER",
            ValueType::Role => "ROLE",
            ValueType::Authorization => "AUTHORIZATION",
            ValueType::Group => "GROUP",
            ValueType::Tenant => "TENANT",
            ValueType::MappingRule => "MAPPING_RULE",
            ValueType::Scale => "SCALE",
        }
    }
}

/// What a record asks for (commands, imperative) or states (events, past
/// tense). One enum for all value types; which intents go with which value
/// type is as in Zeebe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Intent {
    /// `CREATE` (deployment, process instance creation)
    Create,
    /// `CREATE_WITH_AWAITING_RESULT` (process instance creation)
    CreateWithAwaitingResult,
    /// `CREATED`
    Created,
    /// `DISTRIBUTE`: a deployment sent from partition 1 to another partition
    Distribute,
    /// `DISTRIBUTED`
    Distributed,
    /// `CANCEL` (process instance)
    Cancel,
    /// `CANCELED` (job)
    Canceled,
    /// `ACTIVATE_ELEMENT`
    ActivateElement,
    /// `COMPLETE_ELEMENT`
    CompleteElement,
    /// `TERMINATE_ELEMENT`
    TerminateElement,
    /// `ELEMENT_ACTIVATING`
    ElementActivating,
    /// `ELEMENT_ACTIVATED`
    ElementActivated,
    /// `ELEMENT_COMPLETING`
    ElementCompleting,
    /// `ELEMENT_COMPLETED`
    ElementCompleted,
    /// `ELEMENT_TERMINATING`
    ElementTerminating,
    /// `ELEMENT_TERMINATED`
    ElementTerminated,
    /// `SEQUENCE_FLOW_TAKEN`
    SequenceFlowTaken,
    /// `COMPLETE` (job)
    Complete,
    /// `COMPLETED` (job)
    Completed,
    /// `TIME_OUT`
    TimeOut,
    /// `TIMED_OUT`
    TimedOut,
    /// `FAIL`
    Fail,
    /// `FAILED`
    Failed,
    /// `UPDATE_RETRIES`
    UpdateRetries,
    /// `RETRIES_UPDATED`
    RetriesUpdated,
    /// `UPDATE_TIMEOUT`
    UpdateTimeout,
    /// `TIMEOUT_UPDATED`
    TimeoutUpdated,
    /// `THROW_ERROR`
    ThrowError,
    /// `ERROR_THROWN`
    ErrorThrown,
    /// `RECUR_AFTER_BACKOFF`
    RecurAfterBackoff,
    /// `RECURRED_AFTER_BACKOFF`
    RecurredAfterBackoff,
    /// `YIELD`: a pushed job could not be delivered
    Yield,
    /// `YIELDED`
    Yielded,
    /// `ACTIVATE` (job batch)
    Activate,
    /// `ACTIVATED` (job batch)
    Activated,
    /// `RESOLVE` (incident)
    Resolve,
    /// `RESOLVED` (incident)
    Resolved,
    /// `UPDATE` (variable document)
    Update,
    /// `UPDATED` (variable, variable document)
    Updated,
    /// `TRIGGER`: timer, due
    Trigger,
    /// `TRIGGERED`
    Triggered,
    /// `TRIGGERING`: process event
    Triggering,
    /// `PUBLISH`: message
    Publish,
    /// `PUBLISHED`
    Published,
    /// `EXPIRE`: message, TTL ran out
    Expire,
    /// `EXPIRED`
    Expired,
    /// `CREATING`: process message subscription
    Creating,
    /// `CORRELATE`
    Correlate,
    /// `CORRELATING`
    Correlating,
    /// `CORRELATED`
    Correlated,
    /// `REJECT`: message subscription: the instance refused the message
    Reject,
    /// `REJECTED`
    Rejected,
    /// `DELETE`: message subscription; resource deletion
    Delete,
    /// `DELETING`: process message subscription; resource deletion; process
    Deleting,
    /// `DELETED`
    Deleted,
    /// `BROADCAST`: signal
    Broadcast,
    /// `BROADCASTED`
    Broadcasted,
    /// `STARTED`: command distribution, the command to distribute stored
    Started,
    /// `DISTRIBUTING`: command distribution, to one partition
    Distributing,
    /// `ACKNOWLEDGE`: command distribution, a partition applied the command
    Acknowledge,
    /// `ACKNOWLEDGED`
    Acknowledged,
    /// `FINISHED`: command distribution, every partition acknowledged
    Finished,
    /// `ASSIGN`: user task, set or clear the assignee
    Assign,
    /// `ASSIGNING`
    Assigning,
    /// `ASSIGNED`
    Assigned,
    /// `CLAIM`: user task, assign unless someone else is assigned
    Claim,
    /// `UPDATING`: user task
    Updating,
    /// `COMPLETING`: user task
    Completing,
    /// `CANCELING`: user task, its element is terminated
    Canceling,
    /// `EVALUATE`: decision evaluation (EvaluateDecision)
    Evaluate,
    /// `EVALUATED`: decision evaluation
    Evaluated,
    /// `MODIFY`: process instance modification
    Modify,
    /// `MODIFIED`
    Modified,
    /// `MIGRATE`: process instance migration
    Migrate,
    /// `MIGRATED`
    Migrated,
    /// `ELEMENT_MIGRATED`: an element instance moved to another process
    /// definition
    ElementMigrated,
    /// `ASSIGNMENT_DENIED`: user task, a task listener denied the assignment
    AssignmentDenied,
    /// `UPDATE_DENIED`: user task, a task listener denied the update
    UpdateDenied,
    /// `COMPLETION_DENIED`: user task, a task listener denied the completion
    CompletionDenied,
    /// `ADD_ENTITY`: role, add a member
    AddEntity,
    /// `ENTITY_ADDED`
    EntityAdded,
    /// `REMOVE_ENTITY`: role, remove a member
    RemoveEntity,
    /// `ENTITY_REMOVED`
    EntityRemoved,
    /// `SCALE_UP`: scale, more partitions
    ScaleUp,
    /// `SCALING_UP`
    ScalingUp,
    /// `BOOTSTRAP`: scale, a new partition takes partition 1's global state
    Bootstrap,
    /// `PARTITION_BOOTSTRAPPED`
    PartitionBootstrapped,
    /// `SCALED_UP`
    ScaledUp,
}

impl Intent {
    /// Zeebe's name of the intent.
    pub fn name(self) -> &'static str {
        match self {
            Intent::Create => "CREATE",
            Intent::CreateWithAwaitingResult => "CREATE_WITH_AWAITING_RESULT",
            Intent::Created => "CREATED",
            Intent::Distribute => "DISTRIBUTE",
            Intent::Distributed => "DISTRIBUTED",
            Intent::Cancel => "CANCEL",
            Intent::Canceled => "CANCELED",
            Intent::ActivateElement => "ACTIVATE_ELEMENT",
            Intent::CompleteElement => "COMPLETE_ELEMENT",
            Intent::TerminateElement => "TERMINATE_ELEMENT",
            Intent::ElementActivating => "ELEMENT_ACTIVATING",
            Intent::ElementActivated => "ELEMENT_ACTIVATED",
            Intent::ElementCompleting => "ELEMENT_COMPLETING",
            Intent::ElementCompleted => "ELEMENT_COMPLETED",
            Intent::ElementTerminating => "ELEMENT_TERMINATING",
            Intent::ElementTerminated => "ELEMENT_TERMINATED",
            Intent::SequenceFlowTaken => "SEQUENCE_FLOW_TAKEN",
            Intent::Complete => "COMPLETE",
            Intent::Completed => "COMPLETED",
            Intent::TimeOut => "TIME_OUT",
            Intent::TimedOut => "TIMED_OUT",
            Intent::Fail => "FAIL",
            Intent::Failed => "FAILED",
            Intent::UpdateRetries => "UPDATE_RETRIES",
            Intent::RetriesUpdated => "RETRIES_UPDATED",
            Intent::UpdateTimeout => "UPDATE_TIMEOUT",
            Intent::TimeoutUpdated => "TIMEOUT_UPDATED",
            Intent::ThrowError => "THROW_ERROR",
            Intent::ErrorThrown => "ERROR_THROWN",
            Intent::RecurAfterBackoff => "RECUR_AFTER_BACKOFF",
            Intent::RecurredAfterBackoff => "RECURRED_AFTER_BACKOFF",
            Intent::Yield => "YIELD",
            Intent::Yielded => "YIELDED",
            Intent::Activate => "ACTIVATE",
            Intent::Activated => "ACTIVATED",
            Intent::Resolve => "RESOLVE",
            Intent::Resolved => "RESOLVED",
            Intent::Update => "UPDATE",
            Intent::Updated => "UPDATED",
            Intent::Trigger => "TRIGGER",
            Intent::Triggered => "TRIGGERED",
            Intent::Triggering => "TRIGGERING",
            Intent::Publish => "PUBLISH",
            Intent::Published => "PUBLISHED",
            Intent::Expire => "EXPIRE",
            Intent::Expired => "EXPIRED",
            Intent::Creating => "CREATING",
            Intent::Correlate => "CORRELATE",
            Intent::Correlating => "CORRELATING",
            Intent::Correlated => "CORRELATED",
            Intent::Reject => "REJECT",
            Intent::Rejected => "REJECTED",
            Intent::Delete => "DELETE",
            Intent::Deleting => "DELETING",
            Intent::Deleted => "DELETED",
            Intent::Broadcast => "BROADCAST",
            Intent::Broadcasted => "BROADCASTED",
            Intent::Started => "STARTED",
            Intent::Distributing => "DISTRIBUTING",
            Intent::Acknowledge => "ACKNOWLEDGE",
            Intent::Acknowledged => "ACKNOWLEDGED",
            Intent::Finished => "FINISHED",
            Intent::Assign => "ASSIGN",
            Intent::Assigning => "ASSIGNING",
            Intent::Assigned => "ASSIGNED",
            Intent::Claim => "CLAIM",
            Intent::Updating => "UPDATING",
            Intent::Completing => "COMPLETING",
            Intent::Canceling => "CANCELING",
            Intent::Evaluate => "EVALUATE",
            Intent::Evaluated => "EVALUATED",
            Intent::Modify => "MODIFY",
            Intent::Modified => "MODIFIED",
            Intent::Migrate => "MIGRATE",
            Intent::Migrated => "MIGRATED",
            Intent::ElementMigrated => "ELEMENT_MIGRATED",
            Intent::AssignmentDenied => "ASSIGNMENT_DENIED",
            Intent::UpdateDenied => "UPDATE_DENIED",
            Intent::CompletionDenied => "COMPLETION_DENIED",
            Intent::AddEntity => "ADD_ENTITY",
            Intent::EntityAdded => "ENTITY_ADDED",
            Intent::RemoveEntity => "REMOVE_ENTITY",
            Intent::EntityRemoved => "ENTITY_REMOVED",
            Intent::ScaleUp => "SCALE_UP",
            Intent::ScalingUp => "SCALING_UP",
            Intent::Bootstrap => "BOOTSTRAP",
            Intent::PartitionBootstrapped => "PARTITION_BOOTSTRAPPED",
            Intent::ScaledUp => "SCALED_UP",
        }
    }
}

/// Why a command was rejected (Zeebe's `RejectionType`); the gateway maps it
/// to a gRPC status (reference §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionType {
    /// `INVALID_ARGUMENT` → gRPC `INVALID_ARGUMENT`
    InvalidArgument,
    /// `NOT_FOUND` → gRPC `NOT_FOUND`
    NotFound,
    /// `ALREADY_EXISTS` → gRPC `ALREADY_EXISTS`
    AlreadyExists,
    /// `INVALID_STATE` → gRPC `FAILED_PRECONDITION`
    InvalidState,
    /// `PROCESSING_ERROR` → gRPC `INTERNAL`
    ProcessingError,
    /// `EXCEEDED_BATCH_RECORD_SIZE` → gRPC `INTERNAL`
    ExceededBatchRecordSize,
    /// `FORBIDDEN` → gRPC `PERMISSION_DENIED`: the caller's grants do not
    /// cover the process the command is about.
    Forbidden,
}

impl RejectionType {
    /// Zeebe's name of the rejection type.
    pub fn name(self) -> &'static str {
        match self {
            RejectionType::InvalidArgument => "INVALID_ARGUMENT",
            RejectionType::NotFound => "NOT_FOUND",
            RejectionType::AlreadyExists => "ALREADY_EXISTS",
            RejectionType::InvalidState => "INVALID_STATE",
            RejectionType::ProcessingError => "PROCESSING_ERROR",
            RejectionType::ExceededBatchRecordSize => "EXCEEDED_BATCH_RECORD_SIZE",
            RejectionType::Forbidden => "FORBIDDEN",
        }
    }
}

/// A refused command: the type and a human-readable reason naming the input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Why, as a Zeebe rejection type.
    pub rejection_type: RejectionType,
    /// What was wrong, naming the key or resource involved.
    pub reason: String,
}

/// BPMN element types as written in process instance records (Zeebe's
/// `BpmnElementType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BpmnElementType {
    /// `PROCESS`
    Process,
    /// `SUB_PROCESS`
    SubProcess,
    /// `START_EVENT`
    StartEvent,
    /// `INTERMEDIATE_THROW_EVENT`
    IntermediateThrowEvent,
    /// `END_EVENT`
    EndEvent,
    /// `SERVICE_TASK`
    ServiceTask,
    /// `SEND_TASK`
    SendTask,
    /// `BUSINESS_RULE_TASK`
    BusinessRuleTask,
    /// `USER_TASK`
    UserTask,
    /// `SCRIPT_TASK`
    ScriptTask,
    /// `MANUAL_TASK`
    ManualTask,
    /// `TASK` (undefined task)
    Task,
    /// `EXCLUSIVE_GATEWAY`
    ExclusiveGateway,
    /// `PARALLEL_GATEWAY`
    ParallelGateway,
    /// `INCLUSIVE_GATEWAY`
    InclusiveGateway,
    /// `SEQUENCE_FLOW`
    SequenceFlow,
    /// `INTERMEDIATE_CATCH_EVENT`
    IntermediateCatchEvent,
    /// `BOUNDARY_EVENT`
    BoundaryEvent,
    /// `RECEIVE_TASK`
    ReceiveTask,
    /// `EVENT_BASED_GATEWAY`
    EventBasedGateway,
    /// `EVENT_SUB_PROCESS`
    EventSubProcess,
    /// `CALL_ACTIVITY`
    CallActivity,
    /// `MULTI_INSTANCE_BODY`
    MultiInstanceBody,
    /// `AD_HOC_SUB_PROCESS`
    AdHocSubProcess,
}

/// BPMN event types (Zeebe's `BpmnEventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BpmnEventType {
    /// Not an event, or an event without definition.
    None,
    /// Terminate end event.
    Terminate,
    /// `TIMER`
    Timer,
    /// `MESSAGE`
    Message,
    /// `ERROR`
    Error,
    /// `SIGNAL`
    Signal,
    /// `ESCALATION`
    Escalation,
    /// `COMPENSATION`
    Compensation,
    /// `LINK`
    Link,
}

/// Incident error types (Zeebe's `ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorType {
    /// `JOB_NO_RETRIES`
    JobNoRetries,
    /// `CONDITION_ERROR`
    ConditionError,
    /// `IO_MAPPING_ERROR`
    IoMappingError,
    /// `EXTRACT_VALUE_ERROR`
    ExtractValueError,
    /// `UNHANDLED_ERROR_EVENT`
    UnhandledErrorEvent,
    /// `CALLED_ELEMENT_ERROR`
    CalledElementError,
    /// `CALLED_DECISION_ERROR`: the called decision is not deployed
    CalledDecisionError,
    /// `DECISION_EVALUATION_ERROR`: the called decision failed
    DecisionEvaluationError,
    /// `EXECUTION_LISTENER_NO_RETRIES`: an execution listener job failed without retries
    ExecutionListenerNoRetries,
    /// `TASK_LISTENER_NO_RETRIES`: a task listener job failed without retries
    TaskListenerNoRetries,
    /// `FORM_NOT_FOUND`: the form linked to a user task is not deployed
    FormNotFound,
}

impl ErrorType {
    /// Zeebe's name of the error type.
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::JobNoRetries => "JOB_NO_RETRIES",
            ErrorType::ConditionError => "CONDITION_ERROR",
            ErrorType::IoMappingError => "IO_MAPPING_ERROR",
            ErrorType::ExtractValueError => "EXTRACT_VALUE_ERROR",
            ErrorType::UnhandledErrorEvent => "UNHANDLED_ERROR_EVENT",
            ErrorType::CalledElementError => "CALLED_ELEMENT_ERROR",
            ErrorType::CalledDecisionError => "CALLED_DECISION_ERROR",
            ErrorType::DecisionEvaluationError => "DECISION_EVALUATION_ERROR",
            ErrorType::ExecutionListenerNoRetries => "EXECUTION_LISTENER_NO_RETRIES",
            ErrorType::TaskListenerNoRetries => "TASK_LISTENER_NO_RETRIES",
            ErrorType::FormNotFound => "FORM_NOT_FOUND",
        }
    }
}

/// One resource of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentResource {
    /// File name, e.g. `order.bpmn`.
    pub name: String,
    /// The bytes of the file.
    pub content: Vec<u8>,
}

/// A process definition that a deployment produced (Zeebe's `ProcessMetadata`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMetadata {
    /// The BPMN process id.
    pub bpmn_process_id: Arc<str>,
    /// Version, starting at 1 per process id.
    pub version: i32,
    /// Key of the process definition.
    pub process_definition_key: i64,
    /// Name of the resource that holds the process.
    pub resource_name: String,
    /// Checksum of the resource, to recognise a redeployment of identical content.
    pub checksum: u64,
    /// True when the same content was deployed before: key and version are the old ones.
    pub duplicate: bool,
}

/// `DEPLOYMENT` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The deployed files.
    pub resources: Vec<DeploymentResource>,
    /// The processes in them (filled in the `CREATED` event).
    pub processes: Vec<ProcessMetadata>,
    /// The DRGs in them, one per DMN resource (filled in the `CREATED` event).
    pub decision_requirements: Vec<DecisionRequirementsMetadata>,
    /// The decisions in them (filled in the `CREATED` event).
    pub decisions: Vec<DecisionMetadata>,
    /// The forms in them, one per `.form` resource (filled in the `CREATED` event).
    pub forms: Vec<crate::forms::FormMetadata>,
}

/// `PROCESS` value: one process definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Identity and version.
    pub metadata: ProcessMetadata,
    /// The resource (BPMN XML) that holds the process.
    pub resource: Arc<[u8]>,
}

/// `PROCESS_INSTANCE` value: one element instance (or sequence flow) of a
/// process instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInstanceRecord {
    /// BPMN process id of the definition.
    pub bpmn_process_id: Arc<str>,
    /// Version of the definition.
    pub version: i32,
    /// Key of the definition.
    pub process_definition_key: i64,
    /// Key of the process instance (the root element instance).
    pub process_instance_key: i64,
    /// Id of the element (or sequence flow) in the model.
    pub element_id: Arc<str>,
    /// Key of the enclosing element instance, `-1` for the process itself.
    pub flow_scope_key: i64,
    /// Type of the element.
    pub bpmn_element_type: BpmnElementType,
    /// Event type of the element.
    pub bpmn_event_type: BpmnEventType,
    /// On the process element of a called instance: the calling process
    /// instance, else `-1`.
    pub parent_process_instance_key: i64,
    /// On the process element of a called instance: the call activity
    /// instance, else `-1`.
    pub parent_element_instance_key: i64,
}

/// `PROCESS_INSTANCE_CREATION` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInstanceCreationRecord {
    /// Process id to start (used when `process_definition_key` is `-1`).
    pub bpmn_process_id: String,
    /// Version to start, `-1` for the latest.
    pub version: i32,
    /// Key of the definition to start, or `-1`.
    pub process_definition_key: i64,
    /// Key of the created instance (in the event).
    pub process_instance_key: i64,
    /// Variables as a JSON object document (may be empty for none).
    pub variables: String,
    /// With result: variables to return (empty = all).
    pub fetch_variables: Vec<String>,
    /// The client waits for the instance to complete (create with result).
    pub await_result: bool,
    /// Ids of the elements to start at instead of the none start event
    /// (`startInstructions`); empty starts at the none start event.
    pub start_instructions: Vec<String>,
}

/// `JOB` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job type.
    pub job_type: Arc<str>,
    /// Worker that activated it (empty when not activated).
    pub worker: String,
    /// Remaining retries.
    pub retries: i32,
    /// Back-off before a failed job is activatable again.
    pub retry_backoff_ms: i64,
    /// When a failed job with back-off becomes activatable again, or `-1`.
    pub recurring_at_ms: i64,
    /// Activation deadline, or `-1` when not activated.
    pub deadline_ms: i64,
    /// Timeout requested with activation or update.
    pub timeout_ms: i64,
    /// Message of the last failure or thrown error.
    pub error_message: String,
    /// Error code of a thrown BPMN error.
    pub error_code: String,
    /// Custom headers as a JSON object.
    pub custom_headers: Arc<str>,
    /// Variables as a JSON object (complete/fail/throw-error documents; the
    /// activated variables in a job batch).
    pub variables: String,
    /// Element that created the job.
    pub element_id: Arc<str>,
    /// Element instance that created the job.
    pub element_instance_key: i64,
    /// Process instance of the job.
    pub process_instance_key: i64,
    /// BPMN process id.
    pub bpmn_process_id: Arc<str>,
    /// Version of the process definition.
    pub process_definition_version: i32,
    /// Key of the process definition.
    pub process_definition_key: i64,
    /// What the job is for (Zeebe's `jobKind`).
    pub job_kind: JobKind,
    /// The listener event of a listener job (Zeebe's `jobListenerEventType`).
    pub listener_event_type: ListenerEventType,
    /// The result of a task listener job's completion (denial, corrections).
    pub result: JobResult,
    /// A task listener job: the user task as the transition would leave it
    /// (what the worker sees as `userTask`).
    pub user_task: Option<Box<UserTaskRecord>>,
}

/// Zeebe's `JobKind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// `BPMN_ELEMENT`: the job of a task.
    #[default]
    BpmnElement,
    /// `EXECUTION_LISTENER`
    ExecutionListener,
    /// `TASK_LISTENER`
    TaskListener,
}

impl JobKind {
    /// Zeebe's name.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::BpmnElement => "BPMN_ELEMENT",
            JobKind::ExecutionListener => "EXECUTION_LISTENER",
            JobKind::TaskListener => "TASK_LISTENER",
        }
    }
}

/// Zeebe's `JobListenerEventType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ListenerEventType {
    /// `UNSPECIFIED`: not a listener job.
    #[default]
    Unspecified,
    /// `START` (execution listener)
    Start,
    /// `END` (execution listener)
    End,
    /// `CREATING` (task listener)
    Creating,
    /// `ASSIGNING` (task listener)
    Assigning,
    /// `UPDATING` (task listener)
    Updating,
    /// `COMPLETING` (task listener)
    Completing,
    /// `CANCELING` (task listener)
    Canceling,
}

impl ListenerEventType {
    /// Zeebe's name.
    pub fn name(self) -> &'static str {
        match self {
            ListenerEventType::Unspecified => "UNSPECIFIED",
            ListenerEventType::Start => "START",
            ListenerEventType::End => "END",
            ListenerEventType::Creating => "CREATING",
            ListenerEventType::Assigning => "ASSIGNING",
            ListenerEventType::Updating => "UPDATING",
            ListenerEventType::Completing => "COMPLETING",
            ListenerEventType::Canceling => "CANCELING",
        }
    }
}

/// Zeebe's `JobResult` of a task listener job: deny the transition, or
/// correct the task's attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// The transition is denied (assigning, updating, completing only).
    pub denied: bool,
    /// Why it was denied.
    pub denied_reason: String,
    /// Which corrections are set: `assignee`, `dueDate`, `followUpDate`,
    /// `candidateUsersList`, `candidateGroupsList`, `priority`.
    pub corrected_attributes: Vec<String>,
    /// Corrected assignee.
    pub assignee: String,
    /// Corrected due date.
    pub due_date: String,
    /// Corrected follow-up date.
    pub follow_up_date: String,
    /// Corrected candidate users.
    pub candidate_users: Vec<String>,
    /// Corrected candidate groups.
    pub candidate_groups: Vec<String>,
    /// Corrected priority.
    pub priority: i32,
}

impl JobRecord {
    /// An empty job value for commands that only carry a few fields.
    pub fn empty() -> Self {
        let empty: Arc<str> = Arc::from("");
        Self {
            job_type: empty.clone(),
            worker: String::new(),
            retries: 0,
            retry_backoff_ms: 0,
            recurring_at_ms: NO_KEY,
            deadline_ms: NO_KEY,
            timeout_ms: 0,
            error_message: String::new(),
            error_code: String::new(),
            custom_headers: Arc::from("{}"),
            variables: String::new(),
            element_id: empty.clone(),
            element_instance_key: NO_KEY,
            process_instance_key: NO_KEY,
            bpmn_process_id: empty,
            process_definition_version: 0,
            process_definition_key: NO_KEY,
            job_kind: JobKind::BpmnElement,
            listener_event_type: ListenerEventType::Unspecified,
            result: JobResult::default(),
            user_task: None,
        }
    }
}

/// `JOB_BATCH` value: an activation request and, in the event, the jobs it activated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobBatchRecord {
    /// Type of jobs to activate.
    pub job_type: String,
    /// Worker name.
    pub worker: String,
    /// Lock time of the activated jobs.
    pub timeout_ms: i64,
    /// Maximum number of jobs to activate.
    pub max_jobs_to_activate: i32,
    /// Variables to fetch (empty = all visible).
    pub fetch_variables: Vec<String>,
    /// Keys of the activated jobs (event).
    pub job_keys: Vec<i64>,
    /// The activated jobs, with their variables (event).
    pub jobs: Vec<JobRecord>,
    /// More jobs were activatable than fit in the batch.
    pub truncated: bool,
}

/// `VARIABLE` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableRecord {
    /// Variable name.
    pub name: String,
    /// Value as JSON text.
    pub value: String,
    /// Element instance (scope) that holds the variable.
    pub scope_key: i64,
    /// Process instance.
    pub process_instance_key: i64,
    /// Process definition.
    pub process_definition_key: i64,
    /// BPMN process id.
    pub bpmn_process_id: Arc<str>,
}

/// `VARIABLE_DOCUMENT` value (SetVariables).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableDocumentRecord {
    /// Element instance to set the variables on.
    pub scope_key: i64,
    /// Set on that scope only (`true`) or propagate (`false`).
    pub local: bool,
    /// Variables as a JSON object.
    pub variables: String,
}

/// `INCIDENT` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRecord {
    /// What went wrong.
    pub error_type: ErrorType,
    /// Message naming the element, expression or job.
    pub error_message: String,
    /// BPMN process id.
    pub bpmn_process_id: Arc<str>,
    /// Process definition key.
    pub process_definition_key: i64,
    /// Process instance key.
    pub process_instance_key: i64,
    /// Element id.
    pub element_id: Arc<str>,
    /// Element instance key.
    pub element_instance_key: i64,
    /// Job key for job incidents, else `-1`.
    pub job_key: i64,
    /// Scope whose variables would fix it.
    pub variable_scope_key: i64,
}

/// `TIMER` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRecord {
    /// Element instance that waits for the timer, `-1` for a timer start event.
    pub element_instance_key: i64,
    /// Process instance, `-1` for a timer start event.
    pub process_instance_key: i64,
    /// Process definition.
    pub process_definition_key: i64,
    /// The timer catch event (intermediate, boundary or start event).
    pub target_element_id: Arc<str>,
    /// When it fires (epoch ms).
    pub due_date_ms: i64,
    /// Firings left including this one; `-1` forever.
    pub repetitions: i32,
}

/// `MESSAGE` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Message name.
    pub name: String,
    /// Correlation key (decides the partition).
    pub correlation_key: String,
    /// How long the message stays buffered; `0` = not buffered.
    pub time_to_live_ms: i64,
    /// Optional id; a second message with the same name, key and id is
    /// rejected while the first is buffered.
    pub message_id: String,
    /// Variables as a JSON object document.
    pub variables: String,
    /// When the buffered message expires (event), else `-1`.
    pub deadline_ms: i64,
}

/// `MESSAGE_SUBSCRIPTION` and `PROCESS_MESSAGE_SUBSCRIPTION` value: a waiting
/// catch event of a process instance, seen from either partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSubscriptionRecord {
    /// Element instance that waits (the catch event, the activity with the
    /// boundary event, the event-based gateway or the event sub-process scope).
    pub element_instance_key: i64,
    /// Process instance.
    pub process_instance_key: i64,
    /// BPMN process id (a message correlates at most once per process id).
    pub bpmn_process_id: Arc<str>,
    /// The message catch event.
    pub element_id: Arc<str>,
    /// Message name.
    pub message_name: String,
    /// Correlation key.
    pub correlation_key: String,
    /// The catch event interrupts (closes the subscription when correlated).
    pub interrupting: bool,
    /// Correlated message, else `-1`.
    pub message_key: i64,
    /// Variables of the correlated message.
    pub variables: String,
    /// Partition of the process instance.
    pub subscription_partition_id: u32,
}

/// `PROCESS_EVENT` value: an event (timer, message, signal, error,
/// escalation) that will activate `target_element_id` in scope `scope_key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEventRecord {
    /// Element instance in which the target is activated (a boundary event's
    /// flow scope, an event sub-process's parent, a new process instance).
    pub scope_key: i64,
    /// The element to activate.
    pub target_element_id: Arc<str>,
    /// Variables of the event (JSON object document).
    pub variables: String,
    /// Element instance that is being terminated first (interrupting), else `-1`.
    pub interrupted_key: i64,
    /// Process definition.
    pub process_definition_key: i64,
    /// Process instance.
    pub process_instance_key: i64,
}

/// `SIGNAL` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// Signal name.
    pub signal_name: String,
    /// Variables as a JSON object document.
    pub variables: String,
}

/// `SIGNAL_SUBSCRIPTION` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalSubscriptionRecord {
    /// Signal name.
    pub signal_name: String,
    /// Element instance that waits.
    pub element_instance_key: i64,
    /// Process instance.
    pub process_instance_key: i64,
    /// Process definition.
    pub process_definition_key: i64,
    /// The signal catch event.
    pub element_id: Arc<str>,
}

/// `COMPENSATION_SUBSCRIPTION` value: a completed activity that has a
/// compensation handler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationSubscriptionRecord {
    /// Process instance.
    pub process_instance_key: i64,
    /// Process definition.
    pub process_definition_key: i64,
    /// Scope instance whose compensation throw reaches it (the activity's
    /// flow scope, or an enclosing scope once that one completed).
    pub scope_key: i64,
    /// The completed activity.
    pub element_id: Arc<str>,
    /// Its compensation handler.
    pub handler_id: Arc<str>,
}

/// `RESOURCE_DELETION` value (DeleteResource).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDeletionRecord {
    /// Key of the resource to delete: a process definition or DRG key.
    pub resource_key: i64,
}

/// `COMMAND_DISTRIBUTION` value: a command of the distributing partition
/// for the other partitions (Zeebe's `CommandDistributionRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandDistributionRecord {
    /// `STARTED`, `FINISHED`: the distributing partition; `DISTRIBUTING`,
    /// `ACKNOWLEDGE`, `ACKNOWLEDGED`: the receiving partition.
    pub partition_id: u32,
    /// Value type of the distributed command.
    pub value_type: ValueType,
    /// Intent of the distributed command.
    pub intent: Intent,
    /// The distributed command's value (`STARTED` only, the others leave
    /// it out to stay small).
    pub command_value: Option<Box<RecordValue>>,
}

/// `USER_TASK` value (Zeebe's `UserTaskRecord`). In `UPDATE` commands,
/// `changed_attributes` names the fields of the changeset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTaskRecord {
    /// Key of the user task.
    pub user_task_key: i64,
    /// Assignee, empty when unassigned.
    pub assignee: String,
    /// Candidate groups.
    pub candidate_groups: Vec<String>,
    /// Candidate users.
    pub candidate_users: Vec<String>,
    /// Due date (ISO 8601 date-time), empty when none.
    pub due_date: String,
    /// Follow-up date (ISO 8601 date-time), empty when none.
    pub follow_up_date: String,
    /// Key of a linked form, `-1` when none.
    pub form_key: i64,
    /// Custom form reference (`formKey` or `externalReference`), empty when none.
    pub external_form_reference: String,
    /// Custom headers as a JSON object.
    pub custom_headers: Arc<str>,
    /// Variables as a JSON object (complete command and event).
    pub variables: String,
    /// Attributes changed by an update or assignment.
    pub changed_attributes: Vec<String>,
    /// What the client did (`assign`, `claim`, `update`, `complete`, ...).
    pub action: String,
    /// Priority, 0 to 100.
    pub priority: i32,
    /// Element of the user task.
    pub element_id: Arc<str>,
    /// Element instance of the user task.
    pub element_instance_key: i64,
    /// Process instance.
    pub process_instance_key: i64,
    /// BPMN process id.
    pub bpmn_process_id: Arc<str>,
    /// Process definition.
    pub process_definition_key: i64,
    /// Version of the process definition.
    pub process_definition_version: i32,
    /// When the task was created (epoch ms).
    pub creation_timestamp: i64,
    /// Tenant of its process definition.
    pub tenant_id: String,
}

impl UserTaskRecord {
    /// An empty value for commands that only carry a few fields.
    pub fn empty() -> Self {
        let empty: Arc<str> = Arc::from("");
        Self {
            user_task_key: NO_KEY,
            assignee: String::new(),
            candidate_groups: Vec::new(),
            candidate_users: Vec::new(),
            due_date: String::new(),
            follow_up_date: String::new(),
            form_key: NO_KEY,
            external_form_reference: String::new(),
            custom_headers: Arc::from("{}"),
            variables: String::new(),
            changed_attributes: Vec::new(),
            action: String::new(),
            priority: 50,
            element_id: empty.clone(),
            element_instance_key: NO_KEY,
            process_instance_key: NO_KEY,
            bpmn_process_id: empty,
            process_definition_key: NO_KEY,
            process_definition_version: 0,
            creation_timestamp: NO_KEY,
            tenant_id: String::from("<default>"),
        }
    }
}

/// `PROCESS_INSTANCE_MODIFICATION` value (Zeebe's
/// `ProcessInstanceModificationRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInstanceModificationRecord {
    /// The modified process instance.
    pub process_instance_key: i64,
    /// Element instances to terminate (with their children).
    pub terminate_instructions: Vec<i64>,
    /// Elements to activate.
    pub activate_instructions: Vec<ActivateInstruction>,
}

/// One activate instruction of a modification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateInstruction {
    /// Id of the element to activate.
    pub element_id: String,
    /// Element instance to create the element in (or its flow scopes), `-1`
    /// to use the single active instance of each flow scope.
    pub ancestor_scope_key: i64,
    /// Variables to set on the element or one of its flow scopes.
    pub variable_instructions: Vec<VariableInstruction>,
    /// In the event: the flow scope instances the element was activated in
    /// (found or created).
    pub ancestor_scope_keys: Vec<i64>,
}

/// Variables an activate instruction sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableInstruction {
    /// JSON object document.
    pub variables: String,
    /// Id of the element (the activated one or a flow scope) whose instance
    /// gets the variables; empty for the process instance.
    pub element_id: String,
}

/// `PROCESS_INSTANCE_MIGRATION` value (Zeebe's
/// `ProcessInstanceMigrationRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInstanceMigrationRecord {
    /// The migrated process instance.
    pub process_instance_key: i64,
    /// Definition to migrate to.
    pub target_process_definition_key: i64,
    /// Source element id to target element id.
    pub mapping_instructions: Vec<MappingInstruction>,
}

/// One mapping instruction of a migration plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingInstruction {
    /// Element id in the instance's current definition.
    pub source_element_id: String,
    /// Element id in the target definition.
    pub target_element_id: String,
}

/// The value of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordValue {
    /// `DEPLOYMENT`
    Deployment(DeploymentRecord),
    /// `PROCESS`
    Process(ProcessRecord),
    /// `PROCESS_INSTANCE`
    ProcessInstance(ProcessInstanceRecord),
    /// `PROCESS_INSTANCE_CREATION`
    ProcessInstanceCreation(ProcessInstanceCreationRecord),
    /// `JOB`
    Job(Box<JobRecord>),
    /// `JOB_BATCH`
    JobBatch(JobBatchRecord),
    /// `VARIABLE`
    Variable(VariableRecord),
    /// `VARIABLE_DOCUMENT`
    VariableDocument(VariableDocumentRecord),
    /// `INCIDENT`
    Incident(IncidentRecord),
    /// `TIMER`
    Timer(TimerRecord),
    /// `MESSAGE`
    Message(MessageRecord),
    /// `MESSAGE_SUBSCRIPTION`
    MessageSubscription(MessageSubscriptionRecord),
    /// `PROCESS_MESSAGE_SUBSCRIPTION`
    ProcessMessageSubscription(MessageSubscriptionRecord),
    /// `PROCESS_EVENT`
    ProcessEvent(ProcessEventRecord),
    /// `SIGNAL`
    Signal(SignalRecord),
    /// `SIGNAL_SUBSCRIPTION`
    SignalSubscription(SignalSubscriptionRecord),
    /// `COMPENSATION_SUBSCRIPTION`
    CompensationSubscription(CompensationSubscriptionRecord),
    /// `RESOURCE_DELETION`
    ResourceDeletion(ResourceDeletionRecord),
    /// `COMMAND_DISTRIBUTION`
    CommandDistribution(CommandDistributionRecord),
    /// `USER_TASK`
    UserTask(Box<UserTaskRecord>),
    /// `DECISION_REQUIREMENTS`
    DecisionRequirements(DecisionRequirementsRecord),
    /// `DECISION`
    Decision(DecisionMetadata),
    /// `DECISION_EVALUATION`
    DecisionEvaluation(Box<DecisionEvaluationRecord>),
    /// `AD_HOC_SUB_PROCESS_INSTRUCTION`
    AdHocSubProcessInstruction(crate::adhoc::AdHocSubProcessInstructionRecord),
    /// `PROCESS_INSTANCE_MODIFICATION`
    ProcessInstanceModification(ProcessInstanceModificationRecord),
    /// `PROCESS_INSTANCE_MIGRATION`
    ProcessInstanceMigration(ProcessInstanceMigrationRecord),
    /// `FORM`
    Form(crate::forms::FormRecord),
    /// `USER`
    User(crate::identity::UserRecord),
    /// `ROLE`
    Role(crate::collectives::CollectiveRecord),
    /// `AUTHORIZATION`
    Authorization(crate::access::AuthorizationRecord),
    /// `GROUP`
    Group(crate::collectives::CollectiveRecord),
    /// `TENANT`
    Tenant(crate::collectives::CollectiveRecord),
    /// `MAPPING_RULE`
    MappingRule(crate::mapping_rules::MappingRuleRecord),
    /// `SCALE`
    Scale(crate::scaling::ScaleRecord),
}

impl RecordValue {
    /// The value type that goes with this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            RecordValue::Deployment(_) => ValueType::Deployment,
            RecordValue::Process(_) => ValueType::Process,
            RecordValue::ProcessInstance(_) => ValueType::ProcessInstance,
            RecordValue::ProcessInstanceCreation(_) => ValueType::ProcessInstanceCreation,
            RecordValue::Job(_) => ValueType::Job,
            RecordValue::JobBatch(_) => ValueType::JobBatch,
            RecordValue::Variable(_) => ValueType::Variable,
            RecordValue::VariableDocument(_) => ValueType::VariableDocument,
            RecordValue::Incident(_) => ValueType::Incident,
            RecordValue::Timer(_) => ValueType::Timer,
            RecordValue::Message(_) => ValueType::Message,
            RecordValue::MessageSubscription(_) => ValueType::MessageSubscription,
            RecordValue::ProcessMessageSubscription(_) => ValueType::ProcessMessageSubscription,
            RecordValue::ProcessEvent(_) => ValueType::ProcessEvent,
            RecordValue::Signal(_) => ValueType::Signal,
            RecordValue::SignalSubscription(_) => ValueType::SignalSubscription,
            RecordValue::CompensationSubscription(_) => ValueType::CompensationSubscription,
            RecordValue::ResourceDeletion(_) => ValueType::ResourceDeletion,
            RecordValue::CommandDistribution(_) => ValueType::CommandDistribution,
            RecordValue::UserTask(_) => ValueType::UserTask,
            RecordValue::DecisionRequirements(_) => ValueType::DecisionRequirements,
            RecordValue::Decision(_) => ValueType::Decision,
            RecordValue::DecisionEvaluation(_) => ValueType::DecisionEvaluation,
            RecordValue::AdHocSubProcessInstruction(_) => ValueType::AdHocSubProcessInstruction,
            RecordValue::ProcessInstanceModification(_) => ValueType::ProcessInstanceModification,
            RecordValue::ProcessInstanceMigration(_) => ValueType::ProcessInstanceMigration,
            RecordValue::Form(_) => ValueType::Form,
            RecordValue::User(_) => ValueType::User,
            RecordValue::Role(_) => ValueType::Role,
            RecordValue::Authorization(_) => ValueType::Authorization,
            RecordValue::Group(_) => ValueType::Group,
            RecordValue::Tenant(_) => ValueType::Tenant,
            RecordValue::MappingRule(_) => ValueType::MappingRule,
            RecordValue::Scale(_) => ValueType::Scale,
        }
    }
}

/// One record of the partition log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Log position, assigned by the broker when appending.
    pub position: i64,
    /// Key of the entity the record is about, `-1` if none.
    pub key: i64,
    /// Command, event or rejection.
    pub record_type: RecordType,
    /// Kind of value (always `value.value_type()`).
    pub value_type: ValueType,
    /// What is asked for or what happened.
    pub intent: Intent,
    /// Stamped by the leader when appending; the engine's only clock.
    pub timestamp_ms: i64,
    /// Position of the command this record was derived from, `-1` for commands
    /// from outside.
    pub source_record_position: i64,
    /// Set on rejections.
    pub rejection: Option<Rejection>,
    /// Opaque id the broker attaches to client commands to route responses;
    /// `None` for internal commands and for events.
    pub request_id: Option<u64>,
    /// The value.
    pub value: RecordValue,
    /// The tenant the record belongs to (see `tenancy`); encoded in front
    /// of the body when not the default (see `codec`).
    #[serde(skip)]
    pub tenant: Tenant,
    /// On a client command under multi-tenancy: the tenants the caller may
    /// act in (for a job activation: the tenants asked for). `None`: any.
    #[serde(skip)]
    pub authorized_tenants: Option<Arc<[Tenant]>>,
    /// On a client command of a caller whose permission covers some
    /// processes only: their ids. The command is refused `FORBIDDEN` when
    /// it is about an instance, job, incident or user task of another
    /// process (a job activation takes jobs of these processes only).
    /// `None`: any.
    #[serde(skip)]
    pub authorized_processes: Option<Arc<[Arc<str>]>>,
}

impl Record {
    /// A client command (position and timestamp are set by the broker).
    pub fn command(key: i64, intent: Intent, value: RecordValue, request_id: Option<u64>) -> Self {
        Self {
            position: NO_KEY,
            key,
            record_type: RecordType::Command,
            value_type: value.value_type(),
            intent,
            timestamp_ms: 0,
            source_record_position: NO_KEY,
            rejection: None,
            request_id,
            value,
            tenant: Tenant::default(),
            authorized_tenants: None,
            authorized_processes: None,
        }
    }
}

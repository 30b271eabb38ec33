//! What the gateway asks of a partition, and what the partition answers.
//!
//! A [`PartitionCommand`] is validated at the gateway (JSON documents are
//! objects, required fields are present) and carries only owned data, so it
//! crosses from the tokio threads to a shard (and later to another node) as is.
//! Answers reuse the generated gRPC response messages.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::gateway::proto;

/// A command for one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartitionCommand {
    /// Deploy resources (processed on the deployment partition).
    Deploy {
        /// `(name, content)` of each resource.
        resources: Vec<(String, Vec<u8>)>,
    },
    /// Create a process instance.
    CreateInstance {
        /// Definition key, or 0 to select by id.
        definition_key: i64,
        /// BPMN process id, used when `definition_key` is 0.
        bpmn_process_id: String,
        /// Version, -1 for the latest.
        version: i32,
        /// JSON object.
        variables: String,
        /// Answer only when the instance completes.
        await_result: Option<AwaitResult>,
        /// Element ids to start at instead of the none start event.
        #[serde(default)]
        start_instructions: Vec<String>,
    },
    /// Cancel a process instance.
    CancelInstance {
        /// The instance.
        process_instance_key: i64,
    },
    /// Activate up to `max_jobs` jobs of a type.
    ActivateJobs {
        /// Job type.
        job_type: String,
        /// Worker name.
        worker: String,
        /// How long the jobs stay locked to the worker.
        timeout_ms: i64,
        /// Most jobs to activate.
        max_jobs: u32,
        /// Variables to fetch; empty fetches all.
        fetch_variables: Vec<String>,
    },
    /// Complete a job.
    CompleteJob {
        /// The job.
        job_key: i64,
        /// JSON object.
        variables: String,
    },
    /// Fail a job.
    FailJob {
        /// The job.
        job_key: i64,
        /// Retries left.
        retries: i32,
        /// Shown in the incident.
        error_message: String,
        /// Delay before the job can be activated again.
        retry_backoff_ms: i64,
        /// JSON object.
        variables: String,
    },
    /// Throw a BPMN error from a job.
    ThrowError {
        /// The job.
        job_key: i64,
        /// Matched against error catch events.
        error_code: String,
        /// Shown in the incident if uncaught.
        error_message: String,
        /// JSON object.
        variables: String,
    },
    /// Set a job's retries.
    UpdateJobRetries {
        /// The job.
        job_key: i64,
        /// New retries.
        retries: i32,
    },
    /// Set a job's deadline to now plus `timeout_ms`.
    UpdateJobTimeout {
        /// The job.
        job_key: i64,
        /// New lock time from now.
        timeout_ms: i64,
    },
    /// Publish a message.
    PublishMessage {
        /// Message name.
        name: String,
        /// Correlation key.
        correlation_key: String,
        /// Buffering time.
        time_to_live_ms: i64,
        /// Uniqueness id, may be empty.
        message_id: String,
        /// JSON object.
        variables: String,
    },
    /// Merge variables into a scope.
    SetVariables {
        /// The scope.
        element_instance_key: i64,
        /// JSON object.
        variables: String,
        /// Set in the scope itself instead of propagating.
        local: bool,
    },
    /// Resolve an incident.
    ResolveIncident {
        /// The incident.
        incident_key: i64,
    },
    /// Broadcast a signal.
    BroadcastSignal {
        /// Signal name.
        signal_name: String,
        /// JSON object.
        variables: String,
    },
    /// Delete a deployed resource.
    DeleteResource {
        /// The resource.
        resource_key: i64,
    },
    /// Assign (`ASSIGN`, `CLAIM`), update or complete a user task.
    UserTask {
        /// The user task.
        user_task_key: i64,
        /// `ASSIGN`, `CLAIM`, `UPDATE` or `COMPLETE`.
        intent: engine::Intent,
        /// Assignee, changeset (`changed_attributes` names it), variables, action.
        value: Box<engine::UserTaskRecord>,
    },
    /// Evaluate a deployed decision (any partition: deployments reach all).
    EvaluateDecision {
        /// Decision key, or -1 to select the latest version by id.
        decision_key: i64,
        /// Decision id, used when `decision_key` is -1.
        decision_id: String,
        /// JSON object.
        variables: String,
    },
    /// Take a checkpoint for backup `backup_id`: every replica hands its
    /// state at the checkpoint's index to the backup store (see
    /// [`crate::backup`]); answered with [`CommandReply::Key`] holding the
    /// index.
    Checkpoint {
        /// The backup.
        backup_id: u64,
    },
    /// Append opaque bytes to the partition's log without the engine
    /// (benchmarks, `gateway.raw_append_enabled`); answered with
    /// [`CommandReply::Key`] holding the committed index.
    RawAppend {
        /// The record.
        payload: Vec<u8>,
    },
    /// Activate elements of an active ad-hoc sub-process (on the partition
    /// of its element instance key).
    ActivateAdHocElements {
        /// The ad-hoc sub-process instance and the elements with their variables.
        value: Box<engine::AdHocSubProcessInstructionRecord>,
    },
    /// Terminate and activate elements of a running process instance.
    ModifyInstance {
        /// Instructions, validated at the gateway (variables are objects).
        value: Box<engine::ProcessInstanceModificationRecord>,
    },
    /// Move a running process instance to another process definition.
    MigrateInstance {
        /// Target definition and mapping instructions.
        value: Box<engine::ProcessInstanceMigrationRecord>,
    },
    /// Complete a task listener job with its result (denial, corrections).
    CompleteJobWithResult {
        /// The job.
        job_key: i64,
        /// JSON object.
        variables: String,
        /// The listener's verdict.
        result: Box<engine::JobResult>,
    },
    /// Change a user, role, group, tenant, mapping rule or authorization
    /// (on the deployment partition; a password is already hashed).
    /// Answered with the entity's key.
    Identity {
        /// `CREATE`, `UPDATE`, `DELETE`, `ADD_ENTITY` or `REMOVE_ENTITY`.
        intent: engine::Intent,
        /// A `USER`, `ROLE`, `GROUP`, `TENANT`, `MAPPING_RULE` or
        /// `AUTHORIZATION` value.
        value: Box<engine::RecordValue>,
    },
    /// Scale up to `desired_partition_count` partitions (on partition 1,
    /// from a cluster change). Answered with the partition count.
    ScaleUp {
        /// The partition count asked for.
        desired_partition_count: u32,
    },
    /// `command` on behalf of a caller who may touch some tenants' or
    /// processes' data only (see `identity::caller`).
    AsCaller {
        /// The tenant the command acts in when it names one.
        tenant: String,
        /// The tenants the caller may act in (for a job activation: the
        /// tenants asked for); `None`: any.
        tenants: Option<Vec<String>>,
        /// The processes the caller's grants cover; `None`: any.
        processes: Option<Vec<String>>,
        /// The command.
        command: Box<PartitionCommand>,
    },
    /// Add or remove a job push stream (replicated: a log entry every
    /// replica applies); answered with `Done`.
    JobStream(crate::push_streams::StreamChange),
    /// Give back a pushed job that did not reach its worker (`JOB YIELD`).
    YieldJob {
        /// The job.
        job_key: i64,
    },
}

/// Options of `CreateProcessInstanceWithResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwaitResult {
    /// Variables to return; empty returns all.
    pub fetch_variables: Vec<String>,
    /// How long to wait for completion.
    pub timeout_ms: u64,
}

impl PartitionCommand {
    /// Commands that finish or remove work (they pass the in-flight limit
    /// and a lagging exporter, as in Zeebe, so that a loaded partition can
    /// drain).
    pub fn drains_work(&self) -> bool {
        matches!(
            self.inner(),
            PartitionCommand::CompleteJob { .. }
                | PartitionCommand::CompleteJobWithResult { .. }
                | PartitionCommand::FailJob { .. }
                | PartitionCommand::ThrowError { .. }
                | PartitionCommand::CancelInstance { .. }
                | PartitionCommand::ResolveIncident { .. }
                | PartitionCommand::UserTask {
                    intent: engine::Intent::Complete,
                    ..
                }
                | PartitionCommand::YieldJob { .. }
                | PartitionCommand::JobStream(_)
        )
    }

    /// The command itself, without the tenants it is sent within.
    pub fn inner(&self) -> &PartitionCommand {
        match self {
            PartitionCommand::AsCaller { command, .. } => command.inner(),
            command => command,
        }
    }

    /// The RPC's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            PartitionCommand::AsCaller { command, .. } => command.name(),
            PartitionCommand::Deploy { .. } => "DeployResource",
            PartitionCommand::CreateInstance {
                await_result: None, ..
            } => "CreateProcessInstance",
            PartitionCommand::CreateInstance { .. } => "CreateProcessInstanceWithResult",
            PartitionCommand::CancelInstance { .. } => "CancelProcessInstance",
            PartitionCommand::ActivateJobs { .. } => "ActivateJobs",
            PartitionCommand::CompleteJob { .. } => "CompleteJob",
            PartitionCommand::FailJob { .. } => "FailJob",
            PartitionCommand::ThrowError { .. } => "ThrowError",
            PartitionCommand::UpdateJobRetries { .. } => "UpdateJobRetries",
            PartitionCommand::UpdateJobTimeout { .. } => "UpdateJobTimeout",
            PartitionCommand::PublishMessage { .. } => "PublishMessage",
            PartitionCommand::SetVariables { .. } => "SetVariables",
            PartitionCommand::ResolveIncident { .. } => "ResolveIncident",
            PartitionCommand::BroadcastSignal { .. } => "BroadcastSignal",
            PartitionCommand::DeleteResource { .. } => "DeleteResource",
            PartitionCommand::UserTask { .. } => "UserTask",
            PartitionCommand::EvaluateDecision { .. } => "EvaluateDecision",
            PartitionCommand::RawAppend { .. } => "RawAppend",
            PartitionCommand::Checkpoint { .. } => "Checkpoint",
            PartitionCommand::ActivateAdHocElements { .. } => "ActivateAdHocSubProcessActivities",
            PartitionCommand::ModifyInstance { .. } => "ModifyProcessInstance",
            PartitionCommand::MigrateInstance { .. } => "MigrateProcessInstance",
            PartitionCommand::CompleteJobWithResult { .. } => "CompleteJob",
            PartitionCommand::Identity { .. } => "Identity",
            PartitionCommand::ScaleUp { .. } => "ScaleUp",
            PartitionCommand::JobStream(_) => "StreamActivatedJobs",
            PartitionCommand::YieldJob { .. } => "YieldJob",
        }
    }
}

/// A partition's answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandReply {
    /// To `Deploy`.
    Deployed(proto::DeployResourceResponse),
    /// To `CreateInstance` without result.
    Created(proto::CreateProcessInstanceResponse),
    /// To `CreateInstance` with result.
    Completed(proto::CreateProcessInstanceWithResultResponse),
    /// To `ActivateJobs`.
    Jobs(Vec<proto::ActivatedJob>),
    /// To `EvaluateDecision` (a failed evaluation included).
    Evaluated(proto::EvaluateDecisionResponse),
    /// To commands answered with a key (`PublishMessage`, `SetVariables`,
    /// `BroadcastSignal`), or a count (`ScaleUp`: the partition count).
    Key(i64),
    /// To commands with an empty answer.
    Done,
}

/// Why a Zeebe command was rejected by the engine (Zeebe's `RejectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionKind {
    /// The command's content is invalid.
    InvalidArgument,
    /// What it refers to does not exist.
    NotFound,
    /// What it would create exists.
    AlreadyExists,
    /// What it refers to is in the wrong state.
    InvalidState,
    /// The engine failed processing it.
    ProcessingError,
    /// The caller may not do this.
    Forbidden,
}

impl RejectionKind {
    /// Zeebe's name of the rejection type.
    pub fn code(self) -> &'static str {
        match self {
            RejectionKind::InvalidArgument => "INVALID_ARGUMENT",
            RejectionKind::NotFound => "NOT_FOUND",
            RejectionKind::AlreadyExists => "ALREADY_EXISTS",
            RejectionKind::InvalidState => "INVALID_STATE",
            RejectionKind::ProcessingError => "PROCESSING_ERROR",
            RejectionKind::Forbidden => "FORBIDDEN",
        }
    }
}

/// Why a command got no answer from the engine.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum CommandError {
    /// The engine rejected the command.
    #[error("Command '{intent}' rejected with code '{}': {reason}", kind.code())]
    Rejected {
        /// The command's intent, e.g. `CREATE`.
        intent: String,
        /// The rejection type.
        kind: RejectionKind,
        /// The engine's reason.
        reason: String,
    },
    /// The request was malformed before it reached the engine.
    #[error("{0}")]
    InvalidArgument(String),
    /// What the request refers to cannot exist (e.g. a key of no partition).
    #[error("{0}")]
    NotFound(String),
    /// The partition is over its in-flight limit, or out of disk.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The partition has no leader here, or is not serving.
    #[error("{0}")]
    Unavailable(String),
    /// This node does not lead the partition.
    #[error("partition {partition} is not led by this node{}", leader.map(|n| format!(" (node {n} leads it)")).unwrap_or_default())]
    NotLeader {
        /// The partition.
        partition: u32,
        /// The leader this node knows of.
        leader: Option<u32>,
    },
    /// No answer within the request timeout.
    #[error("{0}")]
    Timeout(String),
    /// The connection to the partition closed with the command in flight: it may
    /// or may not have been applied.
    #[error("{0}")]
    Aborted(String),
    /// The broker does not do this yet.
    #[error("{0}")]
    Unimplemented(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<CommandError> for tonic::Status {
    /// Zeebe's gateway mapping (reference §1.3).
    fn from(error: CommandError) -> tonic::Status {
        let message = error.to_string();
        match error {
            CommandError::Rejected { kind, .. } => match kind {
                RejectionKind::InvalidArgument => tonic::Status::invalid_argument(message),
                RejectionKind::NotFound => tonic::Status::not_found(message),
                RejectionKind::AlreadyExists => tonic::Status::already_exists(message),
                RejectionKind::InvalidState => tonic::Status::failed_precondition(message),
                RejectionKind::ProcessingError => tonic::Status::internal(message),
                RejectionKind::Forbidden => tonic::Status::permission_denied(message),
            },
            CommandError::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            CommandError::NotFound(_) => tonic::Status::not_found(message),
            CommandError::ResourceExhausted(_) => tonic::Status::resource_exhausted(message),
            CommandError::Unavailable(_) | CommandError::NotLeader { .. } => {
                tonic::Status::unavailable(message)
            }
            CommandError::Timeout(_) => tonic::Status::deadline_exceeded(message),
            CommandError::Aborted(_) => tonic::Status::aborted(message),
            CommandError::Unimplemented(_) => tonic::Status::unimplemented(message),
            CommandError::Internal(_) => tonic::Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn rejections_map_like_zeebe() {
        let cases = [
            (RejectionKind::InvalidArgument, Code::InvalidArgument),
            (RejectionKind::NotFound, Code::NotFound),
            (RejectionKind::AlreadyExists, Code::AlreadyExists),
            (RejectionKind::InvalidState, Code::FailedPrecondition),
            (RejectionKind::ProcessingError, Code::Internal),
            (RejectionKind::Forbidden, Code::PermissionDenied),
        ];
        for (kind, code) in cases {
            let status: tonic::Status = CommandError::Rejected {
                intent: "COMPLETE".into(),
                kind,
                reason: "job 5 not found".into(),
            }
            .into();
            assert_eq!(status.code(), code);
            assert_eq!(
                status.message(),
                format!(
                    "Command 'COMPLETE' rejected with code '{}': job 5 not found",
                    kind.code()
                )
            );
        }
    }

    #[test]
    fn gateway_errors_map_like_zeebe() {
        let s: tonic::Status = CommandError::ResourceExhausted("over limit".into()).into();
        assert_eq!(s.code(), Code::ResourceExhausted);
        let s: tonic::Status = CommandError::Timeout("late".into()).into();
        assert_eq!(s.code(), Code::DeadlineExceeded);
        let s: tonic::Status = CommandError::Unavailable("no leader".into()).into();
        assert_eq!(s.code(), Code::Unavailable);
        let s: tonic::Status = CommandError::Aborted("closed".into()).into();
        assert_eq!(s.code(), Code::Aborted);
    }
}

//! The clients of a broker simulation: they deploy one model, create
//! instances, activate and complete its jobs and publish its messages, each
//! through a partition leader's own command path (`Partition::prepare`, a
//! Raft proposal, an answer when the entry is applied), and keep what they
//! were told.
//!
//! The model: start → `work` (job) → message `go` (correlation key: the
//! instance's `id`) → `finish` (job) → end. A message that correlated twice
//! would create a second `finish` job in its instance.

use std::collections::BTreeMap;

use node::command::{CommandError, CommandReply, PartitionCommand};
use node::placement::PartitionId;
use tokio::sync::oneshot;

/// The deployed model, the one the nemesis suite runs against the real
/// binaries (`tests/nemesis/model.bpmn`).
pub const PROCESS: &str = include_str!("../../../tests/nemesis/model.bpmn");
/// Its process id.
pub const PROCESS_ID: &str = "nemesis";

/// A job stays locked to its worker this long (wall clock of the leader).
pub const JOB_TIMEOUT_MS: i64 = 2_000;
/// Messages wait this long for their instance.
pub const MESSAGE_TTL_MS: i64 = 600_000;
/// A message is published again after this long until its instance got it.
pub const REPUBLISH_AFTER_MS: u64 = 1_500;

/// What a request was.
#[derive(Clone, Debug)]
pub enum Op {
    /// The model's deployment.
    Deploy,
    /// An instance with this `id` variable.
    Create {
        /// The instance's `id` variable.
        id: u64,
    },
    /// Activation of jobs of a type.
    Activate,
    /// Completion of a job.
    Complete {
        /// The job.
        job: i64,
        /// Its type.
        job_type: String,
        /// Its instance's `id` variable.
        id: u64,
    },
    /// The message for instance `id`.
    Publish,
    /// Partition 1 is asked to scale up.
    ScaleUp,
}

/// A request waiting for its answer.
#[derive(Debug)]
pub struct InFlight {
    /// What it is.
    pub op: Op,
    /// The node it was sent to.
    pub node: u32,
    /// Its partition.
    pub partition: PartitionId,
    /// When it was sent.
    pub sent_ms: u64,
    /// Where the answer comes from.
    pub reply: oneshot::Receiver<Result<CommandReply, CommandError>>,
}

/// A job a worker holds, and when it will complete it.
#[derive(Clone, Debug)]
pub struct Held {
    /// The job.
    pub job: i64,
    /// Its type.
    pub job_type: String,
    /// Its partition.
    pub partition: PartitionId,
    /// Its instance's `id` variable.
    pub id: u64,
    /// Its instance.
    pub instance: i64,
    /// When the worker completes it.
    pub due_ms: u64,
}

/// The commands of the model.
pub fn deploy() -> PartitionCommand {
    PartitionCommand::Deploy {
        resources: vec![("sim.bpmn".into(), PROCESS.as_bytes().to_vec())],
    }
}

/// Creates an instance with `id`.
pub fn create(id: u64) -> PartitionCommand {
    PartitionCommand::CreateInstance {
        definition_key: 0,
        bpmn_process_id: PROCESS_ID.into(),
        version: -1,
        variables: format!(r#"{{"id":{id}}}"#),
        await_result: None,
        start_instructions: Vec::new(),
    }
}

/// Activates up to 8 jobs of `job_type`.
pub fn activate(job_type: &str) -> PartitionCommand {
    PartitionCommand::ActivateJobs {
        job_type: job_type.into(),
        worker: "sim".into(),
        timeout_ms: JOB_TIMEOUT_MS,
        max_jobs: 8,
        fetch_variables: Vec::new(),
    }
}

/// Completes `job`.
pub fn complete(job: i64) -> PartitionCommand {
    PartitionCommand::CompleteJob {
        job_key: job,
        variables: "{}".into(),
    }
}

/// Publishes the message of `instance`, whose `id` variable is `id`
/// (correlated by `id`, deduplicated per instance: a creation retried
/// after a lost answer makes two instances with one `id`, and each needs a
/// message of its own).
pub fn publish(id: u64, instance: i64) -> PartitionCommand {
    PartitionCommand::PublishMessage {
        name: "go".into(),
        correlation_key: id.to_string(),
        time_to_live_ms: MESSAGE_TTL_MS,
        message_id: format!("go-{id}-{instance}"),
        variables: "{}".into(),
    }
}

/// The `id` variable of an activated job.
pub fn job_id(variables: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(variables).ok()?;
    v.get("id")?.as_u64()
}

/// The messages still to publish: (`id`, instance) → when next.
pub type Publishing = BTreeMap<(u64, i64), u64>;

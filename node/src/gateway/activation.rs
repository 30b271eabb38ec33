//! Job activation with long polling, shared by gRPC `ActivateJobs` and REST
//! `POST /v2/jobs/activation`: one round asks every partition in turn for
//! the jobs still wanted; an empty round waits for a job signal of the type
//! (or `FULL_SWEEP_INTERVAL`) and asks again, until the long-polling
//! deadline.

use std::time::Duration;

use super::dispatch::Dispatcher;
use super::proto;
use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::routing::RoundRobin;

/// Most jobs one activation request may ask for.
pub const MAX_JOBS_PER_ACTIVATION: i32 = 10_000;
/// Longest long-polling time a client may ask for.
pub const MAX_LONG_POLL_MS: i64 = 10 * 60 * 1000;
/// A waiting activation (push stream or long poll) asks every partition this
/// often even without a signal: signals from other nodes are best effort.
pub const FULL_SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// What a client asks to activate, validated.
#[derive(Debug, Clone)]
pub struct Activation {
    /// Job type.
    pub job_type: String,
    /// Worker name.
    pub worker: String,
    /// Lock time in ms (at least 1).
    pub timeout_ms: i64,
    /// Most jobs to return (1..=MAX_JOBS_PER_ACTIVATION).
    pub max_jobs: u32,
    /// Variables to fetch; empty fetches all.
    pub fetch_variables: Vec<String>,
    /// How long to wait for a job: `None` answers at once.
    pub long_poll: Option<Duration>,
    /// Tenants whose jobs to activate (empty: the default tenant).
    pub tenant_ids: Vec<String>,
}

impl Activation {
    /// The long-polling wait for a client's `requestTimeout`: negative means
    /// none, 0 the configured default, else the value capped at
    /// `MAX_LONG_POLL_MS`.
    pub fn long_poll_of(request_timeout_ms: i64, default_ms: u64) -> Option<Duration> {
        match request_timeout_ms {
            t if t < 0 => None,
            0 => Some(Duration::from_millis(default_ms)),
            t => Some(Duration::from_millis(t.min(MAX_LONG_POLL_MS) as u64)),
        }
    }
}

/// Activates jobs on the partitions, one batch per partition that had some.
/// Holds the request while nothing is activatable and `long_poll` allows.
pub async fn activate(
    dispatcher: &Dispatcher,
    round_robin: &RoundRobin,
    request: &Activation,
) -> Result<Vec<Vec<proto::ActivatedJob>>, CommandError> {
    let context = dispatcher.context();
    let partitions = context.partitions();
    let deadline = request
        .long_poll
        .map(|wait| tokio::time::Instant::now() + wait);
    // Subscribed before the first round, so that jobs created while it runs
    // wake the wait below.
    let waiter = context.job_signals.subscribe(&request.job_type);
    loop {
        let mut batches = Vec::new();
        let mut remaining = request.max_jobs;
        let mut first_error = None;
        for partition in round_robin.order(partitions) {
            if remaining == 0 {
                break;
            }
            let command = PartitionCommand::ActivateJobs {
                job_type: request.job_type.clone(),
                worker: request.worker.clone(),
                timeout_ms: request.timeout_ms,
                max_jobs: remaining,
                fetch_variables: request.fetch_variables.clone(),
            };
            let command = crate::identity::tenants::asked(&request.tenant_ids, command)?;
            match dispatcher
                .execute(partition, command, dispatcher.request_timeout())
                .await
            {
                Ok(CommandReply::Jobs(jobs)) if !jobs.is_empty() => {
                    remaining = remaining.saturating_sub(jobs.len() as u32);
                    batches.push(jobs);
                }
                Ok(CommandReply::Jobs(_)) => {}
                Ok(other) => {
                    return Err(CommandError::Internal(format!(
                        "ActivateJobs: the partition answered with an unexpected reply {other:?}"
                    )))
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !batches.is_empty() {
            return Ok(batches);
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        // Nothing activatable on any partition: hold the request (long
        // polling) until a partition signals jobs of this type, asking every
        // partition again at least every FULL_SWEEP_INTERVAL.
        let Some(deadline) = deadline else {
            return Ok(batches);
        };
        let now = tokio::time::Instant::now();
        if now >= deadline || context.view.stopping() {
            return Ok(batches);
        }
        let _ =
            tokio::time::timeout(FULL_SWEEP_INTERVAL.min(deadline - now), waiter.signalled()).await;
        waiter.take();
    }
}

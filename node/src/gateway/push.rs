//! `StreamActivatedJobs`: a worker's stream of pushed jobs.
//!
//! ```text
//! open ──> PushStreams::open(tx) ──> JobStream::Add on every partition
//!          (retried while a partition has no leader)
//!     │    leaders push each new job in the step that creates it
//!     └──> sweep: jobs that were activatable before (or given back) are
//!          pulled with ActivateJobs when a partition signals some
//! close ──> PushStreams::close ──> JobStream::Remove on every partition
//! ```
//!
//! In a cluster where a node does not read stream entries yet (an older
//! version during a rolling upgrade), the stream is fed by the sweep alone.

use std::sync::Arc;
use std::time::Duration;

use tonic::Status;

use super::activation::FULL_SWEEP_INTERVAL;
use super::dispatch::Dispatcher;
use super::proto;
use crate::cluster::CommandEncoding;
use crate::command::{CommandReply, PartitionCommand};
use crate::context::BrokerContext;
use crate::identity::caller::{Caller, CALLER};
use crate::identity::tenants;
use crate::placement::PartitionId;
use crate::push_streams::StreamChange;

/// Jobs activated for a push stream and not yet taken by the client: the
/// stream's credit; a job pushed beyond it goes back to its partition.
pub const MAX_PUSHED_JOBS_BUFFERED: usize = 256;

/// Longest pause between attempts to register a stream on a partition.
const MAX_REGISTER_PAUSE: Duration = Duration::from_secs(2);

type JobSender = tokio::sync::mpsc::Sender<Result<proto::ActivatedJob, Status>>;

/// Serves one stream until the client goes away.
pub async fn serve(
    dispatcher: Dispatcher,
    partitions: u32,
    request: proto::StreamActivatedJobsRequest,
    tx: JobSender,
) {
    let context = Arc::clone(dispatcher.context());
    let pushed = replicated_streams(&context).then(|| {
        let stream_id = context.push_streams.open(tx.clone());
        let add = PartitionCommand::JobStream(StreamChange::Add {
            stream_id,
            job_type: request.r#type.clone(),
            worker: request.worker.clone(),
            timeout_ms: request.timeout,
            fetch_variables: request.fetch_variable.clone(),
        });
        // The tenants were checked when the stream was opened.
        let add = tenants::asked(&request.tenant_ids, add.clone()).unwrap_or(add);
        let registering: Vec<_> = (1..=partitions)
            .map(|partition| {
                let registered = register(dispatcher.clone(), partition, add.clone(), tx.clone());
                (partition, spawn_as_caller(registered))
            })
            .collect();
        (stream_id, registering)
    });
    sweep(&dispatcher, partitions, &request, &tx).await;
    if let Some((stream_id, registering)) = pushed {
        context.push_streams.close(stream_id);
        let remove = PartitionCommand::JobStream(StreamChange::Remove { stream_id });
        for (partition, registered) in registering {
            let (dispatcher, remove) = (dispatcher.clone(), remove.clone());
            spawn_as_caller(async move {
                // After the registration, or a late one would outlive it.
                // Best effort: a push to a stream that is gone removes it too.
                let _ = registered.await;
                let _ = dispatcher
                    .execute(partition, remove, dispatcher.request_timeout())
                    .await;
            });
        }
    }
}

/// Whether every node reads stream entries in the log (version 0.2 and
/// later, as gossiped); always on a single node.
fn replicated_streams(context: &BrokerContext) -> bool {
    let members = context.membership.get().members;
    context.forwarder.is_none()
        || members
            .iter()
            .filter(|(_, m)| m.state != crate::membership::MemberState::Left)
            .map(|(n, _)| *n)
            .filter(|n| *n != context.config.cluster.node_id)
            .all(|n| context.topology.command_encoding(n) == CommandEncoding::Binary)
}

/// Runs `task` on its own, as the current caller.
fn spawn_as_caller(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    match Caller::current() {
        Some(caller) => tokio::spawn(CALLER.scope(caller, task)),
        None => tokio::spawn(task),
    }
}

/// Registers the stream on `partition`, retrying while it has no leader,
/// until it is registered or the client left.
async fn register(
    dispatcher: Dispatcher,
    partition: PartitionId,
    add: PartitionCommand,
    tx: JobSender,
) {
    let mut pause = Duration::from_millis(50);
    while !tx.is_closed() {
        match dispatcher
            .execute(partition, add.clone(), dispatcher.request_timeout())
            .await
        {
            Ok(_) => return,
            Err(e) => tracing::debug!(partition, "job stream not registered yet: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = tx.closed() => return,
        }
        pause = (pause * 2).min(MAX_REGISTER_PAUSE);
    }
}

/// Pulls the jobs that are activatable without having been pushed: asks the
/// partitions signalled for the stream's job type (and every partition each
/// FULL_SWEEP_INTERVAL) for as many jobs as the stream has room for, until
/// the client goes away. A busy worker holds the jobs back in the partition,
/// where other streams and pollers can take them.
async fn sweep(
    dispatcher: &Dispatcher,
    partitions: u32,
    request: &proto::StreamActivatedJobsRequest,
    tx: &JobSender,
) {
    let context = Arc::clone(dispatcher.context());
    let waiter = context.job_signals.subscribe(&request.r#type);
    let mut next_sweep = tokio::time::Instant::now();
    let mut first = 0u32;
    while !tx.is_closed() && !context.view.stopping() {
        let targets: Vec<u32> = if tokio::time::Instant::now() >= next_sweep {
            next_sweep = tokio::time::Instant::now() + FULL_SWEEP_INTERVAL;
            waiter.take();
            first = first.wrapping_add(1);
            (0..partitions)
                .map(|i| (first + i) % partitions + 1)
                .collect()
        } else {
            waiter.take().into_iter().collect()
        };
        for partition in targets {
            match tx.reserve().await {
                Ok(permit) => drop(permit),
                Err(_) => return,
            }
            let room = tx.capacity().max(1) as u32;
            let command = PartitionCommand::ActivateJobs {
                job_type: request.r#type.clone(),
                worker: request.worker.clone(),
                timeout_ms: request.timeout,
                max_jobs: room,
                fetch_variables: request.fetch_variable.clone(),
            };
            let Ok(command) = tenants::asked(&request.tenant_ids, command) else {
                return;
            };
            if let Ok(CommandReply::Jobs(jobs)) = dispatcher
                .execute(partition, command, dispatcher.request_timeout())
                .await
            {
                if jobs.len() as u32 >= room {
                    // There may be more: ask this partition again.
                    waiter.mark(partition);
                }
                for job in jobs {
                    if tx.send(Ok(job)).await.is_err() {
                        return;
                    }
                }
            }
        }
        if !waiter.is_marked() {
            tokio::select! {
                _ = waiter.signalled() => {}
                _ = tokio::time::sleep_until(next_sweep) => {}
                _ = tx.closed() => return,
            }
        }
    }
}

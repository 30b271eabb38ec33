//! Routing a validated command to its partition: the in-flight limit, the hop
//! to the owning shard, the request timeout, and the retry over other partitions
//! for requests that may go anywhere (instance creation, job activation).

use std::sync::Arc;
use std::time::Duration;

use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::context::BrokerContext;
use crate::placement::PartitionId;

/// Zeebe's message when every partition refused a command for load.
pub const ALL_PARTITIONS_EXHAUSTED: &str =
    "Expected to execute the command on one of the partitions, but all failed; \
                                            there are no more partitions available to retry.";

/// First pause before asking another replica for a partition's leader.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause between attempts while a partition elects a leader.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Runs `command` on a partition of this node (which must lead it).
pub async fn execute_local(
    context: &BrokerContext,
    partition: PartitionId,
    command: PartitionCommand,
    timeout: Duration,
) -> Result<CommandReply, CommandError> {
    if !context.view.is_local(partition) {
        return Err(CommandError::NotLeader {
            partition,
            leader: None,
        });
    }
    let name = command.name();
    let answer = context.shards.submit(partition, command)?;
    match tokio::time::timeout(timeout, answer).await {
        Err(_) => Err(CommandError::Timeout(format!(
            "{name}: partition {partition} did not answer within {} ms",
            timeout.as_millis()
        ))),
        Ok(Err(_)) => Err(CommandError::Aborted(format!(
            "{name}: partition {partition} dropped the command; it may or may not have been applied"
        ))),
        Ok(Ok(result)) => result,
    }
}

/// The local side of forwarded traffic: what other nodes ask of this one.
impl crate::cluster::Local for BrokerContext {
    fn raft(&self, envelope: raft::Envelope) {
        let (from, to) = (envelope.from, envelope.to);
        let mut by_partition: std::collections::BTreeMap<PartitionId, Vec<raft::GroupMessage>> =
            std::collections::BTreeMap::new();
        for m in envelope.messages {
            by_partition
                .entry(m.group as PartitionId)
                .or_default()
                .push(m);
        }
        for (partition, messages) in by_partition {
            if !self.view.is_local(partition) {
                continue;
            }
            let request = crate::shard::ShardRequest::Raft(raft::Envelope { from, to, messages });
            if !self.shards.try_send(partition, request) {
                tracing::debug!(partition, "shard queue full; Raft messages dropped");
            }
        }
    }

    async fn execute(
        &self,
        partition: PartitionId,
        command: PartitionCommand,
    ) -> Result<CommandReply, CommandError> {
        let timeout = Duration::from_millis(self.config.gateway.request_timeout_ms);
        execute_local(self, partition, command, timeout).await
    }

    fn topology(&self, from: u32, payload: &[u8]) {
        crate::gossip::on_received(self, from, payload);
    }

    fn jobs_available(&self, partition: PartitionId, types: Vec<String>) {
        for t in types {
            self.job_signals.signal(&t, partition);
        }
    }

    fn pushed_job(
        &self,
        partition: PartitionId,
        stream_id: u64,
        job: crate::gateway::proto::ActivatedJob,
    ) {
        self.push_streams.deliver(partition, stream_id, job);
    }

    fn internal(&self, partition: PartitionId, record: engine::Record) {
        if self.view.is_local(partition) {
            let _ = self.shards.try_send(
                partition,
                crate::shard::ShardRequest::Internal {
                    partition,
                    record: Box::new(record),
                    forwarded: true,
                },
            );
        }
    }
}

/// Sends commands to partitions. Cheap to clone; one per gateway service.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    context: Arc<BrokerContext>,
}

impl Dispatcher {
    /// A dispatcher over the broker's shards.
    pub fn new(context: Arc<BrokerContext>) -> Self {
        Self { context }
    }

    /// The shared broker state.
    pub fn context(&self) -> &Arc<BrokerContext> {
        &self.context
    }

    /// The gateway's request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.context.config.gateway.request_timeout_ms)
    }

    /// Executes `command` on `partition` within `timeout`: on this node when
    /// it leads the partition, else forwarded to the leader (learned from the
    /// replicas' answers, retried across a leader change until `timeout`).
    pub async fn execute(
        &self,
        partition: PartitionId,
        command: PartitionCommand,
        timeout: Duration,
    ) -> Result<CommandReply, CommandError> {
        let context = &self.context;
        let command = crate::identity::caller::within_caller(command)?;
        if context.view.stopping() {
            return Err(CommandError::Unavailable(format!(
                "{} not accepted: the broker is shutting down",
                command.name()
            )));
        }
        let permit = if command.drains_work() {
            None
        } else {
            Some(context.limits.get(partition).try_acquire().ok_or_else(|| {
                CommandError::ResourceExhausted(format!(
                    "{} refused: partition {partition} has reached its limit of commands in flight \
                     (backpressure); retry later",
                    command.name()
                ))
            })?)
        };
        let result = self.route(partition, command, timeout).await;
        if let Some(permit) = permit {
            if result.is_ok() {
                permit.complete();
            }
        }
        result
    }

    async fn route(
        &self,
        partition: PartitionId,
        command: PartitionCommand,
        timeout: Duration,
    ) -> Result<CommandReply, CommandError> {
        let context = &self.context;
        let me = context.config.cluster.node_id;
        let replicas = context.membership.replica_nodes(partition);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next_replica = 0;
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            let target = context.leaders.get(partition).unwrap_or_else(|| {
                let node = replicas[next_replica % replicas.len()];
                next_replica += 1;
                node
            });
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = match &context.forwarder {
                Some(forwarder) if target != me => {
                    if forwarder.handle().is_connected(target) {
                        let encoding = context.topology.command_encoding(target);
                        forwarder
                            .forward(target, partition, &command, left, encoding)
                            .await
                    } else {
                        Err(CommandError::Unavailable(format!(
                            "{}: node {target}, a replica of partition {partition}, is not connected",
                            command.name()
                        )))
                    }
                }
                _ => execute_local(context, partition, command.clone(), left).await,
            };
            let retry = match &result {
                Err(CommandError::NotLeader { leader, .. }) => {
                    context
                        .leaders
                        .set(partition, leader.filter(|l| *l != target));
                    true
                }
                Err(CommandError::Unavailable(_)) if context.forwarder.is_some() => {
                    // Unless a new leader was learned meanwhile.
                    if context.leaders.get(partition) == Some(target) {
                        context.leaders.set(partition, None);
                    }
                    true
                }
                Ok(_) => {
                    context.leaders.set(partition, Some(target));
                    false
                }
                Err(_) => false,
            };
            if !retry {
                return result;
            }
            let now = tokio::time::Instant::now();
            if now + pause >= deadline {
                return match result {
                    Err(CommandError::NotLeader { .. }) => Err(CommandError::Unavailable(format!(
                        "{}: partition {partition} has no reachable leader (tried for {} ms)",
                        command.name(),
                        timeout.as_millis()
                    ))),
                    other => other,
                };
            }
            if context.leaders.get(partition).is_none() {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }

    /// Executes `command` on the first partition of `order` that accepts it; a
    /// partition refusing it for load passes it to the next. Fails with
    /// `RESOURCE_EXHAUSTED` when every partition refused it for load.
    pub async fn execute_anywhere(
        &self,
        order: &[PartitionId],
        command: PartitionCommand,
        timeout: Duration,
    ) -> Result<(PartitionId, CommandReply), CommandError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut refusals = Vec::new();
        for partition in order {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.execute(*partition, command.clone(), left).await {
                Ok(reply) => return Ok((*partition, reply)),
                Err(CommandError::ResourceExhausted(reason)) => refusals.push(reason),
                Err(other) => return Err(other),
            }
        }
        Err(CommandError::ResourceExhausted(format!(
            "{ALL_PARTITIONS_EXHAUSTED} ({})",
            refusals.join("; ")
        )))
    }
}

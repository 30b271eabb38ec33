//! The loop that carries a cluster change out on this broker, every
//! [`STEP_INTERVAL`]: it asks the shards where each local replica stands
//! (reported to the others through gossip), applies again the forced
//! reconfigurations of a pending forced change that its replicas do not
//! hold, and, on the change's coordinator, moves the change on by the
//! reports ([`super::change::advance`]), storing each new configuration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::change::{self, ReplicaReport};
use crate::context::BrokerContext;
use crate::placement::PartitionId;
use crate::shard::MembershipRequest;

/// How often the loop turns.
pub const STEP_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait for a shard's answer.
const SHARD_ANSWER: Duration = Duration::from_secs(1);

/// Runs until the broker stops.
pub async fn run(context: Arc<BrokerContext>) {
    let me = context.config.cluster.node_id;
    let mut tick = tokio::time::interval(STEP_INTERVAL);
    while !context.view.stopping() {
        tick.tick().await;
        let config = context.membership.get();
        let local = local_reports(&context, &config.local_partitions(me)).await;
        for (p, voters) in change::local_forces(&config, me) {
            let held = local
                .get(&p)
                .is_some_and(|r| !r.joint && r.voters == voters);
            if !held {
                tracing::warn!(
                    partition = p,
                    ?voters,
                    "forced reconfiguration of partition {p} to brokers {voters:?} (cluster change)"
                );
                let (reply, answer) = oneshot::channel();
                let request = MembershipRequest::Force { voters, reply };
                if context.shards.membership(p, request) {
                    let _ = tokio::time::timeout(SHARD_ANSWER, answer).await;
                }
            }
        }
        context.membership.report(me, local);
        let coordinating = config
            .pending_change
            .as_ref()
            .is_some_and(|c| c.coordinator == me);
        if coordinating {
            let reports = context.membership.reports();
            if let Some(next) = change::advance(&config, &reports, crate::view::unix_now_ms()) {
                if let Err(e) = context.membership.adopt(next) {
                    tracing::error!("cannot store the cluster configuration: {e:#}");
                }
            }
        }
    }
}

/// Where each local replica stands, from its shard.
async fn local_reports(
    context: &BrokerContext,
    partitions: &[PartitionId],
) -> BTreeMap<PartitionId, ReplicaReport> {
    let mut out = BTreeMap::new();
    for &p in partitions {
        let (reply, answer) = oneshot::channel();
        if !context
            .shards
            .membership(p, MembershipRequest::Status { reply })
        {
            continue;
        }
        if let Ok(Ok(Some(m))) = tokio::time::timeout(SHARD_ANSWER, answer).await {
            let report = ReplicaReport {
                voters: m.voters,
                joint: m.joint,
                durable_voters: m.durable_voters,
                durable_priorities: m.durable_priorities,
            };
            out.insert(p, report);
        }
    }
    out
}

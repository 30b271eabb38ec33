//! The loop that carries the cluster configuration out on this broker, every
//! [`STEP_INTERVAL`]:
//!
//! - until the configuration is known (an empty data directory, see
//!   [`super::store::Start`]), it waits for one from gossip, or takes the one
//!   of `[cluster]` once a majority of the cluster's brokers have none;
//! - it opens the replicas the configuration gives this broker (and the one
//!   a pending join brings here) and closes, deleting its data, a replica the
//!   configuration no longer gives it;
//! - while a change is pending: it asks the shards where each local replica
//!   stands (reported to the others through gossip), applies again the
//!   forced reconfigurations its replicas do not hold, proposes the voters
//!   and priorities of the current operation on the partitions it leads (a
//!   joining broker first as a learner, a voter once caught up), and
//!   on the change's coordinator moves the change on by the reports
//!   ([`super::change::advance`]), storing each new configuration; the
//!   lowest live member takes over from a coordinator that is gone
//!   ([`super::change::take_over`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::change::{self, FenceReport, PendingChange, ReplicaReport};
use super::plan::Operation;
use super::ClusterConfiguration;
use crate::consensus::ReplicaMembership;
use crate::context::BrokerContext;
use crate::placement::{NodeId, PartitionId};
use crate::shard::MembershipRequest;

/// How often the loop turns.
pub const STEP_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait for a shard's answer about a replica.
const SHARD_ANSWER: Duration = Duration::from_secs(1);
/// Longest wait for a shard to open or delete a replica.
const SHARD_OPEN: Duration = Duration::from_secs(60);
/// How often a broker waiting for its configuration says so.
const WAITING_LOG: Duration = Duration::from_secs(5);
/// A SCALE_UP sent to partition 1 that its leader has not reported begun
/// after this is sent again.
const SCALE_UP_AGAIN: Duration = Duration::from_secs(2);
/// How long a broker without a configuration collects the ones gossip
/// offers before it takes the newest: messages queued for it while it was
/// down arrive first, and may be of a configuration long replaced; the
/// senders' current ones follow within two gossip rounds.
const OFFER_SETTLE: Duration = Duration::from_secs(1);

/// Runs until the broker stops.
pub async fn run(context: Arc<BrokerContext>) {
    let me = context.config.cluster.node_id;
    let mut tick = tokio::time::interval(STEP_INTERVAL);
    let dispatcher = crate::gateway::dispatch::Dispatcher::new(Arc::clone(&context));
    let mut said_waiting: Option<Instant> = None;
    // The change and time of the last SCALE_UP sent to partition 1.
    let mut scaled: Option<(u64, Instant)> = None;
    // Until then, a broker not heard from may only not be heard yet.
    let heard_all_at = Instant::now() + 2 * crate::gossip::STALE_AFTER;
    while !context.view.stopping() {
        tick.tick().await;
        if !context.membership.known() && !take_configuration(&context, &mut said_waiting) {
            continue;
        }
        let config = context.membership.get();
        if reconcile(&context, &config, me).await {
            context.view.set_configured(true);
        }
        let Some(change) = &config.pending_change else {
            // Nothing to report: no stale report goes on being gossiped.
            context.membership.report(me, BTreeMap::new());
            continue;
        };
        let live: BTreeSet<NodeId> = context.topology.live().iter().map(|s| s.node).collect();
        let taken = (Instant::now() >= heard_all_at)
            .then(|| change::take_over(&config, me, &live))
            .flatten();
        if let Some(next) = taken {
            tracing::warn!(
                "coordinator {} of cluster change {} is gone; this broker carries the change on",
                change.coordinator,
                change.id
            );
            adopt(&context, next);
            continue;
        }
        let local = local_states(&context).await;
        force_again(&context, &config, me, &local).await;
        propose(&context, &config, change, &local).await;
        let reports = local
            .iter()
            .map(|(p, m)| (*p, report_of(m, change.id)))
            .collect::<BTreeMap<_, _>>();
        context.membership.report(me, reports);
        if change.coordinator == me {
            let due =
                scaled.is_none_or(|(id, at)| id != change.id || at.elapsed() >= SCALE_UP_AGAIN);
            if due && scale_up(&dispatcher, change).await {
                scaled = Some((change.id, Instant::now()));
            }
            let reports = context.membership.reports_for(change.id);
            if let Some(next) = change::advance(&config, &reports, crate::view::unix_now_ms()) {
                adopt(&context, next);
            }
        }
    }
}

/// For a broker that does not know the configuration: takes the newest one
/// gossip offered once settled, or `[cluster]`'s when no broker offers one
/// and a majority of them have none (a new cluster). True once known.
fn take_configuration(context: &BrokerContext, said_waiting: &mut Option<Instant>) -> bool {
    let taken = match context.membership.take_offered(OFFER_SETTLE) {
        Ok(Some(version)) => {
            tracing::info!(
                "took the cluster configuration the other brokers gossip (version {version})"
            );
            return true;
        }
        Ok(None) if context.membership.offered() => return false,
        Ok(None) if a_majority_has_none(context) => context.membership.take_initial(),
        Ok(None) => {
            if said_waiting.is_none_or(|at| at.elapsed() >= WAITING_LOG) {
                tracing::info!(
                    "empty data directory: waiting for the cluster configuration from the \
                     other brokers (or for a majority of them to have none: a new cluster)"
                );
                *said_waiting = Some(Instant::now());
            }
            return false;
        }
        Err(e) => Err(e),
    };
    match taken {
        Ok(()) => {
            tracing::info!(
                "a new cluster: a majority of its brokers have no configuration; took the one \
                 of [cluster]"
            );
            true
        }
        Err(e) => {
            tracing::error!("cannot store the cluster configuration: {e:#}");
            false
        }
    }
}

/// Stores and shares a configuration this broker moved on; a failed write
/// is logged and the step is tried again next turn.
fn adopt(context: &BrokerContext, next: ClusterConfiguration) {
    if let Err(e) = context.membership.adopt(next) {
        tracing::error!("cannot store the cluster configuration: {e:#}");
    }
}

/// Whether a majority of `[cluster]`'s brokers (this one included) are
/// known to have no configuration: a new cluster, started from `[cluster]`.
/// A broker outside `[cluster]`'s brokers never starts one.
fn a_majority_has_none(context: &BrokerContext) -> bool {
    let (me, size) = (context.config.cluster.node_id, context.config.cluster.size);
    if me >= size {
        return false;
    }
    let without = context
        .topology
        .live()
        .iter()
        .filter(|s| s.node < size && s.node != me && s.configuration.is_none())
        .count() as u32;
    (without + 1) * 2 > size
}

/// Opens the replicas `config` gives this broker, and the one the current
/// operation joins to it; closes the ones it no longer gives it, once no
/// pending operation concerns them. True when every replica it gives is
/// open.
async fn reconcile(context: &BrokerContext, config: &ClusterConfiguration, me: NodeId) -> bool {
    let mut wanted: BTreeSet<PartitionId> = config.local_partitions(me).into_iter().collect();
    let mut busy = BTreeSet::new();
    let mut joining = None;
    if let Some(change) = &config.pending_change {
        busy.extend(
            change
                .pending
                .iter()
                .filter(|op| op.broker() == me)
                .filter_map(Operation::partition),
        );
        if let Some(Operation::PartitionJoin {
            broker_id,
            partition_id,
            ..
        }) = change.pending.first()
        {
            if *broker_id == me {
                wanted.insert(*partition_id);
                joining = Some((*partition_id, change.id));
            }
        }
        // The new partitions open all at once: each needs a quorum of its
        // replicas to elect a leader.
        wanted.extend(change.pending.iter().filter_map(|op| match op {
            Operation::PartitionBootstrap {
                broker_id,
                partition_id,
                ..
            } if *broker_id == me => Some(*partition_id),
            _ => None,
        }));
    }
    let held: BTreeSet<PartitionId> = context.view.roles().into_iter().map(|(p, _)| p).collect();
    let mut complete = true;
    for &p in wanted.difference(&held) {
        let fence = match joining {
            Some((partition, change)) if partition == p => {
                let Some(fence) = leader_fence(&context.membership.reports_for(change), p) else {
                    tracing::debug!(
                        partition = p,
                        "waiting for the leader of partition {p} to say where it stands"
                    );
                    complete = false;
                    continue;
                };
                Some(fence.into())
            }
            _ => None,
        };
        let (reply, answer) = oneshot::channel();
        complete &= ask(context, p, MembershipRequest::Join { fence, reply }, answer).await;
    }
    for &p in held.difference(&wanted).filter(|p| !busy.contains(p)) {
        let (reply, answer) = oneshot::channel();
        ask(context, p, MembershipRequest::Leave { reply }, answer).await;
    }
    complete
}

/// Where the leader of `partition` (in the highest term reported) says its
/// group stands: a broker joins a group only from there (see
/// [`replica::JoinFence`]).
fn leader_fence(reports: &super::Reports, partition: PartitionId) -> Option<FenceReport> {
    reports
        .values()
        .filter_map(|replicas| replicas.get(&partition)?.fence)
        .max_by_key(|f| (f.term, f.index))
}

/// Hands an open or close to the shard of `partition`; true once done.
async fn ask(
    context: &BrokerContext,
    partition: PartitionId,
    request: MembershipRequest,
    answer: oneshot::Receiver<Result<(), String>>,
) -> bool {
    if !context.shards.membership(partition, request) {
        return false;
    }
    matches!(
        tokio::time::timeout(SHARD_OPEN, answer).await,
        Ok(Ok(Ok(())))
    )
}

/// Where each local replica stands, from its shard.
async fn local_states(context: &BrokerContext) -> BTreeMap<PartitionId, ReplicaMembership> {
    let mut out = BTreeMap::new();
    for (p, _) in context.view.roles() {
        let (reply, answer) = oneshot::channel();
        if !context
            .shards
            .membership(p, MembershipRequest::Status { reply })
        {
            continue;
        }
        if let Ok(Ok(Some(m))) = tokio::time::timeout(SHARD_ANSWER, answer).await {
            out.insert(p, m);
        }
    }
    out
}

fn report_of(m: &ReplicaMembership, change: u64) -> ReplicaReport {
    ReplicaReport {
        change: Some(change),
        voters: m.voters.clone(),
        joint: m.joint,
        durable_voters: m.durable_voters.clone(),
        durable_priorities: m.durable_priorities.clone(),
        scaling: m.scaling,
        fence: m.fence.map(Into::into),
    }
}

/// Applies again the forced reconfigurations of a pending forced change
/// that this broker's replicas do not hold (after a restart, too).
async fn force_again(
    context: &BrokerContext,
    config: &ClusterConfiguration,
    me: NodeId,
    local: &BTreeMap<PartitionId, ReplicaMembership>,
) {
    for (p, voters) in change::local_forces(config, me) {
        let held = local
            .get(&p)
            .is_some_and(|r| !r.joint && r.voters == voters);
        if held {
            continue;
        }
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

/// On the leader of the current operation's partition, proposes the voters
/// and priorities the operation asks for, unless its replica holds them or
/// is between two configurations. A joining broker is first made a learner
/// and becomes a voter once it has caught up (see [`step_of`]).
async fn propose(
    context: &BrokerContext,
    config: &ClusterConfiguration,
    change: &PendingChange,
    local: &BTreeMap<PartitionId, ReplicaMembership>,
) {
    let Some(op) = change.pending.first() else {
        return;
    };
    let Some(p) = op.partition() else {
        return;
    };
    let Some(state) = local.get(&p).filter(|m| m.leader && !m.joint) else {
        return;
    };
    let Some(voters) = target(config, op) else {
        return;
    };
    let (reply, answer) = oneshot::channel();
    let request = match step_of(op, state, voters) {
        Step::Hold => return,
        Step::Wait(learner) => {
            tracing::debug!(
                partition = p,
                "broker {learner} is catching up as a learner"
            );
            return;
        }
        Step::Learners(learners) => {
            tracing::info!(
                partition = p,
                ?learners,
                "proposing the learners of partition {p} (cluster change: {op:?})"
            );
            MembershipRequest::Learners { learners, reply }
        }
        Step::Voters(voters) => {
            tracing::info!(
                partition = p,
                ?voters,
                "proposing the voters of partition {p} (cluster change: {op:?})"
            );
            MembershipRequest::Propose { voters, reply }
        }
    };
    if context.shards.membership(p, request) {
        if let Ok(Ok(Err(why))) = tokio::time::timeout(SHARD_ANSWER, answer).await {
            tracing::debug!(partition = p, "not proposed now: {why}");
        }
    }
}

/// What the leader of an operation's partition does next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Nothing: its replica holds the operation's configuration.
    Hold,
    /// Nothing yet: this joining broker is a learner still catching up.
    Wait(NodeId),
    /// Propose these learners: the joining broker, or none to drop a
    /// learner no operation is joining.
    Learners(BTreeSet<NodeId>),
    /// Propose these voters and priorities.
    Voters(BTreeMap<NodeId, u32>),
}

/// The next step towards `voters`, the configuration `op` leads to, from
/// the leader's replica `state`: a broker joins as a learner first, and is
/// made a voter once caught up; a learner left from a join that was not
/// carried out (its change was replaced) is dropped first.
fn step_of(op: &Operation, state: &ReplicaMembership, voters: BTreeMap<NodeId, u32>) -> Step {
    let joining = match op {
        Operation::PartitionJoin { broker_id, .. } if !state.voters.contains(broker_id) => {
            Some(*broker_id)
        }
        _ => None,
    };
    let learners: BTreeSet<NodeId> = joining.into_iter().collect();
    if let Some(broker) = joining {
        if state.learners != learners {
            return Step::Learners(learners);
        }
        if !state.caught_up.contains(&broker) {
            return Step::Wait(broker);
        }
    } else if !state.learners.is_empty() {
        return Step::Learners(learners);
    }
    let holds = state.voters == voters.keys().copied().collect()
        && voters
            .iter()
            .all(|(n, priority)| state.priorities.get(n) == Some(priority));
    if holds {
        Step::Hold
    } else {
        Step::Voters(voters)
    }
}

/// On the coordinator, while the current operation starts a scale up: asks
/// partition 1 for it; true once asked. It is asked again after
/// [`SCALE_UP_AGAIN`] while its leader has not reported it begun (a
/// repeated request is answered or refused without effect).
async fn scale_up(
    dispatcher: &crate::gateway::dispatch::Dispatcher,
    change: &PendingChange,
) -> bool {
    let Some(Operation::StartPartitionScaleUp {
        desired_partition_count,
        ..
    }) = change.pending.first()
    else {
        return false;
    };
    let command = crate::command::PartitionCommand::ScaleUp {
        desired_partition_count: *desired_partition_count,
    };
    let timeout = dispatcher.request_timeout();
    match dispatcher
        .execute(crate::routing::DEPLOYMENT_PARTITION, command, timeout)
        .await
    {
        Ok(_) => tracing::info!(
            "partition 1 scales up to {desired_partition_count} partitions (cluster change {})",
            change.id
        ),
        Err(e) => tracing::debug!("scale up not started now: {e}"),
    }
    true
}

/// The voters (broker to priority) of the operation's partition once `op`
/// is done; `None` for an operation that proposes nothing.
fn target(config: &ClusterConfiguration, op: &Operation) -> Option<BTreeMap<NodeId, u32>> {
    let mut voters: BTreeMap<NodeId, u32> = config.replicas(op.partition()?).into_iter().collect();
    match op {
        Operation::PartitionJoin {
            broker_id,
            priority,
            ..
        }
        | Operation::PartitionReconfigurePriority {
            broker_id,
            priority,
            ..
        } => {
            voters.insert(*broker_id, *priority);
        }
        Operation::PartitionLeave { broker_id, .. } => {
            voters.remove(broker_id);
        }
        _ => return None,
    }
    Some(voters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::ClusterShape;

    #[test]
    fn each_operation_proposes_the_voters_it_leads_to() {
        let shape = ClusterShape {
            cluster_size: 3,
            partitions: 1,
            replication_factor: 2,
        };
        let config = ClusterConfiguration::initial(&shape, 0);
        assert_eq!(config.replicas(1), [(0, 2), (1, 1)]);
        let join = Operation::PartitionJoin {
            broker_id: 2,
            partition_id: 1,
            priority: 3,
        };
        assert_eq!(
            target(&config, &join),
            Some([(0, 2), (1, 1), (2, 3)].into())
        );
        let leave = Operation::PartitionLeave {
            broker_id: 0,
            partition_id: 1,
        };
        assert_eq!(target(&config, &leave), Some([(1, 1)].into()));
        let priority = Operation::PartitionReconfigurePriority {
            broker_id: 1,
            partition_id: 1,
            priority: 5,
        };
        assert_eq!(target(&config, &priority), Some([(0, 2), (1, 5)].into()));
        assert_eq!(
            target(&config, &Operation::BrokerAdd { broker_id: 2 }),
            None
        );
    }

    #[test]
    fn a_joining_broker_votes_only_after_catching_up_as_a_learner() {
        let join = Operation::PartitionJoin {
            broker_id: 2,
            partition_id: 1,
            priority: 3,
        };
        let target: BTreeMap<NodeId, u32> = [(0, 2), (1, 1), (2, 3)].into();
        let mut state = ReplicaMembership {
            leader: true,
            voters: [0, 1].into(),
            priorities: [(0, 2), (1, 1)].into(),
            joint: false,
            durable_voters: [0, 1].into(),
            durable_priorities: [(0, 2), (1, 1)].into(),
            learners: BTreeSet::new(),
            caught_up: BTreeSet::new(),
            scaling: None,
            fence: None,
        };
        assert_eq!(
            step_of(&join, &state, target.clone()),
            Step::Learners([2].into())
        );
        state.learners = [2].into();
        assert_eq!(step_of(&join, &state, target.clone()), Step::Wait(2));
        state.caught_up = [2].into();
        assert_eq!(
            step_of(&join, &state, target.clone()),
            Step::Voters(target.clone())
        );
        // Promoted: no longer a learner, and the configuration is held.
        state.learners.clear();
        state.caught_up.clear();
        state.voters = [0, 1, 2].into();
        state.priorities = target.clone();
        assert_eq!(step_of(&join, &state, target.clone()), Step::Hold);
        // A learner no operation joins any more is dropped first.
        state.learners = [3].into();
        let priority = Operation::PartitionReconfigurePriority {
            broker_id: 1,
            partition_id: 1,
            priority: 5,
        };
        assert_eq!(
            step_of(&priority, &state, [(0, 2), (1, 5), (2, 3)].into()),
            Step::Learners(BTreeSet::new())
        );
        assert_eq!(
            step_of(&join, &state, target),
            Step::Learners(BTreeSet::new()),
            "broker 2 is a voter already"
        );
        // ... and one joining in place of another replaces it.
        let join4 = Operation::PartitionJoin {
            broker_id: 4,
            partition_id: 1,
            priority: 1,
        };
        assert_eq!(
            step_of(&join4, &state, [(0, 2), (1, 1), (2, 3), (4, 1)].into()),
            Step::Learners([4].into())
        );
    }

    #[test]
    fn a_joining_broker_takes_the_fence_of_the_leader_in_the_highest_term() {
        let report = |fence: Option<FenceReport>| ReplicaReport {
            voters: [0, 1].into(),
            joint: false,
            durable_voters: [0, 1].into(),
            durable_priorities: BTreeMap::new(),
            change: Some(3),
            scaling: None,
            fence,
        };
        let fence = |term, index| FenceReport {
            term,
            index,
            index_term: term,
        };
        let mut reports = super::super::Reports::new();
        reports.insert(
            0,
            [(1, report(None)), (2, report(Some(fence(4, 90))))].into(),
        );
        assert_eq!(
            leader_fence(&reports, 1),
            None,
            "no leader said where it stands"
        );
        // A deposed leader that still reports, and the present one.
        reports.insert(1, [(1, report(Some(fence(2, 40))))].into());
        reports.insert(2, [(1, report(Some(fence(3, 35))))].into());
        assert_eq!(leader_fence(&reports, 1), Some(fence(3, 35)));
        assert_eq!(leader_fence(&reports, 2), Some(fence(4, 90)));
    }
}

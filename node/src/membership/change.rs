//! Running a planned change: one at a time, its operations in order, each
//! complete once the brokers it concerns report it done through gossip; the
//! change is kept in the configuration file, so a restarted coordinator goes
//! on where it was and a restarted broker repeats its own part.
//!
//! The steps are pure functions of the configuration and the replicas'
//! reports ([`advance`], [`local_forces`]); the broker's loop only carries
//! them out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::plan::{Operation, Plan};
use super::{ClusterConfiguration, CompletedChange, Member, MemberState, Replica, ReplicaState};
use crate::placement::{NodeId, PartitionId};

/// A change under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// Its id.
    pub id: u64,
    /// The broker that runs it.
    pub coordinator: NodeId,
    /// When it started (Unix ms).
    pub started_ms: u64,
    /// The operations done, with when (Unix ms).
    pub completed: Vec<(Operation, u64)>,
    /// The operations left, the next first.
    pub pending: Vec<Operation>,
}

/// What a replica reports of its partition's voters (broker ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaReport {
    /// The voters of its applied configuration.
    pub voters: BTreeSet<NodeId>,
    /// A joint-consensus change is under way.
    pub joint: bool,
    /// The voters it would restart with.
    pub durable_voters: BTreeSet<NodeId>,
    /// Their election priorities in that configuration.
    #[serde(default)]
    pub durable_priorities: BTreeMap<NodeId, u32>,
    /// The change it was made for; a report of another change (a replica
    /// that was closed since, a configuration taken from stale gossip) says
    /// nothing of this one. `None` from brokers before it was kept.
    #[serde(default)]
    pub change: Option<u64>,
    /// From the leader of partition 1: where a scale up stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingReport>,
    /// From a leader: where its group stands, for a broker that joins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<FenceReport>,
}

/// A leader's [`replica::JoinFence`], as gossiped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceReport {
    /// The leader's term.
    pub term: u64,
    /// Its last applied index.
    pub index: u64,
    /// The term of that entry.
    pub index_term: u64,
}

impl From<replica::JoinFence> for FenceReport {
    fn from(f: replica::JoinFence) -> Self {
        FenceReport {
            term: f.term,
            index: f.index,
            index_term: f.index_term,
        }
    }
}

impl From<FenceReport> for replica::JoinFence {
    fn from(f: FenceReport) -> Self {
        replica::JoinFence {
            term: f.term,
            index: f.index,
            index_term: f.index_term,
        }
    }
}

/// Where partition 1's leader says a scale up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingReport {
    /// Its partition count (the desired one once a scale up began).
    pub partitions: u32,
    /// Every new partition is bootstrapped and every old one told.
    pub complete: bool,
}

/// Starts `plan` on `current`, run by `coordinator`; `None` while another
/// change is under way.
pub fn start(
    current: &ClusterConfiguration,
    plan: &Plan,
    coordinator: NodeId,
    now_ms: u64,
) -> Option<ClusterConfiguration> {
    if current.pending_change.is_some() {
        return None;
    }
    let id = current.last_change.as_ref().map_or(0, |c| c.id) + 1;
    let mut next = current.clone();
    next.version += 1;
    next.pending_change = Some(PendingChange {
        id,
        coordinator,
        started_ms: now_ms,
        completed: Vec::new(),
        pending: plan.operations.clone(),
    });
    Some(next)
}

/// The forced reconfigurations `me` must (still) apply to its replicas: a
/// forced change lives outside the log until it is durable, so a broker
/// repeats its part while the operation is pending, after a restart too.
pub fn local_forces(
    config: &ClusterConfiguration,
    me: NodeId,
) -> Vec<(PartitionId, BTreeSet<NodeId>)> {
    let Some(change) = &config.pending_change else {
        return Vec::new();
    };
    change
        .pending
        .iter()
        .filter_map(|op| match op {
            Operation::PartitionForceReconfigure {
                broker_id,
                partition_id,
                brokers,
            } if *broker_id == me => Some((*partition_id, brokers.iter().copied().collect())),
            _ => None,
        })
        .collect()
}

/// The configuration with `me` coordinating the pending change in place of
/// a coordinator that is gone (not heard from: not in `live`), if `me` is
/// the lowest member that is: a change must not wait for a broker that
/// died. `None` when there is nothing to take over.
pub fn take_over(
    config: &ClusterConfiguration,
    me: NodeId,
    live: &BTreeSet<NodeId>,
) -> Option<ClusterConfiguration> {
    let change = config.pending_change.as_ref()?;
    if change.coordinator == me || live.contains(&change.coordinator) {
        return None;
    }
    let lowest = config
        .members
        .iter()
        .filter(|(id, m)| m.state != MemberState::Left && (**id == me || live.contains(id)))
        .map(|(id, _)| *id)
        .next()?;
    if lowest != me {
        return None;
    }
    let mut next = config.clone();
    next.version += 1;
    if let Some(change) = &mut next.pending_change {
        change.coordinator = me;
    }
    Some(next)
}

/// Whether `op` is done, by the replicas' reports (`reports[broker][partition]`).
fn done(op: &Operation, reports: &BTreeMap<NodeId, BTreeMap<PartitionId, ReplicaReport>>) -> bool {
    let report = |b: &NodeId, p: &PartitionId| reports.get(b).and_then(|r| r.get(p));
    let scaled = |desired: u32, complete: bool| {
        reports
            .values()
            .filter_map(|r| r.get(&1)?.scaling)
            .any(|s| s.partitions >= desired && (s.complete || !complete))
    };
    match op {
        Operation::PartitionBootstrap {
            broker_id,
            partition_id,
            ..
        } => report(broker_id, partition_id).is_some_and(|r| r.durable_voters.contains(broker_id)),
        Operation::StartPartitionScaleUp {
            desired_partition_count,
            ..
        } => scaled(*desired_partition_count, false),
        Operation::AwaitRedistributionCompletion {
            desired_partition_count,
            ..
        } => scaled(*desired_partition_count, true),
        Operation::BrokerAdd { .. } | Operation::BrokerRemove { .. } => true,
        Operation::PartitionForceReconfigure {
            broker_id,
            partition_id,
            brokers,
        } => {
            let want: BTreeSet<NodeId> = brokers.iter().copied().collect();
            report(broker_id, partition_id).is_some_and(|r| !r.joint && r.durable_voters == want)
        }
        Operation::PartitionJoin {
            broker_id,
            partition_id,
            ..
        } => report(broker_id, partition_id)
            .is_some_and(|r| !r.joint && r.durable_voters.contains(broker_id)),
        Operation::PartitionLeave {
            broker_id,
            partition_id,
        } => reports
            .values()
            .filter_map(|r| r.get(partition_id))
            .any(|r| !r.joint && !r.voters.is_empty() && !r.durable_voters.contains(broker_id)),
        Operation::PartitionReconfigurePriority {
            broker_id,
            partition_id,
            priority,
        } => report(broker_id, partition_id)
            .is_some_and(|r| !r.joint && r.durable_priorities.get(broker_id) == Some(priority)),
    }
}

/// The configuration with `op` done.
fn apply(config: &mut ClusterConfiguration, op: &Operation, now_ms: u64) {
    match op {
        Operation::StartPartitionScaleUp { .. } => return,
        Operation::AwaitRedistributionCompletion {
            desired_partition_count,
            ..
        } => {
            config.message_partition_count = config.message_partitions();
            config.partition_count = config.partition_count.max(*desired_partition_count);
            return;
        }
        _ => {}
    }
    let member = config.members.entry(op.broker()).or_insert_with(|| Member {
        state: MemberState::Joining,
        version: 0,
        last_updated_ms: now_ms,
        partitions: BTreeMap::new(),
    });
    member.version += 1;
    member.last_updated_ms = now_ms;
    match op {
        Operation::BrokerAdd { .. } => member.state = MemberState::Active,
        Operation::BrokerRemove { .. } => {
            member.state = MemberState::Left;
            member.partitions.clear();
        }
        Operation::PartitionJoin {
            partition_id,
            priority,
            ..
        }
        | Operation::PartitionBootstrap {
            partition_id,
            priority,
            ..
        } => {
            let replica = Replica {
                state: ReplicaState::Active,
                priority: *priority,
            };
            member.partitions.insert(*partition_id, replica);
        }
        Operation::PartitionLeave { partition_id, .. } => {
            member.partitions.remove(partition_id);
        }
        Operation::PartitionReconfigurePriority {
            partition_id,
            priority,
            ..
        } => {
            if let Some(replica) = member.partitions.get_mut(partition_id) {
                replica.priority = *priority;
            }
        }
        // The surviving replicas stay; the lost ones go with BROKER_REMOVE.
        Operation::PartitionForceReconfigure { .. } => {}
        Operation::StartPartitionScaleUp { .. }
        | Operation::AwaitRedistributionCompletion { .. } => unreachable!("handled above"),
    }
}

/// Moves the change on by the operations the reports show done; the new
/// configuration (version raised) if anything moved, `None` otherwise. The
/// change ends (COMPLETED, in `last_change`) with its last operation.
pub fn advance(
    config: &ClusterConfiguration,
    reports: &BTreeMap<NodeId, BTreeMap<PartitionId, ReplicaReport>>,
    now_ms: u64,
) -> Option<ClusterConfiguration> {
    let change = config.pending_change.as_ref()?;
    let mut next = config.clone();
    let mut moved = false;
    let mut pending = change.pending.clone();
    let mut completed = change.completed.clone();
    while let Some(op) = pending.first() {
        if !done(op, reports) {
            break;
        }
        apply(&mut next, op, now_ms);
        completed.push((op.clone(), now_ms));
        pending.remove(0);
        moved = true;
    }
    if !moved {
        return None;
    }
    next.version += 1;
    next.pending_change = if pending.is_empty() {
        next.last_change = Some(CompletedChange {
            id: change.id,
            status: "COMPLETED".into(),
            started_ms: change.started_ms,
            completed_ms: now_ms,
        });
        None
    } else {
        Some(PendingChange {
            pending,
            completed,
            ..change.clone()
        })
    };
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::plan::{plan, PatchRequest};
    use crate::placement::ClusterShape;

    /// The configuration of a new cluster of `size` brokers, `partitions`
    /// of `replication_factor`, with the change `body` started by broker 0.
    fn started(
        size: u32,
        partitions: u32,
        replication_factor: u32,
        body: &str,
        force: bool,
    ) -> (ClusterConfiguration, Plan, ClusterConfiguration) {
        let shape = ClusterShape {
            cluster_size: size,
            partitions,
            replication_factor,
        };
        let current = ClusterConfiguration::initial(&shape, 0);
        let request: PatchRequest = serde_json::from_str(body).unwrap();
        let planned = plan(
            &current,
            &request,
            force,
            &crate::placement::Layout::uniform(),
        )
        .unwrap();
        let started = start(&current, &planned, 0, 10).expect("no change under way");
        (current, planned, started)
    }

    fn report(voters: &[NodeId], durable: &[NodeId], joint: bool) -> ReplicaReport {
        ReplicaReport {
            change: None,
            scaling: None,
            fence: None,
            voters: voters.iter().copied().collect(),
            joint,
            durable_voters: durable.iter().copied().collect(),
            durable_priorities: BTreeMap::new(),
        }
    }

    #[test]
    fn a_failover_completes_once_every_survivor_holds_the_forced_voters_durably() {
        let (current, planned, started) = started(4, 2, 4, r#"{"brokers":{"remove":[1,3]}}"#, true);
        assert_eq!(started.version, current.version + 1);
        assert!(
            start(&started, &planned, 2, 11).is_none(),
            "one change at a time"
        );
        let survivors: BTreeSet<NodeId> = [0, 2].into();
        assert_eq!(
            local_forces(&started, 2),
            [(1, survivors.clone()), (2, survivors.clone())]
        );
        assert!(local_forces(&started, 1).is_empty());

        let mut reports: BTreeMap<NodeId, BTreeMap<PartitionId, ReplicaReport>> = BTreeMap::new();
        assert!(
            advance(&started, &reports, 20).is_none(),
            "nothing done yet"
        );
        // Forced in memory, not yet durable: not done.
        for b in [0, 2] {
            reports
                .entry(b)
                .or_default()
                .insert(1, report(&[0, 2], &[0, 1, 2, 3], false));
        }
        assert!(advance(&started, &reports, 21).is_none());
        for b in [0, 2] {
            reports
                .get_mut(&b)
                .unwrap()
                .insert(1, report(&[0, 2], &[0, 2], false));
        }
        let halfway = advance(&started, &reports, 22).expect("partition 1 done");
        let change = halfway.pending_change.as_ref().unwrap();
        assert_eq!(change.completed.len(), 2);
        assert_eq!(local_forces(&halfway, 0), [(2, survivors.clone())]);
        for b in [0, 2] {
            reports
                .get_mut(&b)
                .unwrap()
                .insert(2, report(&[0, 2], &[0, 2], false));
        }
        let done = advance(&halfway, &reports, 30).expect("all done");
        assert!(done.pending_change.is_none());
        let last = done.last_change.as_ref().unwrap();
        assert_eq!(
            (last.id, last.status.as_str(), last.completed_ms),
            (1, "COMPLETED", 30)
        );
        assert_eq!(done.members[&1].state, MemberState::Left);
        assert_eq!(done.local_partitions(0), [1, 2]);
        assert_eq!(done.shape().replication_factor, 2);
        assert!(done.version > halfway.version);
        assert!(
            local_forces(&done, 0).is_empty(),
            "nothing to repeat once complete"
        );
    }

    #[test]
    fn the_lowest_live_member_takes_over_a_change_whose_coordinator_is_gone() {
        let (current, _, started) = started(4, 1, 4, r#"{"brokers":{"remove":[1,3]}}"#, true);
        assert!(take_over(&current, 2, &[2].into()).is_none(), "no change");
        assert!(
            take_over(&started, 2, &[0, 2].into()).is_none(),
            "the coordinator is alive"
        );
        assert!(
            take_over(&started, 3, &[2, 3].into()).is_none(),
            "broker 2 is lower"
        );
        let taken = take_over(&started, 2, &[2, 3].into()).expect("broker 0 is gone");
        assert_eq!(taken.pending_change.as_ref().unwrap().coordinator, 2);
        assert!(taken.version > started.version, "spread by gossip");
        assert!(
            take_over(&taken, 2, &[2].into()).is_none(),
            "already its own"
        );
    }

    #[test]
    fn a_join_is_done_once_the_new_replica_holds_a_configuration_that_names_it() {
        let body = r#"{"brokers":{"add":[2]},"partitions":{"replicationFactor":3}}"#;
        let (_, _, started) = started(2, 1, 2, body, false);
        let mut reports: BTreeMap<NodeId, BTreeMap<PartitionId, ReplicaReport>> = BTreeMap::new();
        // BROKER_ADD needs nothing; the join waits for broker 2's replica.
        let added = advance(&started, &reports, 2).expect("the broker is added");
        assert_eq!(added.members[&2].state, MemberState::Active);
        assert!(added.local_partitions(2).is_empty());
        reports
            .entry(2)
            .or_default()
            .insert(1, report(&[0, 1, 2], &[0, 1], true));
        assert!(
            advance(&added, &reports, 3).is_none(),
            "joint, not yet durable"
        );
        reports
            .get_mut(&2)
            .unwrap()
            .insert(1, report(&[0, 1, 2], &[0, 1, 2], false));
        let joined = advance(&added, &reports, 4).expect("joined");
        assert_eq!(joined.local_partitions(2), [1]);
        // The new priorities (broker 0 first) wait for the configuration
        // that holds them.
        assert_eq!(joined.replicas(1), [(0, 2), (1, 1), (2, 1)]);
        let mut with_priorities = report(&[0, 1, 2], &[0, 1, 2], false);
        with_priorities.durable_priorities = [(0, 3), (1, 2), (2, 1)].into();
        for b in [0, 1, 2] {
            reports
                .entry(b)
                .or_default()
                .insert(1, with_priorities.clone());
        }
        let done = advance(&joined, &reports, 5).expect("priorities set");
        assert!(done.pending_change.is_none());
        assert_eq!(done.replicas(1), [(0, 3), (1, 2), (2, 1)]);
    }

    #[test]
    fn a_scale_up_ends_once_partition_one_says_the_new_partitions_are_ready() {
        let (_, _, started) = started(2, 1, 2, r#"{"partitions":{"count":2}}"#, false);
        let mut reports: BTreeMap<NodeId, BTreeMap<PartitionId, ReplicaReport>> = BTreeMap::new();
        // Both replicas of partition 2 open with both as voters.
        for b in [0, 1] {
            reports
                .entry(b)
                .or_default()
                .insert(2, report(&[0, 1], &[0, 1], false));
        }
        let bootstrapped = advance(&started, &reports, 2).expect("bootstrapped");
        assert_eq!(bootstrapped.local_partitions(1), [1, 2]);
        assert_eq!(bootstrapped.partition_count, 1, "not routed to yet");
        let scaling = |partitions, complete| {
            let mut r = report(&[0, 1], &[0, 1], false);
            r.scaling = Some(ScalingReport {
                partitions,
                complete,
            });
            r
        };
        reports.get_mut(&0).unwrap().insert(1, scaling(1, true));
        assert!(
            advance(&bootstrapped, &reports, 3).is_none(),
            "partition 1 has not begun"
        );
        reports.get_mut(&0).unwrap().insert(1, scaling(2, false));
        let begun = advance(&bootstrapped, &reports, 4).expect("scale up begun");
        assert_eq!(begun.partition_count, 1, "redistribution under way");
        assert!(advance(&begun, &reports, 5).is_none());
        reports.get_mut(&0).unwrap().insert(1, scaling(2, true));
        let done = advance(&begun, &reports, 6).expect("scaled up");
        assert!(done.pending_change.is_none());
        assert_eq!(done.partition_count, 2);
        assert_eq!(done.message_partitions(), 1);
    }
}

//! Planning a change of the cluster, as Zeebe's `PATCH /actuator/cluster`
//! plans it: the request (brokers to add or remove, or their count; the
//! replication factor), checked against the current configuration, becomes
//! the sequence of operations that turns it into the expected one.
//!
//! Replicas are placed over the brokers of the new cluster as on a first
//! start ([`Layout::place`]: round-robin in ascending id order, or spread
//! over the zones and regions of `[cluster]`). Per partition the joins come
//! first, then the new priorities, then the leaves, so that no partition has
//! fewer replicas during the change than before or after it. A forced
//! removal (`force`, the failover after a region is lost) moves nothing: each
//! surviving replica of a partition that loses one is forced to the
//! survivors, and the removed brokers leave.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{ClusterConfiguration, Member, MemberState, Replica, ReplicaState};
use crate::placement::{Layout, NodeId, PartitionId};

/// The most partitions a cluster can have (the partition id is 13 bits of
/// a key).
pub const MAX_PARTITIONS: u32 = engine::scaling::MAX_PARTITIONS;

/// The body of `PATCH /actuator/cluster`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchRequest {
    /// Changes of the brokers.
    #[serde(default)]
    pub brokers: Option<BrokersChange>,
    /// Changes of the partitions.
    #[serde(default)]
    pub partitions: Option<PartitionsChange>,
}

/// Brokers to add and remove, or their new count (ids `0..count`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BrokersChange {
    /// Brokers that become members.
    #[serde(default)]
    pub add: Vec<NodeId>,
    /// Members that leave.
    #[serde(default)]
    pub remove: Vec<NodeId>,
    /// The new number of brokers.
    #[serde(default)]
    pub count: Option<u32>,
}

/// The new partition count or replication factor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PartitionsChange {
    /// The new number of partitions.
    #[serde(default)]
    pub count: Option<u32>,
    /// The new number of replicas per partition.
    #[serde(default)]
    pub replication_factor: Option<u32>,
}

/// One step of a change, named as in Zeebe's cluster API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "operation",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum Operation {
    /// A broker becomes a member.
    BrokerAdd {
        /// The broker.
        broker_id: NodeId,
    },
    /// A member that holds no replica any more leaves.
    BrokerRemove {
        /// The broker.
        broker_id: NodeId,
    },
    /// A broker opens a replica of a partition, which catches up and joins
    /// the partition's voters with `priority`.
    PartitionJoin {
        /// The broker.
        broker_id: NodeId,
        /// The partition.
        partition_id: PartitionId,
        /// Its election priority.
        priority: u32,
    },
    /// A replica leaves the partition's voters and deletes its data.
    PartitionLeave {
        /// The broker.
        broker_id: NodeId,
        /// The partition.
        partition_id: PartitionId,
    },
    /// A replica's election priority changes.
    PartitionReconfigurePriority {
        /// The broker.
        broker_id: NodeId,
        /// The partition.
        partition_id: PartitionId,
        /// Its new priority.
        priority: u32,
    },
    /// A surviving replica is forced to `brokers` as the partition's voters,
    /// without consensus (the lost ones cannot answer).
    PartitionForceReconfigure {
        /// The broker.
        broker_id: NodeId,
        /// The partition.
        partition_id: PartitionId,
        /// The voters it is forced to.
        brokers: Vec<NodeId>,
    },
    /// A broker opens a replica of a new partition, whose voters are the
    /// replicas the change bootstraps.
    PartitionBootstrap {
        /// The broker.
        broker_id: NodeId,
        /// The new partition.
        partition_id: PartitionId,
        /// Its election priority.
        priority: u32,
    },
    /// Partition 1 is asked to scale up to `desired_partition_count`: it
    /// hands its deployments and identity to the new partitions.
    StartPartitionScaleUp {
        /// The broker that asks (the coordinator).
        broker_id: NodeId,
        /// The partition count asked for.
        desired_partition_count: u32,
    },
    /// Partition 1 reports every new partition bootstrapped and every old
    /// one told: requests are routed to the new partitions from then on.
    AwaitRedistributionCompletion {
        /// The broker that waits (the coordinator).
        broker_id: NodeId,
        /// The partition count asked for.
        desired_partition_count: u32,
    },
}

impl Operation {
    /// The broker the operation is about.
    pub fn broker(&self) -> NodeId {
        match self {
            Operation::BrokerAdd { broker_id }
            | Operation::BrokerRemove { broker_id }
            | Operation::PartitionJoin { broker_id, .. }
            | Operation::PartitionLeave { broker_id, .. }
            | Operation::PartitionReconfigurePriority { broker_id, .. }
            | Operation::PartitionForceReconfigure { broker_id, .. }
            | Operation::PartitionBootstrap { broker_id, .. }
            | Operation::StartPartitionScaleUp { broker_id, .. }
            | Operation::AwaitRedistributionCompletion { broker_id, .. } => *broker_id,
        }
    }

    /// The partition the operation is about, if any.
    pub fn partition(&self) -> Option<PartitionId> {
        match self {
            Operation::BrokerAdd { .. }
            | Operation::BrokerRemove { .. }
            | Operation::StartPartitionScaleUp { .. }
            | Operation::AwaitRedistributionCompletion { .. } => None,
            Operation::PartitionBootstrap { partition_id, .. }
            | Operation::PartitionJoin { partition_id, .. }
            | Operation::PartitionLeave { partition_id, .. }
            | Operation::PartitionReconfigurePriority { partition_id, .. }
            | Operation::PartitionForceReconfigure { partition_id, .. } => Some(*partition_id),
        }
    }
}

/// A planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The operations, in order.
    pub operations: Vec<Operation>,
    /// The configuration once they are done.
    pub expected: ClusterConfiguration,
}

/// A request that cannot be planned: the API answers 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    /// The request is inconsistent or names unknown brokers.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(text: String) -> PlanError {
    PlanError::Invalid(text)
}

/// Plans `request` against `current` for brokers where `layout` says;
/// `force` asks for a forced removal.
pub fn plan(
    current: &ClusterConfiguration,
    request: &PatchRequest,
    force: bool,
    layout: &Layout,
) -> Result<Plan, PlanError> {
    let members: BTreeSet<NodeId> = current
        .members
        .iter()
        .filter(|(_, m)| m.state != MemberState::Left)
        .map(|(n, _)| *n)
        .collect();
    let brokers = request.brokers.clone().unwrap_or_default();
    let partitions = request.partitions.clone().unwrap_or_default();
    let count = partitions.count.unwrap_or(current.partition_count);
    if count < current.partition_count || count > MAX_PARTITIONS {
        return Err(invalid(format!(
            "partitions.count {count}: partitions can be added up to {MAX_PARTITIONS}, never \
             removed (there are {})",
            current.partition_count
        )));
    }
    let target = target_brokers(&members, &brokers)?;
    if force {
        if !brokers.add.is_empty()
            || brokers.count.is_some()
            || partitions.replication_factor.is_some()
            || count != current.partition_count
        {
            return Err(invalid(
                "force=true only removes brokers (brokers.remove); add them back, add \
                 partitions or change the replication factor in a later change without force"
                    .into(),
            ));
        }
        return force_remove(current, &members, &target);
    }
    let replication_factor = match partitions.replication_factor {
        Some(rf) => rf,
        None => current.shape().replication_factor,
    };
    if replication_factor == 0 || replication_factor as usize > target.len() {
        return Err(invalid(format!(
            "replication factor {replication_factor} needs between 1 and {} brokers, the size \
             of the cluster after the change",
            target.len()
        )));
    }
    Ok(redistribute(
        current,
        &members,
        &target,
        (count, replication_factor),
        layout,
    ))
}

/// The members after the change.
fn target_brokers(
    members: &BTreeSet<NodeId>,
    brokers: &BrokersChange,
) -> Result<BTreeSet<NodeId>, PlanError> {
    if let Some(count) = brokers.count {
        if !brokers.add.is_empty() || !brokers.remove.is_empty() {
            return Err(invalid(
                "brokers.count replaces brokers.add and brokers.remove: give one or the other"
                    .into(),
            ));
        }
        if count == 0 {
            return Err(invalid("brokers.count must be at least 1".into()));
        }
        return Ok((0..count).collect());
    }
    let mut target = members.clone();
    for b in &brokers.add {
        if !target.insert(*b) {
            return Err(invalid(format!("broker {b} is already a member")));
        }
    }
    for b in &brokers.remove {
        if !members.contains(b) {
            return Err(invalid(format!("broker {b} is not a member")));
        }
        if !target.remove(b) {
            return Err(invalid(format!("broker {b} is named twice")));
        }
    }
    if target.is_empty() {
        return Err(invalid("a change cannot remove every broker".into()));
    }
    Ok(target)
}

/// The plan that places `count` partitions of `replication_factor` replicas
/// over `target`: partitions above the current count are bootstrapped on
/// their brokers, then partition 1 hands them its deployments, and the
/// change ends once it reports them ready (the routing counts them then).
fn redistribute(
    current: &ClusterConfiguration,
    members: &BTreeSet<NodeId>,
    target: &BTreeSet<NodeId>,
    (count, replication_factor): (u32, u32),
    layout: &Layout,
) -> Plan {
    let nodes: Vec<NodeId> = target.iter().copied().collect();
    let wanted: BTreeMap<PartitionId, BTreeMap<NodeId, u32>> = layout
        .place(&nodes, count, replication_factor)
        .into_iter()
        .map(|(p, replicas)| (p, replicas.into_iter().collect()))
        .collect();
    let mut operations: Vec<Operation> = target
        .difference(members)
        .map(|&broker_id| Operation::BrokerAdd { broker_id })
        .collect();
    let added = wanted.range(current.partition_count + 1..);
    for (&partition_id, want) in added {
        operations.extend(want.iter().map(|(&broker_id, &priority)| {
            Operation::PartitionBootstrap {
                broker_id,
                partition_id,
                priority,
            }
        }));
    }
    for (&p, want) in wanted.range(..=current.partition_count) {
        let have: BTreeMap<NodeId, u32> = current.replicas(p).into_iter().collect();
        for (&broker_id, &priority) in want {
            if !have.contains_key(&broker_id) {
                operations.push(Operation::PartitionJoin {
                    broker_id,
                    partition_id: p,
                    priority,
                });
            }
        }
        for (&broker_id, &priority) in want {
            if have.get(&broker_id).is_some_and(|old| *old != priority) {
                operations.push(Operation::PartitionReconfigurePriority {
                    broker_id,
                    partition_id: p,
                    priority,
                });
            }
        }
        for &broker_id in have.keys() {
            if !want.contains_key(&broker_id) {
                operations.push(Operation::PartitionLeave {
                    broker_id,
                    partition_id: p,
                });
            }
        }
    }
    operations.extend(
        members
            .difference(target)
            .map(|&broker_id| Operation::BrokerRemove { broker_id }),
    );
    let mut expected = current.clone();
    if count > current.partition_count {
        // Run by the lowest broker staying, the coordinator if it does.
        let broker_id = *target.first().expect("a change keeps a broker");
        let desired_partition_count = count;
        operations.push(Operation::StartPartitionScaleUp {
            broker_id,
            desired_partition_count,
        });
        operations.push(Operation::AwaitRedistributionCompletion {
            broker_id,
            desired_partition_count,
        });
        expected.message_partition_count = current.message_partitions();
        expected.partition_count = count;
    }
    for b in members.union(target) {
        let member = expected.members.entry(*b).or_insert_with(|| Member {
            state: MemberState::Active,
            version: 0,
            last_updated_ms: 0,
            partitions: BTreeMap::new(),
        });
        member.state = if target.contains(b) {
            MemberState::Active
        } else {
            MemberState::Left
        };
        member.partitions = wanted
            .iter()
            .filter_map(|(p, replicas)| {
                replicas.get(b).map(|&priority| {
                    let replica = Replica {
                        state: ReplicaState::Active,
                        priority,
                    };
                    (*p, replica)
                })
            })
            .collect();
    }
    Plan {
        operations,
        expected,
    }
}

fn force_remove(
    current: &ClusterConfiguration,
    members: &BTreeSet<NodeId>,
    target: &BTreeSet<NodeId>,
) -> Result<Plan, PlanError> {
    let removed: BTreeSet<NodeId> = members.difference(target).copied().collect();
    let mut operations = Vec::new();
    for p in 1..=current.partition_count {
        let replicas: BTreeSet<NodeId> = current.replicas(p).into_iter().map(|(n, _)| n).collect();
        if !replicas.iter().any(|n| removed.contains(n)) {
            continue;
        }
        let survivors: Vec<NodeId> = replicas
            .iter()
            .copied()
            .filter(|n| !removed.contains(n))
            .collect();
        if survivors.is_empty() {
            return Err(invalid(format!(
                "partition {p} has no replica outside brokers {removed:?}: forcing them out \
                 would lose it"
            )));
        }
        for &broker_id in &survivors {
            operations.push(Operation::PartitionForceReconfigure {
                broker_id,
                partition_id: p,
                brokers: survivors.clone(),
            });
        }
    }
    let mut expected = current.clone();
    for &broker_id in &removed {
        operations.push(Operation::BrokerRemove { broker_id });
        let member = expected.members.get_mut(&broker_id).expect("a member");
        member.state = MemberState::Left;
        member.partitions.clear();
    }
    Ok(Plan {
        operations,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::raft_node;
    use crate::placement::ClusterShape;

    fn cluster(size: u32, partitions: u32, rf: u32) -> ClusterConfiguration {
        let shape = ClusterShape {
            cluster_size: size,
            partitions,
            replication_factor: rf,
        };
        ClusterConfiguration::initial(&shape, 0)
    }

    fn planned(
        current: &ClusterConfiguration,
        request: &PatchRequest,
        force: bool,
    ) -> Result<Plan, PlanError> {
        super::plan(current, request, force, &Layout::uniform())
    }

    fn request(json: &str) -> PatchRequest {
        serde_json::from_str(json).expect("a request")
    }

    fn placements(c: &ClusterConfiguration) -> Vec<Vec<(NodeId, u32)>> {
        (1..=c.partition_count).map(|p| c.replicas(p)).collect()
    }

    /// Per partition, no leave before the last join.
    fn joins_before_leaves(ops: &[Operation]) {
        for (i, op) in ops.iter().enumerate() {
            if let Operation::PartitionLeave { partition_id, .. } = op {
                assert!(
                    !ops[i..].iter().any(|later| matches!(later,
                        Operation::PartitionJoin { partition_id: q, .. } if q == partition_id)),
                    "a leave of partition {partition_id} before a join: {ops:?}"
                );
            }
        }
    }

    #[test]
    fn scaling_out_moves_replicas_to_the_new_brokers_as_a_first_start_would_place_them() {
        let current = cluster(3, 6, 3);
        let plan = planned(&current, &request(r#"{"brokers":{"add":[3,4]}}"#), false).unwrap();
        assert_eq!(
            plan.operations[..2],
            [
                Operation::BrokerAdd { broker_id: 3 },
                Operation::BrokerAdd { broker_id: 4 }
            ]
        );
        assert_eq!(placements(&plan.expected), placements(&cluster(5, 6, 3)));
        assert_eq!(plan.expected.shape(), cluster(5, 6, 3).shape());
        joins_before_leaves(&plan.operations);
        assert!(plan
            .operations
            .iter()
            .any(|o| matches!(o, Operation::PartitionLeave { .. })));
        // The same by count.
        let by_count = planned(&current, &request(r#"{"brokers":{"count":5}}"#), false).unwrap();
        assert_eq!(by_count, plan);
    }

    #[test]
    fn scaling_in_empties_the_brokers_before_they_leave() {
        let current = cluster(5, 6, 3);
        let plan = planned(&current, &request(r#"{"brokers":{"remove":[3,4]}}"#), false).unwrap();
        let n = plan.operations.len();
        assert_eq!(
            plan.operations[n - 2..],
            [
                Operation::BrokerRemove { broker_id: 3 },
                Operation::BrokerRemove { broker_id: 4 }
            ]
        );
        assert_eq!(placements(&plan.expected), placements(&cluster(3, 6, 3)));
        assert_eq!(plan.expected.members[&4].state, MemberState::Left);
        assert!(plan.expected.local_partitions(4).is_empty());
        joins_before_leaves(&plan.operations);
    }

    #[test]
    fn a_forced_removal_forces_the_survivors_and_moves_nothing() {
        // Two regions of two brokers, every partition on all four.
        let current = cluster(4, 2, 4);
        let plan = planned(&current, &request(r#"{"brokers":{"remove":[1,3]}}"#), true).unwrap();
        let force = |broker_id, partition_id| Operation::PartitionForceReconfigure {
            broker_id,
            partition_id,
            brokers: vec![0, 2],
        };
        assert_eq!(
            plan.operations,
            [
                force(0, 1),
                force(2, 1),
                force(0, 2),
                force(2, 2),
                Operation::BrokerRemove { broker_id: 1 },
                Operation::BrokerRemove { broker_id: 3 },
            ]
        );
        assert_eq!(plan.expected.shape(), cluster(2, 2, 2).shape());
        assert_eq!(plan.expected.local_partitions(0), [1, 2]);

        // The failback: the region back, replication factor 4 again.
        let back = planned(
            &plan.expected,
            &request(r#"{"brokers":{"add":[1,3]},"partitions":{"replicationFactor":4}}"#),
            false,
        )
        .unwrap();
        assert_eq!(placements(&back.expected), placements(&cluster(4, 2, 4)));
        let joins = back
            .operations
            .iter()
            .filter(|o| matches!(o, Operation::PartitionJoin { .. }))
            .count();
        assert_eq!(
            joins, 4,
            "brokers 1 and 3 join both partitions: {:?}",
            back.operations
        );
    }

    #[test]
    fn the_failback_of_a_dual_region_cluster_puts_the_leaders_back_in_the_primary_region() {
        let east_west = Layout {
            locations: (0..4)
                .map(|n| {
                    let region = if n % 2 == 0 { "east" } else { "west" };
                    let at = crate::placement::Location {
                        region: region.into(),
                        zone: String::new(),
                    };
                    (n, at)
                })
                .collect(),
            primary_region: "east".into(),
            primary_zone: String::new(),
        };
        let shape = ClusterShape {
            cluster_size: 4,
            partitions: 4,
            replication_factor: 4,
        };
        let first = ClusterConfiguration::placed(&shape, &east_west, 0);
        let east_first = |c: &ClusterConfiguration| {
            for p in 1..=c.partition_count {
                let order: Vec<NodeId> = c.replicas(p).iter().map(|(n, _)| n % 2).collect();
                assert_eq!(order, [0, 0, 1, 1], "partition {p}: {:?}", c.replicas(p));
            }
        };
        east_first(&first);
        // A region forced out, then added back.
        let over_and_back = |lost: &str| {
            let out = format!(r#"{{"brokers":{{"remove":[{lost}]}}}}"#);
            let over = super::plan(&first, &request(&out), true, &east_west).unwrap();
            let body = format!(
                r#"{{"brokers":{{"add":[{lost}]}},"partitions":{{"replicationFactor":4}}}}"#
            );
            let back = super::plan(&over.expected, &request(&body), false, &east_west).unwrap();
            assert_eq!(
                placements(&back.expected),
                placements(&first),
                "{lost} back"
            );
            east_first(&back.expected);
            back.operations
        };
        // West lost: east keeps leading. East lost: it comes back with the
        // highest priorities, and leads again. Either way the survivors keep
        // theirs.
        for lost in ["1,3", "0,2"] {
            let ops = over_and_back(lost);
            assert!(
                ops.iter()
                    .all(|o| !matches!(o, Operation::PartitionReconfigurePriority { .. })),
                "{lost}: {ops:?}"
            );
        }
    }

    #[test]
    fn a_new_replication_factor_adds_or_drops_replicas_in_place() {
        let current = cluster(3, 3, 1);
        let plan = planned(
            &current,
            &request(r#"{"partitions":{"replicationFactor":3}}"#),
            false,
        )
        .unwrap();
        assert_eq!(placements(&plan.expected), placements(&cluster(3, 3, 3)));
        assert!(plan
            .operations
            .iter()
            .all(|o| !matches!(o, Operation::PartitionLeave { .. })));
        let none = planned(&current, &PatchRequest::default(), false).unwrap();
        assert!(none.operations.is_empty(), "{:?}", none.operations);
    }

    #[test]
    fn new_partitions_are_bootstrapped_then_partition_one_scales_up() {
        let current = cluster(3, 2, 2);
        let plan = planned(&current, &request(r#"{"partitions":{"count":4}}"#), false).unwrap();
        let bootstrap = |broker_id, partition_id, priority| Operation::PartitionBootstrap {
            broker_id,
            partition_id,
            priority,
        };
        // Round-robin over three: partition 3 on 2,0; 4 on 0,1. Partitions
        // 1 and 2 stay where they are.
        assert_eq!(
            plan.operations,
            [
                bootstrap(0, 3, 1),
                bootstrap(2, 3, 2),
                bootstrap(0, 4, 2),
                bootstrap(1, 4, 1),
                Operation::StartPartitionScaleUp {
                    broker_id: 0,
                    desired_partition_count: 4
                },
                Operation::AwaitRedistributionCompletion {
                    broker_id: 0,
                    desired_partition_count: 4
                },
            ]
        );
        let expected = &plan.expected;
        assert_eq!(expected.partition_count, 4);
        assert_eq!(
            expected.message_partitions(),
            2,
            "messages stay where they were"
        );
        assert_eq!(expected.replicas(3), [(2, 2), (0, 1)]);
        assert_eq!(placements(expected)[..2], placements(&current)[..]);
        // While bootstrapping, a new partition's Raft group names all its
        // replicas, although the configuration holds none yet.
        let started = super::super::change::start(&current, &plan, 0, 1).unwrap();
        assert!(started.replicas(4).is_empty());
        let group = super::super::group_config(&started, 4);
        let voters: Vec<u64> = group.voters.iter().copied().collect();
        assert_eq!(voters, [raft_node(0), raft_node(1)]);
        assert_eq!(started.highest_partition(), 4);
    }

    #[test]
    fn operations_render_as_zeebe_names_them() {
        let op = Operation::PartitionJoin {
            broker_id: 3,
            partition_id: 1,
            priority: 2,
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            serde_json::json!({"operation":"PARTITION_JOIN","brokerId":3,"partitionId":1,"priority":2})
        );
    }

    #[test]
    fn inconsistent_requests_are_refused_with_the_reason() {
        let current = cluster(3, 2, 3);
        let refused = |json: &str, force: bool| match planned(&current, &request(json), force) {
            Err(PlanError::Invalid(text)) => text,
            Ok(p) => panic!("{json} was planned: {:?}", p.operations),
        };
        assert!(
            refused(r#"{"brokers":{"remove":[7]}}"#, false).contains("broker 7 is not a member")
        );
        assert!(refused(r#"{"brokers":{"add":[2]}}"#, false).contains("already a member"));
        assert!(refused(r#"{"brokers":{"remove":[1,2]}}"#, false).contains("replication factor 3"));
        assert!(refused(r#"{"brokers":{"count":4,"add":[3]}}"#, false).contains("one or the other"));
        assert!(refused(r#"{"brokers":{"add":[3]}}"#, true).contains("only removes"));
        assert!(refused(r#"{"brokers":{"remove":[0,1,2]}}"#, true).contains("every broker"));
        assert!(refused(r#"{"partitions":{"count":1}}"#, false).contains("never removed"));
        assert!(refused(r#"{"partitions":{"count":9000}}"#, false).contains("up to 8191"));
        assert!(refused(
            r#"{"brokers":{"remove":[2]},"partitions":{"count":3}}"#,
            true
        )
        .contains("add partitions"));
        let single = cluster(3, 3, 1);
        let text = match planned(&single, &request(r#"{"brokers":{"remove":[1]}}"#), true) {
            Err(PlanError::Invalid(text)) => text,
            Ok(p) => panic!("planned: {:?}", p.operations),
        };
        assert!(text.contains("would lose it"), "{text}");
        assert!(serde_json::from_str::<PatchRequest>(r#"{"nodes":1}"#).is_err());
    }
}

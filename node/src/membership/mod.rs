//! The cluster configuration: which brokers are members, which partitions
//! each holds with what election priority, and the changes made to it, as
//! Zeebe's dynamic cluster configuration keeps it. It is written on the first
//! start from `[cluster]` (the placement of [`crate::placement`]: round-robin,
//! or spread over zones and regions) and kept in the data directory
//! (`cluster-configuration.json`, see [`store`]); from then on the file, not
//! `[cluster]`, is the truth about the cluster's shape. `GET
//! /actuator/cluster` shows it ([`api`]).

pub mod api;
pub mod change;
pub mod plan;
pub mod run;
pub mod store;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::consensus::raft_node;
use crate::placement::{ClusterShape, Layout, NodeId, PartitionId};

/// Layout of the persisted configuration written by this code.
pub const FORMAT_VERSION: u32 = 1;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfiguration {
    /// Layout of this record ([`FORMAT_VERSION`]).
    pub format: u32,
    /// Raised by every change; the higher version wins between nodes.
    pub version: u64,
    /// Number of partitions requests are routed to (Zeebe's routing
    /// `requestHandling`); partitions being added are above it until their
    /// scale up is complete.
    pub partition_count: u32,
    /// Number of partitions messages are correlated by (Zeebe's routing
    /// `messageCorrelation`): the count before the first scale up; 0 until
    /// one (the partition count).
    #[serde(default)]
    pub message_partition_count: u32,
    /// Every broker that is or was a member, by id.
    pub members: BTreeMap<NodeId, Member>,
    /// The last change that ended.
    pub last_change: Option<CompletedChange>,
    /// The change under way, if any.
    #[serde(default)]
    pub pending_change: Option<change::PendingChange>,
}

/// One broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its state.
    pub state: MemberState,
    /// Raised with each change of this member.
    pub version: u64,
    /// When this member last changed (Unix ms).
    pub last_updated_ms: u64,
    /// Its replicas, by partition.
    pub partitions: BTreeMap<PartitionId, Replica>,
}

/// A broker's state in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberState {
    /// Being added.
    Joining,
    /// A member.
    Active,
    /// Being removed.
    Leaving,
    /// Removed.
    Left,
}

/// One replica of a partition on a broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// Its state.
    pub state: ReplicaState,
    /// Its election priority: the healthy replica with the highest leads.
    pub priority: u32,
}

/// A replica's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicaState {
    /// Catching up, not yet a voter.
    Joining,
    /// A voter.
    Active,
    /// Being removed.
    Leaving,
}

/// A change that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedChange {
    /// Its id.
    pub id: u64,
    /// How it ended: `COMPLETED`, `FAILED` or `CANCELLED`.
    pub status: String,
    /// When it started (Unix ms).
    pub started_ms: u64,
    /// When it ended (Unix ms).
    pub completed_ms: u64,
}

impl ClusterConfiguration {
    /// The configuration of a new cluster of `shape` with every broker in
    /// one place: replicas placed round-robin, the preferred leader of each
    /// partition with the highest priority.
    pub fn initial(shape: &ClusterShape, now_ms: u64) -> ClusterConfiguration {
        ClusterConfiguration::placed(shape, &Layout::uniform(), now_ms)
    }

    /// The configuration of a new cluster of `shape` whose brokers are where
    /// `layout` says: every broker active, replicas placed by
    /// [`Layout::place`].
    pub fn placed(shape: &ClusterShape, layout: &Layout, now_ms: u64) -> ClusterConfiguration {
        let mut members: BTreeMap<NodeId, Member> = (0..shape.cluster_size)
            .map(|node| {
                let member = Member {
                    state: MemberState::Active,
                    version: 1,
                    last_updated_ms: now_ms,
                    partitions: BTreeMap::new(),
                };
                (node, member)
            })
            .collect();
        let nodes: Vec<NodeId> = members.keys().copied().collect();
        let placed = layout.place(&nodes, shape.partitions, shape.replication_factor);
        for (p, replicas) in placed {
            for (node, priority) in replicas {
                let replica = Replica {
                    state: ReplicaState::Active,
                    priority,
                };
                members
                    .get_mut(&node)
                    .expect("placement names members only")
                    .partitions
                    .insert(p, replica);
            }
        }
        ClusterConfiguration {
            format: FORMAT_VERSION,
            version: 1,
            partition_count: shape.partitions,
            message_partition_count: 0,
            members,
            last_change: None,
            pending_change: None,
        }
    }

    /// The number of partitions messages are correlated by.
    pub fn message_partitions(&self) -> u32 {
        match self.message_partition_count {
            0 => self.partition_count,
            n => n,
        }
    }

    /// The highest partition any broker holds or a pending change adds.
    pub fn highest_partition(&self) -> u32 {
        let held = self.members.values().flat_map(|m| m.partitions.keys());
        let added = self
            .pending_change
            .iter()
            .flat_map(|c| &c.pending)
            .filter_map(|op| match op {
                plan::Operation::PartitionBootstrap { partition_id, .. } => Some(partition_id),
                _ => None,
            });
        held.chain(added)
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.partition_count)
    }

    /// The partitions `node` holds a replica of, ascending.
    pub fn local_partitions(&self, node: NodeId) -> Vec<PartitionId> {
        self.members
            .get(&node)
            .filter(|m| m.state != MemberState::Left)
            .map(|m| m.partitions.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The brokers holding a replica of `partition`, with their priorities,
    /// highest first.
    pub fn replicas(&self, partition: PartitionId) -> Vec<(NodeId, u32)> {
        let mut out: Vec<(NodeId, u32)> = self
            .members
            .iter()
            .filter(|(_, m)| m.state != MemberState::Left)
            .filter_map(|(n, m)| m.partitions.get(&partition).map(|r| (*n, r.priority)))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// The shape `[cluster]` must describe for this configuration to be the
    /// one it started with: the brokers that are members, the partitions, and
    /// the replicas per partition.
    pub fn shape(&self) -> ClusterShape {
        let members = self
            .members
            .values()
            .filter(|m| m.state != MemberState::Left)
            .count() as u32;
        let replication_factor = (1..=self.partition_count)
            .map(|p| self.replicas(p).len() as u32)
            .max()
            .unwrap_or(0);
        ClusterShape {
            cluster_size: members,
            partitions: self.partition_count,
            replication_factor,
        }
    }
}

/// The configuration as the node's services share it: where the gateway
/// routes, which nodes a distributed command goes to, the Raft configuration
/// a replica starts with.
#[derive(Debug)]
pub struct Members {
    current: RwLock<ClusterConfiguration>,
    /// `current`'s partition count and message partition count, read on
    /// every request.
    routing: (AtomicU32, AtomicU32),
    /// Where a new configuration is stored: the data directory and this
    /// node (`None` in the simulator, which keeps it in memory).
    home: Option<(std::path::PathBuf, NodeId)>,
    /// The replicas' reports, by broker then partition (this node's own
    /// and the ones gossip brought).
    reports: std::sync::Mutex<Reports>,
    /// The configuration is known (see [`store::Start`]): until then the
    /// node holds no partition and gossips none.
    known: std::sync::atomic::AtomicBool,
    /// While it is not: the newest configuration gossip offered, and when
    /// the first offer came.
    offered: std::sync::Mutex<Option<(ClusterConfiguration, std::time::Instant)>>,
}

/// Replica reports by broker, then partition.
pub type Reports = BTreeMap<NodeId, BTreeMap<PartitionId, change::ReplicaReport>>;

impl Members {
    /// Shares `config`, kept in memory only.
    pub fn new(config: ClusterConfiguration) -> Members {
        Members {
            routing: (
                AtomicU32::new(config.partition_count),
                AtomicU32::new(config.message_partitions()),
            ),
            current: RwLock::new(config),
            home: None,
            reports: std::sync::Mutex::new(BTreeMap::new()),
            known: std::sync::atomic::AtomicBool::new(true),
            offered: std::sync::Mutex::new(None),
        }
    }

    /// Shares the configuration a node starts with, storing every new one
    /// in `data_dir` as `node`.
    pub fn stored_in(start: store::Start, data_dir: std::path::PathBuf, node: NodeId) -> Members {
        let (config, known) = match start {
            store::Start::Known(config) => (config, true),
            store::Start::Unknown(config) => (config, false),
        };
        Members {
            home: Some((data_dir, node)),
            known: std::sync::atomic::AtomicBool::new(known),
            ..Members::new(config)
        }
    }

    /// Whether the configuration is known (see [`store::Start`]).
    pub fn known(&self) -> bool {
        self.known.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The configuration if it is known, for the other nodes.
    pub fn shared(&self) -> Option<ClusterConfiguration> {
        self.known().then(|| self.get())
    }

    /// Takes the configuration of `[cluster]` held since the start: a
    /// majority of the cluster's brokers have none (a new cluster).
    pub fn take_initial(&self) -> anyhow::Result<()> {
        let current = self.current.write().expect("never poisoned");
        if let Some((dir, node)) = &self.home {
            store::store(dir, &current, *node)?;
        }
        self.known.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The number of partitions requests go to (new ones count once their
    /// scale up is complete).
    pub fn partitions(&self) -> u32 {
        self.routing.0.load(Ordering::Acquire)
    }

    /// The number of partitions messages are correlated by.
    pub fn message_partitions(&self) -> u32 {
        self.routing.1.load(Ordering::Acquire)
    }

    /// A copy of the configuration.
    pub fn get(&self) -> ClusterConfiguration {
        self.current.read().expect("never poisoned").clone()
    }

    /// Takes `next` if its version is above the current one: stored first,
    /// then shared. False when it is not newer. While the configuration is
    /// not known, `next` is only offered (see [`Members::take_offered`]).
    pub fn adopt(&self, next: ClusterConfiguration) -> anyhow::Result<bool> {
        if !self.known() {
            let mut offered = self.offered.lock().expect("never poisoned");
            match offered.as_mut() {
                None => *offered = Some((next, std::time::Instant::now())),
                Some((best, _)) if next.version > best.version => *best = next,
                Some(_) => {}
            }
            return Ok(false);
        }
        self.replace(next)
    }

    /// Whether gossip offered a configuration that is not taken yet.
    pub fn offered(&self) -> bool {
        self.offered.lock().expect("never poisoned").is_some()
    }

    /// Takes the newest configuration gossip offered once the first offer
    /// is `settle` old; its version, or `None` when there is none to take
    /// yet.
    pub fn take_offered(&self, settle: std::time::Duration) -> anyhow::Result<Option<u64>> {
        let mut offered = self.offered.lock().expect("never poisoned");
        let Some((best, since)) = offered.as_ref() else {
            return Ok(None);
        };
        if since.elapsed() < settle {
            return Ok(None);
        }
        let version = best.version;
        self.replace(best.clone())?;
        *offered = None;
        Ok(Some(version))
    }

    fn replace(&self, next: ClusterConfiguration) -> anyhow::Result<bool> {
        let mut current = self.current.write().expect("never poisoned");
        let known = self.known();
        if known && next.version <= current.version {
            return Ok(false);
        }
        if let Some((dir, node)) = &self.home {
            store::store(dir, &next, *node)?;
        }
        self.routing
            .0
            .store(next.partition_count, Ordering::Release);
        self.routing
            .1
            .store(next.message_partitions(), Ordering::Release);
        *current = next;
        self.known.store(true, std::sync::atomic::Ordering::Release);
        Ok(true)
    }

    /// Records `broker`'s reports of its replicas.
    pub fn report(&self, broker: NodeId, reports: BTreeMap<PartitionId, change::ReplicaReport>) {
        self.reports
            .lock()
            .expect("never poisoned")
            .insert(broker, reports);
    }

    /// Every report known.
    pub fn reports(&self) -> Reports {
        self.reports.lock().expect("never poisoned").clone()
    }

    /// The reports made for change `id` (or by brokers that do not say).
    pub fn reports_for(&self, id: u64) -> Reports {
        let mut reports = self.reports();
        for replicas in reports.values_mut() {
            replicas.retain(|_, r| r.change.is_none_or(|c| c == id));
        }
        reports
    }

    /// The brokers holding `partition`, the preferred leader first.
    pub fn replica_nodes(&self, partition: PartitionId) -> Vec<NodeId> {
        let config = self.current.read().expect("never poisoned");
        config
            .replicas(partition)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    /// The Raft configuration of `partition`: its replicas as voters, with
    /// their priorities.
    pub fn group_config(&self, partition: PartitionId) -> raft::GroupConfig {
        let config = self.current.read().expect("never poisoned");
        group_config(&config, partition)
    }
}

/// The Raft configuration of `partition` in `config`: its replicas, and
/// those a pending change bootstraps (a new partition starts with all of
/// them as voters).
pub fn group_config(config: &ClusterConfiguration, partition: PartitionId) -> raft::GroupConfig {
    let mut replicas = config.replicas(partition);
    let bootstrapped = config.pending_change.iter().flat_map(|c| &c.pending);
    for op in bootstrapped {
        if let plan::Operation::PartitionBootstrap {
            broker_id,
            partition_id,
            priority,
        } = op
        {
            if *partition_id == partition && replicas.iter().all(|(n, _)| n != broker_id) {
                replicas.push((*broker_id, *priority));
            }
        }
    }
    let mut group = raft::GroupConfig::new(replicas.iter().map(|(n, _)| raft_node(*n)));
    for (node, priority) in replicas {
        group = group.with_priority(raft_node(node), priority);
    }
    group
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(cluster_size: u32, partitions: u32, replication_factor: u32) -> ClusterShape {
        ClusterShape {
            cluster_size,
            partitions,
            replication_factor,
        }
    }

    #[test]
    fn the_initial_configuration_is_the_round_robin_placement() {
        let s = shape(4, 3, 3);
        let c = ClusterConfiguration::initial(&s, 7);
        assert_eq!(c.version, 1);
        assert_eq!(c.shape(), s);
        for node in 0..4 {
            assert_eq!(c.local_partitions(node), s.local_partitions(node));
            assert_eq!(c.members[&node].last_updated_ms, 7);
        }
        for p in 1..=3 {
            let nodes: Vec<NodeId> = c.replicas(p).iter().map(|(n, _)| *n).collect();
            assert_eq!(nodes, s.replicas(p), "preferred leader first");
            let priorities: Vec<u32> = c.replicas(p).iter().map(|(_, pr)| *pr).collect();
            assert_eq!(priorities, [3, 2, 1]);
        }
        assert!(c.local_partitions(9).is_empty(), "not a member");
    }

    #[test]
    fn the_raft_configuration_names_the_replicas_and_their_priorities() {
        let c = ClusterConfiguration::initial(&shape(3, 2, 2), 0);
        let members = Members::new(c);
        assert_eq!(members.replica_nodes(2), [1, 2]);
        let group = members.group_config(2);
        let voters: Vec<u64> = group.voters.iter().copied().collect();
        assert_eq!(voters, [raft_node(1), raft_node(2)]);
        assert_eq!(group.priority(raft_node(1)), 2, "the preferred leader");
        assert_eq!(group.priority(raft_node(2)), 1);
    }

    #[test]
    fn a_broker_without_a_configuration_takes_the_newest_one_offered_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        let initial = ClusterConfiguration::initial(&shape(3, 1, 3), 0);
        let members =
            Members::stored_in(store::Start::Unknown(initial.clone()), dir.path().into(), 1);
        let version = |v: u64| ClusterConfiguration {
            version: v,
            ..initial.clone()
        };
        // Gossip queued while the broker was down comes first, stale.
        for v in [2, 5, 3] {
            assert!(!members.adopt(version(v)).unwrap(), "only offered");
        }
        assert!(!members.known() && members.offered());
        let settle = std::time::Duration::from_secs(3600);
        assert_eq!(members.take_offered(settle).unwrap(), None, "not settled");
        assert_eq!(
            members.take_offered(std::time::Duration::ZERO).unwrap(),
            Some(5)
        );
        assert!(members.known() && !members.offered());
        assert_eq!(members.get().version, 5);
        assert_eq!(
            store::load(dir.path()).unwrap().unwrap().version,
            5,
            "stored"
        );
        assert!(!members.adopt(version(4)).unwrap(), "older once known");
        assert!(members.adopt(version(6)).unwrap());
    }

    #[test]
    fn only_the_reports_made_for_a_change_count_for_it() {
        let members = Members::new(ClusterConfiguration::initial(&shape(3, 1, 3), 0));
        let report = |change: Option<u64>| change::ReplicaReport {
            scaling: None,
            fence: None,
            voters: [0, 1, 2].into(),
            joint: false,
            durable_voters: [0, 1, 2].into(),
            durable_priorities: BTreeMap::new(),
            change,
        };
        members.report(1, [(1, report(Some(7)))].into());
        members.report(2, [(1, report(Some(8))), (2, report(None))].into());
        let counted = members.reports_for(8);
        assert!(counted[&1].is_empty(), "made for change 7: {counted:?}");
        assert_eq!(counted[&2].keys().copied().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_broker_that_left_holds_nothing() {
        let mut c = ClusterConfiguration::initial(&shape(3, 1, 3), 0);
        c.members.get_mut(&2).unwrap().state = MemberState::Left;
        assert!(c.local_partitions(2).is_empty());
        assert_eq!(c.replicas(1).len(), 2);
        assert_eq!(c.shape(), shape(2, 1, 2));
    }
}

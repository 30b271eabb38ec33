//! Divergence detection: replicas of a partition apply the same entries, so
//! their engine states must be equal at the same applied index. Every
//! `[cluster] state_check_entries` applied entries each replica takes a
//! fingerprint of its engine state ([`engine::Engine::fingerprint`]) at
//! that index (a checkpoint); the gossip carries each replica's newest
//! checkpoint to the other nodes, and each node compares what it hears with
//! its own fingerprint at the same index.
//!
//! A peer with another fingerprint is logged as a mismatch. When a majority
//! of the partition's replicas holds one fingerprint and this replica
//! another, this replica is the one that diverged: it marks itself
//! unhealthy (`/health`, `waggle_partition_healthy`, the gossip), logs an
//! error naming the index and both fingerprints, and sets
//! `waggle_state_diverged`. It stays so until restarted (a restart rebuilds
//! the state from its snapshot and log, or from a peer's snapshot). Without
//! a majority (two replicas disagreeing, or three different states) nobody
//! can tell which is right, and only the mismatches are logged and counted.
//!
//! The checks of a partition sit behind a mutex taken once per checkpoint on
//! the shard, and once per received gossip (twice a second per peer).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::placement::{NodeId, PartitionId};

/// Own checkpoints, and indexes of peers' reports, kept per partition: the
/// gossip of a slower or faster peer names one of the last few.
const KEPT: usize = 16;

/// A replica's fingerprint at an applied index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Applied Raft index.
    pub index: u64,
    /// [`engine::Engine::fingerprint`] after applying it.
    pub fingerprint: u64,
}

#[derive(Debug, Default)]
struct PartitionChecks {
    /// Newest last.
    own: VecDeque<Checkpoint>,
    /// Index → reporting node → (fingerprint, compared yet).
    peers: BTreeMap<u64, BTreeMap<NodeId, (u64, bool)>>,
    compared: u64,
    mismatches: u64,
    diverged: Option<String>,
}

impl PartitionChecks {
    fn own_at(&self, index: u64) -> Option<u64> {
        self.own
            .iter()
            .find(|c| c.index == index)
            .map(|c| c.fingerprint)
    }

    /// Compares the reports at `index` not compared yet with this replica's
    /// fingerprint there, if it has one.
    fn compare(&mut self, partition: PartitionId, index: u64, replication_factor: u32) {
        let Some(ours) = self.own_at(index) else {
            return;
        };
        let Some(reports) = self.peers.get_mut(&index) else {
            return;
        };
        for (node, (theirs, compared)) in reports.iter_mut() {
            if *compared {
                continue;
            }
            *compared = true;
            self.compared += 1;
            if *theirs != ours {
                self.mismatches += 1;
                tracing::warn!(
                    partition,
                    index,
                    peer = node,
                    "partition {partition}: the state at index {index} differs from node \
                     {node}'s (fingerprint {ours:016x} here, {theirs:016x} there)"
                );
            }
        }
        if self.diverged.is_some() {
            return;
        }
        let mut others: BTreeMap<u64, Vec<NodeId>> = BTreeMap::new();
        for (node, (theirs, _)) in reports.iter() {
            if *theirs != ours {
                others.entry(*theirs).or_default().push(*node);
            }
        }
        let majority = replication_factor as usize / 2 + 1;
        if let Some((theirs, nodes)) = others.into_iter().find(|(_, n)| n.len() >= majority) {
            let why = format!(
                "replica state diverged: at index {index} this replica's fingerprint is \
                 {ours:016x}, a majority (nodes {nodes:?}) has {theirs:016x}; restart it to \
                 rebuild its state"
            );
            tracing::error!(partition, index, "partition {partition}: {why}");
            self.diverged = Some(why);
        }
    }

    fn forget_old(&mut self) {
        while self.own.len() > KEPT {
            self.own.pop_front();
        }
        while self.peers.len() > KEPT {
            self.peers.pop_first();
        }
    }
}

/// The checks of every local partition (see the module documentation).
#[derive(Debug)]
pub struct StateChecks {
    partitions: std::sync::RwLock<BTreeMap<PartitionId, Mutex<PartitionChecks>>>,
}

/// What the checks of one partition found so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckCounts {
    /// Peers' fingerprints compared with this replica's.
    pub compared: u64,
    /// Of those, the ones that differed.
    pub mismatches: u64,
}

impl StateChecks {
    /// Checks for `partitions`, none taken yet.
    pub fn new(partitions: &[PartitionId]) -> StateChecks {
        StateChecks {
            partitions: std::sync::RwLock::new(
                partitions
                    .iter()
                    .map(|p| (*p, Mutex::new(PartitionChecks::default())))
                    .collect(),
            ),
        }
    }

    /// Starts checking `partition`, which joined this node (anew).
    pub fn add(&self, partition: PartitionId) {
        self.partitions
            .write()
            .expect("never poisoned")
            .insert(partition, Mutex::new(PartitionChecks::default()));
    }

    /// Stops checking `partition`, which left this node.
    pub fn remove(&self, partition: PartitionId) {
        self.partitions
            .write()
            .expect("never poisoned")
            .remove(&partition);
    }

    fn with<R>(
        &self,
        partition: PartitionId,
        f: impl FnOnce(&mut PartitionChecks) -> R,
    ) -> Option<R> {
        let partitions = self.partitions.read().expect("never poisoned");
        let checks = partitions.get(&partition)?;
        let result = f(&mut checks.lock().expect("never poisoned"));
        Some(result)
    }

    /// This replica of `partition` took `checkpoint`; reports already heard
    /// for its index are compared now.
    pub fn record(&self, partition: PartitionId, checkpoint: Checkpoint, replication_factor: u32) {
        self.with(partition, |c| {
            if c.own
                .back()
                .is_some_and(|last| last.index >= checkpoint.index)
            {
                // A replay after a restore or a rebuild: start over from here.
                c.own.clear();
            }
            c.own.push_back(checkpoint);
            c.compare(partition, checkpoint.index, replication_factor);
            c.forget_old();
        });
    }

    /// The newest checkpoint of each local partition, for the gossip.
    pub fn latest(&self) -> Vec<(PartitionId, Checkpoint)> {
        self.partitions
            .read()
            .expect("never poisoned")
            .iter()
            .filter_map(|(p, c)| Some((*p, *c.lock().expect("never poisoned").own.back()?)))
            .collect()
    }

    /// Node `from` reported `checkpoint` for its replica of `partition`
    /// (ignored if `partition` is not local here).
    pub fn receive(
        &self,
        partition: PartitionId,
        from: NodeId,
        checkpoint: Checkpoint,
        replication_factor: u32,
    ) {
        self.with(partition, |c| {
            if c.own
                .front()
                .is_some_and(|oldest| checkpoint.index < oldest.index)
            {
                return;
            }
            let reports = c.peers.entry(checkpoint.index).or_default();
            if reports
                .get(&from)
                .is_some_and(|(f, _)| *f == checkpoint.fingerprint)
            {
                return;
            }
            reports.insert(from, (checkpoint.fingerprint, false));
            c.compare(partition, checkpoint.index, replication_factor);
            c.forget_old();
        });
    }

    /// Why `partition`'s replica is unhealthy, if it diverged.
    pub fn diverged(&self, partition: PartitionId) -> Option<String> {
        self.with(partition, |c| c.diverged.clone()).flatten()
    }

    /// What the checks of `partition` found so far.
    pub fn counts(&self, partition: PartitionId) -> CheckCounts {
        self.with(partition, |c| CheckCounts {
            compared: c.compared,
            mismatches: c.mismatches,
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: u64, fingerprint: u64) -> Checkpoint {
        Checkpoint { index, fingerprint }
    }

    #[test]
    fn agreeing_replicas_are_compared_once_per_report() {
        let checks = StateChecks::new(&[1]);
        checks.record(1, at(100, 7), 3);
        checks.receive(1, 2, at(100, 7), 3);
        checks.receive(1, 2, at(100, 7), 3);
        // Heard before this replica got there: compared when it does.
        checks.receive(1, 3, at(200, 9), 3);
        assert_eq!(checks.counts(1).compared, 1);
        checks.record(1, at(200, 9), 3);
        assert_eq!(
            checks.counts(1),
            CheckCounts {
                compared: 2,
                mismatches: 0
            }
        );
        assert_eq!(checks.latest(), vec![(1, at(200, 9))]);
        assert_eq!(checks.diverged(1), None);
        // Not a local partition: ignored.
        checks.receive(5, 2, at(100, 1), 3);
        assert_eq!(checks.diverged(5), None);
    }

    #[test]
    fn the_replica_outvoted_by_a_majority_is_the_one_that_diverged() {
        let (mine, theirs) = (0xabc, 0xdef);
        let checks = StateChecks::new(&[1]);
        checks.record(1, at(100, mine), 3);
        checks.receive(1, 1, at(100, theirs), 3);
        // One peer disagrees: a mismatch, but no majority against us.
        assert_eq!(checks.counts(1).mismatches, 1);
        assert_eq!(checks.diverged(1), None);
        checks.receive(1, 2, at(100, theirs), 3);
        let why = checks.diverged(1).expect("outvoted");
        assert!(
            why.contains("index 100") && why.contains("0000000000000abc") && why.contains("[1, 2]"),
            "{why}"
        );

        // The majority side only sees one mismatch and stays healthy.
        let majority = StateChecks::new(&[1]);
        majority.record(1, at(100, theirs), 3);
        majority.receive(1, 0, at(100, mine), 3);
        majority.receive(1, 2, at(100, theirs), 3);
        assert_eq!(majority.diverged(1), None);
        assert_eq!(
            majority.counts(1),
            CheckCounts {
                compared: 2,
                mismatches: 1
            }
        );

        // Three different states: no majority, nobody marked.
        let split = StateChecks::new(&[1]);
        split.record(1, at(100, 1), 3);
        split.receive(1, 1, at(100, 2), 3);
        split.receive(1, 2, at(100, 3), 3);
        assert_eq!(split.diverged(1), None);
        assert_eq!(split.counts(1).mismatches, 2);
    }

    #[test]
    fn old_reports_are_forgotten_and_a_replay_starts_over() {
        let checks = StateChecks::new(&[1]);
        for i in 1..=40 {
            checks.record(1, at(i * 10, i), 3);
        }
        // Older than every checkpoint kept: dropped, not kept forever.
        checks.receive(1, 2, at(10, 99), 3);
        assert_eq!(checks.counts(1).compared, 0);
        checks.receive(1, 2, at(400, 40), 3);
        assert_eq!(checks.counts(1).compared, 1);
        // A restore replays from an earlier index: its checkpoints count.
        checks.record(1, at(200, 20), 3);
        checks.receive(1, 3, at(200, 21), 3);
        assert_eq!(checks.counts(1).mismatches, 1);
    }
}

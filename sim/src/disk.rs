//! Simulated durable storage of one node, behind the small [`NodeStorage`]
//! boundary the simulator drives.
//!
//! [`ModelDisk`] keeps two images of every group's log and hard state: the
//! *current* one (what reads see, like a page cache) and the *durable* one
//! (what survives a crash). Writes go to the current image at once and are
//! queued; `sync` replays the queue onto the durable image. A crash keeps a
//! random prefix of the queued log writes (the last kept write may be torn:
//! only a prefix of its entries survives, as recovery stops at the first
//! frame whose checksum fails) and, independently, a random prefix of the
//! queued hard-state writes, then resets the current image to the durable
//! one.

use bytes::Bytes;
use raft::{
    Entry, GroupConfig, GroupId, HardState, Index, LogReader, MemLog, Snapshot, SnapshotMeta, Term,
};

use crate::prng::Prng;

/// What the simulator needs from a node's storage besides reading.
pub trait NodeStorage: LogReader {
    /// Installs a snapshot (unsynced until `sync`).
    fn install_snapshot(&mut self, group: GroupId, snapshot: Snapshot);
    /// Writes entries, replacing stored ones from `entries[0].index` on.
    fn append(&mut self, group: GroupId, entries: &[Entry]);
    /// Writes the hard state.
    fn set_hard_state(&mut self, group: GroupId, hs: HardState);
    /// Records an application snapshot at `index` and drops the log prefix;
    /// durable at once (written to its own file, synced and renamed).
    fn compact(&mut self, group: GroupId, index: Index, config: GroupConfig, data: Bytes);
    /// Makes every write so far durable.
    fn sync(&mut self);
    /// Loses unsynced writes (tearing the tail), as a power failure would.
    fn crash(&mut self, rng: &mut Prng);
    /// The stored hard state.
    fn hard_state(&self, group: GroupId) -> HardState;
    /// The latest snapshot with its data.
    fn snapshot_data(&self, group: GroupId) -> Option<Snapshot>;
}

#[derive(Clone, Debug)]
enum LogOp {
    Append(GroupId, Vec<Entry>),
    Install(GroupId, Snapshot),
}

/// In-memory model of a disk with volatile write-back caching.
#[derive(Clone, Debug, Default)]
pub struct ModelDisk {
    current: MemLog,
    durable: MemLog,
    log_ops: Vec<LogOp>,
    meta_ops: Vec<(GroupId, HardState)>,
    snapshots: std::collections::BTreeMap<GroupId, Snapshot>,
    durable_snapshots: std::collections::BTreeMap<GroupId, Snapshot>,
}

impl ModelDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    fn apply_log_op(
        log: &mut MemLog,
        snaps: &mut std::collections::BTreeMap<GroupId, Snapshot>,
        op: &LogOp,
    ) {
        match op {
            LogOp::Append(g, entries) => log.append(*g, entries),
            LogOp::Install(g, s) => {
                log.install_snapshot(*g, s.clone());
                snaps.insert(*g, s.clone());
            }
        }
    }
}

impl LogReader for ModelDisk {
    fn entries(&self, group: GroupId, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) {
        self.current.entries(group, lo, hi, max_bytes, out)
    }
    fn term(&self, group: GroupId, index: Index) -> Option<Term> {
        self.current.term(group, index)
    }
    fn first_index(&self, group: GroupId) -> Index {
        self.current.first_index(group)
    }
    fn last_index(&self, group: GroupId) -> Index {
        self.current.last_index(group)
    }
    fn snapshot(&self, group: GroupId) -> Option<SnapshotMeta> {
        self.current.snapshot(group)
    }
    fn snapshot_chunk(&self, group: GroupId, offset: u64, max_bytes: u64) -> Bytes {
        self.current.snapshot_chunk(group, offset, max_bytes)
    }
}

impl NodeStorage for ModelDisk {
    fn install_snapshot(&mut self, group: GroupId, snapshot: Snapshot) {
        let op = LogOp::Install(group, snapshot);
        Self::apply_log_op(&mut self.current, &mut self.snapshots, &op);
        self.log_ops.push(op);
    }

    fn append(&mut self, group: GroupId, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        let op = LogOp::Append(group, entries.to_vec());
        Self::apply_log_op(&mut self.current, &mut self.snapshots, &op);
        self.log_ops.push(op);
    }

    fn set_hard_state(&mut self, group: GroupId, hs: HardState) {
        self.current.set_hard_state(group, hs);
        self.meta_ops.push((group, hs));
    }

    fn compact(&mut self, group: GroupId, index: Index, config: GroupConfig, data: Bytes) {
        assert!(
            self.log_ops.is_empty(),
            "compaction with unsynced log writes"
        );
        self.current
            .compact(group, index, config.clone(), data.clone());
        self.durable.compact(group, index, config, data);
        let s = self.current.snapshot(group).expect("just compacted");
        let snap = Snapshot {
            meta: s,
            data: self.current.snapshot_chunk(group, 0, u64::MAX),
        };
        self.snapshots.insert(group, snap.clone());
        self.durable_snapshots.insert(group, snap);
    }

    fn sync(&mut self) {
        for op in std::mem::take(&mut self.log_ops) {
            Self::apply_log_op(&mut self.durable, &mut self.durable_snapshots, &op);
        }
        for (g, hs) in std::mem::take(&mut self.meta_ops) {
            self.durable.set_hard_state(g, hs);
        }
    }

    fn crash(&mut self, rng: &mut Prng) {
        let ops = std::mem::take(&mut self.log_ops);
        let keep = rng.below(ops.len() as u64 + 1) as usize;
        for (i, op) in ops.iter().enumerate() {
            if i < keep {
                Self::apply_log_op(&mut self.durable, &mut self.durable_snapshots, op);
            } else if i == keep {
                // Torn write: a prefix of its entries reached the platter.
                if let LogOp::Append(g, entries) = op {
                    let n = rng.below(entries.len() as u64) as usize;
                    if n > 0 {
                        self.durable.append(*g, &entries[..n]);
                    }
                }
                break;
            }
        }
        let metas = std::mem::take(&mut self.meta_ops);
        let keep = rng.below(metas.len() as u64 + 1) as usize;
        for &(g, hs) in &metas[..keep] {
            self.durable.set_hard_state(g, hs);
        }
        self.current = self.durable.clone();
        self.snapshots = self.durable_snapshots.clone();
    }

    fn hard_state(&self, group: GroupId) -> HardState {
        self.current.hard_state(group)
    }

    fn snapshot_data(&self, group: GroupId) -> Option<Snapshot> {
        self.snapshots.get(&group).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::EntryKind;

    fn entry(index: Index) -> Entry {
        Entry {
            term: 1,
            index,
            kind: EntryKind::Normal,
            data: Bytes::from(vec![index as u8; 4]),
        }
    }

    #[test]
    fn crash_keeps_synced_and_a_prefix_of_unsynced_writes() {
        for seed in 0..200 {
            let mut d = ModelDisk::new();
            d.append(1, &[entry(1), entry(2)]);
            d.sync();
            d.append(1, &[entry(3), entry(4), entry(5)]);
            d.append(1, &[entry(6)]);
            let mut rng = Prng::new(seed);
            d.crash(&mut rng);
            let last = d.last_index(1);
            assert!((2..=6).contains(&last), "seed {seed}: last {last}");
            let mut out = Vec::new();
            d.entries(1, 1, last + 1, u64::MAX, &mut out);
            let expect: Vec<Entry> = (1..=last).map(entry).collect();
            assert_eq!(out, expect, "seed {seed}: survivors are a prefix");
        }
    }

    #[test]
    fn crash_loses_unsynced_writes_sometimes_and_never_synced_ones() {
        let mut lost = false;
        for seed in 0..50 {
            let mut d = ModelDisk::new();
            d.append(1, &[entry(1)]);
            d.set_hard_state(
                1,
                HardState {
                    term: 1,
                    vote: 1,
                    commit: 1,
                },
            );
            d.sync();
            d.append(1, &[entry(2), entry(3)]);
            d.set_hard_state(
                1,
                HardState {
                    term: 2,
                    vote: 0,
                    commit: 1,
                },
            );
            d.crash(&mut Prng::new(seed));
            assert!(d.last_index(1) >= 1);
            assert!(d.hard_state(1).term >= 1);
            lost |= d.last_index(1) < 3;
        }
        assert!(lost, "unsynced writes must be lost in some crashes");
    }
}

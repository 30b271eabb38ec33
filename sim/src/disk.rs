//! One simulated node's durable storage: the `storage` crate's own `Log`,
//! `MetaStore` and `SnapshotStore` for every group, over one
//! `storage::SimDisk` that the node owns for the whole run (it survives
//! crashes; the stores are reopened and recover from it).
//!
//! Layout on the simulated disk, per group `g`: `/g{g}/log` (segments),
//! `/g{g}/meta` (hard state), `/g{g}/snap` (snapshots). A log entry's payload
//! is one kind byte followed by the Raft payload; a snapshot's bytes are the
//! encoded group configuration (length-prefixed) followed by the application
//! data.
//!
//! Write path, as in the broker: entries are buffered by `Log::append`
//! (readable at once, like a page cache) after a `truncate_suffix` when they
//! replace stored ones; the hard state waits in memory; [`SimStorage::sync`]
//! runs `Log::sync`, then `MetaStore::store`. Snapshot installs and
//! compactions are written through at once (snapshot store first, then the
//! log), since every step of the snapshot store syncs; recovery reconciles the
//! two (a log that does not hold the latest snapshot's entry is dropped).
//!
//! Crash: what was never synced is lost. Half of the crashes strike in the
//! middle of a sync: the disk halts after a random number of mutating
//! operations (a segment write done but not its `fdatasync`, a directory not
//! synced, ...), then loses power, so that the log's tail is torn at a sector
//! boundary and recovery is `storage`'s own.
//!
//! Every `SimDisk` future completes on its first poll; [`now`] drives them.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::{BufMut, Bytes, BytesMut};
use raft::{
    Entry, EntryKind, GroupConfig, GroupId, HardState, Index, LogReader, Snapshot, SnapshotMeta,
    Term,
};
use storage::{Log, LogConfig, MetaStore, SimDisk, SnapshotStore};

use crate::prng::Prng;

/// Segment size of the simulated logs: small, so that runs roll, retire and
/// recycle segments.
pub const SIM_SEGMENT_SIZE_BYTES: u64 = 64 << 10;
/// Snapshots kept per group.
pub const SNAPSHOTS_KEPT: usize = 2;
/// A crash in the middle of a sync halts the disk after fewer mutating
/// operations than this.
pub const MAX_HALT_MUTATIONS: u64 = 8;

const KIND_NORMAL: u8 = 0;
const KIND_CONF_CHANGE: u8 = 1;

/// A storage operation of the simulator failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The `storage` crate reported an error.
    #[error("group {group}: {what}: {source}")]
    Store {
        /// Group.
        group: GroupId,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: storage::Error,
    },
    /// A stored snapshot or entry is not in the simulator's format.
    #[error("group {group}: {what}")]
    Format {
        /// Group.
        group: GroupId,
        /// What is wrong.
        what: String,
    },
}

/// Drives a `SimDisk` future, which completes on its first poll.
pub fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a storage::SimDisk future must complete on its first poll"),
    }
}

fn store_err(group: GroupId, what: &'static str) -> impl FnOnce(storage::Error) -> StorageError {
    move |source| StorageError::Store {
        group,
        what,
        source,
    }
}

fn group_dir(group: GroupId, part: &str) -> PathBuf {
    PathBuf::from(format!("/g{group}/{part}"))
}

fn to_store(e: &Entry) -> storage::Entry {
    let mut b = BytesMut::with_capacity(1 + e.data.len());
    b.put_u8(match e.kind {
        EntryKind::Normal => KIND_NORMAL,
        EntryKind::ConfChange => KIND_CONF_CHANGE,
    });
    b.put_slice(&e.data);
    storage::Entry {
        term: e.term,
        index: e.index,
        payload: b.freeze(),
    }
}

fn from_store(e: storage::Entry) -> Entry {
    let kind = match e.payload.first() {
        Some(&KIND_NORMAL) => EntryKind::Normal,
        Some(&KIND_CONF_CHANGE) => EntryKind::ConfChange,
        other => panic!(
            "entry {} of the simulated log has kind byte {other:?}: the log returned data it did not store",
            e.index
        ),
    };
    Entry {
        term: e.term,
        index: e.index,
        kind,
        data: e.payload.slice(1..),
    }
}

fn encode_snapshot(config: &GroupConfig, data: &[u8]) -> Bytes {
    let c = raft::encode_config(config);
    let mut b = BytesMut::with_capacity(4 + c.len() + data.len());
    b.put_u32_le(c.len() as u32);
    b.put_slice(&c);
    b.put_slice(data);
    b.freeze()
}

fn decode_snapshot(bytes: Bytes) -> Option<(GroupConfig, Bytes)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let config =
        raft::decode_config(bytes.get(4..4 + len).map(|_| bytes.slice(4..4 + len))?).ok()?;
    Some((config, bytes.slice(4 + len..)))
}

/// The stores of one group.
struct GroupStore {
    log: Log<SimDisk>,
    meta: MetaStore<SimDisk>,
    snaps: SnapshotStore<SimDisk>,
    /// The latest snapshot, with its data.
    snapshot: Option<Snapshot>,
    /// The hard state as the node sees it (stored or waiting for `sync`).
    hard_state: HardState,
    hard_state_dirty: bool,
}

impl GroupStore {
    /// Opens (recovering) the stores of `group` and reconciles the log with
    /// the latest snapshot.
    fn open(disk: &SimDisk, group: GroupId) -> Result<GroupStore, StorageError> {
        let config = LogConfig {
            segment_size_bytes: SIM_SEGMENT_SIZE_BYTES,
            ..LogConfig::default()
        };
        let mut log = now(Log::open(disk.clone(), group_dir(group, "log"), config))
            .map_err(store_err(group, "opening the log"))?;
        let meta = now(MetaStore::open(disk.clone(), group_dir(group, "meta")))
            .map_err(store_err(group, "opening the hard state"))?;
        let snaps = now(SnapshotStore::open(
            disk.clone(),
            group_dir(group, "snap"),
            SNAPSHOTS_KEPT,
        ))
        .map_err(store_err(group, "opening the snapshot store"))?;
        let snapshot = match snaps.latest() {
            None => None,
            Some(m) => {
                let mut bytes = BytesMut::with_capacity(m.total_bytes as usize);
                for n in 0..m.chunk_lengths.len() {
                    let chunk = now(snaps.read_chunk(m.index, m.term, n))
                        .map_err(store_err(group, "reading a snapshot"))?;
                    bytes.put_slice(&chunk);
                }
                let (config, data) =
                    decode_snapshot(bytes.freeze()).ok_or_else(|| StorageError::Format {
                        group,
                        what: format!("snapshot {}/{} holds no configuration", m.term, m.index),
                    })?;
                Some(Snapshot {
                    meta: SnapshotMeta {
                        index: m.index,
                        term: m.term,
                        config,
                        size_bytes: data.len() as u64,
                    },
                    data,
                })
            }
        };
        if let Some(s) = &snapshot {
            let (index, term) = (s.meta.index, s.meta.term);
            let holds = log.first_index() == index + 1 || log.term(index) == Some(term);
            if !holds && log.last_index() >= log.first_index() {
                // An install that crashed between the snapshot store and the
                // log: the old log does not continue the snapshot.
                now(log.truncate_suffix(log.first_index()))
                    .map_err(store_err(group, "dropping a superseded log"))?;
            }
            now(log.compact_prefix(index))
                .map_err(store_err(group, "compacting to the snapshot"))?;
        }
        let hs = meta.get();
        Ok(GroupStore {
            log,
            meta,
            snaps,
            snapshot,
            hard_state: HardState {
                term: hs.term,
                vote: hs.voted_for,
                commit: hs.commit,
            },
            hard_state_dirty: false,
        })
    }

    /// Writes `snapshot` to the snapshot store (synced) and makes it latest.
    fn save_snapshot(&mut self, group: GroupId, snapshot: Snapshot) -> Result<(), StorageError> {
        let bytes = encode_snapshot(&snapshot.meta.config, &snapshot.data);
        let mut w = now(self.snaps.begin(snapshot.meta.index, snapshot.meta.term))
            .map_err(store_err(group, "starting a snapshot"))?;
        now(self.snaps.write_chunk(&mut w, &bytes))
            .map_err(store_err(group, "writing a snapshot"))?;
        now(self.snaps.finish(w, None)).map_err(store_err(group, "finishing a snapshot"))?;
        self.snapshot = Some(snapshot);
        Ok(())
    }

    fn sync(&mut self, group: GroupId) -> Result<(), StorageError> {
        now(self.log.sync()).map_err(store_err(group, "syncing the log"))?;
        if self.hard_state_dirty {
            let hs = self.hard_state;
            now(self.meta.store(storage::HardState {
                term: hs.term,
                voted_for: hs.vote,
                commit: hs.commit,
                ..storage::HardState::default()
            }))
            .map_err(store_err(group, "storing the hard state"))?;
            self.hard_state_dirty = false;
        }
        Ok(())
    }
}

/// A node's storage over `storage::SimDisk`. Owned by the node's simulation
/// thread for the whole run.
#[derive(Default)]
pub struct SimStorage {
    disk: SimDisk,
    groups: BTreeMap<GroupId, GroupStore>,
}

impl SimStorage {
    /// A fresh disk holding empty stores for groups `1..=groups`.
    pub fn new(groups: u64) -> Result<SimStorage, StorageError> {
        let mut s = SimStorage {
            disk: SimDisk::new(),
            groups: BTreeMap::new(),
        };
        s.open(groups)?;
        Ok(s)
    }

    fn open(&mut self, groups: u64) -> Result<(), StorageError> {
        self.groups.clear();
        for g in 1..=groups {
            self.groups.insert(g, GroupStore::open(&self.disk, g)?);
        }
        Ok(())
    }

    fn group(&self, group: GroupId) -> &GroupStore {
        self.groups
            .get(&group)
            .expect("the simulator only uses the groups it opened")
    }

    fn group_mut(&mut self, group: GroupId) -> &mut GroupStore {
        self.groups
            .get_mut(&group)
            .expect("the simulator only uses the groups it opened")
    }

    /// Installs a snapshot received from a leader: the whole log is dropped
    /// and continues after the snapshot.
    pub fn install_snapshot(
        &mut self,
        group: GroupId,
        snapshot: Snapshot,
    ) -> Result<(), StorageError> {
        let index = snapshot.meta.index;
        let g = self.group_mut(group);
        g.save_snapshot(group, snapshot)?;
        if g.log.last_index() >= g.log.first_index() {
            now(g.log.truncate_suffix(g.log.first_index()))
                .map_err(store_err(group, "dropping the log for a snapshot"))?;
        }
        now(g.log.compact_prefix(index)).map_err(store_err(group, "compacting to a snapshot"))
    }

    /// Writes entries (buffered until `sync`), replacing stored ones from
    /// `entries[0].index` on.
    pub fn append(&mut self, group: GroupId, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let g = self.group_mut(group);
        if first.index <= g.log.last_index() {
            now(g.log.truncate_suffix(first.index))
                .map_err(store_err(group, "truncating a conflicting suffix"))?;
        }
        let stored: Vec<storage::Entry> = entries.iter().map(to_store).collect();
        g.log.append(&stored).map_err(store_err(group, "appending"))
    }

    /// Sets the hard state (stored on `sync`).
    pub fn set_hard_state(&mut self, group: GroupId, hs: HardState) {
        let g = self.group_mut(group);
        g.hard_state = hs;
        g.hard_state_dirty = true;
    }

    /// Records an application snapshot at `index` (durable at once) and
    /// drops the log up to it.
    pub fn compact(
        &mut self,
        group: GroupId,
        index: Index,
        config: GroupConfig,
        data: Bytes,
    ) -> Result<(), StorageError> {
        let term = self
            .term(group, index)
            .ok_or_else(|| StorageError::Format {
                group,
                what: format!("compaction at {index}, which the log does not hold"),
            })?;
        let g = self.group_mut(group);
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                config,
                size_bytes: data.len() as u64,
            },
            data,
        };
        g.save_snapshot(group, snapshot)?;
        now(g.log.compact_prefix(index)).map_err(store_err(group, "compacting the log"))
    }

    /// Makes every write so far durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        for (&group, g) in &mut self.groups {
            g.sync(group)?;
        }
        Ok(())
    }

    /// Power loss, possibly in the middle of a sync, then recovery of every
    /// store from what the disk kept.
    pub fn crash(&mut self, rng: &mut Prng) -> Result<(), StorageError> {
        if rng.chance(500) {
            self.disk
                .halt_after_mutations(rng.below(MAX_HALT_MUTATIONS));
            // Fails once the disk halts; what it wrote before may survive.
            let _ = self.sync();
        }
        self.disk.crash(rng.next_u64());
        let groups = self.groups.len() as u64;
        self.open(groups)
    }

    /// The hard state (stored, or set and waiting for `sync`).
    pub fn hard_state(&self, group: GroupId) -> HardState {
        self.group(group).hard_state
    }

    /// The latest snapshot with its data.
    pub fn snapshot_data(&self, group: GroupId) -> Option<Snapshot> {
        self.group(group).snapshot.clone()
    }
}

impl LogReader for SimStorage {
    fn entries(&self, group: GroupId, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) {
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let read = now(self.group(group).log.read(lo, hi, max_bytes))
            .unwrap_or_else(|e| panic!("group {group}: reading entries {lo}..{hi}: {e}"));
        out.extend(read.into_iter().map(from_store));
    }

    fn term(&self, group: GroupId, index: Index) -> Option<Term> {
        let g = self.group(group);
        match &g.snapshot {
            Some(s) if index == s.meta.index => Some(s.meta.term),
            _ if index == 0 => Some(0),
            _ => g.log.term(index),
        }
    }

    fn first_index(&self, group: GroupId) -> Index {
        self.group(group).log.first_index()
    }

    fn last_index(&self, group: GroupId) -> Index {
        self.group(group).log.last_index()
    }

    fn snapshot(&self, group: GroupId) -> Option<SnapshotMeta> {
        self.group(group).snapshot.as_ref().map(|s| s.meta.clone())
    }

    fn snapshot_chunk(&self, group: GroupId, offset: u64, max_bytes: u64) -> Bytes {
        let Some(s) = &self.group(group).snapshot else {
            return Bytes::new();
        };
        let len = s.data.len() as u64;
        let lo = offset.min(len);
        let hi = offset.saturating_add(max_bytes).min(len);
        s.data.slice(lo as usize..hi as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: Term, index: Index) -> Entry {
        Entry {
            term,
            index,
            kind: if index % 3 == 0 {
                EntryKind::ConfChange
            } else {
                EntryKind::Normal
            },
            data: Bytes::from(vec![index as u8; 100]),
        }
    }

    fn all(s: &SimStorage) -> Vec<Entry> {
        let mut out = Vec::new();
        s.entries(1, s.first_index(1), s.last_index(1) + 1, u64::MAX, &mut out);
        out
    }

    #[test]
    fn crash_keeps_synced_writes_and_a_prefix_of_unsynced_ones() {
        let mut lost = false;
        for seed in 0..200 {
            let mut s = SimStorage::new(1).expect("fresh disk");
            let hs = HardState {
                term: 1,
                vote: 1,
                commit: 2,
            };
            s.append(1, &[entry(1, 1), entry(1, 2)]).expect("append");
            s.set_hard_state(1, hs);
            s.sync().expect("sync");
            let more: Vec<Entry> = (3..=60).map(|i| entry(2, i)).collect();
            s.append(1, &more).expect("append");
            s.set_hard_state(1, HardState { term: 2, ..hs });
            s.crash(&mut Prng::new(seed)).expect("recovery");
            let last = s.last_index(1);
            assert!((2..=60).contains(&last), "seed {seed}: last {last}");
            let expect: Vec<Entry> = (1..=last)
                .map(|i| entry(if i <= 2 { 1 } else { 2 }, i))
                .collect();
            assert_eq!(all(&s), expect, "seed {seed}: survivors are a prefix");
            assert!(s.hard_state(1).term >= 1);
            lost |= last < 60;
        }
        assert!(lost, "unsynced writes must be lost in some crashes");
    }

    #[test]
    fn a_conflicting_suffix_is_replaced_and_stays_replaced() {
        let mut s = SimStorage::new(1).expect("fresh disk");
        s.append(1, &(1..=5).map(|i| entry(1, i)).collect::<Vec<_>>())
            .expect("append");
        s.sync().expect("sync");
        s.append(1, &[entry(2, 3), entry(2, 4)]).expect("append");
        s.sync().expect("sync");
        s.crash(&mut Prng::new(7)).expect("recovery");
        let expect = vec![entry(1, 1), entry(1, 2), entry(2, 3), entry(2, 4)];
        assert_eq!(all(&s), expect);
    }

    #[test]
    fn snapshots_survive_crashes_and_the_log_continues_after_them() {
        for seed in 0..50 {
            let mut s = SimStorage::new(1).expect("fresh disk");
            s.append(1, &(1..=10).map(|i| entry(1, i)).collect::<Vec<_>>())
                .expect("append");
            s.sync().expect("sync");
            let config = GroupConfig::new(1..=3).with_priority(2, 5);
            s.compact(1, 6, config.clone(), Bytes::from_static(b"state at 6"))
                .expect("compact");
            let installed = Snapshot {
                meta: SnapshotMeta {
                    index: 20,
                    term: 3,
                    config: config.clone(),
                    size_bytes: 11,
                },
                data: Bytes::from_static(b"state at 20"),
            };
            s.install_snapshot(1, installed.clone()).expect("install");
            s.append(1, &[entry(3, 21)]).expect("append");
            s.crash(&mut Prng::new(seed)).expect("recovery");
            assert_eq!(s.snapshot_data(1), Some(installed.clone()), "seed {seed}");
            assert_eq!(s.first_index(1), 21, "seed {seed}");
            assert_eq!(s.term(1, 20), Some(3));
            assert!(s.last_index(1) == 20 || all(&s) == vec![entry(3, 21)]);
        }
    }
}

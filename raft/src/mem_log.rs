//! An in-memory [`LogReader`] with the write operations a Ready asks for:
//! per group a snapshot (metadata and bytes), the entries after it, and the
//! hard state. Used by tests, the golden transcripts and the benchmark.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::config::GroupConfig;
use crate::reader::LogReader;
use crate::types::{Entry, GroupId, HardState, Index, Snapshot, SnapshotMeta, Term};

#[derive(Default, Clone, Debug)]
struct GroupLog {
    snapshot: Option<Snapshot>,
    /// Index of `entries[0]` minus one (the snapshot index, or 0).
    base: Index,
    base_term: Term,
    entries: Vec<Entry>,
    hard_state: HardState,
}

/// In-memory durable storage for many groups. Every write is immediately
/// "durable".
#[derive(Default, Clone, Debug)]
pub struct MemLog {
    groups: BTreeMap<GroupId, GroupLog>,
}

impl MemLog {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn group_mut(&mut self, group: GroupId) -> &mut GroupLog {
        self.groups.entry(group).or_default()
    }

    /// Forgets everything of `group` (a replica that left it).
    pub fn remove_group(&mut self, group: GroupId) {
        self.groups.remove(&group);
    }

    /// Writes entries, replacing any stored entry at or above the first one.
    pub fn append(&mut self, group: GroupId, entries: &[Entry]) {
        if self.make_room(group, entries) {
            self.group_mut(group).entries.extend_from_slice(entries);
        }
    }

    /// [`MemLog::append`] taking the entries by value (no clone).
    pub fn append_owned(&mut self, group: GroupId, entries: Vec<Entry>) {
        if self.make_room(group, &entries) {
            self.group_mut(group).entries.extend(entries);
        }
    }

    /// Checks an append at `entries[0].index` and drops the stored entries
    /// it replaces; false when there is nothing to append.
    fn make_room(&mut self, group: GroupId, entries: &[Entry]) -> bool {
        let Some(first) = entries.first() else {
            return false;
        };
        let g = self.group_mut(group);
        assert!(
            first.index > g.base,
            "append at {} below snapshot {}",
            first.index,
            g.base
        );
        let keep = (first.index - g.base - 1) as usize;
        assert!(
            keep <= g.entries.len(),
            "append at {} leaves a gap after {}",
            first.index,
            g.base + g.entries.len() as u64
        );
        g.entries.truncate(keep);
        true
    }

    /// Stores the hard state.
    pub fn set_hard_state(&mut self, group: GroupId, hs: HardState) {
        self.group_mut(group).hard_state = hs;
    }

    /// The stored hard state.
    pub fn hard_state(&self, group: GroupId) -> HardState {
        self.groups
            .get(&group)
            .map(|g| g.hard_state)
            .unwrap_or_default()
    }

    /// Installs a snapshot received from a leader: the log becomes empty
    /// after it.
    pub fn install_snapshot(&mut self, group: GroupId, snapshot: Snapshot) {
        let g = self.group_mut(group);
        g.base = snapshot.meta.index;
        g.base_term = snapshot.meta.term;
        g.entries.clear();
        g.snapshot = Some(snapshot);
    }

    /// Records an application snapshot at `index` (which must be stored) and
    /// discards the entries up to it.
    pub fn compact(&mut self, group: GroupId, index: Index, config: GroupConfig, data: Bytes) {
        let term = self.term(group, index).expect("compact index is stored");
        let g = self.group_mut(group);
        assert!(index >= g.base, "compact to {index} below {}", g.base);
        let drop = (index - g.base) as usize;
        g.entries.drain(..drop);
        g.base = index;
        g.base_term = term;
        g.snapshot = Some(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                config,
                size_bytes: data.len() as u64,
            },
            data,
        });
    }

    /// Drops the stored entries from `from` on, as a lost log tail would
    /// (for tests).
    pub fn lose_tail(&mut self, group: GroupId, from: Index) {
        let g = self.group_mut(group);
        let keep = from.saturating_sub(g.base + 1) as usize;
        g.entries.truncate(keep);
    }

    /// Every stored entry of a group (after the snapshot).
    pub fn all_entries(&self, group: GroupId) -> &[Entry] {
        self.groups
            .get(&group)
            .map(|g| g.entries.as_slice())
            .unwrap_or(&[])
    }
}

impl LogReader for MemLog {
    fn entries(&self, group: GroupId, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) {
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        assert!(lo > g.base, "entries from {lo} compacted (base {})", g.base);
        let start = (lo - g.base - 1) as usize;
        let end = ((hi - g.base - 1) as usize).min(g.entries.len());
        let mut bytes = 0;
        for e in &g.entries[start..end] {
            if bytes >= max_bytes && bytes > 0 {
                break;
            }
            bytes += e.size_bytes();
            out.push(e.clone());
        }
    }

    fn term(&self, group: GroupId, index: Index) -> Option<Term> {
        let Some(g) = self.groups.get(&group) else {
            return (index == 0).then_some(0);
        };
        if index == g.base {
            return Some(g.base_term);
        }
        if index < g.base {
            return None;
        }
        g.entries.get((index - g.base - 1) as usize).map(|e| e.term)
    }

    fn first_index(&self, group: GroupId) -> Index {
        self.groups.get(&group).map(|g| g.base).unwrap_or(0) + 1
    }

    fn last_index(&self, group: GroupId) -> Index {
        self.groups
            .get(&group)
            .map(|g| g.base + g.entries.len() as u64)
            .unwrap_or(0)
    }

    fn snapshot(&self, group: GroupId) -> Option<SnapshotMeta> {
        self.groups
            .get(&group)
            .and_then(|g| g.snapshot.as_ref())
            .map(|s| s.meta.clone())
    }

    fn snapshot_chunk(&self, group: GroupId, offset: u64, max_bytes: u64) -> Bytes {
        let Some(s) = self.groups.get(&group).and_then(|g| g.snapshot.as_ref()) else {
            return Bytes::new();
        };
        let start = (offset as usize).min(s.data.len());
        let end = (offset.saturating_add(max_bytes) as usize).min(s.data.len());
        s.data.slice(start..end)
    }
}

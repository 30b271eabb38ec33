//! An in-memory [`LogReader`] with the write operations a Ready asks for:
//! per group a snapshot (metadata and bytes), the entries after it, and the
//! hard state. Used by tests, the golden transcripts and the benchmark.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::config::GroupConfig;
use crate::reader::LogReader;
use crate::types::{Entry, EntryKind, GroupId, HardState, Index, Snapshot, SnapshotMeta, Term};

#[derive(Default, Clone, Debug)]
struct GroupLog {
    snapshot: Option<Snapshot>,
    /// Index of `entries[0]` minus one (the snapshot index, or 0).
    base: Index,
    base_term: Term,
    entries: Vec<Entry>,
    /// Indexes of the configuration entries among `entries`.
    conf_changes: BTreeSet<Index>,
    hard_state: HardState,
}

impl GroupLog {
    fn extend(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for e in entries {
            if e.kind == EntryKind::ConfChange {
                self.conf_changes.insert(e.index);
            }
            self.entries.push(e);
        }
    }

    /// Keeps the first `keep` entries.
    fn truncate(&mut self, keep: usize) {
        self.entries.truncate(keep);
        self.conf_changes.split_off(&(self.base + keep as u64 + 1));
    }
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
            self.group_mut(group).extend(entries.iter().cloned());
        }
    }

    /// [`MemLog::append`] taking the entries by value (no clone).
    pub fn append_owned(&mut self, group: GroupId, entries: Vec<Entry>) {
        if self.make_room(group, &entries) {
            self.group_mut(group).extend(entries);
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
        g.truncate(keep);
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
        g.conf_changes.clear();
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
        g.conf_changes = g.conf_changes.split_off(&(index + 1));
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
        g.truncate(keep);
    }

    /// The newest stored configuration entry at or below `index` (without
    /// scanning the log).
    pub fn conf_change_at(&self, group: GroupId, index: Index) -> Option<&Entry> {
        let g = self.groups.get(&group)?;
        let at = *g.conf_changes.range(..=index).next_back()?;
        g.entries.get((at - g.base - 1) as usize)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term, kind: EntryKind) -> Entry {
        Entry {
            term,
            index,
            kind,
            data: Bytes::from(vec![index as u8]),
        }
    }

    fn conf_at(log: &MemLog, index: Index) -> Option<Index> {
        log.conf_change_at(1, index).map(|e| e.index)
    }

    #[test]
    fn the_newest_configuration_entry_is_found_through_appends_truncations_and_compaction() {
        let mut log = MemLog::new();
        let kinds = [
            EntryKind::Normal,
            EntryKind::ConfChange,
            EntryKind::Normal,
            EntryKind::ConfChange,
            EntryKind::Normal,
        ];
        let entries: Vec<Entry> = (1..=5)
            .map(|i| entry(i, 1, kinds[i as usize - 1]))
            .collect();
        log.append(1, &entries);
        assert_eq!(conf_at(&log, 1), None);
        assert_eq!(conf_at(&log, 3), Some(2));
        assert_eq!(conf_at(&log, 9), Some(4));
        // A conflicting append at 4 replaces the configuration entry there.
        log.append_owned(1, vec![entry(4, 2, EntryKind::Normal)]);
        assert_eq!(conf_at(&log, 9), Some(2));
        log.append(1, &[entry(5, 2, EntryKind::ConfChange)]);
        assert_eq!(conf_at(&log, 5), Some(5));
        log.lose_tail(1, 5);
        assert_eq!(conf_at(&log, 5), Some(2));
        // Compaction past the entry leaves it to the snapshot.
        log.compact(1, 3, GroupConfig::default(), Bytes::new());
        assert_eq!(conf_at(&log, 9), None);
        log.append(1, &[entry(5, 2, EntryKind::ConfChange)]);
        assert_eq!(conf_at(&log, 9), Some(5));
        assert_eq!(log.conf_change_at(1, 9).unwrap().data[0], 5);
    }
}

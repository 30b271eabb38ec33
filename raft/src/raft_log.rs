//! One group's view of its log: the persisted part read through
//! [`LogReader`], the unstable tail in memory, a snapshot received from the
//! leader and not yet installed, and the commit and apply positions.
//!
//! ```text
//!  reader: [first_index ........ offset-1]   (durable, acknowledged)
//!  memory:                       [offset ....... last_index]   (unstable)
//!                                 ^ handed_out: entries below were given to
//!                                   the application to persist
//! ```

use crate::reader::LogReader;
use crate::types::{Entry, GroupId, Index, SnapshotMeta, Term};

/// The log of one group on one node.
#[derive(Debug)]
pub(crate) struct RaftLog {
    pub(crate) group: GroupId,
    /// Entries not yet acknowledged as durable; `unstable[0].index == offset`.
    unstable: Vec<Entry>,
    offset: Index,
    /// Entries with index below this were handed out for persisting.
    handed_out: Index,
    /// A snapshot from the leader that replaces the log once installed.
    pending_snapshot: Option<SnapshotMeta>,
    pub(crate) snapshot_handed_out: bool,
    pub(crate) committed: Index,
    pub(crate) applied: Index,
}

impl RaftLog {
    pub(crate) fn new(
        group: GroupId,
        reader: &dyn LogReader,
        commit: Index,
        applied: Index,
    ) -> Self {
        let last = reader.last_index(group);
        let first = reader.first_index(group);
        let applied = applied.max(first - 1);
        // The hard state may have survived a crash that lost unsynced entries:
        // the commit index is only knowledge, so cap it at what is held.
        let commit = commit.min(last);
        RaftLog {
            group,
            unstable: Vec::new(),
            offset: last + 1,
            handed_out: last + 1,
            pending_snapshot: None,
            snapshot_handed_out: false,
            committed: commit.max(applied),
            applied,
        }
    }

    pub(crate) fn last_index(&self, reader: &dyn LogReader) -> Index {
        if let Some(e) = self.unstable.last() {
            return e.index;
        }
        if let Some(s) = &self.pending_snapshot {
            return s.index;
        }
        reader.last_index(self.group)
    }

    pub(crate) fn first_index(&self, reader: &dyn LogReader) -> Index {
        match &self.pending_snapshot {
            Some(s) => s.index + 1,
            None => reader.first_index(self.group),
        }
    }

    /// Highest index known durable on this node.
    pub(crate) fn stable_last(&self) -> Index {
        if self.pending_snapshot.is_some() {
            return 0;
        }
        self.offset - 1
    }

    pub(crate) fn term(&self, reader: &dyn LogReader, index: Index) -> Option<Term> {
        if index >= self.offset {
            return self
                .unstable
                .get((index - self.offset) as usize)
                .map(|e| e.term);
        }
        if let Some(s) = &self.pending_snapshot {
            return (index == s.index).then_some(s.term);
        }
        if index == 0 {
            return Some(0);
        }
        reader.term(self.group, index)
    }

    pub(crate) fn last_term(&self, reader: &dyn LogReader) -> Term {
        let last = self.last_index(reader);
        self.term(reader, last).unwrap_or(0)
    }

    pub(crate) fn match_term(&self, reader: &dyn LogReader, index: Index, term: Term) -> bool {
        self.term(reader, index) == Some(term)
    }

    /// Raft §5.4.1: is a log ending at (`last_index`, `last_term`) at least as
    /// up to date as ours?
    pub(crate) fn is_up_to_date(
        &self,
        reader: &dyn LogReader,
        last_index: Index,
        last_term: Term,
    ) -> bool {
        let my_term = self.last_term(reader);
        last_term > my_term || (last_term == my_term && last_index >= self.last_index(reader))
    }

    /// Appends entries at `entries[0].index`, dropping everything from there on.
    pub(crate) fn append(&mut self, reader: &dyn LogReader, entries: &[Entry]) {
        if self.make_room(reader, entries) {
            self.unstable.extend_from_slice(entries);
        }
    }

    /// [`RaftLog::append`] taking the entries by value (no clone).
    pub(crate) fn append_owned(&mut self, reader: &dyn LogReader, entries: Vec<Entry>) {
        if self.make_room(reader, &entries) {
            self.unstable.extend(entries);
        }
    }

    /// Checks an append at `entries[0].index` and drops the unstable entries
    /// it replaces; false when there is nothing to append.
    fn make_room(&mut self, reader: &dyn LogReader, entries: &[Entry]) -> bool {
        let Some(first) = entries.first() else {
            return false;
        };
        let at = first.index;
        assert!(
            at > self.committed,
            "group {}: append at {at} would overwrite committed {}",
            self.group,
            self.committed
        );
        let last = self.last_index(reader);
        assert!(
            at <= last + 1,
            "group {}: append at {at} leaves a gap after {last}",
            self.group
        );
        if at >= self.offset {
            self.unstable.truncate((at - self.offset) as usize);
        } else {
            self.unstable.clear();
            self.offset = at;
        }
        self.handed_out = self.handed_out.min(at);
        true
    }

    /// Index of the first entry of `entries` that is not already in the log
    /// (differs in term or lies beyond the end); `None` when all are present.
    pub(crate) fn find_conflict(&self, reader: &dyn LogReader, entries: &[Entry]) -> Option<usize> {
        entries
            .iter()
            .position(|e| !self.match_term(reader, e.index, e.term))
    }

    /// Largest index `<= index` whose term is `<= term` (for fast rejection hints).
    pub(crate) fn find_conflict_by_term(
        &self,
        reader: &dyn LogReader,
        index: Index,
        term: Term,
    ) -> (Index, Term) {
        let mut i = index;
        loop {
            match self.term(reader, i) {
                Some(t) if t > term && i > 0 => i -= 1,
                Some(t) => return (i, t),
                None => return (i, 0),
            }
        }
    }

    /// Entries `lo..hi` (bounded by `max_bytes`, at least one) appended to `out`.
    /// Returns false when `lo` is compacted away.
    pub(crate) fn entries(
        &self,
        reader: &dyn LogReader,
        lo: Index,
        hi: Index,
        max_bytes: u64,
        out: &mut Vec<Entry>,
    ) -> bool {
        if lo >= hi {
            return true;
        }
        if lo < self.first_index(reader) {
            return false;
        }
        let mut bytes = 0;
        if lo < self.offset {
            let stable_hi = hi.min(self.offset);
            let before = out.len();
            reader.entries(self.group, lo, stable_hi, max_bytes, out);
            assert!(
                out.len() > before,
                "group {}: storage returned no entries for {lo}..{stable_hi}",
                self.group
            );
            for e in &out[before..] {
                bytes += e.size_bytes();
            }
            let got_to = out.last().map(|e| e.index + 1).unwrap_or(lo);
            if got_to < stable_hi || bytes >= max_bytes {
                return true;
            }
        }
        let start = lo.max(self.offset);
        for i in start..hi {
            if bytes >= max_bytes && bytes > 0 {
                break;
            }
            let e = &self.unstable[(i - self.offset) as usize];
            bytes += e.size_bytes();
            out.push(e.clone());
        }
        true
    }

    pub(crate) fn commit_to(&mut self, index: Index) {
        if index > self.committed {
            self.committed = index;
        }
    }

    /// Unstable entries not yet handed out for persisting; marks them handed out.
    pub(crate) fn take_unpersisted(&mut self) -> Vec<Entry> {
        let from = (self.handed_out.max(self.offset) - self.offset) as usize;
        let out = self.unstable[from.min(self.unstable.len())..].to_vec();
        self.handed_out = self.offset + self.unstable.len() as u64;
        out
    }

    pub(crate) fn has_unpersisted(&self) -> bool {
        self.handed_out < self.offset + self.unstable.len() as u64
    }

    /// Storage says entries up to `index` (with `term` at `index`) are durable.
    pub(crate) fn stable_to(&mut self, index: Index, term: Term) -> bool {
        if index < self.offset || index >= self.handed_out {
            return false;
        }
        let pos = (index - self.offset) as usize;
        if self.unstable.get(pos).map(|e| e.term) != Some(term) {
            return false;
        }
        self.unstable.drain(..=pos);
        self.offset = index + 1;
        true
    }

    /// Replaces the log with a snapshot received from the leader.
    pub(crate) fn restore(&mut self, meta: SnapshotMeta) {
        assert!(meta.index > self.committed, "restore below commit");
        self.unstable.clear();
        self.offset = meta.index + 1;
        self.handed_out = self.offset;
        self.committed = meta.index;
        self.applied = meta.index;
        self.pending_snapshot = Some(meta);
        self.snapshot_handed_out = false;
    }

    pub(crate) fn pending_snapshot(&self) -> Option<&SnapshotMeta> {
        self.pending_snapshot.as_ref()
    }

    /// Storage says the pending snapshot is installed.
    pub(crate) fn snapshot_installed(&mut self, index: Index, term: Term) -> bool {
        match &self.pending_snapshot {
            Some(s) if s.index == index && s.term == term && self.snapshot_handed_out => {
                self.pending_snapshot = None;
                true
            }
            _ => false,
        }
    }
}

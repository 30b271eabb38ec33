//! The read side of durable log storage, as the core sees it.
//!
//! The core keeps the unstable tail (entries not yet acknowledged through
//! `MultiRaft::persisted`) in memory and reads everything older through this
//! trait. The broker implements it over the `storage` crate's logs, the
//! simulator over its simulated disk, tests over [`crate::MemLog`].
//!
//! Write semantics the core relies on: writing entries that start at index
//! `i` replaces every stored entry at `i` and above; installing a snapshot at
//! index `s` discards the whole log and makes `first_index() == s + 1`.

use bytes::Bytes;

use crate::types::{Entry, GroupId, Index, SnapshotMeta, Term};

/// Synchronous read access to the persisted part of every group's log.
pub trait LogReader {
    /// Appends entries `lo..hi` of `group` to `out`, stopping after the entry
    /// that takes the total past `max_bytes` (at least one entry when
    /// `lo < hi`). The range lies within `first_index()..=last_index()`.
    fn entries(&self, group: GroupId, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>);
    /// Term of the entry at `index`; for `first_index() - 1` the term of the
    /// snapshot (or 0 for an empty log); `None` when compacted or beyond the end.
    fn term(&self, group: GroupId, index: Index) -> Option<Term>;
    /// Index of the first entry still held (one past the snapshot).
    fn first_index(&self, group: GroupId) -> Index;
    /// Index of the last persisted entry (the snapshot index when empty).
    fn last_index(&self, group: GroupId) -> Index;
    /// The latest application snapshot, if any.
    fn snapshot(&self, group: GroupId) -> Option<SnapshotMeta>;
    /// Up to `max_bytes` of the latest snapshot's data starting at `offset`.
    fn snapshot_chunk(&self, group: GroupId, offset: u64, max_bytes: u64) -> Bytes;
}

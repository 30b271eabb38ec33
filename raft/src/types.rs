//! Identifiers, log entries, the hard state and snapshot metadata: the plain
//! data that every other module of the core passes around.

use bytes::Bytes;

use crate::config::GroupConfig;

/// A broker node. `0` is reserved for "none" (no vote, no known leader).
pub type NodeId = u64;
/// A Raft group (one partition replica set).
pub type GroupId = u64;
/// A Raft term.
pub type Term = u64;
/// A log index; the first entry of a log has index 1.
pub type Index = u64;

/// The reserved node id meaning "nobody".
pub const NO_NODE: NodeId = 0;

/// Bytes counted for an entry's header when bounding batches by size.
pub const ENTRY_OVERHEAD_BYTES: u64 = 24;

/// What an entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Application data (possibly empty: a new leader's no-op).
    Normal,
    /// An encoded [`GroupConfig`] that becomes the group's configuration
    /// when the entry is applied.
    ConfChange,
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position in the log.
    pub index: Index,
    /// Payload kind.
    pub kind: EntryKind,
    /// Payload.
    pub data: Bytes,
}

impl Entry {
    /// Size counted against byte limits (payload plus a fixed header).
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

/// The state that must be durable before messages that depend on it are sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// Current term.
    pub term: Term,
    /// Node voted for in `term`, or [`NO_NODE`].
    pub vote: NodeId,
    /// Highest index known to be committed.
    pub commit: Index,
}

/// Describes an application snapshot: the state after applying every entry up
/// to and including `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Last index covered by the snapshot.
    pub index: Index,
    /// Term of the entry at `index`.
    pub term: Term,
    /// Group configuration as of `index`.
    pub config: GroupConfig,
    /// Size of the snapshot data.
    pub size_bytes: u64,
}

/// A snapshot received from the leader, to be installed by the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The application's snapshot bytes.
    pub data: Bytes,
}

/// Role of a replica in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes before disturbing the group with a new term.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Leads the group.
    Leader,
}

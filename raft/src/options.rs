//! Tuning knobs of the core, with the named limits that bound every batch,
//! window and queue.

/// Default bytes of entries in one append message.
pub const MAX_APPEND_BYTES: u64 = 1 << 20;
/// Default appends in flight to one follower.
pub const MAX_INFLIGHT_MSGS: usize = 256;
/// Default bytes of appends in flight to one follower.
pub const MAX_INFLIGHT_BYTES: u64 = 64 << 20;
/// Default snapshot chunk size.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1 << 20;
/// Default snapshot chunks in flight to one follower.
pub const MAX_SNAPSHOT_CHUNKS_IN_FLIGHT: u64 = 8;
/// Default bound on proposed but uncommitted entries of one group.
pub const MAX_UNCOMMITTED_ENTRIES: u64 = 1 << 20;
/// Default bytes of committed entries handed out per group per ready.
pub const MAX_APPLY_BYTES: u64 = 64 << 20;

/// Deliberately broken variants of the core. They take effect only when the
/// crate is built with the `bug-injection` feature and the variant is set in
/// [`RaftConfig`]; the simulator's tests use them to prove it finds bugs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// A candidate counts its own vote twice.
    CountOwnVoteTwice,
    /// The leader commits an entry of an earlier term once a quorum holds it
    /// (violates §5.4.2).
    CommitPreviousTermByCount,
    /// A follower accepts an append whose previous entry's term differs
    /// (violates the AppendEntries consistency check of §5.3).
    AcceptMismatchedPrevTerm,
}

/// Configuration shared by every group of one [`crate::MultiRaft`].
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// Ticks without hearing from a leader before campaigning (randomised in
    /// `[election_ticks, 2 * election_ticks)`), and the check-quorum period.
    pub election_ticks: u32,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: u32,
    /// Run a pre-vote round before starting an election.
    pub pre_vote: bool,
    /// Leaders step down without a recently active quorum; followers that
    /// hear from a leader ignore vote requests (leader lease).
    pub check_quorum: bool,
    /// Zeebe-style priority election: lower-priority replicas wait longer
    /// before campaigning and a leader hands over to a caught-up replica of
    /// higher priority.
    pub priority_election: bool,
    /// Bytes of entries in one append.
    pub max_append_bytes: u64,
    /// Appends in flight per follower.
    pub max_inflight_msgs: usize,
    /// Bytes in flight per follower.
    pub max_inflight_bytes: u64,
    /// Snapshot chunk size.
    pub snapshot_chunk_bytes: u64,
    /// Snapshot chunks in flight per follower.
    pub max_snapshot_chunks_in_flight: u64,
    /// Proposed but uncommitted entries per group before proposals are refused.
    pub max_uncommitted_entries: u64,
    /// Committed bytes handed out per group per ready.
    pub max_apply_bytes: u64,
    /// A deliberately broken variant (only with the `bug-injection` feature).
    #[cfg(feature = "bug-injection")]
    pub bug: Option<Bug>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_ticks: 10,
            heartbeat_ticks: 1,
            pre_vote: true,
            check_quorum: true,
            priority_election: true,
            max_append_bytes: MAX_APPEND_BYTES,
            max_inflight_msgs: MAX_INFLIGHT_MSGS,
            max_inflight_bytes: MAX_INFLIGHT_BYTES,
            snapshot_chunk_bytes: SNAPSHOT_CHUNK_BYTES,
            max_snapshot_chunks_in_flight: MAX_SNAPSHOT_CHUNKS_IN_FLIGHT,
            max_uncommitted_entries: MAX_UNCOMMITTED_ENTRIES,
            max_apply_bytes: MAX_APPLY_BYTES,
            #[cfg(feature = "bug-injection")]
            bug: None,
        }
    }
}

impl RaftConfig {
    /// Selects a broken variant; returns false (and changes nothing) when
    /// the crate was built without the `bug-injection` feature.
    pub fn set_bug(&mut self, bug: Option<Bug>) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.bug = bug;
            true
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            bug.is_none()
        }
    }

    /// Whether the broken variant `bug` is active.
    pub fn has_bug(&self, bug: Bug) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.bug == Some(bug)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            let _ = bug;
            false
        }
    }
}

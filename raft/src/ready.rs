//! The output batch of [`crate::MultiRaft::ready`]: what the application must
//! persist, send and apply, in that order.

use crate::message::Envelope;
use crate::types::{Entry, GroupId, HardState, Snapshot};

/// Work for one group.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupReady {
    /// The group.
    pub group: GroupId,
    /// A snapshot from the leader to install before writing `entries`.
    pub snapshot: Option<Snapshot>,
    /// Entries to write; writing at `entries[0].index` replaces everything
    /// stored from that index on.
    pub entries: Vec<Entry>,
    /// Hard state to store, when it changed.
    pub hard_state: Option<HardState>,
    /// Committed entries to apply, in order, each handed out exactly once.
    pub committed: Vec<Entry>,
}

/// Everything produced since the previous `ready()`.
///
/// The application handles it as follows:
/// 1. send `messages` (they do not depend on this ready's writes; the leader
///    replicates in parallel with its own disk write);
/// 2. per group: install `snapshot`, write `entries` and `hard_state`, sync;
/// 3. send `messages_after_persist`;
/// 4. call `persisted(group, index, term)` for the installed snapshot and for
///    the last written entry of each group;
/// 5. apply `committed`.
///
/// `ready()` must not be called again before step 2 completes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ready {
    /// One envelope per destination node, sendable now.
    pub messages: Vec<crate::message::Envelope>,
    /// One envelope per destination node, sendable once step 2 is durable.
    pub messages_after_persist: Vec<Envelope>,
    /// Per-group work, by ascending group id; groups with nothing to do are
    /// left out.
    pub groups: Vec<GroupReady>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.messages_after_persist.is_empty() && self.groups.is_empty()
    }
}

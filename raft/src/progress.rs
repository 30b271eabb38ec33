//! The leader's view of one follower: how far its log matches, what to send
//! next, and the flow-control state (probe, replicate with a bounded window
//! of in-flight appends, or snapshot transfer).

use std::collections::VecDeque;

use crate::types::Index;

/// Flow-control state of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Unsure where the follower's log matches: one append per round trip.
    Probe,
    /// Matching: appends are pipelined up to the in-flight bounds.
    Replicate,
    /// Behind the compacted prefix: a snapshot is being sent in chunks.
    Snapshot {
        /// Index of the snapshot being sent.
        index: Index,
        /// Bytes sent so far.
        sent_bytes: u64,
        /// Bytes the follower confirmed so far.
        acked_bytes: u64,
        /// Ticks since the follower last confirmed progress.
        stalled_ticks: u32,
    },
}

/// Replication progress of one follower, kept by the leader.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to match the leader's log (and be durable there).
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// Flow-control state.
    pub state: ProgressState,
    /// In probe state: an append is outstanding.
    pub probe_sent: bool,
    /// In replicate state: last index and size of each append in flight.
    pub inflight: VecDeque<(Index, u64)>,
    /// Sum of the sizes in `inflight`.
    pub inflight_bytes: u64,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
}

impl Progress {
    pub(crate) fn new(next_index: Index) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            recent_active: false,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        if let ProgressState::Snapshot { index, .. } = self.state {
            self.next_index = (self.match_index + 1).max(index + 1);
        } else {
            self.next_index = self.match_index + 1;
        }
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.clear_inflight();
    }

    /// The follower lost entries it had acknowledged and now ends at
    /// `last`: probe from there.
    pub(crate) fn lost_entries_after(&mut self, last: Index) {
        self.match_index = self.match_index.min(last);
        self.state = ProgressState::Probe;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.clear_inflight();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.clear_inflight();
    }

    pub(crate) fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot {
            index,
            sent_bytes: 0,
            acked_bytes: 0,
            stalled_ticks: 0,
        };
        self.probe_sent = false;
        self.clear_inflight();
    }

    fn clear_inflight(&mut self) {
        self.inflight.clear();
        self.inflight_bytes = 0;
    }

    /// Whether another append may be sent now.
    pub(crate) fn is_paused(&self, max_inflight_msgs: usize, max_inflight_bytes: u64) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => {
                self.inflight.len() >= max_inflight_msgs
                    || self.inflight_bytes >= max_inflight_bytes
            }
            ProgressState::Snapshot { .. } => true,
        }
    }

    pub(crate) fn add_inflight(&mut self, last: Index, bytes: u64) {
        self.inflight.push_back((last, bytes));
        self.inflight_bytes += bytes;
    }

    /// Frees in-flight appends up to `index`.
    pub(crate) fn free_inflight_to(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.inflight.front() {
            if last > index {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
    }

    pub(crate) fn free_first_inflight(&mut self) {
        if let Some((_, bytes)) = self.inflight.pop_front() {
            self.inflight_bytes -= bytes;
        }
    }

    /// An acknowledgement up to `index`; returns whether `match_index` moved.
    pub(crate) fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        updated
    }

    /// A rejection of the append whose previous index was `rejected`;
    /// returns false when the rejection is stale.
    pub(crate) fn maybe_decr_to(&mut self, rejected: Index, match_hint: Index) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            self.next_index = self.match_index + 1;
            return true;
        }
        if self.next_index == 0 || self.next_index - 1 != rejected {
            return false;
        }
        self.next_index = rejected.min(match_hint + 1).max(self.match_index + 1);
        self.probe_sent = false;
        true
    }
}

//! One simulated node: its Raft core over a [`SimStorage`], the write in
//! flight (a Ready whose sync has not completed), and its replicated state
//! machine (an apply chain hash per group).

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use raft::{Entry, Envelope, GroupId, Index, MultiRaft, NodeId, Snapshot, Term};

use crate::disk::SimStorage;

/// The state machine of one group: how far it applied and the chain hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmState {
    /// Last applied index.
    pub applied: Index,
    /// Chain hash after `applied`.
    pub hash: u64,
}

impl SmState {
    /// Snapshot bytes: index, hash and some padding so that transfers take
    /// several chunks.
    pub fn encode(&self) -> Bytes {
        let pad = (self.applied % 97) as usize;
        let mut b = BytesMut::with_capacity(16 + pad);
        b.put_u64_le(self.applied);
        b.put_u64_le(self.hash);
        b.put_bytes(0xab, pad);
        b.freeze()
    }

    /// Parses snapshot bytes written by [`SmState::encode`].
    pub fn decode(data: &[u8]) -> Option<SmState> {
        let applied = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let hash = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        Some(SmState { applied, hash })
    }
}

/// Work of a Ready waiting for its sync.
#[derive(Debug, Default)]
pub struct PendingIo {
    pub(crate) after_persist: Vec<Envelope>,
    pub(crate) acks: Vec<(GroupId, Index, Term)>,
    pub(crate) snapshots: Vec<(GroupId, Snapshot)>,
    pub(crate) committed: Vec<(GroupId, Vec<Entry>)>,
}

/// A simulated node.
pub struct SimNode {
    /// Node id.
    pub id: NodeId,
    /// Whether it runs.
    pub up: bool,
    /// Bumped on every crash, so that stale timers are ignored.
    pub incarnation: u64,
    /// The Raft core (stale while down; rebuilt on restart).
    pub raft: MultiRaft<SimStorage>,
    /// The write in flight.
    pub io: Option<PendingIo>,
    /// State machine per group.
    pub sm: BTreeMap<GroupId, SmState>,
}

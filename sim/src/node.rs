//! One simulated node: the replica driver (the broker's own write, sync,
//! acknowledge and apply path) over a `storage::SimDisk` that survives its
//! crashes, the ready whose sync is in flight, and per group a state machine
//! that keeps an apply chain hash.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::{BufMut, Bytes, BytesMut};
use raft::{Entry, Index, MemLog, MultiRaft, NodeId};
use replica::{Driver, Flight, StateMachine};
use storage::SimDisk;

use crate::checker::chain_hash;

/// Drives a `SimDisk` future, which completes on its first poll.
pub fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a storage::SimDisk future must complete on its first poll"),
    }
}

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

/// The chain-hash machine: hands every applied entry, with the hash before
/// it, to the checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct HashMachine {
    /// Where it stands.
    pub state: SmState,
}

impl StateMachine for HashMachine {
    type Output = Vec<(u64, Entry)>;

    fn applied(&self) -> u64 {
        self.state.applied
    }

    fn apply(&mut self, e: &Entry, _log: &MemLog, out: &mut Self::Output) -> Result<(), String> {
        if e.index != self.state.applied + 1 {
            return Err(format!(
                "apply order: entry {} applied after {}",
                e.index, self.state.applied
            ));
        }
        out.push((self.state.hash, e.clone()));
        self.state = SmState {
            applied: e.index,
            hash: chain_hash(self.state.hash, e),
        };
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state.encode().to_vec()
    }

    fn restore(&mut self, index: u64, data: &[u8]) -> Result<(), String> {
        let state = SmState::decode(data).ok_or("snapshot state too short")?;
        if state.applied != index {
            return Err(format!(
                "snapshot at {index} holds the state at {}",
                state.applied
            ));
        }
        self.state = state;
        Ok(())
    }
}

/// A simulated node.
pub struct SimNode {
    /// Node id.
    pub id: NodeId,
    /// Whether it runs.
    pub up: bool,
    /// Bumped on every crash, so that stale timers are ignored.
    pub incarnation: u64,
    /// Its disk, kept across crashes.
    pub disk: SimDisk,
    /// The replicas (stale while down; reopened on restart).
    pub driver: Driver<SimDisk, HashMachine>,
    /// The ready written and not yet synced.
    pub io: Option<Flight>,
}

impl SimNode {
    /// The Raft core.
    pub fn raft(&self) -> &MultiRaft<MemLog> {
        self.driver.raft()
    }

    /// The Raft core, mutable.
    pub fn raft_mut(&mut self) -> &mut MultiRaft<MemLog> {
        self.driver.raft_mut()
    }

    /// The state of group `g`'s machine.
    pub fn sm(&self, g: raft::GroupId) -> SmState {
        self.driver.machine(g).map(|m| m.state).unwrap_or_default()
    }
}

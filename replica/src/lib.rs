//! The replica driver: a node's replicas of its Raft groups over the
//! `storage` crate, and the one handling of a Raft ready (write, sync,
//! acknowledge, apply, snapshot, full disk) that the broker and the
//! simulator both run.
//!
//! It has no runtime: it is generic over the storage [`storage::Disk`]
//! (glommio DMA files in the broker, `storage::SimDisk` in the simulator)
//! and a [`StateMachine`], and decides nothing by a clock (calls that
//! depend on time take it).

pub mod codec;
mod driver;
mod error;
mod machine;
pub mod stall;
mod store;

pub use driver::{Bug, Driver, Flight, GroupSpec, JoinFence, Landed, Opened, Options};
pub use error::ReplicaError;
pub use machine::StateMachine;
pub use stall::{Refusal, Stall};
pub use store::{restore_group, Recovered, SNAPSHOTS_KEPT};

//! Sans-IO multi-group Raft for waggle: no async runtime, no I/O, no clock,
//! no threads, no global randomness.
//!
//! [`MultiRaft`] drives every group of one shard on one node. Inputs:
//! [`MultiRaft::step`] (messages), [`MultiRaft::tick`] (logical time),
//! [`MultiRaft::propose`], [`MultiRaft::persisted`] (storage
//! acknowledgements, also for installed snapshots), membership changes and
//! leadership transfer. Output: [`MultiRaft::ready`] returns a [`Ready`] with
//! messages coalesced per destination node, entries and hard states to
//! persist, snapshots to install and committed entries to apply. The design
//! follows etcd-io/raft; see the crate README for the invariants.

mod codec;
mod config;
mod error;
mod group;
mod mem_log;
mod message;
mod multi;
mod options;
mod progress;
mod raft_log;
mod reader;
mod ready;
mod types;

/// The payload buffer of entries and snapshots.
pub use bytes::Bytes;
pub use codec::{decode, decode_config, encode, encode_config, DecodeError, MAX_PAYLOAD_BYTES};
pub use config::{GroupConfig, VoteResult, DEFAULT_PRIORITY, MAX_VOTERS};
pub use error::{GroupError, ProposeError};
pub use mem_log::MemLog;
pub use message::{Envelope, GroupMessage, MessageBody};
pub use multi::{Brief, GroupBootstrap, MultiRaft, Status, UnsafeForce};
pub use options::{
    Bug, RaftConfig, MAX_APPEND_BYTES, MAX_APPLY_BYTES, MAX_INFLIGHT_BYTES, MAX_INFLIGHT_MSGS,
    MAX_SNAPSHOT_CHUNKS_IN_FLIGHT, MAX_UNCOMMITTED_ENTRIES, SNAPSHOT_CHUNK_BYTES,
};
pub use progress::{Progress, ProgressState};
pub use reader::LogReader;
pub use ready::{GroupReady, Ready};
pub use types::{
    Entry, EntryKind, GroupId, HardState, Index, NodeId, Role, Snapshot, SnapshotMeta, Term,
    ENTRY_OVERHEAD_BYTES, NO_NODE,
};

//! What can go wrong with a replica's storage.

use std::path::PathBuf;

use raft::GroupId;

/// A replica could not be opened, or its storage failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The storage layer failed.
    #[error("partition {group}: {source}")]
    Storage {
        /// The group (partition).
        group: GroupId,
        /// The storage error (names the file).
        #[source]
        source: storage::Error,
    },
    /// What is stored, or what the state machine was given, does not decode.
    #[error("partition {group}: {reason}")]
    Corrupt {
        /// The group (partition).
        group: GroupId,
        /// What is wrong.
        reason: String,
    },
    /// The log lost committed entries and no other replica can give them back.
    #[error(
        "partition {group}: the log in {dir} ends at index {last_index}, but the persisted \
         commit index is {commit_index}: {lost} committed (acknowledged) entries are lost and the \
         partition has no other replica to recover them from. Restore {dir} from a backup, or \
         start without them by setting data.accept_data_loss = true (environment \
         WAGGLE_DATA_ACCEPT_DATA_LOSS=true)",
        lost = commit_index - last_index
    )]
    LostCommitted {
        /// The group (partition).
        group: GroupId,
        /// The group's log directory.
        dir: PathBuf,
        /// Commit index found in the Raft metadata.
        commit_index: u64,
        /// Last index found in the log (or the snapshot).
        last_index: u64,
    },
}

impl ReplicaError {
    /// Whether this is a full disk (ENOSPC), which stalls instead of failing.
    pub fn is_no_space(&self) -> bool {
        matches!(self, ReplicaError::Storage { source, .. } if source.is_no_space())
    }
}

/// Wraps a storage error of `group`.
pub(crate) fn storage(group: GroupId) -> impl Fn(storage::Error) -> ReplicaError {
    move |source| ReplicaError::Storage { group, source }
}

/// A format error of `group`.
pub(crate) fn corrupt(group: GroupId) -> impl Fn(crate::codec::FormatError) -> ReplicaError {
    move |e| ReplicaError::Corrupt { group, reason: e.0 }
}

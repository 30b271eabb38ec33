//! Errors returned to the application by [`crate::MultiRaft`].

use crate::types::{GroupId, Index, NodeId};

/// Why a proposal (or configuration change, or transfer) was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// This node does not lead the group.
    #[error("group {group}: not the leader (leader hint: node {leader_hint}, 0 = unknown)")]
    NotLeader {
        /// The group.
        group: GroupId,
        /// The leader this node knows of, or 0.
        leader_hint: NodeId,
    },
    /// The group is not hosted on this node.
    #[error("group {group} is not hosted on this node")]
    UnknownGroup {
        /// The group.
        group: GroupId,
    },
    /// Leadership is being transferred; retry at the new leader.
    #[error("group {group}: leadership transfer in progress")]
    TransferInProgress {
        /// The group.
        group: GroupId,
    },
    /// The batch held no entries (or the configuration no voters).
    #[error("group {group}: empty proposal")]
    EmptyBatch {
        /// The group.
        group: GroupId,
    },
    /// Too many uncommitted entries; retry once some commit.
    #[error("group {group}: {uncommitted} entries uncommitted, proposal refused")]
    Backpressure {
        /// The group.
        group: GroupId,
        /// Entries proposed and not yet committed.
        uncommitted: Index,
    },
    /// A configuration change is still being applied.
    #[error("group {group}: a configuration change is in progress")]
    ConfChangeInProgress {
        /// The group.
        group: GroupId,
    },
    /// A voter was proposed as a learner.
    #[error("group {group}: a voter cannot be made a learner")]
    LearnerIsVoter {
        /// The group.
        group: GroupId,
    },
}

/// Why a group could not be added.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// The group already exists on this node.
    #[error("group {group} already exists on this node")]
    AlreadyExists {
        /// The group.
        group: GroupId,
    },
}

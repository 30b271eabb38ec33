//! Messages between replicas of a group, and the per-node envelope that
//! carries every group's messages from one node to another in one frame.

use bytes::Bytes;

use crate::types::{Entry, GroupId, Index, NodeId, SnapshotMeta, Term};

/// Body of a message between two replicas of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// "Would you vote for me in `term`?" (does not change anyone's term).
    PreVote {
        /// Candidate's last log index.
        last_index: Index,
        /// Term of the candidate's last entry.
        last_term: Term,
    },
    /// Answer to [`MessageBody::PreVote`].
    PreVoteResp {
        /// Whether the pre-vote was refused.
        reject: bool,
    },
    /// Request for a vote in `term`.
    Vote {
        /// Candidate's last log index.
        last_index: Index,
        /// Term of the candidate's last entry.
        last_term: Term,
        /// Set by a leadership transfer: voters ignore their leader lease.
        transfer: bool,
    },
    /// Answer to [`MessageBody::Vote`].
    VoteResp {
        /// Whether the vote was refused.
        reject: bool,
    },
    /// Entries following `prev_index` (AppendEntries).
    Append {
        /// Index of the entry before `entries`.
        prev_index: Index,
        /// Term of the entry at `prev_index`.
        prev_term: Term,
        /// Leader's commit index.
        commit: Index,
        /// Entries to append (may be empty).
        entries: Vec<Entry>,
    },
    /// Answer to [`MessageBody::Append`] or to an installed snapshot; also
    /// sent, rejected with `index` 0, by a follower that received a
    /// heartbeat claiming more than it holds: it lost entries it had
    /// acknowledged (a torn log tail), and `hint_index` is its last index.
    AppendResp {
        /// Accepted: last index now known to match and be durable.
        /// Rejected: the `prev_index` that did not match (0: lost entries).
        index: Index,
        /// Whether the append was refused.
        reject: bool,
        /// On reject: the follower's best guess of the last matching index.
        hint_index: Index,
        /// On reject: term of the follower's entry at `hint_index`.
        hint_term: Term,
    },
    /// Leader liveness and commit propagation.
    Heartbeat {
        /// Commit index, capped at what the follower is known to hold.
        commit: Index,
    },
    /// Answer to [`MessageBody::Heartbeat`].
    HeartbeatResp,
    /// One chunk of a snapshot for a follower behind the compacted prefix.
    SnapshotChunk {
        /// The snapshot being sent.
        meta: SnapshotMeta,
        /// Byte offset of `data` within the snapshot.
        offset: u64,
        /// The chunk.
        data: Bytes,
    },
    /// Progress of a snapshot transfer.
    SnapshotResp {
        /// Index of the snapshot being received.
        index: Index,
        /// Bytes received in order so far.
        received_bytes: u64,
    },
    /// Leadership transfer: campaign now.
    TimeoutNow,
}

/// A message for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMessage {
    /// The group.
    pub group: GroupId,
    /// Sender's term (for pre-votes: the term the candidate would use).
    pub term: Term,
    /// What it says.
    pub body: MessageBody,
}

/// Every message from one node to another produced by one `ready()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Sending node.
    pub from: NodeId,
    /// Receiving node.
    pub to: NodeId,
    /// Messages in the order they were produced.
    pub messages: Vec<GroupMessage>,
}

impl MessageBody {
    /// Short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteResp { .. } => "PreVoteResp",
            MessageBody::Vote { .. } => "Vote",
            MessageBody::VoteResp { .. } => "VoteResp",
            MessageBody::Append { .. } => "Append",
            MessageBody::AppendResp { .. } => "AppendResp",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResp => "HeartbeatResp",
            MessageBody::SnapshotChunk { .. } => "SnapshotChunk",
            MessageBody::SnapshotResp { .. } => "SnapshotResp",
            MessageBody::TimeoutNow => "TimeoutNow",
        }
    }
}

impl std::fmt::Display for GroupMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "g{} t{} ", self.group, self.term)?;
        match &self.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => write!(f, "PreVote last={last_term}/{last_index}"),
            MessageBody::PreVoteResp { reject } => write!(f, "PreVoteResp reject={reject}"),
            MessageBody::Vote {
                last_index,
                last_term,
                transfer,
            } => {
                write!(f, "Vote last={last_term}/{last_index}")?;
                if *transfer {
                    write!(f, " transfer")?;
                }
                Ok(())
            }
            MessageBody::VoteResp { reject } => write!(f, "VoteResp reject={reject}"),
            MessageBody::Append {
                prev_index,
                prev_term,
                commit,
                entries,
            } => {
                write!(f, "Append prev={prev_term}/{prev_index} commit={commit} [")?;
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{}/{}", e.term, e.index)?;
                    match e.kind {
                        crate::types::EntryKind::ConfChange => write!(f, ":conf")?,
                        crate::types::EntryKind::Normal if !e.data.is_empty() => {
                            write!(f, ":{}", String::from_utf8_lossy(&e.data))?
                        }
                        crate::types::EntryKind::Normal => {}
                    }
                }
                write!(f, "]")
            }
            MessageBody::AppendResp {
                index,
                reject,
                hint_index,
                hint_term,
            } => {
                if *reject {
                    write!(
                        f,
                        "AppendResp reject index={index} hint={hint_term}/{hint_index}"
                    )
                } else {
                    write!(f, "AppendResp index={index}")
                }
            }
            MessageBody::Heartbeat { commit } => write!(f, "Heartbeat commit={commit}"),
            MessageBody::HeartbeatResp => write!(f, "HeartbeatResp"),
            MessageBody::SnapshotChunk { meta, offset, data } => write!(
                f,
                "SnapshotChunk snap={}/{} bytes {}..{} of {}",
                meta.term,
                meta.index,
                offset,
                offset + data.len() as u64,
                meta.size_bytes
            ),
            MessageBody::SnapshotResp {
                index,
                received_bytes,
            } => write!(f, "SnapshotResp snap={index} received={received_bytes}"),
            MessageBody::TimeoutNow => write!(f, "TimeoutNow"),
        }
    }
}

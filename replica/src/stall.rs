//! Writes of one group held back by a full disk (ENOSPC), retried with a
//! bounded back-off.
//!
//! An ENOSPC that leaves entries unwritten or unsynced (or a snapshot not
//! installed) stalls the group: its entries stay buffered and are not
//! reported to Raft as persisted, so a leader does not count them and a
//! follower does not acknowledge them; its messages that depend on the
//! writes are held back. The write is retried every [`MIN_RETRY_MS`] to
//! [`MAX_RETRY_MS`] until it is durable; then the acknowledgements are
//! reported and the held messages sent.

use std::path::{Path, PathBuf};

use raft::{Entry, GroupId, GroupMessage, NodeId, Snapshot};

/// First pause before a stalled write is retried.
pub const MIN_RETRY_MS: u64 = 100;
/// Longest pause between two retries of a stalled write.
pub const MAX_RETRY_MS: u64 = 1_000;
/// Bytes of entries a stalled follower takes from its leader before it
/// drops further appends (the leader sends them again).
pub const MAX_STALLED_BUFFER_BYTES: u64 = 16 << 20;
/// Messages held back by a stall; later ones are dropped (Raft resends).
pub const MAX_HELD_MESSAGES: usize = 4096;

/// Why commands are refused: the directory that is full, and the text given
/// to refused clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The full directory (data directory or a group's log).
    pub dir: PathBuf,
    /// The text for clients: names the directory and what frees it.
    pub reason: String,
}

impl Refusal {
    /// A refusal naming `dir`.
    pub fn new(dir: &Path, reason: String) -> Refusal {
        Refusal {
            dir: dir.to_path_buf(),
            reason,
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Stall {
    /// The full log directory and the text given to refused clients.
    pub refusal: Refusal,
    next_retry_ms: u64,
    pause_ms: u64,
    /// A snapshot from the leader whose install failed, to install first.
    pub snapshot: Option<Snapshot>,
    /// Entries handed out after `snapshot`, written once it is installed.
    pub entries: Vec<Entry>,
    /// `(index, term)` to report to Raft as persisted once durable, in order.
    pub acks: Vec<(u64, u64)>,
    /// Messages that may leave only once the writes are durable.
    pub messages: Vec<(NodeId, GroupMessage)>,
    /// Bytes of entries taken from the leader while stalled.
    pub buffered_bytes: u64,
}

impl Stall {
    /// A stall of `group`'s log in `dir` at `now_ms`, caused by `error`.
    pub fn new(group: GroupId, dir: &Path, error: &dyn std::fmt::Display, now_ms: u64) -> Stall {
        tracing::warn!(
            partition = group,
            "disk full: writes of partition {group} wait for space ({error}); retrying every \
             {MIN_RETRY_MS}..{MAX_RETRY_MS} ms"
        );
        Stall {
            refusal: Refusal::new(
                dir,
                format!(
                    "disk full ({}): writes refused until disk space is freed ({error})",
                    dir.display()
                ),
            ),
            next_retry_ms: now_ms + MIN_RETRY_MS,
            pause_ms: MIN_RETRY_MS,
            snapshot: None,
            entries: Vec::new(),
            acks: Vec::new(),
            messages: Vec::new(),
            buffered_bytes: 0,
        }
    }

    /// Whether a retry is due at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_retry_ms
    }

    /// A retry failed: the next one waits twice as long, up to `MAX_RETRY_MS`.
    pub fn back_off(&mut self, now_ms: u64) {
        self.pause_ms = (self.pause_ms * 2).min(MAX_RETRY_MS);
        self.next_retry_ms = now_ms + self.pause_ms;
    }

    /// Queues entries handed out while a snapshot waits: an append at
    /// `entries[0].index` replaces the queued ones from there on.
    pub fn queue_entries(&mut self, entries: Vec<Entry>) {
        if let Some(first) = entries.first() {
            self.entries.retain(|e| e.index < first.index);
            self.buffered_bytes += entries.iter().map(|e| e.data.len() as u64).sum::<u64>();
            self.entries.extend(entries);
        }
    }

    /// Holds back a message until the writes are durable.
    pub fn hold(&mut self, to: NodeId, message: GroupMessage) {
        if self.messages.len() < MAX_HELD_MESSAGES {
            self.messages.push((to, message));
        }
    }

    /// Whether a follower should drop an append of `bytes` more entry bytes.
    pub fn over_buffer(&self, bytes: u64) -> bool {
        bytes > 0 && self.buffered_bytes + bytes > MAX_STALLED_BUFFER_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_the_bound() {
        let mut stall = Stall::new(1, Path::new("/d"), &"no space", 0);
        assert!(stall.refusal.reason.contains("/d"));
        assert_eq!(stall.refusal.dir, Path::new("/d"));
        assert!(!stall.due(MIN_RETRY_MS - 1));
        assert!(stall.due(MIN_RETRY_MS));
        for _ in 0..10 {
            stall.back_off(0);
        }
        assert!(stall.due(MAX_RETRY_MS));
        assert!(!stall.due(MAX_RETRY_MS - 1));
    }

    #[test]
    fn queued_entries_replace_from_their_first_index() {
        let e = |term, index| Entry {
            term,
            index,
            kind: raft::EntryKind::Normal,
            data: bytes::Bytes::from_static(b"xy"),
        };
        let mut stall = Stall::new(1, Path::new("/d"), &"no space", 0);
        stall.queue_entries(vec![e(1, 1), e(1, 2), e(1, 3)]);
        stall.queue_entries(vec![e(2, 2)]);
        assert_eq!(stall.entries, vec![e(1, 1), e(2, 2)]);
        assert_eq!(stall.buffered_bytes, 8);
        assert!(stall.over_buffer(MAX_STALLED_BUFFER_BYTES));
        assert!(!stall.over_buffer(0));
    }
}

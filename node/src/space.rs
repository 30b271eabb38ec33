//! Disk space: what a partition admits while its disk is full, and the
//! writes it holds back until space is freed.
//!
//! Two sources say a disk is full. The free-space guard (`statvfs` of the
//! data directory every `DISK_CHECK_INTERVAL_MS`): below
//! `data.min_free_space_bytes` only the commands that free work are admitted
//! ([`Admission::DrainOnly`]), below a quarter of it nothing is
//! ([`Admission::Closed`]). And the log itself: an ENOSPC while getting room
//! for frames makes it use its spare segment and report a shortage
//! (drain only, see `storage::Log::space_shortage`), and an ENOSPC that
//! leaves entries unwritten stalls the partition's writes ([`Stall`]):
//! closed, the entries stay buffered and unacknowledged, and the write is
//! retried every `MIN_RETRY_MS` to `MAX_RETRY_MS` until it succeeds.
//!
//! A [`Stall`] belongs to one partition replica, on its shard thread, from
//! the ENOSPC until the retried write is durable.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::command::PartitionCommand;
use crate::placement::PartitionId;

/// First pause before a stalled write is retried.
pub const MIN_RETRY_MS: u64 = 100;
/// Longest pause between two retries of a stalled write.
pub const MAX_RETRY_MS: u64 = 1_000;
/// Below `data.min_free_space_bytes / DRAIN_RESERVE_DIVISOR` free, even the
/// commands that free work are refused.
pub const DRAIN_RESERVE_DIVISOR: u64 = 4;
/// Bytes of entries a stalled follower takes from its leader before it
/// drops further appends (the leader sends them again).
pub const MAX_STALLED_BUFFER_BYTES: u64 = 16 << 20;
/// Messages held back by a stall; later ones are dropped (Raft resends).
pub const MAX_HELD_MESSAGES: usize = 4096;

/// Why commands are refused: the directory that is full, and the text given
/// to refused clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The full directory (data directory or partition log).
    pub dir: PathBuf,
    /// The text for clients: names the directory and what frees it.
    pub reason: String,
}

/// What a partition admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Every command.
    Open,
    /// Only the commands that free work (see [`frees_work`]).
    DrainOnly(Refusal),
    /// No command.
    Closed(Refusal),
}

impl Admission {
    /// The stricter of the two.
    pub fn and(self, other: Admission) -> Admission {
        match (self, other) {
            (Admission::Closed(r), _) | (_, Admission::Closed(r)) => Admission::Closed(r),
            (Admission::DrainOnly(r), _) | (_, Admission::DrainOnly(r)) => Admission::DrainOnly(r),
            _ => Admission::Open,
        }
    }

    /// Why `command` is refused, if it is.
    pub fn refusal(&self, command: &PartitionCommand) -> Option<&str> {
        match self {
            Admission::Open => None,
            Admission::DrainOnly(_) if frees_work(command) => None,
            Admission::DrainOnly(r) | Admission::Closed(r) => Some(&r.reason),
        }
    }

    /// What `/health` says of a partition in this state, if anything.
    pub fn health_problem(&self) -> Option<String> {
        match self {
            Admission::Open => None,
            Admission::DrainOnly(r) => Some(format!(
                "disk full ({}): new work refused, jobs can still be activated and completed",
                r.dir.display()
            )),
            Admission::Closed(r) => {
                Some(format!("disk full ({}): writes refused", r.dir.display()))
            }
        }
    }
}

fn refusal(dir: &Path, reason: String) -> Refusal {
    Refusal {
        dir: dir.to_path_buf(),
        reason,
    }
}

/// Commands admitted on a nearly full disk: they finish or remove work and
/// write little (job activation, completion, failure, error throwing,
/// instance cancellation, incident resolution).
pub fn frees_work(command: &PartitionCommand) -> bool {
    command.drains_work() || matches!(command, PartitionCommand::ActivateJobs { .. })
}

/// The free-space guard's verdict for the data directory `dir`.
pub fn guard(dir: &Path, free: std::io::Result<u64>, min_free_space_bytes: u64) -> Admission {
    let free = match free {
        Ok(free) => free,
        Err(e) => {
            return Admission::Closed(refusal(
                dir,
                format!(
                    "disk full ({}): cannot read its free space: {e}",
                    dir.display()
                ),
            ))
        }
    };
    let hard = min_free_space_bytes / DRAIN_RESERVE_DIVISOR;
    let detail = format!(
        "the data directory has {free} bytes free, below data.min_free_space_bytes = \
         {min_free_space_bytes}"
    );
    if free < hard {
        Admission::Closed(refusal(
            dir,
            format!(
                "disk full ({}): writes refused: {detail} and below its drain reserve of {hard} \
                 bytes; free disk space to resume",
                dir.display()
            ),
        ))
    } else if free < min_free_space_bytes {
        Admission::DrainOnly(refusal(
            dir,
            format!(
                "disk full ({}): new work refused (jobs can still be activated and completed): \
                 {detail}; free disk space to resume",
                dir.display()
            ),
        ))
    } else {
        Admission::Open
    }
}

/// The admission a log short of space allows: drain only, naming the log
/// directory.
pub fn log_shortage(dir: &Path, shortage: &str) -> Admission {
    Admission::DrainOnly(refusal(
        dir,
        format!(
            "disk full ({}): new work refused (jobs can still be activated and completed) since \
             {shortage}; free disk space to resume",
            dir.display()
        ),
    ))
}

/// Writes of one partition held back by ENOSPC, retried with a bounded
/// back-off (see the module documentation).
#[derive(Debug)]
pub struct Stall {
    /// The full log directory and the text given to refused clients.
    pub refusal: Refusal,
    next_retry: Instant,
    pause: Duration,
    /// A snapshot from the leader whose install failed, to install first.
    pub snapshot: Option<raft::Snapshot>,
    /// Entries handed out after `snapshot`, written once it is installed.
    pub entries: Vec<raft::Entry>,
    /// `(index, term)` to report to Raft as persisted once durable, in order.
    pub acks: Vec<(u64, u64)>,
    /// Messages that may leave only once the writes are durable.
    pub messages: Vec<(raft::NodeId, raft::GroupMessage)>,
    /// Bytes of entries taken from the leader while stalled.
    pub buffered_bytes: u64,
}

impl Stall {
    /// A stall of partition `p`'s log in `dir`, caused by `error`.
    pub fn new(p: PartitionId, dir: &Path, error: &dyn std::fmt::Display) -> Stall {
        let pause = Duration::from_millis(MIN_RETRY_MS);
        tracing::warn!(
            partition = p,
            "disk full: writes of partition {p} wait for space ({error}); retrying every \
             {MIN_RETRY_MS}..{MAX_RETRY_MS} ms"
        );
        Stall {
            refusal: refusal(
                dir,
                format!(
                    "disk full ({}): writes refused until disk space is freed ({error})",
                    dir.display()
                ),
            ),
            next_retry: Instant::now() + pause,
            pause,
            snapshot: None,
            entries: Vec::new(),
            acks: Vec::new(),
            messages: Vec::new(),
            buffered_bytes: 0,
        }
    }

    /// Whether a retry is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_retry
    }

    /// A retry failed: the next one waits twice as long, up to `MAX_RETRY_MS`.
    pub fn back_off(&mut self, now: Instant) {
        self.pause = (self.pause * 2).min(Duration::from_millis(MAX_RETRY_MS));
        self.next_retry = now + self.pause;
    }

    /// Queues entries handed out while a snapshot waits: an append at
    /// `entries[0].index` replaces the queued ones from there on.
    pub fn queue_entries(&mut self, entries: Vec<raft::Entry>) {
        if let Some(first) = entries.first() {
            self.entries.retain(|e| e.index < first.index);
            self.buffered_bytes += entries.iter().map(|e| e.data.len() as u64).sum::<u64>();
            self.entries.extend(entries);
        }
    }

    /// Holds back a message until the writes are durable.
    pub fn hold(&mut self, to: raft::NodeId, message: raft::GroupMessage) {
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

    fn create() -> PartitionCommand {
        PartitionCommand::CreateInstance {
            definition_key: 0,
            bpmn_process_id: "p".into(),
            version: -1,
            variables: "{}".into(),
            await_result: None,
            start_instructions: Vec::new(),
        }
    }

    fn complete() -> PartitionCommand {
        PartitionCommand::CompleteJob {
            job_key: 1,
            variables: "{}".into(),
        }
    }

    #[test]
    fn the_guard_refuses_new_work_first_and_drains_only_below_the_reserve() {
        let dir = Path::new("/var/lib/waggle");
        let min = 400;
        assert_eq!(guard(dir, Ok(400), min), Admission::Open);
        let low = guard(dir, Ok(399), min);
        let reason = low.refusal(&create()).expect("new work refused");
        assert!(reason.contains("/var/lib/waggle"), "{reason}");
        assert!(reason.contains("min_free_space_bytes"), "{reason}");
        assert_eq!(low.refusal(&complete()), None);
        let activate = PartitionCommand::ActivateJobs {
            job_type: "t".into(),
            worker: "w".into(),
            timeout_ms: 1,
            max_jobs: 1,
            fetch_variables: Vec::new(),
        };
        assert_eq!(low.refusal(&activate), None);
        let full = guard(dir, Ok(99), min);
        assert!(full.refusal(&complete()).is_some());
        assert_eq!(
            full.health_problem().as_deref(),
            Some("disk full (/var/lib/waggle): writes refused")
        );
        let unreadable = guard(dir, Err(std::io::Error::other("gone")), min);
        assert!(matches!(unreadable, Admission::Closed(_)));
    }

    #[test]
    fn the_stricter_admission_wins() {
        let drain = Admission::DrainOnly(refusal(Path::new("/d"), "d".into()));
        let closed = Admission::Closed(refusal(Path::new("/c"), "c".into()));
        assert_eq!(Admission::Open.and(drain.clone()), drain);
        assert_eq!(drain.clone().and(closed.clone()), closed);
        assert_eq!(closed.clone().and(Admission::Open), closed);
        assert_eq!(Admission::Open.and(Admission::Open), Admission::Open);
    }

    #[test]
    fn retries_back_off_up_to_the_bound() {
        let now = Instant::now();
        let mut stall = Stall::new(1, Path::new("/d"), &"no space");
        assert!(stall.refusal.reason.contains("/d"));
        assert_eq!(stall.refusal.dir, Path::new("/d"));
        assert!(!stall.due(now));
        for _ in 0..10 {
            stall.back_off(now);
        }
        assert!(stall.due(now + Duration::from_millis(MAX_RETRY_MS)));
        assert!(!stall.due(now + Duration::from_millis(MAX_RETRY_MS - 1)));
    }
}

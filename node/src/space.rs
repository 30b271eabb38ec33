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
//! retried every `MIN_RETRY_MS` to `MAX_RETRY_MS` until it succeeds (the
//! replica driver's `replica::Stall`).

use std::path::Path;

pub use replica::Refusal;

use crate::command::PartitionCommand;

/// Below `data.min_free_space_bytes / DRAIN_RESERVE_DIVISOR` free, even the
/// commands that free work are refused.
pub const DRAIN_RESERVE_DIVISOR: u64 = 4;

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
    Refusal::new(dir, reason)
}

/// Commands admitted on a nearly full disk: they finish or remove work and
/// write little (job activation, completion, failure, error throwing,
/// instance cancellation, incident resolution).
pub fn frees_work(command: &PartitionCommand) -> bool {
    command.drains_work() || matches!(command.inner(), PartitionCommand::ActivateJobs { .. })
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
}

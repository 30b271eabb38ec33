//! Locked-memory limit: glommio registers each shard's I/O memory and io_uring
//! rings with the kernel, which counts against `RLIMIT_MEMLOCK` unless the
//! process holds `CAP_IPC_LOCK`. The broker raises the soft limit as far as it
//! needs (up to the hard limit) before starting shards, and refuses to start
//! with a clear message when that is not enough.

use thiserror::Error;

/// Locked memory per shard beyond its I/O memory: the io_uring rings.
pub const RING_OVERHEAD_BYTES: u64 = 1 << 20;
/// `CAP_IPC_LOCK` bit in the capability sets of `/proc/self/status`.
const CAP_IPC_LOCK_BIT: u32 = 14;

/// The limit could not be raised far enough.
#[derive(Debug, Error)]
pub enum MemlockError {
    /// `getrlimit`/`setrlimit` failed.
    #[error("cannot {call} RLIMIT_MEMLOCK: {source}")]
    Syscall {
        /// Which call.
        call: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The hard limit is below what the shards need.
    #[error(
        "the shards need {needed_bytes} bytes of locked memory but RLIMIT_MEMLOCK's hard limit is \
         {hard_bytes} bytes and the process lacks CAP_IPC_LOCK; raise it (`ulimit -l`, \
         LimitMEMLOCK= in the systemd unit) or lower runtime.io_memory_bytes / runtime.shards"
    )]
    TooLow {
        /// What the shards need.
        needed_bytes: u64,
        /// The hard limit.
        hard_bytes: u64,
    },
}

/// Locked memory that `shards` shards with `io_memory_bytes` each need.
pub fn needed_bytes(shards: usize, io_memory_bytes: u64) -> u64 {
    shards as u64 * (io_memory_bytes + RING_OVERHEAD_BYTES)
}

/// Raises the soft limit to at least `needed_bytes`; returns the soft limit now
/// in force.
pub fn raise(needed_bytes: u64) -> Result<u64, MemlockError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(MemlockError::Syscall {
            call: "read",
            source: std::io::Error::last_os_error(),
        });
    }
    if limit.rlim_cur == libc::RLIM_INFINITY || limit.rlim_cur >= needed_bytes {
        return Ok(limit.rlim_cur);
    }
    let target = if limit.rlim_max == libc::RLIM_INFINITY {
        needed_bytes
    } else {
        needed_bytes.min(limit.rlim_max)
    };
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit; the call only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } != 0 {
        return Err(MemlockError::Syscall {
            call: "raise",
            source: std::io::Error::last_os_error(),
        });
    }
    if target < needed_bytes && !has_ipc_lock() {
        return Err(MemlockError::TooLow {
            needed_bytes,
            hard_bytes: limit.rlim_max,
        });
    }
    Ok(target)
}

/// Whether the process holds `CAP_IPC_LOCK`, which exempts it from the limit.
fn has_ipc_lock() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK_BIT) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_need_is_met() {
        let now = raise(64 << 10).expect("64 KiB is below any default limit");
        assert!(now >= 64 << 10);
    }

    #[test]
    fn need_grows_with_shards() {
        assert_eq!(needed_bytes(2, 1 << 20), 4 << 20);
    }
}

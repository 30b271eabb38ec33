//! Raising RLIMIT_MEMLOCK for io_uring: glommio registers its I/O memory
//! (10 MiB per executor by default) with the kernel and refuses to start an
//! executor below `MIN_MEMLOCK_BYTES`.

use crate::error::{Error, Result};

/// The least locked memory glommio starts an executor with.
pub const MIN_MEMLOCK_BYTES: u64 = 512 << 10;

fn get() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if rc == 0 {
        Ok(limit)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn set(soft: libc::rlim_t, hard: libc::rlim_t) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a valid rlimit; the call only reads it.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Raises this process's RLIMIT_MEMLOCK as far as allowed: to unlimited when
/// privileged, else the soft limit to the hard one. Call it before starting
/// glommio executors. Fails, saying what to set, when the result is below
/// `MIN_MEMLOCK_BYTES`.
pub fn raise_memlock_limit() -> Result<()> {
    let fail = |limit: libc::rlimit, reason: String| Error::MemLock {
        current_bytes: limit.rlim_cur,
        hard_bytes: limit.rlim_max,
        wanted_bytes: MIN_MEMLOCK_BYTES,
        wanted_kib: MIN_MEMLOCK_BYTES >> 10,
        reason,
    };
    let before = get().map_err(|e| {
        fail(
            libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            },
            format!("getrlimit failed: {e}"),
        )
    })?;
    if before.rlim_cur == libc::RLIM_INFINITY {
        return Ok(());
    }
    if set(libc::RLIM_INFINITY, libc::RLIM_INFINITY).is_err() {
        set(before.rlim_max, before.rlim_max)
            .map_err(|e| fail(before, format!("setrlimit failed: {e}")))?;
    }
    let after = get().map_err(|e| fail(before, format!("getrlimit failed: {e}")))?;
    if after.rlim_cur != libc::RLIM_INFINITY && (after.rlim_cur) < MIN_MEMLOCK_BYTES {
        return Err(fail(after, "the hard limit is too low".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_leaves_at_least_the_minimum() {
        match raise_memlock_limit() {
            Ok(()) => {
                let limit = get().expect("getrlimit");
                assert!(
                    limit.rlim_cur == libc::RLIM_INFINITY || limit.rlim_cur >= MIN_MEMLOCK_BYTES
                );
            }
            Err(error) => {
                let text = error.to_string();
                assert!(
                    text.contains("ulimit -l") && text.contains("LimitMEMLOCK="),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn the_error_says_what_to_set() {
        let text = Error::MemLock {
            current_bytes: 65536,
            hard_bytes: 65536,
            wanted_bytes: MIN_MEMLOCK_BYTES,
            wanted_kib: 512,
            reason: "the hard limit is too low".into(),
        }
        .to_string();
        assert!(text.contains("ulimit -l"), "{text}");
        assert!(text.contains("LimitMEMLOCK=infinity"), "{text}");
    }
}

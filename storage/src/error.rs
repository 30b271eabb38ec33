//! The error type of the storage crate.
//!
//! Every variant names the input it is about: the file, the index range or the
//! configuration key. `NoSpace` is distinct so that the broker can answer
//! RESOURCE_EXHAUSTED and keep serving reads; `Poisoned` is returned for every
//! write after a failed `fdatasync`, which is never retried. A failed
//! `fdatasync` is never `NoSpace`, even when the kernel says ENOSPC: a caller
//! that retries on `NoSpace` must never retry a sync.

use std::io;
use std::path::{Path, PathBuf};

/// Errors of the log, the metadata store and the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device is full (ENOSPC). Everything already durable stays readable.
    #[error("no space left on device while {op} {path}")]
    NoSpace {
        /// The operation that needed space.
        op: &'static str,
        /// The file or directory being written.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// A previous `fdatasync` (or write) failed: the store refuses every further
    /// write, because the kernel may have dropped dirty pages it reported as written.
    #[error("{path} refuses writes after a failed durable write: {reason}")]
    Poisoned {
        /// The log directory or file.
        path: PathBuf,
        /// What failed first.
        reason: String,
    },
    /// A frame or record failed its checksum where valid data must be.
    #[error("corrupt data in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment or snapshot file.
        path: PathBuf,
        /// Byte offset of the first bad byte range.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// `append` was given an index that does not follow the last one.
    #[error("entries must be contiguous: expected index {expected}, got {got}")]
    NonContiguous {
        /// The index that was expected.
        expected: u64,
        /// The index that was given.
        got: u64,
    },
    /// A read or truncation asked for indexes outside the log.
    #[error("index range {lo}..{hi} is outside the log, which holds {first}..={last}")]
    OutOfRange {
        /// First requested index.
        lo: u64,
        /// One past the last requested index.
        hi: u64,
        /// First index held.
        first: u64,
        /// Last index held.
        last: u64,
    },
    /// A record or chunk is larger than the named limit.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes.
        len: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// More bytes were appended without `sync` than the configured limit.
    #[error(
        "{unsynced_bytes} unsynced bytes would exceed max_unsynced_bytes = {max}: call sync first"
    )]
    BufferFull {
        /// Bytes that would be buffered.
        unsynced_bytes: u64,
        /// The configured limit.
        max: u64,
    },
    /// A configuration value is not acceptable.
    #[error("invalid configuration `{key}` = {value}: {expected}")]
    Config {
        /// The configuration key.
        key: &'static str,
        /// The given value.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// A snapshot operation was given something inconsistent.
    #[error("snapshot {what}: {reason}")]
    Snapshot {
        /// The snapshot (directory name or index).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// RLIMIT_MEMLOCK could not be raised to what io_uring needs.
    #[error(
        "RLIMIT_MEMLOCK is {current_bytes} bytes (hard limit {hard_bytes}) and could not be raised to \
         {wanted_bytes} bytes: {reason}. Set `ulimit -l unlimited` (or at least {wanted_kib}) in the \
         shell, `LimitMEMLOCK=infinity` in the systemd unit, or `memlock` in /etc/security/limits.conf"
    )]
    MemLock {
        /// Soft limit found, in bytes.
        current_bytes: u64,
        /// Hard limit found, in bytes.
        hard_bytes: u64,
        /// Limit wanted, in bytes.
        wanted_bytes: u64,
        /// Limit wanted, in KiB, for `ulimit -l`.
        wanted_kib: u64,
        /// Why raising failed.
        reason: String,
    },
}

/// The `op` of every failed `fdatasync` of a file.
pub(crate) const FDATASYNC_OP: &str = "fdatasync of";

impl Error {
    /// Maps an I/O error on `path` to `NoSpace` for ENOSPC (except from
    /// `fdatasync`, see the module documentation) and `Io` otherwise.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        let enospc = source.raw_os_error() == Some(libc::ENOSPC)
            || source.kind() == io::ErrorKind::StorageFull;
        if enospc && op != FDATASYNC_OP {
            Error::NoSpace {
                op,
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// True for the out-of-space error.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Error::NoSpace { .. })
    }

    /// True for a failed `fdatasync` of a file (never retried).
    pub fn is_sync_failure(&self) -> bool {
        matches!(self, Error::Io { op, .. } if *op == FDATASYNC_OP)
    }
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

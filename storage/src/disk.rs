//! The I/O boundary of the storage crate.
//!
//! `Disk` is a directory tree of files; `DiskFile` is an open file with
//! positioned reads, block-aligned positioned writes and `fdatasync`. The log,
//! the metadata store and the snapshot store are generic over it. Two
//! implementations: [`crate::DmaDisk`] (glommio DMA files over io_uring, usable
//! only inside a glommio executor) and [`crate::SimDisk`] (in memory, with
//! seeded faults; every future completes on its first poll).
//!
//! Durability rules both implementations follow: file data is durable after
//! `fdatasync`; a created, renamed or removed name is durable after `sync_dir`
//! of its parent directory.

use std::future::Future;
use std::io;
use std::path::Path;

/// Alignment of positions and lengths of every write, in bytes.
pub const BLOCK_BYTES: u64 = 4096;

/// Rounds `value` down to a multiple of `BLOCK_BYTES`.
pub fn align_down(value: u64) -> u64 {
    value & !(BLOCK_BYTES - 1)
}

/// Rounds `value` up to a multiple of `BLOCK_BYTES`.
pub fn align_up(value: u64) -> u64 {
    align_down(value + BLOCK_BYTES - 1)
}

/// A directory tree holding files.
pub trait Disk: Clone {
    /// An open file.
    type File: DiskFile;

    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> impl Future<Output = io::Result<()>>;
    /// Names (not paths) of the entries in `dir`, sorted.
    fn list_dir(&self, dir: &Path) -> impl Future<Output = io::Result<Vec<String>>>;
    /// Opens `path` for reading and writing; creates it empty when `create` is
    /// set and it does not exist.
    fn open(&self, path: &Path, create: bool) -> impl Future<Output = io::Result<Self::File>>;
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>>;
    /// Removes the directory `dir` and everything in it.
    fn remove_dir_all(&self, dir: &Path) -> impl Future<Output = io::Result<()>>;
    /// Renames `from` to `to` (a file or a directory), replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>>;
    /// Makes the names in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> impl Future<Output = io::Result<()>>;
}

/// An open file.
pub trait DiskFile {
    /// Current length in bytes.
    fn size_bytes(&self) -> impl Future<Output = io::Result<u64>>;
    /// Reads up to `len` bytes at `pos`; shorter only at the end of the file.
    fn read_at(&self, pos: u64, len: usize) -> impl Future<Output = io::Result<Vec<u8>>>;
    /// Writes `data` at `pos`; both `pos` and `data.len()` are multiples of
    /// `BLOCK_BYTES`. The file grows when written past its end.
    fn write_at(&self, pos: u64, data: &[u8]) -> impl Future<Output = io::Result<()>>;
    /// Makes every completed write to this file durable.
    fn fdatasync(&self) -> impl Future<Output = io::Result<()>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers_round_to_blocks() {
        assert_eq!(align_down(0), 0);
        assert_eq!(align_down(4095), 0);
        assert_eq!(align_down(4096), 4096);
        assert_eq!(align_up(1), 4096);
        assert_eq!(align_up(4096), 4096);
        assert_eq!(align_up(4097), 8192);
    }
}

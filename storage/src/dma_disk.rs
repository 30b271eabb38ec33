//! `DmaDisk`: the production [`Disk`] over glommio DMA files. Reads, writes and
//! `fdatasync` go through io_uring with O_DIRECT (glommio turns O_DIRECT off by
//! itself on filesystems without it, such as tmpfs). Directory operations
//! (list, rename, remove, fsync of a directory) are plain system calls: they
//! are rare and off the append path.
//!
//! Usable only inside a glommio executor; a `DmaDiskFile` belongs to the
//! executor thread that opened it.
//!
//! glommio 0.9 decides once per thread and device whether the device supports
//! polled I/O by reading offset 0 of the first file opened there. When that
//! file is empty the read succeeds on any device, polled I/O is wrongly turned
//! on, and every later read fails with EOPNOTSUPP. `DmaDisk` therefore opens a
//! small non-empty probe file first on every device (`IOPOLL_PROBE_NAME`).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use glommio::io::{DmaFile, OpenOptions};
use glommio::GlommioError;

use crate::disk::{Disk, DiskFile, BLOCK_BYTES};

/// Name of the short-lived file that settles glommio's polled-I/O probe.
pub const IOPOLL_PROBE_NAME: &str = ".iopoll-probe";

thread_local! {
    /// Devices on which this thread has settled glommio's polled-I/O probe.
    static PROBED_DEVICES: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
}

/// Makes glommio probe polled-I/O support of the device holding `dir` with a
/// non-empty file (see the module documentation).
async fn settle_iopoll_probe(dir: &Path) -> io::Result<()> {
    let device = std::fs::metadata(dir)?.dev();
    if PROBED_DEVICES.with(|devices| devices.borrow().contains(&device)) {
        return Ok(());
    }
    let probe = dir.join(IOPOLL_PROBE_NAME);
    std::fs::write(&probe, vec![0u8; BLOCK_BYTES as usize])?;
    let opened = OpenOptions::new().read(true).dma_open(&probe).await;
    let removed = std::fs::remove_file(&probe);
    opened.map_err(to_io)?.close().await.map_err(to_io)?;
    removed?;
    PROBED_DEVICES.with(|devices| devices.borrow_mut().insert(device));
    Ok(())
}

/// The io_uring disk. Stateless; clone freely within an executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct DmaDisk;

/// A file opened through [`DmaDisk`].
pub struct DmaDiskFile {
    file: DmaFile,
}

/// Keeps the operating system's error code (ENOSPC, EIO) that glommio's own
/// conversion drops.
fn to_io<T>(error: GlommioError<T>) -> io::Error {
    match error {
        GlommioError::IoError(source) | GlommioError::EnhancedIoError { source, .. } => source,
        other => io::Error::from(other),
    }
}

impl DiskFile for DmaDiskFile {
    async fn size_bytes(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let read = self.file.read_at(pos, len).await.map_err(to_io)?;
        Ok(read.to_vec())
    }

    async fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        assert!(
            pos % BLOCK_BYTES == 0 && data.len() as u64 % BLOCK_BYTES == 0,
            "unaligned write of {} bytes at {pos}",
            data.len()
        );
        let mut buffer = self.file.alloc_dma_buffer(data.len());
        buffer.as_bytes_mut().copy_from_slice(data);
        let written = self.file.write_at(buffer, pos).await.map_err(to_io)?;
        if written != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {} bytes at {pos}", data.len()),
            ));
        }
        Ok(())
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(to_io)
    }
}

impl Disk for DmaDisk {
    type File = DmaDiskFile;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<DmaDiskFile> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        settle_iopoll_probe(dir.unwrap_or(Path::new("."))).await?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await
            .map_err(to_io)?;
        Ok(DmaDiskFile { file })
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

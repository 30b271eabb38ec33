//! The snapshot store of one partition.
//!
//! ```text
//! {dir}/{index:020}-{term:020}/        a complete snapshot
//!          manifest                     SnapshotMeta + chunk table, checksummed
//!          chunk-{n:08}                 chunk n, zero-padded to whole blocks
//! {dir}/tmp-{index:020}-{term:020}/    a snapshot being written or received
//! ```
//!
//! A snapshot is written chunk by chunk into its `tmp-` directory (each chunk
//! file synced), then the manifest is written and synced, the directory is
//! synced, renamed to its final name, and the parent directory is synced. A
//! crash at any point leaves either no snapshot or a complete one; `tmp-`
//! leftovers are removed on open. The newest `keep` snapshots are kept.
//!
//! Manifest layout (little-endian): magic u32 "WGLS", version u32, index u64,
//! term u64, checksum u32 (CRC32C over all chunk bytes in order), chunk count
//! u32, total bytes u64, then per chunk: length u32, CRC32C u32; then the
//! CRC32C of everything before it.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::disk::{align_up, Disk, DiskFile};
use crate::error::{Error, Result};
use crate::segment::io_err;

/// Largest chunk accepted.
pub const MAX_CHUNK_BYTES: usize = 16 << 20;
/// Most chunks one snapshot may have.
pub const MAX_CHUNKS: usize = 1 << 16;
const MANIFEST_NAME: &str = "manifest";
const MANIFEST_MAGIC: u32 = u32::from_le_bytes(*b"WGLS");
const MANIFEST_VERSION: u32 = 1;
const MANIFEST_HEADER_BYTES: usize = 40;
const TMP_PREFIX: &str = "tmp-";

/// What identifies and checks a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Last log index the snapshot covers.
    pub index: u64,
    /// Term of that index.
    pub term: u64,
    /// CRC32C over all chunk bytes in order.
    pub checksum: u32,
    /// Total bytes of all chunks.
    pub total_bytes: u64,
    /// Length of every chunk.
    pub chunk_lengths: Vec<u32>,
    chunk_crcs: Vec<u32>,
}

fn final_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:020}")
}

fn parse_final(name: &str) -> Option<(u64, u64)> {
    let (index, term) = name.split_once('-')?;
    if index.len() != 20 || term.len() != 20 {
        return None;
    }
    Some((index.parse().ok()?, term.parse().ok()?))
}

fn chunk_name(n: usize) -> String {
    format!("chunk-{n:08}")
}

impl SnapshotMeta {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MANIFEST_MAGIC.to_le_bytes());
        out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.term.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
        out.extend_from_slice(&(self.chunk_lengths.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.total_bytes.to_le_bytes());
        assert_eq!(out.len(), MANIFEST_HEADER_BYTES);
        for (len, crc) in self.chunk_lengths.iter().zip(&self.chunk_crcs) {
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<SnapshotMeta> {
        let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        if u32_at(0)? != MANIFEST_MAGIC || u32_at(4)? != MANIFEST_VERSION {
            return None;
        }
        let count = u32_at(28)? as usize;
        if count > MAX_CHUNKS {
            return None;
        }
        let body = MANIFEST_HEADER_BYTES + 8 * count;
        if u32_at(body)? != crc32c::crc32c(bytes.get(..body)?) {
            return None;
        }
        let mut chunk_lengths = Vec::with_capacity(count);
        let mut chunk_crcs = Vec::with_capacity(count);
        for n in 0..count {
            chunk_lengths.push(u32_at(MANIFEST_HEADER_BYTES + 8 * n)?);
            chunk_crcs.push(u32_at(MANIFEST_HEADER_BYTES + 8 * n + 4)?);
        }
        Some(SnapshotMeta {
            index: u64_at(8)?,
            term: u64_at(16)?,
            checksum: u32_at(24)?,
            total_bytes: u64_at(32)?,
            chunk_lengths,
            chunk_crcs,
        })
    }
}

/// A snapshot being written or received; finish it with
/// [`SnapshotStore::finish`].
pub struct SnapshotWriter {
    index: u64,
    term: u64,
    tmp: PathBuf,
    chunk_lengths: Vec<u32>,
    chunk_crcs: Vec<u32>,
    checksum: u32,
    total_bytes: u64,
}

/// The snapshots of one partition; owned by the partition's shard.
pub struct SnapshotStore<D: Disk> {
    disk: D,
    dir: PathBuf,
    keep: usize,
    /// Complete snapshots, oldest first.
    snapshots: Vec<SnapshotMeta>,
}

impl<D: Disk> SnapshotStore<D> {
    /// Opens (creating if needed) the store in `dir`, keeping the newest
    /// `keep` snapshots (at least 1). Unfinished snapshots are removed; a
    /// complete snapshot whose manifest is invalid is `Error::Corrupt`.
    pub async fn open(disk: D, dir: impl AsRef<Path>, keep: usize) -> Result<SnapshotStore<D>> {
        let dir = dir.as_ref().to_path_buf();
        if keep == 0 {
            return Err(Error::Config {
                key: "snapshots_to_keep",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        disk.create_dir_all(&dir)
            .await
            .map_err(io_err("creating", &dir))?;
        let mut snapshots = Vec::new();
        for name in disk.list_dir(&dir).await.map_err(io_err("listing", &dir))? {
            let path = dir.join(&name);
            if name.starts_with(TMP_PREFIX) {
                disk.remove_dir_all(&path)
                    .await
                    .map_err(io_err("removing", &path))?;
                continue;
            }
            let Some((index, term)) = parse_final(&name) else {
                continue;
            };
            let manifest = path.join(MANIFEST_NAME);
            let bytes = read_whole(&disk, &manifest).await?;
            match SnapshotMeta::decode(&bytes) {
                Some(meta) if meta.index == index && meta.term == term => snapshots.push(meta),
                _ => {
                    return Err(Error::Corrupt {
                        path: manifest,
                        offset: 0,
                        reason: "snapshot manifest fails its checksum".into(),
                    })
                }
            }
        }
        disk.sync_dir(&dir)
            .await
            .map_err(io_err("fsync of directory", &dir))?;
        snapshots.sort_by_key(|m| (m.index, m.term));
        Ok(SnapshotStore {
            disk,
            dir,
            keep,
            snapshots,
        })
    }

    /// The newest complete snapshot.
    pub fn latest(&self) -> Option<&SnapshotMeta> {
        self.snapshots.last()
    }

    /// All complete snapshots, oldest first.
    pub fn list(&self) -> &[SnapshotMeta] {
        &self.snapshots
    }

    /// Starts writing (or receiving) the snapshot of `index` at `term`.
    pub async fn begin(&mut self, index: u64, term: u64) -> Result<SnapshotWriter> {
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}", final_name(index, term)));
        if self
            .disk
            .list_dir(&self.dir)
            .await
            .map_err(io_err("listing", &self.dir))?
            .iter()
            .any(|n| self.dir.join(n) == tmp)
        {
            self.disk
                .remove_dir_all(&tmp)
                .await
                .map_err(io_err("removing", &tmp))?;
        }
        self.disk
            .create_dir_all(&tmp)
            .await
            .map_err(io_err("creating", &tmp))?;
        Ok(SnapshotWriter {
            index,
            term,
            tmp,
            chunk_lengths: Vec::new(),
            chunk_crcs: Vec::new(),
            checksum: 0,
            total_bytes: 0,
        })
    }

    /// Writes the next chunk of `writer` and syncs it.
    pub async fn write_chunk(&mut self, writer: &mut SnapshotWriter, chunk: &[u8]) -> Result<()> {
        if chunk.len() > MAX_CHUNK_BYTES {
            return Err(Error::TooLarge {
                what: "snapshot chunk",
                len: chunk.len() as u64,
                max: MAX_CHUNK_BYTES as u64,
            });
        }
        if writer.chunk_lengths.len() >= MAX_CHUNKS {
            return Err(Error::TooLarge {
                what: "snapshot chunk count",
                len: writer.chunk_lengths.len() as u64 + 1,
                max: MAX_CHUNKS as u64,
            });
        }
        let path = writer.tmp.join(chunk_name(writer.chunk_lengths.len()));
        write_synced(&self.disk, &path, chunk).await?;
        writer.chunk_lengths.push(chunk.len() as u32);
        writer.chunk_crcs.push(crc32c::crc32c(chunk));
        writer.checksum = crc32c::crc32c_append(writer.checksum, chunk);
        writer.total_bytes += chunk.len() as u64;
        Ok(())
    }

    /// Completes `writer`: manifest, syncs, rename, directory sync, and drops
    /// the snapshots beyond the newest `keep`. With `expected_checksum` (a
    /// received snapshot) the chunks must match the sender's checksum.
    pub async fn finish(
        &mut self,
        writer: SnapshotWriter,
        expected_checksum: Option<u32>,
    ) -> Result<SnapshotMeta> {
        let what = final_name(writer.index, writer.term);
        if let Some(expected) = expected_checksum {
            if expected != writer.checksum {
                let _ = self.disk.remove_dir_all(&writer.tmp).await;
                return Err(Error::Snapshot {
                    what,
                    reason: format!(
                        "received chunks have checksum {:#010x}, sender said {expected:#010x}",
                        writer.checksum
                    ),
                });
            }
        }
        let meta = SnapshotMeta {
            index: writer.index,
            term: writer.term,
            checksum: writer.checksum,
            total_bytes: writer.total_bytes,
            chunk_lengths: writer.chunk_lengths,
            chunk_crcs: writer.chunk_crcs,
        };
        let manifest = writer.tmp.join(MANIFEST_NAME);
        if let Err(e) = write_synced(&self.disk, &manifest, &meta.encode()).await {
            let _ = self.disk.remove_dir_all(&writer.tmp).await;
            return Err(e);
        }
        let disk = &self.disk;
        disk.sync_dir(&writer.tmp)
            .await
            .map_err(io_err("fsync of directory", &writer.tmp))?;
        let target = self.dir.join(&what);
        if self
            .snapshots
            .iter()
            .any(|m| (m.index, m.term) == (meta.index, meta.term))
        {
            disk.remove_dir_all(&target)
                .await
                .map_err(io_err("removing", &target))?;
            self.snapshots
                .retain(|m| (m.index, m.term) != (meta.index, meta.term));
        }
        disk.rename(&writer.tmp, &target)
            .await
            .map_err(io_err("renaming", &writer.tmp))?;
        disk.sync_dir(&self.dir)
            .await
            .map_err(io_err("fsync of directory", &self.dir))?;
        self.snapshots.push(meta.clone());
        self.snapshots.sort_by_key(|m| (m.index, m.term));
        while self.snapshots.len() > self.keep {
            let old = self.snapshots.remove(0);
            let path = self.dir.join(final_name(old.index, old.term));
            self.disk
                .remove_dir_all(&path)
                .await
                .map_err(io_err("removing", &path))?;
        }
        self.disk
            .sync_dir(&self.dir)
            .await
            .map_err(io_err("fsync of directory", &self.dir))?;
        Ok(meta)
    }

    /// Gives up `writer` (a write failed, e.g. with ENOSPC): its `tmp-`
    /// directory is removed, best effort (open removes leftovers anyway).
    pub async fn abort(&mut self, writer: SnapshotWriter) {
        let _ = self.disk.remove_dir_all(&writer.tmp).await;
    }

    /// Reads chunk `n` of the snapshot `(index, term)`, verifying its checksum.
    pub async fn read_chunk(&self, index: u64, term: u64, n: usize) -> Result<Bytes> {
        let what = final_name(index, term);
        let meta = self
            .snapshots
            .iter()
            .find(|m| (m.index, m.term) == (index, term))
            .ok_or_else(|| Error::Snapshot {
                what: what.clone(),
                reason: "no such snapshot".into(),
            })?;
        let len = *meta.chunk_lengths.get(n).ok_or_else(|| Error::Snapshot {
            what: what.clone(),
            reason: format!("chunk {n} requested, it has {}", meta.chunk_lengths.len()),
        })? as usize;
        let path = self.dir.join(&what).join(chunk_name(n));
        let file = self
            .disk
            .open(&path, false)
            .await
            .map_err(io_err("opening", &path))?;
        let bytes = file
            .read_at(0, len)
            .await
            .map_err(io_err("reading", &path))?;
        if bytes.len() != len || crc32c::crc32c(&bytes) != meta.chunk_crcs[n] {
            return Err(Error::Corrupt {
                path,
                offset: 0,
                reason: "snapshot chunk fails its checksum".into(),
            });
        }
        Ok(Bytes::from(bytes))
    }
}

/// Writes `data` (zero-padded to whole blocks) into a new file and syncs it.
async fn write_synced<D: Disk>(disk: &D, path: &Path, data: &[u8]) -> Result<()> {
    let file = disk
        .open(path, true)
        .await
        .map_err(io_err("creating", path))?;
    let mut padded = data.to_vec();
    padded.resize(align_up(data.len() as u64) as usize, 0);
    if !padded.is_empty() {
        file.write_at(0, &padded)
            .await
            .map_err(io_err("writing", path))?;
    }
    file.fdatasync().await.map_err(io_err("fdatasync of", path))
}

async fn read_whole<D: Disk>(disk: &D, path: &Path) -> Result<Vec<u8>> {
    let file = disk
        .open(path, false)
        .await
        .map_err(io_err("opening", path))?;
    let len = file.size_bytes().await.map_err(io_err("measuring", path))?;
    file.read_at(0, len as usize)
        .await
        .map_err(io_err("reading", path))
}

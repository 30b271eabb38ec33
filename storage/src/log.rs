//! The per-partition Raft log: a directory of fixed-size segment files (see
//! [`crate::segment`]) holding frames (see [`crate::frame`]).
//!
//! In memory the log keeps: the open segments in index order, each with its
//! sparse index; the `(first index, term)` runs of all entries; the entries
//! appended but not yet synced; the partially written last block of the tail
//! segment, rewritten in place by the next write (O_DIRECT writes whole blocks).
//!
//! Write path: `append` only buffers (indexes must be contiguous). `sync` lays
//! the buffered entries out as frames behind the durable end, issues one
//! block-aligned write and one `fdatasync` per segment touched, and returns
//! the durable last index: every caller waiting for an index at or below it is
//! served by that one sync (group commit). When the tail segment is full, a
//! recycled file (or a new zero-filled one) becomes the next segment and its
//! name is made durable before any frame goes into it; the previous segment is
//! already synced, so segments are always durable in order.
//!
//! A failed `fdatasync` (or a failed write other than ENOSPC) poisons the log:
//! every later write fails with `Error::Poisoned`, reads keep working; the
//! sync is never retried. ENOSPC returns `Error::NoSpace` and leaves the log
//! as it was: the buffered entries stay buffered, the durable ones readable,
//! and a later `sync` retries the write.
//!
//! Space reserve: the log keeps `spare_segments` recycled files in reserve
//! (made by `ensure_spare`). A new tail segment is a recycled file only while
//! more than the reserve is recycled; otherwise a new file is created, and
//! when that fails with ENOSPC the reserve is used. From that ENOSPC until a
//! new segment file is created again, `space_shortage` names the directory:
//! the caller admits only the commands that free work, which the reserve
//! holds.
//!
//! `truncate_suffix` drops whole segments after the cut, shortens and seals
//! the segment holding it and raises the write epoch. The next frame goes to
//! a new segment; its first frame restarts below the previous segment's end
//! with a higher epoch, which tells recovery where that segment was cut. No
//! segment is ever rewritten behind its end, so a torn write never leaves a
//! stale valid frame after the tear. `compact_prefix` retires whole segments
//! (renamed for recycling, or deleted) below the compaction point.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::disk::{align_down, align_up, Disk, DiskFile, BLOCK_BYTES};
use crate::error::{Error, Result, FDATASYNC_OP};
use crate::frame::{self, FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES};
use crate::recovery::TailLoss;
use crate::segment::{
    self, expect_frame, io_err, parse_name, recycle_name, segment_name, FileKind, Segment, Window,
};

/// Default size of a segment file.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 128 << 20;
/// Bytes written per call while zero-filling a new segment file.
pub const ZERO_FILL_CHUNK_BYTES: usize = 1 << 20;
/// Smallest accepted segment size.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4 * BLOCK_BYTES;
/// Largest accepted segment size.
pub const MAX_SEGMENT_SIZE_BYTES: u64 = 1 << 32;
/// Name of the spare file while `Log::ensure_spare` fills it.
pub const SPARE_FILLING_NAME: &str = "spare.filling";
/// Largest spare file made by `Log::ensure_spare`: the reserve holds
/// commands that free work, which are small, so it need not be a whole
/// segment of a large size.
pub const MAX_SPARE_SEGMENT_BYTES: u64 = 16 << 20;

/// Settings of one partition log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Size of every segment file; a multiple of `BLOCK_BYTES`.
    pub segment_size_bytes: u64,
    /// Freed segment files kept for reuse instead of being deleted.
    pub max_recycled_segments: usize,
    /// Bytes of frames `append` may buffer before a `sync` is required.
    pub max_unsynced_bytes: u64,
    /// Recycled files kept in reserve for when the file system is full (see
    /// the module documentation); at most `max_recycled_segments`.
    pub spare_segments: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            max_recycled_segments: 4,
            max_unsynced_bytes: 64 << 20,
            spare_segments: 1,
        }
    }
}

impl LogConfig {
    fn validate(&self) -> Result<()> {
        let size = self.segment_size_bytes;
        if size % BLOCK_BYTES != 0
            || !(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&size)
        {
            return Err(Error::Config {
                key: "segment_size_bytes",
                value: size.to_string(),
                expected: "a multiple of 4096 between 16 KiB and 4 GiB",
            });
        }
        if self.spare_segments > self.max_recycled_segments {
            return Err(Error::Config {
                key: "spare_segments",
                value: self.spare_segments.to_string(),
                expected: "at most max_recycled_segments",
            });
        }
        if self.max_unsynced_bytes == 0 {
            return Err(Error::Config {
                key: "max_unsynced_bytes",
                value: "0".into(),
                expected: "a positive number of bytes",
            });
        }
        Ok(())
    }

    /// Largest payload one entry may carry with this configuration.
    pub fn max_payload_bytes(&self) -> usize {
        let fits = self.segment_size_bytes as usize - FRAME_HEADER_BYTES;
        fits.min(MAX_PAYLOAD_BYTES)
    }
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Raft term.
    pub term: u64,
    /// Raft index.
    pub index: u64,
    /// Opaque payload.
    pub payload: Bytes,
}

/// The log of one partition. Owned by the shard (thread) that owns the
/// partition, from open until the partition moves or the broker stops; not
/// shared between threads.
pub struct Log<D: Disk> {
    disk: D,
    dir: PathBuf,
    config: LogConfig,
    segments: VecDeque<Segment<D::File>>,
    /// Sequence numbers of `recycle-*.seg` files, ready for reuse.
    recycled: Vec<u64>,
    next_seq: u64,
    first_index: u64,
    durable_index: u64,
    unsynced: VecDeque<Entry>,
    unsynced_bytes: u64,
    /// `(first index, term)` runs covering the entries held.
    terms: Vec<(u64, u64)>,
    epoch: u32,
    /// `(seq, end_offset, bytes of the last partial block before end_offset)`.
    tail_block: Option<(u64, u64, Vec<u8>)>,
    poisoned: Option<String>,
    /// Set by an ENOSPC while getting room for frames; cleared once a new
    /// segment file is created with the reserve complete.
    shortage: Option<String>,
    write_buf: Vec<u8>,
    /// What recovery dropped from the end of the log at open.
    tail_loss: Option<TailLoss>,
}

impl<D: Disk> Log<D> {
    /// Opens (creating if needed) the log in `dir` and recovers it: every
    /// segment is scanned, the tail is cut at the first torn or corrupt frame
    /// (reported by [`Log::tail_loss`]), and a corrupt frame followed by
    /// valid ones is an error naming the file and offset. An empty log starts at index 1; after compaction the first
    /// index found may be lower than the last compaction point (compaction
    /// works on whole segments).
    pub async fn open(disk: D, dir: impl AsRef<Path>, config: LogConfig) -> Result<Log<D>> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        disk.create_dir_all(&dir)
            .await
            .map_err(io_err("creating", &dir))?;
        let names = disk.list_dir(&dir).await.map_err(io_err("listing", &dir))?;
        let mut seqs = Vec::new();
        let mut recycled = Vec::new();
        for name in &names {
            match parse_name(name) {
                Some(FileKind::Segment(seq)) => seqs.push(seq),
                Some(FileKind::Recycled(seq)) => recycled.push(seq),
                None => {}
            }
        }
        seqs.sort_unstable();
        recycled.sort_unstable();
        let next_seq = seqs.iter().chain(&recycled).max().map_or(1, |m| m + 1);

        let mut segments = VecDeque::new();
        let mut terms: Vec<(u64, u64)> = Vec::new();
        let mut epoch = 0;
        let mut expected = None;
        let mut tail_damage = None;
        for (i, &seq) in seqs.iter().enumerate() {
            let path = dir.join(segment_name(seq));
            let file = disk
                .open(&path, false)
                .await
                .map_err(io_err("opening", &path))?;
            let found = segment::recover(file, path.clone(), seq, expected, epoch).await?;
            if found.segment.is_empty() && i + 1 < seqs.len() {
                return Err(Error::Corrupt {
                    path,
                    offset: 0,
                    reason: "segment holds no valid frame but later segments exist".into(),
                });
            }
            if let Some(want) = expected.filter(|want| found.segment.first_index < *want) {
                let restart = found.segment.first_index;
                if found.segment.is_empty() {
                    // No frame: nothing restarts here.
                    assert_eq!(found.segment.first_index, want);
                } else {
                    cut_back(&mut segments, &mut terms, restart, &path).await?;
                }
            }
            for (index, term) in found.terms {
                if terms.last().is_none_or(|(_, t)| *t != term) {
                    terms.push((index, term));
                }
            }
            if !found.segment.is_empty() || found.damage.is_some() {
                // Frames in a later segment supersede a damaged end of an
                // earlier one (a failed write went on in a new segment).
                tail_damage = found
                    .damage
                    .map(|d| (d, path.clone(), found.segment.end_offset));
            }
            epoch = found.epoch;
            expected = Some(found.segment.last_index + 1);
            if let Some(previous) = segments.back_mut() {
                previous.sealed = true;
            }
            segments.push_back(found.segment);
        }
        let first_index = segments.front().map_or(1, |s| s.first_index);
        let durable_index = segments.back().map_or(0, |s| s.last_index);
        let tail_loss = tail_damage.map(|(damage, path, offset)| TailLoss {
            path,
            offset,
            frames_dropped: damage.frames,
            last_index: durable_index,
            damage: damage.kind,
        });
        Ok(Log {
            disk,
            dir,
            config,
            segments,
            recycled,
            next_seq,
            first_index,
            durable_index,
            unsynced: VecDeque::new(),
            unsynced_bytes: 0,
            terms,
            epoch,
            tail_block: None,
            poisoned: None,
            shortage: None,
            write_buf: Vec::new(),
            tail_loss,
        })
    }

    /// Frames that recovery dropped from the end of the log when it was
    /// opened (a torn write, a file cut short, or damaged last frames);
    /// `None` when the log ended cleanly.
    pub fn tail_loss(&self) -> Option<&TailLoss> {
        self.tail_loss.as_ref()
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings this log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First index held (entries below were compacted).
    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    /// Last index held, durable or buffered; `first_index() - 1` when empty.
    pub fn last_index(&self) -> u64 {
        self.durable_index + self.unsynced.len() as u64
    }

    /// Last index known to be durable.
    pub fn durable_index(&self) -> u64 {
        self.durable_index
    }

    /// True once a failed durable write made the log refuse writes.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Why the log is short of space: set by an ENOSPC (a write, or a new
    /// segment that could not be created, so that the reserve was used or
    /// the entries stayed buffered), cleared once `ensure_spare` or a new
    /// tail segment has created a file again with the reserve complete.
    pub fn space_shortage(&self) -> Option<&str> {
        self.shortage.as_deref()
    }

    /// Bytes of entries appended and not yet durable.
    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced_bytes
    }

    /// Recycled files ready for reuse, the reserve included.
    pub fn recycled_segments(&self) -> usize {
        self.recycled.len()
    }

    /// Remembers the first ENOSPC of a shortage.
    fn note_shortage(&mut self, error: &Error) {
        if error.is_no_space() && self.shortage.is_none() {
            self.shortage = Some(error.to_string());
        }
    }

    /// Fills the reserve up to `spare_segments` recycled files (each of at
    /// most `MAX_SPARE_SEGMENT_BYTES`). While the
    /// log is short of space it also creates one file beyond the reserve, as
    /// the proof that space is back; that file becomes the next segment. An
    /// ENOSPC leaves the log as it was (and short of space).
    pub async fn ensure_spare(&mut self) -> Result<()> {
        self.check_writable()?;
        let mut probe = self.shortage.is_some();
        while self.recycled.len() < self.config.spare_segments || probe {
            let seq = self.next_seq;
            // Filled under a name the log does not own, so that a crash
            // never leaves a short file among the recycled ones.
            let filling = self.dir.join(SPARE_FILLING_NAME);
            let size = self.config.segment_size_bytes.min(MAX_SPARE_SEGMENT_BYTES);
            match self.create_zero_filled(&filling, size).await {
                Ok(file) => drop(file),
                Err(error) => {
                    self.note_shortage(&error);
                    return Err(error);
                }
            }
            let path = self.dir.join(recycle_name(seq));
            if let Err(e) = self.disk.rename(&filling, &path).await {
                let error = Error::io("renaming", &filling, e);
                self.poison(&error);
                return Err(error);
            }
            self.next_seq += 1;
            if let Err(e) = self.disk.sync_dir(&self.dir).await {
                let error = Error::io("fsync of directory", &self.dir, e);
                self.poison(&error);
                return Err(error);
            }
            self.recycled.push(seq);
            self.recycled.sort_unstable();
            probe = false;
        }
        self.shortage = None;
        Ok(())
    }

    /// Term of the entry at `index`, if the log holds it.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index < self.first_index || index > self.last_index() {
            return None;
        }
        let at = self.terms.partition_point(|(first, _)| *first <= index);
        assert!(at > 0, "term runs cover every held index");
        Some(self.terms[at - 1].1)
    }

    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(Error::Poisoned {
                path: self.dir.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, error: &Error) {
        if self.poisoned.is_none() {
            self.poisoned = Some(error.to_string());
        }
    }

    /// Buffers `entries`; the first must follow `last_index()` and the rest
    /// must be contiguous. Nothing is written until `sync`.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.check_writable()?;
        let mut bytes = 0u64;
        let max_payload = self.config.max_payload_bytes();
        for (expected, entry) in (self.last_index() + 1..).zip(entries) {
            if entry.index != expected {
                return Err(Error::NonContiguous {
                    expected,
                    got: entry.index,
                });
            }
            if entry.payload.len() > max_payload {
                return Err(Error::TooLarge {
                    what: "entry payload",
                    len: entry.payload.len() as u64,
                    max: max_payload as u64,
                });
            }
            bytes += frame::frame_bytes(entry.payload.len()) as u64;
        }
        if self.unsynced_bytes + bytes > self.config.max_unsynced_bytes {
            return Err(Error::BufferFull {
                unsynced_bytes: self.unsynced_bytes + bytes,
                max: self.config.max_unsynced_bytes,
            });
        }
        for entry in entries {
            if self.terms.last().is_none_or(|(_, t)| *t != entry.term) {
                self.terms.push((entry.index, entry.term));
            }
            self.unsynced.push_back(entry.clone());
        }
        self.unsynced_bytes += bytes;
        Ok(())
    }

    /// Writes every buffered entry with one write and one `fdatasync` per
    /// segment touched, and returns the durable last index.
    pub async fn sync(&mut self) -> Result<u64> {
        self.check_writable()?;
        while !self.unsynced.is_empty() {
            let need = frame::frame_bytes(self.unsynced[0].payload.len()) as u64;
            let writable = self
                .segments
                .back()
                .is_some_and(|tail| !tail.sealed && tail.end_offset + need <= tail.capacity_bytes);
            if !writable {
                // A recycled file may be too small for the frame (a spare):
                // look again, the next roll retires it.
                self.roll_segment().await?;
                continue;
            }
            self.write_batch().await?;
        }
        Ok(self.durable_index)
    }

    /// Writes as many buffered entries as fit into the tail segment.
    async fn write_batch(&mut self) -> Result<()> {
        let prefix = self.tail_prefix().await?;
        let tail = self.segments.back().expect("sync rolled a segment");
        let block_start = align_down(tail.end_offset);
        let mut buf = std::mem::take(&mut self.write_buf);
        buf.clear();
        buf.extend_from_slice(&prefix);
        let mut end = tail.end_offset;
        let mut count = 0;
        for entry in &self.unsynced {
            let len = frame::frame_bytes(entry.payload.len()) as u64;
            if end + len > tail.capacity_bytes {
                break;
            }
            frame::encode(
                &mut buf,
                tail.seq,
                self.epoch,
                entry.term,
                entry.index,
                &entry.payload,
            );
            end += len;
            count += 1;
        }
        assert!(count > 0, "the first buffered frame fits the tail segment");
        assert_eq!(block_start + buf.len() as u64, end);
        buf.resize((align_up(end) - block_start) as usize, 0);
        assert!(block_start + buf.len() as u64 <= tail.capacity_bytes);

        let written = tail.file.write_at(block_start, &buf).await;
        if let Err(e) = written {
            // Frames of this epoch may have partly reached the disk behind the
            // durable end: raise the epoch so that they can never be taken for
            // later frames.
            self.epoch = self.epoch.checked_add(1).expect("epoch overflow");
            let error = Error::io("writing", &tail.path, e);
            if error.is_no_space() {
                self.note_shortage(&error);
            } else {
                self.poison(&error);
            }
            self.write_buf = buf;
            // The next write goes to a new segment: rewriting this range in
            // place could tear and leave those frames valid behind the tear.
            self.segments.back_mut().expect("still there").sealed = true;
            return Err(error);
        }
        if let Err(e) = tail.file.fdatasync().await {
            let error = Error::io(FDATASYNC_OP, &tail.path, e);
            self.poison(&error);
            self.write_buf = buf;
            return Err(error);
        }

        let tail = self.segments.back_mut().expect("still there");
        let mut offset = tail.end_offset;
        for entry in self.unsynced.drain(..count) {
            let len = frame::frame_bytes(entry.payload.len()) as u64;
            tail.record_frame(entry.index, offset, len);
            offset += len;
            self.unsynced_bytes -= len;
        }
        self.durable_index = tail.last_index;
        let keep_from = (align_down(end) - block_start) as usize;
        let keep_to = (end - block_start) as usize;
        self.tail_block = Some((tail.seq, end, buf[keep_from..keep_to].to_vec()));
        self.write_buf = buf;
        Ok(())
    }

    /// Bytes of the tail segment's last partial block before its end.
    async fn tail_prefix(&mut self) -> Result<Vec<u8>> {
        let tail = self.segments.back().expect("tail exists");
        if let Some((seq, end, bytes)) = &self.tail_block {
            if *seq == tail.seq && *end == tail.end_offset {
                return Ok(bytes.clone());
            }
        }
        let start = align_down(tail.end_offset);
        let want = (tail.end_offset - start) as usize;
        let bytes = tail
            .file
            .read_at(start, want)
            .await
            .map_err(io_err("reading", &tail.path))?;
        if bytes.len() != want {
            return Err(Error::Corrupt {
                path: tail.path.clone(),
                offset: start,
                reason: format!(
                    "file ends before its last frame ({} bytes read)",
                    bytes.len()
                ),
            });
        }
        Ok(bytes)
    }

    /// Starts a new tail segment: a recycled file or a new zero-filled one,
    /// whose name is durable before it is used. A tail left without any frame
    /// (its first write failed, or an entry did not fit it) is retired first,
    /// durably, so that no empty segment ever precedes a later one.
    async fn roll_segment(&mut self) -> Result<()> {
        if self.segments.back().is_some_and(|tail| tail.is_empty()) {
            let empty = self.segments.pop_back().expect("checked");
            let retired = self.retire(empty).await;
            let synced = match retired {
                Ok(()) => self
                    .disk
                    .sync_dir(&self.dir)
                    .await
                    .map_err(io_err("fsync of directory", &self.dir)),
                Err(error) => Err(error),
            };
            if let Err(error) = synced {
                self.poison(&error);
                return Err(error);
            }
        }
        let seq = self.next_seq;
        let path = self.dir.join(segment_name(seq));
        let (file, capacity) = if self.recycled.len() > self.config.spare_segments {
            self.reuse_recycled(&path).await?
        } else {
            match self
                .create_zero_filled(&path, self.config.segment_size_bytes)
                .await
            {
                Ok(file) => {
                    if self.recycled.len() >= self.config.spare_segments {
                        self.shortage = None;
                    }
                    (file, self.config.segment_size_bytes)
                }
                Err(error) if error.is_no_space() && !self.recycled.is_empty() => {
                    // The reserve: room for the commands that free work.
                    self.note_shortage(&error);
                    self.reuse_recycled(&path).await?
                }
                Err(error) => {
                    self.note_shortage(&error);
                    return Err(error);
                }
            }
        };
        self.next_seq += 1;
        if let Err(e) = self.disk.sync_dir(&self.dir).await {
            let error = Error::io("fsync of directory", &self.dir, e);
            self.poison(&error);
            return Err(error);
        }
        let first = self.durable_index + 1;
        if let Some(previous) = self.segments.back_mut() {
            previous.sealed = true;
        }
        self.segments
            .push_back(Segment::new(seq, path, file, capacity, first));
        Ok(())
    }

    /// Renames the newest recycled file to `path` and opens it: (file, size).
    async fn reuse_recycled(&mut self, path: &Path) -> Result<(D::File, u64)> {
        let old = self.recycled.pop().expect("a recycled file is there");
        let from = self.dir.join(recycle_name(old));
        if let Err(e) = self.disk.rename(&from, path).await {
            let error = Error::io("renaming", &from, e);
            self.poison(&error);
            return Err(error);
        }
        let file = self
            .disk
            .open(path, false)
            .await
            .map_err(io_err("opening", path))?;
        let capacity = file.size_bytes().await.map_err(io_err("measuring", path))?;
        Ok((file, capacity))
    }

    /// Creates `path` as a zero-filled, synced file of `size_bytes`. A
    /// failed `fdatasync` poisons the log; on any failure the partly written
    /// file is removed.
    async fn create_zero_filled(&mut self, path: &Path, size_bytes: u64) -> Result<D::File> {
        let file = self
            .disk
            .open(path, true)
            .await
            .map_err(io_err("creating", path))?;
        if let Err(error) = zero_fill(&file, path, size_bytes).await {
            if error.is_sync_failure() {
                self.poison(&error);
            }
            drop(file);
            // Best effort: a partly filled file is never named in a synced
            // directory, and a later open ignores it if it is.
            let _ = self.disk.remove_file(path).await;
            return Err(error);
        }
        Ok(file)
    }

    /// Reads entries `lo..hi`, stopping before the entry that would take the
    /// payload bytes past `max_bytes` (at least one entry is returned when the
    /// range is not empty). Buffered entries are served from memory.
    ///
    /// Each segment is read front to back in reads of about `max_bytes`
    /// (between `READ_CHUNK_BYTES` and `MAX_READ_CHUNK_BYTES`), and the
    /// payloads are slices of those reads, not copies: an entry kept keeps
    /// its read buffer alive, which costs nothing when the whole range is
    /// kept (loading a log into memory).
    pub async fn read(&self, lo: u64, hi: u64, max_bytes: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        if lo < self.first_index || hi > self.last_index() + 1 {
            return Err(Error::OutOfRange {
                lo,
                hi,
                first: self.first_index,
                last: self.last_index(),
            });
        }
        let mut bytes = 0usize;
        let mut next = lo;
        while next < hi && next <= self.durable_index {
            let at = self.segments.partition_point(|s| s.first_index <= next);
            let segment = &self.segments[at - 1];
            assert!(
                next <= segment.last_index,
                "segments cover the durable indexes"
            );
            let (mut current, mut pos) = segment.sparse_floor(next);
            let mut window = Window::new(&segment.file, &segment.path, segment.end_offset)
                .with_chunk(max_bytes.saturating_add(FRAME_HEADER_BYTES));
            while current <= segment.last_index && next < hi {
                let (header, frame_bytes) =
                    expect_frame(&mut window, pos, segment.seq, current).await?;
                if current == next {
                    let len = header.payload_len.get() as usize;
                    if !out.is_empty() && bytes + len > max_bytes {
                        return Ok(out);
                    }
                    let payload = window.shared(pos + FRAME_HEADER_BYTES as u64, len).await?;
                    assert_eq!(payload.len(), len, "a verified frame is complete");
                    out.push(Entry {
                        term: header.term.get(),
                        index: current,
                        payload,
                    });
                    bytes += len;
                    next += 1;
                }
                pos += frame_bytes as u64;
                current += 1;
            }
        }
        for entry in self.unsynced.iter().skip_while(|e| e.index < next) {
            if entry.index >= hi || (!out.is_empty() && bytes + entry.payload.len() > max_bytes) {
                break;
            }
            bytes += entry.payload.len();
            out.push(entry.clone());
        }
        Ok(out)
    }

    /// Removes the entries from `from_index` on (a Raft conflict). Whole
    /// segments after the cut are retired; frames left behind the cut in the
    /// remaining tail are fenced off by raising the write epoch.
    pub async fn truncate_suffix(&mut self, from_index: u64) -> Result<()> {
        self.check_writable()?;
        if from_index > self.last_index() {
            return Ok(());
        }
        if from_index < self.first_index {
            return Err(Error::OutOfRange {
                lo: from_index,
                hi: self.last_index() + 1,
                first: self.first_index,
                last: self.last_index(),
            });
        }
        while self.unsynced.back().is_some_and(|e| e.index >= from_index) {
            let entry = self.unsynced.pop_back().expect("checked");
            self.unsynced_bytes -= frame::frame_bytes(entry.payload.len()) as u64;
        }
        if from_index <= self.durable_index {
            let result = self.truncate_durable(from_index).await;
            if let Err(error) = &result {
                self.poison(error);
            }
            result?;
        }
        let keep = self.terms.partition_point(|(first, _)| *first < from_index);
        self.terms.truncate(keep);
        Ok(())
    }

    async fn truncate_durable(&mut self, from_index: u64) -> Result<()> {
        let mut retired = false;
        while self
            .segments
            .back()
            .is_some_and(|s| s.first_index >= from_index)
        {
            let segment = self.segments.pop_back().expect("checked");
            self.retire(segment).await?;
            retired = true;
        }
        if retired {
            self.disk
                .sync_dir(&self.dir)
                .await
                .map_err(io_err("fsync of directory", &self.dir))?;
        }
        if let Some(tail) = self.segments.back() {
            if tail.last_index >= from_index {
                let offset = tail.offset_of(from_index).await?;
                let tail = self.segments.back_mut().expect("checked");
                tail.end_offset = offset;
                tail.last_index = from_index - 1;
                tail.sparse.retain(|(index, _)| *index < from_index);
                // The cut-off frames stay on disk behind the new end; new
                // frames go to a new segment (see `Segment::sealed`).
                tail.sealed = true;
            }
        }
        self.durable_index = from_index - 1;
        self.tail_block = None;
        self.epoch = self.epoch.checked_add(1).expect("epoch overflow");
        Ok(())
    }

    /// Discards the entries up to and including `through_index` (after a
    /// snapshot). Whole segments below the new first index are retired; when
    /// `through_index` is at or past the last index the log becomes empty and
    /// continues at `through_index + 1`.
    pub async fn compact_prefix(&mut self, through_index: u64) -> Result<()> {
        self.check_writable()?;
        if through_index < self.first_index {
            return Ok(());
        }
        let result = self.compact(through_index).await;
        if let Err(error) = &result {
            self.poison(error);
        }
        result
    }

    async fn compact(&mut self, through_index: u64) -> Result<()> {
        let all = through_index >= self.durable_index;
        let mut retired = false;
        while let Some(front) = self.segments.front() {
            if !all && front.last_index > through_index {
                break;
            }
            let segment = self.segments.pop_front().expect("checked");
            self.retire(segment).await?;
            retired = true;
        }
        if retired {
            self.disk
                .sync_dir(&self.dir)
                .await
                .map_err(io_err("fsync of directory", &self.dir))?;
        }
        if all {
            while self
                .unsynced
                .front()
                .is_some_and(|e| e.index <= through_index)
            {
                let entry = self.unsynced.pop_front().expect("checked");
                self.unsynced_bytes -= frame::frame_bytes(entry.payload.len()) as u64;
            }
            self.durable_index = through_index.max(self.durable_index);
            self.tail_block = None;
        }
        self.first_index = through_index + 1;
        let drop = self
            .terms
            .partition_point(|(first, _)| *first <= self.first_index)
            .saturating_sub(1);
        self.terms.drain(..drop);
        if self.first_index > self.last_index() {
            self.terms.clear();
        }
        Ok(())
    }

    /// Renames a segment for recycling, or deletes it.
    async fn retire(&mut self, segment: Segment<D::File>) -> Result<()> {
        let Segment {
            seq,
            path,
            file,
            capacity_bytes,
            ..
        } = segment;
        drop(file);
        if self.recycled.len() < self.config.max_recycled_segments
            && capacity_bytes == self.config.segment_size_bytes
        {
            let to = self.dir.join(recycle_name(seq));
            self.disk
                .rename(&path, &to)
                .await
                .map_err(io_err("renaming", &path))?;
            self.recycled.push(seq);
            self.recycled.sort_unstable();
        } else {
            self.disk
                .remove_file(&path)
                .await
                .map_err(io_err("removing", &path))?;
        }
        Ok(())
    }
}

/// Cuts the recovered segments back to end before `restart`, where a later
/// segment restarts the log after a truncation.
async fn cut_back<F: DiskFile>(
    segments: &mut VecDeque<Segment<F>>,
    terms: &mut Vec<(u64, u64)>,
    restart: u64,
    path: &Path,
) -> Result<()> {
    let Some(tail) = segments.back_mut() else {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("first segment restarts at index {restart}"),
        });
    };
    if tail.first_index >= restart {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!(
                "segment restarts at index {restart}, before the whole of segment {}",
                tail.path.display()
            ),
        });
    }
    let offset = tail.offset_of(restart).await?;
    tail.end_offset = offset;
    tail.last_index = restart - 1;
    tail.sparse.retain(|(index, _)| *index < restart);
    let keep = terms.partition_point(|(first, _)| *first < restart);
    terms.truncate(keep);
    Ok(())
}

/// Writes zeros over the whole of a new segment file and syncs it.
async fn zero_fill<F: DiskFile>(file: &F, path: &Path, size_bytes: u64) -> Result<()> {
    let zeros = vec![0u8; ZERO_FILL_CHUNK_BYTES];
    let mut pos = 0u64;
    while pos < size_bytes {
        let len = (size_bytes - pos).min(ZERO_FILL_CHUNK_BYTES as u64) as usize;
        file.write_at(pos, &zeros[..len])
            .await
            .map_err(io_err("zero-filling", path))?;
        pos += len as u64;
    }
    file.fdatasync().await.map_err(io_err(FDATASYNC_OP, path))
}

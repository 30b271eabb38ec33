//! Segment files of a partition log and the scan that recovers them.
//!
//! A partition directory holds `{seq:020}.seg` segment files, numbered by a
//! sequence number that only grows, and `recycle-{seq:020}.seg` files: segments
//! freed by compaction or truncation, kept fully written so that reusing them
//! costs no block allocation. A segment file has a fixed size and is written
//! full of zeros (or recycled) before its first frame, so that later
//! `fdatasync` calls need no filesystem journal commit.
//!
//! Inside a segment, frames (see [`crate::frame`]) are packed from offset 0;
//! their indexes are contiguous and their epochs never decrease. The in-memory
//! [`Segment`] keeps a sparse index: the offset of the first frame and of one
//! frame every `SPARSE_INDEX_STRIDE_BYTES`, rebuilt by the scan on open.
//!
//! Recovery scan: frames are accepted from offset 0 while they are valid, carry
//! the expected index and an epoch not lower than the previous frame's. The
//! first frame that fails ends the segment. The rest of the file is then
//! searched: a valid frame with an epoch not lower than the last accepted one
//! means a frame in the middle was corrupted, which is an error naming the file
//! and the offset; it is never dropped silently. Frames with a lower epoch were
//! cut off by a suffix truncation and are ignored. What the first failing
//! frame was (zeros, a stale frame, or a torn or damaged frame of ours) is
//! reported by [`crate::recovery`].

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::disk::DiskFile;
use crate::error::{Error, Result};
use crate::frame::{self, Decoded, FrameHeader, FRAME_HEADER_BYTES, FRAME_MAGIC};
use crate::recovery::{inspect_cut, Damage};

/// Distance in bytes between two entries of the sparse index.
pub const SPARSE_INDEX_STRIDE_BYTES: u64 = 32 << 10;
/// Bytes read at once while scanning or reading a segment.
pub const READ_CHUNK_BYTES: usize = 1 << 20;
/// Most bytes read at once while reading entries (`Log::read` with a large
/// byte budget).
pub const MAX_READ_CHUNK_BYTES: usize = 16 << 20;

const SEGMENT_SUFFIX: &str = ".seg";
const RECYCLE_PREFIX: &str = "recycle-";

/// File name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:020}{SEGMENT_SUFFIX}")
}

/// File name of the recycled file that was segment `seq`.
pub fn recycle_name(seq: u64) -> String {
    format!("{RECYCLE_PREFIX}{seq:020}{SEGMENT_SUFFIX}")
}

/// What a file name in a log directory denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A live segment.
    Segment(u64),
    /// A recycled segment file waiting for reuse.
    Recycled(u64),
}

/// Parses a log directory entry; `None` for names the log does not own.
pub fn parse_name(name: &str) -> Option<FileKind> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    let (recycled, digits) = match stem.strip_prefix(RECYCLE_PREFIX) {
        Some(digits) => (true, digits),
        None => (false, stem),
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq = digits.parse().ok()?;
    Some(if recycled {
        FileKind::Recycled(seq)
    } else {
        FileKind::Segment(seq)
    })
}

/// An open segment: owned by its `Log`, on the log's thread, until compacted,
/// truncated away or the log is dropped.
pub(crate) struct Segment<F> {
    pub seq: u64,
    pub path: PathBuf,
    pub file: F,
    pub capacity_bytes: u64,
    pub first_index: u64,
    /// `first_index - 1` while the segment holds no frame.
    pub last_index: u64,
    /// End of the last durable frame.
    pub end_offset: u64,
    /// `(index, offset)` of the first frame and then one every stride.
    pub sparse: Vec<(u64, u64)>,
    /// No frame may be written into this segment any more: a later segment
    /// exists, or bytes past `end_offset` may hold frames that were cut off
    /// (truncation) or half written (a failed write). Appends go to a new
    /// segment, so that a segment is only ever written front to back and a
    /// torn write can never leave a stale valid frame behind it.
    pub sealed: bool,
}

impl<F: DiskFile> Segment<F> {
    pub fn new(seq: u64, path: PathBuf, file: F, capacity_bytes: u64, first_index: u64) -> Self {
        Segment {
            seq,
            path,
            file,
            capacity_bytes,
            first_index,
            last_index: first_index - 1,
            end_offset: 0,
            sparse: Vec::new(),
            sealed: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.last_index < self.first_index
    }

    /// Records a durable frame appended at `offset`.
    pub fn record_frame(&mut self, index: u64, offset: u64, frame_bytes: u64) {
        if self.is_empty() {
            self.first_index = index;
            self.last_index = index - 1;
        }
        assert_eq!(
            index,
            self.last_index + 1,
            "frames of a segment are contiguous"
        );
        assert_eq!(offset, self.end_offset, "frames of a segment are packed");
        let due = self
            .sparse
            .last()
            .is_none_or(|(_, last)| offset - last >= SPARSE_INDEX_STRIDE_BYTES);
        if due {
            self.sparse.push((index, offset));
        }
        self.last_index = index;
        self.end_offset = offset + frame_bytes;
        assert!(
            self.end_offset <= self.capacity_bytes,
            "frame beyond segment"
        );
    }

    /// The sparse entry at or before `index`.
    pub fn sparse_floor(&self, index: u64) -> (u64, u64) {
        assert!(!self.is_empty() && index >= self.first_index && index <= self.last_index);
        let at = self.sparse.partition_point(|(i, _)| *i <= index);
        self.sparse[at - 1]
    }

    /// Offset of the frame holding `index`.
    pub async fn offset_of(&self, index: u64) -> Result<u64> {
        let (mut current, mut pos) = self.sparse_floor(index);
        let mut window = Window::new(&self.file, &self.path, self.end_offset);
        while current < index {
            let (_, frame_bytes) = expect_frame(&mut window, pos, self.seq, current).await?;
            pos += frame_bytes as u64;
            current += 1;
        }
        Ok(pos)
    }
}

/// A cached byte range of a file, refilled on demand with reads of at least
/// `chunk_bytes`. The range is held as [`Bytes`], so parts of it can be
/// handed out without a copy ([`Window::shared`]).
pub(crate) struct Window<'a, F> {
    file: &'a F,
    path: &'a Path,
    file_len: u64,
    start: u64,
    data: Bytes,
    chunk_bytes: usize,
}

impl<'a, F: DiskFile> Window<'a, F> {
    pub fn new(file: &'a F, path: &'a Path, file_len: u64) -> Self {
        Window {
            file,
            path,
            file_len,
            start: 0,
            data: Bytes::new(),
            chunk_bytes: READ_CHUNK_BYTES,
        }
    }

    /// The same window refilled with reads of `chunk_bytes` (at least
    /// `READ_CHUNK_BYTES`, at most `MAX_READ_CHUNK_BYTES`).
    pub fn with_chunk(mut self, chunk_bytes: usize) -> Self {
        self.chunk_bytes = chunk_bytes.clamp(READ_CHUNK_BYTES, MAX_READ_CHUNK_BYTES);
        self
    }

    /// Up to `len` bytes at `pos`; fewer only at the end of the file.
    pub async fn bytes(&mut self, pos: u64, len: usize) -> Result<&[u8]> {
        let (from, to) = self.fill(pos, len).await?;
        Ok(&self.data[from..to])
    }

    /// [`Window::bytes`] as a slice of the window's buffer: no copy, and the
    /// buffer (one read of up to `chunk_bytes`) lives as long as the slice.
    pub async fn shared(&mut self, pos: u64, len: usize) -> Result<Bytes> {
        let (from, to) = self.fill(pos, len).await?;
        Ok(self.data.slice(from..to))
    }

    /// Bytes held from `pos` on without reading (0 when `pos` is outside).
    pub fn held_from(&self, pos: u64) -> usize {
        let end = self.start + self.data.len() as u64;
        if pos < self.start || pos >= end {
            return 0;
        }
        (end - pos) as usize
    }

    /// Makes `pos..pos + len` (cut at the end of the file) present; returns
    /// its range in `data`.
    async fn fill(&mut self, pos: u64, len: usize) -> Result<(usize, usize)> {
        if pos >= self.file_len {
            return Ok((0, 0));
        }
        let end = (pos + len as u64).min(self.file_len);
        if pos < self.start || end > self.start + self.data.len() as u64 {
            let want = (end.saturating_sub(pos) as usize).max(self.chunk_bytes);
            let want = want.min(self.file_len.saturating_sub(pos) as usize);
            self.data = Bytes::from(
                self.file
                    .read_at(pos, want)
                    .await
                    .map_err(|e| Error::io("reading", self.path, e))?,
            );
            self.start = pos;
        }
        let from = ((pos - self.start) as usize).min(self.data.len());
        let to = ((end - self.start) as usize).min(self.data.len());
        Ok((from, to))
    }
}

/// The valid frame at `pos`, if there is one: its header and total length.
pub(crate) async fn frame_at<F: DiskFile>(
    window: &mut Window<'_, F>,
    pos: u64,
    seq: u64,
) -> Result<Option<(FrameHeader, usize)>> {
    let mut want = FRAME_HEADER_BYTES;
    loop {
        let bytes = window.bytes(pos, want).await?;
        match frame::decode(bytes, seq) {
            Decoded::Valid { header, payload } => {
                return Ok(Some((*header, frame::frame_bytes(payload.len()))));
            }
            Decoded::Incomplete { frame_bytes } if bytes.len() >= want => want = frame_bytes,
            Decoded::Incomplete { .. } | Decoded::Invalid => return Ok(None),
        }
    }
}

/// The frame at `pos`, which must be valid and hold `index`.
pub(crate) async fn expect_frame<F: DiskFile>(
    window: &mut Window<'_, F>,
    pos: u64,
    seq: u64,
    index: u64,
) -> Result<(FrameHeader, usize)> {
    let path = window.path.to_path_buf();
    match frame_at(window, pos, seq).await? {
        Some((header, len)) if header.index.get() == index => Ok((header, len)),
        Some((header, _)) => Err(Error::Corrupt {
            path,
            offset: pos,
            reason: format!("frame holds index {}, expected {index}", header.index.get()),
        }),
        None => Err(Error::Corrupt {
            path,
            offset: pos,
            reason: format!("frame of index {index} fails its checksum"),
        }),
    }
}

/// What the recovery scan of one segment found.
pub(crate) struct Recovered<F> {
    pub segment: Segment<F>,
    /// Epoch of the last accepted frame (or the one passed in).
    pub epoch: u32,
    /// `(first index, term)` runs of the accepted frames.
    pub terms: Vec<(u64, u64)>,
    /// Damaged frames where the scan stopped (at `segment.end_offset`).
    pub damage: Option<Damage>,
}

/// Scans segment `seq` (see the module documentation).
pub(crate) async fn recover<F: DiskFile>(
    file: F,
    path: PathBuf,
    seq: u64,
    expected_first: Option<u64>,
    min_epoch: u32,
) -> Result<Recovered<F>> {
    let len = file
        .size_bytes()
        .await
        .map_err(|e| Error::io("measuring", &path, e))?;
    // A file cut short of a block still takes whole-block writes.
    let capacity = crate::disk::align_up(len);
    let mut segment = Segment::new(seq, path, file, capacity, expected_first.unwrap_or(1));
    let mut terms: Vec<(u64, u64)> = Vec::new();
    let mut epoch = min_epoch;
    let mut pos = 0u64;
    let damage;
    {
        let mut window = Window::new(&segment.file, &segment.path, len);
        let mut accepted = Vec::new();
        let mut expected = expected_first;
        let mut truncated_behind = false;
        while let Some((header, frame_bytes)) = frame_at(&mut window, pos, seq).await? {
            if header.epoch.get() < epoch {
                truncated_behind = true;
                break;
            }
            let index = header.index.get();
            // The first frame of a segment may restart below the expected
            // index with a higher epoch: the log was truncated into the
            // previous segment and went on in this one (the caller cuts the
            // previous segment back).
            let restarts = accepted.is_empty() && header.epoch.get() > epoch;
            if let Some(want) = expected.filter(|want| !(restarts && index < *want)) {
                if index != want {
                    return Err(Error::Corrupt {
                        path: segment.path.clone(),
                        offset: pos,
                        reason: format!("frame holds index {index}, expected {want}"),
                    });
                }
            }
            accepted.push((index, pos, frame_bytes as u64));
            let term = header.term.get();
            if terms.last().is_none_or(|(_, t)| *t != term) {
                terms.push((index, term));
            }
            epoch = header.epoch.get();
            expected = Some(index + 1);
            pos += frame_bytes as u64;
        }
        search_after_cut(&mut window, pos, len, seq, epoch).await?;
        damage = if truncated_behind {
            None
        } else {
            inspect_cut(&mut window, pos, len, seq, epoch, expected).await?
        };
        drop(window);
        for (index, offset, frame_bytes) in accepted {
            segment.record_frame(index, offset, frame_bytes);
        }
    }
    Ok(Recovered {
        segment,
        epoch,
        terms,
        damage,
    })
}

/// Fails if a valid frame of epoch `epoch` or later lies after `cut`.
async fn search_after_cut<F: DiskFile>(
    window: &mut Window<'_, F>,
    cut: u64,
    len: u64,
    seq: u64,
    epoch: u32,
) -> Result<()> {
    let magic = FRAME_MAGIC.to_le_bytes();
    let mut pos = cut + 1;
    while pos + FRAME_HEADER_BYTES as u64 <= len {
        // Search what the window already holds from `pos` on: asking for a
        // whole chunk after every candidate would read the file again from
        // each stale frame of a recycled segment (quadratic in its frames).
        let held = window.held_from(pos);
        let want = if held >= FRAME_HEADER_BYTES {
            held
        } else {
            READ_CHUNK_BYTES
        };
        let chunk = window.bytes(pos, want).await?;
        if chunk.len() < magic.len() {
            break;
        }
        let Some(found) = chunk.windows(magic.len()).position(|w| w == magic) else {
            pos += (chunk.len() - magic.len() + 1) as u64;
            continue;
        };
        let candidate = pos + found as u64;
        if let Some((header, _)) = frame_at(window, candidate, seq).await? {
            if header.epoch.get() >= epoch {
                return Err(Error::Corrupt {
                    path: window.path.to_path_buf(),
                    offset: cut,
                    reason: format!(
                        "invalid frame followed by a valid frame (index {}) at offset {candidate}",
                        header.index.get()
                    ),
                });
            }
        }
        pos = candidate + 1;
    }
    Ok(())
}

/// Maps an I/O error to the crate error, for callers holding a path.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        assert_eq!(parse_name(&segment_name(7)), Some(FileKind::Segment(7)));
        assert_eq!(parse_name(&recycle_name(9)), Some(FileKind::Recycled(9)));
        assert_eq!(parse_name("7.seg"), None);
        assert_eq!(parse_name("meta"), None);
        assert_eq!(parse_name("recycle-x0000000000000000000.seg"), None);
    }
}

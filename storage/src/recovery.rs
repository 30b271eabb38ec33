//! What recovery found at the end of a log: the report of a torn or damaged
//! tail ([`TailLoss`]) and the inspection of the bytes where the scan of a
//! segment stopped.
//!
//! The scan of a segment stops at the first frame that is not valid. What
//! lies there decides whether anything was lost:
//!
//! ```text
//! bytes at the cut                              meaning
//! zeros, end of file, foreign bytes             clean end (preallocated space)
//! a frame of an older epoch                     cut off by a truncation
//! a frame that verifies under an earlier        left in a recycled file
//!   segment sequence number
//! magic, and the file ends inside the frame     loss: the file was cut
//! magic, other header fields wrong              loss: damaged header
//! a header with a damaged magic number but      loss: damaged header
//!   the next index and a valid epoch
//! magic, checksum fails under every earlier     loss: torn write or corruption
//!   sequence number
//! ```
//!
//! The frames dropped are counted by following the headers behind a damaged
//! frame while they carry the next index (an estimate: bytes a torn write
//! zeroed hold no header to count).

use std::path::PathBuf;

use zerocopy::FromBytes;

use crate::disk::DiskFile;
use crate::error::Result;
use crate::frame::{self, FrameHeader, FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_VERSION};
use crate::segment::Window;

/// Earlier segment sequence numbers tried when deciding whether a frame at
/// the cut was left in a recycled file (one 8-byte CRC each).
pub const MAX_STALE_SEQ_PROBES: u64 = 1 << 20;
/// Headers followed behind a damaged frame when counting dropped frames.
pub const MAX_DROPPED_FRAMES_COUNTED: u64 = 1 << 20;

/// How the frame at the cut was damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailDamage {
    /// The file ends inside the frame.
    CutShort,
    /// The frame is complete but its checksum fails (a torn write or
    /// corrupted bytes).
    Checksum,
    /// The frame carries the magic number but its other header fields are
    /// not valid.
    Header,
}

impl std::fmt::Display for TailDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TailDamage::CutShort => "the file ends inside the frame",
            TailDamage::Checksum => "the frame fails its checksum",
            TailDamage::Header => "the frame header is damaged",
        })
    }
}

/// Frames that recovery dropped from the end of the log: a torn write, a
/// file cut short, or corruption of the last frames. Recovery cannot tell
/// unacknowledged writes torn by a crash from lost acknowledged ones; the
/// caller compares `last_index` with what it knows was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLoss {
    /// The segment file holding the damaged frames.
    pub path: PathBuf,
    /// Byte offset in that file where the valid frames end.
    pub offset: u64,
    /// Frames dropped: the damaged one and the ones found behind it
    /// carrying the following indexes (at least 1; an estimate, since a
    /// torn write may have left no header of the later ones).
    pub frames_dropped: u64,
    /// Last index the log holds after recovery; the first dropped frame
    /// held the index after it.
    pub last_index: u64,
    /// What was wrong with the first dropped frame.
    pub damage: TailDamage,
}

impl std::fmt::Display for TailLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at offset {}: {}; dropped at least {} frame(s) from index {}, \
             the log now ends at index {}",
            self.path.display(),
            self.offset,
            self.damage,
            self.frames_dropped,
            self.last_index + 1,
            self.last_index
        )
    }
}

/// Damaged frames found where the scan of a segment stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Damage {
    pub kind: TailDamage,
    /// At least 1.
    pub frames: u64,
}

impl Damage {
    fn one(kind: TailDamage) -> Damage {
        Damage { kind, frames: 1 }
    }
}

/// What lies where the scan of segment `seq` stopped: `None` for a clean end
/// (see the module documentation). `expected` is the index the next frame
/// must carry, when known; `epoch` that of the last accepted frame.
pub(crate) async fn inspect_cut<F: DiskFile>(
    window: &mut Window<'_, F>,
    cut: u64,
    len: u64,
    seq: u64,
    epoch: u32,
    expected: Option<u64>,
) -> Result<Option<Damage>> {
    let magic = FRAME_MAGIC.to_le_bytes();
    let head = window.bytes(cut, FRAME_HEADER_BYTES).await?.to_vec();
    let Ok(header) = FrameHeader::read_from_bytes(&head) else {
        // The file ends inside what may be a header.
        let n = head.len().min(magic.len());
        let ours = head.iter().any(|b| *b != 0) && head[..n] == magic[..n];
        return Ok(ours.then_some(Damage::one(TailDamage::CutShort)));
    };
    let index = header.index.get();
    let payload_len = header.payload_len.get() as usize;
    let has_magic = header.magic.get() == FRAME_MAGIC;
    let fields_valid = header.version.get() == FRAME_VERSION
        && header.flags.get() == 0
        && header.reserved.get() == 0
        && payload_len <= frame::MAX_PAYLOAD_BYTES;
    // A damaged magic number on the frame that would follow is still ours.
    let follows =
        fields_valid && header.epoch.get() >= epoch && expected.is_some_and(|want| index == want);
    if !has_magic && !follows {
        return Ok(None);
    }
    if !fields_valid {
        return Ok(Some(Damage::one(TailDamage::Header)));
    }
    if header.epoch.get() < epoch {
        // Cut off by a truncation, or left in a recycled file.
        return Ok(None);
    }
    let frame_bytes = frame::frame_bytes(payload_len) as u64;
    if cut + frame_bytes > len {
        return Ok(Some(Damage::one(TailDamage::CutShort)));
    }
    let bytes = window.bytes(cut, frame_bytes as usize).await?;
    if has_magic && frame::earlier_segment_seq(bytes, seq, MAX_STALE_SEQ_PROBES).is_some() {
        // Left in a recycled file before this segment's first write.
        return Ok(None);
    }
    let kind = if has_magic {
        TailDamage::Checksum
    } else {
        TailDamage::Header
    };
    let damaged_index = expected.unwrap_or(index);
    let behind = count_following(window, cut + frame_bytes, len, epoch, damaged_index).await?;
    Ok(Some(Damage {
        kind,
        frames: 1 + behind,
    }))
}

/// Headers behind a damaged frame of index `index` that carry the following
/// indexes, packed back to back from `pos`.
async fn count_following<F: DiskFile>(
    window: &mut Window<'_, F>,
    mut pos: u64,
    len: u64,
    epoch: u32,
    mut index: u64,
) -> Result<u64> {
    let mut count = 0;
    while count < MAX_DROPPED_FRAMES_COUNTED && pos + FRAME_HEADER_BYTES as u64 <= len {
        let head = window.bytes(pos, FRAME_HEADER_BYTES).await?;
        let Ok(header) = FrameHeader::read_from_bytes(head) else {
            break;
        };
        let follows = header.magic.get() == FRAME_MAGIC
            && header.version.get() == FRAME_VERSION
            && header.epoch.get() >= epoch
            && header.index.get() == index + 1
            && (header.payload_len.get() as usize) <= frame::MAX_PAYLOAD_BYTES;
        if !follows {
            break;
        }
        count += 1;
        index += 1;
        pos += frame::frame_bytes(header.payload_len.get() as usize) as u64;
    }
    Ok(count)
}

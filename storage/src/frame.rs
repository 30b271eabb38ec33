//! Log frame format: a fixed 40-byte header read in place with `zerocopy`,
//! followed by the payload. Frames are packed back to back in a segment file,
//! with no padding between them.
//!
//! ```text
//! offset size field        meaning (all little-endian)
//!      0    4 magic        FRAME_MAGIC ("WGLF")
//!      4    2 version      FRAME_VERSION
//!      6    2 flags        no flags are defined yet; must be 0
//!      8    4 crc          CRC32C, seeded with the segment sequence number,
//!                          over the header (crc field as zero) and the payload
//!     12    4 payload_len  bytes of payload after the header
//!     16    8 term         Raft term of the entry
//!     24    8 index        Raft index of the entry
//!     32    4 epoch        write epoch: raised on every suffix truncation, so
//!                          frames left behind by a truncation are recognised
//!     36    4 reserved     must be 0
//!     40    . payload
//! ```
//!
//! Seeding the checksum with the segment's sequence number makes frames left in
//! a recycled segment file (written under an older sequence number) invalid.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of the frame header in bytes.
pub const FRAME_HEADER_BYTES: usize = 40;
/// Magic number at the start of every frame ("WGLF" in little-endian order).
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"WGLF");
/// Version of the frame layout.
pub const FRAME_VERSION: u16 = 1;
/// Largest payload a frame may carry.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// The frame header, read in place from the segment bytes.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct FrameHeader {
    /// `FRAME_MAGIC`.
    pub magic: U32,
    /// `FRAME_VERSION`.
    pub version: U16,
    /// Reserved flag bits, zero.
    pub flags: U16,
    /// CRC32C seeded with the segment sequence number.
    pub crc: U32,
    /// Payload length in bytes.
    pub payload_len: U32,
    /// Raft term.
    pub term: U64,
    /// Raft index.
    pub index: U64,
    /// Write epoch (see the module documentation).
    pub epoch: U32,
    /// Zero.
    pub reserved: U32,
}

const _: () = assert!(size_of::<FrameHeader>() == FRAME_HEADER_BYTES);
const _: () = assert!(MAX_PAYLOAD_BYTES < u32::MAX as usize);

/// Byte range of the crc field inside the header.
const CRC_FIELD: std::ops::Range<usize> = 8..12;

/// The outcome of decoding bytes that should start with a frame.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A complete frame whose checksum matches.
    Valid {
        /// The header, in place.
        header: &'a FrameHeader,
        /// The payload, in place.
        payload: &'a [u8],
    },
    /// The header is plausible but more bytes are needed (total frame length).
    Incomplete {
        /// Total bytes the frame needs from its start.
        frame_bytes: usize,
    },
    /// Not a frame: zeros, garbage, a torn write or a corrupted frame.
    Invalid,
}

fn checksum(segment_seq: u64, header: &FrameHeader, payload: &[u8]) -> u32 {
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    header_bytes.copy_from_slice(header.as_bytes());
    header_bytes[CRC_FIELD].fill(0);
    let crc = crc32c::crc32c(&segment_seq.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &header_bytes);
    crc32c::crc32c_append(crc, payload)
}

/// Total bytes of a frame with `payload_len` bytes of payload.
pub fn frame_bytes(payload_len: usize) -> usize {
    FRAME_HEADER_BYTES + payload_len
}

/// Appends one encoded frame to `out`.
pub fn encode(
    out: &mut Vec<u8>,
    segment_seq: u64,
    epoch: u32,
    term: u64,
    index: u64,
    payload: &[u8],
) {
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "payload over MAX_PAYLOAD_BYTES"
    );
    let mut header = FrameHeader {
        magic: FRAME_MAGIC.into(),
        version: FRAME_VERSION.into(),
        flags: 0.into(),
        crc: 0.into(),
        payload_len: (payload.len() as u32).into(),
        term: term.into(),
        index: index.into(),
        epoch: epoch.into(),
        reserved: 0.into(),
    };
    header.crc = checksum(segment_seq, &header, payload).into();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
}

/// Decodes the frame at the start of `bytes`, verifying its checksum.
pub fn decode(bytes: &[u8], segment_seq: u64) -> Decoded<'_> {
    let Ok((header, rest)) = FrameHeader::ref_from_prefix(bytes) else {
        return Decoded::Incomplete {
            frame_bytes: FRAME_HEADER_BYTES,
        };
    };
    if header.magic.get() != FRAME_MAGIC
        || header.version.get() != FRAME_VERSION
        || header.flags.get() != 0
        || header.reserved.get() != 0
    {
        return Decoded::Invalid;
    }
    let payload_len = header.payload_len.get() as usize;
    if payload_len > MAX_PAYLOAD_BYTES {
        return Decoded::Invalid;
    }
    if rest.len() < payload_len {
        return Decoded::Incomplete {
            frame_bytes: frame_bytes(payload_len),
        };
    }
    let payload = &rest[..payload_len];
    if checksum(segment_seq, header, payload) != header.crc.get() {
        return Decoded::Invalid;
    }
    Decoded::Valid { header, payload }
}

/// The segment sequence number below `seq` (at most `max_probes` of them,
/// newest first) under which the complete frame at the start of `bytes`
/// verifies: a frame left in a recycled segment file. `None` when no such
/// number exists or the frame is incomplete.
pub fn earlier_segment_seq(bytes: &[u8], seq: u64, max_probes: u64) -> Option<u64> {
    let (header, rest) = FrameHeader::ref_from_prefix(bytes).ok()?;
    let payload = rest.get(..header.payload_len.get() as usize)?;
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    header_bytes.copy_from_slice(header.as_bytes());
    header_bytes[CRC_FIELD].fill(0);
    let data_crc = crc32c::crc32c_append(crc32c::crc32c(&header_bytes), payload);
    // checksum(s) = Z(crc32c(s)) ^ data_crc, where Z (appending the frame's
    // bytes) is linear over GF(2): build it from the images of the 32 bits
    // once, so that each probe costs one 8-byte CRC.
    let len = FRAME_HEADER_BYTES + payload.len();
    let basis: [u32; 32] = std::array::from_fn(|bit| crc32c::crc32c_combine(1 << bit, 0, len));
    let shifted = |crc: u32| {
        (0..32)
            .filter(|bit| crc & (1 << bit) != 0)
            .fold(0, |acc, bit| acc ^ basis[bit])
    };
    let want = header.crc.get() ^ data_crc;
    (seq.saturating_sub(max_probes)..seq)
        .rev()
        .find(|old| shifted(crc32c::crc32c(&old.to_le_bytes())) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, seq, 3, 7, 42, b"hello frame");
        out
    }

    #[test]
    fn round_trip_reads_the_header_in_place() {
        let bytes = one(9);
        assert_eq!(bytes.len(), frame_bytes(11));
        match decode(&bytes, 9) {
            Decoded::Valid { header, payload } => {
                assert_eq!(header.term.get(), 7);
                assert_eq!(header.index.get(), 42);
                assert_eq!(header.epoch.get(), 3);
                assert_eq!(payload, b"hello frame");
            }
            other => panic!("expected a valid frame, got {other:?}"),
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = one(9);
        for bit in 0..bytes.len() * 8 {
            let mut copy = bytes.clone();
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode(&copy, 9), Decoded::Valid { .. }),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn frames_of_another_segment_sequence_are_invalid() {
        assert!(matches!(decode(&one(9), 10), Decoded::Invalid));
    }

    #[test]
    fn a_frame_of_an_earlier_segment_is_recognised() {
        let bytes = one(7);
        assert_eq!(earlier_segment_seq(&bytes, 20, 100), Some(7));
        assert_eq!(earlier_segment_seq(&bytes, 20, 10), None, "7 is not probed");
        assert_eq!(
            earlier_segment_seq(&bytes, 7, 100),
            None,
            "only earlier ones"
        );
        let mut torn = bytes.clone();
        torn[FRAME_HEADER_BYTES + 1] ^= 1;
        assert_eq!(earlier_segment_seq(&torn, 20, 100), None);
        assert_eq!(
            earlier_segment_seq(&bytes[..bytes.len() - 1], 20, 100),
            None
        );
    }

    #[test]
    fn short_input_asks_for_more() {
        let bytes = one(1);
        assert!(matches!(
            decode(&bytes[..10], 1),
            Decoded::Incomplete {
                frame_bytes: FRAME_HEADER_BYTES
            }
        ));
        assert!(matches!(
            decode(&bytes[..FRAME_HEADER_BYTES + 2], 1),
            Decoded::Incomplete { frame_bytes: 51 }
        ));
        assert!(matches!(decode(&[0u8; 64], 1), Decoded::Invalid));
    }
}

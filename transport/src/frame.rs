//! Frame layout on a QUIC stream.
//!
//! Every unidirectional stream carries a sequence of frames. A frame is a
//! fixed 12-byte header, read in place with `zerocopy`, then the payload:
//!
//! | offset | bytes | field                                       |
//! |--------|-------|---------------------------------------------|
//! | 0      | 4     | payload length, little endian               |
//! | 4      | 2     | magic `b"WG"`                               |
//! | 6      | 1     | frame format version (`FRAME_VERSION`)      |
//! | 7      | 1     | message type ([`FrameKind`])                |
//! | 8      | 4     | partition id, little endian                 |
//! | 12     | len   | payload                                     |
//!
//! The payload length is at most [`MAX_FRAME_PAYLOAD_BYTES`]; a longer,
//! unknown or garbled header is a protocol violation that closes the
//! connection. The first frame the dialing node sends on its first stream is
//! a `Hello` whose payload is the node id it claims (4 bytes, little endian).

use crate::error::FrameError;
use crate::identity::NodeId;
use crate::traffic_class::TrafficClass;
use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of the frame header in bytes.
pub const FRAME_HEADER_BYTES: usize = 12;

/// Largest payload one frame may carry. Raft batches and forwarded commands
/// are split by their producers to stay below it.
pub const MAX_FRAME_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// The magic that starts every frame header.
pub const FRAME_MAGIC: [u8; 2] = *b"WG";

/// Frame format version written and accepted by this build.
pub const FRAME_VERSION: u8 = 1;

/// Payload length of a `Hello` frame: the claimed node id.
pub const HELLO_PAYLOAD_BYTES: usize = 4;

/// The message type of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// First frame of a connection from the dialing node: its node id.
    Hello = 1,
    /// Raft replication traffic.
    Replication = 2,
    /// Forwarded client commands and their responses.
    Command = 3,
    /// Topology and health.
    Control = 4,
}

impl FrameKind {
    /// Decodes a message type byte.
    pub fn from_byte(byte: u8) -> Result<Self, FrameError> {
        match byte {
            1 => Ok(FrameKind::Hello),
            2 => Ok(FrameKind::Replication),
            3 => Ok(FrameKind::Command),
            4 => Ok(FrameKind::Control),
            found => Err(FrameError::UnknownKind { found }),
        }
    }

    /// The traffic class of a data frame; `None` for `Hello`.
    pub fn traffic_class(self) -> Option<TrafficClass> {
        match self {
            FrameKind::Hello => None,
            FrameKind::Replication => Some(TrafficClass::Replication),
            FrameKind::Command => Some(TrafficClass::Command),
            FrameKind::Control => Some(TrafficClass::Control),
        }
    }
}

impl From<TrafficClass> for FrameKind {
    fn from(class: TrafficClass) -> Self {
        match class {
            TrafficClass::Replication => FrameKind::Replication,
            TrafficClass::Command => FrameKind::Command,
            TrafficClass::Control => FrameKind::Control,
        }
    }
}

/// The frame header as it lies on the wire.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FrameHeader {
    length: U32,
    magic: [u8; 2],
    version: u8,
    kind: u8,
    partition: U32,
}

const _: () = assert!(size_of::<FrameHeader>() == FRAME_HEADER_BYTES);

/// A header that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidHeader {
    /// The message type.
    pub kind: FrameKind,
    /// The partition the payload belongs to (0 when not partition-bound).
    pub partition: u32,
    /// The payload length in bytes, at most `MAX_FRAME_PAYLOAD_BYTES`.
    pub length_bytes: usize,
}

impl FrameHeader {
    /// Builds a header for a payload of `length_bytes`.
    pub fn new(kind: FrameKind, partition: u32, length_bytes: usize) -> Result<Self, FrameError> {
        if length_bytes > MAX_FRAME_PAYLOAD_BYTES {
            return Err(FrameError::TooLarge {
                length_bytes,
                max_bytes: MAX_FRAME_PAYLOAD_BYTES,
            });
        }
        let length = u32::try_from(length_bytes).expect("MAX_FRAME_PAYLOAD_BYTES fits in u32");
        Ok(FrameHeader {
            length: U32::new(length),
            magic: FRAME_MAGIC,
            version: FRAME_VERSION,
            kind: kind as u8,
            partition: U32::new(partition),
        })
    }

    /// The `Hello` header announcing the dialing node's id.
    pub fn hello() -> Self {
        FrameHeader::new(FrameKind::Hello, 0, HELLO_PAYLOAD_BYTES)
            .expect("HELLO_PAYLOAD_BYTES is below the maximum")
    }

    /// The header's wire bytes.
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut out = [0u8; FRAME_HEADER_BYTES];
        out.copy_from_slice(self.as_bytes());
        out
    }

    /// Reads a header in place from its wire bytes and validates it.
    pub fn parse(bytes: &[u8; FRAME_HEADER_BYTES]) -> Result<ValidHeader, FrameError> {
        let header = FrameHeader::ref_from_bytes(bytes.as_slice())
            .expect("FrameHeader is unaligned and exactly FRAME_HEADER_BYTES long");
        if header.magic != FRAME_MAGIC {
            return Err(FrameError::BadMagic {
                found: header.magic,
                expected: FRAME_MAGIC,
            });
        }
        if header.version != FRAME_VERSION {
            return Err(FrameError::UnsupportedVersion {
                found: header.version,
                supported: FRAME_VERSION,
            });
        }
        let kind = FrameKind::from_byte(header.kind)?;
        let length_bytes = header.length.get() as usize;
        if length_bytes > MAX_FRAME_PAYLOAD_BYTES {
            return Err(FrameError::TooLarge {
                length_bytes,
                max_bytes: MAX_FRAME_PAYLOAD_BYTES,
            });
        }
        Ok(ValidHeader {
            kind,
            partition: header.partition.get(),
            length_bytes,
        })
    }
}

/// Encodes the payload of a `Hello` frame.
pub fn hello_payload(node_id: NodeId) -> [u8; HELLO_PAYLOAD_BYTES] {
    node_id.to_le_bytes()
}

/// Decodes the payload of a `Hello` frame.
pub fn parse_hello_payload(payload: [u8; HELLO_PAYLOAD_BYTES]) -> NodeId {
    NodeId::from_le_bytes(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = FrameHeader::new(FrameKind::Command, 7, 1234).unwrap();
        let parsed = FrameHeader::parse(&header.to_bytes()).unwrap();
        assert_eq!(
            parsed,
            ValidHeader {
                kind: FrameKind::Command,
                partition: 7,
                length_bytes: 1234
            }
        );
    }

    #[test]
    fn wire_layout_is_little_endian_length_first() {
        let bytes = FrameHeader::new(FrameKind::Replication, 0x0102_0304, 0x0a0b)
            .unwrap()
            .to_bytes();
        assert_eq!(bytes, [0x0b, 0x0a, 0, 0, b'W', b'G', 1, 2, 4, 3, 2, 1]);
    }

    #[test]
    fn oversized_length_is_refused_both_ways() {
        assert!(matches!(
            FrameHeader::new(FrameKind::Control, 0, MAX_FRAME_PAYLOAD_BYTES + 1),
            Err(FrameError::TooLarge { .. })
        ));
        let mut bytes = FrameHeader::new(FrameKind::Control, 0, 0)
            .unwrap()
            .to_bytes();
        bytes[..4].copy_from_slice(&(MAX_FRAME_PAYLOAD_BYTES as u32 + 1).to_le_bytes());
        assert!(matches!(
            FrameHeader::parse(&bytes),
            Err(FrameError::TooLarge { .. })
        ));
        bytes[..4].copy_from_slice(&(MAX_FRAME_PAYLOAD_BYTES as u32).to_le_bytes());
        assert_eq!(
            FrameHeader::parse(&bytes).unwrap().length_bytes,
            MAX_FRAME_PAYLOAD_BYTES
        );
    }

    #[test]
    fn unknown_kind_bad_magic_and_version_are_refused() {
        let good = FrameHeader::new(FrameKind::Control, 0, 3)
            .unwrap()
            .to_bytes();
        let mut unknown = good;
        unknown[7] = 9;
        assert_eq!(
            FrameHeader::parse(&unknown),
            Err(FrameError::UnknownKind { found: 9 })
        );
        let mut garbage = good;
        garbage[4] = b'X';
        assert!(matches!(
            FrameHeader::parse(&garbage),
            Err(FrameError::BadMagic { .. })
        ));
        let mut version = good;
        version[6] = 2;
        assert!(matches!(
            FrameHeader::parse(&version),
            Err(FrameError::UnsupportedVersion { found: 2, .. })
        ));
    }

    #[test]
    fn every_data_kind_maps_to_its_class() {
        for class in TrafficClass::ALL {
            assert_eq!(FrameKind::from(class).traffic_class(), Some(class));
        }
        assert_eq!(FrameKind::Hello.traffic_class(), None);
        assert_eq!(parse_hello_payload(hello_payload(42)), 42);
    }
}

//! How Raft entries and snapshots are laid out in the storage crate's files.
//!
//! Log entry payload: one byte of Raft entry kind (0 normal, 1 configuration)
//! followed by the Raft entry data.
//!
//! Snapshot bytes (stored and sent to followers alike): `u32` little-endian
//! length of the encoded group configuration, the configuration, then the
//! state machine's state.

use bytes::{BufMut, Bytes, BytesMut};
use raft::{Entry, EntryKind, GroupConfig};

const PAYLOAD_NORMAL: u8 = 0;
const PAYLOAD_CONFIG: u8 = 1;

/// Stored bytes that are not in this layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// The storage entry holding a Raft entry.
pub fn storage_entry(entry: &Entry) -> storage::Entry {
    let mut out = BytesMut::with_capacity(1 + entry.data.len());
    out.put_u8(match entry.kind {
        EntryKind::Normal => PAYLOAD_NORMAL,
        EntryKind::ConfChange => PAYLOAD_CONFIG,
    });
    out.put_slice(&entry.data);
    storage::Entry {
        term: entry.term,
        index: entry.index,
        payload: out.freeze(),
    }
}

/// The Raft entry a storage entry holds.
pub fn raft_entry(stored: storage::Entry) -> Result<Entry, FormatError> {
    let kind = match stored.payload.first() {
        Some(&PAYLOAD_NORMAL) => EntryKind::Normal,
        Some(&PAYLOAD_CONFIG) => EntryKind::ConfChange,
        other => {
            return Err(FormatError(format!(
                "log entry {} has payload kind {other:?}",
                stored.index
            )))
        }
    };
    Ok(Entry {
        term: stored.term,
        index: stored.index,
        kind,
        data: stored.payload.slice(1..),
    })
}

/// Snapshot bytes: the group configuration, then the state.
pub fn encode_snapshot(config: &GroupConfig, state: &[u8]) -> Bytes {
    let config = raft::encode_config(config);
    let mut out = BytesMut::with_capacity(4 + config.len() + state.len());
    out.put_u32_le(config.len() as u32);
    out.put_slice(&config);
    out.put_slice(state);
    out.freeze()
}

/// Splits snapshot bytes into the group configuration and the state.
pub fn decode_snapshot(data: &Bytes) -> Result<(GroupConfig, Bytes), FormatError> {
    if data.len() < 4 {
        return Err(FormatError(format!(
            "snapshot of {} bytes has no header",
            data.len()
        )));
    }
    let len = u32::from_le_bytes(data[..4].try_into().expect("4 bytes")) as usize;
    if data.len() < 4 + len {
        return Err(FormatError(format!(
            "snapshot configuration of {len} bytes is cut short"
        )));
    }
    let config = raft::decode_config(data.slice(4..4 + len))
        .map_err(|e| FormatError(format!("snapshot configuration: {e}")))?;
    Ok((config, data.slice(4 + len..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_snapshots_round_trip_and_bad_bytes_are_named() {
        for kind in [EntryKind::Normal, EntryKind::ConfChange] {
            let e = Entry {
                term: 3,
                index: 9,
                kind,
                data: Bytes::from_static(b"abc"),
            };
            assert_eq!(raft_entry(storage_entry(&e)), Ok(e));
        }
        let bad = storage::Entry {
            term: 1,
            index: 4,
            payload: Bytes::from_static(&[7, 1]),
        };
        assert!(raft_entry(bad).unwrap_err().0.contains("log entry 4"));
        let config = GroupConfig::new(1..=3).with_priority(2, 5);
        let bytes = encode_snapshot(&config, b"state");
        assert_eq!(
            decode_snapshot(&bytes),
            Ok((config, Bytes::from_static(b"state")))
        );
        assert!(decode_snapshot(&bytes.slice(..6)).is_err());
        assert!(decode_snapshot(&Bytes::from_static(b"ab")).is_err());
    }
}

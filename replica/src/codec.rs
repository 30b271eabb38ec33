//! How Raft entries and snapshots are laid out in the storage crate's files.
//!
//! Log entry payload: one byte of Raft entry kind (0 normal, 1 configuration)
//! followed by the Raft entry data.
//!
//! Snapshot bytes (stored and sent to followers alike), version 1: the magic
//! `WGSN`, the version byte, the `u32` little-endian length of the encoded
//! group configuration, the configuration, then the state machine's state.
//!
//! Version 0 (0.1.0) has no magic and no version: it begins with the
//! configuration's length. A length whose bytes spell `WGSN` (1.3 GB) never
//! occurs, so the two cannot be confused.
//!
//! Snapshots travel between replicas, and during a rolling upgrade the
//! replicas run two releases. So a layout is read one release before it is
//! written: 0.1.0 reads versions 0 and 1 and writes 0. 0.2.0 still writes 0
//! ([`SNAPSHOT_WRITTEN`]): a 0.1.0 follower resumes a snapshot transfer
//! with a new leader's bytes of the same index and term, so the replicas of
//! both releases must lay a snapshot out alike. From 0.2.0 on a follower
//! also compares the size (which the version's header changes), so the
//! release after 0.2.0 can write 1.

use bytes::{BufMut, Bytes, BytesMut};
use raft::{Entry, EntryKind, GroupConfig};

const PAYLOAD_NORMAL: u8 = 0;
const PAYLOAD_CONFIG: u8 = 1;

/// Marks versioned snapshot bytes.
const SNAPSHOT_MAGIC: &[u8; 4] = b"WGSN";
/// The newest snapshot layout this build reads.
pub const SNAPSHOT_VERSION: u8 = 1;
/// The snapshot layout this build writes (see the module docs).
pub const SNAPSHOT_WRITTEN: u8 = 0;

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

/// Snapshot bytes: the group configuration, then the state, in the layout
/// this build writes.
pub fn encode_snapshot(config: &GroupConfig, state: &[u8]) -> Bytes {
    encode_snapshot_as(SNAPSHOT_WRITTEN, config, state)
}

/// Snapshot bytes in layout `version` (0 or 1).
pub fn encode_snapshot_as(version: u8, config: &GroupConfig, state: &[u8]) -> Bytes {
    assert!(version <= SNAPSHOT_VERSION, "snapshot layout {version}");
    let config = raft::encode_config(config);
    let mut out = BytesMut::with_capacity(9 + config.len() + state.len());
    if version > 0 {
        out.put_slice(SNAPSHOT_MAGIC);
        out.put_u8(version);
    }
    out.put_u32_le(config.len() as u32);
    out.put_slice(&config);
    out.put_slice(state);
    out.freeze()
}

/// Splits snapshot bytes of any version this build reads into the group
/// configuration and the state.
pub fn decode_snapshot(data: &Bytes) -> Result<(GroupConfig, Bytes), FormatError> {
    match data.get(..4) {
        Some(magic) if magic == SNAPSHOT_MAGIC => match data.get(4) {
            Some(&SNAPSHOT_VERSION) => decode_body(data.slice(5..)),
            found => Err(FormatError(format!(
                "snapshot layout version {found:?} is not one this build reads (0 to \
                 {SNAPSHOT_VERSION})"
            ))),
        },
        // Version 0: no magic, no version.
        _ => decode_body(data.clone()),
    }
}

/// The configuration's length, the configuration, the state.
fn decode_body(data: Bytes) -> Result<(GroupConfig, Bytes), FormatError> {
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
        for version in 0..=SNAPSHOT_VERSION {
            let bytes = encode_snapshot_as(version, &config, b"state");
            assert_eq!(
                decode_snapshot(&bytes),
                Ok((config.clone(), Bytes::from_static(b"state"))),
                "version {version}"
            );
            assert!(decode_snapshot(&bytes.slice(..bytes.len() - 6)).is_err());
        }
        assert!(decode_snapshot(&Bytes::from_static(b"ab")).is_err());
        let mut later = encode_snapshot_as(SNAPSHOT_VERSION, &config, b"state").to_vec();
        later[4] = SNAPSHOT_VERSION + 1;
        let err = decode_snapshot(&Bytes::from(later)).unwrap_err().0;
        assert!(err.contains("layout version"), "{err}");
    }

    #[test]
    fn snapshots_of_version_0_are_read() {
        let config = GroupConfig::new(1..=3);
        let encoded = raft::encode_config(&config);
        let mut v0 = (encoded.len() as u32).to_le_bytes().to_vec();
        v0.extend_from_slice(&encoded);
        v0.extend_from_slice(b"state");
        assert_eq!(
            decode_snapshot(&Bytes::from(v0)),
            Ok((config, Bytes::from_static(b"state")))
        );
    }
}

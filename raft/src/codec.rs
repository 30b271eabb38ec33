//! Binary wire format of an [`Envelope`] (and of the configuration carried by
//! configuration-change entries).
//!
//! Layout, all integers LEB128 varints unless noted:
//!
//! ```text
//! envelope := MAGIC:u8 VERSION:u8 from to count message*
//! message  := group term tag:u8 body
//! entry    := term index kind:u8 len bytes
//! config   := n voter* n outgoing* m (node priority)* [n learner*]
//!             m is the priority count, with bit LEARNERS_FLAG set when the
//!             learner list follows (only then: a configuration without
//!             learners is encoded as before learners existed, and one with
//!             them is refused by an older decoder, whose count check fails)
//! snapmeta := index term config size_bytes
//! ```
//!
//! Decoding never panics: every length is checked against what remains of the
//! input before anything is allocated, and payloads are zero-copy slices of
//! the input buffer.

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::{GroupConfig, MAX_VOTERS};
use crate::message::{Envelope, GroupMessage, MessageBody};
use crate::types::{Entry, EntryKind, SnapshotMeta};

/// First byte of every encoded envelope.
pub const MAGIC: u8 = 0x57;
/// Format version written by this code.
pub const VERSION: u8 = 1;
/// Set in a configuration's priority count when a learner list follows.
const LEARNERS_FLAG: u64 = 1 << 40;
/// Largest entry or snapshot-chunk payload accepted by `decode`.
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 20;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("envelope truncated at byte {offset} while reading {field}")]
    Truncated {
        /// Byte offset where input ran out.
        offset: usize,
        /// Field being read.
        field: &'static str,
    },
    /// The first byte is not [`MAGIC`] or the version is unknown.
    #[error(
        "not a raft envelope: magic {magic:#x}, version {version} (expected {MAGIC:#x}, {VERSION})"
    )]
    BadHeader {
        /// Magic byte found.
        magic: u8,
        /// Version byte found.
        version: u8,
    },
    /// A field holds a value outside its domain.
    #[error("invalid {field} value {value} at byte {offset}")]
    Invalid {
        /// Byte offset of the field.
        offset: usize,
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
    },
    /// Bytes remain after the last message.
    #[error("{extra} trailing bytes after the envelope")]
    Trailing {
        /// Number of unread bytes.
        extra: usize,
    },
}

const TAG_PRE_VOTE: u8 = 1;
const TAG_PRE_VOTE_RESP: u8 = 2;
const TAG_VOTE: u8 = 3;
const TAG_VOTE_RESP: u8 = 4;
const TAG_APPEND: u8 = 5;
const TAG_APPEND_RESP: u8 = 6;
const TAG_HEARTBEAT: u8 = 7;
const TAG_HEARTBEAT_RESP: u8 = 8;
const TAG_SNAPSHOT_CHUNK: u8 = 9;
const TAG_SNAPSHOT_RESP: u8 = 10;
const TAG_TIMEOUT_NOW: u8 = 11;

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

fn put_bytes(buf: &mut BytesMut, data: &[u8]) {
    put_varint(buf, data.len() as u64);
    buf.put_slice(data);
}

fn put_entry(buf: &mut BytesMut, e: &Entry) {
    put_varint(buf, e.term);
    put_varint(buf, e.index);
    buf.put_u8(match e.kind {
        EntryKind::Normal => 0,
        EntryKind::ConfChange => 1,
    });
    put_bytes(buf, &e.data);
}

fn put_config(buf: &mut BytesMut, c: &GroupConfig) {
    put_varint(buf, c.voters.len() as u64);
    for &v in &c.voters {
        put_varint(buf, v);
    }
    put_varint(buf, c.outgoing.len() as u64);
    for &v in &c.outgoing {
        put_varint(buf, v);
    }
    let flag = if c.learners.is_empty() {
        0
    } else {
        LEARNERS_FLAG
    };
    put_varint(buf, c.priorities.len() as u64 | flag);
    for (&n, &p) in &c.priorities {
        put_varint(buf, n);
        put_varint(buf, u64::from(p));
    }
    if !c.learners.is_empty() {
        put_varint(buf, c.learners.len() as u64);
        for &l in &c.learners {
            put_varint(buf, l);
        }
    }
}

fn put_snapshot_meta(buf: &mut BytesMut, m: &SnapshotMeta) {
    put_varint(buf, m.index);
    put_varint(buf, m.term);
    put_config(buf, &m.config);
    put_varint(buf, m.size_bytes);
}

fn put_message(buf: &mut BytesMut, m: &GroupMessage) {
    put_varint(buf, m.group);
    put_varint(buf, m.term);
    match &m.body {
        MessageBody::PreVote {
            last_index,
            last_term,
        } => {
            buf.put_u8(TAG_PRE_VOTE);
            put_varint(buf, *last_index);
            put_varint(buf, *last_term);
        }
        MessageBody::PreVoteResp { reject } => {
            buf.put_u8(TAG_PRE_VOTE_RESP);
            put_bool(buf, *reject);
        }
        MessageBody::Vote {
            last_index,
            last_term,
            transfer,
        } => {
            buf.put_u8(TAG_VOTE);
            put_varint(buf, *last_index);
            put_varint(buf, *last_term);
            put_bool(buf, *transfer);
        }
        MessageBody::VoteResp { reject } => {
            buf.put_u8(TAG_VOTE_RESP);
            put_bool(buf, *reject);
        }
        MessageBody::Append {
            prev_index,
            prev_term,
            commit,
            entries,
        } => {
            buf.put_u8(TAG_APPEND);
            put_varint(buf, *prev_index);
            put_varint(buf, *prev_term);
            put_varint(buf, *commit);
            put_varint(buf, entries.len() as u64);
            for e in entries {
                put_entry(buf, e);
            }
        }
        MessageBody::AppendResp {
            index,
            reject,
            hint_index,
            hint_term,
        } => {
            buf.put_u8(TAG_APPEND_RESP);
            put_varint(buf, *index);
            put_bool(buf, *reject);
            put_varint(buf, *hint_index);
            put_varint(buf, *hint_term);
        }
        MessageBody::Heartbeat { commit } => {
            buf.put_u8(TAG_HEARTBEAT);
            put_varint(buf, *commit);
        }
        MessageBody::HeartbeatResp => buf.put_u8(TAG_HEARTBEAT_RESP),
        MessageBody::SnapshotChunk { meta, offset, data } => {
            buf.put_u8(TAG_SNAPSHOT_CHUNK);
            put_snapshot_meta(buf, meta);
            put_varint(buf, *offset);
            put_bytes(buf, data);
        }
        MessageBody::SnapshotResp {
            index,
            received_bytes,
        } => {
            buf.put_u8(TAG_SNAPSHOT_RESP);
            put_varint(buf, *index);
            put_varint(buf, *received_bytes);
        }
        MessageBody::TimeoutNow => buf.put_u8(TAG_TIMEOUT_NOW),
    }
}

/// Encodes an envelope into a fresh buffer.
pub fn encode(env: &Envelope) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u8(MAGIC);
    buf.put_u8(VERSION);
    put_varint(&mut buf, env.from);
    put_varint(&mut buf, env.to);
    put_varint(&mut buf, env.messages.len() as u64);
    for m in &env.messages {
        put_message(&mut buf, m);
    }
    buf.freeze()
}

/// Encodes a configuration (the payload of a configuration-change entry).
pub fn encode_config(c: &GroupConfig) -> Bytes {
    let mut buf = BytesMut::with_capacity(32);
    put_config(&mut buf, c);
    buf.freeze()
}

struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated {
            offset: self.pos,
            field,
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(field)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid {
            offset: start,
            field,
            value: v,
        })
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        let offset = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::Invalid {
                offset,
                field,
                value: u64::from(v),
            }),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A count of items each at least `min_item_bytes` long: bounded by input.
    fn count(&mut self, field: &'static str, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let n = self.varint(field)?;
        if n > (self.remaining() / min_item_bytes) as u64 {
            return Err(DecodeError::Invalid {
                offset,
                field,
                value: n,
            });
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let offset = self.pos;
        let n = self.varint(field)?;
        if n > MAX_PAYLOAD_BYTES || n > self.remaining() as u64 {
            return Err(DecodeError::Invalid {
                offset,
                field,
                value: n,
            });
        }
        let out = self.buf.slice(self.pos..self.pos + n as usize);
        self.pos += n as usize;
        Ok(out)
    }

    fn entry(&mut self) -> Result<Entry, DecodeError> {
        let term = self.varint("entry term")?;
        let index = self.varint("entry index")?;
        let offset = self.pos;
        let kind = match self.u8("entry kind")? {
            0 => EntryKind::Normal,
            1 => EntryKind::ConfChange,
            v => {
                return Err(DecodeError::Invalid {
                    offset,
                    field: "entry kind",
                    value: u64::from(v),
                })
            }
        };
        let data = self.bytes("entry data")?;
        Ok(Entry {
            term,
            index,
            kind,
            data,
        })
    }

    fn config(&mut self) -> Result<GroupConfig, DecodeError> {
        let mut c = GroupConfig::default();
        let n = self.count("voter count", 1)?;
        for _ in 0..n {
            c.voters.insert(self.varint("voter")?);
        }
        let n = self.count("outgoing voter count", 1)?;
        for _ in 0..n {
            c.outgoing.insert(self.varint("outgoing voter")?);
        }
        let offset = self.pos;
        let raw = self.varint("priority count")?;
        let with_learners = raw & LEARNERS_FLAG != 0;
        let n = raw & !LEARNERS_FLAG;
        if n > (self.remaining() / 2) as u64 {
            return Err(DecodeError::Invalid {
                offset,
                field: "priority count",
                value: raw,
            });
        }
        for _ in 0..n {
            let node = self.varint("priority node")?;
            let offset = self.pos;
            let p = self.varint("priority")?;
            let p = u32::try_from(p).map_err(|_| DecodeError::Invalid {
                offset,
                field: "priority",
                value: p,
            })?;
            c.priorities.insert(node, p);
        }
        if with_learners {
            let n = self.count("learner count", 1)?;
            for _ in 0..n {
                c.learners.insert(self.varint("learner")?);
            }
        }
        if c.voters.len() > MAX_VOTERS
            || c.outgoing.len() > MAX_VOTERS
            || c.learners.len() > MAX_VOTERS
        {
            return Err(DecodeError::Invalid {
                offset: self.pos,
                field: "voter count",
                value: c.voters.len().max(c.outgoing.len()) as u64,
            });
        }
        Ok(c)
    }

    fn snapshot_meta(&mut self) -> Result<SnapshotMeta, DecodeError> {
        Ok(SnapshotMeta {
            index: self.varint("snapshot index")?,
            term: self.varint("snapshot term")?,
            config: self.config()?,
            size_bytes: self.varint("snapshot size")?,
        })
    }

    fn message(&mut self) -> Result<GroupMessage, DecodeError> {
        let group = self.varint("group")?;
        let term = self.varint("term")?;
        let offset = self.pos;
        let body = match self.u8("message tag")? {
            TAG_PRE_VOTE => MessageBody::PreVote {
                last_index: self.varint("last index")?,
                last_term: self.varint("last term")?,
            },
            TAG_PRE_VOTE_RESP => MessageBody::PreVoteResp {
                reject: self.bool("reject")?,
            },
            TAG_VOTE => MessageBody::Vote {
                last_index: self.varint("last index")?,
                last_term: self.varint("last term")?,
                transfer: self.bool("transfer")?,
            },
            TAG_VOTE_RESP => MessageBody::VoteResp {
                reject: self.bool("reject")?,
            },
            TAG_APPEND => {
                let prev_index = self.varint("prev index")?;
                let prev_term = self.varint("prev term")?;
                let commit = self.varint("commit")?;
                let n = self.count("entry count", 4)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(self.entry()?);
                }
                MessageBody::Append {
                    prev_index,
                    prev_term,
                    commit,
                    entries,
                }
            }
            TAG_APPEND_RESP => MessageBody::AppendResp {
                index: self.varint("index")?,
                reject: self.bool("reject")?,
                hint_index: self.varint("hint index")?,
                hint_term: self.varint("hint term")?,
            },
            TAG_HEARTBEAT => MessageBody::Heartbeat {
                commit: self.varint("commit")?,
            },
            TAG_HEARTBEAT_RESP => MessageBody::HeartbeatResp,
            TAG_SNAPSHOT_CHUNK => MessageBody::SnapshotChunk {
                meta: self.snapshot_meta()?,
                offset: self.varint("chunk offset")?,
                data: self.bytes("chunk data")?,
            },
            TAG_SNAPSHOT_RESP => MessageBody::SnapshotResp {
                index: self.varint("snapshot index")?,
                received_bytes: self.varint("received bytes")?,
            },
            TAG_TIMEOUT_NOW => MessageBody::TimeoutNow,
            tag => {
                return Err(DecodeError::Invalid {
                    offset,
                    field: "message tag",
                    value: u64::from(tag),
                })
            }
        };
        Ok(GroupMessage { group, term, body })
    }
}

/// Decodes an envelope produced by [`encode`]; payloads share `buf`.
pub fn decode(buf: Bytes) -> Result<Envelope, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let magic = r.u8("magic")?;
    let version = r.u8("version")?;
    if magic != MAGIC || version != VERSION {
        return Err(DecodeError::BadHeader { magic, version });
    }
    let from = r.varint("from")?;
    let to = r.varint("to")?;
    let n = r.count("message count", 3)?;
    let mut messages = Vec::with_capacity(n);
    for _ in 0..n {
        messages.push(r.message()?);
    }
    if r.remaining() != 0 {
        return Err(DecodeError::Trailing {
            extra: r.remaining(),
        });
    }
    Ok(Envelope { from, to, messages })
}

/// Decodes a configuration written by [`encode_config`].
pub fn decode_config(buf: Bytes) -> Result<GroupConfig, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let c = r.config()?;
    if r.remaining() != 0 {
        return Err(DecodeError::Trailing {
            extra: r.remaining(),
        });
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        let cfg = GroupConfig::new([1, 2, 3]).with_priority(2, 5);
        Envelope {
            from: 1,
            to: 300,
            messages: vec![
                GroupMessage {
                    group: 7,
                    term: 3,
                    body: MessageBody::Append {
                        prev_index: 10,
                        prev_term: 2,
                        commit: 9,
                        entries: vec![
                            Entry {
                                term: 3,
                                index: 11,
                                kind: EntryKind::Normal,
                                data: Bytes::from_static(b"hello"),
                            },
                            Entry {
                                term: 3,
                                index: 12,
                                kind: EntryKind::ConfChange,
                                data: encode_config(&cfg),
                            },
                        ],
                    },
                },
                GroupMessage {
                    group: 8,
                    term: u64::MAX,
                    body: MessageBody::Heartbeat { commit: 1 << 40 },
                },
                GroupMessage {
                    group: 8,
                    term: 1,
                    body: MessageBody::SnapshotChunk {
                        meta: SnapshotMeta {
                            index: 5,
                            term: 1,
                            config: cfg,
                            size_bytes: 3,
                        },
                        offset: 0,
                        data: Bytes::from_static(b"abc"),
                    },
                },
                GroupMessage {
                    group: 9,
                    term: 4,
                    body: MessageBody::AppendResp {
                        index: 3,
                        reject: true,
                        hint_index: 2,
                        hint_term: 1,
                    },
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let env = sample();
        assert_eq!(decode(encode(&env)), Ok(env));
    }

    #[test]
    fn a_configuration_without_learners_keeps_the_layout_of_before_them() {
        let cfg = GroupConfig::new([1, 2, 3]).with_priority(2, 5);
        // voters 3: 1 2 3, outgoing 0, priorities 1: (2, 5)
        assert_eq!(&encode_config(&cfg)[..], &[3, 1, 2, 3, 0, 1, 2, 5]);
        let mut with = cfg.clone();
        with.learners = [4, 9].into_iter().collect();
        let bytes = encode_config(&with);
        assert_eq!(decode_config(bytes.clone()), Ok(with.clone()));
        // A decoder of before learners reads the flagged count as far more
        // priorities than bytes, and refuses the configuration.
        let mut r = Reader {
            buf: bytes.slice(5..),
            pos: 0,
        };
        assert!(r.count("priority count", 2).is_err());
        // In an envelope, inside a snapshot's metadata too.
        let env = Envelope {
            from: 1,
            to: 4,
            messages: vec![GroupMessage {
                group: 7,
                term: 3,
                body: MessageBody::SnapshotChunk {
                    meta: SnapshotMeta {
                        index: 10,
                        term: 3,
                        config: with,
                        size_bytes: 99,
                    },
                    offset: 0,
                    data: Bytes::from_static(b"chunk"),
                },
            }],
        };
        assert_eq!(decode(encode(&env)), Ok(env));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(decode(bytes.slice(..len)).is_err(), "prefix of {len} bytes");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let good = encode(&sample());
        for round in 0..20_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut v = good.to_vec();
            // Flip a few bytes, sometimes keep the header valid.
            for k in 0..(1 + round % 4) {
                let pos = ((state >> (k * 8)) as usize) % v.len();
                v[pos] ^= (state >> 32) as u8 | 1;
            }
            let _ = decode(Bytes::from(v));
        }
    }
}

//! Binary encoding of records for the partition log.
//!
//! ```text
//! byte 0      : RECORD_FORMAT_VERSION
//! byte 1..end : postcard encoding of `Record` (varint integers, length-prefixed
//!               strings and sequences, enum variants by index)
//! ```
//!
//! The encoding is deterministic (same record, same bytes; no maps with
//! unstable order are encoded) and compact. Decoding checks the version, that
//! the whole input is consumed and that `value_type` matches the value, and
//! returns an error on any garbage; it never panics.

use crate::record::Record;
use thiserror::Error;

/// Version byte in front of every encoded record. Version 2: deployments
/// carry DRGs and decisions (`DeploymentRecord` gained two fields), with the
/// `DECISION_REQUIREMENTS`, `DECISION` and `DECISION_EVALUATION` values.
/// Version 3: jobs carry their kind, listener event type, result and user
/// task (`JobRecord` gained four fields), instance creation its start
/// instructions, with the modification, migration and ad-hoc sub-process
/// instruction values and forms. Logs of an earlier version are refused
/// with `UnsupportedVersion`, not misread.
pub const RECORD_FORMAT_VERSION: u8 = 3;
/// Largest encoded record accepted by `decode` (Zeebe's default max message size).
pub const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// Why bytes could not be decoded into a record.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input was empty.
    #[error("record bytes are empty")]
    Empty,
    /// The input is larger than `MAX_RECORD_BYTES`.
    #[error("record of {len_bytes} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes")]
    TooLarge {
        /// Length of the input.
        len_bytes: usize,
    },
    /// The version byte is not one this engine reads.
    #[error("record format version {found} is not supported (expected {RECORD_FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The body is not a valid record.
    #[error("record body is malformed: {reason}")]
    Malformed {
        /// What the decoder found wrong.
        reason: String,
    },
    /// Bytes were left after the record.
    #[error("{trailing_bytes} trailing bytes after the record")]
    Trailing {
        /// How many.
        trailing_bytes: usize,
    },
    /// `value_type` does not match the value.
    #[error("record value type {declared} does not match its value ({actual})")]
    ValueTypeMismatch {
        /// Declared value type.
        declared: &'static str,
        /// Type of the value.
        actual: &'static str,
    },
}

impl Record {
    /// Appends the encoding of this record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        assert_eq!(
            self.value_type,
            self.value.value_type(),
            "record value type must match its value"
        );
        out.push(RECORD_FORMAT_VERSION);
        let body = postcard::to_extend(self, std::mem::take(out))
            .expect("encoding into a Vec cannot fail");
        *out = body;
    }

    /// Decodes one record from exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(DecodeError::TooLarge {
                len_bytes: bytes.len(),
            });
        }
        if version != RECORD_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { found: version });
        }
        let (record, rest): (Record, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed {
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(DecodeError::Trailing {
                trailing_bytes: rest.len(),
            });
        }
        if record.value_type != record.value.value_type() {
            return Err(DecodeError::ValueTypeMismatch {
                declared: record.value_type.name(),
                actual: record.value.value_type().name(),
            });
        }
        Ok(record)
    }
}

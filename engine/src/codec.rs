//! Binary encoding of records for the partition log.
//!
//! ```text
//! byte 0      : RECORD_FORMAT_VERSION (3), or TENANT_RECORD_FORMAT_VERSION (4)
//! version 4   : postcard encoding of `CallerHeader` (the record's tenant, and
//!               a command's authorized tenants and processes)
//! then to end : postcard encoding of `Record` (varint integers, length-prefixed
//!               strings and sequences, enum variants by index)
//! ```
//!
//! A record of the default tenant without authorized tenants or processes is written in
//! version 3, byte for byte as before multi-tenancy, so a log without
//! tenants stays readable by a release that knows version 3 only.
//!
//! The encoding is deterministic (same record, same bytes; no maps with
//! unstable order are encoded) and compact. Decoding checks the version, that
//! the whole input is consumed and that `value_type` matches the value, and
//! returns an error on any garbage; it never panics.

use crate::record::Record;
use crate::tenancy::Tenant;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
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
/// Version byte of a record with a tenant other than the default, or a
/// command with authorized tenants or processes: version 3 with a
/// [`CallerHeader`] in front.
pub const TENANT_RECORD_FORMAT_VERSION: u8 = 4;

/// What a version 4 record carries in front of its body.
#[derive(Serialize, Deserialize)]
struct CallerHeader {
    tenant: Tenant,
    authorized_tenants: Option<Vec<Tenant>>,
    authorized_processes: Option<Vec<Arc<str>>>,
}
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
    #[error(
        "record format version {found} is not supported (expected {RECORD_FORMAT_VERSION} or {TENANT_RECORD_FORMAT_VERSION})"
    )]
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
        let mut bytes = std::mem::take(out);
        if self.tenant.is_default()
            && self.authorized_tenants.is_none()
            && self.authorized_processes.is_none()
        {
            bytes.push(RECORD_FORMAT_VERSION);
        } else {
            bytes.push(TENANT_RECORD_FORMAT_VERSION);
            let header = CallerHeader {
                tenant: self.tenant.clone(),
                authorized_tenants: self.authorized_tenants.as_deref().map(<[_]>::to_vec),
                authorized_processes: self.authorized_processes.as_deref().map(<[_]>::to_vec),
            };
            bytes = postcard::to_extend(&header, bytes).expect("encoding into a Vec cannot fail");
        }
        *out = postcard::to_extend(self, bytes).expect("encoding into a Vec cannot fail");
    }

    /// Decodes one record from exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(DecodeError::TooLarge {
                len_bytes: bytes.len(),
            });
        }
        let malformed = |e: postcard::Error| DecodeError::Malformed {
            reason: e.to_string(),
        };
        let (header, body) = match version {
            RECORD_FORMAT_VERSION => (None, body),
            TENANT_RECORD_FORMAT_VERSION => {
                let (header, body): (CallerHeader, &[u8]) =
                    postcard::take_from_bytes(body).map_err(malformed)?;
                (Some(header), body)
            }
            found => return Err(DecodeError::UnsupportedVersion { found }),
        };
        let (mut record, rest): (Record, &[u8]) =
            postcard::take_from_bytes(body).map_err(malformed)?;
        if let Some(header) = header {
            record.tenant = header.tenant;
            record.authorized_tenants = header.authorized_tenants.map(Arc::from);
            record.authorized_processes = header.authorized_processes.map(Arc::from);
        }
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

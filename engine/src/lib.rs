//! waggle's BPMN engine: sans-IO, deterministic. Commands in, events out; the
//! same commands on the same state give the same events, byte for byte.
//!
//! Modules: `record` and `codec` (the log records), `key` (64-bit keys with the
//! partition id on top), `bpmn`, `model` and `expression` (deployments),
//! and the engine proper.

pub mod bpmn;
pub mod codec;
pub mod expression;
pub mod key;
pub mod model;
pub mod record;

pub use codec::DecodeError;
pub use record::*;

//! waggle's BPMN engine: sans-IO, deterministic. Commands in, events out; the
//! same commands on the same state give the same events, byte for byte.
//!
//! Modules: `record` and `codec` (the log records), `key` (64-bit keys with the
//! partition id on top), `bpmn`, `model` and `expression` (deployments;
//! `dmn::xml_depth` bounds XML nesting before roxmltree sees it; FEEL is the
//! `feel` crate),
//! `state` and `variables` (replicated state and its appliers), `engine` (the
//! API the broker uses), `distribution` (commands every partition must
//! apply), and the processors: `commands`, `deletion`, `behavior`, `jobs`,
//! `user_tasks`, `scope_variables`, `streams`, `publish` (`zeebe:publishMessage`), `adhoc` (ad-hoc sub-processes),
//! `modification` (move tokens of
//! a running instance, start instructions) and `migration` (move an instance
//! to another process definition). DMN decisions (the `dmn` crate):
//! `decision_record` (their records), `decision_state` (deployed DRGs and
//! decisions), `decisions` (deploy, distribute, delete) and `decision_eval`
//! (business rule tasks, EvaluateDecision). `forms`: Camunda Forms (deploy,
//! state, user task links, delete). `identity`: users of basic
//! authentication; `access`: roles and authorizations. `tenancy`: the tenant
//! of every record, and names unique within a tenant.

pub mod access;
pub mod adhoc;
mod behavior;
pub mod bpmn;
pub mod codec;
pub mod collectives;
pub mod commands;
mod compensation;
mod decision_eval;
mod decision_record;
pub mod decision_state;
mod decisions;
mod deletion;
pub mod distribution;
pub mod engine;
pub mod events;
pub mod expression;
mod fingerprint;
pub mod forms;
pub mod identity;
pub mod jobs;
pub mod key;
pub mod listeners;
pub mod mapping_rules;
pub mod messages;
mod migration;
mod migration_catch;
pub mod model;
mod modification;
mod modification_subscriptions;
mod owner;
pub mod publish;
pub mod record;
pub mod scaling;
pub mod scope_variables;
pub mod signals;
pub mod state;
pub mod streams;
mod structure;
pub mod tenancy;
mod throw;
pub mod timer;
pub mod user_tasks;
pub mod variables;

pub use adhoc::{AdHocActivateElement, AdHocSubProcessInstructionRecord};
pub use codec::DecodeError;
pub use engine::{
    ActivatedJob, Engine, JobPush, LeaderLocal, Processed, ResponseValue, SnapshotError,
    DUE_RESEND_MS,
};
pub use messages::message_partition;
pub use record::*;

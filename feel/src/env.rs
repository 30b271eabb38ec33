//! The evaluation environment: where variables come from, the current
//! instant and the default time zone — all supplied by the caller, never
//! read from the host.

use crate::json::from_json;
use crate::temporal::Zone;
use crate::value::{Entries, Value};
use chrono_tz::Tz;
use serde_json::{Map, Value as Json};

/// A source of variables. Lookups convert lazily, so an expression reads
/// only the variables it names.
pub trait Variables {
    /// The variable's value, or `None` if it does not exist.
    fn get(&self, name: &str) -> Option<Value>;
}

impl Variables for Map<String, Json> {
    fn get(&self, name: &str) -> Option<Value> {
        Map::get(self, name).map(from_json)
    }
}

impl Variables for Entries {
    fn get(&self, name: &str) -> Option<Value> {
        Entries::get(self, name).cloned()
    }
}

/// Variables as the engine holds them: (name, JSON text) pairs, innermost
/// scope first; the first occurrence of a name wins. Only the variables an
/// expression names are parsed; text that is not JSON reads as null.
pub struct JsonTextVariables<'a>(pub &'a [(&'a str, &'a str)]);

impl Variables for JsonTextVariables<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        let (_, text) = self.0.iter().find(|(n, _)| *n == name)?;
        Some(
            serde_json::from_str::<Json>(text)
                .map(|j| from_json(&j))
                .unwrap_or(Value::Null),
        )
    }
}

/// No variables at all.
pub struct NoVariables;

impl Variables for NoVariables {
    fn get(&self, _: &str) -> Option<Value> {
        None
    }
}

/// Everything an evaluation may read besides the expression itself.
pub struct Context<'a> {
    pub(crate) variables: &'a dyn Variables,
    pub(crate) now_ms: i64,
    pub(crate) zone: Zone,
    /// Evaluation depth already used by callers (host functions that
    /// evaluate FEEL again), counted against `MAX_EVAL_DEPTH`.
    pub(crate) depth: usize,
}

/// A time zone name that is neither an IANA zone nor an offset.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("unknown time zone '{0}': expected an IANA name such as 'Europe/Berlin', 'UTC' or an offset such as '+01:00'")]
pub struct UnknownZone(pub String);

impl<'a> Context<'a> {
    /// Variables and the current instant (epoch milliseconds), in zone UTC.
    pub fn new(variables: &'a dyn Variables, now_ms: i64) -> Context<'a> {
        Context {
            variables,
            now_ms,
            zone: Zone::Named(Tz::UTC),
            depth: 0,
        }
    }

    /// The same instant and zone over other variables, one call level
    /// deeper: what a host function evaluates its body in. Nested
    /// evaluations share one depth budget, so host recursion is bounded.
    pub fn nested<'b>(&self, variables: &'b dyn Variables) -> Context<'b> {
        Context {
            variables,
            now_ms: self.now_ms,
            zone: self.zone,
            depth: self.depth + 1,
        }
    }

    /// The same instant, zone and depth over other variables.
    pub fn with_variables<'b>(&self, variables: &'b dyn Variables) -> Context<'b> {
        Context {
            variables,
            now_ms: self.now_ms,
            zone: self.zone,
            depth: self.depth,
        }
    }

    /// Evaluation depth used by callers so far.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Sets the default time zone (used by `now()` and `today()`).
    pub fn with_zone(mut self, zone_name: &str) -> Result<Context<'a>, UnknownZone> {
        self.zone = Zone::parse(zone_name).ok_or_else(|| UnknownZone(zone_name.to_string()))?;
        Ok(self)
    }

    /// The current instant, epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

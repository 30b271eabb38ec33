//! FEEL values: the closed set of types an expression can produce, shared
//! cheaply (`Arc`) so that lists and contexts are copied by reference.

use crate::ast::Expr;
use crate::number::Number;
use crate::temporal::{DateTime, Time};
use chrono::{NaiveDate, TimeDelta};
use std::cmp::Ordering;
use std::sync::Arc;

/// A FEEL value.
#[derive(Clone, Debug)]
pub enum Value {
    /// `null`: absent or the result of an invalid operation.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A decimal number.
    Number(Number),
    /// A string.
    String(Arc<str>),
    /// A calendar date.
    Date(NaiveDate),
    /// A time of day, local or with an offset or zone.
    Time(Time),
    /// A date and time, local or with an offset or zone.
    DateTime(DateTime),
    /// A years-and-months duration, in months.
    YearMonth(i64),
    /// A days-and-time duration.
    DayTime(TimeDelta),
    /// A list.
    List(Arc<Vec<Value>>),
    /// A context: ordered entries with unique keys.
    Context(Arc<Entries>),
    /// A range (interval) of comparable values.
    Range(Arc<Range>),
    /// A function: built-in or defined in FEEL.
    Function(Arc<Function>),
}

/// The ordered entries of a FEEL context.
#[derive(Clone, Debug, Default)]
pub struct Entries {
    entries: Vec<(Arc<str>, Value)>,
}

impl Entries {
    /// An empty context.
    pub fn new() -> Entries {
        Entries::default()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` (replacing an existing entry in place).
    pub fn put(&mut self, key: Arc<str>, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the context has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A range: each bound is a value (or absent when unbounded), open or closed.
#[derive(Clone, Debug)]
pub struct Range {
    /// Lower bound; `None` for `< x` style ranges.
    pub start: Option<Value>,
    /// Whether the lower bound belongs to the range.
    pub start_included: bool,
    /// Upper bound; `None` for `> x` style ranges.
    pub end: Option<Value>,
    /// Whether the upper bound belongs to the range.
    pub end_included: bool,
}

impl Range {
    /// Whether `v` lies in the range; `None` when not comparable.
    pub fn contains(&self, v: &Value) -> Option<bool> {
        if let Some(s) = &self.start {
            let o = compare(v, s)?;
            if o == Ordering::Less || (o == Ordering::Equal && !self.start_included) {
                return Some(false);
            }
        }
        if let Some(e) = &self.end {
            let o = compare(v, e)?;
            if o == Ordering::Greater || (o == Ordering::Equal && !self.end_included) {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// A function value.
#[derive(Debug)]
pub enum Function {
    /// A built-in function, by its name.
    Builtin(&'static str),
    /// A function defined in FEEL, with the local names visible where it was defined.
    User {
        /// Parameter names.
        params: Vec<Arc<str>>,
        /// The body.
        body: Arc<Expr>,
        /// Names bound where the function was defined.
        captured: Vec<(Arc<str>, Value)>,
    },
    /// A function supplied by the host (a DMN business knowledge model or
    /// decision service), called with the evaluation's context.
    Native(Arc<dyn NativeFunction>),
}

/// A function implemented outside FEEL. It receives its arguments in
/// parameter order (missing ones are null) and a context that carries the
/// caller's instant, zone and call depth (see [`crate::Context::nested`]).
pub trait NativeFunction: Send + Sync + std::fmt::Debug {
    /// Parameter names, in order (for named arguments).
    fn params(&self) -> &[Arc<str>];
    /// Invokes the function; `Err` is an evaluation failure.
    fn invoke(&self, args: Vec<Value>, ctx: &crate::Context) -> Result<Value, String>;
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    /// A number from an integer.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::from(i))
    }

    /// A list value.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The FEEL type name (as `instance of` spells it).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::DateTime(_) => "date and time",
            Value::YearMonth(_) => "years and months duration",
            Value::DayTime(_) => "days and time duration",
            Value::List(_) => "list",
            Value::Context(_) => "context",
            Value::Range(_) => "range",
            Value::Function(_) => "function",
        }
    }
}

/// FEEL equality: `Some(bool)`, or `None` when the types cannot be compared.
pub fn equal(a: &Value, b: &Value) -> Option<bool> {
    use Value::*;
    Some(match (a, b) {
        (Null, Null) => true,
        (Null, _) | (_, Null) => false,
        (Bool(x), Bool(y)) => x == y,
        (Number(x), Number(y)) => x == y,
        (String(x), String(y)) => x == y,
        (Date(x), Date(y)) => x == y,
        (Time(x), Time(y)) => x.compare(y)? == Ordering::Equal,
        (DateTime(x), DateTime(y)) => x.compare(y)? == Ordering::Equal,
        (YearMonth(x), YearMonth(y)) => x == y,
        (DayTime(x), DayTime(y)) => x == y,
        (List(x), List(y)) => {
            if x.len() != y.len() {
                return Some(false);
            }
            for (p, q) in x.iter().zip(y.iter()) {
                // Items of different types are unequal (not incomparable).
                if !equal(p, q).unwrap_or(false) {
                    return Some(false);
                }
            }
            true
        }
        (Context(x), Context(y)) => {
            if x.len() != y.len() {
                return Some(false);
            }
            for (k, v) in x.iter() {
                match y.get(k) {
                    Some(w) if equal(v, w).unwrap_or(false) => {}
                    _ => return Some(false),
                }
            }
            true
        }
        (Range(x), Range(y)) => {
            x.start_included == y.start_included
                && x.end_included == y.end_included
                && bound_eq(&x.start, &y.start)?
                && bound_eq(&x.end, &y.end)?
        }
        _ => return None,
    })
}

fn bound_eq(a: &Option<Value>, b: &Option<Value>) -> Option<bool> {
    match (a, b) {
        (None, None) => Some(true),
        (Some(x), Some(y)) => equal(x, y),
        _ => Some(false),
    }
}

/// FEEL ordering of two values of the same ordered type, else `None`.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    match (a, b) {
        (Number(x), Number(y)) => Some(x.cmp(y)),
        (String(x), String(y)) => Some(x.cmp(y)),
        (Date(x), Date(y)) => Some(x.cmp(y)),
        (Time(x), Time(y)) => x.compare(y),
        (DateTime(x), DateTime(y)) => x.compare(y),
        (YearMonth(x), YearMonth(y)) => Some(x.cmp(y)),
        (DayTime(x), DayTime(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

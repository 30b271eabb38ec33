//! The JSON bridge: JSON numbers become exact decimals, objects become
//! contexts; temporal values leave as ISO 8601 strings, durations as
//! `P1DT2H` / `P1Y2M`. Nesting is bounded by [`MAX_VALUE_DEPTH`].

use crate::number;
use crate::temporal::{date_text, day_time_text, year_month_text};
use crate::value::{Entries, Value};
use serde_json::{Map, Number as JsonNumber, Value as Json};
use std::sync::Arc;

/// Deepest JSON nesting converted; deeper parts become null.
pub const MAX_VALUE_DEPTH: usize = 128;

/// Converts JSON to a FEEL value.
pub fn from_json(j: &Json) -> Value {
    convert_in(j, 0)
}

fn convert_in(j: &Json, depth: usize) -> Value {
    if depth > MAX_VALUE_DEPTH {
        return Value::Null;
    }
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => json_number(n).map_or(Value::Null, Value::Number),
        Json::String(s) => Value::string(s.as_str()),
        Json::Array(a) => Value::list(a.iter().map(|x| convert_in(x, depth + 1)).collect()),
        Json::Object(o) => {
            let mut c = Entries::new();
            for (k, v) in o {
                c.put(Arc::from(k.as_str()), convert_in(v, depth + 1));
            }
            Value::Context(Arc::new(c))
        }
    }
}

fn json_number(n: &JsonNumber) -> Option<number::Number> {
    if let Some(i) = n.as_i64() {
        return Some(number::Number::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(number::Number::from(u));
    }
    number::parse(&n.to_string())
}

/// Converts a FEEL value to JSON. Ranges and functions become their FEEL
/// text (`[1..10)`, `function(a, b)`), as Camunda's `to json` renders them.
pub fn to_json(v: &Value) -> Json {
    to_json_in(v, 0)
}

fn to_json_in(v: &Value, depth: usize) -> Json {
    if depth > MAX_VALUE_DEPTH {
        return Json::Null;
    }
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => number_json(n),
        Value::String(s) => Json::String(s.to_string()),
        Value::Date(d) => Json::String(date_text(d)),
        Value::Time(t) => Json::String(t.text()),
        Value::DateTime(d) => Json::String(d.iso_text()),
        Value::YearMonth(m) => Json::String(year_month_text(*m)),
        Value::DayTime(d) => Json::String(day_time_text(d)),
        Value::List(l) => Json::Array(l.iter().map(|x| to_json_in(x, depth + 1)).collect()),
        Value::Context(c) => {
            let mut m = Map::new();
            for (k, x) in c.iter() {
                m.insert(k.to_string(), to_json_in(x, depth + 1));
            }
            Json::Object(m)
        }
        Value::Range(_) | Value::Function(_) => Json::String(v.to_string()),
    }
}

fn number_json(n: &number::Number) -> Json {
    if n.is_integer() {
        if let Some(i) = number::to_i64(n) {
            return Json::Number(i.into());
        }
    }
    JsonNumber::from_f64(number::to_f64(n)).map_or(Json::Null, Json::Number)
}

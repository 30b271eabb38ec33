//! FEEL text of values, as the `string()` function renders them.

use crate::number;
use crate::temporal::{date_text, day_time_text, year_month_text};
use crate::value::{Function, Value};
use std::fmt::{self, Write};

/// Renders `v` into `out`; strings appear quoted inside lists and contexts.
fn write_value(out: &mut String, v: &Value, nested: bool) -> fmt::Result {
    match v {
        Value::Null => out.write_str("null"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Number(n) => out.write_str(&number::to_string(n)),
        Value::String(s) if nested => write!(out, "\"{s}\""),
        Value::String(s) => out.write_str(s),
        Value::Date(d) => out.write_str(&date_text(d)),
        Value::Time(t) => out.write_str(&t.text()),
        Value::DateTime(d) => out.write_str(&d.text()),
        Value::YearMonth(m) => out.write_str(&year_month_text(*m)),
        Value::DayTime(d) => out.write_str(&day_time_text(d)),
        Value::List(l) => {
            out.write_char('[')?;
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_value(out, x, true)?;
            }
            out.write_char(']')
        }
        Value::Context(c) => {
            out.write_char('{')?;
            for (i, (k, x)) in c.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write!(out, "{k}:")?;
                write_value(out, x, true)?;
            }
            out.write_char('}')
        }
        Value::Range(r) => {
            out.write_char(if r.start_included { '[' } else { '(' })?;
            if let Some(s) = &r.start {
                write_value(out, s, true)?;
            }
            out.write_str("..")?;
            if let Some(e) = &r.end {
                write_value(out, e, true)?;
            }
            out.write_char(if r.end_included { ']' } else { ')' })
        }
        Value::Function(f) => match &**f {
            Function::Builtin(n) => write!(out, "function {n}"),
            Function::User { params, .. } => {
                let names: Vec<&str> = params.iter().map(|p| &**p).collect();
                write!(out, "function({})", names.join(", "))
            }
            Function::Native(n) => {
                let names: Vec<&str> = n.params().iter().map(|p| &**p).collect();
                write!(out, "function({})", names.join(", "))
            }
        },
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_value(&mut s, self, false)?;
        f.write_str(&s)
    }
}

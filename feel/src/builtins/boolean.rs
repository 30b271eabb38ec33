//! Boolean built-ins and Camunda's value helpers: `not`, `get or else`,
//! `assert`, `is`. (`is defined` is evaluated by the evaluator, which must
//! see the unevaluated argument to silence its missing-variable warnings.)

use super::{b, opt, text, Builtin};
use crate::eval::{Ev, Fail, R};
use crate::value::{equal, Value};

pub(super) const TABLE: &[Builtin] = &[
    b("not", &["negand"], not),
    b("get or else", &["value", "default"], get_or_else),
    b("assert", &["value", "condition", "cause?"], assert),
    b("is", &["value1", "value2"], is),
];

fn not(_: &mut Ev, a: &[Value]) -> R {
    match &a[0] {
        Value::Bool(x) => Ok(Value::Bool(!x)),
        Value::Null => Ok(Value::Null),
        other => Err(format!("expected boolean but found {}", other.type_name()).into()),
    }
}

fn get_or_else(_: &mut Ev, a: &[Value]) -> R {
    Ok(if a[0].is_null() {
        a[1].clone()
    } else {
        a[0].clone()
    })
}

fn assert(_: &mut Ev, a: &[Value]) -> R {
    if matches!(a[1], Value::Bool(true)) {
        return Ok(a[0].clone());
    }
    Err(Fail::Hard(match opt(a, 2) {
        Some(cause) => format!(
            "Assertion failure: {}",
            text(cause).unwrap_or("(cause is not a string)")
        ),
        None => "Assertion failure".to_string(),
    }))
}

fn is(_: &mut Ev, a: &[Value]) -> R {
    let same_type = a[0].type_name() == a[1].type_name();
    let same_zone = match (&a[0], &a[1]) {
        (Value::DateTime(x), Value::DateTime(y)) => x.zone == y.zone,
        (Value::Time(x), Value::Time(y)) => x.zone == y.zone,
        _ => true,
    };
    Ok(Value::Bool(
        same_type && same_zone && equal(&a[0], &a[1]) == Some(true),
    ))
}

//! Numeric built-ins. Rounding follows the named `java.math.RoundingMode`
//! of each function; `log` and `exp` go through binary floating point as
//! feel-scala does.

use super::{b, int, num, Builtin};
use crate::eval::{Ev, Fail, R};
use crate::number::{self, Number};
use crate::value::Value;
use bigdecimal::{RoundingMode, Zero};

/// Largest scale the rounding functions accept.
pub const MAX_ROUND_SCALE: i64 = 6176;
/// Smallest scale the rounding functions accept (DECIMAL128's exponent range).
pub const MIN_ROUND_SCALE: i64 = -6111;

pub(super) const TABLE: &[Builtin] = &[
    b("decimal", &["n", "scale"], decimal),
    b("floor", &["n", "scale?"], floor),
    b("ceiling", &["n", "scale?"], ceiling),
    b("round up", &["n", "scale?"], round_up),
    b("round down", &["n", "scale?"], round_down),
    b("round half up", &["n", "scale?"], round_half_up),
    b("round half down", &["n", "scale?"], round_half_down),
    b("round half even", &["n", "scale?"], decimal),
    b("abs", &["n"], abs),
    b("modulo", &["dividend", "divisor"], modulo),
    b("sqrt", &["number"], sqrt),
    b("log", &["number"], log),
    b("exp", &["number"], exp),
    b("odd", &["number"], odd),
    b("even", &["number"], even),
    b("random number", &[], random),
];

fn rounded(a: &[Value], mode: RoundingMode) -> R {
    let n = num(&a[0])?;
    let scale = match a.get(1) {
        Some(Value::Null) => return Err("the scale is null".into()),
        Some(s) => int(s)?,
        None => 0,
    };
    if !(MIN_ROUND_SCALE..=MAX_ROUND_SCALE).contains(&scale) {
        return Err(format!("scale must be within {MIN_ROUND_SCALE}..{MAX_ROUND_SCALE}").into());
    }
    let r = number::with_scale(n, scale, mode);
    Ok(Value::Number(if scale < 0 { r.with_scale(0) } else { r }))
}

fn decimal(_: &mut Ev, a: &[Value]) -> R {
    rounded(a, RoundingMode::HalfEven)
}

fn floor(_: &mut Ev, a: &[Value]) -> R {
    rounded(a, RoundingMode::Floor)
}

fn ceiling(_: &mut Ev, a: &[Value]) -> R {
    rounded(a, RoundingMode::Ceiling)
}

fn round_up(_: &mut Ev, a: &[Value]) -> R {
    rounded(a, RoundingMode::Up)
}

fn round_down(_: &mut Ev, a: &[Value]) -> R {
    rounded(a, RoundingMode::Down)
}

fn round_half_up(_: &mut Ev, a: &[Value]) -> R {
    rounded(a, RoundingMode::HalfUp)
}

fn round_half_down(_: &mut Ev, a: &[Value]) -> R {
    rounded(a, RoundingMode::HalfDown)
}

fn abs(_: &mut Ev, a: &[Value]) -> R {
    match &a[0] {
        Value::Number(n) => Ok(Value::Number(n.abs())),
        Value::YearMonth(m) => Ok(Value::YearMonth(m.abs())),
        Value::DayTime(d) => Ok(Value::DayTime(d.abs())),
        other => Err(format!(
            "expected number or duration but found {}",
            other.type_name()
        )
        .into()),
    }
}

fn modulo(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = (num(&a[0])?, num(&a[1])?);
    let q = number::div(x, y).ok_or("division by zero")?;
    let f = q.with_scale_round(0, RoundingMode::Floor);
    Ok(Value::Number(number::round(x - number::mul(y, &f))))
}

fn sqrt(_: &mut Ev, a: &[Value]) -> R {
    let n = num(&a[0])?;
    n.sqrt()
        .map(|r| Value::Number(number::round(r)))
        .ok_or_else(|| "square root of a negative number".into())
}

fn float(r: f64) -> R {
    number::from_f64(r)
        .map(Value::Number)
        .ok_or_else(|| "result is not a finite number".into())
}

fn log(_: &mut Ev, a: &[Value]) -> R {
    let n = number::to_f64(num(&a[0])?);
    if n <= 0.0 {
        return Err("logarithm of a number ≤ 0".into());
    }
    float(n.ln())
}

fn exp(_: &mut Ev, a: &[Value]) -> R {
    float(number::to_f64(num(&a[0])?).exp())
}

fn parity(a: &[Value]) -> Result<bool, Fail> {
    let n = num(&a[0])?;
    if !n.is_integer() {
        return Err("expected an integer".into());
    }
    Ok((n % Number::from(2)).is_zero())
}

fn odd(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(!parity(a)?))
}

fn even(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(parity(a)?))
}

fn random(_: &mut Ev, _: &[Value]) -> R {
    Err(Fail::Hard(
        "random number() is not supported: a random value would make replicas diverge; pass one in a variable".into(),
    ))
}

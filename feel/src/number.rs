//! FEEL numbers: arbitrary-precision decimals rounded to 34 significant
//! digits with half-even rounding after each inexact operation, like the
//! IEEE 754 DECIMAL128 context that Camunda's FEEL engine uses.

use bigdecimal::{BigDecimal, Context, RoundingMode, ToPrimitive, Zero};
use std::num::NonZeroU64;
use std::str::FromStr;

/// Significant digits kept by division, multiplication and the roots.
pub const DECIMAL_DIGITS: u64 = 34;

/// Largest absolute exponent (decimal scale) a number may carry; beyond it
/// arithmetic yields null instead of allocating unbounded digit strings.
pub const MAX_SCALE: i64 = 6144;

/// The FEEL number type.
pub type Number = BigDecimal;

fn context() -> Context {
    Context::new(
        NonZeroU64::new(DECIMAL_DIGITS).expect("34 is not zero"),
        RoundingMode::HalfEven,
    )
}

/// Rounds to 34 significant digits and drops trailing zeros of a fraction.
pub fn round(n: Number) -> Number {
    let n = if n.digits() > DECIMAL_DIGITS {
        context().round_decimal(n)
    } else {
        n
    };
    if n.fractional_digit_count() > 0 {
        let normal = n.normalized();
        if normal.fractional_digit_count() < 0 {
            normal.with_scale(0)
        } else {
            normal
        }
    } else {
        n
    }
}

/// Whether the number's exponent stays within [`MAX_SCALE`].
pub fn in_range(n: &Number) -> bool {
    n.fractional_digit_count().abs() <= MAX_SCALE
}

/// Parses FEEL number text (`12`, `-1.5`, `.5`, `1e3`).
pub fn parse(text: &str) -> Option<Number> {
    let t = text.trim();
    if t.is_empty() || t.contains(['_', ' ']) {
        return None;
    }
    let n = BigDecimal::from_str(t).ok()?;
    in_range(&n).then_some(n)
}

/// Exact quotient rounded to 34 digits; `None` for division by zero.
pub fn div(a: &Number, b: &Number) -> Option<Number> {
    if b.is_zero() {
        return None;
    }
    Some(round(a / b))
}

/// The number as an `i64` if it is an integer in range.
pub fn to_i64(n: &Number) -> Option<i64> {
    if n.is_integer() {
        n.to_i64()
    } else {
        None
    }
}

/// The number as the nearest `f64`.
pub fn to_f64(n: &Number) -> f64 {
    n.to_f64().unwrap_or(f64::NAN)
}

/// A finite `f64` as a number (shortest representation), else `None`.
pub fn from_f64(f: f64) -> Option<Number> {
    if !f.is_finite() {
        return None;
    }
    parse(&format!("{f:?}")).map(round)
}

/// Plain (non-scientific) text of a number, as FEEL's `string()` gives it.
pub fn to_string(n: &Number) -> String {
    let n = if n.fractional_digit_count() < 0 {
        n.with_scale(0)
    } else {
        n.clone()
    };
    n.to_plain_string()
}

/// Rounds to `scale` fraction digits with the given mode.
pub fn with_scale(n: &Number, scale: i64, mode: RoundingMode) -> Number {
    n.with_scale_round(scale, mode)
}

/// Multiplication rounded to 34 digits.
pub fn mul(a: &Number, b: &Number) -> Number {
    round(a * b)
}

/// Integer power (exact up to rounding), or `None` when out of range.
pub fn pow(a: &Number, b: &Number) -> Option<Number> {
    if let Some(e) = to_i64(b) {
        if e.unsigned_abs() <= 999_999 {
            let r = round(a.powi_with_context(e, &context()));
            return in_range(&r).then_some(r);
        }
        return None;
    }
    from_f64(to_f64(a).powf(to_f64(b)))
}

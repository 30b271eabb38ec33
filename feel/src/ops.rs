//! Operators on values: arithmetic with null propagation, string
//! concatenation, temporal arithmetic, and properties (`x.year`).

use crate::ast::BinOp;
use crate::number::{self, Number};
use crate::temporal::{add_months, months_between, DateTime, Time};
use crate::value::Value;
use bigdecimal::Zero;
use chrono::{Datelike, NaiveTime, TimeDelta, Timelike};
use std::sync::Arc;

/// A failed operation: the message for the suppressed-failure list.
pub type OpResult = Result<Value, String>;

fn mismatch(op: BinOp, a: &Value, b: &Value) -> String {
    format!(
        "can't apply {op:?} to {} and {}",
        a.type_name(),
        b.type_name()
    )
}

fn num(n: Number) -> OpResult {
    if number::in_range(&n) {
        Ok(Value::Number(n))
    } else {
        Err("number out of range".into())
    }
}

/// `a op b` for `+ - * / **`.
pub fn arith(op: BinOp, a: &Value, b: &Value) -> OpResult {
    use Value::*;
    if a.is_null() || b.is_null() {
        return Err(mismatch(op, a, b));
    }
    let r = match (op, a, b) {
        (BinOp::Add, Number(x), Number(y)) => return num(x + y),
        (BinOp::Sub, Number(x), Number(y)) => return num(x - y),
        (BinOp::Mul, Number(x), Number(y)) => return num(number::mul(x, y)),
        (BinOp::Div, Number(x), Number(y)) => {
            return number::div(x, y)
                .map(Value::Number)
                .ok_or_else(|| "division by zero".into())
        }
        (BinOp::Pow, Number(x), Number(y)) => {
            return number::pow(x, y)
                .map(Value::Number)
                .ok_or_else(|| "power out of range".into())
        }
        (BinOp::Add, String(x), String(y)) => {
            let mut s = x.to_string();
            s.push_str(y);
            Some(Value::String(Arc::from(s)))
        }
        (BinOp::Add | BinOp::Sub, YearMonth(x), YearMonth(y)) => {
            let r = if op == BinOp::Add {
                x.checked_add(*y)
            } else {
                x.checked_sub(*y)
            };
            r.map(YearMonth)
        }
        (BinOp::Add | BinOp::Sub, DayTime(x), DayTime(y)) => {
            let r = if op == BinOp::Add {
                x.checked_add(y)
            } else {
                x.checked_sub(y)
            };
            r.map(DayTime)
        }
        (BinOp::Mul, YearMonth(x), Number(y)) | (BinOp::Mul, Number(y), YearMonth(x)) => {
            number::to_i64(
                &(number::Number::from(*x) * y)
                    .with_scale_round(0, bigdecimal::RoundingMode::HalfEven),
            )
            .map(YearMonth)
        }
        (BinOp::Div, YearMonth(x), Number(y)) if !y.is_zero() => {
            let q = number::div(&number::Number::from(*x), y).ok_or("division by zero")?;
            number::to_i64(&q.with_scale_round(0, bigdecimal::RoundingMode::Down)).map(YearMonth)
        }
        (BinOp::Div, YearMonth(x), YearMonth(y)) if *y != 0 => {
            number::div(&number::Number::from(*x), &number::Number::from(*y)).map(Value::Number)
        }
        (BinOp::Mul, DayTime(x), Number(y)) | (BinOp::Mul, Number(y), DayTime(x)) => {
            scale_delta(x, y, false).map(DayTime)
        }
        (BinOp::Div, DayTime(x), Number(y)) if !y.is_zero() => scale_delta(x, y, true).map(DayTime),
        (BinOp::Div, DayTime(x), DayTime(y)) if !y.is_zero() => {
            let (a, b) = (delta_nanos(x), delta_nanos(y));
            number::div(&number::Number::from(a), &number::Number::from(b)).map(Value::Number)
        }
        (BinOp::Sub, Date(x), Date(y)) => Some(DayTime(x.signed_duration_since(*y))),
        (BinOp::Sub, DateTime(x), DateTime(y)) => datetime_diff(x, y).map(DayTime),
        (BinOp::Sub, DateTime(x), Date(y)) => {
            at_midnight(y, x).and_then(|m| datetime_diff(x, &m).map(DayTime))
        }
        (BinOp::Sub, Date(x), DateTime(y)) => {
            at_midnight(x, y).and_then(|m| datetime_diff(&m, y).map(DayTime))
        }
        (BinOp::Sub, Time(x), Time(y)) => time_diff(x, y).map(DayTime),
        (BinOp::Add, Date(d), YearMonth(m)) | (BinOp::Add, YearMonth(m), Date(d)) => {
            add_months(*d, *m).map(Date)
        }
        (BinOp::Sub, Date(d), YearMonth(m)) => add_months(*d, -*m).map(Date),
        (BinOp::Add, Date(d), DayTime(t)) | (BinOp::Add, DayTime(t), Date(d)) => d
            .and_time(NaiveTime::MIN)
            .checked_add_signed(*t)
            .map(|x| Date(x.date())),
        (BinOp::Sub, Date(d), DayTime(t)) => d
            .and_time(NaiveTime::MIN)
            .checked_sub_signed(*t)
            .map(|x| Date(x.date())),
        (BinOp::Add, DateTime(d), YearMonth(m)) | (BinOp::Add, YearMonth(m), DateTime(d)) => {
            shift_months(d, *m).map(DateTime)
        }
        (BinOp::Sub, DateTime(d), YearMonth(m)) => shift_months(d, -*m).map(DateTime),
        (BinOp::Add, DateTime(d), DayTime(t)) | (BinOp::Add, DayTime(t), DateTime(d)) => {
            d.shift(*t).map(DateTime)
        }
        (BinOp::Sub, DateTime(d), DayTime(t)) => d.shift(-*t).map(DateTime),
        (BinOp::Add, Time(x), DayTime(t)) | (BinOp::Add, DayTime(t), Time(x)) => {
            Some(Time(crate::temporal::Time {
                time: x.time.overflowing_add_signed(*t).0,
                zone: x.zone,
            }))
        }
        (BinOp::Sub, Time(x), DayTime(t)) => Some(Time(crate::temporal::Time {
            time: x.time.overflowing_sub_signed(*t).0,
            zone: x.zone,
        })),
        _ => return Err(mismatch(op, a, b)),
    };
    r.ok_or_else(|| {
        format!(
            "{op:?} of {} and {} is out of range",
            a.type_name(),
            b.type_name()
        )
    })
}

fn delta_nanos(d: &TimeDelta) -> i128 {
    i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
}

fn scale_delta(d: &TimeDelta, f: &Number, divide: bool) -> Option<TimeDelta> {
    let n = Number::from(delta_nanos(d));
    let r = if divide { number::div(&n, f)? } else { &n * f };
    let r = r.with_scale_round(0, bigdecimal::RoundingMode::HalfEven);
    let total: i128 = bigdecimal::ToPrimitive::to_i128(&r)?;
    let secs = i64::try_from(total.div_euclid(1_000_000_000)).ok()?;
    let nanos = i64::try_from(total.rem_euclid(1_000_000_000)).ok()?;
    TimeDelta::try_seconds(secs)?.checked_add(&TimeDelta::nanoseconds(nanos))
}

/// A date against a date-time with an offset or zone is midnight UTC (DMN
/// 1.5, 10.3.2.3.5); against a local date-time the difference is undefined.
fn at_midnight(d: &chrono::NaiveDate, like: &DateTime) -> Option<DateTime> {
    like.zone?;
    Some(DateTime {
        local: d.and_time(NaiveTime::MIN),
        zone: crate::temporal::Zone::parse("Z"),
    })
}

fn datetime_diff(x: &DateTime, y: &DateTime) -> Option<TimeDelta> {
    match (x.zone.is_some(), y.zone.is_some()) {
        (false, false) => Some(x.local.signed_duration_since(y.local)),
        (true, true) => Some(x.utc()?.signed_duration_since(y.utc()?)),
        _ => None,
    }
}

fn time_diff(x: &Time, y: &Time) -> Option<TimeDelta> {
    match (x.offset(), y.offset()) {
        (None, None) => Some(x.time.signed_duration_since(y.time)),
        (Some(a), Some(b)) => Some(
            x.time.signed_duration_since(y.time)
                - TimeDelta::seconds(i64::from(a.local_minus_utc() - b.local_minus_utc())),
        ),
        _ => None,
    }
}

fn shift_months(d: &DateTime, m: i64) -> Option<DateTime> {
    Some(DateTime {
        local: add_months(d.local.date(), m)?.and_time(d.local.time()),
        zone: d.zone,
    })
}

/// `-x`
pub fn negate(v: &Value) -> OpResult {
    match v {
        Value::Number(n) => Ok(Value::Number(-n)),
        Value::YearMonth(m) => Ok(Value::YearMonth(-m)),
        Value::DayTime(d) => Ok(Value::DayTime(-*d)),
        other => Err(format!("can't negate {}", other.type_name())),
    }
}

/// `x.name` for temporal values, durations and ranges.
pub fn property(v: &Value, name: &str) -> Option<Value> {
    let int = |i: i64| Some(Value::int(i));
    match v {
        Value::Date(d) => match name {
            "year" => int(d.year().into()),
            "month" => int(d.month().into()),
            "day" => int(d.day().into()),
            "weekday" => int(d.weekday().number_from_monday().into()),
            _ => None,
        },
        Value::DateTime(dt) => match name {
            "year" | "month" | "day" | "weekday" => property(&Value::Date(dt.local.date()), name),
            "hour" | "minute" | "second" => property(
                &Value::Time(Time {
                    time: dt.local.time(),
                    zone: None,
                }),
                name,
            ),
            "time offset" => Some(dt.offset().map_or(Value::Null, offset_value)),
            "timezone" => Some(zone_name(&dt.zone)),
            _ => None,
        },
        Value::Time(t) => match name {
            "hour" => int(t.time.hour().into()),
            "minute" => int(t.time.minute().into()),
            "second" => int(t.time.second().into()),
            "time offset" => Some(t.offset().map_or(Value::Null, offset_value)),
            "timezone" => Some(zone_name(&t.zone)),
            _ => None,
        },
        Value::YearMonth(m) => match name {
            "years" => int(m / 12),
            "months" => int(m % 12),
            _ => None,
        },
        Value::DayTime(d) => {
            let s = d.num_seconds();
            match name {
                "days" => int(s / 86_400),
                "hours" => int((s % 86_400) / 3600),
                "minutes" => int((s % 3600) / 60),
                "seconds" => int(s % 60),
                _ => None,
            }
        }
        Value::Range(r) => match name {
            "start" => Some(r.start.clone().unwrap_or(Value::Null)),
            "end" => Some(r.end.clone().unwrap_or(Value::Null)),
            "start included" => Some(Value::Bool(r.start_included)),
            "end included" => Some(Value::Bool(r.end_included)),
            _ => None,
        },
        _ => None,
    }
}

fn offset_value(o: chrono::FixedOffset) -> Value {
    Value::DayTime(TimeDelta::seconds(i64::from(o.local_minus_utc())))
}

fn zone_name(z: &Option<crate::temporal::Zone>) -> Value {
    match z {
        Some(crate::temporal::Zone::Named(tz)) => Value::string(tz.name()),
        _ => Value::Null,
    }
}

/// Whole months between two dates or date-times (`years and months duration`).
pub fn months_from(a: &Value, b: &Value) -> Option<i64> {
    let local = |v: &Value| match v {
        Value::Date(d) => Some(d.and_time(NaiveTime::MIN)),
        Value::DateTime(d) => Some(d.local),
        _ => None,
    };
    Some(months_between(local(a)?, local(b)?))
}

//! Temporal built-ins. `now()` and `today()` read the instant and the
//! default zone from the evaluation context, never the host clock.

use super::{b, Builtin};
use crate::eval::{Ev, R};
use crate::temporal::DateTime;
use crate::value::Value;
use chrono::{Datelike, NaiveDate};

pub(super) const TABLE: &[Builtin] = &[
    b("now", &[], now),
    b("today", &[], today),
    b("day of year", &["date"], day_of_year),
    b("day of week", &["date"], day_of_week),
    b("month of year", &["date"], month_of_year),
    b("week of year", &["date"], week_of_year),
    b("last day of month", &["date"], last_day_of_month),
];

fn now(ev: &mut Ev, _: &[Value]) -> R {
    DateTime::at_instant(ev.ctx.now_ms(), ev.ctx.zone)
        .map(Value::DateTime)
        .ok_or_else(|| "the current instant is out of range".into())
}

fn today(ev: &mut Ev, a: &[Value]) -> R {
    match now(ev, a)? {
        Value::DateTime(d) => Ok(Value::Date(d.local.date())),
        other => Ok(other),
    }
}

fn day(v: &Value) -> Result<NaiveDate, crate::eval::Fail> {
    match v {
        Value::Date(d) => Ok(*d),
        Value::DateTime(d) => Ok(d.local.date()),
        other => Err(format!("expected date but found {}", other.type_name()).into()),
    }
}

fn day_of_year(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::int(day(&a[0])?.ordinal().into()))
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn day_of_week(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::string(
        DAYS[day(&a[0])?.weekday().num_days_from_monday() as usize],
    ))
}

fn month_of_year(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::string(MONTHS[day(&a[0])?.month0() as usize]))
}

fn week_of_year(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::int(day(&a[0])?.iso_week().week().into()))
}

fn last_day_of_month(_: &mut Ev, a: &[Value]) -> R {
    let d = day(&a[0])?;
    let first = d.with_day(1).ok_or("invalid date")?;
    let next = crate::temporal::add_months(first, 1).ok_or("date out of range")?;
    Ok(Value::Date(next.pred_opt().ok_or("date out of range")?))
}

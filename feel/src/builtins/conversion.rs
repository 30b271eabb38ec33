//! Conversion built-ins: temporal constructors, `number`, `string`,
//! `duration`, and Camunda's `from json` / `to json`.

use super::{b, int, num, opt, text, Builtin};
use crate::eval::{Ev, Fail, R};
use crate::number;
use crate::ops::months_from;
use crate::temporal::{self, DateTime, Time, Zone};
use crate::value::Value;
use chrono::{NaiveDate, NaiveTime};

/// Longest JSON text `from json` parses.
pub const MAX_JSON_BYTES: usize = 1 << 20;

pub(super) const TABLE: &[Builtin] = &[
    b("date", &["from"], date),
    b("date", &["year", "month", "day"], date_ymd),
    b("time", &["from"], time),
    b("time", &["hour", "minute", "second", "offset?"], time_hms),
    b("date and time", &["from"], date_and_time),
    b("date and time", &["date", "time"], date_and_time2),
    b("date and time", &["date", "timezone"], date_and_time2),
    b(
        "number",
        &["from", "grouping separator?", "decimal separator?"],
        number_of,
    ),
    b("string", &["from"], string),
    b("duration", &["from"], duration),
    b(
        "years and months duration",
        &["from", "to"],
        years_and_months,
    ),
    b("from json", &["value"], from_json),
    b("to json", &["value"], to_json),
];

fn invalid(what: &str, s: &str) -> Fail {
    Fail::Soft(format!("'{s}' is not a valid {what}"))
}

fn date(_: &mut Ev, a: &[Value]) -> R {
    match &a[0] {
        Value::String(s) => temporal::parse_date(s)
            .map(Value::Date)
            .ok_or_else(|| invalid("date (yyyy-mm-dd)", s)),
        Value::Date(d) => Ok(Value::Date(*d)),
        Value::DateTime(d) => Ok(Value::Date(d.local.date())),
        other => Err(format!(
            "expected string or date and time but found {}",
            other.type_name()
        )
        .into()),
    }
}

fn date_ymd(_: &mut Ev, a: &[Value]) -> R {
    let (y, m, d) = (int(&a[0])?, int(&a[1])?, int(&a[2])?);
    let date = i32::try_from(y)
        .ok()
        .zip(u32::try_from(m).ok().zip(u32::try_from(d).ok()))
        .and_then(|(y, (m, d))| NaiveDate::from_ymd_opt(y, m, d));
    date.map(Value::Date)
        .ok_or_else(|| "not a valid date".into())
}

fn time(_: &mut Ev, a: &[Value]) -> R {
    match &a[0] {
        Value::String(s) => Time::parse(s)
            .map(Value::Time)
            .ok_or_else(|| invalid("time (hh:mm:ss)", s)),
        Value::Time(t) => Ok(Value::Time(*t)),
        Value::DateTime(d) => Ok(Value::Time(Time {
            time: d.local.time(),
            zone: d.zone,
        })),
        Value::Date(_) => Ok(Value::Time(Time {
            time: NaiveTime::MIN,
            zone: Zone::parse("Z"),
        })),
        other => Err(format!(
            "expected string or date and time but found {}",
            other.type_name()
        )
        .into()),
    }
}

fn time_hms(_: &mut Ev, a: &[Value]) -> R {
    let (h, m) = (int(&a[0])?, int(&a[1])?);
    let sec = num(&a[2])?;
    let whole =
        number::to_i64(&sec.with_scale_round(0, bigdecimal::RoundingMode::Down)).unwrap_or(-1);
    let nanos = number::to_i64(
        &((sec - bigdecimal::BigDecimal::from(whole))
            * bigdecimal::BigDecimal::from(1_000_000_000))
        .with_scale_round(0, bigdecimal::RoundingMode::Down),
    )
    .unwrap_or(0);
    let t = NaiveTime::from_hms_nano_opt(
        u32::try_from(h).map_err(|_| "hour out of range")?,
        u32::try_from(m).map_err(|_| "minute out of range")?,
        u32::try_from(whole).map_err(|_| "second out of range")?,
        u32::try_from(nanos).unwrap_or(0),
    )
    .ok_or("not a valid time")?;
    let zone = match opt(a, 3) {
        Some(Value::DayTime(d)) => Some(Zone::Offset(
            chrono::FixedOffset::east_opt(
                i32::try_from(d.num_seconds()).map_err(|_| "offset out of range")?,
            )
            .ok_or("offset out of range")?,
        )),
        Some(other) => {
            return Err(format!(
                "expected days and time duration but found {}",
                other.type_name()
            )
            .into())
        }
        None => None,
    };
    Ok(Value::Time(Time { time: t, zone }))
}

fn date_and_time(_: &mut Ev, a: &[Value]) -> R {
    match &a[0] {
        Value::String(s) => DateTime::parse(s)
            .map(Value::DateTime)
            .ok_or_else(|| invalid("date and time (yyyy-mm-ddThh:mm:ss)", s)),
        Value::DateTime(d) => Ok(Value::DateTime(*d)),
        Value::Date(d) => Ok(Value::DateTime(DateTime {
            local: d.and_time(NaiveTime::MIN),
            zone: None,
        })),
        other => Err(format!("expected string but found {}", other.type_name()).into()),
    }
}

fn date_and_time2(_: &mut Ev, a: &[Value]) -> R {
    let day = match &a[0] {
        Value::Date(d) => *d,
        Value::DateTime(d) => d.local.date(),
        other => return Err(format!("expected date but found {}", other.type_name()).into()),
    };
    match (&a[0], &a[1]) {
        (_, Value::Time(t)) => Ok(Value::DateTime(DateTime {
            local: day.and_time(t.time),
            zone: t.zone,
        })),
        (Value::DateTime(d), Value::String(z)) => {
            let zone = Zone::parse(z).ok_or_else(|| invalid("time zone", z))?;
            match d.utc() {
                Some(utc) => {
                    let ms = utc.and_utc().timestamp_millis();
                    let mut moved =
                        DateTime::at_instant(ms, zone).ok_or("date and time out of range")?;
                    moved.local = moved
                        .local
                        .with_nanosecond_of(d.local)
                        .ok_or("date and time out of range")?;
                    Ok(Value::DateTime(moved))
                }
                None => Ok(Value::DateTime(DateTime {
                    local: d.local,
                    zone: Some(zone),
                })),
            }
        }
        (_, other) => {
            Err(format!("expected time or time zone but found {}", other.type_name()).into())
        }
    }
}

trait KeepNanos {
    fn with_nanosecond_of(self, other: chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime>;
}

impl KeepNanos for chrono::NaiveDateTime {
    fn with_nanosecond_of(self, other: chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime> {
        use chrono::Timelike;
        self.with_nanosecond(other.nanosecond())
    }
}

fn number_of(_: &mut Ev, a: &[Value]) -> R {
    let mut s = text(&a[0])?.to_string();
    if let Some(g) = opt(a, 1) {
        let g = text(g)?;
        if ![" ", ",", "."].contains(&g) {
            return Err("grouping separator must be ' ', ',' or '.'".into());
        }
        s = s.replace(g, "");
    }
    if let Some(d) = opt(a, 2) {
        let d = text(d)?;
        if ![",", "."].contains(&d) {
            return Err("decimal separator must be ',' or '.'".into());
        }
        s = s.replace(d, ".");
    }
    number::parse(&s)
        .map(Value::Number)
        .ok_or_else(|| invalid("number", &s))
}

fn string(_: &mut Ev, a: &[Value]) -> R {
    Ok(match &a[0] {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(s.clone()),
        other => Value::string(other.to_string()),
    })
}

fn duration(_: &mut Ev, a: &[Value]) -> R {
    let s = text(&a[0])?;
    match temporal::parse_duration(s) {
        Some(temporal::Duration::YearMonth(m)) => Ok(Value::YearMonth(m)),
        Some(temporal::Duration::DayTime(d)) => Ok(Value::DayTime(d)),
        None => Err(invalid("duration (e.g. P1DT2H, P1Y2M)", s)),
    }
}

fn years_and_months(_: &mut Ev, a: &[Value]) -> R {
    months_from(&a[0], &a[1])
        .map(Value::YearMonth)
        .ok_or_else(|| "expected two dates or date and times".into())
}

fn from_json(_: &mut Ev, a: &[Value]) -> R {
    let s = text(&a[0])?;
    if s.len() > MAX_JSON_BYTES {
        return Err(format!("JSON text longer than {MAX_JSON_BYTES} bytes").into());
    }
    let j: serde_json::Value =
        serde_json::from_str(s).map_err(|e| Fail::Soft(format!("not JSON: {e}")))?;
    Ok(crate::json::from_json(&j))
}

fn to_json(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::string(crate::json::to_json(&a[0]).to_string()))
}

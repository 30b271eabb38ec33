//! Timer schedules: ISO 8601 dates, durations and repeating cycles, and cron
//! expressions, turned into due times in epoch milliseconds.
//!
//! ```text
//! timeDate      2026-03-01T10:00:00Z | 2026-03-01T10:00:00+01:00   -> once, at that instant
//! timeDuration  PT15S | P1DT2H | P2W | -PT1S (<= 0 fires at once)  -> once, now + duration
//! timeCycle     R5/PT10S | R/P1D | R3/2026-04-27T17:20:00Z/P1D    -> n times (R = forever)
//!               0 0 9-17 * * MON-FRI  (cron: sec min hour day month weekday, UTC)
//! ```
//!
//! Time is never read from a clock: every function takes `now_ms`, the
//! timestamp of the record being processed. Year and month parts of a
//! duration are calendar arithmetic (UTC), as in Zeebe.

use chrono::{DateTime, Datelike, Duration, Months, TimeZone, Timelike, Utc};

/// Most steps the cron search takes before giving up (a cron expression that
/// never matches, e.g. 30 February).
pub const MAX_CRON_SEARCH_STEPS: usize = 10_000;
/// Longest timer expression text accepted.
pub const MAX_TIMER_TEXT_BYTES: usize = 256;

/// Which BPMN timer attribute the expression came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// `timeDate`
    Date,
    /// `timeDuration`
    Duration,
    /// `timeCycle`
    Cycle,
}

/// The interval of a repeating timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interval {
    /// An ISO 8601 duration.
    Iso(IsoDuration),
    /// A cron expression.
    Cron(Box<Cron>),
}

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// First due time.
    pub first_due_ms: i64,
    /// How many times it fires: `-1` forever.
    pub repetitions: i32,
    /// Interval between firings (cycles only).
    pub interval: Option<Interval>,
}

impl Schedule {
    /// Parses `text` (a static value or an evaluated FEEL result) as `kind`,
    /// relative to `now_ms`.
    pub fn parse(kind: TimerKind, text: &str, now_ms: i64) -> Result<Schedule, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the timer expression is empty".into());
        }
        if text.len() > MAX_TIMER_TEXT_BYTES {
            return Err(format!(
                "the timer expression is longer than {MAX_TIMER_TEXT_BYTES} bytes"
            ));
        }
        match kind {
            TimerKind::Date => Ok(Schedule {
                first_due_ms: parse_date(text)?,
                repetitions: 1,
                interval: None,
            }),
            TimerKind::Duration => {
                let d = IsoDuration::parse(text)?;
                Ok(Schedule {
                    first_due_ms: d.add_to(now_ms)?.max(now_ms),
                    repetitions: 1,
                    interval: None,
                })
            }
            TimerKind::Cycle => parse_cycle(text, now_ms),
        }
    }

    /// The due time after `previous_ms` for a repeating schedule.
    pub fn next_after(&self, previous_ms: i64) -> Result<i64, String> {
        match &self.interval {
            Some(Interval::Iso(d)) => d.add_to(previous_ms),
            Some(Interval::Cron(c)) => c.next_after(previous_ms),
            None => Err("the timer does not repeat".into()),
        }
    }
}

pub(crate) fn parse_date(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.timestamp_millis())
        .or_else(|_| {
            // Zeebe also accepts a zone id in brackets: 2026-01-01T10:00:00Z[UTC]
            let plain = text.split('[').next().unwrap_or(text);
            DateTime::parse_from_rfc3339(plain).map(|d| d.timestamp_millis())
        })
        .map_err(|_| {
            format!(
                "'{text}' is not an ISO 8601 date-time with an offset (e.g. 2026-03-01T10:00:00Z)"
            )
        })
}

fn parse_cycle(text: &str, now_ms: i64) -> Result<Schedule, String> {
    if !text.starts_with('R') {
        let cron = Cron::parse(text)?;
        return Ok(Schedule {
            first_due_ms: cron.next_after(now_ms)?,
            repetitions: -1,
            interval: Some(Interval::Cron(Box::new(cron))),
        });
    }
    let parts: Vec<&str> = text.split('/').collect();
    let bad = || {
        format!("'{text}' is not a repeating interval (R5/PT10S, R/P1D, R3/2026-04-27T17:20:00Z/P1D) or a cron expression")
    };
    let repetitions = match &parts[0][1..] {
        "" => -1,
        n => n.parse::<i32>().map_err(|_| bad())?,
    };
    if repetitions == 0 || repetitions < -1 {
        return Err(format!(
            "'{text}': the number of repetitions must be at least 1"
        ));
    }
    let (start_ms, duration) = match parts.as_slice() {
        [_, d] => (None, IsoDuration::parse(d)?),
        [_, start, d] => (Some(parse_date(start)?), IsoDuration::parse(d)?),
        _ => return Err(bad()),
    };
    if duration.add_to(0)? <= 0 {
        return Err(format!(
            "'{text}': the interval of a cycle must be positive"
        ));
    }
    let first_due_ms = match start_ms {
        Some(s) => s,
        None => duration.add_to(now_ms)?,
    };
    Ok(Schedule {
        first_due_ms,
        repetitions,
        interval: Some(Interval::Iso(duration)),
    })
}

/// An ISO 8601 duration (`PnYnMnWnDTnHnMnS`, optionally negative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoDuration {
    negative: bool,
    months: u32,
    millis: i64,
}

impl IsoDuration {
    /// Parses `P1Y2M3DT4H5M6.5S`, `P2W`, `-PT1S`.
    pub fn parse(text: &str) -> Result<IsoDuration, String> {
        let bad = || format!("'{text}' is not an ISO 8601 duration (e.g. PT15S, P1DT2H)");
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let rest = rest.strip_prefix('P').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        let (mut months, mut millis) = (0u32, 0i64);
        let mut in_time = false;
        let mut number = String::new();
        let mut any = false;
        for c in rest.chars() {
            if c == 'T' {
                if in_time || !number.is_empty() {
                    return Err(bad());
                }
                in_time = true;
                continue;
            }
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            if number.is_empty() {
                return Err(bad());
            }
            let value: f64 = number.parse().map_err(|_| bad())?;
            let whole = || -> Result<i64, String> {
                if value.fract() != 0.0 || value > 1e9 {
                    Err(bad())
                } else {
                    Ok(value as i64)
                }
            };
            match (in_time, c) {
                (false, 'Y') => months += (whole()? * 12) as u32,
                (false, 'M') => months += whole()? as u32,
                (false, 'W') => millis += whole()? * 7 * 86_400_000,
                (false, 'D') => millis += whole()? * 86_400_000,
                (true, 'H') => millis += whole()? * 3_600_000,
                (true, 'M') => millis += whole()? * 60_000,
                (true, 'S') => {
                    if value > 1e12 {
                        return Err(bad());
                    }
                    millis += (value * 1000.0).round() as i64
                }
                _ => return Err(bad()),
            }
            number.clear();
            any = true;
        }
        if !number.is_empty() || !any {
            return Err(bad());
        }
        Ok(IsoDuration {
            negative,
            months,
            millis,
        })
    }

    /// `at_ms` plus this duration (calendar months in UTC).
    pub fn add_to(&self, at_ms: i64) -> Result<i64, String> {
        let overflow = || "the timer's due date is out of range".to_string();
        let start = Utc
            .timestamp_millis_opt(at_ms)
            .single()
            .ok_or_else(overflow)?;
        let shifted = if self.negative {
            start
                .checked_sub_months(Months::new(self.months))
                .and_then(|d| d.checked_sub_signed(Duration::milliseconds(self.millis)))
        } else {
            start
                .checked_add_months(Months::new(self.months))
                .and_then(|d| d.checked_add_signed(Duration::milliseconds(self.millis)))
        };
        shifted.map(|d| d.timestamp_millis()).ok_or_else(overflow)
    }
}

/// A cron expression: `second minute hour day-of-month month day-of-week`
/// (Spring/Zeebe style; a five-field expression gets second 0). UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    any_day: bool,
    any_weekday: bool,
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Parses a cron expression.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let fields: Vec<&str> = match fields.len() {
            6 => fields,
            5 => std::iter::once("0").chain(fields).collect(),
            _ => {
                return Err(format!(
                    "'{text}' is not a cron expression (six fields: second minute hour day month weekday) nor an ISO 8601 cycle (R5/PT10S)"
                ))
            }
        };
        let field = |i: usize, min: u32, max: u32, names: &[&str]| {
            parse_cron_field(fields[i], min, max, names)
                .map_err(|e| format!("cron expression '{text}': field {}: {e}", i + 1))
        };
        let seconds = field(0, 0, 59, &[])?;
        let minutes = field(1, 0, 59, &[])?;
        let hours = field(2, 0, 23, &[])? as u32;
        let days = field(3, 1, 31, &[])? as u32;
        let months = field(4, 1, 12, &MONTH_NAMES)? as u16;
        let mut weekdays = field(5, 0, 7, &DAY_NAMES)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Cron {
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays: (weekdays & 0x7f) as u8,
            any_day: matches!(fields[3], "*" | "?"),
            any_weekday: matches!(fields[5], "*" | "?"),
        })
    }

    fn day_matches(&self, d: &DateTime<Utc>) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom && dow,
        }
    }

    /// The first matching second strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Result<i64, String> {
        let never = || "the cron expression never matches".to_string();
        let start = Utc
            .timestamp_millis_opt(after_ms.div_euclid(1000) * 1000 + 1000)
            .single()
            .ok_or_else(never)?;
        let mut t = start;
        for _ in 0..MAX_CRON_SEARCH_STEPS {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = Utc
                    .with_ymd_and_hms(y, m, 1, 0, 0, 0)
                    .single()
                    .ok_or_else(never)?;
                continue;
            }
            if !self.day_matches(&t) {
                t = (t + Duration::days(1))
                    .with_hour(0)
                    .and_then(|x| x.with_minute(0))
                    .and_then(|x| x.with_second(0))
                    .ok_or_else(never)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = (t + Duration::hours(1))
                    .with_minute(0)
                    .and_then(|x| x.with_second(0))
                    .ok_or_else(never)?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t = (t + Duration::minutes(1))
                    .with_second(0)
                    .ok_or_else(never)?;
                continue;
            }
            if self.seconds & (1 << t.second()) == 0 {
                t += Duration::seconds(1);
                continue;
            }
            return Ok(t.timestamp_millis());
        }
        Err(never())
    }
}

fn parse_cron_field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(i as u32 + if min == 1 { 1 } else { 0 });
        }
        let v: u32 = s
            .parse()
            .map_err(|_| format!("'{s}' is not a number or a name"))?;
        if v < min || v > max {
            return Err(format!("{v} is outside {min}..={max}"));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step '{s}'"))?;
                if step == 0 {
                    return Err("a step must be at least 1".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" | "?" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, max),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if lo > hi {
            return Err(format!("range {lo}-{hi} is empty"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        parse_date(text).unwrap()
    }

    #[test]
    fn durations_dates_and_cycles() {
        let now = ms("2026-01-31T10:00:00Z");
        let s = Schedule::parse(TimerKind::Duration, "PT15S", now).unwrap();
        assert_eq!(s.first_due_ms, now + 15_000);
        let s = Schedule::parse(TimerKind::Duration, "P1M", now).unwrap();
        assert_eq!(s.first_due_ms, ms("2026-02-28T10:00:00Z"));
        let s = Schedule::parse(TimerKind::Duration, "P2W", now).unwrap();
        assert_eq!(s.first_due_ms, now + 14 * 86_400_000);
        let s = Schedule::parse(TimerKind::Duration, "-PT1S", now).unwrap();
        assert_eq!(s.first_due_ms, now, "a negative duration fires at once");
        let s = Schedule::parse(TimerKind::Date, "2026-03-01T10:00:00+01:00", now).unwrap();
        assert_eq!(s.first_due_ms, ms("2026-03-01T09:00:00Z"));
        let s = Schedule::parse(TimerKind::Cycle, "R3/PT10S", now).unwrap();
        assert_eq!((s.first_due_ms, s.repetitions), (now + 10_000, 3));
        assert_eq!(s.next_after(s.first_due_ms).unwrap(), now + 20_000);
        let s = Schedule::parse(TimerKind::Cycle, "R/2026-04-27T17:20:00Z/P1D", now).unwrap();
        assert_eq!(
            (s.first_due_ms, s.repetitions),
            (ms("2026-04-27T17:20:00Z"), -1)
        );
        assert_eq!(
            s.next_after(s.first_due_ms).unwrap(),
            ms("2026-04-28T17:20:00Z")
        );
    }

    #[test]
    fn cron_finds_the_next_match() {
        let now = ms("2026-01-02T18:30:00Z"); // a Friday evening
        let s = Schedule::parse(TimerKind::Cycle, "0 0 9-17 * * MON-FRI", now).unwrap();
        assert_eq!(
            s.first_due_ms,
            ms("2026-01-05T09:00:00Z"),
            "next Monday 9:00"
        );
        assert_eq!(
            s.next_after(s.first_due_ms).unwrap(),
            ms("2026-01-05T10:00:00Z")
        );
        let c = Cron::parse("*/15 * * * *").unwrap();
        assert_eq!(c.next_after(now).unwrap(), ms("2026-01-02T18:45:00Z"));
        let c = Cron::parse("0 0 0 1 JAN ?").unwrap();
        assert_eq!(c.next_after(now).unwrap(), ms("2027-01-01T00:00:00Z"));
        assert!(Cron::parse("0 0 0 30 FEB ?")
            .unwrap()
            .next_after(now)
            .is_err());
    }

    #[test]
    fn bad_expressions_are_explained() {
        for (kind, text) in [
            (TimerKind::Duration, "PT"),
            (TimerKind::Duration, "15S"),
            (TimerKind::Duration, "P1.5D"),
            (TimerKind::Date, "tomorrow"),
            (TimerKind::Date, "2026-01-01T10:00:00"),
            (TimerKind::Cycle, "R0/PT1S"),
            (TimerKind::Cycle, "R/PT0S"),
            (TimerKind::Cycle, "0 0 25 * * *"),
            (TimerKind::Cycle, "every day"),
        ] {
            let err = Schedule::parse(kind, text, 0).unwrap_err();
            assert!(!err.is_empty(), "{text}");
        }
    }
}

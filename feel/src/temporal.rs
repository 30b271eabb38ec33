//! Temporal values: times and date-times that are local or carry a fixed
//! offset or an IANA zone (from the embedded chrono-tz database, never from
//! the host), ISO 8601 text in and out, and durations.

use chrono::{
    DateTime as ChronoDateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use std::cmp::Ordering;
use std::fmt::Write;

/// Where a time or date-time is anchored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zone {
    /// A fixed offset from UTC (`Z`, `+02:00`).
    Offset(FixedOffset),
    /// An IANA zone (`@Europe/Berlin`).
    Named(Tz),
}

impl Zone {
    /// Parses `Z`, `+hh:mm`, `-hh:mm`, or an IANA zone id.
    pub fn parse(text: &str) -> Option<Zone> {
        if text == "Z" {
            return Some(Zone::Offset(FixedOffset::east_opt(0)?));
        }
        if text.starts_with(['+', '-']) {
            return parse_offset(text).map(Zone::Offset);
        }
        text.parse::<Tz>().ok().map(Zone::Named)
    }

    /// Offset of this zone at a local date-time (earliest when ambiguous).
    pub fn offset_at(&self, local: &NaiveDateTime) -> FixedOffset {
        match self {
            Zone::Offset(o) => *o,
            Zone::Named(tz) => match tz.offset_from_local_datetime(local).earliest() {
                Some(o) => o.fix(),
                // In a gap: the offset just before it.
                None => tz
                    .offset_from_utc_datetime(&(*local - TimeDelta::hours(3)))
                    .fix(),
            },
        }
    }

    fn suffix(&self, out: &mut String) {
        match self {
            Zone::Offset(o) => out.push_str(&offset_text(*o)),
            Zone::Named(tz) => {
                out.push('@');
                out.push_str(tz.name());
            }
        }
    }
}

fn parse_offset(text: &str) -> Option<FixedOffset> {
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let body = &text[1..];
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h, m),
        None if body.len() == 4 => body.split_at(2),
        None => (body, "0"),
    };
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 18 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn offset_text(o: FixedOffset) -> String {
    let s = o.local_minus_utc();
    if s == 0 {
        return "Z".to_string();
    }
    let sign = if s < 0 { '-' } else { '+' };
    let a = s.abs();
    let mut t = format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60);
    if a % 60 != 0 {
        let _ = write!(t, ":{:02}", a % 60);
    }
    t
}

/// A time of day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Time {
    /// Wall-clock time.
    pub time: NaiveTime,
    /// Anchor, if any.
    pub zone: Option<Zone>,
}

impl Time {
    fn utc_seconds(&self) -> Option<i64> {
        let secs = i64::from(self.time.num_seconds_from_midnight());
        let off = match self.zone? {
            Zone::Offset(o) => o,
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&NaiveDate::default().and_time(self.time))
                .fix(),
        };
        Some(secs - i64::from(off.local_minus_utc()))
    }

    /// Orders two times: local with local, anchored with anchored.
    pub fn compare(&self, other: &Time) -> Option<Ordering> {
        match (self.zone.is_some(), other.zone.is_some()) {
            (false, false) => Some(self.time.cmp(&other.time)),
            (true, true) => Some(
                self.utc_seconds()?
                    .cmp(&other.utc_seconds()?)
                    .then(self.time.nanosecond().cmp(&other.time.nanosecond())),
            ),
            _ => None,
        }
    }

    /// The offset of an anchored time.
    pub fn offset(&self) -> Option<FixedOffset> {
        match self.zone? {
            Zone::Offset(o) => Some(o),
            Zone::Named(tz) => Some(
                tz.offset_from_utc_datetime(&NaiveDate::default().and_time(self.time))
                    .fix(),
            ),
        }
    }

    /// FEEL text: `10:15:30`, `10:15:30+01:00`, `10:15:30@Europe/Paris`.
    pub fn text(&self) -> String {
        let mut s = time_text(&self.time);
        if let Some(z) = &self.zone {
            z.suffix(&mut s);
        }
        s
    }

    /// Parses `hh:mm:ss[.f][Z|±hh:mm|@zone]` (also `hh:mm`, optional leading `T`).
    pub fn parse(text: &str) -> Option<Time> {
        let text = text.strip_prefix('T').unwrap_or(text);
        let (clock, zone) = split_zone(text)?;
        Some(Time {
            time: parse_clock(clock)?,
            zone,
        })
    }
}

fn split_zone(text: &str) -> Option<(&str, Option<Zone>)> {
    if let Some((clock, id)) = text.split_once('@') {
        return Some((clock, Some(Zone::Named(id.parse::<Tz>().ok()?))));
    }
    if let Some(clock) = text.strip_suffix('Z') {
        return Some((clock, Zone::parse("Z")));
    }
    if let Some(i) = text.rfind(['+', '-']) {
        return Some((&text[..i], Some(Zone::Offset(parse_offset(&text[i..])?))));
    }
    Some((text, None))
}

fn parse_clock(text: &str) -> Option<NaiveTime> {
    let b = text.as_bytes();
    let ok = b.len() >= 5
        && b[2] == b':'
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[3..5].iter().all(u8::is_ascii_digit);
    if !ok {
        return None;
    }
    let fmt = match b.len() {
        5 => "%H:%M",
        8 => "%H:%M:%S",
        _ => "%H:%M:%S%.f",
    };
    if text.len() > 8 && b[8] != b'.' {
        return None;
    }
    NaiveTime::parse_from_str(text, fmt).ok()
}

fn time_text(t: &NaiveTime) -> String {
    if t.nanosecond() == 0 {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%H:%M:%S%.f").to_string()
    }
}

/// A date and time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DateTime {
    /// Wall-clock date and time.
    pub local: NaiveDateTime,
    /// Anchor, if any.
    pub zone: Option<Zone>,
}

impl DateTime {
    /// The instant (UTC) of an anchored date-time.
    pub fn utc(&self) -> Option<NaiveDateTime> {
        let z = self.zone?;
        Some(self.local - TimeDelta::seconds(i64::from(z.offset_at(&self.local).local_minus_utc())))
    }

    /// The offset of an anchored date-time.
    pub fn offset(&self) -> Option<FixedOffset> {
        Some(self.zone?.offset_at(&self.local))
    }

    /// Orders two date-times: local with local, anchored by instant.
    pub fn compare(&self, other: &DateTime) -> Option<Ordering> {
        match (self.zone.is_some(), other.zone.is_some()) {
            (false, false) => Some(self.local.cmp(&other.local)),
            (true, true) => Some(self.utc()?.cmp(&other.utc()?)),
            _ => None,
        }
    }

    /// The date-time at a UTC instant (epoch ms) seen in `zone`.
    pub fn at_instant(epoch_ms: i64, zone: Zone) -> Option<DateTime> {
        let utc: ChronoDateTime<Utc> = ChronoDateTime::from_timestamp_millis(epoch_ms)?;
        let local = match zone {
            Zone::Offset(o) => utc.with_timezone(&o).naive_local(),
            Zone::Named(tz) => utc.with_timezone(&tz).naive_local(),
        };
        Some(DateTime {
            local,
            zone: Some(zone),
        })
    }

    /// Moves by a duration, keeping the zone (instant arithmetic for named zones).
    pub fn shift(&self, d: TimeDelta) -> Option<DateTime> {
        match (self.zone, self.utc()) {
            (Some(Zone::Named(tz)), Some(utc)) => {
                let local = tz
                    .from_utc_datetime(&utc.checked_add_signed(d)?)
                    .naive_local();
                Some(DateTime {
                    local,
                    zone: self.zone,
                })
            }
            _ => Some(DateTime {
                local: self.local.checked_add_signed(d)?,
                zone: self.zone,
            }),
        }
    }

    /// FEEL text: `2024-01-01T10:00:00`, with `Z`, `+01:00` or `@Europe/Berlin`.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}T{}",
            date_text(&self.local.date()),
            time_text(&self.local.time())
        );
        if let Some(z) = &self.zone {
            z.suffix(&mut s);
        }
        s
    }

    /// ISO text as Camunda stores it: offset, then `[zone]` for a named zone.
    pub fn iso_text(&self) -> String {
        let mut s = format!(
            "{}T{}",
            date_text(&self.local.date()),
            time_text(&self.local.time())
        );
        match self.zone {
            None => {}
            Some(Zone::Offset(o)) => s.push_str(&offset_text(o)),
            Some(Zone::Named(tz)) => {
                s.push_str(&offset_text(Zone::Named(tz).offset_at(&self.local)));
                let _ = write!(s, "[{}]", tz.name());
            }
        }
        s
    }

    /// Parses `date'T'time[zone]`, or a date alone (midnight).
    pub fn parse(text: &str) -> Option<DateTime> {
        match text.split_once('T') {
            Some((d, t)) => {
                let mut date = parse_date(d)?;
                // `T24:00:00` is the end of the day: the next midnight.
                let t = match t.strip_prefix("24:00:00").or(t.strip_prefix("24:00")) {
                    Some(rest)
                        if !rest.starts_with('.')
                            || rest[1..].trim_start_matches('0').is_empty() =>
                    {
                        date = date.succ_opt()?;
                        format!("00:00:00{}", rest.trim_start_matches(['.', '0']))
                    }
                    _ => t.to_string(),
                };
                let time = Time::parse(&t)?;
                Some(DateTime {
                    local: date.and_time(time.time),
                    zone: time.zone,
                })
            }
            None => Some(DateTime {
                local: parse_date(text)?.and_time(NaiveTime::MIN),
                zone: None,
            }),
        }
    }
}

/// Parses `yyyy-mm-dd` (four or more year digits, optional minus sign).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let mut parts = body.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() < 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    if !(y.bytes().chain(m.bytes()).chain(d.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i32 = y.parse().ok()?;
    NaiveDate::from_ymd_opt(if neg { -y } else { y }, m.parse().ok()?, d.parse().ok()?)
}

/// FEEL text of a date: `2024-01-01`.
pub fn date_text(d: &NaiveDate) -> String {
    if (0..=9999).contains(&d.year()) {
        d.format("%Y-%m-%d").to_string()
    } else {
        format!("{:+05}-{:02}-{:02}", d.year(), d.month(), d.day())
    }
}

/// A parsed ISO 8601 duration.
pub enum Duration {
    /// `P1Y2M`
    YearMonth(i64),
    /// `P1DT2H3M4.5S`
    DayTime(TimeDelta),
}

/// Parses an ISO 8601 duration; a mix of year/month and day/time parts is invalid.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let body = body.strip_prefix('P')?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (body, None),
    };
    if date_part.is_empty() && time_part.is_none() {
        return None;
    }
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut ym = false;
    let mut dt = time_part.is_some();
    for (num, unit) in units(date_part)? {
        let n: i64 = num.parse().ok()?;
        match unit {
            'Y' => {
                months = months.checked_add(n.checked_mul(12)?)?;
                ym = true;
            }
            'M' => {
                months = months.checked_add(n)?;
                ym = true;
            }
            'W' => {
                days = days.checked_add(n.checked_mul(7)?)?;
                dt = true;
            }
            'D' => {
                days = days.checked_add(n)?;
                dt = true;
            }
            _ => return None,
        }
    }
    if ym && dt {
        return None;
    }
    if ym {
        return Some(Duration::YearMonth(if neg { -months } else { months }));
    }
    let mut total = TimeDelta::try_days(days)?;
    for (num, unit) in units(time_part.unwrap_or(""))? {
        let part = match unit {
            'H' => TimeDelta::try_hours(num.parse().ok()?)?,
            'M' => TimeDelta::try_minutes(num.parse().ok()?)?,
            'S' => seconds(num)?,
            _ => return None,
        };
        total = total.checked_add(&part)?;
    }
    Some(Duration::DayTime(if neg { -total } else { total }))
}

fn seconds(num: &str) -> Option<TimeDelta> {
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    TimeDelta::try_seconds(whole.parse().ok()?)?.checked_add(&TimeDelta::nanoseconds(nanos))
}

fn units(text: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_alphabetic() {
            let num = &text[start..i];
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            out.push((num, c));
            start = i + 1;
        }
    }
    (start == text.len()).then_some(out)
}

/// ISO text of a years-and-months duration: `P1Y2M`, `P0Y`, `-P1Y`.
pub fn year_month_text(months: i64) -> String {
    let sign = if months < 0 { "-" } else { "" };
    let m = months.unsigned_abs();
    let (y, m) = (m / 12, m % 12);
    match (y, m) {
        (0, 0) => "P0Y".to_string(),
        (0, m) => format!("{sign}P{m}M"),
        (y, 0) => format!("{sign}P{y}Y"),
        (y, m) => format!("{sign}P{y}Y{m}M"),
    }
}

/// ISO text of a days-and-time duration: `P1DT2H`, `P0D`, `-PT1.5S`.
pub fn day_time_text(d: &TimeDelta) -> String {
    let sign = if *d < TimeDelta::zero() { "-" } else { "" };
    let a = d.abs();
    let secs = a.num_seconds();
    let nanos = a.subsec_nanos();
    if secs == 0 && nanos == 0 {
        return "P0D".to_string();
    }
    let (days, h, m, s) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    let mut out = format!("{sign}P");
    if days > 0 {
        let _ = write!(out, "{days}D");
    }
    if h > 0 || m > 0 || s > 0 || nanos > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            let _ = write!(out, "{h}H");
        }
        if m > 0 {
            let _ = write!(out, "{m}M");
        }
        if s > 0 || nanos > 0 || (h == 0 && m == 0) {
            if nanos > 0 {
                let frac = format!("{nanos:09}");
                let _ = write!(out, "{s}.{}S", frac.trim_end_matches('0'));
            } else {
                let _ = write!(out, "{s}S");
            }
        }
    }
    out
}

/// Adds months with day-of-month clamping (Jan 31 + 1 month = Feb 28/29).
pub fn add_months(d: NaiveDate, months: i64) -> Option<NaiveDate> {
    let m = chrono::Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 {
        d.checked_add_months(m)
    } else {
        d.checked_sub_months(m)
    }
}

/// Whole months from `a` to `b` (negative when `b` is earlier).
pub fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    let mut months =
        i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month());
    let a_rest = (a.day(), a.time());
    let b_rest = (b.day(), b.time());
    if months > 0 && b_rest < a_rest {
        months -= 1;
    } else if months < 0 && b_rest > a_rest {
        months += 1;
    }
    months
}

//! Times: the store keeps epoch milliseconds (UTC); the API speaks RFC 3339.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `ms` since the epoch as RFC 3339 in UTC with milliseconds
/// (`2026-01-02T03:04:05.678Z`).
pub fn format_ms(ms: i64) -> String {
    let whole = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok());
    match whole {
        // Whole seconds format as `...:05Z`; the API shows milliseconds.
        Some(text) => format!("{}.{:03}Z", text.trim_end_matches('Z'), ms.rem_euclid(1000)),
        None => ms.to_string(),
    }
}

/// An RFC 3339 date-time as epoch milliseconds.
pub fn parse_ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_with_milliseconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_767_322_245_678), "2026-01-02T02:50:45.678Z");
        assert_eq!(format_ms(1_767_322_245_600), "2026-01-02T02:50:45.600Z");
        assert_eq!(
            parse_ms("2026-01-02T02:50:45.678Z"),
            Some(1_767_322_245_678)
        );
        assert_eq!(
            parse_ms("2026-01-02T03:50:45.678+01:00"),
            Some(1_767_322_245_678)
        );
        assert_eq!(parse_ms("yesterday"), None);
    }
}

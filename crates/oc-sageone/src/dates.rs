//! Instants as CEQL and Sage write them: `2024-01-31` (midnight UTC), `2024-01-31T12:00:00Z`, offsets, fractions
//! of a second, or no zone at all (UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// The instant `s` denotes, when it looks like a date or a date-time.
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    // Cheap rejection first: the local evaluation asks this of every string it compares.
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    if b.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|n| n.and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for mask in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, mask) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for mask in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, mask) {
            return Some(t.and_utc());
        }
    }
    None
}

/// `t` as Sage's query parameters take it: UTC, whole seconds, `Z` (`2019-03-25T15:31:02Z`).
pub(crate) fn format_sage(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `t` without its fraction of a second.
pub(crate) fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        assert_eq!(parse_instant(input).map(format_sage_ms).as_deref(), expected, "{input}");
    }

    fn format_sage_ms(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    #[test]
    fn instants() {
        check("2024-01-31", Some("2024-01-31T00:00:00.000Z"));
        check("2024-01-31T12:00:00Z", Some("2024-01-31T12:00:00.000Z"));
        check("2024-01-31T12:00:00.250+01:00", Some("2024-01-31T11:00:00.250Z"));
        check("2024-01-31T12:00:00+0100", Some("2024-01-31T11:00:00.000Z"));
        check("2024-01-31 12:00:00", Some("2024-01-31T12:00:00.000Z"));
        check("2024-01-31T12:00", Some("2024-01-31T12:00:00.000Z"));
        check("2024-02-30", None);
        check("2024-01-31T25:00:00Z", None);
        check("yesterday", None);
        check("${date:yyyy}", None);
        check("12", None);
        assert_eq!(format_sage(parse_instant("2019-03-25T15:31:02.9Z").unwrap()), "2019-03-25T15:31:02Z");
        assert_eq!(format_sage(floor_second(parse_instant("2019-03-25T15:31:02.9Z").unwrap())), "2019-03-25T15:31:02Z");
    }
}

//! Instants as CEQL literals and JSON records write them: `2024-01-31` (midnight UTC), `2024-01-31T12:00:00Z`,
//! offsets, fractions of a second, or no zone at all (UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// The instant `s` denotes, when it looks like a date or a date-time: `2024-01-31` (midnight UTC), RFC 3339
/// (`2024-01-31T12:00:00.250+01:00`), an offset without a colon (`+0100`), a space for the `T`, no seconds
/// (`2024-01-31T12:00`) or no zone at all (UTC). Anything else, and dates that do not exist, are `None`.
///
/// ```
/// let t = oc_ceql::parse_instant("2024-01-31T12:00:00+01:00").unwrap();
/// assert_eq!(t.to_rfc3339(), "2024-01-31T11:00:00+00:00");
/// assert_eq!(oc_ceql::parse_instant("2024-02-30"), None);
/// ```
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
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

#[cfg(test)]
mod tests {
    use chrono::SecondsFormat;

    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        let got = parse_instant(input).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
        assert_eq!(got.as_deref(), expected, "{input}");
    }

    #[test]
    fn instants() {
        check("2024-01-31", Some("2024-01-31T00:00:00.000Z"));
        check("2024-01-31T12:00:00Z", Some("2024-01-31T12:00:00.000Z"));
        check("2024-01-31T12:00:00.250+01:00", Some("2024-01-31T11:00:00.250Z"));
        check("2024-01-31T12:00:00+0100", Some("2024-01-31T11:00:00.000Z"));
        check("2024-01-31 12:00:00", Some("2024-01-31T12:00:00.000Z"));
        check("2024-01-31T12:00", Some("2024-01-31T12:00:00.000Z"));
        check("2019-03-25T15:31:02.9Z", Some("2019-03-25T15:31:02.900Z"));
        check("2024-02-30", None);
        check("2024-01-31T25:00:00Z", None);
        check("yesterday", None);
        check("${date:yyyy}", None);
        check("12", None);
        check("2024-01-3é", None);
    }
}

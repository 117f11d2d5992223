//! Timestamps as Sage writes and reads them: UTC with second precision on output; dates or date-times (with `Z`,
//! an offset or no zone) in query parameters; HTTP dates for the `Date` header.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Utc};

/// `2019-03-25T15:31:02Z`.
pub(crate) fn format(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2019-03-25`.
pub(crate) fn format_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The instant cut to whole seconds: Sage stores no fractions.
pub(crate) fn second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

/// `Mon, 25 Mar 2019 15:31:02 GMT`.
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Parses a query parameter value: `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDT(+|-)hh:mm` (midnight at that
/// offset), or a date-time `YYYY-MM-DDThh:mm[:ss[.fff]]` followed by `Z`, an offset `(+|-)hh:mm`, or nothing (UTC).
pub(crate) fn parse_query(value: &str) -> Option<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    if let Some((date, zone)) = v
        .split_once("T+")
        .map(|(d, z)| (d, format!("+{z}")))
        .or_else(|| v.split_once("T-").filter(|(_, z)| z.len() == 5).map(|(d, z)| (d, format!("-{z}"))))
    {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let offset = parse_offset(&zone)?;
        return offset.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).single().map(|t| t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z"] {
        if let Ok(t) = DateTime::parse_from_str(v, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let naive = v.strip_suffix('Z').unwrap_or(v);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

fn parse_offset(zone: &str) -> Option<FixedOffset> {
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = zone.get(1..)?.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    FixedOffset::east_opt(sign * secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        assert_eq!(parse_query(input).map(format), expected.map(str::to_owned), "{input}");
    }

    #[test]
    fn parses_the_forms_sage_documents() {
        check("2019-03-25", Some("2019-03-25T00:00:00Z"));
        check("2019-03-25T15:31:02Z", Some("2019-03-25T15:31:02Z"));
        check("2019-03-25T15:31:02+01:00", Some("2019-03-25T14:31:02Z"));
        check("2019-03-25T15:31:02-05:30", Some("2019-03-25T21:01:02Z"));
        check("2019-03-25T15:31:02", Some("2019-03-25T15:31:02Z"));
        check("2019-03-25T15:31", Some("2019-03-25T15:31:00Z"));
        check("2019-03-25T15:31+02:00", Some("2019-03-25T13:31:00Z"));
        check("2019-03-25T+01:00", Some("2019-03-24T23:00:00Z"));
        check("2019-03-25T-01:00", Some("2019-03-25T01:00:00Z"));
        check("2019-03-25T15:31:02 01:00", None);
        check("yesterday", None);
        check("", None);
        check("2019-13-01", None);
        assert_eq!(parse_query("2019-03-25T15:31:02.500Z").map(|t| t.timestamp_subsec_millis()), Some(500));
    }

    #[test]
    fn formats_utc_seconds_and_http_dates() {
        let t: DateTime<Utc> = "2019-03-25T15:31:02.987Z".parse().expect("t");
        assert_eq!(format(second(t)), "2019-03-25T15:31:02Z");
        assert_eq!(second(t).timestamp_subsec_nanos(), 0);
        assert_eq!(http_date(t), "Mon, 25 Mar 2019 15:31:02 GMT");
        assert_eq!(format_date(t), "2019-03-25");
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse_query(&s);
        }

        #[test]
        fn formatted_timestamps_parse_back(secs in 0i64..4_000_000_000) {
            let t = Utc.timestamp_opt(secs, 0).single().expect("t");
            proptest::prop_assert_eq!(parse_query(&format(t)), Some(t));
        }
    }
}

//! Instants as Sage's query parameters take them. Reading an instant is CEQL's
//! ([`oc_ceql::parse_instant`]); writing one for Sage is this provider's.

use chrono::{DateTime, SecondsFormat, Utc};

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
    use oc_ceql::parse_instant;

    use super::*;

    #[test]
    fn instants_for_sage() {
        assert_eq!(format_sage(parse_instant("2019-03-25T15:31:02.9Z").unwrap()), "2019-03-25T15:31:02Z");
        assert_eq!(format_sage(floor_second(parse_instant("2019-03-25T15:31:02.9Z").unwrap())), "2019-03-25T15:31:02Z");
        assert_eq!(format_sage(parse_instant("2024-01-31T12:00:00.250+01:00").unwrap()), "2024-01-31T11:00:00Z");
    }
}

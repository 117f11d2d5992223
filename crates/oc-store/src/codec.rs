//! How values are written to the database and read back: instants, statuses, JSON.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use oc_model::ports::{NotificationStatus, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::corrupt;

/// An instant compared in SQL: nanoseconds since the Unix epoch, saturating outside 1677–2262.
pub(crate) fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// The instant of [`ns`].
pub(crate) fn from_ns(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(v)
}

/// An instant kept exactly: RFC 3339 with nanoseconds.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The instant of [`time_text`].
pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format_args!("instant {s:?}: {e}")))
}

/// `now + ttl`, saturating.
pub(crate) fn after(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(ttl).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A count as stored.
pub(crate) fn count(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored count read back.
pub(crate) fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Database(format!("cannot encode a value as JSON: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(format_args!("{what}: {e}")))
}

pub(crate) fn status_text(s: NotificationStatus) -> &'static str {
    match s {
        NotificationStatus::Pending => "pending",
        NotificationStatus::Delivering => "delivering",
        NotificationStatus::Delivered => "delivered",
        NotificationStatus::Failed => "failed",
        NotificationStatus::Dropped => "dropped",
        NotificationStatus::Withheld => "withheld",
    }
}

pub(crate) fn parse_status(s: &str) -> Result<NotificationStatus, StoreError> {
    Ok(match s {
        "pending" => NotificationStatus::Pending,
        "delivering" => NotificationStatus::Delivering,
        "delivered" => NotificationStatus::Delivered,
        "failed" => NotificationStatus::Failed,
        "dropped" => NotificationStatus::Dropped,
        "withheld" => NotificationStatus::Withheld,
        other => return Err(corrupt(format_args!("notification status {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn saturating_instants() {
        assert_eq!(ns(DateTime::<Utc>::MAX_UTC), i64::MAX);
        assert_eq!(ns(DateTime::<Utc>::MIN_UTC), i64::MIN);
        assert_eq!(after(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(after(from_ns(0), Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            NotificationStatus::Pending,
            NotificationStatus::Delivering,
            NotificationStatus::Delivered,
            NotificationStatus::Failed,
            NotificationStatus::Dropped,
            NotificationStatus::Withheld,
        ] {
            assert_eq!(parse_status(status_text(s)).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), status_text(s), "same spelling as the API");
        }
        assert!(parse_status("lost").is_err());
    }

    proptest! {
        #[test]
        fn instants_round_trip(secs in -8_000_000_000i64..8_000_000_000, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            prop_assert_eq!(parse_time(&time_text(t)).unwrap(), t);
            if t.timestamp_nanos_opt().is_some() {
                prop_assert_eq!(from_ns(ns(t)), t);
            }
        }
    }
}

//! Reading a record's id and dates: dotted field paths, Java masks (through `oc-template`) and a fast ISO 8601
//! reader for the common ISO 8601 format (`2019-03-25T15:31:02Z`) when no mask is configured.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;

/// A dotted field path (`user.id`), split once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    segments: Vec<String>,
}

impl FieldPath {
    /// Splits `path` at dots.
    pub fn new(path: &str) -> Self {
        FieldPath { segments: path.split('.').map(str::to_owned).collect() }
    }

    /// The path as written.
    pub fn as_string(&self) -> String {
        self.segments.join(".")
    }

    /// The value at this path, when present and not null.
    #[inline]
    pub fn get<'v>(&self, record: &'v Value) -> Option<&'v Value> {
        self.get_or_null(record).filter(|v| !v.is_null())
    }

    /// The value at this path in `record`, `null` included (`None`: the path is not there).
    pub fn get_or_null<'v>(&self, record: &'v Value) -> Option<&'v Value> {
        let mut cur = record;
        for s in &self.segments {
            cur = cur.as_object()?.get(s.as_str())?;
        }
        Some(cur)
    }

    /// The record id at this path: a string, or a number written as text.
    #[inline]
    pub fn id<'v>(&self, record: &'v Value) -> Result<Cow<'v, str>, &'static str> {
        match self.get(record) {
            None => Err("missing"),
            Some(Value::String(s)) if s.is_empty() => Err("empty"),
            Some(Value::String(s)) => Ok(Cow::Borrowed(s)),
            Some(Value::Number(n)) => Ok(Cow::Owned(n.to_string())),
            Some(_) => Err("not a string or a number"),
        }
    }
}

/// How a date field is read.
#[derive(Debug, Clone)]
pub enum DateFormat {
    /// ISO 8601 / RFC 3339 (`2019-03-25T15:31:02Z`, `2019-03-25T15:31:02.5+01:00`, `2019-03-25`); a date-time
    /// without offset is UTC.
    Iso,
    /// A Java `SimpleDateFormat` mask with the zone used when the text carries none.
    Mask {
        /// The compiled mask.
        mask: oc_template::Mask,
        /// The zone.
        zone: oc_template::Zone,
        /// The mask as written, for messages.
        source: String,
        /// The mask is `yyyy-MM-dd'T'HH:mm:ss'Z'` in UTC: a fast path reads its exact shape.
        utc_seconds: bool,
    },
}

impl DateFormat {
    /// A Java mask read in `zone` (default GMT) when the text has no zone of its own.
    /// Two-digit years (`yy`) read into the 100 years starting 80 years before `now` (the engine's clock), as Java.
    pub fn mask(mask: &str, zone: Option<&str>, now: DateTime<Utc>) -> Result<DateFormat, String> {
        let compiled = oc_template::Mask::compile(mask)
            .map_err(|e| format!("date mask {mask:?}: {e}"))?
            .with_two_digit_year_start(oc_template::two_digit_year_start(now));
        let zone_name = zone.unwrap_or("GMT");
        let zone = oc_template::Zone::parse(zone_name).map_err(|e| format!("timezone {zone_name:?}: {e}"))?;
        Ok(DateFormat::with_mask(compiled, zone, mask, zone_name))
    }

    /// A compiled mask read in `zone` (named `zone_name`) when the text has no zone of its own; `source` is the
    /// mask as written.
    pub fn with_mask(mask: oc_template::Mask, zone: oc_template::Zone, source: &str, zone_name: &str) -> DateFormat {
        // ISO in whole seconds and UTC: read the exact shape directly, the mask only when that fails
        let utc_seconds =
            source == ISO_SECONDS_MASK && matches!(zone_name, "GMT" | "UTC" | "Z" | "Etc/UTC" | "Etc/GMT");
        DateFormat::Mask { mask, zone, source: source.to_owned(), utc_seconds }
    }

    /// Reads `text`.
    pub fn parse(&self, text: &str) -> Option<DateTime<Utc>> {
        match self {
            DateFormat::Iso => parse_iso(text),
            DateFormat::Mask { mask, zone, utc_seconds, .. } => {
                if *utc_seconds && let Some(d) = parse_seconds_z(text) {
                    return Some(d);
                }
                mask.parse(text, zone).ok()
            }
        }
    }

    /// How the format is described in warnings.
    pub fn describe(&self) -> String {
        match self {
            DateFormat::Iso => "ISO 8601".into(),
            DateFormat::Mask { source, .. } => format!("mask {source:?}"),
        }
    }
}

/// Open Connectors' default mask: ISO 8601 in whole seconds, UTC (what many providers write).
const ISO_SECONDS_MASK: &str = "yyyy-MM-dd'T'HH:mm:ss'Z'";

/// Exactly `YYYY-MM-DDTHH:MM:SSZ` from year 1600 on (what that mask accepts there), else `None`.
fn parse_seconds_z(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let year = digits(&b[0..4])? as i32;
    if year < 1600 {
        // Java's calendar is Julian before 1582: leave old dates to the mask
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, digits(&b[5..7])?, digits(&b[8..10])?)?;
    let time = date.and_hms_opt(digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?)?;
    Some(Utc.from_utc_datetime(&time))
}

/// Reads ISO 8601 text leniently, also numbers of epoch milliseconds; `None` when it is none of these.
pub(crate) fn parse_lenient(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => parse_iso(s),
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// ISO 8601 date or date-time; the fast path reads `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
pub(crate) fn parse_iso(text: &str) -> Option<DateTime<Utc>> {
    let b = text.trim().as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(&b[0..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)?;
    if b.len() == 10 {
        return Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?));
    }
    if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, s) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    let mut i = 19;
    let mut nanos = 0u32;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (oh, om) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
                _ => return None,
            };
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let naive = date.and_hms_nano_opt(h, m, s, nanos)?;
    Some(Utc.from_utc_datetime(&naive) - chrono::Duration::seconds(offset_secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(text: &str, expected: Option<&str>) {
        let got = parse_iso(text).map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        assert_eq!(got.as_deref(), expected, "{text}");
    }

    #[test]
    fn iso_forms() {
        check("2019-03-25T15:31:02Z", Some("2019-03-25T15:31:02Z"));
        check("2019-03-25T15:31:02", Some("2019-03-25T15:31:02Z"));
        check("2019-03-25 15:31:02", Some("2019-03-25T15:31:02Z"));
        check("2019-03-25T15:31:02.5Z", Some("2019-03-25T15:31:02.500Z"));
        check("2019-03-25T15:31:02.123456789123Z", Some("2019-03-25T15:31:02.123456789Z"));
        check("2019-03-25T15:31:02+01:00", Some("2019-03-25T14:31:02Z"));
        check("2019-03-25T15:31:02-0530", Some("2019-03-25T21:01:02Z"));
        check("2019-03-25", Some("2019-03-25T00:00:00Z"));
        check("2019-02-30", None);
        check("2019-03-25T25:31:02Z", None);
        check("2019-03-25T15:31:02.Z", None);
        check("2019-03-25T15:31:02 junk", None);
        check("yesterday", None);
        check("", None);
        check("２０１９-03-25", None);
    }

    #[test]
    fn the_fast_path_agrees_with_the_mask() {
        let fast = DateFormat::mask("yyyy-MM-dd'T'HH:mm:ss'Z'", None, Utc::now()).unwrap();
        let mask = oc_template::Mask::compile("yyyy-MM-dd'T'HH:mm:ss'Z'").unwrap();
        let gmt = oc_template::Zone::parse("GMT").unwrap();
        for t in [
            "2019-03-25T15:31:02Z",
            "2024-02-29T23:59:59Z",
            "2023-02-29T00:00:00Z",
            "2019-03-25T24:00:00Z",
            "2019-03-25T15:31:60Z",
            "2019-3-25T15:31:02Z",
            "2019-03-25T15:31:02",
            "2019-03-25T15:31:02+01:00",
            "0999-01-01T00:00:00Z",
        ] {
            assert_eq!(fast.parse(t), mask.parse(t, &gmt).ok(), "{t}");
        }
    }

    #[test]
    fn paths_and_ids() {
        let r = json!({"id": "a", "n": 7, "user": {"id": "u1"}, "z": null, "o": {}});
        assert_eq!(FieldPath::new("id").id(&r).unwrap(), "a");
        assert_eq!(FieldPath::new("n").id(&r).unwrap(), "7");
        assert_eq!(FieldPath::new("user.id").id(&r).unwrap(), "u1");
        assert_eq!(FieldPath::new("z").id(&r), Err("missing"));
        assert_eq!(FieldPath::new("o").id(&r), Err("not a string or a number"));
        assert_eq!(FieldPath::new("id.x").id(&r), Err("missing"));
        assert_eq!(parse_lenient(&json!(1_553_527_862_000i64)).unwrap().to_rfc3339(), "2019-03-25T15:31:02+00:00");
    }
}

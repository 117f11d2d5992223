//! Open Connectors poller URL placeholders (`${date:MASK}` and friends) and Java `SimpleDateFormat` masks,
//! formatted and parsed as `java.text.SimpleDateFormat` (Locale.US) does.
//!
//! Open Connectors ran on Java, so users' masks mean what Java makes of them; a mask that renders one
//! character differently here silently skips or floods changes. This crate reproduces Java 17 to the
//! character and is tested against vectors generated with Java itself (`java/GenVectors.java`,
//! `tests/data/java-vectors.tsv`). It does no I/O and knows no other ocpoll crate.
//!
//! - [`Template`]: a poller `url` parsed once, rendered with the last poll time
//!   ([`render`](Template::render), [`render_into`](Template::render_into)), and the instant its truncated
//!   placeholders denote ([`effective_lower_bound`](Template::effective_lower_bound)).
//! - [`Mask`]: a compiled `SimpleDateFormat` pattern: [`format`](Mask::format),
//!   [`format_into`](Mask::format_into) and non-lenient [`parse`](Mask::parse).
//! - [`Zone`]: zone ids resolved as `java.util.TimeZone.getTimeZone` does (IANA via `chrono-tz`, `GMT`,
//!   `UTC`, `GMT±hh:mm`, Java's three-letter ids), plus `-8:00` / `+05:30` offsets.
//! - [`format_rfc3339_utc`]: the instant as RFC 3339 UTC text, as `ocpoll template parse-date` prints it.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use oc_template::{format_rfc3339_utc, Mask, Template, Zone};
//!
//! let url = Template::parse("/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'")?;
//! let last_poll = Utc.with_ymd_and_hms(2019, 3, 25, 15, 31, 2).unwrap();
//! assert_eq!(url.render(last_poll), "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z'");
//!
//! let mask = Mask::compile("dd/MM/yyyy HH:mm:ss.SSS")?;
//! let updated = mask.parse("25/07/2019 16:31:02.120", &Zone::parse("Europe/London")?)?; // BST
//! assert_eq!(format_rfc3339_utc(updated), "2019-07-25T15:31:02.120Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Differences from Java, on purpose
//!
//! - Parsing rejects text after a complete match (Java ignores it): `2024-01-01x` is not a `yyyy-MM-dd`.
//! - A zone id Java does not know is an error; Java silently uses GMT. `-8:00` and `+05:30` are read as
//!   the offsets they spell (Java: GMT).
//! - Instants are `chrono` instants (years −262143 to 262142); a date outside that range is a parse error.
//! - Zone names (`z` parsing) are looked up with UTC as Java's default zone, whatever the machine's zone.
//!
//! Like Java's `java.util.TimeZone`, offsets before 1900 are the zone's current standard offset (no local
//! mean time), and dates before 1582-10-15 are Julian.
//!
//! # Fuzzing
//!
//! The workspace's `fuzz/` holds the `template` target for the template parser, mask compiler, date parser
//! and zone ids (`docs/fuzzing.md`); `cargo xtask ci` runs it briefly, and for longer:
//!
//! ```text
//! cargo xtask fuzz --time 300 template
//! ```

#![deny(missing_docs)]

mod calendar;
mod error;
mod mask;
mod number;
mod parse;
mod template;
mod zone;
mod zone_data;

pub use error::{
    MaskError, MaskErrorKind, ParseError, ParseErrorKind, TemplateError, TemplateErrorKind, ZoneError, ZoneErrorKind,
};
pub use mask::{Mask, Precision, two_digit_year_start};
pub use template::{DEFAULT_DATE_MASK, EpochUnit, Placeholder, Template};
pub use zone::Zone;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// RFC 3339 text of an instant in UTC with `Z`, with fractional seconds only when they are not zero:
/// milliseconds (3 digits) when the instant has no finer part, else microseconds (6) or nanoseconds (9).
/// Years outside 0000-9999 get a sign and at least four digits (`-0044`, `+12345`).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oc_template::format_rfc3339_utc;
///
/// let t = Utc.with_ymd_and_hms(2019, 3, 25, 15, 31, 2).unwrap();
/// assert_eq!(format_rfc3339_utc(t), "2019-03-25T15:31:02Z");
/// assert_eq!(format_rfc3339_utc(t + chrono::TimeDelta::milliseconds(120)), "2019-03-25T15:31:02.120Z");
/// ```
pub fn format_rfc3339_utc(instant: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(32);
    let year = i64::from(instant.year());
    if !(0..=9999).contains(&year) {
        out.push(if year < 0 { '-' } else { '+' });
    }
    mask::pad(&mut out, year.abs(), 4);
    let mut nanos = instant.nanosecond();
    let mut second = instant.second();
    if nanos >= 1_000_000_000 {
        // chrono's leap second representation
        nanos -= 1_000_000_000;
        second += 1;
    }
    for (sep, v) in
        [('-', instant.month()), ('-', instant.day()), ('T', instant.hour()), (':', instant.minute()), (':', second)]
    {
        out.push(sep);
        mask::pad(&mut out, i64::from(v), 2);
    }
    if nanos != 0 {
        out.push('.');
        let (v, digits) = if nanos.is_multiple_of(1_000_000) {
            (nanos / 1_000_000, 3)
        } else if nanos.is_multiple_of(1000) {
            (nanos / 1000, 6)
        } else {
            (nanos, 9)
        };
        mask::pad(&mut out, i64::from(v), digits);
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn check(instant: DateTime<Utc>, expected: &str) {
        assert_eq!(format_rfc3339_utc(instant), expected);
    }

    #[test]
    fn rfc3339() {
        let t = Utc.with_ymd_and_hms(2019, 3, 25, 15, 31, 2).unwrap();
        check(t, "2019-03-25T15:31:02Z");
        check(t + chrono::TimeDelta::milliseconds(120), "2019-03-25T15:31:02.120Z");
        check(t + chrono::TimeDelta::microseconds(120_001), "2019-03-25T15:31:02.120001Z");
        check(t + chrono::TimeDelta::nanoseconds(5), "2019-03-25T15:31:02.000000005Z");
        check(Utc.with_ymd_and_hms(-43, 3, 15, 12, 0, 0).unwrap(), "-0043-03-15T12:00:00Z");
        check(Utc.with_ymd_and_hms(12345, 1, 1, 0, 0, 0).unwrap(), "+12345-01-01T00:00:00Z");
        check(DateTime::<Utc>::MIN_UTC, "-262143-01-01T00:00:00Z");
    }
}

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

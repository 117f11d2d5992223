//! Time zones resolved the way `java.util.TimeZone.getTimeZone` resolves them, with the offsets Java's
//! `TimeZone` implementation uses, except that an unknown id is an error instead of a silent GMT.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::{GapInfo, OffsetComponents, Tz};

use crate::error::{ZoneError, ZoneErrorKind};
use crate::zone_data::ZONE_NAMES;

/// 1900-01-01T00:00:00Z in milliseconds. Java's `ZoneInfo` keeps no history before it: earlier instants use
/// the zone's current standard offset and no daylight saving.
const UTC_1900_MS: i64 = -2_208_988_800_000;
const HOUR_MS: i32 = 3_600_000;

/// Java's old three-letter ids (`ZoneId.SHORT_IDS`, which `TimeZone.getTimeZone` follows) that name a
/// region zone. `EST`, `MST` and `HST` are fixed offsets and handled apart.
const SHORT_IDS: &[(&str, &str)] = &[
    ("ACT", "Australia/Darwin"),
    ("AET", "Australia/Sydney"),
    ("AGT", "America/Argentina/Buenos_Aires"),
    ("ART", "Africa/Cairo"),
    ("AST", "America/Anchorage"),
    ("BET", "America/Sao_Paulo"),
    ("BST", "Asia/Dhaka"),
    ("CAT", "Africa/Harare"),
    ("CNT", "America/St_Johns"),
    ("CST", "America/Chicago"),
    ("CTT", "Asia/Shanghai"),
    ("EAT", "Africa/Addis_Ababa"),
    ("ECT", "Europe/Paris"),
    ("IET", "America/Indiana/Indianapolis"),
    ("IST", "Asia/Kolkata"),
    ("JST", "Asia/Tokyo"),
    ("MIT", "Pacific/Apia"),
    ("NET", "Asia/Yerevan"),
    ("NST", "Pacific/Auckland"),
    ("PLT", "Asia/Karachi"),
    ("PNT", "America/Phoenix"),
    ("PRT", "America/Puerto_Rico"),
    ("PST", "America/Los_Angeles"),
    ("SST", "Pacific/Guadalcanal"),
    ("VST", "Asia/Ho_Chi_Minh"),
];

/// A time zone: an IANA region (rules from `chrono-tz`) or a fixed offset, with the id and the English
/// names Java prints for it.
///
/// ```
/// use oc_template::Zone;
///
/// assert_eq!(Zone::parse("PST")?.id(), "PST"); // America/Los_Angeles rules, daylight saving included
/// assert_eq!(Zone::parse("GMT+5")?.id(), "GMT+05:00");
/// assert_eq!(Zone::parse("-8:00")?.id(), "GMT-08:00"); // Java would silently use GMT here
/// assert!(Zone::parse("Mars/Olympus").is_err()); // Java would silently use GMT here
/// # Ok::<(), oc_template::ZoneError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    id: Box<str>,
    rules: Rules,
    names: Names,
    dst_savings: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rules {
    /// Total offset in milliseconds, never daylight saving.
    Fixed(i32),
    /// `raw_last`: the current standard offset (ms), used before 1900 as Java does; `wall_1900`: the local
    /// time (ms) of 1900-01-01T00:00Z, below which local times resolve with `raw_last`; `negative_dst`: the
    /// tz database describes the zone with negative daylight saving (Irish winter time), which Java's data
    /// turns around (GMT standard, IST daylight saving); `dst_2037`: the zone still observes daylight saving
    /// at the end of the data Java keeps, so later years repeat its rules.
    Region { tz: Tz, raw_last: i32, wall_1900: i64, negative_dst: bool, dst_2037: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Names {
    /// Short standard, short daylight, long standard, long daylight, as Java prints them.
    Table(&'static [&'static str; 4]),
    /// Custom offset zones: Java prints the id (`GMT-08:00`).
    Id,
    /// A zone Java does not know: `GMT±hh:mm` of the offset in effect.
    Offset,
}

/// Offsets in effect: standard (raw) and daylight saving part, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Offsets {
    pub(crate) raw: i32,
    pub(crate) dst: i32,
}

impl Offsets {
    pub(crate) fn total(self) -> i32 {
        self.raw + self.dst
    }
}

impl Zone {
    /// GMT, the default zone of Open Connectors masks.
    pub fn gmt() -> Zone {
        Zone::fixed("GMT", 0)
    }

    /// UTC (same offset as GMT; Java names it "UTC" / "Coordinated Universal Time").
    pub fn utc() -> Zone {
        Zone::fixed("UTC", 0)
    }

    /// Resolves a zone id as `java.util.TimeZone.getTimeZone` does, except that an id Java does not know is
    /// an error rather than GMT, and that `-8:00` / `+05:30` style offsets are accepted.
    ///
    /// Accepted: `GMT`, `UTC`, IANA ids (case-sensitive, as in Java; rules from `chrono-tz`), custom ids
    /// `GMT±h`, `GMT±hh`, `GMT±hhmm`, `GMT±h:mm`, `GMT±hh:mm` (hours 0-23, minutes 0-59), the same offsets
    /// without `GMT`, and Java's three-letter ids: `PST` is America/Los_Angeles with daylight saving,
    /// `EST`/`MST`/`HST` are fixed −05:00/−07:00/−10:00, `BST` is Asia/Dhaka, `IST` Asia/Kolkata, and so on.
    pub fn parse(id: &str) -> Result<Zone, ZoneError> {
        if id.is_empty() {
            return Err(ZoneError::new(ZoneErrorKind::Empty, id, 0..0));
        }
        match id {
            "GMT" | "UTC" => return Ok(Zone::fixed(id, 0)),
            "EST" => return Ok(Zone::fixed(id, -5 * HOUR_MS)),
            "MST" => return Ok(Zone::fixed(id, -7 * HOUR_MS)),
            "HST" => return Ok(Zone::fixed(id, -10 * HOUR_MS)),
            _ => {}
        }
        let custom = if let Some(rest) = id.strip_prefix("GMT").filter(|r| r.starts_with(['+', '-'])) {
            Some(rest)
        } else if id.starts_with(['+', '-']) {
            Some(id)
        } else {
            None
        };
        if let Some(offset) = custom {
            return match parse_custom_offset(offset) {
                Some(ms) => {
                    let sign = if offset.starts_with('-') { '-' } else { '+' };
                    let minutes = ms.unsigned_abs() / 60_000;
                    let id = format!("GMT{sign}{:02}:{:02}", minutes / 60, minutes % 60);
                    Ok(Zone { id: id.into(), rules: Rules::Fixed(ms), names: Names::Id, dst_savings: 0 })
                }
                None => Err(ZoneError::new(ZoneErrorKind::InvalidOffset(id.to_owned()), id, 0..id.len())),
            };
        }
        let region = SHORT_IDS.iter().find(|(short, _)| *short == id).map_or(id, |(_, region)| region);
        match Tz::from_str(region) {
            Ok(tz) => Ok(Zone::region(id, tz)),
            Err(_) => Err(ZoneError::new(ZoneErrorKind::Unknown(id.to_owned()), id, 0..id.len())),
        }
    }

    fn fixed(id: &str, ms: i32) -> Zone {
        let (names, dst_savings) = table_names(id).map_or((Names::Id, 0), |(n, d)| (Names::Table(n), d));
        Zone { id: id.into(), rules: Rules::Fixed(ms), names, dst_savings }
    }

    fn region(id: &str, tz: Tz) -> Zone {
        let (names, dst_savings) = table_names(id).map_or((Names::Offset, 0), |(n, d)| (Names::Table(n), d));
        let negative_dst = NEGATIVE_DST_ZONES.contains(&tz.name());
        let dst_2037 = [JAN_2037_MS, JUL_2037_MS].iter().any(|&t| raw_components(tz, t).dst != 0);
        let mut last = normalize(tz, negative_dst, LAST_JAVA_MS, raw_components(tz, LAST_JAVA_MS));
        if dst_2037 {
            last = normalize(tz, negative_dst, JAN_2037_MS, raw_components(tz, JAN_2037_MS));
        }
        let raw_last = JAVA_RAW_OFFSETS.iter().find(|(name, _)| *name == tz.name()).map_or(last.raw, |(_, raw)| *raw);
        let wall_1900 = UTC_1900_MS + i64::from(raw_components(tz, UTC_1900_MS).total());
        let rules = Rules::Region { tz, raw_last, wall_1900, negative_dst, dst_2037 };
        Zone { id: id.into(), rules, names, dst_savings }
    }

    /// The id as Java reports it (`TimeZone.getID()`): `PST`, `America/New_York`, `GMT+05:30`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Java's `getDSTSavings()`: the daylight saving amount, in milliseconds, of zones Java knows.
    pub(crate) fn dst_savings(&self) -> i32 {
        self.dst_savings
    }

    /// Offsets in effect at a UTC instant, as Java's `TimeZone` computes them.
    pub(crate) fn offsets_at(&self, utc_ms: i64) -> Offsets {
        match self.rules {
            Rules::Fixed(ms) => Offsets { raw: ms, dst: 0 },
            Rules::Region { tz, raw_last, negative_dst, dst_2037, .. } => {
                if utc_ms < UTC_1900_MS {
                    return Offsets { raw: raw_last, dst: 0 };
                }
                let t = if utc_ms > LAST_JAVA_MS { future_equivalent(utc_ms, dst_2037) } else { utc_ms };
                normalize(tz, negative_dst, t, raw_components(tz, t))
            }
        }
    }

    /// Offsets Java uses to turn a local (wall clock) time into an instant: in an overlap the later instant
    /// (the offset after the transition), in a gap the offset before it. `gap` tells the latter case.
    pub(crate) fn offsets_for_local(&self, wall_ms: i64) -> (Offsets, bool) {
        match self.rules {
            Rules::Fixed(ms) => (Offsets { raw: ms, dst: 0 }, false),
            Rules::Region { tz, raw_last, wall_1900, negative_dst, dst_2037 } => {
                let fallback = (Offsets { raw: raw_last, dst: 0 }, false);
                if wall_ms < wall_1900 {
                    return fallback;
                }
                let wall = if wall_ms > LAST_JAVA_MS { future_equivalent(wall_ms, dst_2037) } else { wall_ms };
                let Some(local) = DateTime::from_timestamp(wall.div_euclid(1000), 0).map(|d| d.naive_utc()) else {
                    return fallback;
                };
                let (o, gap) = match tz.offset_from_local_datetime(&local) {
                    chrono::LocalResult::Single(o) => (components(&o), false),
                    chrono::LocalResult::Ambiguous(_, later) => (components(&later), false),
                    chrono::LocalResult::None => match GapInfo::new(&local, &tz).and_then(|g| g.begin) {
                        Some((_, before)) => (components(&before), true),
                        None => return fallback,
                    },
                };
                (normalize(tz, negative_dst, wall - i64::from(o.total()), o), gap)
            }
        }
    }

    /// The name Java's `z` (short) or `zzzz` (long) prints.
    pub(crate) fn write_name(&self, long: bool, offsets: Offsets, out: &mut String) {
        match self.names {
            Names::Table(names) => out.push_str(names[usize::from(long) * 2 + usize::from(offsets.dst != 0)]),
            Names::Id => out.push_str(&self.id),
            Names::Offset => {
                let total = offsets.total() / 60_000;
                out.push_str(if total < 0 { "GMT-" } else { "GMT+" });
                let m = total.unsigned_abs();
                push_2(out, m / 60);
                out.push(':');
                push_2(out, m % 60);
            }
        }
    }

    /// Local date-time of an instant in this zone, for messages.
    pub(crate) fn describe_local(local_ms: i64) -> String {
        let f = crate::calendar::Fields::from_local_millis(local_ms);
        let year = if f.era == 0 { 1 - f.year } else { f.year };
        format!(
            "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
            f.month + 1,
            f.day_of_month,
            f.hour_of_day,
            f.minute,
            f.second,
            f.millisecond
        )
    }
}

fn push_2(out: &mut String, v: u32) {
    out.push(char::from(b'0' + (v / 10 % 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

fn table_names(id: &str) -> Option<(&'static [&'static str; 4], i32)> {
    ZONE_NAMES.binary_search_by(|(k, _, _)| (*k).cmp(id)).ok().map(|i| (&ZONE_NAMES[i].1, ZONE_NAMES[i].2))
}

fn components(o: &chrono_tz::TzOffset) -> Offsets {
    let total = o.fix().local_minus_utc().saturating_mul(1000);
    let dst = i32::try_from(o.dst_offset().num_milliseconds()).unwrap_or(0);
    Offsets { raw: total - dst, dst }
}

/// Offsets as the tz database (through `chrono-tz`) states them at a UTC instant.
fn raw_components(tz: Tz, utc_ms: i64) -> Offsets {
    match DateTime::from_timestamp(utc_ms.div_euclid(1000), 0) {
        Some(dt) => components(&tz.offset_from_utc_datetime(&dt.naive_utc())),
        None => Offsets { raw: 0, dst: 0 },
    }
}

/// Zones the tz database describes with negative daylight saving; Java's (rearguard) data has the winter
/// offset as standard time and the summer one as daylight saving.
const NEGATIVE_DST_ZONES: &[&str] =
    &["Europe/Dublin", "Eire", "Africa/Windhoek", "Africa/Casablanca", "Africa/El_Aaiun"];
/// 1994-03-20T22:00:00Z, when Namibia first switched to winter time.
const WINDHOEK_WINTER_TIME_MS: i64 = 764_200_800_000;
/// Java's standard offsets of those zones, used before 1900 (`getRawOffset()`).
const JAVA_RAW_OFFSETS: &[(&str, i32)] = &[
    ("Europe/Dublin", 0),
    ("Eire", 0),
    ("Africa/Casablanca", 0),
    ("Africa/El_Aaiun", 0),
    ("Africa/Windhoek", HOUR_MS),
];

fn normalize(tz: Tz, negative_dst: bool, utc_ms: i64, o: Offsets) -> Offsets {
    if !negative_dst {
        return o;
    }
    if o.dst < 0 {
        return Offsets { raw: o.total(), dst: 0 };
    }
    if o.dst != 0 {
        return o;
    }
    // Java's standard offset is the lower one; anything above it is daylight saving (Namibia: since its
    // 1994 winter time).
    let since = if tz.name() == "Africa/Windhoek" { WINDHOEK_WINTER_TIME_MS } else { i64::MIN };
    match JAVA_RAW_OFFSETS.iter().find(|(name, _)| *name == tz.name()) {
        Some(&(_, java_raw)) if o.total() > java_raw && utc_ms >= since => {
            Offsets { raw: java_raw, dst: o.total() - java_raw }
        }
        _ => o,
    }
}

/// Java keeps zone transitions up to the end of 2037 and applies the zone's last rules after that.
const LAST_JAVA_MS: i64 = 2_145_916_799_999; // 2037-12-31T23:59:59.999Z
const JAN_2037_MS: i64 = 2_115_590_400_000; // 2037-01-15
const JUL_2037_MS: i64 = 2_131_228_800_000; // 2037-07-15
const DAY_MS: i64 = 86_400_000;

/// An instant after 2037 moved to the same month and day of a recent year (2029-2037) whose months start
/// on the same weekdays, so that the zone's last daylight saving rules ("last Sunday of March", "first
/// Sunday on or after the 8th") apply as Java applies its last rules. Zones without daylight saving in 2037
/// keep their last offset.
fn future_equivalent(ms: i64, dst_2037: bool) -> i64 {
    use crate::calendar::{civil, day_of_week, gregorian_days};
    if !dst_2037 {
        return LAST_JAVA_MS;
    }
    let days = ms.div_euclid(DAY_MS);
    let (year, month, _) = civil(days);
    // January and February follow January 1's weekday; March to December follow March 1's.
    let anchor_month = if month <= 2 { 1 } else { 3 };
    let anchor = gregorian_days(year, anchor_month, 1);
    let Some(year2) =
        (2029..=2037).rev().find(|&y| day_of_week(gregorian_days(y, anchor_month, 1)) == day_of_week(anchor))
    else {
        return LAST_JAVA_MS;
    };
    ms - (anchor - gregorian_days(year2, anchor_month, 1)) * DAY_MS
}

/// Java's `TimeZone.parseCustomTimeZone` grammar after `GMT`: sign, then `h`, `hh`, `hmm`, `hhmm`, `h:mm` or
/// `hh:mm`. Returns the offset in milliseconds.
fn parse_custom_offset(s: &str) -> Option<i32> {
    let negative = s.starts_with('-');
    let digits = s.get(1..)?;
    if digits.is_empty() {
        return None;
    }
    let (mut hours, mut num, mut len, mut delims) = (0u64, 0u64, 0u32, 0u32);
    for c in digits.chars() {
        if c == ':' {
            if delims > 0 || len > 2 {
                return None;
            }
            hours = num;
            delims += 1;
            num = 0;
            len = 0;
            continue;
        }
        let d = c.to_digit(10).filter(|_| c.is_ascii_digit())?;
        num = num.saturating_mul(10).saturating_add(u64::from(d));
        len += 1;
    }
    if delims == 0 {
        if len <= 2 {
            hours = num;
            num = 0;
        } else {
            hours = num / 100;
            num %= 100;
        }
    } else if len != 2 {
        return None;
    }
    if hours > 23 || num > 59 {
        return None;
    }
    let ms = ((hours * 60 + num) * 60_000) as i32;
    Some(if negative { -ms } else { ms })
}

/// Shorthand used by the parser: a zone for a Java id found in the zone strings table.
pub(crate) fn zone_for_java_id(id: &str) -> Option<Zone> {
    Zone::parse(id).ok()
}

impl Default for Zone {
    fn default() -> Self {
        Zone::gmt()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl FromStr for Zone {
    type Err = ZoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<(&str, i32)>) {
        let got = Zone::parse(input).ok().map(|z| {
            let raw = z.offsets_at(1_704_067_200_000).raw; // 2024-01-01
            (z.id().to_owned(), raw)
        });
        assert_eq!(got, expected.map(|(id, raw)| (id.to_owned(), raw)), "{input}");
    }

    #[test]
    fn resolves_like_java() {
        check("GMT", Some(("GMT", 0)));
        check("UTC", Some(("UTC", 0)));
        check("PST", Some(("PST", -8 * HOUR_MS)));
        check("EST", Some(("EST", -5 * HOUR_MS)));
        check("BST", Some(("BST", 6 * HOUR_MS)));
        check("IST", Some(("IST", 19_800_000)));
        check("GMT+5", Some(("GMT+05:00", 5 * HOUR_MS)));
        check("GMT+0530", Some(("GMT+05:30", 19_800_000)));
        check("GMT-0", Some(("GMT-00:00", 0)));
        check("-8:00", Some(("GMT-08:00", -8 * HOUR_MS)));
        check("+05:30", Some(("GMT+05:30", 19_800_000)));
        check("America/New_York", Some(("America/New_York", -5 * HOUR_MS)));
    }

    #[test]
    fn unknown_is_an_error() {
        for id in [
            "",
            "gmt",
            "utc",
            "Z",
            "Mars/Olympus",
            "GMT+24",
            "GMT+5:3",
            "GMT+",
            "+",
            "GMT5",
            "america/new_york",
            "-8:00:00",
            "+١",
        ] {
            check(id, None);
        }
    }

    #[test]
    fn names() {
        let z = Zone::parse("America/Los_Angeles").unwrap();
        let mut s = String::new();
        z.write_name(false, Offsets { raw: 0, dst: 1 }, &mut s);
        z.write_name(true, Offsets { raw: 0, dst: 0 }, &mut s);
        assert_eq!(s, "PDTPacific Standard Time");
    }
}

//! Date masks: `java.text.SimpleDateFormat` patterns compiled once, then used to format instants exactly as
//! Java does in `Locale.US` (parsing lives in `parse.rs`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};

use crate::calendar::Fields;
use crate::error::{MaskError, MaskErrorKind, ParseError};
use crate::zone::{Offsets, Zone};

pub(crate) const ERAS: [&str; 2] = ["BC", "AD"];
pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
pub(crate) const SHORT_MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/// Index 0 unused, as in Java: 1 = Sunday.
pub(crate) const WEEKDAYS: [&str; 8] =
    ["", "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
pub(crate) const SHORT_WEEKDAYS: [&str; 8] = ["", "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
pub(crate) const AM_PM: [&str; 2] = ["AM", "PM"];

/// Java's `DecimalFormat` never pads beyond this many digits.
const MAX_PADDING: u32 = 309;

/// A pattern letter of `SimpleDateFormat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Letter {
    /// `G`
    Era,
    /// `y`
    Year,
    /// `Y`
    WeekYear,
    /// `M`
    Month,
    /// `L`
    MonthStandalone,
    /// `w`
    WeekOfYear,
    /// `W`
    WeekOfMonth,
    /// `D`
    DayOfYear,
    /// `d`
    DayOfMonth,
    /// `F`
    DayOfWeekInMonth,
    /// `E`
    DayName,
    /// `u`
    IsoDayOfWeek,
    /// `a`
    AmPm,
    /// `H`
    Hour0To23,
    /// `k`
    Hour1To24,
    /// `K`
    Hour0To11,
    /// `h`
    Hour1To12,
    /// `m`
    Minute,
    /// `s`
    Second,
    /// `S`
    Millisecond,
    /// `z`
    ZoneName,
    /// `Z`
    Rfc822Zone,
    /// `X`
    IsoZone,
}

impl Letter {
    fn from_char(c: char) -> Option<Letter> {
        Some(match c {
            'G' => Letter::Era,
            'y' => Letter::Year,
            'Y' => Letter::WeekYear,
            'M' => Letter::Month,
            'L' => Letter::MonthStandalone,
            'w' => Letter::WeekOfYear,
            'W' => Letter::WeekOfMonth,
            'D' => Letter::DayOfYear,
            'd' => Letter::DayOfMonth,
            'F' => Letter::DayOfWeekInMonth,
            'E' => Letter::DayName,
            'u' => Letter::IsoDayOfWeek,
            'a' => Letter::AmPm,
            'H' => Letter::Hour0To23,
            'k' => Letter::Hour1To24,
            'K' => Letter::Hour0To11,
            'h' => Letter::Hour1To12,
            'm' => Letter::Minute,
            's' => Letter::Second,
            'S' => Letter::Millisecond,
            'z' => Letter::ZoneName,
            'Z' => Letter::Rfc822Zone,
            'X' => Letter::IsoZone,
            _ => return None,
        })
    }
}

/// One element of a compiled mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// Text copied as is (quoted runs and non-letter characters, merged).
    Literal(Box<str>),
    /// A pattern letter repeated `count` times.
    Field(Letter, u32),
}

/// How finely a mask's output pins down an instant; see [`Mask::precision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Precision {
    /// Milliseconds (`S`).
    Millisecond,
    /// Seconds (`s`).
    Second,
    /// Minutes (`m`).
    Minute,
    /// Hours (`H`, `k`, `K`, `h`).
    Hour,
    /// Days or coarser: no time-of-day letter below.
    Day,
}

/// A compiled `java.text.SimpleDateFormat` pattern (`Locale.US`), to format instants and parse dates exactly
/// as Java does.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oc_template::{Mask, Zone};
///
/// let mask = Mask::compile("EEE, d MMM yyyy HH:mm:ss z")?;
/// let instant = Utc.with_ymd_and_hms(2024, 7, 4, 17, 30, 0).unwrap();
/// let la = Zone::parse("America/Los_Angeles")?;
/// assert_eq!(mask.format(instant, &la), "Thu, 4 Jul 2024 10:30:00 PDT");
/// assert_eq!(mask.parse("Thu, 4 Jul 2024 10:30:00 PDT", &Zone::gmt())?, instant);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Mask {
    pattern: Box<str>,
    pub(crate) items: Box<[Item]>,
    /// Start of the 100-year window two-digit years fall in (`set2DigitYearStart`), UTC milliseconds.
    pub(crate) century_start_ms: i64,
    /// Its year (Java's `defaultCenturyStartYear`).
    pub(crate) century_start_year: i64,
    /// The mask prints `w` or `Y`.
    needs_weeks: bool,
}

impl PartialEq for Mask {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.century_start_ms == other.century_start_ms
    }
}

impl Eq for Mask {}

impl Mask {
    /// Compiles a pattern as `new SimpleDateFormat(pattern, Locale.US)` does.
    ///
    /// Letters `G y Y M L w W D d F E u a H k K h m s S z Z X`; other ASCII letters must be quoted
    /// (`'T'`); `''` is a single quote, inside or outside quotes. An empty pattern is valid (it formats to
    /// nothing). Two-digit years parse into the 100 years starting 80 years before now (the system clock), as in
    /// Java; see [`with_two_digit_year_start`](Self::with_two_digit_year_start) and [`two_digit_year_start`].
    pub fn compile(pattern: &str) -> Result<Mask, MaskError> {
        let items = compile_items(pattern)?;
        let start = default_century_start();
        let needs_weeks = items.iter().any(|i| matches!(i, Item::Field(Letter::WeekOfYear | Letter::WeekYear, _)));
        Ok(Mask {
            pattern: pattern.into(),
            items: items.into(),
            needs_weeks,
            century_start_ms: start.timestamp_millis(),
            century_start_year: i64::from(start.year()),
        })
    }

    /// Moves the 100-year window of two-digit years (`yy`) to start at `start`, like Java's
    /// `set2DigitYearStart`: `yy` values then parse into `[start, start + 100 years)`.
    pub fn with_two_digit_year_start(mut self, start: DateTime<Utc>) -> Mask {
        self.century_start_ms = start.timestamp_millis();
        self.century_start_year = i64::from(start.year());
        self
    }

    /// Start of the 100-year window two-digit years parse into.
    pub fn two_digit_year_start(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.century_start_ms).unwrap_or_default()
    }

    /// The pattern as given to [`compile`](Self::compile).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Formats an instant in a zone, as Java's `SimpleDateFormat.format` does (milliseconds precision: the
    /// instant is floored to the millisecond).
    pub fn format(&self, instant: DateTime<Utc>, zone: &Zone) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 16);
        self.format_into(instant, zone, &mut out);
        out
    }

    /// Appends the formatted instant to `out`; allocates nothing when `out` has room.
    pub fn format_into(&self, instant: DateTime<Utc>, zone: &Zone, out: &mut String) {
        let utc_ms = instant.timestamp_millis();
        let offsets = zone.offsets_at(utc_ms);
        let fields = Fields::compute(utc_ms + i64::from(offsets.total()), self.needs_weeks);
        for item in self.items.iter() {
            match item {
                Item::Literal(s) => out.push_str(s),
                Item::Field(letter, count) => write_field(out, *letter, *count, &fields, offsets, zone),
            }
        }
    }

    /// Parses a date as Java's non-lenient `SimpleDateFormat.parse` does (`setLenient(false)`), in `zone`
    /// unless the text carries its own zone (`z`, `Z`, `X`).
    ///
    /// Like Java: February 30 or hour 25 are errors, a local time in a daylight saving gap is an error, an
    /// ambiguous one (overlap) is the later, standard-time instant; spaces and tabs before a numeric or
    /// zone field are skipped; `SSS` reads `.5` as 5 ms. Unlike Java: text after the end of the mask is an
    /// error (Java ignores it).
    pub fn parse(&self, text: &str, zone: &Zone) -> Result<DateTime<Utc>, ParseError> {
        crate::parse::parse(self, text, zone)
    }

    /// The finest unit the mask prints: a formatted instant stands for the start of that unit, provided the
    /// mask also prints every coarser unit.
    pub fn precision(&self) -> Precision {
        let mut p = Precision::Day;
        for item in self.items.iter() {
            if let Item::Field(letter, _) = item {
                let q = match letter {
                    Letter::Millisecond => Precision::Millisecond,
                    Letter::Second => Precision::Second,
                    Letter::Minute => Precision::Minute,
                    Letter::Hour0To23 | Letter::Hour1To24 | Letter::Hour0To11 | Letter::Hour1To12 => Precision::Hour,
                    _ => Precision::Day,
                };
                p = p.min(q);
            }
        }
        p
    }
}

impl fmt::Display for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl FromStr for Mask {
    type Err = MaskError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mask::compile(s)
    }
}

fn default_century_start() -> DateTime<Utc> {
    two_digit_year_start(Utc::now())
}

/// Where Java's `SimpleDateFormat` starts the 100-year window of two-digit years when it is created at `now`: 80
/// years before. [`Mask::compile`] uses the system clock; a caller that reads time from a clock of its own passes
/// its reading to [`Mask::with_two_digit_year_start`]:
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oc_template::{Mask, Zone, two_digit_year_start};
///
/// let now = Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap();
/// let mask = Mask::compile("dd/MM/yy")?.with_two_digit_year_start(two_digit_year_start(now));
/// assert_eq!(mask.parse("01/01/49", &Zone::gmt())?, Utc.with_ymd_and_hms(2049, 1, 1, 0, 0, 0).unwrap());
/// assert_eq!(mask.parse("01/01/51", &Zone::gmt())?, Utc.with_ymd_and_hms(1951, 1, 1, 0, 0, 0).unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn two_digit_year_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.with_year(now.year() - 80).unwrap_or_else(|| now - chrono::TimeDelta::days(80 * 365 + 19))
}

/// Java's `SimpleDateFormat.compile`, producing literal runs and fields.
fn compile_items(pattern: &str) -> Result<Vec<Item>, MaskError> {
    let mut items: Vec<Item> = Vec::new();
    let mut literal = String::new();
    let mut field: Option<(Letter, u32, usize)> = None; // letter, count, byte start
    let mut in_quote: Option<usize> = None; // byte offset of the opening quote
    let mut chars = pattern.char_indices().peekable();

    fn flush_field(
        items: &mut Vec<Item>,
        field: &mut Option<(Letter, u32, usize)>,
        pattern: &str,
    ) -> Result<(), MaskError> {
        if let Some((letter, count, start)) = field.take() {
            if letter == Letter::IsoZone && count > 3 {
                let end = start + count as usize;
                return Err(MaskError::new(
                    MaskErrorKind::IsoZoneTooLong(pattern[start..end].to_owned()),
                    pattern,
                    start..end,
                ));
            }
            items.push(Item::Field(letter, count));
        }
        Ok(())
    }
    fn flush_literal(items: &mut Vec<Item>, literal: &mut String) {
        if !literal.is_empty() {
            items.push(Item::Literal(std::mem::take(literal).into()));
        }
    }

    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
                flush_field(&mut items, &mut field, pattern)?;
                literal.push('\'');
                continue;
            }
            if in_quote.is_none() {
                flush_field(&mut items, &mut field, pattern)?;
                in_quote = Some(i);
            } else {
                in_quote = None;
            }
            continue;
        }
        if in_quote.is_some() || !c.is_ascii_alphabetic() {
            flush_field(&mut items, &mut field, pattern)?;
            literal.push(c);
            continue;
        }
        let Some(letter) = Letter::from_char(c) else {
            return Err(MaskError::new(MaskErrorKind::IllegalLetter(c), pattern, i..i + 1));
        };
        match &mut field {
            Some((l, count, _)) if *l == letter => *count = count.saturating_add(1),
            _ => {
                flush_field(&mut items, &mut field, pattern)?;
                flush_literal(&mut items, &mut literal);
                field = Some((letter, 1, i));
            }
        }
    }
    if let Some(q) = in_quote {
        return Err(MaskError::new(MaskErrorKind::UnterminatedQuote, pattern, q..pattern.len()));
    }
    flush_field(&mut items, &mut field, pattern)?;
    flush_literal(&mut items, &mut literal);
    Ok(items)
}

fn write_field(out: &mut String, letter: Letter, count: u32, f: &Fields, offsets: Offsets, zone: &Zone) {
    match letter {
        Letter::Era => out.push_str(ERAS[(f.era & 1) as usize]),
        Letter::Year => year(out, f.year, count),
        Letter::WeekYear => year(out, f.week_year, count),
        Letter::Month | Letter::MonthStandalone => match count {
            0..=2 => pad(out, i64::from(f.month) + 1, count),
            3 => out.push_str(SHORT_MONTHS[f.month as usize % 12]),
            _ => out.push_str(MONTHS[f.month as usize % 12]),
        },
        Letter::WeekOfYear => pad(out, i64::from(f.week_of_year), count),
        Letter::WeekOfMonth => pad(out, i64::from(f.week_of_month), count),
        Letter::DayOfYear => pad(out, i64::from(f.day_of_year), count),
        Letter::DayOfMonth => pad(out, i64::from(f.day_of_month), count),
        Letter::DayOfWeekInMonth => pad(out, i64::from(f.day_of_week_in_month), count),
        Letter::DayName => {
            let names = if count >= 4 { &WEEKDAYS } else { &SHORT_WEEKDAYS };
            out.push_str(names[f.day_of_week as usize % 8]);
        }
        Letter::IsoDayOfWeek => pad(out, if f.day_of_week == 1 { 7 } else { i64::from(f.day_of_week) - 1 }, count),
        Letter::AmPm => out.push_str(AM_PM[usize::from(f.hour_of_day >= 12)]),
        Letter::Hour0To23 => pad(out, i64::from(f.hour_of_day), count),
        Letter::Hour1To24 => pad(out, if f.hour_of_day == 0 { 24 } else { i64::from(f.hour_of_day) }, count),
        Letter::Hour0To11 => pad(out, i64::from(f.hour_of_day % 12), count),
        Letter::Hour1To12 => pad(out, if f.hour_of_day % 12 == 0 { 12 } else { i64::from(f.hour_of_day % 12) }, count),
        Letter::Minute => pad(out, i64::from(f.minute), count),
        Letter::Second => pad(out, i64::from(f.second), count),
        Letter::Millisecond => pad(out, i64::from(f.millisecond), count),
        Letter::ZoneName => zone.write_name(count >= 4, offsets, out),
        Letter::Rfc822Zone => {
            // Java: minutes truncated toward zero, then hhmm with a sign.
            let minutes = offsets.total() / 60_000;
            out.push(if minutes < 0 { '-' } else { '+' });
            let m = minutes.unsigned_abs();
            pad(out, i64::from(m / 60 * 100 + m % 60), 4);
        }
        Letter::IsoZone => {
            let total = offsets.total();
            if total == 0 {
                out.push('Z');
                return;
            }
            let minutes = total / 60_000;
            out.push(if minutes < 0 { '-' } else { '+' });
            let m = minutes.unsigned_abs();
            pad(out, i64::from(m / 60), 2);
            if count == 1 {
                return;
            }
            if count == 3 {
                out.push(':');
            }
            pad(out, i64::from(m % 60), 2);
        }
    }
}

fn year(out: &mut String, value: i64, count: u32) {
    if count == 2 {
        // `yy`: the last two digits only.
        if value < 0 {
            out.push('-');
        }
        pad(out, (value.unsigned_abs() % 100) as i64, 2);
    } else {
        pad(out, value, count);
    }
}

/// `DecimalFormat` with `count` minimum integer digits (Java caps padding at 309 digits).
pub(crate) fn pad(out: &mut String, value: i64, count: u32) {
    if value < 0 {
        out.push('-');
    }
    let v = value.unsigned_abs();
    let mut buf = [0u8; 20];
    let mut n = 0;
    let mut rest = v;
    loop {
        buf[n] = b'0' + (rest % 10) as u8;
        n += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for _ in n as u32..count.min(MAX_PADDING) {
        out.push('0');
    }
    for &b in buf[..n].iter().rev() {
        out.push(char::from(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn check(pattern: &str, zone: &str, instant: &str, expected: &str) {
        let mask = Mask::compile(pattern).unwrap();
        let t = DateTime::parse_from_rfc3339(instant).unwrap().with_timezone(&Utc);
        assert_eq!(mask.format(t, &Zone::parse(zone).unwrap()), expected, "{pattern} {zone} {instant}");
    }

    #[test]
    fn formats_like_java() {
        check("yyyy-MM-dd'T'HH:mm:ss'Z'", "UTC", "2019-03-25T15:31:02.120Z", "2019-03-25T15:31:02Z");
        check("SSSSSS", "UTC", "2019-03-25T15:31:02.120Z", "000120");
        check("S", "UTC", "2019-03-25T15:31:02.005Z", "5");
        check("yy yyy y", "UTC", "2005-01-01T00:00:00Z", "05 2005 2005");
        check("X XX XXX Z", "Asia/Kolkata", "2024-01-01T00:00:00Z", "+05 +0530 +05:30 +0530");
        check("X Z z zzzz", "-8:00", "2024-01-01T00:00:00Z", "-08 -0800 GMT-08:00 GMT-08:00");
        check("h a k K", "UTC", "2024-01-01T00:00:00Z", "12 AM 24 0");
        check("'o''clock' ''", "UTC", "2024-01-01T00:00:00Z", "o'clock '");
        check("YYYY-'W'ww-u", "UTC", "2024-12-29T00:00:00Z", "2025-W01-7");
        let bc = Utc.with_ymd_and_hms(-43, 3, 15, 12, 0, 0).unwrap();
        assert_eq!(Mask::compile("G yyyy").unwrap().format(bc, &Zone::utc()), "BC 0044");
    }

    #[test]
    fn compile_errors() {
        for (p, span) in [("yyyy-MM-dd T", 11..12), ("'abc", 0..4), ("XXXX", 0..4), ("b", 0..1)] {
            let e = Mask::compile(p).unwrap_err();
            assert_eq!(e.span(), span, "{p}");
        }
        assert!(Mask::compile("").is_ok());
        assert!(Mask::compile("é年'x'''").is_ok());
    }

    #[test]
    fn precision() {
        assert_eq!(Mask::compile("yyyy-MM-dd").unwrap().precision(), Precision::Day);
        assert_eq!(Mask::compile("yyyy-MM-dd HH:mm").unwrap().precision(), Precision::Minute);
        let _ = Utc.timestamp_opt(0, 0);
    }
}

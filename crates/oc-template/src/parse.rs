//! Parsing a date with a compiled mask: Java's `SimpleDateFormat.parse` with `setLenient(false)`, step by
//! step — field reading (`subParse`), `CalendarBuilder.establish`, `GregorianCalendar.computeTime` with its
//! field resolution and its non-lenient check that every parsed field survives the round trip.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::calendar::{
    CUTOVER_DAY, CUTOVER_YEAR, Fields, MS_PER_DAY, dow_on_or_before, floor_div, floor_mod, gregorian_days, julian_days,
    month_length, year_start,
};
use crate::error::{ParseError, ParseErrorKind};
use crate::mask::{AM_PM, ERAS, Item, Letter, MONTHS, Mask, SHORT_MONTHS, SHORT_WEEKDAYS, WEEKDAYS};
use crate::number::{digit_value, parse_int};
use crate::zone::{Offsets, Zone, zone_for_java_id};
use crate::zone_data::ZONE_STRINGS;

const ERA: usize = 0;
const YEAR: usize = 1;
const MONTH: usize = 2;
const WEEK_OF_YEAR: usize = 3;
const WEEK_OF_MONTH: usize = 4;
const DAY_OF_MONTH: usize = 5;
const DAY_OF_YEAR: usize = 6;
const DAY_OF_WEEK: usize = 7;
const DAY_OF_WEEK_IN_MONTH: usize = 8;
const AM_PM_F: usize = 9;
const HOUR: usize = 10;
const HOUR_OF_DAY: usize = 11;
const MINUTE: usize = 12;
const SECOND: usize = 13;
const MILLISECOND: usize = 14;
const ZONE_OFFSET: usize = 15;
const DST_OFFSET: usize = 16;
const WEEK_YEAR: usize = 17;
const FIELDS: usize = 17;

const HOUR_MS: i64 = 3_600_000;
const FIELD_NAMES: [&str; 18] = [
    "era",
    "year",
    "month",
    "week of year",
    "week of month",
    "day of month",
    "day of year",
    "day of week",
    "day of week in month",
    "am/pm",
    "hour (0-11)",
    "hour of day",
    "minute",
    "second",
    "millisecond",
    "zone offset (ms)",
    "daylight saving offset (ms)",
    "week year",
];
/// `GregorianCalendar.getMinimum` / `getMaximum`, checked for every parsed field when not lenient.
const MIN: [i64; FIELDS] = [0, 1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, -13 * HOUR_MS, 0];
const MAX: [i64; FIELDS] =
    [1, 292_278_994, 11, 53, 6, 31, 366, 7, 6, 1, 11, 23, 59, 59, 999, 14 * HOUR_MS, 2 * HOUR_MS];

/// Java's `CalendarBuilder`: values with the order they were set in (stamp 0 = unset).
#[derive(Clone)]
struct Builder {
    stamp: [u32; 18],
    value: [i32; 18],
    span: [(usize, usize); 18],
    next: u32,
}

impl Builder {
    fn set(&mut self, field: usize, value: i32, span: (usize, usize)) {
        self.stamp[field] = self.next;
        self.next += 1;
        self.value[field] = value;
        self.span[field] = span;
    }
}

/// A failure while reading the fields: where, and what was expected there.
struct Fail {
    at: usize,
    end: usize,
    expected: Cow<'static, str>,
}

fn fail(at: usize, expected: impl Into<Cow<'static, str>>) -> Fail {
    Fail { at, end: at, expected: expected.into() }
}

struct Parser<'a> {
    text: &'a str,
    mask: &'a Mask,
    zone: Cow<'a, Zone>,
    b: Builder,
    ambiguous_year: bool,
}

pub(crate) fn parse(mask: &Mask, text: &str, zone: &Zone) -> Result<DateTime<Utc>, ParseError> {
    let mut p = Parser {
        text,
        mask,
        zone: Cow::Borrowed(zone),
        b: Builder { stamp: [0; 18], value: [0; 18], span: [(0, 0); 18], next: 2 },
        ambiguous_year: false,
    };
    let mut pos = 0;
    let items = &mask.items;
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Literal(lit) => {
                for expected in lit.chars() {
                    match text[pos..].chars().next() {
                        Some(c) if c == expected => pos += c.len_utf8(),
                        _ => return Err(p.error_at(pos, Cow::Owned(format!("`{expected}` (literal in the mask)")))),
                    }
                }
            }
            Item::Field(letter, count) => {
                let obey = matches!(items.get(i + 1), Some(Item::Field(next, n)) if obeys_count(*next, *n));
                pos = p.sub_parse(pos, *letter, *count, obey).map_err(|f| {
                    ParseError::new(ParseErrorKind::Expected { expected: f.expected.into_owned() }, text, f.at..f.end)
                })?;
            }
        }
    }
    if pos < text.len() {
        return Err(ParseError::new(
            ParseErrorKind::TrailingText { mask: mask.pattern().to_owned() },
            text,
            pos..text.len(),
        ));
    }
    p.finish()
}

/// Java's `shouldObeyCount`: a numeric field followed directly by another numeric field reads exactly
/// `count` characters (so `yyyyMMdd` can read `20240131`).
fn obeys_count(letter: Letter, count: u32) -> bool {
    match letter {
        Letter::Month | Letter::MonthStandalone => count <= 2,
        Letter::Year
        | Letter::DayOfMonth
        | Letter::Hour1To24
        | Letter::Hour0To23
        | Letter::Minute
        | Letter::Second
        | Letter::Millisecond
        | Letter::DayOfYear
        | Letter::DayOfWeekInMonth
        | Letter::WeekOfYear
        | Letter::WeekOfMonth
        | Letter::Hour1To12
        | Letter::Hour0To11
        | Letter::WeekYear
        | Letter::IsoDayOfWeek => true,
        _ => false,
    }
}

fn describe(letter: Letter, count: u32) -> &'static str {
    match letter {
        Letter::Era => "era AD or BC",
        Letter::Year => "year (digits)",
        Letter::WeekYear => "week year (digits)",
        Letter::Month | Letter::MonthStandalone if count <= 2 => "month number (1-12)",
        Letter::Month | Letter::MonthStandalone => "month name such as Jan or January",
        Letter::WeekOfYear => "week of year (digits)",
        Letter::WeekOfMonth => "week of month (digits)",
        Letter::DayOfYear => "day of year (digits)",
        Letter::DayOfMonth => "day of month (digits)",
        Letter::DayOfWeekInMonth => "day of week in month (digits)",
        Letter::DayName => "day name such as Mon or Monday",
        Letter::IsoDayOfWeek => "day of week number (1 = Monday … 7 = Sunday)",
        Letter::AmPm => "AM or PM",
        Letter::Hour0To23 => "hour 0-23 (digits)",
        Letter::Hour1To24 => "hour 1-24 (digits)",
        Letter::Hour0To11 => "hour 0-11 (digits)",
        Letter::Hour1To12 => "hour 1-12 (digits)",
        Letter::Minute => "minutes (digits)",
        Letter::Second => "seconds (digits)",
        Letter::Millisecond => "milliseconds (digits)",
        Letter::ZoneName => "zone such as PST, UTC, GMT+05:30 or -0800",
        Letter::Rfc822Zone => "zone offset such as -0800 or +0530",
        Letter::IsoZone if count == 1 => "ISO zone such as Z, +05 or -08",
        Letter::IsoZone if count == 2 => "ISO zone such as Z, +0530 or -0800",
        Letter::IsoZone => "ISO zone such as Z, +05:30 or -08:00",
    }
}

/// Byte end of `count` UTF-16 units from `start`, as Java's `text.substring(0, start + count)`; `None` when
/// the text is shorter.
fn utf16_limit(text: &str, start: usize, count: u32) -> Option<usize> {
    let mut units = 0u64;
    let mut end = start;
    for c in text[start..].chars() {
        if units >= u64::from(count) {
            return Some(end);
        }
        units += c.len_utf16() as u64;
        if units > u64::from(count) {
            return Some(end); // the substring would split a surrogate pair: that half is no digit
        }
        end += c.len_utf8();
    }
    (units >= u64::from(count)).then_some(end)
}

/// Java's `String.regionMatches(true, …)` of `pattern` at `start`: returns the end byte.
fn region_matches_ci(text: &str, start: usize, pattern: &str) -> Option<usize> {
    let mut t = text.get(start..)?.chars();
    let mut end = start;
    for pc in pattern.chars() {
        let tc = t.next()?;
        if !(tc == pc || {
            let (ut, up) = (upper(tc), upper(pc));
            ut == up || lower(ut) == lower(up)
        }) {
            return None;
        }
        end += tc.len_utf8();
    }
    Some(end)
}

fn upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn lower(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Java's `matchString`: the longest of `names` (case-insensitive) at `start`; returns index and end.
fn match_names(text: &str, start: usize, names: &[&str]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None; // index, name length, end
    for (i, name) in names.iter().enumerate() {
        let len = name.encode_utf16().count();
        if len > best.map_or(0, |b| b.1)
            && let Some(end) = region_matches_ci(text, start, name)
        {
            best = Some((i, len, end));
        }
    }
    best.map(|(i, _, end)| (i, end))
}

impl Parser<'_> {
    fn error_at(&self, at: usize, expected: Cow<'static, str>) -> ParseError {
        ParseError::new(ParseErrorKind::Expected { expected: expected.into_owned() }, self.text, at..at)
    }

    /// Java's `subParse`: reads one field at `start`, returns the end.
    fn sub_parse(&mut self, start: usize, letter: Letter, count: u32, obey: bool) -> Result<usize, Fail> {
        let text = self.text;
        let what = describe(letter, count);
        let mut pos = start;
        loop {
            match text[pos..].chars().next() {
                None => return Err(fail(start, what)),
                Some(' ' | '\t') => pos += 1,
                Some(_) => break,
            }
        }
        let actual_start = pos;
        let read_number = |pos: usize| -> Result<(i32, usize), Fail> {
            let limit = if obey { utf16_limit(text, start, count).ok_or_else(|| fail(pos, what))? } else { text.len() };
            parse_int(text, pos, limit).ok_or_else(|| fail(pos, what))
        };
        let numeric_first = matches!(letter, Letter::Hour1To24 | Letter::Hour1To12 | Letter::Year | Letter::WeekYear)
            || (matches!(letter, Letter::Month | Letter::MonthStandalone) && count <= 2);
        let mut value = 0;
        if numeric_first {
            let (v, end) = read_number(pos)?;
            value = v;
            pos = end;
        }
        let span = (actual_start, pos);
        match letter {
            Letter::Era => {
                let (i, end) = match_names(text, start, &ERAS).ok_or_else(|| fail(pos, what))?;
                self.b.set(ERA, i as i32, (start, end));
                Ok(end)
            }
            Letter::Year | Letter::WeekYear => {
                let digits = &text[actual_start..pos];
                let mut it = digits.chars();
                let two_digits = count <= 2
                    && matches!((it.next(), it.next(), it.next()), (Some(a), Some(b), None)
                        if digit_value(a).is_some() && digit_value(b).is_some());
                if two_digits {
                    let start_year = self.mask.century_start_year;
                    let ambiguous = start_year.rem_euclid(100);
                    let v = i64::from(value);
                    self.ambiguous_year = v == ambiguous;
                    let adjusted = v + start_year.div_euclid(100) * 100 + if v < ambiguous { 100 } else { 0 };
                    value = i32::try_from(adjusted).unwrap_or(i32::MAX);
                }
                self.b.set(if letter == Letter::Year { YEAR } else { WEEK_YEAR }, value, span);
                Ok(pos)
            }
            Letter::Month | Letter::MonthStandalone => {
                if count <= 2 {
                    self.b.set(MONTH, value.wrapping_sub(1), span);
                    return Ok(pos);
                }
                let (i, end) = match_names(text, start, &MONTHS)
                    .or_else(|| match_names(text, start, &SHORT_MONTHS))
                    .ok_or_else(|| fail(pos, what))?;
                self.b.set(MONTH, i as i32, (start, end));
                Ok(end)
            }
            Letter::Hour1To24 => {
                if !(1..=24).contains(&value) {
                    return Err(Fail { at: span.0, end: span.1, expected: what.into() });
                }
                self.b.set(HOUR_OF_DAY, if value == 24 { 0 } else { value }, span);
                Ok(pos)
            }
            Letter::Hour1To12 => {
                if !(1..=12).contains(&value) {
                    return Err(Fail { at: span.0, end: span.1, expected: what.into() });
                }
                self.b.set(HOUR, if value == 12 { 0 } else { value }, span);
                Ok(pos)
            }
            Letter::DayName => {
                let (i, end) = match_names(text, start, &WEEKDAYS[1..])
                    .or_else(|| match_names(text, start, &SHORT_WEEKDAYS[1..]))
                    .ok_or_else(|| fail(pos, what))?;
                self.b.set(DAY_OF_WEEK, i as i32 + 1, (start, end));
                Ok(end)
            }
            Letter::AmPm => {
                let (i, end) = match_names(text, start, &AM_PM).ok_or_else(|| fail(pos, what))?;
                self.b.set(AM_PM_F, i as i32, (start, end));
                Ok(end)
            }
            Letter::ZoneName | Letter::Rfc822Zone => self.parse_zone(start, pos).map_err(|at| fail(at, what)),
            Letter::IsoZone => {
                let c = text[pos..].chars().next().unwrap_or(' ');
                if c == 'Z' {
                    self.b.set(ZONE_OFFSET, 0, (pos, pos + 1));
                    self.b.set(DST_OFFSET, 0, (pos, pos + 1));
                    return Ok(pos + 1);
                }
                let sign = match c {
                    '+' => 1,
                    '-' => -1,
                    _ => return Err(fail(pos, what)),
                };
                self.numeric_zone(pos, pos + 1, sign, count, count == 3).map_err(|at| fail(at, what))
            }
            _ => {
                let (v, end) = read_number(pos)?;
                let span = (actual_start, end);
                let field = match letter {
                    Letter::DayOfMonth => DAY_OF_MONTH,
                    Letter::Hour0To23 => HOUR_OF_DAY,
                    Letter::Minute => MINUTE,
                    Letter::Second => SECOND,
                    Letter::Millisecond => MILLISECOND,
                    Letter::DayOfYear => DAY_OF_YEAR,
                    Letter::DayOfWeekInMonth => DAY_OF_WEEK_IN_MONTH,
                    Letter::WeekOfYear => WEEK_OF_YEAR,
                    Letter::WeekOfMonth => WEEK_OF_MONTH,
                    Letter::Hour0To11 => HOUR,
                    _ => {
                        // `u`: ISO day of week, stored as Calendar's DAY_OF_WEEK.
                        let dow = match v {
                            7 => 1,
                            1..=6 => v + 1,
                            other => other,
                        };
                        self.b.set(DAY_OF_WEEK, dow, span);
                        return Ok(end);
                    }
                };
                self.b.set(field, v, span);
                Ok(end)
            }
        }
    }

    /// `z` and `Z`: `GMT`, `GMT±h:mm`, `±hhmm` or a zone name. `start` is before the skipped blanks, `pos`
    /// after them, as in Java (which looks for `GMT` at the former and for names at the latter).
    fn parse_zone(&mut self, start: usize, pos: usize) -> Result<usize, usize> {
        let text = self.text;
        let c = text[pos..].chars().next().unwrap_or(' ');
        let sign = match c {
            '+' => 1,
            '-' => -1,
            _ => 0,
        };
        if sign != 0 {
            return self.numeric_zone(pos, pos + 1, sign, 0, false);
        }
        if matches!(c, 'G' | 'g')
            && let Some(after) = region_matches_ci(text, start, "GMT")
        {
            let sign = match text[after..].chars().next() {
                Some('+') => 1,
                Some('-') => -1,
                _ => 0,
            };
            if sign == 0 {
                self.b.set(ZONE_OFFSET, 0, (start, after));
                self.b.set(DST_OFFSET, 0, (start, after));
                return Ok(after);
            }
            return self.numeric_zone(start, after + 1, sign, 0, true);
        }
        self.zone_string(pos).ok_or(pos)
    }

    /// Java's `subParseNumericZone`: `hh[[:]mm]`; `count` is the `X` count (0 for `z`/`Z`).
    fn numeric_zone(&mut self, from: usize, start: usize, sign: i32, count: u32, colon: bool) -> Result<usize, usize> {
        let bytes = self.text.as_bytes();
        let mut i = start;
        let digit = |i: usize| bytes.get(i).filter(|b| b.is_ascii_digit()).map(|b| i32::from(b - b'0'));
        let mut hours = digit(i).ok_or(i)?;
        i += 1;
        match digit(i) {
            Some(d) => {
                hours = hours * 10 + d;
                i += 1;
            }
            None if count > 0 || !colon => return Err(i),
            None if i >= bytes.len() => return Err(i),
            None => {}
        }
        if hours > 23 {
            return Err(i);
        }
        let mut minutes = 0;
        if count != 1 {
            if colon {
                if bytes.get(i) != Some(&b':') {
                    return Err(i);
                }
                i += 1;
            }
            let tens = digit(i).ok_or(i)?;
            let ones = digit(i + 1).ok_or(i + 1)?;
            minutes = tens * 10 + ones;
            i += 2;
            if minutes > 59 {
                return Err(i - 1);
            }
        }
        self.b.set(ZONE_OFFSET, (minutes + hours * 60) * 60_000 * sign, (from, i));
        self.b.set(DST_OFFSET, 0, (from, i));
        Ok(i)
    }

    /// Java's `subParseZoneString`: the configured zone's names first, then the default zone's (UTC here),
    /// then every zone in Java's table order.
    fn zone_string(&mut self, start: usize) -> Option<usize> {
        let text = self.text;
        let match_entry = |entry: &[&'static str; 5]| -> Option<usize> {
            (1..=4).find(|&i| !entry[i].is_empty() && region_matches_ci(text, start, entry[i]).is_some())
        };
        let current_id = self.zone.id().to_owned();
        let mut found = None;
        for id in [current_id.as_str(), "UTC"] {
            if let Some(entry) = ZONE_STRINGS.iter().find(|e| e[0] == id)
                && let Some(i) = match_entry(entry)
                && let Some(tz) = zone_for_java_id(entry[0])
            {
                found = Some((entry, i, tz));
                break;
            }
        }
        if found.is_none() {
            found = ZONE_STRINGS.iter().find_map(|entry| {
                let i = match_entry(entry)?;
                Some((entry, i, zone_for_java_id(entry[0])?))
            });
        }
        let (entry, i, tz) = found?;
        let same_name = i <= 2 && entry[i].to_lowercase() == entry[i + 2].to_lowercase();
        let dst = if i >= 3 { tz.dst_savings() } else { 0 };
        let end = region_matches_ci(text, start, entry[i])?;
        if tz.id() != self.zone.id() {
            self.zone = Cow::Owned(tz);
        }
        if !(same_name || (i >= 3 && dst == 0)) {
            self.b.stamp[ZONE_OFFSET] = 0;
            self.b.value[ZONE_OFFSET] = 0;
            self.b.set(DST_OFFSET, dst, (start, end));
        }
        Some(end)
    }

    fn finish(&self) -> Result<DateTime<Utc>, ParseError> {
        let mut utc = self.establish(&self.b)?;
        if self.ambiguous_year && utc < self.mask.century_start_ms {
            let mut b = self.b.clone();
            b.value[YEAR] = b.value[YEAR].wrapping_add(100);
            b.value[WEEK_YEAR] = b.value[WEEK_YEAR].wrapping_add(100);
            utc = self.establish(&b)?;
        }
        DateTime::from_timestamp_millis(utc)
            .ok_or_else(|| ParseError::new(ParseErrorKind::OutOfSupportedRange, self.text, 0..self.text.len()))
    }

    fn whole(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.text, 0..self.text.len())
    }

    fn field_error(&self, b: &Builder, field: usize, kind: ParseErrorKind) -> ParseError {
        let (s, e) = b.span[field];
        if b.stamp[field] >= 2 && e >= s && e <= self.text.len() {
            ParseError::new(kind, self.text, s..e)
        } else {
            self.whole(kind)
        }
    }

    /// `CalendarBuilder.establish` then `getTime()`: UTC milliseconds.
    fn establish(&self, b: &Builder) -> Result<i64, ParseError> {
        if b.stamp[WEEK_YEAR] > b.stamp[YEAR] {
            let mut cal = b.clone();
            let woy = if cal.stamp[WEEK_OF_YEAR] != 0 { cal.value[WEEK_OF_YEAR] } else { 1 };
            let dow = if cal.stamp[DAY_OF_WEEK] != 0 { cal.value[DAY_OF_WEEK] } else { 1 };
            self.set_week_date(&mut cal, b.value[WEEK_YEAR], woy, dow)?;
            return self.compute_time(&cal);
        }
        self.compute_time(b)
    }

    /// `GregorianCalendar.setWeekDate` (non-lenient).
    fn set_week_date(&self, cal: &mut Builder, week_year: i32, woy: i32, dow: i32) -> Result<(), ParseError> {
        let bad = |field: usize| {
            let kind = ParseErrorKind::Inconsistent {
                field: FIELD_NAMES[field],
                value: i64::from(cal.value[field]),
                resolved: format!("no day in week {woy} of week year {week_year}"),
            };
            self.field_error(cal, field, kind)
        };
        if !(1..=7).contains(&dow) {
            let kind = ParseErrorKind::OutOfRange { field: "day of week", value: i64::from(dow), min: 1, max: 7 };
            return Err(self.field_error(cal, DAY_OF_WEEK, kind));
        }
        let era = if cal.stamp[ERA] != 0 { cal.value[ERA] } else { 1 };
        let year = if era == 0 { 1 - i64::from(week_year) } else { i64::from(week_year) };
        let jan1 = year_start(year);
        let first = dow_on_or_before(jan1, 1);
        let date = first + i64::from(dow - 1) + 7 * (i64::from(woy) - 1);
        let f = Fields::from_local_millis(date.saturating_mul(MS_PER_DAY));
        // Java's week-date arithmetic fails for the weeks of week year 1 that reach into 1 BC.
        if f.week_year != i64::from(week_year) || (f.era == 0 && week_year >= 1) {
            return Err(bad(WEEK_YEAR));
        }
        if f.week_of_year != woy {
            return Err(bad(WEEK_OF_YEAR));
        }
        if f.day_of_week != dow {
            return Err(bad(DAY_OF_WEEK));
        }
        let keep = cal.span[WEEK_YEAR];
        cal.set(ERA, f.era, keep);
        cal.set(YEAR, i32::try_from(f.year).unwrap_or(i32::MAX), keep);
        cal.set(MONTH, f.month, keep);
        cal.set(DAY_OF_MONTH, f.day_of_month, keep);
        cal.value[WEEK_OF_YEAR] = woy;
        Ok(())
    }

    /// `GregorianCalendar.computeTime` (non-lenient): resolve the fields to an instant, then check that
    /// every parsed field has the value the instant has.
    fn compute_time(&self, cal: &Builder) -> Result<i64, ParseError> {
        let is_set = |f: usize| cal.stamp[f] != 0;
        let v = |f: usize| i64::from(cal.value[f]);
        for f in 0..FIELDS {
            if is_set(f) && !(MIN[f]..=MAX[f]).contains(&v(f)) {
                let shift = i64::from(f == MONTH);
                let kind = ParseErrorKind::OutOfRange {
                    field: FIELD_NAMES[f],
                    value: v(f) + shift,
                    min: MIN[f] + shift,
                    max: MAX[f] + shift,
                };
                return Err(self.field_error(cal, f, kind));
            }
        }
        let mask = select_fields(&cal.stamp);
        let has = |f: usize| mask & (1 << f) != 0;
        let mut year = if is_set(YEAR) { v(YEAR) } else { 1970 };
        if is_set(ERA) && v(ERA) == 0 {
            year = 1 - year;
        }
        let hours =
            if has(HOUR_OF_DAY) { v(HOUR_OF_DAY) } else { v(HOUR) + if has(AM_PM_F) { 12 * v(AM_PM_F) } else { 0 } };
        let time_of_day = ((hours * 60 + v(MINUTE)) * 60 + v(SECOND)) * 1000 + v(MILLISECOND);
        let extra_days = floor_div(time_of_day, MS_PER_DAY);
        let time_of_day = floor_mod(time_of_day, MS_PER_DAY);

        let fixed = |gregorian: bool| fixed_date(cal, mask, year, gregorian) + extra_days;
        let (gfd, jfd);
        let day = if year > CUTOVER_YEAR {
            gfd = fixed(true);
            if gfd >= CUTOVER_DAY {
                gfd
            } else {
                jfd = fixed(false);
                self.hybrid(gfd, jfd, mask, year)?
            }
        } else if year < CUTOVER_YEAR {
            jfd = fixed(false);
            if jfd < CUTOVER_DAY { jfd } else { self.hybrid(jfd, jfd, mask, year)? }
        } else {
            self.hybrid(fixed(true), fixed(false), mask, year)?
        };

        let out_of_range = || self.whole(ParseErrorKind::OutOfSupportedRange);
        let wall = day.checked_mul(MS_PER_DAY).and_then(|d| d.checked_add(time_of_day)).ok_or_else(out_of_range)?;
        if DateTime::from_timestamp_millis(wall).is_none() {
            return Err(out_of_range());
        }
        let zone_set = cal.stamp[ZONE_OFFSET] >= 2;
        let dst_set = cal.stamp[DST_OFFSET] >= 2;
        let (mut offsets, gap) =
            if zone_set && dst_set { (Offsets { raw: 0, dst: 0 }, false) } else { self.zone.offsets_for_local(wall) };
        if zone_set {
            offsets.raw = cal.value[ZONE_OFFSET];
        }
        if dst_set {
            offsets.dst = cal.value[DST_OFFSET];
        }
        let utc = wall - i64::from(offsets.total());

        // Non-lenient check: recompute the fields from the instant and compare the parsed ones.
        let mut check = if zone_set && dst_set { offsets } else { self.zone.offsets_at(utc) };
        if zone_set {
            check.raw = cal.value[ZONE_OFFSET];
        }
        if dst_set {
            check.dst = cal.value[DST_OFFSET];
        }
        let local = utc + i64::from(check.total());
        let f = Fields::compute(local, is_set(WEEK_OF_YEAR));
        let actual: [i64; FIELDS] = [
            i64::from(f.era),
            f.year,
            i64::from(f.month),
            i64::from(f.week_of_year),
            i64::from(f.week_of_month),
            i64::from(f.day_of_month),
            i64::from(f.day_of_year),
            i64::from(f.day_of_week),
            i64::from(f.day_of_week_in_month),
            i64::from(f.hour_of_day >= 12),
            i64::from(f.hour_of_day % 12),
            i64::from(f.hour_of_day),
            i64::from(f.minute),
            i64::from(f.second),
            i64::from(f.millisecond),
            i64::from(check.raw),
            i64::from(check.dst),
        ];
        // Blame the finest mismatching field: for February 30 the day, not the month it spilled into.
        const BLAME_ORDER: [usize; FIELDS] = [
            DAY_OF_MONTH,
            DAY_OF_YEAR,
            WEEK_OF_MONTH,
            DAY_OF_WEEK_IN_MONTH,
            DAY_OF_WEEK,
            WEEK_OF_YEAR,
            MILLISECOND,
            SECOND,
            MINUTE,
            HOUR,
            HOUR_OF_DAY,
            AM_PM_F,
            MONTH,
            YEAR,
            ERA,
            ZONE_OFFSET,
            DST_OFFSET,
        ];
        for field in BLAME_ORDER {
            if is_set(field) && actual[field] != v(field) {
                let kind = if gap {
                    ParseErrorKind::SkippedLocalTime {
                        local: Zone::describe_local(wall),
                        zone: self.zone.id().to_owned(),
                    }
                } else {
                    ParseErrorKind::Inconsistent {
                        field: FIELD_NAMES[field],
                        value: v(field) + i64::from(field == MONTH),
                        resolved: Zone::describe_local(local),
                    }
                };
                return Err(self.field_error(cal, field, kind));
            }
        }
        Ok(utc)
    }

    /// Choosing between the Julian and the Gregorian reading of a date near the 1582 cutover.
    fn hybrid(&self, gfd: i64, jfd: i64, mask: u32, year: i64) -> Result<i64, ParseError> {
        if mask & (1 << DAY_OF_YEAR | 1 << WEEK_OF_YEAR) != 0 && year == CUTOVER_YEAR {
            return Ok(jfd); // counted from January 1, which is Julian in 1582
        }
        if gfd >= CUTOVER_DAY {
            Ok(gfd)
        } else if jfd < CUTOVER_DAY {
            Ok(jfd)
        } else {
            Err(self.whole(ParseErrorKind::SkippedByCutover))
        }
    }
}

/// `Calendar.selectFields`: which parsed fields decide the date and the time, by recency.
fn select_fields(stamp: &[u32; 18]) -> u32 {
    let aggregate = |a: u32, b: u32| if a == 0 || b == 0 { 0 } else { a.max(b) };
    let mut mask = 1 << YEAR;
    if stamp[ERA] != 0 {
        mask |= 1 << ERA;
    }
    let dow_stamp = stamp[DAY_OF_WEEK];
    let month_stamp = stamp[MONTH];
    let mut dom_stamp = stamp[DAY_OF_MONTH];
    let mut wom_stamp = aggregate(stamp[WEEK_OF_MONTH], dow_stamp);
    let mut dowim_stamp = aggregate(stamp[DAY_OF_WEEK_IN_MONTH], dow_stamp);
    let doy_stamp = stamp[DAY_OF_YEAR];
    let mut woy_stamp = aggregate(stamp[WEEK_OF_YEAR], dow_stamp);
    let mut best = dom_stamp.max(wom_stamp).max(dowim_stamp).max(doy_stamp).max(woy_stamp);
    if best == 0 {
        wom_stamp = stamp[WEEK_OF_MONTH];
        dowim_stamp = stamp[DAY_OF_WEEK_IN_MONTH].max(dow_stamp);
        woy_stamp = stamp[WEEK_OF_YEAR];
        best = wom_stamp.max(dowim_stamp).max(woy_stamp);
        if best == 0 {
            best = month_stamp;
            dom_stamp = month_stamp;
        }
    }
    if best == dom_stamp
        || (best == wom_stamp && stamp[WEEK_OF_MONTH] >= stamp[WEEK_OF_YEAR])
        || (best == dowim_stamp && stamp[DAY_OF_WEEK_IN_MONTH] >= stamp[WEEK_OF_YEAR])
    {
        mask |= 1 << MONTH;
        if best == dom_stamp {
            mask |= 1 << DAY_OF_MONTH;
        } else {
            if dow_stamp != 0 {
                mask |= 1 << DAY_OF_WEEK;
            }
            if wom_stamp == dowim_stamp {
                if stamp[WEEK_OF_MONTH] >= stamp[DAY_OF_WEEK_IN_MONTH] {
                    mask |= 1 << WEEK_OF_MONTH;
                } else {
                    mask |= 1 << DAY_OF_WEEK_IN_MONTH;
                }
            } else if best == wom_stamp {
                mask |= 1 << WEEK_OF_MONTH;
            } else if stamp[DAY_OF_WEEK_IN_MONTH] != 0 {
                mask |= 1 << DAY_OF_WEEK_IN_MONTH;
            }
        }
    } else if best == doy_stamp {
        mask |= 1 << DAY_OF_YEAR;
    } else {
        if dow_stamp != 0 {
            mask |= 1 << DAY_OF_WEEK;
        }
        mask |= 1 << WEEK_OF_YEAR;
    }
    let hour_of_day_stamp = stamp[HOUR_OF_DAY];
    let hour_stamp = aggregate(stamp[HOUR], stamp[AM_PM_F]);
    let mut best = hour_stamp.max(hour_of_day_stamp);
    if best == 0 {
        best = stamp[HOUR].max(stamp[AM_PM_F]);
    }
    if best != 0 {
        if best == hour_of_day_stamp {
            mask |= 1 << HOUR_OF_DAY;
        } else {
            mask |= 1 << HOUR;
            if stamp[AM_PM_F] != 0 {
                mask |= 1 << AM_PM_F;
            }
        }
    }
    mask
}

/// `GregorianCalendar.getFixedDate` in one calendar system: epoch day of the selected date fields.
fn fixed_date(cal: &Builder, mask: u32, year: i64, gregorian: bool) -> i64 {
    let has = |f: usize| mask & (1 << f) != 0;
    let v = |f: usize| i64::from(cal.value[f]);
    let days = |y: i64, m: i64, d: i64| if gregorian { gregorian_days(y, m, d) } else { julian_days(y, m, d) };
    let month = if has(MONTH) { v(MONTH) } else { 0 };
    let mut fixed = days(year, month + 1, 1);
    if has(MONTH) {
        if has(DAY_OF_MONTH) {
            if cal.stamp[DAY_OF_MONTH] != 0 {
                fixed += v(DAY_OF_MONTH) - 1;
            }
        } else if has(WEEK_OF_MONTH) {
            let mut first = dow_on_or_before(fixed + 6, 1);
            if first - fixed >= 1 {
                first -= 7;
            }
            if has(DAY_OF_WEEK) {
                first = dow_on_or_before(first + 6, v(DAY_OF_WEEK));
            }
            fixed = first + 7 * (v(WEEK_OF_MONTH) - 1);
        } else {
            let dow = if has(DAY_OF_WEEK) { v(DAY_OF_WEEK) } else { 1 };
            let dowim = if has(DAY_OF_WEEK_IN_MONTH) { v(DAY_OF_WEEK_IN_MONTH) } else { 1 };
            fixed = if dowim >= 0 {
                dow_on_or_before(fixed + 7 * dowim - 1, dow)
            } else {
                let last = month_length(year, month + 1, year > CUTOVER_YEAR) + 7 * (dowim + 1);
                dow_on_or_before(fixed + last - 1, dow)
            };
        }
    } else if has(DAY_OF_YEAR) {
        fixed += v(DAY_OF_YEAR) - 1;
    } else {
        let mut first = dow_on_or_before(fixed + 6, 1);
        if first - fixed >= 1 {
            first -= 7;
        }
        if has(DAY_OF_WEEK) && v(DAY_OF_WEEK) != 1 {
            first = dow_on_or_before(first + 6, v(DAY_OF_WEEK));
        }
        fixed = first + 7 * (v(WEEK_OF_YEAR) - 1);
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mask: &str, zone: &str, text: &str, expected: Result<&str, &str>) {
        let m = Mask::compile(mask).unwrap();
        let got = m.parse(text, &Zone::parse(zone).unwrap());
        match expected {
            Ok(rfc) => assert_eq!(got.map(crate::format_rfc3339_utc), Ok(rfc.to_owned()), "{mask} {text}"),
            Err(msg) => {
                let e = got.expect_err(text);
                assert!(e.to_string().contains(msg), "{mask} {text}: {e}");
            }
        }
    }

    #[test]
    fn parses_like_java() {
        let iso = "yyyy-MM-dd'T'HH:mm:ss'Z'";
        check(iso, "GMT", "2019-03-25T15:31:02Z", Ok("2019-03-25T15:31:02Z"));
        check("yyyy-MM-dd HH:mm:ss.SSS", "GMT", "2019-03-25 15:31:02.5", Ok("2019-03-25T15:31:02.005Z"));
        check("yyyy-MM-dd", "GMT", "2024-02-30", Err("day of month 30 does not exist"));
        check("HH", "GMT", "25", Err("hour of day 25 is out of range"));
        check("yyyy-MM-dd HH:mm", "America/Los_Angeles", "2024-03-10 02:30", Err("daylight saving gap"));
        check("yyyy-MM-dd HH:mm", "America/Los_Angeles", "2024-11-03 01:30", Ok("2024-11-03T09:30:00Z"));
        check("yyyy-MM-dd HH:mm z", "GMT", "2024-07-15 10:00 PDT", Ok("2024-07-15T17:00:00Z"));
        check("yyyy-MM-dd", "GMT", "2024-01-01x", Err("expected end of text"));
        check("yyyyMMdd", "GMT", "20240131", Ok("2024-01-31T00:00:00Z"));
        check("YYYY-MM-dd", "GMT", "2024-06-15", Ok("2023-12-31T00:00:00Z"));
    }
}

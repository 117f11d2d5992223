//! Poller URL templates: text with Open Connectors placeholders (`${date:MASK}`, `${epoch}`, …), parsed once
//! and rendered with the last poll time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::calendar::MS_PER_DAY;
use crate::error::{TemplateError, TemplateErrorKind};
use crate::mask::{Mask, Precision, pad};
use crate::zone::Zone;

/// The mask of a bare `${date}`.
pub const DEFAULT_DATE_MASK: &str = "yyyy-MM-dd'T'HH:mm:ss'Z'";

/// Unit of an `${epoch…}` placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EpochUnit {
    /// `${epoch:s}`
    Seconds,
    /// `${epoch}`, `${epoch:ms}` and `${milliseconds}`
    Milliseconds,
    /// `${epoch:us}`
    Microseconds,
}

/// A placeholder of a parsed template, see [`Template::placeholders`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placeholder<'a> {
    /// `${date:…}`, `${gmtDate:…}`, `${dateTimeZone:…}`: an instant formatted with a mask in a zone.
    Date {
        /// The compiled mask.
        mask: &'a Mask,
        /// The zone it is formatted in (UTC for `date`, GMT for `gmtDate`).
        zone: &'a Zone,
    },
    /// `${epoch…}` and `${milliseconds}`: the instant as an integer count since 1970-01-01T00:00:00Z.
    Epoch(EpochUnit),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    Date { mask: Mask, zone: Zone },
    Epoch(EpochUnit),
}

/// A poller URL template, parsed once and rendered for each poll.
///
/// Placeholders (Open Connectors' spellings): `${date:MASK}` (UTC), `${gmtDate:MASK}` (GMT),
/// `${dateTimeZone:ZONE:MASK}` and `${DateTimeZone:ZONE:MASK}`, `${epoch}` and `${epoch:ms}` (epoch
/// milliseconds), `${epoch:s}`, `${epoch:us}`, `${milliseconds}`, and a bare `${date}` (mask
/// [`DEFAULT_DATE_MASK`], UTC). MASK is a `SimpleDateFormat` pattern (see [`Mask`]); it may contain quoted
/// text, so a placeholder ends at the first `}` outside quotes. ZONE is anything [`Zone::parse`] accepts;
/// since offsets contain `:`, the zone is the longest prefix before a `:` that is a valid zone. Text outside
/// placeholders is copied unchanged, quotes included.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oc_template::Template;
///
/// let t = Template::parse("/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'")?;
/// let last_poll = Utc.with_ymd_and_hms(2019, 3, 25, 15, 31, 2).unwrap();
/// assert_eq!(t.render(last_poll), "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z'");
///
/// let t = Template::parse("since=${dateTimeZone:-8:00:yyyy-MM-dd HH:mm} at=${epoch:s}")?;
/// assert_eq!(t.render(last_poll), "since=2019-03-25 07:31 at=1553527862");
///
/// let e = Template::parse("x=${dateTimeZone:Mars/Olympus:yyyy}").unwrap_err();
/// assert_eq!(e.to_string(), "unknown zone `Mars/Olympus`: expected an IANA id such as America/Los_Angeles, \
///     GMT, UTC, GMT+hh:mm or an offset such as -8:00 at byte 17\nx=${dateTimeZone:Mars/Olympus:yyyy}\n                 ^^^^^^^^^^^^");
/// # Ok::<(), oc_template::TemplateError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: Box<str>,
    parts: Box<[Part]>,
    text_len: usize,
}

impl Template {
    /// Parses a template. Errors (unterminated `${`, unknown placeholder, empty or invalid mask, unknown
    /// zone, unknown epoch unit) carry the byte span in `source`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text_start = 0;
        let mut i = 0;
        while let Some(off) = source[i..].find("${") {
            let open = i + off;
            let (part, end) = placeholder(source, open)?;
            if open > text_start {
                parts.push(Part::Text(source[text_start..open].into()));
            }
            parts.push(part);
            i = end;
            text_start = end;
        }
        if text_start < source.len() {
            parts.push(Part::Text(source[text_start..].into()));
        }
        let text_len = parts.iter().map(|p| if let Part::Text(t) = p { t.len() } else { 24 }).sum();
        Ok(Template { source: source.into(), parts: parts.into(), text_len })
    }

    /// The template as given to [`parse`](Self::parse).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholders, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder<'_>> {
        self.parts.iter().filter_map(|p| match p {
            Part::Text(_) => None,
            Part::Date { mask, zone } => Some(Placeholder::Date { mask, zone }),
            Part::Epoch(unit) => Some(Placeholder::Epoch(*unit)),
        })
    }

    /// Renders the template with every placeholder replaced by `instant` (the last poll time minus the
    /// poll delay).
    pub fn render(&self, instant: DateTime<Utc>) -> String {
        let mut out = String::with_capacity(self.text_len);
        self.render_into(instant, &mut out);
        out
    }

    /// Appends the rendered template to `out`; allocates nothing when `out` has room.
    pub fn render_into(&self, instant: DateTime<Utc>, out: &mut String) {
        for part in self.parts.iter() {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Date { mask, zone } => mask.format_into(instant, zone, out),
                Part::Epoch(unit) => {
                    let v = match unit {
                        EpochUnit::Seconds => instant.timestamp(),
                        EpochUnit::Milliseconds => instant.timestamp_millis(),
                        EpochUnit::Microseconds => instant.timestamp_micros(),
                    };
                    pad(out, v, 1);
                }
            }
        }
    }

    /// The earliest instant the rendered placeholders denote once their masks truncated `instant`: what a
    /// server reading the rendered URL understands as "since". For `yyyy-MM-dd'T'HH:mm:ss'Z'` that is
    /// `instant` floored to the second; for `yyyy-MM-dd` in a zone, the start of that day in the zone;
    /// `${epoch:s}` floors to the second. It is never after `instant`; without placeholders it is `instant`.
    ///
    /// Each date placeholder is rendered, then parsed back with the same mask and zone. When that fails or
    /// gives a later instant — masks that print only names or weeks, a two-digit year outside the
    /// century window, a local time repeated by a daylight saving overlap (read back as the later one) —
    /// the instant is instead floored, in the zone, to the finest unit the mask prints (millisecond,
    /// second, minute, hour, else day): a conservative floor. A mask without a year reads back in 1970,
    /// as in Java, which is conservative too.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use oc_template::Template;
    ///
    /// let t = Template::parse("a=${date:yyyy-MM-dd'T'HH:mm:ss'Z'}&b=${dateTimeZone:PST:yyyy-MM-dd}")?;
    /// let now = Utc.with_ymd_and_hms(2024, 7, 15, 3, 4, 5).unwrap();
    /// // 2024-07-15T03:04:05Z is 2024-07-14 in Los Angeles, which starts at 07:00Z (PDT).
    /// assert_eq!(t.effective_lower_bound(now), Utc.with_ymd_and_hms(2024, 7, 14, 7, 0, 0).unwrap());
    /// # Ok::<(), oc_template::TemplateError>(())
    /// ```
    pub fn effective_lower_bound(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        self.placeholders()
            .map(|p| match p {
                Placeholder::Date { mask, zone } => date_lower_bound(mask, zone, instant),
                Placeholder::Epoch(EpochUnit::Seconds) => floor_ms(instant, 1000),
                Placeholder::Epoch(EpochUnit::Milliseconds) => floor_ms(instant, 1),
                Placeholder::Epoch(EpochUnit::Microseconds) => {
                    DateTime::from_timestamp_micros(instant.timestamp_micros()).unwrap_or(instant)
                }
            })
            .min()
            .unwrap_or(instant)
    }
}

fn floor_ms(instant: DateTime<Utc>, unit: i64) -> DateTime<Utc> {
    let ms = instant.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(unit)).unwrap_or(instant)
}

fn date_lower_bound(mask: &Mask, zone: &Zone, instant: DateTime<Utc>) -> DateTime<Utc> {
    let text = mask.format(instant, zone);
    match mask.parse(&text, zone) {
        Ok(t) if t <= instant => t,
        _ => conservative_floor(mask.precision(), zone, instant),
    }
}

fn conservative_floor(precision: Precision, zone: &Zone, instant: DateTime<Utc>) -> DateTime<Utc> {
    let utc = instant.timestamp_millis();
    let local = utc + i64::from(zone.offsets_at(utc).total());
    let unit = match precision {
        Precision::Millisecond => 1,
        Precision::Second => 1000,
        Precision::Minute => 60_000,
        Precision::Hour => 3_600_000,
        _ => MS_PER_DAY,
    };
    let floored_local = local - local.rem_euclid(unit);
    let mut floor = utc - (local - floored_local);
    if unit == MS_PER_DAY {
        // The day may have started under another offset (a daylight saving change during the day).
        let (offsets, _) = zone.offsets_for_local(floored_local);
        floor = floor.min(floored_local - i64::from(offsets.total()));
    }
    DateTime::from_timestamp_millis(floor.min(utc)).unwrap_or(instant)
}

/// Parses the placeholder starting with `${` at `open`; returns it and the byte after its `}`.
fn placeholder(source: &str, open: usize) -> Result<(Part, usize), TemplateError> {
    let err = |kind, span: std::ops::Range<usize>| TemplateError::new(kind, source, span);
    let unterminated = || err(TemplateErrorKind::Unterminated, open..source.len());
    let body = open + 2;
    let kind_end = source[body..].find([':', '}']).map(|k| body + k).ok_or_else(unterminated)?;
    let kind = &source[body..kind_end];
    let has_args = source.as_bytes()[kind_end] == b':';
    let args = kind_end + 1;
    match kind {
        "date" | "gmtDate" | "dateTimeZone" | "DateTimeZone" => {
            let name: &'static str = match kind {
                "date" => "${date",
                "gmtDate" => "${gmtDate",
                "dateTimeZone" => "${dateTimeZone",
                _ => "${DateTimeZone",
            };
            if !has_args {
                if kind == "date" {
                    let mask = Mask::compile(DEFAULT_DATE_MASK).map_err(|_| unterminated())?;
                    return Ok((Part::Date { mask, zone: Zone::utc() }, args));
                }
                return Err(err(TemplateErrorKind::MissingMask(name), kind_end..kind_end));
            }
            let close = closing_brace(source, args).ok_or_else(unterminated)?;
            let (zone, mask_start) = match kind {
                "date" => (Zone::utc(), args),
                "gmtDate" => (Zone::gmt(), args),
                _ => split_zone(source, args, close)?,
            };
            let pattern = &source[mask_start..close];
            if pattern.is_empty() {
                return Err(err(TemplateErrorKind::EmptyMask, mask_start..close));
            }
            let mask = Mask::compile(pattern).map_err(|e| {
                let s = e.span();
                err(TemplateErrorKind::Mask(e.kind().clone()), mask_start + s.start..mask_start + s.end)
            })?;
            Ok((Part::Date { mask, zone }, close + 1))
        }
        "epoch" => {
            if !has_args {
                return Ok((Part::Epoch(EpochUnit::Milliseconds), args));
            }
            let close = source[args..].find('}').map(|k| args + k).ok_or_else(unterminated)?;
            let unit = match &source[args..close] {
                "ms" => EpochUnit::Milliseconds,
                "s" => EpochUnit::Seconds,
                "us" => EpochUnit::Microseconds,
                other => return Err(err(TemplateErrorKind::EpochUnit(other.to_owned()), args..close)),
            };
            Ok((Part::Epoch(unit), close + 1))
        }
        "milliseconds" => {
            if has_args {
                return Err(err(TemplateErrorKind::ExpectedClose("${milliseconds"), kind_end..kind_end + 1));
            }
            Ok((Part::Epoch(EpochUnit::Milliseconds), args))
        }
        other => Err(err(TemplateErrorKind::UnknownKind(other.to_owned()), body..kind_end)),
    }
}

/// The first `}` at or after `from` outside a quoted run of the mask.
fn closing_brace(source: &str, from: usize) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in source[from..].char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Some(from + i),
            _ => {}
        }
    }
    None
}

/// Splits `ZONE:MASK` in `source[start..end]`: the zone is the longest prefix before a `:` that is a valid
/// zone (offsets such as `-8:00` contain colons themselves). Returns the zone and where the mask starts.
fn split_zone(source: &str, start: usize, end: usize) -> Result<(Zone, usize), TemplateError> {
    let body = &source[start..end];
    let mut best = None;
    // Zone ids are short (the longest IANA id has 32 characters): look no further than 64 bytes.
    for (i, _) in body.match_indices(':').take_while(|(i, _)| *i <= 64) {
        if let Ok(zone) = Zone::parse(&body[..i]) {
            best = Some((zone, start + i + 1));
        }
    }
    if let Some(found) = best {
        return Ok(found);
    }
    // Report the zone as written: up to the first `:`, or the second one for offsets (`+25:00`).
    let mut colons = body.match_indices(':').map(|(i, _)| i);
    let offset_like = body.starts_with(['+', '-']) || body.starts_with("GMT+") || body.starts_with("GMT-");
    let first = colons.next().unwrap_or(body.len());
    let first = if offset_like { colons.next().unwrap_or(body.len()) } else { first };
    match Zone::parse(&body[..first]) {
        Ok(_) => Err(TemplateError::new(TemplateErrorKind::MissingZoneMask, source, end..end)),
        Err(e) => Err(TemplateError::new(TemplateErrorKind::Zone(e.kind().clone()), source, start..start + first)),
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Template {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn instant() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2019, 3, 25, 15, 31, 2).unwrap() + chrono::TimeDelta::microseconds(120_456)
    }

    fn check(template: &str, expected: &str) {
        let t = Template::parse(template).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.render(instant()), expected, "{template}");
    }

    fn check_err(template: &str, span: std::ops::Range<usize>, message: &str) {
        let e = Template::parse(template).unwrap_err();
        assert_eq!(e.span(), span, "{template}: {e}");
        assert!(e.to_string().contains(message), "{template}: {e}");
    }

    #[test]
    fn renders_placeholders() {
        check(
            "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}' and attributes='created_at,updated_at'",
            "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at'",
        );
        check("${date}", "2019-03-25T15:31:02Z");
        check("${gmtDate:HH:mm z}", "15:31 GMT");
        check("${date:z}", "UTC");
        check("${dateTimeZone:PST:HH:mm z}|${DateTimeZone:-8:00:HH:mm z}", "08:31 PDT|07:31 GMT-08:00");
        check("${dateTimeZone:GMT+05:30:HH:mm}", "21:01");
        check(
            "${epoch}|${epoch:ms}|${epoch:s}|${epoch:us}|${milliseconds}",
            "1553527862120|1553527862120|1553527862|1553527862120456|1553527862120",
        );
        check("${date:'}'yyyy}", "}2019");
        check("no placeholders ' } $ {", "no placeholders ' } $ {");
        check("$${date:yyyy}}", "$2019}");
        check("", "");
    }

    #[test]
    fn errors_point_at_the_problem() {
        check_err("a${date:yyyy", 1..12, "unterminated placeholder");
        check_err("a${date", 1..7, "unterminated placeholder");
        check_err("${time:HH}", 2..6, "unknown placeholder `time`");
        check_err("${date:}", 7..7, "empty date mask");
        check_err("${date:yyyy-MM-dd T}", 18..19, "illegal pattern character `T`");
        check_err("${date:'abc}", 0..12, "unterminated placeholder");
        check_err("${dateTimeZone:Mars:yyyy}", 15..19, "unknown zone `Mars`");
        check_err("${dateTimeZone:+25:00:HH}", 15..21, "invalid offset `+25:00`");
        check_err("${dateTimeZone:PST}", 18..18, "expected `:` and a date mask after the zone");
        check_err("${dateTimeZone:PST:}", 19..19, "empty date mask");
        check_err("${gmtDate}", 9..9, "expected `:` and a date mask after `${gmtDate`");
        check_err("${epoch:ns}", 8..10, "unknown epoch unit `ns`");
        check_err("${milliseconds:x}", 14..15, "expected `}` to close `${milliseconds`");
        check_err("${date:XXXX}", 7..11, "invalid ISO 8601 zone");
    }

    #[test]
    fn long_zone_bodies_stay_cheap() {
        // Only the first 64 bytes are tried as zones, so this is linear (it was quadratic).
        let body = ":".repeat(200_000);
        let e = Template::parse(&format!("${{dateTimeZone:{body}yyyy}}")).unwrap_err();
        assert_eq!(e.kind(), &TemplateErrorKind::Zone(crate::ZoneErrorKind::Empty));
    }

    #[test]
    fn lower_bound() {
        let check = |template: &str, expected: &str| {
            let t = Template::parse(template).unwrap();
            let got = crate::format_rfc3339_utc(t.effective_lower_bound(instant()));
            assert_eq!(got, expected, "{template}");
        };
        check("x", "2019-03-25T15:31:02.120456Z");
        check("${date}", "2019-03-25T15:31:02Z");
        check("${epoch}", "2019-03-25T15:31:02.120Z");
        check("${epoch:us}", "2019-03-25T15:31:02.120456Z");
        check("${date:yyyy-MM-dd}", "2019-03-25T00:00:00Z");
        check("${dateTimeZone:Asia/Kolkata:yyyy-MM-dd HH}", "2019-03-25T15:30:00Z");
        check("${date:HH:mm}", "1970-01-01T15:31:00Z");
        check("${date:EEE}", "1970-01-05T00:00:00Z");
        check("${date:yyyy-MM-dd'T'HH:mm:ss.SSS}&${date:yyyy-MM-dd}", "2019-03-25T00:00:00Z");
    }
}

//! Errors of this crate. Each one keeps the text it is about and the byte span of the problem in it, and
//! its `Display` shows the message, then that line of the input with a caret line under the span:
//!
//! ```text
//! unknown zone `Mars/Olympus` at byte 15
//! ${dateTimeZone:Mars/Olympus:yyyy}
//!                ^^^^^^^^^^^^
//! ```

use std::fmt;
use std::ops::Range;

/// What is wrong with a date mask (a `java.text.SimpleDateFormat` pattern).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaskErrorKind {
    /// An unquoted ASCII letter that is not a pattern letter (Java: "Illegal pattern character").
    #[error(
        "illegal pattern character `{0}`: expected one of G y Y M L w W D d F E u a H k K h m s S z Z X, or quote it"
    )]
    IllegalLetter(char),
    /// A `'` opened a quoted run that never closes.
    #[error("unterminated quote: expected a closing `'`")]
    UnterminatedQuote,
    /// `X` repeated more than three times.
    #[error("invalid ISO 8601 zone `{0}`: expected X, XX or XXX")]
    IsoZoneTooLong(String),
}

/// What is wrong with a time zone id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneErrorKind {
    /// Nothing where a zone was expected.
    #[error(
        "empty zone: expected an IANA id such as America/Los_Angeles, GMT, UTC, GMT+hh:mm or an offset such as -8:00"
    )]
    Empty,
    /// Not a zone this crate (or Java) knows.
    #[error(
        "unknown zone `{0}`: expected an IANA id such as America/Los_Angeles, GMT, UTC, GMT+hh:mm or an offset such as -8:00"
    )]
    Unknown(String),
    /// Looks like an offset but is not a valid one.
    #[error("invalid offset `{0}`: expected ±h, ±hh, ±hhmm, ±h:mm or ±hh:mm with hours 0-23 and minutes 0-59")]
    InvalidOffset(String),
}

/// Why a text is not a date in the given mask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The text does not have the expected shape at this byte.
    #[error("expected {expected}")]
    Expected {
        /// What the mask wanted here, e.g. "month (1-2 digits)" or "literal `T`".
        expected: String,
    },
    /// The mask is used up but text remains (Java would silently ignore it).
    #[error("expected end of text: the mask `{mask}` ends here")]
    TrailingText {
        /// The mask's pattern.
        mask: String,
    },
    /// A field value is outside what the calendar allows.
    #[error("{field} {value} is out of range {min}..={max}")]
    OutOfRange {
        /// Field name, e.g. "month".
        field: &'static str,
        /// The value as written (months counted from 1).
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// The fields do not describe a real date or time (Java's non-lenient check), e.g. February 30.
    #[error("{field} {value} does not exist here: the fields resolve to {resolved}")]
    Inconsistent {
        /// Field name, e.g. "day of month".
        field: &'static str,
        /// The value as written.
        value: i64,
        /// The local date-time the fields resolve to, where the field has another value.
        resolved: String,
    },
    /// The local time falls in a daylight saving gap of the zone.
    #[error("local time {local} does not exist in zone {zone}: the clocks skip it (daylight saving gap)")]
    SkippedLocalTime {
        /// The local date-time as read.
        local: String,
        /// Zone id.
        zone: String,
    },
    /// The date falls in the ten days the Julian to Gregorian switch of October 1582 skipped.
    #[error("the date does not exist: October 5-14, 1582 were skipped by the switch to the Gregorian calendar")]
    SkippedByCutover,
    /// The instant is outside what `chrono` represents (about ±262,000 years).
    #[error("the date is out of the supported range (years -262143 to 262142)")]
    OutOfSupportedRange,
}

/// What is wrong with a poller URL template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// `${` without its closing `}`.
    #[error("unterminated placeholder: expected `}}` to close `${{`")]
    Unterminated,
    /// `${name…}` where name is not a known placeholder kind.
    #[error("unknown placeholder `{0}`: expected date, gmtDate, dateTimeZone, DateTimeZone, epoch or milliseconds")]
    UnknownKind(String),
    /// A placeholder kind that needs `:MASK` has none.
    #[error("expected `:` and a date mask after `{0}`")]
    MissingMask(&'static str),
    /// `${date:}` and the like.
    #[error("empty date mask: expected a SimpleDateFormat pattern such as yyyy-MM-dd'T'HH:mm:ss'Z'")]
    EmptyMask,
    /// `${dateTimeZone:ZONE}` without `:MASK` after the zone.
    #[error("expected `:` and a date mask after the zone")]
    MissingZoneMask,
    /// The mask does not compile.
    #[error("invalid date mask: {0}")]
    Mask(#[source] MaskErrorKind),
    /// The zone is not known.
    #[error(transparent)]
    Zone(ZoneErrorKind),
    /// `${epoch:UNIT}` with an unknown unit.
    #[error("unknown epoch unit `{0}`: expected ms, s or us")]
    EpochUnit(String),
    /// Something other than `}` after a complete placeholder such as `${milliseconds`.
    #[error("expected `}}` to close `{0}`")]
    ExpectedClose(&'static str),
}

macro_rules! located_error {
    ($(#[$doc:meta])* $name:ident, $kind:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            kind: $kind,
            input: Box<str>,
            span: Range<usize>,
        }

        impl $name {
            pub(crate) fn new(kind: $kind, input: &str, span: Range<usize>) -> Self {
                let start = span.start.min(input.len());
                let end = span.end.clamp(start, input.len());
                Self { kind, input: input.into(), span: start..end }
            }

            /// What went wrong.
            pub fn kind(&self) -> &$kind {
                &self.kind
            }

            /// The text the error is about (the whole mask, zone, value or template).
            pub fn input(&self) -> &str {
                &self.input
            }

            /// Byte range of the problem in [`input`](Self::input); empty when something is missing there.
            pub fn span(&self) -> Range<usize> {
                self.span.clone()
            }

            /// The one-line message with its byte position, without the caret lines.
            pub fn message(&self) -> String {
                format!("{} at byte {}", self.kind, self.span.start)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} at byte {}", self.kind, self.span.start)?;
                write_caret(f, &self.input, &self.span)
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                std::error::Error::source(&self.kind)
            }
        }
    };
}

located_error!(
    /// A mask that does not compile, with the byte span in the mask.
    MaskError,
    MaskErrorKind
);
located_error!(
    /// An unknown or malformed zone id, with the byte span in the id.
    ZoneError,
    ZoneErrorKind
);
located_error!(
    /// A text that is not a date in the given mask, with the byte span in the text.
    ParseError,
    ParseErrorKind
);
located_error!(
    /// A template that does not parse, with the byte span in the template.
    TemplateError,
    TemplateErrorKind
);

/// Writes `\n<the line holding span.start>\n<spaces>^^^`; control characters print as spaces so the caret
/// stays under the right character.
fn write_caret(f: &mut fmt::Formatter<'_>, input: &str, span: &Range<usize>) -> fmt::Result {
    let start = floor_char_boundary(input, span.start);
    let end = floor_char_boundary(input, span.end.max(start));
    let line_start = input[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = input[start..].find('\n').map_or(input.len(), |i| start + i);
    f.write_str("\n")?;
    for c in input[line_start..line_end].chars() {
        let mut buf = [0; 4];
        f.write_str(if c.is_control() { " " } else { c.encode_utf8(&mut buf) })?;
    }
    f.write_str("\n")?;
    let pad = input[line_start..start].chars().count();
    let width = input[start..end.min(line_end)].chars().count().max(1);
    write!(f, "{:pad$}{}", "", "^".repeat(width))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, span: Range<usize>, expected: &str) {
        let e = ZoneError::new(ZoneErrorKind::Unknown("x".into()), input, span);
        assert_eq!(e.to_string(), expected);
    }

    #[test]
    fn caret_under_span() {
        check(
            "abc Mars def",
            4..8,
            "unknown zone `x`: expected an IANA id such as America/Los_Angeles, GMT, UTC, GMT+hh:mm or an offset such as -8:00 at byte 4\nabc Mars def\n    ^^^^",
        );
    }

    #[test]
    fn caret_at_end_and_on_later_line() {
        let e = ZoneError::new(ZoneErrorKind::Empty, "ab", 2..2);
        assert!(e.to_string().ends_with("\nab\n  ^"), "{e}");
        let e = ZoneError::new(ZoneErrorKind::Empty, "ab\n\tcé\nx", 5..7);
        assert!(e.to_string().ends_with("\n cé\n  ^"), "{e}");
    }

    #[test]
    fn spans_off_char_boundaries_do_not_panic() {
        let e = ZoneError::new(ZoneErrorKind::Empty, "é€", 1..5);
        assert!(e.to_string().contains('^'));
    }
}

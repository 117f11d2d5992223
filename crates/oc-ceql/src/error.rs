//! Errors of this crate: an [`Error`] is a kind ([`ErrorKind`], what is wrong) plus a place (the byte span of the
//! input it is about), rendered with a caret line under the input; and the [`Warning`]s of things accepted.

use std::fmt;
use std::ops::Range;

/// A byte range in the text a problem is about.
pub type Span = Range<usize>;

/// What is wrong with a CEQL clause or a hub URL. The messages are lowercase, without a trailing period; where
/// the problem is, is the [`Error`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A character that starts no token.
    #[error("unexpected character `{found}`")]
    UnexpectedChar {
        /// The character.
        found: char,
    },
    /// A backticked field name without its closing backtick.
    #[error("unterminated field name: the closing backtick is missing")]
    UnterminatedField,
    /// ``` `` ``` names nothing.
    #[error("empty field name")]
    EmptyField,
    /// The parser wanted something else here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What would have been understood.
        expected: String,
        /// What is there.
        found: String,
    },
    /// Too many nested parentheses.
    #[error("the clause is nested too deeply (more than {max} levels of parentheses)")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Nothing but blanks.
    #[error("the where clause is empty")]
    Empty,
    /// The URL is not `/hubs/{hub}/{resource}`.
    #[error("expected a hub URL such as `/hubs/{hub}/{resource}?where=...`")]
    NotAHubUrl {
        /// The hub of the example (the dialect's first).
        hub: &'static str,
        /// The resource of the example.
        resource: &'static str,
    },
    /// A hub the dialect does not serve.
    #[error("unknown hub `{hub}`: {element} serves {}", served_hubs(.served))]
    UnknownHub {
        /// The hub named.
        hub: String,
        /// The provider's element key.
        element: &'static str,
        /// The hubs it serves.
        served: &'static [&'static str],
    },
    /// A hub URL parameter given twice.
    #[error("`{name}` is given twice")]
    DuplicateParameter {
        /// The parameter.
        name: String,
    },
    /// `pageSize`/`page` not a whole number from 1.
    #[error("`{name}` must be a whole number from 1, found `{value}`")]
    BadNumber {
        /// The parameter.
        name: String,
        /// Its value.
        value: String,
    },
    /// A percent-encoded value that is not UTF-8.
    #[error("the value of `{name}` is not UTF-8 once percent-decoded")]
    NotUtf8 {
        /// The parameter (`resource` for the path's resource).
        name: String,
    },
}

/// "the `a` hub", "the `a` and `b` hubs", "the `a`, `b` and `c` hubs", "no hub".
fn served_hubs(hubs: &[&str]) -> String {
    let quoted: Vec<String> = hubs.iter().map(|h| format!("`{h}`")).collect();
    match quoted.as_slice() {
        [] => "no hub".to_string(),
        [one] => format!("the {one} hub"),
        [init @ .., last] => format!("the {} and {last} hubs", init.join(", ")),
    }
}

/// A problem in a CEQL clause or a hub URL: what ([`kind`](Error::kind)) and where
/// ([`span`](Error::span)). Its `Display` is the kind's message; [`render`](Error::render) adds the input with a
/// caret line under the place.
///
/// ```
/// let err = oc_ceql::parse("a = ").unwrap_err();
/// assert_eq!(err.span(), Some(&(4..4)));
/// assert_eq!(
///     err.render("a = "),
///     "expected a value (a quoted string, a number, `true` or `false`), found the end of the clause\n  a = \n      ^"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    span: Option<Span>,
}

impl Error {
    /// A problem of kind `kind` at `span` of the input.
    pub fn new(kind: ErrorKind, span: Span) -> Self {
        Error { kind, span: Some(span) }
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What is wrong, the place dropped.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// The byte range of the input this problem is about, when it is in the input.
    pub fn span(&self) -> Option<&Span> {
        self.span.as_ref()
    }

    /// Moves the span through `map` (e.g. from a decoded `where` value to the hub URL it came from, with
    /// [`Decoded::url_span`](crate::Decoded::url_span)).
    pub fn map_span(mut self, map: impl FnOnce(Span) -> Span) -> Self {
        self.span = self.span.map(map);
        self
    }

    /// The message, then `input` and a caret line under the span (see [`render`]).
    pub fn render(&self, input: &str) -> String {
        render(&self.to_string(), input, self.span.as_ref())
    }
}

impl From<ErrorKind> for Error {
    /// A problem with no place in the input.
    fn from(kind: ErrorKind) -> Self {
        Error { kind, span: None }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for Error {}

/// Something accepted but worth telling the user (e.g. a repaired quote), with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What happened, lowercase.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
}

impl Warning {
    /// The message with `input` and a caret line under the span.
    pub fn render(&self, input: &str) -> String {
        render(&self.message, input, self.span.as_ref())
    }
}

/// `message`, then `input` and a line of carets under `span` (one caret at least, also past the end). Spans
/// past the end or inside a character are clamped, never a panic.
///
/// ```
/// assert_eq!(oc_ceql::render("bad", "a >= ", Some(&(2..4))), "bad\n  a >= \n    ^^");
/// assert_eq!(oc_ceql::render("bad", "a >= ", None), "bad");
/// ```
pub fn render(message: &str, input: &str, span: Option<&Span>) -> String {
    let Some(span) = span else { return message.to_string() };
    let start = floor_boundary(input, span.start.min(input.len()));
    let end = floor_boundary(input, span.end.clamp(start, input.len()));
    // Control characters would break the alignment of the caret line: show them as spaces.
    let shown: String = input.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let pad = input[..start].chars().count();
    let width = input[start..end].chars().count().max(1);
    format!("{message}\n  {shown}\n  {}{}", " ".repeat(pad), "^".repeat(width))
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, span: Option<Span>, expected: &str) {
        assert_eq!(render("msg", input, span.as_ref()), expected);
    }

    #[test]
    fn carets_sit_under_the_span() {
        check("abc", None, "msg");
        check("abc", Some(1..2), "msg\n  abc\n   ^");
        check("abc", Some(3..3), "msg\n  abc\n     ^");
        check("é = 'x", Some(5..7), "msg\n  é = 'x\n      ^^");
        check("a\tb", Some(2..3), "msg\n  a b\n    ^");
        // Spans past the end or inside a character never panic.
        check("é", Some(1..9), "msg\n  é\n  ^");
    }

    fn check_hubs(hubs: &'static [&'static str], expected: &str) {
        let kind = ErrorKind::UnknownHub { hub: "crm".into(), element: "acme", served: hubs };
        assert_eq!(kind.to_string(), expected);
    }

    #[test]
    fn unknown_hub_names_the_served_hubs() {
        check_hubs(&[], "unknown hub `crm`: acme serves no hub");
        check_hubs(&["erp"], "unknown hub `crm`: acme serves the `erp` hub");
        check_hubs(&["a", "b"], "unknown hub `crm`: acme serves the `a` and `b` hubs");
        check_hubs(&["a", "b", "c"], "unknown hub `crm`: acme serves the `a`, `b` and `c` hubs");
    }

    #[test]
    fn an_error_is_a_kind_plus_a_place() {
        let e = Error::new(ErrorKind::EmptyField, 2..4);
        assert_eq!(e.to_string(), "empty field name");
        assert_eq!(e.span(), Some(&(2..4)));
        assert_eq!(e.clone().map_span(|s| s.start + 10..s.end + 10).span(), Some(&(12..14)));
        assert_eq!(e.render("a ``"), "empty field name\n  a ``\n    ^^");
        let unplaced = Error::from(ErrorKind::Empty);
        assert_eq!(unplaced.span(), None);
        assert_eq!(unplaced.map_span(|_| 0..1).render("x"), "the where clause is empty");
        assert_eq!(e.into_kind(), ErrorKind::EmptyField);
    }
}

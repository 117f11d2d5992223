//! Errors of this crate: problems in a hub URL or its CEQL `where` clause, each with the byte span it is about
//! and a rendering with a caret under the input, and the conversion into the port's [`QueryError`].
//!
//! Failures of calls to Sage are the port's [`ProviderError`](oc_model::ports::ProviderError); the decoded
//! Sage error body is [`SageApiError`].

use std::ops::Range;

use oc_model::ports::{Diagnostic, QueryError};
use serde::Deserialize;

/// A byte range in the text a problem is about.
pub type Span = Range<usize>;

/// A problem in a hub URL or a CEQL clause. Every variant knows where it is (see [`CeqlError::span`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeqlError {
    /// A character that starts no token.
    #[error("unexpected character `{found}`")]
    UnexpectedChar {
        /// The character.
        found: char,
        /// Where.
        span: Span,
    },
    /// A backticked field name without its closing backtick.
    #[error("unterminated field name: the closing backtick is missing")]
    UnterminatedField {
        /// Where it starts.
        span: Span,
    },
    /// ``` `` ``` names nothing.
    #[error("empty field name")]
    EmptyField {
        /// Where.
        span: Span,
    },
    /// The parser wanted something else here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What would have been understood.
        expected: String,
        /// What is there.
        found: String,
        /// Where.
        span: Span,
    },
    /// Too many nested parentheses.
    #[error("the clause is nested too deeply (more than {max} levels of parentheses)")]
    TooDeep {
        /// The limit.
        max: usize,
        /// The parenthesis that went over it.
        span: Span,
    },
    /// Nothing but blanks.
    #[error("the where clause is empty")]
    Empty {
        /// Where.
        span: Span,
    },
    /// The URL is not `/hubs/{hub}/{resource}`.
    #[error("expected a hub URL such as `/hubs/finance/customers?where=...`")]
    NotAHubUrl {
        /// The path.
        span: Span,
    },
    /// A hub other than `finance`.
    #[error("unknown hub `{hub}`: sageone serves the `finance` hub")]
    UnknownHub {
        /// The hub named.
        hub: String,
        /// Where.
        span: Span,
    },
    /// A resource that is neither a hub resource nor a Sage list endpoint.
    #[error("unknown resource `{name}`; known: {known}")]
    UnknownResource {
        /// The resource named.
        name: String,
        /// The hub resources, for the message.
        known: String,
        /// Where, when it is in the input.
        span: Option<Span>,
    },
    /// A hub URL parameter given twice.
    #[error("`{name}` is given twice")]
    DuplicateParameter {
        /// The parameter.
        name: String,
        /// The second one.
        span: Span,
    },
    /// `pageSize`/`page` not a whole number from 1.
    #[error("`{name}` must be a whole number from 1, found `{value}`")]
    BadNumber {
        /// The parameter.
        name: String,
        /// Its value.
        value: String,
        /// Where.
        span: Span,
    },
    /// A percent-encoded value that is not UTF-8.
    #[error("the value of `{name}` is not UTF-8 once percent-decoded")]
    NotUtf8 {
        /// The parameter.
        name: String,
        /// Where.
        span: Span,
    },
    /// A name that is not a query parameter of the endpoint and not a field of its records.
    #[error("`{name}` is not a query parameter of {path} nor a field of its records")]
    NotDeclared {
        /// The name.
        name: String,
        /// The Sage path.
        path: String,
        /// Where.
        span: Span,
    },
    /// A Sage query parameter used where only a record field can be evaluated (inside `OR`, with `!=`, ...).
    #[error(
        "`{name}` is a query parameter of {path}, not a record field: use it only as a top-level AND term `{name} = value`"
    )]
    NotAField {
        /// The parameter.
        name: String,
        /// The Sage path.
        path: String,
        /// Where.
        span: Span,
    },
    /// `attributes` not written as `attributes='a,b'` at the top level.
    #[error("`attributes` must be a top-level AND term `attributes='field,field'`")]
    BadAttributes {
        /// Where.
        span: Span,
    },
    /// A value pushed down as a date that is not one.
    #[error("`{value}` is not a date (expected e.g. `2024-01-31` or `2024-01-31T12:00:00Z`)")]
    NotADate {
        /// The value.
        value: String,
        /// Where.
        span: Span,
    },
    /// A value of the wrong type for a parameter.
    #[error("`{name}` takes a {expected} value")]
    WrongType {
        /// The parameter.
        name: String,
        /// The swagger type.
        expected: &'static str,
        /// Where.
        span: Span,
    },
    /// A parameter the resource already fixes, with another value.
    #[error("the resource already sends `{name}={fixed}`")]
    Conflict {
        /// The parameter.
        name: String,
        /// The fixed value.
        fixed: String,
        /// Where.
        span: Span,
    },
    /// A parameter pushed down twice.
    #[error("`{name}` is given twice")]
    Twice {
        /// The parameter.
        name: String,
        /// The second one.
        span: Span,
    },
    /// A parameter managed by the client (`items_per_page`, `page`, `sort`).
    #[error("`{name}` cannot be set in the where clause: {hint}")]
    Reserved {
        /// The parameter.
        name: String,
        /// What to do instead.
        hint: &'static str,
        /// Where.
        span: Span,
    },
    /// `orderBy` on an endpoint without `sort`, or by a key `sort` does not accept.
    #[error("{path} cannot be ordered by `{key}`{}", if .keys.is_empty() { " (it has no sort)".to_string() } else { format!(" (sort keys: {})", .keys) })]
    BadOrder {
        /// The Sage path.
        path: String,
        /// The key asked for.
        key: String,
        /// The keys the endpoint accepts, comma separated.
        keys: String,
        /// Where.
        span: Span,
    },
}

impl CeqlError {
    /// The byte range of the input this problem is about, when it is in the input.
    pub fn span(&self) -> Option<Span> {
        use CeqlError::*;
        match self {
            UnknownResource { span, .. } => span.clone(),
            UnexpectedChar { span, .. }
            | UnterminatedField { span }
            | EmptyField { span }
            | Expected { span, .. }
            | TooDeep { span, .. }
            | Empty { span }
            | NotAHubUrl { span }
            | UnknownHub { span, .. }
            | DuplicateParameter { span, .. }
            | BadNumber { span, .. }
            | NotUtf8 { span, .. }
            | NotDeclared { span, .. }
            | NotAField { span, .. }
            | BadAttributes { span }
            | NotADate { span, .. }
            | WrongType { span, .. }
            | Conflict { span, .. }
            | Twice { span, .. }
            | Reserved { span, .. }
            | BadOrder { span, .. } => Some(span.clone()),
        }
    }

    /// Moves the span through `map` (e.g. from a decoded `where` value to the hub URL it came from).
    pub(crate) fn map_span(mut self, map: impl Fn(Span) -> Span) -> Self {
        use CeqlError::*;
        match &mut self {
            UnknownResource { span, .. } => *span = span.take().map(&map),
            UnexpectedChar { span, .. }
            | UnterminatedField { span }
            | EmptyField { span }
            | Expected { span, .. }
            | TooDeep { span, .. }
            | Empty { span }
            | NotAHubUrl { span }
            | UnknownHub { span, .. }
            | DuplicateParameter { span, .. }
            | BadNumber { span, .. }
            | NotUtf8 { span, .. }
            | NotDeclared { span, .. }
            | NotAField { span, .. }
            | BadAttributes { span }
            | NotADate { span, .. }
            | WrongType { span, .. }
            | Conflict { span, .. }
            | Twice { span, .. }
            | Reserved { span, .. }
            | BadOrder { span, .. } => *span = map(span.clone()),
        }
        self
    }

    /// The port's diagnostic: the message, the span and a rendering with a caret under `input`.
    pub fn diagnostic(&self, input: &str) -> Diagnostic {
        let message = self.to_string();
        let span = self.span();
        Diagnostic { rendered: render(&message, input, span.as_ref()), message, span }
    }
}

/// Every problem of `errors` as one [`QueryError`], rendered against `input`.
pub fn query_error(errors: &[CeqlError], input: &str) -> QueryError {
    QueryError(errors.iter().map(|e| e.diagnostic(input)).collect())
}

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

/// `message`, then `input` and a line of carets under `span` (one caret at least, also past the end).
///
/// ```
/// assert_eq!(oc_sageone::error::render("bad", "a >= ", Some(&(2..4))), "bad\n  a >= \n    ^^");
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

/// One entry of the JSON array Sage answers errors with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SageApiError {
    /// `error`, `warning`, ...
    #[serde(rename = "$severity", default)]
    pub severity: Option<String>,
    /// Stable code (`RecordNotFound`, `AuthorizationFailure`, ...).
    #[serde(rename = "$dataCode", default)]
    pub data_code: Option<String>,
    /// Human message.
    #[serde(rename = "$message", default)]
    pub message: Option<String>,
    /// The field or parameter it is about.
    #[serde(rename = "$source", default)]
    pub source: Option<String>,
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
}

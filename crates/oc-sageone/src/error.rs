//! Errors of this crate: problems in a hub URL or its CEQL `where` clause as this provider sees them — the
//! language's own ([`oc_ceql::ErrorKind`]) and the translator's — each a kind plus the byte span it is about,
//! rendered with a caret under the input, and the conversion into the port's [`QueryError`].
//!
//! Failures of calls to Sage are the port's [`ProviderError`](oc_model::ports::ProviderError); the decoded
//! Sage error body is [`SageApiError`].

use std::fmt;

pub use oc_ceql::{Span, Warning, render};
use oc_model::ports::{Diagnostic, QueryError};
use serde::Deserialize;

/// What is wrong with a hub URL or a CEQL clause for Sage: a problem of the language or the hub URL, or one of
/// the translation to Sage's parameters. Where it is, is the [`CeqlError`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeqlErrorKind {
    /// A problem of the clause's syntax or of the hub URL (the message is the language's).
    #[error(transparent)]
    Ceql(oc_ceql::ErrorKind),
    /// A resource that is neither a hub resource nor a Sage list endpoint.
    #[error("unknown resource `{name}`; known: {known}")]
    UnknownResource {
        /// The resource named.
        name: String,
        /// The hub resources, for the message.
        known: String,
    },
    /// A name that is not a query parameter of the endpoint and not a field of its records.
    #[error("`{name}` is not a query parameter of {path} nor a field of its records")]
    NotDeclared {
        /// The name.
        name: String,
        /// The Sage path.
        path: String,
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
    },
    /// `attributes` not written as `attributes='a,b'` at the top level.
    #[error("`attributes` must be a top-level AND term `attributes='field,field'`")]
    BadAttributes,
    /// A value pushed down as a date that is not one.
    #[error("`{value}` is not a date (expected e.g. `2024-01-31` or `2024-01-31T12:00:00Z`)")]
    NotADate {
        /// The value.
        value: String,
    },
    /// A value of the wrong type for a parameter.
    #[error("`{name}` takes a {expected} value")]
    WrongType {
        /// The parameter.
        name: String,
        /// The swagger type.
        expected: &'static str,
    },
    /// A parameter the resource already fixes, with another value.
    #[error("the resource already sends `{name}={fixed}`")]
    Conflict {
        /// The parameter.
        name: String,
        /// The fixed value.
        fixed: String,
    },
    /// A parameter pushed down twice.
    #[error("`{name}` is given twice")]
    Twice {
        /// The parameter.
        name: String,
    },
    /// A parameter managed by the client (`items_per_page`, `page`, `sort`).
    #[error("`{name}` cannot be set in the where clause: {hint}")]
    Reserved {
        /// The parameter.
        name: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// An entry of the hub URL's `fields` that cannot be a record field name.
    #[error("`{name}` is not a field name: `fields` takes record fields separated by commas (e.g. `name,email`)")]
    BadField {
        /// The entry.
        name: String,
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
    },
}

/// A problem in a hub URL or a CEQL clause: what ([`kind`](CeqlError::kind)) and where
/// ([`span`](CeqlError::span)). Its `Display` is the kind's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeqlError {
    kind: CeqlErrorKind,
    span: Option<Span>,
}

impl CeqlError {
    /// A problem of kind `kind` at `span` of the input.
    pub fn new(kind: CeqlErrorKind, span: Span) -> Self {
        CeqlError { kind, span: Some(span) }
    }

    /// What is wrong.
    pub fn kind(&self) -> &CeqlErrorKind {
        &self.kind
    }

    /// The byte range of the input this problem is about, when it is in the input.
    pub fn span(&self) -> Option<&Span> {
        self.span.as_ref()
    }

    /// Moves the span through `map` (e.g. from a decoded `where` value to the hub URL it came from).
    pub fn map_span(mut self, map: impl FnOnce(Span) -> Span) -> Self {
        self.span = self.span.map(map);
        self
    }

    /// The message, then `input` and a caret line under the span.
    pub fn render(&self, input: &str) -> String {
        render(&self.to_string(), input, self.span.as_ref())
    }

    /// The port's diagnostic: the message, the span and a rendering with a caret under `input`.
    pub fn diagnostic(&self, input: &str) -> Diagnostic {
        let message = self.to_string();
        Diagnostic { rendered: render(&message, input, self.span.as_ref()), message, span: self.span.clone() }
    }
}

impl From<CeqlErrorKind> for CeqlError {
    /// A problem with no place in the input.
    fn from(kind: CeqlErrorKind) -> Self {
        CeqlError { kind, span: None }
    }
}

impl From<oc_ceql::Error> for CeqlError {
    fn from(e: oc_ceql::Error) -> Self {
        let span = e.span().cloned();
        CeqlError { kind: CeqlErrorKind::Ceql(e.into_kind()), span }
    }
}

impl fmt::Display for CeqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for CeqlError {}

/// Every problem of `errors` as one [`QueryError`], rendered against `input`.
pub fn query_error(errors: &[CeqlError], input: &str) -> QueryError {
    QueryError(errors.iter().map(|e| e.diagnostic(input)).collect())
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

    #[test]
    fn an_error_is_a_kind_plus_a_place() {
        let e = CeqlError::new(CeqlErrorKind::Twice { name: "search".into() }, 4..10);
        assert_eq!(e.to_string(), "`search` is given twice");
        assert_eq!(e.render("a & search"), "`search` is given twice\n  a & search\n      ^^^^^^");
        let d = e.clone().map_span(|s| s.start + 1..s.end).diagnostic("xa & search");
        assert_eq!(d.span, Some(5..10));
        assert_eq!(d.rendered, "`search` is given twice\n  xa & search\n       ^^^^^");
        // The language's errors keep their message and place.
        let syntax = CeqlError::from(oc_ceql::parse("a # 1").unwrap_err());
        assert_eq!(syntax.kind(), &CeqlErrorKind::Ceql(oc_ceql::ErrorKind::UnexpectedChar { found: '#' }));
        assert_eq!(syntax.render("a # 1"), "unexpected character `#`\n  a # 1\n    ^");
        let unplaced = CeqlError::from(CeqlErrorKind::BadAttributes);
        assert_eq!(
            unplaced.diagnostic("x").rendered,
            "`attributes` must be a top-level AND term `attributes='field,field'`"
        );
    }
}

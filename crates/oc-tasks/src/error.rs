//! Errors of this crate: [`TasksError`] when a provider cannot be built, and [`CompileError`] (a kind plus a
//! place) for a hub URL that cannot be compiled, which the port receives as
//! [`QueryError`](oc_model::ports::QueryError) diagnostics with carets. Failures of calls to the API are the
//! port's [`ProviderError`](oc_model::ports::ProviderError).

use oc_ceql::Span;
use oc_model::ports::{Diagnostic, QueryError};

use crate::spec::{HUB, RESOURCES};

/// Why a [`TasksProvider`](crate::TasksProvider) cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    /// The base URL is not an absolute URL.
    #[error("invalid tasks api url {url:?}")]
    BadBaseUrl {
        /// The URL given.
        url: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client")]
    Client(#[source] reqwest::Error),
}

/// What is wrong with a hub URL for the Tasks API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileErrorKind {
    /// The language's own problem (syntax, hub URL shape).
    #[error(transparent)]
    Ceql(oc_ceql::ErrorKind),
    /// A resource the `work` hub does not have.
    #[error("unknown resource `{name}`: the {HUB} hub has {}", RESOURCES.map(|(n, _)| n).join(", "))]
    UnknownResource {
        /// The resource named.
        name: String,
    },
    /// `lastModifiedDate >= value` with a value that is not a date.
    #[error("`{value}` is not a date (an ISO date or an RFC 3339 date-time)")]
    NotADate {
        /// The value.
        value: String,
    },
    /// `orderBy` other than `lastModifiedDate` ascending: the API has one order.
    #[error("the tasks api orders by lastModifiedDate only, found `{found}`")]
    BadOrder {
        /// The `orderBy` given.
        found: String,
    },
}

/// A problem of a hub URL: what and where (a byte span of the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct CompileError {
    /// What is wrong.
    pub kind: CompileErrorKind,
    /// Where in the URL, when known.
    pub span: Option<Span>,
}

impl CompileError {
    pub(crate) fn new(kind: CompileErrorKind, span: Span) -> Self {
        CompileError { kind, span: Some(span) }
    }

    /// The port's diagnostic: the message with `input` and a caret line under the span.
    pub fn diagnostic(&self, input: &str) -> Diagnostic {
        let message = self.to_string();
        Diagnostic { rendered: oc_ceql::render(&message, input, self.span.as_ref()), message, span: self.span.clone() }
    }
}

impl From<oc_ceql::Error> for CompileError {
    fn from(e: oc_ceql::Error) -> Self {
        let span = e.span().cloned();
        CompileError { kind: CompileErrorKind::Ceql(e.into_kind()), span }
    }
}

/// Every problem as one [`QueryError`], rendered against `input`.
pub(crate) fn query_error(errors: &[CompileError], input: &str) -> QueryError {
    QueryError(errors.iter().map(|e| e.diagnostic(input)).collect())
}

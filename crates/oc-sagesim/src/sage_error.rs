//! Sage's error responses: an HTTP status and a JSON array of `{"$severity", "$dataCode", "$message", "$source"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One API error as Sage answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) source: String,
    /// Seconds for a `Retry-After` header (429 bursts that ask for one).
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), source: String::new(), retry_after: None }
    }

    pub(crate) fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// 401: unknown, revoked or expired access token.
    pub(crate) fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "AuthorizationFailure", "The access token is invalid or has expired")
    }

    /// 404 for a record or path that does not exist.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "RecordNotFound", message)
    }

    /// 422 for a parameter or record value Sage refuses.
    pub(crate) fn invalid(source: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "RecordInvalid", message).with_source(source)
    }

    /// 400 for a query parameter the endpoint does not declare.
    pub(crate) fn unexpected_parameter(name: &str, method: &str, path: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnexpectedParameter",
            format!("The parameter '{name}' is not supported by {method} {path}"),
        )
        .with_source(name)
    }

    /// 429.
    pub(crate) fn throttled(retry_after: Option<u64>) -> Self {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests, slow down");
        e.retry_after = retry_after;
        e
    }

    /// 500.
    pub(crate) fn unexpected() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UnexpectedError", "An unexpected error occurred")
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        json!([{"$severity": "error", "$dataCode": self.code, "$message": self.message, "$source": self.source}])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

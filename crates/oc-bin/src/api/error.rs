//! The one table from API errors to HTTP: status, stable code, message, and the per-path problems.
//!
//! 4xx answers show the detail; 5xx answers log it and say something generic, so internals never leak.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oc_model::Problem;
use oc_model::ports::{ProviderError, StoreError};
use serde::Serialize;

/// An API failure.
#[derive(Debug)]
pub enum ApiError {
    /// Missing or wrong credentials.
    Unauthorized(String),
    /// The instance is disabled (instance calls answer 403).
    Forbidden(String),
    /// Not found, or another organization's.
    NotFound(String),
    /// The body or a parameter is wrong: every problem found.
    Invalid { message: String, problems: Vec<Problem> },
    /// A hub query (its `where`, `orderBy`, `fields`, paging parameters) is wrong: every problem found, each
    /// naming its parameter.
    InvalidQuery { message: String, problems: Vec<Problem> },
    /// The provider refused the authorization code or the app credentials.
    ProviderAuth(String),
    /// The provider failed.
    Provider(ProviderError),
    /// A state conflict.
    Conflict(String),
    /// A change-feed cursor older than what is kept (`410 cursor_expired`): reading on would skip changes.
    CursorExpired(String),
    /// The request body is over the limit (`413 payload_too_large`, the problem at `body`).
    PayloadTooLarge(String),
    /// The route does not take the method (`405 method_not_allowed`, the problem at `method`).
    MethodNotAllowed(String),
    /// The request was not answered within the request timeout (`408 request_timeout`).
    RequestTimeout(String),
    /// The provider did not answer within the deadline of calls waiting for it (`504 provider_timeout`).
    ProviderTimeout(String),
    /// Another answer axum made by itself, in the API's format: its status and what it said.
    Rejected { status: StatusCode, message: String },
    /// Anything else; logged, answered generically.
    Internal(String),
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The id of the request (also in the `x-request-id` header and the log).
    pub request_id: String,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Per-path problems (validation).
    pub errors: Vec<Problem>,
}

impl ApiError {
    /// A 400 with one problem.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Invalid { message: message.clone(), problems: vec![Problem::new(path, message)] }
    }

    /// The table: status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::InvalidQuery { .. } => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::ProviderAuth(_) => (StatusCode::BAD_REQUEST, "provider_authorization_failed"),
            ApiError::Provider(e) => match e {
                ProviderError::ReauthorizationRequired(_) => (StatusCode::CONFLICT, "reauthorization_required"),
                ProviderError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "provider_rate_limited"),
                ProviderError::Query(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
                ProviderError::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "not_supported"),
                ProviderError::Api { status, .. } if (400..500).contains(status) => {
                    (StatusCode::BAD_GATEWAY, "provider_rejected")
                }
                _ => (StatusCode::BAD_GATEWAY, "provider_unavailable"),
            },
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::CursorExpired(_) => (StatusCode::GONE, "cursor_expired"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::ProviderTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "provider_timeout"),
            ApiError::Rejected { status, .. } => (
                *status,
                match status.as_u16() {
                    404 => "not_found",
                    415 => "unsupported_media_type",
                    500.. => "internal",
                    _ => "invalid_request",
                },
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The body for request `request_id`.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        let (status, code) = self.status_and_code();
        let (message, errors) = match self {
            ApiError::Invalid { message, problems } | ApiError::InvalidQuery { message, problems } => {
                (message.clone(), problems.clone())
            }
            ApiError::Provider(ProviderError::Query(q)) => (
                "the query cannot be translated".to_string(),
                q.0.iter().map(|d| Problem::new("where", d.rendered.clone())).collect(),
            ),
            ApiError::Internal(_) => ("internal error; see the server log for this request id".to_string(), vec![]),
            ApiError::Rejected { .. } if status.is_server_error() => {
                ("internal error; see the server log for this request id".to_string(), vec![])
            }
            ApiError::PayloadTooLarge(m) => (m.clone(), vec![Problem::new("body", m.clone())]),
            ApiError::MethodNotAllowed(m) => (m.clone(), vec![Problem::new("method", m.clone())]),
            ApiError::RequestTimeout(m) | ApiError::ProviderTimeout(m) | ApiError::Rejected { message: m, .. } => {
                (m.clone(), vec![])
            }
            ApiError::Provider(e @ ProviderError::Unsupported(_)) => (e.to_string(), vec![]),
            ApiError::Provider(e) if status.is_server_error() => (format!("the provider failed: {e}"), vec![]),
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::ProviderAuth(m)
            | ApiError::Conflict(m)
            | ApiError::CursorExpired(m) => (m.clone(), vec![]),
            ApiError::Provider(e) => (e.to_string(), vec![]),
        };
        ErrorBody { request_id: request_id.to_string(), code, message, errors }
    }
}

impl ApiError {
    /// The `Retry-After` of a 429: the provider's delay in whole seconds, rounded up (1 when it gave none).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            ApiError::Provider(ProviderError::RateLimited { retry_after }) => {
                let d = retry_after.unwrap_or(std::time::Duration::from_secs(1));
                Some((d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1))
            }
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::InvalidCode(m) => {
                ApiError::ProviderAuth(format!("the provider refused providerData.code: {m}"))
            }
            ProviderError::InvalidClient(m) => {
                ApiError::ProviderAuth(format!("the provider refused oauth.api.key / oauth.api.secret: {m}"))
            }
            ProviderError::Store(s) => ApiError::from(s),
            other => ApiError::Provider(other),
        }
    }
}

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware around the handler.
    pub static REQUEST_ID: String;
}

/// The current request id, or `-` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "-".to_string())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, error = ?self, "request failed");
        }
        let mut response = (status, axum::Json(self.body(&current_request_id()))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", HeaderValue::from_static("User, Organization"));
        }
        if let Some(seconds) = self.retry_after_seconds() {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_throttled_provider_is_a_429_with_retry_after_in_whole_seconds_rounded_up() {
        let check = |retry_after: Option<Duration>, seconds: &str| {
            let e = ApiError::Provider(ProviderError::RateLimited { retry_after });
            assert_eq!(e.status_and_code(), (StatusCode::TOO_MANY_REQUESTS, "provider_rate_limited"));
            let response = e.into_response();
            assert_eq!(response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()), Some(seconds));
        };
        check(Some(Duration::from_millis(57_300)), "58");
        check(Some(Duration::from_secs(3)), "3");
        check(Some(Duration::from_millis(20)), "1");
        check(Some(Duration::ZERO), "1");
        check(None, "1");
        let other = ApiError::NotFound("x".into()).into_response();
        assert!(other.headers().get(RETRY_AFTER).is_none());
    }

    #[test]
    fn a_provider_that_cannot_do_something_says_so() {
        let e = ApiError::Provider(ProviderError::Unsupported("tasks does not read single records".into()));
        assert_eq!(e.status_and_code(), (StatusCode::NOT_IMPLEMENTED, "not_supported"));
        assert_eq!(e.body("r").message, "not supported: tasks does not read single records");
    }
}

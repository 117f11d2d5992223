//! The API's time limits and the one error body for what axum answers by itself.
//!
//! - [`request_deadline`]: every request is answered within `--http-request-timeout-seconds` (408
//!   `request_timeout`), plus what the request waits for by its nature: a change-feed read its `wait` (up to
//!   [`MAX_WAIT_SECONDS`]), a call exchanging an OAuth code with Sage Sage's request timeout. The handler runs in a
//!   task of its own, which goes on when the answer is given without it: what it started at Sage (a code exchange,
//!   a token refresh) completes and is saved rather than being cut in the middle.
//! - [`uniform_errors`]: the rejections of axum's extractors and router (a path parameter that does not parse, a
//!   body over [`BODY_LIMIT`], a method a route does not take) are plain text or empty; they are answered in the
//!   API's error body instead, each naming what is wrong and where.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{ALLOW, CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::BASE;
use super::changes::MAX_WAIT_SECONDS;
use super::error::{ApiError, REQUEST_ID, current_request_id};

/// The largest request body the API reads (2 MiB).
pub const BODY_LIMIT: usize = 2 << 20;

/// What a Sage OAuth code exchange may take (Sage's request timeout, a try).
const CODE_EXCHANGE_ALLOWANCE: Duration = Duration::from_secs(30);

/// The API's time limits (a request extension, for the handlers that wait on a provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// `--http-request-timeout-seconds`.
    pub request_timeout: Duration,
    /// `--sage-call-deadline-seconds`: the longest a hub call waits for the provider.
    pub provider_deadline: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits { request_timeout: Duration::from_secs(30), provider_deadline: Duration::from_secs(25) }
    }
}

/// What `method path` may take on top of the request timeout: what it waits for by its nature.
pub fn allowance(method: &Method, path: &str) -> Duration {
    let api = path.strip_prefix(BASE).unwrap_or("");
    let segments: Vec<&str> = api.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        // the change feed's long poll
        (&Method::GET, ["instances", "changes"] | ["instances", _, "changes"]) => {
            Duration::from_secs_f64(MAX_WAIT_SECONDS)
        }
        // an OAuth code exchanged with Sage: creating, replacing or patching an instance, the console's callback
        (&Method::POST, ["instances"]) | (&Method::PATCH, ["instances"]) => CODE_EXCHANGE_ALLOWANCE,
        (&Method::PUT | &Method::PATCH, ["instances", _]) => CODE_EXCHANGE_ALLOWANCE,
        (&Method::GET, _) if path == crate::console::CALLBACK_PATH => CODE_EXCHANGE_ALLOWANCE,
        _ => Duration::ZERO,
    }
}

/// Answers 408 `request_timeout` when the request is not answered within its time ([`allowance`]).
pub async fn request_deadline(State(limits): State<ApiLimits>, request: Request, next: Next) -> Response {
    let budget = limits.request_timeout + allowance(request.method(), request.uri().path());
    let task = tokio::spawn(REQUEST_ID.scope(current_request_id(), next.run(request)));
    match tokio::time::timeout(budget, task).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => ApiError::Internal(format!("the handler failed: {e}")).into_response(),
        Err(_) => {
            let mut response = ApiError::RequestTimeout(format!(
                "the request was not answered within {} s (--http-request-timeout-seconds{}); the connection is \
                 closed",
                budget.as_secs(),
                if budget > limits.request_timeout { " and what this call waits for" } else { "" },
            ))
            .into_response();
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Answers the errors axum makes by itself (plain text or empty) in the API's error body.
pub async fn uniform_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    // the route's template, passed out by `mark_route` (routing happens inside this layer)
    let matched = response.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {} MiB ({BODY_LIMIT} bytes)",
            BODY_LIMIT >> 20
        )),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = match parts.headers.get(ALLOW).and_then(|v| v.to_str().ok()) {
                Some(a) if !a.is_empty() => a.to_string(),
                _ => allowed_methods(&path).join(", "),
            };
            let route = matched.as_deref().unwrap_or(&path);
            ApiError::MethodNotAllowed(if allow.is_empty() {
                format!("{route} does not take {method}")
            } else {
                format!("{route} does not take {method}; it takes {allow}")
            })
        }
        StatusCode::BAD_REQUEST if text.starts_with("Invalid URL") || text.starts_with("Wrong number") => {
            path_problem(&text, matched.as_deref(), &path)
        }
        StatusCode::BAD_REQUEST if text.starts_with("Failed to buffer the request body") => {
            ApiError::invalid("body", format!("the request body could not be read: {text}"))
        }
        _ => ApiError::Rejected {
            status,
            message: if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text },
        },
    };
    let mut out = error.into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = match parts.headers.get(ALLOW) {
            Some(a) if !a.is_empty() => Some(a.clone()),
            _ => HeaderValue::from_str(&allowed_methods(&path).join(", ")).ok(),
        };
        if let Some(allow) = allow.filter(|a| !a.is_empty()) {
            out.headers_mut().insert(ALLOW, allow);
        }
    }
    out
}

/// The methods the API takes at `path` (under the API base or relative to it), from its OpenAPI document.
fn allowed_methods(path: &str) -> Vec<String> {
    static PATHS: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> = std::sync::OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        let document = super::openapi::document();
        let Some(paths) = document["paths"].as_object() else { return Vec::new() };
        paths
            .iter()
            .map(|(template, operations)| {
                let segments = template.split('/').map(str::to_string).collect();
                let methods = operations
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect()
    });
    let full = if path.starts_with(BASE) { path.to_string() } else { format!("{BASE}{path}") };
    let segments: Vec<&str> = full.split('/').collect();
    paths
        .iter()
        .find(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
        .map(|(_, methods)| methods.clone())
        .unwrap_or_default()
}

/// The problem of a path parameter axum could not parse, named by the parameter (from the route's template).
fn path_problem(text: &str, template: Option<&str>, path: &str) -> ApiError {
    let ticks: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
    let params = template.map(|t| parameters(t, path)).unwrap_or_default();
    // "Cannot parse `key` with value `v` to a `T`", "... value at index i with value `v` ...", "Cannot parse `v`
    // to a `T`"
    let value = match text.find("with value `") {
        Some(at) => text[at + "with value `".len()..].split('`').next().unwrap_or(""),
        None => ticks.first().copied().unwrap_or(""),
    };
    let expected = ticks.last().copied().unwrap_or("");
    let by_index = text
        .split("at index ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| params.get(i));
    let name = by_index
        .or_else(|| params.iter().find(|(_, v)| v == value))
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| "path".to_string());
    let what = match (name.as_str(), expected) {
        ("id", _) => "an instance id (a whole number)".to_string(),
        (_, "i64" | "u64" | "i32" | "u32" | "usize") => "a whole number".to_string(),
        (_, other) if !other.is_empty() => format!("a {other}"),
        _ => "valid here".to_string(),
    };
    if value.is_empty() {
        return ApiError::invalid(name, format!("the path {path:?} cannot be read: {text}"));
    }
    ApiError::invalid(name.clone(), format!("the path parameter `{name}` is `{value}`, which is not {what}"))
}

/// The parameters of a route `template` (`/a/{id}/b/{x}`) with their (percent-decoded) values in `path`.
fn parameters(template: &str, path: &str) -> Vec<(String, String)> {
    // aligned from the end: inside a nested router the path has lost its prefix, the template may not have
    let mut params: Vec<(String, String)> = template
        .rsplit('/')
        .zip(path.rsplit('/'))
        .filter_map(|(t, v)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            let value = percent_decode(v);
            Some((name.trim_start_matches('*').to_string(), value))
        })
        .collect();
    params.reverse();
    params
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_and_the_code_exchanges_get_their_waits_on_top() {
        let feed = Duration::from_secs(60);
        assert_eq!(allowance(&Method::GET, "/elements/api-v2/instances/7/changes"), feed);
        assert_eq!(allowance(&Method::GET, "/elements/api-v2/instances/changes"), feed);
        assert_eq!(allowance(&Method::POST, "/elements/api-v2/instances/7/changes"), Duration::ZERO);
        assert_eq!(allowance(&Method::POST, "/elements/api-v2/instances"), CODE_EXCHANGE_ALLOWANCE);
        assert_eq!(allowance(&Method::PUT, "/elements/api-v2/instances/3"), CODE_EXCHANGE_ALLOWANCE);
        assert_eq!(allowance(&Method::GET, "/ui/oauth/callback"), CODE_EXCHANGE_ALLOWANCE);
        assert_eq!(allowance(&Method::GET, "/elements/api-v2/instances/3"), Duration::ZERO);
        assert_eq!(allowance(&Method::GET, "/elements/api-v2/hubs/finance/customers"), Duration::ZERO);
    }

    #[test]
    fn a_path_rejection_names_its_parameter() {
        let name = |text: &str, template: &str, path: &str| match path_problem(text, Some(template), path) {
            ApiError::Invalid { problems, .. } => (problems[0].path.clone(), problems[0].message.clone()),
            other => panic!("{other:?}"),
        };
        let (p, m) = name("Invalid URL: Cannot parse `abc` to a `i64`", "/x/instances/{id}", "/x/instances/abc");
        assert_eq!(p, "id");
        assert!(m.contains("`abc`") && m.contains("instance id"), "{m}");
        let (p, _) = name(
            "Invalid URL: Cannot parse value at index 0 with value `q` to a `i64`",
            "/x/instances/{id}/alerts/{alert_id}",
            "/x/instances/q/alerts/q",
        );
        assert_eq!(p, "id");
        let (p, m) = name("Invalid URL: Cannot parse `n` with value `z` to a `u32`", "/x/{n}", "/x/z");
        assert_eq!((p.as_str(), m.contains("whole number")), ("n", true), "{m}");
        let (p, _) =
            name("Invalid URL: Cannot parse `abc` to a `i64`", "/elements/api-v2/instances/{id}", "/instances/abc");
        assert_eq!(p, "id");
    }

    #[test]
    fn the_methods_a_path_takes_come_from_the_openapi_document() {
        assert_eq!(allowed_methods("/instances/configuration"), ["GET"]);
        assert!(allowed_methods("/elements/api-v2/instances/7").contains(&"DELETE".to_string()));
        assert_eq!(allowed_methods("/instances/7/events/replay"), ["POST"]);
        assert!(allowed_methods("/nowhere").is_empty());
    }
}

//! The Tasks API's bodies: the list envelope (`{"items", "next_cursor", "total"}`, the same for tombstones),
//! the token answer, and the two error shapes (OAuth's `{"error", "error_description"}`, the API's
//! `{"code", "message"}`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{Page, ProviderError};
use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Envelope {
    items: Vec<Value>,
    #[serde(default)]
    next_cursor: Option<String>,
    #[serde(default)]
    total: Option<u64>,
}

/// One page of a list body: its items, `total`, and `next_cursor` (absent, `null` or empty on the last page).
/// The provider time is the caller's to fill in (from the `Date` header).
///
/// ```
/// let page = oc_tasks::decode_page(br#"{"items": [{"uid": "t1"}], "next_cursor": "c2", "total": 3}"#).unwrap();
/// assert_eq!((page.records.len(), page.total, page.next.as_deref()), (1, Some(3), Some("c2")));
/// ```
pub fn decode_page(body: &[u8]) -> Result<Page, serde_json::Error> {
    let e: Envelope = serde_json::from_slice(body)?;
    Ok(Page {
        records: e.items,
        total: e.total,
        page: None,
        next: e.next_cursor.filter(|c| !c.is_empty()),
        provider_time: None,
    })
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) expires_in: Option<i64>,
    #[serde(default)]
    pub(crate) workspace: Option<Workspace>,
}

/// The workspace a grant is for.
#[derive(Debug, Deserialize)]
pub(crate) struct Workspace {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// How a token request was refused.
#[derive(Debug, PartialEq)]
pub(crate) enum TokenRefusal {
    /// The code or the refresh token (`invalid_grant`).
    Grant(String),
    /// The app (`invalid_client`).
    Client(String),
    /// Anything else.
    Other(ProviderError),
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The refusal of a token request answered `status` with `body`.
pub(crate) fn token_refusal(status: u16, headers: &HeaderMap, body: &[u8]) -> TokenRefusal {
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) => {
            let message = e.error_description.unwrap_or_else(|| e.error.clone());
            match e.error.as_str() {
                "invalid_grant" => TokenRefusal::Grant(message),
                "invalid_client" | "unauthorized_client" => TokenRefusal::Client(message),
                _ => TokenRefusal::Other(api_error(status, headers, body)),
            }
        }
        Err(_) => TokenRefusal::Other(api_error(status, headers, body)),
    }
}

#[derive(Deserialize)]
struct ApiErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The port's error for a refused API request.
pub(crate) fn api_error(status: u16, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    if status == 429 {
        let retry_after = header(headers, RETRY_AFTER.as_str()).and_then(|s| s.parse().ok()).map(Duration::from_secs);
        return ProviderError::RateLimited { retry_after };
    }
    let parsed = serde_json::from_slice::<ApiErrorBody>(body).ok();
    let (code, message) = parsed.map(|b| (b.code, b.message)).unwrap_or_default();
    ProviderError::Api {
        status,
        code: code.unwrap_or_else(|| format!("http_{status}")),
        message: message.unwrap_or_else(|| snippet(body)),
        source_field: None,
    }
}

/// The `Date` header: the provider's clock.
pub(crate) fn header_date(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(header(headers, DATE.as_str())?.trim()).ok().map(|d| d.with_timezone(&Utc))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The start of a body, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    /// Records, total and next cursor of a body, or `None` when it is not a list.
    fn check(body: &str, expected: Option<(usize, Option<u64>, Option<&str>)>) {
        let got = decode_page(body.as_bytes()).ok().map(|p| (p.records.len(), p.total, p.next));
        assert_eq!(got, expected.map(|(n, t, c)| (n, t, c.map(String::from))), "{body}");
    }

    #[test]
    fn list_envelopes() {
        check(
            r#"{"items": [{"uid": "a"}, {"uid": "b"}], "next_cursor": "b64", "total": 5}"#,
            Some((2, Some(5), Some("b64"))),
        );
        check(r#"{"items": [], "next_cursor": null, "total": 0}"#, Some((0, Some(0), None)));
        check(r#"{"items": [{"uid": "a"}], "next_cursor": ""}"#, Some((1, None, None)));
        // tombstones come in the same envelope
        check(
            r#"{"items": [{"uid": "a", "removed_on": "2024-01-31T10:00:00.250Z"}], "total": 1}"#,
            Some((1, Some(1), None)),
        );
        check(r#"[{"uid": "a"}]"#, None);
        check(r#"{"next_cursor": "x"}"#, None);
    }

    #[test]
    fn refusals() {
        let none = HeaderMap::new();
        let grant = br#"{"error": "invalid_grant", "error_description": "refresh token revoked"}"#;
        assert_eq!(token_refusal(400, &none, grant), TokenRefusal::Grant("refresh token revoked".into()));
        assert_eq!(
            token_refusal(401, &none, br#"{"error": "invalid_client"}"#),
            TokenRefusal::Client("invalid_client".into())
        );
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            api_error(429, &headers, b""),
            ProviderError::RateLimited { retry_after: Some(Duration::from_secs(7)) }
        );
        let e = api_error(503, &none, br#"{"code": "maintenance", "message": "back soon"}"#);
        assert!(e.is_transient() && e.to_string() == "provider error 503 maintenance: back soon", "{e}");
        assert!(!api_error(404, &none, b"gone").is_transient());
        headers.insert(DATE, HeaderValue::from_static("Wed, 31 Jan 2024 10:00:00 GMT"));
        assert_eq!(header_date(&headers), "2024-01-31T10:00:00Z".parse().ok());
    }
}

//! One HTTP exchange with Sage, retried: the rate limiter's slot (in the request's lane), 429 / 5xx / transport
//! failures retried with exponential backoff and jitter (honouring `Retry-After`) within the lane's retry
//! budget, the `Date` header read for the skew measurement, and Sage's error bodies decoded into
//! [`ProviderError::Api`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{Lane, ProviderError};
use rand::Rng;
use reqwest::RequestBuilder;
use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};
use tracing::Instrument;

use crate::config::RetryPolicy;
use crate::error::SageApiError;
use crate::provider::Inner;

/// An answer that is not to be retried (2xx, 401 and other 4xx).
#[derive(Debug)]
pub(crate) struct Answer {
    /// HTTP status.
    pub(crate) status: u16,
    /// Sage's clock (`Date`).
    pub(crate) date: Option<DateTime<Utc>>,
    /// Body.
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Which transport failures may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Any (reads: repeating them is harmless).
    Always,
    /// Only those where the request cannot have reached Sage (connection failures): a token request that timed
    /// out may have rotated the refresh token, and sending the spent one again would only earn `invalid_grant`.
    IfNotSent,
}

enum Failure {
    Transport(String),
    Throttled(Option<Duration>),
    Server { status: u16, retry_after: Option<Duration>, body: Vec<u8> },
}

impl Failure {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Transport(_) => None,
            Failure::Throttled(r) => *r,
            Failure::Server { retry_after, .. } => *retry_after,
        }
    }

    fn into_error(self) -> ProviderError {
        match self {
            Failure::Transport(m) => ProviderError::Transport(m),
            Failure::Throttled(retry_after) => ProviderError::RateLimited { retry_after },
            Failure::Server { status, body, .. } => api_error(status, &body),
        }
    }
}

/// The rate-limit slot a request takes: its business (or instance) and its lane.
pub(crate) type Limit<'a> = (&'a str, Lane);

impl Inner {
    /// Sends the request `build` makes (once per try), taking a rate-limit slot of `limit` first when given (the
    /// slot is held until a window after the answer). The retry policy is the lane's: an interactive request
    /// retries briefly and fails fast, also when no slot frees soon enough.
    pub(crate) async fn send(
        &self,
        build: &(dyn Fn() -> RequestBuilder + Send + Sync),
        limit: Option<Limit<'_>>,
        resend: Resend,
    ) -> Result<Answer, ProviderError> {
        let policy = match limit {
            Some((_, Lane::Interactive)) => self.config.interactive.retry,
            _ => self.config.retry,
        };
        self.send_with(build, limit, resend, policy).await
    }

    /// [`send`](Self::send) with the retry policy `policy`.
    pub(crate) async fn send_with(
        &self,
        build: &(dyn Fn() -> RequestBuilder + Send + Sync),
        limit: Option<Limit<'_>>,
        resend: Resend,
        policy: RetryPolicy,
    ) -> Result<Answer, ProviderError> {
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let permit = match limit {
                None => None,
                Some((key, lane)) => {
                    match self.limiter.acquire(key, lane, self.clock.as_ref(), self.pause.as_ref()).await {
                        Ok(permit) => {
                            self.stats.limiter_waited(permit.waited);
                            Some(permit)
                        }
                        Err(until_free) => {
                            tracing::debug!(
                                business = key,
                                wait_ms = until_free.as_millis() as u64,
                                "no rate-limit slot soon enough for an interactive request"
                            );
                            return Err(ProviderError::RateLimited { retry_after: Some(until_free) });
                        }
                    }
                }
            };
            // one span per try, `sage.request`, a child of the poll or hub call that sends it
            let (client, request) = build().build_split();
            let span = tracing::info_span!(
                "sage.request",
                otel.kind = "client",
                http.request.method = tracing::field::Empty,
                url.path = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
                sage.try = attempt,
            );
            let sent = match request {
                Ok(request) => {
                    span.record("http.request.method", request.method().as_str());
                    span.record("url.path", request.url().path());
                    client.execute(request).instrument(span.clone()).await
                }
                Err(e) => Err(e),
            };
            // the answer (its headers) came: the slot's window starts now
            drop(permit);
            let failure = match sent {
                Err(e) => {
                    self.stats.transport_error();
                    if resend == Resend::IfNotSent && !e.is_connect() {
                        return Err(ProviderError::Transport(describe(&e)));
                    }
                    Failure::Transport(describe(&e))
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    span.record("http.response.status_code", status);
                    self.stats.answered(status);
                    let date = header_date(response.headers());
                    if let Some(date) = date {
                        self.record_provider_time(date);
                    }
                    let retry_after = self.retry_after(response.headers());
                    match response.bytes().instrument(span.clone()).await {
                        Err(e) if resend == Resend::IfNotSent => return Err(ProviderError::Transport(describe(&e))),
                        Err(e) => Failure::Transport(describe(&e)),
                        Ok(body) if status == 429 => {
                            tracing::debug!(status, body = %String::from_utf8_lossy(&body), "throttled by sage");
                            Failure::Throttled(retry_after)
                        }
                        Ok(body) if status >= 500 => Failure::Server { status, retry_after, body: body.to_vec() },
                        Ok(body) => return Ok(Answer { status, date, body: body.to_vec() }),
                    }
                }
            };
            let delay = failure.retry_after().unwrap_or_else(|| backoff(&policy, attempt));
            if attempt >= policy.max_attempts.max(1) || waited + delay > policy.budget {
                return Err(failure.into_error());
            }
            tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying a sage request");
            if matches!(failure, Failure::Throttled(_)) {
                self.stats.throttled_wait(delay);
            }
            self.pause.pause(delay).await;
            waited += delay;
        }
    }

    /// `Retry-After` as seconds or as an HTTP date.
    pub(crate) fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
        Some((at - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
    }
}

/// The delay before try `attempt + 1`: `base × 2^(attempt−1)`, capped, times a random factor in [½, 1].
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy.base_delay.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
    let capped = exp.min(policy.max_delay);
    capped.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// The `Date` header.
pub(crate) fn header_date(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let value = headers.get(DATE)?.to_str().ok()?;
    DateTime::parse_from_rfc2822(value.trim()).ok().map(|d| d.with_timezone(&Utc))
}

/// A transport error with its causes.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { format!("timed out: {e}") } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A Sage error answer as [`ProviderError::Api`]: its JSON array of `{"$severity", "$dataCode", "$message",
/// "$source"}` (messages of every entry joined), an OAuth-style `{"error", "error_description"}`, or the start of
/// whatever else came.
pub(crate) fn api_error(status: u16, body: &[u8]) -> ProviderError {
    if let Ok(errors) = serde_json::from_slice::<Vec<SageApiError>>(body)
        && let Some(first) = errors.first()
    {
        let message = errors.iter().filter_map(|e| e.message.as_deref()).collect::<Vec<_>>().join("; ");
        return ProviderError::Api {
            status,
            code: first.data_code.clone().unwrap_or_else(|| default_code(status)),
            message,
            source_field: first.source.clone(),
        };
    }
    if let Ok(one) = serde_json::from_slice::<SageApiError>(body)
        && (one.data_code.is_some() || one.message.is_some())
    {
        return ProviderError::Api {
            status,
            code: one.data_code.unwrap_or_else(|| default_code(status)),
            message: one.message.unwrap_or_default(),
            source_field: one.source,
        };
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = |k: &str| map.get(k).and_then(|v| v.as_str()).map(String::from);
        if let Some(code) = text("error") {
            return ProviderError::Api {
                status,
                message: text("error_description").or_else(|| text("message")).unwrap_or_else(|| code.clone()),
                code,
                source_field: None,
            };
        }
    }
    ProviderError::Api { status, code: default_code(status), message: snippet(body), source_field: None }
}

fn default_code(status: u16) -> String {
    format!("http_{status}")
}

/// The first 300 characters of a body, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, expected: (&str, &str, Option<&str>)) {
        let ProviderError::Api { status: s, code, message, source_field } = api_error(status, body.as_bytes()) else {
            panic!("not an api error")
        };
        assert_eq!(s, status);
        assert_eq!((code.as_str(), message.as_str(), source_field.as_deref()), expected, "{body}");
    }

    #[test]
    fn error_bodies() {
        check(
            404,
            r#"[{"$severity":"error","$dataCode":"RecordNotFound","$message":"Resource not found","$source":""}]"#,
            ("RecordNotFound", "Resource not found", Some("")),
        );
        check(
            422,
            r#"[{"$severity":"error","$dataCode":"RecordInvalid","$message":"a","$source":"name"},
                {"$severity":"error","$dataCode":"RecordInvalid","$message":"b","$source":"reference"}]"#,
            ("RecordInvalid", "a; b", Some("name")),
        );
        check(
            401,
            r#"{"$severity":"error","$dataCode":"AuthorizationFailure","$message":"no"}"#,
            ("AuthorizationFailure", "no", None),
        );
        check(400, r#"{"error":"invalid_request","error_description":"bad"}"#, ("invalid_request", "bad", None));
        check(502, "<html>bad gateway</html>", ("http_502", "<html>bad gateway</html>", None));
        check(500, "[]", ("http_500", "[]", None));
        assert_eq!(snippet("é".repeat(400).as_bytes()).chars().count(), 303);
    }
}

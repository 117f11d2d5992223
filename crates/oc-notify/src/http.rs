//! [`HttpNotifier`]: one signed `POST` of a notification body to its callback URL, with reqwest.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::ports::{AttemptOutcome, Clock, DeliveryRequest, DeliveryResult, Notifier};
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};

use crate::error::NotifyError;
use crate::retry::parse_retry_after;
use crate::signing::{SigningKeys, signature_headers};
use crate::ssrf::{GuardedResolver, check_url, find_refusal};

/// How much of an answer is kept with the attempt.
pub const EXCERPT_BYTES: usize = 1024;
/// How much of a longer answer is read (and dropped) so that the connection can be reused.
const DRAIN_BYTES: usize = 64 * 1024;

/// The `User-Agent` of every notification: `ocpoll/<version>`.
pub const USER_AGENT: &str = concat!("ocpoll/", env!("CARGO_PKG_VERSION"));

/// Settings of an [`HttpNotifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpNotifierConfig {
    /// Limit of one attempt, from connecting to the end of the answer (default 15 s).
    pub timeout: Duration,
    /// Deliver to loopback, private, link-local and unique-local addresses (`--allow-private-callbacks`).
    pub allow_private_callbacks: bool,
    /// Idle connections kept per host for reuse.
    pub max_idle_per_host: usize,
}

impl Default for HttpNotifierConfig {
    fn default() -> Self {
        HttpNotifierConfig { timeout: Duration::from_secs(15), allow_private_callbacks: false, max_idle_per_host: 32 }
    }
}

/// Delivers notifications over HTTP(S): signs them, sends them without following redirects, and reports what
/// came of it. One instance is shared by every delivery so that connections are reused.
#[derive(Debug, Clone)]
pub struct HttpNotifier {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    config: HttpNotifierConfig,
}

impl HttpNotifier {
    /// A notifier with these settings, reading attempt times from `clock`.
    pub fn new(config: HttpNotifierConfig, clock: Arc<dyn Clock>) -> Result<HttpNotifier, NotifyError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // a proxy would be the address connected to, and the guard would check the wrong one
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(config.allow_private_callbacks)))
            .pool_max_idle_per_host(config.max_idle_per_host)
            .tcp_nodelay(true)
            .build()
            .map_err(NotifyError::Client)?;
        Ok(HttpNotifier { client, clock, config })
    }

    /// The settings.
    pub fn config(&self) -> &HttpNotifierConfig {
        &self.config
    }
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn deliver(&self, request: &DeliveryRequest<'_>) -> DeliveryResult {
        let attempted_at = self.clock.now();
        let started = Instant::now();
        let url = match check_url(request.url, self.config.allow_private_callbacks) {
            Ok(url) => url,
            Err(refusal) => return not_sent(attempted_at, started, AttemptOutcome::Refused, refusal.to_string()),
        };
        let mut builder = self.client.post(url).header(CONTENT_TYPE, "application/json");
        let keys = SigningKeys { current: request.signature_key, previous: request.previous_signature_key };
        let headers = signature_headers(keys, request.notification_id, attempted_at.timestamp(), request.body);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let response = match builder.body(request.body.to_vec()).send().await {
            Ok(response) => response,
            Err(error) => {
                let (outcome, message) = match find_refusal(&error) {
                    Some(refusal) => (AttemptOutcome::Refused, refusal.to_string()),
                    None => (AttemptOutcome::Failed, describe(&error, self.config.timeout)),
                };
                return not_sent(attempted_at, started, outcome, message);
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, attempted_at));
        let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (excerpt, read_error) = read_excerpt(response, self.config.timeout).await;
        let (outcome, error) = if status.is_success() {
            (AttemptOutcome::Delivered, None)
        } else if status == reqwest::StatusCode::GONE {
            (AttemptOutcome::Gone, Some("the receiver answered 410 gone: notifications switched off".to_string()))
        } else if status.is_redirection() {
            let to = location.map(|l| format!(" to {l}")).unwrap_or_default();
            (AttemptOutcome::Failed, Some(format!("redirect {}{to} not followed", status.as_u16())))
        } else {
            let reason = status.canonical_reason().map(|r| format!(" {}", r.to_lowercase())).unwrap_or_default();
            (AttemptOutcome::Failed, Some(format!("the receiver answered {}{reason}", status.as_u16())))
        };
        let error = match (error, read_error) {
            (Some(e), Some(r)) => Some(format!("{e} ({r})")),
            (e, _) => e,
        };
        DeliveryResult {
            attempted_at,
            outcome,
            status: Some(status.as_u16()),
            latency: started.elapsed(),
            error,
            response_excerpt: excerpt,
            retry_after,
        }
    }
}

fn not_sent(attempted_at: DateTime<Utc>, started: Instant, outcome: AttemptOutcome, error: String) -> DeliveryResult {
    DeliveryResult {
        attempted_at,
        outcome,
        status: None,
        latency: started.elapsed(),
        error: Some(error),
        response_excerpt: String::new(),
        retry_after: None,
    }
}

/// The first [`EXCERPT_BYTES`] of the answer as text, and why reading stopped early, when it did. Reads on up to
/// [`DRAIN_BYTES`] so that a connection answered with a short body goes back to the pool.
async fn read_excerpt(mut response: reqwest::Response, timeout: Duration) -> (String, Option<String>) {
    let mut kept = Vec::new();
    let mut read = 0usize;
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
                read += chunk.len();
                if read >= DRAIN_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("reading the answer: {}", describe(&e, timeout)));
                break;
            }
        }
    }
    (utf8_prefix(&kept), error)
}

/// Text of a byte prefix: a character cut at the end is dropped, other invalid bytes are replaced.
fn utf8_prefix(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A lowercase description of a transport failure with its causes, without the URL (it is recorded elsewhere).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("timed out after {}", humanize(timeout));
    }
    let kind = if error.is_connect() { "connection failed" } else { "request failed" };
    let mut causes = Vec::new();
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = e.source();
    }
    if causes.is_empty() { kind.to_string() } else { format!("{kind}: {}", causes.join(": ")) }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_text_is_cut_on_a_character_boundary() {
        fn check(bytes: &[u8], expected: &str) {
            assert_eq!(utf8_prefix(bytes), expected, "{bytes:?}");
        }
        check(b"ok", "ok");
        check("é".as_bytes(), "é");
        check(&"é".as_bytes()[..1], "");
        check(b"a\xffb", "a\u{fffd}b");
        check(b"", "");
    }

    #[test]
    fn user_agent_names_ocpoll_and_its_version() {
        assert_eq!(USER_AGENT, format!("ocpoll/{}", env!("CARGO_PKG_VERSION")));
    }
}

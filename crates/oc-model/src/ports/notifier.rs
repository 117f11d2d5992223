//! The notifier port: one HTTP delivery of one notification body, and what came of it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::secret::Secret;

/// One delivery attempt to make.
#[derive(Debug, Clone)]
pub struct DeliveryRequest<'a> {
    /// The callback URL.
    pub url: &'a str,
    /// The exact body bytes (what gets signed).
    pub body: &'a [u8],
    /// The notification id: `Elements-Webhook-Id` and `webhook-id`.
    pub notification_id: &'a str,
    /// `event.notification.signature.key`, when set.
    pub signature_key: Option<&'a Secret>,
    /// The key it replaced, while the rotation's overlap lasts: it signs `webhook-signature` beside the new one.
    pub previous_signature_key: Option<&'a Secret>,
}

/// How an attempt ended, as far as the retry policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered,
    /// Any other status, a timeout or a connection error: retry later.
    Failed,
    /// `410 Gone`: the receiver asks to stop; notifications of the instance are switched off.
    Gone,
    /// Not attempted: the callback resolves to a forbidden address (SSRF guard) or is not a valid URL.
    Refused,
}

impl AttemptOutcome {
    /// `delivered`, `failed`, `gone` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Gone => "gone",
            AttemptOutcome::Refused => "refused",
        }
    }
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryResult {
    /// When the attempt started.
    pub attempted_at: DateTime<Utc>,
    /// The outcome.
    pub outcome: AttemptOutcome,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// Time to the answer (or to the failure).
    pub latency: Duration,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The first 1 KB of the answer body.
    pub response_excerpt: String,
    /// The receiver's `Retry-After`, when given.
    pub retry_after: Option<Duration>,
}

/// Delivers one notification body. Implementations never panic and never return early without a result:
/// every attempt ends in a [`DeliveryResult`] to be recorded.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Makes one attempt.
    async fn deliver(&self, request: &DeliveryRequest<'_>) -> DeliveryResult;
}

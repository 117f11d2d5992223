//! The alert dispatcher: delivers operational alerts (`instance.invalid`, `notifications.disabled`,
//! `notification.failed`, `polling.failing`) from the store's alert outbox, signed and retried like
//! notifications, at least once.
//!
//! Where an alert goes is read at attempt time:
//! 1. the instance's `event.notification.operational.callback.url`, signed with its
//!    `event.notification.signature.key` (and the replaced key during a rotation's overlap), through the
//!    notifier of the callbacks (the SSRF guard applies);
//! 2. else the server-wide operational webhook ([`ServerWebhook`], `--operational-webhook-url`), signed with its
//!    secret, through a notifier of its own (the operator's URL may well be on a private network);
//! 3. else nowhere: the alert is kept as `unrouted` (listed, redeliverable).
//!
//! The headers are those of a notification (`webhook-id` = the alert id, `webhook-timestamp`,
//! `webhook-signature`, and Open Connectors' `Elements-Webhook-*`); the body is the alert's JSON. Failures are
//! retried on the [`RetryPolicy`]; a `410` is a failure like another (an alert never switches anything off).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use oc_model::Secret;
use oc_model::error::chain;
use oc_model::ports::{
    AlertClaim, AlertStep, AlertStore, AttemptOutcome, Clock, DeliveryRequest, NewAttempt, NextStep, Notifier,
};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::error::NotifyError;
use crate::retry::RetryPolicy;

/// The server-wide operational webhook: where alerts go whose instance names no operational callback URL.
#[derive(Clone)]
pub struct ServerWebhook {
    /// `--operational-webhook-url`.
    pub url: String,
    /// `--operational-webhook-secret`: signs like `event.notification.signature.key` (its bytes are the HMAC key).
    pub secret: Option<Secret>,
    /// The notifier of this URL.
    pub notifier: Arc<dyn Notifier>,
}

impl std::fmt::Debug for ServerWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerWebhook")
            .field("url", &oc_model::secret::redact_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "********"))
            .finish_non_exhaustive()
    }
}

/// Settings of an [`AlertDispatcher`].
#[derive(Debug, Clone)]
pub struct AlertDispatcherConfig {
    /// Lease owner name of this node.
    pub owner: String,
    /// Alerts claimed (and attempted concurrently) per round.
    pub batch: usize,
    /// How long a claim holds an alert; longer than an attempt.
    pub lease_ttl: Duration,
    /// How often [`AlertDispatcher::run`] looks for due alerts when not woken.
    pub poll_interval: Duration,
    /// The retry schedule.
    pub retry: RetryPolicy,
    /// The server-wide operational webhook, when configured.
    pub server: Option<ServerWebhook>,
}

impl Default for AlertDispatcherConfig {
    fn default() -> Self {
        AlertDispatcherConfig {
            owner: format!("ocpoll-alerts-{}", Uuid::new_v4().simple()),
            batch: 32,
            lease_ttl: Duration::from_secs(5 * 60),
            poll_interval: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            server: None,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertReport {
    /// Alerts claimed.
    pub claimed: usize,
    /// Delivered (2xx).
    pub delivered: usize,
    /// Failed with a retry scheduled.
    pub retrying: usize,
    /// Failed for good.
    pub failed: usize,
    /// No operational webhook configured.
    pub unrouted: usize,
    /// Not recorded: the lease was lost or the store failed (the alert is claimed again once its lease lapses).
    pub not_recorded: usize,
}

/// Delivers the alert outbox. Cheap to clone.
pub struct AlertDispatcher<S: ?Sized> {
    store: Arc<S>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    config: Arc<AlertDispatcherConfig>,
    wake: Arc<Notify>,
}

impl<S: ?Sized> Clone for AlertDispatcher<S> {
    fn clone(&self) -> Self {
        AlertDispatcher {
            store: self.store.clone(),
            notifier: self.notifier.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            wake: self.wake.clone(),
        }
    }
}

/// Where one alert goes.
struct Target<'a> {
    kind: &'static str,
    url: String,
    key: Option<Secret>,
    previous: Option<Secret>,
    notifier: &'a Arc<dyn Notifier>,
}

impl<S> AlertDispatcher<S>
where
    S: AlertStore + ?Sized + 'static,
{
    /// A dispatcher over `store`, delivering to instances' operational callbacks with `notifier` (the guarded
    /// notifier of the callbacks) and to the server-wide webhook with its own.
    pub fn new(
        store: Arc<S>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: AlertDispatcherConfig,
    ) -> Result<AlertDispatcher<S>, NotifyError> {
        if config.batch == 0 {
            return Err(NotifyError::InvalidPolicy("the alert batch must be at least 1".into()));
        }
        Ok(AlertDispatcher { store, notifier, clock, config: Arc::new(config), wake: Arc::new(Notify::new()) })
    }

    /// A handle that wakes [`run`](AlertDispatcher::run) at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// One round: claims the due alerts (up to `batch`), attempts each and records what came of it.
    pub async fn run_once(&self) -> Result<AlertReport, NotifyError> {
        let now = self.clock.now();
        let claims = self.store.claim_alerts(&self.config.owner, now, self.config.batch, self.config.lease_ttl).await?;
        let mut report = AlertReport { claimed: claims.len(), ..AlertReport::default() };
        let mut tasks = JoinSet::new();
        for claim in claims {
            let this = self.clone();
            tasks.spawn(async move { this.attempt(claim).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Some(step)) => match step {
                    AlertStep::Unrouted { .. } => report.unrouted += 1,
                    AlertStep::Attempted { next: NextStep::Delivered, .. } => report.delivered += 1,
                    AlertStep::Attempted { next: NextStep::RetryAt(_), .. } => report.retrying += 1,
                    AlertStep::Attempted { next: NextStep::Failed, .. } => report.failed += 1,
                },
                Ok(None) | Err(_) => report.not_recorded += 1,
            }
        }
        Ok(report)
    }

    /// The service loop: a round at least every `poll_interval` and at once when woken, until `shutdown`; the
    /// round in progress is finished first. Store errors are logged and retried on the next round.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            match self.run_once().await {
                Ok(report) if report.claimed > 0 => tracing::debug!(?report, "alert round"),
                Ok(_) => {}
                Err(error) => tracing::error!(error = %chain(&error), "claiming alerts failed"),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    fn target<'a>(&'a self, claim: &AlertClaim) -> Option<Target<'a>> {
        let now = self.clock.now();
        if let Some(instance) = &claim.instance {
            let config = &instance.configuration;
            if let Some(url) = config.operational_callback_url() {
                let key = config.notification_signature_key().filter(|k| !k.is_empty());
                let previous = key.as_ref().and(config.previous_signature_key(now)).filter(|k| !k.is_empty());
                return Some(Target { kind: "instance", url, key, previous, notifier: &self.notifier });
            }
        }
        let server = self.config.server.as_ref()?;
        Some(Target {
            kind: "server",
            url: server.url.clone(),
            key: server.secret.clone(),
            previous: None,
            notifier: &server.notifier,
        })
    }

    /// Attempts one alert and records it; the step recorded, or `None` when it could not be.
    async fn attempt(&self, claim: AlertClaim) -> Option<AlertStep> {
        let alert = &claim.alert;
        let step = match self.target(&claim) {
            None => AlertStep::Unrouted { at: self.clock.now() },
            Some(target) => {
                let body = serde_json::to_vec(&alert.body).unwrap_or_default();
                let id = alert.id.to_string();
                let request = DeliveryRequest {
                    url: &target.url,
                    body: &body,
                    notification_id: &id,
                    signature_key: target.key.as_ref(),
                    previous_signature_key: target.previous.as_ref(),
                };
                let result = target.notifier.deliver(&request).await;
                let number = alert.attempts % self.config.retry.max_attempts() + 1;
                let after = self.clock.now();
                let next = match result.outcome {
                    AttemptOutcome::Delivered => NextStep::Delivered,
                    AttemptOutcome::Failed | AttemptOutcome::Gone | AttemptOutcome::Refused => {
                        self.config.retry.next_step(alert.id, number, after, result.retry_after)
                    }
                };
                let attempt = NewAttempt {
                    at: result.attempted_at,
                    status_code: result.status,
                    latency_ms: u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX),
                    error: result.error,
                    response_excerpt: result.response_excerpt,
                };
                AlertStep::Attempted { target: target.kind, attempt, next }
            }
        };
        match self.store.record_alert(alert.id, &claim.lease, &step).await {
            Ok(()) => {
                let (kind, instance) = (alert.alert_type.as_str(), alert.instance_id);
                match &step {
                    AlertStep::Unrouted { .. } => {
                        tracing::warn!(alert = %alert.id, kind, instance, "alert kept: no operational webhook")
                    }
                    AlertStep::Attempted { next: NextStep::Failed, attempt, .. } => tracing::error!(
                        alert = %alert.id, kind, instance, error = attempt.error.as_deref().unwrap_or(""),
                        "alert failed for good"
                    ),
                    AlertStep::Attempted { next: NextStep::Delivered, target, .. } => {
                        tracing::info!(alert = %alert.id, kind, instance, target, "alert delivered")
                    }
                    AlertStep::Attempted { .. } => {}
                }
                Some(step)
            }
            Err(error) => {
                tracing::warn!(alert = %alert.id, error = %error, "recording the alert attempt failed");
                None
            }
        }
    }
}

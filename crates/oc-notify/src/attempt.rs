//! One attempt of one claimed notification: where it goes (read from its instance at attempt time), the body,
//! the URL's turn and circuit, the delivery through the [`Notifier`](oc_model::ports::Notifier) port, and what
//! follows (retry, failed for good, `410 Gone`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::Notification;
use oc_model::event::NotificationMeta;
use oc_model::ports::{
    AttemptOutcome, DeliveryClaim, DeliveryRequest, DeliveryResult, DeliveryStore, Instance, NewAttempt, NextStep,
};

use tracing::Instrument;

use crate::breaker::Admission;
use crate::dispatch::{Inner, JobOutcome};
use crate::recorder::{Recorder, record};

/// Where and how an instance's notifications go, read from its configuration at attempt time.
struct Target {
    url: String,
    key: Option<oc_model::Secret>,
    /// The key replaced last, while it still signs.
    previous: Option<oc_model::Secret>,
}

fn target(instance: &Instance, now: DateTime<Utc>) -> Option<Target> {
    let config = &instance.configuration;
    let enabled = config.notifications_enabled().unwrap_or(false);
    if !enabled || instance.disabled || instance.notifications_disabled_reason.is_some() {
        return None;
    }
    let url = config.notification_callback_url()?;
    let key = config.notification_signature_key().filter(|k| !k.is_empty());
    let previous = key.as_ref().and(config.previous_signature_key(now)).filter(|k| !k.is_empty());
    Some(Target { url, key, previous })
}

fn meta(instance: &Instance, hub_key: String) -> NotificationMeta {
    NotificationMeta {
        instance_id: instance.id,
        instance_name: instance.name.clone(),
        instance_tags: instance.tags.clone(),
        element_key: instance.element_key.clone(),
        hub_key,
        user_id: instance.user_id,
        account_id: instance.org_id,
    }
}

impl<S> Inner<S>
where
    S: DeliveryStore + ?Sized,
{
    /// Attempts one claimed notification and records the attempt.
    pub(crate) async fn attempt(&self, claim: DeliveryClaim, recorder: &Recorder) -> JobOutcome {
        let id = claim.notification.id;
        let instance = claim.instance.clone();
        let Some(target) = target(&instance, self.clock.now()) else {
            tracing::debug!(notification = %id, "notifications of the instance are off: kept pending");
            return JobOutcome::Skipped;
        };
        // The attempt's number in its round of the schedule. A redelivered notification keeps its attempt count
        // in the store, so counting modulo the schedule's length gives it a fresh round.
        let number = claim.notification.attempts % self.config.retry.max_attempts() + 1;
        let hub = self.providers.element(&instance.element_key).hub;
        let body = match Notification::new(&meta(&instance, hub), id, &claim.events)
            .map_err(|e| e.to_string())
            .and_then(|n| serde_json::to_vec(&n).map_err(|e| e.to_string()))
        {
            Ok(body) => body,
            Err(error) => {
                // the store handed out events that cannot form a notification: keep it as failed, visible
                let attempt = not_attempted(self.clock.now(), format!("cannot build the notification: {error}"));
                let failed = JobOutcome::Failed { refused: false };
                return record(recorder, &claim, attempt, NextStep::Failed, failed).await;
            }
        };

        let permits = self.breakers.permits(&target.url);
        let Ok(_url_permit) = permits.acquire().await else { return JobOutcome::Skipped };
        let now = self.clock.now();
        let admission = self.breakers.admit(&target.url, now);
        if let Admission::OpenUntil(until) = admission {
            // the last attempt is made for real: a circuit alone never fails a notification for good
            if number < self.config.retry.max_attempts() {
                let attempt = not_attempted(
                    now,
                    format!(
                        "not attempted: the circuit of this callback url is open until {} after repeated failures",
                        until.to_rfc3339()
                    ),
                );
                let next = match self.config.retry.next_step(id, number, now, None) {
                    NextStep::RetryAt(at) => NextStep::RetryAt(at.max(until)),
                    other => other,
                };
                return record(recorder, &claim, attempt, next, JobOutcome::ShortCircuited).await;
            }
        }
        if !lease_left(&claim, now, self.config.attempt_time) {
            // waiting for the URL's turn ate the lease: another round (or node) takes it
            if admission == Admission::Probe {
                self.breakers.cancel_probe(&target.url);
            }
            return JobOutcome::Skipped;
        }
        let Ok(_worker) = self.workers.acquire().await else { return JobOutcome::Skipped };

        let request = DeliveryRequest {
            url: &target.url,
            body: &body,
            notification_id: &id.to_string(),
            signature_key: target.key.as_ref(),
            previous_signature_key: target.previous.as_ref(),
        };
        // the span `delivery`, in the trace of the poll that found the changes (when it was traced)
        let span = tracing::info_span!(
            "delivery",
            otel.kind = "client",
            notification.id = %id,
            instance.id = instance.id,
            delivery.attempt = number,
            delivery.events = claim.events.len(),
            http.response.status_code = tracing::field::Empty,
            delivery.outcome = tracing::field::Empty,
        );
        if let Some(parent) = &claim.trace_parent {
            self.telemetry.continue_trace(&span, parent);
        }
        let result = self.notifier.deliver(&request).instrument(span.clone()).await;
        if let Some(status) = result.status {
            span.record("http.response.status_code", status);
        }
        span.record("delivery.outcome", result.outcome.as_str());
        drop(span);
        drop(_worker);
        let after = self.clock.now();
        match result.outcome {
            AttemptOutcome::Refused => {
                if admission == Admission::Probe {
                    self.breakers.cancel_probe(&target.url);
                }
            }
            outcome => {
                let healthy = match (outcome, result.status) {
                    (AttemptOutcome::Delivered | AttemptOutcome::Gone, _) => true,
                    (_, Some(status)) => status != 429 && status < 500,
                    (_, None) => false,
                };
                if self.breakers.record(&target.url, healthy, after) {
                    // the origin only: a callback's path or query may carry the customer's token
                    tracing::warn!(
                        instance_id = instance.id,
                        callback = %origin_of(&target.url),
                        "callback failing repeatedly: circuit opened"
                    );
                }
            }
        }
        drop(_url_permit);
        self.conclude(&claim, &instance, number, result, after, recorder).await
    }

    /// Records the attempt with what follows it.
    async fn conclude(
        &self,
        claim: &DeliveryClaim,
        instance: &Instance,
        number: u32,
        result: DeliveryResult,
        after: DateTime<Utc>,
        recorder: &Recorder,
    ) -> JobOutcome {
        let id = claim.notification.id;
        let attempt = NewAttempt {
            at: result.attempted_at,
            status_code: result.status,
            latency_ms: u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX),
            error: result.error.clone(),
            response_excerpt: result.response_excerpt,
        };
        let (next, outcome) = match result.outcome {
            AttemptOutcome::Delivered => (NextStep::Delivered, JobOutcome::Delivered),
            AttemptOutcome::Gone => {
                let reason = format!(
                    "the callback answered 410 gone at {}: notifications switched off until the callback url is \
                     changed or notifications are enabled again",
                    result.attempted_at.to_rfc3339()
                );
                if let Err(error) = self.store.set_notifications_disabled(instance.id, Some(&reason)).await {
                    tracing::error!(instance = instance.id, error = %error, "switching notifications off failed");
                }
                tracing::warn!(instance = instance.id, notification = %id, "receiver answered 410: notifications off");
                // kept pending, due at once: it is not handed out until notifications are switched back on
                (NextStep::RetryAt(after), JobOutcome::Gone)
            }
            AttemptOutcome::Failed | AttemptOutcome::Refused => {
                let refused = result.outcome == AttemptOutcome::Refused;
                match self.config.retry.next_step(id, number, after, result.retry_after) {
                    NextStep::Failed => (NextStep::Failed, JobOutcome::Failed { refused }),
                    next => (next, JobOutcome::Retrying { refused }),
                }
            }
        };
        record(recorder, claim, attempt, next, outcome).await
    }
}

/// An attempt that sent nothing.
fn not_attempted(at: DateTime<Utc>, error: String) -> NewAttempt {
    NewAttempt { at, status_code: None, latency_ms: 0, error: Some(error), response_excerpt: String::new() }
}

fn lease_left(claim: &DeliveryClaim, now: DateTime<Utc>, attempt_time: Duration) -> bool {
    crate::retry::add(now, attempt_time) < claim.lease.expires_at
}

/// `scheme://host[:port]` of a callback URL, for logs (its path and query may carry a secret).
fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "(an invalid URL)".to_string(),
    }
}

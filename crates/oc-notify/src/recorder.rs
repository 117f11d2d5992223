//! Recording attempts in batches (group commit): the outcomes of the deliveries that finish while the store is
//! busy recording earlier ones are written together with one [`DeliveryStore::record_attempts`] call, then each is
//! reported to the [`Telemetry`] port with its claim in hand and logged.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{
    AttemptRecord, AttemptReport, DeliveryClaim, DeliveryStore, NewAttempt, NextStep, StoreError, Telemetry,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::dispatch::JobOutcome;

/// Attempts recorded together at most (one store call).
const RECORD_BATCH: usize = 256;

/// Records an attempt with what follows it (through the recorder, with others finished meanwhile); `ok` is the
/// outcome when it is written. Logs the attempt once it is recorded ([`log_attempt`]).
pub(crate) async fn record(
    recorder: &Recorder,
    claim: &DeliveryClaim,
    attempt: NewAttempt,
    next: NextStep,
    ok: JobOutcome,
) -> JobOutcome {
    let id = claim.notification.id;
    let logged = LoggedAttempt {
        at: attempt.at,
        status: attempt.status_code,
        latency_ms: attempt.latency_ms,
        error: attempt.error.clone(),
    };
    let record = AttemptRecord { notification: id, lease: claim.lease.clone(), attempt, next };
    let result = recorder.record(record.clone()).await;
    let report = AttemptReport { claim, attempt: &record.attempt, next, recorded: result.as_ref().map(|_| ()) };
    recorder.telemetry.attempt(&report);
    match result {
        Ok(()) => {
            log_attempt(claim, &logged, next, ok);
            ok
        }
        Err(StoreError::LeaseLost(why)) => {
            tracing::warn!(notification = %id, why, "attempt not recorded: lease lost");
            JobOutcome::LeaseLost
        }
        Err(error) => {
            tracing::error!(notification = %id, error = %error, "recording an attempt failed");
            JobOutcome::StoreError
        }
    }
}

/// What the log says of an attempt.
struct LoggedAttempt {
    at: DateTime<Utc>,
    status: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
}

/// One line per recorded attempt: DEBUG when delivered (or not attempted because the URL's circuit is open, which
/// is logged when it opens), WARN when it failed (with the status or error and when the next attempt comes) and
/// when the notification failed for good. Never the callback URL (it may carry a token), the body or a key.
fn log_attempt(claim: &DeliveryClaim, attempt: &LoggedAttempt, next: NextStep, outcome: JobOutcome) {
    let n = &claim.notification;
    let (notification, instance_id, object_type) = (n.id, n.instance_id, n.object_type.as_str());
    let events = claim.events.len();
    // this attempt's number over the notification's life (redeliveries included), as the API lists it
    let attempt_number = n.attempts.saturating_add(1);
    let (status, latency_ms, error) = (attempt.status, attempt.latency_ms, attempt.error.as_deref());
    let next_at = match next {
        NextStep::RetryAt(t) => Some(t),
        NextStep::Delivered | NextStep::Failed => None,
    };
    let next_attempt_at = next_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let next_attempt_in_s = next_at.map(|t| {
        let ended = crate::retry::add(attempt.at, Duration::from_millis(attempt.latency_ms));
        (t - ended).num_milliseconds().max(0) as f64 / 1000.0
    });
    match outcome {
        JobOutcome::Delivered => tracing::debug!(
            %notification,
            instance_id,
            object_type,
            events,
            attempt = attempt_number,
            status,
            latency_ms,
            "notification delivered"
        ),
        JobOutcome::Retrying { refused } => tracing::warn!(
            %notification,
            instance_id,
            object_type,
            events,
            attempt = attempt_number,
            status,
            latency_ms,
            error,
            refused,
            next_attempt_at,
            next_attempt_in_s,
            "delivery attempt failed; retrying"
        ),
        JobOutcome::Failed { refused } => tracing::warn!(
            %notification,
            instance_id,
            object_type,
            events,
            attempts = attempt_number,
            status,
            latency_ms,
            error,
            refused,
            "notification failed for good: kept as failed, redeliverable over the API"
        ),
        JobOutcome::ShortCircuited => tracing::debug!(
            %notification,
            instance_id,
            attempt = attempt_number,
            next_attempt_at,
            "not attempted: the callback's circuit is open"
        ),
        // `410 Gone` is logged where notifications are switched off; the rest are never recorded
        JobOutcome::Gone | JobOutcome::Skipped | JobOutcome::LeaseLost | JobOutcome::StoreError => {}
    }
}

/// An attempt to record and where its result goes.
type Pending = (AttemptRecord, oneshot::Sender<Result<(), StoreError>>);

/// Records attempts in batches (group commit): a task takes every attempt waiting, up to [`RECORD_BATCH`],
/// records them with one [`OutboxStore::record_attempts`] call, answers each, and goes on with those that came
/// meanwhile. It ends when every handle is gone and the attempts sent are recorded.
#[derive(Clone)]
pub(crate) struct Recorder {
    queue: mpsc::UnboundedSender<Pending>,
    telemetry: Arc<dyn Telemetry>,
}

impl Recorder {
    pub(crate) fn start<S: DeliveryStore + ?Sized + 'static>(
        store: Arc<S>,
        telemetry: Arc<dyn Telemetry>,
    ) -> (Recorder, JoinHandle<()>) {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Pending>();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(RECORD_BATCH);
            while waiting.recv_many(&mut batch, RECORD_BATCH).await > 0 {
                let (records, answers): (Vec<AttemptRecord>, Vec<_>) = batch.drain(..).unzip();
                let count = records.len();
                // In a task of its own, so that a panicking store fails this batch only, not the recorder.
                let store = store.clone();
                let call = tokio::spawn(async move { store.record_attempts(&records).await });
                let results = match call.await {
                    Ok(Ok(results)) if results.len() == count => results,
                    Ok(Ok(results)) => {
                        let error = StoreError::Database(format!(
                            "the store answered {} results for {count} attempts",
                            results.len()
                        ));
                        vec![Err(error); count]
                    }
                    Ok(Err(error)) => vec![Err(error); count],
                    Err(failed) => {
                        vec![Err(StoreError::Database(format!("recording attempts failed: {failed}"))); count]
                    }
                };
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
        });
        (Recorder { queue, telemetry }, task)
    }

    /// Records `record` with whatever else is waiting; its own result.
    async fn record(&self, record: AttemptRecord) -> Result<(), StoreError> {
        let stopped = || StoreError::Database("the attempt recorder stopped".into());
        let (answer, result) = oneshot::channel();
        self.queue.send((record, answer)).map_err(|_| stopped())?;
        result.await.unwrap_or_else(|_| Err(stopped()))
    }
}

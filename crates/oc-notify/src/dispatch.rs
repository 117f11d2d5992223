//! The delivery engine: batches outbox events into notifications, claims the due ones, builds and delivers
//! them through the [`Notifier`] port, and records every attempt with what follows it.
//!
//! Guarantees, and who keeps them:
//! - **at least once, never dropped silently**: a notification leaves `pending` only when a 2xx came
//!   (`delivered`) or its last attempt failed (`failed`, kept and redeliverable); every attempt is recorded;
//! - **per-object order**: the store never hands out a notification while an earlier one holding an event of
//!   the same object is pending or delivering;
//! - **a dead receiver does not starve healthy ones**: at most `per_url_concurrency` attempts per callback URL
//!   are in flight, and its circuit breaker stops attempts for a while after repeated failures (those
//!   notifications are rescheduled, each with a recorded "not attempted" attempt);
//! - **`410 Gone`** switches notifications of the instance off (the instance's status says why); the
//!   notification stays pending and goes out once they are switched back on.
//!
//! Attempts are recorded in batches: the outcomes of the deliveries that finish while the store is busy
//! recording earlier ones are written together with one [`OutboxStore::record_attempts`] call (one transaction in
//! `oc-store`), as soon as the store is free (group commit). An attempt thus waits at most for the write in
//! progress and its own, never for other deliveries to finish.
//!
//! A redelivered (failed, then made due again) notification gets a fresh round of the retry schedule.
//!
//! A notification whose instance has notifications switched off, no callback URL, or is disabled or deleted is
//! kept pending without an attempt: its claim is left to lapse (the store does not hand such notifications out
//! in the first place, so this only happens when the instance changed between the claim and the attempt).
//!
//! Time comes from the [`Clock`] port: [`Dispatcher::run_once`] does one round, so tests drive retries by
//! moving a manual clock; [`Dispatcher::run`] is the service loop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::event::{MAX_EVENTS_PER_NOTIFICATION, NotificationMeta};
use oc_model::ports::{
    AttemptOutcome, AttemptRecord, Clock, DeliveryClaim, DeliveryRequest, DeliveryResult, Instance, InstanceStore,
    NewAttempt, NextStep, Notifier, OutboxStore, StoreError,
};
use oc_model::{InstanceId, Notification};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::breaker::{Admission, BreakerConfig, Breakers};
use crate::error::NotifyError;
use crate::retry::RetryPolicy;

/// Attempts recorded together at most (one store call).
const RECORD_BATCH: usize = 256;

/// Settings of a [`Dispatcher`].
#[derive(Debug, Clone, PartialEq)]
pub struct DispatcherConfig {
    /// Lease owner name of this node.
    pub owner: String,
    /// Attempts in flight at once, over every callback URL.
    pub workers: usize,
    /// Notifications claimed and not yet finished at once (waiting for their URL's turn included).
    pub max_claimed: usize,
    /// Attempts in flight at once per callback URL.
    pub per_url_concurrency: usize,
    /// How long a claim holds a notification. An attempt is not started unless `attempt_time` is left on it.
    pub lease_ttl: Duration,
    /// The longest an attempt takes (the notifier's timeout), so that a lease never lapses mid-attempt.
    pub attempt_time: Duration,
    /// How often [`Dispatcher::run`] looks for due notifications when not woken up.
    pub poll_interval: Duration,
    /// The retry schedule.
    pub retry: RetryPolicy,
    /// The circuit breaker of each callback URL.
    pub breaker: BreakerConfig,
    /// Events per notification (at most [`MAX_EVENTS_PER_NOTIFICATION`]).
    pub max_events: usize,
    /// `hubKey` of the notifications.
    pub hub_key: String,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            owner: format!("ocpoll-notify-{}", Uuid::new_v4().simple()),
            workers: 32,
            max_claimed: 128,
            per_url_concurrency: 4,
            lease_ttl: Duration::from_secs(5 * 60),
            attempt_time: Duration::from_secs(15),
            poll_interval: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            max_events: MAX_EVENTS_PER_NOTIFICATION,
            hub_key: "finance".to_string(),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Notifications built from new events.
    pub batched: usize,
    /// Notifications claimed.
    pub claimed: usize,
    /// Delivered (2xx).
    pub delivered: usize,
    /// Failed attempts with a retry scheduled.
    pub retrying: usize,
    /// Failed for good (out of attempts, or not buildable).
    pub failed: usize,
    /// `410 Gone`: notifications of the instance switched off.
    pub gone: usize,
    /// Refused by the SSRF guard or an invalid callback URL (counted in `retrying` or `failed` too).
    pub refused: usize,
    /// Not attempted because the URL's circuit is open; rescheduled.
    pub short_circuited: usize,
    /// Kept pending without an attempt (notifications off, no callback URL, instance gone, lease too short).
    pub skipped: usize,
    /// Attempts whose recording was refused because the lease was lost (another node took over).
    pub lease_lost: usize,
    /// Store errors while recording (the notification stays claimed until its lease lapses).
    pub store_errors: usize,
}

impl TickReport {
    fn add(&mut self, outcome: JobOutcome) {
        match outcome {
            JobOutcome::Delivered => self.delivered += 1,
            JobOutcome::Retrying { refused } => {
                self.retrying += 1;
                self.refused += usize::from(refused);
            }
            JobOutcome::Failed { refused } => {
                self.failed += 1;
                self.refused += usize::from(refused);
            }
            JobOutcome::Gone => self.gone += 1,
            JobOutcome::ShortCircuited => self.short_circuited += 1,
            JobOutcome::Skipped => self.skipped += 1,
            JobOutcome::LeaseLost => self.lease_lost += 1,
            JobOutcome::StoreError => self.store_errors += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobOutcome {
    Delivered,
    Retrying { refused: bool },
    Failed { refused: bool },
    Gone,
    ShortCircuited,
    Skipped,
    LeaseLost,
    StoreError,
}

/// The delivery engine. Cheap to clone (shared state).
pub struct Dispatcher<S: ?Sized> {
    inner: Arc<Inner<S>>,
}

impl<S: ?Sized> Clone for Dispatcher<S> {
    fn clone(&self) -> Self {
        Dispatcher { inner: self.inner.clone() }
    }
}

impl<S: ?Sized> std::fmt::Debug for Dispatcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

struct Inner<S: ?Sized> {
    store: Arc<S>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    breakers: Breakers,
    workers: Semaphore,
    wake: Arc<Notify>,
}

/// A claimed notification with what its attempt needs.
struct Job {
    claim: DeliveryClaim,
    instance: Option<Arc<Instance>>,
}

impl<S> Dispatcher<S>
where
    S: InstanceStore + OutboxStore + ?Sized + 'static,
{
    /// An engine over `store`, delivering with `notifier`, on `clock`'s time.
    pub fn new(
        store: Arc<S>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: DispatcherConfig,
    ) -> Result<Dispatcher<S>, NotifyError> {
        if config.workers == 0 || config.max_claimed == 0 {
            return Err(NotifyError::InvalidPolicy("workers and max_claimed must be at least 1".into()));
        }
        if !(1..=MAX_EVENTS_PER_NOTIFICATION).contains(&config.max_events) {
            return Err(NotifyError::InvalidPolicy(format!(
                "max_events must be between 1 and {MAX_EVENTS_PER_NOTIFICATION}, got {}",
                config.max_events
            )));
        }
        if config.lease_ttl <= config.attempt_time {
            return Err(NotifyError::InvalidPolicy(format!(
                "the lease ({:?}) must outlast an attempt ({:?})",
                config.lease_ttl, config.attempt_time
            )));
        }
        let breakers = Breakers::new(config.breaker, config.per_url_concurrency);
        let workers = Semaphore::new(config.workers);
        Ok(Dispatcher {
            inner: Arc::new(Inner { store, notifier, clock, config, breakers, workers, wake: Arc::new(Notify::new()) }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &DispatcherConfig {
        &self.inner.config
    }

    /// The breakers, to look at (open circuits for the operator).
    pub fn breakers(&self) -> &Breakers {
        &self.inner.breakers
    }

    /// A handle that wakes [`run`](Dispatcher::run) at once (`notify_one()`), e.g. after a poll committed events.
    pub fn waker(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    /// One round: batches new events, claims what is due now (up to `max_claimed`), attempts every claim and
    /// records each attempt. Returns when every claimed notification is finished.
    pub async fn run_once(&self) -> Result<TickReport, NotifyError> {
        let (jobs, mut report) = self.claim(self.inner.config.max_claimed, true).await?;
        let (recorder, recording) = Recorder::start(self.inner.store.clone());
        let mut tasks = JoinSet::new();
        for job in jobs {
            let (inner, recorder) = (self.inner.clone(), recorder.clone());
            tasks.spawn(async move { inner.attempt(job, &recorder).await });
        }
        drop(recorder);
        while let Some(joined) = tasks.join_next().await {
            report.add(joined.unwrap_or(JobOutcome::StoreError));
        }
        let _ = recording.await;
        Ok(report)
    }

    /// The service loop: claims due notifications whenever there is room, at least every `poll_interval` and at
    /// once when woken; stops claiming when `shutdown` completes and returns once the attempts in flight are
    /// recorded. Store errors are logged and retried on the next round.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let config = &self.inner.config;
        let (recorder, recording) = Recorder::start(self.inner.store.clone());
        let mut tasks: JoinSet<JobOutcome> = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        // claim again on a finished attempt only while the last claim came back full (more may be due)
        let mut more_due = true;
        let mut claim_now = true;
        // batching is a write: only when woken, on the tick, or while the last batching still found events
        let mut batch_now = true;
        // every claim is a write transaction: claim in large bites
        let min_claim = (config.max_claimed / 2).max(1);
        loop {
            let room = config.max_claimed.saturating_sub(tasks.len());
            if room > 0 && (claim_now || (more_due && room >= min_claim)) {
                match self.claim(room, batch_now).await {
                    Ok((jobs, report)) => {
                        more_due = report.claimed == room;
                        batch_now = report.batched > 0;
                        if report.batched > 0 || report.claimed > 0 {
                            tracing::debug!(batched = report.batched, claimed = report.claimed, "delivery round");
                        }
                        for job in jobs {
                            let (inner, recorder) = (self.inner.clone(), recorder.clone());
                            tasks.spawn(async move { inner.attempt(job, &recorder).await });
                        }
                    }
                    Err(error) => {
                        more_due = false;
                        tracing::error!(error = %error_chain(&error), "claiming notifications failed");
                    }
                }
            }
            claim_now = false;
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    while tasks.try_join_next().is_some() {}
                }
                () = self.inner.wake.notified() => (claim_now, batch_now) = (true, true),
                () = tokio::time::sleep(config.poll_interval) => (claim_now, batch_now) = (true, true),
            }
        }
        while tasks.join_next().await.is_some() {}
        drop(recorder);
        let _ = recording.await;
    }

    /// Batches new events (when `batch`) and claims up to `limit` due notifications, with their instances.
    async fn claim(&self, limit: usize, batch: bool) -> Result<(Vec<Job>, TickReport), NotifyError> {
        let inner = &self.inner;
        let config = &inner.config;
        let now = inner.clock.now();
        let batched = if batch { inner.store.batch_events(now, config.max_events).await? } else { 0 };
        let claims = inner.store.claim_deliveries(&config.owner, now, limit, config.lease_ttl).await?;
        let mut instances: HashMap<InstanceId, Option<Arc<Instance>>> = HashMap::new();
        for claim in &claims {
            let id = claim.notification.instance_id;
            if let std::collections::hash_map::Entry::Vacant(slot) = instances.entry(id) {
                slot.insert(inner.store.instance_by_id(id).await?.map(Arc::new));
            }
        }
        let report = TickReport { batched, claimed: claims.len(), ..TickReport::default() };
        let jobs = claims
            .into_iter()
            .map(|claim| {
                let instance = instances.get(&claim.notification.instance_id).cloned().flatten();
                Job { claim, instance }
            })
            .collect();
        Ok((jobs, report))
    }
}

/// Where and how an instance's notifications go, read from its configuration at attempt time.
struct Target {
    url: String,
    key: Option<oc_model::Secret>,
}

fn target(instance: &Instance) -> Option<Target> {
    let config = &instance.configuration;
    let enabled = config.notifications_enabled().unwrap_or(false);
    if !enabled || instance.disabled || instance.notifications_disabled_reason.is_some() {
        return None;
    }
    let url = config.notification_callback_url()?;
    Some(Target { url, key: config.notification_signature_key().filter(|k| !k.is_empty()) })
}

fn meta(instance: &Instance, hub_key: &str) -> NotificationMeta {
    NotificationMeta {
        instance_id: instance.id,
        instance_name: instance.name.clone(),
        instance_tags: instance.tags.clone(),
        element_key: instance.element_key.clone(),
        hub_key: hub_key.to_string(),
        user_id: instance.user_id,
        account_id: instance.org_id,
    }
}

impl<S> Inner<S>
where
    S: InstanceStore + OutboxStore + ?Sized,
{
    /// Attempts one claimed notification and records the attempt.
    async fn attempt(&self, job: Job, recorder: &Recorder) -> JobOutcome {
        let Job { claim, instance } = job;
        let id = claim.notification.id;
        let Some((instance, target)) = instance.and_then(|i| target(&i).map(|t| (i, t))) else {
            tracing::debug!(notification = %id, "notifications of the instance are off: kept pending");
            return JobOutcome::Skipped;
        };
        // The attempt's number in its round of the schedule. A redelivered notification keeps its attempt count
        // in the store, so counting modulo the schedule's length gives it a fresh round.
        let number = claim.notification.attempts % self.config.retry.max_attempts() + 1;
        let body = match Notification::new(&meta(&instance, &self.config.hub_key), id, &claim.events)
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
        };
        let result = self.notifier.deliver(&request).await;
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

/// Records an attempt with what follows it (through the recorder, with others finished meanwhile); `ok` is the
/// outcome when it is written. Logs the attempt once it is recorded ([`log_attempt`]).
async fn record(
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
    match recorder.record(record).await {
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
struct Recorder {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Recorder {
    fn start<S: OutboxStore + ?Sized + 'static>(store: Arc<S>) -> (Recorder, JoinHandle<()>) {
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
        (Recorder { queue }, task)
    }

    /// Records `record` with whatever else is waiting; its own result.
    async fn record(&self, record: AttemptRecord) -> Result<(), StoreError> {
        let stopped = || StoreError::Database("the attempt recorder stopped".into());
        let (answer, result) = oneshot::channel();
        self.queue.send((record, answer)).map_err(|_| stopped())?;
        result.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// An attempt that sent nothing.
fn not_attempted(at: DateTime<Utc>, error: String) -> NewAttempt {
    NewAttempt { at, status_code: None, latency_ms: 0, error: Some(error), response_excerpt: String::new() }
}

fn lease_left(claim: &DeliveryClaim, now: DateTime<Utc>, attempt_time: Duration) -> bool {
    crate::retry::add(now, attempt_time) < claim.lease.expires_at
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// `scheme://host[:port]` of a callback URL, for logs (its path and query may carry a secret).
fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "(an invalid URL)".to_string(),
    }
}

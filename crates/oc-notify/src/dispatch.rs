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
//! The attempt itself is [`crate::attempt`]; its recording, [`crate::recorder`].
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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use oc_model::error::chain;
use oc_model::event::MAX_EVENTS_PER_NOTIFICATION;
use oc_model::ports::{Clock, DeliveryClaim, DeliveryStore, Notifier, Providers, Telemetry};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::breaker::{BreakerConfig, Breakers};
use crate::error::NotifyError;
use crate::recorder::Recorder;
use crate::retry::RetryPolicy;

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

/// How one claimed notification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobOutcome {
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

pub(crate) struct Inner<S: ?Sized> {
    pub(crate) store: Arc<S>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) providers: Providers,
    pub(crate) telemetry: Arc<dyn Telemetry>,
    pub(crate) config: DispatcherConfig,
    pub(crate) breakers: Breakers,
    pub(crate) workers: Semaphore,
    wake: Arc<Notify>,
}

/// What a [`Dispatcher`] works with: the ports it sees the world through.
pub struct DeliveryPorts<S: ?Sized> {
    /// The outbox.
    pub store: Arc<S>,
    /// One HTTP delivery.
    pub notifier: Arc<dyn Notifier>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The providers, by element key: the `hubKey` of an element's notifications is its provider's hub.
    pub providers: Providers,
    /// Where attempts and batches are reported.
    pub telemetry: Arc<dyn Telemetry>,
}

impl<S> Dispatcher<S>
where
    S: DeliveryStore + ?Sized + 'static,
{
    /// An engine over `ports.store`, delivering with `ports.notifier`, on `ports.clock`'s time.
    pub fn new(ports: DeliveryPorts<S>, config: DispatcherConfig) -> Result<Dispatcher<S>, NotifyError> {
        let DeliveryPorts { store, notifier, clock, providers, telemetry } = ports;
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
            inner: Arc::new(Inner {
                store,
                notifier,
                clock,
                providers,
                telemetry,
                config,
                breakers,
                workers,
                wake: Arc::new(Notify::new()),
            }),
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
        let (recorder, recording) = Recorder::start(self.inner.store.clone(), self.inner.telemetry.clone());
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
        let (recorder, recording) = Recorder::start(self.inner.store.clone(), self.inner.telemetry.clone());
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
                        tracing::error!(error = %chain(&error), "claiming notifications failed");
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
    async fn claim(&self, limit: usize, batch: bool) -> Result<(Vec<DeliveryClaim>, TickReport), NotifyError> {
        let inner = &self.inner;
        let config = &inner.config;
        let now = inner.clock.now();
        let batched = if batch { inner.store.batch_events(now, config.max_events).await? } else { 0 };
        if batched > 0 {
            inner.telemetry.batched(batched, now);
        }
        let claims = inner.store.claim_deliveries(&config.owner, now, limit, config.lease_ttl).await?;
        let report = TickReport { batched, claimed: claims.len(), ..TickReport::default() };
        Ok((claims, report))
    }
}

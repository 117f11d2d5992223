//! Metrics from inside the engine, the dispatcher and the Sage provider, which know nothing of this crate.
//!
//! - [`InstrumentedStore`] wraps the store port and counts what passes through it: polls committed or abandoned
//!   (outcome, duration, records read, events by type), delivery attempts (outcome, answer class) and delivery
//!   latency. Every call is delegated unchanged; the engine and the dispatcher are handed the wrapper.
//! - [`sage_scrape_hook`] copies the Sage provider's own counters ([`SageStatsSnapshot`]: requests by status,
//!   rate-limit waits, token refreshes) into the registry when `/metrics` is rendered.
//!
//! Token refreshes are counted by the provider, not here: the vault's `mark_invalid` is called both by the
//! provider on `invalid_grant` and by the engine after it (idempotently), so counting it here would count twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use oc_model::event::EventType;
use oc_model::ids::{InstanceId, OrgId};
use oc_model::ports::{
    AccountStore, AttemptRecord, CommitSummary, DeliveryClaim, EventDetail, EventFilter, EventPage, Instance,
    InstanceStore, InstanceUpdate, Lease, NewAttempt, NewInstance, NewOrganization, NextStep, NotificationRecord,
    Organization, OutboxStats, OutboxStore, PollClaim, PollCommit, PollFailure, PollOutcome, PollRecord, PollState,
    PollStatus, PollStore, Principal, Store, StoreError, StoredAttempt, TokenSet, TokenVault,
};
use oc_sageone::{SageProvider, SageStatsSnapshot};
use uuid::Uuid;

use crate::metrics::{Metrics, ScrapeHook};

/// At most this many claimed notifications are remembered for the latency histogram.
const MAX_TRACKED: usize = 16_384;

/// The store port, counting into [`Metrics`] as it goes.
pub struct InstrumentedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    in_flight: Mutex<InFlight>,
}

impl std::fmt::Debug for InstrumentedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedStore").finish_non_exhaustive()
    }
}

impl InstrumentedStore {
    /// Wraps `inner`, counting into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        InstrumentedStore { inner, metrics, in_flight: Mutex::new(InFlight::new(MAX_TRACKED)) }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt once the store has answered (`recorded`: it was written), and observes the delivery
    /// latency of a delivered notification.
    fn attempt_done(&self, notification: Uuid, attempt: &NewAttempt, next: NextStep, recorded: bool) {
        // Forgotten whatever happened: a retry is claimed (and remembered) again.
        let claimed = self.in_flight().attempted(notification);
        if !recorded {
            return;
        }
        let m = &self.metrics;
        m.count(
            "ocpoll_notifications_total",
            vec![("outcome", attempt_label(next).to_string()), ("class", class_label(attempt.status_code))],
            1.0,
        );
        if let (NextStep::Delivered, Some(c)) = (next, claimed) {
            let millis = i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX);
            let delivered_at = attempt.at + Duration::milliseconds(millis);
            if let Some(change) = c.oldest_change {
                let since = vec![("since", "change".to_string())];
                m.observe("ocpoll_delivery_latency_seconds", since, positive(delivered_at - change));
            }
            let since = vec![("since", "batched".to_string())];
            m.observe("ocpoll_delivery_latency_seconds", since, positive(delivered_at - c.batched_at));
        }
    }

    /// One poll ended with `label`; `committed` are the events written, when it was written.
    fn poll_done(&self, outcome: &PollOutcome, label: &'static str, committed: Option<(&PollCommit, CommitSummary)>) {
        let m = &self.metrics;
        m.count("ocpoll_polls_total", vec![("outcome", label.to_string())], 1.0);
        m.observe("ocpoll_poll_duration_seconds", vec![], positive(outcome.finished_at - outcome.started_at));
        if outcome.records > 0 {
            m.count("ocpoll_records_fetched_total", vec![], outcome.records as f64);
        }
        if let Some((commit, summary)) = committed {
            let mut by_type = [0u64; 3];
            for e in &commit.events {
                by_type[type_index(e.event_type)] += 1;
            }
            for t in [EventType::Created, EventType::Updated, EventType::Deleted] {
                let n = by_type[type_index(t)];
                if n > 0 {
                    m.count("ocpoll_events_total", vec![("type", t.as_str().to_string())], n as f64);
                }
            }
            if summary.duplicates > 0 {
                m.count("ocpoll_duplicate_events_total", vec![], summary.duplicates as f64);
            }
        }
    }
}

fn type_index(t: EventType) -> usize {
    match t {
        EventType::Created => 0,
        EventType::Updated => 1,
        EventType::Deleted => 2,
    }
}

/// The `outcome` label of a poll.
fn poll_label(status: PollStatus) -> &'static str {
    match status {
        PollStatus::Ok => "ok",
        PollStatus::Inconsistent => "inconsistent",
        PollStatus::Failed => "failed",
        PollStatus::ReauthorizationRequired => "reauthorization_required",
    }
}

/// The `outcome` label of a poll the store refused to record.
fn refused_label(e: &StoreError) -> &'static str {
    match e {
        StoreError::LeaseLost(_) => "lease_lost",
        _ => "store_error",
    }
}

/// A span of time, negative ones (clocks apart) as zero.
fn positive(d: Duration) -> StdDuration {
    d.to_std().unwrap_or(StdDuration::ZERO)
}

/// What is remembered of a notification between its claim and its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claimed {
    /// The claim's lease lapses then: past it the attempt may never be recorded here.
    lease_expires_at: DateTime<Utc>,
    /// The date of the oldest change it carries (provider clock).
    oldest_change: Option<DateTime<Utc>>,
    /// When it was batched (local clock).
    batched_at: DateTime<Utc>,
}

/// Claimed notifications awaiting their attempt, bounded: when full, entries whose lease lapsed go (their worker
/// died or lost the lease); when still full, new claims are not remembered and their latency is not observed.
#[derive(Debug)]
struct InFlight {
    cap: usize,
    claims: HashMap<Uuid, Claimed>,
}

impl InFlight {
    fn new(cap: usize) -> Self {
        InFlight { cap, claims: HashMap::new() }
    }

    fn claimed(&mut self, id: Uuid, claim: Claimed, now: DateTime<Utc>) {
        if self.claims.len() >= self.cap && !self.claims.contains_key(&id) {
            self.claims.retain(|_, c| c.lease_expires_at > now);
            if self.claims.len() >= self.cap {
                return;
            }
        }
        self.claims.insert(id, claim);
    }

    fn attempted(&mut self, id: Uuid) -> Option<Claimed> {
        self.claims.remove(&id)
    }
}

/// The `outcome` label of a delivery attempt.
fn attempt_label(next: NextStep) -> &'static str {
    match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::Failed => "failed",
    }
}

/// The `class` label of an answer: `2xx` … `5xx`, `none` when none came.
fn class_label(status: Option<u16>) -> String {
    match status {
        Some(s @ 100..=599) => format!("{}xx", s / 100),
        Some(_) => "other".to_string(),
        None => "none".to_string(),
    }
}

#[async_trait]
impl AccountStore for InstrumentedStore {
    async fn create_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError> {
        self.inner.create_organization(new).await
    }

    async fn ensure_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError> {
        self.inner.ensure_organization(new).await
    }

    async fn authenticate(&self, user_secret: &str, org_secret: &str) -> Result<Option<Principal>, StoreError> {
        self.inner.authenticate(user_secret, org_secret).await
    }

    async fn authenticate_instance(&self, token: &str) -> Result<Option<(Principal, InstanceId)>, StoreError> {
        self.inner.authenticate_instance(token).await
    }

    async fn authenticate_user(&self, user_secret: &str) -> Result<Option<Principal>, StoreError> {
        self.inner.authenticate_user(user_secret).await
    }
}

#[async_trait]
impl InstanceStore for InstrumentedStore {
    async fn create_instance(&self, new: &NewInstance) -> Result<Instance, StoreError> {
        self.inner.create_instance(new).await
    }

    async fn instance(&self, org: OrgId, id: InstanceId) -> Result<Option<Instance>, StoreError> {
        self.inner.instance(org, id).await
    }

    async fn instance_by_id(&self, id: InstanceId) -> Result<Option<Instance>, StoreError> {
        self.inner.instance_by_id(id).await
    }

    async fn list_instances(&self, org: OrgId, tags: &[String]) -> Result<Vec<Instance>, StoreError> {
        self.inner.list_instances(org, tags).await
    }

    async fn update_instance(
        &self,
        org: OrgId,
        id: InstanceId,
        update: &InstanceUpdate,
    ) -> Result<Instance, StoreError> {
        self.inner.update_instance(org, id, update).await
    }

    async fn set_disabled(
        &self,
        org: OrgId,
        id: InstanceId,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<Instance, StoreError> {
        self.inner.set_disabled(org, id, disabled, now).await
    }

    async fn set_notifications_disabled(&self, id: InstanceId, reason: Option<&str>) -> Result<(), StoreError> {
        self.inner.set_notifications_disabled(id, reason).await
    }

    async fn delete_instance(&self, org: OrgId, id: InstanceId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.delete_instance(org, id, now).await
    }
}

#[async_trait]
impl PollStore for InstrumentedStore {
    async fn claim_polls(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: StdDuration,
    ) -> Result<Vec<PollClaim>, StoreError> {
        self.inner.claim_polls(owner, now, limit, ttl).await
    }

    async fn renew_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: StdDuration,
    ) -> Result<Lease, StoreError> {
        self.inner.renew_poll(instance, resource, lease, now, ttl).await
    }

    async fn commit_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        commit: &PollCommit,
    ) -> Result<CommitSummary, StoreError> {
        let result = self.inner.commit_poll(instance, resource, lease, commit).await;
        match &result {
            Ok(summary) => self.poll_done(&commit.outcome, poll_label(commit.outcome.status), Some((commit, *summary))),
            Err(e) => self.poll_done(&commit.outcome, refused_label(e), None),
        }
        result
    }

    async fn abandon_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        failure: &PollFailure,
    ) -> Result<(), StoreError> {
        let result = self.inner.abandon_poll(instance, resource, lease, failure).await;
        let label = match &result {
            Ok(()) => poll_label(failure.outcome.status),
            Err(e) => refused_label(e),
        };
        self.poll_done(&failure.outcome, label, None);
        result
    }

    async fn release_poll(&self, instance: InstanceId, resource: &str, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release_poll(instance, resource, lease).await
    }

    async fn list_polls(&self, org: OrgId, instance: InstanceId, limit: usize) -> Result<Vec<PollRecord>, StoreError> {
        self.inner.list_polls(org, instance, limit).await
    }

    async fn poll_state(&self, instance: InstanceId, resource: &str) -> Result<Option<PollState>, StoreError> {
        self.inner.poll_state(instance, resource).await
    }
}

#[async_trait]
impl OutboxStore for InstrumentedStore {
    async fn batch_events(&self, now: DateTime<Utc>, max_events: usize) -> Result<usize, StoreError> {
        self.inner.batch_events(now, max_events).await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: StdDuration,
    ) -> Result<Vec<DeliveryClaim>, StoreError> {
        let claims = self.inner.claim_deliveries(owner, now, limit, ttl).await?;
        if !claims.is_empty() {
            let mut in_flight = self.in_flight();
            for c in &claims {
                let claimed = Claimed {
                    lease_expires_at: c.lease.expires_at,
                    oldest_change: c.events.iter().map(|e| e.date).min(),
                    batched_at: c.notification.created_at,
                };
                in_flight.claimed(c.notification.id, claimed, now);
            }
        }
        Ok(claims)
    }

    async fn record_attempt(
        &self,
        notification: Uuid,
        lease: &Lease,
        attempt: &NewAttempt,
        next: NextStep,
    ) -> Result<(), StoreError> {
        let result = self.inner.record_attempt(notification, lease, attempt, next).await;
        self.attempt_done(notification, attempt, next, result.is_ok());
        result
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        // Forwarded as one call, so the inner store's batching is kept; counted per attempt.
        let results = self.inner.record_attempts(records).await;
        match &results {
            Ok(results) => {
                for (r, result) in records.iter().zip(results) {
                    self.attempt_done(r.notification, &r.attempt, r.next, result.is_ok());
                }
            }
            Err(_) => {
                for r in records {
                    self.attempt_done(r.notification, &r.attempt, r.next, false);
                }
            }
        }
        results
    }

    async fn list_events(&self, org: OrgId, filter: &EventFilter) -> Result<EventPage, StoreError> {
        self.inner.list_events(org, filter).await
    }

    async fn event_detail(&self, org: OrgId, event_id: Uuid) -> Result<Option<EventDetail>, StoreError> {
        self.inner.event_detail(org, event_id).await
    }

    async fn notification(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<Option<(NotificationRecord, Vec<StoredAttempt>)>, StoreError> {
        self.inner.notification(org, id).await
    }

    async fn redeliver(&self, org: OrgId, notification: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.redeliver(org, notification, now).await
    }

    async fn redeliver_failed(&self, org: OrgId, instance: InstanceId, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.redeliver_failed(org, instance, now).await
    }

    async fn prune_delivered(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune_delivered(before).await
    }

    async fn outbox_stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreError> {
        self.inner.outbox_stats(now).await
    }
}

#[async_trait]
impl TokenVault for InstrumentedStore {
    async fn tokens(&self, instance: InstanceId) -> Result<Option<TokenSet>, StoreError> {
        self.inner.tokens(instance).await
    }

    async fn lock_refresh(&self, instance: InstanceId, holder: &str, ttl: StdDuration) -> Result<bool, StoreError> {
        self.inner.lock_refresh(instance, holder, ttl).await
    }

    async fn save_refreshed(&self, instance: InstanceId, holder: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        self.inner.save_refreshed(instance, holder, tokens).await
    }

    async fn unlock_refresh(&self, instance: InstanceId, holder: &str) -> Result<(), StoreError> {
        self.inner.unlock_refresh(instance, holder).await
    }

    async fn mark_invalid(&self, instance: InstanceId, reason: &str) -> Result<(), StoreError> {
        self.inner.mark_invalid(instance, reason).await
    }
}

/// Copies a snapshot of the Sage provider's counters into `metrics`: `ocpoll_sage_requests_total{status}`,
/// `ocpoll_rate_limit_waits_total{by}`, `ocpoll_rate_limit_wait_seconds_total{by}` and
/// `ocpoll_token_refreshes_total{outcome}`. The figures are totals, so they are set, not added.
pub fn record_sage_stats(metrics: &Metrics, stats: &SageStatsSnapshot) {
    for (status, n) in &stats.responses {
        metrics.set_counter("ocpoll_sage_requests_total", vec![("status", status.to_string())], *n as f64);
    }
    if stats.transport_errors > 0 {
        let labels = vec![("status", "transport_error".to_string())];
        metrics.set_counter("ocpoll_sage_requests_total", labels, stats.transport_errors as f64);
    }
    for (by, n, waited) in
        [("limiter", stats.limiter_waits, stats.limiter_wait), ("sage", stats.throttle_waits, stats.throttle_wait)]
    {
        metrics.set_counter("ocpoll_rate_limit_waits_total", vec![("by", by.to_string())], n as f64);
        metrics.set_counter("ocpoll_rate_limit_wait_seconds_total", vec![("by", by.to_string())], waited.as_secs_f64());
    }
    let r = &stats.refreshes;
    for (outcome, n) in
        [("ok", r.ok), ("invalid_grant", r.invalid_grant), ("invalid_client", r.invalid_client), ("failed", r.failed)]
    {
        metrics.set_counter("ocpoll_token_refreshes_total", vec![("outcome", outcome.to_string())], n as f64);
    }
}

/// A scrape hook reading `sage`'s counters (shared by its clones) at every rendering of the metrics.
pub fn sage_scrape_hook(sage: SageProvider) -> ScrapeHook {
    Arc::new(move |metrics: &Metrics| record_sage_stats(metrics, &sage.stats()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use oc_model::event::{Event, event_id};
    use oc_model::ports::{Clock, ManualClock};
    use oc_model::{Configuration, InstanceId};
    use oc_sageone::RefreshCounts;
    use oc_store::testing::{self, TestStore};
    use serde_json::json;

    use super::*;

    const RESOURCE: &str = "customers";
    const TTL: StdDuration = StdDuration::from_secs(60);

    fn t0() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    /// A real SQLite store behind the wrapper, with one instance polling `customers` and notifying a callback.
    struct World {
        _test: TestStore,
        store: InstrumentedStore,
        metrics: Arc<Metrics>,
        clock: ManualClock,
        instance: InstanceId,
    }

    impl World {
        async fn new() -> World {
            let test = testing::sqlite().await;
            let metrics = Arc::new(Metrics::default());
            let store = InstrumentedStore::new(test.dyn_store(), metrics.clone());
            // Through the wrapper: its delegation is what the engine and the API will meet.
            let (_, owner) = testing::organization(&store).await;
            let mut configuration = Configuration::new();
            configuration.insert("event.notification.enabled", json!("true"));
            configuration.insert("event.notification.callback.url", json!("https://receiver.example/cb"));
            configuration.insert(
                "event.poller.configuration",
                json!({RESOURCE: {"url": "/hubs/finance/customers", "idField": "id"}}),
            );
            let instance = store.create_instance(&testing::new_instance(owner, configuration, t0())).await.unwrap();
            World { _test: test, store, metrics, clock: ManualClock::new(t0()), instance: instance.id }
        }

        fn text(&self) -> String {
            self.metrics.render()
        }

        async fn claim_poll(&self) -> Lease {
            let claims = self.store.claim_polls("poller", self.clock.now(), 10, TTL).await.unwrap();
            assert_eq!(claims.len(), 1, "{claims:?}");
            claims[0].lease.clone()
        }

        fn outcome(&self, status: PollStatus, took: StdDuration, records: u64) -> PollOutcome {
            let now = self.clock.now();
            PollOutcome {
                started_at: now - Duration::from_std(took).unwrap(),
                finished_at: now,
                status,
                window_start: None,
                pages: 1,
                records,
                created: 0,
                updated: 0,
                deleted: 0,
                warnings: vec![],
                error: None,
            }
        }

        fn commit(&self, events: Vec<Event>, took: StdDuration, records: u64) -> PollCommit {
            PollCommit {
                events,
                seen: vec![],
                watermark: Some(self.clock.now()),
                skew_ms: 0,
                outcome: self.outcome(PollStatus::Ok, took, records),
                next_run_at: self.clock.now(),
            }
        }

        fn event(&self, object: &str, event_type: EventType, date: DateTime<Utc>) -> Event {
            Event {
                event_id: event_id(self.instance, RESOURCE, object, event_type, date, 0),
                event_type,
                object_type: RESOURCE.into(),
                object_id: object.into(),
                date,
                record: json!({"id": object}),
            }
        }

        /// Batches what is waiting and claims the one notification it makes.
        async fn claim_delivery(&self) -> DeliveryClaim {
            self.store.batch_events(self.clock.now(), 10).await.unwrap();
            let mut claims = self.store.claim_deliveries("notifier", self.clock.now(), 10, TTL).await.unwrap();
            assert_eq!(claims.len(), 1, "{claims:?}");
            claims.pop().unwrap()
        }

        fn attempt(&self, status: u16, latency_ms: u64) -> NewAttempt {
            NewAttempt {
                at: self.clock.now(),
                status_code: Some(status),
                latency_ms,
                error: None,
                response_excerpt: String::new(),
            }
        }
    }

    /// `expected` lines are all in `text`.
    fn check(text: &str, expected: &[&str]) {
        for line in expected {
            assert!(text.lines().any(|l| l == *line), "missing {line:?} in\n{text}");
        }
    }

    #[tokio::test]
    async fn a_commit_counts_the_poll_its_records_and_its_events_by_type() {
        let w = World::new().await;
        let lease = w.claim_poll().await;
        let date = t0() - Duration::seconds(30);
        let events = vec![
            w.event("a", EventType::Created, date),
            w.event("b", EventType::Created, date),
            w.event("c", EventType::Updated, date),
        ];
        let commit = w.commit(events.clone(), StdDuration::from_secs(2), 7);
        let summary = w.store.commit_poll(w.instance, RESOURCE, &lease, &commit).await.unwrap();
        assert_eq!(summary, CommitSummary { inserted: 3, duplicates: 0 });
        let text = w.text();
        check(
            &text,
            &[
                "ocpoll_polls_total{outcome=\"ok\"} 1",
                "ocpoll_records_fetched_total 7",
                "ocpoll_events_total{type=\"CREATED\"} 2",
                "ocpoll_events_total{type=\"UPDATED\"} 1",
                "ocpoll_poll_duration_seconds_bucket{le=\"1\"} 0",
                "ocpoll_poll_duration_seconds_bucket{le=\"2.5\"} 1",
                "ocpoll_poll_duration_seconds_sum 2",
                "ocpoll_poll_duration_seconds_count 1",
            ],
        );
        assert!(!text.contains("type=\"DELETED\"") && !text.contains("\nocpoll_duplicate_events_total "), "{text}");

        // The same events again (a poll repeated after a crash): the outbox ignores them, and that is said.
        w.clock.advance(StdDuration::from_secs(60));
        let lease = w.claim_poll().await;
        let commit = w.commit(events, StdDuration::from_millis(20), 3);
        let summary = w.store.commit_poll(w.instance, RESOURCE, &lease, &commit).await.unwrap();
        assert_eq!(summary, CommitSummary { inserted: 0, duplicates: 3 });
        check(
            &w.text(),
            &[
                "ocpoll_polls_total{outcome=\"ok\"} 2",
                "ocpoll_records_fetched_total 10",
                "ocpoll_events_total{type=\"CREATED\"} 4",
                "ocpoll_duplicate_events_total 3",
                "ocpoll_poll_duration_seconds_bucket{le=\"0.025\"} 1",
                "ocpoll_poll_duration_seconds_count 2",
            ],
        );
    }

    #[tokio::test]
    async fn abandoned_and_refused_polls_are_counted_by_outcome() {
        let w = World::new().await;
        let lease = w.claim_poll().await;
        let failure = PollFailure {
            outcome: w.outcome(PollStatus::ReauthorizationRequired, StdDuration::from_millis(300), 0),
            next_run_at: w.clock.now(),
        };
        w.store.abandon_poll(w.instance, RESOURCE, &lease, &failure).await.unwrap();

        // A commit under a lease that is no longer current is refused: counted as such, its events not.
        w.clock.advance(StdDuration::from_secs(1));
        let lease = w.claim_poll().await;
        let stale = Lease { generation: lease.generation - 1, ..lease };
        let commit = w.commit(vec![w.event("a", EventType::Created, t0())], StdDuration::from_secs(1), 4);
        let err = w.store.commit_poll(w.instance, RESOURCE, &stale, &commit).await.unwrap_err();
        assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
        let text = w.text();
        check(
            &text,
            &[
                "ocpoll_polls_total{outcome=\"reauthorization_required\"} 1",
                "ocpoll_polls_total{outcome=\"lease_lost\"} 1",
                "ocpoll_records_fetched_total 4",
                "ocpoll_poll_duration_seconds_count 2",
            ],
        );
        assert!(!text.contains("ocpoll_events_total{"), "{text}");
    }

    #[tokio::test]
    async fn attempts_are_counted_and_a_delivery_observes_its_latency_once() {
        let w = World::new().await;
        let lease = w.claim_poll().await;
        let events = vec![
            w.event("a", EventType::Created, t0() - Duration::seconds(40)),
            w.event("b", EventType::Updated, t0() - Duration::seconds(20)),
        ];
        w.store.commit_poll(w.instance, RESOURCE, &lease, &w.commit(events, StdDuration::ZERO, 2)).await.unwrap();

        // First attempt: the receiver is down. Counted, no latency yet.
        let claim = w.claim_delivery().await;
        let id = claim.notification.id;
        let retry = NextStep::RetryAt(w.clock.now() + Duration::seconds(30));
        w.store.record_attempt(id, &claim.lease, &w.attempt(503, 100), retry).await.unwrap();
        let text = w.text();
        check(&text, &["ocpoll_notifications_total{outcome=\"retry\",class=\"5xx\"} 1"]);
        assert!(!text.contains("ocpoll_delivery_latency_seconds_count"), "{text}");
        assert!(w.store.in_flight().claims.is_empty());

        // 30 s later it goes through, 500 ms after the attempt started: 70.5 s after the oldest change, 30.5 s
        // after it was batched.
        w.clock.advance(StdDuration::from_secs(30));
        let claim = w.claim_delivery().await;
        assert_eq!(claim.notification.id, id);
        w.store.record_attempt(id, &claim.lease, &w.attempt(204, 500), NextStep::Delivered).await.unwrap();
        check(
            &w.text(),
            &[
                "ocpoll_notifications_total{outcome=\"delivered\",class=\"2xx\"} 1",
                "ocpoll_notifications_total{outcome=\"retry\",class=\"5xx\"} 1",
                "ocpoll_delivery_latency_seconds_bucket{since=\"change\",le=\"60\"} 0",
                "ocpoll_delivery_latency_seconds_bucket{since=\"change\",le=\"300\"} 1",
                "ocpoll_delivery_latency_seconds_sum{since=\"change\"} 70.5",
                "ocpoll_delivery_latency_seconds_sum{since=\"batched\"} 30.5",
                "ocpoll_delivery_latency_seconds_count{since=\"batched\"} 1",
            ],
        );
        assert!(w.store.in_flight().claims.is_empty());
    }

    #[tokio::test]
    async fn a_batch_of_attempts_is_forwarded_whole_and_counted_per_attempt() {
        let w = World::new().await;
        let lease = w.claim_poll().await;
        let date = t0() - Duration::seconds(10);
        let events = vec![w.event("a", EventType::Created, date), w.event("b", EventType::Created, date)];
        w.store.commit_poll(w.instance, RESOURCE, &lease, &w.commit(events, StdDuration::ZERO, 2)).await.unwrap();
        w.store.batch_events(w.clock.now(), 1).await.unwrap();
        let claims = w.store.claim_deliveries("notifier", w.clock.now(), 10, TTL).await.unwrap();
        assert_eq!(claims.len(), 2);
        let record = |c: &DeliveryClaim, attempt: NewAttempt, next: NextStep| AttemptRecord {
            notification: c.notification.id,
            lease: c.lease.clone(),
            attempt,
            next,
        };
        let records = vec![
            record(&claims[0], w.attempt(204, 250), NextStep::Delivered),
            record(&claims[1], w.attempt(503, 100), NextStep::RetryAt(w.clock.now() + Duration::seconds(30))),
            // given twice: refused by the store, not counted
            record(&claims[0], w.attempt(204, 250), NextStep::Delivered),
        ];
        let results = w.store.record_attempts(&records).await.unwrap();
        assert_eq!(results.iter().map(Result::is_ok).collect::<Vec<_>>(), [true, true, false]);
        check(
            &w.text(),
            &[
                "ocpoll_notifications_total{outcome=\"delivered\",class=\"2xx\"} 1",
                "ocpoll_notifications_total{outcome=\"retry\",class=\"5xx\"} 1",
                "ocpoll_delivery_latency_seconds_sum{since=\"change\"} 10.25",
                "ocpoll_delivery_latency_seconds_count{since=\"batched\"} 1",
            ],
        );
        assert!(w.store.in_flight().claims.is_empty());
    }

    #[test]
    fn the_claims_remembered_are_bounded() {
        let claim = |expires: i64| Claimed {
            lease_expires_at: t0() + Duration::seconds(expires),
            oldest_change: None,
            batched_at: t0(),
        };
        let mut f = InFlight::new(2);
        let (a, b, c, d) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3), Uuid::from_u128(4));
        f.claimed(a, claim(10), t0());
        f.claimed(b, claim(60), t0());
        // Full, nothing lapsed: the new claim is not remembered; a known one is updated.
        f.claimed(c, claim(60), t0());
        assert_eq!(f.claims.len(), 2);
        assert!(!f.claims.contains_key(&c));
        f.claimed(b, claim(90), t0());
        assert_eq!(f.claims[&b], claim(90));
        // Later, `a`'s lease has lapsed (its attempt will never come): it makes room.
        f.claimed(d, claim(120), t0() + Duration::seconds(30));
        assert_eq!(f.claims.keys().copied().collect::<std::collections::BTreeSet<_>>(), [b, d].into());
        assert_eq!(f.attempted(b), Some(claim(90)));
        assert_eq!(f.attempted(b), None);
    }

    #[test]
    fn answer_classes() {
        let cases = [(Some(200), "2xx"), (Some(410), "4xx"), (Some(503), "5xx"), (Some(999), "other"), (None, "none")];
        for (status, expected) in cases {
            assert_eq!(class_label(status), expected, "{status:?}");
        }
    }

    #[test]
    fn sage_counters_are_copied_as_totals() {
        let m = Metrics::default();
        let mut stats = SageStatsSnapshot {
            responses: BTreeMap::from([(200, 41), (429, 2)]),
            transport_errors: 1,
            limiter_waits: 3,
            limiter_wait: StdDuration::from_millis(4500),
            throttle_waits: 2,
            throttle_wait: StdDuration::from_secs(14),
            refreshes: RefreshCounts { ok: 5, invalid_grant: 1, invalid_client: 0, failed: 0 },
        };
        record_sage_stats(&m, &stats);
        stats.responses.insert(200, 42);
        // Copied twice: set, not added.
        record_sage_stats(&m, &stats);
        check(
            &m.render(),
            &[
                "ocpoll_sage_requests_total{status=\"200\"} 42",
                "ocpoll_sage_requests_total{status=\"429\"} 2",
                "ocpoll_sage_requests_total{status=\"transport_error\"} 1",
                "ocpoll_rate_limit_waits_total{by=\"limiter\"} 3",
                "ocpoll_rate_limit_waits_total{by=\"sage\"} 2",
                "ocpoll_rate_limit_wait_seconds_total{by=\"limiter\"} 4.5",
                "ocpoll_rate_limit_wait_seconds_total{by=\"sage\"} 14",
                "ocpoll_token_refreshes_total{outcome=\"ok\"} 5",
                "ocpoll_token_refreshes_total{outcome=\"invalid_grant\"} 1",
                "ocpoll_token_refreshes_total{outcome=\"invalid_client\"} 0",
            ],
        );
    }

    #[test]
    fn the_sage_hook_reads_the_provider_at_each_rendering() {
        let m = Metrics::default();
        let sage = SageProvider::new(oc_sageone::SageConfig::default()).unwrap();
        m.on_scrape(sage_scrape_hook(sage));
        check(
            &m.render(),
            &["ocpoll_token_refreshes_total{outcome=\"ok\"} 0", "ocpoll_rate_limit_waits_total{by=\"limiter\"} 0"],
        );
    }
}

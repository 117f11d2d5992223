//! Shared test support: the model provider, a recording store wrapper over the real SQLite store, and a
//! harness that runs the real engine against both with a manual clock.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod logs;
pub mod model;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::Configuration;
use oc_model::event::Event;
use oc_model::ids::{InstanceId, OrgId};
use oc_model::ports::{
    Clock, CommitSummary, Instance, InstanceStore, Known, Lease, ManualClock, NoTelemetry, PollCommit, PollFailure,
    PollOutcome, PollingStore, Principal, Session, StoreError,
};
use oc_poller::{Engine, EngineConfig, PollJob, PollReport};
use oc_store::SqlStore;
use serde_json::{Value, json};

pub use model::{Action, Faults, Model, Rng};

/// The real store, recording what was committed and able to "crash" before a commit.
pub struct Recorder {
    pub inner: Arc<SqlStore>,
    /// Events of successful commits, in commit order.
    pub committed: Mutex<Vec<Event>>,
    /// Outcomes of committed and abandoned polls.
    pub outcomes: Mutex<Vec<PollOutcome>>,
    /// The next commit fails as if the process died just before it.
    pub crash_next_commit: AtomicBool,
    /// The events of every commit attempted, committed or not.
    pub attempted: Mutex<Vec<Vec<Event>>>,
}

#[async_trait]
impl PollingStore for Recorder {
    async fn claim_polls(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<oc_model::ports::PollClaim>, StoreError> {
        self.inner.claim_polls(owner, now, limit, ttl).await
    }
    async fn renew_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: Duration,
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
        self.attempted.lock().unwrap().push(commit.events.clone());
        if self.crash_next_commit.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Database("the process died before the commit".into()));
        }
        let s = self.inner.commit_poll(instance, resource, lease, commit).await?;
        self.committed.lock().unwrap().extend(commit.events.iter().cloned());
        self.outcomes.lock().unwrap().push(commit.outcome.clone());
        Ok(s)
    }
    async fn abandon_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        failure: &PollFailure,
    ) -> Result<(), StoreError> {
        self.inner.abandon_poll(instance, resource, lease, failure).await?;
        self.outcomes.lock().unwrap().push(failure.outcome.clone());
        Ok(())
    }
    async fn release_poll(&self, instance: InstanceId, resource: &str, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release_poll(instance, resource, lease).await
    }
    async fn known(&self, instance: InstanceId, resource: &str) -> Result<Known, StoreError> {
        self.inner.known(instance, resource).await
    }
}

/// The resource every harness polls.
pub const RESOURCE: &str = "things";
/// The lease time used by the harness.
pub const LEASE_TTL: Duration = Duration::from_secs(120);

/// Options of one harness.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Local clock at the start.
    pub start: DateTime<Utc>,
    /// Provider clock minus local clock.
    pub skew_ms: i64,
    /// Seed of the model's randomness.
    pub seed: u64,
    /// The poller URL.
    pub url: String,
    /// Extra poller configuration fields.
    pub poller: Value,
    /// Minutes between polls.
    pub interval_minutes: f64,
    /// Engine settings.
    pub engine: EngineConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            start: "2024-05-01T12:00:00Z".parse().unwrap(),
            skew_ms: 0,
            seed: 1,
            url: "/hubs/finance/things?since=${date:yyyy-MM-dd'T'HH:mm:ss'Z'}".into(),
            poller: json!({}),
            interval_minutes: 5.0,
            engine: EngineConfig::default(),
        }
    }
}

/// The real engine, the model provider and the real store, with a manual clock.
pub struct Harness {
    pub clock: Arc<ManualClock>,
    pub model: Arc<Model>,
    pub store: Arc<SqlStore>,
    pub recorder: Recorder,
    pub engine: Engine,
    pub owner: Principal,
    pub instance: Instance,
    /// Provider time at the instance's creation: where its watermark starts.
    pub start_ms: i64,
    pub interval: Duration,
}

impl Harness {
    /// Creates an instance (provider clock at a whole second) polling [`RESOURCE`] through the model.
    pub async fn new(store: Arc<SqlStore>, owner: Principal, setup: Setup) -> Harness {
        let clock = Arc::new(ManualClock::new(setup.start));
        let model = Arc::new(Model::new(clock.clone(), setup.skew_ms, setup.seed));
        let mut poller = json!({
            "url": setup.url,
            "idField": "id",
            "datesConfiguration": {"updatedDateField": "updated_at", "createdDateField": "created_at"},
        });
        if let (Some(p), Some(extra)) = (poller.as_object_mut(), setup.poller.as_object()) {
            for (k, v) in extra {
                p.insert(k.clone(), v.clone());
            }
        }
        let mut configuration = Configuration::new();
        configuration.insert("oauth.api.key", json!("model-app"));
        configuration.insert("oauth.api.secret", json!("model-secret"));
        configuration.insert("oauth.callback.url", json!("https://example.com/oauth"));
        configuration.insert("event.notification.enabled", json!("true"));
        configuration.insert("event.notification.callback.url", json!("https://example.com/hook"));
        configuration.insert("event.poller.refresh_interval", json!(setup.interval_minutes));
        configuration.insert("event.poller.configuration", json!({ RESOURCE: poller }));
        let local = clock.now();
        let provider_start = local + chrono::Duration::milliseconds(setup.skew_ms);
        let mut new = oc_store::testing::new_instance(owner, configuration, local);
        new.element_key = model::MODEL_ELEMENT.into();
        new.poll_start = provider_start;
        let instance = store.create_instance(&new).await.expect("instance");
        let engine = Engine::new(clock.clone(), setup.engine, Arc::new(NoTelemetry));
        Harness {
            recorder: Recorder {
                inner: store.clone(),
                committed: Mutex::new(Vec::new()),
                outcomes: Mutex::new(Vec::new()),
                crash_next_commit: AtomicBool::new(false),
                attempted: Mutex::new(Vec::new()),
            },
            clock,
            model,
            store,
            engine,
            owner,
            start_ms: provider_start.timestamp_millis(),
            instance,
            interval: Duration::from_secs_f64(setup.interval_minutes * 60.0),
        }
    }

    /// Advances the local clock.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Claims the instance's job when due and runs one poll. `None` when the job was not due (or the instance
    /// is not pollable), `Some(None)` when the poll crashed (the model's crash request), else the report.
    pub async fn poll(&self) -> Option<Option<Result<PollReport, oc_poller::PollError>>> {
        let now = self.clock.now();
        let claims = self.store.claim_polls("test-node", now, 100, LEASE_TTL).await.expect("claim");
        let mut mine = None;
        for c in claims {
            if c.instance_id() == self.instance.id && c.resource == RESOURCE {
                mine = Some(c);
            } else {
                // another case's job: give it back untouched
                self.store.release_poll(c.instance_id(), &c.resource, &c.lease).await.expect("release");
            }
        }
        let claim = mine?;
        let session = Session::of(&claim.instance, self.store.clone()).expect("a session");
        let next = now + chrono::Duration::from_std(self.interval).unwrap();
        let job = PollJob {
            claim: &claim,
            provider: self.model.as_ref(),
            session: &session,
            store: &self.recorder,
            next_run_ok: next,
            next_run_changed: None,
            next_run_failed: next,
            lease_slot: None,
            warnings: Vec::new(),
        };
        tokio::select! {
            r = self.engine.poll(job) => Some(Some(r)),
            _ = self.model.crashed.notified() => Some(None),
        }
    }

    /// Runs polls until one runs (waiting out leases of crashed polls); returns its report.
    pub async fn poll_until_run(&self) -> Result<PollReport, oc_poller::PollError> {
        for _ in 0..10 {
            match self.poll().await {
                Some(Some(r)) => return r,
                Some(None) => self.advance(LEASE_TTL),
                None => self.advance(self.interval),
            }
        }
        panic!("the job never became due");
    }

    /// Events committed so far, first copies only (the outbox refuses a second copy of an id).
    pub fn delivered(&self) -> Vec<Event> {
        let mut seen = std::collections::HashSet::new();
        self.recorder.committed.lock().unwrap().iter().filter(|e| seen.insert(e.event_id)).cloned().collect()
    }

    /// A consumer's mirror: the delivered events applied in order.
    pub fn mirror(&self) -> std::collections::BTreeMap<String, Value> {
        let mut m = std::collections::BTreeMap::new();
        for e in self.delivered() {
            match e.event_type {
                oc_model::EventType::Deleted => {
                    m.remove(&e.object_id);
                }
                _ => {
                    m.insert(e.object_id.clone(), e.record.clone());
                }
            }
        }
        m
    }

    /// The events of one object id, as "TYPE n" (the record's `n`), in delivery order.
    pub fn history(&self, id: &str) -> Vec<String> {
        self.delivered()
            .iter()
            .filter(|e| e.object_id == id)
            .map(|e| format!("{} {}", e.event_type, e.record.get("n").map(|n| n.to_string()).unwrap_or_default()))
            .collect()
    }

    /// Deletes the instance (its jobs go), so later cases of a shared store never see it.
    pub async fn finish(self) {
        self.store.delete_instance(self.owner.org_id, self.instance.id, self.clock.now()).await.expect("delete");
    }
}

/// A fresh SQLite store with an organization.
pub async fn sqlite() -> (oc_store::testing::TestStore, Arc<SqlStore>, Principal) {
    let t = oc_store::testing::sqlite().await;
    let store = t.store();
    let (_, owner) = oc_store::testing::organization(&*store).await;
    (t, store, owner)
}

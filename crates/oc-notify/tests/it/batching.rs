//! Attempts are recorded in batches: the outcomes of concurrent deliveries go to the store together, through
//! `OutboxStore::record_attempts`, and a slow delivery does not hold back the record of the others.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::InstanceId;
use oc_model::ports::{
    ActivityStore, AttemptRecord, Clock, DeliveryClaim, DeliveryStore, EventFilter, Lease, NewAttempt, NextStep,
    NotificationStatus, StoreError,
};
use oc_notify::{Dispatcher, DispatcherConfig, HttpNotifier, HttpNotifierConfig};
use oc_store::SqlStore;
use support::{World, event};
use uuid::Uuid;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::World::sqlite().await).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(world) = super::World::postgres().await {
                    super::$name(world).await
                }
            })*
        }
    };
}

on_every_backend!(
    concurrent_attempts_are_recorded_together,
    a_slow_delivery_does_not_hold_back_the_others,
    a_store_panic_fails_its_batch_only,
);

/// The store, counting the calls that record attempts.
struct Counting {
    inner: Arc<SqlStore>,
    single_calls: AtomicUsize,
    batch_calls: AtomicUsize,
    batched: AtomicUsize,
    /// Panic in the first `record_attempts` call.
    panic_once: std::sync::atomic::AtomicBool,
}

impl Counting {
    fn new(inner: Arc<SqlStore>, panic_once: bool) -> Counting {
        Counting {
            inner,
            single_calls: AtomicUsize::new(0),
            batch_calls: AtomicUsize::new(0),
            batched: AtomicUsize::new(0),
            panic_once: std::sync::atomic::AtomicBool::new(panic_once),
        }
    }
}

#[async_trait]
impl DeliveryStore for Counting {
    async fn batch_events(&self, now: DateTime<Utc>, max_events: usize) -> Result<usize, StoreError> {
        self.inner.batch_events(now, max_events).await
    }
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<DeliveryClaim>, StoreError> {
        self.inner.claim_deliveries(owner, now, limit, ttl).await
    }
    async fn record_attempt(
        &self,
        notification: Uuid,
        lease: &Lease,
        attempt: &NewAttempt,
        next: NextStep,
    ) -> Result<(), StoreError> {
        self.single_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.record_attempt(notification, lease, attempt, next).await
    }
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        if self.panic_once.swap(false, Ordering::SeqCst) {
            panic!("a store bug");
        }
        self.batch_calls.fetch_add(1, Ordering::SeqCst);
        self.batched.fetch_add(records.len(), Ordering::SeqCst);
        self.inner.record_attempts(records).await
    }
    async fn set_notifications_disabled(&self, id: InstanceId, reason: Option<&str>) -> Result<(), StoreError> {
        self.inner.set_notifications_disabled(id, reason).await
    }
}

fn engine<S: DeliveryStore + 'static>(world: &World, store: Arc<S>) -> Dispatcher<S> {
    let clock: Arc<dyn Clock> = world.clock.clone();
    let config = HttpNotifierConfig { allow_private_callbacks: true, ..HttpNotifierConfig::default() };
    let notifier = HttpNotifier::new(config, clock.clone()).unwrap();
    let config = DispatcherConfig { max_events: 1, ..DispatcherConfig::default() };
    let _ = clock;
    Dispatcher::new(world.ports(store, Arc::new(notifier)), config).unwrap()
}

async fn receiver(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(answer).mount(&server).await;
    server
}

/// The statuses of the notifications of `instance`.
async fn statuses(world: &World, instance: InstanceId) -> Vec<NotificationStatus> {
    let filter = EventFilter { instance_id: Some(instance), page: 1, page_size: 1000, ..Default::default() };
    let page = world.store.list_events(world.org, &filter).await.unwrap();
    page.items.iter().map(|e| e.status).collect()
}

async fn concurrent_attempts_are_recorded_together(world: World) {
    let ok = receiver(ResponseTemplate::new(200)).await;
    let failing = receiver(ResponseTemplate::new(503)).await;
    let (a, b) =
        (world.instance("ok", &ok.uri(), Some("k")).await, world.instance("failing", &failing.uri(), None).await);
    world.commit(a.id, (0..96).map(|i| event(a.id, &format!("c{i}"), 0)).collect()).await;
    world.commit(b.id, (0..4).map(|i| event(b.id, &format!("c{i}"), 0)).collect()).await;
    let store = Arc::new(Counting::new(world.store.clone(), false));
    let report = engine(&world, store.clone()).run_once().await.unwrap();
    assert_eq!((report.claimed, report.delivered, report.retrying), (100, 96, 4), "{report:?}");
    assert_eq!(store.single_calls.load(Ordering::SeqCst), 0, "never one by one");
    assert_eq!(store.batched.load(Ordering::SeqCst), 100, "every attempt recorded once");
    let calls = store.batch_calls.load(Ordering::SeqCst);
    assert!(calls < 100, "attempts finished meanwhile are recorded together: {calls} calls for 100");
    assert!(statuses(&world, a.id).await.iter().all(|s| *s == NotificationStatus::Delivered));
    assert!(statuses(&world, b.id).await.iter().all(|s| *s == NotificationStatus::Pending));
}

async fn a_slow_delivery_does_not_hold_back_the_others(world: World) {
    let slow = receiver(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let fast = receiver(ResponseTemplate::new(200)).await;
    let (s, f) = (world.instance("slow", &slow.uri(), None).await, world.instance("fast", &fast.uri(), None).await);
    world.commit(s.id, vec![event(s.id, "c0", 0)]).await;
    world.commit(f.id, (0..20).map(|i| event(f.id, &format!("c{i}"), 0)).collect()).await;
    let engine = engine(&world, world.store.clone());
    let round = tokio::spawn(async move { engine.run_once().await.unwrap() });
    // the fast ones are recorded while the slow one is still on its way
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
    while !statuses(&world, f.id).await.iter().all(|s| *s == NotificationStatus::Delivered) {
        assert!(tokio::time::Instant::now() < deadline, "the fast deliveries wait for the slow one");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(statuses(&world, s.id).await, [NotificationStatus::Delivering]);
    let report = round.await.unwrap();
    assert_eq!(report.delivered, 21, "{report:?}");
    assert_eq!(statuses(&world, s.id).await, [NotificationStatus::Delivered]);
}

async fn a_store_panic_fails_its_batch_only(world: World) {
    let ok = receiver(ResponseTemplate::new(200)).await;
    let a = world.instance("ok", &ok.uri(), None).await;
    world.commit(a.id, (0..60).map(|i| event(a.id, &format!("c{i}"), 0)).collect()).await;
    let store = Arc::new(Counting::new(world.store.clone(), true));
    let report = engine(&world, store.clone()).run_once().await.unwrap();
    // the attempts of the batch that panicked stay claimed (their lease lapses); the later ones are recorded
    assert_eq!(report.claimed, 60, "{report:?}");
    assert!(report.store_errors > 0, "{report:?}");
    assert!(report.delivered > 0, "{report:?}");
    assert_eq!(report.store_errors + report.delivered, 60, "{report:?}");
    assert_eq!(store.batched.load(Ordering::SeqCst), report.delivered);
}

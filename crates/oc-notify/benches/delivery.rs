//! Notifications delivered and recorded per second: a fresh SQLite store holding `N` due notifications, a local
//! keep-alive receiver, signing on; the time from the first round until every notification is delivered and its
//! attempt recorded (batching included). Two engines: rounds of `run_once` and the `run` service loop. Two
//! ceilings, to see which side limits: the store calls alone (batch, claim, record; no HTTP; the attempts recorded
//! one call each or one call per claim), and the notifier alone (signed POSTs, 32 in flight; no store).

#[path = "../tests/it/support/receiver.rs"]
mod receiver;
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use oc_model::Secret;
use oc_model::ports::{
    AttemptRecord, Clock, DeliveryRequest, DeliveryStore, MaintenanceStore, NewAttempt, NextStep, Notifier,
};
use oc_notify::{Dispatcher, DispatcherConfig, HttpNotifier, HttpNotifierConfig};
use oc_store::SqlStore;
use receiver::Receiver;
use support::{World, event};

/// Notifications per measured run.
const NOTIFICATIONS: usize = 5_000;
/// Instances, each with a callback URL of its own (the per-URL limit applies to each).
const INSTANCES: usize = 8;

struct Setup {
    world: World,
    receiver: Receiver,
    engine: Dispatcher<SqlStore>,
}

async fn setup(events_per_notification: usize) -> Setup {
    setup_on(World::sqlite().await, events_per_notification).await
}

async fn setup_on(world: World, events_per_notification: usize) -> Setup {
    let receiver = Receiver::start().await;
    let mut ids = Vec::new();
    for i in 0..INSTANCES {
        let instance = world.instance(&format!("i{i}"), &receiver.url(&format!("/hook/{i}")), Some("k3y")).await;
        ids.push(instance.id);
    }
    let per_instance = NOTIFICATIONS * events_per_notification / INSTANCES;
    for &id in &ids {
        let events = (0..per_instance).map(|n| event(id, &format!("c{n}"), 0)).collect();
        world.commit(id, events).await;
    }
    let clock: Arc<dyn Clock> = world.clock.clone();
    let notifier = HttpNotifier::new(
        HttpNotifierConfig { allow_private_callbacks: true, ..HttpNotifierConfig::default() },
        clock.clone(),
    )
    .unwrap();
    let config = DispatcherConfig { max_events: events_per_notification, ..DispatcherConfig::default() };
    let engine = Dispatcher::new(world.ports(world.store.clone(), Arc::new(notifier)), config).unwrap();
    Setup { world, receiver, engine }
}

async fn rounds(s: &Setup) -> Duration {
    let start = Instant::now();
    let mut delivered = 0;
    loop {
        let report = s.engine.run_once().await.unwrap();
        delivered += report.delivered;
        if report.claimed == 0 && report.batched == 0 {
            break;
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(delivered, NOTIFICATIONS);
    elapsed
}

async fn service(s: &Setup) -> Duration {
    let start = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = s.engine.clone();
    let running = tokio::spawn(async move { engine.run(async move { stopped.await.unwrap_or(()) }).await });
    // done when the store has nothing pending: every attempt is recorded. The store is asked only once every
    // notification has reached the receiver, so that the measurement does not load the store while it runs.
    while s.receiver.requests.load(Ordering::SeqCst) < NOTIFICATIONS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        let stats = s.world.store.outbox_stats(s.world.now()).await.unwrap();
        if stats.unbatched_events == 0 && stats.pending_notifications == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    let _ = stop.send(());
    running.await.unwrap();
    assert_eq!(s.receiver.requests.load(Ordering::SeqCst), NOTIFICATIONS);
    elapsed
}

/// The store's share: the same batch/claim/record calls as the engine makes, without HTTP; the attempts of a
/// claim recorded one call each (`record_attempt`) or in one call (`record_attempts`, as the engine does).
async fn store_only(s: &Setup, events_per_notification: usize, batched: bool) -> Duration {
    let store = &s.world.store;
    let now = s.world.now();
    let start = Instant::now();
    let mut recorded = 0;
    loop {
        let batched_now = store.batch_events(now, events_per_notification).await.unwrap();
        let claims = store.claim_deliveries("bench", now, 128, Duration::from_secs(300)).await.unwrap();
        if batched_now == 0 && claims.is_empty() {
            break;
        }
        let records: Vec<AttemptRecord> = claims
            .into_iter()
            .map(|claim| AttemptRecord {
                notification: claim.notification.id,
                lease: claim.lease,
                attempt: NewAttempt {
                    at: now,
                    status_code: Some(200),
                    latency_ms: 1,
                    error: None,
                    response_excerpt: "ok".into(),
                },
                next: NextStep::Delivered,
            })
            .collect();
        if batched {
            let results = store.record_attempts(&records).await.unwrap();
            assert!(results.iter().all(Result::is_ok));
        } else {
            for r in &records {
                store.record_attempt(r.notification, &r.lease, &r.attempt, r.next).await.unwrap();
            }
        }
        recorded += records.len();
    }
    let elapsed = start.elapsed();
    assert_eq!(recorded, NOTIFICATIONS);
    elapsed
}

/// The notifier's share: signed POSTs of a one-event body to the local receiver, 32 in flight.
async fn notifier_only() -> Duration {
    let receiver = Receiver::start().await;
    let clock: Arc<dyn Clock> = Arc::new(oc_model::ports::SystemClock);
    let config = HttpNotifierConfig { allow_private_callbacks: true, ..HttpNotifierConfig::default() };
    let notifier = Arc::new(HttpNotifier::new(config, clock).unwrap());
    let body = Arc::new(serde_json::to_vec(&serde_json::json!({"message": {"events": [event(1, "c1", 0)]}})).unwrap());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..32 {
        let (notifier, body, url) = (notifier.clone(), body.clone(), receiver.url(&format!("/hook/{}", worker % 8)));
        tasks.spawn(async move {
            let key = Secret::new("k3y");
            for n in (worker..NOTIFICATIONS).step_by(32) {
                let id = n.to_string();
                let request = DeliveryRequest {
                    url: &url,
                    body: &body,
                    notification_id: &id,
                    signature_key: Some(&key),
                    previous_signature_key: None,
                };
                assert!(notifier.deliver(&request).await.status == Some(200));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("delivery");
    group.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(NOTIFICATIONS as u64));
    group.bench_function("notifier only (no store), 1 event per notification", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| runtime.block_on(notifier_only())).sum())
    });
    group.bench_function("run_once rounds, 1 event(s) per notification", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| runtime.block_on(async { rounds(&setup(1).await).await })).sum())
    });
    for events in [1usize, 10] {
        for (batched, how) in [(false, "one call per attempt"), (true, "one call per claim")] {
            let name = format!("store only (no HTTP, {how}), {events} event(s) per notification");
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let run = || runtime.block_on(async { store_only(&setup(events).await, events, batched).await });
                    (0..iters).map(|_| run()).sum()
                })
            });
        }
        group.bench_function(format!("run loop, {events} event(s) per notification"), |b| {
            b.iter_custom(|iters| {
                (0..iters).map(|_| runtime.block_on(async { service(&setup(events).await).await })).sum()
            })
        });
    }
    // PostgreSQL (when OCPOLL_TEST_DATABASE_URL is set): the service loop and the store's share
    if std::env::var_os("OCPOLL_TEST_DATABASE_URL").is_some() {
        group.bench_function("PostgreSQL: run loop, 1 event(s) per notification", |b| {
            b.iter_custom(|iters| {
                let run = || {
                    runtime.block_on(async {
                        let world = World::postgres().await.expect("PostgreSQL");
                        service(&setup_on(world, 1).await).await
                    })
                };
                (0..iters).map(|_| run()).sum()
            })
        });
        group.bench_function(
            "PostgreSQL: store only (no HTTP, one call per claim), 1 event(s) per notification",
            |b| {
                b.iter_custom(|iters| {
                    let run = || {
                        runtime.block_on(async {
                            let world = World::postgres().await.expect("PostgreSQL");
                            store_only(&setup_on(world, 1).await, 1, true).await
                        })
                    };
                    (0..iters).map(|_| run()).sum()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

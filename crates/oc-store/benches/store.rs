//! Store benchmarks, on SQLite always and on PostgreSQL when `OCPOLL_TEST_DATABASE_URL` is set:
//! - `commit_200`: the atomic commit of a poll with 200 new events (target: under 20 ms on both);
//! - `outbox_insert`: events per second into the outbox, 1,000 per commit (target: ≥ 20,000/s on SQLite);
//! - `claim_complete`: claim 10 due notifications and record a delivered attempt for each;
//! - `feed_read_1000`: the change feed read in pages of 1,000 (changes per second through the feed's query);
//! - `claim_32_of_100k`: claim 32 due poll jobs out of 100,000 (1,000 instances of 100 resources), 4,096 of the
//!   due ones already leased (the polls running and waiting for their budget of a busy node), as the scheduler
//!   claims at every step (issue 19: the claim query stays cheap at 100,000 jobs);
//! - `feed_wake`: commit-to-reader latency of a waiting feed reader — from the end of a commit of one event to a
//!   reader blocked in `wait_for_commit` being awake (on PostgreSQL through `LISTEN`/`NOTIFY` on another pool,
//!   as a reader on another node would be).
//!
//! Only the measured call is timed (`iter_custom`): the claim before a commit and the events and batching
//! before a delivery round are set up outside the clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oc_model::config::Configuration;
use oc_model::event::{Event, EventType, event_id};
use oc_model::ports::{
    AccountStore, ActivityStore, ChangeQuery, DeliveryStore, InstanceStore, MaintenanceStore, NewAttempt, NewInstance,
    NewOrganization, NextStep, PollCommit, PollOutcome, PollStatus, PollingStore, Principal, ProviderAccount, TokenSet,
};
use oc_model::secret::Secret;
use oc_store::{MasterKey, SqlStore, StoreOptions};
use serde_json::json;
use tokio::runtime::Runtime;

const TTL: Duration = Duration::from_secs(300);

struct Bed {
    store: Arc<SqlStore>,
    instance: i64,
    /// Advances by one second per use so that jobs are always due and events unique.
    tick: i64,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
    key: MasterKey,
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("an instant")
}

async fn bed(url: String, schema: Option<String>, dir: Option<tempfile::TempDir>) -> Bed {
    let key = MasterKey::generate();
    let mut options = StoreOptions::new(url.clone(), key.clone());
    options.schema = schema.clone();
    let store = Arc::new(oc_store::connect_with(options).await.expect("a store"));
    let org = NewOrganization {
        name: "bench".into(),
        org_secret: format!("org-{}", uuid::Uuid::new_v4()),
        user_secret: format!("user-{}", uuid::Uuid::new_v4()),
        now: t(0),
    };
    let (_, owner) = store.create_organization(&org).await.expect("an organization");
    let configuration: Configuration = serde_json::from_value(json!({
        "event.notification.enabled": true,
        "event.notification.callback.url": "https://example.com/hook",
        "event.poller.refresh_interval": "1",
        "event.poller.configuration": {"customers": {"url": "/hubs/finance/customers", "idField": "id"}},
    }))
    .expect("a configuration");
    let new = new_instance(owner, "bench".into(), configuration);
    let instance = store.create_instance(&new).await.expect("an instance").id;
    Bed { store, instance, tick: 0, _dir: dir, schema: schema.map(|s| (url, s)), key }
}

/// An instance of `owner` named `name`, with tokens valid for an hour and its polls due from `t(0)`.
fn new_instance(owner: Principal, name: String, configuration: Configuration) -> NewInstance {
    NewInstance {
        secret_keys: Default::default(),
        org_id: owner.org_id,
        user_id: owner.user_id,
        name,
        element_key: "sageone".into(),
        tags: vec![],
        configuration,
        account: ProviderAccount::default(),
        tokens: TokenSet {
            access_token: Secret::new("a"),
            refresh_token: Secret::new("r"),
            expires_at: t(3600),
            refresh_expires_at: None,
            scope: None,
        },
        token: uuid::Uuid::new_v4().to_string(),
        now: t(0),
        poll_start: t(0),
    }
}

/// A fresh bed on `backend` (`None`: PostgreSQL without `OCPOLL_TEST_DATABASE_URL`).
async fn fresh(backend: &'static str) -> Option<Bed> {
    if backend == "sqlite" {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        return Some(bed(url, None, Some(dir)).await);
    }
    match std::env::var("OCPOLL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("ocpoll_bench_{}", uuid::Uuid::new_v4().simple());
            Some(bed(url, Some(schema), None).await)
        }
        _ => {
            eprintln!("PostgreSQL benchmarks skipped: OCPOLL_TEST_DATABASE_URL is not set");
            None
        }
    }
}

async fn drop_bed(bed: Bed) {
    bed.store.close().await;
    if let Some((url, schema)) = &bed.schema {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(&mut conn).await;
        }
    }
}

/// `n` new events, unique across the whole run.
fn events(instance: i64, tick: i64, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let object_id = format!("{tick}-{i}");
            let date = t(tick);
            Event {
                event_id: event_id(instance, "customers", &object_id, EventType::Updated, date, i as u64),
                event_type: EventType::Updated,
                object_type: "customers".into(),
                object_id: object_id.clone(),
                date,
                record: json!({"id": object_id, "updated_at": date, "name": "Acme Ltd", "balance": "1024.50",
                               "address": {"line1": "1 High Street", "town": "London", "postcode": "EC1A 1BB"}}),
            }
        })
        .collect()
}

/// Claims the instance's job at a new tick and commits `n` new events; returns the time of the commit alone.
async fn poll_once(bed: &mut Bed, n: usize) -> Duration {
    bed.tick += 1;
    let now = t(bed.tick);
    let claim = bed.store.claim_polls("bench", now, 1, TTL).await.expect("claim").pop().expect("a due job");
    let commit = PollCommit {
        events: events(bed.instance, bed.tick, n),
        seen: vec![7; 4096],
        watermark: Some(now),
        skew_ms: 0,
        outcome: PollOutcome {
            started_at: now,
            finished_at: now,
            status: PollStatus::Ok,
            window_start: None,
            pages: 1,
            records: n as u64,
            created: 0,
            updated: n as u32,
            deleted: 0,
            warnings: vec![],
            error: None,
        },
        next_run_at: now,
        reconciled: None,
        trace_parent: None,
    };
    let start = Instant::now();
    let summary = bed.store.commit_poll(bed.instance, "customers", &claim.lease, &commit).await.expect("commit");
    let took = start.elapsed();
    assert_eq!(summary.inserted, n);
    took
}

/// Makes 10 notifications due, then times claiming them and recording a delivered attempt for each.
async fn deliver_round(bed: &mut Bed) -> Duration {
    poll_once(bed, 100).await;
    let now = t(bed.tick);
    bed.store.batch_events(now, 10).await.expect("batch");
    let start = Instant::now();
    let claims = bed.store.claim_deliveries("bench", now, 10, TTL).await.expect("claim deliveries");
    assert_eq!(claims.len(), 10);
    for c in claims {
        let attempt =
            NewAttempt { at: now, status_code: Some(200), latency_ms: 3, error: None, response_excerpt: "ok".into() };
        bed.store.record_attempt(c.notification.id, &c.lease, &attempt, NextStep::Delivered).await.expect("record");
    }
    start.elapsed()
}

/// Commits 1,000 events, then times reading them back through the feed in one page.
async fn feed_round(bed: &mut Bed) -> Duration {
    let org = bed.store.instance_by_id(bed.instance).await.expect("the instance").expect("it exists").org_id;
    let before = bed
        .store
        .changes(org, &ChangeQuery { instance: bed.instance, after: None, limit: 1, ..ChangeQuery::default() })
        .await
        .expect("changes")
        .expect("the instance");
    let mut at = before.position;
    // the end of the feed so far
    loop {
        let q = ChangeQuery { instance: bed.instance, after: Some(at), limit: 1000, ..ChangeQuery::default() };
        let page = bed.store.changes(org, &q).await.expect("changes").expect("the instance");
        at = page.position;
        if !page.has_more {
            break;
        }
    }
    poll_once(bed, 1000).await;
    let start = Instant::now();
    let q = ChangeQuery { instance: bed.instance, after: Some(at), limit: 1000, ..ChangeQuery::default() };
    let page = bed.store.changes(org, &q).await.expect("changes").expect("the instance");
    let took = start.elapsed();
    assert_eq!(page.changes.len(), 1000);
    took
}

/// A reader waits on `reader` (another pool on PostgreSQL); one event is committed on the bed's store; the time
/// from the end of the commit to the reader being awake.
async fn wake_round(bed: &mut Bed, reader: &Arc<SqlStore>) -> Duration {
    let seen = reader.commit_generation();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let waiting = {
        let reader = reader.clone();
        tokio::spawn(async move {
            reader.wait_for_commit(seen, Duration::from_secs(10)).await;
            let _ = tx.send(Instant::now());
        })
    };
    // the reader is waiting before the commit
    tokio::time::sleep(Duration::from_millis(2)).await;
    poll_once(bed, 1).await;
    let committed = Instant::now();
    let woke = rx.await.expect("the reader woke");
    waiting.await.expect("the reader task");
    woke.saturating_duration_since(committed)
}

/// One benchmark: a fresh bed, `round` timed `iters` times.
fn run<F>(c: &mut Criterion, rt: &Runtime, backend: &'static str, name: &str, elements: u64, round: F)
where
    F: for<'a> Fn(&'a mut Bed) -> std::pin::Pin<Box<dyn std::future::Future<Output = Duration> + 'a>>,
{
    let Some(mut bed) = rt.block_on(fresh(backend)) else { return };
    let mut g = c.benchmark_group(format!("store/{backend}"));
    g.sample_size(20).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(elements));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += round(&mut bed).await;
                }
                total
            })
        })
    });
    g.finish();
    rt.block_on(drop_bed(bed));
}

/// `feed_wake`: the reader is the bed's own store on SQLite (one node) and a second store on the same schema on
/// PostgreSQL (woken through `LISTEN`/`NOTIFY`).
fn feed_wake(c: &mut Criterion, rt: &Runtime, backend: &'static str) {
    let Some(mut bed) = rt.block_on(fresh(backend)) else { return };
    let reader = match &bed.schema {
        None => bed.store.clone(),
        Some((url, schema)) => {
            let mut options = StoreOptions::new(url.clone(), bed.key.clone());
            options.schema = Some(schema.clone());
            Arc::new(rt.block_on(oc_store::connect_with(options)).expect("a second store on the schema"))
        }
    };
    let mut g = c.benchmark_group(format!("store/{backend}"));
    g.sample_size(20).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    g.bench_function("feed_wake", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += wake_round(&mut bed, &reader).await;
                }
                total
            })
        })
    });
    g.finish();
    rt.block_on(drop_bed(bed));
}

/// Adds `instances` instances of `resources` resources each to the bed (their jobs due from `t(0)`).
async fn add_jobs(bed: &Bed, instances: usize, resources: usize) {
    let org = NewOrganization {
        name: "claims".into(),
        org_secret: format!("org-{}", uuid::Uuid::new_v4()),
        user_secret: format!("user-{}", uuid::Uuid::new_v4()),
        now: t(0),
    };
    let (_, owner) = bed.store.create_organization(&org).await.expect("an organization");
    let pollers: serde_json::Map<String, serde_json::Value> = (0..resources)
        .map(|r| (format!("r{r:03}"), json!({"url": "/hubs/finance/customers", "idField": "id"})))
        .collect();
    let configuration: Configuration = serde_json::from_value(json!({
        "event.notification.enabled": true,
        "event.notification.callback.url": "https://example.com/hook",
        "event.poller.refresh_interval": "1",
        "event.poller.configuration": pollers,
    }))
    .expect("a configuration");
    for n in 0..instances {
        let new = new_instance(owner, format!("claims-{n}"), configuration.clone());
        bed.store.create_instance(&new).await.expect("an instance");
    }
}

/// `claim_32_of_100k`: 100,000 jobs, 4,096 due ones leased for an hour; each round times the claim of 32 due jobs
/// and then (untimed) releases them.
fn claim_at_scale(c: &mut Criterion, rt: &Runtime, backend: &'static str) {
    let Some(bed) = rt.block_on(fresh(backend)) else { return };
    rt.block_on(add_jobs(&bed, 1000, 100));
    // as the service's pruner does at its start and hourly (autovacuum would, within a minute or so)
    rt.block_on(bed.store.refresh_statistics()).expect("statistics");
    let now = t(120);
    let held = rt.block_on(bed.store.claim_polls("busy-node", now, 4096, Duration::from_secs(3600))).expect("claim");
    assert_eq!(held.len(), 4096);
    let mut g = c.benchmark_group(format!("store/{backend}"));
    g.sample_size(20).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(32));
    g.bench_function("claim_32_of_100k", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let claims = bed.store.claim_polls("bench", now, 32, TTL).await.expect("claim");
                    total += start.elapsed();
                    assert_eq!(claims.len(), 32);
                    for claim in claims {
                        bed.store
                            .release_poll(claim.instance_id(), &claim.resource, &claim.lease)
                            .await
                            .expect("release");
                    }
                }
                total
            })
        })
    });
    g.finish();
    rt.block_on(drop_bed(bed));
}

fn store_benches(c: &mut Criterion) {
    let rt = Runtime::new().expect("a runtime");
    for backend in ["sqlite", "postgres"] {
        run(c, &rt, backend, "commit_200", 200, |bed| Box::pin(poll_once(bed, 200)));
        run(c, &rt, backend, "outbox_insert_1000", 1000, |bed| Box::pin(poll_once(bed, 1000)));
        run(c, &rt, backend, "claim_complete_10", 10, |bed| Box::pin(deliver_round(bed)));
        run(c, &rt, backend, "feed_read_1000", 1000, |bed| Box::pin(feed_round(bed)));
        feed_wake(c, &rt, backend);
        claim_at_scale(c, &rt, backend);
    }
}

criterion_group!(benches, store_benches);
criterion_main!(benches);

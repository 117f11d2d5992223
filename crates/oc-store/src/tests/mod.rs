//! The store suite: written once against the port, run on SQLite always and on PostgreSQL when
//! `OCPOLL_TEST_DATABASE_URL` is set (each test in a schema of its own).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::config::Configuration;
use oc_model::event::{Event, EventType, event_id};
use oc_model::ports::{Instance, PollCommit, PollOutcome, PollStatus, Principal, SystemClock};
use serde_json::json;

use crate::testing::{self, TestStore};
use crate::{Backend, SqlStore};
use prelude::*;

/// The store ports, in scope for every test module.
pub(crate) mod prelude {
    pub(crate) use oc_model::ports::{
        AccountStore, ActivityStore, ConsoleStore, DeliveryStore, InstanceStore, MaintenanceStore, PollingStore,
        TokenVault,
    };
}

mod accounts;
mod alerts;
mod console;
mod feed;
mod instances;
mod leases;
mod model;
mod ops;
mod outbox;
mod polls;
mod reliability;
mod schema;
mod vault;

/// Generates, for each named `async fn name(backend: Backend)`, a SQLite test and a PostgreSQL test.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_both;

/// A fresh store of `backend` (`None`: PostgreSQL skipped).
pub(crate) async fn open(backend: Backend) -> Option<TestStore> {
    testing::store(backend, Arc::new(SystemClock)).await
}

pub(crate) fn t0() -> DateTime<Utc> {
    "2024-01-01T00:00:00Z".parse().expect("an instant")
}

pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

pub(crate) const TTL: Duration = Duration::from_secs(30);

/// A configuration polling `resources` (name, url) every `minutes`, with notifications on or off.
pub(crate) fn config(resources: &[(&str, &str)], minutes: &str, notifications: bool) -> Configuration {
    let pollers: serde_json::Map<String, serde_json::Value> =
        resources.iter().map(|(name, url)| (name.to_string(), json!({"url": url, "idField": "id"}))).collect();
    serde_json::from_value(json!({
        "oauth.api.key": "client-id",
        "oauth.api.secret": "client-secret-d41d8cd98f",
        "event.notification.enabled": notifications,
        "event.notification.callback.url": "https://example.com/hook",
        "event.notification.signature.key": "signature-key-8f00b204e9",
        "event.poller.refresh_interval": minutes,
        "event.poller.configuration": pollers,
    }))
    .expect("a configuration")
}

/// One resource `customers`, every minute, notifications on.
pub(crate) fn customers() -> Configuration {
    config(&[("customers", "/hubs/finance/customers")], "1", true)
}

/// A new organization and one instance of it with `configuration`, created at [`t0`].
pub(crate) async fn setup(s: &SqlStore, configuration: Configuration) -> (Principal, Instance) {
    let (_, owner) = testing::organization(s).await;
    let instance = s.create_instance(&testing::new_instance(owner, configuration, t0())).await.expect("an instance");
    (owner, instance)
}

/// The `n`th change of `object_id`.
pub(crate) fn event(instance: i64, object_type: &str, object_id: &str, n: i64) -> Event {
    let date = at(n);
    Event {
        event_id: event_id(instance, object_type, object_id, EventType::Updated, date, n as u64),
        event_type: EventType::Updated,
        object_type: object_type.into(),
        object_id: object_id.into(),
        date,
        record: json!({"id": object_id, "updated_at": date, "n": n}),
    }
}

pub(crate) fn outcome(status: PollStatus, finished: DateTime<Utc>) -> PollOutcome {
    PollOutcome {
        started_at: finished - chrono::Duration::seconds(1),
        finished_at: finished,
        status,
        window_start: None,
        pages: 1,
        records: 3,
        created: 0,
        updated: 3,
        deleted: 0,
        warnings: Vec::new(),
        error: None,
    }
}

/// A successful poll finishing at `finished` with these events, moving the watermark to `watermark`.
pub(crate) fn commit(events: Vec<Event>, watermark: Option<DateTime<Utc>>, finished: DateTime<Utc>) -> PollCommit {
    PollCommit {
        events,
        seen: b"seen-set".to_vec(),
        watermark,
        skew_ms: 42,
        outcome: outcome(PollStatus::Ok, finished),
        next_run_at: finished + chrono::Duration::seconds(60),
        reconciled: None,
        trace_parent: None,
    }
}

/// Puts `events` of `instance`'s job `resource` into the outbox through a poll claimed and committed at `now`
/// (the job must be due: commits schedule the next run 60 s later). Other claimed jobs are released.
pub(crate) async fn emit(s: &SqlStore, instance: i64, resource: &str, events: Vec<Event>, now: DateTime<Utc>) {
    let claims = s.claim_polls("emitter", now, 1000, TTL).await.expect("claims");
    let mut done = false;
    for c in claims {
        if c.instance_id() == instance && c.resource == resource {
            s.commit_poll(instance, resource, &c.lease, &commit(events.clone(), Some(now), now)).await.expect("commit");
            done = true;
        } else {
            s.release_poll(c.instance_id(), &c.resource, &c.lease).await.expect("release");
        }
    }
    assert!(done, "job {instance}/{resource} was not due at {now}");
}

/// The generic plan PostgreSQL settles on for prepared statement `sql` (parameters of `types`, e.g.
/// `"text, bigint"`), run with the literal `values` (`EXPLAIN ANALYZE EXECUTE`, rolled back): the plan the
/// store's statements get once sqlx has prepared them and PostgreSQL stops planning per value.
pub(crate) async fn pg_generic_plan(s: &SqlStore, sql: &str, types: &str, values: &str) -> Vec<String> {
    use crate::db::args;
    let mut tx = s.pools.write().await.unwrap();
    let mut c = tx.c();
    c.exec("SET LOCAL plan_cache_mode = force_generic_plan", args![]).await.unwrap();
    c.exec(&format!("PREPARE plan_probe ({types}) AS {sql}"), args![]).await.unwrap();
    let rows = c.all(&format!("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE plan_probe ({values})"), args![]).await.unwrap();
    c.exec("DEALLOCATE plan_probe", args![]).await.unwrap();
    tx.rollback().await;
    rows.iter().map(|r| r.text("QUERY PLAN").unwrap()).collect()
}

/// A PostgreSQL claim `plan` of `limit` rows of `table` walks `index` in order and stops near the limit: no
/// sort, no sequential scan of the table, at most twice the limit read from the index.
pub(crate) fn assert_reads_what_it_takes(plan: &[String], table: &str, index: &str, limit: i64, analyzed: bool) {
    let text = plan.join("\n");
    assert!(!plan.iter().any(|l| l.contains("Sort Key")), "a sort (analyzed: {analyzed}):\n{text}");
    assert!(!text.contains(&format!("Seq Scan on {table}")), "a scan of every row (analyzed: {analyzed}):\n{text}");
    let scanned: i64 = plan
        .iter()
        .find(|l| l.contains(index))
        .and_then(|l| l.split("rows=").nth(1))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no scan of {index} (analyzed: {analyzed}):\n{text}"));
    assert!(scanned <= limit * 2, "{scanned} rows read for a claim of {limit} (analyzed: {analyzed}):\n{text}");
}

//! The delivery engine against a real store and wiremock receivers; time is driven through a manual clock.

#[path = "support/logs.rs"]
mod logs;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use oc_model::ports::{
    ActivityStore, Clock, InstanceStore, InstanceUpdate, NotificationRecord, NotificationStatus, StoredAttempt,
};
use oc_model::{InstanceId, Notification, Secret};
use oc_notify::signing::standard_webhooks_secret;
use oc_notify::{
    BreakerConfig, Dispatcher, DispatcherConfig, HttpNotifier, HttpNotifierConfig, RetryPolicy, TickReport,
};
use oc_store::SqlStore;
use serde_json::Value;
use support::{World, event};
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

type Engine = Dispatcher<SqlStore>;

/// Every case runs on SQLite, and on PostgreSQL when `OCPOLL_TEST_DATABASE_URL` is set.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::World::sqlite().await).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(world) = super::World::postgres().await {
                    super::$name(world).await
                }
            })*
        }
    };
}

on_every_backend!(
    delivers_a_signed_notification_in_the_open_connectors_shape,
    a_500_is_retried_on_schedule_with_the_same_id,
    the_retry_schedule_runs_to_failed_then_redelivery,
    a_timeout_is_a_failed_attempt,
    a_redirect_is_a_failed_attempt,
    retry_after_is_honoured_when_longer,
    gone_switches_notifications_off_and_keeps_the_notification,
    notifications_switched_off_stay_pending,
    a_later_change_of_an_object_waits_for_the_earlier_one,
    distinct_notifications_have_distinct_ids,
    ssrf_refusals_are_recorded_and_retried,
    a_dead_receiver_is_cut_off_and_healthy_ones_go_on,
    run_delivers_promptly_when_woken_and_stops_on_shutdown,
);

fn engine(world: &World, allow_private: bool, timeout: Duration, config: DispatcherConfig) -> Engine {
    let clock: Arc<dyn Clock> = world.clock.clone();
    let notifier = HttpNotifier::new(
        HttpNotifierConfig { timeout, allow_private_callbacks: allow_private, ..HttpNotifierConfig::default() },
        clock.clone(),
    )
    .unwrap();
    Dispatcher::new(world.ports(world.store.clone(), Arc::new(notifier)), config).unwrap()
}

/// wiremock listens on 127.0.0.1: private callbacks allowed.
fn local(world: &World) -> Engine {
    engine(world, true, Duration::from_secs(5), DispatcherConfig::default())
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
    server
}

/// Answers `first` to the first `times` requests, then `then`.
async fn receiver_failing(times: u64, first: ResponseTemplate, then: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(first).up_to_n_times(times).with_priority(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(then)).with_priority(2).mount(&server).await;
    server
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server.received_requests().await.unwrap().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
}

async fn webhook_ids(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.unwrap();
    requests.iter().map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap().to_string()).collect()
}

/// The notifications of an instance (through its events), oldest first, with their attempts.
async fn notifications(world: &World, instance: InstanceId) -> Vec<(NotificationRecord, Vec<StoredAttempt>)> {
    let filter =
        oc_model::ports::EventFilter { instance_id: Some(instance), page: 1, page_size: 1000, ..Default::default() };
    let page = world.store.list_events(world.org, &filter).await.unwrap();
    let mut ids: Vec<Uuid> = page.items.iter().filter_map(|e| e.notification_id).collect();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        if out.iter().any(|(n, _): &(NotificationRecord, _)| n.id == id) {
            continue;
        }
        out.push(world.store.notification(world.org, id).await.unwrap().unwrap());
    }
    out.sort_by_key(|(n, _)| (n.created_at, n.id));
    out
}

async fn only_notification(world: &World, instance: InstanceId) -> (NotificationRecord, Vec<StoredAttempt>) {
    let mut all = notifications(world, instance).await;
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

async fn delivers_a_signed_notification_in_the_open_connectors_shape(world: World) {
    let server = receiver(200).await;
    let instance = world.instance("a", &format!("{}/hook", server.uri()), Some("k3y")).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0), event(instance.id, "c2", 0)]).await;

    let report = local(&world).run_once().await.unwrap();
    assert_eq!((report.batched, report.claimed, report.delivered), (1, 1, 1), "{report:?}");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Notification = serde_json::from_slice(&requests[0].body).unwrap();
    let m = &body.message;
    assert_eq!((m.instance_id, m.instance_id_snake, m.instance_name.as_str()), (instance.id, instance.id, "a"));
    assert_eq!(
        (m.element_key.as_str(), m.hub_key.as_str()),
        (support::ELEMENT, support::HUB),
        "the hub of the registry"
    );
    assert_eq!((m.user_id, m.account_id), (world.user, world.org));
    assert_eq!(m.instance_tags, ["Test"]);
    assert_eq!((m.object_type.as_str(), m.object_id.as_str()), ("customers", "c1"));
    let objects: Vec<_> = m.events.iter().map(|e| e.object_id.as_str()).collect();
    assert_eq!(objects, ["c1", "c2"]);
    assert_eq!(m.raw.records.len(), 2);
    assert_eq!(m.raw.records[1]["id"], "c2");
    // the id in the body is the id in the headers, and the signature verifies independently
    assert_eq!(requests[0].headers.get("webhook-id").unwrap(), m.event_id.as_str());
    assert_eq!(requests[0].headers.get("elements-webhook-id").unwrap(), m.event_id.as_str());
    let secret = standard_webhooks_secret(&Secret::new("k3y"));
    let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    // the manual clock stands in 2030: check the signature for that time, not the tolerance window
    let signed = verifier.sign(&m.event_id, world.now().timestamp(), &requests[0].body).unwrap();
    assert_eq!(requests[0].headers.get("webhook-signature").unwrap(), signed.as_str());

    let (record, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(record.id.to_string(), m.event_id);
    assert_eq!(record.status, NotificationStatus::Delivered);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].attempt.status_code, Some(200));
    assert_eq!(attempts[0].attempt.at, world.now());

    // nothing left
    assert_eq!(local(&world).run_once().await.unwrap(), TickReport::default());
}

async fn a_500_is_retried_on_schedule_with_the_same_id(world: World) {
    let server = receiver_failing(1, ResponseTemplate::new(500).set_body_string("down for a bit"), 200).await;
    let instance = world.instance("a", &server.uri(), Some("k")).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    let engine = local(&world);

    let report = engine.run_once().await.unwrap();
    assert_eq!((report.claimed, report.retrying), (1, 1), "{report:?}");
    let (record, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(record.status, NotificationStatus::Pending);
    assert_eq!(attempts[0].attempt.status_code, Some(500));
    assert_eq!(attempts[0].attempt.response_excerpt, "down for a bit");
    assert!(attempts[0].attempt.error.as_deref().unwrap().contains("500"));
    // first retry about 4 s later (±10 %)
    let next = record.next_attempt_at.unwrap();
    let wait = (next - world.now()).to_std().unwrap();
    assert!(wait >= secs(3.6) && wait <= secs(4.4), "{wait:?}");

    // not due yet: nothing happens
    world.clock.advance(secs(3.5));
    assert_eq!(engine.run_once().await.unwrap().claimed, 0);
    world.clock.set(next);
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");

    let (record, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(record.status, NotificationStatus::Delivered);
    let codes: Vec<_> = attempts.iter().map(|a| a.attempt.status_code).collect();
    assert_eq!(codes, [Some(500), Some(200)]);
    let ids = webhook_ids(&server).await;
    assert_eq!(ids, [record.id.to_string(), record.id.to_string()], "same webhook-id across retries");
    let b = bodies(&server).await;
    assert_eq!(b[0], b[1], "same body across retries");
    // the timestamp is the attempt's
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[1].headers.get("webhook-timestamp").unwrap(), &next.timestamp().to_string());
}

async fn the_retry_schedule_runs_to_failed_then_redelivery(world: World) {
    let server = receiver(503).await;
    let instance = world.instance("a", &server.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    let engine = local(&world);
    let first_failure = world.now();
    let policy = RetryPolicy::default();

    for retry in 1..=9usize {
        let report = engine.run_once().await.unwrap();
        assert_eq!(report.retrying, 1, "attempt {retry}: {report:?}");
        let (record, attempts) = only_notification(&world, instance.id).await;
        assert_eq!(attempts.len(), retry);
        assert_eq!(record.status, NotificationStatus::Pending);
        let next = record.next_attempt_at.unwrap();
        // the retry is about offset[retry] after the first failure; jitter accumulates, within ±10 % overall
        let from_first = (next - first_failure).to_std().unwrap().as_secs_f64();
        let nominal = policy.offsets()[retry - 1].as_secs_f64();
        assert!((from_first / nominal - 1.0).abs() <= 0.1 + 1e-9, "retry {retry}: {from_first} vs {nominal}");
        world.clock.set(next);
    }
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let (record, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(record.status, NotificationStatus::Failed);
    assert_eq!(attempts.len(), 10);
    assert_eq!(server.received_requests().await.unwrap().len(), 10);
    // failed stays failed
    world.clock.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(engine.run_once().await.unwrap().claimed, 0);

    // redelivered: due again now, with a fresh schedule
    assert!(world.store.redeliver(world.org, record.id, world.now()).await.unwrap());
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.retrying, 1, "a redelivery is not a single last chance: {report:?}");
    let (record, _) = only_notification(&world, instance.id).await;
    let wait = (record.next_attempt_at.unwrap() - world.now()).to_std().unwrap();
    assert!(wait >= secs(3.6) && wait <= secs(4.4), "{wait:?}");
    // that failure was the circuit's probe (it had opened after 5 failures in a row): it stays open, now for
    // 10 minutes, so the retry 4 s later is not attempted but moved to when the circuit half-opens
    let redelivered_at = world.now();
    assert_eq!(engine.breakers().open_urls(world.now()), [server.uri()]);
    world.clock.set(record.next_attempt_at.unwrap());
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.short_circuited, 1, "{report:?}");
    let (record, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(record.next_attempt_at, Some(redelivered_at + chrono::Duration::minutes(10)));
    assert!(attempts.last().unwrap().attempt.error.as_deref().unwrap().contains("circuit"));
    assert_eq!(server.received_requests().await.unwrap().len(), 11, "nothing sent while the circuit is open");

    server.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    world.clock.set(record.next_attempt_at.unwrap());
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(only_notification(&world, instance.id).await.0.status, NotificationStatus::Delivered);
    assert!(engine.breakers().open_urls(world.now()).is_empty());
}

async fn a_timeout_is_a_failed_attempt(world: World) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let instance = world.instance("a", &server.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    let engine = engine(&world, true, Duration::from_millis(300), DispatcherConfig::default());
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.retrying, 1, "{report:?}");
    let (record, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(record.status, NotificationStatus::Pending);
    assert_eq!(attempts[0].attempt.status_code, None);
    assert_eq!(attempts[0].attempt.error.as_deref(), Some("timed out after 300ms"));
    assert!(attempts[0].attempt.latency_ms >= 300);
}

async fn a_redirect_is_a_failed_attempt(world: World) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "https://example.com/"))
        .mount(&server)
        .await;
    let instance = world.instance("a", &server.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    assert_eq!(local(&world).run_once().await.unwrap().retrying, 1);
    let (_, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(attempts[0].attempt.status_code, Some(302));
    assert!(attempts[0].attempt.error.as_deref().unwrap().contains("not followed"));
}

async fn retry_after_is_honoured_when_longer(world: World) {
    let server = receiver_failing(1, ResponseTemplate::new(429).insert_header("Retry-After", "120"), 200).await;
    let instance = world.instance("a", &server.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    let engine = local(&world);
    let start = world.now();
    assert_eq!(engine.run_once().await.unwrap().retrying, 1);
    let (record, _) = only_notification(&world, instance.id).await;
    assert_eq!(record.next_attempt_at, Some(start + chrono::Duration::seconds(120)));
    world.clock.advance(secs(60.0));
    assert_eq!(engine.run_once().await.unwrap().claimed, 0, "the schedule's 4 s gave way to Retry-After");
    world.clock.advance(secs(60.0));
    assert_eq!(engine.run_once().await.unwrap().delivered, 1);
}

async fn gone_switches_notifications_off_and_keeps_the_notification(world: World) {
    let server = receiver_failing(1, ResponseTemplate::new(410), 200).await;
    let instance = world.instance("a", &server.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    let engine = local(&world);
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.gone, 1, "{report:?}");

    let stored = world.store.instance_by_id(instance.id).await.unwrap().unwrap();
    assert!(stored.notifications_disabled_reason.as_deref().unwrap().contains("410"), "{stored:?}");
    let (record, attempts) = only_notification(&world, instance.id).await;
    assert_eq!(record.status, NotificationStatus::Pending, "kept: neither failed nor delivered");
    assert_eq!(attempts[0].attempt.status_code, Some(410));

    // nothing goes out while notifications are off, however long
    world.clock.advance(Duration::from_secs(7 * 24 * 3600));
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.delivered, 0, "{report:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    // switched back on (a changed callback clears the 410): it goes out
    let mut configuration = stored.configuration.clone();
    configuration.insert("event.notification.callback.url", serde_json::json!(format!("{}/v2", server.uri())));
    let update = InstanceUpdate { configuration: Some(configuration), now: world.now(), ..Default::default() };
    world.store.update_instance(world.org, instance.id, &update).await.unwrap();
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.last().unwrap().url.path(), "/v2", "the callback is read at attempt time");
}

async fn notifications_switched_off_stay_pending(world: World) {
    let server = receiver(200).await;
    let instance = world.instance("a", &server.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    let mut configuration = instance.configuration.clone();
    configuration.insert("event.notification.enabled", serde_json::json!(false));
    let update = InstanceUpdate { configuration: Some(configuration.clone()), now: world.now(), ..Default::default() };
    world.store.update_instance(world.org, instance.id, &update).await.unwrap();

    let engine = local(&world);
    for _ in 0..3 {
        let report = engine.run_once().await.unwrap();
        assert_eq!(report.delivered + report.retrying + report.failed, 0, "{report:?}");
        world.clock.advance(Duration::from_secs(3600));
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    let (record, attempts) = only_notification(&world, instance.id).await;
    assert!(matches!(record.status, NotificationStatus::Pending | NotificationStatus::Delivering), "{record:?}");
    assert!(attempts.is_empty(), "no attempt is counted while notifications are off");

    configuration.insert("event.notification.enabled", serde_json::json!(true));
    let update = InstanceUpdate { configuration: Some(configuration), now: world.now(), ..Default::default() };
    world.store.update_instance(world.org, instance.id, &update).await.unwrap();
    // a claim left to lapse comes back after its lease
    world.clock.advance(DispatcherConfig::default().lease_ttl);
    assert_eq!(engine.run_once().await.unwrap().delivered, 1);
}

async fn a_later_change_of_an_object_waits_for_the_earlier_one(world: World) {
    let server = MockServer::start().await;
    // the first change of x fails twice; everything else is accepted
    Mock::given(method("POST"))
        .and(body_string_contains(r#""id":"x","version":1"#))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).with_priority(2).mount(&server).await;
    let instance = world.instance("a", &server.uri(), None).await;
    let engine = local(&world);
    let step = |claimed, delivered, retrying| (claimed, delivered, retrying);
    let run = || async {
        let r = engine.run_once().await.unwrap();
        (r.claimed, r.delivered, r.retrying)
    };

    world.commit(instance.id, vec![event(instance.id, "x", 1)]).await;
    assert_eq!(run().await, step(1, 0, 1), "N1 = [x v1] fails");
    world.commit(instance.id, vec![event(instance.id, "x", 2), event(instance.id, "y", 1)]).await;
    assert_eq!(run().await, step(0, 0, 0), "N2 = [x v2, y v1] waits for N1");
    world.commit(instance.id, vec![event(instance.id, "z", 1)]).await;
    assert_eq!(run().await, step(1, 1, 0), "N3 = [z v1] holds no waiting object: it goes");
    world.clock.advance(Duration::from_secs(3600));
    assert_eq!(run().await, step(1, 0, 1), "N1 fails again; N2 still waits");
    world.clock.advance(Duration::from_secs(3600));
    assert_eq!(run().await, step(1, 1, 0), "N1 delivered");
    assert_eq!(run().await, step(1, 1, 0), "now N2");

    let seen: Vec<Vec<(String, u64)>> = bodies(&server)
        .await
        .iter()
        .map(|body| {
            let records = body["message"]["raw"]["customers"].as_array().unwrap();
            records.iter().map(|r| (r["id"].as_str().unwrap().to_string(), r["version"].as_u64().unwrap())).collect()
        })
        .collect();
    let n = |items: &[(&str, u64)]| items.iter().map(|(o, v)| (o.to_string(), *v)).collect::<Vec<_>>();
    assert_eq!(seen, [n(&[("x", 1)]), n(&[("z", 1)]), n(&[("x", 1)]), n(&[("x", 1)]), n(&[("x", 2), ("y", 1)])]);
    let all = notifications(&world, instance.id).await;
    assert!(all.iter().all(|(n, _)| n.status == NotificationStatus::Delivered), "{all:?}");
}

async fn distinct_notifications_have_distinct_ids(world: World) {
    let server = receiver(200).await;
    let instance = world.instance("a", &server.uri(), None).await;
    // 25 events: three notifications of at most 10
    let events = (0..25).map(|i| event(instance.id, &format!("c{i}"), 0)).collect();
    world.commit(instance.id, events).await;
    let report = local(&world).run_once().await.unwrap();
    assert_eq!((report.batched, report.delivered), (3, 3), "{report:?}");
    let mut ids = webhook_ids(&server).await;
    let sizes: Vec<usize> =
        bodies(&server).await.iter().map(|b| b["message"]["events"].as_array().unwrap().len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 25);
    assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

async fn ssrf_refusals_are_recorded_and_retried(world: World) {
    let server = receiver(200).await;
    let port = server.address().port();
    let a = world.instance("a", &format!("http://127.0.0.1:{port}/hook"), None).await;
    let b = world.instance("b", &format!("http://localhost:{port}/hook"), None).await;
    world.commit(a.id, vec![event(a.id, "c1", 0)]).await;
    world.commit(b.id, vec![event(b.id, "c1", 0)]).await;
    let engine = engine(&world, false, Duration::from_secs(5), DispatcherConfig::default());
    let report = engine.run_once().await.unwrap();
    assert_eq!((report.refused, report.retrying), (2, 2), "{report:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
    for (instance, host) in [(a.id, "127.0.0.1"), (b.id, "localhost")] {
        let (record, attempts) = only_notification(&world, instance).await;
        assert_eq!(record.status, NotificationStatus::Pending);
        let error = attempts[0].attempt.error.as_deref().unwrap();
        assert!(error.contains(&format!("callback host {host}")) && error.contains("loopback"), "{error}");
        assert_eq!(attempts[0].attempt.status_code, None);
    }
}

async fn a_dead_receiver_is_cut_off_and_healthy_ones_go_on(world: World) {
    let dead = receiver(500).await;
    let healthy = receiver(200).await;
    let d = world.instance("dead", &dead.uri(), None).await;
    let h = world.instance("healthy", &healthy.uri(), None).await;
    world.commit(d.id, (0..60).map(|i| event(d.id, &format!("c{i}"), 0)).collect()).await;
    world.commit(h.id, (0..30).map(|i| event(h.id, &format!("c{i}"), 0)).collect()).await;
    let config = DispatcherConfig {
        per_url_concurrency: 1,
        breaker: BreakerConfig { failure_threshold: 2, ..BreakerConfig::default() },
        ..DispatcherConfig::default()
    };
    let engine = engine(&world, true, Duration::from_secs(5), config);
    let report = engine.run_once().await.unwrap();
    assert_eq!(report.claimed, 9, "{report:?}");
    assert_eq!(report.delivered, 3, "{report:?}");
    assert_eq!((report.retrying, report.short_circuited), (2, 4), "{report:?}");
    assert_eq!(dead.received_requests().await.unwrap().len(), 2, "the circuit opened after 2 failures");
    assert_eq!(engine.breakers().open_urls(world.now()), [dead.uri()]);
    // every notification has its attempt recorded, the short-circuited ones say why
    let attempts: Vec<_> = notifications(&world, d.id).await.into_iter().flat_map(|(_, a)| a).collect();
    assert_eq!(attempts.len(), 6);
    let not_attempted = attempts.iter().filter(|a| a.attempt.error.as_deref().unwrap().contains("circuit")).count();
    assert_eq!(not_attempted, 4);
}

async fn run_delivers_promptly_when_woken_and_stops_on_shutdown(world: World) {
    let server = receiver(200).await;
    let instance = world.instance("a", &server.uri(), None).await;
    let config = DispatcherConfig { poll_interval: Duration::from_secs(3600), ..DispatcherConfig::default() };
    let engine = engine(&world, true, Duration::from_secs(5), config);
    let waker = engine.waker();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run(async move { stopped.await.unwrap_or(()) }).await }
    });

    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    waker.notify_one();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.received_requests().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "not delivered after a wake-up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("run returns on shutdown").unwrap();
    let (record, _) = only_notification(&world, instance.id).await;
    assert_eq!(record.status, NotificationStatus::Delivered);
}

/// A failed attempt is logged at WARN with its status, error and the next attempt's time; a notification failed
/// for good at WARN; a delivery at DEBUG. Neither the callback URL (it may carry a token), nor the body, nor the
/// signature key is logged.
#[tokio::test]
async fn attempts_are_logged_without_secrets() {
    let world = World::sqlite().await;
    let server =
        receiver_failing(2, ResponseTemplate::new(503).set_body_string("record-content-in-the-answer"), 200).await;
    let callback = format!("{}/hook?token=callback-url-token", server.uri());
    let instance = world.instance("a", &callback, Some("signature-key-k3y")).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    let retry = RetryPolicy::from_offsets(vec![Duration::from_secs(4)], 0.0).unwrap();
    let engine =
        engine(&world, true, Duration::from_secs(5), DispatcherConfig { retry, ..DispatcherConfig::default() });
    let (logs, _guard) = logs::Logs::capture();
    let everything = |lines: &[logs::Line]| format!("{lines:?}");
    let no_secrets = |text: &str| {
        for secret in ["callback-url-token", "signature-key-k3y", "record-content-in-the-answer", "\"version\""] {
            assert!(!text.contains(secret), "{secret} logged: {text}");
        }
    };

    // the first attempt fails: WARN, with the status, the error and when the next attempt comes
    assert_eq!(engine.run_once().await.unwrap().retrying, 1);
    let (record, _) = only_notification(&world, instance.id).await;
    let all = logs.take();
    no_secrets(&everything(&all));
    let failed: Vec<_> = all.iter().filter(|l| l.message.starts_with("delivery attempt failed")).collect();
    assert_eq!(failed.len(), 1, "{all:#?}");
    let line = failed[0];
    assert_eq!(line.level, tracing::Level::WARN);
    assert_eq!(line.field("instance_id"), Some(instance.id.to_string().as_str()));
    assert_eq!(line.field("notification"), Some(record.id.to_string().as_str()));
    assert_eq!(line.field("status"), Some("503"));
    assert_eq!(line.field("attempt"), Some("1"));
    assert!(line.field("error").is_some_and(|e| e.contains("503")), "{line:?}");
    let next = record.next_attempt_at.unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(line.field("next_attempt_at"), Some(next.as_str()));
    assert!(line.field("next_attempt_in_s").is_some(), "{line:?}");

    // the last attempt fails too: failed for good, at WARN
    world.clock.set(record.next_attempt_at.unwrap());
    assert_eq!(engine.run_once().await.unwrap().failed, 1);
    let all = logs.take();
    no_secrets(&everything(&all));
    let failed: Vec<_> = all.iter().filter(|l| l.message.starts_with("notification failed for good")).collect();
    assert_eq!(failed.len(), 1, "{all:#?}");
    assert_eq!(failed[0].level, tracing::Level::WARN);
    assert_eq!((failed[0].field("attempts"), failed[0].field("status")), (Some("2"), Some("503")));

    // redelivered and delivered: DEBUG
    assert!(world.store.redeliver(world.org, record.id, world.now()).await.unwrap());
    assert_eq!(engine.run_once().await.unwrap().delivered, 1);
    let all = logs.take();
    no_secrets(&everything(&all));
    let delivered: Vec<_> = all.iter().filter(|l| l.message == "notification delivered").collect();
    assert_eq!(delivered.len(), 1, "{all:#?}");
    assert_eq!(delivered[0].level, tracing::Level::DEBUG);
    assert_eq!((delivered[0].field("attempt"), delivered[0].field("status")), (Some("3"), Some("200")));
}

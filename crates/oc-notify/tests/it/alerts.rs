//! Operational alerts end to end on a real store: a receiver's 410 or a notification failing for good raises an
//! alert, and the alert dispatcher delivers it signed to the instance's operational callback, else to the
//! server-wide webhook, retried like a notification; with neither it is kept as unrouted.

use std::sync::Arc;
use std::time::Duration;

use oc_model::Secret;
use oc_model::ports::{AlertStatus, AlertStore, AlertType, Clock, InstanceStore, InstanceUpdate};
use oc_notify::signing::standard_webhooks_secret;
use oc_notify::{
    AlertDispatcher, AlertDispatcherConfig, Dispatcher, DispatcherConfig, HttpNotifier, HttpNotifierConfig,
    RetryPolicy, ServerWebhook,
};
use oc_store::SqlStore;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{World, event};

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
    a_410_is_announced_signed_to_the_operational_callback,
    a_failing_alert_receiver_is_retried_with_the_same_id,
    a_notification_failed_for_good_goes_to_the_server_webhook,
    without_any_operational_webhook_an_alert_is_kept_unrouted,
);

fn notifier(world: &World) -> Arc<HttpNotifier> {
    let clock: Arc<dyn Clock> = world.clock.clone();
    let config = HttpNotifierConfig { allow_private_callbacks: true, ..HttpNotifierConfig::default() };
    Arc::new(HttpNotifier::new(config, clock).unwrap())
}

fn notifications(world: &World, retry: RetryPolicy) -> Dispatcher<SqlStore> {
    let config = DispatcherConfig { retry, ..DispatcherConfig::default() };
    Dispatcher::new(world.ports(world.store.clone(), notifier(world)), config).unwrap()
}

fn alerts(world: &World, server: Option<ServerWebhook>) -> AlertDispatcher<SqlStore> {
    let retry = RetryPolicy::from_offsets(vec![Duration::from_secs(60), Duration::from_secs(600)], 0.0).unwrap();
    let config = AlertDispatcherConfig { retry, server, ..AlertDispatcherConfig::default() };
    AlertDispatcher::new(world.store.clone(), notifier(world), world.clock.clone(), config).unwrap()
}

async fn answering(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
    server
}

async fn with_operational(world: &World, instance: &oc_model::ports::Instance, url: &str) {
    let mut configuration = instance.configuration.clone();
    configuration.insert("event.notification.operational.callback.url", json!(url));
    let update = InstanceUpdate { configuration: Some(configuration), now: world.now(), ..Default::default() };
    world.store.update_instance(world.org, instance.id, &update).await.unwrap();
}

/// Checks the Standard Webhooks signature of a request with `key` (as a receiver's library would).
fn verify(request: &wiremock::Request, key: &str, at: i64) {
    let secret = standard_webhooks_secret(&Secret::new(key));
    let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    let id = request.headers.get("webhook-id").unwrap().to_str().unwrap();
    let signed = verifier.sign(id, at, &request.body).unwrap();
    assert_eq!(request.headers.get("webhook-signature").unwrap(), signed.as_str());
}

async fn a_410_is_announced_signed_to_the_operational_callback(world: World) {
    let hooks = answering(410).await;
    let ops = answering(204).await;
    let instance = world.instance("gone", &hooks.uri(), Some("k3y")).await;
    with_operational(&world, &instance, &format!("{}/ops", ops.uri())).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    assert_eq!(notifications(&world, RetryPolicy::default()).run_once().await.unwrap().gone, 1);

    let report = alerts(&world, None).run_once().await.unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1), "{report:?}");
    let requests = ops.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), "/ops");
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["type"], "notifications.disabled");
    assert_eq!(body["instanceId"], instance.id);
    assert_eq!(body["instanceName"], "gone");
    assert!(body["reason"].as_str().unwrap().contains("410"), "{body}");
    assert_eq!(requests[0].headers.get("webhook-id").unwrap().to_str().unwrap(), body["id"].as_str().unwrap());
    verify(&requests[0], "k3y", world.now().timestamp());

    let page = world.store.list_alerts(world.org, instance.id, None, 10, 0).await.unwrap().unwrap();
    let a = &page.items[0];
    let seen = (a.alert_type, a.status, a.target.as_deref());
    assert_eq!(seen, (AlertType::NotificationsDisabled, AlertStatus::Delivered, Some("instance")));
    // delivered once: nothing more
    assert_eq!(alerts(&world, None).run_once().await.unwrap().claimed, 0);
}

async fn a_failing_alert_receiver_is_retried_with_the_same_id(world: World) {
    let hooks = answering(410).await;
    let ops = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).up_to_n_times(1).mount(&ops).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&ops).await;
    let instance = world.instance("flaky", &hooks.uri(), None).await;
    with_operational(&world, &instance, &ops.uri()).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    notifications(&world, RetryPolicy::default()).run_once().await.unwrap();

    let dispatcher = alerts(&world, None);
    assert_eq!(dispatcher.run_once().await.unwrap().retrying, 1);
    world.clock.advance(Duration::from_secs(59));
    assert_eq!(dispatcher.run_once().await.unwrap().claimed, 0, "not before the schedule says");
    world.clock.advance(Duration::from_secs(1));
    assert_eq!(dispatcher.run_once().await.unwrap().delivered, 1);
    let requests = ops.received_requests().await.unwrap();
    let ids: Vec<_> = requests.iter().map(|r| r.headers.get("webhook-id").unwrap().clone()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "an alert keeps its id across attempts");
    let page = world.store.list_alerts(world.org, instance.id, None, 10, 0).await.unwrap().unwrap();
    let (record, attempts) = world.store.alert(world.org, page.items[0].id).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (AlertStatus::Delivered, 2));
    assert_eq!(attempts.iter().map(|a| a.attempt.status_code).collect::<Vec<_>>(), [Some(503), Some(200)]);
}

async fn a_notification_failed_for_good_goes_to_the_server_webhook(world: World) {
    let hooks = answering(500).await;
    let server = answering(200).await;
    let instance = world.instance("failing", &hooks.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0), event(instance.id, "c2", 0)]).await;
    let report = notifications(&world, RetryPolicy::none()).run_once().await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    // the alert is dated at the end of the attempt
    world.clock.advance(Duration::from_secs(1));

    let webhook = ServerWebhook {
        url: format!("{}/alerts", server.uri()),
        secret: Some(Secret::new("server-secret")),
        notifier: notifier(&world),
    };
    let report = alerts(&world, Some(webhook)).run_once().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["type"], "notification.failed");
    assert_eq!(body["eventIds"].as_array().unwrap().len(), 2);
    assert_eq!(body["attempts"], 1);
    assert!(body["reason"].as_str().unwrap().contains("500"), "{body}");
    verify(&requests[0], "server-secret", world.now().timestamp());
    let page = world.store.list_alerts(world.org, instance.id, None, 10, 0).await.unwrap().unwrap();
    assert_eq!(page.items[0].target.as_deref(), Some("server"));
}

async fn without_any_operational_webhook_an_alert_is_kept_unrouted(world: World) {
    let hooks = answering(410).await;
    let instance = world.instance("nowhere", &hooks.uri(), None).await;
    world.commit(instance.id, vec![event(instance.id, "c1", 0)]).await;
    notifications(&world, RetryPolicy::default()).run_once().await.unwrap();
    let report = alerts(&world, None).run_once().await.unwrap();
    assert_eq!(report.unrouted, 1, "{report:?}");
    let page = world.store.list_alerts(world.org, instance.id, None, 10, 0).await.unwrap().unwrap();
    assert_eq!(page.items[0].status, AlertStatus::Unrouted);
    // redelivered once an operational callback is configured: it goes there
    let ops = answering(200).await;
    with_operational(&world, &instance, &ops.uri()).await;
    assert!(world.store.redeliver_alert(world.org, page.items[0].id, world.now()).await.unwrap());
    assert_eq!(alerts(&world, None).run_once().await.unwrap().delivered, 1);
    assert_eq!(ops.received_requests().await.unwrap().len(), 1);
}

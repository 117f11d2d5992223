//! Issue 9, item 13: delivery when the receiver is down, through the real service on SQLite and on PostgreSQL.
//!
//! - the receiver answers 503 for a while: once it is back, everything arrives, each change once, in order per
//!   object (an object's UPDATED never before its CREATED), with the same notification id on every attempt, and
//!   every attempt is listed over the API;
//! - a notification that failed for good is listed as failed and redelivered over the API, one by its event and
//!   one in bulk for the instance.
//!
//! The retry schedule (OC's: 4 s, 16 s, 64 s, … 9 retries over ~73 h) cannot be shortened through the serve
//! settings, so "failed for good" is reached by recording the last attempt through the store port, as the
//! dispatcher does when the schedule runs out.

use std::collections::BTreeMap;
use std::time::Duration;

use oc_model::ports::{DeliveryStore, NewAttempt, NextStep};
use oc_store::testing::{self, TestStore};
use oc_tests::receiver::{Receiver, counts};
use oc_tests::sim::Sage;
use oc_tests::{Api, Server, eventually};
use serde_json::{Value, json};

const KEY: &str = "e2e-delivery-key";
const WAIT: Duration = Duration::from_secs(40);

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<(String, String), usize> {
    pairs.iter().map(|(o, t)| ((o.to_string(), t.to_string()), 1)).collect()
}

/// The event of `object` and `event_type` as the API lists it.
async fn listed(api: &Api, id: i64, object: &str, event_type: &str) -> Option<Value> {
    api.events(id).await.into_iter().find(|e| e["objectId"] == object && e["eventType"] == event_type)
}

/// `GET /instances/events/{eventId}`.
async fn detail(api: &Api, event_id: &str) -> Value {
    api.ok("GET", &format!("/instances/events/{event_id}"), None, 200).await
}

/// Waits until the event's notification had a failed attempt and is pending again, then records its last
/// attempt as failed for good through the store (what the dispatcher does when the retry schedule runs out).
async fn fail_for_good(server: &Server, api: &Api, id: i64, object: &str) -> (String, String) {
    eventually(WAIT, "a failed attempt of the CREATED event, pending again", || async {
        let Some(e) = listed(api, id, object, "CREATED").await else { return false };
        let d = detail(api, e["eventId"].as_str().unwrap_or_default()).await;
        d["notification"]["status"] == "pending" && d["notification"]["attempts"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let e = listed(api, id, object, "CREATED").await.unwrap();
    let event_id = e["eventId"].as_str().unwrap().to_string();
    let notification_id = e["notificationId"].as_str().unwrap().to_string();
    let store = server.test_store.store();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let claims = store.claim_deliveries("e2e-retry-schedule", later, 10, Duration::from_secs(7200)).await.unwrap();
    let ids: Vec<String> = claims.iter().map(|c| c.notification.id.to_string()).collect();
    assert_eq!(ids, vec![notification_id.clone()], "only the failing notification is pending");
    for c in claims {
        let attempt = NewAttempt {
            at: chrono::Utc::now(),
            status_code: Some(503),
            latency_ms: 1,
            error: None,
            response_excerpt: "the last attempt of the schedule (recorded by the test)".into(),
        };
        store.record_attempt(c.notification.id, &c.lease, &attempt, NextStep::Failed).await.unwrap();
    }
    (event_id, notification_id)
}

async fn receiver_outage(store: TestStore) {
    let sage = Sage::start(5).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("delivery").await;
    let api = server.api(&org);
    let code = sage.code().await.unwrap();
    let (id, _) = api.create_instance(&sage.instance_body(&code, &receiver.url("/hook"), KEY, 1.5)).await;

    // Down: the first notification fails; more changes pile up behind it.
    receiver.set_status(503);
    let (a, _) = sage.create_customer("Outage A");
    let (b, _) = sage.create_customer("Outage B");
    let (c, _) = sage.create_customer("Outage C");
    eventually(WAIT, "a refused attempt", || async { receiver.refused() >= 1 }).await;
    sage.update_customer(&a, "edited while the receiver is down");
    sage.update_customer(&b, "edited while the receiver is down");
    eventually(WAIT, "five events recorded", || async { api.events(id).await.len() == 5 }).await;
    assert!(receiver.accepted().is_empty());
    // Back up: everything arrives, in order per object.
    receiver.set_status(200);
    eventually(WAIT, "five events delivered", || async { receiver.events().len() >= 5 }).await;
    api.wait_polls(id, 2, WAIT).await;
    let events = receiver.events();
    assert_eq!(
        counts(&events),
        expect(&[(&a, "CREATED"), (&b, "CREATED"), (&c, "CREATED"), (&a, "UPDATED"), (&b, "UPDATED")]),
        "{events:#?}"
    );
    for object in [&a, &b] {
        let order: Vec<&str> =
            events.iter().filter(|e| &e.object_id == object).map(|e| e.event_type.as_str()).collect();
        assert_eq!(order, ["CREATED", "UPDATED"], "order of {object}");
    }
    // Every refused notification came again under the same id with the same events.
    let hooks = receiver.hooks();
    for refused in hooks.iter().filter(|h| h.answered == 503) {
        let again = hooks
            .iter()
            .find(|h| h.answered == 200 && h.notification_id() == refused.notification_id())
            .expect("the refused notification delivered later");
        let ids = |h: &oc_tests::receiver::Hook| h.events().into_iter().map(|e| e.event_id).collect::<Vec<_>>();
        assert_eq!(ids(refused), ids(again));
        assert!(refused.elements_ok && refused.standard_ok && again.elements_ok && again.standard_ok);
    }
    // The attempts are listed: 503 first, 200 last.
    let created_a = listed(&api, id, &a, "CREATED").await.unwrap();
    assert_eq!(
        (created_a["status"].as_str(), created_a["deliveryStatus"].as_str()),
        (Some("NOTIFIED"), Some("delivered"))
    );
    let d = detail(&api, created_a["eventId"].as_str().unwrap()).await;
    let attempts = d["attempts"].as_array().expect("attempts");
    assert!(attempts.len() >= 2, "{d:#}");
    assert_eq!(attempts[0]["statusCode"], 503, "{d:#}");
    assert_eq!(attempts[attempts.len() - 1]["statusCode"], 200, "{d:#}");
    assert_eq!(d["notification"]["status"], "delivered");
    assert_eq!(d["notification"]["attempts"].as_u64(), Some(attempts.len() as u64));
    // Open Connectors' fields beside ocpoll's, and the event by instance and id
    let event = &d["event"];
    assert!(event["id"].is_i64(), "{event:#}");
    assert!(event["eventDate"].is_string(), "{event:#}");
    let provider_data: serde_json::Value = serde_json::from_str(event["providerData"].as_str().unwrap()).unwrap();
    assert_eq!(provider_data, event["record"], "providerData is the record as a JSON string");
    let notified: serde_json::Value = serde_json::from_str(event["notifiedData"].as_str().unwrap()).unwrap();
    assert_eq!(notified["eventId"], event["eventId"]);
    assert_eq!(notified["elementKey"], "sageone");
    let by_instance =
        api.ok("GET", &format!("/instances/{id}/events/{}", event["eventId"].as_str().unwrap()), None, 200).await;
    assert_eq!(by_instance, d, "the same event under its instance");
    let (status, _) =
        api.call("GET", &format!("/instances/{}/events/{}", id + 1000, event["eventId"].as_str().unwrap()), None).await;
    assert_eq!(status, 404, "not under another instance");

    // Failed for good, then redelivered by its event.
    receiver.set_status(503);
    let (dd, _) = sage.create_customer("Outage D");
    let (d_event, d_notification) = fail_for_good(&server, &api, id, &dd).await;
    let failed = api.ok("GET", &format!("/instances/{id}/events?status=failed"), None, 200).await;
    let failed_ids: Vec<&str> = failed.as_array().unwrap().iter().filter_map(|e| e["eventId"].as_str()).collect();
    assert_eq!(failed_ids, [d_event.as_str()]);
    receiver.set_status(200);
    let r = api.ok("POST", &format!("/instances/events/{d_event}/redeliver"), None, 200).await;
    assert_eq!(r, json!({"redelivered": 1}));
    eventually(WAIT, "CREATED of D redelivered", || async {
        receiver.events().iter().any(|e| e.object_id == dd && e.event_type == "CREATED")
    })
    .await;
    let delivered = receiver.accepted().into_iter().find(|h| h.events().iter().any(|e| e.object_id == dd)).unwrap();
    assert_eq!(delivered.notification_id(), d_notification, "a failed notification is redelivered under its own id");
    // the receiver records a request on arrival, before it answers: the attempt is recorded just after
    eventually(WAIT, "the redelivery recorded", || async {
        detail(&api, &d_event).await["notification"]["status"] == "delivered"
    })
    .await;
    // a delivered event can be sent again too (issue 17: redelivery of anything kept), in a new notification
    let r = api.ok("POST", &format!("/instances/events/{d_event}/redeliver"), None, 200).await;
    assert_eq!(r, json!({"redelivered": 1}));
    eventually(WAIT, "CREATED of D a third time", || async {
        receiver.accepted().iter().filter(|h| h.events().iter().any(|e| e.event_id == d_event)).count() == 2
    })
    .await;
    let again = receiver.accepted().into_iter().filter(|h| h.events().iter().any(|e| e.event_id == d_event)).last();
    assert_ne!(again.map(|h| h.notification_id()), Some(d_notification.clone()), "a new notification id");
    eventually(WAIT, "the second redelivery recorded", || async {
        detail(&api, &d_event).await["notification"]["status"] == "delivered"
    })
    .await;

    // Failed for good, then redelivered in bulk.
    receiver.set_status(503);
    let (e, _) = sage.create_customer("Outage E");
    let (e_event, _) = fail_for_good(&server, &api, id, &e).await;
    let failed_e = listed(&api, id, &e, "CREATED").await.unwrap();
    assert_eq!((failed_e["status"].as_str(), failed_e["deliveryStatus"].as_str()), (Some("FAILED"), Some("failed")));
    receiver.set_status(200);
    let r = api.ok("POST", &format!("/instances/{id}/notifications/redeliver"), None, 200).await;
    assert_eq!(r, json!({"redelivered": 1}));
    eventually(WAIT, "CREATED of E redelivered", || async {
        receiver.events().iter().any(|x| x.object_id == e && x.event_type == "CREATED")
    })
    .await;
    eventually(WAIT, "the redelivery of E recorded", || async {
        detail(&api, &e_event).await["notification"]["status"] == "delivered"
    })
    .await;
    let r = api.ok("POST", &format!("/instances/{id}/notifications/redeliver"), None, 200).await;
    assert_eq!(r, json!({"redelivered": 0}));

    api.wait_polls(id, 2, WAIT).await;
    let mut want = expect(&[
        (&a, "CREATED"),
        (&b, "CREATED"),
        (&c, "CREATED"),
        (&a, "UPDATED"),
        (&b, "UPDATED"),
        (&dd, "CREATED"),
        (&e, "CREATED"),
    ]);
    // D was sent twice on purpose (redelivered when failed, then again when delivered)
    want.insert((dd.clone(), "CREATED".into()), 2);
    assert_eq!(counts(&receiver.events()), want);
    assert!(api.events(id).await.iter().all(|e| e["status"] == "NOTIFIED"));
    server.stop().await;
}

/// The Open Connectors status of the CREATED event of `object`.
async fn status_of(api: &Api, id: i64, object: &str) -> Value {
    listed(api, id, object, "CREATED").await.unwrap()["status"].clone()
}

/// Issue 15 item 6: a receiver's `410 Gone` switches notifications off (`eventsEnabled: false`, with the reason);
/// what is committed meanwhile is kept and listed as not delivered; `event.notification.enabled: true` by PATCH
/// (though stored true already) turns them back on and it all arrives (the refused notification under its own
/// id; claimed oldest first); so does `PUT /instances/{id}/enabled`.
async fn gone_and_back(store: TestStore) {
    let sage = Sage::start(3).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("gone").await;
    let api = server.api(&org);
    let code = sage.code().await.unwrap();
    let (id, created) = api.create_instance(&sage.instance_body(&code, &receiver.url("/hook"), KEY, 1.5)).await;
    assert_eq!(created["eventsEnabled"], true);

    receiver.set_status(410);
    let (a, _) = sage.create_customer("Gone A");
    eventually(WAIT, "notifications switched off by the 410", || async {
        let i = api.ok("GET", &format!("/instances/{id}"), None, 200).await;
        i["eventsEnabled"] == false && i["eventsDisabledReason"].as_str().is_some_and(|r| r.contains("410"))
    })
    .await;
    let (b, _) = sage.create_customer("Gone B");
    let (c, _) = sage.create_customer("Gone C");
    eventually(WAIT, "the changes made meanwhile committed", || async {
        let listed = api.events(id).await;
        [&a, &b, &c].iter().all(|o| listed.iter().any(|e| e["objectId"] == o.as_str()))
    })
    .await;
    assert!(receiver.accepted().is_empty(), "nothing delivered while off");
    assert_eq!(status_of(&api, id, &a).await, "DISPATCHED", "attempted once, waiting");
    assert_eq!(status_of(&api, id, &b).await, "NEW");

    receiver.set_status(200);
    let patch = json!({"configuration": {"event.notification.enabled": true}});
    let answer = api.ok("PATCH", &format!("/instances/{id}"), Some(&patch), 200).await;
    assert_eq!(answer["eventsEnabled"], true, "{answer:#}");
    assert!(answer.get("eventsDisabledReason").is_none(), "{answer:#}");
    eventually(WAIT, "A, B and C delivered after re-enabling", || async {
        let got: Vec<String> = receiver.events().into_iter().map(|e| e.object_id).collect();
        [&a, &b, &c].iter().all(|o| got.contains(o))
    })
    .await;
    // A's notification, refused with 410, was kept and is the one delivered now (same id), each change once
    let hooks = receiver.hooks();
    let of_a = |h: &&oc_tests::receiver::Hook| h.events().iter().any(|e| e.object_id == a);
    let gone = hooks.iter().filter(of_a).find(|h| h.answered == 410).expect("A's refused attempt");
    let delivered: Vec<_> = hooks.iter().filter(of_a).filter(|h| h.answered == 200).collect();
    assert_eq!(delivered.len(), 1, "A delivered once");
    assert_eq!(delivered[0].notification_id(), gone.notification_id(), "the kept notification");
    assert_eq!(counts(&receiver.events()).values().copied().max(), Some(1), "each change once");
    assert_eq!(status_of(&api, id, &c).await, "NOTIFIED");

    // Gone again; switched back on with PUT /enabled.
    receiver.set_status(410);
    let (d, _) = sage.create_customer("Gone D");
    eventually(WAIT, "off again", || async {
        api.ok("GET", &format!("/instances/{id}"), None, 200).await["eventsEnabled"] == false
    })
    .await;
    receiver.set_status(200);
    let answer = api.ok("PUT", &format!("/instances/{id}/enabled"), None, 200).await;
    assert_eq!(answer["eventsEnabled"], true, "{answer:#}");
    eventually(WAIT, "D delivered", || async { receiver.events().iter().any(|e| e.object_id == d) }).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_and_back_sqlite() {
    gone_and_back(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_and_back_postgres() {
    if let Some(store) = testing::postgres().await {
        gone_and_back(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_outage_sqlite() {
    receiver_outage(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_outage_postgres() {
    let Some(store) = testing::postgres().await else { return };
    receiver_outage(store).await;
}

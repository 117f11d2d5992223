//! Issue 9, item 11: an instance's life against the Sage simulator, through the real service on SQLite and on
//! PostgreSQL.
//!
//! - creates, updates and deletes in Sage → exactly one CREATED, UPDATED or DELETED event each, nothing else,
//!   also after a few more polls; PATCH of the callback URL and of the interval take effect at once;
//! - disable stops polling and enable resumes it; a revoked grant makes the instance invalid with a reason, and a
//!   PUT with a new code revives it; DELETE stops every Sage request for it.

use std::collections::BTreeMap;
use std::time::Duration;

use oc_store::testing::{self, TestStore};
use oc_tests::receiver::{Receiver, counts};
use oc_tests::sim::Sage;
use oc_tests::{Api, Server, eventually};
use serde_json::{Value, json};

const KEY: &str = "e2e-lifecycle-key";
const WAIT: Duration = Duration::from_secs(30);

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for (o, t) in pairs {
        *m.entry((o.to_string(), t.to_string())).or_insert(0) += 1;
    }
    m
}

async fn has(receiver: &Receiver, path: &str, object: &str, event_type: &str) -> bool {
    receiver.events_at(path).iter().any(|e| e.object_id == object && e.event_type == event_type)
}

async fn start(store: TestStore) -> (Sage, Server, Api) {
    let sage = Sage::start(5).await.unwrap();
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("lifecycle").await;
    let api = server.api(&org);
    (sage, server, api)
}

/// Waits until a poll of `id` started after `since` (RFC 3339) has finished.
async fn poll_after(api: &Api, id: i64, since: &str) {
    let since: chrono::DateTime<chrono::Utc> = since.parse().expect("an instant");
    eventually(WAIT, "a poll after the change", || async {
        api.polls(id).await.iter().any(|p| {
            p["startedAt"]
                .as_str()
                .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .is_some_and(|t| t > since)
        })
    })
    .await;
}

async fn changes_and_patches(store: TestStore) {
    let (sage, server, api) = start(store).await;
    let receiver = Receiver::start(KEY).await;
    let code = sage.code().await.unwrap();
    let (id, _) = api.create_instance(&sage.instance_body(&code, &receiver.url("/one"), KEY, 1.5)).await;

    // Creates, updates, deletes: one event each, of the right type.
    let (a, _) = sage.create_customer("Life A");
    let (b, _) = sage.create_customer("Life B");
    let (c, _) = sage.create_customer("Life C");
    eventually(WAIT, "three CREATED", || async {
        has(&receiver, "/one", &a, "CREATED").await
            && has(&receiver, "/one", &b, "CREATED").await
            && has(&receiver, "/one", &c, "CREATED").await
    })
    .await;
    sage.update_customer(&a, "first edit");
    sage.update_customer(&b, "first edit");
    sage.delete_customer(&c);
    eventually(WAIT, "two UPDATED and one DELETED", || async {
        has(&receiver, "/one", &a, "UPDATED").await
            && has(&receiver, "/one", &b, "UPDATED").await
            && has(&receiver, "/one", &c, "DELETED").await
    })
    .await;
    api.wait_polls(id, 3, WAIT).await;
    let events = receiver.events();
    let want =
        expect(&[(&a, "CREATED"), (&b, "CREATED"), (&c, "CREATED"), (&a, "UPDATED"), (&b, "UPDATED"), (&c, "DELETED")]);
    assert_eq!(counts(&events), want, "{events:#?}");
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6, "six distinct event ids");
    let listed = api.events(id).await;
    assert_eq!(listed.len(), 6, "{listed:#?}");
    assert!(listed.iter().all(|e| e["status"] == "NOTIFIED"), "{listed:#?}");

    // PATCH of the callback URL: the next event goes to the new URL only.
    let patched = api
        .ok(
            "PATCH",
            &format!("/instances/{id}"),
            Some(&json!({"configuration": {"event.notification.callback.url": receiver.url("/two")}})),
            200,
        )
        .await;
    assert_eq!(patched["configuration"]["event.notification.callback.url"], receiver.url("/two"));
    let (d, _) = sage.create_customer("Life D");
    eventually(WAIT, "CREATED of D at the new URL", || has(&receiver, "/two", &d, "CREATED")).await;
    api.wait_polls(id, 2, WAIT).await;
    assert_eq!(counts(&receiver.events_at("/two")), expect(&[(&d, "CREATED")]));
    assert_eq!(receiver.events_at("/one").len(), 6, "nothing more at the old URL");

    // PATCH of the interval to 15 minutes: after the poll the change triggers, polling pauses.
    let patched = api
        .ok(
            "PATCH",
            &format!("/instances/{id}"),
            Some(&json!({"configuration": {"event.poller.refresh_interval": "15"}})),
            200,
        )
        .await;
    poll_after(&api, id, patched["updatedDate"].as_str().expect("updatedDate")).await;
    // A poll claimed just before the PATCH may still finish and schedule one more on the old interval.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let quiet_from = api.poll_count(id).await;
    let (e, _) = sage.create_customer("Life E");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(api.poll_count(id).await, quiet_from, "no poll within 6 s on a 15-minute interval (was 1.5 s)");
    assert!(!has(&receiver, "/two", &e, "CREATED").await);
    // Back to 1.5 s: the change arrives now, not in 15 minutes.
    api.ok(
        "PATCH",
        &format!("/instances/{id}"),
        Some(&json!({"configuration": {"event.poller.refresh_interval": "0.025"}})),
        200,
    )
    .await;
    eventually(Duration::from_secs(15), "CREATED of E after the interval went back", || {
        has(&receiver, "/two", &e, "CREATED")
    })
    .await;
    api.wait_polls(id, 2, WAIT).await;
    assert_eq!(counts(&receiver.events_at("/two")), expect(&[(&d, "CREATED"), (&e, "CREATED")]));
    assert_eq!(receiver.events().len(), 8);
    assert!(receiver.hooks().iter().all(|h| h.elements_ok && h.standard_ok));
    server.stop().await;
}

async fn disable_revoke_delete(store: TestStore) {
    let (sage, server, api) = start(store).await;
    let receiver = Receiver::start(KEY).await;
    let code = sage.code().await.unwrap();
    let body = sage.instance_body(&code, &receiver.url("/hook"), KEY, 1.5);
    let (id, _) = api.create_instance(&body).await;
    let path = format!("/instances/{id}");
    let (a, _) = sage.create_customer("Life A");
    eventually(WAIT, "CREATED of A", || has(&receiver, "/hook", &a, "CREATED")).await;

    // Disabled: no polling at all (this is the simulator's only instance), and nothing delivered.
    api.ok("DELETE", &format!("{path}/enabled"), None, 200).await;
    assert_eq!(api.ok("GET", &path, None, 200).await["disabled"], json!(true));
    tokio::time::sleep(Duration::from_secs(2)).await; // a poll in flight finishes
    let (polls, requests) = (api.poll_count(id).await, sage.api_requests());
    let (b, _) = sage.create_customer("Life B");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!((api.poll_count(id).await, sage.api_requests()), (polls, requests), "no poll while disabled");
    assert!(!has(&receiver, "/hook", &b, "CREATED").await);
    // Enabled again: the change made meanwhile arrives.
    api.ok("PUT", &format!("{path}/enabled"), None, 200).await;
    assert_eq!(api.ok("GET", &path, None, 200).await["disabled"], json!(false));
    eventually(WAIT, "CREATED of B after enabling", || has(&receiver, "/hook", &b, "CREATED")).await;

    // The user revokes the app at Sage: the refresh fails with invalid_grant and the instance turns invalid.
    let tokens = server.test_store.vault().tokens(id).await.unwrap().expect("tokens");
    sage.revoke(tokens.refresh_token.expose()).await.unwrap();
    sage.sim.expire_access_tokens();
    eventually(WAIT, "the instance turns invalid", || async {
        api.ok("GET", &path, None, 200).await["valid"] == json!(false)
    })
    .await;
    let reason = api.ok("GET", &path, None, 200).await["validMessage"].clone();
    assert!(reason.as_str().is_some_and(|r| !r.trim().is_empty()), "a reason is given: {reason}");
    let (c, _) = sage.create_customer("Life C");
    // A new code by PUT revives it; the change made while it was invalid arrives.
    let code = sage.code().await.unwrap();
    let revived = api.ok("PUT", &path, Some(&sage.instance_body(&code, &receiver.url("/hook"), KEY, 1.5)), 200).await;
    assert_eq!(revived["valid"], json!(true), "{revived}");
    assert!(revived.get("validMessage").is_none_or(Value::is_null), "{revived}");
    eventually(WAIT, "CREATED of C after re-authorization", || has(&receiver, "/hook", &c, "CREATED")).await;
    api.wait_polls(id, 2, WAIT).await;
    assert_eq!(counts(&receiver.events()), expect(&[(&a, "CREATED"), (&b, "CREATED"), (&c, "CREATED")]));

    // Deleted: gone from the API, and no more Sage requests.
    api.ok("DELETE", &path, None, 200).await;
    api.ok("GET", &path, None, 404).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // a poll in flight finishes
    let requests = sage.api_requests();
    let (d, _) = sage.create_customer("Life D");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(sage.api_requests(), requests, "no Sage request after DELETE");
    assert!(!has(&receiver, "/hook", &d, "CREATED").await);
    assert!(receiver.hooks().iter().all(|h| h.answered == 200 && h.elements_ok && h.standard_ok));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_patches_sqlite() {
    changes_and_patches(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_patches_postgres() {
    let Some(store) = testing::postgres().await else { return };
    changes_and_patches(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_revoke_delete_sqlite() {
    disable_revoke_delete(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_revoke_delete_postgres() {
    let Some(store) = testing::postgres().await else { return };
    disable_revoke_delete(store).await;
}

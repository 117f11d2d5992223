//! The swap proof: a second provider, `oc-tasks` (an invented Tasks API, unlike Sage in paging, ids, dates,
//! deletions and auth), served by the wiring of `ocpoll serve` (`oc_bin::service::start_with`) next to Sage,
//! on SQLite and on PostgreSQL. Nothing in `oc-poller`, `oc-notify` or `oc-store` knows it.
//!
//! - an instance of element `tasks` is created with a code of the fake (and its PKCE verifier, a secret key
//!   the provider declares: masked in the answer, like Open Connectors' own secret keys);
//! - creates, updates and deletes of tasks become exactly one CREATED, UPDATED or DELETED notification each,
//!   both signatures right, `hubKey` `work`, `elementKey` `tasks`, the `uid`s as `objectId`s, DELETED dated
//!   by the tombstone's `removed_on`; the instance's events list them, delivered; the hub passthrough reads
//!   the provider with its residual predicate;
//! - a refused access token is refreshed through the store's token vault (the rotated refresh token saved) and
//!   polling goes on; a refused refresh token turns the instance invalid.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_store::testing::{self, TestStore};
use oc_tasks::{TasksConfig, TasksProvider};
use oc_tests::receiver::{Receiver, counts};
use oc_tests::tasks_fake::TasksFake;
use oc_tests::{Server, eventually};
use serde_json::{Value, json};

const KEY: &str = "e2e-second-provider-key";
const WORKSPACE: &str = "ws-proof";
const VERIFIER: &str = "pkce-verifier-1";
const WAIT: Duration = Duration::from_secs(30);

fn instance_body(fake: &TasksFake, code: &str, callback: &str) -> Value {
    json!({
        "element": {"key": "tasks"},
        "providerData": {"code": code},
        "configuration": {
            "oauth.api.key": fake.client_id,
            "oauth.api.secret": fake.client_secret,
            "oauth.callback.url": fake.redirect_uri,
            "tasks.workspace": WORKSPACE,
            "tasks.pkce.verifier": VERIFIER,
            "event.notification.enabled": true,
            "event.notification.callback.url": callback,
            "event.notification.signature.key": KEY,
            "event.poller.refresh_interval": "0.02",
            "event.poller.configuration": {
                "tasks": {
                    "url": "/hubs/work/tasks?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
                    "idField": "uid",
                    "datesConfiguration": {"updatedDateField": "modified", "createdDateField": "created"}
                }
            }
        },
        "name": "swap proof"
    })
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for (o, t) in pairs {
        *m.entry((o.to_string(), t.to_string())).or_insert(0) += 1;
    }
    m
}

fn count(receiver: &Receiver, object: &str, event_type: &str) -> usize {
    receiver.events().iter().filter(|e| e.object_id == object && e.event_type == event_type).count()
}

fn instant(v: &str) -> DateTime<Utc> {
    v.parse().unwrap_or_else(|e| panic!("{v:?} is not an instant: {e}"))
}

async fn swap_proof(store: TestStore) {
    let fake = TasksFake::start().await;
    let base = fake.url();
    let server = Server::start_with_providers(store, &["--allow-private-callbacks"], |settings, providers| {
        let config = TasksConfig { node_id: oc_bin::service::node_id(settings), ..TasksConfig::new(base) };
        providers.with(Arc::new(TasksProvider::new(config).expect("a tasks provider")))
    })
    .await
    .unwrap();
    let org = server.organization("tasks").await;
    let api = server.api(&org);
    let receiver = Receiver::start(KEY).await;

    // The element is served next to Sage: its authorize URL, then an instance.
    let q = format!("apiKey={}&callbackUrl={}&state=s1", fake.client_id, fake.redirect_uri);
    let oauth = api.ok("GET", &format!("/elements/tasks/oauth/url?{q}"), None, 200).await;
    let authorize = oauth["oauthUrl"].as_str().unwrap_or_default();
    assert!(authorize.starts_with(&format!("{}/oauth/authorize?response_type=code&client_id=", fake.url())), "{oauth}");
    assert!(authorize.ends_with("&state=s1"), "{oauth}");
    let code = fake.code(WORKSPACE, Some(VERIFIER));
    let (id, created) = api.create_instance(&instance_body(&fake, &code, &receiver.url("/tasks"))).await;
    assert_eq!(created["element"]["key"], "tasks", "{created}");
    assert_eq!(created["element"]["hub"], "work", "{created}");
    assert_eq!(created["configuration"]["tasks.workspace"], WORKSPACE, "{created}");
    assert_eq!(created["configuration"]["tasks.pkce.verifier"], "********", "the provider's secret key is masked");
    let shown = api.ok("GET", &format!("/instances/{id}"), None, 200).await;
    assert_eq!((shown["element"]["key"].as_str(), shown["valid"].as_bool()), (Some("tasks"), Some(true)), "{shown}");

    // Creates, updates, deletes: one event each.
    let uid = |r: Value| r["uid"].as_str().expect("a uid").to_string();
    let a = uid(fake.create(WORKSPACE, "tasks", json!({"title": "A", "done": false})));
    let b = uid(fake.create(WORKSPACE, "tasks", json!({"title": "B", "done": false})));
    let c = uid(fake.create(WORKSPACE, "tasks", json!({"title": "C", "done": false})));
    eventually(WAIT, "three CREATED", || async { [&a, &b, &c].iter().all(|o| count(&receiver, o, "CREATED") == 1) })
        .await;
    fake.update(WORKSPACE, "tasks", &a, json!({"done": true}));
    fake.update(WORKSPACE, "tasks", &b, json!({"title": "B, renamed"}));
    let removed_on = fake.delete(WORKSPACE, "tasks", &c);
    eventually(WAIT, "two UPDATED and one DELETED", || async {
        count(&receiver, &a, "UPDATED") == 1
            && count(&receiver, &b, "UPDATED") == 1
            && count(&receiver, &c, "DELETED") == 1
    })
    .await;

    // The hub passthrough asks the same provider: the clause compiled by oc-tasks, its residual evaluated here.
    let token = created["token"].as_str().expect("an instance token");
    let passthrough = server
        .http
        .get(format!("{}/hubs/work/tasks?where=done = true", server.api))
        .header("authorization", format!("{}, Element {token}", org.authorization))
        .send()
        .await
        .unwrap();
    assert_eq!(passthrough.status(), 200);
    let listed: Vec<Value> = passthrough.json().await.unwrap();
    assert_eq!(listed.iter().map(|r| r["uid"].as_str()).collect::<Vec<_>>(), [Some(a.as_str())], "{listed:#?}");

    // The access token is refused: the provider refreshes it through the vault and polling goes on.
    let vault = server.test_store.vault();
    let before = vault.tokens(id).await.unwrap().expect("tokens stored");
    fake.expire_access_tokens();
    fake.update(WORKSPACE, "tasks", &a, json!({"title": "A, after the refresh"}));
    eventually(WAIT, "UPDATED of A after the refresh", || async { count(&receiver, &a, "UPDATED") == 2 }).await;
    let after = vault.tokens(id).await.unwrap().expect("tokens stored");
    assert!(fake.refreshes() >= 1, "the fake served a refresh");
    assert_ne!(after.refresh_token, before.refresh_token, "the rotated refresh token is saved");
    assert_ne!(after.access_token, before.access_token);

    // A few more polls change nothing: exactly these events, each once.
    api.wait_polls(id, 3, WAIT).await;
    let events = receiver.events();
    let want = expect(&[
        (&a, "CREATED"),
        (&b, "CREATED"),
        (&c, "CREATED"),
        (&a, "UPDATED"),
        (&a, "UPDATED"),
        (&b, "UPDATED"),
        (&c, "DELETED"),
    ]);
    assert_eq!(counts(&events), want, "{events:#?}");
    assert!(events.iter().all(|e| e.object_type == "tasks" && e.instance_id == id), "{events:#?}");
    let deleted = events.iter().find(|e| e.event_type == "DELETED").expect("the DELETED event");
    assert_eq!(instant(&deleted.date), instant(&removed_on), "DELETED is dated by the tombstone's removed_on");
    assert_eq!(deleted.record, json!({"uid": c, "removed_on": removed_on}), "the tombstone is the raw record");
    let created_a = events.iter().find(|e| e.object_id == a && e.event_type == "CREATED").expect("CREATED of A");
    assert_eq!((created_a.record["uid"].as_str(), created_a.record["title"].as_str()), (Some(a.as_str()), Some("A")));

    // Every notification: signed both ways, Open Connectors' message with the provider's own element and hub.
    let hooks = receiver.hooks();
    assert!(!hooks.is_empty());
    for h in &hooks {
        assert!(h.answered == 200 && h.elements_ok && h.standard_ok && h.standard_crate_ok, "{:?}", h.body);
        let m = &h.body["message"];
        assert_eq!((m["hubKey"].as_str(), m["elementKey"].as_str()), (Some("work"), Some("tasks")), "{m}");
        assert!(m["events"].as_array().is_some_and(|e| e.iter().all(|e| e["elementKey"] == "tasks")), "{m}");
    }

    // The instance's events: the same seven, delivered.
    eventually(WAIT, "every event delivered", || async {
        let listed = api.events(id).await;
        listed.len() == 7 && listed.iter().all(|e| e["status"] == "NOTIFIED")
    })
    .await;
    let listed = api.events(id).await;
    let mut ids: Vec<&str> = listed.iter().filter_map(|e| e["objectId"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut want_ids = vec![a.as_str(), b.as_str(), c.as_str()];
    want_ids.sort_unstable();
    assert_eq!(ids, want_ids, "{listed:#?}");

    // The refresh token is refused too: the instance turns invalid, with a reason.
    fake.revoke_refresh_tokens();
    fake.expire_access_tokens();
    let path = format!("/instances/{id}");
    eventually(WAIT, "the instance turns invalid", || async {
        api.ok("GET", &path, None, 200).await["valid"] == json!(false)
    })
    .await;
    let reason = api.ok("GET", &path, None, 200).await["validMessage"].clone();
    assert!(reason.as_str().is_some_and(|r| r.contains("refresh token")), "{reason}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_provider_end_to_end_sqlite() {
    swap_proof(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_provider_end_to_end_postgres() {
    let Some(store) = testing::postgres().await else { return };
    swap_proof(store).await;
}

//! Issue 17, item 5: operational alerts through `ocpoll serve`, as a user meets them. The grant is revoked at Sage:
//! `instance.invalid` arrives at the instance's `event.notification.operational.callback.url`, signed with its
//! signature key (the Standard Webhooks reference library verifies it). Another instance's receiver answers `410`:
//! `notifications.disabled` arrives at the server-wide `--operational-webhook-url`, signed with
//! `--operational-webhook-secret`. Both are listed by `GET /instances/{id}/alerts`, one with its attempts, and
//! redelivered on request with the same id — on SQLite and on PostgreSQL.

use std::time::Duration;

use oc_store::testing::{self, TestStore};
use oc_tests::receiver::{Hook, Receiver, standard_crate_ok};
use oc_tests::sim::Sage;
use oc_tests::{Server, eventually};
use serde_json::{Value, json};

const KEY: &str = "alerts-instance-key";
const SERVER_SECRET: &str = "alerts-server-secret";
const WAIT: Duration = Duration::from_secs(30);

fn at(receiver: &Receiver, path: &str, kind: &str) -> Vec<Hook> {
    let path = path.to_string();
    receiver.hooks().into_iter().filter(|h| h.path == path && h.body["type"] == kind).collect()
}

async fn alerts(store: TestStore) {
    let sage = Sage::start(2).await.unwrap();
    let hooks = Receiver::start(KEY).await;
    let ops = Receiver::start(KEY).await;
    let mut args = sage.serve_args();
    args.extend([
        "--operational-webhook-url".to_string(),
        ops.url("/server-ops"),
        "--operational-webhook-secret".to_string(),
        SERVER_SECRET.to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("alerts").await;
    let api = server.api(&org);

    // Instance A names its own operational callback; instance B relies on the server's.
    let mut body = sage.instance_body(&sage.code().await.unwrap(), &hooks.url("/a"), KEY, 1.0);
    body["configuration"]["event.notification.operational.callback.url"] = json!(ops.url("/ops-a"));
    let (a, created) = api.create_instance(&body).await;
    assert_eq!(created["configuration"]["event.notification.operational.callback.url"], json!(ops.url("/ops-a")));
    let body = sage.instance_body(&sage.code().await.unwrap(), &hooks.url("/b"), KEY, 1.0);
    let (b, _) = api.create_instance(&body).await;
    let empty = api.ok("GET", &format!("/instances/{a}/alerts"), None, 200).await;
    assert_eq!(empty, json!([]));

    // B's receiver answers 410: notifications of B are switched off, and the server's webhook is told.
    hooks.set_status(410);
    sage.create_customer("Alerted");
    eventually(WAIT, "notifications.disabled at the server webhook", || async {
        !at(&ops, "/server-ops", "notifications.disabled").is_empty()
    })
    .await;
    let alert = at(&ops, "/server-ops", "notifications.disabled").remove(0);
    assert_eq!(alert.body["instanceId"], json!(b), "{}", alert.body);
    assert!(alert.body["reason"].as_str().unwrap().contains("410"), "{}", alert.body);
    assert_eq!(alert.header("webhook-id"), alert.body["id"].as_str());
    assert!(standard_crate_ok(SERVER_SECRET.as_bytes(), &alert.headers, &alert.raw), "signed with the secret");
    assert!(!standard_crate_ok(KEY.as_bytes(), &alert.headers, &alert.raw));
    hooks.set_status(200);

    // A's grant is revoked at Sage: A turns invalid, and A's operational callback is told.
    let tokens = server.test_store.vault().tokens(a).await.unwrap().expect("tokens");
    sage.revoke(tokens.refresh_token.expose()).await.unwrap();
    sage.sim.expire_access_tokens();
    eventually(WAIT, "instance.invalid at A's operational callback", || async {
        !at(&ops, "/ops-a", "instance.invalid").is_empty()
    })
    .await;
    let invalid = at(&ops, "/ops-a", "instance.invalid").remove(0);
    assert_eq!(invalid.body["instanceId"], json!(a));
    assert_eq!(invalid.body["instanceName"], created["name"]);
    assert_eq!(invalid.body["elementKey"], "sageone");
    assert!(invalid.body["at"].as_str().is_some_and(|t| t.parse::<chrono::DateTime<chrono::Utc>>().is_ok()));
    assert!(standard_crate_ok(KEY.as_bytes(), &invalid.headers, &invalid.raw), "signed with A's key");
    let reason = invalid.body["reason"].as_str().unwrap().to_string();
    let instance = api.ok("GET", &format!("/instances/{a}"), None, 200).await;
    assert_eq!(instance["valid"], json!(false));
    assert!(at(&ops, "/server-ops", "instance.invalid").is_empty(), "A's own callback only");

    // Listed like notifications, with attempts; redelivered with the same id.
    let listed = api.ok("GET", &format!("/instances/{a}/alerts"), None, 200).await;
    let listed = listed.as_array().unwrap();
    let mine: Vec<&Value> = listed.iter().filter(|x| x["type"] == "instance.invalid").collect();
    assert_eq!(mine.len(), 1, "{listed:?}");
    assert_eq!((mine[0]["status"].as_str(), mine[0]["target"].as_str()), (Some("delivered"), Some("instance")));
    assert_eq!(mine[0]["body"]["reason"], json!(reason));
    let id = mine[0]["id"].as_str().unwrap();
    let one = api.ok("GET", &format!("/instances/{a}/alerts/{id}"), None, 200).await;
    assert_eq!(one["deliveryAttempts"][0]["statusCode"], json!(200), "{one}");
    let filtered = api.ok("GET", &format!("/instances/{a}/alerts?type=polling.failing"), None, 200).await;
    assert_eq!(filtered, json!([]));
    let bad = api.ok("GET", &format!("/instances/{a}/alerts?type=nope"), None, 400).await;
    assert!(bad.to_string().contains("instance.invalid"), "{bad}");
    api.ok("GET", &format!("/instances/{b}/alerts/{id}"), None, 404).await;
    let again = api.ok("POST", &format!("/instances/{a}/alerts/{id}/redeliver"), None, 200).await;
    assert_eq!(again["redelivered"], json!(1));
    eventually(WAIT, "the redelivered alert", || async { at(&ops, "/ops-a", "instance.invalid").len() == 2 }).await;
    let both = at(&ops, "/ops-a", "instance.invalid");
    assert_eq!(both[0].header("webhook-id"), both[1].header("webhook-id"), "the same alert id");
    let b_alerts = api.ok("GET", &format!("/instances/{b}/alerts"), None, 200).await;
    assert_eq!(b_alerts[0]["target"], "server", "{b_alerts}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_alerts_sqlite() {
    alerts(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_alerts_postgres() {
    let Some(store) = testing::postgres().await else { return };
    alerts(store).await;
}

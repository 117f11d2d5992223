//! Issue 17, item 4: rotating `event.notification.signature.key` without downtime. After a PATCH of the key, the
//! replaced key keeps signing `webhook-signature` beside the new one for `event.notification.signature.key.overlap`
//! (`v1,<new> v1,<old>`); the Standard Webhooks reference library verifies each notification with the old key and
//! with the new key; `Elements-Webhook-Signature` is the new key's; the API shows when the overlap ends and masks the
//! old key; after the overlap only the new key signs — on SQLite and on PostgreSQL.

use std::time::Duration;

use oc_store::testing::{self, TestStore};
use oc_tests::receiver::{Receiver, standard_crate_ok};
use oc_tests::sim::Sage;
use oc_tests::{Server, eventually};
use serde_json::json;

const OLD: &str = "rotation-old-key";
const NEW: &str = "rotation-new-key";
const WAIT: Duration = Duration::from_secs(30);

async fn rotation(store: TestStore) {
    let sage = Sage::start(3).await.unwrap();
    // the receiver checks with the old key: a receiver not yet moved to the new one
    let receiver = Receiver::start(OLD).await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("rotation").await;
    let api = server.api(&org);
    let code = sage.code().await.unwrap();
    let body = sage.instance_body(&code, &receiver.url("/hooks"), OLD, 1.0);
    let (id, created) = api.create_instance(&body).await;
    let config = &created["configuration"];
    assert!(config.get("event.notification.signature.key.previous").is_none(), "{created}");

    // The key is changed, with an overlap of 12 seconds (0.2 minutes).
    let patch = json!({"configuration": {
        "event.notification.signature.key": NEW,
        "event.notification.signature.key.overlap": "0.2",
    }});
    let patched = api.ok("PATCH", &format!("/instances/{id}"), Some(&patch), 200).await;
    let config = &patched["configuration"];
    assert_eq!(config["event.notification.signature.key"], "********", "{patched}");
    assert_eq!(config["event.notification.signature.key.previous"], "********", "the old key is a secret too");
    let until: chrono::DateTime<chrono::Utc> = config["event.notification.signature.key.previous.until"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("the API shows when the overlap ends: {patched}"));
    let left = until - chrono::Utc::now();
    assert!(left > chrono::Duration::seconds(5) && left <= chrono::Duration::seconds(13), "{left}");

    // A change during the overlap: both keys verify, with the reference library.
    let (a, _) = sage.create_customer("Rotation A");
    eventually(WAIT, "the CREATED of A", || async { receiver.events().iter().any(|e| e.object_id == a) }).await;
    let hooks = receiver.hooks();
    let hook = hooks.iter().find(|h| h.events().iter().any(|e| e.object_id == a)).unwrap();
    let signatures = hook.header("webhook-signature").unwrap_or_default();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(standard_crate_ok(NEW.as_bytes(), &hook.headers, &hook.raw), "the new key verifies");
    assert!(standard_crate_ok(OLD.as_bytes(), &hook.headers, &hook.raw), "the old key verifies");
    assert!(!standard_crate_ok(b"neither", &hook.headers, &hook.raw));
    assert!(oc_bin::receiver::verify_elements(NEW.as_bytes(), &hook.headers, &hook.raw), "Elements: the new key");

    // A PATCH of something else during the overlap keeps it (the old key is not lost by an unrelated update).
    let renamed = api.ok("PATCH", &format!("/instances/{id}"), Some(&json!({"name": "Renamed"})), 200).await;
    assert_eq!(
        renamed["configuration"]["event.notification.signature.key.previous.until"],
        patched["configuration"]["event.notification.signature.key.previous.until"]
    );

    // After the overlap, only the new key signs.
    tokio::time::sleep((until - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1)).await;
    let (b, _) = sage.create_customer("Rotation B");
    eventually(WAIT, "the CREATED of B", || async { receiver.events().iter().any(|e| e.object_id == b) }).await;
    let hooks = receiver.hooks();
    let hook = hooks.iter().find(|h| h.events().iter().any(|e| e.object_id == b)).unwrap();
    assert_eq!(hook.header("webhook-signature").unwrap_or_default().split(' ').count(), 1);
    assert!(standard_crate_ok(NEW.as_bytes(), &hook.headers, &hook.raw));
    assert!(!standard_crate_ok(OLD.as_bytes(), &hook.headers, &hook.raw), "the old key no longer signs");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_with_overlap_sqlite() {
    rotation(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_with_overlap_postgres() {
    let Some(store) = testing::postgres().await else { return };
    rotation(store).await;
}

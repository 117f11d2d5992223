//! Issue 9, item 10: the Open Connectors seed example body, with only the code, the URLs, the signature key and
//! the interval changed, is accepted against the Sage simulator (200 with the repaired-quote warning), and the
//! changes made in the simulator arrive at the callback as notifications whose two signatures verify — on SQLite
//! and on PostgreSQL.

use std::time::Duration;

use oc_store::testing::{self, TestStore};
use oc_tests::receiver::{Receiver, counts};
use oc_tests::sim::Sage;
use oc_tests::{SEED_EXAMPLE, Server, eventually};
use serde_json::{Value, json};

const KEY: &str = "e2e-seed-signature-key";

fn key_pair(a: &str, t: &str) -> (String, String) {
    (a.to_string(), t.to_string())
}

async fn seed_example_end_to_end(store: TestStore) {
    let sage = Sage::start(5).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("seed").await;
    let api = server.api(&org);

    let code = sage.code().await.unwrap();
    let body = sage.instance_body(&code, &receiver.url("/hooks/sage"), KEY, 1.5);
    // Only the code, the URLs, the key and the interval (and the app's own id and secret) differ from the seed.
    let seed: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    let mut changed: Vec<&str> = body["configuration"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| seed["configuration"].get(k.as_str()) != Some(v))
        .map(|(k, _)| k.as_str())
        .collect();
    changed.sort_unstable();
    assert_eq!(
        changed,
        [
            "event.notification.callback.url",
            "event.notification.signature.key",
            "event.poller.refresh_interval",
            "oauth.api.key",
            "oauth.api.secret",
            "oauth.callback.url"
        ]
    );
    assert_eq!(
        body["configuration"]["event.poller.configuration"],
        seed["configuration"]["event.poller.configuration"]
    );

    let (id, created) = api.create_instance(&body).await;
    let warnings = created["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w["path"].as_str().is_some_and(|p| p.ends_with("customers.url"))
            && w["message"].as_str().is_some_and(|m| m.contains("closing `'` was added"))),
        "{created}"
    );
    assert_eq!((created["valid"].clone(), created["eventsEnabled"].clone()), (json!(true), json!(true)));
    assert_eq!(created["configuration"]["event.notification.signature.key"], "********", "the key is a secret");

    let (a, _) = sage.create_customer("Seed Test A");
    let (b, _) = sage.create_customer("Seed Test B");
    eventually(Duration::from_secs(30), "CREATED of both customers", || async {
        let c = counts(&receiver.events());
        c.contains_key(&key_pair(&a, "CREATED")) && c.contains_key(&key_pair(&b, "CREATED"))
    })
    .await;
    let updated_at = sage.update_customer(&a, "changed by the seed test");
    eventually(Duration::from_secs(30), "UPDATED of customer A", || async {
        counts(&receiver.events()).contains_key(&key_pair(&a, "UPDATED"))
    })
    .await;
    // A few more polls: nothing else may arrive.
    api.wait_polls(id, 3, Duration::from_secs(30)).await;
    let events = receiver.events();
    let expected = [((a.clone(), "CREATED"), 1), ((b.clone(), "CREATED"), 1), ((a.clone(), "UPDATED"), 1)]
        .into_iter()
        .map(|((o, t), n)| ((o, t.to_string()), n))
        .collect();
    assert_eq!(counts(&events), expected, "{events:#?}");

    let hooks = receiver.hooks();
    assert!(!hooks.is_empty());
    for h in &hooks {
        assert_eq!(h.answered, 200);
        assert_eq!(h.path, "/hooks/sage");
        let m = &h.body["message"];
        let nid = h.notification_id();
        assert!(!nid.is_empty(), "{}", h.body);
        assert_eq!(h.header("elements-webhook-id"), Some(nid.as_str()));
        assert_eq!(h.header("webhook-id"), Some(nid.as_str()));
        assert!(h.header("content-type").is_some_and(|c| c.starts_with("application/json")));
        assert!(h.header("elements-webhook-signature").is_some_and(|s| s.starts_with("sha256=")));
        assert!(h.header("webhook-signature").is_some_and(|s| s.starts_with("v1,")));
        assert!(h.elements_ok, "Elements-Webhook-Signature does not verify: {:?}", h.headers);
        assert!(h.standard_ok, "webhook-signature does not verify: {:?}", h.headers);
        assert!(h.standard_crate_ok, "the standardwebhooks crate rejects the signature: {:?}", h.headers);
        // The checks are not vacuous: another key or another body fails.
        assert!(!oc_bin::receiver::verify_elements(b"another key", &h.headers, &h.raw));
        assert!(!oc_bin::receiver::verify_standard(KEY.as_bytes(), &h.headers, b"{\"message\":{}}"));
        // The Open Connectors message.
        assert_eq!((m["instanceId"].as_i64(), m["instance_id"].as_i64()), (Some(id), Some(id)), "{m}");
        assert_eq!(m["instanceName"], "API_Polling");
        assert_eq!(m["instanceTags"], json!(["Test"]));
        assert_eq!((m["elementKey"].as_str(), m["hubKey"].as_str()), (Some("sageone"), Some("finance")));
        assert_eq!(m["objectType"], "customers");
        let events = m["events"].as_array().expect("events");
        assert!((1..=10).contains(&events.len()), "{m}");
        assert_eq!(m["objectId"], events[0]["objectId"]);
        assert_eq!(m["eventType"], events[0]["eventType"]);
        assert_eq!(m["raw"]["objectType"], "customers");
        assert_eq!(m["raw"]["instance_id"].as_i64(), Some(id));
        for e in events {
            assert_eq!((e["elementKey"].as_str(), e["objectType"].as_str()), (Some("sageone"), Some("customers")));
        }
    }
    // The records travel in raw: the update carries the new state.
    let update = events.iter().find(|e| e.object_id == a && e.event_type == "UPDATED").unwrap();
    assert_eq!(update.record["updated_at"].as_str(), Some(updated_at.as_str()), "{:?}", update.record);
    let create_b = events.iter().find(|e| e.object_id == b && e.event_type == "CREATED").unwrap();
    // The seed URL asks for `attributes=created_at,updated_at`: Sage adds `id`, `displayed_as` and `$path`.
    assert_eq!(create_b.record["displayed_as"], "Seed Test B", "{:?}", create_b.record);
    // Every event is listed over the API as delivered.
    let listed = api.events(id).await;
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert!(listed.iter().all(|e| e["status"] == "NOTIFIED"), "{listed:#?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_end_to_end_sqlite() {
    seed_example_end_to_end(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_end_to_end_postgres() {
    let Some(store) = testing::postgres().await else { return };
    seed_example_end_to_end(store).await;
}

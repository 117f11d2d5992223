//! Issue 18, items 5 and 10, as a client meets them: a NUL character (U+0000) in `name`, a tag, a resource key or a
//! query parameter, and oversized names, tags and values, are each refused with a 400 naming where — before the
//! OAuth code is exchanged (it is not spent) and before anything is stored — the same on SQLite and PostgreSQL.

use oc_store::testing::{self, TestStore};
use oc_tests::sage_fake::{sage_args, sage_oauth_only};
use oc_tests::{SEED_EXAMPLE, Server};
use serde_json::{Value, json};

fn seed() -> Value {
    let mut b: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    b["configuration"]["event.notification.enabled"] = json!(false);
    b
}

fn paths(answer: &Value) -> Vec<String> {
    answer["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_string()).collect()
}

async fn limits(store: TestStore) {
    let sage = sage_oauth_only().await;
    let args = sage_args(&sage);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("limits").await;
    let auth = Some(org.authorization.as_str());

    let mut bad = seed();
    bad["name"] = json!("a\u{0}b");
    bad["tags"] = json!(["ok", "t\u{0}"]);
    let poller = r#"{"cust\u0000omers": {"url": "/hubs/finance/customers", "idField": "id"}}"#;
    bad["configuration"]["event.poller.configuration"] = json!(poller);
    let (s, v) = server.call("POST", "/instances", auth, Some(&bad)).await;
    assert_eq!(s, 400, "{v}");
    let found = paths(&v);
    for want in ["name", "tags[1]"] {
        assert!(found.iter().any(|p| p == want), "{want} in {found:?}");
    }
    assert!(found.iter().any(|p| p.contains("event.poller.configuration")), "{found:?}");
    assert!(v.to_string().contains("U+0000"), "{v}");

    let mut big = seed();
    big["name"] = json!("n".repeat(201));
    big["tags"] = json!(vec!["t"; 1500]);
    big["configuration"]["country"] = json!("x".repeat(200_000));
    let (s, v) = server.call("POST", "/instances", auth, Some(&big)).await;
    assert_eq!(s, 400, "{v}");
    let text = v.to_string();
    assert!(text.contains("201 characters; at most 200"), "{text}");
    assert!(text.contains("1500 tags; at most 50"), "{text}");
    assert!(text.contains("200000 characters; at most 8192"), "{text}");

    // the code was never exchanged for either: not spent
    let exchanges = sage.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/token").count();
    assert_eq!(exchanges, 0, "the OAuth code was exchanged for a refused body");
    let (s, list) = server.call("GET", "/instances", auth, None).await;
    assert_eq!((s, list), (200, json!([])), "nothing stored");

    // a good body is created; a PATCH with a NUL is refused, and a NUL in a query parameter too
    let (s, created) = server.call("POST", "/instances", auth, Some(&seed())).await;
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (s, v) = server.call("PATCH", &format!("/instances/{id}"), auth, Some(&json!({"name": "x\u{0}"}))).await;
    assert_eq!((s, paths(&v)), (400, vec!["name".to_string()]), "{v}");
    let (s, v) = server.call("GET", &format!("/instances/{id}/events?objectType=%00"), auth, None).await;
    assert_eq!((s, paths(&v)), (400, vec!["objectType".to_string()]), "{v}");
    let (s, v) = server.call("GET", &format!("/instances/{id}/changes?objectType=a%00b"), auth, None).await;
    assert_eq!((s, paths(&v)), (400, vec!["objectType".to_string()]), "{v}");
    let (s, v) = server.call("GET", "/instances?tags%5B%5D=%00", auth, None).await;
    assert_eq!(s, 400, "{v}");
    let (s, read) = server.call("GET", &format!("/instances/{id}"), auth, None).await;
    assert_eq!((s, read["name"].clone()), (200, created["name"].clone()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_oversized_input_are_refused_sqlite() {
    limits(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_oversized_input_are_refused_postgres() {
    let Some(store) = testing::postgres().await else { return };
    limits(store).await;
}

/// Issue 18, item 7: a callback URL the delivery guard would refuse is refused when it is configured — a 400
/// naming the key, before the OAuth code is exchanged — on a server without `--allow-private-callbacks`; with it,
/// the same body is accepted.
async fn ssrf_at_configuration(store: TestStore, allow_private: bool) {
    let sage = sage_oauth_only().await;
    let mut args = sage_args(&sage);
    if allow_private {
        args.push("--allow-private-callbacks".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("ssrf").await;
    let auth = Some(org.authorization.as_str());
    const NOTIFY: &str = "configuration[\"event.notification.callback.url\"]";
    const OPS: &str = "configuration[\"event.notification.operational.callback.url\"]";
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[fd00::1]/hook",
        "http://localhost:8080/x",
    ] {
        let mut body = seed();
        body["configuration"]["event.notification.callback.url"] = json!(url);
        body["configuration"]["event.notification.operational.callback.url"] = json!(url);
        let (s, v) = server.call("POST", "/instances", auth, Some(&body)).await;
        if allow_private {
            assert_eq!(s, 200, "{url}: {v}");
            continue;
        }
        assert_eq!(s, 400, "{url}: {v}");
        assert_eq!(paths(&v), [NOTIFY, OPS], "{url}: {v}");
        assert!(v.to_string().contains("--allow-private-callbacks"), "{v}");
    }
    if allow_private {
        server.stop().await;
        return;
    }
    let exchanges = sage.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/token").count();
    assert_eq!(exchanges, 0, "the OAuth code was exchanged for a refused body");
    // an update to such a URL is refused too, and the instance keeps its callback
    let (s, created) = server.call("POST", "/instances", auth, Some(&seed())).await;
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_i64().unwrap();
    let patch = json!({"configuration": {"event.notification.callback.url": "http://192.168.1.10/"}});
    let (s, v) = server.call("PATCH", &format!("/instances/{id}"), auth, Some(&patch)).await;
    assert_eq!((s, paths(&v)), (400, vec![NOTIFY.to_string()]), "{v}");
    let (_, read) = server.call("GET", &format!("/instances/{id}"), auth, None).await;
    assert_eq!(read["configuration"]["event.notification.callback.url"], "http://mycoolapp.com");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_callbacks_are_refused_when_configured_sqlite() {
    ssrf_at_configuration(testing::sqlite().await, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_callbacks_are_refused_when_configured_postgres() {
    let Some(store) = testing::postgres().await else { return };
    ssrf_at_configuration(store, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_callbacks_are_accepted_with_allow_private_callbacks() {
    ssrf_at_configuration(testing::sqlite().await, true).await;
}

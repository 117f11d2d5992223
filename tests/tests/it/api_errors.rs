//! Issue 18, item 11: every error the API answers is its one error body (`{"requestId","code","message",
//! "errors":[{"path","message"}]}`), also those axum's extractors and router make (a body over the limit, a path id
//! that is not a number, a method a route does not take, an unknown route under the API base), each naming what is
//! wrong and where; the bounds the messages state are the bounds enforced.

use oc_store::testing;
use oc_tests::sage_fake::{sage_args, sage_oauth_only};
use oc_tests::{SEED_EXAMPLE, Server};
use serde_json::{Value, json};

async fn server() -> (Server, wiremock::MockServer) {
    let sage = sage_oauth_only().await;
    let args = sage_args(&sage);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Server::start(testing::sqlite().await, &args).await.unwrap(), sage)
}

/// One raw answer: status, headers, body text.
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Raw {
    /// The body as the API's error body, or a panic saying what came instead.
    fn error_body(&self, what: &str) -> Value {
        let content_type = self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(content_type.starts_with("application/json"), "{what}: content-type {content_type:?}: {}", self.text);
        let v: Value =
            serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {:?}", self.text));
        let mut keys: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "errors", "message", "requestId"], "{what}: {v}");
        let id = self.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(v["requestId"].as_str(), Some(id), "{what}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {v}");
        v
    }
}

async fn raw(server: &Server, method: &str, path: &str, auth: &str, body: Option<Vec<u8>>) -> Raw {
    let mut req =
        server.http.request(method.parse().unwrap(), format!("{}{path}", server.api)).header("authorization", auth);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Raw { status, headers, text: resp.text().await.unwrap_or_default() }
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_in_the_api_error_format_naming_the_body() {
    let (server, _sage) = server().await;
    let org = server.organization("limits").await;
    let mut body = serde_json::to_vec(&json!({"name": "x".repeat(3 << 20)})).unwrap();
    body.shrink_to_fit();
    let a = raw(&server, "POST", "/instances", &org.authorization, Some(body)).await;
    assert_eq!(a.status, 413, "{}", a.text);
    let v = a.error_body("413");
    assert_eq!(v["code"], "payload_too_large", "{v}");
    assert_eq!(v["errors"][0]["path"], "body", "{v}");
    assert!(v["message"].as_str().unwrap().contains("2 MiB"), "the limit is said: {v}");
    server.stop().await;
}

#[tokio::test]
async fn a_path_id_that_is_not_a_number_is_a_400_naming_the_parameter() {
    let (server, _sage) = server().await;
    let org = server.organization("paths").await;
    for (method, path) in [
        ("GET", "/instances/abc"),
        ("DELETE", "/instances/12x"),
        ("GET", "/instances/abc/events"),
        ("GET", "/instances/abc/alerts/a1"),
        ("GET", "/instances/99999999999999999999/changes"),
    ] {
        let a = raw(&server, method, path, &org.authorization, None).await;
        let what = format!("{method} {path}");
        assert_eq!(a.status, 400, "{what}: {}", a.text);
        let v = a.error_body(&what);
        assert_eq!(v["code"], "invalid_request", "{what}: {v}");
        assert_eq!(v["errors"][0]["path"], "id", "{what}: {v}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        let value = path.split('/').nth(2).unwrap();
        assert!(message.contains(value) && message.contains("instance id"), "{what}: {message}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_a_405_naming_the_methods_it_takes() {
    let (server, _sage) = server().await;
    let org = server.organization("methods").await;
    let a = raw(&server, "POST", "/instances/configuration", &org.authorization, None).await;
    assert_eq!(a.status, 405, "{}", a.text);
    let v = a.error_body("405");
    assert_eq!(v["code"], "method_not_allowed", "{v}");
    assert_eq!(v["errors"][0]["path"], "method", "{v}");
    let allow = a.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(allow.contains("GET"), "Allow kept: {allow:?}");
    assert!(v["message"].as_str().unwrap().contains("GET"), "{v}");
    let a = raw(&server, "GET", "/instances/1/events/replay", &org.authorization, None).await;
    assert_eq!(a.status, 405, "{}", a.text);
    a.error_body("405 replay");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_route_under_the_api_base_is_a_404_in_the_api_error_format() {
    let (server, _sage) = server().await;
    let org = server.organization("routes").await;
    for path in ["/nope", "/instances/1/nope/deeper", "/hubs"] {
        let a = raw(&server, "GET", path, &org.authorization, None).await;
        assert_eq!(a.status, 404, "{path}: {}", a.text);
        let v = a.error_body(path);
        assert_eq!(v["code"], "not_found", "{path}: {v}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_huge_refresh_interval_is_refused_with_the_bound_enforced() {
    let (server, _sage) = server().await;
    let org = server.organization("intervals").await;
    let mut body: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    body["configuration"]["event.notification.enabled"] = json!(false);
    body["configuration"]["event.poller.refresh_interval"] = json!("1e12");
    let (status, v) = server.call("POST", "/instances", Some(&org.authorization), Some(&body)).await;
    assert_eq!(status, 400, "{v}");
    let problem = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"].as_str().unwrap().contains("refresh_interval"))
        .unwrap_or_else(|| panic!("a problem at the interval: {v}"));
    let message = problem["message"].as_str().unwrap();
    assert!(!message.contains("at least 1 second"), "1e12 minutes is not too short: {message}");
    assert!(message.contains("at most 1000000000 minutes"), "{message}");
    server.stop().await;
}

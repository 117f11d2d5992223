//! The authorization matrix: every route × (no credentials, wrong secret, another organization, another
//! instance's Element token) answers 401 or 404 as `open-connectors.md` §1 says — on SQLite and on PostgreSQL.

use oc_store::testing;
use oc_tests::sage_fake::{sage_args, sage_oauth_only};
use oc_tests::{SEED_EXAMPLE, Server};
use serde_json::{Value, json};

fn body(name: &str) -> Value {
    let mut b: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    b["name"] = json!(name);
    b["configuration"]["event.notification.enabled"] = json!(false);
    b
}

async fn matrix(test_store: testing::TestStore) {
    let sage = sage_oauth_only().await;
    let args = sage_args(&sage);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(test_store, &args).await.unwrap();
    let a = server.organization("a").await;
    let b = server.organization("b").await;

    let (s, i1) = server.call("POST", "/instances", Some(&a.authorization), Some(&body("one"))).await;
    assert_eq!(s, 200, "{i1}");
    let (s, i2) = server.call("POST", "/instances", Some(&a.authorization), Some(&body("two"))).await;
    assert_eq!(s, 200, "{i2}");
    let id = i1["id"].as_i64().unwrap();
    let other_token = i2["token"].as_str().unwrap();
    let own_token = i1["token"].as_str().unwrap();

    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/instances/{id}"), None),
        ("PUT", format!("/instances/{id}"), Some(body("one"))),
        ("PATCH", format!("/instances/{id}"), Some(json!({"name": "renamed"}))),
        ("GET", format!("/instances/{id}/configuration"), None),
        ("GET", format!("/instances/{id}/configuration/country"), None),
        ("PATCH", format!("/instances/{id}/configuration/country"), Some(json!({"propertyValue": "GB"}))),
        ("PUT", format!("/instances/{id}/enabled"), None),
        ("DELETE", format!("/instances/{id}/enabled"), None),
        ("GET", format!("/instances/{id}/events"), None),
        ("GET", format!("/instances/{id}/polls"), None),
        ("POST", format!("/instances/{id}/notifications/redeliver"), None),
        ("DELETE", format!("/instances/{id}"), None),
    ];
    let platform: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/instances".into(), None),
        ("POST", "/instances".into(), Some(body("three"))),
        ("GET", "/instances/events".into(), None),
        ("GET", "/elements/sageone/oauth/url?apiKey=k&callbackUrl=https://x.example/cb".into(), None),
    ];
    let element_routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/instances/configuration".into(), None),
        ("PATCH", "/instances".into(), Some(json!({"name": "x"}))),
        ("GET", "/hubs/finance/customers".into(), None),
    ];

    let wrong_user = format!("User nope, Organization {}", a.org_secret);
    let wrong_org = format!("User {}, Organization nope", a.user_secret);
    let wrong_element = format!("{}, Element nope", a.authorization);
    let other_instance = format!("{}, Element {other_token}", a.authorization);

    for (m, p, body) in routes.iter().chain(&platform).chain(&element_routes) {
        for auth in [None, Some(wrong_user.as_str()), Some(wrong_org.as_str()), Some(wrong_element.as_str())] {
            let (s, v) = server.call(m, p, auth, body.as_ref()).await;
            assert_eq!(s, 401, "{m} {p} with {auth:?}: {v}");
            assert_eq!(v["code"], "unauthorized", "{m} {p}: {v}");
            assert!(v["requestId"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
        }
    }
    for (m, p, body) in &routes {
        let (s, v) = server.call(m, p, Some(&b.authorization), body.as_ref()).await;
        assert_eq!(s, 404, "{m} {p} by another organization: {v}");
        let (s, v) = server.call(m, p, Some(&other_instance), body.as_ref()).await;
        assert_eq!(s, 404, "{m} {p} with another instance's Element token: {v}");
    }
    // another organization sees none of a's instances or events
    let (s, v) = server.call("GET", "/instances", Some(&b.authorization), None).await;
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = server.call("GET", "/instances/events", Some(&b.authorization), None).await;
    assert_eq!((s, v), (200, json!([])));
    // an Element token cannot reach another organization's instance even with that organization's secrets
    let (s, v) = server
        .call("GET", "/instances/configuration", Some(&format!("{}, Element {own_token}", b.authorization)), None)
        .await;
    assert_eq!(s, 401, "{v}");
    // the right credentials work, and the instance token is shown only on create
    let (s, v) = server.call("GET", &format!("/instances/{id}"), Some(&a.authorization), None).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("token").is_none(), "{v}");
    assert_eq!(v["configuration"]["oauth.api.secret"], "********");
    let (s, v) = server
        .call("GET", "/instances/configuration", Some(&format!("{}, Element {own_token}", a.authorization)), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = server
        .call("GET", "/instances/configuration", Some(&format!("User {}, Element {own_token}", a.user_secret)), None)
        .await;
    assert_eq!(s, 200, "User + Element form: {v}");
    server.stop().await;
}

#[tokio::test]
async fn authorization_matrix_sqlite() {
    matrix(testing::sqlite().await).await;
}

#[tokio::test]
async fn authorization_matrix_postgres() {
    if let Some(pg) = testing::postgres().await {
        matrix(pg).await;
    }
}

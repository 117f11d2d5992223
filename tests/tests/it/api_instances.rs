//! The instances API against the real service and a real SQLite store, with wiremock standing in for Sage's
//! OAuth: validation across layers, warnings, the response shape, tags, PATCH, configuration entries,
//! enable/disable, delete.

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

fn seed() -> Value {
    let mut b: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    b["configuration"]["event.notification.enabled"] = json!(false);
    b
}

#[tokio::test]
async fn seed_body_is_accepted_verbatim_with_the_repaired_quote_warning() {
    let (server, _sage) = server().await;
    let org = server.organization("acme").await;
    let body: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    let (s, v) = server.call("POST", "/instances", Some(&org.authorization), Some(&body)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["id"].is_i64(), "{v}");
    assert!(v["token"].as_str().is_some_and(|t| t.len() >= 32), "{v}");
    assert_eq!(v["name"], "API_Polling");
    assert_eq!(v["element"]["key"], "sageone");
    assert_eq!(v["element"]["hub"], "finance");
    assert_eq!(
        (v["valid"].clone(), v["disabled"].clone(), v["eventsEnabled"].clone()),
        (json!(true), json!(false), json!(true))
    );
    assert_eq!(v["tags"], json!(["Test"]));
    assert!(v["createdDate"].is_string() && v["user"]["id"].is_i64(), "{v}");
    let c = &v["configuration"];
    for secret in ["oauth.api.secret", "signature.secret", "apim.subscription.key"] {
        assert_eq!(c[secret], "********", "{secret}");
    }
    assert_eq!(c["oauth.api.key"], "xxxxxxxxxxxxxxxxxx");
    let poller: Value =
        serde_json::from_str(c["event.poller.configuration"].as_str().expect("echoed as a string")).unwrap();
    assert_eq!(poller["customers"]["idField"], "id");
    let warnings = v["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w["path"].as_str().unwrap().ends_with("customers.url")
            && w["message"].as_str().unwrap().contains("closing `'` was added")),
        "{v}"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_problem_of_every_layer_in_one_answer() {
    let (server, _sage) = server().await;
    let org = server.organization("acme").await;
    let mut b = seed();
    b["tags"] = json!(["ok", 3]);
    let c = &mut b["configuration"];
    c["event.poller.refresh_interval"] = json!("never");
    c["event.notification.callback.url"] = json!("not a url");
    let p = &mut c["event.poller.configuration"]["customers"];
    p["url"] = json!("/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Q}'");
    p["datesConfiguration"]["updatedDateTimezone"] = json!("Nowhere/Land");
    p.as_object_mut().unwrap().remove("idField");
    let (s, v) = server.call("POST", "/instances", Some(&org.authorization), Some(&b)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "invalid_request");
    let paths: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    for want in [
        "tags[1]",
        "configuration[\"event.poller.refresh_interval\"]",
        "configuration[\"event.notification.callback.url\"]",
        "configuration[\"event.poller.configuration\"].customers.idField",
        "configuration[\"event.poller.configuration\"].customers.datesConfiguration.updatedDateTimezone",
    ] {
        assert!(paths.contains(&want), "{want} missing in {paths:?}");
    }
    let (s, v) = server.call("POST", "/instances", Some(&org.authorization), None).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = server
        .call(
            "POST",
            "/instances",
            Some(&org.authorization),
            Some(&json!({"element": {"key": "quickbooks"}, "name": "x"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["path"] == "element.key"), "{v}");
    server.stop().await;
}

#[tokio::test]
async fn tags_patch_configuration_entries_enable_disable_delete() {
    let (server, _sage) = server().await;
    let org = server.organization("acme").await;
    let auth = Some(org.authorization.as_str());
    let mut a = seed();
    a["tags"] = json!(["red", "big"]);
    let mut b = seed();
    b["tags"] = json!(["blue"]);
    let (_, ia) = server.call("POST", "/instances", auth, Some(&a)).await;
    let (_, ib) = server.call("POST", "/instances", auth, Some(&b)).await;
    let (id, token) = (ia["id"].as_i64().unwrap(), ia["token"].as_str().unwrap().to_string());

    let (_, v) = server.call("GET", "/instances?tags[]=red", auth, None).await;
    assert_eq!(v.as_array().unwrap().iter().map(|i| i["id"].clone()).collect::<Vec<_>>(), vec![ia["id"].clone()]);
    let (_, v) = server.call("GET", "/instances?tags%5B%5D=blue", auth, None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], ib["id"]);
    let (_, v) = server.call("GET", "/instances", auth, None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);

    // PATCH merges configuration by key, replaces tags, keeps the rest
    let (s, v) = server
        .call(
            "PATCH",
            &format!("/instances/{id}"),
            auth,
            Some(
                &json!({"tags": ["green"], "configuration": {"event.poller.refresh_interval": "0.5", "custom.key": 7}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["tags"], json!(["green"]));
    assert_eq!(v["configuration"]["event.poller.refresh_interval"], "0.5");
    assert_eq!(v["configuration"]["custom.key"], 7);
    assert_eq!(v["configuration"]["country"], "US");
    let (s, v) = server
        .call(
            "PATCH",
            &format!("/instances/{id}"),
            auth,
            Some(&json!({"configuration": {"event.poller.refresh_interval": "0"}})),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // configuration entries
    let (s, entries) = server.call("GET", &format!("/instances/{id}/configuration"), auth, None).await;
    assert_eq!(s, 200);
    let country = entries.as_array().unwrap().iter().find(|e| e["key"] == "country").unwrap().clone();
    let (s, v) = server
        .call(
            "PATCH",
            &format!("/instances/{id}/configuration/{}", country["id"]),
            auth,
            Some(&json!({"propertyValue": "GB"})),
        )
        .await;
    assert_eq!((s, v["propertyValue"].clone()), (200, json!("GB")), "{v}");
    let secret = entries.as_array().unwrap().iter().find(|e| e["key"] == "oauth.api.secret").unwrap();
    assert_eq!(secret["propertyValue"], "********");

    // disable: instance calls answer 403; enable again
    let element_auth = format!("{}, Element {token}", org.authorization);
    let (s, v) = server.call("DELETE", &format!("/instances/{id}/enabled"), auth, None).await;
    assert_eq!((s, v["disabled"].clone()), (200, json!(true)));
    let (s, _) = server.call("GET", "/instances/configuration", Some(&element_auth), None).await;
    assert_eq!(s, 403);
    let (s, v) = server.call("PUT", &format!("/instances/{id}/enabled"), auth, None).await;
    assert_eq!((s, v["disabled"].clone()), (200, json!(false)));
    let (s, _) = server.call("GET", "/instances/configuration", Some(&element_auth), None).await;
    assert_eq!(s, 200);

    // delete: gone, and its token stops working
    let (s, _) = server.call("DELETE", &format!("/instances/{id}"), auth, None).await;
    assert_eq!(s, 200);
    let (s, _) = server.call("GET", &format!("/instances/{id}"), auth, None).await;
    assert_eq!(s, 404);
    let (s, _) = server.call("GET", "/instances/configuration", Some(&element_auth), None).await;
    assert_eq!(s, 401);
    server.stop().await;
}

/// A backfill must be a readable past date, wherever it is given (the instance key or a resource's own); a
/// reconciling period is at least five minutes. Each problem names its key.
#[tokio::test]
async fn backfill_and_reconcile_settings_are_checked() {
    let (server, _sage) = server().await;
    let org = server.organization("acme").await;
    let auth = Some(org.authorization.as_str());
    let future = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d").to_string();
    let key = "configuration[\"event.poller.backfill\"]";
    let own = "configuration[\"event.poller.configuration\"].customers.backfill";
    let period = "configuration[\"event.poller.configuration\"].customers.reconcileDeletesPeriod";
    let problems = |v: &Value| -> Vec<(String, String)> {
        v["errors"].as_array().map_or_else(Vec::new, |e| {
            e.iter().map(|e| (e["path"].as_str().unwrap().into(), e["message"].as_str().unwrap().into())).collect()
        })
    };
    let mut b = seed();
    b["configuration"]["event.poller.backfill"] = json!(future);
    let p = &mut b["configuration"]["event.poller.configuration"]["customers"];
    p["backfill"] = json!("yesterday");
    p["reconcileDeletes"] = json!(true);
    p["reconcileDeletesPeriod"] = json!(2);
    let (s, v) = server.call("POST", "/instances", auth, Some(&b)).await;
    assert_eq!(s, 400, "{v}");
    let found = problems(&v);
    for (path, text) in [(key, "in the future"), (own, "yesterday"), (period, "≥ 5")] {
        assert!(found.iter().any(|(p, m)| p == path && m.contains(text)), "{path}: {text} not in {found:?}");
    }

    // a valid one, then a backfill given by PATCH: a future one is refused, a past one accepted
    let mut b = seed();
    b["configuration"]["event.poller.configuration"]["customers"]["reconcileDeletes"] = json!("true");
    let (s, v) = server.call("POST", "/instances", auth, Some(&b)).await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_i64().unwrap();
    let patch = |value: &str| json!({"configuration": {"event.poller.backfill": value}});
    let (s, v) = server.call("PATCH", &format!("/instances/{id}"), auth, Some(&patch(&future))).await;
    assert_eq!(s, 400, "{v}");
    assert!(problems(&v).iter().any(|(p, _)| p == key), "{v}");
    let (s, v) = server.call("PATCH", &format!("/instances/{id}"), auth, Some(&patch("not a date"))).await;
    assert_eq!(s, 400, "{v}");
    assert!(problems(&v).iter().any(|(p, m)| p == key && m.contains("not a date")), "{v}");
    let (s, v) = server.call("PATCH", &format!("/instances/{id}"), auth, Some(&patch("2024-01-01"))).await;
    assert_eq!((s, v["configuration"]["event.poller.backfill"].clone()), (200, json!("2024-01-01")), "{v}");
    server.stop().await;
}

#[tokio::test]
async fn health_ready_metrics_openapi() {
    let (server, _sage) = server().await;
    assert_eq!(server.call("GET", "/healthz", None, None).await.0, 200);
    assert_eq!(server.call("GET", "/readyz", None, None).await.0, 200);
    let (s, text) = server.call("GET", "/metrics", None, None).await;
    assert_eq!(s, 200);
    let text = text.as_str().unwrap().to_string();
    for family in ["ocpoll_polls_total", "ocpoll_outbox_depth", "ocpoll_http_requests_total"] {
        assert!(text.contains(&format!("# TYPE {family}")), "{family} in {text}");
    }
    let (s, doc) = server.call("GET", "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    server.stop().await;
}

/// Ten concurrent `PATCH`es, each adding one configuration key: all answer 200 and all ten keys remain (issue 18:
/// the merge read the instance outside the write, and one or two keys survived).
async fn concurrent_patches_keep_every_key(test_store: testing::TestStore) {
    let sage = sage_oauth_only().await;
    let args = sage_args(&sage);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(test_store, &args).await.unwrap();
    let org = server.organization("acme").await;
    let (s, created) = server.call("POST", "/instances", Some(&org.authorization), Some(&seed())).await;
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_i64().unwrap();
    let mut patches = tokio::task::JoinSet::new();
    for n in 0..10 {
        let (http, url, auth) =
            (server.http.clone(), format!("{}/instances/{id}", server.api), org.authorization.clone());
        patches.spawn(async move {
            let body = json!({"configuration": {format!("custom.key.{n}"): n}});
            let resp = http.patch(url).header("authorization", auth).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        });
    }
    while let Some(answer) = patches.join_next().await {
        let (s, v) = answer.unwrap();
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = server.call("GET", &format!("/instances/{id}"), Some(&org.authorization), None).await;
    assert_eq!(s, 200, "{v}");
    let kept: Vec<i64> = (0..10).filter(|n| v["configuration"][format!("custom.key.{n}")] == json!(n)).collect();
    assert_eq!(kept, (0..10).collect::<Vec<_>>(), "every patch's key remains: {}", v["configuration"]);
    // and the rest of the configuration with them
    assert_eq!(v["configuration"]["oauth.api.key"], created["configuration"]["oauth.api.key"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_keep_every_key_on_sqlite() {
    concurrent_patches_keep_every_key(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_keep_every_key_on_postgres() {
    let Some(store) = testing::postgres().await else { return };
    concurrent_patches_keep_every_key(store).await;
}

/// `PUT /instances/{id}` is checked as a create is: a configuration without the OAuth app's keys is refused with
/// a 400 naming each missing key (with every other problem of the body), and the instance keeps its
/// configuration (issue 18: `{"configuration": {}}` wiped it, OAuth keys included, and answered `valid: true`).
#[tokio::test]
async fn a_put_is_checked_like_a_create_and_never_drops_the_oauth_keys() {
    let (server, _sage) = server().await;
    let org = server.organization("acme").await;
    let auth = Some(org.authorization.as_str());
    let (s, created) = server.call("POST", "/instances", auth, Some(&seed())).await;
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_i64().unwrap();
    let path = format!("/instances/{id}");
    let paths = |v: &Value| -> Vec<String> {
        v["errors"].as_array().map_or_else(Vec::new, |e| e.iter().map(|e| e["path"].as_str().unwrap().into()).collect())
    };
    let oauth = ["oauth.api.key", "oauth.api.secret", "oauth.callback.url"].map(|k| format!("configuration[\"{k}\"]"));

    let (s, v) = server.call("PUT", &path, auth, Some(&json!({"configuration": {}}))).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "invalid_request", "{v}");
    for want in &oauth {
        assert!(paths(&v).contains(want), "{want} missing in {v}");
    }
    // every problem at once: the missing keys beside the others
    let (s, v) = server
        .call("PUT", &path, auth, Some(&json!({"configuration": {"event.poller.refresh_interval": "never"}})))
        .await;
    assert_eq!(s, 400, "{v}");
    let found = paths(&v);
    assert!(found.contains(&"configuration[\"event.poller.refresh_interval\"]".to_string()), "{v}");
    for want in &oauth {
        assert!(found.contains(want), "{want} missing in {v}");
    }
    // nothing changed
    let (_, now) = server.call("GET", &path, auth, None).await;
    assert_eq!(now["configuration"], created["configuration"]);
    assert_eq!(now["valid"], json!(true));

    // a full body is accepted; a secret sent back masked, as the API shows it, keeps its value
    let mut body = seed();
    body["configuration"]["oauth.api.secret"] = json!("********");
    body["configuration"]["country"] = json!("GB");
    let (s, v) = server.call("PUT", &path, auth, Some(&body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["configuration"]["country"], "GB");
    let stored = server.test_store.store().instance_by_id(id).await.unwrap().unwrap();
    assert_eq!(
        stored.configuration.get("oauth.api.secret"),
        seed()["configuration"].get("oauth.api.secret"),
        "the masked secret kept its value"
    );
    server.stop().await;
}

//! Every answer of the API is camelCase (Open Connectors style), also where a store type is serialized directly:
//! `GET /instances/{id}/polls`, one event with its notification and attempts, one notification, the event lists.
//!
//! Runs the whole stack in process (simulator, service on SQLite, receiver), has one change polled and delivered,
//! then reads every answer about it and fails on any key holding an underscore. Free-form user data is not
//! checked: Sage records (`record`, `raw`) and configuration maps (`configuration`). The deliberate Open
//! Connectors compat field `instance_id` is allowed only where Open Connectors puts it, in a notification's
//! `message`.

use std::time::Duration;

use oc_bin::demo::{StackOptions, start_stack};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Members whose value is user data, whatever its keys.
const FREE_FORM: &[&str] = &["record", "raw", "configuration"];

/// `(parent key, key)`: snake_case keys that Open Connectors defines (see `docs/notifications.md`).
const COMPAT: &[(&str, &str)] = &[("message", "instance_id")];

/// The path of every key holding an underscore in `v`, skipping free-form members and allowed compat fields.
fn snake_case_keys(v: &Value) -> Vec<String> {
    fn walk(v: &Value, parent: &str, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{path}.{k}");
                    if k.contains('_') && !COMPAT.contains(&(parent, k.as_str())) {
                        out.push(here.clone());
                    }
                    if !FREE_FORM.contains(&k.as_str()) {
                        walk(child, k, &here, out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, parent, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, "", "$", &mut out);
    out
}

fn assert_camel_case(what: &str, v: &Value) {
    let bad = snake_case_keys(v);
    assert!(bad.is_empty(), "{what} answered snake_case keys {bad:?}:\n{v:#}");
}

#[test]
fn the_checker_finds_snake_case_keys() {
    assert_eq!(
        snake_case_keys(&json!([{"startedAt": 1, "warnings": [{"record_id": "a"}]}])),
        ["$[0].warnings[0].record_id"]
    );
    assert_eq!(snake_case_keys(&json!({"notification": {"instance_id": 1}})), ["$.notification.instance_id"]);
    assert_eq!(
        snake_case_keys(&json!({"event": {"record": {"updated_at": "x"}, "objectType": "customers"}})),
        Vec::<String>::new()
    );
    assert_eq!(
        snake_case_keys(&json!({"configuration": {"event.poller.refresh_interval": "1"}})),
        Vec::<String>::new()
    );
    assert_eq!(
        snake_case_keys(&json!({"message": {"instance_id": 1, "raw": {"instance_id": 1}}})),
        Vec::<String>::new()
    );
}

struct Client {
    http: reqwest::Client,
    api: String,
    authorization: String,
}

impl Client {
    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.api))
            .header("authorization", &self.authorization)
            .send()
            .await
            .expect("the API answers");
        let status = resp.status();
        let body: Value = resp.json().await.expect("a JSON answer");
        assert!(status.is_success(), "GET {path} answered {status}: {body:#}");
        body
    }

    /// Gets `path` until `check` holds of the answer.
    async fn get_until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let v = self.get(path).await;
            if check(&v) {
                return v;
            }
            assert!(tokio::time::Instant::now() < until, "timed out waiting for {what}; last answer of {path}:\n{v:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_about_polls_events_and_notifications_is_camel_case() {
    let dir = std::env::temp_dir().join(format!("ocpoll-api-casing-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = start_stack(&StackOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: 11,
        customers: 2,
        dir: dir.clone(),
        serve_args: Vec::new(),
        sim_rate_limit: 0,
    })
    .await
    .expect("the stack starts");
    let client =
        Client { http: stack.http.clone(), api: stack.api.clone(), authorization: stack.authorization.clone() };

    let (code, _) = stack.authorize().await.expect("an authorization code");
    let mut body = stack.instance_body(&code, 1, "casing").unwrap();
    // a created date that cannot be read: every new record gets a poll warning naming it (`recordId`)
    body["configuration"]["event.poller.configuration"]["customers"]["datesConfiguration"]["createdDateField"] =
        json!("displayed_as");
    let created = stack.create_instance(&body).await.expect("the instance is created");
    let id = created["id"].as_i64().expect("an instance id");
    client
        .get_until(&format!("/instances/{id}/polls"), "a first poll", |v| v.as_array().is_some_and(|a| !a.is_empty()))
        .await;

    let sim = stack.sim.simulator();
    let record = sim
        .create_record(
            &sim.lead_business(),
            "contacts",
            json!({"name": "Casing Customer", "reference": "CASE1", "contact_type_ids": ["CUSTOMER"]}),
        )
        .expect("a customer is created");
    let object = record["id"].as_str().expect("a record id").to_string();

    // its event, delivered and recorded
    let events = client
        .get_until(&format!("/instances/{id}/events"), "the event delivered", |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|e| e["objectId"] == object.as_str() && e["status"] == "NOTIFIED"))
        })
        .await;
    assert_camel_case("GET /instances/{id}/events", &events);
    let event = events.as_array().unwrap().iter().find(|e| e["objectId"] == object.as_str()).unwrap().clone();
    let event_id = event["eventId"].as_str().expect("an eventId").to_string();
    let notification_id = event["notificationId"].as_str().expect("a notificationId").to_string();

    let detail = client.get(&format!("/instances/events/{event_id}")).await;
    assert_camel_case("GET /instances/events/{eventId}", &detail);
    assert_eq!(detail["event"]["instanceId"], id, "{detail:#}");
    for key in [
        "id",
        "instanceId",
        "objectType",
        "status",
        "attempts",
        "createdAt",
        "nextAttemptAt",
        "deliveredAt",
        "lastError",
    ] {
        assert!(detail["notification"].get(key).is_some(), "notification.{key} missing: {detail:#}");
    }
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["statusCode"], 200, "{detail:#}");
    for key in ["number", "at", "statusCode", "latencyMs", "error", "responseExcerpt"] {
        assert!(attempt.get(key).is_some(), "attempts[0].{key} missing: {detail:#}");
    }

    let notification = client.get(&format!("/instances/{id}/notifications/{notification_id}")).await;
    assert_camel_case("GET /instances/{id}/notifications/{notificationId}", &notification);
    assert_eq!(notification["instanceId"], id, "{notification:#}");
    assert!(notification["attempts"].as_array().is_some_and(|a| !a.is_empty()), "{notification:#}");

    let all = client.get(&format!("/instances/events?instanceId={id}")).await;
    assert_camel_case("GET /instances/events", &all);

    let polls = client.get(&format!("/instances/{id}/polls")).await;
    assert_camel_case("GET /instances/{id}/polls", &polls);
    let polls = polls.as_array().unwrap();
    for key in
        ["instanceId", "resource", "startedAt", "finishedAt", "status", "windowStart", "pages", "records", "warnings"]
    {
        assert!(polls.iter().all(|p| p.get(key).is_some()), "a poll lacks {key}: {polls:#?}");
    }
    assert!(
        polls
            .iter()
            .flat_map(|p| p["warnings"].as_array().cloned().unwrap_or_default())
            .any(|w| w["recordId"] == object.as_str()),
        "no poll warning names the record: {polls:#?}"
    );

    let instance = client.get(&format!("/instances/{id}")).await;
    assert_camel_case("GET /instances/{id}", &instance);
    let entries = client.get(&format!("/instances/{id}/configuration")).await;
    assert_camel_case("GET /instances/{id}/configuration", &entries);

    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

//! The console over real HTTP against the whole stack the demo runs (simulator, service on SQLite, receiver):
//! signed in with a one-time link, an event shows up in the live JSON and on its page with every attempt, a
//! failed notification is redelivered with the page's button.

use std::time::Duration;

use oc_bin::demo::{StackOptions, start_stack};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.unwrap()
    }

    async fn text(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.text().await.unwrap()
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// `events.json` until `check` holds.
    async fn events_until(&self, id: i64, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let v: Value = self.get(&format!("/ui/instances/{id}/events.json")).await.json().await.unwrap();
            if check(&v) {
                return v;
            }
            assert!(tokio::time::Instant::now() < until, "timed out waiting for {what}: {v:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf-token\" content=\"").expect("a csrf meta") + 27;
    page[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_the_console_and_a_failed_notification_is_redelivered_from_it() {
    let dir = std::env::temp_dir().join(format!("ocpoll-console-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = start_stack(&StackOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: 5,
        customers: 2,
        dir: dir.clone(),
        serve_args: vec!["--delivery-retries".into(), "0".into()],
        sim_rate_limit: 0,
    })
    .await
    .expect("the stack starts");

    // an instance whose receiver fails everything: its first notification fails for good (no retries)
    let failing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let failing_url = format!("http://{}/hooks", failing.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR });
        let _ = axum::serve(failing, app).await;
    });
    let (code, _) = stack.authorize().await.unwrap();
    let mut body = stack.instance_body(&code, 1, "console-redelivery").unwrap();
    body["configuration"]["event.notification.callback.url"] = json!(failing_url);
    let created = stack.create_instance(&body).await.unwrap();
    let id = created["id"].as_i64().unwrap();

    let link = stack.console_link().await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let signed = http.get(&link).send().await.unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let base = stack.console_url().trim_end_matches("/ui/").to_string();
    let browser = Browser { http, base, cookie };

    let page = browser.text(&format!("/ui/instances/{id}")).await;
    assert!(page.contains("<h1>console-redelivery</h1>"), "{page}");
    let csrf = csrf_of(&page);

    let sim = stack.sim.simulator();
    let record = sim
        .create_record(
            &sim.lead_business(),
            "contacts",
            json!({"name": "Console Customer", "reference": "CONS1", "contact_type_ids": ["CUSTOMER"]}),
        )
        .unwrap();
    let object = record["id"].as_str().unwrap().to_string();
    let live = browser
        .events_until(id, "the event failed", |v| {
            v["events"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["objectId"] == object.as_str() && e["status"] == "FAILED"))
        })
        .await;
    let event = live["events"].as_array().unwrap().iter().find(|e| e["objectId"] == object.as_str()).unwrap();
    assert_eq!(event["type"], "CREATED");
    assert_eq!(event["resource"], "customers");

    // an unchanged page is not sent again
    let first = browser.get(&format!("/ui/instances/{id}/events.json")).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = browser
        .http
        .get(format!("{}/ui/instances/{id}/events.json", browser.base))
        .header("cookie", &browser.cookie)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // its page: the record, the notification, the failed attempt, and the button
    let href = event["href"].as_str().unwrap();
    let detail = browser.text(href).await;
    assert!(detail.contains("Console Customer"), "the record: {detail}");
    assert!(detail.contains("<h2 id=\"attempts-title\">Delivery attempts</h2>"));
    assert!(detail.contains("<td class=\"num\">500</td>"), "the attempt's status code: {detail}");
    assert!(detail.contains(">Redeliver</button>"), "{detail}");

    // the receiver takes it now; Redeliver makes it due again and it is delivered
    let fixed = json!({"configuration": {"event.notification.callback.url": stack.callback_url}});
    let r = stack
        .http
        .patch(format!("{}/instances/{id}", stack.api))
        .header("authorization", &stack.authorization)
        .json(&fixed)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let done = browser.post(&format!("{href}/redeliver"), &[("csrf", &csrf)]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(done.headers()["location"].to_str().unwrap().ends_with("?done=redelivered"));
    browser
        .events_until(id, "the event redelivered", |v| {
            v["events"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["objectId"] == object.as_str() && e["status"] == "NOTIFIED"))
        })
        .await;
    let detail = browser.text(href).await;
    assert!(!detail.contains(">Redeliver</button>"), "delivered now: {detail}");

    // the chart counts it
    let svg = browser.text(&format!("/ui/instances/{id}/chart.svg")).await;
    assert!(svg.contains("1 event in the last hour: 1 created"), "{svg}");

    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

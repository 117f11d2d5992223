//! Shared fixture of the simulator's HTTP tests: a simulator on a manual clock, driven in-process through its
//! router.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::{DateTime, Utc};
use oc_model::ports::ManualClock;
use oc_sagesim::{AppRegistration, SimConfig, Simulator};
use serde_json::Value;
use tower::ServiceExt;

pub const CLIENT_ID: &str = "client-1";
pub const CLIENT_SECRET: &str = "secret-1";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/oauth/callback";
pub const T0: &str = "2024-06-01T12:00:00Z";

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

pub struct Fixture {
    pub sim: Simulator,
    pub app: Router,
    pub clock: Arc<ManualClock>,
    pub token: String,
    pub lead: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Fixture {
    pub fn new(customers: usize) -> Fixture {
        Fixture::with(SimConfig { customers, ..SimConfig::default() })
    }

    pub fn with(config: SimConfig) -> Fixture {
        let clock = Arc::new(ManualClock::new(t(T0)));
        let config = SimConfig {
            clock: Some(clock.clone()),
            apps: vec![AppRegistration::new(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI)],
            rate_limit_per_minute: 0,
            ..config
        };
        let sim = Simulator::new(config).expect("simulator");
        let token = sim.issue_tokens(CLIENT_ID).expect("tokens").access_token;
        let lead = sim.lead_business();
        Fixture { app: sim.router(), sim, clock, token, lead }
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = match body {
            Some((content_type, b)) => builder.header("content-type", content_type).body(Body::from(b)),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    /// An authorized API GET (`path` below `/v3.1`).
    pub async fn get(&self, path: &str) -> Reply {
        let auth = format!("Bearer {}", self.token);
        self.send(Method::GET, &format!("/v3.1{path}"), &[("authorization", &auth)], None).await
    }

    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {}", self.token);
        self.send(
            method,
            &format!("/v3.1{path}"),
            &[("authorization", &auth)],
            body.map(|b| ("application/json", b.to_string())),
        )
        .await
    }

    /// Every page of a list call, following `$next`; returns the items.
    pub async fn scan(&self, path: &str) -> Vec<Value> {
        let mut items = vec![];
        let mut next = Some(path.to_owned());
        let mut pages = 0;
        while let Some(p) = next {
            let r = self.get(&p).await;
            assert_eq!(r.status, StatusCode::OK, "{p}: {}", r.text);
            items.extend(r.body["$items"].as_array().cloned().unwrap_or_default());
            next = r.body["$next"].as_str().map(str::to_owned);
            pages += 1;
            assert!(pages < 1000, "scan does not end");
        }
        items
    }

    /// Freezes the simulator's clock at `at` and takes a fresh token (the old one has expired by then).
    pub fn freeze(&mut self, at: &str) {
        self.sim.freeze_clock(t(at));
        self.renew();
    }

    /// A fresh access token at the simulator's current time.
    pub fn renew(&mut self) {
        self.token = self.sim.issue_tokens(CLIENT_ID).expect("tokens").access_token;
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(std::time::Duration::from_secs(secs));
    }
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].as_str().unwrap_or("").to_owned()).collect()
}

/// Asserts Sage's error array with one error of `code`.
pub fn assert_sage_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    let errors = r.body.as_array().unwrap_or_else(|| panic!("not an array: {}", r.text));
    assert_eq!(errors.len(), 1, "{}", r.text);
    let e = &errors[0];
    assert_eq!(e["$dataCode"], code, "{}", r.text);
    assert_eq!(e["$severity"], "error");
    assert!(e["$message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(e.get("$source").is_some());
}

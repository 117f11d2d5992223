//! End-to-end tests of ocpoll (package `oc-tests`): they drive the real service (`oc_bin::service::start`, the
//! code `ocpoll serve` runs) over HTTP against real databases, with the Sage simulator or wiremock standing in
//! for Sage and a local receiver for the customer's callback. Fixtures live in `fixtures/`.
//!
//! This library holds the harness: [`Server`] (a running service on a fresh store), [`Api`] (a client of any
//! running service, in-process or a child process), [`sim::Sage`] (the simulator with a registered app),
//! [`receiver::Receiver`] (a callback receiver that verifies signatures and can be told to fail),
//! [`process::Node`] (the real `ocpoll serve` binary as a child process) and [`tasks_fake::TasksFake`] (the
//! invented Tasks API of the second provider, `oc-tasks`, which proves that providers can be swapped).

pub mod browser;
pub mod changes;
pub mod process;
pub mod receiver;
pub mod sage_fake;
pub mod sim;
pub mod tasks_fake;

use std::sync::Arc;
use std::time::Duration;

use oc_bin::keys::ServerKeys;
use oc_bin::service::{Running, start, start_with};
use oc_bin::settings::ServeSettings;
use oc_model::ports::{AccountStore, Clock, NewOrganization, Providers, SystemClock};
use oc_store::testing::TestStore;
use serde_json::Value;

/// The seed example body of the Open Connectors page, verbatim.
pub const SEED_EXAMPLE: &str = include_str!("../fixtures/seed-instance-body-example.json");

/// Credentials of one organization.
#[derive(Debug, Clone)]
pub struct Org {
    /// `User <u>, Organization <o>`.
    pub authorization: String,
    /// The user secret.
    pub user_secret: String,
    /// The organization secret.
    pub org_secret: String,
}

/// A running service on a store of its own.
pub struct Server {
    /// The service.
    pub running: Running,
    /// `http://127.0.0.1:PORT/elements/api-v2`.
    pub api: String,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    /// A client.
    pub http: reqwest::Client,
    /// The store (kept alive; dropped with the server).
    pub test_store: TestStore,
}

impl Server {
    /// Starts the service on `test_store` with `args` as `ocpoll serve` would take them (the listen address is
    /// always a free loopback port).
    pub async fn start(test_store: TestStore, args: &[&str]) -> anyhow::Result<Server> {
        let settings = settings(args)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let keys = ServerKeys::derive(&test_store.options().key);
        let running = start(&settings, test_store.store(), &keys, clock).await?;
        Server::running(test_store, running)
    }

    /// [`start`](Server::start) serving the providers `add` returns, given the settings and the settings'
    /// own providers (Sage): the wiring of `ocpoll serve` (`oc_bin::service::start_with`) with more providers.
    pub async fn start_with_providers(
        test_store: TestStore,
        args: &[&str],
        add: impl FnOnce(&ServeSettings, Providers) -> Providers,
    ) -> anyhow::Result<Server> {
        let settings = settings(args)?;
        let mut set = oc_bin::service::providers(&settings)?;
        set.providers = add(&settings, set.providers);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let keys = ServerKeys::derive(&test_store.options().key);
        let running = start_with(&settings, test_store.store(), &keys, clock, set).await?;
        Server::running(test_store, running)
    }

    fn running(test_store: TestStore, running: Running) -> anyhow::Result<Server> {
        let root = format!("http://{}", running.addr);
        Ok(Server {
            api: format!("{root}/elements/api-v2"),
            root,
            running,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            test_store,
        })
    }

    /// A new organization with fresh secrets.
    pub async fn organization(&self, name: &str) -> Org {
        let user_secret = format!("user-{name}-{}", rand_suffix());
        let org_secret = format!("org-{name}-{}", rand_suffix());
        self.test_store
            .store()
            .create_organization(&NewOrganization {
                name: name.into(),
                org_secret: org_secret.clone(),
                user_secret: user_secret.clone(),
                now: SystemClock.now(),
            })
            .await
            .expect("organization created");
        Org { authorization: format!("User {user_secret}, Organization {org_secret}"), user_secret, org_secret }
    }

    /// Sends `method path` (under the API base) with an optional `Authorization` and JSON body.
    pub async fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let url = if path.starts_with('/')
            && !path.starts_with("/elements")
            && (path == "/healthz" || path == "/readyz" || path == "/metrics")
        {
            format!("{}{path}", self.root)
        } else {
            format!("{}{path}", self.api)
        };
        let mut req = self.http.request(method.parse().expect("a method"), url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A client of this service acting as `org`.
    pub fn api(&self, org: &Org) -> Api {
        Api { api: self.api.clone(), root: self.root.clone(), http: self.http.clone(), auth: org.authorization.clone() }
    }

    /// Stops the service.
    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

/// A client of a running service with one caller's credentials.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT/elements/api-v2`.
    pub api: String,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    /// The client.
    pub http: reqwest::Client,
    /// The `Authorization` header.
    pub auth: String,
}

impl Api {
    /// A client of the service whose API base is `api`, with `auth` as `Authorization`.
    pub fn new(api: &str, auth: &str) -> Api {
        Api {
            api: api.to_string(),
            root: api.strip_suffix("/elements/api-v2").unwrap_or(api).to_string(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a client"),
            auth: auth.to_string(),
        }
    }

    /// Sends `method path` (under the API base) with the credentials and an optional JSON body; the status and
    /// the JSON answer (a string when not JSON).
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().expect("a method"), format!("{}{path}", self.api))
            .header("authorization", &self.auth);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `call`, asserting the status.
    pub async fn ok(&self, method: &str, path: &str, body: Option<&Value>, want: u16) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert_eq!(status, want, "{method} {path} answered {status}: {v}");
        v
    }

    /// Creates an instance; returns its id and the answer.
    pub async fn create_instance(&self, body: &Value) -> (i64, Value) {
        let v = self.ok("POST", "/instances", Some(body), 200).await;
        (v["id"].as_i64().expect("an instance id"), v)
    }

    /// Every event of an instance, newest first (up to 500).
    pub async fn events(&self, instance: i64) -> Vec<Value> {
        let v = self.ok("GET", &format!("/instances/{instance}/events?pageSize=500"), None, 200).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// The latest polls of an instance, newest first (up to 1000).
    pub async fn polls(&self, instance: i64) -> Vec<Value> {
        let v = self.ok("GET", &format!("/instances/{instance}/polls?limit=1000"), None, 200).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// How many polls of an instance have finished.
    pub async fn poll_count(&self, instance: i64) -> usize {
        self.polls(instance).await.len()
    }

    /// Waits until `n` more polls of `instance` than now have finished.
    pub async fn wait_polls(&self, instance: i64, n: usize, deadline: Duration) {
        let start = self.poll_count(instance).await;
        eventually(deadline, &format!("{n} more polls of instance {instance}"), || async {
            self.poll_count(instance).await >= start + n
        })
        .await;
    }
}

/// The settings of `ocpoll serve` with `args`, listening on a free loopback port.
fn settings(args: &[&str]) -> anyhow::Result<ServeSettings> {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Ok(ServeSettings::from_args(all)?)
}

fn rand_suffix() -> String {
    format!("{:x}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() ^ i64::from(std::process::id()))
}

/// Waits for `check` to hold, polling every 50 ms, for at most `deadline`.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > until {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! End-to-end tests of ocpoll (package `oc-tests`): they drive the real service (`oc_bin::service::start`, the
//! code `ocpoll serve` runs) over HTTP against real databases, with the Sage simulator or wiremock standing in
//! for Sage and a local receiver for the customer's callback. Fixtures live in `fixtures/`.
//!
//! This library holds the harness: [`Server`] (a running service on a fresh store) and helpers to call its API.

pub mod sage_fake;

use std::sync::Arc;
use std::time::Duration;

use oc_bin::service::{Running, start};
use oc_bin::settings::ServeSettings;
use oc_model::ports::{Clock, NewOrganization, Store, SystemClock};
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
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let settings = ServeSettings::from_args(all)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store: Arc<dyn Store> = test_store.dyn_store();
        let running = start(&settings, store, clock).await?;
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
            .dyn_store()
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

    /// Stops the service.
    pub async fn stop(self) {
        self.running.shutdown().await;
    }
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

//! The Sage simulator as the tests use it: one registered OAuth app, the OAuth dance a browser would do, the
//! `serve` flags that point ocpoll at it, the seed example body adapted to it, and customer changes.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oc_sagesim::{AppRegistration, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

use crate::SEED_EXAMPLE;

/// The hub resource of the seed example, and the simulator collection behind it.
pub const RESOURCE: &str = "customers";
const COLLECTION: &str = "contacts";

/// A running simulator with one registered app.
pub struct Sage {
    /// The simulator.
    pub sim: SimHandle,
    /// The app registered in it (the instance's `oauth.api.key`, `oauth.api.secret`, `oauth.callback.url`).
    pub app: AppRegistration,
    http: reqwest::Client,
}

/// Seconds as the minutes `event.poller.refresh_interval` takes (`1.5` → `"0.025"`).
pub fn minutes(seconds: f64) -> String {
    let s = format!("{:.6}", seconds / 60.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Sage {
    /// A simulator with `customers` seeded customers, no rate limit and no background activity.
    pub async fn start(customers: usize) -> Result<Sage> {
        Sage::start_with(SimConfig { customers, ..SimConfig::default() }).await
    }

    /// A simulator from `config` (its apps are replaced by the test app; the rate limit is turned off).
    pub async fn start_with(mut config: SimConfig) -> Result<Sage> {
        let app = AppRegistration::new(
            format!("test-app-{}", uuid::Uuid::new_v4().simple()),
            format!("test-secret-{}", uuid::Uuid::new_v4().simple()),
            "http://127.0.0.1:1/oauth/callback",
        );
        config.apps = vec![app.clone()];
        config.rate_limit_per_minute = 0;
        let sim = Simulator::start(config).await.context("starting the simulator")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Sage { sim, app, http })
    }

    /// The `ocpoll serve` flags pointing the Sage provider at the simulator (and allowing loopback callbacks).
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--sage-api-url".into(),
            self.sim.api_url(),
            "--sage-authorize-url".into(),
            self.sim.authorize_url(),
            "--sage-token-url".into(),
            self.sim.token_url(),
            "--sage-rate-limit".into(),
            "100000".into(),
            "--allow-private-callbacks".into(),
        ]
    }

    /// Walks the authorize step as a browser would and returns the code from the redirect.
    pub async fn code(&self) -> Result<String> {
        let resp = self
            .http
            .get(self.sim.authorize_url())
            .query(&[
                ("response_type", "code"),
                ("client_id", self.app.client_id.as_str()),
                ("redirect_uri", self.app.redirect_uri.as_str()),
                ("scope", "full_access"),
                ("state", "e2e"),
            ])
            .send()
            .await?;
        if resp.status().as_u16() != 302 {
            bail!("the authorize URL answered {} instead of a redirect", resp.status());
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("a redirect without Location"))?;
        let url = url::Url::parse(location)?;
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| anyhow!("no code in the redirect {location}"))
    }

    /// The seed example with only the code, the URLs, the signature key and the interval changed, plus the OAuth
    /// app's keys.
    pub fn instance_body(&self, code: &str, callback_url: &str, signature_key: &str, interval_seconds: f64) -> Value {
        let mut body: Value = serde_json::from_str(SEED_EXAMPLE).expect("the seed example is JSON");
        body["providerData"]["code"] = json!(code);
        let c = &mut body["configuration"];
        c["oauth.api.key"] = json!(self.app.client_id);
        c["oauth.api.secret"] = json!(self.app.client_secret);
        c["oauth.callback.url"] = json!(self.app.redirect_uri);
        c["event.notification.callback.url"] = json!(callback_url);
        c["event.notification.signature.key"] = json!(signature_key);
        c["event.poller.refresh_interval"] = json!(minutes(interval_seconds));
        body
    }

    /// The lead business.
    pub fn business(&self) -> String {
        self.sim.lead_business()
    }

    /// Creates a customer; returns its id and `updated_at`.
    pub fn create_customer(&self, name: &str) -> (String, String) {
        let r = self
            .sim
            .create_record(&self.business(), COLLECTION, json!({"name": name, "contact_type_ids": ["CUSTOMER"]}))
            .expect("customer created");
        (r["id"].as_str().expect("an id").to_string(), r["updated_at"].as_str().unwrap_or_default().to_string())
    }

    /// Changes a customer's notes; returns its new `updated_at`.
    pub fn update_customer(&self, id: &str, notes: &str) -> String {
        let r = self
            .sim
            .update_record(&self.business(), COLLECTION, id, json!({"notes": notes}))
            .expect("customer updated");
        r["updated_at"].as_str().unwrap_or_default().to_string()
    }

    /// Deletes a customer.
    pub fn delete_customer(&self, id: &str) {
        let voided = self.sim.delete_record(&self.business(), COLLECTION, id).expect("customer deleted");
        assert!(voided.is_none(), "a customer is deleted, not voided");
    }

    /// A customer as it stands (with `deleted_at` once deleted).
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.sim.get_record(&self.business(), COLLECTION, id)
    }

    /// Revokes the grant `token` (an access or refresh token of the app) belongs to, at `POST /revoke`.
    pub async fn revoke(&self, token: &str) -> Result<()> {
        let resp = self
            .http
            .post(self.sim.revoke_url())
            .form(&[
                ("client_id", self.app.client_id.as_str()),
                ("client_secret", self.app.client_secret.as_str()),
                ("token", token),
            ])
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("POST /revoke answered {}", resp.status());
        }
        Ok(())
    }

    /// API requests served so far (the request log, newest last), without OAuth calls.
    pub fn api_requests(&self) -> usize {
        self.sim.requests().iter().filter(|r| r.path.starts_with("/v3.1")).count()
    }
}

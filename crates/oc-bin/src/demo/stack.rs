//! What `ocpoll demo` runs, started in this process: the Sage simulator, the demo's verifying callback receiver and
//! the service on SQLite ([`start_stack`]), and what a user does with them: the OAuth walk, the seed example body,
//! `POST /instances`; and the console's app and sign-in link.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oc_model::ports::{AccountStore, Clock, Principal, SystemClock};
use oc_sagesim::{AppRegistration, SimConfig, SimHandle, Simulator};
use oc_store::SqlStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::receiver::{Received, Receiver};
use crate::service::{self, Running};
use crate::settings::{DatabaseArgs, ServeSettings};

/// The Open Connectors seed example body, verbatim.
pub const SEED_EXAMPLE: &str = include_str!("../../../../tests/fixtures/seed-instance-body-example.json");

fn random_hex(rng: &mut StdRng, bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rng.r#gen::<u8>())).collect()
}

fn write_key(dir: &Path, hex: &str) -> Result<PathBuf> {
    let path = dir.join("master.key");
    std::fs::write(&path, hex).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(path)
}

/// The listen address, or a free loopback port when it is taken.
fn free_or(addr: SocketAddr) -> SocketAddr {
    match StdListener::bind(addr) {
        Ok(_) => addr,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

/// Everything the demo runs, for the demo itself and for the API tests that start it.
pub struct Stack {
    /// The simulator.
    pub sim: SimHandle,
    /// The service.
    pub running: Running,
    /// The store under the service.
    pub store: Arc<SqlStore>,
    /// The callback receiver's state.
    pub receiver: Receiver,
    /// Notifications as they arrive.
    pub feed: mpsc::UnboundedReceiver<Received>,
    /// `http://ADDR/elements/api-v2`.
    pub api: String,
    /// `User ..., Organization ...`.
    pub authorization: String,
    /// The receiver's URL (the callback URL of the instances).
    pub callback_url: String,
    /// The OAuth app registered in the simulator.
    pub app: AppRegistration,
    /// The signature key of the instances.
    pub signature_key: String,
    /// The OAuth app of the console (registered with the console's redirect URI; the server's default app, so
    /// the console's form may leave Client ID and Client Secret empty).
    pub console_app: AppRegistration,
    /// The organization and user of the credentials.
    pub principal: Principal,
    /// A client.
    pub http: reqwest::Client,
}

/// How to start a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Seed of the simulator and of the secrets.
    pub seed: u64,
    /// Customers seeded in the simulator.
    pub customers: usize,
    /// The database directory.
    pub dir: PathBuf,
    /// Extra `serve` flags.
    pub serve_args: Vec<String>,
    /// Requests per minute allowed by the simulator per business (0: no limit).
    pub sim_rate_limit: u32,
}

/// Starts the simulator, the receiver and the service on SQLite in `options.dir`.
pub async fn start_stack(options: &StackOptions) -> Result<Stack> {
    let mut rng = StdRng::from_entropy();
    let signature_key = format!("demo-signature-{}", random_hex(&mut rng, 12));
    let (receiver, feed) = Receiver::new(signature_key.as_bytes());
    let receiver_listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the callback receiver")?;
    let receiver_addr = receiver_listener.local_addr()?;
    let receiver_app = receiver.app();
    tokio::spawn(async move {
        let _ = axum::serve(receiver_listener, receiver_app).await;
    });
    let callback_url = format!("http://{receiver_addr}/ocpoll-events");

    let app = AppRegistration::new(
        format!("demo-app-{}", random_hex(&mut rng, 4)),
        random_hex(&mut rng, 16),
        format!("http://{receiver_addr}/oauth/callback"),
    );
    let sim = Simulator::start(SimConfig {
        seed: options.seed,
        customers: options.customers,
        apps: vec![app.clone()],
        rate_limit_per_minute: options.sim_rate_limit,
        ..SimConfig::default()
    })
    .await
    .context("starting the Sage simulator")?;

    let db = options.dir.join("ocpoll.db");
    let key_file = write_key(&options.dir, &random_hex(&mut rng, 32))?;
    let database =
        DatabaseArgs { database_url: format!("sqlite://{}", db.display()), master_key_file: Some(key_file.clone()) };
    let console_app = AppRegistration::new(
        format!("demo-console-{}", random_hex(&mut rng, 4)),
        random_hex(&mut rng, 16),
        String::new(), // the console's redirect URI, known once the service listens
    );
    let org_secret = format!("demo-org-{}", random_hex(&mut rng, 12));
    let user_secret = format!("demo-user-{}", random_hex(&mut rng, 12));
    let mut args: Vec<String> = [
        "--listen",
        &free_or(options.listen).to_string(),
        "--database-url",
        &database.database_url,
        "--master-key-file",
        &key_file.display().to_string(),
        "--sage-api-url",
        &sim.api_url(),
        "--sage-authorize-url",
        &sim.authorize_url(),
        "--sage-token-url",
        &sim.token_url(),
        "--allow-private-callbacks",
        "--organization-secret",
        &org_secret,
        "--user-secret",
        &user_secret,
        "--sage-client-id",
        &console_app.client_id,
        "--sage-client-secret",
        &console_app.client_secret,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(options.serve_args.iter().cloned());
    let settings = ServeSettings::from_args(&args).map_err(|e| anyhow!("demo settings: {e}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, keys) =
        service::open_store_and_keys(&settings.database, clock.clone(), settings.polling_failing_after()).await?;
    let store = Arc::new(store);
    service::bootstrap(store.as_ref(), &settings, clock.as_ref()).await?;
    let running = service::start(&settings, store.clone(), &keys, clock).await?;
    let console_app = AppRegistration { redirect_uri: running.state.console.config.redirect_uri(), ..console_app };
    sim.simulator().register_app(console_app.clone()).context("registering the console's app in the simulator")?;
    let principal = AccountStore::authenticate(store.as_ref(), &user_secret, &org_secret)
        .await
        .context("signing in the demo's user")?
        .ok_or_else(|| anyhow!("the demo's organization was not created"))?;
    let api = format!("http://{}{}", running.addr, crate::api::BASE);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    Ok(Stack {
        sim,
        running,
        store,
        receiver,
        feed,
        api,
        authorization: format!("User {user_secret}, Organization {org_secret}"),
        callback_url,
        app,
        signature_key,
        console_app,
        principal,
        http,
    })
}

impl Stack {
    /// Walks the OAuth flow as a browser would: asks the API for the OAuth URL, follows it to the simulator's
    /// authorize page, and takes the code from the redirect to the app's callback. Returns the code and the
    /// authorize URL visited.
    pub async fn authorize(&self) -> Result<(String, String)> {
        let url = format!(
            "{}/elements/sageone/oauth/url?apiKey={}&apiSecret={}&callbackUrl={}&state=demo",
            self.api,
            enc(&self.app.client_id),
            enc(&self.app.client_secret),
            enc(&self.app.redirect_uri)
        );
        let resp = self.http.get(&url).header("authorization", &self.authorization).send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.context("the OAuth URL answer")?;
        let oauth_url = body["oauthUrl"]
            .as_str()
            .ok_or_else(|| anyhow!("GET /elements/sageone/oauth/url answered {status}: {body}"))?
            .to_string();
        let resp = self.http.get(&oauth_url).send().await.context("visiting the authorize URL")?;
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("the authorize URL answered {} without a redirect", resp.status()))?;
        let location = url::Url::parse(location).context("the redirect to the callback")?;
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| anyhow!("the redirect carries no code: {location}"))?;
        Ok((code, oauth_url))
    }

    /// The seed example body with only the code, the URLs, the signature key and the interval changed.
    pub fn instance_body(&self, code: &str, interval_seconds: u32, name: &str) -> Result<Value> {
        let mut body: Value = serde_json::from_str(SEED_EXAMPLE).context("the seed example body")?;
        body["providerData"]["code"] = json!(code);
        body["name"] = json!(name);
        let c = &mut body["configuration"];
        c["oauth.api.key"] = json!(self.app.client_id);
        c["oauth.api.secret"] = json!(self.app.client_secret);
        c["oauth.callback.url"] = json!(self.app.redirect_uri);
        c["event.notification.callback.url"] = json!(self.callback_url);
        c["event.notification.signature.key"] = json!(self.signature_key);
        c["event.poller.refresh_interval"] = json!(minutes(interval_seconds));
        Ok(body)
    }

    /// `POST /instances`; returns the answer (with its `id` and `warnings`).
    pub async fn create_instance(&self, body: &Value) -> Result<Value> {
        let resp = self
            .http
            .post(format!("{}/instances", self.api))
            .header("authorization", &self.authorization)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST /instances answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// The console's address (`{public URL}/ui/`).
    pub fn console_url(&self) -> String {
        format!("{}/ui/", self.running.state.console.config.public_url)
    }

    /// A one-time link that signs a browser in to the console as the demo's user (valid ten minutes, once).
    pub async fn console_link(&self) -> Result<String> {
        crate::console::sign_in_link(&self.running.state, self.principal).await
    }

    /// Stops the service, the store and the simulator.
    pub async fn stop(self) {
        self.running.shutdown().await;
        self.store.close().await;
        let _ = self.sim.shutdown().await;
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Seconds as the minutes `event.poller.refresh_interval` takes (`5` → `"0.0833"`… exactly enough digits).
pub fn minutes(seconds: u32) -> String {
    let m = f64::from(seconds.max(1)) / 60.0;
    let s = format!("{m:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_of_seconds() {
        assert_eq!(minutes(60), "1");
        assert_eq!(minutes(30), "0.5");
        assert_eq!(minutes(5), "0.083333");
        assert_eq!(minutes(0), "0.016667");
    }
}

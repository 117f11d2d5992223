//! `ocpoll demo`: the whole product on one machine with no configuration.
//!
//! It starts the Sage simulator (seeded customers), the service on SQLite in a temporary directory, and a local
//! callback receiver that verifies both signatures; registers an app in the simulator, walks the OAuth flow as a
//! browser would, POSTs the Open Connectors seed example body (only the code, the URLs, the signature key and the
//! interval changed), then makes changes to customers in the simulator and prints, as they happen, each change and
//! each notification received with its latency from change to delivery. At the end (`--duration`, or Ctrl-C) it
//! waits for the last changes to arrive and prints a summary: changes made, events delivered, lost (must be 0).
//!
//! A change counts as delivered when a notification for its object arrives after it (a `DELETED` one for a
//! deletion): a create and an edit of one customer within one poll interval are rightly reported as one event.

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use oc_model::event::EventType;
use oc_model::ports::{Clock, SystemClock};
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
pub const SEED_EXAMPLE: &str = include_str!("../../../tests/fixtures/seed-instance-body-example.json");

/// The resource the seed example polls, and the simulator collection behind it.
const RESOURCE: &str = "customers";
const COLLECTION: &str = "contacts";

/// Flags of `ocpoll demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How long changes are made, e.g. `90s`, `5m`, `1h` (plain numbers are seconds); without it, until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Address of the API; a free port is taken when this one is busy.
    #[arg(long, env = "OCPOLL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Changes per minute made to the simulator's customers.
    #[arg(long, default_value_t = 20)]
    pub changes_per_minute: u32,
    /// The instance's poll interval in seconds (`event.poller.refresh_interval` is sent in minutes).
    #[arg(long, default_value_t = 5)]
    pub interval_seconds: u32,
    /// Seed of the simulator's data and of the changes made.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the temporary directory (database and master key) instead of deleting it at the end.
    #[arg(long)]
    pub keep: bool,
}

/// Parses `90`, `90s`, `5m`, `1h`, `1.5m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = number.trim().parse().map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 5m, 1h)"))?;
    let factor = match unit {
        "ms" => 0.001,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (use ms, s, m or h)")),
    };
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(Duration::from_secs_f64(n * factor))
}

/// What kind of change the demo made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Create,
    Update,
    Delete,
}

impl ChangeKind {
    fn label(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

#[derive(Debug)]
struct Change {
    kind: ChangeKind,
    id: String,
    at: DateTime<Utc>,
    delivered: Option<DateTime<Utc>>,
}

/// The books of a demo run: changes made, events received, and which changes they cover.
#[derive(Debug, Default)]
struct Ledger {
    changes: Vec<Change>,
    event_ids: HashSet<String>,
    events: u64,
    notifications: u64,
    duplicates: u64,
    unexpected: u64,
    bad_signatures: u64,
    latencies: Vec<f64>,
}

impl Ledger {
    fn lost(&self) -> usize {
        self.changes.iter().filter(|c| c.delivered.is_none()).count()
    }

    /// Takes one notification; returns the lines to print.
    fn take(&mut self, got: &Received, start: DateTime<Utc>) -> Vec<String> {
        self.notifications += 1;
        let signed = got.elements_signature_ok && got.standard_signature_ok;
        if !signed {
            self.bad_signatures += 1;
        }
        let mut lines = Vec::new();
        for e in &got.notification.message.events {
            self.events += 1;
            if !self.event_ids.insert(e.event_id.clone()) {
                self.duplicates += 1;
                lines.push(format!(
                    "{}  event   {:<8} {} {}  (again, same eventId: at-least-once redelivery)",
                    stamp(got.at, start),
                    e.event_type.as_str(),
                    e.object_type,
                    short(&e.object_id)
                ));
                continue;
            }
            let mut first: Option<DateTime<Utc>> = None;
            for c in self.changes.iter_mut().filter(|c| c.id == e.object_id && c.delivered.is_none()) {
                if c.kind == ChangeKind::Delete && e.event_type != EventType::Deleted {
                    continue;
                }
                c.delivered = Some(got.at);
                first = Some(first.map_or(c.at, |f| f.min(c.at)));
            }
            let latency = match first {
                Some(at) => {
                    let secs = (got.at - at).num_milliseconds() as f64 / 1000.0;
                    self.latencies.push(secs);
                    format!("latency {secs:>5.1} s")
                }
                None => {
                    self.unexpected += 1;
                    "no change of ours".to_string()
                }
            };
            lines.push(format!(
                "{}  event   {:<8} {} {}  {latency}  signatures {}",
                stamp(got.at, start),
                e.event_type.as_str(),
                e.object_type,
                short(&e.object_id),
                if signed { "verified" } else { "WRONG" }
            ));
        }
        lines
    }
}

fn stamp(at: DateTime<Utc>, start: DateTime<Utc>) -> String {
    format!("[{:>7.1}s]", (at - start).num_milliseconds() as f64 / 1000.0)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A temporary directory removed on drop unless kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn scratch(keep: bool) -> Result<Scratch> {
    let path = std::env::temp_dir().join(format!("ocpoll-demo-{}-{}", std::process::id(), Utc::now().timestamp()));
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Scratch { path, keep })
}

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

fn is_customer(record: &Value) -> bool {
    record["contact_types"].as_array().is_some_and(|types| types.iter().any(|t| t["id"] == "CUSTOMER"))
}

/// Everything the demo runs, for the demo itself and for the end-to-end load benchmark.
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
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(options.serve_args.iter().cloned());
    let settings = ServeSettings::from_args(&args).map_err(|e| anyhow!("demo settings: {e}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(service::open_store(&settings.database, clock.clone()).await?);
    service::bootstrap(store.as_ref(), &settings, clock.as_ref()).await?;
    let running = service::start(&settings, store.clone(), clock).await?;
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

/// `ocpoll demo`.
pub async fn run(args: DemoArgs) -> Result<()> {
    if args.changes_per_minute == 0 {
        bail!("--changes-per-minute must be at least 1");
    }
    service::init_logging_with(crate::settings::LogFormat::Text, "warn");
    let dir = scratch(args.keep)?;
    println!("ocpoll demo — simulator, service and callback receiver on this machine (Ctrl-C ends it)\n");
    let mut stack = start_stack(&StackOptions {
        listen: args.listen,
        seed: args.seed,
        customers: 25,
        dir: dir.path.clone(),
        serve_args: Vec::new(),
        sim_rate_limit: 200,
    })
    .await?;
    let sim = stack.sim.simulator().clone();
    let lead = sim.lead_business();
    println!("  Sage simulator   {}  (lead business {lead})", stack.sim.api_url());
    println!("  callback         {}  (verifies both signatures)", stack.callback_url);
    println!("  database         {}", dir.path.join("ocpoll.db").display());
    println!("  API              {}", stack.api);
    println!("  credentials      Authorization: {}", stack.authorization);

    let (code, oauth_url) = stack.authorize().await?;
    println!("\nOAuth: GET {} → 302 to the callback with code {code}", oauth_url.split('?').next().unwrap_or(""));
    let body = stack.instance_body(&code, args.interval_seconds, "API_Polling")?;
    let created = stack.create_instance(&body).await?;
    let id = created["id"].clone();
    println!(
        "POST /instances (the seed example body) → instance {id}, polling {RESOURCE} every {} s",
        args.interval_seconds
    );
    if let Some(warnings) = created["warnings"].as_array() {
        for w in warnings {
            println!("  warning {}: {}", w["path"].as_str().unwrap_or(""), w["message"].as_str().unwrap_or(""));
        }
    }
    println!("\nTry, while it runs:");
    println!("  curl -s -H '{}' {}/instances/{id}", auth_header(&stack.authorization), stack.api);
    println!("  curl -s -H '{}' '{}/instances/{id}/events?pageSize=5'", auth_header(&stack.authorization), stack.api);
    println!(
        "  curl -s -X PATCH -H '{}' -H 'content-type: application/json' {}/instances/{id} -d '{{\"configuration\":{{\"event.poller.refresh_interval\":\"0.25\"}}}}'",
        auth_header(&stack.authorization),
        stack.api
    );
    match args.duration {
        Some(d) => println!("\nMaking {} changes per minute for {} s:\n", args.changes_per_minute, d.as_secs()),
        None => println!("\nMaking {} changes per minute until Ctrl-C:\n", args.changes_per_minute),
    }

    let start = Utc::now();
    let mut ledger = Ledger::default();
    let mut customers: Vec<String> = sim
        .record_ids(&lead, COLLECTION)
        .into_iter()
        .filter(|id| sim.get_record(&lead, COLLECTION, id).is_some_and(|r| is_customer(&r)))
        .collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let every = Duration::from_secs_f64(60.0 / f64::from(args.changes_per_minute));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let until = args.duration.map(|d| tokio::time::Instant::now() + d);
    let stop = service::shutdown_signal();
    tokio::pin!(stop);
    let mut interrupted = false;
    loop {
        let deadline = async {
            match until {
                Some(u) => tokio::time::sleep_until(u).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => { interrupted = true; break; }
            _ = deadline => break,
            Some(got) = stack.feed.recv() => {
                for line in ledger.take(&got, start) {
                    println!("{line}");
                }
            }
            _ = ticker.tick() => {
                match make_change(&sim, &lead, &mut customers, &mut rng) {
                    Ok((kind, id, name)) => {
                        let at = Utc::now();
                        println!("{}  change  {:<8} customer {}  {name}", stamp(at, start), kind.label(), short(&id));
                        ledger.changes.push(Change { kind, id, at, delivered: None });
                    }
                    Err(e) => println!("{}  change failed: {e}", stamp(Utc::now(), start)),
                }
            }
        }
    }

    // Let the last changes arrive: two intervals, the lookback-free part of the poll, and delivery.
    let drain = Duration::from_secs(u64::from(args.interval_seconds) * 2 + 20);
    if ledger.lost() > 0 {
        println!("\nNo more changes; waiting up to {} s for the last {} to arrive…", drain.as_secs(), ledger.lost());
        let until = tokio::time::Instant::now() + drain;
        while ledger.lost() > 0 {
            tokio::select! {
                _ = &mut stop, if !interrupted => { interrupted = true; }
                _ = tokio::time::sleep_until(until) => break,
                Some(got) = stack.feed.recv() => {
                    for line in ledger.take(&got, start) {
                        println!("{line}");
                    }
                }
            }
            if interrupted {
                break;
            }
        }
    }
    while let Ok(got) = stack.feed.try_recv() {
        for line in ledger.take(&got, start) {
            println!("{line}");
        }
    }

    let mut lat = ledger.latencies.clone();
    lat.sort_by(f64::total_cmp);
    let lost = ledger.lost();
    println!("\nSummary");
    println!("  changes made        {}", ledger.changes.len());
    println!("  notifications       {}", ledger.notifications);
    println!("  events delivered    {} ({} redelivered with the same eventId)", ledger.events, ledger.duplicates);
    println!("  events of no change {}", ledger.unexpected);
    println!("  signatures wrong    {}", ledger.bad_signatures);
    if !lat.is_empty() {
        println!(
            "  latency change→delivery  p50 {:.1} s  p99 {:.1} s  max {:.1} s",
            percentile(&lat, 50.0),
            percentile(&lat, 99.0),
            lat.last().copied().unwrap_or_default()
        );
    }
    println!("  lost                {lost}");
    let undelivered: BTreeMap<&str, usize> =
        ledger.changes.iter().filter(|c| c.delivered.is_none()).fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.kind.label()).or_default() += 1;
            m
        });
    stack.stop().await;
    if args.keep {
        println!("  kept {}", dir.path.display());
    }
    if lost > 0 {
        bail!("{lost} change(s) were not delivered: {undelivered:?}");
    }
    if ledger.bad_signatures > 0 {
        bail!("{} notification(s) had a wrong signature", ledger.bad_signatures);
    }
    Ok(())
}

fn auth_header(authorization: &str) -> String {
    format!("Authorization: {authorization}")
}

/// Creates, edits or deletes a customer in the lead business; returns what it did.
fn make_change(
    sim: &Simulator,
    lead: &str,
    customers: &mut Vec<String>,
    rng: &mut StdRng,
) -> Result<(ChangeKind, String, String)> {
    let roll: f64 = rng.r#gen();
    let n: u32 = rng.gen_range(1000..100_000);
    if roll < 0.4 || customers.len() < 5 {
        let name = format!("Demo Customer {n}");
        let record = sim
            .create_record(
                lead,
                COLLECTION,
                json!({"name": name, "reference": format!("D{n}"), "contact_type_ids": ["CUSTOMER"],
                       "email": format!("customer{n}@demo.example"), "currency_id": "GBP"}),
            )
            .map_err(|e| anyhow!("{e}"))?;
        let id = record["id"].as_str().unwrap_or_default().to_string();
        customers.push(id.clone());
        return Ok((ChangeKind::Create, id, name));
    }
    let index = rng.gen_range(0..customers.len());
    if roll < 0.85 {
        let id = customers[index].clone();
        let name = format!("Edited Customer {n}");
        sim.update_record(lead, COLLECTION, &id, json!({"name": name})).map_err(|e| anyhow!("{e}"))?;
        Ok((ChangeKind::Update, id, name))
    } else {
        let id = customers.swap_remove(index);
        sim.delete_record(lead, COLLECTION, &id).map_err(|e| anyhow!("{e}"))?;
        Ok((ChangeKind::Delete, id, "(deleted)".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn minutes_of_seconds() {
        assert_eq!(minutes(60), "1");
        assert_eq!(minutes(30), "0.5");
        assert_eq!(minutes(5), "0.083333");
        assert_eq!(minutes(0), "0.016667");
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.0);
        assert_eq!(percentile(&v, 99.0), 4.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}

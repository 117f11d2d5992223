//! `ocpoll bench-e2e` (hidden; run it with `cargo xtask bench e2e -- ARGS`): the end-to-end load benchmark.
//!
//! The simulator and a verifying callback receiver run in this process; the service runs as a child process
//! (`ocpoll serve` on SQLite in a temporary directory), so that the CPU time and the peak RSS measured are those
//! of the service alone. The benchmark creates `--instances` instances through the API — each with its own OAuth
//! code from the simulator, the Open Connectors seed example body (customers), `--interval-seconds` apart polls,
//! and its own business of the simulator unless `--businesses` says fewer (then the instances of one business
//! share it, and every change there is one event per instance) — spread over `--ramp`, waits `--warmup` for the
//! polls to settle, then changes customers at `--changes-per-second` for `--duration` (the measured window),
//! spread over the businesses. It then waits for the last changes to arrive and reports:
//!
//! - polls per second (`ocpoll_polls_total` of the service's `/metrics`) and Sage requests per second,
//! - events per second (delivered to the receiver in the window; and found by polls, `ocpoll_events_total`),
//! - the CPU of the service (utime + stime of `/proc/PID/stat`, in cores over the window) and its peak RSS
//!   (`VmHWM` of `/proc/PID/status`, over the whole run),
//! - the latency from each change to its delivery (p50, p99, max) for each (change, instance) pair, matched by
//!   object id and date as `ocpoll demo` does, and the lost pairs (must be 0).
//!
//! The figures are printed and written as a row of the table in the end-to-end section of `docs/benchmarks.md`
//! (the row of the same instance count is replaced).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use oc_model::event::EventType;
use oc_sagesim::{AppRegistration, SimConfig, SimHandle, Simulator};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::demo::{SEED_EXAMPLE, minutes, parse_duration};
use crate::receiver::{Received, Receiver};

/// The simulator collection behind the seed example's `customers`.
const COLLECTION: &str = "contacts";
/// Where the table of figures goes in the report.
const BEGIN: &str = "<!-- bench-e2e:begin -->";
const END: &str = "<!-- bench-e2e:end -->";

/// Flags of `ocpoll bench-e2e`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Instances to create, each polling customers.
    #[arg(long, default_value_t = 1000)]
    pub instances: usize,
    /// Businesses in the simulator; instances are spread over them (default: one business per instance).
    #[arg(long)]
    pub businesses: Option<usize>,
    /// The poll interval of every instance, in seconds.
    #[arg(long, default_value_t = 60)]
    pub interval_seconds: u32,
    /// Changes per second made to customers during the measured window, spread over the businesses.
    #[arg(long, default_value_t = 10.0)]
    pub changes_per_second: f64,
    /// The measured window: how long changes are made (e.g. `3m`).
    #[arg(long, value_parser = parse_duration, default_value = "3m")]
    pub duration: Duration,
    /// The instances are created over at least this long (their polls then spread over the interval).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub ramp: Duration,
    /// Wait after the last instance is created, before measuring (default: one interval and 15 s).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Instances created at once.
    #[arg(long, default_value_t = 8)]
    pub create_concurrency: usize,
    /// An extra flag of `ocpoll serve` (repeatable), e.g. `--serve-arg=--max-concurrent-polls=64`.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// Seed of the simulator's data and of the changes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The report to update (default: the workspace's `docs/benchmarks.md` when it exists).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the figures only; leave the report alone.
    #[arg(long)]
    pub no_report: bool,
    /// Keep the temporary directory (database, master key, the service's log).
    #[arg(long)]
    pub keep: bool,
}

/// What kind of change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    Delete,
}

#[derive(Debug)]
struct Change {
    business: usize,
    kind: Kind,
    id: String,
    at: DateTime<Utc>,
}

/// One event as the receiver saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: DateTime<Utc>,
    date: DateTime<Utc>,
    deleted: bool,
}

/// What arrived at the receiver.
#[derive(Debug, Default)]
struct Arrivals {
    by_object: HashMap<(i64, String), Vec<Seen>>,
    times: Vec<DateTime<Utc>>,
    event_ids: HashSet<String>,
    notifications: u64,
    events: u64,
    duplicates: u64,
    bad_signatures: u64,
}

impl Arrivals {
    fn take(&mut self, got: &Received) {
        self.notifications += 1;
        if !(got.elements_signature_ok && got.standard_signature_ok) {
            self.bad_signatures += 1;
        }
        let instance = got.notification.message.instance_id;
        for e in &got.notification.message.events {
            self.events += 1;
            if !self.event_ids.insert(e.event_id.clone()) {
                self.duplicates += 1;
                continue;
            }
            self.times.push(got.at);
            self.by_object.entry((instance, e.object_id.clone())).or_default().push(Seen {
                at: got.at,
                date: e.date,
                deleted: e.event_type == EventType::Deleted,
            });
        }
    }
}

/// The changes matched with their deliveries: a change is delivered to an instance of its business by the first
/// event of that instance for the same object dated in or after the change's second (a `DELETED` one for a
/// deletion). A create and an edit within one interval are rightly one event.
#[derive(Debug, Default)]
struct Settled {
    latencies: Vec<f64>,
    lost: Vec<(usize, i64)>,
}

fn settle(changes: &[Change], instances_of: &[Vec<i64>], arrivals: &Arrivals) -> Settled {
    let mut out = Settled::default();
    for (n, c) in changes.iter().enumerate() {
        for &instance in &instances_of[c.business] {
            let first = arrivals
                .by_object
                .get(&(instance, c.id.clone()))
                .into_iter()
                .flatten()
                .filter(|s| match c.kind {
                    // a DELETED event is dated with the record's last update when the deleted feed does not
                    // return `deleted_at` (the poller does not ask for it): take the first one after the change
                    Kind::Delete => s.deleted && s.at >= c.at,
                    _ => s.date.timestamp() >= c.at.timestamp(),
                })
                .map(|s| s.at)
                .min();
            match first {
                Some(at) => out.latencies.push((at - c.at).num_milliseconds() as f64 / 1000.0),
                None => out.lost.push((n, instance)),
            }
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---- the child process ----

/// CPU ticks (utime + stime) of a process.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// A `kB` line of `/proc/PID/status` (`VmHWM`, `VmRSS`), in bytes.
fn status_kb(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    Some(line[key.len()..].trim_start_matches(':').trim().trim_end_matches("kB").trim().parse::<u64>().ok()? * 1024)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `ocpoll serve` as a child process; killed if dropped before [`Service::stop`].
struct Service {
    child: tokio::process::Child,
    pid: String,
    api: String,
    base: String,
    log: PathBuf,
}

impl Service {
    async fn start(dir: &Path, sim: &SimHandle, args: &BenchArgs, org: &str, user: &str) -> Result<Service> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let key_file = dir.join("master.key");
        let mut rng = StdRng::from_entropy();
        std::fs::write(&key_file, random_hex(&mut rng, 32)).context("writing the master key")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
        }
        let per_business = args.instances.div_ceil(args.businesses.unwrap_or(args.instances).max(1));
        let log = dir.join("serve.log");
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("ocpoll.db").display()))
            .arg("--master-key-file")
            .arg(&key_file)
            .args(["--sage-api-url", &sim.api_url()])
            .args(["--sage-authorize-url", &sim.authorize_url()])
            .args(["--sage-token-url", &sim.token_url()])
            .arg("--allow-private-callbacks")
            // Sage's 200 requests a minute per business, more when instances share a business
            .args(["--sage-rate-limit", &(200 * per_business.max(1)).to_string()])
            .args(&args.serve_args)
            .env("OCPOLL_ORGANIZATION_SECRET", org)
            .env("OCPOLL_USER_SECRET", user)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("starting ocpoll serve")?;
        let pid = child.id().ok_or_else(|| anyhow!("ocpoll serve has no pid"))?.to_string();
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.lines().find_map(|l| l.split("ocpoll: API at ").nth(1)) {
                let api = rest.split_whitespace().next().unwrap_or_default().to_string();
                let base = api.split("/elements").next().unwrap_or_default().to_string();
                return Ok(Service { child, pid, api, base, log });
            }
            if let Some(status) = child.try_wait()? {
                bail!("ocpoll serve exited ({status}) before serving:\n{}", tail(&text, 20));
            }
            if Instant::now() > until {
                bail!("ocpoll serve did not start within 60 s:\n{}", tail(&text, 20));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then up to 30 s for a clean stop.
    async fn stop(mut self) -> Result<()> {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid]).status();
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    eprintln!("bench: ocpoll serve exited with {status}");
                }
            }
            Err(_) => {
                eprintln!("bench: ocpoll serve did not stop within 30 s; killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The samples of a Prometheus text page: `(name, labels, value)`.
#[derive(Debug, Default, Clone)]
struct Scrape(Vec<(String, String, f64)>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            out.push((name.to_string(), labels.to_string(), value));
        }
        Scrape(out)
    }

    /// The sum of a metric's series whose labels contain `filter`.
    fn sum(&self, name: &str, filter: &str) -> f64 {
        self.0.iter().filter(|(n, l, _)| n == name && l.contains(filter)).map(|(_, _, v)| v).sum()
    }

    /// Each series of a metric, by labels.
    fn series(&self, name: &str) -> BTreeMap<String, f64> {
        self.0.iter().filter(|(n, _, _)| n == name).map(|(_, l, v)| (l.clone(), *v)).collect()
    }
}

async fn scrape(http: &reqwest::Client, base: &str) -> Result<Scrape> {
    let text = http.get(format!("{base}/metrics")).send().await?.error_for_status()?.text().await?;
    Ok(Scrape::parse(&text))
}

/// A snapshot of the counters the figures are differences of.
#[derive(Debug, Clone)]
struct Snapshot {
    at: Instant,
    service_ticks: u64,
    own_ticks: u64,
    metrics: Scrape,
    sim_requests: u64,
}

async fn snapshot(http: &reqwest::Client, service: &Service, sim: &Simulator) -> Result<Snapshot> {
    Ok(Snapshot {
        at: Instant::now(),
        service_ticks: cpu_ticks(&service.pid).unwrap_or_default(),
        own_ticks: cpu_ticks("self").unwrap_or_default(),
        metrics: scrape(http, &service.base).await?,
        sim_requests: sim.requests_served(),
    })
}

// ---- the instances ----

fn random_hex(rng: &mut StdRng, bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rng.r#gen::<u8>())).collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What every instance creation shares.
struct Creator {
    http: reqwest::Client,
    api: String,
    authorization: String,
    sim_authorize: String,
    app: AppRegistration,
    callback_url: String,
    signature_key: String,
    interval_seconds: u32,
}

impl Creator {
    /// An OAuth code from the simulator, as a browser would get it.
    async fn code(&self) -> Result<String> {
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&scope=full_access&state=bench",
            self.sim_authorize,
            enc(&self.app.client_id),
            enc(&self.app.redirect_uri)
        );
        let resp = self.http.get(&url).send().await.context("visiting the authorize URL")?;
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("the authorize URL answered {} without a redirect", resp.status()))?;
        let location = url::Url::parse(location).context("the redirect to the callback")?;
        location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| anyhow!("the redirect carries no code: {location}"))
    }

    /// Creates instance `n` on `business`; returns its id.
    async fn create(&self, n: usize, business: &str) -> Result<i64> {
        let code = self.code().await?;
        let mut body: Value = serde_json::from_str(SEED_EXAMPLE).context("the seed example body")?;
        body["providerData"]["code"] = json!(code);
        body["name"] = json!(format!("bench-{n}"));
        let c = &mut body["configuration"];
        c["oauth.api.key"] = json!(self.app.client_id);
        c["oauth.api.secret"] = json!(self.app.client_secret);
        c["oauth.callback.url"] = json!(self.app.redirect_uri);
        c["event.notification.callback.url"] = json!(self.callback_url);
        c["event.notification.signature.key"] = json!(self.signature_key);
        c["event.poller.refresh_interval"] = json!(minutes(self.interval_seconds));
        c["sage.business.id"] = json!(business);
        let resp = self
            .http
            .post(format!("{}/instances", self.api))
            .header("authorization", &self.authorization)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST /instances answered {status}: {answer}");
        }
        answer["id"].as_i64().ok_or_else(|| anyhow!("POST /instances answered without an id: {answer}"))
    }
}

// ---- the changes ----

fn is_customer(record: &Value) -> bool {
    record["contact_types"].as_array().is_some_and(|types| types.iter().any(|t| t["id"] == "CUSTOMER"))
}

/// Creates, edits or deletes a customer of `business` (40/45/15 %, as the demo does).
fn make_change(
    sim: &Simulator,
    business: &str,
    customers: &mut Vec<String>,
    rng: &mut StdRng,
) -> Result<(Kind, String, DateTime<Utc>)> {
    let roll: f64 = rng.r#gen();
    let n: u32 = rng.gen_range(1000..1_000_000);
    let at = Utc::now();
    if roll < 0.4 || customers.len() < 3 {
        let record = sim
            .create_record(
                business,
                COLLECTION,
                json!({"name": format!("Bench Customer {n}"), "reference": format!("B{n}"),
                       "contact_type_ids": ["CUSTOMER"], "email": format!("customer{n}@bench.example"),
                       "currency_id": "GBP"}),
            )
            .map_err(|e| anyhow!("{e}"))?;
        let id = record["id"].as_str().unwrap_or_default().to_string();
        customers.push(id.clone());
        return Ok((Kind::Create, id, at));
    }
    let index = rng.gen_range(0..customers.len());
    if roll < 0.85 {
        let id = customers[index].clone();
        sim.update_record(business, COLLECTION, &id, json!({"name": format!("Edited Customer {n}")}))
            .map_err(|e| anyhow!("{e}"))?;
        Ok((Kind::Update, id, at))
    } else {
        let id = customers.swap_remove(index);
        sim.delete_record(business, COLLECTION, &id).map_err(|e| anyhow!("{e}"))?;
        Ok((Kind::Delete, id, at))
    }
}

// ---- the run ----

/// The figures of one run.
#[derive(Debug)]
struct Figures {
    instances: usize,
    businesses: usize,
    interval: u32,
    changes_per_second: f64,
    polls_per_second: f64,
    sage_requests_per_second: f64,
    events_found_per_second: f64,
    events_delivered_per_second: f64,
    cpu_cores: f64,
    own_cpu_cores: f64,
    peak_rss: u64,
    p50: f64,
    p99: f64,
    max: f64,
    pairs: usize,
    lost: usize,
    poll_mean_ms: f64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `ocpoll bench-e2e`.
pub async fn run(args: BenchArgs) -> Result<()> {
    if args.instances == 0 {
        bail!("--instances must be at least 1");
    }
    if args.changes_per_second.is_nan() || args.changes_per_second <= 0.0 {
        bail!("--changes-per-second must be positive");
    }
    let businesses = args.businesses.unwrap_or(args.instances).clamp(1, args.instances);
    crate::service::init_logging_with(crate::settings::LogFormat::Text, "warn");
    let dir = std::env::temp_dir().join(format!("ocpoll-bench-{}-{}", std::process::id(), Utc::now().timestamp()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run_in(&args, businesses, &dir).await;
    if args.keep {
        eprintln!("bench: kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let figures = result?;
    let row = table_row(&figures, &command_line());
    println!("\n{}\n{}\n{row}", table_header(), table_separator());
    if !args.no_report {
        match args.report.clone().or_else(default_report) {
            Some(path) => {
                update_report(&path, &row, &machine()).with_context(|| format!("updating {}", path.display()))?;
                println!("\nupdated {}", path.display());
            }
            None => println!("\n(no docs/benchmarks.md found; pass --report PATH to write the row)"),
        }
    }
    if figures.lost > 0 {
        bail!("{} (change, instance) pair(s) were not delivered", figures.lost);
    }
    Ok(())
}

async fn run_in(args: &BenchArgs, businesses: usize, dir: &Path) -> Result<Figures> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let signature_key = format!("bench-signature-{}", random_hex(&mut rng, 12));
    let (receiver, mut feed) = Receiver::new(signature_key.as_bytes());
    let receiver_listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the callback receiver")?;
    let receiver_addr = receiver_listener.local_addr()?;
    let receiver_app = receiver.app();
    tokio::spawn(async move {
        let _ = axum::serve(receiver_listener, receiver_app).await;
    });
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(got) = feed.recv().await {
                arrivals.lock().unwrap_or_else(|e| e.into_inner()).take(&got);
            }
        });
    }

    let app = AppRegistration::new(
        format!("bench-app-{}", random_hex(&mut rng, 4)),
        random_hex(&mut rng, 16),
        format!("http://{receiver_addr}/oauth/callback"),
    );
    eprintln!("bench: starting the simulator with {businesses} business(es)…");
    let sim = Simulator::start(SimConfig {
        seed: args.seed,
        customers: 5,
        businesses,
        apps: vec![app.clone()],
        rate_limit_per_minute: 0,
        request_log_capacity: 1000,
        ..SimConfig::default()
    })
    .await
    .context("starting the Sage simulator")?;
    let business_ids: Vec<String> = sim.businesses().into_iter().map(|b| b.id).collect();

    let org = format!("bench-org-{}", random_hex(&mut rng, 12));
    let user = format!("bench-user-{}", random_hex(&mut rng, 12));
    let service = Service::start(dir, &sim, args, &org, &user).await?;
    eprintln!("bench: ocpoll serve (pid {}) at {}; log {}", service.pid, service.api, service.log.display());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;

    // 1. the instances, paced over the ramp
    let creator = Arc::new(Creator {
        http: http.clone(),
        api: service.api.clone(),
        authorization: format!("User {user}, Organization {org}"),
        sim_authorize: sim.authorize_url(),
        app,
        callback_url: format!("http://{receiver_addr}/ocpoll-events"),
        signature_key,
        interval_seconds: args.interval_seconds,
    });
    let mut instances_of: Vec<Vec<i64>> = vec![Vec::new(); businesses];
    let started = Instant::now();
    let gap = args.ramp.div_f64(args.instances as f64);
    let permits = Arc::new(Semaphore::new(args.create_concurrency.max(1)));
    let mut set: JoinSet<Result<(usize, i64)>> = JoinSet::new();
    let mut created = 0usize;
    let mut collect = |r: Result<Result<(usize, i64)>, tokio::task::JoinError>| -> Result<()> {
        let (n, id) = r.context("an instance creation task failed")??;
        instances_of[n % businesses].push(id);
        created += 1;
        if created.is_multiple_of(1000) || created == args.instances {
            eprintln!("bench: {created} instance(s) created in {:.0} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    };
    for n in 0..args.instances {
        tokio::time::sleep_until(started + gap.mul_f64(n as f64)).await;
        let permit = permits.clone().acquire_owned().await?;
        let creator = creator.clone();
        let business = business_ids[n % businesses].clone();
        set.spawn(async move {
            let _permit = permit;
            let id = creator.create(n, &business).await.with_context(|| format!("creating instance {n}"))?;
            Ok((n, id))
        });
        while let Some(r) = set.try_join_next() {
            collect(r)?;
        }
    }
    while let Some(r) = set.join_next().await {
        collect(r)?;
    }
    let create_seconds = started.elapsed().as_secs_f64();

    // 2. steady state
    let warmup = args.warmup.unwrap_or(Duration::from_secs(u64::from(args.interval_seconds) + 15));
    eprintln!("bench: warming up for {} s…", warmup.as_secs());
    tokio::time::sleep(warmup).await;

    // 3. the measured window: changes at a steady rate
    let before = snapshot(&http, &service, &sim).await?;
    let window_start = Utc::now();
    eprintln!(
        "bench: measuring for {} s, {} change(s) per second over {businesses} business(es)…",
        args.duration.as_secs(),
        args.changes_per_second
    );
    let mut order: Vec<usize> = (0..businesses).collect();
    order.shuffle(&mut rng);
    let mut customers: HashMap<usize, Vec<String>> = HashMap::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.changes_per_second));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let until = before.at + args.duration;
    let mut window_max_rss = 0u64;
    let mut last_sample = Instant::now();
    let mut last_progress = Instant::now();
    let mut failures = 0usize;
    while Instant::now() < until {
        ticker.tick().await;
        let b = order[changes.len() % businesses];
        let list = customers.entry(b).or_insert_with(|| {
            sim.record_ids(&business_ids[b], COLLECTION)
                .into_iter()
                .filter(|id| sim.get_record(&business_ids[b], COLLECTION, id).is_some_and(|r| is_customer(&r)))
                .collect()
        });
        match make_change(&sim, &business_ids[b], list, &mut rng) {
            Ok((kind, id, at)) => changes.push(Change { business: b, kind, id, at }),
            Err(e) => {
                failures += 1;
                eprintln!("bench: a change failed: {e}");
            }
        }
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            window_max_rss = window_max_rss.max(status_kb(&service.pid, "VmRSS").unwrap_or_default());
        }
        if last_progress.elapsed() >= Duration::from_secs(30) {
            last_progress = Instant::now();
            let a = arrivals.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!(
                "bench: {:.0} s: {} change(s), {} event(s) received, RSS {:.0} MiB",
                (Instant::now() - before.at).as_secs_f64(),
                changes.len(),
                a.events,
                mib(window_max_rss)
            );
        }
    }
    let after = snapshot(&http, &service, &sim).await?;
    let window_end = Utc::now();
    window_max_rss = window_max_rss.max(status_kb(&service.pid, "VmRSS").unwrap_or_default());
    if failures > 0 {
        eprintln!("bench: {failures} change(s) failed in the simulator");
    }

    // 4. the last changes arrive
    let drain = Duration::from_secs(u64::from(args.interval_seconds) * 2 + 30);
    eprintln!("bench: waiting up to {} s for the last deliveries…", drain.as_secs());
    let drain_until = Instant::now() + drain;
    let settled = loop {
        let settled = settle(&changes, &instances_of, &arrivals.lock().unwrap_or_else(|e| e.into_inner()));
        if settled.lost.is_empty() || Instant::now() > drain_until {
            break settled;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let peak_rss = status_kb(&service.pid, "VmHWM").unwrap_or_default();
    let end_metrics = scrape(&http, &service.base).await.unwrap_or_default();
    let db_bytes = ["ocpoll.db", "ocpoll.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let log_text = std::fs::read_to_string(&service.log).unwrap_or_default();
    let warnings: Vec<&str> = log_text.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
    service.stop().await?;
    let _ = sim.shutdown().await;

    // 5. figures
    let window = (after.at - before.at).as_secs_f64();
    let ticks = clock_ticks();
    let delta = |name: &str, filter: &str| after.metrics.sum(name, filter) - before.metrics.sum(name, filter);
    let a = arrivals.lock().unwrap_or_else(|e| e.into_inner());
    let delivered_in_window = a.times.iter().filter(|t| **t >= window_start && **t <= window_end).count();
    let mut lat = settled.latencies.clone();
    lat.sort_by(f64::total_cmp);
    let polls = delta("ocpoll_polls_total", "");
    let poll_seconds = delta("ocpoll_poll_duration_seconds_sum", "");
    let poll_count = delta("ocpoll_poll_duration_seconds_count", "");
    let figures = Figures {
        instances: args.instances,
        businesses,
        interval: args.interval_seconds,
        changes_per_second: args.changes_per_second,
        polls_per_second: polls / window,
        sage_requests_per_second: (after.sim_requests - before.sim_requests) as f64 / window,
        events_found_per_second: delta("ocpoll_events_total", "") / window,
        events_delivered_per_second: delivered_in_window as f64 / window,
        cpu_cores: (after.service_ticks - before.service_ticks) as f64 / ticks / window,
        own_cpu_cores: (after.own_ticks - before.own_ticks) as f64 / ticks / window,
        peak_rss,
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        max: lat.last().copied().unwrap_or_default(),
        pairs: settled.latencies.len() + settled.lost.len(),
        lost: settled.lost.len(),
        poll_mean_ms: if poll_count > 0.0 { poll_seconds / poll_count * 1000.0 } else { 0.0 },
    };

    println!("\nocpoll bench-e2e — {} instance(s), {businesses} business(es)", thousands(args.instances));
    println!("  instances created      {} in {:.0} s", thousands(args.instances), create_seconds);
    println!("  measured window        {window:.0} s ({} changes, {failures} failed)", changes.len());
    println!(
        "  polls                  {polls:.0} ({:.1}/s; by outcome {:?})",
        figures.polls_per_second,
        delta_series(&before.metrics, &after.metrics, "ocpoll_polls_total")
    );
    println!("  poll duration (mean)   {:.1} ms", figures.poll_mean_ms);
    println!("  Sage requests          {:.1}/s", figures.sage_requests_per_second);
    println!("  events found           {:.2}/s", figures.events_found_per_second);
    println!(
        "  events delivered       {:.2}/s in the window; {} in all ({} notifications, {} redelivered with the same eventId)",
        figures.events_delivered_per_second, a.events, a.notifications, a.duplicates
    );
    println!("  signatures wrong       {}", a.bad_signatures);
    println!(
        "  CPU of ocpoll serve    {:.3} cores (this process — simulator and receiver — {:.3})",
        figures.cpu_cores, figures.own_cpu_cores
    );
    println!(
        "  RSS of ocpoll serve    peak {:.1} MiB (VmHWM, whole run); at most {:.1} MiB in the window",
        mib(peak_rss),
        mib(window_max_rss)
    );
    println!(
        "  change → delivery      p50 {:.1} s  p99 {:.1} s  max {:.1} s  over {} (change, instance) pairs",
        figures.p50, figures.p99, figures.max, figures.pairs
    );
    println!("  lost                   {}", figures.lost);
    println!("  database               {:.1} MiB", mib(db_bytes));
    println!("  token refreshes        {:.0}", delta("ocpoll_token_refreshes_total", ""));
    println!("  rate-limit waits       {:.0}", delta("ocpoll_rate_limit_waits_total", ""));
    println!(
        "  outbox depth at end    {:?}; warnings/errors in the log: {}",
        end_metrics.series("ocpoll_outbox_depth"),
        warnings.len()
    );
    for line in warnings.iter().take(5) {
        println!("    {line}");
    }
    for (n, instance) in settled.lost.iter().take(10) {
        let c = &changes[*n];
        let got = a.by_object.get(&(*instance, c.id.clone())).cloned().unwrap_or_default();
        println!("  lost: {:?} of {} at {} for instance {instance}; its events: {got:?}", c.kind, c.id, c.at);
    }
    if a.bad_signatures > 0 {
        bail!("{} notification(s) had a wrong signature", a.bad_signatures);
    }
    drop(a);
    Ok(figures)
}

fn delta_series(before: &Scrape, after: &Scrape, name: &str) -> BTreeMap<String, f64> {
    let b = before.series(name);
    after.series(name).into_iter().map(|(k, v)| (k.clone(), v - b.get(&k).copied().unwrap_or_default())).collect()
}

// ---- the report ----

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let mut cmd = "cargo xtask bench e2e".to_string();
    if !args.is_empty() {
        cmd.push_str(" --");
        for a in args {
            cmd.push(' ');
            cmd.push_str(&a);
        }
    }
    cmd
}

fn default_report() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    path.exists().then_some(path)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / (1024.0 * 1024.0))
        .unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(String::from))
        .and_then(|l| l.split(':').nth(1).map(|s| s.trim().to_string()))
        .unwrap_or_default();
    format!("{cores} cores ({model}), {mem:.1} GiB of memory")
}

fn table_header() -> &'static str {
    "| instances | businesses | interval | changes/s | polls/s | Sage requests/s | events/s delivered | CPU of ocpoll (cores) | peak RSS | latency p50 / p99 / max | lost | load average | date | command |"
}

fn table_separator() -> &'static str {
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|---|"
}

fn table_row(f: &Figures, command: &str) -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let mut row = String::new();
    let _ = write!(
        row,
        "| {} | {} | {} s | {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.0} MiB | {:.1} / {:.1} / {:.1} s | {} of {} | {load} | {} | `{command}` |",
        thousands(f.instances),
        thousands(f.businesses),
        f.interval,
        f.changes_per_second,
        f.polls_per_second,
        f.sage_requests_per_second,
        f.events_delivered_per_second,
        f.cpu_cores,
        mib(f.peak_rss),
        f.p50,
        f.p99,
        f.max,
        f.lost,
        thousands(f.pairs),
        Utc::now().format("%Y-%m-%d"),
    );
    row
}

/// Replaces the row of the same instance count in the table between the markers (or appends it), keeping the
/// rows sorted by instance count; adds the markers at the end of the "End to end" section when missing.
fn update_report(path: &Path, row: &str, machine: &str) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let key = |r: &str| r.split('|').nth(1).map(|c| c.trim().replace(',', "")).unwrap_or_default();
    let (head, old_rows, tail) = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let block = &text[b + BEGIN.len()..e];
            let rows: Vec<String> = block
                .lines()
                .filter(|l| l.starts_with("| ") && !l.starts_with("| instances"))
                .map(String::from)
                .collect();
            (text[..b].to_string(), rows, text[e + END.len()..].to_string())
        }
        _ => (format!("{}\n\n", text.trim_end()), Vec::new(), "\n".to_string()),
    };
    let mut rows: Vec<String> = old_rows.into_iter().filter(|r| key(r) != key(row)).collect();
    rows.push(row.to_string());
    rows.sort_by_key(|r| key(r).parse::<u64>().unwrap_or(u64::MAX));
    let mut block = String::new();
    let _ = writeln!(block, "{BEGIN}");
    let _ = writeln!(
        block,
        "Machine of the last run: {machine}. Written by the benchmark; the row of an instance count is replaced when it runs again.\n"
    );
    let _ = writeln!(block, "{}", table_header());
    let _ = writeln!(block, "{}", table_separator());
    for r in rows {
        let _ = writeln!(block, "{r}");
    }
    let _ = write!(block, "{END}");
    std::fs::write(path, format!("{head}{block}{tail}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text() {
        let s = Scrape::parse(
            "# HELP x y\n# TYPE ocpoll_polls_total counter\nocpoll_polls_total{outcome=\"ok\"} 12\nocpoll_polls_total{outcome=\"failed\"} 3\nocpoll_outbox_depth 2\n",
        );
        assert_eq!(s.sum("ocpoll_polls_total", ""), 15.0);
        assert_eq!(s.sum("ocpoll_polls_total", "ok"), 12.0);
        assert_eq!(s.sum("ocpoll_outbox_depth", ""), 2.0);
    }

    #[test]
    fn matches_changes_with_deliveries() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 500_000_000).unwrap();
        let changes = vec![
            Change { business: 0, kind: Kind::Update, id: "a".into(), at: t(0) },
            Change { business: 0, kind: Kind::Delete, id: "b".into(), at: t(1) },
            Change { business: 1, kind: Kind::Create, id: "c".into(), at: t(2) },
        ];
        let instances_of = vec![vec![1, 2], vec![3]];
        let mut a = Arrivals::default();
        let seen = |at, date, deleted| Seen { at: t(at), date: t(date), deleted };
        a.by_object.insert((1, "a".into()), vec![seen(30, 0, false)]);
        a.by_object.insert((2, "a".into()), vec![seen(-5, -10, false), seen(40, 0, false)]);
        a.by_object.insert((1, "b".into()), vec![seen(31, 1, true)]);
        a.by_object.insert((2, "b".into()), vec![seen(31, 1, false), seen(0, -100, true)]);
        a.by_object.insert((3, "c".into()), vec![seen(50, 2, false)]);
        let s = settle(&changes, &instances_of, &a);
        let mut lat = s.latencies.clone();
        lat.sort_by(f64::total_cmp);
        assert_eq!(lat, vec![30.0, 30.0, 40.0, 48.0]);
        assert_eq!(s.lost, vec![(1, 2)]);
    }

    #[test]
    fn report_rows_are_replaced_by_instance_count() {
        let dir = std::env::temp_dir().join(format!("ocpoll-bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("benchmarks.md");
        std::fs::write(&path, "# Benchmarks\n\n## End to end\n\ntext\n").unwrap();
        update_report(&path, "| 10,000 | a |", "m").unwrap();
        update_report(&path, "| 1,000 | b |", "m").unwrap();
        update_report(&path, "| 10,000 | c |", "m").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Benchmarks\n\n## End to end\n\ntext\n\n<!-- bench-e2e:begin -->"), "{text}");
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| 1")).collect();
        assert_eq!(rows, vec!["| 1,000 | b |", "| 10,000 | c |"]);
        assert_eq!(thousands(1234567), "1,234,567");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! `bench-e2e` (run it with `cargo xtask bench e2e -- ARGS`): the end-to-end load benchmark, a development tool
//! of the package `oc-tests` built from its harness.
//!
//! The simulator ([`oc_tests::sim::Sage`]) and a verifying callback receiver (the demo's,
//! `oc_bin::receiver`) run in this process; the service runs as a child process ([`oc_tests::process::Node`]:
//! `ocpoll serve` built first in the benchmark's own profile — release under `cargo xtask bench e2e` — on SQLite
//! in a temporary directory, or with `--database-url` on a fresh schema of a PostgreSQL database, `--nodes` of
//! them sharing it), so that the CPU time and the peak RSS measured are those of the service alone. The benchmark creates `--instances` instances through the
//! API — each with its own OAuth code from the simulator, the Open Connectors seed example body (customers),
//! `--interval-seconds` apart polls, and its own business of the simulator unless `--businesses` says fewer (then
//! the instances of one business share it, and every change there is one event per instance) — spread over
//! `--ramp`, waits `--warmup` for the polls to settle, then changes customers at `--changes-per-second` for
//! `--duration` (the measured window), spread over the businesses, with the simulator's workload
//! (`oc_sagesim::workload`, as `ocpoll demo` does). It then waits for the last changes to arrive and reports:
//!
//! - polls per second (`ocpoll_polls_total` of the service's `/metrics`) and Sage requests per second,
//! - events per second (delivered to the receiver in the window; and found by polls, `ocpoll_events_total`),
//! - the CPU of the service (utime + stime of `/proc/PID/stat`, in cores over the window) and its peak RSS
//!   (`VmHWM` of `/proc/PID/status`, over the whole run),
//! - the latency from each change to its delivery (p50, p99, max) for each (change, instance) pair, matched by
//!   the workload's ledger, and the lost pairs (must be 0).
//!
//! The figures are printed and written as a row of the table in the end-to-end section of `docs/benchmarks.md`
//! (the row of the same instance count is replaced).

mod args;
mod probe;
mod report;

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use oc_bin::receiver::Receiver;
use oc_sagesim::SimConfig;
use oc_sagesim::workload::{Changer, Ledger, Mix};
use oc_tests::Api;
use oc_tests::process::{Node, NodeConfig};
use oc_tests::sim::Sage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use args::{BenchArgs, Parsed};
use probe::{Scrape, clock_ticks, cpu_ticks, cpu_ticks_of, delta_series, scrape, status_kb};
use report::{Figures, mib, thousands};

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// The benchmark: one run per adaptive mode asked for (off, on, or both in turn with the same seed).
async fn run(args: BenchArgs) -> Result<()> {
    if args.instances == 0 {
        bail!("--instances must be at least 1");
    }
    if args.changes_per_second.is_nan() || args.changes_per_second <= 0.0 {
        bail!("--changes-per-second must be positive");
    }
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if args.nodes > 1 && args.database_url.is_none() {
        bail!("--nodes {}: several nodes share a PostgreSQL database; give --database-url postgres://…", args.nodes);
    }
    let businesses = args.businesses.unwrap_or(args.instances).clamp(1, args.instances);
    if args.busy_businesses >= businesses && args.busy_businesses > 0 {
        bail!("--busy-businesses ({}) must be fewer than the businesses ({businesses})", args.busy_businesses);
    }
    let mut runs = Vec::new();
    for &adaptive in args.adaptive.modes() {
        let dir = std::env::temp_dir().join(format!(
            "ocpoll-bench-{}-{}-{}",
            std::process::id(),
            Utc::now().timestamp(),
            if adaptive { "adaptive" } else { "fixed" }
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        eprintln!("bench: adaptive polling {}", if adaptive { "on" } else { "off" });
        let result = run_in(&args, businesses, &dir, adaptive).await;
        if args.keep {
            eprintln!("bench: kept {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        runs.push(result?);
    }
    let command = report::command_line();
    if args.database_url.is_some() {
        eprintln!("bench: a PostgreSQL run: the report (its tables are of SQLite runs, one node) is left alone");
    }
    let side_by_side = args.adaptive != args::Adaptive::Off || args.busy_businesses > 0;
    if side_by_side {
        let table = report::adaptive_table(&runs, &command);
        println!("\n{table}");
        write_report_unless_postgres(&args, "the adaptive section of ", |path| {
            report::update_adaptive_report(path, &table, &report::machine())
        })?;
    } else {
        let row = report::table_row(&runs[0], &command);
        println!("\n{}\n{}\n{row}", report::table_header(), report::table_separator());
        write_report_unless_postgres(&args, "", |path| report::update_report(path, &row, &report::machine()))?;
    }
    let lost: usize = runs.iter().map(|f| f.lost).sum();
    if lost > 0 {
        bail!("{lost} (change, instance) pair(s) were not delivered");
    }
    Ok(())
}

/// Updates the report (`--report`, else the workspace's `docs/benchmarks.md`) with `update`, unless
/// `--no-report`; `what` names the part written.
fn write_report(args: &BenchArgs, what: &str, update: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if args.no_report {
        return Ok(());
    }
    match args.report.clone().or_else(report::default_report) {
        Some(path) => {
            update(&path).with_context(|| format!("updating {}", path.display()))?;
            println!("\nupdated {what}{}", path.display());
        }
        None => println!("\n(no docs/benchmarks.md found; pass --report PATH to write the figures)"),
    }
    Ok(())
}

/// A snapshot of the counters the figures are differences of.
#[derive(Debug, Clone)]
struct Snapshot {
    at: Instant,
    service_ticks: u64,
    own_ticks: u64,
    metrics: Scrape,
    /// The PostgreSQL server's processes on this machine (0 when there are none).
    postgres_ticks: u64,
    /// `ocpoll_polls_total` of each node.
    per_node_polls: Vec<f64>,
    sim_requests: u64,
}

/// [`write_report`], for a run on SQLite.
fn write_report_unless_postgres(args: &BenchArgs, what: &str, update: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if args.database_url.is_some() { Ok(()) } else { write_report(args, what, update) }
}

/// CPU ticks and counters of every node, summed (the metrics merged).
async fn snapshot(http: &reqwest::Client, services: &[Node], pids: &[String], sage: &Sage) -> Result<Snapshot> {
    let mut pages = Vec::with_capacity(services.len());
    for service in services {
        pages.push(scrape(http, &service.root).await?);
    }
    Ok(Snapshot {
        at: Instant::now(),
        service_ticks: pids.iter().map(|pid| cpu_ticks(pid).unwrap_or_default()).sum(),
        own_ticks: cpu_ticks("self").unwrap_or_default(),
        postgres_ticks: cpu_ticks_of("postgres"),
        per_node_polls: pages.iter().map(|p| p.sum("ocpoll_polls_total", "")).collect(),
        metrics: Scrape::merge(pages),
        sim_requests: sage.sim.requests_served(),
    })
}

/// A `kB` line of `/proc/PID/status` summed over the nodes.
fn status_kb_sum(pids: &[String], key: &str) -> u64 {
    pids.iter().map(|pid| status_kb(pid, key).unwrap_or_default()).sum()
}

/// The benchmark's own schema of a PostgreSQL database: created at the start, dropped at the end (unless kept).
struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    async fn create(url: &str) -> Result<PgSchema> {
        use sqlx::Connection;
        let name = format!("ocpoll_bench_{}", random_hex(8));
        let mut c = sqlx::PgConnection::connect(url).await.with_context(|| format!("connecting to {url}"))?;
        sqlx::query(&format!("CREATE SCHEMA \"{name}\"")).execute(&mut c).await.context("creating the schema")?;
        Ok(PgSchema { url: url.to_string(), name })
    }

    /// The URL `ocpoll serve` is given: the database, with the schema as its search path.
    fn service_url(&self) -> String {
        oc_tests::process::url_with_schema(&self.url, &self.name)
    }

    /// The size of the schema's tables, their indexes and TOAST included.
    async fn bytes(&self) -> Result<u64> {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        let (bytes,): (Option<i64>,) = sqlx::query_as(
            "SELECT SUM(pg_total_relation_size(c.oid))::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
        )
        .bind(&self.name)
        .fetch_one(&mut c)
        .await?;
        Ok(bytes.and_then(|b| u64::try_from(b).ok()).unwrap_or_default())
    }

    async fn drop_schema(&self) -> Result<()> {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.name)).execute(&mut c).await?;
        Ok(())
    }
}

/// Enough of the simulator's request log for the measured window when the figures are by business (else the
/// last thousand requests, for a look at a failure).
fn request_log_capacity(args: &BenchArgs) -> usize {
    if args.adaptive == args::Adaptive::Off && args.busy_businesses == 0 {
        return 1000;
    }
    // two requests a poll: every instance once per interval, the busy ones as often as the 5 s floor
    let per_second = args.instances as f64 * 2.0 / f64::from(args.interval_seconds.max(1))
        + args.busy_businesses as f64
            * args.instances.div_ceil(args.businesses.unwrap_or(args.instances).max(1)) as f64
            * 2.0
            / 5.0;
    let seconds = args.duration.as_secs_f64() + f64::from(args.interval_seconds) * 3.0 + 120.0;
    ((per_second * seconds * 1.5) as usize).clamp(1000, 4_000_000)
}

fn random_hex(bytes: usize) -> String {
    let mut rng = StdRng::from_entropy();
    (0..bytes).map(|_| format!("{:02x}", rand::Rng::r#gen::<u8>(&mut rng))).collect()
}

/// `ocpoll serve` (built in this benchmark's profile) on SQLite in `dir` — or `--nodes` of them on the PostgreSQL
/// schema `pg` — pointed at the simulator; the log of node `i` goes to `dir/serve.log` (`dir/serve-i.log`).
async fn start_services(
    dir: &Path,
    sage: &Sage,
    args: &BenchArgs,
    adaptive: bool,
    pg: Option<&PgSchema>,
) -> Result<(Vec<Node>, NodeConfig)> {
    let bin = tokio::task::spawn_blocking(oc_tests::process::ocpoll_binary).await.context("building ocpoll")?;
    eprintln!("bench: {}", bin.display());
    let master_key = random_hex(32);
    let key_file = dir.join("master.key");
    std::fs::write(&key_file, &master_key).context("writing the master key")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    }
    // Sage's 200 requests a minute per business, more when instances share a business
    let per_business = args.instances.div_ceil(args.businesses.unwrap_or(args.instances).max(1));
    let mut serve_args = sage.serve_args();
    if let Some(i) = serve_args.iter().position(|a| a == "--sage-rate-limit") {
        serve_args[i + 1] = (200 * per_business.max(1)).to_string();
    }
    if adaptive {
        serve_args.push("--adaptive-polling".into());
    }
    serve_args.extend(args.serve_args.iter().cloned());
    let config = NodeConfig {
        database_url: match pg {
            Some(pg) => pg.service_url(),
            None => format!("sqlite://{}", dir.join("ocpoll.db").display()),
        },
        master_key,
        org_secret: format!("bench-org-{}", random_hex(12)),
        user_secret: format!("bench-user-{}", random_hex(12)),
        node_id: String::new(),
        args: serve_args,
        // the service's own default filter unless RUST_LOG says otherwise
        env: vec![(
            "RUST_LOG".into(),
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn,hyper=warn,reqwest=warn".into()),
        )],
        log_file: Some(dir.join("serve.log")),
    };
    let mut nodes = Vec::with_capacity(args.nodes);
    for i in 0..args.nodes {
        let node_config = if args.nodes == 1 {
            config.clone()
        } else {
            NodeConfig {
                node_id: format!("bench-{i}"),
                log_file: Some(dir.join(format!("serve-{i}.log"))),
                ..config.clone()
            }
        };
        nodes.push(Node::start(&node_config).await.with_context(|| format!("starting node {i}"))?);
    }
    Ok((nodes, config))
}

/// Creates instance `n` on `business`; returns its id.
async fn create_instance(
    api: &Api,
    sage: &Sage,
    n: usize,
    business: &str,
    callback_url: &str,
    signature_key: &str,
    interval_seconds: u32,
) -> Result<i64> {
    let code = sage.code().await?;
    let mut body = sage.instance_body(&code, callback_url, signature_key, f64::from(interval_seconds));
    body["name"] = json!(format!("bench-{n}"));
    body["configuration"]["sage.business.id"] = json!(business);
    let (status, answer) = api.call("POST", "/instances", Some(&body)).await;
    if !(200..300).contains(&status) {
        bail!("POST /instances answered {status}: {answer}");
    }
    answer["id"].as_i64().ok_or_else(|| anyhow!("POST /instances answered without an id: {answer}"))
}

/// Requests per minute a business may get from ocpoll: the limit the benchmark gives `ocpoll serve` times its
/// share (`--sage-budget-share` among the extra flags, else the default).
fn share_per_minute(args: &BenchArgs, businesses: usize) -> f64 {
    let per_business = args.instances.div_ceil(businesses.max(1)).max(1);
    let mut share = f64::from(oc_sageone::DEFAULT_BUDGET_SHARE_PERCENT);
    let mut flags = args.serve_args.iter();
    while let Some(a) = flags.next() {
        let value = match a.split_once('=') {
            Some(("--sage-budget-share", v)) => Some(v.to_string()),
            None if a == "--sage-budget-share" => flags.next().cloned(),
            _ => None,
        };
        if let Some(v) = value.and_then(|v| v.parse::<f64>().ok()) {
            share = v;
        }
    }
    200.0 * per_business as f64 * share / 100.0
}

/// Per business, the requests it got in `[from, to]`: per minute (the most and the mean over every business) and
/// the most in any 60 s.
fn requests_by_business(
    log: &[oc_sagesim::LoggedRequest],
    businesses: usize,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> (f64, f64, usize) {
    let mut by: std::collections::HashMap<&str, Vec<chrono::DateTime<Utc>>> = Default::default();
    for r in log.iter().filter(|r| r.at >= from && r.at <= to && r.path.starts_with("/v3.1")) {
        if let Some(b) = &r.business {
            by.entry(b.as_str()).or_default().push(r.at);
        }
    }
    let minutes = ((to - from).num_milliseconds() as f64 / 60_000.0).max(1e-9);
    let most = by.values().map(|v| v.len()).max().unwrap_or(0) as f64 / minutes;
    let mean = by.values().map(|v| v.len()).sum::<usize>() as f64 / businesses.max(1) as f64 / minutes;
    let mut busiest = 0;
    for times in by.values_mut() {
        times.sort_unstable();
        let mut start = 0;
        for end in 0..times.len() {
            while times[end] - times[start] >= chrono::Duration::seconds(60) {
                start += 1;
            }
            busiest = busiest.max(end - start + 1);
        }
    }
    (most, mean, busiest)
}

async fn run_in(args: &BenchArgs, businesses: usize, dir: &Path, adaptive: bool) -> Result<Figures> {
    let signature_key = format!("bench-signature-{}", random_hex(12));
    let (receiver, mut feed) = Receiver::new(signature_key.as_bytes());
    let receiver_listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the callback receiver")?;
    let callback_url = format!("http://{}/ocpoll-events", receiver_listener.local_addr()?);
    let receiver_app = receiver.app();
    tokio::spawn(async move {
        let _ = axum::serve(receiver_listener, receiver_app).await;
    });
    // the receiver keeps every notification (for the signature count at the end); the ledger takes their events
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            while let Some(got) = feed.recv().await {
                let mut ledger = lock(&ledger);
                for arrival in got.arrivals() {
                    ledger.take(arrival);
                }
            }
        });
    }

    eprintln!("bench: starting the simulator with {businesses} business(es)…");
    let sage = Arc::new(
        Sage::start_with(SimConfig {
            seed: args.seed,
            customers: 5,
            businesses,
            // the instances poll customers only: the other businesses hold two each, nothing else
            lean: true,
            // the requests of the window, by business, when the figures are by class
            request_log_capacity: request_log_capacity(args),
            ..SimConfig::default()
        })
        .await?,
    );
    let business_ids: Vec<String> = sage.sim.businesses().into_iter().map(|b| b.id).collect();

    let pg = match &args.database_url {
        Some(url) => Some(PgSchema::create(url).await?),
        None => None,
    };
    let harness = Harness { sage, business_ids, receiver, ledger, callback_url, signature_key };
    let result = measure(args, businesses, dir, adaptive, pg.as_ref(), harness).await;
    if let Some(pg) = &pg {
        if args.keep {
            eprintln!("bench: kept the PostgreSQL schema {}", pg.name);
        } else if let Err(e) = pg.drop_schema().await {
            eprintln!("bench: could not drop the schema {}: {e:#}", pg.name);
        }
    }
    result
}

/// What a run measures with: the simulator, its businesses, the verifying receiver and its ledger.
struct Harness {
    sage: Arc<Sage>,
    business_ids: Vec<String>,
    receiver: Receiver,
    ledger: Arc<Mutex<Ledger>>,
    callback_url: String,
    signature_key: String,
}

/// The run on the started simulator and receiver: the services, the instances, the window, the figures.
async fn measure(
    args: &BenchArgs,
    businesses: usize,
    dir: &Path,
    adaptive: bool,
    pg: Option<&PgSchema>,
    harness: Harness,
) -> Result<Figures> {
    let Harness { sage, business_ids, receiver, ledger, callback_url, signature_key } = harness;
    let sage = &sage;
    let (services, config) = start_services(dir, sage, args, adaptive, pg).await?;
    let pids = services
        .iter()
        .map(|s| s.pid().map(|p| p.to_string()).ok_or_else(|| anyhow!("ocpoll serve has no pid")))
        .collect::<Result<Vec<_>>>()?;
    for (service, pid) in services.iter().zip(&pids) {
        eprintln!("bench: ocpoll serve {:?} (pid {pid}) at {}; log in {}", service.node_id, service.api, dir.display());
    }
    let apis: Vec<Api> = services.iter().map(|s| Api::new(&s.api, &config.authorization())).collect();
    let http = apis[0].http.clone();

    // 1. the instances, paced over the ramp
    let started = Instant::now();
    let gap = args.ramp.div_f64(args.instances as f64);
    let permits = Arc::new(Semaphore::new(args.create_concurrency.max(1)));
    let mut set: JoinSet<Result<(usize, i64)>> = JoinSet::new();
    let mut created = 0usize;
    let mut collect = |r: Result<Result<(usize, i64)>, tokio::task::JoinError>| -> Result<()> {
        let (n, id) = r.context("an instance creation task failed")??;
        lock(&ledger).watch(&business_ids[n % businesses], id);
        created += 1;
        if created.is_multiple_of(1000) || created == args.instances {
            eprintln!("bench: {created} instance(s) created in {:.0} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    };
    for n in 0..args.instances {
        tokio::time::sleep_until(started + gap.mul_f64(n as f64)).await;
        let permit = permits.clone().acquire_owned().await?;
        // through each node in turn: they share one database
        let (api, sage) = (apis[n % apis.len()].clone(), sage.clone());
        let (business, callback_url, key) =
            (business_ids[n % businesses].clone(), callback_url.clone(), signature_key.clone());
        let interval = args.interval_seconds;
        set.spawn(async move {
            let _permit = permit;
            let id = create_instance(&api, &sage, n, &business, &callback_url, &key, interval)
                .await
                .with_context(|| format!("creating instance {n}"))?;
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

    // 2. steady state (with uneven activity, the busy businesses are busy already: their changes of the warm-up
    // are made but not measured, as a steady state has them, right up to the window)
    let warmup = args.warmup.unwrap_or(Duration::from_secs(u64::from(args.interval_seconds) + 15));
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut order: Vec<usize> = (0..businesses).collect();
    order.shuffle(&mut rng);
    // uneven activity: the first `busy` of the shuffled order get `busy_share` of the changes
    let busy = args.busy_businesses.min(businesses.saturating_sub(1));
    let busy_ids: std::collections::HashSet<String> = order[..busy].iter().map(|b| business_ids[*b].clone()).collect();
    let mix = Mix { min_customers: 3, label: "Bench".into(), ..Mix::default() };
    let mut changer = Changer::new(sage.sim.simulator().clone(), mix, args.seed);
    let pick = |rng: &mut StdRng, n: usize| {
        if busy == 0 {
            order[n % businesses]
        } else if rand::Rng::gen_bool(rng, args.busy_share) {
            order[rand::Rng::gen_range(rng, 0..busy)]
        } else {
            order[rand::Rng::gen_range(rng, busy..businesses)]
        }
    };
    eprintln!("bench: warming up for {} s…", warmup.as_secs());
    if busy == 0 {
        tokio::time::sleep(warmup).await;
    } else {
        let until = Instant::now() + warmup;
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.changes_per_second));
        let mut n = 0;
        while Instant::now() < until {
            ticker.tick().await;
            let b = pick(&mut rng, n);
            n += 1;
            let _ = changer.change(&business_ids[b]);
        }
        // no pause before the window: a pause of an interval would let every busy pair go quiet (adaptive
        // polling backs off), and the window would measure a cold start instead of the steady state. The
        // warm-up's own events still arriving in the window match no recorded change (the ledger counts them
        // as unmatched); a later change of the same record is matched only by an event of its own state.
    }

    // 3. the measured window: changes at a steady rate
    let before = snapshot(&http, &services, &pids, sage).await?;
    let window_start = Utc::now();
    eprintln!(
        "bench: measuring for {} s, {} change(s) per second over {businesses} business(es)…",
        args.duration.as_secs(),
        args.changes_per_second
    );
    let mut made = 0usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.changes_per_second));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let until = before.at + args.duration;
    let mut window_max_rss = 0u64;
    let mut last_sample = Instant::now();
    let mut last_progress = Instant::now();
    let mut failures = 0usize;
    while Instant::now() < until {
        ticker.tick().await;
        let b = pick(&mut rng, made + failures);
        match changer.change(&business_ids[b]) {
            Ok(change) => {
                made += 1;
                lock(&ledger).record(change);
            }
            Err(e) => {
                failures += 1;
                eprintln!("bench: a change failed: {e}");
            }
        }
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            window_max_rss = window_max_rss.max(status_kb_sum(&pids, "VmRSS"));
        }
        if last_progress.elapsed() >= Duration::from_secs(30) {
            last_progress = Instant::now();
            eprintln!(
                "bench: {:.0} s: {made} change(s), {} event(s) received, RSS {:.0} MiB",
                (Instant::now() - before.at).as_secs_f64(),
                lock(&ledger).events(),
                mib(window_max_rss)
            );
        }
    }
    let after = snapshot(&http, &services, &pids, sage).await?;
    let window_end = Utc::now();
    let (requests_max, requests_mean, busiest_minute) =
        requests_by_business(&sage.sim.requests(), businesses, window_start, window_end);
    window_max_rss = window_max_rss.max(status_kb_sum(&pids, "VmRSS"));
    if failures > 0 {
        eprintln!("bench: {failures} change(s) failed in the simulator");
    }

    // 4. the last changes arrive
    let drain = Duration::from_secs(u64::from(args.interval_seconds) * 2 + 30);
    eprintln!("bench: waiting up to {} s for the last deliveries…", drain.as_secs());
    let drain_until = Instant::now() + drain;
    while lock(&ledger).lost() > 0 && Instant::now() <= drain_until {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let peak_rss = status_kb_sum(&pids, "VmHWM");
    let per_node_peak: Vec<f64> = pids.iter().map(|p| mib(status_kb(p, "VmHWM").unwrap_or_default())).collect();
    let mut end_pages = Vec::new();
    for service in &services {
        end_pages.push(scrape(&http, &service.root).await.unwrap_or_default());
    }
    let end_metrics = Scrape::merge(end_pages);
    let db_bytes = match pg {
        Some(pg) => pg.bytes().await.unwrap_or_default(),
        None => ["ocpoll.db", "ocpoll.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum(),
    };
    let log: Vec<String> = services.iter().flat_map(|s| s.log()).collect();
    let warnings: Vec<&String> = log.iter().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
    for service in services {
        if !service.terminate(Duration::from_secs(30)).await {
            eprintln!("bench: ocpoll serve did not stop cleanly within 30 s (killed)");
        }
    }

    // 5. figures
    let window = (after.at - before.at).as_secs_f64();
    let ticks = clock_ticks();
    let delta = |name: &str, filter: &str| after.metrics.sum(name, filter) - before.metrics.sum(name, filter);
    let ledger = lock(&ledger);
    let received = receiver.received();
    let bad_signatures = received.iter().filter(|r| !r.signed()).count();
    let latency = ledger.latency();
    let busy_latency = ledger.latency_of(|c| busy_ids.contains(&c.business));
    let quiet_latency = ledger.latency_of(|c| !busy_ids.contains(&c.business));
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
        events_delivered_per_second: ledger.arrived_between(window_start, window_end) as f64 / window,
        cpu_cores: (after.service_ticks - before.service_ticks) as f64 / ticks / window,
        own_cpu_cores: (after.own_ticks - before.own_ticks) as f64 / ticks / window,
        peak_rss,
        p50: latency.p50,
        p99: latency.p99,
        max: latency.max,
        pairs: ledger.expected(),
        lost: ledger.lost(),
        poll_mean_ms: if poll_count > 0.0 { poll_seconds / poll_count * 1000.0 } else { 0.0 },
        adaptive,
        busy_businesses: busy,
        busy: busy_latency,
        quiet: quiet_latency,
        requests_per_business_minute_max: requests_max,
        requests_per_business_minute_mean: requests_mean,
        busiest_business_minute: busiest_minute,
        share_per_minute: share_per_minute(args, businesses),
        early_polls: delta("ocpoll_polls_early_total", ""),
    };

    let backend = match pg {
        Some(pg) => format!("PostgreSQL (schema {}), {} node(s)", pg.name, pids.len()),
        None => "SQLite, 1 node".to_string(),
    };
    println!("\nocpoll bench-e2e — {} instance(s), {businesses} business(es), {backend}", thousands(args.instances));
    println!("  instances created      {} in {:.0} s", thousands(args.instances), create_seconds);
    println!("  measured window        {window:.0} s ({made} changes, {failures} failed)");
    println!(
        "  polls                  {polls:.0} ({:.1}/s; by outcome {:?})",
        figures.polls_per_second,
        delta_series(&before.metrics, &after.metrics, "ocpoll_polls_total")
    );
    if pids.len() > 1 {
        let by_node: Vec<String> = after
            .per_node_polls
            .iter()
            .zip(&before.per_node_polls)
            .zip(&per_node_peak)
            .map(|((a, b), peak)| format!("{:.0} polls, peak RSS {peak:.0} MiB", a - b))
            .collect();
        println!("  by node                {}", by_node.join("; "));
    }
    println!("  poll duration (mean)   {:.1} ms", figures.poll_mean_ms);
    println!("  Sage requests          {:.1}/s", figures.sage_requests_per_second);
    println!("  events found           {:.2}/s", figures.events_found_per_second);
    println!(
        "  events delivered       {:.2}/s in the window; {} in all ({} notifications, {} redelivered with the same eventId)",
        figures.events_delivered_per_second,
        ledger.events(),
        received.len(),
        ledger.duplicates()
    );
    println!("  signatures wrong       {}", bad_signatures);
    println!(
        "  CPU of ocpoll serve    {:.3} cores (this process — simulator and receiver — {:.3})",
        figures.cpu_cores, figures.own_cpu_cores
    );
    if pg.is_some() {
        println!(
            "  CPU of PostgreSQL      {:.3} cores (its processes on this machine, not in the figure above)",
            after.postgres_ticks.saturating_sub(before.postgres_ticks) as f64 / ticks / window
        );
    }
    println!(
        "  RSS of ocpoll serve    peak {:.1} MiB (VmHWM, whole run); at most {:.1} MiB in the window",
        mib(peak_rss),
        mib(window_max_rss)
    );
    println!(
        "  change → delivery      p50 {:.1} s  p99 {:.1} s  max {:.1} s  over {} (change, instance) pairs",
        figures.p50, figures.p99, figures.max, figures.pairs
    );
    if busy > 0 {
        println!(
            "  busy businesses ({busy})   p50 {:.1} s  p99 {:.1} s  max {:.1} s",
            figures.busy.p50, figures.busy.p99, figures.busy.max
        );
        println!(
            "  quiet businesses       p50 {:.1} s  p99 {:.1} s  max {:.1} s",
            figures.quiet.p50, figures.quiet.p99, figures.quiet.max
        );
    }
    // the request log holds the whole window only when the figures are by business
    if request_log_capacity(args) > 1000 {
        println!(
            "  Sage requests/business per minute: max {:.1}, mean {:.2}; most in any 60 s {} (share {:.0})",
            requests_max, requests_mean, busiest_minute, figures.share_per_minute
        );
    }
    println!("  early (adaptive) polls {:.0}", figures.early_polls);
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
    for (c, instance) in ledger.undelivered().into_iter().take(10) {
        let got = ledger.arrivals_of(instance, &c.id);
        println!("  lost: {:?} of {} at {} for instance {instance}; its events: {got:?}", c.kind, c.id, c.at);
    }
    if bad_signatures > 0 {
        bail!("{} notification(s) had a wrong signature", bad_signatures);
    }
    Ok(figures)
}

//! `ocpoll sim`: only the Sage Accounting v3.1 simulator (crate oc-sagesim), until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use oc_sagesim::{AppRegistration, SimConfig, Simulator, parse_app, parse_apps};

/// Flags of `ocpoll sim` (see `docs/simulator.md`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "OCPOLL_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Seed of the generated data and of random faults: the same seed gives the same businesses, ids and records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Live customer contacts seeded in the lead business (those deleted in its generated history come on top).
    #[arg(long, default_value_t = 25)]
    customers: usize,
    /// Businesses of the simulated user (the first is the lead business).
    #[arg(long, default_value_t = 2)]
    businesses: usize,
    /// Load runs: the businesses but the lead one hold only two customers each (no ledger, products, invoices).
    #[arg(long)]
    lean: bool,
    /// An OAuth app, CLIENT_ID:CLIENT_SECRET:REDIRECT_URI (split at the first two colons); repeatable.
    #[arg(long = "app", value_parser = parse_app_flag)]
    apps: Vec<AppRegistration>,
    /// A file of apps, one CLIENT_ID:CLIENT_SECRET:REDIRECT_URI per line (`#` comments).
    #[arg(long)]
    apps_file: Option<PathBuf>,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    token_ttl: u64,
    /// API requests allowed per business per 60 s; 0 turns the limit off.
    #[arg(long, default_value_t = 200)]
    rate_limit: u32,
    /// Background changes per minute in the lead business (creates, edits, deletes, voids).
    #[arg(long, default_value_t = 0)]
    activity: u32,
    /// Serve the admin API under /_sim (records, clock, faults, request log).
    #[arg(long)]
    admin: bool,
    /// Show a consent page with an Approve button instead of approving at once.
    #[arg(long)]
    consent_page: bool,
}

fn parse_app_flag(value: &str) -> Result<AppRegistration, String> {
    parse_app(value).map_err(|e| e.to_string())
}

/// Runs the simulator until SIGTERM/SIGINT.
pub(crate) async fn run(args: Args) -> Result<()> {
    let mut apps = args.apps;
    if let Some(path) = &args.apps_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        apps.extend(parse_apps(&text).with_context(|| format!("in {}", path.display()))?);
    }
    let config = SimConfig {
        listen: args.listen,
        seed: args.seed,
        customers: args.customers,
        businesses: args.businesses,
        lean: args.lean,
        apps,
        token_ttl: Duration::from_secs(args.token_ttl),
        rate_limit_per_minute: args.rate_limit,
        activity_per_minute: args.activity,
        admin: args.admin,
        consent_page: args.consent_page,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await.context("starting the simulator")?;
    println!("Sage Accounting v3.1 simulator");
    println!("  authorize  {}", sim.authorize_url());
    println!("  token      {}", sim.token_url());
    println!("  api        {}", sim.api_url());
    if args.admin {
        println!("  admin      {}", sim.admin_url());
    }
    println!("  lead business {}", sim.lead_business());
    oc_bin::service::shutdown_signal().await;
    sim.shutdown().await.context("stopping the simulator")?;
    Ok(())
}

//! `ocpoll demo`: the whole product on one machine with no configuration.
//!
//! It prints the console's address and a one-time sign-in link (a code usable once within ten minutes that opens
//! a session; it is printed once and never logged), and the API's credentials, which the console's sign-in form
//! takes too. A Sage app registered in the simulator with the console's redirect URI is the server's default app,
//! so the console's form may leave Client ID and Client Secret empty.
//!
//! It starts the Sage simulator (seeded customers), the service on SQLite in a temporary directory, and a local
//! callback receiver that verifies both signatures; registers an app in the simulator, walks the OAuth flow as a
//! browser would, POSTs the Open Connectors seed example body (only the code, the URLs, the signature key and the
//! interval changed), then makes changes to customers in the simulator and prints, as they happen, each change and
//! each notification received with its latency from change to delivery. At the end (`--duration`, or Ctrl-C) it
//! waits for the last changes to arrive and prints a summary: changes made, events delivered, lost (must be 0).
//!
//! The changes come from `oc_sagesim::workload::Changer` and are counted by its `Ledger` (the end-to-end
//! benchmark and tests use the same): a change counts as delivered when an event of its object carries its state
//! or a later one (a `DELETED` one after it for a deletion), so a create and an edit of one customer within one
//! poll interval are rightly reported as one event.

mod stack;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use oc_sagesim::workload::{Changer, Ledger, Mix, Taken};

pub use stack::{SEED_EXAMPLE, Stack, StackOptions, minutes, start_stack};

use crate::receiver::Received;
use crate::service;

/// The resource the seed example polls.
const RESOURCE: &str = "customers";

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

/// Takes one notification's events into the ledger; returns the lines to print.
fn take(ledger: &mut Ledger, got: &Received, start: DateTime<Utc>) -> Vec<String> {
    let signatures = if got.signed() { "verified" } else { "WRONG" };
    let mut lines = Vec::new();
    for (e, arrival) in got.notification.message.events.iter().zip(got.arrivals()) {
        let what = format!(
            "{}  event   {:<8} {} {}",
            stamp(got.at, start),
            e.event_type.as_str(),
            e.object_type,
            short(&e.object_id)
        );
        let verdict = match ledger.take(arrival) {
            Taken::Again => {
                lines.push(format!("{what}  (again, same eventId: at-least-once redelivery)"));
                continue;
            }
            Taken::Delivered { latency, .. } => format!("latency {latency:>5.1} s"),
            Taken::Unmatched => "no change of ours".to_string(),
        };
        lines.push(format!("{what}  {verdict}  signatures {signatures}"));
    }
    lines
}

fn stamp(at: DateTime<Utc>, start: DateTime<Utc>) -> String {
    format!("[{:>7.1}s]", (at - start).num_milliseconds() as f64 / 1000.0)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
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
    println!("  console          {}", stack.console_url());
    // the one place the one-time code is shown: a log line never carries it
    println!("  sign in          {}  (one-time link, 10 minutes)", stack.console_link().await?);
    println!(
        "                   (or type the two secrets above; Client ID/Secret may stay empty: the demo's Sage app \
         {} is the server's default)",
        stack.console_app.client_id
    );
    println!(
        "                   (for instances made there: Event Notification Callback URL {}, Callback Notification \
         Signature Key {})",
        stack.callback_url, stack.signature_key
    );

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
    if let Some(instance) = id.as_i64() {
        ledger.watch(&lead, instance);
    }
    let mut changer = Changer::new(sim.clone(), Mix::default(), args.seed);
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
                for line in take(&mut ledger, &got, start) {
                    println!("{line}");
                }
            }
            _ = ticker.tick() => {
                match changer.change(&lead) {
                    Ok(c) => {
                        println!("{}  change  {:<8} customer {}  {}", stamp(c.at, start), c.kind.label(), short(&c.id), c.name);
                        ledger.record(c);
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
                    for line in take(&mut ledger, &got, start) {
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
        for line in take(&mut ledger, &got, start) {
            println!("{line}");
        }
    }

    // the verdict is about the demo's own instance; instances made meanwhile in the console are counted apart
    let own = id.as_i64();
    let (received, others): (Vec<_>, Vec<_>) =
        stack.receiver.received().into_iter().partition(|r| Some(r.notification.message.instance_id) == own);
    let bad_signatures = received.iter().filter(|r| !r.signed()).count();
    let lost = ledger.lost();
    println!("\nSummary");
    println!("  changes made        {}", ledger.change_count());
    println!("  notifications       {}", received.len());
    println!("  events delivered    {} ({} redelivered with the same eventId)", ledger.events(), ledger.duplicates());
    println!("  events of no change {}", ledger.unmatched());
    println!("  signatures wrong    {}", bad_signatures);
    if !others.is_empty() {
        println!("  (and {} notification(s) of instances made in the console)", others.len());
    }
    if ledger.lost() < ledger.expected() {
        let l = ledger.latency();
        println!("  latency change→delivery  p50 {:.1} s  p99 {:.1} s  max {:.1} s", l.p50, l.p99, l.max);
    }
    println!("  lost                {lost}");
    let undelivered: BTreeMap<&str, usize> = ledger.undelivered().into_iter().fold(BTreeMap::new(), |mut m, (c, _)| {
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
    if bad_signatures > 0 {
        bail!("{} notification(s) had a wrong signature", bad_signatures);
    }
    Ok(())
}

fn auth_header(authorization: &str) -> String {
    format!("Authorization: {authorization}")
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
}

//! `cargo xtask`: the project's automation (tests, CI, benchmarks, soak), in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask test`  — fmt check, clippy (deny warnings), every test; the PostgreSQL suites too when
//!   PostgreSQL answers (`OCPOLL_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//!   otherwise one loud line says they were skipped.
//! - `cargo xtask ci`    — the same with the PostgreSQL suites mandatory.
//! - `cargo xtask bench [--quick] [FILTER]` — the criterion benchmarks; `cargo xtask bench e2e -- ARGS` — the
//!   end-to-end load benchmark (builds the release `ocpoll`, then runs `oc-tests`' `bench-e2e` binary).
//! - `cargo xtask soak [CASES]` — the change-detection oracle, long run.

mod pg;
mod tidy;

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(false),
        Some("ci") => test(true),
        Some("bench") => bench(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("tidy") => tidy::run(),
        Some("-h" | "--help" | "help") | None => {
            println!("{}", USAGE);
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown task {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test                fmt check, clippy -D warnings, all tests (PostgreSQL suites when PostgreSQL answers)
  ci                  what `test` does, with the PostgreSQL suites mandatory
  bench [--quick] [FILTER]
                      criterion benchmarks (--quick: criterion's quick mode)
  bench e2e [-- ARGS] the end-to-end load benchmark (ocpoll against the simulator), e.g.
                      `cargo xtask bench e2e -- --instances 10000` (`-- --help` lists the flags)
  soak [CASES]        the change-detection oracle for CASES cases (default 100000)
  tidy                architecture checks (also run as tests)";

/// `cargo`, without the variables cargo set for running xtask itself: build scripts that watch one of them
/// (ring's watches `CARGO_MANIFEST_DIR`) would otherwise rebuild half the tree between `cargo xtask ...` and a
/// plain `cargo build`.
fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_for_a_package) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Whether cargo sets `key` for the package it builds, runs or tests (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...).
fn set_by_cargo_for_a_package(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

fn run(step: &str, mut cmd: Command) -> Result<()> {
    eprintln!("\n==> {step}");
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("could not start {step}"))?;
    eprintln!(
        "<== {step}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

fn test(require_postgres: bool) -> Result<()> {
    let pg_url = env::var("OCPOLL_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty());
    let explicit = pg_url.is_some();
    let pg_url = pg_url.unwrap_or_else(|| DEFAULT_PG_URL.to_string());
    let postgres = match pg::probe(&pg_url) {
        Ok(()) => {
            eprintln!("PostgreSQL answers at {}: the PostgreSQL suites will run", pg::redact(&pg_url));
            Some(pg_url)
        }
        Err(why) if require_postgres => {
            bail!(
                "PostgreSQL is required by `cargo xtask ci` but cannot be reached at {} ({why}); start it or set OCPOLL_TEST_DATABASE_URL",
                pg::redact(&pg_url)
            )
        }
        Err(why) if explicit => {
            bail!("OCPOLL_TEST_DATABASE_URL is set but PostgreSQL cannot be reached at {} ({why})", pg::redact(&pg_url))
        }
        Err(why) => {
            eprintln!();
            eprintln!(
                "!!! PostgreSQL SUITES SKIPPED: nothing answers at {} ({why}). Set OCPOLL_TEST_DATABASE_URL or run `cargo xtask ci` to require them. !!!",
                pg::redact(&pg_url)
            );
            None
        }
    };

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    run("cargo clippy", clippy)?;

    let mut tests = cargo();
    tests.args(["test", "--workspace", "--all-targets"]);
    match &postgres {
        Some(url) => {
            tests.env("OCPOLL_TEST_DATABASE_URL", url).env("OCPOLL_REQUIRE_POSTGRES", "1");
        }
        None => {
            tests.env_remove("OCPOLL_TEST_DATABASE_URL").env_remove("OCPOLL_REQUIRE_POSTGRES");
        }
    }
    run(if postgres.is_some() { "cargo test (SQLite + PostgreSQL)" } else { "cargo test (SQLite only)" }, tests)?;

    let mut doc = cargo();
    doc.args(["test", "--workspace", "--doc"]);
    run("cargo test --doc", doc)?;

    if postgres.is_none() {
        eprintln!("\n!!! Reminder: the PostgreSQL suites were SKIPPED (PostgreSQL not reachable). !!!");
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("e2e") {
        let mut cmd = cargo();
        // `cargo xtask bench e2e -- --instances 1000` and `cargo xtask bench e2e --instances 1000` alike
        let rest = match args.get(1).map(String::as_str) {
            Some("--") => &args[2..],
            _ => &args[1..],
        };
        // the benchmark runs the release `ocpoll serve` as a child process: build it first (the benchmark would
        // build it too, but a failed build reads better here)
        let mut build = cargo();
        build.args(["build", "--release", "-p", "oc-bin", "--bin", "ocpoll"]);
        run("build the release ocpoll", build)?;
        cmd.args(["run", "--release", "-p", "oc-tests", "--bin", "bench-e2e", "--"]).args(rest);
        return run("end-to-end load benchmark", cmd);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let filters: Vec<&String> = args.iter().filter(|a| *a != "--quick").collect();
    let mut cmd = cargo();
    cmd.args(["bench", "--workspace", "--benches", "--"]);
    if quick {
        cmd.arg("--quick");
    }
    cmd.args(filters);
    run("criterion benchmarks", cmd)
}

fn soak(args: &[String]) -> Result<()> {
    let cases = args.first().map(String::as_str).unwrap_or("100000");
    let cases: u64 = cases.parse().with_context(|| format!("CASES must be a number, got {cases:?}"))?;
    let mut cmd = cargo();
    cmd.args(["test", "--release", "-p", "oc-poller", "--test", "it", "oracle::", "--", "--ignored", "--nocapture"])
        .env("OCPOLL_SOAK_CASES", cases.to_string());
    run(&format!("change-detection oracle soak ({cases} cases)"), cmd)
}

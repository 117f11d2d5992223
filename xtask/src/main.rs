//! `cargo xtask`: the project's automation (tests, CI, benchmarks, soak), in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask test`  — fmt check, clippy (deny warnings), each library crate with features built alone in
//!   its feature combinations ([`features`]), every test; the PostgreSQL suites too when PostgreSQL answers
//!   (`OCPOLL_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`), the browser suite too when
//!   Chromium and ChromeDriver are installed (`$CHROMIUM`, `$CHROMEDRIVER`, else on the `PATH`); for each suite
//!   that cannot run, one loud line says it was skipped.
//! - `cargo xtask ci`    — the same with the PostgreSQL suites and the browser suite mandatory.
//! - `cargo xtask bench [--quick] [FILTER]` — the criterion benchmarks; `cargo xtask bench e2e -- ARGS` — the
//!   end-to-end load benchmark (builds the release `ocpoll`, then runs `oc-tests`' `bench-e2e` binary).
//! - `cargo xtask soak [CASES]` — the change-detection oracle, long run.
//! - `cargo xtask schemathesis [--max-examples N]` — the API fuzzed against its own OpenAPI document
//!   ([`schemathesis`]; needs Python 3 with venv and pip, and PyPI); the last step of `ci`, never of `test`.
//! - `cargo xtask fuzz [--time SECS] [TARGET...]` — the cargo-fuzz targets of `fuzz/`, each for a bounded time
//!   (default 20 s); `ci` ends with a short run of every target.

mod examples;
mod features;
mod fuzz;
mod pg;
mod schemathesis;
mod tidy;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(false),
        Some("ci") => test(true).and_then(|()| schemathesis::task(&[])),
        Some("schemathesis") => schemathesis::task(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("fuzz") => fuzz::parse_args(&args[1..]).and_then(|plan| fuzz::run_plan(&workspace_root(), &plan)),
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
  test                fmt check, clippy -D warnings, the library crates alone in each feature combination, all
                      tests (PostgreSQL suites when PostgreSQL answers, the browser suite when chromium and
                      chromedriver are installed)
  ci                  what `test` does, with the PostgreSQL suites and the browser suite mandatory, then
                      `schemathesis`, then every fuzz target for 20 s
  schemathesis [--max-examples N] [--hold] [--keep] [-- ARGS]
                      the API fuzzed against its OpenAPI document (schemathesis from PyPI in a venv under
                      target/; --hold keeps the seeded stack running instead; ARGS go to `schemathesis run`)
  bench [--quick] [FILTER]
                      criterion benchmarks (--quick: criterion's quick mode)
  bench e2e [-- ARGS] the end-to-end load benchmark (ocpoll against the simulator), e.g.
                      `cargo xtask bench e2e -- --instances 10000` (`-- --help` lists the flags)
  soak [CASES]        the change-detection oracle for CASES cases (default 100000)
  fuzz [--time SECS] [TARGET...]
                      the cargo-fuzz targets of fuzz/ (template, ceql, hub_url, instance_body, notification),
                      each for SECS seconds (default 20); installs cargo-fuzz when absent
  tidy                architecture checks (also run as tests)";

/// The workspace's root directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

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

/// Where Chromium and ChromeDriver are, and that ChromeDriver runs; the same search as the tests'
/// (`oc_tests::browser::Browser::available`).
fn browser_probe() -> std::result::Result<(PathBuf, PathBuf), String> {
    let chromium = locate("CHROMIUM", &["chromium", "chromium-browser"])?;
    let chromedriver = locate("CHROMEDRIVER", &["chromedriver"])?;
    match Command::new(&chromedriver).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok((chromium, chromedriver)),
        Ok(s) => Err(format!("`{} --version` failed ({s})", chromedriver.display())),
        Err(e) => Err(format!("{} does not run: {e}", chromedriver.display())),
    }
}

/// `$env` when set, else the first of `names` on the `PATH`.
fn locate(env: &str, names: &[&str]) -> std::result::Result<PathBuf, String> {
    if let Some(v) = env::var_os(env).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(format!("${env} is {} which is not an executable file", p.display()))
        };
    }
    let path = env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| executable(p))
        .ok_or_else(|| format!("{} is not on the PATH", names.join(" or ")))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `ci`: the PostgreSQL suites and the browser suite must run.
fn test(ci: bool) -> Result<()> {
    let require_postgres = ci;
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

    let browser = match browser_probe() {
        Ok((chromium, chromedriver)) => {
            eprintln!(
                "Chromium ({}) and ChromeDriver ({}) found: the browser suite will run",
                chromium.display(),
                chromedriver.display()
            );
            Some((chromium, chromedriver))
        }
        Err(why) if ci => bail!(
            "a browser is required by `cargo xtask ci` but {why}; install it (`apt-get install -y chromium chromium-driver`) or set CHROMIUM and CHROMEDRIVER"
        ),
        Err(why) => {
            eprintln!();
            eprintln!(
                "!!! BROWSER SUITE SKIPPED: {why}. Install chromium and chromium-driver (or set CHROMIUM and CHROMEDRIVER), or run `cargo xtask ci` to require it. !!!"
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
    // the workspace build turns every feature on: each library crate with features is built alone too
    features::check_builds()?;

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
    match &browser {
        // the tests find the same programs, and a browser test that cannot start one fails instead of skipping
        Some((chromium, chromedriver)) => {
            tests.env("CHROMIUM", chromium).env("CHROMEDRIVER", chromedriver).env("OCPOLL_REQUIRE_BROWSER", "1");
        }
        None => {
            tests.env_remove("OCPOLL_REQUIRE_BROWSER");
        }
    }
    let step = match (postgres.is_some(), browser.is_some()) {
        (true, true) => "cargo test (SQLite + PostgreSQL, browser)",
        (true, false) => "cargo test (SQLite + PostgreSQL, no browser)",
        (false, true) => "cargo test (SQLite only, browser)",
        (false, false) => "cargo test (SQLite only, no browser)",
    };
    run(step, tests)?;

    let mut doc = cargo();
    doc.args(["test", "--workspace", "--doc"]);
    run("cargo test --doc", doc)?;

    examples::run_examples()?;
    // CI builds each library crate from its package too (a few minutes); `test` checks the packages' contents
    examples::package(ci)?;

    if ci {
        // the fuzz package is a workspace of its own: the fmt check above does not see it
        let mut fmt = cargo();
        fmt.args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]).current_dir(workspace_root());
        run("cargo fmt --check (fuzz/)", fmt)?;
        let plan = fuzz::Plan { secs: fuzz::CI_SECS, targets: fuzz::TARGETS.iter().map(|t| t.to_string()).collect() };
        fuzz::run_plan(&workspace_root(), &plan)?;
    }

    if postgres.is_none() {
        eprintln!("\n!!! Reminder: the PostgreSQL suites were SKIPPED (PostgreSQL not reachable). !!!");
    }
    if browser.is_none() {
        eprintln!("\n!!! Reminder: the browser suite was SKIPPED (no chromium and chromedriver). !!!");
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

//! `cargo xtask fuzz [--time SECS] [TARGET...]`: the cargo-fuzz targets of `fuzz/`, each for a bounded time.
//!
//! cargo-fuzz passes nightly flags to rustc (`-Zsanitizer`, `-Cpasses=sancov-module`); the stable toolchain
//! takes them with `RUSTC_BOOTSTRAP=1`. The targets run without a sanitizer (`-s none`): every crate fuzzed is
//! safe Rust (`unsafe_code = "forbid"`), so the sanitizer would only slow the search. Each target runs from a
//! working corpus (under the target directory, kept between runs) plus the committed seeds of
//! `fuzz/corpus/<target>/`, which libFuzzer reads but never writes. A hang (`-timeout`), a memory blow-up
//! (`-rss_limit_mb`) or a failed assertion fails the task, naming the input libFuzzer kept.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, run};

/// Every target of `fuzz/Cargo.toml`, in the order they run.
pub(crate) const TARGETS: &[&str] = &["template", "ceql", "hub_url", "instance_body", "notification"];

/// Seconds per target when `--time` is not given.
pub(crate) const DEFAULT_SECS: u64 = 20;

/// Seconds per target in `cargo xtask ci` (5 targets: under two minutes of fuzzing).
pub(crate) const CI_SECS: u64 = 20;

/// Memory one target may use (libFuzzer's `-rss_limit_mb`; also its `-malloc_limit_mb`).
const RSS_LIMIT_MB: u64 = 2048;

/// Seconds one input may take (libFuzzer's `-timeout`).
const INPUT_TIMEOUT_SECS: u64 = 10;

/// What to run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) secs: u64,
    pub(crate) targets: Vec<String>,
}

/// Reads `[--time SECS] [TARGET...]`.
pub(crate) fn parse_args(args: &[String]) -> Result<Plan> {
    let mut secs = DEFAULT_SECS;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--time" || a.starts_with("--time=") {
            let v = match a.strip_prefix("--time=") {
                Some(v) => v.to_string(),
                None => it.next().context("--time needs a number of seconds")?.clone(),
            };
            secs = v.parse().with_context(|| format!("--time must be a number of seconds, got {v:?}"))?;
            if secs == 0 {
                bail!("--time must be at least 1 second");
            }
        } else if a.starts_with('-') {
            bail!("unknown option {a:?} (usage: cargo xtask fuzz [--time SECS] [TARGET...])");
        } else if TARGETS.contains(&a.as_str()) {
            if !targets.contains(a) {
                targets.push(a.clone());
            }
        } else {
            bail!("unknown fuzz target {a:?}; the targets are {}", TARGETS.join(", "));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok(Plan { secs, targets })
}

/// What one run did, from libFuzzer's final statistics.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Stats {
    pub(crate) execs: Option<u64>,
    pub(crate) execs_per_sec: Option<u64>,
    pub(crate) new_units: Option<u64>,
    pub(crate) peak_rss_mb: Option<u64>,
    pub(crate) artifact: Option<String>,
}

/// Reads `stat::name: value` lines (`-print_final_stats=1`) and the artifact libFuzzer wrote.
pub(crate) fn parse_stats(log: &str) -> Stats {
    let mut s = Stats::default();
    for line in log.lines() {
        if let Some((name, value)) = line.strip_prefix("stat::").and_then(|l| l.split_once(':')) {
            let v = value.trim().parse().ok();
            match name {
                "number_of_executed_units" => s.execs = v,
                "average_exec_per_sec" => s.execs_per_sec = v,
                "new_units_added" => s.new_units = v,
                "peak_rss_mb" => s.peak_rss_mb = v,
                _ => {}
            }
        }
        if let Some(i) = line.find("Test unit written to ") {
            s.artifact = Some(line[i + "Test unit written to ".len()..].trim().to_string());
        }
    }
    s
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

/// `cargo fuzz` with the stable toolchain's permission for nightly flags, in `fuzz/`.
fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut cmd = cargo();
    cmd.arg("fuzz").current_dir(fuzz_dir).env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Installs cargo-fuzz when `cargo fuzz` is not there.
fn ensure_cargo_fuzz(fuzz_dir: &Path) -> Result<()> {
    let found = cargo_fuzz(fuzz_dir)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Ok(());
    }
    eprintln!("cargo-fuzz is not installed: installing it (`cargo install cargo-fuzz --locked`)");
    let mut install = cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    run("cargo install cargo-fuzz", install)
        .context("cargo-fuzz is needed by `cargo xtask fuzz`; install it with `cargo install cargo-fuzz --locked`")
}

/// Builds every target, then runs each of `plan.targets` for `plan.secs` seconds.
pub(crate) fn run_plan(root: &Path, plan: &Plan) -> Result<()> {
    let fuzz_dir = root.join("fuzz");
    ensure_cargo_fuzz(&fuzz_dir)?;
    let mut build = cargo_fuzz(&fuzz_dir);
    build.args(["build", "-s", "none"]);
    run("cargo fuzz build (stable, RUSTC_BOOTSTRAP=1, no sanitizer)", build)?;

    let work_root = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_relative() { root.join(d) } else { d })
        .unwrap_or_else(|| fuzz_dir.join("target"))
        .join("fuzz-corpus");
    eprintln!(
        "\nfuzzing {} target(s) for {} s each (-rss_limit_mb={RSS_LIMIT_MB}, -timeout={INPUT_TIMEOUT_SECS}); working corpora in {}",
        plan.targets.len(),
        plan.secs,
        work_root.display()
    );
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for target in &plan.targets {
        let (ok, elapsed, stats) = run_target(&fuzz_dir, &work_root, target, plan.secs)?;
        if !ok {
            failed.push((target.clone(), stats.artifact.clone()));
        }
        rows.push((target.clone(), ok, elapsed, stats));
    }

    eprintln!("\nfuzz summary ({} s per target):", plan.secs);
    eprintln!(
        "  {:<14} {:>7} {:>8} {:>12} {:>9} {:>6} {:>7}",
        "target", "result", "time", "execs", "execs/s", "new", "rss MB"
    );
    for (target, ok, elapsed, s) in &rows {
        eprintln!(
            "  {:<14} {:>7} {:>7.1}s {:>12} {:>9} {:>6} {:>7}",
            target,
            if *ok { "ok" } else { "FAILED" },
            elapsed.as_secs_f64(),
            show(s.execs),
            show(s.execs_per_sec),
            show(s.new_units),
            show(s.peak_rss_mb)
        );
    }
    if failed.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    for (target, artifact) in &failed {
        match artifact {
            Some(a) => msg.push_str(&format!(
                "\n  {target}: input kept in {a}\n    reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none {target} {a}\n    then fix the bug, add a unit test in the crate, and commit the input to fuzz/corpus/{target}/"
            )),
            None => msg.push_str(&format!("\n  {target}: failed without writing an input (see its output above)")),
        }
    }
    bail!("fuzzing found {} failing target(s):{msg}", failed.len())
}

/// libFuzzer's lines about each new or reduced unit (`#1234\tNEW    cov: ...`) and the dictionary of tokens it
/// recommends at the end: too many to show, kept in the log.
pub(crate) fn is_noise(line: &str) -> bool {
    (line.starts_with('#') && matches!(line.split_whitespace().nth(1), Some("NEW" | "REDUCE" | "pulse")))
        || line.contains("Recommended dictionary")
        || (line.starts_with('"') && line.contains("# Uses:"))
}

/// One target for `secs` seconds; returns whether it passed, how long it ran and its statistics.
fn run_target(fuzz_dir: &Path, work_root: &Path, target: &str, secs: u64) -> Result<(bool, Duration, Stats)> {
    let work = work_root.join(target);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let seeds = fuzz_dir.join("corpus").join(target);
    eprintln!("\n==> fuzz {target} for {secs} s (seeds: fuzz/corpus/{target}/)");
    let mut cmd = cargo_fuzz(fuzz_dir);
    cmd.args(["run", "-s", "none", target])
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg("-print_final_stats=1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("could not start cargo fuzz run {target}"))?;
    // libFuzzer writes to stderr; keep all of it, show its status lines (not every new unit).
    let stdout = child.stdout.take();
    let out_thread = std::thread::spawn(move || {
        stdout.map(|s| BufReader::new(s).lines().map_while(Result::ok).collect::<Vec<_>>()).unwrap_or_default()
    });
    let stderr = child.stderr.take().context("no stderr")?;
    let mut log = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        // new units and the closing dictionary of recommended tokens are noise here; everything is in `log`
        let quiet = is_noise(&line);
        if !quiet {
            eprintln!("    {line}");
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().with_context(|| format!("waiting for cargo fuzz run {target}"))?;
    for line in out_thread.join().unwrap_or_default() {
        eprintln!("    {line}");
    }
    let elapsed = started.elapsed();
    let stats = parse_stats(&log);
    eprintln!(
        "<== fuzz {target}: {} in {:.1}s, {} execs ({} execs/s), {} new units",
        if status.success() { "ok" } else { "FAILED" },
        elapsed.as_secs_f64(),
        show(stats.execs),
        show(stats.execs_per_sec),
        show(stats.new_units)
    );
    Ok((status.success(), elapsed, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_time_and_targets() {
        let all: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
        assert_eq!(parse_args(&[]).unwrap(), Plan { secs: DEFAULT_SECS, targets: all.clone() });
        assert_eq!(
            parse_args(&args(&["--time", "300", "ceql", "hub_url", "ceql"])).unwrap(),
            Plan { secs: 300, targets: args(&["ceql", "hub_url"]) }
        );
        assert_eq!(parse_args(&args(&["--time=5"])).unwrap(), Plan { secs: 5, targets: all });
        assert!(parse_args(&args(&["--time"])).is_err());
        assert!(parse_args(&args(&["--time", "0"])).is_err());
        assert!(parse_args(&args(&["nope"])).unwrap_err().to_string().contains("template, ceql"));
        assert!(parse_args(&args(&["--fast"])).is_err());
    }

    #[test]
    fn the_targets_are_the_fuzz_packages_bins() {
        let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml")).unwrap();
        let doc: toml::Value = toml::from_str(&manifest).unwrap();
        let bins: Vec<&str> = doc["bin"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
        assert_eq!(bins, TARGETS);
        for t in TARGETS {
            let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(t);
            assert!(fs::read_dir(&seeds).is_ok_and(|d| d.count() > 0), "no seeds in {}", seeds.display());
        }
    }

    #[test]
    fn hides_new_units_only() {
        assert!(is_noise("#942069\tREDUCE cov: 1816 ft: 9152 corp: 1836/389Kb lim: 3429 exec/s: 20934 rss: 41Mb"));
        assert!(is_noise("#1024\tNEW    cov: 10 ft: 11 corp: 3/12b"));
        assert!(is_noise("#262144\tpulse  cov: 10 ft: 11 corp: 3/12b"));
        assert!(is_noise("\"instanceTags\" # Uses: 18"));
        assert!(!is_noise("#942069\tDONE   cov: 1816 ft: 9152 corp: 1836/389Kb exec/s: 20934 rss: 41Mb"));
        assert!(!is_noise("#2\tINITED cov: 10 ft: 11 corp: 3/12b"));
        assert!(!is_noise("thread '<unnamed>' panicked at fuzz_targets/ceql.rs:1:1:"));
    }

    #[test]
    fn reads_final_stats() {
        let log = "#1234\tDONE   cov: 10\nstat::number_of_executed_units: 489211\nstat::average_exec_per_sec:     24460\nstat::new_units_added:          312\nstat::slowest_unit_time_sec:    0\nstat::peak_rss_mb:              41\n";
        let s = parse_stats(log);
        assert_eq!(
            s,
            Stats {
                execs: Some(489211),
                execs_per_sec: Some(24460),
                new_units: Some(312),
                peak_rss_mb: Some(41),
                artifact: None
            }
        );
        let crash = "==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='/w/fuzz/artifacts/ceql/'; Test unit written to /w/fuzz/artifacts/ceql/crash-ab12\n";
        assert_eq!(parse_stats(crash).artifact.as_deref(), Some("/w/fuzz/artifacts/ceql/crash-ab12"));
    }
}

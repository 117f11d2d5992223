//! The benchmark's figures as a row of the table in the end-to-end section of `docs/benchmarks.md` (the row of the
//! same instance count is replaced), with the machine and the command that produced them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::Utc;
use oc_sagesim::workload::Latency;

/// Where the table of figures goes in the report.
const BEGIN: &str = "<!-- bench-e2e:begin -->";
const END: &str = "<!-- bench-e2e:end -->";
/// Where the side-by-side table of adaptive polling goes.
const ADAPTIVE_BEGIN: &str = "<!-- bench-adaptive:begin -->";
const ADAPTIVE_END: &str = "<!-- bench-adaptive:end -->";

/// The figures of one run.
#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) instances: usize,
    pub(crate) businesses: usize,
    pub(crate) interval: u32,
    pub(crate) changes_per_second: f64,
    pub(crate) polls_per_second: f64,
    pub(crate) sage_requests_per_second: f64,
    pub(crate) events_found_per_second: f64,
    pub(crate) events_delivered_per_second: f64,
    pub(crate) cpu_cores: f64,
    pub(crate) own_cpu_cores: f64,
    pub(crate) peak_rss: u64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) pairs: usize,
    pub(crate) lost: usize,
    pub(crate) poll_mean_ms: f64,
    /// Adaptive polling was on.
    pub(crate) adaptive: bool,
    /// Businesses with most of the changes (0: even activity).
    pub(crate) busy_businesses: usize,
    /// Change-to-delivery latency of the busy businesses' changes.
    pub(crate) busy: Latency,
    /// Change-to-delivery latency of the other businesses' changes.
    pub(crate) quiet: Latency,
    /// Sage requests per minute of the busiest business over the window.
    pub(crate) requests_per_business_minute_max: f64,
    /// Sage requests per minute per business, over every business.
    pub(crate) requests_per_business_minute_mean: f64,
    /// The most requests one business got in any 60 s of the window.
    pub(crate) busiest_business_minute: usize,
    /// Requests per minute a business may get from ocpoll (the limit times the share).
    pub(crate) share_per_minute: f64,
    /// Adaptive polls started before their interval, in the window.
    pub(crate) early_polls: f64,
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: usize) -> String {
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

/// The command as a user types it: `cargo xtask bench e2e -- ARGS`.
pub(crate) fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
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

/// The workspace's `docs/benchmarks.md`, when it exists.
pub(crate) fn default_report() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks.md");
    path.exists().then_some(path)
}

pub(crate) fn machine() -> String {
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

pub(crate) fn table_header() -> &'static str {
    "| instances | businesses | interval | changes/s | polls/s | Sage requests/s | events/s delivered | CPU of ocpoll (cores) | peak RSS | latency p50 / p99 / max | lost | load average | date | command |"
}

pub(crate) fn table_separator() -> &'static str {
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|---|"
}

pub(crate) fn table_row(f: &Figures, command: &str) -> String {
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
pub(crate) fn update_report(path: &Path, row: &str, machine: &str) -> Result<()> {
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

/// The runs of one invocation side by side (adaptive off and on), one row each, with the command.
pub(crate) fn adaptive_table(runs: &[Figures], command: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| adaptive | instances | businesses (busy) | interval | changes/s | busy p50 / p99 | quiet p50 / p99 | all p99 / max | Sage requests/business/min: max, mean | most in any 60 s (share) | early polls | CPU (cores) | peak RSS | lost |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---|---|---|---|---|---:|---:|---:|---:|");
    for f in runs {
        let _ = writeln!(
            t,
            "| {} | {} | {} ({}) | {} s | {} | {:.1} / {:.1} s | {:.1} / {:.1} s | {:.1} / {:.1} s | {:.1}, {:.2} | {} ({:.0}) | {:.0} | {:.2} | {:.0} MiB | {} of {} |",
            if f.adaptive { "on" } else { "off" },
            thousands(f.instances),
            thousands(f.businesses),
            f.busy_businesses,
            f.interval,
            f.changes_per_second,
            f.busy.p50,
            f.busy.p99,
            f.quiet.p50,
            f.quiet.p99,
            f.p99,
            f.max,
            f.requests_per_business_minute_max,
            f.requests_per_business_minute_mean,
            f.busiest_business_minute,
            f.share_per_minute,
            f.early_polls,
            f.cpu_cores,
            mib(f.peak_rss),
            f.lost,
            thousands(f.pairs),
        );
    }
    let _ = write!(t, "\nCommand: `{command}` ({}).", Utc::now().format("%Y-%m-%d"));
    t
}

/// Replaces the adaptive table between its markers (appended at the end when missing).
pub(crate) fn update_adaptive_report(path: &Path, table: &str, machine: &str) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let block = format!(
        "{ADAPTIVE_BEGIN}\nMachine of the last run: {machine}. Written by the benchmark (`--adaptive both`); replaced when it runs again.\n\n{table}\n{ADAPTIVE_END}"
    );
    let out = match (text.find(ADAPTIVE_BEGIN), text.find(ADAPTIVE_END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &text[..b], &text[e + ADAPTIVE_END.len()..]),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

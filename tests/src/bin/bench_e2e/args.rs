//! The benchmark's flags, read by hand (the product's CLI parser stays in `oc-bin`): `--flag VALUE` or
//! `--flag=VALUE`, switches without a value, `--help`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use oc_bin::demo::parse_duration;

/// Flags of the benchmark.
#[derive(Debug, Clone)]
pub(crate) struct BenchArgs {
    /// Instances to create, each polling customers.
    pub(crate) instances: usize,
    /// Businesses in the simulator; instances are spread over them (default: one business per instance).
    pub(crate) businesses: Option<usize>,
    /// The poll interval of every instance, in seconds.
    pub(crate) interval_seconds: u32,
    /// Changes per second made to customers during the measured window, spread over the businesses.
    pub(crate) changes_per_second: f64,
    /// The measured window: how long changes are made.
    pub(crate) duration: Duration,
    /// The instances are created over at least this long.
    pub(crate) ramp: Duration,
    /// Wait after the last instance is created, before measuring (default: one interval and 15 s).
    pub(crate) warmup: Option<Duration>,
    /// Instances created at once.
    pub(crate) create_concurrency: usize,
    /// Extra flags of `ocpoll serve`.
    pub(crate) serve_args: Vec<String>,
    /// Seed of the simulator's data and of the changes.
    pub(crate) seed: u64,
    /// The report to update (default: the workspace's `docs/benchmarks.md` when it exists).
    pub(crate) report: Option<PathBuf>,
    /// Print the figures only; leave the report alone.
    pub(crate) no_report: bool,
    /// Keep the temporary directory (database, master key, the service's log).
    pub(crate) keep: bool,
    /// Businesses that get `busy_share` of the changes (the others share the rest): uneven activity.
    pub(crate) busy_businesses: usize,
    /// The share of the changes that goes to the busy businesses.
    pub(crate) busy_share: f64,
    /// Adaptive polling of the service: off, on, or both in turn (the same run, side by side).
    pub(crate) adaptive: Adaptive,
    /// `postgres://…`: the service on PostgreSQL (a fresh schema of that database), else SQLite.
    pub(crate) database_url: Option<String>,
    /// `ocpoll serve` processes sharing the database (more than one needs PostgreSQL).
    pub(crate) nodes: usize,
}

/// `--adaptive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adaptive {
    Off,
    On,
    Both,
}

impl Adaptive {
    /// The modes to run, in order: `false` off, `true` on.
    pub(crate) fn modes(self) -> &'static [bool] {
        match self {
            Adaptive::Off => &[false],
            Adaptive::On => &[true],
            Adaptive::Both => &[false, true],
        }
    }
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            instances: 1000,
            businesses: None,
            interval_seconds: 60,
            changes_per_second: 10.0,
            duration: Duration::from_secs(180),
            ramp: Duration::from_secs(60),
            warmup: None,
            create_concurrency: 8,
            serve_args: Vec::new(),
            seed: 1,
            report: None,
            no_report: false,
            keep: false,
            busy_businesses: 0,
            busy_share: 0.8,
            adaptive: Adaptive::Off,
            database_url: None,
            nodes: 1,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Run with these flags.
    Run(BenchArgs),
    /// Print [`USAGE`].
    Help,
}

pub(crate) const USAGE: &str = "\
The end-to-end load benchmark: N instances polling the simulator through a child `ocpoll serve`

Usage: cargo xtask bench e2e -- [OPTIONS]
       (cargo run --release -p oc-tests --bin bench-e2e -- [OPTIONS])

Options:
      --instances <N>             Instances to create, each polling customers [default: 1000]
      --businesses <N>            Businesses in the simulator; instances are spread over them (default: one
                                  business per instance)
      --interval-seconds <S>      The poll interval of every instance, in seconds [default: 60]
      --changes-per-second <F>    Changes per second made to customers during the measured window, spread over
                                  the businesses [default: 10]
      --duration <D>              The measured window: how long changes are made (e.g. `3m`) [default: 3m]
      --ramp <D>                  The instances are created over at least this long (their polls then spread
                                  over the interval) [default: 60s]
      --warmup <D>                Wait after the last instance is created, before measuring (default: one
                                  interval and 15 s)
      --create-concurrency <N>    Instances created at once [default: 8]
      --serve-arg <ARG>           An extra flag of `ocpoll serve` (repeatable), e.g.
                                  `--serve-arg=--max-concurrent-polls=64`
      --seed <N>                  Seed of the simulator's data and of the changes [default: 1]
      --report <PATH>             The report to update (default: the workspace's `docs/benchmarks.md` when it
                                  exists)
      --no-report                 Print the figures only; leave the report alone
      --keep                      Keep the temporary directory (database, master key, the service's log)
      --busy-businesses <N>       Businesses that get --busy-share of the changes, the others the rest (uneven
                                  activity; figures then by class; the workload runs through the warm-up too,
                                  unmeasured, so that the busy businesses are busy when the window starts)
                                  [default: 0, even]
      --busy-share <F>            The share of the changes made in the busy businesses [default: 0.8]
      --adaptive <MODE>           Adaptive polling of the service: off, on, or both (off then on, in one run,
                                  side by side; the table goes to the adaptive section of the report)
                                  [default: off]
      --database-url <URL>        Run the service on this PostgreSQL database (`postgres://…`), in a fresh
                                  schema dropped at the end (kept with --keep); the report is left alone
                                  (its table is of SQLite runs) [default: SQLite in a temporary directory]
      --nodes <N>                 `ocpoll serve` processes sharing the database (more than one needs
                                  --database-url); instances are created through each in turn, and CPU, RSS
                                  and counters are summed over them [default: 1]
  -h, --help                      Print help

Durations: `90`, `90s`, `5m`, `1h`, `1.5m` (plain numbers are seconds).";

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T> {
    value.trim().parse().ok().with_context(|| format!("{flag}: {value:?} is not a valid number"))
}

fn duration(flag: &str, value: &str) -> Result<Duration> {
    parse_duration(value).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// Reads the flags (without the program name).
pub(crate) fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Parsed> {
    let mut out = BenchArgs::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--no-report" | "--keep" => {
                if inline.is_some() {
                    bail!("{flag} takes no value");
                }
                if flag == "--keep" {
                    out.keep = true;
                } else {
                    out.no_report = true;
                }
                continue;
            }
            _ => {}
        }
        // every other flag takes a value, which may start with a hyphen (`--serve-arg --x=1`)
        let mut value = || -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().with_context(|| format!("{flag} needs a value\n\n{USAGE}")),
            }
        };
        match flag.as_str() {
            "--instances" => out.instances = number(&flag, &value()?)?,
            "--businesses" => out.businesses = Some(number(&flag, &value()?)?),
            "--interval-seconds" => out.interval_seconds = number(&flag, &value()?)?,
            "--changes-per-second" => out.changes_per_second = number(&flag, &value()?)?,
            "--duration" => out.duration = duration(&flag, &value()?)?,
            "--ramp" => out.ramp = duration(&flag, &value()?)?,
            "--warmup" => out.warmup = Some(duration(&flag, &value()?)?),
            "--create-concurrency" => out.create_concurrency = number(&flag, &value()?)?,
            "--serve-arg" => out.serve_args.push(value()?),
            "--seed" => out.seed = number(&flag, &value()?)?,
            "--report" => out.report = Some(PathBuf::from(value()?)),
            "--busy-businesses" => out.busy_businesses = number(&flag, &value()?)?,
            "--database-url" => {
                let url = value()?;
                if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                    bail!("--database-url: expected a postgres:// URL (SQLite is the default), got {url:?}");
                }
                out.database_url = Some(url);
            }
            "--nodes" => out.nodes = number(&flag, &value()?)?,
            "--busy-share" => {
                out.busy_share = number(&flag, &value()?)?;
                if !(0.0..=1.0).contains(&out.busy_share) {
                    bail!("--busy-share must be between 0 and 1, got {}", out.busy_share);
                }
            }
            "--adaptive" => {
                out.adaptive = match value()?.as_str() {
                    "off" => Adaptive::Off,
                    "on" => Adaptive::On,
                    "both" => Adaptive::Both,
                    other => bail!("--adaptive: expected off, on or both, got {other:?}"),
                }
            }
            _ => bail!("unexpected argument {arg:?}\n\n{USAGE}"),
        }
    }
    Ok(Parsed::Run(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<BenchArgs> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(a) => Ok(a),
            Parsed::Help => bail!("help"),
        }
    }

    #[test]
    fn flags_with_values_switches_and_help() {
        let a = run(&[
            "--instances",
            "20",
            "--duration=30s",
            "--serve-arg",
            "--max-concurrent-polls=64",
            "--serve-arg=--log-format=json",
            "--warmup",
            "5",
            "--no-report",
        ])
        .unwrap();
        assert_eq!((a.instances, a.duration, a.warmup), (20, Duration::from_secs(30), Some(Duration::from_secs(5))));
        assert_eq!(a.serve_args, ["--max-concurrent-polls=64", "--log-format=json"]);
        assert!(a.no_report && !a.keep);
        assert_eq!(a.interval_seconds, 60);
        assert!(matches!(parse(["--seed".to_string(), "2".into(), "--help".into()]).unwrap(), Parsed::Help));
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(run(&["--instances"]).unwrap_err().to_string().contains("needs a value"));
        assert!(run(&["--instances", "many"]).unwrap_err().to_string().contains("not a valid number"));
        assert!(run(&["--duration", "soon"]).unwrap_err().to_string().contains("--duration"));
        assert!(run(&["--keep=yes"]).unwrap_err().to_string().contains("takes no value"));
        assert!(run(&["--frobnicate"]).unwrap_err().to_string().contains("unexpected argument"));
        assert!(run(&["--adaptive", "sometimes"]).unwrap_err().to_string().contains("off, on or both"));
        assert!(run(&["--busy-share", "2"]).unwrap_err().to_string().contains("between 0 and 1"));
        assert!(run(&["--database-url", "sqlite:///x.db"]).unwrap_err().to_string().contains("postgres://"));
        let a = run(&["--database-url=postgres://127.0.0.1/test", "--nodes", "2"]).unwrap();
        assert_eq!((a.database_url.as_deref(), a.nodes), (Some("postgres://127.0.0.1/test"), 2));
        let a = run(&["--adaptive=both", "--busy-businesses", "5"]).unwrap();
        assert_eq!((a.adaptive.modes(), a.busy_businesses), (&[false, true][..], 5));
    }
}

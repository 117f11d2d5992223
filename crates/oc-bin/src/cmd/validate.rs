//! `ocpoll validate FILE`: checks an instance request body offline and prints `ok` with a summary per polled
//! resource, or every problem with its JSON path.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use oc_model::config::Configuration;
use oc_model::poller::PollerConfig;
use oc_model::validate::{Validated, ValidationOptions, validate_instance_request_with};
use oc_model::{Problem, Problems};

/// Arguments of `ocpoll validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The instance body (JSON) to check; `-` reads standard input.
    file: PathBuf,
}

/// Element keys this build serves.
pub(crate) const KNOWN_ELEMENTS: &[&str] = &["sageone"];

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
        s
    } else {
        std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?
    };
    let (report, ok) = check(&text);
    print!("{report}");
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// The report for a body and whether it is valid.
pub(crate) fn check(text: &str) -> (String, bool) {
    let body: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (format!("error: not valid JSON: {e}\n"), false),
    };
    match validate_instance_request_with(
        &body,
        ValidationOptions { require_code: true, known_elements: KNOWN_ELEMENTS },
    ) {
        Ok(v) => (ok_report(&v), true),
        Err(problems) => (problem_report(&problems), false),
    }
}

fn ok_report(v: &Validated) -> String {
    let mut out = String::from("ok\n");
    let config = v.request.configuration();
    for (resource, pc) in v.pollers.iter() {
        out.push_str(&summary(resource, pc, config));
        out.push('\n');
    }
    for w in &v.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

fn summary(resource: &str, pc: &PollerConfig, config: &Configuration) -> String {
    let every = config.refresh_interval().map(|d| humanize(d.as_millis() as u64)).unwrap_or_else(|_| "?".into());
    let mut s = format!("{resource}: every {every}, GET {}, id {}", pc.url, pc.id_field);
    if let Some(f) = pc.updated_field() {
        s.push_str(&format!(", updated {f}"));
    }
    if let Some(f) = pc.created_field() {
        s.push_str(&format!(", created {f}"));
    }
    if pc.poll_delay > 0.0 {
        s.push_str(&format!(", pollDelay {}s", pc.poll_delay));
    }
    s
}

fn humanize(ms: u64) -> String {
    match ms {
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{:.3}s", ms as f64 / 1000.0),
    }
}

fn problem_report(problems: &Problems) -> String {
    let mut out = format!("invalid: {} problem(s)\n", problems.0.len());
    for Problem { path, message } in problems.iter() {
        let path = if path.is_empty() { "(body)" } else { path };
        out.push_str(&format!("error: {path}: {message}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_report(text: &str, expected: &str, expected_ok: bool) {
        let (report, ok) = check(text);
        assert_eq!(report, expected);
        assert_eq!(ok, expected_ok);
    }

    #[test]
    fn seed_example_is_ok() {
        check_report(
            include_str!("../../../../tests/fixtures/seed-instance-body-example.json"),
            "ok\ncustomers: every 15m, GET /hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}' and attributes='created_at,updated_at, id id, updated updated_at, created created_at\n",
            true,
        );
    }

    #[test]
    fn problems_are_listed() {
        check_report(
            "[]",
            "invalid: 1 problem(s)\nerror: (body): the body must be a JSON object, found an array\n",
            false,
        );
        check_report("{", "error: not valid JSON: EOF while parsing an object at line 1 column 1\n", false);
    }

    #[test]
    fn intervals_read_naturally() {
        assert_eq!(humanize(900_000), "15m");
        assert_eq!(humanize(15_000), "15s");
        assert_eq!(humanize(1_500), "1.500s");
    }
}

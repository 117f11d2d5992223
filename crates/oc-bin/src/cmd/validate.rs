//! `ocpoll validate FILE`: checks an instance request body offline and prints `ok` with a summary per polled
//! resource, or every problem with its JSON path.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, Result};
use oc_bin::validation::{Checked, check_instance_body};
use oc_model::config::Configuration;
use oc_model::poller::PollerConfig;
use oc_model::ports::Providers;
use oc_model::{Problem, Problems};

/// Arguments of `ocpoll validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The instance body (JSON) to check; `-` reads standard input.
    file: PathBuf,
}

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
    let providers = match oc_sageone::SageProvider::new(oc_sageone::SageConfig::default()) {
        Ok(p) => Providers::new().with(Arc::new(p)),
        Err(e) => return (format!("error: {e}\n"), false),
    };
    match check_instance_body(&body, &providers, true, chrono::Utc::now()) {
        Ok(checked) => (ok_report(&checked), true),
        Err(problems) => (problem_report(&problems), false),
    }
}

fn ok_report(c: &Checked) -> String {
    let mut out = String::from("ok\n");
    let config = c.validated.request.configuration();
    for (resource, pc) in c.validated.pollers.iter() {
        out.push_str(&summary(resource, pc, config));
        out.push('\n');
    }
    for w in &c.warnings {
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
            "ok\ncustomers: every 15m, GET /hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}' and attributes='created_at,updated_at, id id, updated updated_at, created created_at\nwarning: configuration[\"event.poller.configuration\"].customers.url: where: the string starting at byte 56 is not closed: a closing `'` was added at the end of the clause\n",
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
    fn every_layer_reports_at_once() {
        let mut body: serde_json::Value =
            serde_json::from_str(include_str!("../../../../tests/fixtures/seed-instance-body-example.json")).unwrap();
        let c = &mut body["configuration"];
        c["event.poller.refresh_interval"] = "0".into();
        let p = &mut c["event.poller.configuration"]["customers"];
        p["url"] = "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Q}'".into();
        p["datesConfiguration"]["createdDateTimezone"] = "Mars/Olympus".into();
        let (report, ok) = check(&body.to_string());
        assert!(!ok);
        let lines: Vec<&str> = report.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(lines.len(), 3, "{report}");
        assert!(lines[0].contains("refresh_interval"), "{report}");
        assert!(report.contains("customers.datesConfiguration.createdDateTimezone"), "{report}");
        assert!(report.contains("customers.url"), "{report}");
    }

    #[test]
    fn intervals_read_naturally() {
        assert_eq!(humanize(900_000), "15m");
        assert_eq!(humanize(15_000), "15s");
        assert_eq!(humanize(1_500), "1.500s");
    }
}

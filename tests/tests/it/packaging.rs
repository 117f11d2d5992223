//! Issue 20, item 2: what `packaging/` ships holds against the binary. Every metric the Grafana dashboard and the
//! Prometheus alert rules name is a family `/metrics` exports (with the labels they select on), and the systemd
//! unit passes `systemd-analyze verify` with no warning (where the tool exists; skipped loudly where not).

use std::collections::BTreeSet;
use std::path::PathBuf;

use oc_store::testing;
use oc_tests::Server;
use oc_tests::eventually;
use oc_tests::receiver::Receiver;
use oc_tests::sim::Sage;

fn packaging(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `ocpoll_*` names in `text`, histogram series folded into their family.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("ocpoll_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let family = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        out.insert(family.to_string());
        i = end;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_rules_is_exported() {
    let sage = Sage::start(2).await.unwrap();
    let receiver = Receiver::start("packaging-key").await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(testing::sqlite().await, &args).await.unwrap();
    let org = server.organization("packaging").await;
    let api = server.api(&org);
    let body = sage.instance_body(&sage.code().await.unwrap(), &receiver.url("/hook"), "packaging-key", 1.0);
    let (_, _) = api.create_instance(&body).await;
    sage.create_customer("Packaged");
    eventually(std::time::Duration::from_secs(30), "a delivery", || async { !receiver.events().is_empty() }).await;

    let metrics = reqwest::get(format!("{}/metrics", server.root)).await.unwrap().text().await.unwrap();
    let exported: BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let dashboard = packaging("grafana/ocpoll-dashboard.json");
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    let rules = packaging("prometheus/ocpoll-alerts.yml");
    for (file, text) in [("the dashboard", &dashboard), ("the alert rules", &rules)] {
        let named = names(text);
        assert!(named.len() >= 8, "{file} names {named:?}");
        let missing: Vec<_> = named.difference(&exported).collect();
        assert!(missing.is_empty(), "{file} names metrics /metrics does not export: {missing:?}\n{metrics}");
    }
    // the labels the rules and panels select on are the exported ones
    for (family, label) in [
        ("ocpoll_polls_total", "outcome"),
        ("ocpoll_events_total", "type"),
        ("ocpoll_notifications_total", "outcome"),
        ("ocpoll_delivery_latency_seconds_bucket", "since"),
        ("ocpoll_outbox_depth", "kind"),
        ("ocpoll_sage_requests_total", "status"),
        ("ocpoll_http_requests_total", "status"),
    ] {
        let sample = format!("{family}{{");
        let line = metrics.lines().find(|l| l.starts_with(&sample)).unwrap_or_else(|| panic!("no {family} sample"));
        assert!(line.contains(&format!("{label}=\"")), "{family} has no label {label}: {line}");
    }
    server.stop().await;
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(tool) = which("systemd-analyze") else {
        eprintln!("!!! SKIPPED: systemd-analyze is not installed; the unit was not verified !!!");
        return;
    };
    let binary = oc_tests::process::ocpoll_binary();
    let unit = packaging("systemd/ocpoll.service").replace("/usr/local/bin/ocpoll", &binary.display().to_string());
    let dir = std::env::temp_dir().join(format!("ocpoll-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ocpoll.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new(tool).arg("verify").arg(&path).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {}\n{said}", out.status);
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()).ok_or(())
}

//! What the benchmark measures from outside the service: CPU ticks and memory of a process (`/proc`), and the
//! service's Prometheus counters (`/metrics`).

use std::collections::BTreeMap;

use anyhow::Result;

/// CPU ticks (utime + stime) of a process (`self` for this one).
pub(crate) fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// A `kB` line of `/proc/PID/status` (`VmHWM`, `VmRSS`), in bytes.
pub(crate) fn status_kb(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    Some(line[key.len()..].trim_start_matches(':').trim().trim_end_matches("kB").trim().parse::<u64>().ok()? * 1024)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The samples of a Prometheus text page: `(name, labels, value)`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scrape(Vec<(String, String, f64)>);

impl Scrape {
    pub(crate) fn parse(text: &str) -> Scrape {
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            out.push((name.to_string(), labels.to_string(), value));
        }
        Scrape(out)
    }

    /// The sum of a metric's series whose labels contain `filter`.
    pub(crate) fn sum(&self, name: &str, filter: &str) -> f64 {
        self.0.iter().filter(|(n, l, _)| n == name && l.contains(filter)).map(|(_, _, v)| v).sum()
    }

    /// Each series of a metric, by labels.
    pub(crate) fn series(&self, name: &str) -> BTreeMap<String, f64> {
        self.0.iter().filter(|(n, _, _)| n == name).map(|(_, l, v)| (l.clone(), *v)).collect()
    }
}

/// The service's `/metrics` under `root` (`http://ADDR`).
pub(crate) async fn scrape(http: &reqwest::Client, root: &str) -> Result<Scrape> {
    let text = http.get(format!("{root}/metrics")).send().await?.error_for_status()?.text().await?;
    Ok(Scrape::parse(&text))
}

/// How each series of a metric grew from `before` to `after`.
pub(crate) fn delta_series(before: &Scrape, after: &Scrape, name: &str) -> BTreeMap<String, f64> {
    let b = before.series(name);
    after.series(name).into_iter().map(|(k, v)| (k.clone(), v - b.get(&k).copied().unwrap_or_default())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text() {
        let s = Scrape::parse(
            "# HELP x y\n# TYPE ocpoll_polls_total counter\nocpoll_polls_total{outcome=\"ok\"} 12\nocpoll_polls_total{outcome=\"failed\"} 3\nocpoll_outbox_depth 2\n",
        );
        assert_eq!(s.sum("ocpoll_polls_total", ""), 15.0);
        assert_eq!(s.sum("ocpoll_polls_total", "ok"), 12.0);
        assert_eq!(s.sum("ocpoll_outbox_depth", ""), 2.0);
        let before = Scrape::parse("ocpoll_polls_total{outcome=\"ok\"} 10\n");
        assert_eq!(delta_series(&before, &s, "ocpoll_polls_total")["{outcome=\"ok\"}"], 2.0);
    }

    #[test]
    fn reads_this_process() {
        assert!(cpu_ticks("self").is_some());
        assert!(status_kb("self", "VmRSS").is_some_and(|b| b > 0));
    }
}

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

/// CPU ticks of every process of this machine named `comm` (e.g. the PostgreSQL server's `postgres`
/// processes; one that ended between two readings is missed, so read over a window of long-lived ones).
pub(crate) fn cpu_ticks_of(comm: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
            (name == comm).then(|| cpu_ticks(&pid)).flatten()
        })
        .sum()
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

    /// The samples of several services (nodes) as one page: sums add up, each node's series listed.
    pub(crate) fn merge(pages: impl IntoIterator<Item = Scrape>) -> Scrape {
        Scrape(pages.into_iter().flat_map(|p| p.0).collect())
    }

    /// The sum of a metric's series whose labels contain `filter`.
    pub(crate) fn sum(&self, name: &str, filter: &str) -> f64 {
        self.0.iter().filter(|(n, l, _)| n == name && l.contains(filter)).map(|(_, _, v)| v).sum()
    }

    /// Each series of a metric, by labels (summed over the nodes of a merged page).
    pub(crate) fn series(&self, name: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (_, l, v) in self.0.iter().filter(|(n, _, _)| n == name) {
            *out.entry(l.clone()).or_insert(0.0) += *v;
        }
        out
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
        let both = Scrape::merge([s.clone(), before]);
        assert_eq!(both.sum("ocpoll_polls_total", "ok"), 22.0, "two nodes' counters add up");
        assert_eq!(both.series("ocpoll_polls_total")["{outcome=\"ok\"}"], 22.0, "and so do their series");
    }

    #[test]
    fn reads_this_process() {
        assert!(cpu_ticks("self").is_some());
        assert!(status_kb("self", "VmRSS").is_some_and(|b| b > 0));
    }
}

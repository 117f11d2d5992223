//! Prometheus metrics: counters, gauges and histograms kept in memory and rendered in the text format.
//!
//! No metrics library: the families are few and fixed, and the text format is simple.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Bucket bounds (seconds) shared by every histogram.
const BOUNDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), f64>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The metric families and their help texts.
const HELP: &[(&str, &str, &str)] = &[
    ("ocpoll_http_requests_total", "counter", "HTTP requests served, by route and status"),
    ("ocpoll_http_request_duration_seconds", "histogram", "HTTP request latency"),
    ("ocpoll_polls_total", "counter", "polls by outcome (ok, inconsistent, failed, reauthorization_required)"),
    ("ocpoll_poll_duration_seconds", "histogram", "duration of one poll of one (instance, resource)"),
    ("ocpoll_records_fetched_total", "counter", "records read from the provider"),
    ("ocpoll_events_total", "counter", "events recorded, by type"),
    ("ocpoll_notifications_total", "counter", "delivery attempts, by outcome"),
    ("ocpoll_delivery_latency_seconds", "histogram", "time from an event's recording to its delivery"),
    ("ocpoll_outbox_depth", "gauge", "events and notifications waiting, by kind"),
    ("ocpoll_delivery_lag_seconds", "gauge", "age of the oldest pending notification"),
    ("ocpoll_sage_requests_total", "counter", "requests sent to Sage, by status"),
    ("ocpoll_rate_limit_waits_total", "counter", "times a request waited for the per-business rate limiter"),
    ("ocpoll_token_refreshes_total", "counter", "OAuth token refreshes, by outcome"),
];

/// The metrics of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Adds `by` to a counter.
    pub fn count(&self, name: &'static str, labels: Labels, by: f64) {
        self.with(|r| *r.counters.entry((name, labels)).or_default() += by);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels: Labels, value: f64) {
        self.with(|r| {
            r.gauges.insert((name, labels), value);
        });
    }

    /// Observes a duration.
    pub fn observe(&self, name: &'static str, labels: Labels, value: Duration) {
        let v = value.as_secs_f64();
        self.with(|r| {
            let h = r.histograms.entry((name, labels)).or_default();
            if h.buckets.is_empty() {
                h.buckets = vec![0; BOUNDS.len()];
            }
            for (i, b) in BOUNDS.iter().enumerate() {
                if v <= *b {
                    h.buckets[i] += 1;
                }
            }
            h.sum += v;
            h.count += 1;
        });
    }

    /// One HTTP request served.
    pub fn http_request(&self, route: &str, status: u16, latency: Duration) {
        self.count(
            "ocpoll_http_requests_total",
            vec![("route", route.to_string()), ("status", status.to_string())],
            1.0,
        );
        self.observe("ocpoll_http_request_duration_seconds", vec![], latency);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.with(|r| {
            let mut out = String::new();
            for (name, kind, help) in HELP {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for ((n, labels), v) in r.counters.iter().chain(r.gauges.iter()) {
                    if n == name {
                        let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                    }
                }
                for ((n, labels), h) in &r.histograms {
                    if n != name {
                        continue;
                    }
                    for (i, b) in BOUNDS.iter().enumerate() {
                        let _ =
                            writeln!(out, "{name}_bucket{} {}", fmt_labels(labels, Some(&b.to_string())), h.buckets[i]);
                    }
                    let _ = writeln!(out, "{name}_bucket{} {}", fmt_labels(labels, Some("+Inf")), h.count);
                    let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(labels, None), h.sum);
                    let _ = writeln!(out, "{name}_count{} {}", fmt_labels(labels, None), h.count);
                }
            }
            out
        })
    }
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.count("ocpoll_events_total", vec![("type", "CREATED".into())], 2.0);
        m.gauge("ocpoll_delivery_lag_seconds", vec![], 1.5);
        m.observe("ocpoll_poll_duration_seconds", vec![], Duration::from_millis(20));
        let text = m.render();
        assert!(
            text.contains("# TYPE ocpoll_events_total counter\nocpoll_events_total{type=\"CREATED\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("ocpoll_delivery_lag_seconds 1.5\n"));
        assert!(text.contains("ocpoll_poll_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("ocpoll_poll_duration_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("ocpoll_poll_duration_seconds_count 1\n"));
        m.count("ocpoll_http_requests_total", vec![("route", "a\"b".into())], 1.0);
        assert!(m.render().contains("route=\"a\\\"b\""));
    }
}

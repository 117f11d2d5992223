//! Prometheus metrics: counters, gauges and histograms kept in memory and rendered in the text format.
//!
//! No metrics library: the families are few and fixed, and the text format is simple. Figures counted elsewhere
//! (the Sage provider's own counters) are copied in at scrape time by [`ScrapeHook`]s.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Label names and values of one series.
pub type Labels = Vec<(&'static str, String)>;

/// Copies figures kept elsewhere into the registry; run by [`Metrics::render`] before it renders.
pub type ScrapeHook = Arc<dyn Fn(&Metrics) + Send + Sync>;

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
    (
        "ocpoll_polls_total",
        "counter",
        "polls by outcome (ok, inconsistent, failed, reauthorization_required; lease_lost or store_error when the \
         store refused to record the poll)",
    ),
    ("ocpoll_poll_duration_seconds", "histogram", "duration of one poll of one (instance, resource)"),
    ("ocpoll_records_fetched_total", "counter", "records read from the provider by polls"),
    (
        "ocpoll_events_total",
        "counter",
        "events found by polls and committed, by type; counts the duplicates the outbox ignored too \
         (ocpoll_duplicate_events_total)",
    ),
    (
        "ocpoll_duplicate_events_total",
        "counter",
        "events of a poll commit ignored because their id was recorded already (a poll repeated after a crash)",
    ),
    (
        "ocpoll_notifications_total",
        "counter",
        "delivery attempts recorded, by outcome (delivered, retry, failed) and answer class (2xx to 5xx, none)",
    ),
    ("ocpoll_notifications_built_total", "counter", "notifications built from outbox events"),
    (
        "ocpoll_delivery_latency_seconds",
        "histogram",
        "time to a notification's delivery since the oldest change it carries (since=change, the record's \
         date on the provider's clock) and since it was batched (since=batched)",
    ),
    ("ocpoll_outbox_depth", "gauge", "events and notifications waiting, by kind"),
    ("ocpoll_delivery_lag_seconds", "gauge", "age of the oldest pending notification"),
    (
        "ocpoll_sage_requests_total",
        "counter",
        "tries sent to Sage (each retry counts), by HTTP status, or transport_error when no answer came",
    ),
    (
        "ocpoll_rate_limit_waits_total",
        "counter",
        "waits for a rate limit: ocpoll's per-business limiter (by=limiter) or a 429 from Sage (by=sage)",
    ),
    ("ocpoll_rate_limit_wait_seconds_total", "counter", "time spent in those waits"),
    (
        "ocpoll_token_refreshes_total",
        "counter",
        "OAuth token refreshes sent to Sage, by outcome (ok, invalid_grant, invalid_client, failed)",
    ),
    (
        "ocpoll_sage_business_budget",
        "gauge",
        "requests per minute this node may send to one Sage business: its part of --sage-budget-share of \
         --sage-rate-limit (the share divided by the nodes listed at its last heartbeat)",
    ),
    ("ocpoll_polls_in_flight", "gauge", "polls running on this node"),
    ("ocpoll_poll_concurrency", "gauge", "polls that may run at once on this node"),
    ("ocpoll_polls_waiting_budget", "gauge", "claimed polls waiting, without a slot, for their Sage business's budget"),
    ("ocpoll_budget_accounts", "gauge", "Sage businesses with polls on this node"),
    (
        "ocpoll_budget_short_accounts",
        "gauge",
        "Sage businesses whose configured intervals need more requests than ocpoll's share of their budget \
         (--sage-budget-share): their polls are spread and come late, each with a warning",
    ),
    ("ocpoll_adaptive_pairs", "gauge", "(instance, resource) pairs polled adaptively on this node"),
    (
        "ocpoll_polls_early_total",
        "counter",
        "adaptive polls started before their interval, on budget the promised polls left over",
    ),
    ("ocpoll_nodes", "gauge", "nodes listed in the database at this node's last heartbeat, itself included"),
    (
        "ocpoll_node_takeovers_total",
        "counter",
        "nodes found silent for --node-timeout-seconds whose leases this node took over",
    ),
];

/// The metrics of one process.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
    hooks: Mutex<Vec<ScrapeHook>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hooks = self.hooks.lock().map_or(0, |h| h.len());
        f.debug_struct("Metrics").field("registry", &self.registry).field("hooks", &hooks).finish()
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Adds `by` to a counter.
    pub fn count(&self, name: &'static str, labels: Labels, by: f64) {
        self.with(|r| *r.counters.entry((name, labels)).or_default() += by);
    }

    /// Sets a counter kept elsewhere to its current total.
    pub fn set_counter(&self, name: &'static str, labels: Labels, total: f64) {
        self.with(|r| {
            r.counters.insert((name, labels), total);
        });
    }

    /// Runs `hook` before every rendering, e.g. to copy a provider's counters in.
    pub fn on_scrape(&self, hook: ScrapeHook) {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner()).push(hook);
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

    /// The Prometheus text exposition, after the scrape hooks ran.
    pub fn render(&self) -> String {
        // Cloned out: a hook writes into this registry, and may be slow; neither lock is held meanwhile.
        let hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for hook in hooks {
            hook(self);
        }
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

    #[test]
    fn scrape_hooks_set_counters_before_rendering() {
        let m = Metrics::default();
        let total = Arc::new(Mutex::new(3.0));
        let seen = total.clone();
        m.on_scrape(Arc::new(move |m: &Metrics| {
            let v = *seen.lock().unwrap();
            m.set_counter("ocpoll_sage_requests_total", vec![("status", "200".into())], v);
        }));
        assert!(m.render().contains("ocpoll_sage_requests_total{status=\"200\"} 3\n"));
        *total.lock().unwrap() = 5.0;
        let text = m.render();
        assert!(text.contains("ocpoll_sage_requests_total{status=\"200\"} 5\n"), "{text}");
        assert!(!text.contains("} 3\n"), "{text}");
    }

    #[test]
    fn every_family_has_help_and_type() {
        let text = Metrics::default().render();
        for (name, kind, _) in HELP {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        }
        assert!(!text.contains("\n\n"));
    }
}

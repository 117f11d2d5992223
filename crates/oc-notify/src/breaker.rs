//! Per-callback-URL protection: a concurrency limit and a circuit breaker, so that a slow or dead receiver
//! holds at most a few delivery workers and, once known dead, none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use crate::retry::add;

/// Settings of the circuit breaker of each callback URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row (timeouts, connection errors, 429 and 5xx answers) that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open the first time; doubled each time a probe fails.
    pub open_for: Duration,
    /// The longest the circuit stays open.
    pub max_open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(10 * 60),
        }
    }
}

/// Whether an attempt to a URL may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed circuit: go.
    Go,
    /// Half-open: this attempt is the probe that decides whether the circuit closes.
    Probe,
    /// Open circuit: do not attempt before this time.
    OpenUntil(DateTime<Utc>),
}

#[derive(Debug, Default)]
struct Circuit {
    failures: u32,
    open_until: Option<DateTime<Utc>>,
    /// The length of the current or last opening.
    opened_for: Option<Duration>,
    probing: bool,
}

#[derive(Debug)]
struct Entry {
    circuit: Circuit,
    permits: Arc<Semaphore>,
}

/// The circuits and concurrency limits of every callback URL seen. Time comes from the caller (the Clock port).
#[derive(Debug)]
pub struct Breakers {
    config: BreakerConfig,
    per_url: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Breakers {
    /// Breakers with `config`, allowing `per_url` attempts in flight per URL.
    pub fn new(config: BreakerConfig, per_url: usize) -> Breakers {
        Breakers { config, per_url: per_url.max(1), entries: Mutex::new(HashMap::new()) }
    }

    fn with<T>(&self, url: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(url) {
            return f(entry);
        }
        let mut entry = Entry { circuit: Circuit::default(), permits: Arc::new(Semaphore::new(self.per_url)) };
        let out = f(&mut entry);
        entries.insert(url.to_string(), entry);
        out
    }

    /// The semaphore limiting attempts in flight to `url`.
    pub fn permits(&self, url: &str) -> Arc<Semaphore> {
        self.with(url, |e| e.permits.clone())
    }

    /// Whether an attempt to `url` may go out at `now`. A half-open circuit admits one probe at a time.
    pub fn admit(&self, url: &str, now: DateTime<Utc>) -> Admission {
        self.with(url, |e| {
            let c = &mut e.circuit;
            match c.open_until {
                None => Admission::Go,
                Some(until) if now < until || c.probing => Admission::OpenUntil(until.max(now)),
                Some(_) => {
                    c.probing = true;
                    Admission::Probe
                }
            }
        })
    }

    /// Records how an attempt to `url` went: `healthy` when the receiver answered (other than 429/5xx) or
    /// accepted. Returns true when this opened the circuit.
    pub fn record(&self, url: &str, healthy: bool, now: DateTime<Utc>) -> bool {
        let config = self.config;
        self.with(url, |e| {
            let c = &mut e.circuit;
            if healthy {
                *c = Circuit::default();
                return false;
            }
            c.failures = c.failures.saturating_add(1);
            let was_probe = std::mem::take(&mut c.probing);
            if was_probe || (c.open_until.is_none() && c.failures >= config.failure_threshold) {
                let length = match (was_probe, c.opened_for) {
                    (true, Some(last)) => last.saturating_mul(2).min(config.max_open_for),
                    _ => config.open_for,
                };
                c.opened_for = Some(length);
                c.open_until = Some(add(now, length));
                return true;
            }
            false
        })
    }

    /// Forgets a half-open probe that was not made (the notification went elsewhere or its lease was lost).
    pub fn cancel_probe(&self, url: &str) {
        self.with(url, |e| e.circuit.probing = false);
    }

    /// URLs whose circuit is open at `now`.
    pub fn open_urls(&self, now: DateTime<Utc>) -> Vec<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut open: Vec<String> = entries
            .iter()
            .filter(|(_, e)| e.circuit.open_until.is_some_and(|until| now < until))
            .map(|(url, _)| url.clone())
            .collect();
        open.sort();
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn opens_after_the_threshold_and_probes_after_the_pause() {
        let b = Breakers::new(
            BreakerConfig {
                failure_threshold: 3,
                open_for: Duration::from_secs(30),
                max_open_for: Duration::from_secs(100),
            },
            4,
        );
        let url = "https://dead.example/hook";
        assert_eq!(b.admit(url, t(0)), Admission::Go);
        assert!(!b.record(url, false, t(0)));
        assert!(!b.record(url, false, t(1)));
        assert!(b.record(url, false, t(2)));
        assert_eq!(b.admit(url, t(3)), Admission::OpenUntil(t(32)));
        assert_eq!(b.open_urls(t(3)), [url]);
        // other URLs are not affected
        assert_eq!(b.admit("https://ok.example/hook", t(3)), Admission::Go);
        // after the pause: one probe, the others wait
        assert_eq!(b.admit(url, t(32)), Admission::Probe);
        assert_eq!(b.admit(url, t(32)), Admission::OpenUntil(t(32)));
        // a failed probe doubles the pause
        assert!(b.record(url, false, t(33)));
        assert_eq!(b.admit(url, t(34)), Admission::OpenUntil(t(93)));
        assert_eq!(b.admit(url, t(93)), Admission::Probe);
        assert!(b.record(url, false, t(93)));
        // capped
        assert_eq!(b.admit(url, t(94)), Admission::OpenUntil(t(193)));
        // a successful probe closes it
        assert_eq!(b.admit(url, t(193)), Admission::Probe);
        assert!(!b.record(url, true, t(193)));
        assert_eq!(b.admit(url, t(194)), Admission::Go);
        assert!(b.open_urls(t(194)).is_empty());
    }

    #[test]
    fn a_success_resets_the_count_and_a_cancelled_probe_frees_the_slot() {
        let b = Breakers::new(BreakerConfig { failure_threshold: 2, ..BreakerConfig::default() }, 4);
        let url = "https://flaky.example/";
        b.record(url, false, t(0));
        b.record(url, true, t(1));
        assert!(!b.record(url, false, t(2)));
        assert!(b.record(url, false, t(3)));
        assert_eq!(b.admit(url, t(40)), Admission::Probe);
        b.cancel_probe(url);
        assert_eq!(b.admit(url, t(40)), Admission::Probe);
    }

    #[test]
    fn permits_are_per_url() {
        let b = Breakers::new(BreakerConfig::default(), 2);
        let a = b.permits("a");
        assert!(Arc::ptr_eq(&a, &b.permits("a")));
        assert_eq!(a.available_permits(), 2);
        assert!(!Arc::ptr_eq(&a, &b.permits("b")));
        assert_eq!(Breakers::new(BreakerConfig::default(), 0).permits("x").available_permits(), 1);
    }
}

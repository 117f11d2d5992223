//! The limit on polls in flight, adapted to the work due and to what the provider and the store answer:
//! additive increase, multiplicative decrease (AIMD), in the manner of TCP's congestion window and of
//! Netflix's concurrency-limits.
//!
//! - **Increase** while there is more due work than slots (the last claim filled every free slot): one more slot
//!   per round of polls (`1 / limit` per poll that ended well), up to the ceiling.
//! - **Decrease** by a quarter, at most once a second, when a poll says the provider or the store is overloaded
//!   (throttled beyond its retries, a transport failure, a 5xx, a store error), or when polls take more than
//!   twice as long as their baseline (the lowest smoothed poll time lately) — the queueing that more concurrency
//!   only lengthens — down to the floor.
//! - The baseline follows the smoothed time down at once and up slowly (a provider that became slower for good
//!   is accepted after a few hundred polls), so a slower Sage is neither a reason to shrink forever nor hidden.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Weight of one poll in the smoothed poll time.
const SMOOTHING: f64 = 0.1;
/// How fast the baseline follows a smoothed time above it (per poll).
const BASELINE_DRIFT: f64 = 0.005;
/// Smoothed time over baseline from which polls count as queueing.
const QUEUEING: f64 = 2.0;
/// The factor of a decrease.
const BACKOFF: f64 = 0.75;
/// The shortest time between two decreases.
const DECREASE_EVERY: chrono::Duration = chrono::Duration::seconds(1);
/// Poll times below this are all alike (a poll of a quiet resource against a fast provider).
const NOISE: Duration = Duration::from_millis(20);

/// The adaptive limit.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    limit: f64,
    min: usize,
    max: usize,
    smoothed_ms: Option<f64>,
    baseline_ms: Option<f64>,
    last_decrease: Option<DateTime<Utc>>,
}

/// How a poll ended, for the limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended {
    /// How long it ran.
    pub(crate) took: Duration,
    /// The provider or the store said it is overloaded.
    pub(crate) congested: bool,
    /// More work was due than there were slots when it was admitted.
    pub(crate) backlog: bool,
}

impl Limit {
    /// A limit starting at `initial`, kept within `[min, max]`.
    pub(crate) fn new(initial: usize, min: usize, max: usize) -> Self {
        let max = max.max(1);
        let min = min.clamp(1, max);
        Limit {
            limit: initial.clamp(min, max) as f64,
            min,
            max,
            smoothed_ms: None,
            baseline_ms: None,
            last_decrease: None,
        }
    }

    /// Polls that may run at once now.
    pub(crate) fn get(&self) -> usize {
        ((self.limit + 1e-9).floor() as usize).clamp(self.min, self.max)
    }

    /// Takes the end of a poll into account at `now`.
    pub(crate) fn ended(&mut self, e: Ended, now: DateTime<Utc>) {
        let ms = e.took.max(NOISE).as_secs_f64() * 1000.0;
        let smoothed = match self.smoothed_ms {
            Some(s) => s + SMOOTHING * (ms - s),
            None => ms,
        };
        self.smoothed_ms = Some(smoothed);
        let baseline = match self.baseline_ms {
            Some(b) if smoothed > b => b + BASELINE_DRIFT * (smoothed - b),
            _ => smoothed,
        };
        self.baseline_ms = Some(baseline);
        let queueing = smoothed > QUEUEING * baseline;
        if e.congested || queueing {
            if self.last_decrease.is_none_or(|at| now - at >= DECREASE_EVERY) {
                self.limit = (self.limit * BACKOFF).max(self.min as f64);
                self.last_decrease = Some(now);
            }
        } else if e.backlog {
            self.limit = (self.limit + 1.0 / self.get() as f64).min(self.max as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_714_564_800_000 + ms).unwrap()
    }

    fn ok(ms: u64, backlog: bool) -> Ended {
        Ended { took: Duration::from_millis(ms), congested: false, backlog }
    }

    #[test]
    fn grows_by_one_slot_per_round_while_work_waits_and_not_without() {
        let mut l = Limit::new(4, 1, 64);
        let mut t = 0;
        for _ in 0..3 {
            let n = l.get();
            for _ in 0..n {
                l.ended(ok(40, true), at(t));
                t += 10;
            }
        }
        assert_eq!(l.get(), 7, "4 → 5 → 6 → 7");
        for _ in 0..100 {
            l.ended(ok(40, false), at(t));
        }
        assert_eq!(l.get(), 7, "no backlog, no growth");
    }

    #[test]
    fn backs_off_by_a_quarter_at_most_once_a_second_on_congestion() {
        let mut l = Limit::new(64, 4, 64);
        let congested = Ended { took: Duration::from_millis(40), congested: true, backlog: true };
        l.ended(congested, at(0));
        l.ended(congested, at(500));
        assert_eq!(l.get(), 48, "one decrease in the first second");
        l.ended(congested, at(1000));
        assert_eq!(l.get(), 36);
        for s in 2..40 {
            l.ended(congested, at(s * 1000));
        }
        assert_eq!(l.get(), 4, "never below the floor");
    }

    #[test]
    fn queueing_shrinks_it_and_a_lasting_slowdown_is_accepted() {
        let mut l = Limit::new(32, 2, 256);
        let mut t = 0;
        for _ in 0..50 {
            l.ended(ok(40, true), at(t));
            t += 100;
        }
        let before = l.get();
        // polls suddenly take five times as long: queueing
        for _ in 0..30 {
            l.ended(ok(200, true), at(t));
            t += 100;
        }
        let shrunk = l.get();
        assert!(shrunk < before, "{shrunk} < {before}");
        // it lasts: the baseline follows and the limit grows again
        for _ in 0..5000 {
            l.ended(ok(200, true), at(t));
            t += 100;
        }
        assert!(l.get() > shrunk, "{} > {shrunk}", l.get());
    }
}

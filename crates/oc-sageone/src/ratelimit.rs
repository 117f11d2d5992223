//! The rate limiter: at most N requests in any window of the configured length per Sage business, shared by
//! every instance and resource of that business that this provider serves (a sliding log of the last N
//! request times). It does not coordinate across nodes: with several nodes, each keeps its own budget.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::Clock;

use crate::config::RateLimit;
use crate::pause::Pause;

/// Per-business sliding windows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    windows: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

/// Waits never shorter than this, so a clock that does not move cannot spin the loop hot.
const MIN_WAIT: Duration = Duration::from_millis(10);
/// A clock that never reaches the end of the window (a manual clock left alone) ends the wait after this many
/// rounds: the request goes out rather than hanging forever.
const MAX_ROUNDS: usize = 10_000;

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter { limit, windows: Mutex::new(HashMap::new()) }
    }

    /// Takes a slot for `business`, waiting for one when the window is full. Returns the time waited.
    pub(crate) async fn acquire(&self, business: &str, clock: &dyn Clock, pause: &dyn Pause) -> Duration {
        let mut waited = Duration::ZERO;
        if self.limit.requests == 0 {
            return waited;
        }
        let per = chrono::Duration::from_std(self.limit.per).unwrap_or(chrono::Duration::MAX);
        for _ in 0..MAX_ROUNDS {
            let wait = {
                let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
                let window = windows.entry(business.to_string()).or_default();
                let now = clock.now();
                while window.front().is_some_and(|t| *t + per <= now) {
                    window.pop_front();
                }
                if window.len() < self.limit.requests as usize {
                    window.push_back(now);
                    return waited;
                }
                let oldest = window.front().copied().unwrap_or(now);
                (oldest + per - now).to_std().unwrap_or(Duration::ZERO).max(MIN_WAIT)
            };
            pause.pause(wait).await;
            waited += wait;
        }
        tracing::warn!(business, "rate limiter: the clock did not move; sending anyway");
        waited
    }

    /// Requests counted in the current window of `business`.
    pub(crate) fn in_window(&self, business: &str, now: DateTime<Utc>) -> usize {
        let per = chrono::Duration::from_std(self.limit.per).unwrap_or(chrono::Duration::MAX);
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.get(business).map_or(0, |w| w.iter().filter(|t| **t + per > now).count())
    }
}

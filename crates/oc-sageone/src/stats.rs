//! What the provider did, counted: requests by HTTP status (and transport failures), waits for a rate limit
//! (ocpoll's per-business limiter, and Sage's own `429`s), and token refreshes by outcome. Lock-free counters
//! that only grow; [`SageProvider::stats`](crate::SageProvider::stats) reads them as a [`SageStatsSnapshot`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// HTTP statuses are three digits; anything else lands on the last slot.
const STATUS_SLOTS: usize = 1000;

/// The live counters of one provider (shared by its clones).
#[derive(Debug)]
pub(crate) struct SageStats {
    statuses: Box<[AtomicU64]>,
    transport_errors: AtomicU64,
    limiter_waits: AtomicU64,
    limiter_wait_micros: AtomicU64,
    throttle_waits: AtomicU64,
    throttle_wait_micros: AtomicU64,
    refresh_ok: AtomicU64,
    refresh_invalid_grant: AtomicU64,
    refresh_invalid_client: AtomicU64,
    refresh_failed: AtomicU64,
}

impl Default for SageStats {
    fn default() -> Self {
        SageStats {
            statuses: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            transport_errors: AtomicU64::new(0),
            limiter_waits: AtomicU64::new(0),
            limiter_wait_micros: AtomicU64::new(0),
            throttle_waits: AtomicU64::new(0),
            throttle_wait_micros: AtomicU64::new(0),
            refresh_ok: AtomicU64::new(0),
            refresh_invalid_grant: AtomicU64::new(0),
            refresh_invalid_client: AtomicU64::new(0),
            refresh_failed: AtomicU64::new(0),
        }
    }
}

/// How a token refresh (a `refresh_token` grant sent to Sage's token endpoint) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshOutcome {
    /// New tokens, saved.
    Ok,
    /// The refresh token was refused: the instance needs a new authorization.
    InvalidGrant,
    /// The app's credentials were refused.
    InvalidClient,
    /// Anything else: transport, 5xx beyond the budget, an unreadable answer, a save refused.
    Failed,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl SageStats {
    /// Sage answered with `status`.
    pub(crate) fn answered(&self, status: u16) {
        bump(&self.statuses[usize::from(status).min(STATUS_SLOTS - 1)]);
    }

    /// A request got no answer (connection refused, timeout before the status line).
    pub(crate) fn transport_error(&self) {
        bump(&self.transport_errors);
    }

    /// A request waited `waited` for a slot of the per-business limiter (nothing is counted for no wait).
    pub(crate) fn limiter_waited(&self, waited: Duration) {
        if !waited.is_zero() {
            bump(&self.limiter_waits);
            self.limiter_wait_micros.fetch_add(micros(waited), Ordering::Relaxed);
        }
    }

    /// A request throttled by Sage (`429`) waits `delay` before it is sent again.
    pub(crate) fn throttled_wait(&self, delay: Duration) {
        bump(&self.throttle_waits);
        self.throttle_wait_micros.fetch_add(micros(delay), Ordering::Relaxed);
    }

    /// A token refresh ended so.
    pub(crate) fn refreshed(&self, outcome: RefreshOutcome) {
        bump(match outcome {
            RefreshOutcome::Ok => &self.refresh_ok,
            RefreshOutcome::InvalidGrant => &self.refresh_invalid_grant,
            RefreshOutcome::InvalidClient => &self.refresh_invalid_client,
            RefreshOutcome::Failed => &self.refresh_failed,
        });
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> SageStatsSnapshot {
        let responses = self
            .statuses
            .iter()
            .enumerate()
            .filter_map(|(status, n)| {
                let n = read(n);
                (n > 0).then(|| (u16::try_from(status).unwrap_or(u16::MAX), n))
            })
            .collect();
        SageStatsSnapshot {
            responses,
            transport_errors: read(&self.transport_errors),
            limiter_waits: read(&self.limiter_waits),
            limiter_wait: Duration::from_micros(read(&self.limiter_wait_micros)),
            throttle_waits: read(&self.throttle_waits),
            throttle_wait: Duration::from_micros(read(&self.throttle_wait_micros)),
            refreshes: RefreshCounts {
                ok: read(&self.refresh_ok),
                invalid_grant: read(&self.refresh_invalid_grant),
                invalid_client: read(&self.refresh_invalid_client),
                failed: read(&self.refresh_failed),
            },
        }
    }
}

/// What a [`SageProvider`](crate::SageProvider) has done since it was built. Every figure only grows, so they
/// map onto Prometheus counters. Each HTTP try counts once: a request retried twice counts three times.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SageStatsSnapshot {
    /// Answers by HTTP status (only statuses seen), token and business requests included.
    pub responses: BTreeMap<u16, u64>,
    /// Tries that got no answer: connection failures, timeouts before the status line.
    pub transport_errors: u64,
    /// Requests that had to wait for a slot of the per-business rate limiter.
    pub limiter_waits: u64,
    /// The time they waited, in all.
    pub limiter_wait: Duration,
    /// Waits before sending again a request Sage throttled (`429`).
    pub throttle_waits: u64,
    /// The time they waited, in all.
    pub throttle_wait: Duration,
    /// Token refreshes sent to Sage, by outcome.
    pub refreshes: RefreshCounts,
}

impl SageStatsSnapshot {
    /// Every try sent: answered or not.
    pub fn requests(&self) -> u64 {
        self.responses.values().sum::<u64>() + self.transport_errors
    }
}

/// Token refreshes by outcome (a refresh made unnecessary by another task or node is not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshCounts {
    /// New tokens received and saved.
    pub ok: u64,
    /// The refresh token was refused (`invalid_grant`): the instance was marked invalid.
    pub invalid_grant: u64,
    /// The app's client id or secret was refused.
    pub invalid_client: u64,
    /// Anything else: no answer, a server error beyond the retry budget, an unreadable answer, or the store
    /// refusing the save (the refresh lock was lost).
    pub failed: u64,
}

impl RefreshCounts {
    /// Every refresh sent.
    pub fn attempts(&self) -> u64 {
        self.ok + self.invalid_grant + self.invalid_client + self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_snapshots() {
        let s = SageStats::default();
        assert_eq!(s.snapshot(), SageStatsSnapshot::default());
        s.answered(200);
        s.answered(200);
        s.answered(429);
        s.answered(u16::MAX);
        s.transport_error();
        s.limiter_waited(Duration::ZERO);
        s.limiter_waited(Duration::from_millis(1500));
        s.throttled_wait(Duration::from_secs(7));
        s.refreshed(RefreshOutcome::Ok);
        s.refreshed(RefreshOutcome::InvalidGrant);
        let snap = s.snapshot();
        assert_eq!(snap.responses, BTreeMap::from([(200, 2), (429, 1), (999, 1)]));
        assert_eq!(snap.requests(), 5);
        assert_eq!((snap.limiter_waits, snap.limiter_wait), (1, Duration::from_millis(1500)));
        assert_eq!((snap.throttle_waits, snap.throttle_wait), (1, Duration::from_secs(7)));
        assert_eq!(snap.refreshes, RefreshCounts { ok: 1, invalid_grant: 1, invalid_client: 0, failed: 0 });
        assert_eq!(snap.refreshes.attempts(), 2);
    }
}

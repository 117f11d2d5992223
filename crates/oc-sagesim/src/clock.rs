//! The simulator's clock: a base [`Clock`] (the system's, or a test's `ManualClock`) plus an offset, or frozen at
//! an instant that only moves when told. Every timestamp the simulator writes and the `Date` header come from it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use oc_model::ports::Clock;

#[derive(Debug, Clone, Copy)]
struct ClockState {
    offset: chrono::Duration,
    frozen: Option<DateTime<Utc>>,
}

/// Base clock + offset, or frozen.
#[derive(Debug)]
pub(crate) struct SimClock {
    base: Arc<dyn Clock>,
    state: Mutex<ClockState>,
}

impl SimClock {
    pub(crate) fn new(base: Arc<dyn Clock>) -> Self {
        SimClock { base, state: Mutex::new(ClockState { offset: chrono::Duration::zero(), frozen: None }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `offset` ahead of (negative: behind) the base clock; unfreezes.
    pub(crate) fn set_offset(&self, offset: chrono::Duration) {
        *self.state() = ClockState { offset, frozen: None };
    }

    /// Stops at `at` until advanced or unfrozen.
    pub(crate) fn freeze(&self, at: DateTime<Utc>) {
        self.state().frozen = Some(at);
    }

    /// Moves the frozen instant, or the offset when running, by `by`.
    pub(crate) fn advance(&self, by: chrono::Duration) {
        let mut s = self.state();
        match s.frozen.as_mut() {
            Some(at) => *at += by,
            None => s.offset += by,
        }
    }

    /// Runs again from the frozen instant (no jump).
    pub(crate) fn unfreeze(&self) {
        let now = self.base.now();
        let mut s = self.state();
        if let Some(at) = s.frozen.take() {
            s.offset = at - now;
        }
    }

    /// The offset from the base clock (when running) and the frozen instant (when frozen).
    pub(crate) fn describe(&self) -> (chrono::Duration, Option<DateTime<Utc>>) {
        let s = self.state();
        (s.offset, s.frozen)
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        let s = *self.state();
        match s.frozen {
            Some(at) => at,
            None => self.base.now() + s.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oc_model::ports::ManualClock;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("timestamp")
    }

    #[test]
    fn offset_freeze_advance_unfreeze() {
        let base = Arc::new(ManualClock::new(t("2024-01-01T00:00:00Z")));
        let clock = SimClock::new(base.clone());
        assert_eq!(clock.now(), t("2024-01-01T00:00:00Z"));
        clock.set_offset(chrono::Duration::seconds(30));
        assert_eq!(clock.now(), t("2024-01-01T00:00:30Z"));
        base.advance(std::time::Duration::from_secs(10));
        assert_eq!(clock.now(), t("2024-01-01T00:00:40Z"));
        clock.freeze(t("2030-05-05T05:05:05Z"));
        base.advance(std::time::Duration::from_secs(10));
        assert_eq!(clock.now(), t("2030-05-05T05:05:05Z"));
        clock.advance(chrono::Duration::seconds(5));
        assert_eq!(clock.now(), t("2030-05-05T05:05:10Z"));
        clock.unfreeze();
        assert_eq!(clock.now(), t("2030-05-05T05:05:10Z"));
        base.advance(std::time::Duration::from_secs(1));
        assert_eq!(clock.now(), t("2030-05-05T05:05:11Z"));
        clock.advance(chrono::Duration::seconds(-11));
        assert_eq!(clock.now(), t("2030-05-05T05:05:00Z"));
    }
}

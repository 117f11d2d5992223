//! The rate limiter: at most N requests in any window of the configured length per Sage business, shared by
//! every instance and resource of that business that this provider serves, in two lanes.
//!
//! - A slot is held from the moment a request is sent until one window after its answer came (not after it was
//!   sent), so that however long requests take, Sage — counting them as they arrive — never sees more than N in
//!   any window.
//! - Background requests (the polls) may hold at most N less the interactive reserve
//!   ([`InteractiveLane::reserve_of`]); interactive ones (the hub passthrough) may hold all N, and while one
//!   waits, no background request takes a slot.
//! - An interactive request that cannot get a slot within [`InteractiveLane::max_wait`] gives up at once, with
//!   the time until a slot frees; a background one waits as long as it takes.
//!
//! - Of Sage's limit it uses only its share ([`SageConfig::budget_share_percent`](crate::SageConfig)): the
//!   business's other apps spend the rest. With several nodes the share is divided by the nodes listed at the
//!   last heartbeat ([`RateLimiter::set_nodes`]), so that the nodes together never exceed it: each keeps its own
//!   window of its own part, with no round trip per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{Clock, Lane};

use crate::config::{InteractiveLane, RateLimit};
use crate::pause::Pause;

/// Per-business windows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    lane: InteractiveLane,
    /// Percent of `limit` used at most (1 to 100).
    share_percent: u8,
    /// The nodes the share is divided by (at least 1).
    nodes: AtomicUsize,
    windows: Mutex<HashMap<String, Window>>,
    next_id: AtomicU64,
}

/// The slots of one business: `(id, None)` while the request is in flight, `(id, Some(t))` once answered at `t`
/// (held until `t + per`).
#[derive(Debug, Default)]
struct Window {
    slots: Vec<(u64, Option<DateTime<Utc>>)>,
    /// Interactive requests waiting for a slot: background ones give way to them.
    interactive_waiting: usize,
}

impl Window {
    fn prune(&mut self, now: DateTime<Utc>, per: chrono::Duration) {
        self.slots.retain(|(_, done)| done.is_none_or(|t| t + per > now));
    }

    /// How long until fewer than `cap` slots are held (a lower bound when requests are still in flight: a slot
    /// answered from now on is held for a whole window).
    fn until_below(&self, cap: usize, now: DateTime<Utc>, per: chrono::Duration) -> Duration {
        let held = self.slots.len();
        if held < cap {
            return Duration::ZERO;
        }
        let must_free = held - cap + 1;
        let mut done: Vec<DateTime<Utc>> = self.slots.iter().filter_map(|(_, d)| *d).collect();
        if done.len() < must_free {
            return per.to_std().unwrap_or(Duration::MAX);
        }
        done.sort_unstable();
        (done[must_free - 1] + per - now).to_std().unwrap_or(Duration::ZERO)
    }
}

/// Waits never shorter than this, so a clock that does not move cannot spin the loop hot.
const MIN_WAIT: Duration = Duration::from_millis(10);
/// How long a background request waits before looking again when it gave way to a waiting interactive one.
const GIVE_WAY: Duration = Duration::from_millis(20);
/// A clock that never reaches the end of the window (a manual clock left alone) ends the wait after this many
/// rounds: the request goes out rather than hanging forever.
const MAX_ROUNDS: usize = 10_000;

/// A slot taken: released (its window starts) when dropped, which is when the answer came.
pub(crate) struct Permit<'a> {
    held: Option<(&'a RateLimiter, String, u64, &'a dyn Clock)>,
    /// How long the request waited for its slot.
    pub(crate) waited: Duration,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some((limiter, key, id, clock)) = self.held.take() {
            limiter.answered(&key, id, clock.now());
        }
    }
}

/// An interactive request counted as waiting; uncounted when it gets its slot, gives up, or is cancelled.
struct Queued<'a> {
    limiter: &'a RateLimiter,
    key: &'a str,
    counted: bool,
}

impl Queued<'_> {
    fn uncount(&mut self, window: &mut Window) {
        if self.counted {
            window.interactive_waiting = window.interactive_waiting.saturating_sub(1);
            self.counted = false;
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut windows = self.limiter.lock();
            if let Some(w) = windows.get_mut(self.key) {
                w.interactive_waiting = w.interactive_waiting.saturating_sub(1);
            }
        }
    }
}

enum Step {
    Go(u64),
    Wait(Duration),
    GiveUp(Duration),
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit, share_percent: u8, lane: InteractiveLane) -> Self {
        RateLimiter {
            limit,
            lane,
            share_percent: share_percent.clamp(1, 100),
            nodes: AtomicUsize::new(1),
            windows: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Divides the share by `nodes` (at least 1) from now on.
    pub(crate) fn set_nodes(&self, nodes: usize) {
        self.nodes.store(nodes.max(1), Ordering::Relaxed);
    }

    /// The requests of a window this node may send for one business: its part of the share of the limit (at
    /// least one).
    pub(crate) fn requests(&self) -> u32 {
        let share = u64::from(self.limit.requests) * u64::from(self.share_percent) / 100;
        let nodes = self.nodes.load(Ordering::Relaxed).max(1) as u64;
        u32::try_from(share / nodes).unwrap_or(u32::MAX).max(1)
    }

    /// The background requests of a window this node may send for one business, and the window; `None` when
    /// the limiter is off.
    pub(crate) fn background_budget(&self) -> Option<(usize, Duration)> {
        (self.limit.requests > 0).then(|| (self.cap(Lane::Background), self.limit.per))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn per(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limit.per).unwrap_or(chrono::Duration::MAX)
    }

    /// The slots `lane` may hold.
    fn cap(&self, lane: Lane) -> usize {
        let all = self.requests();
        match lane {
            Lane::Interactive => all as usize,
            Lane::Background => (all - self.lane.reserve_of(all).min(all.saturating_sub(1))) as usize,
        }
    }

    /// Takes a slot of `business` for a request of `lane`, waiting for one when the lane's share is held. An
    /// interactive request that would wait longer than the lane allows gets `Err` with the time until a slot
    /// frees.
    pub(crate) async fn acquire<'a>(
        &'a self,
        business: &'a str,
        lane: Lane,
        clock: &'a dyn Clock,
        pause: &dyn Pause,
    ) -> Result<Permit<'a>, Duration> {
        let mut waited = Duration::ZERO;
        if self.limit.requests == 0 {
            return Ok(Permit { held: None, waited });
        }
        let per = self.per();
        let cap = self.cap(lane);
        let mut queued = Queued { limiter: self, key: business, counted: false };
        for _ in 0..MAX_ROUNDS {
            let step = {
                let mut windows = self.lock();
                let window = windows.entry(business.to_string()).or_default();
                let now = clock.now();
                window.prune(now, per);
                let give_way = lane == Lane::Background && window.interactive_waiting > 0;
                if window.slots.len() < cap && !give_way {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    window.slots.push((id, None));
                    queued.uncount(window);
                    Step::Go(id)
                } else {
                    let wait = match window.until_below(cap, now, per) {
                        Duration::ZERO => GIVE_WAY,
                        w => w.max(MIN_WAIT),
                    };
                    if lane == Lane::Interactive && waited + wait > self.lane.max_wait {
                        queued.uncount(window);
                        Step::GiveUp(wait)
                    } else {
                        if lane == Lane::Interactive && !queued.counted {
                            window.interactive_waiting += 1;
                            queued.counted = true;
                        }
                        Step::Wait(wait)
                    }
                }
            };
            match step {
                Step::Go(id) => {
                    return Ok(Permit { held: Some((self, business.to_string(), id, clock)), waited });
                }
                Step::GiveUp(wait) => return Err(wait),
                Step::Wait(wait) => {
                    pause.pause(wait).await;
                    waited += wait;
                }
            }
        }
        tracing::warn!(business, "rate limiter: the clock did not move; sending anyway");
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut windows = self.lock();
        let window = windows.entry(business.to_string()).or_default();
        window.slots.push((id, None));
        queued.uncount(window);
        Ok(Permit { held: Some((self, business.to_string(), id, clock)), waited })
    }

    /// How long until a background request of `business` could take a slot at once, when `pending` other
    /// background requests (polls started but not yet sending) go first: zero when it could now. Nothing is
    /// taken.
    pub(crate) fn background_wait(&self, business: &str, pending: usize, now: DateTime<Utc>) -> Duration {
        if self.limit.requests == 0 {
            return Duration::ZERO;
        }
        let per = self.per();
        let cap = self.cap(Lane::Background).saturating_sub(pending);
        let mut windows = self.lock();
        let Some(window) = windows.get_mut(business) else {
            return if cap > 0 { Duration::ZERO } else { per.to_std().unwrap_or(Duration::MAX) };
        };
        window.prune(now, per);
        match window.until_below(cap, now, per) {
            Duration::ZERO if window.interactive_waiting > 0 => GIVE_WAY,
            wait => wait,
        }
    }

    /// The answer to the request of slot `id` came at `at`: its window starts.
    fn answered(&self, business: &str, id: u64, at: DateTime<Utc>) {
        if let Some(w) = self.lock().get_mut(business)
            && let Some(slot) = w.slots.iter_mut().find(|(i, _)| *i == id)
        {
            slot.1 = Some(at);
        }
    }

    /// Requests counted in the current window of `business` (in flight, or answered less than a window ago).
    pub(crate) fn in_window(&self, business: &str, now: DateTime<Utc>) -> usize {
        let per = self.per();
        self.lock().get(business).map_or(0, |w| w.slots.iter().filter(|(_, d)| d.is_none_or(|t| t + per > now)).count())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use oc_model::ports::ManualClock;
    use tokio::sync::Mutex as AsyncMutex;

    use super::*;
    use crate::pause::TokioPause;

    fn t0() -> DateTime<Utc> {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn limiter(requests: u32, per_secs: u64, reserve_percent: u8) -> RateLimiter {
        let lane = InteractiveLane { reserve_percent, ..InteractiveLane::default() };
        RateLimiter::new(RateLimit { requests, per: Duration::from_secs(per_secs) }, 100, lane)
    }

    /// Records every wait and moves the manual clock by it.
    #[derive(Debug)]
    struct Moving(Arc<ManualClock>, std::sync::Mutex<Vec<Duration>>);

    #[async_trait::async_trait]
    impl Pause for Moving {
        async fn pause(&self, d: Duration) {
            self.1.lock().unwrap().push(d);
            self.0.advance(d);
        }
    }

    /// Tokio's (paused) time as a clock, so that concurrent waiters run in virtual time.
    #[derive(Debug)]
    struct TokioClock(tokio::time::Instant);

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            t0() + chrono::Duration::from_std(self.0.elapsed()).unwrap()
        }
    }

    #[test]
    fn the_reserve_is_a_share_of_the_limit_rounded_down() {
        let check = |requests, percent, background| {
            assert_eq!(limiter(requests, 60, percent).cap(Lane::Background), background)
        };
        check(200, 10, 180);
        check(200, 0, 200);
        check(60, 10, 54);
        check(2, 10, 2);
        check(10, 90, 1);
        check(10, 100, 1); // capped at 90 %
        check(1, 90, 1); // a background request always has one slot
        assert_eq!(limiter(200, 60, 10).cap(Lane::Interactive), 200);
    }

    /// Issue 19, item 1: ocpoll uses its share of the limit, both lanes within it, divided by the nodes.
    #[tokio::test]
    async fn only_the_share_is_used_divided_by_the_nodes() {
        let lane = InteractiveLane { reserve_percent: 10, ..InteractiveLane::default() };
        let l = RateLimiter::new(RateLimit { requests: 200, per: Duration::from_secs(60) }, 50, lane);
        assert_eq!((l.requests(), l.cap(Lane::Interactive), l.cap(Lane::Background)), (100, 100, 90));
        assert_eq!(l.background_budget(), Some((90, Duration::from_secs(60))));
        l.set_nodes(2);
        assert_eq!((l.cap(Lane::Interactive), l.cap(Lane::Background)), (50, 45));
        l.set_nodes(0);
        assert_eq!(l.requests(), 100, "never fewer than one node");
        l.set_nodes(1000);
        assert_eq!(l.requests(), 1, "a node always has one request");
        // the share holds against the clock: 100 interactive requests go, the 101st waits (and gives up)
        l.set_nodes(1);
        let clock = Arc::new(ManualClock::new(t0()));
        let pause = Moving(clock.clone(), std::sync::Mutex::new(Vec::new()));
        let mut permits = Vec::new();
        for _ in 0..100 {
            permits.push(l.acquire("b", Lane::Interactive, clock.as_ref(), &pause).await.unwrap());
        }
        assert!(l.acquire("b", Lane::Interactive, clock.as_ref(), &pause).await.is_err());
        assert_eq!(l.in_window("b", clock.now()), 100);
        let off = RateLimiter::new(RateLimit { requests: 0, per: Duration::from_secs(60) }, 50, lane);
        assert_eq!(off.background_budget(), None, "a limiter switched off has no budget");
    }

    #[tokio::test]
    async fn background_fills_its_share_and_interactive_is_still_served_at_once() {
        let clock = Arc::new(ManualClock::new(t0()));
        let pause = Moving(clock.clone(), Default::default());
        let l = limiter(10, 60, 20); // background: 8, interactive: all 10
        for _ in 0..8 {
            let p = l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap();
            assert_eq!(p.waited, Duration::ZERO);
        }
        assert_eq!(l.in_window("b", clock.now()), 8);
        // two interactive requests find a slot without waiting
        for _ in 0..2 {
            let p = l.acquire("b", Lane::Interactive, clock.as_ref(), &pause).await.unwrap();
            assert_eq!(p.waited, Duration::ZERO);
        }
        assert!(pause.1.lock().unwrap().is_empty());
        // the window is full: a third interactive one would wait 60 s, more than its 2 s, and gives up at once
        let e = l.acquire("b", Lane::Interactive, clock.as_ref(), &pause).await.err();
        assert_eq!(e, Some(Duration::from_secs(60)));
        assert!(pause.1.lock().unwrap().is_empty(), "giving up is immediate");
        // another business is not concerned
        assert!(l.acquire("c", Lane::Background, clock.as_ref(), &pause).await.is_ok());
        // a background request waits for the first slot of its share to leave the window
        clock.advance(Duration::from_secs(30));
        let p = l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap();
        assert_eq!(p.waited, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn the_background_wait_counts_the_slots_held_and_the_polls_about_to_send() {
        let clock = Arc::new(ManualClock::new(t0()));
        let pause = Moving(clock.clone(), Default::default());
        let l = limiter(4, 60, 25); // background: 3
        let now = clock.now();
        assert_eq!(l.background_wait("b", 0, now), Duration::ZERO);
        assert_eq!(l.background_wait("b", 2, now), Duration::ZERO);
        assert_eq!(l.background_wait("b", 3, now), Duration::from_secs(60), "three pending take the share");
        drop(l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap());
        clock.advance(Duration::from_secs(10));
        drop(l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap());
        let now = clock.now();
        assert_eq!(l.background_wait("b", 0, now), Duration::ZERO);
        assert_eq!(l.background_wait("b", 1, now), Duration::from_secs(50), "the first slot frees 60 s after it");
        assert_eq!(l.background_wait("c", 1, now), Duration::ZERO, "another business is not concerned");
    }

    #[tokio::test]
    async fn a_slot_is_held_until_a_window_after_the_answer() {
        let clock = Arc::new(ManualClock::new(t0()));
        let pause = Moving(clock.clone(), Default::default());
        let l = limiter(1, 60, 0);
        let slow = l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap();
        clock.advance(Duration::from_secs(5)); // the answer takes 5 s
        drop(slow);
        let p = l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap();
        assert_eq!(p.waited, Duration::from_secs(60), "60 s after the answer, not after the request");
    }

    #[tokio::test]
    async fn an_interactive_request_waits_a_little_when_a_slot_frees_soon() {
        let clock = Arc::new(ManualClock::new(t0()));
        let pause = Moving(clock.clone(), Default::default());
        let l = limiter(2, 60, 0);
        drop(l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap());
        clock.advance(Duration::from_millis(58_500));
        drop(l.acquire("b", Lane::Background, clock.as_ref(), &pause).await.unwrap());
        let p = l.acquire("b", Lane::Interactive, clock.as_ref(), &pause).await.unwrap();
        assert_eq!(p.waited, Duration::from_millis(1500));
    }

    /// Background requests arrive six times faster than the budget; interactive ones now and then (fewer than
    /// the reserve per window). Every interactive request is served without waiting, no window of 60 s ever
    /// holds more than the limit, and background requests never hold more than their share.
    #[tokio::test(start_paused = true)]
    async fn under_saturation_interactive_requests_go_first_and_the_budget_holds() {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock(tokio::time::Instant::now()));
        let l = Arc::new(limiter(20, 60, 20)); // background 16
        type Granted = Vec<(DateTime<Utc>, Lane, Duration)>;
        let granted: Arc<AsyncMutex<Granted>> = Arc::default();
        let mut tasks = Vec::new();
        for i in 0..120u64 {
            let lane = if i % 40 == 39 { Lane::Interactive } else { Lane::Background };
            let (l, clock, granted) = (l.clone(), clock.clone(), granted.clone());
            tasks.push(tokio::spawn(async move {
                // arrivals every 0.5 s: 2 a second against a budget of 1 every 3 s; interactive every 20 s
                tokio::time::sleep(Duration::from_millis(500 * i)).await;
                let permit = l.acquire("b", lane, clock.as_ref(), &TokioPause).await;
                match permit {
                    Ok(p) => {
                        granted.lock().await.push((clock.now(), lane, p.waited));
                        tokio::time::sleep(Duration::from_millis(300)).await; // the request's own time
                        drop(p);
                    }
                    Err(_) => panic!("an interactive request found no slot"),
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let granted = granted.lock().await;
        assert_eq!(granted.len(), 120);
        let interactive: Vec<Duration> =
            granted.iter().filter(|(_, lane, _)| *lane == Lane::Interactive).map(|(_, _, w)| *w).collect();
        assert_eq!(interactive.len(), 3);
        assert!(interactive.iter().all(|w| *w == Duration::ZERO), "{interactive:?}");
        assert!(granted.iter().any(|(_, lane, w)| *lane == Lane::Background && *w > Duration::from_secs(60)));
        // any 60 s: at most 20 sent (a slot is held from its send until 60 s after its answer, so sends alone
        // are a lower bound of what Sage counts) and at most 16 of them background
        for (start, _, _) in granted.iter() {
            let end = *start + chrono::Duration::seconds(60);
            let inside: Vec<_> = granted.iter().filter(|(t, _, _)| t >= start && *t < end).collect();
            assert!(inside.len() <= 20, "{} requests in the 60 s from {start}", inside.len());
            let background = inside.iter().filter(|(_, lane, _)| *lane == Lane::Background).count();
            assert!(background <= 16, "{background} background requests in the 60 s from {start}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_interactive_request_goes_before_waiting_background_ones() {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock(tokio::time::Instant::now()));
        let l = Arc::new(limiter(3, 60, 0)); // no reserve: only the priority helps
        for _ in 0..3 {
            drop(l.acquire("b", Lane::Background, clock.as_ref(), &TokioPause).await.unwrap());
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        // the first slot frees at 60 s; background requests queued before the interactive one
        let order: Arc<AsyncMutex<Vec<&'static str>>> = Arc::default();
        let mut tasks = Vec::new();
        for (delay, name, lane) in [(0, "background 1", Lane::Background), (1, "background 2", Lane::Background)] {
            let (l, clock, order) = (l.clone(), clock.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let _p = l.acquire("b", lane, clock.as_ref(), &TokioPause).await.unwrap();
                order.lock().await.push(name);
            }));
        }
        // 59 s in: the interactive request would wait 1 s for the first free slot
        tokio::time::sleep(Duration::from_secs(59) - Duration::from_millis(4500)).await;
        let p = l.acquire("b", Lane::Interactive, clock.as_ref(), &TokioPause).await.unwrap();
        order.lock().await.push("interactive");
        assert!(p.waited <= Duration::from_millis(1500), "{:?}", p.waited);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().await.first(), Some(&"interactive"), "{:?}", order.lock().await);
    }
}

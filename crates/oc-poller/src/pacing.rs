//! Pacing: what the scheduler knows of every (instance, resource) it polled and of the request budget of each
//! provider account, to spend the budget where the changes are.
//!
//! The rules (tested with a manual clock in `tests/it/scheduler.rs`):
//!
//! - **The interval is the promise.** Every poll schedules the next one at most one interval (less the
//!   jitter) later, adaptive or not: a change is never found later than one interval after it becomes visible.
//! - **Adaptive pairs poll early where changes are likely now.** A poll that found changes schedules the next
//!   one after the floor ([`SchedulerConfig::adaptive_floor`](crate::SchedulerConfig), default 3 s); a pair in a
//!   burst (two polls with changes within the last [`HOT_WINDOW`]) stays at the floor; otherwise each poll that
//!   finds nothing doubles the delay, back up to the interval. A pair whose changes came at this hour of the
//!   day on earlier days (polls with changes in that UTC hour, each day's count halved at the next:
//!   [`HOT_HOUR`]) waits at most a quarter of the interval in that hour.
//! - **Early polls spend only spare budget.** A poll due before its promise is *early*: it runs only while its
//!   account's window, with what the account's promised polls need in a whole window on top
//!   ([`Pacer::demand`]), still has room; otherwise it waits, without a slot, until room frees or its promise
//!   comes. Promised polls go first.
//! - **A shortfall is reported.** When an account's promised polls need more requests per window than its
//!   budget ([`Provider::budget`](oc_model::ports::Provider::budget)), its polls are spread fairly — oldest due
//!   first — and each of them carries a warning that says by how much the intervals ask too much.
//!
//! What it knows is this node's: another node polling the same pair starts from the interval (the promise).
//! Pairs not polled for two intervals and a minute are forgotten.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use oc_model::ids::InstanceId;
use oc_model::ports::Budget;

/// Whose request budget a job spends: its element and its provider account (the instance's own when the
/// provider names none).
pub(crate) type Account = (String, String);

/// How long after its last change a pair stays at the floor: changes come in bursts, and a gap of a few seconds
/// inside one is no sign that it ended.
pub(crate) const HOT_WINDOW: chrono::Duration = chrono::Duration::seconds(60);

/// Requests one poll of a pair is counted as: the change scan and the deleted feed.
pub(crate) const REQUESTS_PER_POLL: f64 = 2.0;

/// What one poll with changes adds to its UTC hour's count (fixed point: halving keeps fractions).
const ONE_CHANGE: u16 = 16;

/// The count of an hour of the day (polls with changes in it on earlier days, halved at each new day) from which
/// a pair counts as likely to change in that hour: two polls with changes in it yesterday, or four the day
/// before. Today's changes count from tomorrow: a burst today is followed by the floor and the backoff.
pub(crate) const HOT_HOUR: u16 = 2 * ONE_CHANGE;

/// What the scheduler keeps of one (instance, resource).
#[derive(Debug, Clone)]
struct Pair {
    account: Account,
    /// Requests per window of the account's budget that this pair's promised polls need.
    need: f64,
    /// Adaptive polling is on for it.
    adaptive: bool,
    /// The latest its next poll may start: the promise of its last poll on this node.
    promise_at: Option<DateTime<Utc>>,
    /// The delay its last poll scheduled.
    delay: Duration,
    /// When its last poll with changes started.
    last_change: Option<DateTime<Utc>>,
    /// When the poll with changes before that one started.
    prev_change: Option<DateTime<Utc>>,
    /// Polls with changes by UTC hour of the day on earlier days (halved at each new day, when `today` is added).
    hours: [u16; 24],
    /// Polls with changes by UTC hour of the day today.
    today: [u16; 24],
    /// The day `hours` was last halved at (days since the epoch).
    day: i64,
    /// When it was last claimed or polled here.
    seen_at: DateTime<Utc>,
}

/// The pairs and the accounts' demand.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    pairs: HashMap<(InstanceId, String), Pair>,
    /// Requests per window the promised polls of each account need.
    demand: HashMap<Account, f64>,
    /// The accounts' budgets per window, as their provider last told.
    budgets: HashMap<Account, u32>,
    last_prune: Option<DateTime<Utc>>,
}

/// What a claim is, for the scheduler's admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Due {
    /// Due by its promise (or unknown here): runs when a slot and the budget allow.
    Promised,
    /// Due before its promise (adaptive): runs only on spare budget; `promise_at` is when it becomes promised.
    Early { promise_at: DateTime<Utc> },
}

impl Pacer {
    /// Records that `key` of `account` was claimed at `now` with `interval` (its promise), adaptive or not, the
    /// account's budget being `budget`. Returns whether the claim is early.
    pub(crate) fn claimed(
        &mut self,
        key: (InstanceId, &str),
        account: &Account,
        interval: Duration,
        adaptive: bool,
        budget: Option<Budget>,
        now: DateTime<Utc>,
    ) -> Due {
        self.prune(now);
        let per = budget.map(|b| b.per);
        if let Some(b) = budget {
            self.budgets.insert(account.clone(), b.requests);
        }
        let need = per.map_or(0.0, |per| REQUESTS_PER_POLL * per.as_secs_f64() / interval.as_secs_f64().max(1.0));
        let owned = (key.0, key.1.to_string());
        let pair = self.pairs.entry(owned).or_insert_with(|| Pair {
            account: account.clone(),
            need: 0.0,
            adaptive,
            promise_at: None,
            delay: interval,
            last_change: None,
            prev_change: None,
            hours: [0; 24],
            today: [0; 24],
            day: now.timestamp().div_euclid(86_400),
            seen_at: now,
        });
        if pair.account != *account {
            sub(&mut self.demand, &pair.account, pair.need);
            pair.account = account.clone();
            pair.need = 0.0;
        }
        if pair.need != need {
            *self.demand.entry(account.clone()).or_default() += need - pair.need;
            pair.need = need;
        }
        pair.adaptive = adaptive;
        pair.seen_at = now;
        match pair.promise_at {
            Some(promise_at) if adaptive && now < promise_at => Due::Early { promise_at },
            _ => Due::Promised,
        }
    }

    /// Requests per window that the promised polls of `account` need (every pair claimed here lately).
    pub(crate) fn demand(&self, account: &Account) -> f64 {
        self.demand.get(account).copied().unwrap_or(0.0).max(0.0)
    }

    /// The accounts known.
    pub(crate) fn accounts(&self) -> usize {
        self.demand.len()
    }

    /// The accounts whose promised polls need more requests per window than their budget.
    pub(crate) fn short_accounts(&self) -> usize {
        self.demand.iter().filter(|(a, d)| self.budgets.get(*a).is_some_and(|b| **d > f64::from(*b))).count()
    }

    /// The pairs known with adaptive polling on.
    pub(crate) fn adaptive_pairs(&self) -> usize {
        self.pairs.values().filter(|p| p.adaptive).count()
    }

    /// The delays after a poll of `key` starting at `now` whose promise is `promise`: after one that finds
    /// nothing, and after one that finds changes (`None` when not adaptive: the promise either way).
    pub(crate) fn delays(
        &self,
        key: (InstanceId, &str),
        promise: Duration,
        floor: Duration,
        now: DateTime<Utc>,
    ) -> (Duration, Option<Duration>) {
        let Some(pair) = self.pairs.get(&(key.0, key.1.to_string())).filter(|p| p.adaptive) else {
            return (promise, None);
        };
        let floor = floor.min(promise);
        let hour = now.hour() as usize;
        let cap = if pair.hours[hour] >= HOT_HOUR { (promise / 4).max(floor) } else { promise };
        // a burst: two polls with changes within the window (a single change backs off at once)
        let hot = pair.prev_change.is_some_and(|at| now - at < HOT_WINDOW);
        let quiet = if hot { floor } else { pair.delay.saturating_mul(2).max(floor).min(cap).min(promise) };
        (quiet, Some(floor))
    }

    /// Records the end of a poll of `key` that started at `started`, found `changes` (or failed: `None`) and
    /// scheduled the next one after `delay`, with `promise` its promise.
    pub(crate) fn polled(
        &mut self,
        key: (InstanceId, &str),
        started: DateTime<Utc>,
        changes: Option<bool>,
        delay: Duration,
        promise: Duration,
    ) {
        let Some(pair) = self.pairs.get_mut(&(key.0, key.1.to_string())) else { return };
        pair.seen_at = pair.seen_at.max(started);
        let day = started.timestamp().div_euclid(86_400);
        if day > pair.day {
            let halvings = (day - pair.day).min(16) as u32;
            for (h, t) in pair.hours.iter_mut().zip(pair.today.iter_mut()) {
                *h = (*h >> halvings).saturating_add(*t >> (halvings - 1));
                *t = 0;
            }
            pair.day = day;
        }
        match changes {
            Some(found) => {
                if found {
                    pair.prev_change = pair.last_change;
                    pair.last_change = Some(started);
                    let h = started.hour() as usize;
                    pair.today[h] = pair.today[h].saturating_add(ONE_CHANGE);
                }
                pair.delay = delay;
                pair.promise_at = Some(started + to_chrono(promise));
            }
            // a failure backs off: nothing is promised before the retry
            None => {
                pair.delay = promise;
                pair.promise_at = None;
            }
        }
    }

    /// Forgets `key` (its instance is gone or no longer polls it).
    pub(crate) fn forget(&mut self, key: (InstanceId, &str)) {
        if let Some(pair) = self.pairs.remove(&(key.0, key.1.to_string())) {
            sub(&mut self.demand, &pair.account, pair.need);
            if !self.demand.contains_key(&pair.account) {
                self.budgets.remove(&pair.account);
            }
        }
    }

    /// Forgets, at most once a minute, the pairs not seen for two of their intervals and a minute.
    fn prune(&mut self, now: DateTime<Utc>) {
        if self.last_prune.is_some_and(|at| now - at < chrono::Duration::minutes(1)) {
            return;
        }
        self.last_prune = Some(now);
        let gone: Vec<(InstanceId, String)> = self
            .pairs
            .iter()
            .filter(|(_, p)| {
                let promise = p.promise_at.map_or(chrono::Duration::zero(), |at| at - p.seen_at);
                now - p.seen_at > promise * 2 + chrono::Duration::minutes(1)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (instance, resource) in gone {
            self.forget((instance, &resource));
        }
    }
}

fn sub(demand: &mut HashMap<Account, f64>, account: &Account, need: f64) {
    if let Some(d) = demand.get_mut(account) {
        *d -= need;
        if *d <= 1e-9 {
            demand.remove(account);
        }
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_564_800 + s, 0).unwrap()
    }

    fn account() -> Account {
        ("sageone".into(), "b1".into())
    }

    const MIN: Duration = Duration::from_secs(60);

    fn budget() -> Option<Budget> {
        Some(Budget { requests: 90, per: MIN })
    }
    const FLOOR: Duration = Duration::from_secs(5);

    /// Polls `key` from `t` until `until`, finding nothing; returns the delays.
    fn quiet_polls(p: &mut Pacer, mut t: i64, until: i64) -> (Vec<u64>, Vec<bool>) {
        let (mut delays, mut early) = (Vec::new(), Vec::new());
        while t < until {
            early.push(matches!(p.claimed((1, "c"), &account(), MIN, true, budget(), at(t)), Due::Early { .. }));
            let (quiet, _) = p.delays((1, "c"), MIN, FLOOR, at(t));
            delays.push(quiet.as_secs());
            p.polled((1, "c"), at(t), Some(false), quiet, MIN);
            t += quiet.as_secs() as i64;
        }
        (delays, early)
    }

    #[test]
    fn a_single_change_brings_the_floor_once_then_quiet_polls_double_back_to_the_interval() {
        let mut p = Pacer::default();
        assert_eq!(p.claimed((1, "c"), &account(), MIN, true, budget(), at(0)), Due::Promised);
        assert_eq!(p.delays((1, "c"), MIN, FLOOR, at(0)), (MIN, Some(FLOOR)));
        p.polled((1, "c"), at(0), Some(true), FLOOR, MIN);
        let (delays, early) = quiet_polls(&mut p, 5, 200);
        assert_eq!(delays, [10, 20, 40, 60, 60, 60]);
        // early while the delay was below the interval; promised once it is back at it
        assert_eq!(early, [true, true, true, true, false, false]);
    }

    #[test]
    fn a_burst_keeps_the_floor_for_a_minute_after_its_last_change() {
        let mut p = Pacer::default();
        p.claimed((1, "c"), &account(), MIN, true, budget(), at(0));
        p.polled((1, "c"), at(0), Some(true), FLOOR, MIN);
        p.claimed((1, "c"), &account(), MIN, true, budget(), at(5));
        p.polled((1, "c"), at(5), Some(true), FLOOR, MIN);
        let (delays, _) = quiet_polls(&mut p, 10, 300);
        // the floor until a minute after the burst's first change, then 10, 20, 40 and the interval
        let mut want = vec![5u64; 10];
        want.extend([10, 20, 40, 60, 60, 60]);
        assert_eq!(delays, want);
    }

    #[test]
    fn a_pair_not_adaptive_keeps_its_interval_and_is_never_early() {
        let mut p = Pacer::default();
        p.claimed((1, "c"), &account(), MIN, false, budget(), at(0));
        assert_eq!(p.delays((1, "c"), MIN, FLOOR, at(0)), (MIN, None));
        p.polled((1, "c"), at(0), Some(true), MIN, MIN);
        assert_eq!(p.claimed((1, "c"), &account(), MIN, false, budget(), at(10)), Due::Promised);
    }

    #[test]
    fn demand_sums_the_promised_requests_per_window_of_an_account() {
        let mut p = Pacer::default();
        p.claimed((1, "a"), &account(), MIN, false, budget(), at(0));
        p.claimed((1, "b"), &account(), MIN / 2, false, budget(), at(0));
        assert!((p.demand(&account()) - 6.0).abs() < 1e-9);
        p.forget((1, "b"));
        assert!((p.demand(&account()) - 2.0).abs() < 1e-9);
        // pairs not seen for two intervals and a minute are forgotten
        p.polled((1, "a"), at(0), Some(false), MIN, MIN);
        p.claimed((2, "a"), &("sageone".into(), "b2".into()), MIN, false, budget(), at(400));
        assert_eq!(p.demand(&account()), 0.0);
        assert_eq!(p.accounts(), 1);
    }

    #[test]
    fn an_hour_with_changes_on_earlier_days_caps_the_delay_at_a_quarter_interval() {
        let mut p = Pacer::default();
        let hour = Duration::from_secs(3600);
        p.claimed((1, "c"), &account(), hour, true, budget(), at(0));
        for day in 0..3 {
            p.polled((1, "c"), at(day * 86_400), Some(true), FLOOR, hour);
            p.polled((1, "c"), at(day * 86_400 + 600), Some(true), FLOOR, hour);
            p.polled((1, "c"), at(day * 86_400 + 1200), Some(true), FLOOR, hour);
        }
        // days later, at the same hour, a quiet pair still waits at most 15 minutes
        p.polled((1, "c"), at(3 * 86_400), Some(false), hour, hour);
        let (quiet, _) = p.delays((1, "c"), hour, FLOOR, at(3 * 86_400 + 60));
        assert_eq!(quiet, hour / 4);
        // another hour of the day: the interval
        let (quiet, _) = p.delays((1, "c"), hour, FLOOR, at(3 * 86_400 + 4 * 3600));
        assert_eq!(quiet, hour);
    }

    #[test]
    fn a_failed_poll_promises_nothing_before_its_retry() {
        let mut p = Pacer::default();
        p.claimed((1, "c"), &account(), MIN, true, budget(), at(0));
        p.polled((1, "c"), at(0), Some(true), FLOOR, MIN);
        p.polled((1, "c"), at(5), None, MIN, MIN);
        assert_eq!(p.claimed((1, "c"), &account(), MIN, true, budget(), at(30)), Due::Promised);
    }
}

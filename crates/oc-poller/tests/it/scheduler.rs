//! The scheduler against the real SQLite store and the model provider, with a manual clock: due jobs,
//! intervals, the bound on polls in flight, backoff and recovery, re-authorization, instances switched off or
//! deleted without a restart, and graceful shutdown.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::Configuration;
use oc_model::ports::{
    Clock, Instance, InstanceStore, ManualClock, NoTelemetry, PollStatus, PollingStore, Principal, Providers,
};
use oc_poller::{EngineConfig, JobResult, PollPorts, Scheduler, SchedulerConfig};
use oc_store::SqlStore;
use serde_json::json;
use support::Model;

struct World {
    _db: oc_store::testing::TestStore,
    store: Arc<SqlStore>,
    owner: Principal,
    clock: Arc<ManualClock>,
    model: Arc<Model>,
}

fn start() -> DateTime<Utc> {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

async fn world() -> World {
    let (db, store, owner) = support::sqlite().await;
    let clock = Arc::new(ManualClock::new(start()));
    let model = Arc::new(Model::new(clock.clone(), 0, 7));
    World { _db: db, store, owner, clock, model }
}

impl World {
    async fn instance(&self, interval_minutes: f64) -> Instance {
        let mut c = Configuration::new();
        c.insert("oauth.api.key", json!("model-app"));
        c.insert("oauth.api.secret", json!("model-secret"));
        c.insert("oauth.callback.url", json!("https://example.com/oauth"));
        c.insert("event.notification.enabled", json!(true));
        c.insert("event.notification.callback.url", json!("https://example.com/hook"));
        c.insert("event.poller.refresh_interval", json!(interval_minutes));
        c.insert(
            "event.poller.configuration",
            json!({"things": {"url": "/hubs/finance/things?since=${date}", "idField": "id",
                "datesConfiguration": {"updatedDateField": "updated_at", "createdDateField": "created_at"}}}),
        );
        let mut new = oc_store::testing::new_instance(self.owner, c, self.clock.now());
        new.element_key = support::model::MODEL_ELEMENT.into();
        self.store.create_instance(&new).await.unwrap()
    }

    fn scheduler(&self, config: SchedulerConfig) -> Arc<Scheduler> {
        let ports = PollPorts {
            store: self.store.clone(),
            vault: self.store.clone(),
            providers: Providers::new().with(self.model.clone()),
            clock: self.clock.clone(),
            telemetry: Arc::new(NoTelemetry),
        };
        Scheduler::new(ports, EngineConfig::default(), config)
    }
}

fn config() -> SchedulerConfig {
    SchedulerConfig { owner: "node-a".into(), jitter: 0.0, ..SchedulerConfig::default() }
}

fn statuses(results: &[JobResult]) -> Vec<(i64, Option<PollStatus>)> {
    let mut v: Vec<_> =
        results.iter().map(|r| (r.instance_id, r.result.as_ref().ok().map(|r| r.outcome.status))).collect();
    v.sort_by_key(|x| x.0);
    v
}

#[tokio::test]
async fn due_jobs_run_on_their_interval() {
    let w = world().await;
    let a = w.instance(1.0).await;
    let b = w.instance(0.25).await;
    let s = w.scheduler(config());
    assert_eq!(statuses(&s.tick().await.unwrap()), [(a.id, Some(PollStatus::Ok)), (b.id, Some(PollStatus::Ok))]);
    assert!(s.tick().await.unwrap().is_empty(), "nothing is due right after");
    w.clock.advance(Duration::from_secs(15));
    assert_eq!(statuses(&s.tick().await.unwrap()), [(b.id, Some(PollStatus::Ok))], "a quarter minute: only b");
    w.clock.advance(Duration::from_secs(45));
    assert_eq!(statuses(&s.tick().await.unwrap()).len(), 2);
}

#[tokio::test]
async fn the_jitter_spreads_polls_but_never_delays_one_past_its_interval() {
    let w = world().await;
    for _ in 0..20 {
        w.instance(1.0).await;
    }
    let s = w.scheduler(SchedulerConfig { owner: "node-a".into(), max_in_flight: 64, ..SchedulerConfig::default() });
    assert_eq!(s.tick().await.unwrap().len(), 20);
    w.clock.advance(Duration::from_secs(53));
    assert!(s.tick().await.unwrap().is_empty(), "the jitter takes at most 10 % off the interval");
    w.clock.advance(Duration::from_secs(4));
    let early = s.tick().await.unwrap().len();
    assert!(0 < early && early < 20, "spread over the last 10 % of the interval: {early} of 20 due at 57 s");
    w.clock.advance(Duration::from_secs(3));
    assert_eq!(s.tick().await.unwrap().len(), 20 - early, "every poll is due one interval after the last at most");
}

#[tokio::test]
async fn polls_in_flight_are_bounded() {
    let w = world().await;
    for _ in 0..3 {
        w.instance(1.0).await;
    }
    let s = w.scheduler(SchedulerConfig { max_in_flight: 2, ..config() });
    assert_eq!(s.tick().await.unwrap().len(), 2);
    assert_eq!(s.tick().await.unwrap().len(), 1, "the third waits for a free slot");
}

#[tokio::test]
async fn a_failing_instance_backs_off_and_recovers() {
    let w = world().await;
    let a = w.instance(1.0).await;
    let s = w.scheduler(config());
    w.model.with(|m, _| m.faults.error_rate = 1.0);
    assert_eq!(statuses(&s.tick().await.unwrap()), [(a.id, Some(PollStatus::Failed))]);
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(statuses(&s.tick().await.unwrap()), [(a.id, Some(PollStatus::Failed))]);
    // the second failure in a row waits twice the interval
    w.clock.advance(Duration::from_secs(60));
    assert!(s.tick().await.unwrap().is_empty());
    w.clock.advance(Duration::from_secs(60));
    w.model.with(|m, _| m.faults.error_rate = 0.0);
    assert_eq!(statuses(&s.tick().await.unwrap()), [(a.id, Some(PollStatus::Ok))]);
    let state = w.store.poll_state(a.id, "things").await.unwrap().unwrap();
    assert_eq!(state.consecutive_failures, 0);
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(s.tick().await.unwrap().len(), 1, "back on the plain interval");
}

#[test]
fn backoff_doubles_and_is_capped() {
    let s =
        SchedulerConfig { backoff_base: Duration::from_secs(30), backoff_cap: Duration::from_secs(600), ..config() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let w = rt.block_on(world());
    let sched = w.scheduler(s);
    let check = |interval: u64, failures: u32, expected: u64| {
        assert_eq!(sched.backoff(Duration::from_secs(interval), failures), Duration::from_secs(expected));
    };
    check(10, 1, 30);
    check(10, 2, 60);
    check(10, 5, 480);
    check(10, 6, 600);
    check(10, 40, 600);
    check(900, 1, 900);
    check(900, 3, 900);
}

#[tokio::test]
async fn invalid_grant_marks_the_instance_invalid_and_stops_polling_it() {
    let w = world().await;
    let a = w.instance(1.0).await;
    let s = w.scheduler(config());
    w.model.with(|m, _| m.faults.reauth_rate = 1.0);
    assert_eq!(statuses(&s.tick().await.unwrap()), [(a.id, Some(PollStatus::ReauthorizationRequired))]);
    let i = w.store.instance_by_id(a.id).await.unwrap().unwrap();
    assert!(!i.valid);
    w.clock.advance(Duration::from_secs(3600));
    assert!(s.tick().await.unwrap().is_empty(), "not polled until re-authorized");
}

#[tokio::test]
async fn disabled_and_deleted_instances_are_left_alone_without_a_restart() {
    let w = world().await;
    let a = w.instance(1.0).await;
    let b = w.instance(1.0).await;
    let s = w.scheduler(config());
    assert_eq!(s.tick().await.unwrap().len(), 2);
    w.store.set_disabled(w.owner.org_id, a.id, true, w.clock.now()).await.unwrap();
    w.store.delete_instance(w.owner.org_id, b.id, w.clock.now()).await.unwrap();
    let c = w.instance(1.0).await;
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(statuses(&s.tick().await.unwrap()), [(c.id, Some(PollStatus::Ok))], "only the new one");
    w.store.set_disabled(w.owner.org_id, a.id, false, w.clock.now()).await.unwrap();
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(statuses(&s.tick().await.unwrap()).len(), 2);
}

#[tokio::test]
async fn shutdown_abandons_a_stuck_poll_within_the_deadline_and_releases_its_lease() {
    let w = world().await;
    let a = w.instance(1.0).await;
    // the first page request never answers
    w.model.with(|m, _| m.faults.crash_at = Some(1));
    let s = w.scheduler(SchedulerConfig {
        shutdown_deadline: Duration::from_millis(50),
        tick: Duration::from_millis(10),
        ..config()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(s.clone().run(async {
        let _ = stopped.await;
    }));
    // wait for the poll to be stuck in its page request (a condition, with a deadline)
    tokio::time::timeout(Duration::from_secs(10), w.model.crashed.notified()).await.expect("the poll started");
    assert_eq!(s.in_flight(), 1);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), run).await.expect("shutdown within the deadline").unwrap();
    assert_eq!(s.in_flight(), 0);
    // the lease was released: the job can be claimed at once, and nothing was committed
    let claims = w.store.claim_polls("node-b", w.clock.now(), 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claims.iter().map(|c| c.instance_id()).collect::<Vec<_>>(), [a.id]);
    assert_eq!(claims[0].state.watermark, None);
}

/// One line per poll: DEBUG when it found nothing, INFO when it found events or failed (with the failures in a
/// row and the backoff as the time to the next poll). Counts only: never a record's content.
#[tokio::test]
async fn polls_are_logged_at_info_when_they_find_events_or_fail_and_at_debug_when_empty() {
    let w = world().await;
    let a = w.instance(1.0).await;
    let s = w.scheduler(config());
    let (logs, _guard) = support::logs::Logs::capture();
    let one = |what: &str| {
        let lines = logs.take_message("poll done");
        assert_eq!(lines.len(), 1, "{what}: {lines:#?}");
        let line = lines.into_iter().next().unwrap();
        assert_eq!(line.field("instance_id"), Some(a.id.to_string().as_str()), "{line:?}");
        assert_eq!(line.field("resource"), Some("things"), "{line:?}");
        assert!(line.field("duration_ms").is_some(), "{line:?}");
        assert!(!format!("{line:?}").contains("color"), "a record's content logged: {line:?}");
        line
    };

    assert_eq!(s.tick().await.unwrap().len(), 1);
    let empty = one("an empty poll");
    assert_eq!(empty.level, tracing::Level::DEBUG, "{empty:?}");
    assert_eq!((empty.field("outcome"), empty.field("events")), (Some("ok"), Some("0")));

    w.model.with(|m, now| m.create(now));
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(s.tick().await.unwrap().len(), 1);
    let found = one("a poll with an event");
    assert_eq!(found.level, tracing::Level::INFO, "{found:?}");
    assert_eq!(found.field("outcome"), Some("ok"));
    assert_eq!(
        (found.field("events"), found.field("created"), found.field("updated")),
        (Some("1"), Some("1"), Some("0"))
    );
    assert_eq!((found.field("inserted"), found.field("records")), (Some("1"), Some("1")));
    assert_eq!(found.field("next_poll_in_s"), Some("60.0"), "no jitter: the interval");
    assert_eq!(found.field("error"), None);

    w.model.with(|m, _| m.faults.error_rate = 1.0);
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(s.tick().await.unwrap().len(), 1);
    let failed = one("a failed poll");
    assert_eq!(failed.level, tracing::Level::INFO, "{failed:?}");
    assert_eq!((failed.field("outcome"), failed.field("failures")), (Some("failed"), Some("1")));
    assert!(failed.field("error").is_some_and(|e| !e.is_empty()), "{failed:?}");
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(s.tick().await.unwrap().len(), 1);
    let again = one("a second failed poll");
    assert_eq!((again.field("failures"), again.field("next_poll_in_s")), (Some("2"), Some("120.0")), "backed off");
}

impl World {
    /// An instance of provider account `account` polling `resources` resources every `interval_minutes`.
    async fn tenant(&self, account: &str, resources: usize, interval_minutes: f64) -> Instance {
        self.tenant_with(account, resources, interval_minutes, None).await
    }

    /// [`tenant`](Self::tenant) with `event.poller.adaptive` set to `adaptive` (absent when `None`).
    async fn tenant_with(
        &self,
        account: &str,
        resources: usize,
        interval_minutes: f64,
        adaptive: Option<bool>,
    ) -> Instance {
        let mut c = Configuration::new();
        if let Some(adaptive) = adaptive {
            c.insert("event.poller.adaptive", json!(adaptive));
        }
        c.insert("oauth.api.key", json!("model-app"));
        c.insert("oauth.api.secret", json!("model-secret"));
        c.insert("oauth.callback.url", json!("https://example.com/oauth"));
        c.insert("event.notification.enabled", json!(true));
        c.insert("event.notification.callback.url", json!("https://example.com/hook"));
        c.insert("event.poller.refresh_interval", json!(interval_minutes));
        let one = json!({"url": "/hubs/finance/things?since=${date}&nodeleted=1", "idField": "id",
            "datesConfiguration": {"updatedDateField": "updated_at", "createdDateField": "created_at"}});
        let poller: serde_json::Map<String, serde_json::Value> =
            (0..resources).map(|i| (format!("things{i:03}"), one.clone())).collect();
        c.insert("event.poller.configuration", serde_json::Value::Object(poller));
        let mut new = oc_store::testing::new_instance(self.owner, c, self.clock.now());
        new.element_key = support::model::MODEL_ELEMENT.into();
        new.account.id = Some(account.into());
        self.store.create_instance(&new).await.unwrap()
    }
}

/// Issue 18, item 2: 300 resources of one business with a budget of 10 requests a minute, and a quiet instance of
/// another business polled every 3 s. The greedy tenant's polls that could only wait for their budget take no
/// slot: the quiet instance is polled on time, every 3 s, for 90 s, and the greedy business never sends more than
/// its budget. (Before, 32 greedy polls held all 32 slots waiting for the budget: the step never ended.)
#[tokio::test]
async fn a_tenant_waiting_for_its_budget_holds_no_slot_and_another_business_is_polled_on_time() {
    let w = world().await;
    w.model.with(|s, _| s.budget.insert("greedy".into(), 10));
    let mut greedy = Vec::new();
    for _ in 0..3 {
        greedy.push(w.tenant("greedy", 100, 1.0).await.id);
    }
    let quiet = w.tenant("quiet", 1, 0.05).await.id;
    let s = w.scheduler(SchedulerConfig { max_in_flight: 32, ..config() });
    let mut quiet_polls = Vec::new();
    let mut greedy_polls = 0usize;
    for second in 0..=90i64 {
        w.clock.set(start() + chrono::Duration::seconds(second));
        let step = tokio::time::timeout(Duration::from_secs(10), s.tick()).await;
        let results = step
            .unwrap_or_else(|_| {
                panic!("the step at {second} s never ended: polls hold their slots waiting for the budget")
            })
            .unwrap();
        for r in &results {
            assert!(r.result.as_ref().is_ok_and(|r| r.outcome.status == PollStatus::Ok), "{r:?}");
            if r.instance_id == quiet {
                quiet_polls.push(second);
            } else {
                assert!(greedy.contains(&r.instance_id));
                greedy_polls += 1;
            }
        }
    }
    let gaps: Vec<i64> = quiet_polls.windows(2).map(|p| p[1] - p[0]).collect();
    eprintln!(
        "quiet polls at {quiet_polls:?} (largest gap {:?} s); greedy polls {greedy_polls}; waiting {}",
        gaps.iter().max(),
        s.waiting()
    );
    assert_eq!(quiet_polls.first(), Some(&0), "polled at once");
    assert!(gaps.iter().all(|g| *g <= 3), "the quiet instance was polled late: {quiet_polls:?}");
    assert_eq!(quiet_polls.len(), 31);
    // the greedy business spends its budget, no more: 10 in the first minute, 10 in the next 30 s
    assert_eq!(greedy_polls, 20);
    assert!(s.waiting() > 0, "the rest of the greedy jobs wait, claimed, without a slot");
    assert_eq!(s.in_flight(), 0);
}

/// Polls per instance, second by second from 0 to `seconds` (the clock set to each second, one step each),
/// calling `each_second` before the step; every poll must end `Ok`.
async fn run_seconds(
    w: &World,
    s: &Arc<Scheduler>,
    seconds: i64,
    mut each_second: impl FnMut(i64),
) -> (std::collections::BTreeMap<i64, Vec<i64>>, Vec<JobResult>) {
    let mut polls: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    let mut all = Vec::new();
    for second in 0..=seconds {
        w.clock.set(start() + chrono::Duration::seconds(second));
        each_second(second);
        let results = tokio::time::timeout(Duration::from_secs(10), s.tick()).await.expect("a step hung").unwrap();
        for r in results {
            assert!(r.result.as_ref().is_ok_and(|r| r.outcome.status == PollStatus::Ok), "{r:?}");
            polls.entry(r.instance_id).or_default().push(second);
            all.push(r);
        }
    }
    (polls, all)
}

fn gaps(times: &[i64]) -> Vec<i64> {
    times.windows(2).map(|p| p[1] - p[0]).collect()
}

/// The most requests of `account` the model saw in any 60 s window.
fn busiest_window(w: &World, account: &str) -> usize {
    w.model.with(|m, _| {
        let sent: Vec<i64> = m.budget_sent.iter().filter(|(a, _)| a == account).map(|(_, t)| *t).collect();
        sent.iter().map(|t| sent.iter().filter(|u| **u >= *t && **u < t + 60_000).count()).max().unwrap_or(0)
    })
}

/// Issue 19, items 2 and 6: with adaptive polling a resource that found changes is polled again after the floor
/// (3 s) while changes keep coming and for a minute after the last, then backs off to its interval; the interval
/// stays the promise
/// (no gap above 60 s); an instance without adaptive polling beside it is polled once a minute, as before.
#[tokio::test]
async fn adaptive_polling_follows_the_changes_and_the_interval_stays_the_promise() {
    let w = world().await;
    w.model.with(|m, _| m.budget.insert("b".into(), 100));
    let adaptive = w.tenant_with("b", 1, 1.0, Some(true)).await.id;
    let fixed = w.tenant_with("b", 1, 1.0, None).await.id;
    let s = w.scheduler(config());
    let model = w.model.clone();
    let mut changes = Vec::new();
    let (polls, _) = run_seconds(&w, &s, 420, |second| {
        if (30..150).contains(&second) && second % 7 == 2 {
            model.with(|m, now| m.create(now));
            changes.push(second);
        }
    })
    .await;
    let a = &polls[&adaptive];
    let f = &polls[&fixed];
    eprintln!("adaptive polls at {a:?}\nfixed polls at {f:?}");
    assert!(gaps(f).iter().all(|g| *g == 60), "not adaptive: once per interval: {f:?}");
    assert!(gaps(a).iter().all(|g| *g <= 60), "the interval is the promise: {a:?}");
    // while the changes come (every 7 s), every change is found within two floors of being made
    for c in changes.iter().filter(|c| **c > 65) {
        let found = a.iter().find(|p| **p >= *c).expect("a poll after each change");
        assert!(found - c <= 10, "the change at {c} s was found at {found} s: {a:?}");
    }
    let during = a.iter().filter(|p| (65..150).contains(*p)).count();
    assert!(during >= 10, "polled at the floor while changes came: {during} polls in 85 s: {a:?}");
    // a minute after the last change (at 142 s) the delay doubles back to the interval
    let last = *changes.last().unwrap();
    let hot: Vec<i64> = a.iter().copied().filter(|p| *p > last && *p < last + 60).collect();
    assert!(gaps(&hot).iter().all(|g| *g == 3), "the floor for a minute after the last change: {hot:?}");
    let after: Vec<i64> = a.iter().copied().filter(|p| *p >= last + 60).collect();
    assert_eq!(gaps(&after).last(), Some(&60), "back to the interval: {after:?}");
    assert!(after.len() <= 9, "quiet again: {after:?}");
}

/// Issue 19, items 1, 2 and 6: early (adaptive) polls spend only what the account's promised polls leave over.
/// With a budget of 12 requests a minute and promised polls counted at 12, no early poll runs at all; with 40,
/// early polls run but the account never sends more than 40 in any minute; either way every promised resource
/// is polled within its interval.
#[tokio::test]
async fn early_polls_never_take_what_the_promised_polls_need() {
    for (budget, early_expected) in [(12usize, false), (40, true)] {
        let w = world().await;
        w.model.with(|m, _| m.budget.insert("b".into(), budget));
        let steady = w.tenant_with("b", 5, 1.0, Some(false)).await.id;
        let adaptive = w.tenant_with("b", 1, 1.0, Some(true)).await.id;
        let s = w.scheduler(config());
        let model = w.model.clone();
        let (polls, _) = run_seconds(&w, &s, 240, |second| {
            if second % 3 == 1 {
                model.with(|m, now| m.create(now));
            }
        })
        .await;
        let a = &polls[&adaptive];
        let steady_polls = &polls[&steady];
        eprintln!("budget {budget}: adaptive polls at {a:?}; steady instance polls {}", steady_polls.len());
        // the five steady resources: five polls each minute, all within the interval
        let mut by_minute = std::collections::BTreeMap::<i64, usize>::new();
        for p in steady_polls {
            *by_minute.entry(p / 60).or_default() += 1;
        }
        assert!(by_minute.values().all(|n| *n == 5), "budget {budget}: steady polls per minute {by_minute:?}");
        assert!(gaps(a).iter().all(|g| *g <= 60), "budget {budget}: the interval is the promise: {a:?}");
        let busiest = busiest_window(&w, "b");
        assert!(busiest <= budget, "budget {budget}: {busiest} requests in one minute");
        if early_expected {
            assert!(a.len() > 10, "budget {budget}: spare budget polls the changing resource early: {a:?}");
        } else {
            assert!(gaps(a).iter().all(|g| *g == 60), "budget {budget}: no spare, no early poll: {a:?}");
        }
    }
}

/// Issue 19, items 2 and 6: a business whose configured intervals need more than its budget (ten resources every
/// 30 s, 40 requests a minute counted, against 10) has its polls spread fairly — each resource polled as often as
/// another, give or take one — never above the budget, and every poll says so in a warning.
#[tokio::test]
async fn a_business_short_of_budget_is_polled_fairly_and_told_why() {
    let w = world().await;
    w.model.with(|m, _| m.budget.insert("short".into(), 10));
    w.tenant_with("short", 10, 0.5, None).await;
    let s = w.scheduler(config());
    let (_, results) = run_seconds(&w, &s, 180, |_| {}).await;
    let mut per_resource = std::collections::BTreeMap::<String, usize>::new();
    for r in &results {
        *per_resource.entry(r.resource.clone()).or_default() += 1;
        let outcome = &r.result.as_ref().unwrap().outcome;
        assert!(
            outcome.warnings.iter().any(|w| w.message.contains("more than the 10 it may use here")),
            "{:?}",
            outcome.warnings
        );
    }
    let (least, most) = (per_resource.values().min().unwrap(), per_resource.values().max().unwrap());
    eprintln!("polls per resource {per_resource:?}");
    assert_eq!(per_resource.len(), 10, "every resource is polled");
    assert!(most - least <= 1, "fair: {per_resource:?}");
    assert!(busiest_window(&w, "short") <= 10);
}

/// Issue 19, item 4: the limit on polls in flight adapts. With 200 jobs due and the limit starting at 4 (ceiling
/// 64), each step runs one more poll than the last (one slot more per round while work waits); when the provider
/// starts failing (5xx, 429, transport: overloaded) it drops by a quarter at most once a second, never below the
/// floor, and grows again once the provider recovers.
#[tokio::test]
async fn the_concurrency_of_polls_grows_with_the_work_due_and_backs_off_when_the_provider_is_overloaded() {
    let w = world().await;
    for _ in 0..200 {
        w.instance(60.0).await;
    }
    let s =
        w.scheduler(SchedulerConfig { max_in_flight: 64, min_in_flight: 2, initial_in_flight: Some(4), ..config() });
    let mut sizes = Vec::new();
    for _ in 0..6 {
        sizes.push(s.tick().await.unwrap().len());
    }
    assert_eq!(sizes, [4, 5, 6, 7, 8, 9], "one slot more per round while work waits");
    assert_eq!(s.concurrency(), 10);

    w.model.with(|m, _| m.faults.error_rate = 1.0);
    let mut limits = Vec::new();
    for _ in 0..6 {
        let results = s.tick().await.unwrap();
        assert!(results.iter().all(|r| r.result.as_ref().is_ok_and(|r| r.congested)), "{results:?}");
        limits.push(s.concurrency());
        w.clock.advance(Duration::from_secs(1));
    }
    assert_eq!(limits, [7, 5, 4, 3, 2, 2], "a quarter less per second, down to the floor");

    w.model.with(|m, _| m.faults.error_rate = 0.0);
    let before = s.concurrency();
    for _ in 0..4 {
        s.tick().await.unwrap();
    }
    assert!(s.concurrency() > before, "grows again: {} > {before}", s.concurrency());
}

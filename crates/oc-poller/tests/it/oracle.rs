//! The oracle of `change-detection.md`: the real engine and the real SQLite store against the model provider
//! with random creates, same-second updates, deletes, tie groups across pages, mutations between page
//! requests, late-visible rows, clock skew, provider failures and crashes. After the changes stop and two
//! more polls run, the four properties must hold. Half the cases poll as adaptive polling schedules polls
//! (anywhere from the 3 s floor to the interval apart), half once per interval.
//!
//! 500 cases run in the normal test run (one SQLite database for the binary, a fresh instance per case);
//! `OCPOLL_SOAK_CASES=N cargo test --release -p oc-poller --test it oracle -- --ignored --nocapture` runs N.

use crate::support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oc_model::EventType;
use oc_model::ports::{Clock, PollStatus, Principal};
use oc_store::SqlStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use support::{Harness, LEASE_TTL, Setup};

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    skew_ms: i64,
    sorted: bool,
    page_size: u32,
    existing: u8,
    steps: u8,
    mutations: u8,
    mutation_rate: f64,
    error_rate: f64,
    late: bool,
    crash: bool,
    poll_delay: u32,
    filter_by_current_date: bool,
    interval_secs: u32,
    /// Polls come as adaptive polling schedules them: anywhere from the floor (3 s) to the interval apart.
    adaptive: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        (any::<u64>(), -300_000i64..300_000, any::<bool>(), 2u32..6, 0u8..6, 2u8..10, 0u8..8),
        (
            prop_oneof![Just(0.0), 0.0..0.2],
            prop_oneof![Just(0.0), 0.0..0.2],
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(0u32), Just(30), Just(90)],
            any::<bool>(),
            prop_oneof![Just(30u32), Just(60), Just(300)],
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (seed, skew_ms, sorted, page_size, existing, steps, mutations),
                (mutation_rate, error_rate, late, crash, poll_delay, filter_by_current_date, interval_secs, adaptive),
            )| Scenario {
                seed,
                skew_ms,
                sorted,
                page_size,
                existing,
                steps,
                mutations,
                mutation_rate,
                error_rate,
                late,
                crash,
                poll_delay,
                filter_by_current_date,
                interval_secs,
                adaptive,
            },
        )
}

/// Runs one scenario; returns a description of every violated property.
async fn run_case(store: Arc<SqlStore>, owner: Principal, sc: &Scenario) -> Result<(), String> {
    let lookback_ms = 1000 * i64::from(sc.poll_delay.max(60));
    let setup = Setup {
        skew_ms: sc.skew_ms,
        seed: sc.seed,
        poller: json!({
            "pageSize": sc.page_size,
            "pollDelay": sc.poll_delay,
            "filterByCurrentDate": sc.filter_by_current_date,
        }),
        interval_minutes: f64::from(sc.interval_secs) / 60.0,
        ..Setup::default()
    };
    let h = Harness::new(store, owner, setup).await;
    let mut rng = support::Rng::new(sc.seed.rotate_left(17));
    // records that existed before the instance, some changed just before it
    h.model.with(|s, now| {
        s.sorted = sc.sorted;
        for i in 0..sc.existing {
            let id = s.create(now - 3_600_000 + i64::from(i) * 1000);
            if i % 2 == 0 {
                s.update(&id, now - 30_000);
            }
        }
    });
    h.model.with(|s, _| {
        s.max_late_ms = if sc.late { lookback_ms - 1000 } else { 0 };
        s.faults.mutation_rate = sc.mutation_rate;
        s.faults.error_rate = sc.error_rate;
        s.page_latency_ms = 700;
    });
    let interval = Duration::from_secs(u64::from(sc.interval_secs));
    for _ in 0..sc.steps {
        // changes between polls, some several inside one second
        for _ in 0..rng.below(u64::from(sc.mutations) + 1) {
            if !rng.chance(0.4) {
                h.advance(Duration::from_millis(rng.below(interval.as_millis() as u64 / 4 + 1)));
            }
            h.model.with(|s, now| s.mutate(now));
        }
        if sc.crash && rng.chance(0.3) {
            if rng.chance(0.5) {
                h.recorder.crash_next_commit.store(true, std::sync::atomic::Ordering::SeqCst);
            } else {
                h.model.with(|s, _| s.faults.crash_at = Some(s.calls + 1 + rng.below(3)));
            }
        }
        let r = h.poll().await;
        if std::env::var_os("OCPOLL_ORACLE_VERBOSE").is_some() {
            eprintln!(
                "step at {}: {:?}",
                h.clock.now(),
                r.as_ref().map(|r| r.as_ref().map(|r| r.as_ref().map(|r| r.outcome.status).map_err(|e| e.to_string())))
            );
        }
        match r {
            None => {}
            Some(None) => h.advance(LEASE_TTL),
            Some(Some(Err(e))) if matches!(&e, oc_poller::PollError::Store(_)) => {
                // the simulated death before the commit: the lease stays until it lapses
                h.advance(LEASE_TTL);
            }
            Some(Some(Err(e))) => return Err(format!("poll error: {e}")),
            Some(Some(Ok(_))) => {}
        }
        if sc.adaptive {
            // adaptive polling: the next poll anywhere from the floor to the interval later
            let floor = 3_000u64;
            h.advance(Duration::from_millis(floor + rng.below(interval.as_millis() as u64 - floor + 1)));
        } else {
            h.advance(interval);
        }
    }
    // the changes stop; every late row becomes visible; faults stop; two more polls
    h.model.with(|s, _| s.faults = support::Faults::default());
    h.recorder.crash_next_commit.store(false, std::sync::atomic::Ordering::SeqCst);
    h.advance(Duration::from_millis(lookback_ms as u64 + 1000));
    let mut ok = 0;
    for _ in 0..6 {
        let r = h.poll_until_run().await.map_err(|e| format!("final poll: {e}"))?;
        if r.outcome.status == PollStatus::Ok {
            ok += 1;
        }
        if ok == 2 {
            break;
        }
        h.advance(interval);
    }
    if ok < 2 {
        return Err("the final polls were not consistent".into());
    }
    let result = check_properties(&h);
    if std::env::var_os("OCPOLL_ORACLE_VERBOSE").is_some() {
        let outcomes = h.recorder.outcomes.lock().unwrap();
        let statuses: Vec<String> = outcomes.iter().map(|o| format!("{:?}", o.status)).collect();
        eprintln!("{} events, {} served, polls {statuses:?}", h.delivered().len(), h.model.with(|s, _| s.served.len()));
    }
    h.finish().await;
    result
}

fn check_properties(h: &Harness) -> Result<(), String> {
    let mut problems = Vec::new();
    let now = h.model.provider_now();
    let delivered = h.delivered();
    let mirror = h.mirror();
    h.model.with(|s, _| {
        // 1. the mirror holds the final state of every record changed since the instance was created
        for id in s.ids() {
            if !s.changed_since(&id, h.start_ms) {
                continue;
            }
            let want = s.visible(&id, now);
            if mirror.get(&id) != want.as_ref() {
                problems.push(format!(
                    "mirror of {id}: {:?}, provider: {want:?} ({:?})",
                    mirror.get(&id),
                    h.history(&id)
                ));
            }
        }
        // 2. at most one CREATED per record, none for records older than the instance
        let mut created: HashMap<&str, u32> = HashMap::new();
        for e in delivered.iter().filter(|e| e.event_type == EventType::Created) {
            *created.entry(&e.object_id).or_default() += 1;
            if s.created_ms(&e.object_id) < h.start_ms {
                problems.push(format!("CREATED for {} which existed before the instance", e.object_id));
            }
        }
        for (id, n) in created {
            if n > 1 {
                problems.push(format!("{n} CREATED events for {id}"));
            }
        }
        // 3. one id per described state
        let mut ids: BTreeMap<(String, i64, String), HashSet<u128>> = BTreeMap::new();
        for e in &delivered {
            ids.entry((e.object_id.clone(), e.date.timestamp_millis(), e.record.to_string()))
                .or_default()
                .insert(e.event_id.as_u128());
        }
        for (state, set) in ids {
            if set.len() > 1 {
                problems.push(format!("{} events describe the state {state:?}", set.len()));
            }
        }
        // 4. no more distinct events than distinct states served
        if delivered.len() > s.served.len() {
            problems.push(format!("{} events for {} distinct served states", delivered.len(), s.served.len()));
        }
    });
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

fn run_oracle(cases: u32) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_db, store, owner) = rt.block_on(support::sqlite());
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let started = Instant::now();
    let done = std::cell::Cell::new(0u64);
    let result = runner.run(&scenario(), |sc| {
        done.set(done.get() + 1);
        if done.get().is_multiple_of(10_000) {
            eprintln!("oracle: {} cases, {:.0} s", done.get(), started.elapsed().as_secs_f64());
        }
        if std::env::var_os("OCPOLL_ORACLE_VERBOSE").is_some() {
            eprintln!("case {sc:?}");
        }
        rt.block_on(async {
            // a hang is a failure too (with its scenario), not a stuck test run
            match tokio::time::timeout(Duration::from_secs(60), run_case(store.clone(), owner, &sc)).await {
                Ok(r) => r,
                Err(_) => Err("the case did not finish within 60 s".into()),
            }
        })
        .map_err(|e| TestCaseError::fail(format!("{sc:?}\n{e}")))
    });
    eprintln!("oracle: {cases} cases in {:.1} s", started.elapsed().as_secs_f64());
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn oracle_holds_for_500_random_histories() {
    run_oracle(500);
}

/// The long run: `OCPOLL_SOAK_CASES` cases (default 100,000).
#[test]
#[ignore]
fn oracle_soak() {
    let cases = std::env::var("OCPOLL_SOAK_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    run_oracle(cases);
}

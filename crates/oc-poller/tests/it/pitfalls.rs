//! One regression test per pitfall of `change-detection.md` ("Known ways to lose or duplicate a change"), plus
//! the pruning rule of step 7. Each test runs the same scripted history twice against the real engine, the
//! model provider and the real SQLite store: once with the engine's defence switched off (a test-only mutation
//! in [`Defences`]), asserting that the defect appears, and once with every defence on, asserting that it does
//! not. A test therefore fails if its defence is removed, and also if its scenario stops exercising it.

use crate::support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::EventType;
use oc_model::ports::PollStatus;
use oc_poller::{Defences, EngineConfig, PollError, PollReport};
use serde_json::{Value, json};
use support::{Action, Harness, Setup};

fn t(hms: &str) -> DateTime<Utc> {
    format!("2024-05-01T{hms}Z").parse().unwrap()
}

fn ms(hms: &str) -> i64 {
    t(hms).timestamp_millis()
}

/// A harness on a fresh SQLite store; `mutate` switches one defence off (or nothing).
async fn harness(mutate: impl FnOnce(&mut Defences), setup: Setup) -> (oc_store::testing::TestStore, Harness) {
    let (db, store, owner) = support::sqlite().await;
    let mut engine = setup.engine.clone();
    mutate(&mut engine.defences);
    let h = Harness::new(store, owner, Setup { engine, ..setup }).await;
    (db, h)
}

/// Sets the local clock and runs one poll, which must run (not crash).
async fn poll_at(h: &Harness, hms: &str) -> Result<PollReport, PollError> {
    h.clock.set(t(hms));
    h.poll().await.expect("the job is due").expect("no crash")
}

/// Creates records at the given provider times; returns their ids.
fn create(h: &Harness, at: &[&str]) -> Vec<String> {
    at.iter().map(|a| h.model.with(|s, _| s.create(ms(a)))).collect()
}

fn provider(h: &Harness, id: &str) -> Option<Value> {
    let now = h.model.provider_now() + 3_600_000;
    h.model.with(|s, _| s.visible(id, now))
}

/// True when the consumer's mirror differs from the provider for one of `ids`.
fn lost(h: &Harness, ids: &[String]) -> bool {
    let mirror = h.mirror();
    ids.iter().any(|id| mirror.get(id) != provider(h, id).as_ref())
}

/// Pairs of delivered events that describe the same state under different ids.
fn duplicate_states(h: &Harness) -> usize {
    let mut by_state = std::collections::HashMap::new();
    for e in h.delivered() {
        by_state.entry((e.object_id.clone(), e.date, e.record.to_string())).or_insert_with(Vec::new).push(e.event_id);
    }
    by_state.values().map(|v| v.len() - 1).sum()
}

fn setup() -> Setup {
    Setup { start: t("12:00:00"), ..Setup::default() }
}

// 1. Equal timestamps across a run boundary with a strict `>` cursor: records lost for good.
async fn pitfall_1(mutate: fn(&mut Defences)) -> bool {
    // no lookback: the boundary second is exactly where the next query starts
    let engine = EngineConfig { default_lookback: Duration::ZERO, ..EngineConfig::default() };
    let (_db, h) = harness(mutate, Setup { engine, interval_minutes: 1.0 / 60.0, ..setup() }).await;
    poll_at(&h, "12:00:05").await.unwrap();
    // written at 12:00:09.5 (stamped 12:00:09) but committed only after the poll at 12:00:10 read the list
    h.model.with(|s, _| s.late_override = Some(900));
    let ids = create(&h, &["12:00:09.500"]);
    h.model.with(|s, _| s.late_override = None);
    let r = poll_at(&h, "12:00:10").await.unwrap();
    assert_eq!(r.watermark, Some(t("12:00:09")), "the cursor is exactly the record's second");
    poll_at(&h, "12:05:10").await.unwrap();
    lost(&h, &ids)
}

#[tokio::test]
async fn pitfall_01_equal_timestamps_at_the_run_boundary_need_an_inclusive_bound() {
    assert!(pitfall_1(|d| d.inclusive_lower_bound = false).await, "a strict cursor loses the boundary record");
    assert!(!pitfall_1(|_| {}).await);
}

// 2. `>=` cursor advanced page by page over a tie group larger than a page: the same page forever.
async fn pitfall_2(mutate: fn(&mut Defences)) -> (Result<PollReport, PollError>, bool) {
    let engine = EngineConfig { max_pages: 50, ..EngineConfig::default() };
    let (_db, h) = harness(mutate, Setup { engine, poller: json!({"pageSize": 2}), ..setup() }).await;
    let ids = create(&h, &["12:01:00"; 5]);
    let r = poll_at(&h, "12:02:00").await;
    let lost = lost(&h, &ids);
    (r, lost)
}

#[tokio::test]
async fn pitfall_02_a_tie_group_larger_than_a_page_needs_a_fixed_lower_bound() {
    let (r, lost) = pitfall_2(|d| d.fixed_lower_bound = false).await;
    assert!(matches!(r, Ok(ref r) if r.outcome.status == PollStatus::Failed), "{r:?}");
    assert!(r.unwrap().outcome.error.unwrap().contains("more than 50 pages"));
    assert!(lost);
    let (r, lost) = pitfall_2(|_| {}).await;
    assert_eq!(r.unwrap().outcome.status, PollStatus::Ok);
    assert!(!lost);
}

// 3. Rows that become visible late: lost without a lookback.
async fn pitfall_3(mutate: fn(&mut Defences)) -> bool {
    let (_db, h) = harness(mutate, Setup { interval_minutes: 1.0 / 60.0, ..setup() }).await;
    poll_at(&h, "12:00:05").await.unwrap();
    h.model.with(|s, _| s.late_override = Some(40_000));
    let ids = create(&h, &["12:02:00"]);
    h.model.with(|s, _| s.late_override = None);
    poll_at(&h, "12:02:10").await.unwrap();
    poll_at(&h, "12:07:10").await.unwrap();
    lost(&h, &ids)
}

#[tokio::test]
async fn pitfall_03_late_visible_rows_need_the_lookback() {
    assert!(pitfall_3(|d| d.lookback = false).await);
    assert!(!pitfall_3(|_| {}).await);
}

// 4. Cursor taken from the end of the run: a change made during the run is lost.
async fn pitfall_4(mutate: fn(&mut Defences)) -> bool {
    let (_db, h) = harness(mutate, Setup { poller: json!({"pageSize": 1}), ..setup() }).await;
    let ids = create(&h, &["12:01:00", "12:01:01", "12:01:02"]);
    h.model.with(|s, _| {
        // listed in creation order: an update does not move a row; each page takes a minute
        s.sorted = false;
        s.fixed_latency_ms = 60_000;
        s.script.push((s.calls + 2, Action::Update(ids[0].clone())));
    });
    poll_at(&h, "12:05:00").await.unwrap();
    h.model.with(|s, _| s.fixed_latency_ms = 0);
    h.clock.advance(Duration::from_secs(600));
    h.poll().await.expect("due").expect("no crash").unwrap();
    lost(&h, &ids)
}

#[tokio::test]
async fn pitfall_04_t0_is_taken_before_the_first_request() {
    assert!(pitfall_4(|d| d.t0_before_first_request = false).await);
    assert!(!pitfall_4(|_| {}).await);
}

// 5. Offset pages while data moves: a delete on page 1 shifts a row of page 2 onto page 1.
async fn pitfall_5(mutate: fn(&mut Defences)) -> bool {
    let (_db, h) = harness(mutate, Setup { poller: json!({"pageSize": 2}), ..setup() }).await;
    let ids = create(&h, &["12:01:00", "12:01:01", "12:01:02", "12:01:03", "12:01:04", "12:01:05"]);
    h.model.with(|s, _| s.script.push((s.calls + 2, Action::Delete(ids[0].clone()))));
    poll_at(&h, "12:10:00").await.unwrap();
    poll_at(&h, "12:15:00").await.unwrap();
    lost(&h, &ids)
}

#[tokio::test]
async fn pitfall_05_rows_shifting_between_pages_are_caught_by_the_consistency_check() {
    assert!(pitfall_5(|d| d.consistency_check = false).await);
    assert!(!pitfall_5(|_| {}).await);
}

// 6. Clock skew between the poller and the provider: the skew gap is lost.
async fn pitfall_6(mutate: fn(&mut Defences)) -> bool {
    // the provider's clock is five minutes behind ours
    let (_db, h) = harness(mutate, Setup { skew_ms: -300_000, ..setup() }).await;
    poll_at(&h, "12:00:10").await.unwrap();
    let ids = create(&h, &["11:57:00"]); // provider time, between the polls
    poll_at(&h, "12:05:10").await.unwrap();
    lost(&h, &ids)
}

#[tokio::test]
async fn pitfall_06_t0_is_on_the_providers_clock() {
    assert!(pitfall_6(|d| d.skew_correction = false).await);
    assert!(!pitfall_6(|_| {}).await);
}

// 7. Timezone mistakes: a literal 'Z' after a local time ahead of UTC makes the provider start too late.
async fn pitfall_7(mutate: fn(&mut Defences)) -> bool {
    let url = "/hubs/finance/things?since=${dateTimeZone:+05:30:yyyy-MM-dd'T'HH:mm:ss'Z'}";
    let (_db, h) = harness(mutate, Setup { url: url.into(), ..setup() }).await;
    poll_at(&h, "12:00:10").await.unwrap();
    let ids = create(&h, &["12:03:00"]);
    poll_at(&h, "12:05:10").await.unwrap();
    lost(&h, &ids)
}

#[tokio::test]
async fn pitfall_07_a_literal_z_in_a_zone_ahead_of_utc_is_rendered_early_enough() {
    assert!(pitfall_7(|d| d.zone_guard = false).await);
    assert!(!pitfall_7(|_| {}).await);
}

// 7 / step 7. A date-only mask sends the start of the day: pruning `seen` at the exact `T0 − L` forgets rows the
// next query still returns, and they are notified again under new ids.
async fn pitfall_7_pruning(mutate: fn(&mut Defences)) -> usize {
    let url = "/hubs/finance/things?since=${date:yyyy-MM-dd}";
    let (_db, h) = harness(mutate, Setup { url: url.into(), ..setup() }).await;
    create(&h, &["12:01:00"]);
    poll_at(&h, "12:02:00").await.unwrap();
    poll_at(&h, "12:10:00").await.unwrap();
    poll_at(&h, "12:20:00").await.unwrap();
    duplicate_states(&h)
}

#[tokio::test]
async fn pitfall_07_seen_is_pruned_only_below_the_bound_the_next_query_sends() {
    assert!(pitfall_7_pruning(|d| d.prune_below_sent_bound = false).await > 0);
    assert_eq!(pitfall_7_pruning(|_| {}).await, 0);
}

// 8. Second-granularity timestamps: two edits within one second look identical by `updated_at`.
async fn pitfall_8(mutate: fn(&mut Defences)) -> bool {
    let (_db, h) = harness(mutate, setup()).await;
    let ids = create(&h, &["12:03:00.100"]);
    poll_at(&h, "12:03:00.600").await.unwrap();
    h.model.with(|s, _| s.update(&ids[0], ms("12:03:00.800")));
    poll_at(&h, "12:08:01").await.unwrap();
    lost(&h, &ids)
}

#[tokio::test]
async fn pitfall_08_two_edits_in_one_second_are_told_apart_by_content_hash() {
    assert!(pitfall_8(|d| d.content_hash = false).await);
    assert!(!pitfall_8(|_| {}).await);
}

/// Four records, a poll whose second page fails beyond the retry budget, then a normal poll.
async fn failing_page(mutate: fn(&mut Defences)) -> (Harness, oc_store::testing::TestStore, Vec<String>) {
    let (db, h) = harness(mutate, Setup { poller: json!({"pageSize": 2}), ..setup() }).await;
    let ids = create(&h, &["12:01:00", "12:01:01", "12:01:02", "12:01:03"]);
    h.model.with(|s, _| s.script.push((s.calls + 2, Action::Fail)));
    poll_at(&h, "12:10:00").await.unwrap();
    poll_at(&h, "12:15:00").await.unwrap();
    (h, db, ids)
}

// 9. Cursor advanced after an error: the changes of the failed window are skipped.
#[tokio::test]
async fn pitfall_09_a_failed_poll_leaves_the_watermark() {
    let (h, _db, ids) = failing_page(|d| d.keep_watermark_on_failure = false).await;
    assert!(lost(&h, &ids));
    let (h, _db, ids) = failing_page(|_| {}).await;
    assert!(!lost(&h, &ids));
    let outcomes = h.recorder.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes[0].status, PollStatus::Failed);
    assert!(outcomes[0].error.as_deref().unwrap().contains("scripted failure"), "{outcomes:?}");
}

// 10. A 5xx mid-scan: partial data treated as complete.
#[tokio::test]
async fn pitfall_10_a_scan_failing_midway_commits_nothing() {
    let (h, _db, ids) = failing_page(|d| d.abandon_partial_scan = false).await;
    assert!(lost(&h, &ids));
    let (h, _db, ids) = failing_page(|_| {}).await;
    assert!(!lost(&h, &ids));
    assert!(h.recorder.outcomes.lock().unwrap()[0].created == 0, "nothing was committed by the failed poll");
}

// 11. Deletion inferred from a partial scan: false DELETED events.
async fn pitfall_11(mutate: fn(&mut Defences)) -> bool {
    let (_db, h) = harness(mutate, Setup { poller: json!({"pageSize": 2}), ..setup() }).await;
    let ids = create(&h, &["12:01:00", "12:01:01", "12:01:02", "12:01:03", "12:01:04", "12:01:05"]);
    poll_at(&h, "12:01:30").await.unwrap();
    // during the next scan, a delete on page 1 shifts the third row out of sight
    h.model.with(|s, _| s.script.push((s.calls + 2, Action::Delete(ids[0].clone()))));
    poll_at(&h, "12:06:30").await.unwrap();
    h.delivered().iter().any(|e| e.event_type == EventType::Deleted && e.object_id != ids[0])
}

#[tokio::test]
async fn pitfall_11_deletions_come_only_from_the_deleted_feed() {
    assert!(pitfall_11(|d| d.deletes_from_feed_only = false).await);
    assert!(!pitfall_11(|_| {}).await);
}

#[tokio::test]
async fn a_crash_before_the_commit_loses_nothing_and_reproduces_the_same_event_ids() {
    let (_db, h) = harness(|_| {}, setup()).await;
    create(&h, &["12:01:00", "12:01:30"]);
    h.recorder.crash_next_commit.store(true, std::sync::atomic::Ordering::SeqCst);
    h.clock.set(t("12:02:00"));
    assert!(matches!(h.poll().await, Some(Some(Err(PollError::Store(_))))));
    assert!(h.delivered().is_empty());
    let state = h.store.poll_state(h.instance.id, support::RESOURCE).await.unwrap().unwrap();
    assert_eq!(state.watermark, None, "nothing of the dead poll was written");
    // the lease of the dead poll lapses; the next poll finds the same changes under the same ids
    h.clock.advance(support::LEASE_TTL);
    let r = h.poll_until_run().await.unwrap();
    assert_eq!(r.outcome.created, 2);
    let attempts = h.recorder.attempted.lock().unwrap().clone();
    let ids = |events: &[oc_model::Event]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
    assert_eq!(ids(&attempts[0]), ids(&attempts[1]));
    assert_eq!(ids(&h.delivered()), ids(&attempts[0]));
}

#[tokio::test]
async fn the_residual_predicate_filters_records_locally() {
    let url = "/hubs/finance/things?since=${date:yyyy-MM-dd'T'HH:mm:ss'Z'}&exclude=red";
    let (_db, h) = harness(|_| {}, Setup { url: url.into(), ..setup() }).await;
    let at: Vec<String> = (0..12).map(|i| format!("12:01:{i:02}")).collect();
    let ids = create(&h, &at.iter().map(String::as_str).collect::<Vec<_>>());
    poll_at(&h, "12:02:00").await.unwrap();
    let color = |id: &str| provider(&h, id).unwrap()["color"].as_str().unwrap().to_owned();
    let red = ids.iter().filter(|id| color(id) == "red").count();
    assert!(red > 0 && red < ids.len(), "the scenario needs both kinds");
    let delivered = h.delivered();
    assert_eq!(delivered.len(), ids.len() - red);
    assert!(delivered.iter().all(|e| e.record["color"] != "red"));
}

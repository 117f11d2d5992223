//! The deleted feed is trusted only where the provider does not contradict it. A provider (or a minimal fake of
//! one) that ignores `deleted_since` and lists live records there must not make the engine announce them
//! deleted when it says so itself (`deleted_at: null`) or when the same poll read them live without a deletion
//! date; a real deletion is still notified.

use crate::support;

use chrono::{DateTime, Utc};
use oc_model::EventType;
use support::{Action, Harness, Setup};

fn t(hms: &str) -> DateTime<Utc> {
    format!("2024-05-01T{hms}Z").parse().unwrap()
}

fn ms(hms: &str) -> i64 {
    t(hms).timestamp_millis()
}

async fn harness() -> (oc_store::testing::TestStore, Harness) {
    let (db, store, owner) = support::sqlite().await;
    let h = Harness::new(store, owner, Setup { start: t("12:00:00"), interval_minutes: 1.0, ..Setup::default() }).await;
    (db, h)
}

async fn poll_at(h: &Harness, hms: &str) -> oc_poller::PollReport {
    h.clock.set(t(hms));
    h.poll().await.expect("the job is due").expect("no crash").expect("the poll ran")
}

fn types(h: &Harness, id: &str) -> Vec<EventType> {
    h.delivered().into_iter().filter(|e| e.object_id == id).map(|e| e.event_type).collect()
}

async fn live_records_in_the_deleted_feed_are_not_deletions(null_field: bool) {
    let (_db, h) = harness().await;
    h.model.with(|s, _| s.ignores_bounds = Some(null_field));
    // one record from before the instance, one created after it, one updated after it
    let old = h.model.with(|s, _| s.create(ms("11:00:00")));
    let edited = h.model.with(|s, _| s.create(ms("11:00:00")));
    poll_at(&h, "12:01:00").await;
    let new = h.model.with(|s, _| s.create(ms("12:01:30")));
    h.model.with(|s, _| s.update(&edited, ms("12:01:40")));
    let report = poll_at(&h, "12:02:00").await;
    poll_at(&h, "12:03:00").await;

    assert_eq!(types(&h, &new), [EventType::Created]);
    assert_eq!(types(&h, &edited), [EventType::Updated]);
    assert!(types(&h, &old).is_empty(), "{:?}", types(&h, &old));
    let warned = report.outcome.warnings.iter().any(|w| w.message.contains("the deleted feed returned a record"));
    assert!(warned, "{:#?}", report.outcome.warnings);
    h.finish().await;
}

#[tokio::test]
async fn live_records_with_a_null_deletion_date_are_not_deletions() {
    live_records_in_the_deleted_feed_are_not_deletions(true).await;
}

#[tokio::test]
async fn live_records_without_a_deletion_date_that_the_poll_read_live_are_not_deletions() {
    live_records_in_the_deleted_feed_are_not_deletions(false).await;
}

/// With a truthful deleted feed, a record read live by the change scan and deleted before the deleted feed is
/// read is notified as deleted (its deletion date is there).
#[tokio::test]
async fn a_record_deleted_during_the_poll_is_notified_as_deleted() {
    let (_db, h) = harness().await;
    poll_at(&h, "12:01:00").await;
    let id = h.model.with(|s, _| s.create(ms("12:01:30")));
    // deleted right before the poll's deleted-feed request (the second request of the poll)
    let calls = h.model.with(|s, _| s.calls);
    h.model.with(|s, _| s.script.push((calls + 2, Action::Delete(id.clone()))));
    poll_at(&h, "12:02:00").await;
    poll_at(&h, "12:03:00").await;
    assert_eq!(types(&h, &id), [EventType::Created, EventType::Deleted]);
    h.finish().await;
}

//! Deletions of a resource without a deleted feed, found by a complete scan of every id now and then
//! (`reconcileDeletes`), and the replay a later backfill asks for. A record missing from a *complete* scan is
//! DELETED, once; a scan that fails midway, is throttled, sees the total move or returns too few ids proves
//! nothing. A replay notifies what was not notified, and nothing again that was, even where the replay would
//! classify it differently (under another event id).

use crate::support;

use chrono::{DateTime, Utc};
use oc_model::EventType;
use oc_model::ports::{InstanceStore, InstanceUpdate};
use serde_json::json;
use support::{Action, Harness, Setup};

fn t(hms: &str) -> DateTime<Utc> {
    format!("2024-05-01T{hms}Z").parse().unwrap()
}

fn ms(hms: &str) -> i64 {
    t(hms).timestamp_millis()
}

/// A harness polling every minute a resource without a deleted feed, two records a page, reconciling deletions
/// every five minutes.
async fn harness() -> (oc_store::testing::TestStore, Harness) {
    let (db, store, owner) = support::sqlite().await;
    let setup = Setup {
        start: t("12:00:00"),
        interval_minutes: 1.0,
        url: "/hubs/finance/things?since=${date:yyyy-MM-dd'T'HH:mm:ss'Z'}&nodeleted=1".into(),
        poller: json!({"reconcileDeletes": true, "reconcileDeletesPeriod": 5, "pageSize": 2}),
        ..Setup::default()
    };
    (db, Harness::new(store, owner, setup).await)
}

async fn poll_at(h: &Harness, hms: &str) -> oc_poller::PollReport {
    h.clock.set(t(hms));
    h.poll().await.unwrap_or_else(|| panic!("the job is due at {hms}")).expect("no crash").expect("the poll ran")
}

fn types(h: &Harness, id: &str) -> Vec<EventType> {
    h.delivered().into_iter().filter(|e| e.object_id == id).map(|e| e.event_type).collect()
}

/// The complete scans the model served: requests with the lower bound at the Unix epoch (first pages only).
fn scans(h: &Harness) -> usize {
    h.model.with(|s, _| s.requests.iter().filter(|r| r.starts_with("false:1970-01-01") && r.ends_with(":1")).count())
}

fn warned(report: &oc_poller::PollReport, text: &str) -> bool {
    report.outcome.warnings.iter().any(|w| w.message.contains(text))
}

/// Four records from before the instance; the first poll's scan is the baseline.
async fn baseline(h: &Harness) -> Vec<String> {
    let ids: Vec<String> = (0..4).map(|_| h.model.with(|s, _| s.create(ms("11:00:00")))).collect();
    let report = poll_at(h, "12:01:00").await;
    assert_eq!(scans(h), 1, "the first poll scans every id");
    assert!(report.outcome.warnings.is_empty(), "{:#?}", report.outcome.warnings);
    assert!(h.delivered().is_empty(), "the baseline notifies nothing");
    ids
}

/// Schedules `action` on the `n`th request (1-based) of the next poll's complete scan: the change scan of an idle
/// window is one request, then the complete scan's pages follow.
fn on_scan_request(h: &Harness, n: u64, action: Action) -> u64 {
    let call = h.model.with(|s, _| s.calls) + 1 + n;
    assert_eq!(h.model.with(|s, _| s.requests.len() as u64), call - 1 - n, "one request a call");
    h.model.with(|s, _| s.script.push((call, action)));
    call
}

fn served_a_scan_page(h: &Harness, call: u64) -> bool {
    h.model.with(|s, _| s.requests.get(call as usize - 1).is_some_and(|r| r.starts_with("false:1970-01-01")))
}

#[tokio::test]
async fn a_record_missing_from_a_complete_scan_is_deleted_once() {
    let (_db, h) = harness().await;
    let ids = baseline(&h).await;
    h.model.with(|s, _| s.delete(&ids[1], ms("12:01:30")));
    let created = h.model.with(|s, _| s.create(ms("12:02:10")));
    for m in 2..=5 {
        poll_at(&h, &format!("12:0{m}:00")).await;
    }
    assert_eq!(scans(&h), 1, "no scan before the period is over");
    assert!(types(&h, &ids[1]).is_empty());
    assert_eq!(types(&h, &created), [EventType::Created]);

    poll_at(&h, "12:06:00").await;
    assert_eq!(scans(&h), 2);
    assert_eq!(types(&h, &ids[1]), [EventType::Deleted], "a record from before the instance, never notified");
    let deleted = h.delivered().into_iter().find(|e| e.object_id == ids[1]).unwrap();
    assert_eq!(deleted.record, json!({"id": ids[1]}), "only its id: it was never notified");
    assert!(deleted.date > t("12:01:30") && deleted.date <= t("12:06:00"), "dated at the scan: {}", deleted.date);

    // a notified record deleted later: DELETED with its last notified record, at the next scan only
    h.model.with(|s, _| s.delete(&created, ms("12:07:00")));
    for m in 7..=10 {
        poll_at(&h, &format!("12:{m:02}:00")).await;
    }
    assert_eq!(types(&h, &created), [EventType::Created]);
    for m in 11..=20 {
        poll_at(&h, &format!("12:{m:02}:00")).await;
    }
    assert_eq!(scans(&h), 4, "every five minutes");
    assert_eq!(types(&h, &created), [EventType::Created, EventType::Deleted]);
    let last = h.delivered().into_iter().filter(|e| e.object_id == created).collect::<Vec<_>>();
    assert_eq!(last[1].record, last[0].record, "the deletion carries the last notified record");
    assert_eq!(types(&h, &ids[1]), [EventType::Deleted], "once");
    for id in [&ids[0], &ids[2], &ids[3]] {
        assert!(types(&h, id).is_empty(), "{id} is live: no noise");
    }
    h.finish().await;
}

#[tokio::test]
async fn without_reconcile_deletes_a_resource_without_a_feed_scans_no_ids() {
    let (db, store, owner) = support::sqlite().await;
    let setup = Setup {
        start: t("12:00:00"),
        interval_minutes: 1.0,
        url: "/hubs/finance/things?since=${date:yyyy-MM-dd'T'HH:mm:ss'Z'}&nodeleted=1".into(),
        ..Setup::default()
    };
    let h = Harness::new(store, owner, setup).await;
    let id = h.model.with(|s, _| s.create(ms("11:00:00")));
    poll_at(&h, "12:01:00").await;
    h.model.with(|s, _| s.delete(&id, ms("12:01:30")));
    for m in 2..=9 {
        poll_at(&h, &format!("12:0{m}:00")).await;
    }
    assert_eq!(scans(&h), 0);
    assert!(h.delivered().is_empty());
    h.finish().await;
    drop(db);
}

async fn an_interrupted_scan_proves_nothing(n: u64, action: Action, why: &str) {
    let (_db, h) = harness().await;
    let ids = baseline(&h).await;
    h.model.with(|s, _| s.delete(&ids[1], ms("12:01:30")));
    for m in 2..=5 {
        poll_at(&h, &format!("12:0{m}:00")).await;
    }
    let call = on_scan_request(&h, n, action);
    let report = poll_at(&h, "12:06:00").await;
    assert!(
        served_a_scan_page(&h, call),
        "the action hit the complete scan: {:?}",
        h.model.with(|s, _| s.requests.clone())
    );
    assert!(types(&h, &ids[1]).is_empty(), "{why}: no DELETED from a partial scan");
    assert!(warned(&report, "deletions not reconciled this time"), "{why}: {:#?}", report.outcome.warnings);
    assert_eq!(report.outcome.status, oc_model::ports::PollStatus::Ok, "the changes were still polled");
    // the next poll scans again (the period counts from the last complete scan) and finds the deletion
    let report = poll_at(&h, "12:07:00").await;
    assert!(report.outcome.warnings.is_empty(), "{:#?}", report.outcome.warnings);
    assert_eq!(types(&h, &ids[1]), [EventType::Deleted], "{why}: found by the next complete scan");
    for id in [&ids[0], &ids[2], &ids[3]] {
        assert!(types(&h, id).is_empty(), "{why}: {id} is live");
    }
    h.finish().await;
}

#[tokio::test]
async fn a_scan_that_fails_midway_proves_nothing() {
    an_interrupted_scan_proves_nothing(2, Action::Fail, "a 503 on the second page").await;
}

#[tokio::test]
async fn a_throttled_scan_proves_nothing() {
    an_interrupted_scan_proves_nothing(1, Action::Throttle, "a 429 on the first page").await;
}

#[tokio::test]
async fn a_scan_whose_total_moves_proves_nothing() {
    // a record created between the scan's two pages: the total moves from 3 to 4
    an_interrupted_scan_proves_nothing(2, Action::Create, "the total moved").await;
}

#[tokio::test]
async fn a_scan_with_too_few_ids_proves_nothing() {
    let (_db, h) = harness().await;
    let ids = baseline(&h).await;
    // three of the four gone at once: more likely a provider answering too little than a mass deletion
    for id in &ids[..3] {
        h.model.with(|s, _| s.delete(id, ms("12:01:30")));
    }
    for m in 2..=5 {
        poll_at(&h, &format!("12:0{m}:00")).await;
    }
    let report = poll_at(&h, "12:06:00").await;
    assert!(warned(&report, "too few to prove deletions"), "{:#?}", report.outcome.warnings);
    assert!(h.delivered().is_empty(), "{:?}", h.delivered());
    h.finish().await;
}

/// A backfill given to the live resource replays it: a record changed in the replayed span that was never
/// notified is, one created after the backfill is CREATED, and one already notified as UPDATED (it was created
/// before the instance) is not notified again as CREATED, though its `seen` entry was pruned long ago.
#[tokio::test]
async fn a_backfill_on_a_live_resource_replays_without_notifying_twice() {
    let (db, store, owner) = support::sqlite().await;
    let setup = Setup { start: t("12:00:00"), interval_minutes: 1.0, ..Setup::default() };
    let h = Harness::new(store.clone(), owner, setup).await;
    let old = h.model.with(|s, _| s.create(ms("10:00:00")));
    h.model.with(|s, _| s.update(&old, ms("11:30:00")));
    let between = h.model.with(|s, _| s.create(ms("11:20:00")));
    let notified = h.model.with(|s, _| s.create(ms("11:40:00")));
    h.model.with(|s, _| s.update(&notified, ms("12:00:30")));
    let fresh = h.model.with(|s, _| s.create(ms("12:00:40")));
    for m in 1..=40 {
        poll_at(&h, &format!("12:{m:02}:00")).await;
    }
    assert_eq!(types(&h, &notified), [EventType::Updated], "created before the instance");
    assert_eq!(types(&h, &fresh), [EventType::Created]);
    assert!(types(&h, &old).is_empty() && types(&h, &between).is_empty(), "before the instance");

    let mut configuration = h.instance.configuration.clone();
    configuration.insert("event.poller.backfill", json!("2024-05-01T11:00:00Z"));
    h.clock.set(t("12:40:30"));
    let update = InstanceUpdate { configuration: Some(configuration), now: t("12:40:30"), ..Default::default() };
    store.update_instance(owner.org_id, h.instance.id, &update).await.expect("the update");
    assert!(store.poll_state(h.instance.id, support::RESOURCE).await.unwrap().unwrap().reseed);
    let report = poll_at(&h, "12:40:30").await;
    assert!(report.outcome.warnings.is_empty(), "{:#?}", report.outcome.warnings);
    assert_eq!(types(&h, &old), [EventType::Updated], "changed in the replayed span");
    assert_eq!(types(&h, &between), [EventType::Created], "created after the backfill");
    assert_eq!(types(&h, &notified), [EventType::Updated], "not again, under another id");
    assert_eq!(types(&h, &fresh), [EventType::Created], "not again");
    assert!(!store.poll_state(h.instance.id, support::RESOURCE).await.unwrap().unwrap().reseed, "replay done");
    for m in 41..=45 {
        poll_at(&h, &format!("12:{m:02}:30")).await;
    }
    assert_eq!(h.delivered().len(), 4, "{:#?}", h.delivered());
    h.finish().await;
    drop(db);
}

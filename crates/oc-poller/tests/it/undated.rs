//! A resource without `datesConfiguration` (issue 18, item 8): its records carry no date the engine reads, so
//! the query cannot be bounded and every poll reads every record. The first poll replays nothing
//! (`change-detection.md`, "First poll and backfill"): it records what exists as the baseline of `seen`; later
//! polls notify what changed since, by content.

use crate::support;

use chrono::{DateTime, Utc};
use oc_model::EventType;
use serde_json::json;
use support::{Harness, Setup};

fn t(hms: &str) -> DateTime<Utc> {
    format!("2024-05-01T{hms}Z").parse().unwrap()
}

fn ms(hms: &str) -> i64 {
    t(hms).timestamp_millis()
}

async fn harness(poller: serde_json::Value) -> (oc_store::testing::TestStore, Harness) {
    let (db, store, owner) = support::sqlite().await;
    let setup = Setup {
        start: t("12:00:00"),
        interval_minutes: 1.0,
        url: "/hubs/finance/things?nodeleted=1".into(),
        poller,
        ..Setup::default()
    };
    (db, Harness::new(store, owner, setup).await)
}

async fn poll_at(h: &Harness, hms: &str) -> oc_poller::PollReport {
    h.clock.set(t(hms));
    h.poll().await.unwrap_or_else(|| panic!("the job is due at {hms}")).expect("no crash").expect("the poll ran")
}

fn events(h: &Harness) -> Vec<(String, EventType)> {
    h.delivered().into_iter().map(|e| (e.object_id, e.event_type)).collect()
}

#[tokio::test]
async fn the_first_poll_of_an_undated_resource_notifies_none_of_the_existing_records() {
    let (_db, h) = harness(json!({"datesConfiguration": null})).await;
    let ids: Vec<String> = (0..25).map(|_| h.model.with(|s, _| s.create(ms("11:00:00")))).collect();
    let first = poll_at(&h, "12:01:00").await;
    assert_eq!(first.outcome.records, 25, "the first poll read every record");
    assert_eq!(events(&h), vec![], "the first poll replays nothing");
    assert!(first.watermark.is_some(), "the baseline poll completed");

    // later changes are notified: an update of an existing record, a record created after the instance
    h.model.with(|s, _| s.update(&ids[3], ms("12:01:30")));
    let new = h.model.with(|s, _| s.create(ms("12:01:40")));
    poll_at(&h, "12:02:00").await;
    // without a created date a new record is UPDATED (never CREATED: nothing tells it is new)
    let mut got = events(&h);
    got.sort();
    assert_eq!(got, vec![(ids[3].clone(), EventType::Updated), (new.clone(), EventType::Updated)]);

    // and nothing again when nothing changed
    poll_at(&h, "12:03:00").await;
    assert_eq!(events(&h).len(), 2);
    h.finish().await;
}

#[tokio::test]
async fn the_first_poll_with_only_a_created_date_notifies_records_created_after_the_instance() {
    let (_db, h) = harness(json!({"datesConfiguration": {"createdDateField": "created_at"}})).await;
    for _ in 0..5 {
        h.model.with(|s, _| s.create(ms("11:00:00")));
    }
    // created after the instance, before its first poll: a change to notify
    let new = h.model.with(|s, _| s.create(ms("12:00:30")));
    poll_at(&h, "12:01:00").await;
    assert_eq!(events(&h), vec![(new, EventType::Created)]);
    h.finish().await;
}

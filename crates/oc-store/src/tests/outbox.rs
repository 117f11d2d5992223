//! The outbox: batching, per-object order, attempts, listing, redelivery, retention, gauges.

use super::prelude::*;
use crate::SqlStore;
use crate::db::args;
use std::time::Duration;

use oc_model::event::EventType;
use oc_model::ports::{
    AttemptRecord, DeliveryClaim, EventFilter, InstanceUpdate, Lease, NewAttempt, NextStep, NotificationStatus,
    OcEventStatus, OutboxStats, StatusFilter, StoreError,
};
use uuid::Uuid;

use super::{TTL, at, config, customers, emit, event, on_both, open, setup};
use crate::Backend;

fn attempt(secs: i64, status: Option<u16>, error: Option<&str>) -> NewAttempt {
    NewAttempt {
        at: at(secs),
        status_code: status,
        latency_ms: 12,
        error: error.map(String::from),
        response_excerpt: "x".repeat(3000),
    }
}

async fn claim(s: &SqlStore, secs: i64) -> Vec<DeliveryClaim> {
    s.claim_deliveries("worker", at(secs), 100, TTL).await.unwrap()
}

fn objects(c: &DeliveryClaim) -> Vec<String> {
    c.events.iter().map(|e| e.object_id.clone()).collect()
}

async fn batching_groups_by_instance_and_object_type(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let two = config(&[("customers", "/hubs/finance/customers"), ("vendors", "/hubs/finance/vendors")], "1", true);
    let (_, inst) = setup(&s, two).await;
    let (_, other) = setup(&s, customers()).await;
    let customers: Vec<_> = (0..25).map(|i| event(inst.id, "customers", &format!("c{i:02}"), i)).collect();
    let vendors: Vec<_> = (0..3).map(|i| event(inst.id, "vendors", &format!("v{i}"), i)).collect();
    emit(&s, inst.id, "customers", customers.clone(), at(0)).await;
    emit(&s, inst.id, "vendors", vendors.clone(), at(60)).await;
    emit(&s, other.id, "customers", vec![event(other.id, "customers", "o", 1)], at(120)).await;
    assert_eq!(s.outbox_stats(at(121)).await.unwrap().unbatched_events, 29);
    assert_eq!(s.batch_events(at(121), 10).await.unwrap(), 5);
    assert_eq!(s.batch_events(at(121), 10).await.unwrap(), 0, "nothing left to batch");
    let claims = claim(&s, 121).await;
    let shape: Vec<(i64, &str, usize)> = claims
        .iter()
        .map(|c| (c.notification.instance_id, c.notification.object_type.as_str(), c.events.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (inst.id, "customers", 10),
            (inst.id, "customers", 10),
            (inst.id, "customers", 5),
            (inst.id, "vendors", 3),
            (other.id, "customers", 1)
        ]
    );
    let all: Vec<_> = claims[..3].iter().flat_map(|c| c.events.clone()).collect();
    assert_eq!(all, customers, "outbox order, records intact");
    assert_eq!(claims[3].events, vendors);
    let ids: std::collections::HashSet<Uuid> = claims.iter().map(|c| c.notification.id).collect();
    assert_eq!(ids.len(), 5);
    assert!(claims.iter().all(|c| c.notification.id.get_version_num() == 4));
    let n = &claims[0].notification;
    assert_eq!(
        (n.status, n.attempts, n.created_at, n.next_attempt_at),
        (NotificationStatus::Delivering, 0, at(121), Some(at(121)))
    );
    // max_events is clamped to 1..=10
    emit(
        &s,
        other.id,
        "customers",
        (0..12).map(|i| event(other.id, "customers", &format!("p{i}"), i)).collect(),
        at(180),
    )
    .await;
    assert_eq!(s.batch_events(at(181), 0).await.unwrap(), 12);
}

async fn per_object_order(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let two = config(&[("customers", "/hubs/finance/customers"), ("vendors", "/hubs/finance/vendors")], "1", true);
    let (owner, inst) = setup(&s, two).await;
    emit(
        &s,
        inst.id,
        "customers",
        vec![event(inst.id, "customers", "x", 1), event(inst.id, "customers", "y", 1)],
        at(0),
    )
    .await;
    s.batch_events(at(1), 10).await.unwrap(); // n1 {x, y}
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "x", 2)], at(60)).await;
    emit(&s, inst.id, "vendors", vec![event(inst.id, "vendors", "x", 2)], at(60)).await;
    s.batch_events(at(61), 10).await.unwrap(); // n2 {x again}, n3 {vendor x}
    let first = claim(&s, 61).await;
    assert_eq!(first.iter().map(objects).collect::<Vec<_>>(), [vec!["x", "y"], vec!["x"]]);
    assert_eq!(first[1].notification.object_type, "vendors", "another object type is another object");
    let n1 = &first[0];
    let n3 = &first[1];
    s.record_attempt(n3.notification.id, &n3.lease, &attempt(62, Some(200), None), NextStep::Delivered).await.unwrap();
    // n1 fails and is retried later: n2 waits behind it
    s.record_attempt(n1.notification.id, &n1.lease, &attempt(62, Some(503), None), NextStep::RetryAt(at(100)))
        .await
        .unwrap();
    assert!(claim(&s, 99).await.is_empty(), "the later change waits for the earlier one");
    let retry = claim(&s, 100).await;
    assert_eq!(retry.len(), 1);
    assert_eq!((retry[0].notification.id, retry[0].lease.generation), (n1.notification.id, 2));
    s.record_attempt(n1.notification.id, &retry[0].lease, &attempt(101, Some(200), None), NextStep::Delivered)
        .await
        .unwrap();
    let next = claim(&s, 101).await;
    assert_eq!(next.iter().map(objects).collect::<Vec<_>>(), [vec!["x"]]);
    assert_eq!(next[0].notification.object_type, "customers");
    // a notification failed for good does not block later ones
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "x", 3)], at(120)).await;
    s.batch_events(at(121), 10).await.unwrap();
    assert!(claim(&s, 121).await.is_empty(), "n2 is being delivered");
    s.record_attempt(next[0].notification.id, &next[0].lease, &attempt(122, Some(500), None), NextStep::Failed)
        .await
        .unwrap();
    let last = claim(&s, 122).await;
    assert_eq!(last.iter().map(objects).collect::<Vec<_>>(), [vec!["x"]]);
    assert_eq!(last[0].events[0].date, at(3));
    let _ = owner;
}

async fn claims_skip_switched_off_instances(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "x", 1)], at(0)).await;
    s.batch_events(at(1), 10).await.unwrap();
    let claimable = |secs| {
        let s = s.clone();
        async move {
            let claims = claim(&s, secs).await;
            for c in &claims {
                let next = NextStep::RetryAt(at(secs));
                s.record_attempt(c.notification.id, &c.lease, &attempt(secs, None, Some("probe")), next).await.unwrap();
            }
            !claims.is_empty()
        }
    };
    assert!(!claimable(0).await, "not due before it was built");
    s.set_disabled(owner.org_id, inst.id, true, at(2)).await.unwrap();
    assert!(!claimable(2).await, "disabled");
    s.set_disabled(owner.org_id, inst.id, false, at(2)).await.unwrap();
    s.set_notifications_disabled(inst.id, Some("410 Gone")).await.unwrap();
    assert!(!claimable(3).await, "switched off by the receiver");
    s.set_notifications_disabled(inst.id, None).await.unwrap();
    let off = config(&[("customers", "/hubs/finance/customers")], "1", false);
    s.update_instance(
        owner.org_id,
        inst.id,
        &InstanceUpdate { configuration: Some(off), now: at(4), ..Default::default() },
    )
    .await
    .unwrap();
    assert!(!claimable(4).await, "notifications disabled");
    s.update_instance(
        owner.org_id,
        inst.id,
        &InstanceUpdate { configuration: Some(customers()), now: at(5), ..Default::default() },
    )
    .await
    .unwrap();
    assert!(claimable(5).await);
    let (record, attempts) = s.notification(owner.org_id, claim_id(&s, owner.org_id).await).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts, attempts.len()), (NotificationStatus::Pending, 1, 1));
}

async fn claim_id(s: &SqlStore, org: i64) -> Uuid {
    let page = s.list_events(org, &EventFilter { page: 1, page_size: 1, ..Default::default() }).await.unwrap();
    page.items[0].notification_id.unwrap()
}

async fn attempts_are_recorded(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "x", 1)], at(0)).await;
    s.batch_events(at(1), 10).await.unwrap();
    let c = claim(&s, 1).await.remove(0);
    let id = c.notification.id;
    s.record_attempt(id, &c.lease, &attempt(2, Some(500), None), NextStep::RetryAt(at(10))).await.unwrap();
    assert!(
        matches!(
            s.record_attempt(id, &c.lease, &attempt(3, Some(200), None), NextStep::Delivered).await,
            Err(StoreError::LeaseLost(_))
        ),
        "a released lease records nothing"
    );
    let (n, attempts) = s.notification(owner.org_id, id).await.unwrap().unwrap();
    assert_eq!(
        (n.status, n.attempts, n.next_attempt_at, n.last_error.as_deref()),
        (NotificationStatus::Pending, 1, Some(at(10)), Some("HTTP 500"))
    );
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].number, attempts[0].attempt.status_code, attempts[0].attempt.latency_ms),
        (1, Some(500), 12)
    );
    assert_eq!(attempts[0].attempt.response_excerpt.len(), 1024, "first 1 KB kept");
    let c = claim(&s, 10).await.remove(0);
    s.record_attempt(id, &c.lease, &attempt(11, None, Some("connection refused")), NextStep::RetryAt(at(20)))
        .await
        .unwrap();
    let c = claim(&s, 20).await.remove(0);
    let wrong = Lease { generation: c.lease.generation - 1, ..c.lease.clone() };
    assert!(matches!(
        s.record_attempt(id, &wrong, &attempt(21, Some(200), None), NextStep::Delivered).await,
        Err(StoreError::LeaseLost(_))
    ));
    let expired = attempt(60, Some(200), None);
    assert!(
        matches!(s.record_attempt(id, &c.lease, &expired, NextStep::Delivered).await, Err(StoreError::LeaseLost(_))),
        "expired lease"
    );
    s.record_attempt(id, &c.lease, &attempt(21, Some(204), None), NextStep::Delivered).await.unwrap();
    let (n, attempts) = s.notification(owner.org_id, id).await.unwrap().unwrap();
    assert_eq!((n.status, n.attempts, n.next_attempt_at, n.last_error), (NotificationStatus::Delivered, 3, None, None));
    assert_eq!(n.delivered_at, Some(at(21) + chrono::Duration::milliseconds(12)));
    assert_eq!(attempts.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(attempts[1].attempt.error.as_deref(), Some("connection refused"));
    assert!(s.notification(owner.org_id + 1, id).await.unwrap().is_none(), "another organization's");
    assert!(s.notification(owner.org_id, Uuid::new_v4()).await.unwrap().is_none());
}

async fn events_are_listed_and_detailed(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let two = config(&[("customers", "/hubs/finance/customers"), ("vendors", "/hubs/finance/vendors")], "1", true);
    let (owner, inst) = setup(&s, two).await;
    let mut second = crate::testing::new_instance(owner, customers(), at(0));
    second.token = "second".into();
    let second = s.create_instance(&second).await.unwrap();
    let mut deleted = event(inst.id, "customers", "c2", 2);
    deleted.event_type = EventType::Deleted;
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "c1", 1), deleted.clone()], at(0)).await;
    emit(&s, inst.id, "vendors", vec![event(inst.id, "vendors", "v1", 1)], at(0)).await;
    s.batch_events(at(1), 10).await.unwrap();
    emit(&s, second.id, "customers", vec![event(second.id, "customers", "s1", 1)], at(2)).await;
    let c = claim(&s, 2).await;
    let customers_claim = c.iter().find(|c| c.notification.object_type == "customers").unwrap();
    s.record_attempt(
        customers_claim.notification.id,
        &customers_claim.lease,
        &attempt(3, Some(200), None),
        NextStep::Delivered,
    )
    .await
    .unwrap();

    let list = |filter: EventFilter| {
        let s = s.clone();
        async move {
            let page = s.list_events(owner.org_id, &filter).await.unwrap();
            (page.total, page.items.iter().map(|v| v.event.object_id.clone()).collect::<Vec<_>>())
        }
    };
    let page = |n| EventFilter { page: n, page_size: 2, ..Default::default() };
    assert_eq!(list(page(1)).await, (4, vec!["s1".into(), "v1".into()]), "newest first");
    assert_eq!(list(page(2)).await, (4, vec!["c2".into(), "c1".into()]));
    assert_eq!(list(page(3)).await, (4, vec![]));
    let all = || EventFilter { page: 1, page_size: 10, ..Default::default() };
    assert_eq!(list(EventFilter { instance_id: Some(second.id), ..all() }).await.1, ["s1"]);
    let delivery = |s: NotificationStatus| EventFilter { status: Some(StatusFilter::Delivery(s)), ..all() };
    let oc = |s: OcEventStatus| EventFilter { status: Some(StatusFilter::Oc(s)), ..all() };
    assert_eq!(list(delivery(NotificationStatus::Delivered)).await.1, ["c2", "c1"]);
    assert_eq!(list(delivery(NotificationStatus::Pending)).await.1, ["s1"], "unbatched is pending");
    assert_eq!(list(delivery(NotificationStatus::Delivering)).await.1, ["v1"]);
    // Open Connectors' vocabulary: NEW (not sent yet), DISPATCHED (being delivered), NOTIFIED
    assert_eq!(list(oc(OcEventStatus::New)).await.1, ["s1"]);
    assert_eq!(list(oc(OcEventStatus::Dispatched)).await.1, ["v1"]);
    assert_eq!(list(oc(OcEventStatus::Notified)).await.1, ["c2", "c1"]);
    assert!(list(oc(OcEventStatus::Failed)).await.1.is_empty());
    let listed = s.list_events(owner.org_id, &all()).await.unwrap().items;
    let seqs: Vec<i64> = listed.iter().map(|v| v.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "ids in commit order, newest first: {seqs:?}");
    let c1 = listed.iter().find(|v| v.event.object_id == "c1").unwrap();
    assert_eq!((c1.attempts, c1.oc_status()), (1, OcEventStatus::Notified));
    assert_eq!(list(EventFilter { event_type: Some(EventType::Deleted), ..all() }).await.1, ["c2"]);
    assert_eq!(list(EventFilter { object_type: Some("vendors".into()), ..all() }).await.1, ["v1"]);
    assert_eq!(s.list_events(owner.org_id + 1, &all()).await.unwrap().total, 0, "another organization's");

    let detail = s.event_detail(owner.org_id, deleted.event_id).await.unwrap().unwrap();
    assert_eq!(detail.event.event, deleted);
    assert_eq!(
        (detail.event.instance_id, detail.event.created_at, detail.event.status),
        (inst.id, at(0), NotificationStatus::Delivered)
    );
    assert_eq!(detail.event.notification_id, Some(customers_claim.notification.id));
    assert_eq!(detail.notification.as_ref().map(|n| n.id), Some(customers_claim.notification.id));
    assert_eq!(detail.attempts.len(), 1);
    let unbatched = event(second.id, "customers", "s1", 1);
    let detail = s.event_detail(owner.org_id, unbatched.event_id).await.unwrap().unwrap();
    assert_eq!(
        (detail.event.status, detail.notification, detail.attempts.len()),
        (NotificationStatus::Pending, None, 0)
    );
    assert!(s.event_detail(owner.org_id + 1, deleted.event_id).await.unwrap().is_none());
}

async fn redelivery(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let events: Vec<_> = (0..3).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect();
    emit(&s, inst.id, "customers", events, at(0)).await;
    s.batch_events(at(1), 1).await.unwrap();
    let claims = claim(&s, 1).await;
    for c in &claims {
        s.record_attempt(c.notification.id, &c.lease, &attempt(2, Some(500), None), NextStep::Failed).await.unwrap();
    }
    let stats = s.outbox_stats(at(3)).await.unwrap();
    assert_eq!((stats.failed_notifications, stats.pending_notifications), (3, 0));
    assert!(claim(&s, 1000).await.is_empty(), "failed notifications wait for a redelivery");
    let one = claims[0].notification.id;
    assert!(!s.redeliver(owner.org_id + 1, one, at(10)).await.unwrap(), "another organization's");
    assert!(s.redeliver(owner.org_id, one, at(10)).await.unwrap());
    assert!(!s.redeliver(owner.org_id, one, at(10)).await.unwrap(), "no longer failed");
    let again = claim(&s, 10).await;
    assert_eq!(again.iter().map(|c| c.notification.id).collect::<Vec<_>>(), [one]);
    assert_eq!(s.redeliver_failed(owner.org_id + 1, inst.id, at(11)).await.unwrap(), 0);
    assert_eq!(s.redeliver_failed(owner.org_id, inst.id, at(11)).await.unwrap(), 2);
    assert_eq!(claim(&s, 11).await.len(), 2);
}

async fn retention_prunes_delivered_only(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let events: Vec<_> = (0..4).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect();
    emit(&s, inst.id, "customers", events.clone(), at(0)).await;
    s.batch_events(at(1), 1).await.unwrap();
    let claims = s.claim_deliveries("worker", at(1), 100, Duration::from_secs(10_000)).await.unwrap();
    let steps = [
        (100, NextStep::Delivered),
        (200, NextStep::Delivered),
        (100, NextStep::Failed),
        (100, NextStep::RetryAt(at(5000))),
    ];
    for (c, (secs, next)) in claims.iter().zip(steps) {
        s.record_attempt(c.notification.id, &c.lease, &attempt(secs, Some(200), None), next).await.unwrap();
    }
    let ids: Vec<Uuid> = claims.iter().map(|c| c.notification.id).collect();
    assert_eq!(s.prune_delivered(at(0)).await.unwrap(), 0);
    assert_eq!(s.prune_delivered(at(150)).await.unwrap(), 1);
    assert!(s.notification(owner.org_id, ids[0]).await.unwrap().is_none(), "delivered: gone with its attempts");
    assert!(s.event_detail(owner.org_id, events[0].event_id).await.unwrap().is_none(), "and its events");
    assert!(s.notification(owner.org_id, ids[1]).await.unwrap().is_some(), "delivered later: kept");
    assert_eq!(s.prune_delivered(at(1000)).await.unwrap(), 1);
    for id in &ids[2..] {
        assert!(s.notification(owner.org_id, *id).await.unwrap().is_some(), "failed and pending stay");
    }
    assert_eq!(s.prune_delivered(at(1000)).await.unwrap(), 0);
}

async fn outbox_gauges(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, inst) = setup(&s, customers()).await;
    assert_eq!(s.outbox_stats(at(0)).await.unwrap(), OutboxStats::default());
    let events: Vec<_> = (0..3).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect();
    emit(&s, inst.id, "customers", events, at(0)).await;
    assert_eq!(s.outbox_stats(at(0)).await.unwrap().unbatched_events, 3);
    s.batch_events(at(10), 2).await.unwrap();
    let stats = s.outbox_stats(at(70)).await.unwrap();
    assert_eq!(
        stats,
        OutboxStats { unbatched_events: 0, pending_notifications: 2, failed_notifications: 0, oldest_pending_secs: 60 }
    );
    let c = s.claim_deliveries("w", at(70), 1, Duration::from_secs(60)).await.unwrap().remove(0);
    s.record_attempt(c.notification.id, &c.lease, &attempt(71, Some(500), None), NextStep::Failed).await.unwrap();
    let stats = s.outbox_stats(at(80)).await.unwrap();
    assert_eq!((stats.pending_notifications, stats.failed_notifications), (1, 1));
}

async fn the_background_pruner_prunes(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let events = vec![event(inst.id, "customers", "o", 1), event(inst.id, "customers", "p", 1)];
    emit(&s, inst.id, "customers", events, at(0)).await;
    s.batch_events(at(1), 1).await.unwrap();
    let claims = claim(&s, 1).await;
    s.record_attempt(claims[0].notification.id, &claims[0].lease, &attempt(2, Some(200), None), NextStep::Delivered)
        .await
        .unwrap();
    s.record_attempt(claims[1].notification.id, &claims[1].lease, &attempt(2, Some(500), None), NextStep::Failed)
        .await
        .unwrap();
    let clock = std::sync::Arc::new(oc_model::ports::ManualClock::new(at(2) + chrono::Duration::days(31)));
    let pruner = crate::spawn_pruner(s.clone(), clock, crate::DEFAULT_RETENTION, Duration::from_secs(3600));
    // the first round runs at once
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.notification(owner.org_id, claims[0].notification.id).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "not pruned within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pruner.abort();
    assert!(s.notification(owner.org_id, claims[1].notification.id).await.unwrap().is_some(), "failed ones stay");
}

fn record(c: &DeliveryClaim, attempt: NewAttempt, next: NextStep) -> AttemptRecord {
    AttemptRecord { notification: c.notification.id, lease: c.lease.clone(), attempt, next }
}

/// `Ok`, or the kind of error, of each result: what a comparison of two paths can look at.
fn kinds(results: &[Result<(), StoreError>]) -> Vec<&'static str> {
    results
        .iter()
        .map(|r| match r {
            Ok(()) => "ok",
            Err(StoreError::LeaseLost(_)) => "lease lost",
            Err(_) => "other error",
        })
        .collect()
}

/// Everything the store says about a notification and its attempts, without its (random) id.
type Snapshot = (
    NotificationStatus,
    u32,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<String>,
    Vec<oc_model::ports::StoredAttempt>,
);

async fn snapshot(s: &SqlStore, org: i64, id: Uuid) -> Snapshot {
    let (n, attempts) = s.notification(org, id).await.unwrap().unwrap();
    (n.status, n.attempts, n.next_attempt_at, n.delivered_at, n.last_error, attempts)
}

/// What [`mixed_outcomes`] saw: per record its result, per claimed notification (by first object) its state,
/// and which objects are claimed later, in order.
#[derive(Debug, PartialEq)]
struct MixedRun {
    results: Vec<&'static str>,
    states: Vec<(String, Snapshot)>,
    later: Vec<Vec<String>>,
    gone_switched_off: bool,
}

/// One batch of every kind of outcome: delivered, failed for good, retried (HTTP error, connection error),
/// `410 Gone` (notifications switched off, kept pending), a wrong lease, an expired lease, a record given
/// twice, and an earlier change of an object retried so that the later one keeps waiting. Recorded one call
/// per record, or all in one `record_attempts` call.
async fn mixed_outcomes(b: Backend, batched: bool) -> Option<MixedRun> {
    let t = open(b).await?;
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let (gone_owner, gone) = setup(&s, customers()).await;
    let objects = ["a", "b", "c", "d", "e", "f", "x"];
    emit(&s, inst.id, "customers", objects.iter().map(|o| event(inst.id, "customers", o, 1)).collect(), at(0)).await;
    emit(&s, gone.id, "customers", vec![event(gone.id, "customers", "g", 1)], at(0)).await;
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "x", 2)], at(60)).await;
    assert_eq!(s.batch_events(at(61), 1).await.unwrap(), 9);
    let claims = claim(&s, 61).await;
    let by_object = |o: &str| claims.iter().find(|c| objects_of(c) == [o]).unwrap_or_else(|| panic!("{o} claimed"));
    assert_eq!(claims.len(), 8, "the second change of x waits for the first");
    let wrong = |c: &DeliveryClaim| {
        let mut r = record(c, attempt(62, Some(200), None), NextStep::Delivered);
        r.lease.generation += 1;
        r
    };
    // the receiver of `gone` answered 410: the dispatcher switches its notifications off, then records
    s.set_notifications_disabled(gone.id, Some("410 Gone")).await.unwrap();
    let records = vec![
        record(by_object("a"), attempt(62, Some(200), None), NextStep::Delivered),
        record(by_object("b"), attempt(62, Some(500), None), NextStep::Failed),
        record(by_object("c"), attempt(62, Some(503), None), NextStep::RetryAt(at(100))),
        record(by_object("d"), attempt(62, None, Some("connection refused")), NextStep::RetryAt(at(110))),
        wrong(by_object("e")),
        // ended after the lease lapsed (61 + 30 s)
        record(by_object("f"), attempt(95, Some(200), None), NextStep::Delivered),
        record(by_object("x"), attempt(63, Some(502), Some("bad gateway")), NextStep::RetryAt(at(100))),
        record(
            &claims.iter().find(|c| c.notification.instance_id == gone.id).unwrap().clone(),
            attempt(62, Some(410), None),
            NextStep::RetryAt(at(62)),
        ),
        // given twice: recorded once
        record(by_object("a"), attempt(62, Some(200), None), NextStep::Delivered),
        // a wrong lease first, then the right one of the same notification: the second is recorded
        wrong(by_object("e")),
        record(by_object("e"), attempt(64, Some(204), None), NextStep::Delivered),
    ];
    let results = if batched {
        s.record_attempts(&records).await.unwrap()
    } else {
        let mut results = Vec::new();
        for r in &records {
            results.push(s.record_attempt(r.notification, &r.lease, &r.attempt, r.next).await);
        }
        results
    };
    let mut states = Vec::new();
    for c in &claims {
        let org = if c.notification.instance_id == gone.id { gone_owner.org_id } else { owner.org_id };
        states.push((objects_of(c).concat(), snapshot(&s, org, c.notification.id).await));
    }
    let mut later = Vec::new();
    for secs in [99, 100, 200] {
        let claims = claim(&s, secs).await;
        later.push(claims.iter().map(|c| objects_of(c).concat()).collect());
        for c in &claims {
            s.record_attempt(c.notification.id, &c.lease, &attempt(secs, Some(200), None), NextStep::Delivered)
                .await
                .unwrap();
        }
    }
    let gone_switched_off = s.instance_by_id(gone.id).await.unwrap().unwrap().notifications_disabled_reason.is_some();
    Some(MixedRun { results: kinds(&results), states, later, gone_switched_off })
}

fn objects_of(c: &DeliveryClaim) -> Vec<String> {
    objects(c)
}

async fn batched_attempts_equal_single_ones(b: Backend) {
    let Some(batched) = mixed_outcomes(b, true).await else { return };
    let single = mixed_outcomes(b, false).await.expect("the same backend");
    assert_eq!(batched, single, "one record_attempts call writes what record_attempt calls write");
    // and what it writes is right
    assert_eq!(
        batched.results,
        ["ok", "ok", "ok", "ok", "lease lost", "lease lost", "ok", "ok", "lease lost", "lease lost", "ok"]
    );
    let state = |o: &str| &batched.states.iter().find(|(object, _)| object == o).unwrap().1;
    let short = |o: &str| {
        let (status, attempts, next, delivered, error, rows) = state(o).clone();
        (status, attempts, next, delivered.is_some(), error, rows.len())
    };
    assert_eq!(short("a"), (NotificationStatus::Delivered, 1, None, true, None, 1));
    assert_eq!(state("a").3, Some(at(62) + chrono::Duration::milliseconds(12)));
    assert_eq!(short("b"), (NotificationStatus::Failed, 1, None, false, Some("HTTP 500".into()), 1));
    assert_eq!(short("c"), (NotificationStatus::Pending, 1, Some(at(100)), false, Some("HTTP 503".into()), 1));
    assert_eq!(
        short("d"),
        (NotificationStatus::Pending, 1, Some(at(110)), false, Some("connection refused".into()), 1)
    );
    assert_eq!(short("e"), (NotificationStatus::Delivered, 1, None, true, None, 1), "the right lease won");
    assert_eq!(state("e").5[0].attempt.status_code, Some(204));
    assert_eq!(
        short("f"),
        (NotificationStatus::Delivering, 0, Some(at(61)), false, None, 0),
        "expired: nothing written"
    );
    assert_eq!(short("x"), (NotificationStatus::Pending, 1, Some(at(100)), false, Some("bad gateway".into()), 1));
    assert_eq!(short("g"), (NotificationStatus::Pending, 1, Some(at(62)), false, Some("HTTP 410".into()), 1));
    let row = &state("x").5[0];
    assert_eq!(
        (
            row.number,
            row.attempt.at,
            row.attempt.status_code,
            row.attempt.latency_ms,
            row.attempt.response_excerpt.len()
        ),
        (1, at(63), Some(502), 12, 1024)
    );
    assert!(batched.gone_switched_off);
    // at 99 only the lapsed claim (f); at 100 the retries due, x's first change but not its second; then the
    // second change of x; d (due at 110) with it at 200; g never while its notifications are off
    assert_eq!(batched.later, [vec!["f"], vec!["c", "x"], vec!["d", "x"]]);
}

async fn batched_attempts_are_idempotent(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    emit(&s, inst.id, "customers", (0..3).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect(), at(0))
        .await;
    s.batch_events(at(1), 1).await.unwrap();
    let claims = claim(&s, 1).await;
    let records = vec![
        record(&claims[0], attempt(2, Some(200), None), NextStep::Delivered),
        record(&claims[1], attempt(2, Some(500), None), NextStep::RetryAt(at(50))),
        record(&claims[2], attempt(2, Some(500), None), NextStep::Failed),
    ];
    assert_eq!(kinds(&s.record_attempts(&records).await.unwrap()), ["ok", "ok", "ok"]);
    let before: Vec<Snapshot> = {
        let mut v = Vec::new();
        for c in &claims {
            v.push(snapshot(&s, owner.org_id, c.notification.id).await);
        }
        v
    };
    // the same batch again, and each record of it alone: refused, nothing written
    assert_eq!(kinds(&s.record_attempts(&records).await.unwrap()), ["lease lost"; 3]);
    for r in &records {
        assert!(matches!(
            s.record_attempt(r.notification, &r.lease, &r.attempt, r.next).await,
            Err(StoreError::LeaseLost(_))
        ));
    }
    for (c, expected) in claims.iter().zip(&before) {
        assert_eq!(&snapshot(&s, owner.org_id, c.notification.id).await, expected);
    }
    // a record of the retried one under its old lease after it was claimed again: refused too
    let again = claim(&s, 50).await;
    assert_eq!(again.len(), 1);
    assert_eq!(kinds(&s.record_attempts(&records[1..2]).await.unwrap()), ["lease lost"]);
    let fresh = record(&again[0], attempt(51, Some(200), None), NextStep::Delivered);
    assert_eq!(kinds(&s.record_attempts(&[fresh.clone(), fresh]).await.unwrap()), ["ok", "lease lost"]);
    let (status, attempts, _, _, _, rows) = snapshot(&s, owner.org_id, again[0].notification.id).await;
    assert_eq!((status, attempts), (NotificationStatus::Delivered, 2));
    assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(s.record_attempts(&[]).await.unwrap(), Vec::new());
}

async fn large_batches_are_recorded_whole(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let n = 600;
    emit(&s, inst.id, "customers", (0..n).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect(), at(0))
        .await;
    s.batch_events(at(1), 1).await.unwrap();
    let claims = s.claim_deliveries("worker", at(1), 1000, TTL).await.unwrap();
    assert_eq!(claims.len(), n as usize);
    // every third one fails and is retried, the rest is delivered; more records than one statement takes
    let records: Vec<AttemptRecord> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| match i % 3 {
            0 => record(c, attempt(2, Some(500), None), NextStep::RetryAt(at(10))),
            _ => record(c, attempt(2, Some(200), None), NextStep::Delivered),
        })
        .collect();
    let results = s.record_attempts(&records).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    let stats = s.outbox_stats(at(3)).await.unwrap();
    assert_eq!(stats.pending_notifications, 200);
    for (i, c) in claims.iter().enumerate().step_by(97) {
        let (status, attempts, _, _, _, rows) = snapshot(&s, owner.org_id, c.notification.id).await;
        let expected = if i % 3 == 0 { NotificationStatus::Pending } else { NotificationStatus::Delivered };
        assert_eq!((status, attempts, rows.len()), (expected, 1, 1));
    }
    assert_eq!(claim(&s, 10).await.len(), 100, "the retries are due (100 per claim here)");
}

/// A poll's `traceparent` travels with its events to the claim of their notification (the first traced event's
/// wins); events committed untraced give a claim without one.
async fn a_commits_trace_reaches_the_claim(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, inst) = setup(&s, customers()).await;
    let traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let claims = s.claim_polls("emitter", at(0), 10, TTL).await.unwrap();
    let c = claims.iter().find(|c| c.instance_id() == inst.id).unwrap();
    let mut commit = super::commit(vec![event(inst.id, "customers", "a", 1)], Some(at(0)), at(0));
    commit.trace_parent = Some(traced.to_string());
    s.commit_poll(inst.id, "customers", &c.lease, &commit).await.unwrap();
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "b", 2)], at(60)).await;
    assert_eq!(s.batch_events(at(61), 1).await.unwrap(), 2);
    let claims = claim(&s, 61).await;
    let traces: Vec<(Vec<String>, Option<&str>)> =
        claims.iter().map(|c| (objects(c), c.trace_parent.as_deref())).collect();
    assert_eq!(traces, [(vec!["a".to_string()], Some(traced)), (vec!["b".to_string()], None)]);
}

/// The plan of a claim of due notifications: on PostgreSQL the generic plan prepared statements settle on
/// ([`super::pg_generic_plan`]), on SQLite `EXPLAIN QUERY PLAN`.
async fn claim_plan(s: &SqlStore, now: i64, limit: i64) -> Vec<String> {
    use crate::codec::ns;
    use crate::delivery::{Claimable, claim_sql};
    let pg = s.pools.is_pg();
    let sql = claim_sql(pg, Claimable::Due);
    if pg {
        let values = format!("'plan', {}, {}, {limit}", ns(at(now + 300)), ns(at(now)));
        return super::pg_generic_plan(s, &sql, "text, bigint, bigint, bigint", &values).await;
    }
    let mut tx = s.pools.write().await.unwrap();
    let rows = tx
        .c()
        .all(&format!("EXPLAIN QUERY PLAN {sql}"), args!["plan", ns(at(now + 300)), ns(at(now)), limit])
        .await
        .unwrap();
    tx.rollback().await;
    rows.iter().map(|r| r.text("detail").unwrap()).collect()
}

/// A claim during a backlog costs the claim, not the backlog: it walks the due index in order and stops at its
/// limit, with fresh statistics (a new outbox, never analyzed) and after `ANALYZE`, in the generic plan of a
/// prepared statement. Written as joins, PostgreSQL joined from the instances and tested all 4,000 pending
/// notifications before sorting them (28 ms a claim).
async fn a_claim_reads_what_it_takes_not_the_backlog(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, inst) = setup(&s, customers()).await;
    let backlog = 2_000;
    let events: Vec<_> = (0..backlog).map(|i| event(inst.id, "customers", &format!("c{i:05}"), i)).collect();
    emit(&s, inst.id, "customers", events, at(0)).await;
    let mut built = 0;
    while built < backlog as usize {
        built += s.batch_events(at(1), 1).await.unwrap();
    }
    for analyzed in [false, true] {
        if analyzed {
            let mut tx = s.pools.write().await.unwrap();
            tx.c().exec("ANALYZE", args![]).await.unwrap();
            tx.commit().await.unwrap();
        }
        let plan = claim_plan(&s, 2, 10).await;
        let text = plan.join("\n");
        assert!(text.contains("notifications_due"), "the due index (analyzed: {analyzed}):\n{text}");
        if b == Backend::Postgres {
            super::assert_reads_what_it_takes(&plan, "notifications", "notifications_due", 10, analyzed);
        } else {
            assert!(!text.contains("TEMP B-TREE FOR ORDER BY"), "no sort (analyzed: {analyzed}):\n{text}");
        }
    }
    // and it claims them, oldest first
    let claims = s.claim_deliveries("worker", at(2), 10, TTL).await.unwrap();
    let objects: Vec<String> = claims.iter().flat_map(objects).collect();
    assert_eq!(objects, (0..10).map(|i| format!("c{i:05}")).collect::<Vec<_>>());
}

on_both!(
    a_claim_reads_what_it_takes_not_the_backlog,
    a_commits_trace_reaches_the_claim,
    batching_groups_by_instance_and_object_type,
    per_object_order,
    claims_skip_switched_off_instances,
    attempts_are_recorded,
    events_are_listed_and_detailed,
    redelivery,
    retention_prunes_delivered_only,
    outbox_gauges,
    the_background_pruner_prunes,
    batched_attempts_equal_single_ones,
    batched_attempts_are_idempotent,
    large_batches_are_recorded_whole,
);

//! The change feed (issue 17, item 1): commit order, filters, the retention floor, and the commit signal that
//! wakes a waiting reader — across two handles on PostgreSQL (`LISTEN`/`NOTIFY`), as two nodes would be.

use std::time::Duration;

use super::prelude::*;
use oc_model::event::EventType;
use oc_model::ports::ChangeQuery;

use super::{TTL, at, customers, emit, event, on_both, open, setup};
use crate::Backend;

fn query(instance: i64, after: Option<i64>, limit: u32) -> ChangeQuery {
    ChangeQuery { instance, after, limit, ..ChangeQuery::default() }
}

async fn the_feed_is_in_commit_order_and_resumes_from_a_position(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let (_, other) = setup(&s, customers()).await;
    let mut created = event(inst.id, "customers", "a", 1);
    created.event_type = EventType::Created;
    let first = vec![created, event(inst.id, "customers", "b", 2), event(inst.id, "customers", "a", 3)];
    emit(&s, inst.id, "customers", first.clone(), super::t0()).await;
    emit(&s, other.id, "customers", vec![event(other.id, "customers", "x", 4)], super::t0()).await;
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "c", 5)], at(60)).await;

    let all = s.changes(owner.org_id, &query(inst.id, None, 100)).await.unwrap().unwrap();
    let ids: Vec<&str> = all.changes.iter().map(|c| c.event.object_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "a", "c"], "commit order, only this instance");
    assert!(all.changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!((all.floor, all.has_more, all.position), (0, false, all.changes[3].seq));
    // pages of two, resumed from the position: the same changes, each once; the same position reads the same
    let page = s.changes(owner.org_id, &query(inst.id, None, 2)).await.unwrap().unwrap();
    assert_eq!((page.changes.len(), page.has_more), (2, true));
    let again = s.changes(owner.org_id, &query(inst.id, None, 2)).await.unwrap().unwrap();
    assert_eq!(page, again, "reading is idempotent");
    let rest = s.changes(owner.org_id, &query(inst.id, Some(page.position), 2)).await.unwrap().unwrap();
    let ids: Vec<&str> = rest.changes.iter().map(|c| c.event.object_id.as_str()).collect();
    assert_eq!((ids, rest.has_more), (vec!["a", "c"], false));
    let end = s.changes(owner.org_id, &query(inst.id, Some(rest.position), 2)).await.unwrap().unwrap();
    assert!(end.changes.is_empty() && !end.has_more && end.position == rest.position);
    // filters
    let created = ChangeQuery { event_type: Some(EventType::Created), ..query(inst.id, None, 10) };
    let page = s.changes(owner.org_id, &created).await.unwrap().unwrap();
    assert_eq!(page.changes.iter().map(|c| c.event.object_id.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!(page.position, all.position, "a filtered read still moves on");
    let vendors = ChangeQuery { object_type: Some("vendors".into()), ..query(inst.id, None, 10) };
    assert!(s.changes(owner.org_id, &vendors).await.unwrap().unwrap().changes.is_empty());
    // another organization's instance is not there
    assert_eq!(s.changes(owner.org_id + 1000, &query(inst.id, None, 10)).await.unwrap(), None);
}

async fn retention_raises_the_floor(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "a", 1)], super::t0()).await;
    assert_eq!(s.batch_events(at(1), 10).await.unwrap(), 1);
    let claim = s.claim_deliveries("d", at(2), 10, TTL).await.unwrap().remove(0);
    let delivered = oc_model::ports::NewAttempt {
        at: at(2),
        status_code: Some(200),
        latency_ms: 5,
        error: None,
        response_excerpt: String::new(),
    };
    s.record_attempt(claim.notification.id, &claim.lease, &delivered, oc_model::ports::NextStep::Delivered)
        .await
        .unwrap();
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "b", 2)], at(60)).await;
    let before = s.changes(owner.org_id, &query(inst.id, None, 10)).await.unwrap().unwrap();
    let first_seq = before.changes[0].seq;
    assert_eq!(before.floor, 0);
    s.prune_delivered(at(30)).await.unwrap();
    let after = s.changes(owner.org_id, &query(inst.id, None, 10)).await.unwrap().unwrap();
    assert_eq!(after.floor, first_seq, "the delivered change went, the floor is its position");
    assert_eq!(after.changes.iter().map(|c| c.event.object_id.as_str()).collect::<Vec<_>>(), ["b"]);
}

async fn a_commit_wakes_a_waiting_reader_on_another_handle(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, inst) = setup(&s, customers()).await;
    // SQLite has one node: the same handle; PostgreSQL: another pool, as another node would have
    let reader: std::sync::Arc<crate::SqlStore> = match b {
        Backend::Sqlite => s.clone(),
        Backend::Postgres => std::sync::Arc::new(t.another_handle().await),
    };
    // let the other handle's LISTEN settle
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = reader.commit_generation();
    // nothing committed: the wait ends at its timeout
    let started = std::time::Instant::now();
    assert_eq!(reader.wait_for_commit(seen, Duration::from_millis(200)).await, seen);
    assert!(started.elapsed() >= Duration::from_millis(190));
    let waiting = {
        let reader = reader.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let g = reader.wait_for_commit(seen, Duration::from_secs(10)).await;
            (g, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "a", 1)], super::t0()).await;
    let (g, waited) = waiting.await.unwrap();
    assert_ne!(g, seen);
    assert!(waited < Duration::from_secs(2), "woken by the commit, not by the timeout: {waited:?}");
}

/// Issue 17, item 2: a replay queues kept events again in new notifications — same event ids, new notification
/// ids, per object in order — and leaves alone what is on its way; any delivered or failed notification can be
/// redelivered.
async fn replays_send_kept_events_again_in_new_notifications(b: Backend) {
    use oc_model::ports::{NewAttempt, NextStep, ReplayQuery};
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let events = vec![event(inst.id, "customers", "a", 1), event(inst.id, "customers", "b", 2)];
    emit(&s, inst.id, "customers", events.clone(), super::t0()).await;
    assert_eq!(s.batch_events(at(1), 10).await.unwrap(), 1);
    let claim = s.claim_deliveries("d", at(2), 10, TTL).await.unwrap().remove(0);
    let first = claim.notification.id;
    let ok =
        NewAttempt { at: at(2), status_code: Some(200), latency_ms: 1, error: None, response_excerpt: String::new() };
    s.record_attempt(first, &claim.lease, &ok, NextStep::Delivered).await.unwrap();
    // a later event, not yet delivered: on its way, not replayed
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "a", 3)], at(60)).await;
    assert_eq!(s.batch_events(at(61), 10).await.unwrap(), 1);

    let all = ReplayQuery {
        instance: inst.id,
        since: super::t0(),
        until: None,
        object_type: None,
        event_type: None,
        event_id: None,
    };
    assert_eq!(s.replay(owner.org_id, &all, at(62)).await.unwrap(), Some(2), "the two delivered events");
    assert_eq!(s.replay(owner.org_id + 1000, &all, at(62)).await.unwrap(), None, "not theirs");
    let claims = s.claim_deliveries("d", at(63), 10, TTL).await.unwrap();
    // the pending one (a, 3) came first, the replay after it: per object, in order
    let held: Vec<Vec<&str>> = claims.iter().map(|c| c.events.iter().map(|e| e.object_id.as_str()).collect()).collect();
    assert_eq!(held, [vec!["a"]], "the replay of a waits for the earlier notification holding a");
    let mut replayed_ids = Vec::new();
    for c in &claims {
        s.record_attempt(c.notification.id, &c.lease, &ok, NextStep::Delivered).await.unwrap();
    }
    let claims = s.claim_deliveries("d", at(64), 10, TTL).await.unwrap();
    for c in &claims {
        assert_ne!(c.notification.id, first, "a new notification id");
        replayed_ids.extend(c.events.iter().map(|e| e.event_id));
    }
    let mut want: Vec<_> = events.iter().map(|e| e.event_id).collect();
    want.sort();
    replayed_ids.sort();
    assert_eq!(replayed_ids, want, "the same event ids");
    // a time window that holds nothing, and one event alone
    let later = ReplayQuery { since: at(10_000), ..all.clone() };
    assert_eq!(s.replay(owner.org_id, &later, at(65)).await.unwrap(), Some(0));
    for c in &claims {
        s.record_attempt(c.notification.id, &c.lease, &ok, NextStep::Delivered).await.unwrap();
    }
    let one = ReplayQuery { event_id: Some(events[1].event_id), ..all.clone() };
    assert_eq!(s.replay(owner.org_id, &one, at(66)).await.unwrap(), Some(1));
    // a delivered notification can be redelivered as it is
    assert!(s.redeliver(owner.org_id, first, at(67)).await.unwrap());
    assert!(!s.redeliver(owner.org_id, first, at(67)).await.unwrap(), "pending already");
}

on_both!(
    replays_send_kept_events_again_in_new_notifications,
    the_feed_is_in_commit_order_and_resumes_from_a_position,
    retention_raises_the_floor,
    a_commit_wakes_a_waiting_reader_on_another_handle,
);

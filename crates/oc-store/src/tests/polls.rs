//! Poll jobs: claims, the atomic commit, abandoning, history.

use super::prelude::*;
use oc_model::ports::{CommitSummary, PollFailure, PollState, PollStatus, StoreError};

use chrono::{DateTime, Utc};
use oc_model::event::EventType;
use oc_model::ports::{InstanceUpdate, Reconciled};
use serde_json::json;

use super::{TTL, at, commit, config, customers, event, on_both, open, outcome, setup, t0};
use crate::{Backend, POLL_HISTORY_PER_RESOURCE};

async fn claim_commit_and_claim_again(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let claims = s.claim_polls("node-a", t0(), 10, TTL).await.unwrap();
    assert_eq!(claims.len(), 1);
    let c = &claims[0];
    assert_eq!((c.instance_id(), c.resource.as_str(), c.due_at, c.job_created_at), (inst.id, "customers", t0(), t0()));
    assert_eq!(c.state, PollState::default());
    assert_eq!((c.lease.owner.as_str(), c.lease.generation, c.lease.expires_at), ("node-a", 1, at(30)));
    assert!(s.claim_polls("node-b", t0(), 10, TTL).await.unwrap().is_empty(), "held under a valid lease");

    let first = vec![event(inst.id, "customers", "c1", 1), event(inst.id, "customers", "c2", 2)];
    let wm = "2024-01-01T00:00:00.987654321Z".parse().unwrap();
    let summary = s.commit_poll(inst.id, "customers", &c.lease, &commit(first.clone(), Some(wm), at(1))).await.unwrap();
    assert_eq!(summary, CommitSummary { inserted: 2, duplicates: 0 });
    let state = s.poll_state(inst.id, "customers").await.unwrap().unwrap();
    assert_eq!(
        state,
        PollState { watermark: Some(wm), seen: b"seen-set".to_vec(), skew_ms: 42, ..PollState::default() }
    );
    assert!(
        matches!(
            s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], None, at(2))).await,
            Err(StoreError::LeaseLost(_))
        ),
        "a released lease cannot commit again"
    );

    // next run: 60 s after the commit
    assert!(s.claim_polls("node-a", at(60), 10, TTL).await.unwrap().is_empty());
    let again = s.claim_polls("node-b", at(61), 10, TTL).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].due_at, again[0].lease.generation), (at(61), 2));
    assert_eq!(again[0].state, state);

    // an inconsistent scan: events kept, watermark stays; a known event id is not duplicated
    let second = vec![first[1].clone(), event(inst.id, "customers", "c3", 3), event(inst.id, "customers", "c3", 3)];
    let mut inconsistent = commit(second, None, at(62));
    inconsistent.outcome.status = PollStatus::Inconsistent;
    let summary = s.commit_poll(inst.id, "customers", &again[0].lease, &inconsistent).await.unwrap();
    assert_eq!(summary, CommitSummary { inserted: 1, duplicates: 2 });
    assert_eq!(s.poll_state(inst.id, "customers").await.unwrap().unwrap().watermark, Some(wm));
    let page = s
        .list_events(owner.org_id, &oc_model::ports::EventFilter { page: 1, page_size: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    let stored: Vec<_> = page.items.iter().rev().map(|v| v.event.clone()).collect();
    assert_eq!(stored, vec![first[0].clone(), first[1].clone(), event(inst.id, "customers", "c3", 3)]);

    let polls = s.list_polls(owner.org_id, inst.id, 10).await.unwrap();
    assert_eq!(polls.iter().map(|p| p.outcome.status).collect::<Vec<_>>(), [PollStatus::Inconsistent, PollStatus::Ok]);
    assert_eq!(polls[1].outcome, commit(vec![], None, at(1)).outcome);
    assert!(s.list_polls(owner.org_id + 1, inst.id, 10).await.unwrap().is_empty(), "another organization's");
}

async fn oldest_due_first_and_limits(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, _) = setup(&s, customers()).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let mut new = crate::testing::new_instance(owner, customers(), at(10 - i));
        new.poll_start = at(10 - i);
        ids.push(s.create_instance(&new).await.unwrap().id);
    }
    assert!(s.claim_polls("n", at(100), 0, TTL).await.unwrap().is_empty());
    let claims = s.claim_polls("n", at(100), 3, TTL).await.unwrap();
    let got: Vec<_> = claims.iter().map(|c| (c.due_at, c.instance_id())).collect();
    // the setup instance was due at t0, then the others by their creation time
    assert_eq!(got[0].0, t0());
    assert_eq!(&got[1..], &[(at(7), ids[3]), (at(8), ids[2])]);
    assert_eq!(s.claim_polls("n", at(100), 10, TTL).await.unwrap().len(), 2);
}

async fn abandoned_polls_keep_state(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let c = s.claim_polls("n", t0(), 1, TTL).await.unwrap().remove(0);
    s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], Some(at(1)), at(1))).await.unwrap();
    let before = s.poll_state(inst.id, "customers").await.unwrap().unwrap();
    for (i, now) in [at(61), at(200)].into_iter().enumerate() {
        let c = s.claim_polls("n", now, 1, TTL).await.unwrap().remove(0);
        assert_eq!(c.state.consecutive_failures, i as u32);
        let mut failed = outcome(PollStatus::Failed, now);
        failed.error = Some("provider unreachable: timeout".into());
        let failure = PollFailure { outcome: failed, next_run_at: now + chrono::Duration::seconds(100) };
        s.abandon_poll(inst.id, "customers", &c.lease, &failure).await.unwrap();
        assert!(matches!(
            s.abandon_poll(inst.id, "customers", &c.lease, &failure).await,
            Err(StoreError::LeaseLost(_))
        ));
    }
    let after = s.poll_state(inst.id, "customers").await.unwrap().unwrap();
    assert_eq!(after, PollState { consecutive_failures: 2, ..before.clone() });
    assert!(s.claim_polls("n", at(299), 1, TTL).await.unwrap().is_empty(), "backoff respected");
    let polls = s.list_polls(owner.org_id, inst.id, 2).await.unwrap();
    assert_eq!(polls.len(), 2);
    assert_eq!(polls[0].outcome.error.as_deref(), Some("provider unreachable: timeout"));
    assert_eq!(polls[0].outcome.finished_at, at(200));
    // a success resets the failure count
    let c = s.claim_polls("n", at(300), 1, TTL).await.unwrap().remove(0);
    s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], None, at(300))).await.unwrap();
    assert_eq!(s.poll_state(inst.id, "customers").await.unwrap().unwrap().consecutive_failures, 0);
}

async fn released_jobs_stay_due(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, inst) = setup(&s, customers()).await;
    let c = s.claim_polls("n", t0(), 1, TTL).await.unwrap().remove(0);
    s.release_poll(inst.id, "customers", &c.lease).await.unwrap();
    let again = s.claim_polls("m", at(1), 1, TTL).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].due_at, again[0].lease.generation), (t0(), 2));
    assert!(matches!(s.release_poll(inst.id, "customers", &c.lease).await, Err(StoreError::LeaseLost(_))));
}

async fn poll_history_is_capped(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let n = POLL_HISTORY_PER_RESOURCE + 5;
    for i in 0..n {
        let now = at(i * 100);
        let c = s.claim_polls("n", now, 1, TTL).await.unwrap().remove(0);
        s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], Some(now), now)).await.unwrap();
    }
    let polls = s.list_polls(owner.org_id, inst.id, 1000).await.unwrap();
    assert_eq!(polls.len() as i64, POLL_HISTORY_PER_RESOURCE);
    assert_eq!(polls[0].outcome.finished_at, at((n - 1) * 100), "newest first");
    assert_eq!(polls.last().unwrap().outcome.finished_at, at(5 * 100), "the oldest went");
}

async fn deleted_instances_stop_and_drop(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    super::emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "a", 1)], t0()).await;
    assert_eq!(s.batch_events(at(1), 10).await.unwrap(), 1);
    super::emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "b", 2)], at(60)).await;
    let c = s.claim_polls("n", at(120), 1, TTL).await.unwrap().remove(0);
    assert!(s.delete_instance(owner.org_id + 1, inst.id, at(121)).await.is_ok_and(|gone| !gone), "not theirs");
    assert!(s.delete_instance(owner.org_id, inst.id, at(121)).await.unwrap());
    assert!(!s.delete_instance(owner.org_id, inst.id, at(122)).await.unwrap());
    assert_eq!(s.instance(owner.org_id, inst.id).await.unwrap(), None);
    assert_eq!(s.instance_by_id(inst.id).await.unwrap(), None);
    assert!(s.list_instances(owner.org_id, &[]).await.unwrap().is_empty());
    assert_eq!(s.poll_state(inst.id, "customers").await.unwrap(), None);
    assert!(matches!(
        s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], None, at(122))).await,
        Err(StoreError::LeaseLost(_))
    ));
    assert!(s.claim_polls("n", at(1000), 10, TTL).await.unwrap().is_empty());
    let page = s
        .list_events(owner.org_id, &oc_model::ports::EventFilter { page: 1, page_size: 10, ..Default::default() })
        .await
        .unwrap();
    let statuses: Vec<_> = page.items.iter().map(|v| v.status).collect();
    use oc_model::ports::NotificationStatus::Dropped;
    assert_eq!(statuses, [Dropped, Dropped], "the batched and the unbatched event are both dropped, and kept");
    assert_eq!(s.batch_events(at(200), 10).await.unwrap(), 0);
    assert!(s.claim_deliveries("d", at(1000), 10, TTL).await.unwrap().is_empty());
    assert_eq!(oc_model::ports::TokenVault::tokens(&*s, inst.id).await.unwrap(), None);
}

async fn large_commits_are_whole(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let events: Vec<_> = (0..601).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect();
    let c = s.claim_polls("n", t0(), 1, TTL).await.unwrap().remove(0);
    let mut with_copies = events.clone();
    with_copies.extend(events[590..].iter().cloned());
    let summary =
        s.commit_poll(inst.id, "customers", &c.lease, &commit(with_copies, Some(at(1)), at(1))).await.unwrap();
    assert_eq!(summary, CommitSummary { inserted: 601, duplicates: 11 });
    let filter = oc_model::ports::EventFilter { page: 1, page_size: 1000, ..Default::default() };
    let page = s.list_events(owner.org_id, &filter).await.unwrap();
    assert_eq!(page.total, 601);
    let mut stored: Vec<_> = page.items.into_iter().map(|v| v.event).collect();
    stored.reverse();
    assert_eq!(stored, events, "every event, each once, in order, intact");
}

/// A backfill given later to a polled resource moves its watermark back there and asks for a reseed; the commit
/// of the replay ends it. A backfill after the watermark, or the same one again, changes nothing.
async fn a_new_backfill_replays_a_polled_resource(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let c = s.claim_polls("n", t0(), 10, TTL).await.unwrap().remove(0);
    s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], Some(at(100)), at(20))).await.unwrap();
    let state = || async { s.poll_state(inst.id, "customers").await.unwrap().unwrap() };
    assert_eq!((state().await.watermark, state().await.reseed), (Some(at(100)), false));

    let with = |key: &str, value: serde_json::Value| {
        let mut config = customers();
        config.insert(key, value);
        config
    };
    let update = |config, secs| InstanceUpdate { configuration: Some(config), now: at(secs), ..Default::default() };
    // after the watermark: nothing to replay
    s.update_instance(
        owner.org_id,
        inst.id,
        &update(with("event.poller.backfill", json!("2024-01-01T00:05:00Z")), 200),
    )
    .await
    .unwrap();
    assert_eq!((state().await.watermark, state().await.reseed), (Some(at(100)), false));
    // before it: replayed from there
    let back = json!("2023-12-31");
    s.update_instance(owner.org_id, inst.id, &update(with("event.poller.backfill", back.clone()), 210)).await.unwrap();
    let day_before: DateTime<Utc> = "2023-12-31T00:00:00Z".parse().unwrap();
    assert_eq!((state().await.watermark, state().await.reseed), (Some(day_before), true));
    let c = s.claim_polls("n", at(210), 10, TTL).await.unwrap().remove(0);
    assert!(c.state.reseed, "the claim carries the reseed");
    s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], Some(at(220)), at(220))).await.unwrap();
    assert_eq!((state().await.watermark, state().await.reseed), (Some(at(220)), false), "the replay's commit ends it");
    // the same backfill again (another change of the instance) does not replay again
    let mut renamed = with("event.poller.backfill", back);
    renamed.insert("event.poller.refresh_interval", json!("2"));
    s.update_instance(owner.org_id, inst.id, &update(renamed, 400)).await.unwrap();
    assert_eq!((state().await.watermark, state().await.reseed), (Some(at(220)), false));
    // a resource's own backfill replays that resource
    let mut own = customers();
    let mut pollers = own.get("event.poller.configuration").unwrap().clone();
    pollers["customers"]["backfill"] = json!("2023-12-30T12:00:00Z");
    own.insert("event.poller.configuration", pollers);
    s.update_instance(owner.org_id, inst.id, &update(own, 500)).await.unwrap();
    let earlier: DateTime<Utc> = "2023-12-30T12:00:00Z".parse().unwrap();
    assert_eq!((state().await.watermark, state().await.reseed), (Some(earlier), true));
}

/// What the store knows of a resource's objects: the latest event of each, and the ids of the last complete
/// scan, kept until the next one.
async fn known_objects_are_the_latest_events_and_the_last_scan(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, inst) = setup(&s, config(&[("customers", "/c"), ("vendors", "/v")], "1", true)).await;
    assert_eq!(s.known(inst.id, "customers").await.unwrap().notified, vec![]);
    let (c1, c1b, c2) = (
        event(inst.id, "customers", "c1", 1),
        event(inst.id, "customers", "c1", 2),
        event(inst.id, "customers", "c2", 3),
    );
    let mut gone = event(inst.id, "customers", "c3", 4);
    gone.event_type = EventType::Deleted;
    let claims = s.claim_polls("n", t0(), 10, TTL).await.unwrap();
    for c in claims {
        let (events, reconciled) = if c.resource == "customers" {
            let r = Reconciled { at: at(5), live_ids: vec!["c1".into(), "c2".into(), "c9".into()] };
            (vec![c1.clone(), c1b.clone(), c2.clone(), gone.clone()], Some(r))
        } else {
            (vec![event(inst.id, "vendors", "v1", 1)], None)
        };
        let mut commit = commit(events, Some(at(5)), at(5));
        commit.reconciled = reconciled;
        s.commit_poll(inst.id, &c.resource, &c.lease, &commit).await.unwrap();
    }
    let known = s.known(inst.id, "customers").await.unwrap();
    assert_eq!(known.notified, vec![c1b.clone(), c2.clone(), gone.clone()], "the latest of each, in order");
    assert_eq!(known.live_ids, vec![Box::from("c1"), "c2".into(), "c9".into()]);
    assert_eq!(s.poll_state(inst.id, "customers").await.unwrap().unwrap().reconciled_at, Some(at(5)));
    let vendors = s.known(inst.id, "vendors").await.unwrap();
    assert_eq!((vendors.notified.len(), vendors.live_ids.len()), (1, 0));
    assert_eq!(s.poll_state(inst.id, "vendors").await.unwrap().unwrap().reconciled_at, None);
    // a poll without a scan keeps the last one
    let c = s.claim_polls("n", at(65), 10, TTL).await.unwrap();
    let c = c.iter().find(|c| c.resource == "customers").unwrap();
    assert_eq!(c.state.reconciled_at, Some(at(5)));
    s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], Some(at(66)), at(66))).await.unwrap();
    assert_eq!(s.known(inst.id, "customers").await.unwrap().live_ids.len(), 3);
    assert_eq!(s.poll_state(inst.id, "customers").await.unwrap().unwrap().reconciled_at, Some(at(5)));
}

/// Issue 17, items 1 and 3: the webhook sends only the types of `event.notification.eventTypes`, and nothing
/// without a callback URL; the events it does not send are committed withheld — kept, listed, never batched.
async fn events_the_webhook_does_not_send_are_withheld(b: Backend) {
    use oc_model::ports::NotificationStatus::{Pending, Withheld};
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let mut only_created = customers();
    only_created.insert("event.notification.eventTypes", json!("CREATED, DELETED"));
    let (owner, inst) = setup(&s, only_created).await;
    let mut created = event(inst.id, "customers", "a", 1);
    created.event_type = EventType::Created;
    let updated = event(inst.id, "customers", "b", 2);
    super::emit(&s, inst.id, "customers", vec![created.clone(), updated.clone()], t0()).await;
    assert_eq!(s.batch_events(at(1), 10).await.unwrap(), 1, "one notification, of the CREATED only");
    let claims = s.claim_deliveries("d", at(2), 10, TTL).await.unwrap();
    assert_eq!(claims.len(), 1);
    let ids: Vec<&str> = claims[0].events.iter().map(|e| e.object_id.as_str()).collect();
    assert_eq!(ids, ["a"]);
    let filter = oc_model::ports::EventFilter { page: 1, page_size: 10, ..Default::default() };
    let page = s.list_events(owner.org_id, &filter).await.unwrap();
    let listed: Vec<_> = page.items.iter().map(|v| (v.event.object_id.as_str(), v.status)).collect();
    assert_eq!(listed, [("b", Withheld), ("a", oc_model::ports::NotificationStatus::Delivering)]);
    let withheld = oc_model::ports::EventFilter {
        status: Some(oc_model::ports::StatusFilter::Oc(oc_model::ports::OcEventStatus::Withheld)),
        ..filter.clone()
    };
    assert_eq!(s.list_events(owner.org_id, &withheld).await.unwrap().total, 1);

    // No callback URL: the changes go to the feed only.
    let mut feed_only = customers();
    feed_only.remove("event.notification.callback.url");
    let (owner, inst) = setup(&s, feed_only).await;
    super::emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "c", 3)], t0()).await;
    assert_eq!(s.batch_events(at(4), 10).await.unwrap(), 0);
    let page = s.list_events(owner.org_id, &filter).await.unwrap();
    assert_eq!(page.items.iter().map(|v| v.status).collect::<Vec<_>>(), [Withheld]);
    // a callback URL given later sends what comes next, not what was withheld
    let mut with_url = customers();
    with_url.insert("event.notification.callback.url", json!("https://example.com/later"));
    let update = InstanceUpdate { configuration: Some(with_url), now: at(5), ..Default::default() };
    s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    super::emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "d", 6)], at(70)).await;
    assert_eq!(s.batch_events(at(71), 10).await.unwrap(), 1);
    let page = s.list_events(owner.org_id, &filter).await.unwrap();
    assert_eq!(page.items.iter().map(|v| v.status).collect::<Vec<_>>(), [Pending, Withheld]);
}

/// A poll claim at many jobs costs the claim: in the generic plan of the prepared statement (how the store runs
/// it), fresh and analyzed, it walks `poll_jobs_due_id` up to its limit and updates through the primary key. As
/// `UPDATE … FROM (subquery)` the generic plan hash-joined the picked ids with a sequential scan of every job
/// (30 ms a claim at 40,000 jobs). PostgreSQL only: SQLite's claim is an `IN (…)` of the ordered index walk.
async fn a_poll_claim_reads_what_it_takes_not_every_job(b: Backend) {
    if b != Backend::Postgres {
        return;
    }
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, inst) = setup(&s, customers()).await;
    // 3,000 more jobs of the instance, due one millisecond apart
    let mut tx = s.pools.write().await.unwrap();
    tx.c()
        .exec(
            "INSERT INTO poll_jobs (instance_id, resource, config, interval_ms, created_at, next_run_at, seen) \
             SELECT j.instance_id, j.resource || g, j.config, j.interval_ms, j.created_at, j.next_run_at + g::bigint * 1000000, \
             j.seen FROM poll_jobs j, generate_series(1, 3000) g",
            crate::db::args![],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let now = crate::codec::ns(at(3600));
    let values = format!("'plan', {}, {now}, 10", now + 30_000_000_000);
    for analyzed in [false, true] {
        if analyzed {
            let mut tx = s.pools.write().await.unwrap();
            tx.c().exec("ANALYZE", crate::db::args![]).await.unwrap();
            tx.commit().await.unwrap();
        }
        let sql = crate::polls::poll_claim_sql(true);
        let plan = super::pg_generic_plan(&s, &sql, "text, bigint, bigint, bigint", &values).await;
        super::assert_reads_what_it_takes(&plan, "poll_jobs", "poll_jobs_due_id", 10, analyzed);
    }
    // and it claims them, in order
    let claims = s.claim_polls("node-a", at(3600), 10, TTL).await.unwrap();
    let resources: Vec<&str> = claims.iter().map(|c| c.resource.as_str()).collect();
    let mut want = vec!["customers".to_string()];
    want.extend((1..10).map(|g| format!("customers{g}")));
    assert_eq!(resources, want, "{}", inst.id);
}

on_both!(
    a_poll_claim_reads_what_it_takes_not_every_job,
    events_the_webhook_does_not_send_are_withheld,
    a_new_backfill_replays_a_polled_resource,
    known_objects_are_the_latest_events_and_the_last_scan,
    large_commits_are_whole,
    claim_commit_and_claim_again,
    oldest_due_first_and_limits,
    abandoned_polls_keep_state,
    released_jobs_stay_due,
    poll_history_is_capped,
    deleted_instances_stop_and_drop,
);

//! Leases across nodes: two store handles on one database competing for the same jobs never both hold one;
//! an expired lease is taken over; a stale holder's writes are refused.

use super::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use oc_model::ports::{NewAttempt, NextStep, PollClaim, StoreError};

use super::{TTL, at, commit, config, event, on_both, open, t0};
use crate::Backend;
use crate::SqlStore;

const JOBS: usize = 40;

/// One instance with [`JOBS`] resources.
async fn many_jobs(s: &SqlStore) -> i64 {
    let resources: Vec<(String, String)> =
        (0..JOBS).map(|i| (format!("r{i:02}"), format!("/hubs/finance/customers?n={i}"))).collect();
    let refs: Vec<(&str, &str)> = resources.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    super::setup(s, config(&refs, "1", true)).await.1.id
}

/// Claims in small bites until nothing is left.
async fn drain(s: Arc<SqlStore>, owner: &'static str) -> Vec<PollClaim> {
    let mut all = Vec::new();
    loop {
        let got = s.claim_polls(owner, t0(), 3, TTL).await.unwrap();
        if got.is_empty() {
            return all;
        }
        all.extend(got);
        tokio::task::yield_now().await;
    }
}

async fn two_nodes_never_hold_the_same_job(b: Backend) {
    let Some(t) = open(b).await else { return };
    let a: Arc<SqlStore> = t.store();
    let other: Arc<SqlStore> = Arc::new(t.another_handle().await);
    many_jobs(&a).await;
    let (x, y) = tokio::join!(tokio::spawn(drain(a.clone(), "node-a")), tokio::spawn(drain(other.clone(), "node-b")));
    let (x, y) = (x.unwrap(), y.unwrap());
    let xs: HashSet<String> = x.iter().map(|c| c.resource.clone()).collect();
    let ys: HashSet<String> = y.iter().map(|c| c.resource.clone()).collect();
    assert_eq!(xs.len(), x.len(), "no job twice to one node");
    assert_eq!(ys.len(), y.len(), "no job twice to one node");
    assert!(xs.is_disjoint(&ys), "a job held by both nodes: {:?}", xs.intersection(&ys).collect::<Vec<_>>());
    assert_eq!(xs.len() + ys.len(), JOBS, "every job claimed");
    assert!(x.iter().chain(&y).all(|c| c.lease.generation == 1));
}

async fn expired_leases_are_taken_over_and_fence_the_old_holder(b: Backend) {
    let Some(t) = open(b).await else { return };
    let a: Arc<SqlStore> = t.store();
    let other: Arc<SqlStore> = Arc::new(t.another_handle().await);
    let instance = many_jobs(&a).await;
    let held = a.claim_polls("node-a", t0(), 100, TTL).await.unwrap();
    assert_eq!(held.len(), JOBS);
    // node-a renews one lease; the others lapse
    let renewed = a.renew_poll(instance, "r00", &held[0].lease, at(20), TTL).await.unwrap();
    assert_eq!((renewed.generation, renewed.expires_at), (1, at(50)));
    assert!(other.claim_polls("node-b", at(29), 100, TTL).await.unwrap().is_empty(), "valid leases are respected");
    let taken = other.claim_polls("node-b", at(30), 100, TTL).await.unwrap();
    assert_eq!(taken.len(), JOBS - 1, "every lapsed lease is taken over, the renewed one is not");
    assert!(taken.iter().all(|c| c.lease.generation == 2 && c.resource != "r00"));

    // the old holder can neither commit, renew, abandon nor release what it lost — even "before" expiry
    let lost = &held[1];
    assert_eq!(lost.resource, "r01");
    let stale = commit(vec![event(instance, "customers", "x", 1)], Some(at(5)), at(10));
    for result in [
        a.commit_poll(instance, "r01", &lost.lease, &stale).await.map(|_| ()),
        a.renew_poll(instance, "r01", &lost.lease, at(31), TTL).await.map(|_| ()),
        a.release_poll(instance, "r01", &lost.lease).await,
    ] {
        assert!(matches!(result, Err(StoreError::LeaseLost(_))), "{result:?}");
    }
    assert_eq!(a.poll_state(instance, "r01").await.unwrap().unwrap().watermark, None, "nothing written");
    assert_eq!(a.batch_events(at(31), 10).await.unwrap(), 0, "no event of the stale commit");
    // the new holder commits
    let new = taken.iter().find(|c| c.resource == "r01").unwrap();
    let fresh = commit(vec![event(instance, "customers", "x", 1)], Some(at(31)), at(31));
    assert_eq!(other.commit_poll(instance, "r01", &new.lease, &fresh).await.unwrap().inserted, 1);

    // a lease past its expiry cannot commit even when nobody took it over
    let late = commit(vec![], Some(at(60)), at(50));
    assert!(matches!(a.commit_poll(instance, "r00", &renewed, &late).await, Err(StoreError::LeaseLost(_))));
    let on_time = commit(vec![], Some(at(49)), at(49));
    assert!(a.commit_poll(instance, "r00", &renewed, &on_time).await.is_ok());
}

async fn delivery_leases_fence_too(b: Backend) {
    let Some(t) = open(b).await else { return };
    let a: Arc<SqlStore> = t.store();
    let other: Arc<SqlStore> = Arc::new(t.another_handle().await);
    let (_, inst) = super::setup(&a, super::customers()).await;
    let events: Vec<_> = (0..30).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect();
    super::emit(&a, inst.id, "customers", events, t0()).await;
    assert_eq!(a.batch_events(at(1), 1).await.unwrap(), 30);
    // two nodes claiming at once get disjoint notifications
    let (x, y) = tokio::join!(
        a.claim_deliveries("node-a", at(2), 20, Duration::from_secs(10)),
        other.claim_deliveries("node-b", at(2), 20, Duration::from_secs(100))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let xs: HashSet<_> = x.iter().map(|c| c.notification.id).collect();
    let ys: HashSet<_> = y.iter().map(|c| c.notification.id).collect();
    assert!(xs.is_disjoint(&ys));
    assert_eq!(xs.len() + ys.len(), 30);
    // node-a stalls past its lease; node-b takes its work over
    let taken = other.claim_deliveries("node-b", at(13), 100, Duration::from_secs(10)).await.unwrap();
    assert_eq!(taken.len(), x.len());
    assert!(taken.iter().all(|c| c.lease.generation == 2));
    let attempt = |secs| NewAttempt {
        at: at(secs),
        status_code: Some(200),
        latency_ms: 5,
        error: None,
        response_excerpt: "ok".into(),
    };
    let old = &x[0];
    let refused = a.record_attempt(old.notification.id, &old.lease, &attempt(3), NextStep::Delivered).await;
    assert!(matches!(refused, Err(StoreError::LeaseLost(_))), "{refused:?}");
    let new = taken.iter().find(|c| c.notification.id == old.notification.id).unwrap();
    other.record_attempt(new.notification.id, &new.lease, &attempt(14), NextStep::Delivered).await.unwrap();
    let (record, attempts) = a.notification(inst.org_id, old.notification.id).await.unwrap().unwrap();
    assert_eq!((record.attempts, attempts.len()), (1, 1), "only the current holder's attempt is recorded");
}

async fn instance_changes_release_nothing_twice(b: Backend) {
    // a job removed by a configuration change while leased: the holder's commit is refused
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = super::setup(&s, super::customers()).await;
    let c = s.claim_polls("n", t0(), 1, TTL).await.unwrap().remove(0);
    let other = config(&[("vendors", "/hubs/finance/vendors")], "1", true);
    let update = oc_model::ports::InstanceUpdate { configuration: Some(other), now: at(1), ..Default::default() };
    s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    let result = s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], None, at(2))).await;
    assert!(matches!(result, Err(StoreError::LeaseLost(_))), "{result:?}");
}

async fn two_nodes_batch_each_event_once(b: Backend) {
    let Some(t) = open(b).await else { return };
    let a: Arc<SqlStore> = t.store();
    let other: Arc<SqlStore> = Arc::new(t.another_handle().await);
    let (_, inst) = super::setup(&a, super::customers()).await;
    // 50 changes of 5 objects: per-object order must survive two nodes batching at once
    let events: Vec<_> = (0..50).map(|i| event(inst.id, "customers", &format!("o{}", i % 5), i)).collect();
    super::emit(&a, inst.id, "customers", events.clone(), t0()).await;
    let (x, y) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { a.batch_events(at(1), 3).await.unwrap() }
        }),
        tokio::spawn({
            let other = other.clone();
            async move { other.batch_events(at(1), 3).await.unwrap() }
        })
    );
    let built = x.unwrap() + y.unwrap() + a.batch_events(at(1), 3).await.unwrap();
    assert_eq!(built, 17);
    // deliver everything in claim order: every object's changes arrive in their order, each once
    let mut delivered = Vec::new();
    for round in 0..100 {
        let claims = a.claim_deliveries("w", at(2 + round), 100, TTL).await.unwrap();
        if claims.is_empty() {
            break;
        }
        for c in claims {
            delivered.extend(c.events.clone());
            let attempt = NewAttempt {
                at: at(2 + round),
                status_code: Some(200),
                latency_ms: 1,
                error: None,
                response_excerpt: String::new(),
            };
            a.record_attempt(c.notification.id, &c.lease, &attempt, NextStep::Delivered).await.unwrap();
        }
    }
    assert_eq!(delivered.len(), 50);
    for object in 0..5 {
        let id = format!("o{object}");
        let seen: Vec<_> = delivered.iter().filter(|e| e.object_id == id).map(|e| e.date).collect();
        let expected: Vec<_> = events.iter().filter(|e| e.object_id == id).map(|e| e.date).collect();
        assert_eq!(seen, expected, "{id}");
    }
}

/// A store on a manual clock with one instance holding `n` notifications of one event each.
async fn with_notifications(
    b: Backend,
    n: i64,
) -> Option<(Arc<oc_model::ports::ManualClock>, crate::testing::TestStore)> {
    let clock = Arc::new(oc_model::ports::ManualClock::new(t0()));
    let t = crate::testing::store(b, clock.clone()).await?;
    let d: Arc<SqlStore> = t.store();
    let (_, inst) = super::setup(&d, super::customers()).await;
    let events: Vec<_> = (0..n).map(|i| event(inst.id, "customers", &format!("o{i}"), i)).collect();
    super::emit(&d, inst.id, "customers", events, t0()).await;
    assert_eq!(d.batch_events(at(1), 1).await.unwrap(), n as usize);
    Some((clock, t))
}

/// A node restarted after a crash under the same node id takes back at once what its previous run held; other
/// nodes' leases stay, and the previous run's late writes are still refused.
async fn a_gone_node_s_leases_are_handed_back(b: Backend) {
    let Some((clock, t)) = with_notifications(b, 4).await else { return };
    let s = t.store();
    let d: Arc<SqlStore> = t.store();
    let (_, other_inst) = super::setup(&d, super::customers()).await;

    // (the first instance's job is due again a minute after its first poll)
    // node-a holds a poll job, two deliveries and a refresh lock; node-b holds a poll job
    let mine = d.claim_polls("node-a-poll", at(70), 1, TTL).await.unwrap().remove(0);
    let theirs = d.claim_polls("node-b-poll", at(70), 1, TTL).await.unwrap().remove(0);
    assert_ne!(mine.instance_id(), theirs.instance_id());
    let deliveries = d.claim_deliveries("node-a-notify", at(70), 2, TTL).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    clock.set(at(70)); // the refresh lock's time
    assert!(d.lock_refresh(other_inst.id, "node-a:77:0:beef", TTL).await.unwrap());
    let holders = s.lease_holders(at(71)).await.unwrap();
    assert_eq!(holders, ["node-a-notify", "node-a-poll", "node-a:77:0:beef", "node-b-poll"]);

    let released = s.release_leases_of("node-a", at(71)).await.unwrap();
    assert_eq!(released, oc_model::ports::ReleasedLeases { polls: 1, deliveries: 2, refresh_locks: 1 });
    assert_eq!(s.lease_holders(at(71)).await.unwrap(), ["node-b-poll"], "node-b keeps its lease");
    assert_eq!(s.release_leases_of("node-a", at(71)).await.unwrap().total(), 0, "nothing twice");

    // the work is claimable at once, not after the lease time
    let again = d.claim_polls("node-a-poll", at(71), 10, TTL).await.unwrap();
    assert_eq!(again.len(), 1, "node-b's job stays with node-b");
    assert_eq!((again[0].instance_id(), again[0].lease.generation), (mine.instance_id(), mine.lease.generation + 1));
    let redelivered = d.claim_deliveries("node-a-notify", at(71), 10, TTL).await.unwrap();
    let ids: HashSet<_> = redelivered.iter().map(|c| c.notification.id).collect();
    assert!(deliveries.iter().all(|c| ids.contains(&c.notification.id)), "both deliveries claimable again");
    assert!(d.lock_refresh(other_inst.id, "node-c:1:0:aa", TTL).await.unwrap(), "the refresh lock is free");

    // the previous run's writes under its old leases are refused
    let stale = commit(vec![], Some(at(72)), at(72));
    let refused = d.commit_poll(mine.instance_id(), &mine.resource, &mine.lease, &stale).await;
    assert!(matches!(refused, Err(StoreError::LeaseLost(_))), "{refused:?}");
}

/// A node whose heartbeat stops has its leases handed back by a node that watched its count stand still for
/// the timeout, on the watcher's clock; a live node, a node seen for the first time and a node that beats again
/// are left alone; the silent node's late writes are refused.
async fn a_silent_node_s_leases_are_taken_over(b: Backend) {
    let Some((_, t)) = with_notifications(b, 3).await else { return };
    let s = t.store();
    let d: Arc<SqlStore> = t.store();
    let timeout = Duration::from_secs(30);
    // leases far longer than the timeout: handed back, not lapsed
    let long = Duration::from_secs(600);
    let mut a = crate::NodeWatch::new("node-a", timeout);
    let mut w = crate::NodeWatch::new("node-w", timeout);

    assert!(a.beat(&*s, at(60)).await.unwrap().is_empty());
    assert!(w.beat(&*s, at(60)).await.unwrap().is_empty());
    let job = d.claim_polls("node-a-poll", at(70), 1, long).await.unwrap().remove(0);
    assert_eq!(d.claim_deliveries("node-a-notify", at(70), 2, long).await.unwrap().len(), 2);
    assert!(a.beat(&*s, at(70)).await.unwrap().is_empty());
    assert!(w.beat(&*s, at(70)).await.unwrap().is_empty(), "node-a's count moved");
    let nodes: Vec<(String, i64)> = s.nodes().await.unwrap().into_iter().map(|n| (n.node, n.beats)).collect();
    assert_eq!(nodes, [("node-a".to_string(), 2), ("node-w".to_string(), 2)]);

    // node-a stops beating at 70 s: silent, but not for long enough until 100 s on the watcher's clock
    assert!(w.beat(&*s, at(90)).await.unwrap().is_empty());
    assert!(w.beat(&*s, at(99)).await.unwrap().is_empty());
    // a watcher that starts now has not seen the count stand still yet
    let mut late = crate::NodeWatch::new("node-late", timeout);
    assert!(late.beat(&*s, at(99)).await.unwrap().is_empty());
    let taken = w.beat(&*s, at(101)).await.unwrap();
    assert_eq!(w.listed(), 3, "node-a, node-late and node-w were listed at the beat");
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].node, "node-a");
    assert_eq!(taken[0].last_heartbeat, at(70));
    assert_eq!(taken[0].released, oc_model::ports::ReleasedLeases { polls: 1, deliveries: 2, refresh_locks: 0 });
    let holders = s.lease_holders(at(101)).await.unwrap();
    assert!(holders.is_empty(), "{holders:?}");
    let nodes: Vec<String> = s.nodes().await.unwrap().into_iter().map(|n| n.node).collect();
    assert_eq!(nodes, ["node-late", "node-w"], "the silent node is forgotten");
    assert!(late.beat(&*s, at(140)).await.unwrap().is_empty(), "nothing left to take over");

    // the work is claimable at once; node-a's late write is refused
    let again = d.claim_polls("node-w-poll", at(101), 10, TTL).await.unwrap();
    assert_eq!(again.iter().map(|c| c.instance_id()).collect::<Vec<_>>(), [job.instance_id()]);
    assert_eq!(d.claim_deliveries("node-w-notify", at(101), 10, TTL).await.unwrap().len(), 3, "the two and the third");
    let stale = commit(vec![], Some(at(102)), at(102));
    let refused = d.commit_poll(job.instance_id(), &job.resource, &job.lease, &stale).await;
    assert!(matches!(refused, Err(StoreError::LeaseLost(_))), "{refused:?}");

    // node-a comes back: it beats again and is a node like any other; a clean stop leaves no row
    assert!(a.beat(&*s, at(150)).await.unwrap().is_empty());
    assert!(w.beat(&*s, at(150)).await.unwrap().is_empty());
    assert!(w.beat(&*s, at(170)).await.unwrap().is_empty(), "node-a beat 20 s ago at most on w's clock");
    a.leave(&*s).await.unwrap();
    let nodes: Vec<String> = s.nodes().await.unwrap().into_iter().map(|n| n.node).collect();
    assert_eq!(nodes, ["node-late", "node-w"]);
}

/// Issue 19, item 4: a leased job's claim row stays out of the claim query's way (its `next_run_at` is the
/// lease's expiry), yet a claim still says when the job was due, a released job is due again at once at its
/// own time, and a lapsed lease (renewals included) makes the job claimable exactly when it lapses.
async fn leased_jobs_are_skipped_by_claims_and_keep_their_due_time(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s2: Arc<SqlStore> = t.store();
    many_jobs(&s2).await;
    let held = s2.claim_polls("node-a", t0(), 10, TTL).await.unwrap();
    assert_eq!(held.len(), 10);
    let first_due = held[0].due_at;
    assert!(held.iter().all(|c| c.due_at == first_due), "a claim says when the job was due, not its lease's end");
    let rest = s2.claim_polls("node-b", t0(), JOBS, TTL).await.unwrap();
    assert_eq!(rest.len(), JOBS - 10, "the leased ones are skipped, the others claimed");
    for c in &held[..5] {
        s2.release_poll(c.instance_id(), &c.resource, &c.lease).await.unwrap();
    }
    let back = s2.claim_polls("node-c", t0(), JOBS, TTL).await.unwrap();
    assert_eq!(back.len(), 5, "released jobs are due again at once");
    assert!(back.iter().all(|c| c.due_at == first_due), "at their own due time: {back:?}");
    // a lease renewed at t0 + 10 s lapses a TTL later, not before
    let kept = &held[5];
    let renewed = s2.renew_poll(kept.instance_id(), &kept.resource, &kept.lease, at(10), TTL).await.unwrap();
    let ttl = chrono::Duration::from_std(TTL).unwrap();
    let before = s2.claim_polls("node-d", renewed.expires_at - chrono::Duration::seconds(1), JOBS, TTL).await.unwrap();
    assert!(before.iter().all(|c| c.resource != kept.resource), "renewed: not claimable before it lapses");
    assert!(before.len() >= 4, "the other four lapsed at t0 + TTL: {before:?}");
    let after = s2.claim_polls("node-d", at(10) + ttl, JOBS, TTL).await.unwrap();
    assert_eq!(after.iter().map(|c| &c.resource).collect::<Vec<_>>(), [&kept.resource], "claimable once it lapsed");
}

on_both!(
    leased_jobs_are_skipped_by_claims_and_keep_their_due_time,
    a_silent_node_s_leases_are_taken_over,
    a_gone_node_s_leases_are_handed_back,
    two_nodes_batch_each_event_once,
    two_nodes_never_hold_the_same_job,
    expired_leases_are_taken_over_and_fence_the_old_holder,
    delivery_leases_fence_too,
    instance_changes_release_nothing_twice,
);

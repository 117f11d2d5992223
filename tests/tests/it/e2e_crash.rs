//! Issue 9, item 14: `kill -9` of the real `ocpoll serve` binary while it polls and delivers, and a restart on the
//! same database (SQLite file, PostgreSQL schema), three times, while the simulator keeps changing customers. At
//! the end every change has arrived (a matching event for each create, update and delete), duplicates only under
//! the same event id, and a consumer applying the events holds Sage's final state.
//!
//! Sage answers slowly (250 ms) and the receiver too (150 ms), so that a kill often lands inside a poll or a
//! delivery. A killed node's leases last 5 minutes; the restarted node takes them back at once: on SQLite it runs
//! under the default node id (host and process id) and takes back the leases of this host's processes that no
//! longer run, on PostgreSQL it runs under the same `--node-id` every time and takes back that node's leases.
//! Everything must then arrive within 45 s, far less than the lease time.

use std::sync::Arc;
use std::time::Duration;

use oc_store::testing::{self, TestStore};
use oc_tests::changes::{Changer, check_delivered, undelivered};
use oc_tests::process::{Node, NodeConfig, ocpoll_binary};
use oc_tests::receiver::Receiver;
use oc_tests::sim::Sage;
use oc_tests::{Api, eventually};

const KEY: &str = "e2e-crash-key";

/// The binary built, a simulator answering in 250 ms and a receiver answering in 150 ms: a kill often lands
/// inside a poll or a delivery.
async fn slow_world() -> (Arc<Sage>, Receiver) {
    tokio::task::spawn_blocking(ocpoll_binary).await.unwrap();
    let sage = Arc::new(Sage::start(5).await.unwrap());
    sage.sim.set_latency(Duration::from_millis(250));
    let receiver = Receiver::start(KEY).await;
    receiver.set_delay(Duration::from_millis(150));
    (sage, receiver)
}

async fn kill_and_restart(store: TestStore, seed: u64) {
    let (sage, receiver) = slow_world().await;
    // SQLite: the default node id (empty: no `--node-id`); PostgreSQL: one stable name
    let node_id = match store.backend() {
        oc_store::Backend::Sqlite => String::new(),
        oc_store::Backend::Postgres => format!("crash-{seed}"),
    };
    let config = NodeConfig::new(&store, &node_id, sage.serve_args());
    let mut node = Node::start(&config).await.unwrap();
    let api = Api::new(&node.api, &config.authorization());
    let code = sage.code().await.unwrap();
    let (id, _) = api.create_instance(&sage.instance_body(&code, &receiver.url("/hook"), KEY, 1.5)).await;

    let t = std::time::Instant::now();
    let changer = Changer::start(sage.clone(), Duration::from_millis(300), seed);
    let mut taken_back = Vec::new();
    for round in 1..=3u64 {
        // Let it work until some changes of this round have arrived, then kill it: in round 1 while a
        // notification is being received, in round 2 right after a Sage request of a poll was answered (the
        // poll's next request is on its way), in round 3 at a time that varies.
        let before = receiver.hooks().len();
        eventually(Duration::from_secs(30), "notifications before the kill", || async {
            receiver.hooks().len() > before
        })
        .await;
        match round {
            1 => {
                eventually(Duration::from_secs(30), "a delivery in flight", || async { receiver.in_flight() > 0 }).await
            }
            2 => {
                let served = sage.api_requests();
                eventually(Duration::from_secs(30), "a poll in flight", || async { sage.api_requests() > served }).await
            }
            _ => tokio::time::sleep(Duration::from_millis(300 + seed * 97 % 1500)).await,
        }
        node.kill9().await;
        node = Node::start(&config).await.unwrap();
        let log = node.log();
        taken_back.push(log.iter().find(|l| l.contains("took back the leases")).cloned());
        eprintln!("{:?}: round {round} restarted at {:?}", store.backend(), t.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changes = changer.stop().await;
    let api = Api::new(&node.api, &config.authorization());
    let until = std::time::Instant::now() + Duration::from_secs(45);
    while !undelivered(&changes, id, &receiver.events()).is_empty() {
        if std::time::Instant::now() > until {
            let polls = api.polls(id).await;
            let events = api.events(id).await;
            panic!(
                "not delivered after 45 s: {:#?}\nlatest polls: {:#?}\nevents not delivered: {:#?}",
                undelivered(&changes, id, &receiver.events()),
                &polls[..polls.len().min(5)],
                events.iter().filter(|e| e["deliveryStatus"] != "delivered").collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{:?}: all delivered at {:?}", store.backend(), t.elapsed());
    api.wait_polls(id, 2, Duration::from_secs(30)).await;
    let events = receiver.events();
    check_delivered(&sage, &changes, id, &events);
    assert!(receiver.hooks().iter().all(|h| h.elements_ok && h.standard_ok));
    let distinct: std::collections::BTreeSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    eprintln!(
        "{:?}: {} changes, {} events received ({} distinct), leases taken back at the restarts: {taken_back:#?}",
        store.backend(),
        changes.len(),
        events.len(),
        distinct.len()
    );
    assert!(changes.len() >= 20, "enough changes were made: {}", changes.len());
    // round 1 was killed with a delivery in flight: its notification lease at least was taken back
    assert!(taken_back[0].as_ref().is_some_and(|l| l.contains("deliveries")), "{taken_back:#?}");
    assert!(node.terminate(Duration::from_secs(15)).await, "a clean stop on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_sqlite() {
    kill_and_restart(testing::sqlite().await, 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_postgres() {
    let Some(store) = testing::postgres().await else { return };
    kill_and_restart(store, 12).await;
}

/// PostgreSQL without `--node-id`: the restarted node cannot tell at start whether a default-named node of this
/// host name is gone (another machine may share the name), so its heartbeat watch takes the killed node's leases
/// over once the killed node has been silent for the node timeout (30 s, the default) — not after the 5-minute
/// lease time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_postgres_without_a_node_id() {
    let Some(store) = testing::postgres().await else { return };
    let (sage, receiver) = slow_world().await;
    let config = NodeConfig::new(&store, "", sage.serve_args());
    let node = Node::start(&config).await.unwrap();
    let api = Api::new(&node.api, &config.authorization());
    let code = sage.code().await.unwrap();
    let (id, _) = api.create_instance(&sage.instance_body(&code, &receiver.url("/hook"), KEY, 1.5)).await;

    let changer = Changer::start(sage.clone(), Duration::from_millis(300), 13);
    eventually(Duration::from_secs(30), "notifications before the kill", || async { !receiver.hooks().is_empty() })
        .await;
    eventually(Duration::from_secs(30), "a delivery in flight", || async { receiver.in_flight() > 0 }).await;
    node.kill9().await;
    let killed = std::time::Instant::now();
    let node = Node::start(&config).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changes = changer.stop().await;
    // 30 s of silence, a beat period to notice, then a poll and a delivery
    eventually(Duration::from_secs(80), "every change delivered", || async {
        undelivered(&changes, id, &receiver.events()).is_empty()
    })
    .await;
    eventually(Duration::from_secs(45), "the killed node's leases taken over", || async {
        node.log().iter().any(|l| l.contains("took over its leases"))
    })
    .await;
    let line = node.log().into_iter().find(|l| l.contains("took over its leases")).unwrap_or_default();
    eprintln!("all delivered {:?} after the kill; {line}", killed.elapsed());
    assert!(!line.contains("deliveries=0"), "the delivery in flight was handed back: {line}");
    let api = Api::new(&node.api, &config.authorization());
    api.wait_polls(id, 2, Duration::from_secs(30)).await;
    check_delivered(&sage, &changes, id, &receiver.events());
    assert!(node.terminate(Duration::from_secs(15)).await, "a clean stop on SIGTERM");
}

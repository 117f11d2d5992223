//! Issue 9, item 15: two `ocpoll serve` processes on one PostgreSQL database share the work of four instances
//! while the simulator keeps changing customers.
//!
//! - an (instance, resource) is never polled by both at once: its polls, as recorded, never overlap in time, and
//!   the poll leases sampled from the database show which nodes did the polling;
//! - no change is notified under two event ids (duplicates only with the same id);
//! - `kill -9` of one node leaves the other to finish everything: with the default settings (leases of 5
//!   minutes), the survivor takes the killed node's leases over once its heartbeat has been silent for the node
//!   timeout (30 s), and says so in its log.
//!
//! PostgreSQL only: SQLite is the one-node backend.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_store::testing;
use oc_tests::changes::{Changer, check_delivered, undelivered};
use oc_tests::process::{Node, NodeConfig, ocpoll_binary, pg_connection, poll_lease_owners};
use oc_tests::receiver::Receiver;
use oc_tests::sim::Sage;
use oc_tests::{Api, eventually};

const KEY: &str = "e2e-two-nodes-key";
const INSTANCES: usize = 4;
/// `--node-timeout-seconds`, the default.
const NODE_TIMEOUT_SECONDS: u64 = 30;

/// `ocpoll_sage_business_budget` of the node at `root`.
async fn business_budget(root: &str) -> Option<f64> {
    let text = reqwest::get(format!("{root}/metrics")).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix("ocpoll_sage_business_budget ")).and_then(|v| v.trim().parse().ok())
}

fn instant(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| s.parse().ok()).expect("an RFC 3339 instant")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work_postgres() {
    let Some(store) = testing::postgres().await else { return };
    tokio::task::spawn_blocking(ocpoll_binary).await.unwrap();
    let sage = Arc::new(Sage::start(5).await.unwrap());
    sage.sim.set_latency(Duration::from_millis(150));
    let receiver = Receiver::start(KEY).await;
    receiver.set_delay(Duration::from_millis(50));
    // default leases (5 minutes): the killed node's work must not wait for them to lapse
    let a_config = NodeConfig::new(&store, "pair-a", sage.serve_args());
    let b_config = NodeConfig { node_id: "pair-b".into(), ..a_config.clone() };
    let a = Node::start(&a_config).await.unwrap();
    let b = Node::start(&b_config).await.unwrap();
    let api_a = Api::new(&a.api, &a_config.authorization());
    let api_b = Api::new(&b.api, &b_config.authorization());

    let mut instances = Vec::new();
    for n in 0..INSTANCES {
        let code = sage.code().await.unwrap();
        let path = format!("/instance-{n}");
        // Created through either node: they share one database.
        let api = if n % 2 == 0 { &api_a } else { &api_b };
        let (id, _) = api.create_instance(&sage.instance_body(&code, &receiver.url(&path), KEY, 1.5)).await;
        instances.push((id, path));
    }

    // Sample the poll leases all along.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let mut c = pg_connection(&store).await.unwrap();
        let go = sampling.clone();
        tokio::spawn(async move {
            let mut seen: BTreeMap<(i64, String), BTreeSet<String>> = BTreeMap::new();
            let mut samples = 0;
            while go.load(Ordering::SeqCst) {
                let held = poll_lease_owners(&mut c).await.unwrap();
                for (instance, resource, owner) in held {
                    seen.entry((instance, resource)).or_default().insert(owner);
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            (seen, samples)
        })
    };

    let changer = Changer::start(sage.clone(), Duration::from_millis(300), 15);
    // Both nodes at work for a while.
    let before = receiver.hooks().len();
    eventually(Duration::from_secs(30), "notifications of every instance", || async {
        instances.iter().all(|(_, path)| !receiver.events_at(path).is_empty()) && receiver.hooks().len() > before
    })
    .await;
    // Issue 19: each node uses half of ocpoll's share of a business's budget (the simulator's limit of 100,000
    // a minute, half of it ocpoll's: 25,000 each).
    for node in [&a, &b] {
        eventually(Duration::from_secs(15), "each node's part of the budget", || async {
            business_budget(&node.root).await == Some(25_000.0)
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    // One node dies mid-work: B carries on alone.
    eventually(Duration::from_secs(30), "a delivery in flight", || async { receiver.in_flight() > 0 }).await;
    a.kill9().await;
    let killed_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let changes = changer.stop().await;
    // Everything delivered well before the killed node's leases (5 minutes) lapse: the take-over, not the lease
    // time, hands its work to b. The margin over the node timeout is for a loaded CI machine (the whole suite
    // and a browser beside this test); a failure says what is missing and what b was doing.
    let deadline = Duration::from_secs(NODE_TIMEOUT_SECONDS + 120);
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let missing: Vec<(i64, usize)> = instances
            .iter()
            .map(|(id, path)| (*id, undelivered(&changes, *id, &receiver.events_at(path)).len()))
            .filter(|(_, n)| *n > 0)
            .collect();
        if missing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > until {
            let mut report = String::new(); // the polls are listed newest first
            for (id, n) in &missing {
                let polls = api_b.polls(*id).await;
                let last: Vec<String> = polls
                    .iter()
                    .take(3)
                    .map(|p| format!("{} {} {}", p["startedAt"], p["status"], p["error"]))
                    .collect();
                let events = api_b.events(*id).await;
                let waiting = events.iter().filter(|e| e["status"] != "NOTIFIED").count();
                report += &format!(
                    "\ninstance {id}: {n} change(s) undelivered; {} polls, the last {last:?}; {waiting} of {} \
                     events not notified",
                    polls.len(),
                    events.len()
                );
            }
            let took_over = b.log().iter().any(|l| l.contains("took over its leases"));
            panic!("{:?} after the kill, changes undelivered (b took over: {took_over}):{report}", killed_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (id, _) in &instances {
        api_b.wait_polls(*id, 2, Duration::from_secs(30)).await;
    }
    sampling.store(false, Ordering::SeqCst);
    let (owners, samples) = sampler.await.unwrap();

    let mut all_events = 0;
    for (id, path) in &instances {
        let events = receiver.events_at(path);
        all_events += events.len();
        assert!(events.iter().all(|e| e.instance_id == *id), "{path} got another instance's events");
        check_delivered(&sage, &changes, *id, &events);
        // Never two polls of one (instance, resource) at once.
        let mut polls: Vec<(DateTime<Utc>, DateTime<Utc>)> =
            api_b.polls(*id).await.iter().map(|p| (instant(&p["startedAt"]), instant(&p["finishedAt"]))).collect();
        polls.sort();
        for w in polls.windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "instance {id}: a poll started at {} before the one of {} finished at {}",
                w[1].0,
                w[0].0,
                w[0].1
            );
        }
        let listed = api_b.events(*id).await;
        assert!(listed.iter().all(|e| e["status"] == "NOTIFIED"), "{listed:#?}");
    }
    assert!(receiver.hooks().iter().all(|h| h.elements_ok && h.standard_ok));
    let nodes: BTreeSet<&String> = owners.values().flatten().collect();
    eprintln!(
        "{} changes, {all_events} events at {INSTANCES} instances; {samples} lease samples, owners seen: {nodes:?}; \
         checked {:?} after the kill",
        changes.len(),
        killed_at.elapsed()
    );
    assert!(owners.len() == INSTANCES, "every job was seen leased: {owners:?}");
    assert!(nodes.contains(&"pair-b-poll".to_string()), "{nodes:?}");
    // (everything may be delivered before then, when pair-a held no lease at its death)
    eventually(
        Duration::from_secs(NODE_TIMEOUT_SECONDS + 15),
        "node b's log says it took pair-a's leases over",
        || async { b.log().iter().any(|l| l.contains("took over its leases") && l.contains("pair-a")) },
    )
    .await;
    let metrics = reqwest::get(format!("{}/metrics", b.root)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\nocpoll_node_takeovers_total 1\n"), "{metrics}");
    // alone, b uses the whole share again
    eventually(Duration::from_secs(15), "b's part of the budget back to the whole share", || async {
        business_budget(&b.root).await == Some(50_000.0)
    })
    .await;
    assert!(metrics.contains("\nocpoll_nodes "), "{metrics}");
    assert!(b.terminate(Duration::from_secs(15)).await, "a clean stop on SIGTERM");
}

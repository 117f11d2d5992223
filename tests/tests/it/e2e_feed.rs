//! Issue 17, items 1 and 3, as a consumer uses them: an instance with events enabled and no callback URL is valid
//! and feeds the change feed only; the feed is read to its end with cursors, a long poll (`wait`) returns a
//! change within a second of its commit, a forged cursor is a 400 naming `after`; an instance whose webhook sends
//! only `CREATED` (`event.notification.eventTypes`) gets only those by webhook while its feed keeps every change —
//! on SQLite and on PostgreSQL. And item 2: replay by range and redelivery of anything kept.

use std::time::{Duration, Instant};

use oc_store::testing::{self, TestStore};
use oc_tests::receiver::{Receiver, counts};
use oc_tests::sim::Sage;
use oc_tests::{Api, Server, eventually};
use serde_json::{Value, json};

const KEY: &str = "e2e-feed-key";
const WAIT: Duration = Duration::from_secs(30);

/// Reads the feed of `instance` from `after` to its end; the changes and the cursor to wait on.
async fn read_to_end(api: &Api, instance: i64, mut after: Option<String>) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    loop {
        let path = match &after {
            Some(c) => format!("/instances/{instance}/changes?limit=2&after={c}"),
            None => format!("/instances/{instance}/changes?limit=2"),
        };
        let page = api.ok("GET", &path, None, 200).await;
        all.extend(page["changes"].as_array().cloned().unwrap_or_default());
        let next = page["nextCursor"].as_str().expect("nextCursor").to_string();
        if !page["hasMore"].as_bool().expect("hasMore") {
            return (all, next);
        }
        after = Some(next);
    }
}

async fn feed(store: TestStore) {
    let sage = Sage::start(3).await.unwrap();
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("feed").await;
    let api = server.api(&org);

    // Events enabled, no callback URL: valid, polls, feeds the feed only.
    let code = sage.code().await.unwrap();
    let mut body = sage.instance_body(&code, "http://unused.invalid/", KEY, 1.0);
    body["configuration"].as_object_mut().unwrap().remove("event.notification.callback.url");
    let (id, created) = api.create_instance(&body).await;
    assert_eq!(created["valid"], json!(true), "{created}");
    let (a, _) = sage.create_customer("Feed A");
    let (b, _) = sage.create_customer("Feed B");
    eventually(WAIT, "two changes in the feed", || async {
        let page = api.ok("GET", &format!("/instances/{id}/changes"), None, 200).await;
        page["changes"].as_array().is_some_and(|c| c.len() == 2)
    })
    .await;
    // Sage's dates are whole seconds and the seed's URL reads only `created_at,updated_at`: an edit in the second
    // of the creation would be the same state (pitfall 8). Let that second pass first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sage.update_customer(&a, "changed");
    eventually(WAIT, "three changes in the feed", || async {
        let page = api.ok("GET", &format!("/instances/{id}/changes"), None, 200).await;
        page["changes"].as_array().is_some_and(|c| c.len() == 3)
    })
    .await;
    // Read to the end two at a time: every change once, in commit order, object order kept.
    let (changes, cursor) = read_to_end(&api, id, None).await;
    let seen: Vec<(&str, &str)> =
        changes.iter().map(|c| (c["objectId"].as_str().unwrap(), c["eventType"].as_str().unwrap())).collect();
    assert_eq!(seen.len(), 3, "{changes:#?}");
    assert!(seen.contains(&(a.as_str(), "CREATED")) && seen.contains(&(b.as_str(), "CREATED")));
    assert_eq!(seen[2], (a.as_str(), "UPDATED"), "the update of A after its creation");
    for c in &changes {
        assert!(c["cursor"].is_string() && c["eventId"].is_string() && c["date"].is_string(), "{c}");
        assert_eq!(c["objectType"], "customers");
        assert!(c["record"]["id"].is_string(), "{c}");
    }
    // Events of a feed-only instance are withheld from webhooks, and listed so.
    let listed = api.events(id).await;
    assert!(listed.iter().all(|e| e["status"] == "WITHHELD"), "{listed:#?}");
    // The same cursor again: the same (empty) answer, at once.
    let again = api.ok("GET", &format!("/instances/{id}/changes?after={cursor}"), None, 200).await;
    assert_eq!((again["changes"].clone(), again["nextCursor"].clone()), (json!([]), json!(cursor)));

    // A long poll: the next change arrives within a second of its commit.
    let waiting = {
        let api = Api::new(&api.api, &api.auth);
        let cursor = cursor.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let page = api.ok("GET", &format!("/instances/{id}/changes?after={cursor}&wait=30"), None, 200).await;
            (page, started.elapsed(), chrono::Utc::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c, _) = sage.create_customer("Feed C");
    let (page, waited, arrived) = waiting.await.unwrap();
    let got = page["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(got.len(), 1, "{page}");
    assert_eq!(got[0]["objectId"], json!(c));
    assert!(waited < Duration::from_secs(20), "woken by the change, not the 30 s timeout: {waited:?}");
    let detail =
        api.ok("GET", &format!("/instances/{id}/events/{}", got[0]["eventId"].as_str().unwrap()), None, 200).await;
    let committed: chrono::DateTime<chrono::Utc> = detail["createdAt"]
        .as_str()
        .or(detail["event"]["createdAt"].as_str())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("createdAt in {detail}"));
    let latency = arrived - committed;
    assert!(latency < chrono::Duration::seconds(1), "commit to reader: {latency}");
    eprintln!("feed: commit-to-reader latency of a waiting reader {} ms", latency.num_milliseconds());

    // Bad cursors and parameters are named.
    let (status, v) = api.call("GET", &format!("/instances/{id}/changes?after=forged"), None).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errors"][0]["path"], "after", "{v}");
    let (status, v) = api.call("GET", &format!("/instances/{id}/changes?limit=5000&wait=90"), None).await;
    assert_eq!(status, 400, "{v}");
    // The id-less form with the Element token.
    let token = created["token"].as_str().unwrap();
    let element = Api::new(&api.api, &format!("{}, Element {token}", api.auth));
    let own = element.ok("GET", "/instances/changes?limit=1000", None, 200).await;
    assert_eq!(own["changes"].as_array().map(Vec::len), Some(4));
    server.stop().await;
}

async fn event_types(store: TestStore) {
    let sage = Sage::start(3).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("types").await;
    let api = server.api(&org);
    let code = sage.code().await.unwrap();
    let mut body = sage.instance_body(&code, &receiver.url("/hooks"), KEY, 1.0);
    body["configuration"]["event.notification.eventTypes"] = json!("CREATED");
    let (id, _) = api.create_instance(&body).await;
    let (a, _) = sage.create_customer("Types A");
    eventually(WAIT, "the CREATED of A", || async { receiver.events().iter().any(|e| e.object_id == a) }).await;
    sage.update_customer(&a, "changed");
    eventually(WAIT, "the UPDATED of A in the feed", || async {
        let page = api.ok("GET", &format!("/instances/{id}/changes"), None, 200).await;
        page["changes"].as_array().is_some_and(|c| c.iter().any(|c| c["eventType"] == "UPDATED"))
    })
    .await;
    api.wait_polls(id, 3, WAIT).await;
    let expected = [((a.clone(), "CREATED".to_string()), 1)].into_iter().collect();
    assert_eq!(counts(&receiver.events()), expected, "only CREATED by webhook");
    let listed = api.events(id).await;
    let statuses: Vec<(&str, &str)> =
        listed.iter().map(|e| (e["eventType"].as_str().unwrap(), e["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, [("UPDATED", "WITHHELD"), ("CREATED", "NOTIFIED")]);
    // a bad list is a 400 naming the key
    let bad = json!({"configuration": {"event.notification.eventTypes": "CREATED,MOVED"}});
    let (status, v) = api.call("PATCH", &format!("/instances/{id}"), Some(&bad)).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["errors"][0]["path"].as_str().is_some_and(|p| p.contains("eventTypes")), "{v}");
    server.stop().await;
}

/// Issue 17, item 2: replay by range and redelivery of a delivered event: same event ids, new notification ids.
async fn replay(store: TestStore) {
    let sage = Sage::start(3).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("replay").await;
    let api = server.api(&org);
    let code = sage.code().await.unwrap();
    let (id, _) = api.create_instance(&sage.instance_body(&code, &receiver.url("/hooks"), KEY, 1.0)).await;
    let since = chrono::Utc::now().to_rfc3339();
    let (a, _) = sage.create_customer("Replay A");
    let (b, _) = sage.create_customer("Replay B");
    eventually(WAIT, "both delivered", || async { receiver.events().len() == 2 }).await;
    let first = receiver.events();
    // the receiver records a request on arrival, before it answers: wait for the attempts to be recorded
    let all_notified = || async {
        let listed = api.events(id).await;
        listed.len() == 2 && listed.iter().all(|e| e["status"] == "NOTIFIED")
    };
    eventually(WAIT, "both listed as delivered", all_notified).await;

    let replayed = api.ok("POST", &format!("/instances/{id}/events/replay"), Some(&json!({"since": since})), 200).await;
    assert_eq!(replayed["count"], 2, "{replayed}");
    eventually(WAIT, "both again", || async { receiver.events().len() == 4 }).await;
    eventually(WAIT, "both listed as delivered again", all_notified).await;
    let all = receiver.events();
    for object in [&a, &b] {
        let of: Vec<_> = all.iter().filter(|e| &e.object_id == object).collect();
        assert_eq!(of.len(), 2);
        assert_eq!(of[0].event_id, of[1].event_id, "the same event id");
        assert_ne!(of[0].notification_id, of[1].notification_id, "a new notification id");
    }
    // a filter that matches nothing, a range in the future
    let none = json!({"since": since, "eventType": "DELETED"});
    assert_eq!(api.ok("POST", &format!("/instances/{id}/events/replay"), Some(&none), 200).await["count"], 0);
    // one delivered event, again
    let event = &first[0];
    let again = api.ok("POST", &format!("/instances/events/{}/redeliver", event.event_id), None, 200).await;
    assert_eq!(again["redelivered"], 1, "{again}");
    eventually(WAIT, "the event a third time", || async {
        receiver.events().iter().filter(|e| e.event_id == event.event_id).count() == 3
    })
    .await;
    // bad bodies name the field
    for (body, path) in [
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": since, "until": "2000-01-01T00:00:00Z"}), "until"),
        (json!({"since": since, "eventType": "MOVED"}), "eventType"),
    ] {
        let (status, v) = api.call("POST", &format!("/instances/{id}/events/replay"), Some(&body)).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["errors"][0]["path"], path, "{v}");
    }
    let (status, _) = api.call("POST", "/instances/999999/events/replay", Some(&json!({"since": since}))).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_redelivery_sqlite() {
    replay(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_redelivery_postgres() {
    let Some(store) = testing::postgres().await else { return };
    replay(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_feed_sqlite() {
    feed(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_feed_postgres() {
    let Some(store) = testing::postgres().await else { return };
    feed(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_types_filter_webhooks_sqlite() {
    event_types(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_types_filter_webhooks_postgres() {
    let Some(store) = testing::postgres().await else { return };
    event_types(store).await;
}

/// Issue 17, item 1, across nodes: two `ocpoll serve` processes on one PostgreSQL database, a reader waiting on
/// each. Whichever node's poll commits a change, both readers get it within a second of each other — so the
/// reader on the node that did not commit was woken by the other node's commit (`LISTEN`/`NOTIFY`), not by the
/// end of its 20 s wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_one_node_wakes_a_reader_waiting_on_the_other_postgres() {
    use oc_tests::process::{Node, NodeConfig, ocpoll_binary};
    let Some(store) = testing::postgres().await else { return };
    tokio::task::spawn_blocking(ocpoll_binary).await.unwrap();
    let sage = Sage::start(1).await.unwrap();
    let a_config = NodeConfig::new(&store, "feed-a", sage.serve_args());
    let b_config = NodeConfig { node_id: "feed-b".into(), ..a_config.clone() };
    let a = Node::start(&a_config).await.unwrap();
    let b = Node::start(&b_config).await.unwrap();
    let api_a = Api::new(&a.api, &a_config.authorization());
    let api_b = Api::new(&b.api, &b_config.authorization());
    let code = sage.code().await.unwrap();
    let mut body = sage.instance_body(&code, "http://unused.invalid/", KEY, 1.0);
    body["configuration"].as_object_mut().unwrap().remove("event.notification.callback.url");
    let (id, _) = api_a.create_instance(&body).await;
    api_a.wait_polls(id, 1, WAIT).await;

    for round in 0..3 {
        let (_, cursor) = read_to_end(&api_a, id, None).await;
        let path = format!("/instances/{id}/changes?after={cursor}&wait=20");
        let wait_on = |api: Api, path: String| {
            tokio::spawn(async move {
                let page = api.ok("GET", &path, None, 200).await;
                (Instant::now(), page)
            })
        };
        let on_a = wait_on(api_a.clone(), path.clone());
        let on_b = wait_on(api_b.clone(), path);
        tokio::time::sleep(Duration::from_millis(300)).await; // both are waiting
        let started = Instant::now();
        let (customer, _) = sage.create_customer(&format!("Two nodes {round}"));
        let ((at_a, page_a), (at_b, page_b)) = (on_a.await.unwrap(), on_b.await.unwrap());
        for page in [&page_a, &page_b] {
            let ids: Vec<&str> =
                page["changes"].as_array().unwrap().iter().filter_map(|c| c["objectId"].as_str()).collect();
            assert!(ids.contains(&customer.as_str()), "round {round}: {page}");
        }
        let apart = if at_a > at_b { at_a - at_b } else { at_b - at_a };
        println!(
            "round {round}: readers on A and B woke {:?} and {:?} after the change, {apart:?} apart",
            at_a - started,
            at_b - started
        );
        assert!(apart < Duration::from_secs(1), "round {round}: the readers woke {apart:?} apart");
    }
    assert!(a.terminate(Duration::from_secs(10)).await && b.terminate(Duration::from_secs(10)).await);
}

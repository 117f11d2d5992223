//! A property test of the outbox against a model: whatever the interleaving of polls, batching, claims and
//! attempt outcomes, each object's changes are delivered in the order they happened, every change ends up
//! delivered exactly once or in a failed notification, and no notification breaks the shape rules.

use super::prelude::*;
use crate::SqlStore;
use std::collections::{HashMap, HashSet};

use oc_model::event::MAX_EVENTS_PER_NOTIFICATION;
use oc_model::ports::{NewAttempt, NextStep};
use proptest::prelude::*;

use super::{TTL, at, config, emit, event, setup};

#[derive(Debug, Clone)]
enum Step {
    /// A poll of `customers` or `vendors` finding changes of these objects.
    Poll { vendors: bool, objects: Vec<u8> },
    /// Batching with this many events at most per notification.
    Batch(usize),
    /// A claim of at most `limit` notifications, each answered by the next of `outcomes` (cycled):
    /// 0 delivered, 1 retry later, 2 failed for good.
    Claim { limit: usize, outcomes: Vec<u8> },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), prop::collection::vec(0u8..4, 1..6))
            .prop_map(|(vendors, objects)| Step::Poll { vendors, objects }),
        (1usize..=MAX_EVENTS_PER_NOTIFICATION).prop_map(Step::Batch),
        (1usize..4, prop::collection::vec(prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)], 1..4))
            .prop_map(|(limit, outcomes)| Step::Claim { limit, outcomes }),
    ]
}

struct Model {
    /// Per (object type, object id): the last change delivered.
    last: HashMap<(String, String), i64>,
    delivered: Vec<uuid::Uuid>,
    failed: Vec<uuid::Uuid>,
}

async fn claim_round(s: &SqlStore, m: &mut Model, secs: i64, limit: usize, outcomes: &[u8]) -> usize {
    let claims = s.claim_deliveries("model", at(secs), limit, TTL).await.unwrap();
    for (i, c) in claims.iter().enumerate() {
        let n = &c.notification;
        assert!(!c.events.is_empty() && c.events.len() <= MAX_EVENTS_PER_NOTIFICATION);
        assert!(c.events.iter().all(|e| e.object_type == n.object_type), "one object type per notification");
        let outcome = outcomes[i % outcomes.len()];
        let next = match outcome {
            0 => NextStep::Delivered,
            1 => NextStep::RetryAt(at(secs + 30)),
            _ => NextStep::Failed,
        };
        if outcome == 0 {
            for e in &c.events {
                // the change number is the event date in seconds
                let k = (e.object_type.clone(), e.object_id.clone());
                let t = e.date.timestamp() - at(0).timestamp();
                if let Some(prev) = m.last.get(&k) {
                    assert!(t > *prev, "{k:?}: change {t} delivered after change {prev}");
                }
                m.last.insert(k, t);
                m.delivered.push(e.event_id);
            }
        } else if outcome == 2 {
            m.failed.extend(c.events.iter().map(|e| e.event_id));
        }
        let attempt = NewAttempt {
            at: at(secs),
            status_code: Some(200),
            latency_ms: 1,
            error: None,
            response_excerpt: String::new(),
        };
        s.record_attempt(n.id, &c.lease, &attempt, next).await.unwrap();
    }
    claims.len()
}

async fn run(steps: Vec<Step>) {
    let t = crate::testing::sqlite().await;
    let s = t.store();
    let both = config(&[("customers", "/hubs/finance/customers"), ("vendors", "/hubs/finance/vendors")], "1", true);
    let (_, inst) = setup(&s, both).await;
    let mut m = Model { last: HashMap::new(), delivered: Vec::new(), failed: Vec::new() };
    let mut emitted = Vec::new();
    let mut change = 0i64;
    let mut secs = 0i64;
    for step in steps {
        secs += 61;
        match step {
            Step::Poll { vendors, objects } => {
                let resource = if vendors { "vendors" } else { "customers" };
                let events: Vec<_> = objects
                    .iter()
                    .map(|o| {
                        change += 1;
                        event(inst.id, resource, &format!("o{o}"), change)
                    })
                    .collect();
                emitted.extend(events.iter().map(|e| e.event_id));
                emit(&s, inst.id, resource, events, at(secs)).await;
            }
            Step::Batch(max) => {
                s.batch_events(at(secs), max).await.unwrap();
            }
            Step::Claim { limit, outcomes } => {
                claim_round(&s, &mut m, secs, limit, &outcomes).await;
            }
        }
    }
    // drain: everything still pending is eventually delivered
    for _ in 0..1000 {
        secs += 61;
        s.batch_events(at(secs), MAX_EVENTS_PER_NOTIFICATION).await.unwrap();
        if claim_round(&s, &mut m, secs, 100, &[0]).await == 0
            && s.outbox_stats(at(secs)).await.unwrap().pending_notifications == 0
        {
            break;
        }
    }
    let delivered: HashSet<_> = m.delivered.iter().collect();
    let failed: HashSet<_> = m.failed.iter().collect();
    assert_eq!(delivered.len(), m.delivered.len(), "a change delivered twice");
    assert!(delivered.is_disjoint(&failed));
    let all: HashSet<_> = emitted.iter().collect();
    assert_eq!(delivered.union(&failed).copied().collect::<HashSet<_>>(), all, "every change delivered or failed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn per_object_order_holds_under_any_interleaving(steps in prop::collection::vec(step(), 1..25)) {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap().block_on(run(steps));
    }
}

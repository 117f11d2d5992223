//! Random customer changes in the simulator while the service runs (the simulator's workload,
//! `oc_sagesim::workload`, driven by a task), and the check that every one of them was delivered: each create,
//! update and delete has a matching event at the receiver, duplicates only under the same event id, and a
//! consumer applying the events holds the simulator's final state.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oc_model::event::EventType;
use oc_sagesim::workload::{self, Arrival, Change, Ledger, Mix};
use tokio::task::JoinHandle;

use crate::receiver::Received;
use crate::sim::Sage;

/// A task making changes until stopped.
pub struct Changer {
    changes: Arc<Mutex<Vec<Change>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// The tests' mix: creates (40 %), updates (40 %) and deletes (20 %) of customers the changer created, each
/// changed at most once per 1.2 s, so that two of its states never share an `updated_at` second.
pub fn mix() -> Mix {
    Mix {
        create: 0.4,
        update: 0.4,
        min_customers: 1,
        rest: Duration::from_millis(1200),
        existing: false,
        label: "Changer".into(),
    }
}

impl Changer {
    /// Makes a change to the lead business's customers every `every` (see [`mix`]).
    pub fn start(sage: Arc<Sage>, every: Duration, seed: u64) -> Changer {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (changes.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut changer = workload::Changer::new(sage.sim.simulator().clone(), mix(), seed);
            let business = sage.business();
            while !halt.load(Ordering::SeqCst) {
                let change = changer.change(&business).expect("a change in the simulator");
                log.lock().unwrap_or_else(|e| e.into_inner()).push(change);
                tokio::time::sleep(every).await;
            }
        });
        Changer { changes, stop, task }
    }

    /// The changes made so far.
    pub fn changes(&self) -> Vec<Change> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops making changes; returns every change made (a failed change fails the test here).
    pub async fn stop(self) -> Vec<Change> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the changer ran");
        self.changes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// An event as the ledger takes it; its date is the record's `updated_at` from `raw` (what a consumer sees),
/// or the event's date for a `DELETED` one or a record without it.
pub fn arrival(e: &Received) -> Arrival {
    let event_type = EventType::parse(&e.event_type).unwrap_or_else(|| panic!("an event type: {e:#?}"));
    let event_date = || e.date.parse().unwrap_or_else(|_| panic!("an event date: {e:#?}"));
    let date = match event_type {
        EventType::Deleted => event_date(),
        _ => e.record["updated_at"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(event_date),
    };
    Arrival {
        instance: e.instance_id,
        object_id: e.object_id.clone(),
        event_type,
        date,
        event_id: e.event_id.clone(),
        at: e.at,
    }
}

/// The books of `changes` expected at `instance`, with `events` taken in arrival order.
pub fn ledger(changes: &[Change], instance: i64, events: &[Received]) -> Ledger {
    let mut ledger = Ledger::default();
    for business in changes.iter().map(|c| c.business.as_str()).collect::<BTreeSet<_>>() {
        ledger.watch(business, instance);
    }
    for c in changes {
        ledger.record(c.clone());
    }
    for e in events {
        ledger.take(arrival(e));
    }
    ledger
}

/// The changes that no event of `instance` received delivers yet (empty: all delivered).
pub fn undelivered(changes: &[Change], instance: i64, events: &[Received]) -> Vec<Change> {
    ledger(changes, instance, events).undelivered().into_iter().map(|(c, _)| c.clone()).collect()
}

/// Checks what arrived for `instance` against what was changed: everything delivered; only events of objects that
/// were changed; no two event ids for one state (object, type, date) and at most one CREATED id per object; and a
/// mirror applying the events in arrival order holds the simulator's final state of every changed customer.
pub fn check_delivered(sage: &Sage, changes: &[Change], instance: i64, events: &[Received]) {
    let ledger = ledger(changes, instance, events);
    let missing = ledger.undelivered();
    assert!(missing.is_empty(), "{} of {} changes not delivered: {missing:#?}", missing.len(), changes.len());
    let problems = ledger.inconsistencies();
    assert!(problems.is_empty(), "{problems:#?}");
    let mirror = ledger.mirror(instance);
    let touched: BTreeSet<(&str, &str)> = changes.iter().map(|c| (c.business.as_str(), c.id.as_str())).collect();
    for (business, id) in touched {
        let record = sage.sim.get_record(business, workload::COLLECTION, id);
        assert!(record.is_some(), "the simulator knows every customer it created: {id}");
        let want = workload::live_state(&sage.sim, business, id);
        assert_eq!(mirror.get(id).copied().flatten(), want, "the mirror of {id} differs from Sage: {record:?}");
    }
}

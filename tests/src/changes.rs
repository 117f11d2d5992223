//! Random customer changes in the simulator while the service runs, and the check that every one of them was
//! delivered: each create, update and delete has a matching event at the receiver, duplicates only under the same
//! event id, and a consumer applying the events holds the simulator's final state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::receiver::Received;
use crate::sim::Sage;

/// What kind of change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A new customer.
    Create,
    /// Its notes changed.
    Update,
    /// Deleted.
    Delete,
}

/// One change made in the simulator.
#[derive(Debug, Clone)]
pub struct Change {
    /// What.
    pub kind: Kind,
    /// The customer.
    pub id: String,
    /// Its `updated_at` after the change (creates and updates).
    pub updated_at: String,
}

/// A task making changes until stopped.
pub struct Changer {
    changes: Arc<Mutex<Vec<Change>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

impl Changer {
    /// Makes a change every `every`: creates (40 %), updates (40 %) and deletes (20 %) customers it created. A
    /// customer is changed at most once per 1.2 s, so that two of its states never share an `updated_at` second.
    pub fn start(sage: Arc<Sage>, every: Duration, seed: u64) -> Changer {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (changes.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut rng = Rng(seed | 1);
            let mut live: Vec<(String, Instant)> = Vec::new();
            let mut n = 0;
            while !halt.load(Ordering::SeqCst) {
                n += 1;
                let roll = rng.below(10);
                let settled: Vec<usize> = live
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, at))| at.elapsed() > Duration::from_millis(1200))
                    .map(|(i, _)| i)
                    .collect();
                let change = if roll < 4 || settled.is_empty() {
                    let (id, updated_at) = sage.create_customer(&format!("Changer {seed} #{n}"));
                    live.push((id.clone(), Instant::now()));
                    Change { kind: Kind::Create, id, updated_at }
                } else if roll < 8 {
                    let i = settled[rng.below(settled.len())];
                    let id = live[i].0.clone();
                    let updated_at = sage.update_customer(&id, &format!("edit #{n}"));
                    live[i].1 = Instant::now();
                    Change { kind: Kind::Update, id, updated_at }
                } else {
                    let i = settled[rng.below(settled.len())];
                    let (id, _) = live.remove(i);
                    sage.delete_customer(&id);
                    Change { kind: Kind::Delete, id, updated_at: String::new() }
                };
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

    /// Stops making changes; returns every change made.
    pub async fn stop(self) -> Vec<Change> {
        self.stop.store(true, Ordering::SeqCst);
        let log = self.changes.clone();
        let _ = self.task.await;
        log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The record's `updated_at`, or "" (a DELETED event's tombstone may not carry one).
fn updated_at(e: &Received) -> String {
    e.record["updated_at"].as_str().unwrap_or_default().to_string()
}

/// The changes that no event received covers yet (empty: all delivered).
pub fn undelivered(changes: &[Change], events: &[Received]) -> Vec<Change> {
    let mut by_object: HashMap<&str, Vec<&Received>> = HashMap::new();
    for e in events {
        by_object.entry(e.object_id.as_str()).or_default().push(e);
    }
    changes
        .iter()
        .filter(|c| {
            let got = by_object.get(c.id.as_str()).map(Vec::as_slice).unwrap_or_default();
            let deleted = got.iter().any(|e| e.event_type == "DELETED");
            let covered = match c.kind {
                Kind::Delete => deleted,
                Kind::Create => deleted || got.iter().any(|e| e.event_type == "CREATED"),
                Kind::Update => {
                    deleted || got.iter().any(|e| e.event_type != "DELETED" && updated_at(e) >= c.updated_at)
                }
            };
            !covered
        })
        .cloned()
        .collect()
}

/// Checks what arrived against what was changed: everything covered; no two event ids for one state (object,
/// type, `updated_at`); at most one CREATED id per object; only objects that were changed; and a mirror applying
/// the events in arrival order holds the simulator's final state of every changed customer.
pub fn check_delivered(sage: &Sage, changes: &[Change], events: &[Received]) {
    let missing = undelivered(changes, events);
    assert!(missing.is_empty(), "{} of {} changes not delivered: {missing:#?}", missing.len(), changes.len());
    let touched: BTreeSet<&str> = changes.iter().map(|c| c.id.as_str()).collect();
    let mut ids_of_state: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    let mut created: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in events {
        assert!(touched.contains(e.object_id.as_str()), "an event of an object nobody changed: {e:#?}");
        let state = if e.event_type == "DELETED" { e.date.clone() } else { updated_at(e) };
        ids_of_state.entry((e.object_id.clone(), e.event_type.clone(), state)).or_default().insert(e.event_id.clone());
        if e.event_type == "CREATED" {
            created.entry(e.object_id.clone()).or_default().insert(e.event_id.clone());
        }
    }
    for (state, ids) in &ids_of_state {
        assert_eq!(ids.len(), 1, "one state, several event ids: {state:?} {ids:?}");
    }
    for (object, ids) in &created {
        assert_eq!(ids.len(), 1, "{object} CREATED under several ids: {ids:?}");
    }
    let mut mirror: HashMap<&str, Option<String>> = HashMap::new();
    for e in events {
        let state = if e.event_type == "DELETED" { None } else { Some(updated_at(e)) };
        mirror.insert(e.object_id.as_str(), state);
    }
    for id in touched {
        let record = sage.customer(id).expect("the simulator knows every customer it created");
        let want = if record["deleted_at"].is_string() {
            None
        } else {
            Some(record["updated_at"].as_str().unwrap_or_default().to_string())
        };
        assert_eq!(mirror.get(id).cloned().flatten(), want, "the mirror of {id} differs from Sage: {record}");
    }
}

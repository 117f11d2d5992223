//! The ledger: changes made, events received, and which changes each event delivered.
//!
//! A change is expected at every instance watching its business ([`Ledger::watch`]). An event of an instance
//! delivers a change of the same object made in the business the instance watches when
//!
//! - the change is a deletion: the event is `DELETED` and arrived after the change;
//! - the change is a create: the event is `CREATED` with the change's state or a later one, or `DELETED` after it;
//! - the change is an update: the event is `CREATED` or `UPDATED` with the change's state or a later one, or
//!   `DELETED` after it.
//!
//! So a create and an edit of one customer within one poll interval are rightly reported as one event, and an
//! edit followed by the deletion as one `DELETED` event. The first copy of an event id counts; later copies are
//! at-least-once redeliveries ([`Taken::Again`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use oc_model::event::EventType;

use super::changer::{Change, ChangeKind};

/// One event as a callback receiver got it, in neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// The instance it was sent for (`message.instanceId`).
    pub instance: i64,
    /// The record's id.
    pub object_id: String,
    /// `CREATED`, `UPDATED` or `DELETED`.
    pub event_type: EventType,
    /// The record's date: its `updated_at` (`CREATED`, `UPDATED`) or its deletion date (`DELETED`).
    pub date: DateTime<Utc>,
    /// The event's id.
    pub event_id: String,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

/// What one arrival did to the books.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Taken {
    /// Its event id was taken before: an at-least-once redelivery.
    Again,
    /// It delivered `changes` changes not delivered before; `latency` is the seconds from the earliest of them to
    /// the arrival.
    Delivered {
        /// How many changes it delivered first.
        changes: usize,
        /// Seconds from the earliest of them to the arrival.
        latency: f64,
    },
    /// It delivered no change not delivered before (none of ours).
    Unmatched,
}

/// Percentiles of the latency from change to delivery, in seconds (zeros when nothing was delivered).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The longest.
    pub max: f64,
}

/// A change and, for each instance watching its business (by position), when it was first delivered there.
#[derive(Debug)]
struct Entry {
    change: Change,
    delivered: Vec<Option<DateTime<Utc>>>,
}

/// The books of a run: changes made, events received, and which changes they delivered. Changes and arrivals
/// may be given in any order.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Vec<Entry>,
    by_object: HashMap<String, Vec<usize>>,
    watchers: HashMap<String, Vec<i64>>,
    watching: HashMap<i64, (String, usize)>,
    arrivals: HashMap<(i64, String), Vec<Arrival>>,
    event_ids: HashSet<String>,
    mirror: HashMap<(i64, String), Option<DateTime<Utc>>>,
    events: u64,
    duplicates: u64,
    unmatched: u64,
}

/// Whether `a` delivers `c` (see the module documentation).
fn delivers(a: &Arrival, c: &Change) -> bool {
    let deleted_after = a.event_type == EventType::Deleted && a.at >= c.at;
    let state_reached = c.state.is_none_or(|s| a.date >= s);
    match c.kind {
        ChangeKind::Delete => deleted_after,
        ChangeKind::Create => deleted_after || (a.event_type == EventType::Created && state_reached),
        ChangeKind::Update => deleted_after || (a.event_type != EventType::Deleted && state_reached),
    }
}

/// The `p`th percentile (0 to 100) of `sorted` by the nearest-rank method; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

impl Ledger {
    /// Expects the changes of `business` at `instance` from now on; arrivals already taken for it count. An
    /// instance watches one business: the first one it is given.
    pub fn watch(&mut self, business: &str, instance: i64) {
        if self.watching.contains_key(&instance) {
            return;
        }
        let list = self.watchers.entry(business.to_string()).or_default();
        list.push(instance);
        let pos = list.len() - 1;
        self.watching.insert(instance, (business.to_string(), pos));
        for n in 0..self.entries.len() {
            if self.entries[n].change.business == business {
                self.settle(n, pos, instance);
            }
        }
    }

    /// Records a change made; returns its number (changes are numbered in the order recorded, from 0).
    pub fn record(&mut self, change: Change) -> usize {
        let n = self.entries.len();
        let instances = self.watchers.get(&change.business).cloned().unwrap_or_default();
        self.by_object.entry(change.id.clone()).or_default().push(n);
        self.entries.push(Entry { change, delivered: vec![None; instances.len()] });
        for (pos, instance) in instances.into_iter().enumerate() {
            self.settle(n, pos, instance);
        }
        n
    }

    /// Marks change `n` delivered at the instance in position `pos` by the earliest arrival there that delivers it.
    fn settle(&mut self, n: usize, pos: usize, instance: i64) {
        let entry = &mut self.entries[n];
        let first = self
            .arrivals
            .get(&(instance, entry.change.id.clone()))
            .into_iter()
            .flatten()
            .filter(|a| delivers(a, &entry.change))
            .map(|a| a.at)
            .min();
        if entry.delivered.len() <= pos {
            entry.delivered.resize(pos + 1, None);
        }
        entry.delivered[pos] = first;
    }

    /// Takes one event that arrived.
    pub fn take(&mut self, arrival: Arrival) -> Taken {
        self.events += 1;
        let key = (arrival.instance, arrival.object_id.clone());
        let state = (arrival.event_type != EventType::Deleted).then_some(arrival.date);
        self.mirror.insert(key.clone(), state);
        if !self.event_ids.insert(arrival.event_id.clone()) {
            self.duplicates += 1;
            return Taken::Again;
        }
        let mut changes = 0;
        let mut earliest: Option<DateTime<Utc>> = None;
        if let Some((business, pos)) = self.watching.get(&arrival.instance) {
            for &n in self.by_object.get(&arrival.object_id).into_iter().flatten() {
                let entry = &mut self.entries[n];
                if entry.change.business != *business || !delivers(&arrival, &entry.change) {
                    continue;
                }
                if entry.delivered.len() <= *pos {
                    entry.delivered.resize(pos + 1, None);
                }
                match entry.delivered[*pos] {
                    None => {
                        entry.delivered[*pos] = Some(arrival.at);
                        changes += 1;
                        earliest = Some(earliest.map_or(entry.change.at, |e| e.min(entry.change.at)));
                    }
                    // an earlier arrival taken late
                    Some(t) if arrival.at < t => entry.delivered[*pos] = Some(arrival.at),
                    Some(_) => {}
                }
            }
        }
        let at = arrival.at;
        self.arrivals.entry(key).or_default().push(arrival);
        match earliest {
            Some(from) => Taken::Delivered { changes, latency: seconds(from, at) },
            None => {
                self.unmatched += 1;
                Taken::Unmatched
            }
        }
    }

    /// Every (change, instance) pair expected, with when the change was first delivered there.
    fn pairs(&self) -> impl Iterator<Item = (&Change, i64, Option<DateTime<Utc>>)> {
        self.entries.iter().flat_map(move |e| {
            let instances = self.watchers.get(&e.change.business).map(Vec::as_slice).unwrap_or_default();
            instances.iter().enumerate().map(move |(pos, i)| (&e.change, *i, e.delivered.get(pos).copied().flatten()))
        })
    }

    /// The changes recorded, in order.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.entries.iter().map(|e| &e.change)
    }

    /// How many changes were recorded.
    pub fn change_count(&self) -> usize {
        self.entries.len()
    }

    /// The (change, instance) pairs expected: each change at every instance watching its business.
    pub fn expected(&self) -> usize {
        self.pairs().count()
    }

    /// The (change, instance) pairs not delivered (yet).
    pub fn lost(&self) -> usize {
        self.pairs().filter(|(_, _, d)| d.is_none()).count()
    }

    /// The changes not delivered (yet), each with the instance that misses it, in the order recorded.
    pub fn undelivered(&self) -> Vec<(&Change, i64)> {
        self.pairs().filter(|(_, _, d)| d.is_none()).map(|(c, i, _)| (c, i)).collect()
    }

    /// The seconds from change to first delivery of every delivered (change, instance) pair, sorted.
    pub fn latencies(&self) -> Vec<f64> {
        let mut out: Vec<f64> = self.pairs().filter_map(|(c, _, d)| d.map(|d| seconds(c.at, d))).collect();
        out.sort_by(f64::total_cmp);
        out
    }

    /// p50, p99 and max of [`Ledger::latencies`].
    pub fn latency(&self) -> Latency {
        self.latency_of(|_| true)
    }

    /// p50, p99 and max of the latencies of the changes `keep` selects (those of some businesses, say).
    pub fn latency_of(&self, keep: impl Fn(&Change) -> bool) -> Latency {
        let mut lat: Vec<f64> =
            self.pairs().filter(|(c, _, _)| keep(c)).filter_map(|(c, _, d)| d.map(|d| seconds(c.at, d))).collect();
        lat.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&lat, 50.0),
            p99: percentile(&lat, 99.0),
            max: lat.last().copied().unwrap_or_default(),
        }
    }

    /// Events taken, copies included.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Events taken again under an event id taken before.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Events (first copies) that delivered no change not delivered before.
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// The distinct events of `instance` for `object_id`, in arrival order.
    pub fn arrivals_of(&self, instance: i64, object_id: &str) -> &[Arrival] {
        self.arrivals.get(&(instance, object_id.to_string())).map(Vec::as_slice).unwrap_or_default()
    }

    /// How many distinct events arrived in `[from, to]`.
    pub fn arrived_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
        self.arrivals.values().flatten().filter(|a| a.at >= from && a.at <= to).count()
    }

    /// What a consumer applying every event in arrival order (copies included) holds for `instance`: per object,
    /// its date, or `None` once deleted.
    pub fn mirror(&self, instance: i64) -> BTreeMap<&str, Option<DateTime<Utc>>> {
        self.mirror.iter().filter(|((i, _), _)| *i == instance).map(|((_, o), s)| (o.as_str(), *s)).collect()
    }

    /// What should never happen, described: events for an instance that watches nothing or of an object no change
    /// was made to, one state (object, event type, date) under several event ids, an object `CREATED` under
    /// several event ids. Empty when all is well.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids_of_state: BTreeMap<(i64, &str, &str, DateTime<Utc>), BTreeSet<&str>> = BTreeMap::new();
        let mut created: BTreeMap<(i64, &str), BTreeSet<&str>> = BTreeMap::new();
        let mut sorted: Vec<&Arrival> = self.arrivals.values().flatten().collect();
        sorted.sort_by(|a, b| (a.at, &a.event_id).cmp(&(b.at, &b.event_id)));
        for a in sorted {
            if !self.watching.contains_key(&a.instance) {
                out.push(format!("an event for instance {}, which watches no business: {a:?}", a.instance));
            } else if !self.by_object.contains_key(&a.object_id) {
                out.push(format!("an event of an object no change was made to: {a:?}"));
            }
            let state = (a.instance, a.object_id.as_str(), a.event_type.as_str(), a.date);
            ids_of_state.entry(state).or_default().insert(&a.event_id);
            if a.event_type == EventType::Created {
                created.entry((a.instance, &a.object_id)).or_default().insert(&a.event_id);
            }
        }
        for (state, ids) in ids_of_state.iter().filter(|(_, ids)| ids.len() > 1) {
            out.push(format!("one state, several event ids: {state:?} {ids:?}"));
        }
        for ((instance, object), ids) in created.iter().filter(|(_, ids)| ids.len() > 1) {
            out.push(format!("{object} CREATED under several event ids at instance {instance}: {ids:?}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "business";

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("an instant")
    }

    /// A change of `id` at second `at`; its state is that second (none for a deletion).
    fn change(kind: ChangeKind, id: &str, at: i64) -> Change {
        let state = (kind != ChangeKind::Delete).then(|| t(at));
        Change { business: B.into(), kind, id: id.into(), name: String::new(), at: t(at), state }
    }

    fn arrival(instance: i64, id: &str, event_type: EventType, date: i64, event_id: &str, at: i64) -> Arrival {
        Arrival { instance, object_id: id.into(), event_type, date: t(date), event_id: event_id.into(), at: t(at) }
    }

    /// A ledger with instance 1 watching the business and `changes` recorded.
    fn ledger(changes: &[Change]) -> Ledger {
        let mut l = Ledger::default();
        l.watch(B, 1);
        for c in changes {
            l.record(c.clone());
        }
        l
    }

    fn lost_ids(l: &Ledger) -> Vec<(String, i64)> {
        l.undelivered().into_iter().map(|(c, i)| (c.id.clone(), i)).collect()
    }

    #[test]
    fn a_change_delivered() {
        let mut l = ledger(&[change(ChangeKind::Update, "a", 0)]);
        assert_eq!(
            l.take(arrival(1, "a", EventType::Updated, 0, "e1", 30)),
            Taken::Delivered { changes: 1, latency: 30.0 }
        );
        assert_eq!((l.lost(), l.expected(), l.latencies()), (0, 1, vec![30.0]));
        assert_eq!(l.latency(), Latency { p50: 30.0, p99: 30.0, max: 30.0 });
        assert!(l.inconsistencies().is_empty(), "{:?}", l.inconsistencies());
        assert_eq!(l.mirror(1), BTreeMap::from([("a", Some(t(0)))]));
    }

    #[test]
    fn a_change_lost() {
        let mut l = ledger(&[change(ChangeKind::Update, "a", 10)]);
        // an event of an older state, or of another instance, or of another object, does not deliver it
        assert_eq!(l.take(arrival(1, "a", EventType::Updated, 9, "old", 20)), Taken::Unmatched);
        assert_eq!(l.take(arrival(2, "a", EventType::Updated, 10, "other-instance", 20)), Taken::Unmatched);
        assert_eq!(l.take(arrival(1, "b", EventType::Updated, 10, "other-object", 20)), Taken::Unmatched);
        assert_eq!(lost_ids(&l), vec![("a".to_string(), 1)]);
        assert_eq!((l.lost(), l.unmatched(), l.latency()), (1, 3, Latency::default()));
        let problems = l.inconsistencies();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("watches no business") || problems[1].contains("watches no business"));
    }

    #[test]
    fn delivered_twice_under_one_id() {
        let mut l = ledger(&[change(ChangeKind::Create, "a", 0)]);
        let e = arrival(1, "a", EventType::Created, 0, "e1", 5);
        assert!(matches!(l.take(e.clone()), Taken::Delivered { changes: 1, .. }));
        assert_eq!(l.take(Arrival { at: t(9), ..e }), Taken::Again);
        assert_eq!((l.events(), l.duplicates(), l.lost(), l.latencies()), (2, 1, 0, vec![5.0]));
        assert_eq!(l.arrived_between(t(0), t(100)), 1);
        assert!(l.inconsistencies().is_empty());
    }

    #[test]
    fn one_state_under_two_ids_is_inconsistent() {
        let mut l = ledger(&[change(ChangeKind::Create, "a", 0), change(ChangeKind::Update, "a", 2)]);
        l.take(arrival(1, "a", EventType::Created, 0, "e1", 5));
        l.take(arrival(1, "a", EventType::Created, 2, "e2", 6));
        l.take(arrival(1, "a", EventType::Created, 2, "e3", 7));
        let problems = l.inconsistencies();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("one state, several event ids"), "{problems:?}");
        assert!(problems[1].contains("CREATED under several event ids"), "{problems:?}");
    }

    #[test]
    fn a_create_and_an_edit_within_one_poll_are_one_event() {
        let mut l = ledger(&[change(ChangeKind::Create, "a", 0), change(ChangeKind::Update, "a", 3)]);
        assert_eq!(
            l.take(arrival(1, "a", EventType::Created, 3, "e1", 20)),
            Taken::Delivered { changes: 2, latency: 20.0 }
        );
        assert_eq!((l.lost(), l.latencies()), (0, vec![17.0, 20.0]));
        // an UPDATED alone does not deliver a create
        let mut l = ledger(&[change(ChangeKind::Create, "b", 0)]);
        assert_eq!(l.take(arrival(1, "b", EventType::Updated, 3, "e2", 20)), Taken::Unmatched);
        assert_eq!(l.lost(), 1);
    }

    #[test]
    fn deletions() {
        let mut l = ledger(&[
            change(ChangeKind::Update, "a", 0),
            change(ChangeKind::Delete, "a", 2),
            change(ChangeKind::Delete, "b", 10),
        ]);
        // an UPDATED does not deliver a deletion; a DELETED delivers the edit before it too
        assert!(matches!(l.take(arrival(1, "a", EventType::Updated, 0, "e1", 1)), Taken::Delivered { changes: 1, .. }));
        assert_eq!(lost_ids(&l), vec![("a".to_string(), 1), ("b".to_string(), 1)]);
        assert!(matches!(
            l.take(arrival(1, "a", EventType::Deleted, 2, "e2", 30)),
            Taken::Delivered { changes: 1, .. }
        ));
        // a DELETED that arrived before the deletion was made is not its delivery (whatever its date)
        assert_eq!(l.take(arrival(1, "b", EventType::Deleted, 10, "e3", 9)), Taken::Unmatched);
        assert_eq!(lost_ids(&l), vec![("b".to_string(), 1)]);
        assert!(matches!(l.take(arrival(1, "b", EventType::Deleted, 10, "e4", 40)), Taken::Delivered { .. }));
        assert_eq!(l.lost(), 0);
        assert_eq!(l.mirror(1), BTreeMap::from([("a", None), ("b", None)]));
    }

    #[test]
    fn every_watching_instance_counts_in_any_order() {
        let mut l = Ledger::default();
        l.watch(B, 1);
        // an arrival taken before its change is recorded, and an instance watching after the fact
        l.take(arrival(2, "a", EventType::Updated, 0, "e2", 40));
        l.record(change(ChangeKind::Update, "a", 0));
        l.record(Change { business: "elsewhere".into(), ..change(ChangeKind::Update, "z", 0) });
        assert_eq!((l.expected(), l.lost()), (1, 1));
        l.watch(B, 2);
        assert_eq!((l.expected(), l.lost()), (2, 1));
        l.take(arrival(1, "a", EventType::Updated, 0, "e1", 30));
        assert_eq!((l.lost(), l.latencies()), (0, vec![30.0, 40.0]));
        assert_eq!(l.change_count(), 2);
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.0);
        assert_eq!(percentile(&v, 99.0), 4.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}

//! The change generator: random creates, updates and deletes of a business's customers, from a seed.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::{SimError, Simulator};

/// The simulator collection behind the hub resource `customers` (contacts of type `CUSTOMER`).
pub const COLLECTION: &str = "contacts";

/// Whether a contact is a customer (what the hub's `customers` lists).
pub fn is_customer(record: &Value) -> bool {
    record["contact_types"].as_array().is_some_and(|types| types.iter().any(|t| t["id"] == "CUSTOMER"))
}

/// A customer's state as a consumer mirroring the events should hold it: its `updated_at`, or `None` once it is
/// deleted (or unknown).
pub fn live_state(sim: &Simulator, business: &str, id: &str) -> Option<DateTime<Utc>> {
    let record = sim.get_record(business, COLLECTION, id)?;
    if record["deleted_at"].is_string() {
        return None;
    }
    updated_at(&record)
}

fn updated_at(record: &Value) -> Option<DateTime<Utc>> {
    record["updated_at"].as_str().and_then(|s| s.parse().ok())
}

/// What kind of change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A new customer.
    Create,
    /// A customer's name changed.
    Update,
    /// A customer deleted.
    Delete,
}

impl ChangeKind {
    /// `create`, `update` or `delete`.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// One change made in the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The business it was made in.
    pub business: String,
    /// What was done.
    pub kind: ChangeKind,
    /// The customer's id.
    pub id: String,
    /// The customer's name after the change (`(deleted)` for a deletion).
    pub name: String,
    /// When it was made (the system clock, just before the simulator was asked).
    pub at: DateTime<Utc>,
    /// The record's `updated_at` after the change (the simulator's clock, whole seconds); `None` for a deletion.
    /// An event delivers the change when it carries this state or a later one.
    pub state: Option<DateTime<Utc>>,
}

/// How a [`Changer`] picks its changes. The default is the demo's: 40 % creates, 45 % updates, 15 % deletes of
/// any customer of the business, creating while fewer than 5 are there.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// The share of creates (0 to 1).
    pub create: f64,
    /// The share of updates; the rest are deletes.
    pub update: f64,
    /// Below this many customers that may be changed, it creates.
    pub min_customers: usize,
    /// A customer is changed at most once per this long, measured on the simulator's clock (a second or more
    /// keeps two of its states from sharing an `updated_at` second).
    pub rest: Duration,
    /// Whether the customers already in the business are changed too, or only those this changer created.
    pub existing: bool,
    /// Names are `{label} Customer N`, references the label's first letter and N, emails
    /// `customerN@{label}.example` (lower case).
    pub label: String,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            create: 0.4,
            update: 0.45,
            min_customers: 5,
            rest: Duration::ZERO,
            existing: true,
            label: "Demo".to_string(),
        }
    }
}

/// A customer this changer may change, and when it last did (the simulator's clock).
#[derive(Debug, Clone)]
struct Customer {
    id: String,
    changed: Option<DateTime<Utc>>,
}

/// Makes random changes to the customers of the simulator's businesses.
#[derive(Debug)]
pub struct Changer {
    sim: Simulator,
    mix: Mix,
    rng: StdRng,
    customers: HashMap<String, Vec<Customer>>,
}

impl Changer {
    /// A changer of `sim`'s customers picking changes by `mix`, its random choices drawn from `seed`.
    pub fn new(sim: Simulator, mix: Mix, seed: u64) -> Changer {
        Changer { sim, mix, rng: StdRng::seed_from_u64(seed), customers: HashMap::new() }
    }

    /// The simulator it changes.
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Creates, updates or deletes one customer of `business`; returns what it did.
    pub fn change(&mut self, business: &str) -> Result<Change, SimError> {
        if !self.customers.contains_key(business) {
            let known = if self.mix.existing { self.existing(business) } else { Vec::new() };
            self.customers.insert(business.to_string(), known);
        }
        let now = self.sim.now();
        let rest = chrono::Duration::from_std(self.mix.rest).unwrap_or(chrono::Duration::MAX);
        let customers = self.customers.get_mut(business).unwrap_or_else(|| unreachable!("inserted above"));
        let rested: Vec<usize> = customers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.changed.is_none_or(|t| now - t >= rest))
            .map(|(i, _)| i)
            .collect();
        let roll: f64 = self.rng.r#gen();
        let n: u32 = self.rng.gen_range(1000..1_000_000);
        let label = &self.mix.label;
        let at = Utc::now();
        if roll < self.mix.create || rested.len() < self.mix.min_customers.max(1) {
            let name = format!("{label} Customer {n}");
            let initial = label.chars().next().unwrap_or('C').to_ascii_uppercase();
            let record = self.sim.create_record(
                business,
                COLLECTION,
                json!({"name": name, "reference": format!("{initial}{n}"), "contact_type_ids": ["CUSTOMER"],
                       "email": format!("customer{n}@{}.example", label.to_lowercase()), "currency_id": "GBP"}),
            )?;
            let id = record["id"].as_str().unwrap_or_default().to_string();
            customers.push(Customer { id: id.clone(), changed: Some(now) });
            let state = updated_at(&record);
            return Ok(Change { business: business.to_string(), kind: ChangeKind::Create, id, name, at, state });
        }
        let index = rested[self.rng.gen_range(0..rested.len())];
        if roll < self.mix.create + self.mix.update {
            let customer = &mut customers[index];
            let name = format!("Edited Customer {n}");
            let record = self.sim.update_record(business, COLLECTION, &customer.id, json!({"name": name}))?;
            customer.changed = Some(now);
            let (id, state) = (customer.id.clone(), updated_at(&record));
            Ok(Change { business: business.to_string(), kind: ChangeKind::Update, id, name, at, state })
        } else {
            let id = customers.swap_remove(index).id;
            self.sim.delete_record(business, COLLECTION, &id)?;
            let name = "(deleted)".to_string();
            Ok(Change { business: business.to_string(), kind: ChangeKind::Delete, id, name, at, state: None })
        }
    }

    /// The customers of `business` as they stand, none of them changed yet.
    fn existing(&self, business: &str) -> Vec<Customer> {
        self.sim
            .record_ids(business, COLLECTION)
            .into_iter()
            .filter(|id| self.sim.get_record(business, COLLECTION, id).is_some_and(|r| is_customer(&r)))
            .map(|id| Customer { id, changed: None })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    fn sim(customers: usize) -> Simulator {
        Simulator::new(SimConfig { customers, ..SimConfig::default() }).expect("a simulator")
    }

    #[test]
    fn changes_follow_the_mix_and_stay_in_the_business() {
        let sim = sim(25);
        let lead = sim.lead_business();
        let seeded = sim.record_ids(&lead, COLLECTION);
        let mut changer = Changer::new(sim.clone(), Mix::default(), 7);
        let changes: Vec<Change> = (0..200).map(|_| changer.change(&lead).expect("a change")).collect();
        let count = |k| changes.iter().filter(|c| c.kind == k).count();
        assert!(count(ChangeKind::Create) > 40 && count(ChangeKind::Update) > 40 && count(ChangeKind::Delete) > 10);
        for c in &changes {
            let record = sim.get_record(&lead, COLLECTION, &c.id).expect("the record is known");
            assert!(is_customer(&record), "{record}");
            match c.kind {
                ChangeKind::Delete => assert!(c.state.is_none() && c.name == "(deleted)"),
                _ => assert!(c.state.is_some(), "{c:?}"),
            }
        }
        // a deleted customer is never changed again
        for (i, c) in changes.iter().enumerate().filter(|(_, c)| c.kind == ChangeKind::Delete) {
            assert!(changes[i + 1..].iter().all(|later| later.id != c.id), "{} changed after its deletion", c.id);
            assert_eq!(live_state(&sim, &lead, &c.id), None);
        }
        // the customers already there are changed too
        assert!(changes.iter().any(|c| c.kind == ChangeKind::Update && seeded.contains(&c.id)));
    }

    #[test]
    fn the_same_seed_makes_the_same_kinds_of_change() {
        let kinds = |seed| {
            let sim = sim(25);
            let lead = sim.lead_business();
            let mut changer = Changer::new(sim, Mix::default(), seed);
            (0..50).map(|_| changer.change(&lead).expect("a change").kind).collect::<Vec<_>>()
        };
        assert_eq!(kinds(3), kinds(3));
        assert_ne!(kinds(3), kinds(4));
    }

    #[test]
    fn only_its_own_customers_each_rested() {
        let sim = sim(25);
        let lead = sim.lead_business();
        let before = sim.record_ids(&lead, COLLECTION);
        let mix = Mix { existing: false, min_customers: 1, rest: Duration::from_secs(3600), ..Mix::default() };
        let mut changer = Changer::new(sim.clone(), mix, 1);
        let changes: Vec<Change> = (0..30).map(|_| changer.change(&lead).expect("a change")).collect();
        // within the hour of rest every customer is only created: the clock does not move an hour
        assert!(changes.iter().all(|c| c.kind == ChangeKind::Create), "{changes:#?}");
        assert!(changes.iter().all(|c| !before.contains(&c.id)));
        assert_eq!(live_state(&sim, &lead, &changes[0].id), changes[0].state);
    }
}

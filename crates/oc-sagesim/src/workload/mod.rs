//! A workload on the simulator's customers and the books that check its delivery, written once for
//! `ocpoll demo`, the end-to-end load benchmark and the end-to-end tests.
//!
//! [`Changer`] makes random creates, updates and deletes of customers in a [`crate::Simulator`] (seeded, so a
//! run can be repeated), and returns each [`Change`] it made. [`Ledger`] records those changes and takes what a
//! callback receiver got, as neutral facts ([`Arrival`]: instance, object id, event type, the record's date,
//! event id, arrival time); it says which changes were lost, which events came again under the same event id,
//! and how long each change took to arrive.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use oc_model::event::EventType;
//! use oc_sagesim::workload::{Arrival, Change, ChangeKind, Ledger, Taken};
//!
//! let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
//! let mut ledger = Ledger::default();
//! ledger.watch("business-1", 7);
//! ledger.record(Change {
//!     business: "business-1".into(),
//!     kind: ChangeKind::Update,
//!     id: "c1".into(),
//!     name: "Edited Customer 1234".into(),
//!     at: t(0),
//!     state: Some(t(0)),
//! });
//! assert_eq!(ledger.lost(), 1);
//! let arrival = Arrival {
//!     instance: 7,
//!     object_id: "c1".into(),
//!     event_type: EventType::Updated,
//!     date: t(0),
//!     event_id: "e1".into(),
//!     at: t(12),
//! };
//! assert_eq!(ledger.take(arrival.clone()), Taken::Delivered { changes: 1, latency: 12.0 });
//! assert_eq!(ledger.take(arrival), Taken::Again);
//! assert_eq!((ledger.lost(), ledger.duplicates()), (0, 1));
//! ```

mod changer;
mod ledger;

pub use changer::{COLLECTION, Change, ChangeKind, Changer, Mix, is_customer, live_state};
pub use ledger::{Arrival, Latency, Ledger, Taken, percentile};

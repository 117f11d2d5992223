//! The change-detection engine and the scheduler: decides which records were CREATED, UPDATED or DELETED
//! since the last poll without losing or duplicating a change. It sees providers, stores, notifiers and time
//! only through the ports of `oc-model`.
//!
//! - [`plan`]: a resource's poller configuration compiled once ([`PollPlan`]), used by the engine and by the
//!   API's validation alike;
//! - [`engine`]: one poll of one (instance, resource), from `T0` to the atomic commit
//!   (`change-detection.md`, "One poll"): plan, scan, classify, commit;
//! - [`defences`]: its defences against the pitfalls of `docs/change-detection.md`, switchable only in a build
//!   with the feature `mutations` (the pitfall tests);
//! - [`scheduler`]: claims due jobs, bounds the polls in flight, intervals with jitter, backoff, shutdown, and
//!   paces them within each account's budget (adaptive polling, the interval as the promise: `pacing.rs`);
//! - [`classify`]: the pure core (de-duplication across pages, CREATED/UPDATED/DELETED, `seen`);
//! - [`seen`]: the `seen` set and its compact encoding;
//! - [`window`]: the poller URL and the lower bound it really sends after mask truncation;
//! - [`fields`], [`hash`]: reading ids and dates, and the stable content hash.

#![deny(missing_docs)]

pub mod classify;
mod concurrency;
pub mod defences;
pub mod engine;
pub mod error;
pub mod fields;
pub mod hash;
#[cfg(feature = "mutations")]
mod mutations;
mod pacing;
pub mod plan;
mod scan;
pub mod scheduler;
pub mod seen;
pub mod window;

pub use defences::Defences;
pub use engine::{Engine, EngineConfig, PollJob, PollReport};
pub use error::PollError;
pub use plan::{MAX_RESOURCES_PER_INSTANCE, PlanField, PlanProblem, PlanSettings, PollPlan};
pub use scheduler::{DEFAULT_MAX_WAITING, JobResult, PollPorts, Scheduler, SchedulerConfig};
pub use seen::SeenSet;

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

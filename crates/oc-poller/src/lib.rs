//! The change-detection engine and the scheduler: decides which records were CREATED, UPDATED or DELETED
//! since the last poll without losing or duplicating a change. It sees providers, stores, notifiers and time
//! only through the ports of `oc-model`.
//!
//! Its public API is what a user drives: [`Engine`] (one poll of one (instance, resource), from `T0` to the
//! atomic commit, `change-detection.md` "One poll"), [`Scheduler`] (claims due jobs, bounds the polls in flight
//! with an AIMD limit, intervals with jitter, backoff, shutdown, and paces them within each account's budget:
//! adaptive polling, the interval as the promise), [`PollPlan`] (a resource's poller configuration compiled
//! once, used by the engine and by an API's validation alike) and [`Defences`] (the defences against the
//! pitfalls of `change-detection.md`, switchable only in a build with the feature `mutations`, for the pitfall
//! tests). Everything else is private to the crate: the pure core that classifies pages (de-duplication across
//! pages, CREATED/UPDATED/DELETED, the `seen` set and its compact encoding), the poller URL and the lower bound
//! it really sends after mask truncation, reading ids and dates, the stable content hash.
//!
//! ## Features
//!
//! - `mutations`: engines whose defences can be switched off, for the pitfall tests only; never in a product
//!   build.
//! - `internals`: the module `internals` (the classifier, the `seen` set, the content hash), for this crate's
//!   benchmarks; not a stable API.

#![deny(missing_docs)]

// read by the benchmarks through `internals`: public items there, unused by the crate itself otherwise
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
mod classify;
mod concurrency;
mod defences;
mod engine;
mod error;
// read by the benchmarks through `internals`: public items there, unused by the crate itself otherwise
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
mod fields;
// read by the benchmarks through `internals`: public items there, unused by the crate itself otherwise
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
mod hash;
#[cfg(feature = "mutations")]
mod mutations;
mod pacing;
mod plan;
mod scan;
mod scheduler;
// read by the benchmarks through `internals`: public items there, unused by the crate itself otherwise
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
mod seen;
mod window;

/// The pure core, exposed for this crate's benchmarks (feature `internals`): not a stable API.
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::classify::{Classified, Classifier, Collector, FeedKind, RecordReader, Window};
    pub use crate::fields::{DateFormat, FieldPath};
    pub use crate::hash::content_hash;
    pub use crate::seen::{SeenEntry, SeenSet};
}

pub use defences::Defences;
pub use engine::{Engine, EngineConfig, PollJob, PollReport};
pub use error::PollError;
pub use plan::{MAX_RESOURCES_PER_INSTANCE, PlanField, PlanProblem, PlanSettings, PollPlan};
pub use scheduler::{DEFAULT_ADAPTIVE_FLOOR, DEFAULT_MAX_WAITING, JobResult, PollPorts, Scheduler, SchedulerConfig};

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

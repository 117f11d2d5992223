//! The change-detection engine and the scheduler: decides which records were CREATED, UPDATED or DELETED
//! since the last poll without losing or duplicating a change. It sees providers, stores, notifiers and time
//! only through the ports of `oc-model`.
//!
//! - [`engine`]: one poll of one (instance, resource), from `T0` to the atomic commit
//!   (`change-detection.md`, "One poll"), with every defence of its pitfall list switchable for tests;
//! - [`scheduler`]: claims due jobs, bounds the polls in flight, intervals with jitter, backoff, shutdown;
//! - [`classify`]: the pure core (de-duplication across pages, CREATED/UPDATED/DELETED, `seen`);
//! - [`seen`]: the `seen` set and its compact encoding;
//! - [`window`]: the poller URL and the lower bound it really sends after mask truncation;
//! - [`fields`], [`hash`]: reading ids and dates, and the stable content hash.

pub mod classify;
pub mod engine;
pub mod error;
pub mod fields;
pub mod hash;
mod scan;
pub mod scheduler;
pub mod seen;
pub mod window;

pub use engine::{Defences, Engine, EngineConfig, PollJob, PollReport};
pub use error::PollError;
pub use scheduler::{JobResult, PollPorts, Scheduler, SchedulerConfig};
pub use seen::SeenSet;

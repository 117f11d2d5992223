//! One test binary: the engine and the scheduler against the real store and the model provider: the pitfalls, the oracle, the deleted feed, reconciled deletions and replays, scheduling.

mod deleted_feed;
mod oracle;
mod pitfalls;
mod reconcile;
mod scheduler;
mod support;
mod undated;

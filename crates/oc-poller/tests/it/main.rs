//! One test binary: the engine and the scheduler against the real store and the model provider: the pitfalls, the oracle, the deleted feed, scheduling.

mod deleted_feed;
mod oracle;
mod pitfalls;
mod scheduler;
mod support;

//! One test binary: delivery against a real store and local receivers: the dispatcher, batched recording, the HTTP notifier.

mod alerts;
mod batching;
mod dispatch;
mod notifier;
#[path = "support/receiver.rs"]
mod receiver;
mod support;

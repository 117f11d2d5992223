//! Notifications in the Open Connectors `message` shape: built from the outbox, signed
//! (`Elements-Webhook-Signature` and Standard Webhooks), delivered at least once with retries. It implements
//! the notifier port of `oc-model`.
//!
//! - [`HttpNotifier`] implements [`Notifier`](oc_model::ports::Notifier): one signed `POST`, no redirects
//!   followed, a timeout, the SSRF guard ([`ssrf`]) on the address actually connected to;
//! - [`signing`]: the signature headers, and the Standard Webhooks secret equivalent to a key;
//! - [`RetryPolicy`]: the retry schedule (Open Connectors' by default) and `Retry-After`;
//! - [`Breakers`]: per-callback-URL concurrency limits and circuit breakers;
//! - [`Dispatcher`]: the delivery engine over the store, the notifier and a clock;
//! - [`AlertDispatcher`]: operational alerts from the store's alert outbox, signed and retried the same way.

#![deny(missing_docs)]

pub mod alerts;
mod attempt;
pub mod breaker;
pub mod dispatch;
pub mod error;
pub mod http;
mod recorder;
pub mod retry;
pub mod signing;
pub mod ssrf;

pub use alerts::{AlertDispatcher, AlertDispatcherConfig, AlertReport, ServerWebhook};
pub use breaker::{BreakerConfig, Breakers};
pub use dispatch::{DeliveryPorts, Dispatcher, DispatcherConfig, TickReport};
pub use error::NotifyError;
pub use http::{HttpNotifier, HttpNotifierConfig, USER_AGENT};
pub use retry::{RetryPolicy, parse_retry_after};

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

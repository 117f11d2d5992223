//! Wire types and boundary traits of ocpoll.
//!
//! This crate knows no other ocpoll crate. It holds:
//! - [`instance`]: the Open Connectors instance request body and the instance as the API returns it;
//! - [`config`]: typed, lenient access to every configuration key, with the secret keys declared once;
//! - [`poller`]: the per-resource poller configuration (`event.poller.configuration`);
//! - [`validate`]: structural validation that reports every problem at once, each with a JSON path;
//! - [`event`]: events and the Open Connectors notification `message`;
//! - [`ports`]: the traits through which the engine sees providers, stores, notifiers and time.
//!
//! ```
//! use oc_model::validate::validate_instance_request;
//!
//! let body = serde_json::json!({
//!     "element": {"key": "sageone"},
//!     "providerData": {"code": "GB/abc"},
//!     "name": "API_Polling",
//!     "configuration": {
//!         "oauth.api.key": "client-id",
//!         "oauth.api.secret": "client-secret",
//!         "oauth.callback.url": "https://example.com/oauth",
//!         "event.notification.enabled": "true",
//!         "event.notification.callback.url": "https://example.com/hook",
//!         "event.poller.refresh_interval": "0.5",
//!         "event.poller.configuration": {
//!             "customers": {"url": "/hubs/finance/customers", "idField": "id"}
//!         }
//!     }
//! });
//! let request = validate_instance_request(&body).expect("valid");
//! let config = request.configuration();
//! assert_eq!(config.refresh_interval().unwrap().as_secs(), 30);
//! assert!(config.notifications_enabled().unwrap());
//! ```

#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod event;
pub mod ids;
pub mod instance;
pub mod limits;
pub mod poller;
pub mod ports;
pub mod secret;
pub mod validate;

pub use config::Configuration;
pub use error::{Problem, Problems};
pub use event::{Event, EventType, Notification};
pub use ids::{InstanceId, OrgId, UserId};
pub use instance::{InstanceRequest, InstanceResponse};
pub use poller::{DatesConfiguration, PollerConfig, PollerConfigs};
pub use secret::Secret;

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

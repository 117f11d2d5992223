//! A Sage Accounting v3.1 simulator (OAuth, businesses, resources, list semantics, rate limits and fault
//! injection) for `ocpoll demo`, `ocpoll sim` and the end-to-end tests.
//!
//! It behaves as Sage is documented, including the inconvenient parts: five-minute access tokens, rotating
//! refresh tokens, offset paging over data that moves, equal timestamps, late-visible rows, 429s. Every resource
//! of Sage's swagger with a list and a get call is served (records shaped after the swagger's definitions);
//! contacts, sales invoices and quotes, products, services, ledger and bank accounts and contact payments are
//! seeded from a seed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), oc_sagesim::SimError> {
//! use oc_sagesim::{SimConfig, Simulator, parse_app};
//!
//! let config = SimConfig { apps: vec![parse_app("id:secret:http://127.0.0.1:9000/cb")?], ..SimConfig::default() };
//! let sim = Simulator::start(config).await?;
//! println!("{} {} {}", sim.authorize_url(), sim.token_url(), sim.api_url());
//! let lead = sim.lead_business();
//! sim.create_record(&lead, "contacts", serde_json::json!({"name": "Acme", "contact_type_ids": ["CUSTOMER"]}))?;
//! sim.throttle_next(2, Some(1));
//! sim.shutdown().await
//! # }
//! ```
//!
//! [`workload`] makes random changes to the customers and keeps the books of their delivery (the demo, the
//! end-to-end benchmark and the end-to-end tests share it).
//!
//! See `docs/simulator.md` for the flags, the admin API and the fault catalogue.

#![deny(missing_docs)]

mod admin;
mod clock;
mod config;
mod error;
mod faults;
mod http;
mod list;
mod oauth;
mod requests;
mod sage_error;
mod seed;
mod sim;
mod store;
mod swagger;
mod timefmt;
pub mod workload;

pub use config::{AppRegistration, LEAN_CUSTOMERS, SimConfig, parse_app, parse_apps};
pub use error::SimError;
pub use faults::{FaultSettings, PageAction, PageHook};
pub use oauth::TokenResponse;
pub use requests::LoggedRequest;
pub use sim::{BusinessInfo, SimHandle, Simulator};

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! The Sage Business Cloud Accounting v3.1 provider: the hub resource table, the translator of CEQL `where`
//! clauses to Sage's query parameters (the language itself is `oc-ceql`'s), the OAuth client with rotating
//! refresh tokens, paging and rate limits. It implements the provider port of `oc-model`
//! ([`oc_model::ports::Provider`]) and is usable on its own as a Sage client.
//!
//! - [`SageProvider`] (settings in [`SageConfig`]): `oauth_url`, `exchange_code`, `compile`, `fetch_page`;
//!   tokens live in the session's [`TokenVault`](oc_model::ports::TokenVault);
//! - [`translate`]: a `where` clause for a resource → [`Translation`] (what `ocpoll ceql translate` prints);
//!   [`compile`]: a whole hub URL → [`CompiledQuery`](oc_model::ports::CompiledQuery);
//! - [`DIALECT`]: what the CEQL crate ([`ceql`], `oc-ceql` re-exported) needs to know of Sage: the `finance`
//!   hub, the hub field names (`lastModifiedDate` → `updated_at`, ...), the fields every list returns;
//! - [`SageProvider::stats`]: requests by status, rate-limit waits and token refreshes, counted
//!   ([`SageStatsSnapshot`]);
//! - [`resources`]: the finance hub's resources; [`endpoints`]: Sage's list endpoints as its swagger declares them.
//!
//! Translating a clause:
//!
//! ```
//! let t = oc_sageone::translate(
//!     "customers",
//!     "lastModifiedDate >= '2024-01-31T10:00:00Z' and attributes='created_at,updated_at",
//! )
//! .unwrap();
//! assert_eq!(t.path, "/contacts");
//! assert_eq!(
//!     t.query,
//!     [
//!         ("contact_type_id".to_string(), "CUSTOMER".to_string()),
//!         ("updated_or_created_since".into(), "2024-01-31T10:00:00Z".into()),
//!         ("attributes".into(), "created_at,updated_at".into()),
//!     ]
//! );
//! assert_eq!(t.local, None);
//! // The seed URL's missing closing quote is repaired, and said.
//! assert_eq!(t.warnings.len(), 1);
//! ```
//!
//! Reading Sage (a sketch: it needs a real [`TokenVault`](oc_model::ports::TokenVault) and network):
//!
//! ```no_run
//! # async fn demo(session: oc_model::ports::Session) -> Result<(), Box<dyn std::error::Error>> {
//! use oc_model::ports::{Feed, FieldNeeds, PageCursor, PageRequest, Provider};
//! use oc_sageone::{SageConfig, SageProvider};
//!
//! let sage = SageProvider::new(SageConfig::default())?;
//! let needs = FieldNeeds { fields: vec!["id".into(), "updated_at".into(), "created_at".into()] };
//! let query = sage.compile("/hubs/finance/customers?where=lastModifiedDate>='2024-01-01T00:00:00Z'", &needs)?;
//! let mut cursor = PageCursor::First;
//! loop {
//!     let request = PageRequest { query: &query, feed: Feed::Changes, cursor, page_size: 200 };
//!     let page = sage.fetch_page(&session, &request).await?;
//!     let passing = page.records.iter().filter(|r| query.local.as_ref().is_none_or(|f| f.matches(r)));
//!     println!("{} records", passing.count());
//!     match page.next {
//!         Some(next) => cursor = PageCursor::Next(next),
//!         None => break,
//!     }
//! }
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod composite;
mod config;
mod dates;
mod dialect;
pub mod endpoints;
mod envelope;
pub mod error;
mod http;
mod oauth;
mod pause;
mod provider;
mod ratelimit;
pub mod resources;
mod spec;
mod stats;
mod translate;

/// The query language (parser, syntax tree, printer, hub URL reader, local evaluation): `oc-ceql`, which this
/// provider speaks through [`DIALECT`].
pub use oc_ceql as ceql;

pub use config::{
    DEFAULT_API_URL, DEFAULT_AUTHORIZE_URL, DEFAULT_BUDGET_SHARE_PERCENT, DEFAULT_TOKEN_URL, InteractiveLane,
    RateLimit, RetryPolicy, SageConfig,
};
pub use dialect::DIALECT;
pub use envelope::decode_page;
pub use error::{CeqlError, CeqlErrorKind, SageApiError, Warning};
pub use pause::{Pause, TokioPause};
pub use provider::SageProvider;
pub use spec::{
    DATE_MASK, DELETED_DATE_FIELD, ELEMENT_KEY, HUB, KEYS, MAX_PAGE_SIZE, default_poller, element_info, keys,
    provider_spec,
};
pub use stats::{RefreshCounts, SageStatsSnapshot};
pub use translate::{Translation, compile, translate};

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

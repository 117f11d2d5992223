//! Durable state on embedded SQLite (the default) and PostgreSQL (several nodes): instances, tokens, poll
//! state, the event outbox, notifications and delivery attempts, leases, and secrets encrypted at rest. It
//! implements the store port of `oc-model` and is the only crate that writes SQL.
//!
//! [`connect`] picks the backend once from the URL (`sqlite://PATH`, created if missing; `postgres://...`, with
//! TLS when the URL asks for it, e.g. `?sslmode=require` or `verify-full`),
//! applies the embedded migrations (refusing a database written by a newer binary) and checks the
//! [`MasterKey`] against the database, so a wrong key fails at start rather than by handing out garbage. The
//! resulting [`SqlStore`] implements every store port of `oc-model` — [`PollingStore`](oc_model::ports::PollingStore),
//! [`DeliveryStore`](oc_model::ports::DeliveryStore), [`AccountStore`](oc_model::ports::AccountStore),
//! [`InstanceStore`](oc_model::ports::InstanceStore), [`ActivityStore`](oc_model::ports::ActivityStore),
//! [`MaintenanceStore`](oc_model::ports::MaintenanceStore), [`ConsoleStore`](oc_model::ports::ConsoleStore),
//! [`AlertStore`](oc_model::ports::AlertStore) — and
//! [`TokenVault`](oc_model::ports::TokenVault): an `Arc<SqlStore>` is handed to each caller as the port it uses.
//!
//! What is kept how:
//! - organization, user and instance (`Element`) secrets: SHA-256 hashes only, compared in constant time;
//! - the web console's session cookies and OAuth `state`s: the SHA-256 digests its callers hand over, only;
//! - secret configuration values (the keys the caller names secret, `oc_model::config::SecretKeys`), access and
//!   refresh tokens, the pending instance body of a console OAuth round: sealed with XChaCha20-Poly1305 under the
//!   master key, bound to their row;
//! - instants compared in SQL: nanoseconds since the Unix epoch (`BIGINT`); instants only read back
//!   (watermarks, event dates, token expiry): RFC 3339 text, exact.
//!
//! Leases fence work across nodes: every claim increments a generation, and every write under a lease checks
//! owner, generation and expiry in the same statement that writes.
//!
//! ## Features
//!
//! - `sqlite` (default): the SQLite backend, for `sqlite://` URLs.
//! - `postgres` (default): the PostgreSQL backend, for `postgres://` and `postgresql://` URLs, with TLS by rustls
//!   when the URL asks for it; it also brings the change feed's `LISTEN`/`NOTIFY` across nodes.
//! - `testing`: the module `oc_store::testing`, a fresh store per test; each backend's functions in it come with
//!   that backend's feature.
//!
//! A URL of a backend whose feature is off is refused by [`connect`] with a [`StoreError::Database`] that names
//! the feature to enable. Without either backend the crate still builds, and [`connect`] refuses every URL.
//! [`Backend`] has both variants in every build.

#![deny(missing_docs)]

mod accounts;
mod activity;
mod alerts;
mod codec;
mod console;
mod db;
mod delivery;
mod error;
mod feed;
mod instances;
mod key;
mod leases;
mod maintenance;
mod ops;
mod outbox;
mod polls;
mod retention;
mod vault;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

// the store suite runs every test on both backends
#[cfg(all(test, feature = "sqlite", feature = "postgres"))]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use oc_model::ports::{Clock, StoreError, SystemClock};

pub use db::SCHEMA_VERSION;
pub use error::KeyError;
pub use feed::MAX_CHANGES_PER_PAGE;
pub use key::{KeySource, MASTER_KEY_ENV, MasterKey, sqlite_key_path};
pub use leases::{NodeWatch, TakenOver};
pub use ops::InstanceSummary;
pub use polls::POLL_HISTORY_PER_RESOURCE;
pub use retention::{DEFAULT_RETENTION, spawn_pruner};

/// The default of [`StoreOptions::polling_failing_after`].
pub const DEFAULT_POLLING_FAILING_AFTER: Duration = Duration::from_secs(15 * 60);

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite: one node.
    Sqlite,
    /// PostgreSQL: any number of nodes.
    Postgres,
}

/// How to open a store. Its `Debug` hides the key and any password in the URL.
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` (created if missing) or `postgres://...`.
    pub url: String,
    /// The key of the secrets at rest.
    pub key: MasterKey,
    /// Most connections (PostgreSQL), or most reader connections (SQLite; writes use one connection).
    pub max_connections: u32,
    /// PostgreSQL only: the schema to work in (created if missing; set as `search_path`).
    pub schema: Option<String>,
    /// SQLite only: how long a write waits for another process's write lock.
    pub busy_timeout: Duration,
    /// Time of the refresh locks of the token vault and of the alerts it raises (the other calls are given their
    /// time).
    pub clock: Arc<dyn Clock>,
    /// How long the polls of a resource fail without a success before a `polling.failing` alert is raised (once
    /// per streak of failures; default 15 minutes).
    pub polling_failing_after: Duration,
}

impl StoreOptions {
    /// Defaults: 8 connections, the `public` schema, a 30 s busy timeout, the system clock.
    pub fn new(url: impl Into<String>, key: MasterKey) -> Self {
        StoreOptions {
            url: url.into(),
            key,
            max_connections: 8,
            schema: None,
            busy_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            polling_failing_after: DEFAULT_POLLING_FAILING_AFTER,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("url", &oc_model::secret::redact_url(&self.url))
            .field("key", &self.key)
            .field("max_connections", &self.max_connections)
            .field("schema", &self.schema)
            .field("busy_timeout", &self.busy_timeout)
            .finish_non_exhaustive()
    }
}

/// The store on SQLite or PostgreSQL. Cheap to clone (connection pools are shared).
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pools: db::Pools,
    pub(crate) cipher: key::Cipher,
    pub(crate) clock: Arc<dyn Clock>,
    /// Wakes the change feed's long-polling readers after commits (of any node, on PostgreSQL).
    pub(crate) commits: Arc<feed::CommitSignal>,
    /// See [`StoreOptions::polling_failing_after`].
    pub(crate) polling_failing_after: Duration,
    /// The last write probe of `/readyz`: when, and what it found.
    pub(crate) probe: Arc<maintenance::LastProbe>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

/// Opens the store of `url` with default options: connects, applies the migrations, checks the key.
pub async fn connect(url: &str, key: MasterKey) -> Result<SqlStore, StoreError> {
    connect_with(StoreOptions::new(url, key)).await
}

/// Opens a store: connects, applies the migrations, checks the key.
pub async fn connect_with(options: StoreOptions) -> Result<SqlStore, StoreError> {
    let pools = db::Pools::open(&options).await?;
    let commits = feed::CommitSignal::new(&pools, options.schema.as_deref());
    let store = SqlStore {
        pools,
        cipher: key::Cipher::new(&options.key),
        clock: options.clock,
        commits,
        polling_failing_after: options.polling_failing_after,
        probe: Arc::default(),
    };
    store.migrate().await?;
    Ok(store)
}

impl SqlStore {
    /// Which database this is.
    pub fn backend(&self) -> Backend {
        if self.pools.is_pg() { Backend::Postgres } else { Backend::Sqlite }
    }

    /// Applies the embedded migrations (idempotent) and checks the master key; [`connect`] already did.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.pools.migrate().await?;
        self.pools.check_key(&self.cipher).await
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pools.close().await;
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn options_hide_the_key_and_the_password() {
        let options = StoreOptions::new("postgres://u:secret@h/db", MasterKey::from_bytes([9; 32]));
        let shown = format!("{options:?}");
        assert!(!shown.contains("secret") && shown.contains("u:****@h"), "{shown}");
    }

    /// The message of `connect(url)`, which must fail.
    #[cfg(not(all(feature = "sqlite", feature = "postgres")))]
    async fn refusal(url: &str) -> String {
        match connect(url, MasterKey::from_bytes([9; 32])).await {
            Err(StoreError::Database(message)) => message,
            Err(other) => panic!("{url}: not a database error: {other}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }

    #[cfg(not(feature = "sqlite"))]
    #[tokio::test]
    async fn without_sqlite_a_sqlite_url_names_the_feature() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("ocpoll.db").display());
        assert_eq!(
            refusal(&url).await,
            "this build of oc-store has no SQLite support: enable the `sqlite` feature of oc-store for sqlite:// URLs"
        );
        assert!(!dir.path().join("ocpoll.db").exists(), "no file is created");
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn without_postgres_a_postgres_url_names_the_feature() {
        for scheme in ["postgres", "postgresql"] {
            let message = refusal(&format!("{scheme}://u:hunter2@127.0.0.1:1/db")).await;
            assert_eq!(
                message,
                format!(
                    "this build of oc-store has no PostgreSQL support: enable the `postgres` feature of oc-store for \
                     {scheme}:// URLs"
                )
            );
        }
    }

    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[tokio::test]
    async fn without_a_backend_other_urls_are_still_unsupported() {
        let message = refusal("mysql://u:hunter2@h/db").await;
        assert!(message.starts_with("unsupported database URL scheme \"mysql\""), "{message}");
    }
}

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

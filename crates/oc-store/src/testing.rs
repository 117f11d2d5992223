//! Fresh stores for tests, here and in other crates (feature `testing`): a SQLite database in a temporary
//! directory, or a PostgreSQL schema of its own on the server of `OCPOLL_TEST_DATABASE_URL`, dropped when
//! the [`TestStore`] goes.
//!
//! The project's convention: when `OCPOLL_TEST_DATABASE_URL` is not set, `postgres` prints one line saying
//! the PostgreSQL test is skipped and returns `None` (the test passes) — unless `OCPOLL_REQUIRE_POSTGRES=1`,
//! then it panics.
//!
//! Each backend's functions come with its feature of the crate: `sqlite` and `sqlite_with_clock` with `sqlite`,
//! `postgres` and `postgres_with_clock` with `postgres`, `store` (either backend) with both.
//!
//! ```no_run
//! # async fn demo() {
//! let t = oc_store::testing::sqlite().await;
//! let store = t.store(); // Arc<SqlStore>: hand it to each caller as the port it uses
//! let (org, principal) = oc_store::testing::organization(&*store).await;
//! # let _ = (org, principal);
//! if let Some(pg) = oc_store::testing::postgres().await {
//!     let _other_node = pg.another_handle().await; // a second node on the same database
//! }
//! # }
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};
use oc_model::config::{Configuration, SecretKeys};
use oc_model::ports::{
    AccountStore, NewInstance, NewOrganization, Organization, Principal, ProviderAccount, StoreError, TokenSet,
    TokenVault,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use oc_model::ports::{Clock, SystemClock};
use oc_model::secret::Secret;
use uuid::Uuid;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::MasterKey;
use crate::{Backend, SqlStore, StoreOptions, connect_with};

/// The PostgreSQL server of the PostgreSQL tests.
pub const TEST_DATABASE_URL_ENV: &str = "OCPOLL_TEST_DATABASE_URL";
/// Set to `1` to make a missing PostgreSQL server a failure instead of a skip.
pub const REQUIRE_POSTGRES_ENV: &str = "OCPOLL_REQUIRE_POSTGRES";

/// Where the database of a [`TestStore`] is, to remove it.
enum Place {
    #[cfg(feature = "sqlite")]
    Sqlite { _dir: tempfile::TempDir },
    #[cfg(feature = "postgres")]
    Postgres { schema: String },
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[expect(dead_code, reason = "uninhabited: a build without a backend makes no test store")]
    None(crate::db::NoBackend),
}

/// A store on a database of its own, removed on drop.
pub struct TestStore {
    store: Arc<SqlStore>,
    options: StoreOptions,
    place: Place,
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

/// A store on a new SQLite database in a temporary directory.
#[cfg(feature = "sqlite")]
pub async fn sqlite() -> TestStore {
    sqlite_with_clock(Arc::new(SystemClock)).await
}

/// [`sqlite`] with a clock for the refresh locks of the token vault.
#[cfg(feature = "sqlite")]
pub async fn sqlite_with_clock(clock: Arc<dyn Clock>) -> TestStore {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("ocpoll.db").display());
    let mut options = StoreOptions::new(url, MasterKey::generate());
    options.clock = clock;
    let store = connect_with(options.clone()).await.expect("a fresh SQLite store");
    TestStore { store: Arc::new(store), options, place: Place::Sqlite { _dir: dir } }
}

/// A store in a new schema of the PostgreSQL server of `OCPOLL_TEST_DATABASE_URL`; `None` (after one line on
/// stderr) when that is not set, unless `OCPOLL_REQUIRE_POSTGRES=1`.
#[cfg(feature = "postgres")]
pub async fn postgres() -> Option<TestStore> {
    postgres_with_clock(Arc::new(SystemClock)).await
}

/// [`postgres`] with a clock for the refresh locks of the token vault.
#[cfg(feature = "postgres")]
pub async fn postgres_with_clock(clock: Arc<dyn Clock>) -> Option<TestStore> {
    let url = match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            if std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1") {
                panic!(
                    "{REQUIRE_POSTGRES_ENV}=1 but {TEST_DATABASE_URL_ENV} is not set: the PostgreSQL tests cannot run"
                );
            }
            eprintln!("PostgreSQL test skipped: {TEST_DATABASE_URL_ENV} is not set");
            return None;
        }
    };
    let schema = format!("ocpoll_test_{}", Uuid::new_v4().simple());
    let mut options = StoreOptions::new(url, MasterKey::generate());
    options.schema = Some(schema.clone());
    options.max_connections = 4;
    options.clock = clock;
    let store = match connect_with(options.clone()).await {
        Ok(store) => store,
        Err(e) => panic!("cannot open a PostgreSQL test store at {TEST_DATABASE_URL_ENV}: {e}"),
    };
    Some(TestStore { store: Arc::new(store), options, place: Place::Postgres { schema } })
}

/// A fresh store of `backend`: always for SQLite, as [`postgres`] says for PostgreSQL.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
pub async fn store(backend: Backend, clock: Arc<dyn Clock>) -> Option<TestStore> {
    match backend {
        Backend::Sqlite => Some(sqlite_with_clock(clock).await),
        Backend::Postgres => postgres_with_clock(clock).await,
    }
}

impl TestStore {
    /// The store.
    pub fn store(&self) -> Arc<SqlStore> {
        self.store.clone()
    }

    /// The store as a token vault.
    pub fn vault(&self) -> Arc<dyn TokenVault> {
        self.store.clone()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// The options the store was opened with (URL, key, schema).
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// A second, independent handle (its own connections) on the same database: another node.
    pub async fn another_handle(&self) -> SqlStore {
        connect_with(self.options.clone()).await.expect("a second handle on the test database")
    }

    /// Opens the same database with other options (e.g. another key), as a restart would.
    pub async fn reopen(&self, change: impl FnOnce(&mut StoreOptions)) -> Result<SqlStore, StoreError> {
        let mut options = self.options.clone();
        change(&mut options);
        connect_with(options).await
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        match &self.place {
            // the temporary directory goes with its `TempDir`
            #[cfg(feature = "sqlite")]
            Place::Sqlite { .. } => {}
            #[cfg(feature = "postgres")]
            Place::Postgres { schema } => drop_schema(self.options.url.clone(), schema.clone()),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Place::None(never) => match *never {},
        }
    }
}

/// Drops the test schema `schema` of the PostgreSQL server of `url`.
#[cfg(feature = "postgres")]
fn drop_schema(url: String, schema: String) {
    // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
    let cleanup = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        });
    });
    let _ = cleanup.join();
}

/// A new organization with random secrets, and its first user.
pub async fn organization(store: &dyn AccountStore) -> (Organization, Principal) {
    let new = NewOrganization {
        name: "test organization".into(),
        org_secret: Uuid::new_v4().simple().to_string(),
        user_secret: Uuid::new_v4().simple().to_string(),
        now: Utc::now(),
    };
    store.create_organization(&new).await.expect("a new organization")
}

/// The element key of [`new_instance`]'s instances.
pub const TEST_ELEMENT: &str = "test-element";

/// A new instance of `owner` of the element [`TEST_ELEMENT`] with this configuration (Open Connectors' secret keys
/// secret), placeholder tokens and a random `Element` token, created `now` with its watermarks starting at `now`.
pub fn new_instance(owner: Principal, configuration: Configuration, now: DateTime<Utc>) -> NewInstance {
    NewInstance {
        org_id: owner.org_id,
        user_id: owner.user_id,
        name: "test instance".into(),
        element_key: TEST_ELEMENT.into(),
        tags: Vec::new(),
        configuration,
        secret_keys: SecretKeys::default(),
        account: ProviderAccount::default(),
        tokens: TokenSet {
            access_token: Secret::new("test-access-token"),
            refresh_token: Secret::new("test-refresh-token"),
            expires_at: now + chrono::Duration::minutes(5),
            refresh_expires_at: None,
            scope: None,
        },
        token: Uuid::new_v4().simple().to_string(),
        now,
        poll_start: now,
    }
}

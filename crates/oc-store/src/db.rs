//! The two backends behind one narrow interface: a connection or transaction runs SQL text with a list of
//! [`Val`]s and yields [`Row`]s, whichever database is underneath. The store's logic is written once against
//! it; SQL text differs only where the dialects do (`FOR UPDATE SKIP LOCKED`, advisory locks).
//!
//! SQLite: one writer connection (every write transaction starts with `BEGIN IMMEDIATE` on it, so writes are
//! serialized inside the process and wait on the busy timeout across processes — `SQLITE_BUSY` does not reach
//! a caller) and a small pool of reader connections; WAL mode lets readers run beside the writer, and a
//! background task checkpoints the WAL so that commits do not.
//!
//! Each backend is compiled with its feature (`sqlite`, `postgres`): its variants, match arms and imports carry
//! `#[cfg(feature = ...)]`. A build with neither still compiles the store's logic against this interface, but
//! no connection can exist: [`Pools`], [`Conn`] and [`Row`] then have only a variant of the uninhabited
//! `NoBackend` ([`ConnRef`] one beside `Finished`), and [`Pools::open`] refuses every URL.

use std::borrow::Cow;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::str::FromStr;
#[cfg(feature = "sqlite")]
use std::sync::Arc;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::time::Duration;

use oc_model::ports::StoreError;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use sqlx::Row as _;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use sqlx::pool::PoolConnection;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
#[cfg(feature = "postgres")]
use sqlx::{PgConnection, PgPool, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::error::corrupt;
use crate::error::error_chain;
use crate::key::Cipher;

/// The content of the connection, row and pool enums in a build without a backend: no value, so none of them
/// can be made, and every `match` on one is exhaustive with `match *never {}`.
#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
pub(crate) type NoBackend = std::convert::Infallible;

/// The embedded migrations: (version, description, SQLite text, PostgreSQL text).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "claim indexes",
        include_str!("../migrations/sqlite/0002_claim_indexes.sql"),
        include_str!("../migrations/postgres/0002_claim_indexes.sql"),
    ),
    (
        3,
        "nodes",
        include_str!("../migrations/sqlite/0003_nodes.sql"),
        include_str!("../migrations/postgres/0003_nodes.sql"),
    ),
    (
        4,
        "neutral account",
        include_str!("../migrations/sqlite/0004_neutral_account.sql"),
        include_str!("../migrations/postgres/0004_neutral_account.sql"),
    ),
    (
        5,
        "replay and reconcile",
        include_str!("../migrations/sqlite/0005_replay_and_reconcile.sql"),
        include_str!("../migrations/postgres/0005_replay_and_reconcile.sql"),
    ),
    (
        6,
        "console",
        include_str!("../migrations/sqlite/0006_console.sql"),
        include_str!("../migrations/postgres/0006_console.sql"),
    ),
    (
        7,
        "feed",
        include_str!("../migrations/sqlite/0007_feed.sql"),
        include_str!("../migrations/postgres/0007_feed.sql"),
    ),
    (
        8,
        "alerts",
        include_str!("../migrations/sqlite/0008_alerts.sql"),
        include_str!("../migrations/postgres/0008_alerts.sql"),
    ),
    (
        9,
        "claim due",
        include_str!("../migrations/sqlite/0009_claim_due.sql"),
        include_str!("../migrations/postgres/0009_claim_due.sql"),
    ),
    (
        10,
        "trace parent",
        include_str!("../migrations/sqlite/0010_trace_parent.sql"),
        include_str!("../migrations/postgres/0010_trace_parent.sql"),
    ),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = 10;

/// A bound value.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    expect(dead_code, reason = "a build without a backend binds no value")
)]
pub(crate) enum Val {
    I64(i64),
    OptI64(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bytes(Vec<u8>),
    OptBytes(Option<Vec<u8>>),
    Bool(bool),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I64(v)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::OptI64(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::OptText(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::OptText(v.map(str::to_string))
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::Bytes(v)
    }
}
impl From<Option<Vec<u8>>> for Val {
    fn from(v: Option<Vec<u8>>) -> Self {
        Val::OptBytes(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Bool(v)
    }
}

/// `args![a, b, c]`: a `Vec<Val>`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::db::Val::from($v)),*] };
}
pub(crate) use args;

/// What a failed statement was doing, for the error message: its first words.
fn context(sql: &str) -> String {
    sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn query_error(sql: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if let Some(d) = e.as_database_error()
            && d.is_unique_violation()
        {
            return StoreError::Conflict(format!("{}: {}", context(sql), d.message()));
        }
        StoreError::Database(format!("{}: {}", context(sql), error_chain(&e)))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Val::I64(v) => q.bind(v),
                Val::OptI64(v) => q.bind(v),
                Val::Text(v) => q.bind(v),
                Val::OptText(v) => q.bind(v),
                Val::Bytes(v) => q.bind(v),
                Val::OptBytes(v) => q.bind(v),
                Val::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}

/// A borrowed connection of either backend.
pub(crate) enum ConnRef<'a> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'a mut SqliteConnection),
    #[cfg(feature = "postgres")]
    Pg(&'a mut PgConnection),
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[expect(dead_code, reason = "uninhabited: a build without a backend makes no value of it")]
    None(&'a mut NoBackend),
    /// The connection of a transaction that has ended: every statement fails.
    Finished,
}

impl ConnRef<'_> {
    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn exec(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, StoreError> {
        #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
        let _ = (sql, args);
        match self {
            #[cfg(feature = "sqlite")]
            ConnRef::Sqlite(c) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected())
                .map_err(query_error(sql)),
            #[cfg(feature = "postgres")]
            ConnRef::Pg(c) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected())
                .map_err(query_error(sql)),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            ConnRef::None(never) => match **never {},
            ConnRef::Finished => Err(finished()),
        }
    }

    /// Every row of a query.
    pub(crate) async fn all(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<Row>, StoreError> {
        #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
        let _ = (sql, args);
        match self {
            #[cfg(feature = "sqlite")]
            ConnRef::Sqlite(c) => bind_all!(sqlx::query(sql), args)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect())
                .map_err(query_error(sql)),
            #[cfg(feature = "postgres")]
            ConnRef::Pg(c) => bind_all!(sqlx::query(sql), args)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Row::Pg).collect())
                .map_err(query_error(sql)),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            ConnRef::None(never) => match **never {},
            ConnRef::Finished => Err(finished()),
        }
    }

    /// The first row of a query, if any.
    pub(crate) async fn opt(&mut self, sql: &str, args: Vec<Val>) -> Result<Option<Row>, StoreError> {
        #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
        let _ = (sql, args);
        match self {
            #[cfg(feature = "sqlite")]
            ConnRef::Sqlite(c) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **c)
                .await
                .map(|r| r.map(Row::Sqlite))
                .map_err(query_error(sql)),
            #[cfg(feature = "postgres")]
            ConnRef::Pg(c) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **c)
                .await
                .map(|r| r.map(Row::Pg))
                .map_err(query_error(sql)),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            ConnRef::None(never) => match **never {},
            ConnRef::Finished => Err(finished()),
        }
    }

    /// The one row of a query.
    pub(crate) async fn one(&mut self, sql: &str, args: Vec<Val>) -> Result<Row, StoreError> {
        self.opt(sql, args).await?.ok_or_else(|| StoreError::Database(format!("{}: no row", context(sql))))
    }

    /// Placeholders for `n` values bound from position `from` on, comma-separated: `$from, ...` on
    /// PostgreSQL, `?, ...` on SQLite, where numbered parameters cost a linear search each when bound
    /// (quadratic in a statement of hundreds of values). sqlx numbers anonymous parameters without
    /// regard to numbered ones, so every parameter of such a statement must come from here, in order.
    pub(crate) fn placeholders(&self, from: usize, n: usize) -> String {
        let one = |i: usize| if self.is_pg() { format!("${i}") } else { "?".to_string() };
        (from..from + n).map(one).collect::<Vec<_>>().join(", ")
    }

    /// True on PostgreSQL.
    pub(crate) fn is_pg(&self) -> bool {
        match self {
            #[cfg(feature = "sqlite")]
            ConnRef::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            ConnRef::Pg(_) => true,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            ConnRef::None(never) => match **never {},
            ConnRef::Finished => false,
        }
    }
}

/// A write transaction on a connection of its own.
///
/// It owns its pooled connection and runs `BEGIN`, `COMMIT` and `ROLLBACK` itself, so that no failure can send
/// the connection back to the pool inside a transaction (sqlx's `Transaction` does, when a `COMMIT` fails and
/// SQLite has already rolled back: its rollback then fails, its transaction depth stays at one, and every later
/// `BEGIN IMMEDIATE` on the single SQLite writer is refused until a restart). The rule: a connection goes back to
/// the pool only after a `COMMIT` or a `ROLLBACK` that succeeded; otherwise it is closed, and the pool opens a
/// fresh one for the next write. A transaction dropped unfinished (an error returned with `?`, a cancelled
/// request) is rolled back by a task of its own before its connection is free again.
pub(crate) struct Tx {
    /// `None` once finished.
    conn: Option<Conn>,
}

/// Runs a statement of transaction control (no parameters, no rows).
async fn control(conn: &mut Conn, sql: &'static str) -> Result<(), StoreError> {
    conn.c().exec(sql, Vec::new()).await.map(drop)
}

/// Ends whatever transaction `conn` may be in after a failure (`what`): a `ROLLBACK` that succeeds hands the
/// connection back to the pool; one that fails closes it, so the pool replaces it.
async fn abandon(mut conn: Conn, what: &str) {
    match control(&mut conn, "ROLLBACK").await {
        // the connection goes back to the pool as it drops
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(error = %e, "{what}, and ROLLBACK failed: closing the database connection");
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %error_chain(&e), "closing a failed database connection");
            }
        }
    }
}

impl Tx {
    /// Starts a transaction on `conn` with `begin`.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        expect(dead_code, reason = "a build without a backend has no connection to begin on")
    )]
    async fn begin(mut conn: Conn, begin: &'static str) -> Result<Tx, StoreError> {
        match control(&mut conn, begin).await {
            Ok(()) => Ok(Tx { conn: Some(conn) }),
            Err(e) => {
                abandon(conn, begin).await;
                Err(e)
            }
        }
    }

    pub(crate) fn c(&mut self) -> ConnRef<'_> {
        match &mut self.conn {
            Some(conn) => conn.c(),
            None => ConnRef::Finished,
        }
    }

    /// Commits. When the `COMMIT` fails, the transaction is rolled back (or its connection closed) before the
    /// error is returned: nothing of it stays, and the next write starts on a clean connection.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        let Some(conn) = self.conn.as_mut() else { return Err(finished()) };
        match control(conn, "COMMIT").await {
            Ok(()) => {
                // back to the pool; the drop of `self` then finds nothing to roll back
                self.conn = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "COMMIT failed: the transaction is rolled back");
                if let Some(conn) = self.conn.take() {
                    abandon(conn, "COMMIT failed").await;
                }
                Err(e)
            }
        }
    }

    /// Rolls back (or closes the connection when that fails).
    pub(crate) async fn rollback(mut self) {
        if let Some(conn) = self.conn.take() {
            abandon(conn, "giving up a transaction").await;
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(abandon(conn, "a transaction dropped unfinished"));
            }
            Err(_) => {
                // no runtime to roll back on: the connection must not go back to the pool in a transaction
                conn.close_on_drop();
            }
        }
    }
}

fn finished() -> StoreError {
    StoreError::Database("the transaction has already ended".into())
}

/// A pooled connection for reads.
pub(crate) enum Conn {
    #[cfg(feature = "sqlite")]
    Sqlite(PoolConnection<Sqlite>),
    #[cfg(feature = "postgres")]
    Pg(PoolConnection<Postgres>),
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[expect(dead_code, reason = "uninhabited: a build without a backend makes no value of it")]
    None(NoBackend),
}

impl Conn {
    pub(crate) fn c(&mut self) -> ConnRef<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => ConnRef::Sqlite(c),
            #[cfg(feature = "postgres")]
            Conn::Pg(c) => ConnRef::Pg(c),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Conn::None(never) => match *never {},
        }
    }

    /// Closes the connection instead of handing it back to the pool.
    async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => c.close().await,
            #[cfg(feature = "postgres")]
            Conn::Pg(c) => c.close().await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Conn::None(never) => match never {},
        }
    }

    /// Makes the pool close the connection when it is dropped instead of taking it back.
    fn close_on_drop(&mut self) {
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => c.close_on_drop(),
            #[cfg(feature = "postgres")]
            Conn::Pg(c) => c.close_on_drop(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Conn::None(never) => match *never {},
        }
    }
}

/// A result row of either backend.
pub(crate) enum Row {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteRow),
    #[cfg(feature = "postgres")]
    Pg(PgRow),
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[expect(dead_code, reason = "uninhabited: a build without a backend makes no value of it")]
    None(NoBackend),
}

/// A column that does not decode as the type asked for.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn bad_column(col: &str, e: sqlx::Error) -> StoreError {
    corrupt(format_args!("column {col}: {e}"))
}

macro_rules! getter {
    ($name:ident, $t:ty) => {
        pub(crate) fn $name(&self, col: &str) -> Result<$t, StoreError> {
            match self {
                #[cfg(feature = "sqlite")]
                Row::Sqlite(r) => r.try_get::<$t, _>(col).map_err(|e| bad_column(col, e)),
                #[cfg(feature = "postgres")]
                Row::Pg(r) => r.try_get::<$t, _>(col).map_err(|e| bad_column(col, e)),
                #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
                Row::None(never) => {
                    let _ = col;
                    match *never {}
                }
            }
        }
    };
}

impl Row {
    getter!(i64, i64);
    getter!(opt_i64, Option<i64>);
    getter!(text, String);
    getter!(opt_text, Option<String>);
    getter!(bytes, Vec<u8>);
    getter!(opt_bytes, Option<Vec<u8>>);
    getter!(bool, bool);
}

/// The connection pools of the chosen backend.
#[derive(Clone)]
pub(crate) enum Pools {
    #[cfg(feature = "sqlite")]
    Sqlite { writer: SqlitePool, reader: SqlitePool, _checkpointer: Option<Arc<Checkpointer>> },
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[expect(dead_code, reason = "uninhabited: a build without a backend makes no value of it")]
    None(NoBackend),
}

/// Pages of WAL after which a committing writer checkpoints by itself: a safety net, as the background
/// checkpointer normally keeps the WAL far shorter.
#[cfg(feature = "sqlite")]
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;
/// How often the background checkpointer copies the WAL into the database.
#[cfg(feature = "sqlite")]
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the SQLite WAL into the database in the background (`PRAGMA wal_checkpoint(PASSIVE)`, which blocks
/// neither readers nor the writer), so commits do not pay for checkpoints. Stops when the last handle goes.
#[cfg(feature = "sqlite")]
pub(crate) struct Checkpointer(tokio::task::JoinHandle<()>);

#[cfg(feature = "sqlite")]
impl Checkpointer {
    fn spawn(pool: SqlitePool) -> Self {
        Checkpointer(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                    tracing::debug!(error = %e, "background WAL checkpoint failed; the writer checkpoints when needed");
                }
            }
        }))
    }
}

#[cfg(feature = "sqlite")]
impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The mode of the SQLite database files: they hold customer records and sealed secrets, readable by the
/// service's user only (as the key file is).
#[cfg(all(unix, feature = "sqlite"))]
const PRIVATE_MODE: u32 = 0o600;

/// Makes the SQLite database `db` and its `-wal` and `-shm` readable and writable by their owner only, whatever
/// the umask: creates the database with mode 0600 when it is missing (SQLite then creates the other two with its
/// mode), and narrows the mode of existing files, saying so.
#[cfg(feature = "sqlite")]
fn private_files(db: &std::path::Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let failed = |what: &str, path: &std::path::Path, e: std::io::Error| {
            StoreError::Database(format!("cannot {what} the SQLite database file {}: {e}", path.display()))
        };
        if !db.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(PRIVATE_MODE)
                .open(db)
                .map_err(|e| failed("create", db, e))?;
        }
        let files = ["", "-wal", "-shm"].map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        });
        for file in &files {
            let meta = match std::fs::metadata(file) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed("read the mode of", file, e)),
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & !PRIVATE_MODE != 0 {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(PRIVATE_MODE))
                    .map_err(|e| failed("restrict the mode of", file, e))?;
                tracing::warn!(
                    file = %file.display(),
                    "the SQLite database file was mode {mode:o}, readable by others: set to {PRIVATE_MODE:o}"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

/// A PostgreSQL schema name we are willing to put in SQL text.
#[cfg(feature = "postgres")]
pub(crate) fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// A URL of `scheme` for a backend (`backend`, feature `feature`) that this build of oc-store lacks.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn missing_backend(backend: &str, feature: &str, scheme: &str) -> StoreError {
    StoreError::Database(format!(
        "this build of oc-store has no {backend} support: enable the `{feature}` feature of oc-store for \
         {scheme}:// URLs"
    ))
}

/// The error of a connection that cannot be had from a pool.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn no_connection(e: sqlx::Error) -> StoreError {
    StoreError::Database(format!("cannot get a database connection: {}", error_chain(&e)))
}

/// An invalid URL of `scheme` (the URL may carry a password: the message names only its scheme).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn bad_url(scheme: &str, e: sqlx::Error) -> StoreError {
    StoreError::Database(format!("invalid {scheme} database URL: {e}"))
}

impl Pools {
    /// Connects to the database of `o.url` (`sqlite://...` or `postgres://...`), with the backend's options of `o`.
    /// A URL of a backend this build lacks (see the crate's features) is refused, saying which feature it needs.
    pub(crate) async fn open(o: &crate::StoreOptions) -> Result<Pools, StoreError> {
        // The URL may carry a password: messages name only its scheme.
        let scheme = o.url.split(':').next().unwrap_or_default();
        if o.url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            return Pools::open_sqlite(o, scheme).await;
            #[cfg(not(feature = "sqlite"))]
            return Err(missing_backend("SQLite", "sqlite", scheme));
        }
        if o.url.starts_with("postgres://") || o.url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Pools::open_postgres(o, scheme).await;
            #[cfg(not(feature = "postgres"))]
            return Err(missing_backend("PostgreSQL", "postgres", scheme));
        }
        Err(StoreError::Database(format!(
            "unsupported database URL scheme {scheme:?}: expected sqlite://PATH or postgres://..."
        )))
    }

    /// [`Pools::open`] of a `sqlite:` URL: the writer, the readers and the checkpointer.
    #[cfg(feature = "sqlite")]
    async fn open_sqlite(o: &crate::StoreOptions, scheme: &str) -> Result<Pools, StoreError> {
        let base = SqliteConnectOptions::from_str(&o.url)
            .map_err(|e| bad_url(scheme, e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(o.busy_timeout)
            .foreign_keys(true);
        let memory = o.url.contains(":memory:") || o.url.contains("mode=memory");
        let db_file = base.get_filename().to_path_buf();
        if !memory {
            private_files(&db_file)?;
        }
        let connect = |e: sqlx::Error| StoreError::Database(format!("cannot open the SQLite database: {e}"));
        // The writer keeps a large page cache: index pages touched by every commit stay in memory.
        let writer_options = base
            .clone()
            .pragma("cache_size", "-65536")
            .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES.to_string());
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if memory { None } else { Some(Duration::from_secs(3600)) })
            .connect_with(writer_options)
            .await
            .map_err(connect)?;
        if memory {
            return Ok(Pools::Sqlite { reader: writer.clone(), writer, _checkpointer: None });
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(o.max_connections.max(1))
            .connect_with(base)
            .await
            .map_err(connect)?;
        // SQLite gives its -wal and -shm the mode of the database; those of an earlier version are fixed here
        private_files(&db_file)?;
        let checkpointer = Some(Arc::new(Checkpointer::spawn(reader.clone())));
        Ok(Pools::Sqlite { writer, reader, _checkpointer: checkpointer })
    }

    /// [`Pools::open`] of a `postgres://` URL: the pool, in the schema of `o` (created if missing).
    #[cfg(feature = "postgres")]
    async fn open_postgres(o: &crate::StoreOptions, scheme: &str) -> Result<Pools, StoreError> {
        let mut options = PgConnectOptions::from_str(&o.url).map_err(|e| bad_url(scheme, e))?;
        let schema = o.schema.as_deref();
        if let Some(schema) = schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::Database(format!("invalid schema name {schema:?}")));
            }
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(o.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {}", error_chain(&e))))?;
        if let Some(schema) = schema {
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&pool)
                .await
                .map_err(query_error("CREATE SCHEMA"))?;
        }
        Ok(Pools::Postgres(pool))
    }

    pub(crate) fn is_pg(&self) -> bool {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { .. } => false,
            #[cfg(feature = "postgres")]
            Pools::Postgres(_) => true,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Pools::None(never) => match *never {},
        }
    }

    /// The PostgreSQL pool, when this is PostgreSQL (for the change feed's `LISTEN`).
    #[cfg(feature = "postgres")]
    pub(crate) fn pg(&self) -> Option<&PgPool> {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { .. } => None,
            Pools::Postgres(pool) => Some(pool),
        }
    }

    /// Starts a write transaction.
    pub(crate) async fn write(&self) -> Result<Tx, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { writer, .. } => {
                Tx::begin(Conn::Sqlite(writer.acquire().await.map_err(no_connection)?), "BEGIN IMMEDIATE").await
            }
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => Tx::begin(Conn::Pg(p.acquire().await.map_err(no_connection)?), "BEGIN").await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Pools::None(never) => match *never {},
        }
    }

    /// A connection for reads.
    pub(crate) async fn read(&self) -> Result<Conn, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { reader, .. } => reader.acquire().await.map(Conn::Sqlite).map_err(no_connection),
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => p.acquire().await.map(Conn::Pg).map_err(no_connection),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Pools::None(never) => match *never {},
        }
    }

    /// Applies the embedded migrations; refuses a database migrated by a newer binary.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let pg = self.is_pg();
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sqlite, postgres)| {
                let sql = if pg { postgres } else { sqlite };
                Migration::new(*version, Cow::Borrowed(description), MigrationType::Simple, Cow::Borrowed(sql), false)
            })
            .collect::<Vec<_>>();
        let migrator =
            Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false };
        self.run(&migrator).await.map_err(|e| match e {
            MigrateError::VersionMissing(v) => StoreError::Schema(format!(
                "the database has schema migration {v}, which this binary does not know (it knows up to \
                 {SCHEMA_VERSION}): it was written by a newer ocpoll; run that version or a newer one"
            )),
            MigrateError::VersionMismatch(v) => StoreError::Schema(format!(
                "schema migration {v} applied to this database differs from the one this binary carries"
            )),
            MigrateError::Dirty(v) => StoreError::Schema(format!(
                "schema migration {v} was left partly applied; repair the database before starting ocpoll"
            )),
            other => StoreError::Schema(format!("cannot apply the schema migrations: {}", error_chain(&other))),
        })
    }

    /// Runs `migrator` on the database (SQLite: on the writer).
    async fn run(&self, migrator: &Migrator) -> Result<(), MigrateError> {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { writer, .. } => migrator.run(writer).await,
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => migrator.run(p).await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Pools::None(never) => {
                let _ = migrator;
                match *never {}
            }
        }
    }

    /// Checks the master key against the check value stored with the database (writing one on first use).
    pub(crate) async fn check_key(&self, cipher: &Cipher) -> Result<(), StoreError> {
        const AAD: &str = "ocpoll key check";
        const PLAIN: &[u8] = b"ocpoll master key check v1";
        let mut tx = self.write().await?;
        let mut c = tx.c();
        let stored = match c.opt("SELECT value FROM meta WHERE key = 'key_check'", args![]).await? {
            Some(row) => row.bytes("value")?,
            None => {
                let sealed = cipher.seal(AAD, PLAIN)?;
                c.exec(
                    "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING",
                    args![sealed],
                )
                .await?;
                c.one("SELECT value FROM meta WHERE key = 'key_check'", args![]).await?.bytes("value")?
            }
        };
        tx.commit().await?;
        match cipher.open(AAD, &stored) {
            Ok(plain) if plain == PLAIN => Ok(()),
            _ => Err(StoreError::Crypto(
                "the master key does not match this database (it was set up with another key)".into(),
            )),
        }
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { writer, reader, .. } => {
                reader.close().await;
                writer.close().await;
            }
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => p.close().await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Pools::None(never) => match *never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MIGRATIONS, SCHEMA_VERSION};

    /// Every migration file of both dialects is embedded, numbered 1, 2, ... up to [`SCHEMA_VERSION`].
    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        for dialect in ["sqlite", "postgres"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .expect("the migrations folder")
                .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files.len(), MIGRATIONS.len(), "{dialect}: {files:?}");
            for (file, (version, _, sqlite, postgres)) in files.iter().zip(MIGRATIONS) {
                assert!(file.starts_with(&format!("{version:04}_")), "{dialect}: {file} is not migration {version}");
                let text = std::fs::read_to_string(dir.join(file)).expect("readable");
                let embedded = if dialect == "sqlite" { sqlite } else { postgres };
                assert_eq!(&text, embedded, "{dialect}: {file} is not the text embedded as migration {version}");
            }
        }
    }
}

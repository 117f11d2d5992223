//! The real `ocpoll` binary as a child process: built once per process, started with `ocpoll serve` on a test
//! store's database (or any database: the end-to-end benchmark uses it too), killed with SIGKILL or stopped with
//! SIGTERM.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oc_store::Backend;
use oc_store::testing::TestStore;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Builds `ocpoll` (once per process) with `cargo build -p oc-bin --bin ocpoll` in the profile this code was built
/// in (`--release` when it has no debug assertions: the end-to-end benchmark) and returns its path.
pub fn ocpoll_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let release = !cfg!(debug_assertions);
        let mut cargo = std::process::Command::new(env!("CARGO"));
        // the variables cargo set for this package's run would make the build differ from a user's `cargo build`
        // (build scripts such as ring's watch `CARGO_MANIFEST_DIR`) and rebuild half the tree each time
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(set_by_cargo_for_a_package) {
                cargo.env_remove(key);
            }
        }
        let status = cargo
            .args(["build", "-p", "oc-bin", "--bin", "ocpoll"])
            .args(if release { &["--release"][..] } else { &[] })
            .current_dir(&workspace)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building ocpoll failed: {status}");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
        let bin = target.join(if release { "release" } else { "debug" }).join("ocpoll");
        assert!(bin.exists(), "{} is missing after the build", bin.display());
        bin
    })
    .clone()
}

/// Whether cargo sets `key` for the package it builds, runs or tests (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...).
fn set_by_cargo_for_a_package(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// The database URL under which `ocpoll serve` finds the data of `store` (its schema on PostgreSQL), and the
/// master key of its secrets in hex.
pub fn database_of(store: &TestStore) -> (String, String) {
    let o = store.options();
    let url = match (store.backend(), &o.schema) {
        (Backend::Postgres, Some(schema)) => url_with_schema(&o.url, schema),
        _ => o.url.clone(),
    };
    (url, o.key.to_hex())
}

/// A PostgreSQL `url` whose connections use `schema` (as their search path).
pub fn url_with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// How to start one `ocpoll serve`.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `--database-url`.
    pub database_url: String,
    /// `OCPOLL_MASTER_KEY`.
    pub master_key: String,
    /// `OCPOLL_ORGANIZATION_SECRET`.
    pub org_secret: String,
    /// `OCPOLL_USER_SECRET`.
    pub user_secret: String,
    /// `--node-id` (leases are taken under `{node_id}-poll` and `{node_id}-notify`); empty: the default (host
    /// name and process id).
    pub node_id: String,
    /// More flags.
    pub args: Vec<String>,
    /// More environment variables, set last (e.g. `RUST_LOG`, else `OCPOLL_E2E_LOG` or `info,sqlx=warn`).
    pub env: Vec<(String, String)>,
    /// A file its stderr is also written to, line by line.
    pub log_file: Option<PathBuf>,
}

impl NodeConfig {
    /// A node on `store` with fresh credentials and the given flags.
    pub fn new(store: &TestStore, node_id: &str, args: Vec<String>) -> NodeConfig {
        let (database_url, master_key) = database_of(store);
        NodeConfig {
            database_url,
            master_key,
            org_secret: format!("org-{}", uuid::Uuid::new_v4().simple()),
            user_secret: format!("user-{}", uuid::Uuid::new_v4().simple()),
            node_id: node_id.to_string(),
            args,
            env: Vec::new(),
            log_file: None,
        }
    }

    /// `User <u>, Organization <o>`.
    pub fn authorization(&self) -> String {
        format!("User {}, Organization {}", self.user_secret, self.org_secret)
    }
}

/// A running `ocpoll serve`.
pub struct Node {
    child: Child,
    /// `http://ADDR/elements/api-v2`.
    pub api: String,
    /// `http://ADDR`.
    pub root: String,
    /// Its `--node-id`.
    pub node_id: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts `ocpoll serve` and waits until it prints where its API listens.
    pub async fn start(config: &NodeConfig) -> Result<Node> {
        let bin = ocpoll_binary();
        let mut child = Command::new(&bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--database-url", &config.database_url])
            .args(if config.node_id.is_empty() { vec![] } else { vec!["--node-id", config.node_id.as_str()] })
            .args(&config.args)
            .env("OCPOLL_MASTER_KEY", &config.master_key)
            .env("OCPOLL_ORGANIZATION_SECRET", &config.org_secret)
            .env("OCPOLL_USER_SECRET", &config.user_secret)
            .env("RUST_LOG", std::env::var("OCPOLL_E2E_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()))
            .env_remove("OCPOLL_LISTEN")
            .env_remove("OCPOLL_DATABASE_URL")
            .env_remove("OCPOLL_MASTER_KEY_FILE")
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let mut file = match &config.log_file {
            Some(path) => Some(std::io::LineWriter::new(
                std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
            )),
            None => None,
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = oneshot::channel::<String>();
        let lines = log.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(rest) = line.strip_prefix("ocpoll: API at ")
                    && let Some(tx) = tx.take()
                {
                    // "ocpoll: API at URL, console at URL (database ...)"
                    let api = rest.split_whitespace().next().unwrap_or_default().trim_end_matches(',');
                    let _ = tx.send(api.to_string());
                }
                if let Some(f) = file.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let api = match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(api)) => api,
            _ => {
                let _ = child.start_kill();
                let log = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                bail!("ocpoll serve did not print its address; its log:\n{log}");
            }
        };
        let root = api.strip_suffix("/elements/api-v2").unwrap_or(&api).to_string();
        Ok(Node { child, api, root, node_id: config.node_id.clone(), log })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `kill -9`, and waits for the process to be gone.
    pub async fn kill9(mut self) -> Vec<String> {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.log()
    }

    /// SIGTERM, and waits (at most `within`) for a clean exit; returns whether it exited with 0.
    pub async fn terminate(mut self, within: Duration) -> bool {
        let Some(pid) = self.child.id() else { return false };
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }

    /// Its stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- log of ocpoll node {} ----\n{}", self.node_id, self.log().join("\n"));
        }
        let _ = self.child.start_kill();
    }
}

/// A connection to the PostgreSQL schema of `store`.
pub async fn pg_connection(store: &TestStore) -> Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let o = store.options();
    let mut c = sqlx::PgConnection::connect(&o.url).await?;
    if let Some(schema) = &o.schema {
        sqlx::query(&format!("SET search_path TO \"{schema}\"")).execute(&mut c).await?;
    }
    Ok(c)
}

/// The poll job leases held right now (PostgreSQL), as `(instance, resource, owner)`.
pub async fn poll_lease_owners(c: &mut sqlx::PgConnection) -> Result<Vec<(i64, String, String)>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT instance_id, resource, lease_owner FROM poll_jobs WHERE lease_owner IS NOT NULL \
         AND lease_expires_at > (EXTRACT(EPOCH FROM clock_timestamp()) * 1e9)::BIGINT",
    )
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<String, _>(2)?))).collect()
}

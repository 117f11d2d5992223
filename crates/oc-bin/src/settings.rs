//! Settings of `ocpoll serve` and `ocpoll demo`: every flag has an environment variable of the same name with the
//! `OCPOLL_` prefix (`--listen` ↔ `OCPOLL_LISTEN`).

use std::net::SocketAddr;
use std::path::PathBuf;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the state lives.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database: `sqlite://PATH` (created if missing) or `postgres://...` (several nodes).
    #[arg(long, env = "OCPOLL_DATABASE_URL", default_value = "sqlite://ocpoll.db")]
    pub database_url: String,

    /// File holding the 256-bit master key that encrypts secrets at rest (64 hex characters, base64, or 32 raw
    /// bytes). Without it (and without OCPOLL_MASTER_KEY), SQLite deployments get a key file created beside the
    /// database; PostgreSQL needs one.
    #[arg(long, env = "OCPOLL_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

/// Settings of the service.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeSettings {
    /// Address of the HTTP API.
    #[arg(long, env = "OCPOLL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The database and the key of its secrets.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Base URL of the Sage Accounting API.
    #[arg(long, env = "OCPOLL_SAGE_API_URL", default_value = "https://api.accounting.sage.com/v3.1")]
    pub sage_api_url: String,

    /// Sage's OAuth authorize URL.
    #[arg(
        long,
        env = "OCPOLL_SAGE_AUTHORIZE_URL",
        default_value = "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1"
    )]
    pub sage_authorize_url: String,

    /// Sage's OAuth token URL.
    #[arg(long, env = "OCPOLL_SAGE_TOKEN_URL", default_value = "https://oauth.accounting.sage.com/token")]
    pub sage_token_url: String,

    /// Allow callback URLs that resolve to loopback, private, link-local or unique-local addresses.
    #[arg(long, env = "OCPOLL_ALLOW_PRIVATE_CALLBACKS")]
    pub allow_private_callbacks: bool,

    /// Log line format.
    #[arg(long, env = "OCPOLL_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Name of this node in leases (default: host name and process id).
    #[arg(long, env = "OCPOLL_NODE_ID")]
    pub node_id: Option<String>,

    /// Most polls running at once on this node.
    #[arg(long, env = "OCPOLL_MAX_CONCURRENT_POLLS", default_value_t = 32)]
    pub max_concurrent_polls: usize,

    /// Lookback window of change detection in seconds (the default `L`; a larger `pollDelay` wins).
    #[arg(long, env = "OCPOLL_LOOKBACK_SECONDS", default_value_t = 60)]
    pub lookback_seconds: u64,

    /// Requests per minute per Sage business (Sage v3.0 documented 200).
    #[arg(long, env = "OCPOLL_SAGE_RATE_LIMIT", default_value_t = 200)]
    pub sage_rate_limit: u32,

    /// Days delivered notifications and their attempts are kept.
    #[arg(long, env = "OCPOLL_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,

    /// Seconds in-flight work may take to finish on SIGTERM/SIGINT before it is abandoned.
    #[arg(long, env = "OCPOLL_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    /// Organization secret to bootstrap (with OCPOLL_USER_SECRET): the organization and user are created unless
    /// they exist.
    #[arg(long, env = "OCPOLL_ORGANIZATION_SECRET", hide_env_values = true)]
    pub organization_secret: Option<String>,

    /// User secret to bootstrap (with OCPOLL_ORGANIZATION_SECRET).
    #[arg(long, env = "OCPOLL_USER_SECRET", hide_env_values = true)]
    pub user_secret: Option<String>,
}

/// Parses settings from arguments (and `OCPOLL_` variables), as `ocpoll serve ARGS` would: for tests and tools.
#[derive(Debug, clap::Parser)]
struct SettingsOnly {
    #[command(flatten)]
    settings: ServeSettings,
}

impl ServeSettings {
    /// The settings `ocpoll serve ARGS` would run with.
    pub fn from_args<I, T>(args: I) -> Result<ServeSettings, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let all = std::iter::once(std::ffi::OsString::from("ocpoll-serve")).chain(args.into_iter().map(Into::into));
        SettingsOnly::try_parse_from(all).map(|s| s.settings)
    }
}

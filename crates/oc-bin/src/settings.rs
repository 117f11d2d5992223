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

    /// OTLP/HTTP endpoint that traces are exported to (protobuf), e.g. `http://127.0.0.1:4318`: a base URL gets
    /// `/v1/traces`, a URL with a path is used as it is. Without it, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` when set; else no traces. A trace is one poll (its Sage requests, its
    /// commit) and the delivery attempts of what it found.
    #[arg(long, env = "OCPOLL_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<String>,

    /// Share of polls traced when traces are exported, 0 to 1 (a delivery is traced when its poll was).
    #[arg(long, env = "OCPOLL_TRACE_SAMPLE_RATIO", default_value_t = 1.0, value_parser = parse_ratio)]
    pub trace_sample_ratio: f64,

    /// Name of this node in leases (default: host name and process id). Give each node of a cluster its own,
    /// stable name: a node that starts under a name takes back at once the leases a previous run under that name
    /// left (after a crash), instead of waiting for them to lapse. Without it, on SQLite, the leases of
    /// processes of this host that no longer run are taken back.
    #[arg(long, env = "OCPOLL_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,

    /// Seconds a lease on a poll job or a notification lasts unless renewed (30 to 86400). A dead node's work is
    /// normally taken over sooner, once its heartbeat has been silent for `--node-timeout-seconds`; the lease time
    /// is the backstop when no heartbeat can be read.
    #[arg(long, env = "OCPOLL_LEASE_TTL_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(30..=86_400))]
    pub lease_ttl_seconds: u64,

    /// Seconds without a heartbeat after which another node takes a node's leases over (10 to 3600). Every node
    /// beats every sixth of this; the silence is measured on the watching node's own clock.
    #[arg(long, env = "OCPOLL_NODE_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(10..=3600))]
    pub node_timeout_seconds: u64,

    /// Seconds one delivery attempt may take, from connecting to the end of the answer (1 to 120).
    #[arg(long, env = "OCPOLL_DELIVERY_TIMEOUT_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub delivery_timeout_seconds: u64,

    /// Retries of a failed notification before it is `failed` (0 to 12). Retry x comes about 4^x seconds after
    /// the first failure (±10 %), as in Open Connectors: the last of the default 9 retries about 72.8 hours after.
    #[arg(long, env = "OCPOLL_DELIVERY_RETRIES", default_value_t = 9,
          value_parser = clap::value_parser!(u32).range(0..=12))]
    pub delivery_retries: u32,

    /// Most polls running at once on this node. The limit itself adapts below it: it starts at 32 (or this, when
    /// lower), takes one more slot per round of polls while more polls are due than there are slots, and a
    /// quarter less (at most once a second, down to 4) when Sage or the database says it is overloaded or polls
    /// start queueing.
    #[arg(long, env = "OCPOLL_MAX_CONCURRENT_POLLS", default_value_t = 256,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..=100_000), |v| v as usize))]
    pub max_concurrent_polls: usize,

    /// Adaptive polling for the instances that do not say (`event.poller.adaptive`): spare request budget of
    /// each business polls the resources with recent changes (and those that change at this hour of the day)
    /// more often than their interval, down to --adaptive-floor-seconds; the interval stays the longest a change
    /// waits for its poll. Off: every resource is polled once per interval, as Open Connectors does.
    #[arg(long, env = "OCPOLL_ADAPTIVE_POLLING")]
    pub adaptive_polling: bool,

    /// The shortest time between two polls of a resource under adaptive polling, in seconds (1 to 3600).
    #[arg(long, env = "OCPOLL_ADAPTIVE_FLOOR_SECONDS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub adaptive_floor_seconds: u64,

    /// Lookback window of change detection in seconds (the default `L`; a larger `pollDelay` wins).
    #[arg(long, env = "OCPOLL_LOOKBACK_SECONDS", default_value_t = 60)]
    pub lookback_seconds: u64,

    /// Requests per minute per Sage business (Sage v3.0 documented 200).
    #[arg(long, env = "OCPOLL_SAGE_RATE_LIMIT", default_value_t = 200)]
    pub sage_rate_limit: u32,

    /// Percent of each Sage business's budget (--sage-rate-limit) that ocpoll uses at most, polls and hub calls
    /// together, over every instance and resource of the business and over every node (1 to 100): the
    /// business's other apps share Sage's budget. With several nodes on PostgreSQL each node uses its part (the
    /// share divided by the nodes listed at its last heartbeat).
    #[arg(long, env = "OCPOLL_SAGE_BUDGET_SHARE", default_value_t = oc_sageone::DEFAULT_BUDGET_SHARE_PERCENT,
          allow_negative_numbers = true, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub sage_budget_share: u8,

    /// Percent of ocpoll's share of each Sage business's budget (--sage-budget-share) that polls leave to hub calls, so that a
    /// person's request finds a slot at once (0 to 90). Hub calls also go before waiting polls, and wait at most
    /// about 2 s for a slot before answering 429 with Retry-After.
    #[arg(long, env = "OCPOLL_SAGE_INTERACTIVE_RESERVE", default_value_t = 10, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u8).range(0..=90))]
    pub sage_interactive_reserve: u8,

    /// Seconds an API call that waits for Sage (the hub passthrough: lists and reads by id) waits at most before
    /// answering 504 `provider_timeout` (1 to 300; less than --http-request-timeout-seconds). Sage's own request
    /// timeout (30 s a try) and retries go on in the background, so that a token refresh under way is never lost.
    #[arg(long, env = "OCPOLL_SAGE_CALL_DEADLINE_SECONDS", default_value_t = 25,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub sage_call_deadline_seconds: u64,

    /// Seconds a client has to send the whole head of a request (request line and headers) once it started it,
    /// and to start one on a new connection (1 to 300). A slower client's connection is closed.
    #[arg(long, env = "OCPOLL_HTTP_HEADER_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub http_header_timeout_seconds: u64,

    /// Seconds a keep-alive connection may stay idle between two requests before it is closed (1 to 3600).
    #[arg(long, env = "OCPOLL_HTTP_IDLE_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_idle_timeout_seconds: u64,

    /// Seconds a request may take from its head to its answer, body included (1 to 3600), else 408
    /// `request_timeout`. A change-feed read gets its `wait` (up to 60 s) on top, and a call that exchanges an
    /// OAuth code with Sage (creating or re-authorizing an instance) Sage's request timeout (30 s).
    #[arg(long, env = "OCPOLL_HTTP_REQUEST_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_request_timeout_seconds: u64,

    /// Most HTTP connections open at once (1 to 100000); further clients wait in the listen backlog until one
    /// closes.
    #[arg(long, env = "OCPOLL_HTTP_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub http_max_connections: u32,

    /// Where operational alerts go whose instance names no `event.notification.operational.callback.url`
    /// (`instance.invalid`, `notifications.disabled`, `notification.failed`, `polling.failing`): an http(s) URL,
    /// POSTed to signed and retried like notifications. It is the operator's, so it may be on a private network.
    #[arg(long, env = "OCPOLL_OPERATIONAL_WEBHOOK_URL", value_parser = parse_webhook_url)]
    pub operational_webhook_url: Option<String>,

    /// The key signing the alerts sent to --operational-webhook-url, used like `event.notification.signature.key`
    /// (its bytes are the HMAC key; the Standard Webhooks secret is `whsec_` + base64 of it).
    #[arg(long, env = "OCPOLL_OPERATIONAL_WEBHOOK_SECRET", hide_env_values = true)]
    pub operational_webhook_secret: Option<String>,

    /// Minutes the polls of a resource may fail without a success before a `polling.failing` alert is raised
    /// (1 to 10080; once per streak of failures).
    #[arg(long, env = "OCPOLL_POLLING_FAILING_ALERT_MINUTES", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub polling_failing_alert_minutes: u32,

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

    /// The console's settings.
    #[command(flatten)]
    pub console: ConsoleSettings,
}

/// Settings of the web console (`/ui/`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleSettings {
    /// The URL users reach this server at (scheme, host, port, optional path prefix): the console's OAuth redirect
    /// URI is `{public URL}/ui/oauth/callback`, and its cookie is `Secure` when this is https. Default:
    /// `http://{--listen}` (with the port really bound when --listen asks for port 0).
    #[arg(long, env = "OCPOLL_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// Client id of a server-wide Sage app (with --sage-client-secret): the console's form may then leave Client
    /// ID and Client Secret empty, and the instance gets these.
    #[arg(long, env = "OCPOLL_SAGE_CLIENT_ID", value_parser = parse_not_blank)]
    pub sage_client_id: Option<String>,

    /// Client secret of the server-wide Sage app (with --sage-client-id).
    #[arg(long, env = "OCPOLL_SAGE_CLIENT_SECRET", hide_env_values = true, value_parser = parse_not_blank)]
    pub sage_client_secret: Option<String>,

    /// Hours a console sign-in lasts at most (1 to 168); signing out ends it before.
    #[arg(long, env = "OCPOLL_CONSOLE_SESSION_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=168))]
    pub console_session_hours: u32,
}

impl ConsoleSettings {
    /// The server-wide Sage app, when both halves are given; an error naming the flags when only one is.
    pub fn default_app(&self) -> Result<Option<(String, String)>, String> {
        match (&self.sage_client_id, &self.sage_client_secret) {
            (Some(id), Some(secret)) => Ok(Some((id.clone(), secret.clone()))),
            (None, None) => Ok(None),
            (Some(_), None) => Err("--sage-client-id needs --sage-client-secret (OCPOLL_SAGE_CLIENT_SECRET)".into()),
            (None, Some(_)) => Err("--sage-client-secret needs --sage-client-id (OCPOLL_SAGE_CLIENT_ID)".into()),
        }
    }
}

/// A public URL: absolute `http` or `https`, with a host, no query or fragment; kept without a trailing slash.
fn parse_public_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s.trim()).map_err(|e| format!("{s:?} is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?}: the public URL must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?}: the public URL needs a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?}: the public URL may not have a query or a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{s:?}: the public URL may not carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn parse_not_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() { Err("must not be empty".into()) } else { Ok(s.trim().to_string()) }
}

/// A node id: 1 to 100 characters, none of them `:` or white space (leases are named `{node}-poll`,
/// `{node}-notify` and `{node}:...`).
fn parse_node_id(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 100 {
        return Err("a node id has 1 to 100 characters".into());
    }
    if let Some(c) = s.chars().find(|c| *c == ':' || c.is_whitespace() || c.is_control()) {
        return Err(format!("a node id may not contain {c:?}"));
    }
    Ok(s.to_string())
}

/// An absolute http(s) URL.
fn parse_webhook_url(s: &str) -> Result<String, String> {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(s.to_string()),
        Ok(u) => Err(format!("expected an absolute http(s) URL, found scheme {:?}", u.scheme())),
        Err(e) => Err(format!("expected an absolute http(s) URL: {e}")),
    }
}

/// Parses settings from arguments (and `OCPOLL_` variables), as `ocpoll serve ARGS` would: for tests and tools.
#[derive(Debug, clap::Parser)]
struct SettingsOnly {
    #[command(flatten)]
    settings: ServeSettings,
}

impl ServeSettings {
    /// `--polling-failing-alert-minutes` as a duration.
    pub fn polling_failing_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.polling_failing_alert_minutes) * 60)
    }

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

fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    crate::traces::traces_url(text).map_err(|e| format!("{e:#}"))
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a ratio from 0 to 1 (e.g. 0.1 traces one poll in ten)")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_setting_is_documented_with_its_variable() {
        let doc = include_str!("../../../docs/configuration.md");
        let command = SettingsOnly::command();
        let mut seen = 0;
        for arg in command.get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else { continue };
            let row = format!("| `--{long}` | `{}` |", env.to_string_lossy());
            assert!(doc.contains(&row), "docs/configuration.md has no row `{row}`");
            seen += 1;
        }
        assert!(seen >= 20, "{seen} settings");
    }

    #[test]
    fn the_operational_webhook_is_an_http_url() {
        let url = |args: &[&str]| ServeSettings::from_args(args).map(|s| s.operational_webhook_url);
        assert_eq!(url(&[]).unwrap(), None);
        assert_eq!(
            url(&["--operational-webhook-url", "https://ops.example/a"]).unwrap().as_deref(),
            Some("https://ops.example/a")
        );
        for bad in ["ftp://x", "not a url", "/relative"] {
            let err = url(&["--operational-webhook-url", bad]).expect_err(bad).to_string();
            assert!(err.contains("--operational-webhook-url") && err.contains("http(s) URL"), "{bad}: {err}");
        }
        let minutes = |args: &[&str]| ServeSettings::from_args(args).map(|s| s.polling_failing_alert_minutes);
        assert_eq!(minutes(&[]).unwrap(), 15);
        assert!(minutes(&["--polling-failing-alert-minutes", "0"]).is_err());
    }

    #[test]
    fn the_interactive_reserve_is_a_percent_up_to_90() {
        let reserve = |args: &[&str]| ServeSettings::from_args(args).map(|s| s.sage_interactive_reserve);
        assert_eq!(reserve(&[]).unwrap(), 10);
        assert_eq!(reserve(&["--sage-interactive-reserve", "0"]).unwrap(), 0);
        assert_eq!(reserve(&["--sage-interactive-reserve", "90"]).unwrap(), 90);
        for bad in ["91", "-1", "ten", "12.5"] {
            let err = reserve(&["--sage-interactive-reserve", bad]).expect_err(bad).to_string();
            assert!(err.contains("--sage-interactive-reserve"), "{bad}: {err}");
        }
    }
}

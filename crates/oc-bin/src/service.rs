//! `ocpoll serve`: wires the concrete store, provider, engine and dispatcher behind the ports, and runs the HTTP
//! API, the poll scheduler, the delivery dispatcher, the alert dispatcher and the retention pruner until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use oc_model::ports::{
    AccountStore, Clock, MaintenanceStore, NewOrganization, Providers, SystemClock, Telemetry, node_of_holder,
};
use oc_model::secret::redact_url;
use oc_notify::{
    AlertDispatcher, AlertDispatcherConfig, DeliveryPorts, Dispatcher, DispatcherConfig, HttpNotifier,
    HttpNotifierConfig, RetryPolicy, ServerWebhook,
};
use oc_poller::EngineConfig;
use oc_poller::{PollPorts, Scheduler, SchedulerConfig};
use oc_sageone::{InteractiveLane, RateLimit, SageConfig, SageProvider};
use oc_store::{Backend, KeySource, MasterKey, NodeWatch, SqlStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::limits::ApiLimits;
use crate::api::page_token::PageTokens;
use crate::api::{self, AppState, Wakers};
use crate::console::{Console, ConsoleConfig};
use crate::http::ConnectionLimits;
use crate::keys::ServerKeys;
use crate::metrics::{Metrics, ScrapeHook};
use crate::settings::{DatabaseArgs, LogFormat, ServeSettings};
use crate::telemetry;
use crate::traces::{TraceSettings, Traces};

/// Sets up logging once: human-readable or JSON lines, `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    init_logging_with(format, DEFAULT_LOG_FILTER);
}

/// The log filter where `RUST_LOG` is not set.
const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn";

/// Sets up logging once with `default_filter` where `RUST_LOG` is not set.
pub fn init_logging_with(format: LogFormat, default_filter: &str) {
    init_subscriber(format, default_filter, None);
}

/// Logging as [`init_logging`], and OpenTelemetry traces when an OTLP endpoint is configured (`--otlp-endpoint`
/// or the `OTEL_EXPORTER_OTLP_*` variables): the exporter to shut down at the end, if any.
pub fn init_logging_and_traces(settings: &ServeSettings) -> Result<Option<Traces>> {
    let Some(trace_settings) = TraceSettings::from_flag_or_env(
        settings.otlp_endpoint.as_deref(),
        settings.trace_sample_ratio,
        &node_id(settings),
    )?
    else {
        init_logging(settings.log_format);
        return Ok(None);
    };
    let (traces, layer) = Traces::start(&trace_settings)?;
    init_subscriber(settings.log_format, DEFAULT_LOG_FILTER, Some(layer));
    tracing::info!(
        endpoint = %trace_settings.endpoint,
        sample_ratio = trace_settings.sample_ratio,
        "exporting traces over OTLP/HTTP"
    );
    Ok(Some(traces))
}

/// Installs the subscriber once: log lines on stderr (events only, filtered by `RUST_LOG` or `default_filter`;
/// spans never change a line), and the traces layer when given.
fn init_subscriber(format: LogFormat, default_filter: &str, traces: Option<crate::traces::TracesLayer>) {
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt};

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let lines = filter.and(filter_fn(|meta| !meta.is_span()));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(traces);
    let _ = match format {
        LogFormat::Text => {
            registry.with(fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_filter(lines)).try_init()
        }
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).with_filter(lines))
            .try_init(),
    };
}

/// The name of this node in leases: the setting, else host name and process id.
pub fn node_id(settings: &ServeSettings) -> String {
    settings.node_id.clone().unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id()))
}

/// The host name of this machine, as the default node id uses it.
fn host_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    if host.is_empty() { "ocpoll".to_string() } else { host }
}

/// The nodes whose leases this process may take back at start, among the nodes holding leases now:
/// - with `--node-id`: a previous run under that name (the name is this node's; whoever held it is gone);
/// - without, on SQLite: default-named nodes (`{host}-{pid}`) of this host whose process no longer runs.
///
/// On PostgreSQL without `--node-id` nothing is taken back at start (another machine may share the host name);
/// the other nodes' [`Heartbeat`]s take a dead node's leases over once it has been silent for
/// `--node-timeout-seconds`, and a lease lapses after `--lease-ttl-seconds` in any case.
pub fn gone_nodes(holders: &[String], settings: &ServeSettings, backend: Backend) -> Vec<String> {
    let mut nodes: Vec<String> = holders.iter().filter_map(|h| node_of_holder(h)).map(String::from).collect();
    nodes.sort();
    nodes.dedup();
    match (&settings.node_id, backend) {
        (Some(me), _) => nodes.into_iter().filter(|n| n == me).collect(),
        (None, Backend::Sqlite) if std::path::Path::new("/proc/self").exists() => {
            let prefix = format!("{}-", host_name());
            nodes
                .into_iter()
                .filter(|n| {
                    n.strip_prefix(&prefix).and_then(|pid| pid.parse::<u32>().ok()).is_some_and(|pid| {
                        pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                    })
                })
                .collect()
        }
        (None, _) => Vec::new(),
    }
}

/// Takes back the leases of nodes known to be gone ([`gone_nodes`]), so that the work of a crashed run resumes at
/// once rather than after the lease time.
pub async fn take_back_leases(store: &SqlStore, settings: &ServeSettings, clock: &dyn Clock) -> Result<()> {
    let backend = store.backend();
    let store: &dyn MaintenanceStore = store;
    let now = clock.now();
    let holders = store.lease_holders(now).await.context("reading the lease holders")?;
    for node in gone_nodes(&holders, settings, backend) {
        let released = store.release_leases_of(&node, now).await.context("taking back leases")?;
        if released.total() > 0 {
            tracing::info!(
                node = %node,
                polls = released.polls,
                deliveries = released.deliveries,
                refresh_locks = released.refresh_locks,
                "took back the leases of a previous run that did not stop cleanly"
            );
        }
    }
    Ok(())
}

/// This node's heartbeat: beats every sixth of the node timeout and takes over the leases of nodes found silent
/// for the timeout ([`NodeWatch`]). [`Heartbeat::stop`] ends it and takes the node off the list.
pub struct Heartbeat {
    task: JoinHandle<NodeWatch>,
    stop: watch::Sender<bool>,
    stats: Arc<HeartbeatStats>,
}

/// What the heartbeat saw, for the metrics.
#[derive(Debug, Default)]
struct HeartbeatStats {
    nodes: std::sync::atomic::AtomicUsize,
    takeovers: std::sync::atomic::AtomicU64,
}

impl Heartbeat {
    /// Beats once at once (the node is listed before it takes any work), then every `timeout / 6`; after each
    /// beat, tells `on_nodes` how many nodes are listed.
    pub fn spawn(
        store: Arc<dyn MaintenanceStore>,
        node: String,
        timeout: Duration,
        clock: Arc<dyn Clock>,
        on_nodes: Vec<NodesHook>,
    ) -> Heartbeat {
        let (stop, mut stopping) = watch::channel(false);
        let stats = Arc::new(HeartbeatStats::default());
        let seen = stats.clone();
        let task = tokio::spawn(async move {
            let mut watch = NodeWatch::new(node, timeout);
            let period = (timeout / 6).max(Duration::from_secs(1));
            let mut failing = false;
            loop {
                match watch.beat(store.as_ref(), clock.now()).await {
                    Ok(taken) => {
                        if failing {
                            tracing::info!("heartbeat recorded again");
                        }
                        failing = false;
                        seen.nodes.store(watch.listed(), Ordering::Relaxed);
                        for hook in &on_nodes {
                            hook(watch.listed().max(1));
                        }
                        seen.takeovers.fetch_add(taken.len() as u64, Ordering::Relaxed);
                        for t in taken {
                            tracing::warn!(
                                node = %t.node,
                                last_heartbeat = %t.last_heartbeat.to_rfc3339(),
                                polls = t.released.polls,
                                deliveries = t.released.deliveries,
                                refresh_locks = t.released.refresh_locks,
                                "a node fell silent: took over its leases"
                            );
                        }
                    }
                    Err(error) if !failing => {
                        failing = true;
                        tracing::error!(error = %error, "recording the heartbeat failed; retrying");
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    _ = stopping.wait_for(|stop| *stop) => break,
                    () = tokio::time::sleep(period) => {}
                }
            }
            watch
        });
        Heartbeat { task, stop, stats }
    }

    /// Reports the nodes listed and the take-overs in `ocpoll_nodes` and `ocpoll_node_takeovers_total`.
    pub fn scrape_hook(&self) -> crate::metrics::ScrapeHook {
        let stats = self.stats.clone();
        Arc::new(move |metrics: &Metrics| {
            metrics.gauge("ocpoll_nodes", Vec::new(), stats.nodes.load(Ordering::Relaxed) as f64);
            metrics.set_counter(
                "ocpoll_node_takeovers_total",
                Vec::new(),
                stats.takeovers.load(Ordering::Relaxed) as f64,
            );
        })
    }

    /// Stops beating and leaves the list of nodes (a clean stop: nobody needs to take anything over).
    pub async fn stop(self, store: &dyn MaintenanceStore) {
        let _ = self.stop.send(true);
        if let Ok(watch) = self.task.await
            && let Err(error) = watch.leave(store).await
        {
            tracing::warn!(error = %error, "could not take this node off the list of nodes");
        }
    }
}

/// Opens the store of the settings: resolves the master key, connects, applies the migrations.
pub async fn open_store(settings: &DatabaseArgs, clock: Arc<dyn Clock>) -> Result<SqlStore> {
    Ok(open_store_and_keys(settings, clock, oc_store::DEFAULT_POLLING_FAILING_AFTER).await?.0)
}

/// [`open_store`], and the server's keys derived from the same master key (what [`start`] needs).
/// `polling_failing_after` is when a failing resource raises its `polling.failing` alert.
pub async fn open_store_and_keys(
    settings: &DatabaseArgs,
    clock: Arc<dyn Clock>,
    polling_failing_after: Duration,
) -> Result<(SqlStore, ServerKeys)> {
    let env_key = std::env::var(oc_store::MASTER_KEY_ENV).ok();
    let (key, source) =
        MasterKey::resolve(&settings.database_url, settings.master_key_file.as_deref(), env_key.as_deref())
            .context("loading the master key")?;
    match &source {
        KeySource::Created(path) => eprintln!(
            "ocpoll: created a master key for the secrets at rest at {} (mode 0600) — back it up; without it the stored tokens are lost",
            path.display()
        ),
        KeySource::BesideDatabase(path) => {
            tracing::info!(path = %path.display(), "master key read from beside the database")
        }
        KeySource::File(path) => tracing::info!(path = %path.display(), "master key read from --master-key-file"),
        KeySource::Env => tracing::info!("master key read from OCPOLL_MASTER_KEY"),
    }
    let keys = ServerKeys::derive(&key);
    let mut options = oc_store::StoreOptions::new(settings.database_url.clone(), key);
    options.clock = clock;
    options.polling_failing_after = polling_failing_after;
    let store = oc_store::connect_with(options)
        .await
        .with_context(|| format!("opening the database {}", redact_url(&settings.database_url)))?;
    Ok((store, keys))
}

/// Where the adaptive limit on polls in flight starts (it adapts up to `--max-concurrent-polls`).
const INITIAL_CONCURRENT_POLLS: usize = 32;

/// The Sage provider of the settings.
pub fn sage_provider(settings: &ServeSettings, node: &str) -> Result<SageProvider> {
    let config = SageConfig {
        api_url: settings.sage_api_url.trim_end_matches('/').to_string(),
        authorize_url: settings.sage_authorize_url.clone(),
        token_url: settings.sage_token_url.clone(),
        rate_limit: RateLimit { requests: settings.sage_rate_limit.max(1), per: Duration::from_secs(60) },
        budget_share_percent: settings.sage_budget_share,
        interactive: InteractiveLane {
            reserve_percent: settings.sage_interactive_reserve,
            ..InteractiveLane::default()
        },
        node_id: node.to_string(),
        ..SageConfig::default()
    };
    SageProvider::new(config).map_err(|e| anyhow!("configuring the Sage provider: {e}"))
}

/// Creates the organization and user of `OCPOLL_ORGANIZATION_SECRET` and `OCPOLL_USER_SECRET` unless they exist.
pub async fn bootstrap(store: &dyn AccountStore, settings: &ServeSettings, clock: &dyn Clock) -> Result<()> {
    match (&settings.organization_secret, &settings.user_secret) {
        (Some(org), Some(user)) => {
            let (o, p) = store
                .ensure_organization(&NewOrganization {
                    name: "default".into(),
                    org_secret: org.clone(),
                    user_secret: user.clone(),
                    now: clock.now(),
                })
                .await
                .context("bootstrapping the organization of OCPOLL_ORGANIZATION_SECRET")?;
            tracing::info!(organization = o.id, user = p.user_id, "bootstrap organization and user in place");
            Ok(())
        }
        (None, None) => Ok(()),
        _ => Err(anyhow!("OCPOLL_ORGANIZATION_SECRET and OCPOLL_USER_SECRET must be set together")),
    }
}

/// A running service: its address and how to stop it.
pub struct Running {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The shared state of the API.
    pub state: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
    heartbeat: Heartbeat,
}

impl Running {
    /// Stops accepting requests and work, lets in-flight work finish within the grace period, releases leases,
    /// and leaves the list of nodes.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let all = futures_join(self.tasks);
        if tokio::time::timeout(self.grace + Duration::from_secs(2), all).await.is_err() {
            tracing::warn!("shutdown grace period over; abandoning the rest");
        }
        self.heartbeat.stop(self.state.maintenance.as_ref()).await;
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The providers a server serves, and how their own counters reach `/metrics`.
#[derive(Default)]
pub struct ProviderSet {
    /// The registry, by element key.
    pub providers: Providers,
    /// Hooks copying the providers' own counters into the metrics at every scrape.
    pub scrape_hooks: Vec<ScrapeHook>,
    /// Hooks told the number of nodes at every heartbeat (a provider divides each account's share of its
    /// budget by it).
    pub node_hooks: Vec<NodesHook>,
}

/// Told the nodes listed in the database (this one included) after each heartbeat.
pub type NodesHook = Arc<dyn Fn(usize) + Send + Sync>;

/// The providers `ocpoll serve` serves: Sage, configured by the settings (its counters in `/metrics`).
pub fn providers(settings: &ServeSettings) -> Result<ProviderSet> {
    let sage = sage_provider(settings, &node_id(settings))?;
    let providers = Providers::new().with(Arc::new(sage.clone()));
    let nodes = sage.clone();
    Ok(ProviderSet {
        providers,
        scrape_hooks: vec![telemetry::sage_scrape_hook(sage)],
        node_hooks: vec![Arc::new(move |n| nodes.set_nodes(n))],
    })
}

/// Starts everything on `store` with `clock`, serving the providers of the settings; returns once the API
/// listens. `keys` are derived from the store's master key ([`open_store_and_keys`]).
pub async fn start(
    settings: &ServeSettings,
    store: Arc<SqlStore>,
    keys: &ServerKeys,
    clock: Arc<dyn Clock>,
) -> Result<Running> {
    start_with(settings, store, keys, clock, providers(settings)?).await
}

/// [`start`] with the providers given: the wiring of `ocpoll serve`, for a build or a test that serves other
/// providers than the settings' (a provider is one crate implementing the port, registered here). Takes back
/// the leases of this node's crashed run, joins the list of nodes (its heartbeat), then starts the API, the
/// scheduler, the dispatcher and the pruner.
pub async fn start_with(
    settings: &ServeSettings,
    store: Arc<SqlStore>,
    keys: &ServerKeys,
    clock: Arc<dyn Clock>,
    mut set: ProviderSet,
) -> Result<Running> {
    take_back_leases(&store, settings, clock.as_ref()).await?;
    let timeout = Duration::from_secs(settings.node_timeout_seconds);
    let heartbeat =
        Heartbeat::spawn(store.clone(), node_id(settings), timeout, clock.clone(), std::mem::take(&mut set.node_hooks));
    match start_services(settings, store.clone(), keys, clock, set, heartbeat.scrape_hook()).await {
        Ok((addr, state, stop, tasks, grace)) => Ok(Running { addr, state, stop, tasks, grace, heartbeat }),
        Err(error) => {
            // it never took work: leave the list rather than be taken for a crashed node
            heartbeat.stop(store.as_ref()).await;
            Err(error)
        }
    }
}

/// What [`start_services`] hands to [`Running`].
type Started = (SocketAddr, AppState, watch::Sender<bool>, Vec<JoinHandle<()>>, Duration);

async fn start_services(
    settings: &ServeSettings,
    store: Arc<SqlStore>,
    keys: &ServerKeys,
    clock: Arc<dyn Clock>,
    set: ProviderSet,
    heartbeat_hook: ScrapeHook,
) -> Result<Started> {
    let ProviderSet { providers, mut scrape_hooks, .. } = set;
    scrape_hooks.push(heartbeat_hook);
    let node = node_id(settings);
    let metrics = Arc::new(Metrics::default());
    for hook in scrape_hooks {
        metrics.on_scrape(hook);
    }
    let telemetry: Arc<dyn Telemetry> = metrics.clone();

    let grace = Duration::from_secs(settings.shutdown_grace_seconds);
    let lease_ttl = Duration::from_secs(settings.lease_ttl_seconds);
    let attempt_time = Duration::from_secs(settings.delivery_timeout_seconds);
    if lease_ttl <= attempt_time + Duration::from_secs(5) {
        return Err(anyhow!(
            "--lease-ttl-seconds ({}) must be more than --delivery-timeout-seconds ({}) + 5, so that a lease never \
             lapses in the middle of a delivery attempt",
            settings.lease_ttl_seconds,
            settings.delivery_timeout_seconds
        ));
    }
    let retry = RetryPolicy::exponential(Duration::from_secs(4), 4, settings.delivery_retries, 0.1)
        .map_err(|e| anyhow!("--delivery-retries {}: {e}", settings.delivery_retries))?;
    let scheduler = Scheduler::new(
        PollPorts {
            store: store.clone(),
            vault: store.clone(),
            providers: providers.clone(),
            clock: clock.clone(),
            telemetry: telemetry.clone(),
        },
        EngineConfig {
            default_lookback: Duration::from_secs(settings.lookback_seconds),
            lease_ttl,
            ..EngineConfig::default()
        },
        SchedulerConfig {
            owner: format!("{node}-poll"),
            max_in_flight: settings.max_concurrent_polls.max(1),
            min_in_flight: 4,
            initial_in_flight: Some(INITIAL_CONCURRENT_POLLS.min(settings.max_concurrent_polls.max(1))),
            shutdown_deadline: grace,
            adaptive: settings.adaptive_polling,
            adaptive_floor: Duration::from_secs(settings.adaptive_floor_seconds),
            ..SchedulerConfig::default()
        },
    );
    let notifier: Arc<HttpNotifier> = Arc::new(
        HttpNotifier::new(
            HttpNotifierConfig {
                allow_private_callbacks: settings.allow_private_callbacks,
                timeout: attempt_time,
                ..HttpNotifierConfig::default()
            },
            clock.clone(),
        )
        .map_err(|e| anyhow!("configuring the notifier: {e}"))?,
    );
    let alerts = alert_dispatcher(settings, store.clone(), notifier.clone(), clock.clone(), &node, retry.clone())?;
    let dispatcher = Dispatcher::new(
        DeliveryPorts {
            store: store.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            providers: providers.clone(),
            telemetry,
        },
        DispatcherConfig {
            owner: format!("{node}-notify"),
            lease_ttl,
            // the notifier's timeout, and time to record the attempt
            attempt_time: attempt_time + Duration::from_secs(5),
            retry,
            ..DispatcherConfig::default()
        },
    )
    .map_err(|e| anyhow!("configuring the dispatcher: {e}"))?;

    let default_app = settings.console.default_app().map_err(|e| anyhow!(e))?;
    let (connection_limits, api_limits) = http_limits(settings)?;
    let listener =
        TcpListener::bind(settings.listen).await.with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState {
        store: store.clone(),
        vault: store.clone(),
        maintenance: store.clone(),
        providers,
        clock: clock.clone(),
        metrics,
        wakers: Wakers { dispatcher: dispatcher.waker(), alerts: alerts.waker() },
        page_tokens: PageTokens::new(keys.page_tokens().clone()),
        console: Console::new(store.clone(), console_config(settings, addr, default_app)),
        allow_private_callbacks: settings.allow_private_callbacks,
    };
    let (stop, rx) = watch::channel(false);

    let mut tasks = Vec::new();
    let app = api::app_with(state.clone(), api_limits);
    let http_stop = stopped(rx.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = crate::http::serve(listener, app, connection_limits, http_stop).await {
            tracing::error!(error = %e, "the HTTP server failed");
        }
    }));
    let sched_stop = stopped(rx.clone());
    tasks.push(tokio::spawn(async move { scheduler.run(sched_stop).await }));
    let disp_stop = stopped(rx.clone());
    tasks.push(tokio::spawn(async move { dispatcher.run(disp_stop).await }));
    let alerts_stop = stopped(rx.clone());
    tasks.push(tokio::spawn(async move { alerts.run(alerts_stop).await }));
    let pruner = oc_store::spawn_pruner(
        store.clone(),
        clock.clone(),
        Duration::from_secs(u64::from(settings.retention_days) * 86_400),
        Duration::from_secs(3600),
    );
    let mut prune_stop = rx.clone();
    tasks.push(tokio::spawn(async move {
        let _ = prune_stop.wait_for(|s| *s).await;
        pruner.abort();
    }));
    tracing::info!(%addr, node = %node, "ocpoll is serving");
    Ok((addr, state, stop, tasks, grace))
}

/// The limits of the HTTP server of the settings: the connections' (header and idle timeouts, the cap) and the
/// API's (request timeout, the deadline of calls waiting for Sage). A request timeout that would cut a hub call
/// before its own deadline is refused.
pub fn http_limits(settings: &ServeSettings) -> Result<(ConnectionLimits, ApiLimits)> {
    if settings.http_request_timeout_seconds <= settings.sage_call_deadline_seconds {
        return Err(anyhow!(
            "--http-request-timeout-seconds ({}) must be more than --sage-call-deadline-seconds ({}), so that a hub \
             call gets its own answer (504 provider_timeout) before the request times out",
            settings.http_request_timeout_seconds,
            settings.sage_call_deadline_seconds
        ));
    }
    let connections = ConnectionLimits {
        header_timeout: Duration::from_secs(settings.http_header_timeout_seconds),
        idle_timeout: Duration::from_secs(settings.http_idle_timeout_seconds),
        max_connections: settings.http_max_connections as usize,
    };
    let api = ApiLimits {
        request_timeout: Duration::from_secs(settings.http_request_timeout_seconds),
        provider_deadline: Duration::from_secs(settings.sage_call_deadline_seconds),
    };
    Ok((connections, api))
}

/// The dispatcher of operational alerts: to the instances' operational callbacks through the guarded notifier
/// of the callbacks, else to `--operational-webhook-url` through a notifier of its own (the operator's URL, private
/// addresses allowed).
fn alert_dispatcher(
    settings: &ServeSettings,
    store: Arc<SqlStore>,
    notifier: Arc<HttpNotifier>,
    clock: Arc<dyn Clock>,
    node: &str,
    retry: RetryPolicy,
) -> Result<AlertDispatcher<SqlStore>> {
    let server = match &settings.operational_webhook_url {
        None => None,
        Some(url) => {
            let config = HttpNotifierConfig {
                allow_private_callbacks: true,
                timeout: notifier.config().timeout,
                max_idle_per_host: 2,
            };
            let own = HttpNotifier::new(config, clock.clone()).map_err(|e| anyhow!("configuring the notifier: {e}"))?;
            Some(ServerWebhook {
                url: url.clone(),
                secret: settings.operational_webhook_secret.clone().map(oc_model::Secret::new),
                notifier: Arc::new(own),
            })
        }
    };
    let config = AlertDispatcherConfig { owner: format!("{node}-alerts"), retry, server, ..Default::default() };
    AlertDispatcher::new(store, notifier, clock, config).map_err(|e| anyhow!("configuring the alerts: {e}"))
}

/// The console's configuration: the public URL (`http://{bound address}` unless given), the server-wide Sage app,
/// the session lifetime.
fn console_config(settings: &ServeSettings, addr: SocketAddr, default_app: Option<(String, String)>) -> ConsoleConfig {
    let public_url = settings.console.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let mut config = ConsoleConfig::new(public_url);
    config.default_app = default_app.map(|(id, secret)| (id, oc_model::Secret::new(secret)));
    config.session_lifetime = chrono::Duration::hours(i64::from(settings.console.console_session_hours));
    config
}

/// `ocpoll serve`: runs until SIGTERM or SIGINT.
pub async fn serve(settings: ServeSettings) -> Result<()> {
    let traces = init_logging_and_traces(&settings)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, keys) =
        open_store_and_keys(&settings.database, clock.clone(), settings.polling_failing_after()).await?;
    let store = Arc::new(store);
    bootstrap(store.as_ref(), &settings, clock.as_ref()).await?;
    let running = start(&settings, store.clone(), &keys, clock).await?;
    eprintln!(
        "ocpoll: API at http://{}{}, console at {}/ui/ (database {})",
        running.addr,
        api::BASE,
        running.state.console.config.public_url,
        redact_url(&settings.database.database_url)
    );
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight work");
    running.shutdown().await;
    store.close().await;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> ServeSettings {
        ServeSettings::from_args(args).expect("settings")
    }

    fn holders(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_named_node_takes_back_only_its_own_leases() {
        let held = holders(&["a-poll", "a-notify", "a:12:0:ff", "b-poll", "ab-poll"]);
        let s = settings(&["--node-id", "a"]);
        assert_eq!(gone_nodes(&held, &s, Backend::Postgres), ["a"]);
        assert_eq!(gone_nodes(&held, &s, Backend::Sqlite), ["a"]);
        assert!(gone_nodes(&held, &settings(&["--node-id", "c"]), Backend::Postgres).is_empty());
    }

    #[test]
    fn unnamed_nodes_take_back_dead_processes_of_this_host_on_sqlite_only() {
        let host = host_name();
        let me = std::process::id();
        // a process id that does not run: above the kernel's pid_max (at most 2^22)
        let dead = 4_194_305;
        let held = holders(&[
            &format!("{host}-{me}-poll"),
            &format!("{host}-{dead}-poll"),
            &format!("{host}-{dead}:{dead}:0:aa"),
            &format!("{host}-1-poll"), // init runs
            &format!("other-host-{dead}-poll"),
            "named-node-poll",
        ]);
        let unnamed = settings(&[]);
        assert_eq!(gone_nodes(&held, &unnamed, Backend::Sqlite), [format!("{host}-{dead}")]);
        assert!(gone_nodes(&held, &unnamed, Backend::Postgres).is_empty());
    }

    #[test]
    fn lease_and_delivery_settings_are_checked() {
        for bad in [
            &["--lease-ttl-seconds", "5"][..],
            &["--delivery-retries", "13"],
            &["--delivery-timeout-seconds", "0"],
            &["--node-id", "a:b"],
            &["--node-id", ""],
            &["--node-id", "a b"],
            &["--node-timeout-seconds", "9"],
            &["--node-timeout-seconds", "3601"],
        ] {
            let err = ServeSettings::from_args(bad).expect_err("refused").to_string();
            assert!(err.contains(bad[0]), "{bad:?}: {err}");
        }
        let s = settings(&["--lease-ttl-seconds", "30", "--delivery-timeout-seconds", "20", "--delivery-retries", "0"]);
        assert_eq!((s.lease_ttl_seconds, s.delivery_timeout_seconds, s.delivery_retries), (30, 20, 0));
        assert_eq!(s.node_timeout_seconds, 30, "the default");
        assert_eq!(settings(&["--node-timeout-seconds", "10"]).node_timeout_seconds, 10);
    }
}

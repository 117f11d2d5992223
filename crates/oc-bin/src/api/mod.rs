//! The HTTP API: Open Connectors' `/elements/api-v2` (instances, configuration, events, hubs, OAuth URL) plus
//! `/healthz`, `/readyz` and `/metrics` at the root, and the web console under `/ui/` ([`crate::console`]).

mod alerts;
pub mod auth;
pub mod changes;
pub mod error;
mod events;
mod guard;
mod health;
mod hubs;
pub(crate) mod instances;
pub mod limits;
mod oauth;
pub mod openapi;
pub mod page_token;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use oc_model::ports::{
    AccountStore, ActivityStore, AlertStore, Clock, InstanceStore, MaintenanceStore, Provider, Providers, TokenVault,
};
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Base path of the Open Connectors API.
pub const BASE: &str = "/elements/api-v2";

/// What the API asks of the store: accounts, instances, and what happened (events, notifications, polls, alerts).
pub trait ApiStore: AccountStore + InstanceStore + ActivityStore + AlertStore {}

impl<T: AccountStore + InstanceStore + ActivityStore + AlertStore + ?Sized> ApiStore for T {}

/// Wake-ups for the background workers, so a change is acted on at once instead of at the next tick.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    /// The delivery dispatcher (redelivery asked, callback changed, instance switched on).
    pub dispatcher: Arc<Notify>,
    /// The alert dispatcher (redelivery of an alert asked).
    pub alerts: Arc<Notify>,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Accounts, instances and their activity.
    pub store: Arc<dyn ApiStore>,
    /// The instances' tokens, for the hub passthrough's provider sessions.
    pub vault: Arc<dyn TokenVault>,
    /// The outbox gauges of `/metrics` and the readiness probe.
    pub maintenance: Arc<dyn MaintenanceStore>,
    /// Providers by element key.
    pub providers: Providers,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Counters and gauges.
    pub metrics: Arc<Metrics>,
    /// Wake-ups of the background workers.
    pub wakers: Wakers,
    /// Seals and opens the hub passthrough's page tokens.
    pub page_tokens: page_token::PageTokens,
    /// The web console's sessions, OAuth rounds and settings.
    pub console: crate::console::Console,
    /// `--allow-private-callbacks`: callback URLs may target loopback and private networks (checked when an
    /// instance is created or changed, and again at delivery).
    pub allow_private_callbacks: bool,
}

impl AppState {
    /// The provider of an element key, or a 400 naming the known ones.
    pub fn provider(&self, key: &str) -> Result<&Arc<dyn Provider>, error::ApiError> {
        self.providers.get(key).ok_or_else(|| {
            error::ApiError::invalid(
                "element.key",
                format!("unknown element {key:?}; known: {}", self.providers.keys().join(", ")),
            )
        })
    }
}

/// The whole HTTP application, with the default [`ApiLimits`](limits::ApiLimits).
pub fn app(state: AppState) -> Router {
    app_with(state, limits::ApiLimits::default())
}

/// The whole HTTP application with the time limits of the settings.
pub fn app_with(state: AppState, api_limits: limits::ApiLimits) -> Router {
    let api = Router::new()
        .route("/elements/{key}/oauth/url", get(oauth::oauth_url))
        .route("/instances", post(instances::create).get(instances::list).patch(instances::patch_own))
        .route("/instances/configuration", get(instances::own_configuration))
        .route(
            "/instances/configuration/{config_id}",
            get(instances::own_configuration_entry).patch(instances::patch_own_configuration_entry),
        )
        .route("/instances/changes", get(changes::own_changes))
        .route("/instances/alerts", get(alerts::list_own))
        .route("/instances/events", get(events::list_all))
        .route("/instances/events/{event_id}", get(events::detail))
        .route("/instances/events/{event_id}/redeliver", post(events::redeliver_event))
        .route(
            "/instances/{id}",
            get(instances::read).put(instances::replace).patch(instances::patch).delete(instances::delete),
        )
        .route("/instances/{id}/configuration", get(instances::configuration))
        .route(
            "/instances/{id}/configuration/{config_id}",
            get(instances::configuration_entry).patch(instances::patch_configuration_entry),
        )
        .route("/instances/{id}/enabled", put(instances::enable).delete(instances::disable))
        .route("/instances/{id}/changes", get(changes::instance_changes))
        .route("/instances/{id}/events", get(events::list_instance))
        .route("/instances/{id}/events/replay", post(events::replay))
        .route("/instances/{id}/events/{event_id}", get(events::instance_detail))
        .route("/instances/{id}/polls", get(events::polls))
        .route("/instances/{id}/alerts", get(alerts::list_instance))
        .route("/instances/{id}/alerts/{alert_id}", get(alerts::one))
        .route("/instances/{id}/alerts/{alert_id}/redeliver", post(alerts::redeliver))
        .route("/instances/{id}/notifications/redeliver", post(events::redeliver_instance))
        .route("/instances/{id}/notifications/{notification_id}", get(events::notification))
        .route("/instances/{id}/notifications/{notification_id}/redeliver", post(events::redeliver_notification))
        .route("/hubs/{hub}/{resource}", get(hubs::list))
        .route("/hubs/{hub}/{resource}/{id}", get(hubs::one))
        .route("/openapi.json", get(openapi::serve))
        .route_layer(middleware::from_fn(mark_route))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits::BODY_LIMIT))
        .layer(middleware::from_fn(guard::refuse_nul))
        .layer(middleware::from_fn(limits::uniform_errors));
    Router::new()
        .nest(BASE, api)
        .merge(crate::console::router(&state))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(api_limits, limits::request_deadline))
        .layer(Extension(api_limits))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound("no such route".into())
}

/// Request id, request log line and request metrics around every request.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut response = error::REQUEST_ID.scope(id.clone(), next.run(request)).await;
    let route = match response.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_string(),
        None if matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") => path,
        None => "unmatched".to_string(),
    };
    let status = response.status().as_u16();
    let latency = started.elapsed();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    state.metrics.http_request(&route, status, latency);
    tracing::info!(
        target: "ocpoll::http",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        // whole microseconds, so that the line reads `0.048`, not `0.048201999999999995`
        latency_ms = (latency.as_micros() as f64) / 1000.0,
        "request"
    );
    response
}

/// Passes the matched route template out to [`observe`] (routing happens inside it).
pub(crate) async fn mark_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(m) = matched {
        response.extensions_mut().insert(m);
    }
    response
}

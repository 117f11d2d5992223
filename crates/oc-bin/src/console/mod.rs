//! The web console under `/ui/` (`../shared/spec/console.md`): sign-in, the instances of the signed-in
//! organization, the "Authenticate an instance" form with its OAuth round, and each instance's events, polls,
//! last hour, change feed and replays. Server-rendered HTML ([maud](https://maud.lambda.xyz/): compile-time checked, escaped by default),
//! one stylesheet and one small script embedded in the binary (`assets/console/`).
//!
//! It is another face of the API, not another set of rules: it authenticates with the same
//! [`AccountStore::authenticate`](oc_model::ports::AccountStore::authenticate), loads instances with the same
//! organization-scoped store calls, validates bodies with [`crate::validation::check_instance_body`] and creates
//! instances through the same function as `POST /instances` ([`crate::api::instances::create_instance`]).
//!
//! - `session.rs` — the session cookie, the anti-forgery checks, sign-in and sign-out, one-time sign-in links.
//! - `layout.rs` — the page shell and small HTML pieces; `assets.rs` — the embedded CSS and JS.
//! - `instances.rs` — the list, an instance's page, enable/disable, delete.
//! - `form.rs` — the "Authenticate an instance" form: its fields, the body it builds, problems beside fields.
//! - `oauth.rs` — the OAuth round: begun by the form (or "Re-authenticate"), ended at `/ui/oauth/callback`.
//! - `activity.rs` — events (table, live JSON, one event, redelivery), polls (live HTML); `chart.rs` — the last
//!   hour as SVG.
//! - `feed.rs` — the change feed's position (live HTML) and the **Replay events** form.

mod activity;
mod alerts;
mod assets;
mod chart;
mod feed;
mod form;
mod instances;
mod layout;
mod oauth;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use oc_model::Secret;
use oc_model::ids::{InstanceId, OrgId};
use oc_model::ports::ConsoleStore;

use crate::api::AppState;
use crate::api::error::ApiError;

pub use session::{SESSION_COOKIE, sign_in_link};

/// The path of the console's OAuth callback, under the public URL.
pub const CALLBACK_PATH: &str = "/ui/oauth/callback";

/// What the console is configured with.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The URL users reach the server at, without a trailing slash (`--public-url`).
    pub public_url: String,
    /// The server-wide OAuth app used when the form leaves Client ID and Client Secret empty.
    pub default_app: Option<(String, Secret)>,
    /// How long a sign-in lasts at most.
    pub session_lifetime: chrono::Duration,
    /// How long an OAuth round may take (consent page left open).
    pub round_lifetime: chrono::Duration,
}

impl ConsoleConfig {
    /// A configuration for `public_url` with the defaults: 12-hour sessions, 10-minute OAuth rounds, no default
    /// app.
    pub fn new(public_url: impl Into<String>) -> ConsoleConfig {
        ConsoleConfig {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            default_app: None,
            session_lifetime: chrono::Duration::hours(12),
            round_lifetime: chrono::Duration::minutes(10),
        }
    }

    /// The redirect URI to register with the provider's app: `{public URL}/ui/oauth/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.public_url)
    }

    /// True when the public URL is https: the cookie is then `Secure`.
    pub fn secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The origin of the public URL (`scheme://host[:port]`), which a form's `Origin` header may carry.
    fn origin(&self) -> Option<String> {
        url::Url::parse(&self.public_url).ok().map(|u| u.origin().ascii_serialization())
    }
}

/// The charts drawn lately, by organization and instance, with when they were drawn.
pub(crate) type ChartCache = Arc<Mutex<HashMap<(OrgId, InstanceId), (DateTime<Utc>, chart::ChartData)>>>;

/// The console's part of the shared state: its store port, its configuration, and the charts drawn lately.
#[derive(Clone)]
pub struct Console {
    /// Sessions and OAuth rounds.
    pub store: Arc<dyn ConsoleStore>,
    /// Settings.
    pub config: Arc<ConsoleConfig>,
    /// The last hour of each instance, drawn at most every ten seconds whatever the number of viewers.
    pub(crate) charts: ChartCache,
}

impl Console {
    /// The console of `store` with `config`.
    pub fn new(store: Arc<dyn ConsoleStore>, config: ConsoleConfig) -> Console {
        Console { store, config: Arc::new(config), charts: ChartCache::default() }
    }
}

/// The console's routes (every one under `/ui/`), plus `/` redirecting to `/ui/`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/ui/", get(instances::list))
        .route("/ui/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/ui/sign-in/link", get(session::sign_in_with_link))
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/instances/new", get(form::new_instance))
        .route("/ui/instances", post(oauth::begin_create))
        .route(CALLBACK_PATH, get(oauth::callback))
        .route("/ui/instances/{id}", get(instances::page))
        .route("/ui/instances/{id}/enabled", post(instances::set_enabled))
        .route("/ui/instances/{id}/reauthenticate", post(oauth::begin_reauthenticate))
        .route("/ui/instances/{id}/delete", get(instances::confirm_delete).post(instances::delete))
        .route("/ui/instances/{id}/events.json", get(activity::events_json))
        .route("/ui/instances/{id}/chart.svg", get(activity::chart_svg))
        .route("/ui/instances/{id}/polls.html", get(activity::polls_html))
        .route("/ui/instances/{id}/feed.html", get(feed::feed_html))
        .route("/ui/instances/{id}/replay", post(feed::replay))
        .route("/ui/instances/{id}/alerts/{alert_id}/redeliver", post(alerts::redeliver))
        .route("/ui/instances/{id}/events/{event_id}", get(activity::event_page))
        .route("/ui/instances/{id}/events/{event_id}/redeliver", post(activity::redeliver))
        .route("/ui/assets/{file}", get(assets::serve))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route_layer(middleware::from_fn(crate::api::mark_route))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
}

/// Around every console answer: refuses a state-changing request sent by another site, and adds the headers that
/// keep pages out of caches, frames and referrers.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/ui") {
        return next.run(request).await;
    }
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    if let Err(refused) = session::same_site_only(&state, &request) {
        return refused.into_response();
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         base-uri 'none'; frame-ancestors 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // the OAuth callback's URL carries the code: no page ever sends its address along
    set(h, header::REFERRER_POLICY, "same-origin");
    if !is_asset && !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// A console failure, answered as a page (or, for the JSON and SVG endpoints, as plain text).
#[derive(Debug)]
pub(crate) enum ConsoleError {
    /// No live session: to the sign-in page (401 for the scripts' endpoints).
    SignIn { script: bool },
    /// A state-changing request without this session's token, or from another site.
    Forgery(String),
    /// Not found, or another organization's.
    NotFound(String),
    /// Anything the API would answer with an error.
    Api(ApiError),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(m) => ConsoleError::NotFound(m),
            other => ConsoleError::Api(other),
        }
    }
}

impl From<oc_model::ports::StoreError> for ConsoleError {
    fn from(e: oc_model::ports::StoreError) -> Self {
        ConsoleError::from(ApiError::from(e))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::SignIn { script: false } => return Redirect::to("/ui/sign-in").into_response(),
            ConsoleError::SignIn { script: true } => {
                return (StatusCode::UNAUTHORIZED, "sign in at /ui/sign-in").into_response();
            }
            ConsoleError::Forgery(m) => (StatusCode::FORBIDDEN, "Request refused", m),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            ConsoleError::Api(e) => {
                let (status, _) = e.status_and_code();
                if status.is_server_error() {
                    tracing::error!(error = ?e, "console request failed");
                }
                let body = e.body(&crate::api::error::current_request_id());
                let mut message = body.message.clone();
                for p in body.errors.iter().filter(|p| p.message != body.message) {
                    message.push_str(&format!("\n{}: {}", p.path, p.message));
                }
                (status, "Something went wrong", message)
            }
        };
        (status, layout::error_page(title, &message)).into_response()
    }
}

/// Result of a console handler.
pub(crate) type Answer = Result<Response, ConsoleError>;

#[cfg(test)]
mod tests;

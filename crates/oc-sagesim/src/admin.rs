//! The admin API under `/_sim` (served only with `--admin`): the same controls as the Rust [`crate::Simulator`]
//! — records at the simulator's clock, the clock, faults, tokens, apps, the rate limit, the activity and the
//! request log. Answers JSON; errors are `{"error": message}` with 400 or 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::AppRegistration;
use crate::error::SimError;
use crate::faults::{FaultSettings, PageHook};
use crate::sim::{Inner, Simulator};
use crate::timefmt;

type Shared = Arc<Inner>;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/_sim", get(state))
        .route("/_sim/requests", get(requests).delete(clear_requests))
        .route("/_sim/clock", get(clock).post(set_clock))
        .route("/_sim/faults", get(faults).put(set_faults).delete(clear_faults))
        .route("/_sim/faults/page_hooks", post(add_hook))
        .route("/_sim/tokens", post(issue_tokens))
        .route("/_sim/tokens/expire", post(expire_tokens))
        .route("/_sim/apps", post(register_app))
        .route("/_sim/rate_limit", put(set_rate_limit))
        .route("/_sim/activity", put(set_activity))
        .route("/_sim/activity/step", post(activity_step))
        .route("/_sim/businesses", get(businesses))
        .route("/_sim/businesses/{business}/{resource}", get(ids).post(create))
        .route("/_sim/businesses/{business}/{resource}/tie", post(tie))
        .route("/_sim/businesses/{business}/{resource}/{id}", get(record).put(update).delete(delete))
}

fn sim(inner: Shared) -> Simulator {
    Simulator { inner }
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

fn sim_error(e: SimError) -> Response {
    let status = match e {
        SimError::UnknownBusiness(_) | SimError::UnknownResource(_) | SimError::RecordNotFound { .. } => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e)
}

fn answer<T: serde::Serialize>(result: Result<T, SimError>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => sim_error(e),
    }
}

async fn state(State(inner): State<Shared>) -> Response {
    let s = sim(inner);
    let (offset, frozen) = s.inner.clock.describe();
    Json(json!({
        "now": timefmt::format(s.now()),
        "clock": {"offset_seconds": offset.num_seconds(), "frozen_at": frozen.map(timefmt::format)},
        "businesses": s.businesses(),
        "faults": s.faults(),
        "rate_limit_per_minute": s.inner.rate_limit.load(std::sync::atomic::Ordering::Relaxed),
        "activity_per_minute": *s.inner.activity.borrow(),
        "requests_served": s.requests_served(),
    }))
    .into_response()
}

async fn requests(State(inner): State<Shared>) -> Response {
    Json(sim(inner).requests()).into_response()
}

async fn clear_requests(State(inner): State<Shared>) -> StatusCode {
    sim(inner).clear_requests();
    StatusCode::NO_CONTENT
}

async fn clock(State(inner): State<Shared>) -> Response {
    let (offset, frozen) = inner.clock.describe();
    Json(json!({"now": timefmt::format(inner.now()), "offset_seconds": offset.num_seconds(),
        "frozen_at": frozen.map(timefmt::format)}))
    .into_response()
}

/// One of: `{"offset_seconds": n}`, `{"freeze_at": "..."}`, `{"advance_seconds": n}`, `{"unfreeze": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    offset_seconds: Option<i64>,
    freeze_at: Option<DateTime<Utc>>,
    advance_seconds: Option<i64>,
    #[serde(default)]
    unfreeze: bool,
}

async fn set_clock(State(inner): State<Shared>, Json(change): Json<ClockChange>) -> Response {
    let s = sim(inner.clone());
    if let Some(secs) = change.offset_seconds {
        s.set_clock_offset(chrono::Duration::seconds(secs));
    }
    if let Some(at) = change.freeze_at {
        s.freeze_clock(at);
    }
    if let Some(secs) = change.advance_seconds {
        s.advance_clock(chrono::Duration::seconds(secs));
    }
    if change.unfreeze {
        s.unfreeze_clock();
    }
    clock(State(inner)).await
}

async fn faults(State(inner): State<Shared>) -> Response {
    Json(sim(inner).faults()).into_response()
}

async fn set_faults(State(inner): State<Shared>, Json(settings): Json<FaultSettings>) -> Response {
    let s = sim(inner);
    s.set_faults(FaultSettings { error_rate: settings.error_rate.clamp(0.0, 1.0), ..settings });
    Json(s.faults()).into_response()
}

async fn clear_faults(State(inner): State<Shared>) -> StatusCode {
    sim(inner).clear_faults();
    StatusCode::NO_CONTENT
}

async fn add_hook(State(inner): State<Shared>, Json(hook): Json<PageHook>) -> Response {
    let s = sim(inner);
    if crate::swagger::endpoint(&hook.resource).is_none() {
        return sim_error(SimError::UnknownResource(hook.resource));
    }
    s.add_page_hook(hook);
    Json(s.faults()).into_response()
}

#[derive(Debug, Deserialize)]
struct ClientId {
    client_id: String,
}

async fn issue_tokens(State(inner): State<Shared>, Json(c): Json<ClientId>) -> Response {
    answer(sim(inner).issue_tokens(&c.client_id))
}

async fn expire_tokens(State(inner): State<Shared>) -> StatusCode {
    sim(inner).expire_access_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct App {
    client_id: String,
    client_secret: String,
    redirect_uri: String,
}

async fn register_app(State(inner): State<Shared>, Json(a): Json<App>) -> Response {
    let app = AppRegistration::new(a.client_id, a.client_secret, a.redirect_uri);
    answer(sim(inner).register_app(app).map(|()| json!({"registered": true})))
}

#[derive(Debug, Deserialize)]
struct PerMinute {
    per_minute: u32,
}

async fn set_rate_limit(State(inner): State<Shared>, Json(p): Json<PerMinute>) -> StatusCode {
    sim(inner).set_rate_limit(p.per_minute);
    StatusCode::NO_CONTENT
}

async fn set_activity(State(inner): State<Shared>, Json(p): Json<PerMinute>) -> StatusCode {
    sim(inner).set_activity(p.per_minute);
    StatusCode::NO_CONTENT
}

async fn activity_step(State(inner): State<Shared>) -> Response {
    Json(json!({"did": sim(inner).activity_step()})).into_response()
}

async fn businesses(State(inner): State<Shared>) -> Response {
    Json(sim(inner).businesses()).into_response()
}

async fn ids(State(inner): State<Shared>, Path((business, resource)): Path<(String, String)>) -> Response {
    Json(sim(inner).record_ids(&business, &resource)).into_response()
}

async fn create(
    State(inner): State<Shared>,
    Path((business, resource)): Path<(String, String)>,
    Json(fields): Json<Value>,
) -> Response {
    match sim(inner).create_record(&business, &resource, fields) {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => sim_error(e),
    }
}

async fn record(
    State(inner): State<Shared>,
    Path((business, resource, id)): Path<(String, String, String)>,
) -> Response {
    match sim(inner).get_record(&business, &resource, &id) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no record {id:?} in {resource}")),
    }
}

async fn update(
    State(inner): State<Shared>,
    Path((business, resource, id)): Path<(String, String, String)>,
    Json(fields): Json<Value>,
) -> Response {
    answer(sim(inner).update_record(&business, &resource, &id, fields))
}

async fn delete(
    State(inner): State<Shared>,
    Path((business, resource, id)): Path<(String, String, String)>,
) -> Response {
    answer(sim(inner).delete_record(&business, &resource, &id).map(|voided| json!({"voided": voided})))
}

#[derive(Debug, Deserialize)]
struct Count {
    count: usize,
}

async fn tie(
    State(inner): State<Shared>,
    Path((business, resource)): Path<(String, String)>,
    Json(c): Json<Count>,
) -> Response {
    answer(sim(inner).tie_updated_at(&business, &resource, c.count))
}

//! `/healthz` (the process is up), `/readyz` (the database answers and its schema is in place) and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;

/// `GET /healthz`.
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "up"}))
}

/// `GET /readyz`: a query against the outbox tables proves both reachability and migrations.
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.maintenance.outbox_stats(state.clock.now()).await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "reason": e.to_string()})))
        }
    }
}

/// `GET /metrics`: Prometheus text; outbox gauges are read from the store at scrape time.
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(s) = state.maintenance.outbox_stats(state.clock.now()).await {
        let m = &state.metrics;
        m.gauge("ocpoll_outbox_depth", vec![("kind", "unbatched_events".into())], s.unbatched_events as f64);
        m.gauge("ocpoll_outbox_depth", vec![("kind", "pending_notifications".into())], s.pending_notifications as f64);
        m.gauge("ocpoll_outbox_depth", vec![("kind", "failed_notifications".into())], s.failed_notifications as f64);
        m.gauge("ocpoll_delivery_lag_seconds", vec![], s.oldest_pending_secs as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}

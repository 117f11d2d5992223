//! `/healthz` (the process is up), `/readyz` (the database answers, its schema is in place and it accepts a write)
//! and `/metrics`.

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

/// `GET /readyz`: a query against the outbox tables proves both reachability and migrations, and the store's
/// write probe that it can write (a full disk or a wedged writer makes the node not ready until writes succeed
/// again; the probe writes at most once per few seconds, so this stays cheap).
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let now = state.clock.now();
    let ready = match state.maintenance.outbox_stats(now).await {
        Ok(_) => state.maintenance.write_probe(now).await,
        Err(e) => Err(e),
    };
    match ready {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use chrono::{DateTime, Utc};
    use oc_model::ports::{
        Clock, MaintenanceStore, ManualClock, NodeBeat, OutboxStats, Providers, ReleasedLeases, StoreError,
    };
    use oc_store::SqlStore;
    use oc_store::testing::TestStore;
    use serde_json::Value;
    use tower::ServiceExt;

    use crate::api::{AppState, Wakers, app};
    use crate::console::{Console, ConsoleConfig};
    use crate::metrics::Metrics;

    /// The real store, whose writes can be made to fail (as on a full disk) and succeed again.
    struct Flaky {
        inner: Arc<SqlStore>,
        full: AtomicBool,
    }

    #[async_trait]
    impl MaintenanceStore for Flaky {
        async fn prune_delivered(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
            self.inner.prune_delivered(before).await
        }
        async fn outbox_stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreError> {
            self.inner.outbox_stats(now).await
        }
        async fn lease_holders(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
            self.inner.lease_holders(now).await
        }
        async fn release_leases_of(&self, node: &str, now: DateTime<Utc>) -> Result<ReleasedLeases, StoreError> {
            self.inner.release_leases_of(node, now).await
        }
        async fn heartbeat(&self, node: &str, now: DateTime<Utc>, starting: bool) -> Result<(), StoreError> {
            self.inner.heartbeat(node, now, starting).await
        }
        async fn nodes(&self) -> Result<Vec<NodeBeat>, StoreError> {
            self.inner.nodes().await
        }
        async fn forget_node(&self, node: &str, beats: Option<i64>) -> Result<bool, StoreError> {
            self.inner.forget_node(node, beats).await
        }
        async fn write_probe(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
            if self.full.load(Ordering::SeqCst) {
                return Err(StoreError::Database("the store cannot write: database or disk is full".into()));
            }
            self.inner.write_probe(now).await
        }
    }

    fn state(t: &TestStore, maintenance: Arc<dyn MaintenanceStore>, clock: Arc<ManualClock>) -> AppState {
        let s = t.store();
        AppState {
            store: s.clone(),
            vault: s.clone(),
            maintenance,
            providers: Providers::new(),
            clock: clock as Arc<dyn Clock>,
            metrics: Arc::new(Metrics::default()),
            wakers: Wakers::default(),
            page_tokens: crate::api::page_token::PageTokens::new(
                crate::keys::ServerKeys::derive(&t.options().key).page_tokens().clone(),
            ),
            console: Console::new(s.clone(), ConsoleConfig::new("http://health.test")),
            allow_private_callbacks: false,
        }
    }

    async fn readyz(state: &AppState) -> (StatusCode, Value) {
        let request = Request::builder().uri("/readyz").body(Body::empty()).expect("a request");
        let response = app(state.clone()).oneshot(request).await.expect("an answer");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    fn start() -> DateTime<Utc> {
        "2024-01-01T00:00:00Z".parse().expect("an instant")
    }

    /// `/readyz` answers 503 with the reason while the store cannot write, and 200 again by itself once it can.
    #[tokio::test]
    async fn readyz_fails_while_the_store_cannot_write_and_recovers_by_itself() {
        let t = oc_store::testing::sqlite().await;
        let clock = Arc::new(ManualClock::new(start()));
        let flaky = Arc::new(Flaky { inner: t.store(), full: AtomicBool::new(false) });
        let state = state(&t, flaky.clone(), clock.clone());
        assert_eq!(readyz(&state).await, (StatusCode::OK, serde_json::json!({"status": "ready"})));
        flaky.full.store(true, Ordering::SeqCst);
        let (status, body) = readyz(&state).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "not ready");
        assert!(body["reason"].as_str().is_some_and(|r| r.contains("cannot write")), "{body}");
        flaky.full.store(false, Ordering::SeqCst);
        clock.advance(std::time::Duration::from_secs(60));
        assert_eq!(readyz(&state).await.0, StatusCode::OK);
    }

    /// On both backends, a healthy store is ready (its write probe writes), and a closed one is not.
    #[tokio::test]
    async fn readyz_writes_on_both_backends() {
        for t in [Some(oc_store::testing::sqlite().await), oc_store::testing::postgres().await].into_iter().flatten() {
            let clock = Arc::new(ManualClock::new(start()));
            let state = state(&t, t.store(), clock.clone());
            assert_eq!(readyz(&state).await.0, StatusCode::OK, "{:?}", t.backend());
            t.store().close().await;
            clock.advance(std::time::Duration::from_secs(60));
            let (status, body) = readyz(&state).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{:?}: {body}", t.backend());
        }
    }
}

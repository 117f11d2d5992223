//! `GET /hubs/{hub}/{resource}`: the read-only hub passthrough, the same query path the poller uses, with the
//! instance's `Element` token.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use oc_model::ports::{Feed, FieldNeeds, PageCursor, PageRequest};
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::instances::{load_own, session};

/// Default page size of the passthrough (Open Connectors' default).
const DEFAULT_PAGE_SIZE: u32 = 200;

/// `GET /hubs/{hub}/{resource}?where=&pageSize=&page=`.
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((hub, resource)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<Value>>), ApiError> {
    let instance = load_own(&state, &caller).await?;
    let provider = state.provider(&instance.element_key)?.clone();
    let spec = provider.spec();
    if spec.element.hub != hub {
        return Err(ApiError::NotFound(format!(
            "hub {hub:?} not found; this instance's hub is {:?}",
            spec.element.hub
        )));
    }
    let url = match &query {
        Some(q) if !q.is_empty() => format!("/hubs/{hub}/{resource}?{q}"),
        _ => format!("/hubs/{hub}/{resource}"),
    };
    let compiled = provider.compile(&url, &FieldNeeds::default()).map_err(|e| ApiError::Provider(e.into()))?;
    let session = session(&state, &instance)?;
    let page_size = compiled.page_size.unwrap_or(DEFAULT_PAGE_SIZE).min(spec.max_page_size);
    let page = provider
        .fetch_page(
            &session,
            &PageRequest { query: &compiled, feed: Feed::Changes, cursor: PageCursor::First, page_size },
        )
        .await?;
    let records: Vec<Value> = match &compiled.local {
        Some(filter) => page.records.into_iter().filter(|r| filter.matches(r)).collect(),
        None => page.records,
    };
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    put("elements-returned-count", records.len().to_string());
    if let Some(total) = page.total {
        put("elements-total-count", total.to_string());
    }
    if page.next.is_some() {
        put("elements-next-page-token", (compiled.page.unwrap_or(1) + 1).to_string());
    }
    if !compiled.warnings.is_empty() {
        put("x-ocpoll-warnings", compiled.warnings.join("; ").replace(['\r', '\n'], " "));
    }
    Ok((headers, Json(records)))
}

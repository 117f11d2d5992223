//! Operational alerts of an instance (`instance.invalid`, `notifications.disabled`, `notification.failed`,
//! `polling.failing`): listed newest first with the paging of events, one with every delivery attempt, and
//! redelivered whatever its status.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use oc_model::Problems;
use oc_model::ids::InstanceId;
use oc_model::ports::{AlertRecord, AlertType, StoredAttempt};
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::instances::load;

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

/// The query of a list: `type`, `page`, `pageSize`.
struct AlertQuery {
    alert_type: Option<AlertType>,
    page: u32,
    page_size: u32,
}

fn query_from(query: Option<String>) -> Result<AlertQuery, ApiError> {
    let mut q = AlertQuery { alert_type: None, page: 1, page_size: DEFAULT_PAGE_SIZE };
    let mut problems = Problems::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "type" => match AlertType::parse(&v) {
                Some(t) => q.alert_type = Some(t),
                None => problems.push(
                    "type",
                    format!("expected one of {}, found {v:?}", AlertType::ALL.map(AlertType::as_str).join(", ")),
                ),
            },
            "page" | "nextPage" => match v.parse::<u32>() {
                Ok(p) if p >= 1 => q.page = p,
                _ => problems.push(k.as_ref(), format!("expected a page number ≥ 1, found {v:?}")),
            },
            "pageSize" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => q.page_size = n,
                _ => problems.push("pageSize", format!("expected 1 to {MAX_PAGE_SIZE}, found {v:?}")),
            },
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(q)
    } else {
        Err(ApiError::Invalid { message: "bad query parameters".into(), problems: problems.0 })
    }
}

async fn list(
    state: &AppState,
    caller: &Caller,
    id: InstanceId,
    query: Option<String>,
) -> Result<(HeaderMap, Json<Vec<AlertRecord>>), ApiError> {
    load(state, caller, id).await?;
    let q = query_from(query)?;
    let offset = u64::from(q.page - 1) * u64::from(q.page_size);
    let page = state
        .store
        .list_alerts(caller.principal.org_id, id, q.alert_type, q.page_size, offset)
        .await?
        .ok_or_else(|| ApiError::NotFound("instance not found".into()))?;
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    put("elements-total-count", page.total.to_string());
    put("elements-returned-count", page.items.len().to_string());
    if offset + u64::from(q.page_size) < page.total {
        put("elements-next-page-token", (q.page + 1).to_string());
    }
    Ok((headers, Json(page.items)))
}

/// `GET /instances/{id}/alerts`.
pub(super) async fn list_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<AlertRecord>>), ApiError> {
    list(&state, &caller, id, query).await
}

/// `GET /instances/alerts`: the alerts of the instance of the `Element` token.
pub(super) async fn list_own(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<AlertRecord>>), ApiError> {
    let id = caller.element_instance()?;
    list(&state, &caller, id, query).await
}

/// One alert with every delivery attempt.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlertView {
    #[serde(flatten)]
    alert: AlertRecord,
    delivery_attempts: Vec<StoredAttempt>,
}

async fn find(state: &AppState, caller: &Caller, id: InstanceId, alert: &str) -> Result<AlertView, ApiError> {
    load(state, caller, id).await?;
    let not_found = || ApiError::NotFound(format!("alert {alert} not found"));
    let uuid = Uuid::parse_str(alert).map_err(|_| not_found())?;
    let (record, attempts) = state
        .store
        .alert(caller.principal.org_id, uuid)
        .await?
        .filter(|(a, _)| a.instance_id == id)
        .ok_or_else(not_found)?;
    Ok(AlertView { alert: record, delivery_attempts: attempts })
}

/// `GET /instances/{id}/alerts/{alertId}`.
pub(super) async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, alert)): Path<(InstanceId, String)>,
) -> Result<Json<AlertView>, ApiError> {
    Ok(Json(find(&state, &caller, id, &alert).await?))
}

/// The answer of a redelivery: `{"redelivered": 0 | 1, "message"?}`.
#[derive(Debug, Serialize)]
pub(super) struct Redelivered {
    redelivered: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// `POST /instances/{id}/alerts/{alertId}/redeliver`: sends the alert again (same id), whatever its status; one
/// being delivered right now is left to finish.
pub(super) async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, alert)): Path<(InstanceId, String)>,
) -> Result<Json<Redelivered>, ApiError> {
    let view = find(&state, &caller, id, &alert).await?;
    if state.store.redeliver_alert(caller.principal.org_id, view.alert.id, state.clock.now()).await? {
        state.wakers.alerts.notify_one();
        Ok(Json(Redelivered { redelivered: 1, message: None }))
    } else {
        let message = format!("alert {alert} is being delivered right now");
        Ok(Json(Redelivered { redelivered: 0, message: Some(message) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_type_names_the_types() {
        let Err(ApiError::Invalid { problems, .. }) = query_from(Some("type=instance.broken&pageSize=0".into())) else {
            panic!("refused")
        };
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("instance.invalid, notifications.disabled"), "{problems:?}");
        assert_eq!(problems[1].path, "pageSize");
        let q = query_from(Some("type=polling.failing&page=2&pageSize=10".into())).ok().unwrap();
        assert_eq!((q.alert_type, q.page, q.page_size), (Some(AlertType::PollingFailing), 2, 10));
    }
}

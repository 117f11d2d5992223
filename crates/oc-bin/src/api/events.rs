//! Events, polls and notifications: lists with paging and filters, one event with its notification and every
//! delivery attempt, and redelivery of failed notifications.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use oc_model::event::EventType;
use oc_model::ids::InstanceId;
use oc_model::ports::{
    EventDetail, EventFilter, EventView, NotificationRecord, NotificationStatus, PollRecord, StoredAttempt,
};
use oc_model::{Problem, Problems};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::instances::load;

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

/// Reads `page`/`nextPage`, `pageSize`, `status`, `eventType`, `objectType` (and `instanceId` when allowed).
fn filter_from(query: Option<String>, allow_instance: bool) -> Result<EventFilter, ApiError> {
    let mut f = EventFilter { page: 1, page_size: DEFAULT_PAGE_SIZE, ..EventFilter::default() };
    let mut problems = Problems::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "page" | "nextPage" => match v.parse::<u32>() {
                Ok(p) if p >= 1 => f.page = p,
                _ => problems.push(k.as_ref(), format!("expected a page number ≥ 1, found {v:?}")),
            },
            "pageSize" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => f.page_size = n,
                _ => problems.push("pageSize", format!("expected 1 to {MAX_PAGE_SIZE}, found {v:?}")),
            },
            "status" => match serde_json::from_value::<NotificationStatus>(json!(v.to_ascii_lowercase())) {
                Ok(s) => f.status = Some(s),
                Err(_) => problems
                    .push("status", format!("expected pending, delivering, delivered, failed or dropped, found {v:?}")),
            },
            "eventType" | "type" => match EventType::parse(&v) {
                Some(t) => f.event_type = Some(t),
                None => problems.push(k.as_ref(), format!("expected CREATED, UPDATED or DELETED, found {v:?}")),
            },
            "objectType" => f.object_type = Some(v.into_owned()),
            "instanceId" if allow_instance => match v.parse::<InstanceId>() {
                Ok(id) => f.instance_id = Some(id),
                Err(_) => problems.push("instanceId", format!("expected an instance id, found {v:?}")),
            },
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(f)
    } else {
        Err(ApiError::Invalid { message: "bad query parameters".into(), problems: problems.0 })
    }
}

fn paging_headers(total: u64, returned: usize, f: &EventFilter) -> HeaderMap {
    let mut h = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put(&mut h, "elements-total-count", total.to_string());
    put(&mut h, "elements-returned-count", returned.to_string());
    if u64::from(f.page) * u64::from(f.page_size) < total {
        put(&mut h, "elements-next-page-token", (f.page + 1).to_string());
    }
    h
}

async fn list(
    state: &AppState,
    caller: &Caller,
    f: EventFilter,
) -> Result<(HeaderMap, Json<Vec<EventView>>), ApiError> {
    let page = state.store.list_events(caller.principal.org_id, &f).await?;
    Ok((paging_headers(page.total, page.items.len(), &f), Json(page.items)))
}

/// `GET /instances/{id}/events`.
pub(super) async fn list_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<EventView>>), ApiError> {
    load(&state, &caller, id).await?;
    let mut f = filter_from(query, false)?;
    f.instance_id = Some(id);
    list(&state, &caller, f).await
}

/// `GET /instances/events`: across the organization's instances (an `Element` caller sees its own only).
pub(super) async fn list_all(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<EventView>>), ApiError> {
    let mut f = filter_from(query, true)?;
    if let Some(own) = caller.instance {
        if f.instance_id.is_some_and(|i| i != own) {
            return Err(ApiError::NotFound("instance not found".into()));
        }
        f.instance_id = Some(own);
    }
    list(&state, &caller, f).await
}

fn parse_uuid(what: &str, s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::NotFound(format!("{what} {s} not found")))
}

async fn detail_of(state: &AppState, caller: &Caller, event_id: &str) -> Result<EventDetail, ApiError> {
    let id = parse_uuid("event", event_id)?;
    let d = state
        .store
        .event_detail(caller.principal.org_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("event {event_id} not found")))?;
    caller.may_address(d.event.instance_id).map_err(|_| ApiError::NotFound(format!("event {event_id} not found")))?;
    Ok(d)
}

/// `GET /instances/events/{eventId}`: the event, its notification and every attempt.
pub(super) async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    Ok(Json(detail_of(&state, &caller, &event_id).await?))
}

/// The result of a redelivery request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Redelivered {
    redelivered: u64,
}

/// `POST /instances/events/{eventId}/redeliver`: redelivers the event's failed notification.
pub(super) async fn redeliver_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<Redelivered>, ApiError> {
    let d = detail_of(&state, &caller, &event_id).await?;
    let n = d.notification.ok_or_else(|| {
        ApiError::Conflict(format!("event {event_id} is not in a notification yet; it will be delivered"))
    })?;
    redeliver_one(&state, &caller, n.id).await
}

async fn redeliver_one(state: &AppState, caller: &Caller, id: Uuid) -> Result<Json<Redelivered>, ApiError> {
    if state.store.redeliver(caller.principal.org_id, id, state.clock.now()).await? {
        state.wakers.dispatcher.notify_one();
        Ok(Json(Redelivered { redelivered: 1 }))
    } else {
        Err(ApiError::Conflict(format!("notification {id} is not failed; only failed notifications are redelivered")))
    }
}

/// `POST /instances/{id}/notifications/{notificationId}/redeliver`.
pub(super) async fn redeliver_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, notification)): Path<(InstanceId, String)>,
) -> Result<Json<Redelivered>, ApiError> {
    load(&state, &caller, id).await?;
    let nid = parse_uuid("notification", &notification)?;
    let (n, _) = state
        .store
        .notification(caller.principal.org_id, nid)
        .await?
        .filter(|(n, _)| n.instance_id == id)
        .ok_or_else(|| ApiError::NotFound(format!("notification {notification} not found")))?;
    redeliver_one(&state, &caller, n.id).await
}

/// `POST /instances/{id}/notifications/redeliver`: every failed notification of the instance.
pub(super) async fn redeliver_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
) -> Result<Json<Redelivered>, ApiError> {
    load(&state, &caller, id).await?;
    let n = state.store.redeliver_failed(caller.principal.org_id, id, state.clock.now()).await?;
    if n > 0 {
        state.wakers.dispatcher.notify_one();
    }
    Ok(Json(Redelivered { redelivered: n }))
}

/// A notification with its attempts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NotificationView {
    #[serde(flatten)]
    notification: NotificationRecord,
    attempts: Vec<StoredAttempt>,
}

/// `GET /instances/{id}/notifications/{notificationId}`.
pub(super) async fn notification(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, notification)): Path<(InstanceId, String)>,
) -> Result<Json<NotificationView>, ApiError> {
    load(&state, &caller, id).await?;
    let nid = parse_uuid("notification", &notification)?;
    let (n, attempts) = state
        .store
        .notification(caller.principal.org_id, nid)
        .await?
        .filter(|(n, _)| n.instance_id == id)
        .ok_or_else(|| ApiError::NotFound(format!("notification {notification} not found")))?;
    Ok(Json(NotificationView { notification: n, attempts }))
}

/// `GET /instances/{id}/polls?limit=N`: the latest polls, newest first, with their warnings.
pub(super) async fn polls(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<PollRecord>>, ApiError> {
    load(&state, &caller, id).await?;
    let mut limit = 50usize;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "limit" || k == "pageSize" {
            limit = v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| ApiError::Invalid {
                message: "bad query parameters".into(),
                problems: vec![Problem::new(k.as_ref(), format!("expected 1 to 1000, found {v:?}"))],
            })?;
        }
    }
    Ok(Json(state.store.list_polls(caller.principal.org_id, id, limit).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_read_and_checked() {
        let f =
            filter_from(Some("page=2&pageSize=10&status=FAILED&eventType=created&objectType=customers".into()), false)
                .unwrap();
        assert_eq!((f.page, f.page_size), (2, 10));
        assert_eq!(f.status, Some(NotificationStatus::Failed));
        assert_eq!(f.event_type, Some(EventType::Created));
        assert_eq!(f.object_type.as_deref(), Some("customers"));
        let Err(ApiError::Invalid { problems, .. }) =
            filter_from(Some("page=0&pageSize=9999&status=lost".into()), false)
        else {
            panic!("expected problems")
        };
        assert_eq!(problems.len(), 3);
    }
}

//! Events, polls and notifications: lists with paging and filters, one event with its notification and every
//! delivery attempt, and redelivery of failed notifications.
//!
//! An event is answered with Open Connectors' fields and meaning — `id` (its position in the outbox),
//! `eventDate`, `status` (`NEW`, `DISPATCHED`, `NOTIFIED`; ocpoll adds `FAILED`, `DROPPED` and `WITHHELD`), `providerData`
//! (the record as a JSON string), `notifiedData` (the event as its notification carried it, as a JSON string) —
//! and ocpoll's own beside them (`eventId`, `eventType`, `objectType`, `objectId`, `date`, `record`,
//! `deliveryStatus`, `attempts`, `notificationId`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use oc_model::event::{EventType, MessageEvent};
use oc_model::ids::InstanceId;
use oc_model::ports::{
    EventDetail, EventFilter, EventView, NotificationRecord, NotificationStatus, OcEventStatus, PollRecord,
    ReplayQuery, StatusFilter, StoredAttempt,
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
            "status" | "deliveryStatus" => match status_filter(&v) {
                Some(s) => f.status = Some(s),
                None => problems.push(
                    k.as_ref(),
                    format!(
                        "expected NEW, DISPATCHED, NOTIFIED, FAILED, DROPPED or a delivery status (pending, \
                         delivering, delivered, failed, dropped), found {v:?}"
                    ),
                ),
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

/// A status filter: Open Connectors' vocabulary in capitals (`NEW`, `DISPATCHED`, `NOTIFIED`, `FAILED`,
/// `DROPPED`), ocpoll's delivery status otherwise (`pending`, `delivering`, `delivered`, `failed`, `dropped`).
fn status_filter(v: &str) -> Option<StatusFilter> {
    if v.chars().all(|c| !c.is_ascii_lowercase())
        && let Some(oc) = OcEventStatus::parse(v)
    {
        return Some(StatusFilter::Oc(oc));
    }
    serde_json::from_value::<NotificationStatus>(json!(v.to_ascii_lowercase())).ok().map(StatusFilter::Delivery)
}

/// An event as the API answers it (see the module documentation).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventRecord {
    id: i64,
    event_date: DateTime<Utc>,
    status: OcEventStatus,
    provider_data: String,
    notified_data: Option<String>,
    #[serde(flatten)]
    event: oc_model::Event,
    instance_id: InstanceId,
    created_at: DateTime<Utc>,
    delivery_status: NotificationStatus,
    attempts: u32,
    notification_id: Option<Uuid>,
}

impl EventRecord {
    /// The answer for `view`, an event of an instance of the element `element_key`.
    fn of(view: EventView, element_key: &str) -> EventRecord {
        let status = view.oc_status();
        let notified_data = view.notification_id.and_then(|_| {
            let sent: MessageEvent = view.event.to_message_event(element_key);
            serde_json::to_string(&sent).ok()
        });
        EventRecord {
            id: view.seq,
            event_date: view.created_at,
            status,
            provider_data: serde_json::to_string(&view.event.record).unwrap_or_default(),
            notified_data,
            event: view.event,
            instance_id: view.instance_id,
            created_at: view.created_at,
            delivery_status: view.status,
            attempts: view.attempts,
            notification_id: view.notification_id,
        }
    }
}

/// One event with its notification and every attempt of it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventDetailView {
    event: EventRecord,
    notification: Option<NotificationRecord>,
    attempts: Vec<StoredAttempt>,
}

/// The element keys of the instances of `views`, read once each.
async fn element_keys(
    state: &AppState,
    caller: &Caller,
    views: &[EventView],
) -> Result<HashMap<InstanceId, String>, ApiError> {
    let mut keys = HashMap::new();
    for v in views {
        if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(v.instance_id) {
            let instance = state.store.instance(caller.principal.org_id, v.instance_id).await?;
            slot.insert(instance.map(|i| i.element_key).unwrap_or_default());
        }
    }
    Ok(keys)
}

async fn records(state: &AppState, caller: &Caller, views: Vec<EventView>) -> Result<Vec<EventRecord>, ApiError> {
    let keys = element_keys(state, caller, &views).await?;
    Ok(views
        .into_iter()
        .map(|v| {
            let key = keys.get(&v.instance_id).cloned().unwrap_or_default();
            EventRecord::of(v, &key)
        })
        .collect())
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
) -> Result<(HeaderMap, Json<Vec<EventRecord>>), ApiError> {
    let page = state.store.list_events(caller.principal.org_id, &f).await?;
    let headers = paging_headers(page.total, page.items.len(), &f);
    Ok((headers, Json(records(state, caller, page.items).await?)))
}

/// `GET /instances/{id}/events`.
pub(super) async fn list_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<EventRecord>>), ApiError> {
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
) -> Result<(HeaderMap, Json<Vec<EventRecord>>), ApiError> {
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

async fn detail_view(state: &AppState, caller: &Caller, d: EventDetail) -> Result<EventDetailView, ApiError> {
    let EventDetail { event, notification, attempts } = d;
    let event = records(state, caller, vec![event]).await?.pop().ok_or_else(|| ApiError::NotFound("event".into()))?;
    Ok(EventDetailView { event, notification, attempts })
}

/// `GET /instances/events/{eventId}`: the event, its notification and every attempt.
pub(super) async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<EventDetailView>, ApiError> {
    let d = detail_of(&state, &caller, &event_id).await?;
    Ok(Json(detail_view(&state, &caller, d).await?))
}

/// `GET /instances/{id}/events/{eventId}`: the same, for an event of that instance (404 for another's).
pub(super) async fn instance_detail(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, event_id)): Path<(InstanceId, String)>,
) -> Result<Json<EventDetailView>, ApiError> {
    load(&state, &caller, id).await?;
    let d = detail_of(&state, &caller, &event_id).await?;
    if d.event.instance_id != id {
        return Err(ApiError::NotFound(format!("event {event_id} not found in instance {id}")));
    }
    Ok(Json(detail_view(&state, &caller, d).await?))
}

/// The result of a redelivery request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Redelivered {
    redelivered: u64,
    /// Why nothing was queued, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// `POST /instances/events/{eventId}/redeliver`: sends the event again, whatever its status, in a new
/// notification (same event id). One still on its way (pending or being delivered) is left to arrive.
pub(super) async fn redeliver_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<Redelivered>, ApiError> {
    let d = detail_of(&state, &caller, &event_id).await?;
    let query = ReplayQuery {
        instance: d.event.instance_id,
        since: DateTime::<Utc>::MIN_UTC,
        until: None,
        object_type: None,
        event_type: None,
        event_id: Some(d.event.event.event_id),
    };
    let queued = state
        .store
        .replay(caller.principal.org_id, &query, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("event {event_id} not found")))?;
    if queued > 0 {
        state.wakers.dispatcher.notify_one();
        return Ok(Json(Redelivered { redelivered: queued, message: None }));
    }
    let message = format!("event {event_id} is on its way already (its notification is pending or being delivered)");
    Ok(Json(Redelivered { redelivered: 0, message: Some(message) }))
}

async fn redeliver_one(state: &AppState, caller: &Caller, id: Uuid) -> Result<Json<Redelivered>, ApiError> {
    if state.store.redeliver(caller.principal.org_id, id, state.clock.now()).await? {
        state.wakers.dispatcher.notify_one();
        Ok(Json(Redelivered { redelivered: 1, message: None }))
    } else {
        let message = format!("notification {id} is on its way already (pending or being delivered)");
        Ok(Json(Redelivered { redelivered: 0, message: Some(message) }))
    }
}

/// The body of `POST /instances/{id}/events/replay`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ReplayRequest {
    since: String,
    until: Option<String>,
    object_type: Option<String>,
    event_type: Option<String>,
}

/// The answer of a replay.
#[derive(Debug, Serialize)]
pub(super) struct Replayed {
    /// Events queued again.
    count: u64,
}

/// `POST /instances/{id}/events/replay`: sends the kept events committed in a range again, as new notifications
/// (same event ids, new notification ids, in order per object).
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    body: axum::body::Bytes,
) -> Result<Json<Replayed>, ApiError> {
    load(&state, &caller, id).await?;
    let request: ReplayRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(
            "",
            format!("expected {{\"since\": RFC 3339, \"until\"?, \"objectType\"?, \"eventType\"?}}: {e}"),
        )
    })?;
    let mut problems = Problems::default();
    let instant = |key: &str, text: &str, problems: &mut Problems| match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(e) => {
            problems.push(key, format!("expected an RFC 3339 date-time, found {text:?} ({e})"));
            None
        }
    };
    let since = instant("since", &request.since, &mut problems);
    let until = request.until.as_deref().and_then(|u| instant("until", u, &mut problems));
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        problems.push("until", "must be after since");
    }
    let event_type = match request.event_type.as_deref() {
        None => None,
        Some(t) => match EventType::parse(t) {
            Some(t) => Some(t),
            None => {
                problems.push("eventType", format!("expected CREATED, UPDATED or DELETED, found {t:?}"));
                None
            }
        },
    };
    let Some(since) = since.filter(|_| problems.0.is_empty()) else {
        return Err(ApiError::Invalid {
            message: format!("the replay has {} problem(s)", problems.0.len()),
            problems: problems.0,
        });
    };
    let query =
        ReplayQuery { instance: id, since, until, object_type: request.object_type, event_type, event_id: None };
    let count = state
        .store
        .replay(caller.principal.org_id, &query, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("instance {id} not found")))?;
    if count > 0 {
        state.wakers.dispatcher.notify_one();
    }
    Ok(Json(Replayed { count }))
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
    Ok(Json(Redelivered { redelivered: n, message: None }))
}

/// A notification with its attempts: the members of [`NotificationRecord`] but its `attempts` (their number),
/// which the list of attempts takes the place of — flattening both would write `attempts` twice.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NotificationView {
    id: Uuid,
    instance_id: InstanceId,
    object_type: String,
    status: NotificationStatus,
    created_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    attempts: Vec<StoredAttempt>,
}

impl NotificationView {
    fn of(n: NotificationRecord, attempts: Vec<StoredAttempt>) -> NotificationView {
        let NotificationRecord {
            id,
            instance_id,
            object_type,
            status,
            attempts: _,
            created_at,
            next_attempt_at,
            delivered_at,
            last_error,
        } = n;
        NotificationView {
            id,
            instance_id,
            object_type,
            status,
            created_at,
            next_attempt_at,
            delivered_at,
            last_error,
            attempts,
        }
    }
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
    Ok(Json(NotificationView::of(n, attempts)))
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
        assert_eq!(f.status, Some(StatusFilter::Oc(OcEventStatus::Failed)));
        assert_eq!(f.event_type, Some(EventType::Created));
        assert_eq!(f.object_type.as_deref(), Some("customers"));
        let f = filter_from(Some("status=failed".into()), false).unwrap();
        assert_eq!(f.status, Some(StatusFilter::Delivery(NotificationStatus::Failed)));
        let f = filter_from(Some("status=DISPATCHED".into()), false).unwrap();
        assert_eq!(f.status, Some(StatusFilter::Oc(OcEventStatus::Dispatched)));
        let Err(ApiError::Invalid { problems, .. }) =
            filter_from(Some("page=0&pageSize=9999&status=lost".into()), false)
        else {
            panic!("expected problems")
        };
        assert_eq!(problems.len(), 3);
    }
}

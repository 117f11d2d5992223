//! `GET /instances/{id}/changes` (and `GET /instances/changes` with the `Element` token): the change feed of
//! `consumers.md` §1 — an instance's events in commit order after an opaque cursor, with filters and long
//! polling (`wait`), and `410 cursor_expired` for a cursor older than what retention kept.
//!
//! A waiting request does not query the database in a loop: it reads once, then sleeps on the store's commit
//! signal (woken by a commit on this node, or — on PostgreSQL — by `NOTIFY` from any node) and reads again.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use oc_model::Problems;
use oc_model::event::EventType;
use oc_model::ids::InstanceId;
use oc_model::ports::{ChangePage, ChangeQuery};
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::instances::load;

/// Changes per answer unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most changes per answer.
pub const MAX_LIMIT: u32 = 1_000;
/// The longest `wait`, in seconds.
pub const MAX_WAIT_SECONDS: f64 = 60.0;

/// The prefix of a cursor's decoded text: a version, so the encoding can change without misreading old ones.
const CURSOR_PREFIX: &str = "ocpoll-feed:1:";

/// The cursor of an outbox position.
pub fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

/// The outbox position of a cursor, or a 400 naming `after`.
pub fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid("after", format!("not a cursor of this feed: {cursor:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let seq: i64 = text.strip_prefix(CURSOR_PREFIX).and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    if seq < 0 {
        return Err(bad());
    }
    Ok(seq)
}

/// One change as the feed answers it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    /// The cursor just after this change.
    pub cursor: String,
    /// The event's id (the same as in its notification).
    pub event_id: String,
    /// `CREATED`, `UPDATED` or `DELETED`.
    pub event_type: EventType,
    /// The resource.
    pub object_type: String,
    /// The record's id.
    pub object_id: String,
    /// When the change happened (the provider's date).
    pub date: String,
    /// The record.
    pub record: Value,
}

/// A page of the feed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesAnswer {
    /// The changes, oldest first.
    pub changes: Vec<ChangeRecord>,
    /// Where to read on from (`after`); the same as given when nothing new came.
    pub next_cursor: String,
    /// More changes are there already: read again at once.
    pub has_more: bool,
}

/// The parameters of a read.
struct Read {
    after: Option<i64>,
    limit: u32,
    object_type: Option<String>,
    event_type: Option<EventType>,
    wait: Duration,
}

fn read_from(query: Option<String>) -> Result<Read, ApiError> {
    let mut read =
        Read { after: None, limit: DEFAULT_LIMIT, object_type: None, event_type: None, wait: Duration::ZERO };
    let mut problems = Problems::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "after" | "cursor" if v.is_empty() => {}
            "after" | "cursor" => match decode_cursor(&v) {
                Ok(seq) => read.after = Some(seq),
                Err(_) => problems.push("after", format!("not a cursor of this feed: {v:?}")),
            },
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => read.limit = n,
                _ => problems.push("limit", format!("expected a whole number from 1 to {MAX_LIMIT}, found {v:?}")),
            },
            "objectType" => read.object_type = Some(v.into_owned()),
            "eventType" => match EventType::parse(&v) {
                Some(t) => read.event_type = Some(t),
                None => problems.push("eventType", format!("expected CREATED, UPDATED or DELETED, found {v:?}")),
            },
            "wait" => match v.parse::<f64>() {
                Ok(s) if (0.0..=MAX_WAIT_SECONDS).contains(&s) => read.wait = Duration::from_secs_f64(s),
                _ => problems.push("wait", format!("expected seconds from 0 to {MAX_WAIT_SECONDS}, found {v:?}")),
            },
            _ => {}
        }
    }
    if problems.0.is_empty() {
        Ok(read)
    } else {
        Err(ApiError::Invalid {
            message: format!("{} problem(s) in the query", problems.0.len()),
            problems: problems.0,
        })
    }
}

fn answer(page: ChangePage) -> ChangesAnswer {
    let changes = page
        .changes
        .into_iter()
        .map(|c| ChangeRecord {
            cursor: encode_cursor(c.seq),
            event_id: c.event.event_id.to_string(),
            event_type: c.event.event_type,
            object_type: c.event.object_type,
            object_id: c.event.object_id,
            date: rfc3339(c.event.date),
            record: c.event.record,
        })
        .collect();
    ChangesAnswer { changes, next_cursor: encode_cursor(page.position), has_more: page.has_more }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Reads the feed of `instance`, waiting up to `read.wait` for a first change.
async fn changes(
    state: &AppState,
    caller: &Caller,
    instance: InstanceId,
    read: Read,
) -> Result<ChangesAnswer, ApiError> {
    let org = caller.principal.org_id;
    let query = ChangeQuery {
        instance,
        after: read.after,
        limit: read.limit,
        object_type: read.object_type,
        event_type: read.event_type,
    };
    let until = tokio::time::Instant::now() + read.wait;
    let mut query = query;
    let mut first = true;
    loop {
        // taken before the read: a commit between the read and the wait still wakes it
        let seen = state.store.commit_generation();
        let page = state
            .store
            .changes(org, &query)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("instance {instance} not found")))?;
        if first
            && let Some(after) = query.after
            && after < page.floor
        {
            return Err(ApiError::CursorExpired(format!(
                "the cursor is older than the changes kept (retention removed changes after it): read the feed \
                 again without `after`, from {}",
                encode_cursor(page.floor)
            )));
        }
        first = false;
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if !page.changes.is_empty() || page.has_more || left.is_zero() {
            return Ok(answer(page));
        }
        // nothing for this reader yet: events its filters skipped are behind it now, and it waits on
        query.after = Some(page.position);
        state.store.wait_for_commit(seen, left).await;
    }
}

/// `GET /instances/{id}/changes`.
pub(super) async fn instance_changes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    RawQuery(query): RawQuery,
) -> Result<Json<ChangesAnswer>, ApiError> {
    load(&state, &caller, id).await?;
    let read = read_from(query)?;
    Ok(Json(changes(&state, &caller, id, read).await?))
}

/// `GET /instances/changes`: the feed of the `Element` token's instance.
pub(super) async fn own_changes(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<ChangesAnswer>, ApiError> {
    let id = caller.element_instance()?;
    load(&state, &caller, id).await?;
    let read = read_from(query)?;
    Ok(Json(changes(&state, &caller, id, read).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_others_are_refused() {
        for seq in [0, 1, 42, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(seq)).unwrap(), seq);
        }
        let forged = URL_SAFE_NO_PAD.encode("ocpoll-feed:1:-5");
        for bad in ["", "42", "not base64!", &URL_SAFE_NO_PAD.encode("other:1:5"), &forged] {
            let Err(ApiError::Invalid { problems, .. }) = decode_cursor(bad) else { panic!("{bad:?} accepted") };
            assert_eq!(problems[0].path, "after");
        }
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let Err(ApiError::Invalid { problems, .. }) =
            read_from(Some("limit=0&wait=61&eventType=MOVED&after=zzz".into()))
        else {
            panic!("accepted")
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["limit", "wait", "eventType", "after"]);
        let read = read_from(Some(format!("limit=5&wait=2.5&objectType=vendors&after={}", encode_cursor(9)))).unwrap();
        assert_eq!((read.limit, read.wait, read.after), (5, Duration::from_millis(2500), Some(9)));
        assert_eq!(read.object_type.as_deref(), Some("vendors"));
    }
}

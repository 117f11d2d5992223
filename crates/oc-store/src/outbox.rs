//! The rows of the event outbox — events, notifications, delivery attempts — as both the dispatcher's calls
//! ([`crate::delivery`]) and the API's ([`crate::activity`]) read them.

use oc_model::OrgId;
use oc_model::event::{Event, EventType};
use oc_model::ports::{EventView, NewAttempt, NotificationRecord, StoreError, StoredAttempt};
use uuid::Uuid;

use crate::codec::{from_json, from_ns, parse_status, parse_time, u32_of};
use crate::db::{ConnRef, Row, args};
use crate::error::corrupt;

/// Bytes of an answer kept with an attempt.
pub(crate) const EXCERPT_BYTES: usize = 1024;

pub(crate) const NOTIFICATION_COLUMNS: &str = "n.id, n.instance_id, n.object_type, n.status, n.attempts, n.created_at, \
     n.next_attempt_at, n.delivered_at, n.last_error";

/// The delivery status of an event: its notification's, else `pending` (or `dropped` with its instance, or
/// `withheld` when it was never to be sent by webhook).
pub(crate) const EVENT_STATUS: &str = "COALESCE(n.status, CASE WHEN e.withheld THEN 'withheld' WHEN e.dropped THEN 'dropped' \
     ELSE 'pending' END)";

/// The attempts of an event's notification (0 before it is batched).
pub(crate) const EVENT_ATTEMPTS: &str = "COALESCE(n.attempts, 0)";

pub(crate) const EVENT_VIEW_COLUMNS: &str = "e.seq, e.event_id, e.instance_id, e.event_type, e.object_type, e.object_id, \
     e.date, e.record, e.created_at, e.notification_id, COALESCE(n.attempts, 0) AS attempts";

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| corrupt(format_args!("uuid {s:?}: {e}")))
}

pub(crate) fn notification_from_row(r: &Row) -> Result<NotificationRecord, StoreError> {
    Ok(NotificationRecord {
        id: parse_uuid(&r.text("id")?)?,
        instance_id: r.i64("instance_id")?,
        object_type: r.text("object_type")?,
        status: parse_status(&r.text("status")?)?,
        attempts: u32_of(r.i64("attempts")?),
        created_at: from_ns(r.i64("created_at")?),
        next_attempt_at: r.opt_i64("next_attempt_at")?.map(from_ns),
        delivered_at: r.opt_i64("delivered_at")?.map(from_ns),
        last_error: r.opt_text("last_error")?,
    })
}

pub(crate) fn event_from_row(r: &Row) -> Result<Event, StoreError> {
    let kind = r.text("event_type")?;
    Ok(Event {
        event_id: parse_uuid(&r.text("event_id")?)?,
        event_type: EventType::parse(&kind).ok_or_else(|| corrupt(format_args!("event type {kind:?}")))?,
        object_type: r.text("object_type")?,
        object_id: r.text("object_id")?,
        date: parse_time(&r.text("date")?)?,
        record: from_json("event record", &r.text("record")?)?,
    })
}

pub(crate) fn event_view_from_row(r: &Row) -> Result<EventView, StoreError> {
    Ok(EventView {
        seq: r.i64("seq")?,
        attempts: u32_of(r.i64("attempts")?),
        event: event_from_row(r)?,
        instance_id: r.i64("instance_id")?,
        created_at: from_ns(r.i64("created_at")?),
        status: parse_status(&r.text("status")?)?,
        notification_id: r.opt_text("notification_id")?.as_deref().map(parse_uuid).transpose()?,
    })
}

pub(crate) fn attempt_from_row(r: &Row) -> Result<StoredAttempt, StoreError> {
    Ok(StoredAttempt {
        number: u32_of(r.i64("number")?),
        attempt: NewAttempt {
            at: from_ns(r.i64("at")?),
            status_code: r.opt_i64("status_code")?.and_then(|c| u16::try_from(c).ok()),
            latency_ms: u64::try_from(r.i64("latency_ms")?).unwrap_or(0),
            error: r.opt_text("error")?,
            response_excerpt: r.text("response_excerpt")?,
        },
    })
}

/// The first [`EXCERPT_BYTES`] of `s`, cut on a character boundary.
pub(crate) fn excerpt(s: &str) -> String {
    if s.len() <= EXCERPT_BYTES {
        return s.to_string();
    }
    let mut end = EXCERPT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

pub(crate) async fn attempts_of(c: &mut ConnRef<'_>, notification: &str) -> Result<Vec<StoredAttempt>, StoreError> {
    let rows = c
        .all(
            "SELECT number, at, status_code, latency_ms, error, response_excerpt FROM attempts \
             WHERE notification_id = $1 ORDER BY number",
            args![notification],
        )
        .await?;
    rows.iter().map(attempt_from_row).collect()
}

pub(crate) async fn notification_of(
    c: &mut ConnRef<'_>,
    org: OrgId,
    id: &str,
) -> Result<Option<NotificationRecord>, StoreError> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n JOIN instances i ON i.id = n.instance_id \
         WHERE n.id = $1 AND i.org_id = $2"
    );
    c.opt(&sql, args![id, org]).await?.as_ref().map(notification_from_row).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        let check = |input: &str, len: usize| assert_eq!(excerpt(input).len(), len, "{input:?}");
        check("short", 5);
        check(&"a".repeat(2000), 1024);
        check(&"é".repeat(600), 1024);
        check(&format!("a{}", "é".repeat(600)), 1023);
    }
}

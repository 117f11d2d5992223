//! The event outbox, notifications and delivery attempts: batching events into notifications, claiming due
//! notifications under leases with per-object order, recording attempts, redelivery and retention.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::event::{Event, EventType, MAX_EVENTS_PER_NOTIFICATION};
use oc_model::ports::{
    DeliveryClaim, EventDetail, EventFilter, EventPage, EventView, Lease, NewAttempt, NextStep, NotificationRecord,
    NotificationStatus, OutboxStats, OutboxStore, StoreError, StoredAttempt,
};
use oc_model::{InstanceId, OrgId};
use uuid::Uuid;

use crate::SqlStore;
use crate::codec::{after, count, from_json, from_ns, ns, parse_status, parse_time, status_text, u32_of};
use crate::db::{ConnRef, Row, Val, args};
use crate::error::corrupt;
use crate::polls::lease_lost;

/// Events taken per [`OutboxStore::batch_events`] call, so one transaction stays short.
const BATCH_EVENTS_LIMIT: i64 = 5_000;
/// Notifications pruned per transaction.
const PRUNE_CHUNK: i64 = 1_000;
/// Bytes of an answer kept with an attempt.
const EXCERPT_BYTES: usize = 1024;

const NOTIFICATION_COLUMNS: &str = "n.id, n.instance_id, n.object_type, n.status, n.attempts, n.created_at, \
     n.next_attempt_at, n.delivered_at, n.last_error";

const EVENT_STATUS: &str = "COALESCE(n.status, CASE WHEN e.dropped THEN 'dropped' ELSE 'pending' END)";

const EVENT_VIEW_COLUMNS: &str = "e.event_id, e.instance_id, e.event_type, e.object_type, e.object_id, e.date, \
     e.record, e.created_at, e.notification_id";

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| corrupt(format_args!("uuid {s:?}: {e}")))
}

fn notification_from_row(r: &Row) -> Result<NotificationRecord, StoreError> {
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

fn event_from_row(r: &Row) -> Result<Event, StoreError> {
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

fn event_view_from_row(r: &Row) -> Result<EventView, StoreError> {
    Ok(EventView {
        event: event_from_row(r)?,
        instance_id: r.i64("instance_id")?,
        created_at: from_ns(r.i64("created_at")?),
        status: parse_status(&r.text("status")?)?,
        notification_id: r.opt_text("notification_id")?.as_deref().map(parse_uuid).transpose()?,
    })
}

fn attempt_from_row(r: &Row) -> Result<StoredAttempt, StoreError> {
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
fn excerpt(s: &str) -> String {
    if s.len() <= EXCERPT_BYTES {
        return s.to_string();
    }
    let mut end = EXCERPT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Which notifications a claim takes.
#[derive(Clone, Copy)]
enum Claimable {
    /// Being delivered under a lease that lapsed.
    Lapsed,
    /// Pending and due.
    Due,
}

/// Leases up to `limit` notifications of one kind to `owner`. Each kind is read in order from its own index,
/// so the cost follows the notifications claimed, not the size of the outbox.
async fn claim_some(
    c: &mut ConnRef<'_>,
    kind: Claimable,
    owner: &str,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let (status, time) = match kind {
        Claimable::Lapsed => ("delivering", "lease_expires_at"),
        Claimable::Due => ("pending", "next_attempt_at"),
    };
    // Per-object order: not while an earlier notification holding an event of the same object is still
    // pending or being delivered.
    let due = format!(
        "SELECT n.nseq FROM notifications n JOIN instances i ON i.id = n.instance_id \
         WHERE n.status = '{status}' AND n.{time} <= $3 \
         AND i.deleted_at IS NULL AND NOT i.disabled AND i.notifications_enabled \
         AND i.notifications_disabled_reason IS NULL \
         AND NOT EXISTS (SELECT 1 FROM events e \
             JOIN events o ON o.instance_id = e.instance_id AND o.object_type = e.object_type \
                 AND o.object_id = e.object_id \
             JOIN notifications m ON m.id = o.notification_id \
             WHERE e.notification_id = n.id AND m.nseq < n.nseq AND m.status IN ('pending', 'delivering')) \
         ORDER BY n.{time}, n.nseq LIMIT $4"
    );
    let set = "SET status = 'delivering', lease_owner = $1, lease_generation = lease_generation + 1, \
         lease_expires_at = $2";
    let returning = "RETURNING notifications.nseq, notifications.id, notifications.instance_id, \
         notifications.object_type, notifications.status, notifications.attempts, notifications.created_at, \
         notifications.next_attempt_at, notifications.delivered_at, notifications.last_error, \
         notifications.lease_generation";
    let sql = if c.is_pg() {
        format!(
            "UPDATE notifications {set} FROM ({due} FOR UPDATE OF n SKIP LOCKED) due \
             WHERE notifications.nseq = due.nseq {returning}"
        )
    } else {
        format!("UPDATE notifications {set} WHERE nseq IN ({due}) {returning}")
    };
    c.all(&sql, args![owner, ns(expires), ns(now), count(limit)]).await
}

async fn attempts_of(c: &mut ConnRef<'_>, notification: &str) -> Result<Vec<StoredAttempt>, StoreError> {
    let rows = c
        .all(
            "SELECT number, at, status_code, latency_ms, error, response_excerpt FROM attempts \
             WHERE notification_id = $1 ORDER BY number",
            args![notification],
        )
        .await?;
    rows.iter().map(attempt_from_row).collect()
}

async fn notification_of(c: &mut ConnRef<'_>, org: OrgId, id: &str) -> Result<Option<NotificationRecord>, StoreError> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n JOIN instances i ON i.id = n.instance_id \
         WHERE n.id = $1 AND i.org_id = $2"
    );
    c.opt(&sql, args![id, org]).await?.as_ref().map(notification_from_row).transpose()
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn batch_events(&self, now: DateTime<Utc>, max_events: usize) -> Result<usize, StoreError> {
        let max = max_events.clamp(1, MAX_EVENTS_PER_NOTIFICATION);
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        if c.is_pg() {
            // One batcher at a time per schema; the other waits (briefly) rather than skipping, so a caller
            // never reads "nothing to batch" while events wait.
            c.exec("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.ocpoll.batch_events'))", args![])
                .await?;
        }
        let rows = c
            .all(
                "SELECT seq, instance_id, object_type FROM events WHERE notification_id IS NULL AND NOT dropped \
                 ORDER BY seq LIMIT $1",
                args![BATCH_EVENTS_LIMIT],
            )
            .await?;
        // Groups in order of their first event, events in outbox order.
        let mut groups: Vec<((i64, String), Vec<i64>)> = Vec::new();
        let mut index: HashMap<(i64, String), usize> = HashMap::new();
        for r in &rows {
            let key = (r.i64("instance_id")?, r.text("object_type")?);
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(r.i64("seq")?);
        }
        let mut built = 0;
        for ((instance, object_type), seqs) in &groups {
            for chunk in seqs.chunks(max) {
                let id = Uuid::new_v4().to_string();
                c.exec(
                    "INSERT INTO notifications (id, instance_id, object_type, status, created_at, next_attempt_at) \
                     VALUES ($1, $2, $3, 'pending', $4, $4)",
                    args![&id, *instance, object_type, ns(now)],
                )
                .await?;
                let mut values: Vec<Val> = args![&id];
                values.extend(chunk.iter().map(|s| Val::I64(*s)));
                c.exec(
                    &format!(
                        "UPDATE events SET notification_id = {} WHERE seq IN ({})",
                        c.placeholders(1, 1),
                        c.placeholders(2, chunk.len())
                    ),
                    values,
                )
                .await?;
                built += 1;
            }
        }
        tx.commit().await?;
        Ok(built)
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<DeliveryClaim>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let expires = after(now, ttl);
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        // Lapsed leases first (their node died), then due notifications, oldest due first.
        let mut rows = claim_some(&mut c, Claimable::Lapsed, owner, expires, now, limit).await?;
        if rows.len() < limit {
            let more = claim_some(&mut c, Claimable::Due, owner, expires, now, limit - rows.len()).await?;
            rows.extend(more);
        }
        let mut claims = Vec::with_capacity(rows.len());
        for r in &rows {
            let lease = Lease {
                owner: owner.to_string(),
                generation: r.i64("lease_generation")?,
                expires_at: from_ns(ns(expires)),
            };
            claims.push((
                r.i64("nseq")?,
                DeliveryClaim { notification: notification_from_row(r)?, events: Vec::new(), lease },
            ));
        }
        claims.sort_by_key(|(nseq, _)| *nseq);
        if !claims.is_empty() {
            let ids: Vec<Val> = claims.iter().map(|(_, cl)| Val::Text(cl.notification.id.to_string())).collect();
            let sql = format!(
                "SELECT notification_id, event_id, event_type, object_type, object_id, date, record FROM events \
                 WHERE notification_id IN ({}) ORDER BY seq",
                c.placeholders(1, ids.len())
            );
            let rows = c.all(&sql, ids).await?;
            let position: HashMap<String, usize> =
                claims.iter().enumerate().map(|(i, (_, cl))| (cl.notification.id.to_string(), i)).collect();
            for r in &rows {
                if let Some(&i) = position.get(&r.text("notification_id")?) {
                    claims[i].1.events.push(event_from_row(r)?);
                }
            }
        }
        tx.commit().await?;
        Ok(claims.into_iter().map(|(_, cl)| cl).collect())
    }

    async fn record_attempt(
        &self,
        notification: Uuid,
        lease: &Lease,
        attempt: &NewAttempt,
        next: NextStep,
    ) -> Result<(), StoreError> {
        let now = after(attempt.at, Duration::from_millis(attempt.latency_ms));
        let (status, next_at, delivered_at) = match next {
            NextStep::Delivered => (NotificationStatus::Delivered, None, Some(ns(now))),
            NextStep::RetryAt(t) => (NotificationStatus::Pending, Some(ns(t)), None),
            NextStep::Failed => (NotificationStatus::Failed, None, None),
        };
        let last_error = match (next, &attempt.error, attempt.status_code) {
            (NextStep::Delivered, _, _) => None,
            (_, Some(e), _) => Some(e.clone()),
            (_, None, Some(code)) => Some(format!("HTTP {code}")),
            (_, None, None) => None,
        };
        let id = notification.to_string();
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let row = c
            .opt(
                "UPDATE notifications SET status = $5, attempts = attempts + 1, next_attempt_at = $6, \
                 delivered_at = $7, last_error = $8, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND status = 'delivering' AND lease_owner = $2 AND lease_generation = $3 \
                 AND lease_expires_at > $4 RETURNING attempts",
                args![
                    id.clone(),
                    &lease.owner,
                    lease.generation,
                    ns(now),
                    status_text(status),
                    next_at,
                    delivered_at,
                    last_error
                ],
            )
            .await?;
        let Some(row) = row else { return Err(lease_lost(&format!("notification {notification}"))) };
        c.exec(
            "INSERT INTO attempts (notification_id, number, at, status_code, latency_ms, error, response_excerpt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            args![
                id,
                row.i64("attempts")?,
                ns(attempt.at),
                attempt.status_code.map(i64::from),
                i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
                attempt.error.clone(),
                excerpt(&attempt.response_excerpt)
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn list_events(&self, org: OrgId, filter: &EventFilter) -> Result<EventPage, StoreError> {
        let mut conditions = String::from("i.org_id = $1");
        let mut values: Vec<Val> = args![org];
        if let Some(instance) = filter.instance_id {
            values.push(Val::I64(instance));
            conditions.push_str(&format!(" AND e.instance_id = ${}", values.len()));
        }
        if let Some(status) = filter.status {
            values.push(Val::from(status_text(status)));
            conditions.push_str(&format!(" AND {EVENT_STATUS} = ${}", values.len()));
        }
        if let Some(kind) = filter.event_type {
            values.push(Val::from(kind.as_str()));
            conditions.push_str(&format!(" AND e.event_type = ${}", values.len()));
        }
        if let Some(object_type) = &filter.object_type {
            values.push(Val::from(object_type));
            conditions.push_str(&format!(" AND e.object_type = ${}", values.len()));
        }
        let from = "FROM events e JOIN instances i ON i.id = e.instance_id \
             LEFT JOIN notifications n ON n.id = e.notification_id";
        let page_size = if filter.page_size == 0 { 50 } else { i64::from(filter.page_size.min(1000)) };
        let offset = i64::from(filter.page.max(1) - 1) * page_size;
        let mut conn = self.pools.read().await?;
        let mut c = conn.c();
        let total = c
            .one(&format!("SELECT COUNT(*) AS total {from} WHERE {conditions}"), values.clone())
            .await?
            .i64("total")?;
        let n = values.len();
        values.push(Val::I64(page_size));
        values.push(Val::I64(offset));
        let sql = format!(
            "SELECT {EVENT_VIEW_COLUMNS}, {EVENT_STATUS} AS status {from} WHERE {conditions} \
             ORDER BY e.seq DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let rows = c.all(&sql, values).await?;
        let items = rows.iter().map(event_view_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(EventPage { items, total: u64::try_from(total).unwrap_or(0) })
    }

    async fn event_detail(&self, org: OrgId, event_id: Uuid) -> Result<Option<EventDetail>, StoreError> {
        let mut conn = self.pools.read().await?;
        let mut c = conn.c();
        let sql = format!(
            "SELECT {EVENT_VIEW_COLUMNS}, {EVENT_STATUS} AS status FROM events e \
             JOIN instances i ON i.id = e.instance_id LEFT JOIN notifications n ON n.id = e.notification_id \
             WHERE e.event_id = $1 AND i.org_id = $2"
        );
        let Some(row) = c.opt(&sql, args![event_id.to_string(), org]).await? else { return Ok(None) };
        let event = event_view_from_row(&row)?;
        let (notification, attempts) = match event.notification_id {
            Some(id) => {
                let id = id.to_string();
                (notification_of(&mut c, org, &id).await?, attempts_of(&mut c, &id).await?)
            }
            None => (None, Vec::new()),
        };
        Ok(Some(EventDetail { event, notification, attempts }))
    }

    async fn notification(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<Option<(NotificationRecord, Vec<StoredAttempt>)>, StoreError> {
        let mut conn = self.pools.read().await?;
        let mut c = conn.c();
        let id = id.to_string();
        let Some(record) = notification_of(&mut c, org, &id).await? else { return Ok(None) };
        Ok(Some((record, attempts_of(&mut c, &id).await?)))
    }

    async fn redeliver(&self, org: OrgId, notification: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.pools.write().await?;
        let n = tx
            .c()
            .exec(
                "UPDATE notifications SET status = 'pending', next_attempt_at = $3 WHERE id = $1 AND status = 'failed' \
                 AND instance_id IN (SELECT id FROM instances WHERE org_id = $2 AND deleted_at IS NULL)",
                args![notification.to_string(), org, ns(now)],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn redeliver_failed(&self, org: OrgId, instance: InstanceId, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pools.write().await?;
        let n = tx
            .c()
            .exec(
                "UPDATE notifications SET status = 'pending', next_attempt_at = $3 \
                 WHERE instance_id = $1 AND status = 'failed' \
                 AND instance_id IN (SELECT id FROM instances WHERE org_id = $2 AND deleted_at IS NULL)",
                args![instance, org, ns(now)],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn prune_delivered(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // Delivered notifications by delivery time, dropped ones by age; failed ones stay. In chunks, so the
        // SQLite writer is never held long.
        let mut pruned = 0u64;
        loop {
            let mut tx = self.pools.write().await?;
            let mut c = tx.c();
            let rows = c
                .all(
                    "SELECT id FROM notifications WHERE (status = 'delivered' AND delivered_at < $1) \
                     OR (status = 'dropped' AND created_at < $1) LIMIT $2",
                    args![ns(before), PRUNE_CHUNK],
                )
                .await?;
            let ids = rows.iter().map(|r| r.text("id").map(Val::Text)).collect::<Result<Vec<_>, _>>()?;
            if ids.is_empty() {
                break;
            }
            let list = c.placeholders(1, ids.len());
            c.exec(&format!("DELETE FROM attempts WHERE notification_id IN ({list})"), ids.clone()).await?;
            c.exec(&format!("DELETE FROM events WHERE notification_id IN ({list})"), ids.clone()).await?;
            pruned += c.exec(&format!("DELETE FROM notifications WHERE id IN ({list})"), ids.clone()).await?;
            tx.commit().await?;
            if (ids.len() as i64) < PRUNE_CHUNK {
                break;
            }
        }
        let mut tx = self.pools.write().await?;
        tx.c()
            .exec("DELETE FROM events WHERE notification_id IS NULL AND dropped AND created_at < $1", args![ns(before)])
            .await?;
        tx.commit().await?;
        Ok(pruned)
    }

    async fn outbox_stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreError> {
        let mut conn = self.pools.read().await?;
        let row = conn
            .c()
            .one(
                "SELECT \
                 (SELECT COUNT(*) FROM events WHERE notification_id IS NULL AND NOT dropped) AS unbatched, \
                 (SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'delivering')) AS pending, \
                 (SELECT COUNT(*) FROM notifications WHERE status = 'failed') AS failed, \
                 (SELECT MIN(created_at) FROM notifications WHERE status IN ('pending', 'delivering')) AS oldest",
                args![],
            )
            .await?;
        let gauge = |v: i64| u64::try_from(v).unwrap_or(0);
        let oldest = row.opt_i64("oldest")?.map(|t| (now - from_ns(t)).num_seconds().max(0)).unwrap_or(0);
        Ok(OutboxStats {
            unbatched_events: gauge(row.i64("unbatched")?),
            pending_notifications: gauge(row.i64("pending")?),
            failed_notifications: gauge(row.i64("failed")?),
            oldest_pending_secs: gauge(oldest),
        })
    }
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

//! The event outbox, notifications and delivery attempts: batching events into notifications, claiming due
//! notifications under leases with per-object order, recording attempts, redelivery and retention.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::event::{Event, EventType, MAX_EVENTS_PER_NOTIFICATION};
use oc_model::ports::{
    AttemptRecord, DeliveryClaim, EventDetail, EventFilter, EventPage, EventView, Lease, NewAttempt, NextStep,
    NotificationRecord, NotificationStatus, OutboxStats, OutboxStore, StoreError, StoredAttempt,
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
/// Rows per multi-row statement of [`OutboxStore::batch_events`] (notifications; twice as many events).
const BATCH_CHUNK: usize = 500;
/// Notifications pruned per transaction.
const PRUNE_CHUNK: i64 = 1_000;
/// Bytes of an answer kept with an attempt.
const EXCERPT_BYTES: usize = 1024;
/// Attempts written per statement by [`OutboxStore::record_attempts`] (8 bound values each; SQLite takes up to
/// 32,766 per statement, PostgreSQL 65,535).
const RECORD_CHUNK: usize = 256;

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

/// What an attempt writes into its notification.
struct Transition {
    /// When the attempt ended: the lease must still hold then.
    now: i64,
    status: NotificationStatus,
    next_at: Option<i64>,
    delivered_at: Option<i64>,
    last_error: Option<String>,
}

fn transition(attempt: &NewAttempt, next: NextStep) -> Transition {
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
    Transition { now: ns(now), status, next_at, delivered_at, last_error }
}

/// The values of an attempt row after its notification id and number.
fn attempt_values(attempt: &NewAttempt) -> [Val; 5] {
    [
        Val::I64(ns(attempt.at)),
        Val::OptI64(attempt.status_code.map(i64::from)),
        Val::I64(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX)),
        Val::OptText(attempt.error.clone()),
        Val::Text(excerpt(&attempt.response_excerpt)),
    ]
}

/// Records the attempts of `chunk` (records of distinct notifications) with two multi-row statements: one
/// `UPDATE` with the same lease check as a single record, then one `INSERT` of the attempt rows of the
/// notifications it updated. Returns the ids recorded.
async fn record_chunk(c: &mut ConnRef<'_>, chunk: &[&AttemptRecord]) -> Result<HashSet<Uuid>, StoreError> {
    let ids: HashMap<String, &AttemptRecord> = chunk.iter().map(|r| (r.notification.to_string(), *r)).collect();
    if c.is_pg() {
        // Row locks in one order, so that two transactions writing overlapping notifications wait for each other
        // instead of deadlocking.
        let mut sorted: Vec<&String> = ids.keys().collect();
        sorted.sort();
        let sql = format!(
            "SELECT id FROM notifications WHERE id IN ({}) ORDER BY id FOR UPDATE",
            c.placeholders(1, sorted.len())
        );
        c.all(&sql, sorted.into_iter().map(Val::from).collect()).await?;
    }
    const UPDATE_COLUMNS: usize = 8;
    let mut rows = Vec::with_capacity(chunk.len());
    let mut values = Vec::with_capacity(chunk.len() * UPDATE_COLUMNS);
    for (j, r) in chunk.iter().enumerate() {
        let t = transition(&r.attempt, r.next);
        rows.push(format!("({})", c.placeholders(1 + j * UPDATE_COLUMNS, UPDATE_COLUMNS)));
        values.extend([
            Val::Text(r.notification.to_string()),
            Val::from(&r.lease.owner),
            Val::I64(r.lease.generation),
            Val::I64(t.now),
            Val::from(status_text(t.status)),
            Val::OptI64(t.next_at),
            Val::OptI64(t.delivered_at),
            Val::OptText(t.last_error),
        ]);
    }
    let sql = format!(
        "WITH v (id, owner, generation, ended_at, status, next_at, delivered_at, last_error) AS (VALUES {}) \
         UPDATE notifications SET status = v.status, attempts = notifications.attempts + 1, \
         next_attempt_at = v.next_at, delivered_at = v.delivered_at, last_error = v.last_error, \
         lease_owner = NULL, lease_expires_at = NULL \
         FROM v WHERE notifications.id = v.id AND notifications.status = 'delivering' \
         AND notifications.lease_owner = v.owner AND notifications.lease_generation = v.generation \
         AND notifications.lease_expires_at > v.ended_at \
         RETURNING notifications.id, notifications.attempts",
        rows.join(", ")
    );
    let updated = c.all(&sql, values).await?;
    if updated.is_empty() {
        return Ok(HashSet::new());
    }
    const INSERT_COLUMNS: usize = 7;
    let mut done = HashSet::with_capacity(updated.len());
    let mut rows = Vec::with_capacity(updated.len());
    let mut values = Vec::with_capacity(updated.len() * INSERT_COLUMNS);
    for (j, u) in updated.iter().enumerate() {
        let id = u.text("id")?;
        let r = ids.get(&id).ok_or_else(|| corrupt(format_args!("notification {id} updated but not asked for")))?;
        rows.push(format!("({})", c.placeholders(1 + j * INSERT_COLUMNS, INSERT_COLUMNS)));
        values.push(Val::Text(id));
        values.push(Val::I64(u.i64("attempts")?));
        values.extend(attempt_values(&r.attempt));
        done.insert(r.notification);
    }
    let sql = format!(
        "INSERT INTO attempts (notification_id, number, at, status_code, latency_ms, error, response_excerpt) \
         VALUES {}",
        rows.join(", ")
    );
    c.exec(&sql, values).await?;
    Ok(done)
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
        // The notifications in group order (their `nseq` follows it, so a later change of an object is in a
        // later notification), then which events each holds; a few multi-row statements for the whole batch.
        let mut notifications: Vec<(String, i64, &str)> = Vec::new();
        let mut assignments: Vec<(i64, usize)> = Vec::with_capacity(rows.len());
        for ((instance, object_type), seqs) in &groups {
            for chunk in seqs.chunks(max) {
                notifications.push((Uuid::new_v4().to_string(), *instance, object_type.as_str()));
                assignments.extend(chunk.iter().map(|seq| (*seq, notifications.len() - 1)));
            }
        }
        for chunk in notifications.chunks(BATCH_CHUNK) {
            // (id, instance_id, object_type, 'pending', created_at, next_attempt_at): due at once
            let rows: Vec<String> = (0..chunk.len())
                .map(|j| {
                    let p = |k: usize| c.placeholders(1 + j * 5 + k, 1);
                    format!("({}, {}, {}, 'pending', {}, {})", p(0), p(1), p(2), p(3), p(4))
                })
                .collect();
            let mut values = Vec::with_capacity(chunk.len() * 5);
            for (id, instance, object_type) in chunk {
                values.extend([
                    Val::from(id),
                    Val::I64(*instance),
                    Val::from(*object_type),
                    Val::I64(ns(now)),
                    Val::I64(ns(now)),
                ]);
            }
            c.exec(
                &format!(
                    "INSERT INTO notifications (id, instance_id, object_type, status, created_at, next_attempt_at) \
                     VALUES {}",
                    rows.join(", ")
                ),
                values,
            )
            .await?;
        }
        for chunk in assignments.chunks(BATCH_CHUNK * 2) {
            let rows: Vec<String> = (0..chunk.len()).map(|j| format!("({})", c.placeholders(1 + j * 2, 2))).collect();
            let mut values = Vec::with_capacity(chunk.len() * 2);
            for (seq, n) in chunk {
                values.extend([Val::I64(*seq), Val::from(&notifications[*n].0)]);
            }
            c.exec(
                &format!(
                    "WITH v (seq, notification_id) AS (VALUES {}) \
                     UPDATE events SET notification_id = v.notification_id FROM v WHERE events.seq = v.seq",
                    rows.join(", ")
                ),
                values,
            )
            .await?;
        }
        let built = notifications.len();
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
        let event_rows = if rows.is_empty() {
            Vec::new()
        } else {
            let ids = rows.iter().map(|r| r.text("id").map(Val::Text)).collect::<Result<Vec<_>, _>>()?;
            let sql = format!(
                "SELECT notification_id, event_id, event_type, object_type, object_id, date, record FROM events \
                 WHERE notification_id IN ({}) ORDER BY seq",
                c.placeholders(1, ids.len())
            );
            c.all(&sql, ids).await?
        };
        tx.commit().await?;
        // Decoded once the writer is free again.
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
        let position: HashMap<String, usize> =
            claims.iter().enumerate().map(|(i, (_, cl))| (cl.notification.id.to_string(), i)).collect();
        for r in &event_rows {
            if let Some(&i) = position.get(&r.text("notification_id")?) {
                claims[i].1.events.push(event_from_row(r)?);
            }
        }
        Ok(claims.into_iter().map(|(_, cl)| cl).collect())
    }

    async fn record_attempt(
        &self,
        notification: Uuid,
        lease: &Lease,
        attempt: &NewAttempt,
        next: NextStep,
    ) -> Result<(), StoreError> {
        let t = transition(attempt, next);
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
                    t.now,
                    status_text(t.status),
                    t.next_at,
                    t.delivered_at,
                    t.last_error
                ],
            )
            .await?;
        let Some(row) = row else { return Err(lease_lost(&format!("notification {notification}"))) };
        let mut values = args![id, row.i64("attempts")?];
        values.extend(attempt_values(attempt));
        c.exec(
            "INSERT INTO attempts (notification_id, number, at, status_code, latency_ms, error, response_excerpt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            values,
        )
        .await?;
        tx.commit().await
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // The same result as one `record_attempt` per record, in order: the k-th record of a notification goes
        // in the k-th wave, after the earlier ones; once one is recorded its lease is released, so the later
        // ones of that notification are refused without asking the database.
        let mut waves: Vec<Vec<&AttemptRecord>> = Vec::new();
        let mut seen: HashMap<Uuid, usize> = HashMap::new();
        for r in records {
            let k = seen.entry(r.notification).or_insert(0);
            if waves.len() <= *k {
                waves.push(Vec::new());
            }
            waves[*k].push(r);
            *k += 1;
        }
        let mut recorded: HashSet<Uuid> = HashSet::new();
        // which record of each notification was the one recorded
        let mut winner: HashMap<Uuid, usize> = HashMap::new();
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        for (k, wave) in waves.iter().enumerate() {
            let todo: Vec<&AttemptRecord> =
                wave.iter().copied().filter(|r| !recorded.contains(&r.notification)).collect();
            for chunk in todo.chunks(RECORD_CHUNK) {
                for id in record_chunk(&mut c, chunk).await? {
                    recorded.insert(id);
                    winner.insert(id, k);
                }
            }
        }
        tx.commit().await?;
        let mut occurrence: HashMap<Uuid, usize> = HashMap::new();
        Ok(records
            .iter()
            .map(|r| {
                let k = occurrence.entry(r.notification).or_insert(0);
                let won = winner.get(&r.notification) == Some(k);
                *k += 1;
                if won { Ok(()) } else { Err(lease_lost(&format!("notification {}", r.notification))) }
            })
            .collect())
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

//! [`DeliveryStore`] on SQL: batching outbox events into notifications, claiming due notifications (with their
//! instances) under leases with per-object order, and recording attempts in batches fenced by the lease.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::InstanceId;
use oc_model::event::MAX_EVENTS_PER_NOTIFICATION;
use oc_model::ports::{
    AlertType, AttemptRecord, DeliveryClaim, DeliveryStore, Lease, NewAttempt, NextStep, NotificationStatus, StoreError,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::SqlStore;
use crate::alerts::raise;
use crate::codec::{after, count, from_ns, ns, status_text};
use crate::db::{ConnRef, Row, Val, args};
use crate::error::corrupt;
use crate::outbox::{event_from_row, excerpt, notification_from_row};
use crate::polls::lease_lost;

/// Events taken per [`DeliveryStore::batch_events`] call, so one transaction stays short.
const BATCH_EVENTS_LIMIT: i64 = 5_000;
/// Rows per multi-row statement of [`DeliveryStore::batch_events`] (notifications; twice as many events).
const BATCH_CHUNK: usize = 500;
/// Attempts written per statement by [`DeliveryStore::record_attempts`] (8 bound values each; SQLite takes up to
/// 32,766 per statement, PostgreSQL 65,535).
const RECORD_CHUNK: usize = 256;

/// Which notifications a claim takes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Claimable {
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
    let sql = claim_sql(c.is_pg(), kind);
    c.all(&sql, args![owner, ns(expires), ns(now), count(limit)]).await
}

/// The statement of [`claim_some`]: `$1` owner, `$2` lease expiry, `$3` now, `$4` limit.
pub(crate) fn claim_sql(pg: bool, kind: Claimable) -> String {
    let (status, time) = match kind {
        Claimable::Lapsed => ("delivering", "lease_expires_at"),
        Claimable::Due => ("pending", "next_attempt_at"),
    };
    let set = "SET status = 'delivering', lease_owner = $1, lease_generation = lease_generation + 1, \
         lease_expires_at = $2";
    let returning = "RETURNING notifications.nseq, notifications.id, notifications.instance_id, \
         notifications.object_type, notifications.status, notifications.attempts, notifications.created_at, \
         notifications.next_attempt_at, notifications.delivered_at, notifications.last_error, \
         notifications.lease_generation";
    // Per-object order: not while an earlier notification holding an event of the same object is still
    // pending or being delivered.
    let earlier = "SELECT 1 FROM events e \
         JOIN events o ON o.instance_id = e.instance_id AND o.object_type = e.object_type AND o.object_id = e.object_id \
         JOIN notifications m ON m.id = o.notification_id \
         WHERE e.notification_id = n.id AND m.nseq < n.nseq AND m.status IN ('pending', 'delivering')";
    let switched_on = "i.deleted_at IS NULL AND NOT i.disabled AND i.notifications_enabled \
         AND i.notifications_disabled_reason IS NULL";
    if pg {
        // The conditions as subplans evaluated per notification while the claim walks its index in order and
        // stops at the limit: written as joins, the planner is free to join from the instances and to test every
        // pending notification before sorting (it does on fresh statistics: 28 ms a claim of 128 out of 4,000
        // pending), so a claim during a backlog would cost the backlog. Picked in an `ARRAY` sublink (evaluated
        // once) and updated through the primary key: as `UPDATE … FROM (subquery)`, a generic plan (the limit
        // unknown) may hash-join the picked rows with a sequential scan of the whole table (it did for the poll
        // claim, see `polls::poll_claim_sql`).
        format!(
            "UPDATE notifications {set} WHERE nseq = ANY(ARRAY(SELECT n.nseq FROM notifications n \
             WHERE n.status = '{status}' AND n.{time} <= $3 \
             AND (SELECT {switched_on} FROM instances i WHERE i.id = n.instance_id) \
             AND (SELECT NOT EXISTS ({earlier})) \
             ORDER BY n.{time}, n.nseq LIMIT $4 FOR UPDATE OF n SKIP LOCKED)) {returning}"
        )
    } else {
        format!(
            "UPDATE notifications {set} WHERE nseq IN (SELECT n.nseq FROM notifications n \
             JOIN instances i ON i.id = n.instance_id \
             WHERE n.status = '{status}' AND n.{time} <= $3 AND {switched_on} AND NOT EXISTS ({earlier}) \
             ORDER BY n.{time}, n.nseq LIMIT $4) {returning}"
        )
    }
}

/// What an attempt writes into its notification.
pub(crate) struct Transition {
    /// When the attempt ended: the lease must still hold then.
    pub(crate) now: i64,
    pub(crate) status: NotificationStatus,
    pub(crate) next_at: Option<i64>,
    pub(crate) delivered_at: Option<i64>,
    pub(crate) last_error: Option<String>,
}

pub(crate) fn transition(attempt: &NewAttempt, next: NextStep) -> Transition {
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
pub(crate) fn attempt_values(attempt: &NewAttempt) -> [Val; 5] {
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
         RETURNING notifications.id, notifications.attempts, notifications.instance_id, notifications.object_type",
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
    // a notification failed for good is reported, in the transaction that records it so
    for u in &updated {
        let id = u.text("id")?;
        let Some(r) = ids.get(&id).filter(|r| r.next == NextStep::Failed) else { continue };
        let events = c
            .all("SELECT event_id FROM events WHERE notification_id = $1 ORDER BY seq", args![&id])
            .await?
            .iter()
            .map(|e| e.text("event_id").map(Value::String))
            .collect::<Result<Vec<_>, _>>()?;
        let attempts = u.i64("attempts")?;
        let reason = match (&r.attempt.error, r.attempt.status_code) {
            (Some(e), _) => format!("failed for good after {attempts} attempts; the last: {e}"),
            (None, Some(code)) => format!("failed for good after {attempts} attempts; the last answered HTTP {code}"),
            (None, None) => format!("failed for good after {attempts} attempts"),
        };
        let mut fields = Map::new();
        fields.insert("notificationId".into(), Value::String(id.clone()));
        fields.insert("objectType".into(), Value::String(u.text("object_type")?));
        fields.insert("attempts".into(), Value::from(attempts));
        fields.insert("eventIds".into(), Value::Array(events));
        let at = transition(&r.attempt, r.next).now;
        raise(c, u.i64("instance_id")?, AlertType::NotificationFailed, from_ns(at), &reason, fields).await?;
    }
    Ok(done)
}

/// Builds notifications of `rows` (outbox position, instance, object type; in outbox order): groups of one
/// instance and object type in order of their first event, each cut into notifications of at most `max` events,
/// due at `now`; each event then points to its notification. Returns how many were built.
pub(crate) async fn build_notifications(
    c: &mut ConnRef<'_>,
    rows: &[(i64, i64, String)],
    now: DateTime<Utc>,
    max: usize,
) -> Result<usize, StoreError> {
    // Groups in order of their first event, events in outbox order.
    let mut groups: Vec<((i64, String), Vec<i64>)> = Vec::new();
    let mut index: HashMap<(i64, String), usize> = HashMap::new();
    for (seq, instance, object_type) in rows {
        let key = (*instance, object_type.clone());
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(*seq);
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
    Ok(notifications.len())
}

#[async_trait]
impl DeliveryStore for SqlStore {
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
        let rows = rows
            .iter()
            .map(|r| Ok((r.i64("seq")?, r.i64("instance_id")?, r.text("object_type")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let built = build_notifications(&mut c, &rows, now, max).await?;
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
                "SELECT notification_id, event_id, event_type, object_type, object_id, date, record, trace_parent \
                 FROM events WHERE notification_id IN ({}) ORDER BY seq",
                c.placeholders(1, ids.len())
            );
            c.all(&sql, ids).await?
        };
        tx.commit().await?;
        // Their instances, read (secrets decrypted) once the writer is free again.
        let instance_ids = rows.iter().map(|r| r.i64("instance_id")).collect::<Result<Vec<_>, _>>()?;
        let instances = self.instances_by_id(&instance_ids).await?;
        let mut claims = Vec::with_capacity(rows.len());
        for r in &rows {
            let lease = Lease {
                owner: owner.to_string(),
                generation: r.i64("lease_generation")?,
                expires_at: from_ns(ns(expires)),
            };
            let notification = notification_from_row(r)?;
            // deleted since the claim: its notifications are dropped, the claim is moot
            let Some(instance) = instances.get(&notification.instance_id).cloned() else { continue };
            claims.push((
                r.i64("nseq")?,
                DeliveryClaim { notification, events: Vec::new(), lease, instance, trace_parent: None },
            ));
        }
        claims.sort_by_key(|(nseq, _)| *nseq);
        let position: HashMap<String, usize> =
            claims.iter().enumerate().map(|(i, (_, cl))| (cl.notification.id.to_string(), i)).collect();
        for r in &event_rows {
            if let Some(&i) = position.get(&r.text("notification_id")?) {
                let claim = &mut claims[i].1;
                claim.events.push(event_from_row(r)?);
                if claim.trace_parent.is_none() {
                    claim.trace_parent = r.opt_text("trace_parent")?;
                }
            }
        }
        Ok(claims.into_iter().map(|(_, cl)| cl).collect())
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

    async fn set_notifications_disabled(&self, id: InstanceId, reason: Option<&str>) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let lock = if c.is_pg() { " FOR UPDATE" } else { "" };
        let Some(row) = c
            .opt(&format!("SELECT notifications_disabled_reason FROM instances WHERE id = $1{lock}"), args![id])
            .await?
        else {
            return Err(StoreError::NotFound(format!("instance {id}")));
        };
        c.exec("UPDATE instances SET notifications_disabled_reason = $2 WHERE id = $1", args![id, reason]).await?;
        if let Some(reason) = reason
            && row.opt_text("notifications_disabled_reason")?.is_none()
        {
            raise(&mut c, id, AlertType::NotificationsDisabled, now, reason, Map::new()).await?;
        }
        tx.commit().await
    }
}

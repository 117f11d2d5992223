//! [`AlertStore`] on SQL, and [`raise`]: the one way an alert is written, inside the transaction of the fact it
//! reports (an instance marked invalid, notifications switched off by a `410`, a notification failed for good, a
//! poll failing past the threshold), so that the fact and its alert commit together or not at all.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::ports::{
    AlertClaim, AlertPage, AlertRecord, AlertStatus, AlertStep, AlertStore, AlertType, Lease, NextStep, StoreError,
    StoredAttempt,
};
use oc_model::{InstanceId, OrgId};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::SqlStore;
use crate::codec::{after, count, from_ns, ns, time_text, u32_of};
use crate::db::{ConnRef, Row, Val, args};
use crate::delivery::{attempt_values, transition};
use crate::error::corrupt;
use crate::outbox::attempt_from_row;
use crate::polls::lease_lost;

const ALERT_COLUMNS: &str = "id, instance_id, alert_type, created_at, body, status, attempts, next_attempt_at, \
     delivered_at, last_error, target";

/// Writes an alert of `instance` into the outbox, due at once: `{"id", "type", "instanceId", "instanceName",
/// "elementKey", "at", "reason"}` and `fields`. Does nothing when the instance does not exist (or is deleted).
pub(crate) async fn raise(
    c: &mut ConnRef<'_>,
    instance: InstanceId,
    alert_type: AlertType,
    at: DateTime<Utc>,
    reason: &str,
    fields: Map<String, Value>,
) -> Result<(), StoreError> {
    let Some(row) = c
        .opt("SELECT org_id, name, element_key FROM instances WHERE id = $1 AND deleted_at IS NULL", args![instance])
        .await?
    else {
        return Ok(());
    };
    let id = Uuid::new_v4();
    let mut body = json!({
        "id": id.to_string(),
        "type": alert_type.as_str(),
        "instanceId": instance,
        "instanceName": row.text("name")?,
        "elementKey": row.text("element_key")?,
        "at": time_text(at),
        "reason": reason,
    });
    if let Value::Object(map) = &mut body {
        map.extend(fields);
    }
    c.exec(
        "INSERT INTO alerts (id, instance_id, org_id, alert_type, created_at, body, status, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $5)",
        args![id.to_string(), instance, row.i64("org_id")?, alert_type.as_str(), ns(at), body.to_string()],
    )
    .await?;
    Ok(())
}

fn alert_from_row(r: &Row) -> Result<AlertRecord, StoreError> {
    let id = r.text("id")?;
    let kind = r.text("alert_type")?;
    let status = r.text("status")?;
    let body = r.text("body")?;
    Ok(AlertRecord {
        id: Uuid::parse_str(&id).map_err(|e| corrupt(format_args!("alert id {id}: {e}")))?,
        instance_id: r.i64("instance_id")?,
        alert_type: AlertType::parse(&kind).ok_or_else(|| corrupt(format_args!("alert type {kind:?}")))?,
        created_at: from_ns(r.i64("created_at")?),
        body: serde_json::from_str(&body).map_err(|e| corrupt(format_args!("alert {id} body: {e}")))?,
        status: AlertStatus::parse(&status).ok_or_else(|| corrupt(format_args!("alert status {status:?}")))?,
        attempts: u32_of(r.i64("attempts")?),
        next_attempt_at: r.opt_i64("next_attempt_at")?.map(from_ns),
        delivered_at: r.opt_i64("delivered_at")?.map(from_ns),
        last_error: r.opt_text("last_error")?,
        target: r.opt_text("target")?,
    })
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn claim_alerts(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<AlertClaim>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let due =
            "(status = 'pending' AND next_attempt_at <= $1) OR (status = 'delivering' AND lease_expires_at <= $1)";
        // most of the time there is nothing: find that out on a reader, without taking the writer
        {
            let mut conn = self.pools.read().await?;
            if conn
                .c()
                .opt(&format!("SELECT 1 AS one FROM alerts WHERE {due} LIMIT 1"), args![ns(now)])
                .await?
                .is_none()
            {
                return Ok(Vec::new());
            }
        }
        let expires = after(now, ttl);
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let pick = format!("SELECT aseq FROM alerts WHERE {due} ORDER BY aseq LIMIT $2");
        let set = "SET status = 'delivering', lease_owner = $3, lease_generation = lease_generation + 1, \
                   lease_expires_at = $4";
        let returning = format!("RETURNING {ALERT_COLUMNS}, lease_generation");
        let sql = if c.is_pg() {
            format!(
                "UPDATE alerts {set} FROM ({pick} FOR UPDATE SKIP LOCKED) due WHERE alerts.aseq = due.aseq \
                 {returning}"
            )
        } else {
            format!("UPDATE alerts {set} WHERE aseq IN ({pick}) {returning}")
        };
        let rows = c.all(&sql, args![ns(now), count(limit), owner, ns(expires)]).await?;
        tx.commit().await?;
        let ids: Vec<InstanceId> = rows.iter().map(|r| r.i64("instance_id")).collect::<Result<_, _>>()?;
        let instances = self.instances_by_id(&ids).await?;
        let mut claims = rows
            .iter()
            .map(|r| {
                let alert = alert_from_row(r)?;
                let lease =
                    Lease { owner: owner.to_string(), generation: r.i64("lease_generation")?, expires_at: expires };
                let instance = instances.get(&alert.instance_id).map(|i| (**i).clone());
                Ok(AlertClaim { alert, lease, instance })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        claims.sort_by_key(|c| c.alert.created_at);
        Ok(claims)
    }

    async fn record_alert(&self, id: Uuid, lease: &Lease, step: &AlertStep) -> Result<(), StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let fence = "id = $1 AND status = 'delivering' AND lease_owner = $2 AND lease_generation = $3 \
                     AND lease_expires_at > $4";
        let n = match step {
            AlertStep::Unrouted { at } => {
                c.exec(
                    &format!(
                        "UPDATE alerts SET status = 'unrouted', next_attempt_at = NULL, target = NULL, \
                         last_error = 'no operational webhook is configured (the instance''s \
                         event.notification.operational.callback.url or the server''s --operational-webhook-url)', \
                         lease_owner = NULL, lease_expires_at = NULL WHERE {fence}"
                    ),
                    args![id.to_string(), &lease.owner, lease.generation, ns(*at)],
                )
                .await?
            }
            AlertStep::Attempted { target, attempt, next } => {
                // what an attempt writes is a notification's: the same transition and attempt row
                let t = transition(attempt, *next);
                let status = match next {
                    NextStep::Delivered => AlertStatus::Delivered,
                    NextStep::RetryAt(_) => AlertStatus::Pending,
                    NextStep::Failed => AlertStatus::Failed,
                };
                let row = c
                    .opt(
                        &format!(
                            "UPDATE alerts SET status = $5, attempts = attempts + 1, next_attempt_at = $6, \
                             delivered_at = $7, last_error = $8, target = $9, lease_owner = NULL, \
                             lease_expires_at = NULL WHERE {fence} RETURNING attempts"
                        ),
                        args![
                            id.to_string(),
                            &lease.owner,
                            lease.generation,
                            t.now,
                            status.as_str(),
                            t.next_at,
                            t.delivered_at,
                            t.last_error,
                            *target
                        ],
                    )
                    .await?;
                match row {
                    Some(r) => {
                        let mut values = vec![Val::Text(id.to_string()), Val::I64(r.i64("attempts")?)];
                        values.extend(attempt_values(attempt));
                        c.exec(
                            "INSERT INTO alert_attempts (alert_id, number, at, status_code, latency_ms, error, \
                             response_excerpt) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            values,
                        )
                        .await?;
                        1
                    }
                    None => 0,
                }
            }
        };
        tx.commit().await?;
        if n == 0 { Err(lease_lost(&format!("alert {id}"))) } else { Ok(()) }
    }

    async fn list_alerts(
        &self,
        org: OrgId,
        instance: InstanceId,
        alert_type: Option<AlertType>,
        limit: u32,
        offset: u64,
    ) -> Result<Option<AlertPage>, StoreError> {
        let mut conn = self.pools.read().await?;
        let mut c = conn.c();
        let owned = c
            .opt("SELECT id FROM instances WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL", args![instance, org])
            .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let kind = alert_type.map(AlertType::as_str);
        let filter = "instance_id = $1 AND ($2 IS NULL OR alert_type = $2)";
        let total = c.one(&format!("SELECT COUNT(*) AS n FROM alerts WHERE {filter}"), args![instance, kind]).await?;
        let rows = c
            .all(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE {filter} ORDER BY aseq DESC LIMIT $3 OFFSET $4"),
                args![instance, kind, i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX)],
            )
            .await?;
        Ok(Some(AlertPage {
            items: rows.iter().map(alert_from_row).collect::<Result<_, _>>()?,
            total: u64::try_from(total.i64("n")?).unwrap_or(0),
        }))
    }

    async fn alert(&self, org: OrgId, id: Uuid) -> Result<Option<(AlertRecord, Vec<StoredAttempt>)>, StoreError> {
        let mut conn = self.pools.read().await?;
        let mut c = conn.c();
        let row = c
            .opt(
                &format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1 AND org_id = $2 \
                     AND instance_id IN (SELECT id FROM instances WHERE org_id = $2 AND deleted_at IS NULL)"
                ),
                args![id.to_string(), org],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let rows = c
            .all(
                "SELECT number, at, status_code, latency_ms, error, response_excerpt FROM alert_attempts \
                 WHERE alert_id = $1 ORDER BY number",
                args![id.to_string()],
            )
            .await?;
        let attempts = rows.iter().map(attempt_from_row).collect::<Result<Vec<StoredAttempt>, _>>()?;
        Ok(Some((alert_from_row(&row)?, attempts)))
    }

    async fn redeliver_alert(&self, org: OrgId, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.pools.write().await?;
        let n = tx
            .c()
            .exec(
                "UPDATE alerts SET status = 'pending', next_attempt_at = $3 \
                 WHERE id = $1 AND org_id = $2 AND status <> 'delivering' \
                 AND instance_id IN (SELECT id FROM instances WHERE org_id = $2 AND deleted_at IS NULL)",
                args![id.to_string(), org, ns(now)],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}

//! [`MaintenanceStore`] on SQL: retention of delivered notifications, the outbox gauges, the leases a gone node
//! left behind, the node heartbeats (table `nodes`), and the write probe (row `write_probe` of `meta`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::ports::{MaintenanceStore, NodeBeat, OutboxStats, ReleasedLeases, StoreError, node_of_holder};

use crate::SqlStore;
use crate::codec::{from_ns, ns};
use crate::db::{Val, args};

/// Notifications pruned per transaction.
const PRUNE_CHUNK: i64 = 1_000;

/// How long the result of a write probe stands (of the `now` its callers pass).
pub(crate) const WRITE_PROBE_EVERY: chrono::Duration = chrono::Duration::seconds(2);
/// How long a write probe may take before it counts as failed.
const WRITE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The last write probe: when (the caller's `now`) and its result. Its lock is held through a probe, so
/// callers arriving meanwhile wait for that probe instead of writing again.
#[derive(Default)]
pub(crate) struct LastProbe(tokio::sync::Mutex<Option<Probed>>);

/// When a probe ran (the caller's `now`) and what it found.
type Probed = (DateTime<Utc>, Result<(), StoreError>);

impl SqlStore {
    /// One write in a short transaction: the probe row of `meta`, overwritten (the database does not grow).
    async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pools.write().await?;
        tx.c()
            .exec(
                "INSERT INTO meta (key, value) VALUES ('write_probe', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                args![ns(now).to_be_bytes().to_vec()],
            )
            .await?;
        tx.commit().await
    }
}

#[async_trait]
impl MaintenanceStore for SqlStore {
    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let sql = if c.is_pg() { "ANALYZE poll_jobs, instances, notifications" } else { "PRAGMA optimize" };
        c.exec(sql, args![]).await?;
        tx.commit().await?;
        Ok(())
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
            // the change feed's floor rises with what goes: a cursor below it would skip these changes
            c.exec(
                &format!(
                    "UPDATE instances SET feed_floor = x.m FROM (SELECT instance_id, MAX(seq) AS m FROM events \
                     WHERE notification_id IN ({list}) GROUP BY instance_id) x \
                     WHERE instances.id = x.instance_id AND instances.feed_floor < x.m"
                ),
                ids.clone(),
            )
            .await?;
            c.exec(&format!("DELETE FROM events WHERE notification_id IN ({list})"), ids.clone()).await?;
            pruned += c.exec(&format!("DELETE FROM notifications WHERE id IN ({list})"), ids.clone()).await?;
            tx.commit().await?;
            if (ids.len() as i64) < PRUNE_CHUNK {
                break;
            }
        }
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let old = "notification_id IS NULL AND dropped AND created_at < $1";
        c.exec(
            &format!(
                "UPDATE instances SET feed_floor = x.m FROM (SELECT instance_id, MAX(seq) AS m FROM events \
                 WHERE {old} GROUP BY instance_id) x \
                 WHERE instances.id = x.instance_id AND instances.feed_floor < x.m"
            ),
            args![ns(before)],
        )
        .await?;
        c.exec(&format!("DELETE FROM events WHERE {old}"), args![ns(before)]).await?;
        // alerts like notifications: delivered and unrouted ones by age, failed ones stay; those of deleted
        // instances go
        let gone = "(status IN ('delivered', 'unrouted') AND created_at < $1) \
                    OR instance_id IN (SELECT id FROM instances WHERE deleted_at IS NOT NULL)";
        c.exec(
            &format!("DELETE FROM alert_attempts WHERE alert_id IN (SELECT id FROM alerts WHERE {gone})"),
            args![ns(before)],
        )
        .await?;
        c.exec(&format!("DELETE FROM alerts WHERE {gone}"), args![ns(before)]).await?;
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

    async fn lease_holders(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pools.read().await?;
        let rows = conn
            .c()
            .all(
                "SELECT lease_owner AS holder FROM poll_jobs WHERE lease_owner IS NOT NULL AND lease_expires_at > $1 \
                 UNION SELECT lease_owner AS holder FROM notifications \
                     WHERE status = 'delivering' AND lease_owner IS NOT NULL AND lease_expires_at > $1 \
                 UNION SELECT refresh_holder AS holder FROM instance_tokens \
                     WHERE refresh_holder IS NOT NULL AND refresh_lock_until > $1 \
                 ORDER BY holder",
                args![ns(now)],
            )
            .await?;
        rows.iter().map(|r| r.text("holder")).collect()
    }

    async fn release_leases_of(&self, node: &str, now: DateTime<Utc>) -> Result<ReleasedLeases, StoreError> {
        let holders: Vec<String> =
            self.lease_holders(now).await?.into_iter().filter(|h| node_of_holder(h) == Some(node)).collect();
        let mut released = ReleasedLeases::default();
        if holders.is_empty() {
            return Ok(released);
        }
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        for holder in &holders {
            released.polls += c
                .exec(
                    "UPDATE poll_jobs SET lease_owner = NULL, lease_expires_at = NULL, \
                     next_run_at = COALESCE(due_at, next_run_at) WHERE lease_owner = $1 AND lease_expires_at > $2",
                    args![holder.as_str(), ns(now)],
                )
                .await?;
            released.deliveries += c
                .exec(
                    "UPDATE notifications SET lease_expires_at = $2 \
                     WHERE status = 'delivering' AND lease_owner = $1 AND lease_expires_at > $2",
                    args![holder.as_str(), ns(now)],
                )
                .await?;
            released.refresh_locks += c
                .exec(
                    "UPDATE instance_tokens SET refresh_holder = NULL, refresh_lock_until = NULL \
                     WHERE refresh_holder = $1",
                    args![holder.as_str()],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    async fn heartbeat(&self, node: &str, now: DateTime<Utc>, starting: bool) -> Result<(), StoreError> {
        let on_conflict = if starting {
            "beats = nodes.beats + 1, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at"
        } else {
            "beats = nodes.beats + 1, heartbeat_at = excluded.heartbeat_at"
        };
        let sql = format!(
            "INSERT INTO nodes (node_id, beats, started_at, heartbeat_at) VALUES ($1, 1, $2, $2) \
             ON CONFLICT (node_id) DO UPDATE SET {on_conflict}"
        );
        let mut tx = self.pools.write().await?;
        tx.c().exec(&sql, args![node, ns(now)]).await?;
        tx.commit().await
    }

    async fn nodes(&self) -> Result<Vec<NodeBeat>, StoreError> {
        let mut conn = self.pools.read().await?;
        let rows = conn
            .c()
            .all("SELECT node_id, beats, started_at, heartbeat_at FROM nodes ORDER BY node_id", args![])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeBeat {
                    node: r.text("node_id")?,
                    beats: r.i64("beats")?,
                    started_at: from_ns(r.i64("started_at")?),
                    heartbeat_at: from_ns(r.i64("heartbeat_at")?),
                })
            })
            .collect()
    }

    async fn forget_node(&self, node: &str, beats: Option<i64>) -> Result<bool, StoreError> {
        let mut tx = self.pools.write().await?;
        let gone = match beats {
            None => tx.c().exec("DELETE FROM nodes WHERE node_id = $1", args![node]).await?,
            Some(b) => tx.c().exec("DELETE FROM nodes WHERE node_id = $1 AND beats = $2", args![node, b]).await?,
        };
        tx.commit().await?;
        Ok(gone > 0)
    }

    async fn write_probe(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut last = self.probe.0.lock().await;
        if let Some((at, result)) = &*last
            && *at <= now
            && now - *at < WRITE_PROBE_EVERY
        {
            return result.clone();
        }
        let result = match tokio::time::timeout(WRITE_PROBE_TIMEOUT, self.probe_write(now)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Database(format!(
                "the write probe took more than {} s: the database does not accept writes",
                WRITE_PROBE_TIMEOUT.as_secs()
            ))),
        };
        let result = result.map_err(|e| match e {
            StoreError::Database(m) => StoreError::Database(format!("the store cannot write: {m}")),
            other => other,
        });
        *last = Some((now, result.clone()));
        result
    }
}

//! [`ActivityStore`] on SQL: what happened, as the API lists it — events with their delivery status, a
//! notification with every attempt, the polls of an instance — and redelivery.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::ports::{
    ActivityStore, ChangePage, ChangeQuery, EventDetail, EventFilter, EventPage, NotificationRecord, OcEventStatus,
    PollRecord, ReplayQuery, StatusFilter, StoreError, StoredAttempt,
};
use oc_model::{InstanceId, OrgId};
use uuid::Uuid;

use crate::SqlStore;
use crate::codec::{count, from_json, ns, status_text};
use crate::db::{Val, args};
use crate::outbox::{
    EVENT_ATTEMPTS, EVENT_STATUS, EVENT_VIEW_COLUMNS, attempts_of, event_view_from_row, notification_of,
};

#[async_trait]
impl ActivityStore for SqlStore {
    async fn changes(&self, org: OrgId, query: &ChangeQuery) -> Result<Option<ChangePage>, StoreError> {
        let mut conn = self.pools.read().await?;
        crate::feed::changes(&mut conn.c(), org, query).await
    }

    fn commit_generation(&self) -> u64 {
        self.commits.generation()
    }

    async fn wait_for_commit(&self, seen: u64, timeout: std::time::Duration) -> u64 {
        self.commits.wait(seen, timeout).await
    }

    async fn list_events(&self, org: OrgId, filter: &EventFilter) -> Result<EventPage, StoreError> {
        let mut conditions = String::from("i.org_id = $1");
        let mut values: Vec<Val> = args![org];
        if let Some(instance) = filter.instance_id {
            values.push(Val::I64(instance));
            conditions.push_str(&format!(" AND e.instance_id = ${}", values.len()));
        }
        match filter.status {
            None => {}
            Some(StatusFilter::Delivery(status)) => {
                values.push(Val::from(status_text(status)));
                conditions.push_str(&format!(" AND {EVENT_STATUS} = ${}", values.len()));
            }
            Some(StatusFilter::Oc(status)) => conditions.push_str(&match status {
                OcEventStatus::New => format!(" AND {EVENT_STATUS} = 'pending' AND {EVENT_ATTEMPTS} = 0"),
                OcEventStatus::Dispatched => format!(
                    " AND ({EVENT_STATUS} = 'delivering' OR ({EVENT_STATUS} = 'pending' AND {EVENT_ATTEMPTS} > 0))"
                ),
                OcEventStatus::Notified => format!(" AND {EVENT_STATUS} = 'delivered'"),
                OcEventStatus::Failed => format!(" AND {EVENT_STATUS} = 'failed'"),
                OcEventStatus::Dropped => format!(" AND {EVENT_STATUS} = 'dropped'"),
                OcEventStatus::Withheld => format!(" AND {EVENT_STATUS} = 'withheld'"),
            }),
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
                "UPDATE notifications SET status = 'pending', next_attempt_at = $3 \
                 WHERE id = $1 AND status IN ('failed', 'delivered') \
                 AND instance_id IN (SELECT id FROM instances WHERE org_id = $2 AND deleted_at IS NULL)",
                args![notification.to_string(), org, ns(now)],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn replay(&self, org: OrgId, query: &ReplayQuery, now: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let owned = c
            .opt(
                "SELECT id FROM instances WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
                args![query.instance, org],
            )
            .await?;
        if owned.is_none() {
            return Ok(None);
        }
        // kept events not on their way already; withheld ones too (a replay is asked for), not those dropped
        // with notifications switched off meanwhile
        let mut conditions = String::from(
            "e.instance_id = $1 AND e.created_at >= $2 \
             AND (n.status IS NULL OR n.status NOT IN ('pending', 'delivering', 'failed')) \
             AND (e.withheld OR NOT e.dropped OR e.notification_id IS NOT NULL)",
        );
        let mut values: Vec<Val> = args![query.instance, ns(query.since)];
        if let Some(until) = query.until {
            values.push(Val::I64(ns(until)));
            conditions.push_str(&format!(" AND e.created_at < ${}", values.len()));
        }
        if let Some(object_type) = &query.object_type {
            values.push(Val::from(object_type));
            conditions.push_str(&format!(" AND e.object_type = ${}", values.len()));
        }
        if let Some(kind) = query.event_type {
            values.push(Val::from(kind.as_str()));
            conditions.push_str(&format!(" AND e.event_type = ${}", values.len()));
        }
        if let Some(id) = query.event_id {
            values.push(Val::from(id.to_string()));
            conditions.push_str(&format!(" AND e.event_id = ${}", values.len()));
        }
        // A failed notification never reached the receiver: it is made due again under its own id (moving its
        // events out would leave it empty), and its events in the range count as queued.
        let failed_conditions = conditions.replace(
            "(n.status IS NULL OR n.status NOT IN ('pending', 'delivering', 'failed'))",
            "n.status = 'failed'",
        );
        let failed = c
            .all(
                &format!(
                    "SELECT e.notification_id, COUNT(*) AS n FROM events e \
                     JOIN notifications n ON n.id = e.notification_id WHERE {failed_conditions} \
                     GROUP BY e.notification_id"
                ),
                values.clone(),
            )
            .await?;
        let mut requeued = 0u64;
        for r in &failed {
            c.exec(
                "UPDATE notifications SET status = 'pending', next_attempt_at = $2 WHERE id = $1 AND status = 'failed'",
                args![r.text("notification_id")?, ns(now)],
            )
            .await?;
            requeued += u64::try_from(r.i64("n")?).unwrap_or(0);
        }
        let rows = c
            .all(
                &format!(
                    "SELECT e.seq, e.instance_id, e.object_type FROM events e \
                     LEFT JOIN notifications n ON n.id = e.notification_id WHERE {conditions} ORDER BY e.seq"
                ),
                values,
            )
            .await?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.i64("seq")?, r.i64("instance_id")?, r.text("object_type")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for chunk in rows.chunks(500) {
            let seqs: Vec<Val> = chunk.iter().map(|(seq, _, _)| Val::I64(*seq)).collect();
            let list = c.placeholders(1, seqs.len());
            c.exec(&format!("UPDATE events SET dropped = FALSE, withheld = FALSE WHERE seq IN ({list})"), seqs).await?;
        }
        crate::delivery::build_notifications(&mut c, &rows, now, oc_model::event::MAX_EVENTS_PER_NOTIFICATION).await?;
        tx.commit().await?;
        Ok(Some(rows.len() as u64 + requeued))
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

    async fn list_polls(&self, org: OrgId, instance: InstanceId, limit: usize) -> Result<Vec<PollRecord>, StoreError> {
        let mut conn = self.pools.read().await?;
        let rows = conn
            .c()
            .all(
                "SELECT p.resource, p.outcome FROM polls p JOIN instances i ON i.id = p.instance_id \
                 WHERE p.instance_id = $1 AND i.org_id = $2 ORDER BY p.id DESC LIMIT $3",
                args![instance, org, count(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PollRecord {
                    instance_id: instance,
                    resource: r.text("resource")?,
                    outcome: from_json("poll outcome", &r.text("outcome")?)?,
                })
            })
            .collect()
    }
}

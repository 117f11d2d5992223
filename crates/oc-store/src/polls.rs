//! Poll jobs: claiming due jobs under expiring leases, renewing, and the atomic commit of a poll (events,
//! `seen`, watermark, outcome) fenced by the lease generation.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::InstanceId;
use oc_model::config::Configuration;
use oc_model::event::Event;
use oc_model::ports::{
    AlertType, CommitSummary, Known, Lease, PollClaim, PollCommit, PollFailure, PollOutcome, PollState, PollStatus,
    PollingStore, StoreError,
};

use crate::SqlStore;
use crate::alerts::raise;
use crate::codec::{after, count, from_json, from_ns, ns, parse_time, time_text, to_json, u32_of};
use crate::db::{ConnRef, Row, Val, args};
use crate::outbox::event_from_row;

/// Polls kept in the history of one (instance, resource); older ones are pruned as new ones are recorded.
pub const POLL_HISTORY_PER_RESOURCE: i64 = 100;

/// Rows per multi-row `INSERT` of events (12 values each: well under the bound-parameter limits).
const EVENTS_PER_INSERT: usize = 250;

pub(crate) fn lease_lost(what: &str) -> StoreError {
    StoreError::LeaseLost(format!("{what}: the lease expired or was taken over"))
}

/// The fencing condition of a write under a poll lease: `$1` instance, `$2` resource, `$3` owner,
/// `$4` generation, `$5` now.
const FENCE: &str = "instance_id = $1 AND resource = $2 AND lease_owner = $3 AND lease_generation = $4 \
     AND lease_expires_at > $5";

fn job_name(instance: InstanceId, resource: &str) -> String {
    format!("poll job {instance}/{resource}")
}

/// Which events of an instance its webhook sends, as its stored configuration says at commit time: an event
/// it does not send is committed `withheld` (kept, listed, in the feed; never batched into a notification).
pub(crate) async fn webhook_filter(c: &mut ConnRef<'_>, instance: InstanceId) -> Result<Configuration, StoreError> {
    let row = c.opt("SELECT configuration FROM instances WHERE id = $1", args![instance]).await?;
    match row {
        Some(r) => from_json("instance configuration", &r.text("configuration")?),
        None => Ok(Configuration::default()),
    }
}

/// Inserts events, ignoring those whose id exists; returns how many were inserted. Those the instance's
/// webhook does not send (`sends`, its configuration) are inserted withheld; each keeps the poll's `traceparent`.
pub(crate) async fn insert_events(
    c: &mut ConnRef<'_>,
    instance: InstanceId,
    resource: &str,
    events: &[Event],
    now: DateTime<Utc>,
    sends: &Configuration,
    trace_parent: Option<&str>,
) -> Result<usize, StoreError> {
    let mut inserted = 0;
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO events (event_id, instance_id, resource, event_type, object_type, object_id, date, record, \
             created_at, dropped, withheld, trace_parent) VALUES ",
        );
        let mut values: Vec<Val> = Vec::with_capacity(chunk.len() * 12);
        for (i, e) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            sql.push_str(&c.placeholders(i * 12 + 1, 12));
            sql.push(')');
            let withheld = !sends.webhook_sends(e.event_type);
            values.extend(args![
                e.event_id.to_string(),
                instance,
                resource,
                e.event_type.as_str(),
                &e.object_type,
                &e.object_id,
                time_text(e.date),
                to_json(&e.record)?,
                ns(now),
                withheld,
                withheld,
                trace_parent
            ]);
        }
        sql.push_str(" ON CONFLICT (event_id) DO NOTHING");
        inserted += usize::try_from(c.exec(&sql, values).await?).unwrap_or(usize::MAX);
    }
    Ok(inserted)
}

/// The poll state of a `poll_jobs` row.
fn state_from_row(r: &Row) -> Result<PollState, StoreError> {
    Ok(PollState {
        watermark: r.opt_text("watermark")?.as_deref().map(parse_time).transpose()?,
        seen: r.bytes("seen")?,
        skew_ms: r.i64("skew_ms")?,
        consecutive_failures: u32_of(r.i64("consecutive_failures")?),
        reseed: r.bool("reseed")?,
        reconciled_at: r.opt_text("reconciled_at")?.as_deref().map(parse_time).transpose()?,
    })
}

async fn record_poll(
    c: &mut ConnRef<'_>,
    instance: InstanceId,
    resource: &str,
    outcome: &PollOutcome,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO polls (instance_id, resource, status, started_at, outcome) VALUES ($1, $2, $3, $4, $5)",
        args![instance, resource, PollStatus::as_str(outcome.status), ns(outcome.started_at), to_json(outcome)?],
    )
    .await?;
    c.exec(
        "DELETE FROM polls WHERE instance_id = $1 AND resource = $2 AND id < \
         (SELECT id FROM polls WHERE instance_id = $1 AND resource = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)",
        args![instance, resource, POLL_HISTORY_PER_RESOURCE - 1],
    )
    .await?;
    Ok(())
}

/// The statement of [`PollingStore::claim_polls`]: `$1` owner, `$2` lease expiry, `$3` now, `$4` limit.
///
/// On PostgreSQL it is shaped so that no plan can cost the number of jobs: the due jobs are picked in an `ARRAY`
/// sublink (evaluated once) walking `poll_jobs_due_id` in order up to the limit, the instance's state checked as
/// a subplan per job, and the picked ids updated through the primary key. As `UPDATE … FROM (subquery)`, the
/// generic plan that prepared statements settle on (the limit unknown) hash-joined the picked ids with a
/// sequential scan of every job: 30 ms a claim at 40,000 jobs, PostgreSQL at 1.7 cores for two nodes' 55 polls/s
/// at 100,000. SKIP LOCKED: nodes claiming at once take disjoint jobs instead of waiting on each other.
pub(crate) fn poll_claim_sql(pg: bool) -> String {
    // While leased, a job is due again when its lease lapses: `next_run_at` says so (and the range scan of the
    // claim skips it), `due_at` keeps when it was due (migration 0009).
    let set = "SET lease_owner = $1, lease_generation = lease_generation + 1, lease_expires_at = $2, \
         due_at = next_run_at, next_run_at = $2";
    let returning = "RETURNING poll_jobs.instance_id, poll_jobs.resource, poll_jobs.due_at, \
         poll_jobs.created_at, poll_jobs.lease_generation, poll_jobs.watermark, poll_jobs.seen, \
         poll_jobs.skew_ms, poll_jobs.consecutive_failures, poll_jobs.reseed, poll_jobs.reconciled_at";
    let due = "j.next_run_at <= $3 AND (j.lease_owner IS NULL OR j.lease_expires_at <= $3)";
    let switched_on = "i.deleted_at IS NULL AND NOT i.disabled AND i.valid AND i.notifications_enabled";
    if pg {
        format!(
            "UPDATE poll_jobs {set} WHERE id = ANY(ARRAY(SELECT j.id FROM poll_jobs j \
             WHERE {due} AND (SELECT {switched_on} FROM instances i WHERE i.id = j.instance_id) \
             ORDER BY j.next_run_at, j.id LIMIT $4 FOR UPDATE OF j SKIP LOCKED)) {returning}"
        )
    } else {
        format!(
            "UPDATE poll_jobs {set} WHERE id IN (SELECT j.id FROM poll_jobs j JOIN instances i ON i.id = j.instance_id \
             WHERE {due} AND {switched_on} ORDER BY j.next_run_at, j.id LIMIT $4) {returning}"
        )
    }
}

#[async_trait]
impl PollingStore for SqlStore {
    async fn claim_polls(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<PollClaim>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let expires = after(now, ttl);
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let sql = poll_claim_sql(c.is_pg());
        let rows = c.all(&sql, args![owner, ns(expires), ns(now), count(limit)]).await?;
        tx.commit().await?;
        // Their instances, read (secrets decrypted) once the writer is free again.
        let ids = rows.iter().map(|r| r.i64("instance_id")).collect::<Result<Vec<_>, _>>()?;
        let instances = self.instances_by_id(&ids).await?;
        let mut claims = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = r.i64("instance_id")?;
            let resource = r.text("resource")?;
            let lease = Lease {
                owner: owner.to_string(),
                generation: r.i64("lease_generation")?,
                expires_at: from_ns(ns(expires)),
            };
            match instances.get(&id) {
                Some(instance) if !instance.disabled && instance.valid => claims.push(PollClaim {
                    instance: instance.clone(),
                    resource,
                    due_at: from_ns(r.i64("due_at")?),
                    job_created_at: parse_time(&r.text("created_at")?)?,
                    lease,
                    state: state_from_row(r)?,
                }),
                // deleted, switched off or invalid since the claim: given back, not polled
                _ => {
                    let _ = self.release_poll(id, &resource, &lease).await;
                }
            }
        }
        claims.sort_by(|a, b| (a.due_at, a.instance.id, &a.resource).cmp(&(b.due_at, b.instance.id, &b.resource)));
        Ok(claims)
    }

    async fn renew_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let expires = after(now, ttl);
        let mut tx = self.pools.write().await?;
        let n = tx
            .c()
            .exec(
                &format!("UPDATE poll_jobs SET lease_expires_at = $6, next_run_at = $6 WHERE {FENCE}"),
                args![instance, resource, &lease.owner, lease.generation, ns(now), ns(expires)],
            )
            .await?;
        tx.commit().await?;
        if n == 0 {
            return Err(lease_lost(&job_name(instance, resource)));
        }
        Ok(Lease { owner: lease.owner.clone(), generation: lease.generation, expires_at: from_ns(ns(expires)) })
    }

    async fn commit_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        commit: &PollCommit,
    ) -> Result<CommitSummary, StoreError> {
        let now = commit.outcome.finished_at;
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        // The fenced update comes first: it takes the row lock, so nothing below runs for a stale holder.
        let n = c
            .exec(
                &format!(
                    "UPDATE poll_jobs SET lease_owner = NULL, lease_expires_at = NULL, \
                     watermark = COALESCE($6, watermark), seen = $7, skew_ms = $8, consecutive_failures = 0, \
                     failing_since = NULL, failing_alerted = FALSE, \
                     last_status = $9, last_poll_at = $5, polls_total = polls_total + 1, next_run_at = $10, \
                     reseed = FALSE, reconciled_at = COALESCE($11, reconciled_at), \
                     reconciled_ids = COALESCE($12, reconciled_ids) \
                     WHERE {FENCE}"
                ),
                args![
                    instance,
                    resource,
                    &lease.owner,
                    lease.generation,
                    ns(now),
                    commit.watermark.map(time_text),
                    commit.seen.clone(),
                    commit.skew_ms,
                    PollStatus::as_str(commit.outcome.status),
                    ns(commit.next_run_at),
                    commit.reconciled.as_ref().map(|r| time_text(r.at)),
                    commit.reconciled.as_ref().map(|r| r.live_ids.join("\n"))
                ],
            )
            .await?;
        if n == 0 {
            return Err(lease_lost(&job_name(instance, resource)));
        }
        let sends = webhook_filter(&mut c, instance).await?;
        let inserted =
            insert_events(&mut c, instance, resource, &commit.events, now, &sends, commit.trace_parent.as_deref())
                .await?;
        if inserted > 0 {
            // the other nodes' feed readers hear of it at commit (PostgreSQL)
            crate::feed::notify_commit(&mut c, &self.commits.channel, instance).await?;
            c.exec(
                "UPDATE poll_jobs SET events_total = events_total + $3 WHERE instance_id = $1 AND resource = $2",
                args![instance, resource, count(inserted)],
            )
            .await?;
        }
        record_poll(&mut c, instance, resource, &commit.outcome).await?;
        tx.commit().await?;
        if inserted > 0 {
            // this node's feed readers, at once
            self.commits.bump();
        }
        Ok(CommitSummary { inserted, duplicates: commit.events.len() - inserted })
    }

    async fn abandon_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        failure: &PollFailure,
    ) -> Result<(), StoreError> {
        let outcome = &failure.outcome;
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let row = c
            .opt(
                &format!(
                    "UPDATE poll_jobs SET lease_owner = NULL, lease_expires_at = NULL, \
                     consecutive_failures = consecutive_failures + 1, last_status = $6, last_poll_at = $5, \
                     polls_total = polls_total + 1, polls_failed = polls_failed + 1, next_run_at = $7, \
                     failing_since = COALESCE(failing_since, $8) WHERE {FENCE} \
                     RETURNING failing_since, failing_alerted, consecutive_failures"
                ),
                args![
                    instance,
                    resource,
                    &lease.owner,
                    lease.generation,
                    ns(outcome.finished_at),
                    PollStatus::as_str(outcome.status),
                    ns(failure.next_run_at),
                    ns(outcome.started_at)
                ],
            )
            .await?;
        let Some(row) = row else { return Err(lease_lost(&job_name(instance, resource))) };
        record_poll(&mut c, instance, resource, outcome).await?;
        // `polling.failing`: once per streak, at the first failed poll past the threshold
        let since = from_ns(row.i64("failing_since")?);
        let failing_for = outcome.finished_at.signed_duration_since(since).to_std().unwrap_or_default();
        if !row.bool("failing_alerted")? && failing_for >= self.polling_failing_after {
            c.exec(
                "UPDATE poll_jobs SET failing_alerted = TRUE WHERE instance_id = $1 AND resource = $2",
                args![instance, resource],
            )
            .await?;
            let failures = row.i64("consecutive_failures")?;
            let error = outcome.error.as_deref().unwrap_or("the poll failed");
            let reason = format!(
                "polls of {resource} have failed since {} ({failures} in a row); the last: {error}",
                time_text(since)
            );
            let mut fields = serde_json::Map::new();
            fields.insert("resource".into(), resource.into());
            fields.insert("failingSince".into(), time_text(since).into());
            fields.insert("consecutiveFailures".into(), failures.into());
            fields.insert("lastStatus".into(), PollStatus::as_str(outcome.status).into());
            raise(&mut c, instance, AlertType::PollingFailing, outcome.finished_at, &reason, fields).await?;
        }
        tx.commit().await
    }

    async fn release_poll(&self, instance: InstanceId, resource: &str, lease: &Lease) -> Result<(), StoreError> {
        let mut tx = self.pools.write().await?;
        let n = tx
            .c()
            .exec(
                "UPDATE poll_jobs SET lease_owner = NULL, lease_expires_at = NULL, \
                 next_run_at = COALESCE(due_at, next_run_at) \
                 WHERE instance_id = $1 AND resource = $2 AND lease_owner = $3 AND lease_generation = $4",
                args![instance, resource, &lease.owner, lease.generation],
            )
            .await?;
        tx.commit().await?;
        if n == 0 { Err(lease_lost(&job_name(instance, resource))) } else { Ok(()) }
    }

    async fn known(&self, instance: InstanceId, resource: &str) -> Result<Known, StoreError> {
        let mut conn = self.pools.read().await?;
        let mut c = conn.c();
        let rows = c
            .all(
                "SELECT event_id, event_type, object_type, object_id, date, record FROM events WHERE seq IN \
                 (SELECT MAX(seq) FROM events WHERE instance_id = $1 AND resource = $2 GROUP BY object_id) \
                 ORDER BY seq",
                args![instance, resource],
            )
            .await?;
        let notified = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        let ids = c
            .opt(
                "SELECT reconciled_ids FROM poll_jobs WHERE instance_id = $1 AND resource = $2",
                args![instance, resource],
            )
            .await?;
        let live_ids = match ids {
            Some(r) => r
                .opt_text("reconciled_ids")?
                .map_or_else(Vec::new, |t| t.split('\n').filter(|id| !id.is_empty()).map(Box::from).collect()),
            None => Vec::new(),
        };
        Ok(Known { notified, live_ids })
    }
}

impl SqlStore {
    /// The current state of one (instance, resource), for tests and tools (the engine gets it with its claim).
    pub async fn poll_state(&self, instance: InstanceId, resource: &str) -> Result<Option<PollState>, StoreError> {
        let mut conn = self.pools.read().await?;
        let row = conn
            .c()
            .opt(
                "SELECT watermark, seen, skew_ms, consecutive_failures, reseed, reconciled_at FROM poll_jobs \
                 WHERE instance_id = $1 AND resource = $2",
                args![instance, resource],
            )
            .await?;
        row.map(|r| state_from_row(&r)).transpose()
    }
}

//! The change feed on SQL: pages of an instance's events in commit order (`events.seq`), the floor that
//! retention raised, and the commit signal that wakes long-polling readers — a counter bumped after each commit
//! of events on this node and, on PostgreSQL, by `NOTIFY` from a commit on any node (`LISTEN` on a connection of
//! its own), so a reader waits without querying the database in a loop.

use std::sync::Arc;
use std::time::Duration;

use oc_model::ports::{Change, ChangePage, ChangeQuery, StoreError};
use oc_model::{InstanceId, OrgId};
#[cfg(feature = "postgres")]
use sqlx::PgPool;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::db::{ConnRef, Pools, Val, args};
use crate::outbox::event_from_row;

/// Changes read per page at most.
pub const MAX_CHANGES_PER_PAGE: u32 = 1_000;

/// The commit counter of one store, and the task that feeds it from PostgreSQL's notifications.
pub(crate) struct CommitSignal {
    generation: watch::Sender<u64>,
    /// The `LISTEN`/`NOTIFY` channel of this store's schema (PostgreSQL).
    pub(crate) channel: String,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for CommitSignal {
    fn drop(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
        }
    }
}

impl CommitSignal {
    /// A signal for a store of `schema` (its channel name) on `pools`, listening on them when they are
    /// PostgreSQL.
    pub(crate) fn new(pools: &Pools, schema: Option<&str>) -> Arc<CommitSignal> {
        let channel = match schema {
            Some(schema) => format!("ocpoll_changes_{schema}"),
            None => "ocpoll_changes".to_string(),
        };
        let (generation, _) = watch::channel(0);
        #[cfg(feature = "postgres")]
        let listener = pools.pg().map(|pool| tokio::spawn(listen(pool.clone(), channel.clone(), generation.clone())));
        // SQLite is one node: its own commits bump the counter
        #[cfg(not(feature = "postgres"))]
        let listener = {
            let _ = pools;
            None
        };
        Arc::new(CommitSignal { generation, channel, listener })
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Events were committed: wakes the waiting readers.
    pub(crate) fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Waits until the generation is past `seen`, or `timeout`.
    pub(crate) async fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let mut rx = self.generation.subscribe();
        // `wait_for` checks the current value first: a bump between the caller's read and here is not missed
        let _ = tokio::time::timeout(timeout, rx.wait_for(|g| *g != seen)).await;
        self.generation()
    }
}

/// Forwards the notifications of `channel` into `sender`, reconnecting after a failure; every lost connection
/// also bumps (a notification may have been missed meanwhile: the readers read again, at worst for nothing).
#[cfg(feature = "postgres")]
async fn listen(pool: PgPool, channel: String, sender: watch::Sender<u64>) {
    let bump = || sender.send_modify(|g| *g = g.wrapping_add(1));
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::debug!(error = %e, "change feed: cannot listen yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::debug!(error = %e, "change feed: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // from here on a commit anywhere wakes this node's readers
        bump();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => bump(),
                Ok(None) => {
                    // the connection was lost (and is being re-established by the next call)
                    bump();
                    if pool.is_closed() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "change feed: the listening connection failed; reconnecting");
                    bump();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

/// Tells the other nodes, at commit of the current transaction, that `instance` has new events (PostgreSQL).
pub(crate) async fn notify_commit(c: &mut ConnRef<'_>, channel: &str, instance: InstanceId) -> Result<(), StoreError> {
    if c.is_pg() {
        c.exec("SELECT pg_notify($1, $2)", args![channel, instance.to_string()]).await?;
    }
    Ok(())
}

/// A page of the feed of `query.instance`, when it belongs to `org`.
pub(crate) async fn changes(
    c: &mut ConnRef<'_>,
    org: OrgId,
    query: &ChangeQuery,
) -> Result<Option<ChangePage>, StoreError> {
    let Some(row) = c
        .opt(
            "SELECT feed_floor FROM instances WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
            args![query.instance, org],
        )
        .await?
    else {
        return Ok(None);
    };
    let floor = row.i64("feed_floor")?;
    let after = query.after.unwrap_or(floor).max(0);
    let limit = i64::from(query.limit.clamp(1, MAX_CHANGES_PER_PAGE));
    // One more than asked, to know whether more follow; the filters are applied here, in Rust, so that the last
    // position examined moves on even when a filter skips every event of the page.
    let rows = c
        .all(
            "SELECT e.seq, e.event_id, e.event_type, e.object_type, e.object_id, e.date, e.record FROM events e \
             WHERE e.instance_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
            args![query.instance, after, Val::I64(limit.saturating_mul(4).saturating_add(1))],
        )
        .await?;
    let mut changes = Vec::new();
    let mut position = after;
    let mut has_more = false;
    for r in &rows {
        if changes.len() as i64 == limit {
            has_more = true;
            break;
        }
        let seq = r.i64("seq")?;
        position = seq;
        let event = event_from_row(r)?;
        let wanted = query.object_type.as_ref().is_none_or(|t| *t == event.object_type)
            && query.event_type.is_none_or(|t| t == event.event_type);
        if wanted {
            changes.push(Change { seq, event });
        }
    }
    if !has_more && rows.len() as i64 > limit.saturating_mul(4) {
        // every examined event was filtered out and more are there
        has_more = true;
    }
    Ok(Some(ChangePage { changes, floor, position, has_more }))
}

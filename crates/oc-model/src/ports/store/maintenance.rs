//! [`MaintenanceStore`]: the service's housekeeping — pruning delivered notifications, the outbox gauges, the
//! leases of nodes known to be gone, the node heartbeats that tell who is gone, and the write probe of `/readyz`.
//!
//! Lease holders are named by the services that take the leases: `{node}-poll` (the scheduler), `{node}-notify`
//! (the dispatcher) and `{node}:{...}` (a provider's token refresh locks). [`node_of_holder`] recovers the node, so
//! that every lease of a gone node can be handed back at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Outbox gauges for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutboxStats {
    /// Events not yet in a notification.
    pub unbatched_events: u64,
    /// Notifications pending or delivering.
    pub pending_notifications: u64,
    /// Failed notifications.
    pub failed_notifications: u64,
    /// Age of the oldest pending notification, in seconds.
    pub oldest_pending_secs: u64,
}

/// What [`MaintenanceStore::release_leases_of`] handed back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleasedLeases {
    /// Poll jobs, due again at once.
    pub polls: u64,
    /// Notifications being delivered, claimable again at once (their attempt count stays).
    pub deliveries: u64,
    /// Token refresh locks.
    pub refresh_locks: u64,
}

impl ReleasedLeases {
    /// Leases of every kind.
    pub fn total(&self) -> u64 {
        self.polls + self.deliveries + self.refresh_locks
    }
}

/// A node's heartbeat as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBeat {
    /// The node id.
    pub node: String,
    /// Heartbeats since the node was first seen (a restart under the same id goes on counting).
    pub beats: i64,
    /// When this run of the node started, on its clock.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat, on its clock (for people: watchers go by `beats`).
    pub heartbeat_at: DateTime<Utc>,
}

/// The node of a lease holder named by the services (`{node}-poll`, `{node}-notify`, `{node}:...`).
pub fn node_of_holder(holder: &str) -> Option<&str> {
    if let Some((node, _)) = holder.split_once(':') {
        return Some(node);
    }
    holder.strip_suffix("-poll").or_else(|| holder.strip_suffix("-notify"))
}

/// Housekeeping of the service: retention, gauges, leases and heartbeats.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Deletes delivered notifications and their attempts older than `before`, and delivered and unrouted alerts
    /// older than `before` (with those of deleted instances); returns how many notifications.
    async fn prune_delivered(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Refreshes the database's statistics of the tables the claims read (PostgreSQL's `ANALYZE`, SQLite's
    /// `PRAGMA optimize`), so that a claim keeps its index plan after bulk changes. The default does nothing.
    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The outbox gauges (also proves the database answers with its schema in place).
    async fn outbox_stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreError>;
    /// Every holder of a lease that has not lapsed at `now`: poll jobs, notifications being delivered, token
    /// refresh locks. Sorted, without repeats.
    async fn lease_holders(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
    /// Hands back, in one transaction, every lease held by `node`'s holders (see [`node_of_holder`]): its poll
    /// jobs can be claimed at once, its notifications being delivered become claimable at `now`, its refresh
    /// locks are dropped. Fencing generations stay, so should the holder be alive after all, its writes under
    /// those leases are refused rather than doubled. Only for a node known to be gone.
    async fn release_leases_of(&self, node: &str, now: DateTime<Utc>) -> Result<ReleasedLeases, StoreError>;
    /// Records a heartbeat of `node` at `now` (its clock); `starting` marks the first one of a run.
    async fn heartbeat(&self, node: &str, now: DateTime<Utc>, starting: bool) -> Result<(), StoreError>;
    /// Every node that has beaten and not left, by id.
    async fn nodes(&self) -> Result<Vec<NodeBeat>, StoreError>;
    /// Removes `node` from the nodes: at its clean stop (`beats: None`), or by a watcher that found it silent at
    /// `beats` (then only if it has not beaten since). Whether a row went.
    async fn forget_node(&self, node: &str, beats: Option<i64>) -> Result<bool, StoreError>;
    /// Proves that the store can write at `now`: a one-row write in a short transaction, which a full disk, a
    /// read-only or unreachable database, or a wedged writer fails. `/readyz` asks it, so that a store that
    /// answers reads but cannot write is not ready (issue 18). Cheap to call often: the store writes at most once
    /// per few seconds of `now` and answers the last result in between, and gives up on a write that takes more
    /// than a few seconds.
    async fn write_probe(&self, now: DateTime<Utc>) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::node_of_holder;

    #[test]
    fn holders_name_their_node() {
        assert_eq!(node_of_holder("web-1-poll"), Some("web-1"));
        assert_eq!(node_of_holder("web-1-notify"), Some("web-1"));
        assert_eq!(node_of_holder("web-1:4242:0:beef"), Some("web-1"));
        assert_eq!(node_of_holder("host-123-poll"), Some("host-123"));
        assert_eq!(node_of_holder("someone"), None);
    }
}

//! Leases a node left behind: who holds leases now, and handing back every lease of a holder that is known to
//! be gone (a node restarted after a crash under the same node id), so its work resumes at once instead of
//! after the lease time.
//!
//! Holders are named by the services that take the leases: `{node}-poll`, `{node}-notify` and
//! `{node}:{pid}:{n}:{nonce}` (token refresh locks). [`node_of_holder`] recovers the node.

use chrono::{DateTime, Utc};
use oc_model::ports::StoreError;

use crate::SqlStore;
use crate::codec::ns;
use crate::db::args;

/// What [`SqlStore::release_leases_of`] handed back.
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

/// The node of a lease holder named by the service (`{node}-poll`, `{node}-notify`, `{node}:...`).
pub fn node_of_holder(holder: &str) -> Option<&str> {
    if let Some((node, _)) = holder.split_once(':') {
        return Some(node);
    }
    holder.strip_suffix("-poll").or_else(|| holder.strip_suffix("-notify"))
}

impl SqlStore {
    /// Every holder of a lease that has not lapsed at `now`: poll jobs, notifications being delivered, token
    /// refresh locks. Sorted, without repeats.
    pub async fn lease_holders(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
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

    /// Hands back every lease held by `node`'s holders (see [`node_of_holder`]), in one transaction: its poll
    /// jobs can be claimed at once (they were due when claimed), its notifications being delivered become claimable at `now`, its refresh locks
    /// are dropped. The fencing generations stay, so should the holder still be alive after all, its writes
    /// under those leases are refused rather than doubled.
    ///
    /// Only for a node known to be gone — a restart under the same `--node-id`, or a process that no longer
    /// exists; a live node's leases lapse by themselves.
    pub async fn release_leases_of(&self, node: &str, now: DateTime<Utc>) -> Result<ReleasedLeases, StoreError> {
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
                    "UPDATE poll_jobs SET lease_owner = NULL, lease_expires_at = NULL \
                     WHERE lease_owner = $1 AND lease_expires_at > $2",
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
}

#[cfg(test)]
mod unit_tests {
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

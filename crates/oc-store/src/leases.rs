//! Leases a node left behind: who holds leases now, and handing back every lease of a holder that is known to
//! be gone, so its work resumes at once instead of after the lease time.
//!
//! A node is known to be gone when it restarts under the same node id, or when its heartbeat stops: every
//! running node beats ([`SqlStore::heartbeat`], a counter in the `nodes` table) and watches the others' counters
//! with a [`NodeWatch`]; a counter that stands still for the node timeout, measured on the watcher's own clock
//! (the clocks of different machines are never compared), makes the watcher hand back that node's leases.
//!
//! Holders are named by the services that take the leases: `{node}-poll`, `{node}-notify` and
//! `{node}:{pid}:{n}:{nonce}` (token refresh locks). [`node_of_holder`] recovers the node.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::StoreError;

use crate::SqlStore;
use crate::codec::{from_ns, ns};
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

impl SqlStore {
    /// Records a heartbeat of `node` at `now` (its clock); `starting` marks the first one of a run.
    pub async fn heartbeat(&self, node: &str, now: DateTime<Utc>, starting: bool) -> Result<(), StoreError> {
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

    /// Every node that has beaten and not left, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeBeat>, StoreError> {
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

    /// Removes `node` from the nodes: at its clean stop (`beats: None`), or by a watcher that found it silent at
    /// `beats` (then only if it has not beaten since). Whether a row went.
    pub async fn forget_node(&self, node: &str, beats: Option<i64>) -> Result<bool, StoreError> {
        let mut tx = self.pools.write().await?;
        let gone = match beats {
            None => tx.c().exec("DELETE FROM nodes WHERE node_id = $1", args![node]).await?,
            Some(b) => tx.c().exec("DELETE FROM nodes WHERE node_id = $1 AND beats = $2", args![node, b]).await?,
        };
        tx.commit().await?;
        Ok(gone > 0)
    }
}

/// A silent node whose leases a [`NodeWatch`] handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    /// The silent node.
    pub node: String,
    /// Its last heartbeat, on its own clock.
    pub last_heartbeat: DateTime<Utc>,
    /// What was handed back.
    pub released: ReleasedLeases,
}

/// One node's view of the others' heartbeats (see the module documentation). Kept in memory: a watcher that
/// starts anew waits one full timeout before it calls any node silent.
#[derive(Debug)]
pub struct NodeWatch {
    me: String,
    timeout: Duration,
    /// Each other node's count as last seen, and when (this node's clock) it was first seen at that count.
    seen: HashMap<String, (i64, DateTime<Utc>)>,
    started: bool,
    listed: usize,
}

impl NodeWatch {
    /// A watch for node `me`: another node is silent once its count has not moved for `timeout`.
    pub fn new(me: impl Into<String>, timeout: Duration) -> NodeWatch {
        NodeWatch { me: me.into(), timeout, seen: HashMap::new(), started: false, listed: 0 }
    }

    /// Beats for this node at `now` (its clock), then hands back the leases of every node found silent and
    /// forgets it. Returns the nodes taken over.
    pub async fn beat(&mut self, store: &SqlStore, now: DateTime<Utc>) -> Result<Vec<TakenOver>, StoreError> {
        store.heartbeat(&self.me, now, !self.started).await?;
        self.started = true;
        let nodes = store.nodes().await?;
        self.listed = nodes.len();
        self.seen.retain(|node, _| nodes.iter().any(|n| &n.node == node));
        let mut taken = Vec::new();
        for n in nodes.into_iter().filter(|n| n.node != self.me) {
            let (beats, since) = *self.seen.entry(n.node.clone()).or_insert((n.beats, now));
            if beats != n.beats {
                self.seen.insert(n.node, (n.beats, now));
                continue;
            }
            let silent_for = (now - since).to_std().unwrap_or_default();
            if silent_for < self.timeout {
                continue;
            }
            // release first: should the row go and the release fail, the next watcher still sees the node
            let released = store.release_leases_of(&n.node, now).await?;
            store.forget_node(&n.node, Some(n.beats)).await?;
            self.seen.remove(&n.node);
            taken.push(TakenOver { node: n.node, last_heartbeat: n.heartbeat_at, released });
        }
        Ok(taken)
    }

    /// Nodes listed at the last beat, this one and any found silent then included.
    pub fn listed(&self) -> usize {
        self.listed
    }

    /// This node's clean stop: leaves the nodes.
    pub async fn leave(&self, store: &SqlStore) -> Result<(), StoreError> {
        store.forget_node(&self.me, None).await.map(|_| ())
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

//! Watching the other nodes' heartbeats: every running node beats ([`MaintenanceStore::heartbeat`], a counter in
//! the `nodes` table) and watches the others' counters with a [`NodeWatch`]; a counter that stands still for the
//! node timeout, measured on the watcher's own clock (the clocks of different machines are never compared), makes
//! the watcher hand back that node's leases ([`MaintenanceStore::release_leases_of`]) so its work resumes at once
//! instead of after the lease time.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{MaintenanceStore, ReleasedLeases, StoreError};

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
    pub async fn beat(
        &mut self,
        store: &dyn MaintenanceStore,
        now: DateTime<Utc>,
    ) -> Result<Vec<TakenOver>, StoreError> {
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
    pub async fn leave(&self, store: &dyn MaintenanceStore) -> Result<(), StoreError> {
        store.forget_node(&self.me, None).await.map(|_| ())
    }
}

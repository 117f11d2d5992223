//! The store port: durable state, implemented on SQLite and PostgreSQL by `oc-store`.
//!
//! Cut by caller, so that each takes only what it uses and a test double is a few lines:
//!
//! | trait | caller | calls |
//! |---|---|---|
//! | [`PollingStore`] | the scheduler and the engine (`oc-poller`) | claim (with the instance), renew, commit, abandon, release |
//! | [`DeliveryStore`] | the dispatcher (`oc-notify`) | batch, claim (with the instance), record attempts, switch notifications off |
//! | [`AccountStore`] | the API: authentication and bootstrap | organizations, users, credentials |
//! | [`InstanceStore`] | the API: instances | create, read, list, update, switch off, delete |
//! | [`ActivityStore`] | the API: what happened | events, notifications, redelivery, polls |
//! | [`MaintenanceStore`] | the service's housekeeping | pruning, outbox gauges, leases of gone nodes, heartbeats |
//! | [`ConsoleStore`] | the web console | sign-in sessions, OAuth rounds in flight |
//! | [`AlertStore`] | the alert dispatcher (`oc-notify`) and the API | operational alerts: claim, record, list, redeliver |
//!
//! The provider's [`TokenVault`](super::TokenVault) is a port of its own (`vault`).
//!
//! Leases fence work across nodes: a claim hands out a [`Lease`] with a generation; a write carrying a lease whose
//! generation is no longer current fails with [`StoreError::LeaseLost`], so a node that lost its lease (paused,
//! partitioned) cannot commit stale work.

mod accounts;
mod activity;
mod alerts;
mod console;
mod delivery;
mod instances;
mod maintenance;
mod polling;

use chrono::{DateTime, Utc};

pub use accounts::{AccountStore, NewOrganization, Organization, Principal};
pub use activity::{
    ActivityStore, Change, ChangePage, ChangeQuery, EventDetail, EventFilter, EventPage, EventStatus, EventView,
    OcEventStatus, PollRecord, ReplayQuery, StatusFilter,
};
pub use alerts::{AlertClaim, AlertPage, AlertRecord, AlertStatus, AlertStep, AlertStore, AlertType};
pub use console::{ConsoleSession, ConsoleStore, NewConsoleSession, NewOAuthRound, OAuthRound, SecretDigest};
pub use delivery::{
    AttemptRecord, DeliveryClaim, DeliveryStore, NewAttempt, NextStep, NotificationRecord, NotificationStatus,
    StoredAttempt,
};
pub use instances::{Instance, InstanceStore, InstanceUpdate, NewInstance};
pub use maintenance::{MaintenanceStore, NodeBeat, OutboxStats, ReleasedLeases, node_of_holder};
pub use polling::{
    CommitSummary, Known, PollClaim, PollCommit, PollFailure, PollOutcome, PollState, PollStatus, PollWarning,
    PollingStore, Reconciled,
};

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist (or belongs to another organization).
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness or state conflict.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller's lease expired or was taken over; its write was refused.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// A secret could not be decrypted (wrong master key) or encrypted.
    #[error("secret encryption: {0}")]
    Crypto(String),
    /// The database schema is newer than this binary, or migrations are missing.
    #[error("schema: {0}")]
    Schema(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
}

/// A claim on a job, fencing writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder (`{node}-poll`, `{node}-notify`; see [`node_of_holder`]).
    pub owner: String,
    /// Incremented on every claim; a write with an older generation is refused.
    pub generation: i64,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

//! [`PollingStore`]: what the scheduler and the engine need — due poll jobs claimed with their instance, lease
//! renewal, and the atomic commit (or abandonment) of a poll.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Instance, Lease, StoreError};
use crate::event::Event;
use crate::ids::InstanceId;

/// The change-detection state of one (instance, resource).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollState {
    /// Provider-clock instant up to which every change is recorded; `None` before the first poll.
    pub watermark: Option<DateTime<Utc>>,
    /// The engine's encoding of its `seen` set (opaque to the store).
    pub seen: Vec<u8>,
    /// Measured provider clock minus local clock, in milliseconds.
    pub skew_ms: i64,
    /// Failed polls in a row (for backoff).
    pub consecutive_failures: u32,
    /// A backfill moved the watermark back (a replay): rebuild the `seen` set from what the outbox holds
    /// ([`PollingStore::known`]) before polling, so that nothing notified is notified again under another id.
    pub reseed: bool,
    /// When the last complete scan of every id ran (provider clock), for resources that reconcile deletions.
    pub reconciled_at: Option<DateTime<Utc>>,
}

/// A due poll job, claimed, with the instance as it stood at the claim.
#[derive(Debug, Clone, PartialEq)]
pub struct PollClaim {
    /// The instance (enabled and valid at the claim; shared by the claims of its resources).
    pub instance: Arc<Instance>,
    /// The resource (key of `event.poller.configuration`).
    pub resource: String,
    /// When the job was scheduled to run.
    pub due_at: DateTime<Utc>,
    /// When this resource's job was created: its watermark start unless backfilled.
    pub job_created_at: DateTime<Utc>,
    /// The lease.
    pub lease: Lease,
    /// The state to continue from.
    pub state: PollState,
}

impl PollClaim {
    /// The instance's id.
    pub fn instance_id(&self) -> InstanceId {
        self.instance.id
    }
}

/// How a poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollStatus {
    /// Complete and consistent: the watermark moved.
    Ok,
    /// Events committed, but the scan stayed inconsistent: the watermark stayed.
    Inconsistent,
    /// Abandoned: nothing committed.
    Failed,
    /// Abandoned: the provider wants a new authorization.
    ReauthorizationRequired,
}

impl PollStatus {
    /// The status as the API, the logs, the metrics and the store spell it (`ok`, `inconsistent`, `failed`,
    /// `reauthorization_required`).
    pub fn as_str(self) -> &'static str {
        match self {
            PollStatus::Ok => "ok",
            PollStatus::Inconsistent => "inconsistent",
            PollStatus::Failed => "failed",
            PollStatus::ReauthorizationRequired => "reauthorization_required",
        }
    }

    /// Every status, in order.
    pub const ALL: [PollStatus; 4] =
        [PollStatus::Ok, PollStatus::Inconsistent, PollStatus::Failed, PollStatus::ReauthorizationRequired];

    /// The status of a spelling of [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<PollStatus> {
        PollStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True when the poll committed its events (`ok` or `inconsistent`).
    pub fn completed(self) -> bool {
        matches!(self, PollStatus::Ok | PollStatus::Inconsistent)
    }
}

/// A record the engine could not read fully (missing id, unparsable date), kept for the user to see.
///
/// Stored as JSON inside [`PollOutcome`]: rows written before the API answered camelCase hold snake_case keys,
/// read through the aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollWarning {
    /// The record id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "record_id")]
    pub record_id: Option<String>,
    /// The record's position in the scan (0-based), when the id is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// What went wrong.
    pub message: String,
}

impl PollWarning {
    /// A warning about the poll as a whole.
    pub fn general(message: impl Into<String>) -> PollWarning {
        PollWarning { record_id: None, position: None, message: message.into() }
    }
}

/// What one poll did, kept for the API.
///
/// Stored as JSON by `oc-store` (column `polls.outcome`): rows written before the API answered camelCase hold
/// snake_case keys, read through the aliases. Keep an alias for every multi-word field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollOutcome {
    /// Start (local clock).
    #[serde(alias = "started_at")]
    pub started_at: DateTime<Utc>,
    /// End (local clock).
    #[serde(alias = "finished_at")]
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub status: PollStatus,
    /// The lower bound queried (`W − L`).
    #[serde(alias = "window_start")]
    pub window_start: Option<DateTime<Utc>>,
    /// Pages read.
    pub pages: u32,
    /// Records read.
    pub records: u64,
    /// Events found, per type.
    pub created: u32,
    /// UPDATED events found.
    pub updated: u32,
    /// DELETED events found.
    pub deleted: u32,
    /// Records not read fully.
    pub warnings: Vec<PollWarning>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl PollOutcome {
    /// An outcome with nothing read yet.
    pub fn new(
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        status: PollStatus,
        window_start: Option<DateTime<Utc>>,
    ) -> PollOutcome {
        PollOutcome {
            started_at,
            finished_at,
            status,
            window_start,
            pages: 0,
            records: 0,
            created: 0,
            updated: 0,
            deleted: 0,
            warnings: Vec::new(),
            error: None,
        }
    }

    /// How long the poll took (zero when the clock went backwards).
    pub fn duration(&self) -> Duration {
        (self.finished_at - self.started_at).to_std().unwrap_or(Duration::ZERO)
    }
}

/// The atomic result of a successful (or consistent-enough) poll.
#[derive(Debug, Clone)]
pub struct PollCommit {
    /// New events for the outbox; an event whose id exists is ignored.
    pub events: Vec<Event>,
    /// The new `seen` set (engine encoding).
    pub seen: Vec<u8>,
    /// The new watermark; `None` keeps the old one (inconsistent scan).
    pub watermark: Option<DateTime<Utc>>,
    /// Measured skew.
    pub skew_ms: i64,
    /// What happened.
    pub outcome: PollOutcome,
    /// When the job is due next.
    pub next_run_at: DateTime<Utc>,
    /// Set when this poll ran a complete scan of every id (deletions reconciled); `None` keeps the last one.
    pub reconciled: Option<Reconciled>,
    /// The W3C `traceparent` of the poll's trace, kept with its events so that their delivery continues it
    /// ([`Telemetry::trace_parent`](crate::ports::Telemetry::trace_parent)); `None` when traces are off.
    pub trace_parent: Option<String>,
}

/// A complete scan of every id of a resource (deletions reconciled).
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    /// When it ran (provider clock).
    pub at: DateTime<Utc>,
    /// The ids live after this poll: the baseline of the next reconciling scan.
    pub live_ids: Vec<Box<str>>,
}

/// What the store knows of the objects of one (instance, resource).
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The latest event of every object the outbox still holds (whatever its delivery status).
    pub notified: Vec<Event>,
    /// The ids live after the last complete scan of every id ([`Reconciled::live_ids`]); empty when none ran.
    pub live_ids: Vec<Box<str>>,
}

/// An abandoned poll: nothing but the outcome is written; the watermark and `seen` stay.
#[derive(Debug, Clone)]
pub struct PollFailure {
    /// What happened.
    pub outcome: PollOutcome,
    /// When to try again (backoff).
    pub next_run_at: DateTime<Utc>,
}

/// What a commit wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitSummary {
    /// Events inserted.
    pub inserted: usize,
    /// Events ignored because their id existed.
    pub duplicates: usize,
}

/// Poll jobs, their leases and state: what the scheduler and the engine need.
#[async_trait]
pub trait PollingStore: Send + Sync {
    /// Claims up to `limit` poll jobs due at `now` of enabled, valid instances with notifications enabled,
    /// leasing them to `owner` for `ttl`, each with its instance. A job held under a valid lease is never handed
    /// out twice.
    async fn claim_polls(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<PollClaim>, StoreError>;
    /// Extends a lease still held.
    async fn renew_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Lease, StoreError>;
    /// Writes events, `seen`, the watermark and the outcome in one transaction (ending a replay's reseed), and
    /// releases the lease.
    /// Refused with [`StoreError::LeaseLost`] when the lease is not current.
    async fn commit_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        commit: &PollCommit,
    ) -> Result<CommitSummary, StoreError>;
    /// Records a failed poll and releases the lease; watermark and `seen` stay.
    async fn abandon_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        lease: &Lease,
        failure: &PollFailure,
    ) -> Result<(), StoreError>;
    /// Releases a lease without recording anything (shutdown); the job stays due.
    async fn release_poll(&self, instance: InstanceId, resource: &str, lease: &Lease) -> Result<(), StoreError>;
    /// What is known of the objects of `resource`: the latest event of each the outbox still holds, and the ids
    /// of the last complete id scan — for a replay (`PollState::reseed`) and for reconciling deletions.
    async fn known(&self, instance: InstanceId, resource: &str) -> Result<Known, StoreError>;
}

//! The store port: durable state. Implemented on SQLite and PostgreSQL by `oc-store`.
//!
//! Split by concern so each caller sees only what it uses: [`AccountStore`] (organizations, users,
//! authentication), [`InstanceStore`], [`PollStore`] (poll jobs, leases, poll state, the atomic poll commit),
//! [`OutboxStore`] (events, notifications, delivery attempts), and the provider's
//! [`TokenVault`](super::TokenVault). [`Store`] is their union.
//!
//! Leases fence work across nodes: a claim hands out a [`Lease`] with a generation; a write carrying a
//! lease whose generation is no longer current fails with [`StoreError::LeaseLost`], so a node that lost its
//! lease (paused, partitioned) cannot commit stale work.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Configuration;
use crate::event::{Event, EventType};
use crate::ids::{InstanceId, OrgId, UserId};
use crate::ports::provider::{ProviderAccount, TokenSet, TokenVault};

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

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Id.
    pub id: OrgId,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A new organization with its first user. Secrets are given in clear and stored only as hashes.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Name.
    pub name: String,
    /// The organization secret.
    pub org_secret: String,
    /// The first user's secret.
    pub user_secret: String,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// Who is calling the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Organization.
    pub org_id: OrgId,
    /// User.
    pub user_id: UserId,
}

/// Organizations, users and API authentication.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an organization and its first user.
    async fn create_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError>;
    /// Creates the organization and user of these secrets unless they exist (idempotent bootstrap).
    async fn ensure_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError>;
    /// The principal whose user and organization secrets these are (constant-time comparison of hashes).
    async fn authenticate(&self, user_secret: &str, org_secret: &str) -> Result<Option<Principal>, StoreError>;
    /// The instance whose `Element` token this is, with its owner.
    async fn authenticate_instance(&self, token: &str) -> Result<Option<(Principal, InstanceId)>, StoreError>;
    /// The principal of a user secret alone (for `Authorization: User <u>, Element <t>`).
    async fn authenticate_user(&self, user_secret: &str) -> Result<Option<Principal>, StoreError>;
}

/// A stored connector instance. Secret configuration values are decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Id.
    pub id: InstanceId,
    /// Owner organization.
    pub org_id: OrgId,
    /// Creating user.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Element key (`sageone`).
    pub element_key: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Configuration as given (secrets in clear here; masked only in API answers).
    pub configuration: Configuration,
    /// Provider account (business).
    pub account: ProviderAccount,
    /// Switched off by the user.
    pub disabled: bool,
    /// False when re-authorization is required.
    pub valid: bool,
    /// Why it is not valid.
    pub invalid_reason: Option<String>,
    /// Why notifications are switched off by the receiver (`410 Gone`), when they are.
    pub notifications_disabled_reason: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Where the watermark of a resource starts unless backfilled (provider clock at creation).
    pub poll_start: DateTime<Utc>,
}

/// A new instance, authorized.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Owner organization.
    pub org_id: OrgId,
    /// Creating user.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Element key.
    pub element_key: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Configuration (secrets in clear; the store encrypts them).
    pub configuration: Configuration,
    /// Provider account.
    pub account: ProviderAccount,
    /// OAuth tokens.
    pub tokens: TokenSet,
    /// The instance's `Element` token in clear; stored only as a hash.
    pub token: String,
    /// Creation time (local clock).
    pub now: DateTime<Utc>,
    /// Provider clock at creation: where watermarks start.
    pub poll_start: DateTime<Utc>,
}

/// A change of an instance. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InstanceUpdate {
    /// New name.
    pub name: Option<String>,
    /// New tags (replace all).
    pub tags: Option<Vec<String>>,
    /// New configuration (already merged by the caller). Poll jobs follow its resources and interval at once;
    /// a changed callback or re-enabled notifications clear a `410` switch-off.
    pub configuration: Option<Configuration>,
    /// A re-authorization: new tokens and account; the instance becomes valid again.
    pub authorization: Option<(TokenSet, ProviderAccount)>,
    /// When this happens.
    pub now: DateTime<Utc>,
}

/// Instances of organizations.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// Creates an instance and its poll jobs (one per configured resource, due at once).
    async fn create_instance(&self, new: &NewInstance) -> Result<Instance, StoreError>;
    /// An instance of `org`; `None` also for another organization's instance.
    async fn instance(&self, org: OrgId, id: InstanceId) -> Result<Option<Instance>, StoreError>;
    /// Any instance by id (for the engine).
    async fn instance_by_id(&self, id: InstanceId) -> Result<Option<Instance>, StoreError>;
    /// Instances of `org` carrying every tag in `tags`, by id.
    async fn list_instances(&self, org: OrgId, tags: &[String]) -> Result<Vec<Instance>, StoreError>;
    /// Changes an instance of `org`.
    async fn update_instance(
        &self,
        org: OrgId,
        id: InstanceId,
        update: &InstanceUpdate,
    ) -> Result<Instance, StoreError>;
    /// Switches an instance off or on.
    async fn set_disabled(
        &self,
        org: OrgId,
        id: InstanceId,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<Instance, StoreError>;
    /// Switches notifications of an instance off (`410 Gone`, with the reason) or back on (`None`).
    async fn set_notifications_disabled(&self, id: InstanceId, reason: Option<&str>) -> Result<(), StoreError>;
    /// Deletes an instance: its token stops working, its poll jobs go, its pending notifications are dropped
    /// (status `dropped`, kept for the record). False when it did not exist.
    async fn delete_instance(&self, org: OrgId, id: InstanceId, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// A claim on a job, fencing writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node holding it.
    pub owner: String,
    /// Incremented on every claim; a write with an older generation is refused.
    pub generation: i64,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

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
}

/// A due poll job, claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct PollClaim {
    /// The instance.
    pub instance_id: InstanceId,
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

/// One poll as listed by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRecord {
    /// Instance.
    pub instance_id: InstanceId,
    /// Resource.
    pub resource: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: PollOutcome,
}

/// Poll jobs, their leases and state.
#[async_trait]
pub trait PollStore: Send + Sync {
    /// Claims up to `limit` poll jobs due at `now` of enabled, valid instances with notifications enabled,
    /// leasing them to `owner` for `ttl`. A job held under a valid lease is never handed out twice.
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
    /// Writes events, `seen`, the watermark and the outcome in one transaction, and releases the lease.
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
    /// The latest polls of an instance, newest first.
    async fn list_polls(&self, org: OrgId, instance: InstanceId, limit: usize) -> Result<Vec<PollRecord>, StoreError>;
    /// The current state of one (instance, resource).
    async fn poll_state(&self, instance: InstanceId, resource: &str) -> Result<Option<PollState>, StoreError>;
}

/// Delivery state of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Leased to a delivery worker.
    Delivering,
    /// A 2xx answer came.
    Delivered,
    /// Every attempt failed; kept and redeliverable.
    Failed,
    /// Its instance was deleted before delivery.
    Dropped,
}

/// Delivery state of an event (of its notification; `pending` before it is batched).
pub type EventStatus = NotificationStatus;

/// A notification as stored (and as the API shows it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    /// Its id (`message.eventId`, `webhook-id`), fixed at build time.
    pub id: Uuid,
    /// Instance.
    pub instance_id: InstanceId,
    /// Object type of its events.
    pub object_type: String,
    /// Status.
    pub status: NotificationStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Built at.
    pub created_at: DateTime<Utc>,
    /// Next attempt, when pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Delivered at.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<String>,
}

/// A notification leased for delivery, with its events in order.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryClaim {
    /// The notification.
    pub notification: NotificationRecord,
    /// Its events, in outbox order.
    pub events: Vec<Event>,
    /// The lease.
    pub lease: Lease,
}

/// One attempt to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAttempt {
    /// Start.
    pub at: DateTime<Utc>,
    /// HTTP status, when answered.
    pub status_code: Option<u16>,
    /// Latency in milliseconds.
    pub latency_ms: u64,
    /// Error, when failed.
    pub error: Option<String>,
    /// First 1 KB of the answer.
    pub response_excerpt: String,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAttempt {
    /// 1-based attempt number.
    pub number: u32,
    /// The attempt.
    #[serde(flatten)]
    pub attempt: NewAttempt,
}

/// What happens to a notification after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Done.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Out of attempts: kept as failed.
    Failed,
}

/// One attempt to record with [`OutboxStore::record_attempts`]: the arguments of one
/// [`OutboxStore::record_attempt`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The notification attempted.
    pub notification: Uuid,
    /// The lease it was claimed under.
    pub lease: Lease,
    /// The attempt.
    pub attempt: NewAttempt,
    /// What follows it.
    pub next: NextStep,
}

/// Filters of the event lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this instance.
    pub instance_id: Option<InstanceId>,
    /// Only this delivery status.
    pub status: Option<NotificationStatus>,
    /// Only this type.
    pub event_type: Option<EventType>,
    /// Only this object type.
    pub object_type: Option<String>,
    /// 1-based page.
    pub page: u32,
    /// Page size.
    pub page_size: u32,
}

/// An event as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Instance.
    pub instance_id: InstanceId,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Delivery status (`pending` until delivered).
    pub status: NotificationStatus,
    /// Its notification, once batched.
    pub notification_id: Option<Uuid>,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// The events, newest first.
    pub items: Vec<EventView>,
    /// Total matching.
    pub total: u64,
}

/// One event with its notification and every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    /// The event.
    pub event: EventView,
    /// Its notification.
    pub notification: Option<NotificationRecord>,
    /// Every attempt of that notification, in order.
    pub attempts: Vec<StoredAttempt>,
}

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

/// The event outbox, notifications and delivery attempts.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Groups events not yet in a notification into notifications of at most `max_events` events of one
    /// instance and one object type, in outbox order, each with a new id. Returns how many were built.
    async fn batch_events(&self, now: DateTime<Utc>, max_events: usize) -> Result<usize, StoreError>;
    /// Claims notifications due at `now` for `owner`. Never hands out a notification while an earlier one
    /// holding an event of the same object is pending or delivering (per-object order), nor one whose instance
    /// is deleted, disabled, or has notifications switched off.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<DeliveryClaim>, StoreError>;
    /// Records an attempt and what follows it, releasing the lease. Refused when the lease is not current.
    async fn record_attempt(
        &self,
        notification: Uuid,
        lease: &Lease,
        attempt: &NewAttempt,
        next: NextStep,
    ) -> Result<(), StoreError>;
    /// Records several attempts, each exactly as [`record_attempt`](OutboxStore::record_attempt) would, in order:
    /// `Ok` holds one result per record, in the order given, and a record refused (its lease is not current,
    /// e.g. because an earlier record of the same notification released it) does not affect the others. `Err`
    /// when the batch as a whole failed: the implementations of `oc-store` write a batch in one transaction, so
    /// then nothing of it is recorded.
    ///
    /// The default implementation calls `record_attempt` once per record.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut results = Vec::with_capacity(records.len());
        for r in records {
            results.push(self.record_attempt(r.notification, &r.lease, &r.attempt, r.next).await);
        }
        Ok(results)
    }
    /// Events of `org`, newest first.
    async fn list_events(&self, org: OrgId, filter: &EventFilter) -> Result<EventPage, StoreError>;
    /// One event of `org` with its notification and attempts.
    async fn event_detail(&self, org: OrgId, event_id: Uuid) -> Result<Option<EventDetail>, StoreError>;
    /// A notification of `org` with its attempts.
    async fn notification(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<Option<(NotificationRecord, Vec<StoredAttempt>)>, StoreError>;
    /// Makes a failed notification of `org` due again now. False when it is not failed.
    async fn redeliver(&self, org: OrgId, notification: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Makes every failed notification of an instance due again; returns how many.
    async fn redeliver_failed(&self, org: OrgId, instance: InstanceId, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Deletes delivered notifications and their attempts older than `before`; returns how many.
    async fn prune_delivered(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Gauges.
    async fn outbox_stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, StoreError>;
}

/// Everything durable, as one handle.
pub trait Store: AccountStore + InstanceStore + PollStore + OutboxStore + TokenVault {}

impl<T: AccountStore + InstanceStore + PollStore + OutboxStore + TokenVault> Store for T {}

//! [`DeliveryStore`]: what the dispatcher needs — events batched into notifications, due notifications claimed
//! with their instance, attempts recorded, notifications of an instance switched off.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Instance, Lease, StoreError};
use crate::event::Event;
use crate::ids::InstanceId;

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
    /// Of an event only: never sent by webhook — its type is not in `event.notification.eventTypes`, or its
    /// instance has no callback URL (its changes go to the feed only). Kept like any other event.
    Withheld,
}

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

/// A notification leased for delivery, with its events in order and its instance.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryClaim {
    /// The notification.
    pub notification: NotificationRecord,
    /// Its events, in outbox order.
    pub events: Vec<Event>,
    /// The lease.
    pub lease: Lease,
    /// Its instance as it stood at the claim (shared by the claims of one instance).
    pub instance: Arc<Instance>,
    /// The `traceparent` of the poll that committed its first traced event ([`PollCommit::trace_parent`]).
    ///
    /// [`PollCommit::trace_parent`]: crate::ports::PollCommit::trace_parent
    pub trace_parent: Option<String>,
}

impl DeliveryClaim {
    /// The date of the oldest change it carries (provider clock), when it carries any.
    pub fn oldest_change(&self) -> Option<DateTime<Utc>> {
        self.events.iter().map(|e| e.date).min()
    }
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

impl NewAttempt {
    /// When the attempt ended: its start plus its latency.
    pub fn ended_at(&self) -> DateTime<Utc> {
        let millis = i64::try_from(self.latency_ms).unwrap_or(i64::MAX);
        self.at.checked_add_signed(chrono::Duration::milliseconds(millis)).unwrap_or(self.at)
    }
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

/// One attempt to record with [`DeliveryStore::record_attempts`].
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

/// The outbox as the dispatcher sees it.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Groups events not yet in a notification into notifications of at most `max_events` events of one
    /// instance and one object type, in outbox order, each with a new id. Returns how many were built.
    async fn batch_events(&self, now: DateTime<Utc>, max_events: usize) -> Result<usize, StoreError>;
    /// Claims notifications due at `now` for `owner`, each with its instance. Never hands out a notification
    /// while an earlier one holding an event of the same object is pending or delivering (per-object order), nor
    /// one whose instance is deleted, disabled, or has notifications switched off.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<DeliveryClaim>, StoreError>;
    /// Records attempts and what follows each, releasing their leases, in order: `Ok` holds one result per
    /// record, in the order given; a record refused (its lease is not current, e.g. because an earlier record of
    /// the same notification released it) fails with [`StoreError::LeaseLost`] and does not affect the others.
    /// `Err` when the batch as a whole failed: the implementations of `oc-store` write a batch in one
    /// transaction, so then nothing of it is recorded.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<Vec<Result<(), StoreError>>, StoreError>;
    /// Records one attempt ([`record_attempts`](Self::record_attempts) with one record).
    async fn record_attempt(
        &self,
        notification: Uuid,
        lease: &Lease,
        attempt: &NewAttempt,
        next: NextStep,
    ) -> Result<(), StoreError> {
        let record = AttemptRecord { notification, lease: lease.clone(), attempt: attempt.clone(), next };
        let mut results = self.record_attempts(std::slice::from_ref(&record)).await?;
        results.pop().unwrap_or_else(|| Err(StoreError::Database("the store answered no result".into())))
    }
    /// Switches notifications of an instance off (`410 Gone`, with the reason) or back on (`None`).
    async fn set_notifications_disabled(&self, id: InstanceId, reason: Option<&str>) -> Result<(), StoreError>;
}

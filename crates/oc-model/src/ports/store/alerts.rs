//! [`AlertStore`]: operational alerts — "something needs a person" — kept in an outbox of their own and
//! delivered like notifications (signed, retried, at least once).
//!
//! An alert is written by the store in the same transaction as the fact it reports, once per transition:
//! - `instance.invalid` when an instance goes from valid to invalid (its grant was revoked: re-authenticate);
//! - `notifications.disabled` when a receiver's `410 Gone` switches notifications of an instance off;
//! - `notification.failed` when a notification's last attempt failed (it is kept, redeliverable);
//! - `polling.failing` when a resource's polls have failed without a success for longer than a threshold
//!   (once per streak of failures).
//!
//! Where it goes is decided at delivery: the instance's `event.notification.operational.callback.url` (signed
//! with its `event.notification.signature.key`), else the server-wide operational webhook, else nowhere — it is
//! then kept as [`AlertStatus::Unrouted`], listed like the others.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Instance, Lease, NewAttempt, NextStep, StoreError, StoredAttempt};
use crate::ids::{InstanceId, OrgId};

/// What an alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertType {
    /// The instance became invalid: a re-authentication is needed.
    #[serde(rename = "instance.invalid")]
    InstanceInvalid,
    /// A receiver's `410 Gone` switched notifications of the instance off.
    #[serde(rename = "notifications.disabled")]
    NotificationsDisabled,
    /// A notification failed for good (every attempt of its schedule failed).
    #[serde(rename = "notification.failed")]
    NotificationFailed,
    /// A resource's polls have been failing for longer than the threshold.
    #[serde(rename = "polling.failing")]
    PollingFailing,
}

impl AlertType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [AlertType; 4] = [
        AlertType::InstanceInvalid,
        AlertType::NotificationsDisabled,
        AlertType::NotificationFailed,
        AlertType::PollingFailing,
    ];

    /// The wire name (`instance.invalid`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::InstanceInvalid => "instance.invalid",
            AlertType::NotificationsDisabled => "notifications.disabled",
            AlertType::NotificationFailed => "notification.failed",
            AlertType::PollingFailing => "polling.failing",
        }
    }

    /// The type of a wire name.
    pub fn parse(text: &str) -> Option<AlertType> {
        AlertType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Delivery state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Leased to a delivery worker.
    Delivering,
    /// A 2xx answer came.
    Delivered,
    /// Every attempt failed; kept and redeliverable.
    Failed,
    /// No operational webhook was configured when it was due (neither the instance's nor the server's): kept,
    /// listed, redeliverable once one is.
    Unrouted,
}

impl AlertStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivering => "delivering",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Failed => "failed",
            AlertStatus::Unrouted => "unrouted",
        }
    }

    /// The status of a stored name.
    pub fn parse(text: &str) -> Option<AlertStatus> {
        [
            AlertStatus::Pending,
            AlertStatus::Delivering,
            AlertStatus::Delivered,
            AlertStatus::Failed,
            AlertStatus::Unrouted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// An alert as stored (and as the API shows it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    /// Its id: `webhook-id` and `Elements-Webhook-Id` of every attempt, and `id` in the body.
    pub id: Uuid,
    /// The instance it is about.
    pub instance_id: InstanceId,
    /// What it reports.
    #[serde(rename = "type")]
    pub alert_type: AlertType,
    /// When the fact it reports was recorded.
    pub created_at: DateTime<Utc>,
    /// The JSON body sent, exactly: `{"id", "type", "instanceId", "instanceName", "elementKey", "at", "reason",
    /// ...}` with the fields of its type.
    pub body: serde_json::Value,
    /// Status.
    pub status: AlertStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt, when pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Delivered at.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<String>,
    /// Where the last attempt went: `instance` (its operational callback URL) or `server` (the server-wide one).
    pub target: Option<String>,
}

/// An alert leased for delivery, with its instance when it still exists.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertClaim {
    /// The alert.
    pub alert: AlertRecord,
    /// The lease.
    pub lease: Lease,
    /// Its instance as it stood at the claim; `None` once deleted.
    pub instance: Option<Instance>,
}

/// What follows an attempt of an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertStep {
    /// It was attempted at `target` (`instance` or `server`); the attempt and what follows it.
    Attempted {
        /// `instance` or `server`.
        target: &'static str,
        /// The attempt.
        attempt: NewAttempt,
        /// What follows.
        next: NextStep,
    },
    /// No operational webhook is configured: kept as [`AlertStatus::Unrouted`], not attempted.
    Unrouted {
        /// When this was found.
        at: DateTime<Utc>,
    },
}

/// A page of alerts, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage {
    /// The alerts.
    pub items: Vec<AlertRecord>,
    /// How many match in all.
    pub total: u64,
}

/// The alert outbox.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Claims alerts due at `now` (pending and due, or delivering under a lapsed lease), oldest first, for `owner`.
    async fn claim_alerts(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<AlertClaim>, StoreError>;
    /// Records what came of a claimed alert and releases its lease; [`StoreError::LeaseLost`] when the lease is
    /// no longer current.
    async fn record_alert(&self, id: Uuid, lease: &Lease, step: &AlertStep) -> Result<(), StoreError>;
    /// The alerts of an instance of `org`, newest first, optionally of one type; `None` when no such instance.
    async fn list_alerts(
        &self,
        org: OrgId,
        instance: InstanceId,
        alert_type: Option<AlertType>,
        limit: u32,
        offset: u64,
    ) -> Result<Option<AlertPage>, StoreError>;
    /// One alert of `org`, with its attempts.
    async fn alert(&self, org: OrgId, id: Uuid) -> Result<Option<(AlertRecord, Vec<StoredAttempt>)>, StoreError>;
    /// Makes an alert of `org` due again at `now`, whatever its status (a delivering one is left to finish);
    /// false when there is no such alert.
    async fn redeliver_alert(&self, org: OrgId, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

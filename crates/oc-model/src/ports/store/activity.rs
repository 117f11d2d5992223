//! [`ActivityStore`]: what happened, as the API shows it — events with their delivery status, notifications with
//! every attempt, the polls of an instance — and redelivery.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{NotificationRecord, NotificationStatus, PollOutcome, StoreError, StoredAttempt};
use crate::event::{Event, EventType};
use crate::ids::{InstanceId, OrgId};

/// Delivery state of an event (of its notification; `pending` before it is batched).
pub type EventStatus = NotificationStatus;

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

/// Events, notifications, attempts and polls of an organization, and redelivery.
#[async_trait]
pub trait ActivityStore: Send + Sync {
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
    /// The latest polls of an instance of `org`, newest first.
    async fn list_polls(&self, org: OrgId, instance: InstanceId, limit: usize) -> Result<Vec<PollRecord>, StoreError>;
}

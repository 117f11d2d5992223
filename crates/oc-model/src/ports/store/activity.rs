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

/// An event's status in Open Connectors' vocabulary, derived from its notification's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OcEventStatus {
    /// Committed, not yet sent (not in a notification yet, or its notification not yet attempted).
    New,
    /// Being delivered, or waiting for a retry after a failed attempt.
    Dispatched,
    /// Delivered.
    Notified,
    /// ocpoll: its notification failed for good (kept, redeliverable).
    Failed,
    /// ocpoll: its instance was deleted before it was delivered.
    Dropped,
    /// ocpoll: not sent by webhook (a type outside `event.notification.eventTypes`, or no callback URL: feed
    /// only).
    Withheld,
}

impl OcEventStatus {
    /// The status of an event whose notification is `status` after `attempts` attempts.
    pub fn of(status: NotificationStatus, attempts: u32) -> OcEventStatus {
        match status {
            NotificationStatus::Pending if attempts == 0 => OcEventStatus::New,
            NotificationStatus::Pending | NotificationStatus::Delivering => OcEventStatus::Dispatched,
            NotificationStatus::Delivered => OcEventStatus::Notified,
            NotificationStatus::Failed => OcEventStatus::Failed,
            NotificationStatus::Dropped => OcEventStatus::Dropped,
            NotificationStatus::Withheld => OcEventStatus::Withheld,
        }
    }

    /// `NEW`, `DISPATCHED`, `NOTIFIED`, `FAILED`, `DROPPED` or `WITHHELD`.
    pub fn as_str(self) -> &'static str {
        match self {
            OcEventStatus::New => "NEW",
            OcEventStatus::Dispatched => "DISPATCHED",
            OcEventStatus::Notified => "NOTIFIED",
            OcEventStatus::Failed => "FAILED",
            OcEventStatus::Dropped => "DROPPED",
            OcEventStatus::Withheld => "WITHHELD",
        }
    }

    /// Reads a status of [`as_str`](Self::as_str), in any case.
    pub fn parse(text: &str) -> Option<OcEventStatus> {
        [Self::New, Self::Dispatched, Self::Notified, Self::Failed, Self::Dropped, Self::Withheld]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// Which events a status filter keeps: by ocpoll's delivery status, or by Open Connectors' status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// The delivery status of the event's notification (`pending` before it is batched).
    Delivery(NotificationStatus),
    /// Open Connectors' status ([`OcEventStatus::of`]).
    Oc(OcEventStatus),
}

/// Filters of the event lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this instance.
    pub instance_id: Option<InstanceId>,
    /// Only this status.
    pub status: Option<StatusFilter>,
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
    /// Its position in the outbox (commit order): Open Connectors' numeric event `id`.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Instance.
    pub instance_id: InstanceId,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Delivery status (`pending` until delivered).
    pub status: NotificationStatus,
    /// Attempts of its notification so far (0 before it is batched).
    pub attempts: u32,
    /// Its notification, once batched.
    pub notification_id: Option<Uuid>,
}

impl EventView {
    /// Its status in Open Connectors' vocabulary.
    pub fn oc_status(&self) -> OcEventStatus {
        OcEventStatus::of(self.status, self.attempts)
    }
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

/// A read of one instance's change feed: the events after a position, in commit order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    /// The instance.
    pub instance: InstanceId,
    /// Only changes after this outbox position (the `seq` of the last change read); `None` from the oldest kept.
    pub after: Option<i64>,
    /// At most this many.
    pub limit: u32,
    /// Only this object type.
    pub object_type: Option<String>,
    /// Only this event type.
    pub event_type: Option<EventType>,
}

/// One change of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its position in the outbox (commit order).
    pub seq: i64,
    /// The event.
    pub event: Event,
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    /// The changes, oldest first.
    pub changes: Vec<Change>,
    /// The highest position retention removed from this instance's feed: a read after a lower position would
    /// skip changes (the API answers `410 cursor_expired`); a read without a position starts here.
    pub floor: i64,
    /// The last position examined: the changes' last, or, when a filter skipped every event up to the limit,
    /// the last skipped one (so a filtered reader moves on instead of reading the same events again).
    pub position: i64,
    /// More changes come after `position` now.
    pub has_more: bool,
}

/// Which kept events of an instance a replay sends again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayQuery {
    /// The instance.
    pub instance: InstanceId,
    /// Events committed at or after this instant.
    pub since: DateTime<Utc>,
    /// ...and before this one, when given.
    pub until: Option<DateTime<Utc>>,
    /// Only this object type.
    pub object_type: Option<String>,
    /// Only this event type.
    pub event_type: Option<EventType>,
    /// Only this event (the redelivery of one event).
    pub event_id: Option<Uuid>,
}

/// Events, notifications, attempts and polls of an organization, and redelivery.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// A page of the change feed of an instance of `org` (`None` when it is not one of theirs).
    async fn changes(&self, org: OrgId, query: &ChangeQuery) -> Result<Option<ChangePage>, StoreError>;
    /// A number that grows whenever events may have been committed (on this node, or — on PostgreSQL — on any
    /// node): taken before a read of the feed, it lets [`wait_for_commit`](Self::wait_for_commit) wait for the
    /// next commit without missing one that lands between the read and the wait.
    fn commit_generation(&self) -> u64;
    /// Waits until [`commit_generation`](Self::commit_generation) is past `seen`, or `timeout`; returns it.
    async fn wait_for_commit(&self, seen: u64, timeout: std::time::Duration) -> u64;
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
    /// Sends kept events of an instance of `org` again (`None` when it is not one of theirs): each in a new
    /// notification (same event ids, new notification ids), grouped per object type in commit order, due at
    /// `now`, so the order of the changes of one object holds. Events whose notification is still pending or
    /// being delivered are on their way already and are left alone; a failed notification (it never reached the
    /// receiver) is made due again under its own id; withheld events are sent too (a replay is asked for).
    /// Returns how many events were queued again.
    async fn replay(&self, org: OrgId, query: &ReplayQuery, now: DateTime<Utc>) -> Result<Option<u64>, StoreError>;
    /// Makes a delivered or failed notification of `org` due again now (same notification id). False when it is
    /// pending or being delivered already (or not theirs).
    async fn redeliver(&self, org: OrgId, notification: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Makes every failed notification of an instance due again; returns how many.
    async fn redeliver_failed(&self, org: OrgId, instance: InstanceId, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The latest polls of an instance of `org`, newest first.
    async fn list_polls(&self, org: OrgId, instance: InstanceId, limit: usize) -> Result<Vec<PollRecord>, StoreError>;
}

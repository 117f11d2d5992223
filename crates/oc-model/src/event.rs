//! Events (one observed change of one record) and the Open Connectors notification `message`.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::ids::{InstanceId, OrgId, UserId};

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The record was created since it was last reported.
    Created,
    /// The record changed.
    Updated,
    /// The record was deleted.
    Deleted,
}

impl EventType {
    /// `CREATED`, `UPDATED` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "CREATED",
            EventType::Updated => "UPDATED",
            EventType::Deleted => "DELETED",
        }
    }

    /// Parses `CREATED`/`UPDATED`/`DELETED` in any case.
    pub fn parse(s: &str) -> Option<EventType> {
        match s.to_ascii_uppercase().as_str() {
            "CREATED" => Some(EventType::Created),
            "UPDATED" => Some(EventType::Updated),
            "DELETED" => Some(EventType::Deleted),
            _ => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The UUID v5 namespace of event ids (fixed forever: changing it changes every id).
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f63_706f_6c6c_4576_656e_7449_6473_0001);

/// The deterministic id of one change: re-observing the same state gives the same id.
///
/// It hashes the instance, resource, object id, event type, the change's instant (`updated_at`, or `deleted_at`
/// for a deletion) and the record's content hash.
pub fn event_id(
    instance: InstanceId,
    resource: &str,
    object_id: &str,
    event_type: EventType,
    date: DateTime<Utc>,
    content_hash: u64,
) -> Uuid {
    let name = format!(
        "{instance}\u{1f}{resource}\u{1f}{object_id}\u{1f}{event_type}\u{1f}{}\u{1f}{content_hash:016x}",
        date.to_rfc3339_opts(SecondsFormat::Nanos, true)
    );
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
}

/// One change of one record, as the engine found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Stable id of the change ([`event_id`]).
    pub event_id: Uuid,
    /// CREATED, UPDATED or DELETED.
    pub event_type: EventType,
    /// The hub resource (`customers`).
    pub object_type: String,
    /// The record's id.
    pub object_id: String,
    /// When the change happened (the record's updated or deleted date).
    pub date: DateTime<Utc>,
    /// The record as the provider returned it.
    pub record: Value,
}

impl Event {
    /// The entry of this event in a notification's `events` array.
    pub fn to_message_event(&self, element_key: &str) -> MessageEvent {
        MessageEvent {
            event_id: self.event_id.to_string(),
            event_type: self.event_type,
            object_type: self.object_type.clone(),
            object_id: self.object_id.clone(),
            date: self.date,
            element_key: element_key.to_string(),
        }
    }
}

/// The most events one notification carries (Open Connectors' polling limit).
pub const MAX_EVENTS_PER_NOTIFICATION: usize = 10;

/// The body POSTed to a callback URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The message.
    pub message: Message,
}

/// The Open Connectors `message` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Id of this notification, stable across retries.
    pub event_id: String,
    /// The instance id.
    pub instance_id: InstanceId,
    /// The instance id again, in Open Connectors' snake-case spelling.
    #[serde(rename = "instance_id")]
    pub instance_id_snake: InstanceId,
    /// The instance name.
    pub instance_name: String,
    /// The instance tags.
    pub instance_tags: Vec<String>,
    /// `sageone`.
    pub element_key: String,
    /// `finance`.
    pub hub_key: String,
    /// The instance's user.
    pub user_id: UserId,
    /// The instance's organization (Open Connectors' account).
    pub account_id: OrgId,
    /// The first event's object type.
    pub object_type: String,
    /// The first event's object id.
    pub object_id: String,
    /// The first event's type.
    pub event_type: EventType,
    /// At most [`MAX_EVENTS_PER_NOTIFICATION`] events, all of one object type.
    pub events: Vec<MessageEvent>,
    /// The records of these events.
    pub raw: Raw,
}

/// One entry of `message.events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent {
    /// Stable id of the change.
    pub event_id: String,
    /// CREATED, UPDATED or DELETED.
    pub event_type: EventType,
    /// The hub resource.
    pub object_type: String,
    /// The record's id.
    pub object_id: String,
    /// When the change happened, RFC 3339 UTC.
    pub date: DateTime<Utc>,
    /// `sageone`.
    pub element_key: String,
}

/// `message.raw`: `{"instance_id": 1, "objectType": "customers", "customers": [ ...records ]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// The instance id.
    pub instance_id: InstanceId,
    /// The object type, also the name of the records' member.
    pub object_type: String,
    /// The records of the notification's events, in event order.
    pub records: Vec<Value>,
}

impl Serialize for Raw {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("instance_id", &self.instance_id)?;
        map.serialize_entry("objectType", &self.object_type)?;
        map.serialize_entry(&self.object_type, &self.records)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::deserialize(deserializer)?;
        let instance_id = map
            .remove("instance_id")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| D::Error::custom("raw.instance_id: missing or not an integer"))?;
        let object_type = match map.remove("objectType") {
            Some(Value::String(s)) => s,
            _ => return Err(D::Error::custom("raw.objectType: missing or not a string")),
        };
        let records = match map.remove(&object_type) {
            Some(Value::Array(a)) => a,
            None => Vec::new(),
            Some(_) => return Err(D::Error::custom(format!("raw.{object_type}: not an array"))),
        };
        Ok(Raw { instance_id, object_type, records })
    }
}

/// What a notification says about its instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationMeta {
    /// The instance id.
    pub instance_id: InstanceId,
    /// The instance name.
    pub instance_name: String,
    /// The instance tags.
    pub instance_tags: Vec<String>,
    /// `sageone`.
    pub element_key: String,
    /// `finance`.
    pub hub_key: String,
    /// The instance's user.
    pub user_id: UserId,
    /// The instance's organization.
    pub account_id: OrgId,
}

/// Why a set of events cannot form one notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// No events.
    #[error("a notification needs at least one event")]
    Empty,
    /// More than [`MAX_EVENTS_PER_NOTIFICATION`].
    #[error("a notification carries at most {MAX_EVENTS_PER_NOTIFICATION} events, got {0}")]
    TooMany(usize),
    /// Events of several object types.
    #[error("the events of one notification share one objectType, found {0:?} and {1:?}")]
    MixedTypes(String, String),
    /// An object type that is also a fixed member of `raw` ([`RAW_MEMBERS`]): its records would be a second
    /// member of the same name.
    #[error("the objectType {0:?} is a member of message.raw: its records cannot be listed under it")]
    ReservedObjectType(String),
}

/// The members `message.raw` always has; the records go in a member named after the object type, which must
/// therefore be neither.
pub const RAW_MEMBERS: [&str; 2] = ["instance_id", "objectType"];

impl Notification {
    /// Builds the notification `id` for `events` (1 to 10, one object type), in the given order.
    pub fn new(meta: &NotificationMeta, id: Uuid, events: &[Event]) -> Result<Notification, NotificationError> {
        let first = events.first().ok_or(NotificationError::Empty)?;
        if events.len() > MAX_EVENTS_PER_NOTIFICATION {
            return Err(NotificationError::TooMany(events.len()));
        }
        if let Some(other) = events.iter().find(|e| e.object_type != first.object_type) {
            return Err(NotificationError::MixedTypes(first.object_type.clone(), other.object_type.clone()));
        }
        if RAW_MEMBERS.contains(&first.object_type.as_str()) {
            return Err(NotificationError::ReservedObjectType(first.object_type.clone()));
        }
        Ok(Notification {
            message: Message {
                event_id: id.to_string(),
                instance_id: meta.instance_id,
                instance_id_snake: meta.instance_id,
                instance_name: meta.instance_name.clone(),
                instance_tags: meta.instance_tags.clone(),
                element_key: meta.element_key.clone(),
                hub_key: meta.hub_key.clone(),
                user_id: meta.user_id,
                account_id: meta.account_id,
                object_type: first.object_type.clone(),
                object_id: first.object_id.clone(),
                event_type: first.event_type,
                events: events.iter().map(|e| e.to_message_event(&meta.element_key)).collect(),
                raw: Raw {
                    instance_id: meta.instance_id,
                    object_type: first.object_type.clone(),
                    records: events.iter().map(|e| e.record.clone()).collect(),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> NotificationMeta {
        NotificationMeta {
            instance_id: 1234,
            instance_name: "API_Polling".into(),
            instance_tags: vec!["Test".into()],
            element_key: "sageone".into(),
            hub_key: "finance".into(),
            user_id: 1,
            account_id: 1,
        }
    }

    fn event(object_type: &str, id: &str, t: EventType) -> Event {
        let date = "2019-03-25T15:31:02Z".parse().unwrap();
        Event {
            event_id: event_id(1234, object_type, id, t, date, 7),
            event_type: t,
            object_type: object_type.into(),
            object_id: id.into(),
            date,
            record: json!({"id": id, "updated_at": "2019-03-25T15:31:02Z"}),
        }
    }

    #[test]
    fn notification_matches_fixture_and_round_trips() {
        let events = [event("customers", "a1", EventType::Created), event("customers", "b2", EventType::Updated)];
        let id = Uuid::from_u128(42);
        let n = Notification::new(&meta(), id, &events).unwrap();
        let fixture: Value = serde_json::from_str(include_str!("../tests/fixtures/notification.json")).unwrap();
        assert_eq!(serde_json::to_value(&n).unwrap(), fixture);
        let back: Notification = serde_json::from_value(fixture).unwrap();
        assert_eq!(back, n);
    }

    /// Found by the `notification` fuzz target: without serde_json's `float_roundtrip` a record number read
    /// with the fast, inexact parser (here a 65-digit integer) is written in the body in its shortest form,
    /// which reads back one unit in the last place off: the receiver (and a record reloaded from the outbox)
    /// got another number than the one read from the provider.
    #[test]
    fn record_numbers_survive_the_body() {
        let mut e = event("customers", "a1", EventType::Created);
        // 65 digits: read as a float, whose shortest form is then written in the body
        let text = format!(r#"{{"id": "a1", "balance": {}, "rate": 0.1}}"#, "2".repeat(65));
        e.record = serde_json::from_str(&text).unwrap();
        let n = Notification::new(&meta(), Uuid::nil(), std::slice::from_ref(&e)).unwrap();
        let body = serde_json::to_vec(&n).unwrap();
        let back: Notification = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.message.raw.records, [e.record]);
    }

    #[test]
    fn notification_limits() {
        let e = event("customers", "a", EventType::Created);
        assert_eq!(Notification::new(&meta(), Uuid::nil(), &[]), Err(NotificationError::Empty));
        assert_eq!(Notification::new(&meta(), Uuid::nil(), &vec![e.clone(); 11]), Err(NotificationError::TooMany(11)));
        let other = event("vendors", "b", EventType::Created);
        assert!(matches!(Notification::new(&meta(), Uuid::nil(), &[e, other]), Err(NotificationError::MixedTypes(..))));
        // found by the notification fuzz target: the body had two `objectType` members, the records lost
        for reserved in RAW_MEMBERS {
            let e = event(reserved, "a", EventType::Created);
            assert_eq!(
                Notification::new(&meta(), Uuid::nil(), &[e]),
                Err(NotificationError::ReservedObjectType(reserved.into()))
            );
        }
    }

    #[test]
    fn event_ids_are_deterministic_and_distinct() {
        let d = "2019-03-25T15:31:02Z".parse().unwrap();
        let a = event_id(1, "customers", "x", EventType::Updated, d, 1);
        assert_eq!(a, event_id(1, "customers", "x", EventType::Updated, d, 1));
        assert_ne!(a, event_id(1, "customers", "x", EventType::Updated, d, 2));
        assert_ne!(a, event_id(2, "customers", "x", EventType::Updated, d, 1));
        assert_ne!(a, event_id(1, "customers", "x", EventType::Created, d, 1));
        // pinned: changing the derivation would re-notify every stored change under new ids
        assert_eq!(a.to_string(), "25aa0754-04d1-5048-a8af-e20c5e03cd78");
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn event_type_wire_form() {
        assert_eq!(serde_json::to_string(&EventType::Deleted).unwrap(), "\"DELETED\"");
        assert_eq!(EventType::parse("created"), Some(EventType::Created));
        assert_eq!(EventType::parse("moved"), None);
    }
}

//! Fuzz target `notification`: events → the Open Connectors notification body, built as the dispatcher builds
//! it (`oc-notify` `attempt.rs`: `serde_json::to_vec(&Notification::new(meta, id, events))`, `oc-model`
//! `event.rs`).
//!
//! Input: either JSON `{"meta": NotificationMeta, "id": UUID, "events": [Event, ...]}` (the seeds: a sample
//! event as the store hands it out), or any other bytes read as structured input (`arbitrary`): the instance's
//! metadata and up to 12 events (type, object type, id, date, record as JSON text). Checks:
//! - nothing panics; `Notification::new` refuses exactly no events, more than 10, mixed object types, or an
//!   object type that is a fixed member of `raw` (`instance_id`, `objectType`);
//! - the body is JSON, an object `message` whose `events` has one entry per event, in order, with the event's
//!   id, type, object type and id; whose `raw` holds the records under the object type; `eventType`,
//!   `objectType` and `objectId` are the first event's;
//! - the body reads back (a receiver's `serde_json::from_slice::<Notification>`) to the notification built.

#![no_main]

use chrono::DateTime;
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use oc_model::event::{
    Event, EventType, MAX_EVENTS_PER_NOTIFICATION, Notification, NotificationMeta, RAW_MEMBERS, event_id,
};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Arbitrary)]
struct Input {
    instance_id: i64,
    instance_name: String,
    instance_tags: Vec<String>,
    element_key: String,
    hub_key: String,
    user_id: i64,
    account_id: i64,
    notification_id: u128,
    events: Vec<InputEvent>,
}

#[derive(Debug, Arbitrary)]
struct InputEvent {
    event_type: u8,
    /// Index into a few object types, or (≥ 4) the free text.
    object_type: u8,
    object_type_text: String,
    object_id: String,
    date_ms: i64,
    content_hash: u64,
    record: String,
}

const OBJECT_TYPES: [&str; 4] = ["customers", "vendors", "contact_persons", "ledger_accounts"];

/// The seeds' form.
#[derive(Deserialize)]
struct JsonInput {
    meta: NotificationMeta,
    id: Uuid,
    events: Vec<Event>,
}

fn from_arbitrary(input: Input) -> (NotificationMeta, Uuid, Vec<Event>) {
    let meta = NotificationMeta {
        instance_id: input.instance_id,
        instance_name: input.instance_name,
        instance_tags: input.instance_tags,
        element_key: input.element_key,
        hub_key: input.hub_key,
        user_id: input.user_id,
        account_id: input.account_id,
    };
    let events: Vec<Event> = input
        .events
        .into_iter()
        .map(|e| {
            let event_type =
                [EventType::Created, EventType::Updated, EventType::Deleted][usize::from(e.event_type % 3)];
            let object_type = match OBJECT_TYPES.get(usize::from(e.object_type)) {
                Some(t) => t.to_string(),
                None => e.object_type_text,
            };
            let date = DateTime::from_timestamp_millis(e.date_ms).unwrap_or_default();
            let record = serde_json::from_str(&e.record).unwrap_or(Value::String(e.record));
            Event {
                event_id: event_id(meta.instance_id, &object_type, &e.object_id, event_type, date, e.content_hash),
                event_type,
                object_type,
                object_id: e.object_id,
                date,
                record,
            }
        })
        .collect();
    (meta, Uuid::from_u128(input.notification_id), events)
}

fuzz_target!(|data: &[u8]| {
    let (meta, id, events) = match serde_json::from_slice::<JsonInput>(data) {
        Ok(j) => (j.meta, j.id, j.events),
        Err(_) => match Input::arbitrary_take_rest(Unstructured::new(data)) {
            Ok(input) => from_arbitrary(input),
            Err(_) => return,
        },
    };
    if events.len() > MAX_EVENTS_PER_NOTIFICATION + 2 {
        return;
    }

    let built = Notification::new(&meta, id, &events);
    let mixed = events.iter().any(|e| e.object_type != events[0].object_type);
    let reserved = events.first().is_some_and(|e| RAW_MEMBERS.contains(&e.object_type.as_str()));
    let expect_ok = !events.is_empty() && events.len() <= MAX_EVENTS_PER_NOTIFICATION && !mixed && !reserved;
    assert_eq!(built.is_ok(), expect_ok, "{built:?}");
    let Ok(notification) = built else { return };

    // what the dispatcher POSTs
    let body = serde_json::to_vec(&notification).expect("a notification serializes");

    let json: Value = serde_json::from_slice(&body).expect("the body is JSON");
    let message = json.get("message").and_then(Value::as_object).expect("a message object");
    let entries = message.get("events").and_then(Value::as_array).expect("message.events");
    assert_eq!(entries.len(), events.len());
    for (entry, e) in entries.iter().zip(&events) {
        assert_eq!(entry["eventId"], e.event_id.to_string());
        assert_eq!(entry["eventType"], e.event_type.as_str());
        assert_eq!(entry["objectType"], e.object_type.as_str());
        assert_eq!(entry["objectId"], e.object_id.as_str());
        assert_eq!(entry["elementKey"], meta.element_key.as_str());
    }
    assert_eq!(message["eventId"], id.to_string());
    assert_eq!(message["eventType"], events[0].event_type.as_str());
    assert_eq!(message["objectType"], events[0].object_type.as_str());
    assert_eq!(message["objectId"], events[0].object_id.as_str());
    assert_eq!(message["instanceId"], meta.instance_id);
    assert_eq!(message["instance_id"], meta.instance_id);
    let raw = message.get("raw").and_then(Value::as_object).expect("message.raw");
    assert_eq!(raw["objectType"], events[0].object_type.as_str());
    let records = raw.get(&events[0].object_type).and_then(Value::as_array).unwrap_or_else(|| {
        panic!("raw has no records under {:?}: {}", events[0].object_type, String::from_utf8_lossy(&body))
    });
    assert_eq!(records.len(), events.len(), "{}", String::from_utf8_lossy(&body));
    for (r, e) in records.iter().zip(&events) {
        assert_eq!(r, &e.record);
    }

    match serde_json::from_slice::<Notification>(&body) {
        Ok(back) => assert_eq!(back, notification, "{}", String::from_utf8_lossy(&body)),
        Err(e) => panic!("the body does not read back: {e}\n{}", String::from_utf8_lossy(&body)),
    }
});

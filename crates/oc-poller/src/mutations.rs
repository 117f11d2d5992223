//! The careless alternatives to the engine's defences, compiled only with the feature `mutations` (the pitfall
//! tests): each is what a naive poller does, so that a test can show the defect the defence prevents. Nothing
//! here runs in production.

use chrono::{DateTime, Utc};
use oc_model::event::{Event, EventType, event_id};

use crate::classify::{Classified, Window};
use crate::seen::{SeenEntry, SeenSet};

/// Ids in `seen` dated inside the window but missing from `ids` (the pitfall-11 mutation's evidence).
pub(crate) fn absent_ids(seen: &SeenSet, ids: &[Box<str>], window_start: DateTime<Utc>) -> Vec<Box<str>> {
    let present: std::collections::HashSet<&str> = ids.iter().map(|b| &**b).collect();
    let from = window_start.timestamp_millis();
    let mut v: Vec<Box<str>> = seen
        .iter()
        .filter(|(id, e)| !e.deleted && e.date_ms.is_some_and(|d| d >= from) && !present.contains(id))
        .map(|(id, _)| id.into())
        .collect();
    v.sort();
    v
}

/// Pitfall 11: "not in this scan, so deleted".
pub(crate) fn infer_deletes(window: &Window, absent: Vec<Box<str>>, seen: &mut SeenSet, out: &mut Classified) {
    let date = DateTime::from_timestamp_millis(window.t0_ms).unwrap_or_default();
    for id in absent {
        let entry = SeenEntry { date_ms: Some(window.t0_ms), hash: 0, deleted: true, observed: true };
        seen.insert(&id, entry);
        out.deleted += 1;
        out.events.push(Event {
            event_id: event_id(window.instance_id, &window.resource, &id, EventType::Deleted, date, 0),
            event_type: EventType::Deleted,
            object_type: window.resource.clone(),
            object_id: id.to_string(),
            date,
            record: serde_json::json!({ "id": &*id }),
        });
    }
}

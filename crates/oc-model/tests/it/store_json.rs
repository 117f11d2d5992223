//! The JSON of the store types the API shows: camelCase keys, and stored poll outcomes written before the API
//! answered camelCase (snake_case keys) still read.

use chrono::{DateTime, Utc};
use oc_model::ports::{
    NewAttempt, NotificationRecord, NotificationStatus, PollOutcome, PollRecord, PollStatus, PollWarning, StoredAttempt,
};
use serde_json::{Value, json};
use uuid::Uuid;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn outcome() -> PollOutcome {
    PollOutcome {
        started_at: at("2024-05-01T10:00:00Z"),
        finished_at: at("2024-05-01T10:00:01.5Z"),
        status: PollStatus::ReauthorizationRequired,
        window_start: Some(at("2024-05-01T09:59:00Z")),
        pages: 2,
        records: 3,
        created: 1,
        updated: 1,
        deleted: 0,
        warnings: vec![
            PollWarning { record_id: Some("r1".into()), position: None, message: "bad date".into() },
            PollWarning { record_id: None, position: Some(4), message: "no id".into() },
        ],
        error: Some("boom".into()),
    }
}

/// Every object key of `v`, recursively.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn snake_keys(v: &Value) -> Vec<String> {
    let mut all = Vec::new();
    keys(v, &mut all);
    all.into_iter().filter(|k| k.contains('_')).collect()
}

#[test]
fn poll_records_are_camel_case() {
    let record = PollRecord { instance_id: 7, resource: "customers".into(), outcome: outcome() };
    let v = serde_json::to_value(&record).unwrap();
    assert_eq!(snake_keys(&v), Vec::<String>::new(), "{v:#}");
    assert_eq!(v["instanceId"], 7);
    assert_eq!(v["startedAt"], "2024-05-01T10:00:00Z");
    assert_eq!(v["finishedAt"], "2024-05-01T10:00:01.500Z");
    assert_eq!(v["windowStart"], "2024-05-01T09:59:00Z");
    assert_eq!(v["warnings"][0]["recordId"], "r1");
    // the status keeps its documented (and stored) value
    assert_eq!(v["status"], "reauthorization_required");
    assert_eq!(serde_json::from_value::<PollRecord>(v).unwrap(), record, "round trip");
}

#[test]
fn stored_snake_case_outcomes_still_read() {
    // a row as oc-store wrote it before the rename
    let old = json!({
        "started_at": "2024-05-01T10:00:00Z",
        "finished_at": "2024-05-01T10:00:01.500Z",
        "status": "reauthorization_required",
        "window_start": "2024-05-01T09:59:00Z",
        "pages": 2, "records": 3, "created": 1, "updated": 1, "deleted": 0,
        "warnings": [{"record_id": "r1", "message": "bad date"}, {"position": 4, "message": "no id"}],
        "error": "boom"
    });
    assert_eq!(serde_json::from_str::<PollOutcome>(&old.to_string()).unwrap(), outcome());
    // and a row written now reads back
    let new = serde_json::to_string(&outcome()).unwrap();
    assert!(!new.contains("started_at"), "{new}");
    assert_eq!(serde_json::from_str::<PollOutcome>(&new).unwrap(), outcome());
}

#[test]
fn notifications_and_attempts_are_camel_case() {
    let n = NotificationRecord {
        id: Uuid::nil(),
        instance_id: 7,
        object_type: "customers".into(),
        status: NotificationStatus::Pending,
        attempts: 1,
        created_at: at("2024-05-01T10:00:00Z"),
        next_attempt_at: Some(at("2024-05-01T10:00:04Z")),
        delivered_at: None,
        last_error: Some("the receiver answered 503 service unavailable".into()),
    };
    let a = StoredAttempt {
        number: 1,
        attempt: NewAttempt {
            at: at("2024-05-01T10:00:00Z"),
            status_code: Some(503),
            latency_ms: 12,
            error: Some("the receiver answered 503 service unavailable".into()),
            response_excerpt: "down".into(),
        },
    };
    let v = json!({"notification": serde_json::to_value(&n).unwrap(), "attempts": [serde_json::to_value(&a).unwrap()]});
    assert_eq!(snake_keys(&v), Vec::<String>::new(), "{v:#}");
    for key in ["instanceId", "objectType", "createdAt", "nextAttemptAt", "deliveredAt", "lastError"] {
        assert!(v["notification"].get(key).is_some(), "{key} missing: {v:#}");
    }
    for key in ["statusCode", "latencyMs", "responseExcerpt", "number", "at", "error"] {
        assert!(v["attempts"][0].get(key).is_some(), "{key} missing: {v:#}");
    }
}

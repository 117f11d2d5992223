//! The cost of building and signing one notification: the CPU work per notification besides HTTP and the store.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oc_model::event::{Event, EventType, NotificationMeta, event_id};
use oc_model::{Notification, Secret};
use oc_notify::signing::{SigningKeys, signature_headers};
use serde_json::json;
use uuid::Uuid;

fn events(n: usize) -> Vec<Event> {
    let date: DateTime<Utc> = "2024-03-25T15:31:02Z".parse().unwrap();
    (0..n)
        .map(|i| {
            let id = format!("{i:032x}");
            Event {
                event_id: event_id(1, "customers", &id, EventType::Updated, date, i as u64),
                event_type: EventType::Updated,
                object_type: "customers".into(),
                object_id: id.clone(),
                date,
                // about the size of a Sage contact with its default fields
                record: json!({
                    "id": id, "displayed_as": format!("Customer {i} (CUST{i:04})"), "$path": format!("/contacts/{id}"),
                    "name": format!("Customer {i}"), "reference": format!("CUST{i:04}"),
                    "contact_types": [{"id": "CUSTOMER", "displayed_as": "Customer", "$path": "/contact_types/CUSTOMER"}],
                    "email": format!("customer{i}@example.com"), "currency": {"id": "GBP", "displayed_as": "Pound Sterling (GBP)"},
                    "balance": "1234.56", "credit_limit": "5000.0", "credit_days": 30, "notes": "a customer of long standing",
                    "created_at": "2024-01-02T10:00:00Z", "updated_at": "2024-03-25T15:31:02Z", "deletable": true,
                }),
            }
        })
        .collect()
}

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

fn bench(c: &mut Criterion) {
    let key = Secret::new("a-signature-key-of-thirty-two-b");
    let id = Uuid::from_u128(42);
    let mut group = c.benchmark_group("notification");
    for n in [1usize, 10] {
        let events = events(n);
        let body = serde_json::to_vec(&Notification::new(&meta(), id, &events).unwrap()).unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("build {n} events ({} bytes)", body.len()), |b| {
            b.iter(|| serde_json::to_vec(&Notification::new(&meta(), id, black_box(&events)).unwrap()).unwrap())
        });
        group.bench_function(format!("sign {} bytes (both signatures)", body.len()), |b| {
            b.iter(|| {
                signature_headers(
                    SigningKeys::one(Some(&key)),
                    "00000000-0000-0000-0000-00000000002a",
                    1_700_000_000,
                    black_box(&body),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

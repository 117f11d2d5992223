//! Classify and de-duplicate already-fetched pages, side by side with `serde_json` parsing the same records'
//! bytes; and the size of the `seen` state per tracked record.
//!
//! `cargo bench -p oc-poller --bench classify` (the dev-dependency on itself turns on `internals`)

use std::hint::black_box;

use chrono::Utc;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use oc_poller::internals::content_hash;
use oc_poller::internals::{Classified, Classifier, Collector, FeedKind, RecordReader, Window};
use oc_poller::internals::{DateFormat, FieldPath};
use oc_poller::internals::{SeenEntry, SeenSet};
use serde_json::{Value, json};

const RECORDS: usize = 10_000;
const PAGE: usize = 200;
const BASE_MS: i64 = 1_714_564_800_000; // 2024-05-01T12:00:00Z

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A Sage contact as listed with `attributes=created_at,updated_at`.
fn record(i: usize) -> Value {
    let id = format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834));
    json!({
        "id": id,
        "displayed_as": format!("Customer {i} (C{i:05})"),
        "$path": format!("/contacts/{id}"),
        "created_at": iso(BASE_MS - 86_400_000 + i as i64 * 1000),
        "updated_at": iso(BASE_MS + (i as i64 / 3) * 1000),
    })
}

fn reader() -> RecordReader {
    RecordReader {
        id: FieldPath::new("id"),
        updated: Some((
            FieldPath::new("updated_at"),
            DateFormat::mask("yyyy-MM-dd'T'HH:mm:ss'Z'", None, Utc::now()).unwrap(),
        )),
        created: Some((
            FieldPath::new("created_at"),
            DateFormat::mask("yyyy-MM-dd'T'HH:mm:ss'Z'", None, Utc::now()).unwrap(),
        )),
        deleted: FieldPath::new("deleted_at"),
    }
}

/// Pages as the provider hands them over: parsed from the bytes of the answer.
fn parse_pages(bytes: &[Vec<u8>]) -> Vec<Vec<Value>> {
    bytes
        .iter()
        .map(|b| match serde_json::from_slice::<Value>(b).unwrap() {
            Value::Object(mut m) => match m.remove("$items") {
                Some(Value::Array(items)) => items,
                _ => unreachable!("built above"),
            },
            _ => unreachable!("built above"),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let records: Vec<Value> = (0..RECORDS).map(record).collect();
    let pages_bytes: Vec<Vec<u8>> =
        records.chunks(PAGE).map(|p| serde_json::to_vec(&json!({ "$items": p })).unwrap()).collect();
    let reader = reader();
    // half the records were notified before in their current state: the usual overlap of a lookback window
    let mut seen = SeenSet::new();
    for r in records.iter().step_by(2) {
        let d = chrono::DateTime::parse_from_rfc3339(r["updated_at"].as_str().unwrap()).unwrap().timestamp_millis();
        seen.insert(
            r["id"].as_str().unwrap(),
            SeenEntry { date_ms: Some(d), hash: content_hash(r), deleted: false, observed: false },
        );
    }
    let window = Window {
        instance_id: 1,
        resource: "customers".into(),
        t0_ms: BASE_MS + 86_400_000,
        updated_from_ms: Some(BASE_MS - 60_000),
        strict_lower_bound: false,
        skip_after_t0: false,
        created_after_ms: BASE_MS - 60_000,
        created_from_ms: BASE_MS - 60_000,
        compare_hashes: true,
        baseline: false,
    };

    let id_bytes: usize = seen.iter().map(|(id, _)| id.len()).sum();
    let encoded = seen.encode();
    eprintln!(
        "seen state: {} records, {} bytes encoded, {:.1} bytes per record beyond the id ({} id bytes)",
        seen.len(),
        encoded.len(),
        (encoded.len() - id_bytes) as f64 / seen.len() as f64,
        id_bytes / seen.len()
    );

    let mut g = c.benchmark_group("pages_of_10000_records");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(20);
    g.measurement_time(std::time::Duration::from_secs(4));
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.bench_function("serde_json_parse", |b| b.iter(|| black_box(parse_pages(&pages_bytes))));
    // what the engine does with an answer: parse it (the provider) and de-duplicate its records at once,
    // then classify the whole window; the classification's cost is this minus `serde_json_parse`
    g.bench_function("parse_then_dedup_and_classify", |b| {
        b.iter_batched(
            || seen.clone(),
            |mut seen| {
                let mut collector = Collector::new();
                collector.reserve(RECORDS); // the engine reserves the first page's `$total`
                let mut position = 0;
                for page in parse_pages(&pages_bytes) {
                    for r in page {
                        collector.offer(&reader, FeedKind::Changes, r, position, None);
                        position += 1;
                    }
                }
                let mut out = Classified::default();
                Classifier::new(&reader, &window, None).classify(collector.into_observations(), &mut seen, &mut out);
                assert_eq!(out.events.len(), RECORDS / 2);
                (out, seen)
            },
            BatchSize::LargeInput,
        )
    });
    // the same from pages parsed beforehand
    g.bench_function("dedup_and_classify", |b| {
        b.iter_batched(
            || (parse_pages(&pages_bytes), seen.clone()),
            |(pages, mut seen)| {
                let mut collector = Collector::new();
                collector.reserve(RECORDS);
                let mut position = 0;
                for page in pages {
                    for r in page {
                        collector.offer(&reader, FeedKind::Changes, r, position, None);
                        position += 1;
                    }
                }
                let mut out = Classified::default();
                Classifier::new(&reader, &window, None).classify(collector.into_observations(), &mut seen, &mut out);
                assert_eq!(out.events.len(), RECORDS / 2);
                (out, seen)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

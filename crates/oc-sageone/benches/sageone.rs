//! Benchmarks of oc-sageone: parse + translate the seed where clause (and compile the seed URL), decode a page of
//! 200 contacts next to `serde_json::from_slice::<Value>` of the same bytes (target: at most 1.3 times its cost),
//! and the local predicate over that page.
//!
//! `cargo bench -p oc-sageone -- --quick` (figures in `docs/bench/oc-sageone.md`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use oc_model::ports::FieldNeeds;
use serde_json::{Value, json};

const SEED_WHERE: &str = "lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at";
const SEED_URL: &str =
    "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at";

/// A contact as `attributes=all` returns it (about 2 KB of JSON).
fn contact(i: usize) -> Value {
    json!({
        "id": format!("{i:032x}"),
        "displayed_as": format!("Customer {i} (CUST{i:05})"),
        "$path": format!("/contacts/{i:032x}"),
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": format!("2024-05-01T11:{:02}:{:02}Z", (i / 60) % 60, i % 60),
        "deleted_at": null,
        "contact_types": [{"id": "CUSTOMER", "displayed_as": "Customer", "$path": "/contact_types/CUSTOMER"}],
        "name": format!("Customer {i}"),
        "reference": format!("CUST{i:05}"),
        "default_sales_ledger_account": {"id": "9a994b92267a11e797950a57719b2edb", "displayed_as": "Sales Type A (4000)", "$path": "/ledger_accounts/9a994b92267a11e797950a57719b2edb"},
        "tax_number": "GB123456789",
        "notes": "Prefers email; invoices due in 30 days. Has a long note to make the record realistic in size.",
        "locale": "en",
        "main_address": {
            "id": format!("a{i:031x}"), "address_line_1": "1 High Street", "address_line_2": "Suite 4",
            "city": "Newcastle", "postal_code": "NE1 1AA", "region": "Tyne and Wear",
            "country": {"id": "GB", "displayed_as": "United Kingdom (GB)", "$path": "/countries/GB"},
            "is_main_address": true
        },
        "main_contact_person": {
            "id": format!("p{i:031x}"), "name": "Jane Doe", "job_title": "Accounts", "telephone": "0191 000 0000",
            "mobile": "07700 900000", "email": format!("accounts{i}@example.com"), "is_main_contact": true
        },
        "credit_limit": 5000.0,
        "credit_days": 30,
        "credit_terms_and_conditions": null,
        "currency": {"id": "GBP", "displayed_as": "Pound Sterling (GBP)", "$path": "/currencies/GBP"},
        "balance": (i as f64) * 12.5,
        "system": false,
        "has_unfinished_recurring_invoices": false,
        "email": format!("accounts{i}@example.com"),
        "gdpr_obfuscated": false,
        "deletable": true
    })
}

fn page_bytes() -> Vec<u8> {
    let items: Vec<Value> = (0..200).map(contact).collect();
    serde_json::to_vec(&json!({
        "$total": 1000, "$page": 1, "$next": "/contacts?page=2&items_per_page=200", "$back": null,
        "$itemsPerPage": 200, "$items": items
    }))
    .expect("serializable")
}

fn ceql(c: &mut Criterion) {
    c.bench_function("ceql/parse seed where", |b| b.iter(|| oc_sageone::ceql::parse(black_box(SEED_WHERE))));
    c.bench_function("ceql/parse+translate seed where", |b| {
        b.iter(|| oc_sageone::translate("customers", black_box(SEED_WHERE)))
    });
    let needs = FieldNeeds { fields: vec!["id".into(), "updated_at".into(), "created_at".into()] };
    c.bench_function("ceql/compile seed url", |b| b.iter(|| oc_sageone::compile(black_box(SEED_URL), &needs)));
}

fn decode(c: &mut Criterion) {
    let bytes = page_bytes();
    let mut group = c.benchmark_group(format!("page of 200 contacts ({} KB)", bytes.len() / 1024));
    group.bench_function("serde_json::from_slice::<Value>", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).expect("json"))
    });
    group.bench_function("oc_sageone::decode_page", |b| {
        b.iter(|| oc_sageone::decode_page(black_box(&bytes)).expect("page"))
    });
    group.finish();

    let page = oc_sageone::decode_page(&bytes).expect("page");
    let needs = FieldNeeds::default();
    let query = oc_sageone::compile(
        "/hubs/finance/customers?where=lastModifiedDate > '2024-05-01T11:00:00Z' and (name like 'Customer 1%' or balance > 100)",
        &needs,
    )
    .expect("compiles");
    let local = query.local.expect("a local predicate");
    c.bench_function("local predicate over 200 contacts", |b| {
        b.iter(|| page.records.iter().filter(|r| local.matches(black_box(r))).count())
    });
}

criterion_group!(benches, ceql, decode);
criterion_main!(benches);

//! Issue 15, item 1: one instance polls six hub resources of the simulator at once — customers, vendors,
//! invoices, products, ledger accounts and sales quotes (no deleted feed) — each configured the way the seed page
//! says ("copy the customers configuration and replace customers with the name of the resource"). Records are
//! created, changed, voided and deleted in each; the oracle of `change-detection.md` holds per resource: every
//! change arrives (nothing lost), nothing else does (no noise), one CREATED per record, each event under its own
//! `objectType`, and an invoice that Sage voids arrives as UPDATED — on SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use oc_store::testing::{self, TestStore};
use oc_tests::receiver::{Received, Receiver};
use oc_tests::sim::Sage;
use oc_tests::{SEED_EXAMPLE, Server, eventually};
use serde_json::{Value, json};

const KEY: &str = "e2e-resources-signature-key";

/// The hub resources polled, and the simulator collection behind each.
const RESOURCES: [(&str, &str); 6] = [
    ("customers", "contacts"),
    ("vendors", "contacts"),
    ("invoices", "sales_invoices"),
    ("products", "products"),
    ("ledger-accounts", "ledger_accounts"),
    ("sales-quotes", "sales_quotes"),
];

/// `(objectType, objectId, eventType)` → how many times it arrived.
type Tally = BTreeMap<(String, String, String), usize>;

fn tally(events: &[Received]) -> Tally {
    let mut t = Tally::new();
    for e in events {
        *t.entry((e.object_type.clone(), e.object_id.clone(), e.event_type.clone())).or_default() += 1;
    }
    t
}

fn key(resource: &str, id: &str, event_type: &str) -> (String, String, String) {
    (resource.to_string(), id.to_string(), event_type.to_string())
}

/// The seed's customers configuration copied once per resource, `customers` replaced by the resource's name.
fn poller_configuration() -> Value {
    let seed: Value = serde_json::from_str(SEED_EXAMPLE).expect("the seed example is JSON");
    let customers = serde_json::to_string(&seed["configuration"]["event.poller.configuration"]["customers"])
        .expect("the seed's customers configuration");
    let mut config = serde_json::Map::new();
    for (resource, _) in RESOURCES {
        let copied: Value = serde_json::from_str(&customers.replace("customers", resource)).expect("json");
        config.insert(resource.to_string(), copied);
    }
    Value::Object(config)
}

fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("a record id").to_string()
}

async fn six_resources_in_one_instance(store: TestStore) {
    let sage = Sage::start(5).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let args = sage.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(store, &args).await.unwrap();
    let org = server.organization("resources").await;
    let api = server.api(&org);

    let code = sage.code().await.unwrap();
    let mut body = sage.instance_body(&code, &receiver.url("/hooks/sage"), KEY, 1.5);
    body["configuration"]["event.poller.configuration"] = poller_configuration();
    let (id, created) = api.create_instance(&body).await;
    assert_eq!((created["valid"].clone(), created["eventsEnabled"].clone()), (json!(true), json!(true)), "{created}");
    // Open Connectors answers the poller configuration as a JSON string.
    let configured = created["configuration"]["event.poller.configuration"].as_str().expect("the configuration");
    let configured: Value = serde_json::from_str(configured).expect("the configuration is JSON");
    let configured = configured.as_object().expect("an object");
    let mut names: Vec<&str> = configured.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut want: Vec<&str> = RESOURCES.iter().map(|(r, _)| *r).collect();
    want.sort_unstable();
    assert_eq!(names, want, "{created}");
    // Let every resource take its first poll (its baseline) before anything changes.
    api.wait_polls(id, 2, Duration::from_secs(30)).await;

    let business = sage.business();
    let sim = &sage.sim;
    let create = |collection: &str, fields: Value| id_of(&sim.create_record(&business, collection, fields).unwrap());
    let update = |collection: &str, id: &str, fields: Value| {
        sim.update_record(&business, collection, id, fields).unwrap();
    };
    let ledger = sim.record_ids(&business, "ledger_accounts");
    let sales_ledger = ledger.first().expect("a seeded ledger account").clone();

    // 1. One or two new records in every resource.
    let customer = create("contacts", json!({"name": "Resources Customer", "contact_type_ids": ["CUSTOMER"]}));
    let leaving = create("contacts", json!({"name": "Leaving Customer", "contact_type_ids": ["CUSTOMER"]}));
    let vendor = create("contacts", json!({"name": "Resources Vendor", "contact_type_ids": ["VENDOR"]}));
    let invoice_line =
        json!([{"description": "Widgets", "quantity": 2, "unit_price": 10.0, "ledger_account_id": sales_ledger}]);
    let invoice = create(
        "sales_invoices",
        json!({"contact_id": customer, "date": "2026-11-30", "due_date": "2026-12-30", "status_id": "UNPAID",
            "invoice_lines": invoice_line}),
    );
    let draft = create(
        "sales_invoices",
        json!({"contact_id": customer, "date": "2026-11-30", "status_id": "DRAFT", "invoice_lines": invoice_line}),
    );
    let product = create("products", json!({"item_code": "E2E-1", "description": "E2E product", "active": true}));
    let account = create(
        "ledger_accounts",
        json!({"ledger_account_type_id": "SALES", "included_in_chart": true, "name": "E2E Sales", "display_name": "E2E Sales",
            "nominal_code": 4050}),
    );
    let quote = create(
        "sales_quotes",
        json!({"contact_id": customer, "date": "2026-11-30", "expiry_date": "2026-12-30", "status_id": "DRAFT",
            "quote_lines": [{"description": "Quoted widgets", "quantity": 1, "unit_price": 12.5}]}),
    );
    let created: Vec<(&str, &String)> = vec![
        ("customers", &customer),
        ("customers", &leaving),
        ("vendors", &vendor),
        ("invoices", &invoice),
        ("invoices", &draft),
        ("products", &product),
        ("ledger-accounts", &account),
        ("sales-quotes", &quote),
    ];
    eventually(Duration::from_secs(60), "a CREATED in every resource", || async {
        let t = tally(&receiver.events());
        created.iter().all(|(r, id)| t.contains_key(&key(r, id, "CREATED")))
    })
    .await;

    // 2. A change in every resource; the unpaid invoice is voided (Sage's DELETE of an issued invoice).
    update("contacts", &customer, json!({"notes": "changed"}));
    update("contacts", &vendor, json!({"notes": "changed"}));
    let voided =
        sim.delete_record(&business, "sales_invoices", &invoice).unwrap().expect("an issued invoice is voided");
    assert!(voided["void_reason"].is_string() || voided["status"]["id"] == "VOID", "{voided}");
    update("products", &product, json!({"description": "E2E product, renamed"}));
    update("ledger_accounts", &account, json!({"name": "E2E Sales (renamed)", "display_name": "E2E Sales (renamed)"}));
    update("sales_quotes", &quote, json!({"status_id": "PENDING"}));
    let updated: Vec<(&str, &String)> = vec![
        ("customers", &customer),
        ("vendors", &vendor),
        ("invoices", &invoice),
        ("products", &product),
        ("ledger-accounts", &account),
        ("sales-quotes", &quote),
    ];
    eventually(Duration::from_secs(60), "an UPDATED in every resource", || async {
        let t = tally(&receiver.events());
        updated.iter().all(|(r, id)| t.contains_key(&key(r, id, "UPDATED")))
    })
    .await;

    // 3. Deletions where Sage has a deleted feed.
    assert!(sim.delete_record(&business, "contacts", &leaving).unwrap().is_none());
    assert!(sim.delete_record(&business, "sales_invoices", &draft).unwrap().is_none(), "a draft is deleted");
    assert!(sim.delete_record(&business, "products", &product).unwrap().is_none());
    let deleted: Vec<(&str, &String)> = vec![("customers", &leaving), ("invoices", &draft), ("products", &product)];
    eventually(Duration::from_secs(60), "a DELETED where Sage has a deleted feed", || async {
        let t = tally(&receiver.events());
        deleted.iter().all(|(r, id)| t.contains_key(&key(r, id, "DELETED")))
    })
    .await;

    // A few more polls: nothing else may arrive.
    api.wait_polls(id, 6, Duration::from_secs(60)).await;
    let events = receiver.events();
    let mut expected = Tally::new();
    for (kind, list) in [("CREATED", &created), ("UPDATED", &updated), ("DELETED", &deleted)] {
        for (r, id) in list.iter() {
            expected.insert(key(r, id, kind), 1);
        }
    }
    assert_eq!(tally(&events), expected, "{events:#?}");

    // Each notification is of one resource; its records travel in `raw` under that resource.
    for h in receiver.hooks() {
        let m = &h.body["message"];
        let object_type = m["objectType"].as_str().expect("objectType");
        assert!(RESOURCES.iter().any(|(r, _)| *r == object_type), "{m}");
        assert_eq!(m["raw"]["objectType"], object_type, "{m}");
        for e in m["events"].as_array().expect("events") {
            assert_eq!(e["objectType"], object_type, "{m}");
        }
        assert!(h.elements_ok && h.standard_ok, "signatures of {m}");
    }
    // The void is an UPDATED of the invoice, after its CREATED; the same order per object everywhere.
    let order: Vec<&str> = events.iter().filter(|e| e.object_id == invoice).map(|e| e.event_type.as_str()).collect();
    assert_eq!(order, ["CREATED", "UPDATED"]);
    // Every event is listed over the API, under its own object type, delivered.
    let listed = api.events(id).await;
    assert_eq!(listed.len(), expected.len(), "{listed:#?}");
    for e in &listed {
        assert_eq!(e["status"], "NOTIFIED", "{e}");
        let r = e["objectType"].as_str().unwrap_or_default();
        let o = e["objectId"].as_str().unwrap_or_default();
        let t = e["eventType"].as_str().unwrap_or_default();
        assert!(expected.contains_key(&key(r, o, t)), "{e}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_resources_in_one_instance_sqlite() {
    six_resources_in_one_instance(testing::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_resources_in_one_instance_postgres() {
    let Some(store) = testing::postgres().await else { return };
    six_resources_in_one_instance(store).await;
}

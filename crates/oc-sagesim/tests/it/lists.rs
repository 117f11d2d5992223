//! List semantics against the spec and the swagger: envelope, paging, projection, inclusive/exclusive date
//! filters, declared parameters only, filters, sort, businesses, record operations.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Fixture, assert_sage_error, ids};

#[tokio::test]
async fn the_envelope_pages_by_20_and_links_relative_paths() {
    let f = Fixture::new(45);
    let r = f.get("/contacts").await;
    assert_eq!(r.status, StatusCode::OK);
    let keys: Vec<&str> = r.body.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["$total", "$page", "$next", "$back", "$itemsPerPage", "$items"]);
    let total = r.body["$total"].as_u64().expect("total") as usize;
    assert_eq!(total, f.sim.record_ids(&f.lead, "contacts").len());
    assert!(total > 40, "45 customers (a few deleted) and 5 vendors: {total}");
    assert_eq!(r.body["$page"], 1);
    assert_eq!(r.body["$itemsPerPage"], 20);
    assert_eq!(r.body["$back"], serde_json::Value::Null);
    assert_eq!(r.body["$next"], "/contacts?page=2");
    let items = r.body["$items"].as_array().expect("items");
    assert_eq!(items.len(), 20);
    for item in items {
        let keys: Vec<&str> = item.as_object().expect("item").keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "displayed_as", "$path"], "lists show only the base attributes unless asked");
        let id = item["id"].as_str().expect("id");
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(item["$path"], format!("/contacts/{id}"));
    }
    let page2 = f.get("/contacts?page=2").await;
    assert_eq!(page2.body["$back"], "/contacts?page=1");
    assert_eq!(page2.body["$next"], "/contacts?page=3");
}

#[tokio::test]
async fn following_next_visits_every_record_once_and_keeps_the_parameters() {
    let f = Fixture::new(60);
    let r = f.get("/contacts?contact_type_id=CUSTOMER&items_per_page=7&attributes=updated_at").await;
    assert_eq!(r.body["$next"], "/contacts?contact_type_id=CUSTOMER&items_per_page=7&attributes=updated_at&page=2");
    let items = f.scan("/contacts?contact_type_id=CUSTOMER&items_per_page=7&attributes=updated_at").await;
    let mut seen = ids(&items);
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "no duplicates");
    assert_eq!(n as u64, r.body["$total"].as_u64().expect("total"));
    assert!(items.iter().all(|i| i["updated_at"].is_string()));
}

#[tokio::test]
async fn items_per_page_is_capped_at_200_and_a_page_past_the_end_is_the_last() {
    let f = Fixture::new(250);
    let r = f.get("/contacts?items_per_page=200").await;
    assert_eq!(r.body["$items"].as_array().expect("items").len(), 200);
    assert_eq!(r.body["$itemsPerPage"], 200);
    assert_sage_error(&f.get("/contacts?items_per_page=201").await, 422, "RecordInvalid");
    assert_sage_error(&f.get("/contacts?items_per_page=0").await, 422, "RecordInvalid");
    let total = r.body["$total"].as_u64().expect("total");
    let last = f.get("/contacts?items_per_page=100&page=3").await;
    let past = f.get("/contacts?items_per_page=100&page=99").await;
    assert_eq!(past.body["$items"], last.body["$items"]);
    assert_eq!(past.body["$page"], 3);
    assert_eq!(past.body["$next"], serde_json::Value::Null);
    assert_eq!(past.body["$back"], "/contacts?items_per_page=100&page=2");
    assert_eq!(past.body["$items"].as_array().expect("items").len() as u64, total - 200);
}

#[tokio::test]
async fn an_empty_list_is_one_page_without_links() {
    let f = Fixture::new(3);
    let r = f.get("/journals?page=4").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"$total": 0, "$page": 1, "$next": null, "$back": null, "$itemsPerPage": 20, "$items": []})
    );
}

#[tokio::test]
async fn attributes_project_and_all_shows_every_swagger_property() {
    let f = Fixture::new(5);
    let r = f.get("/contacts?attributes=created_at,updated_at&items_per_page=1").await;
    let item = &r.body["$items"][0];
    let keys: Vec<&str> = item.as_object().expect("item").keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "displayed_as", "$path", "created_at", "updated_at"]);
    let stamp = item["updated_at"].as_str().expect("updated_at");
    assert!(stamp.len() == 20 && stamp.ends_with('Z'), "UTC, second precision: {stamp}");
    let all = f.get("/contacts?attributes=all&items_per_page=1").await;
    let item = all.body["$items"][0].as_object().expect("item").clone();
    for key in ["name", "reference", "contact_types", "deleted_at", "credit_limit", "main_address", "email", "balance"]
    {
        assert!(item.contains_key(key), "{key} in {item:?}");
    }
    let one = f.get(&format!("/contacts/{}", item["id"].as_str().expect("id"))).await;
    assert_eq!(one.body.as_object().expect("record").len(), item.len(), "GET one shows all attributes");
    let projected = f.get(&format!("/contacts/{}?attributes=name", item["id"].as_str().expect("id"))).await;
    assert_eq!(projected.body.as_object().expect("record").len(), 4);
}

#[tokio::test]
async fn updated_or_created_since_is_inclusive_in_date_and_date_time_forms() {
    let mut f = Fixture::new(5);
    f.freeze("2030-01-02T03:04:05Z");
    let created = f
        .sim
        .create_record(&f.lead, "contacts", json!({"name": "New", "contact_type_ids": ["CUSTOMER"]}))
        .expect("create");
    let id = created["id"].as_str().expect("id").to_owned();
    let found = |q: &'static str| {
        let f = &f;
        let id = id.clone();
        async move { ids(&f.scan(&format!("/contacts?updated_or_created_since={q}")).await).contains(&id) }
    };
    assert!(found("2030-01-02T03:04:05Z").await, "inclusive");
    assert!(!found("2030-01-02T03:04:06Z").await);
    assert!(found("2030-01-02T04:04:05%2B01:00").await, "offset form");
    assert!(!found("2030-01-02T04:04:06%2B01:00").await);
    assert!(found("2030-01-02").await, "date form");
    assert!(!found("2030-01-03").await);
    assert_eq!(f.scan("/contacts?updated_or_created_since=2030-01-02T03:04:05Z").await.len(), 1);
    assert_sage_error(
        &f.get("/contacts?updated_or_created_since=2030-01-02T03:04:05%2001:00").await,
        422,
        "RecordInvalid",
    );
}

#[tokio::test]
async fn deleted_since_is_exclusive_and_lists_the_deleted_feed() {
    let mut f = Fixture::new(5);
    f.freeze("2030-01-02T03:04:05Z");
    let id = f.sim.record_ids(&f.lead, "contacts")[0].clone();
    f.sim.delete_record(&f.lead, "contacts", &id).expect("delete");
    assert!(!ids(&f.scan("/contacts").await).contains(&id), "deleted records leave the list");
    assert_eq!(f.get(&format!("/contacts/{id}")).await.status, StatusCode::NOT_FOUND);
    let feed = f.scan("/contacts?deleted_since=2030-01-02T03:04:04Z&attributes=deleted_at").await;
    assert_eq!(ids(&feed), [id.as_str()]);
    assert_eq!(feed[0]["deleted_at"], "2030-01-02T03:04:05Z");
    assert!(f.scan("/contacts?deleted_since=2030-01-02T03:04:05Z").await.is_empty(), "exclusive");
    assert_eq!(f.scan("/contacts?deleted_since=2030-01-02").await.len(), 1, "date form");
}

#[tokio::test]
async fn parameters_the_swagger_does_not_declare_are_rejected() {
    let f = Fixture::new(5);
    assert_sage_error(&f.get("/contacts?sort=updated_at").await, 400, "UnexpectedParameter");
    assert_sage_error(&f.get("/contacts?status_id=PAID").await, 400, "UnexpectedParameter");
    assert_sage_error(&f.get("/sales_quotes?deleted_since=2024-01-01").await, 400, "UnexpectedParameter");
    assert_sage_error(&f.get("/ledger_accounts?deleted_since=2024-01-01").await, 400, "UnexpectedParameter");
    assert_sage_error(&f.get("/products?contact_type_id=CUSTOMER").await, 400, "UnexpectedParameter");
    let r = f.get("/contacts?whatever=1").await;
    assert_eq!(r.body[0]["$source"], "whatever");
    let id = f.sim.record_ids(&f.lead, "contacts")[0].clone();
    assert_sage_error(&f.get(&format!("/contacts/{id}?items_per_page=5")).await, 400, "UnexpectedParameter");
    assert_sage_error(&f.get("/businesses?search=x").await, 400, "UnexpectedParameter");
    assert_sage_error(&f.get("/sales_invoices?sort=name").await, 422, "RecordInvalid");
}

#[tokio::test]
async fn contact_type_search_and_sort_filter_where_declared() {
    let f = Fixture::new(30);
    let customers = f.scan("/contacts?contact_type_id=CUSTOMER&attributes=contact_types").await;
    let vendors = f.scan("/contacts?contact_type_id=VENDOR&attributes=contact_types").await;
    assert_eq!(customers.len() + vendors.len(), f.sim.record_ids(&f.lead, "contacts").len());
    assert!(customers.iter().all(|c| c["contact_types"][0]["id"] == "CUSTOMER"));
    assert_eq!(vendors.len(), 5);
    let needle = customers[0]["displayed_as"].as_str().expect("name").split(' ').next().expect("word").to_lowercase();
    let found = f.scan(&format!("/contacts?search={needle}&attributes=name")).await;
    assert!(!found.is_empty());
    assert!(found.iter().all(|c| c["displayed_as"].as_str().unwrap_or("").to_lowercase().contains(&needle)));
    let sorted = f.scan("/sales_invoices?sort=updated_at:desc&attributes=updated_at").await;
    let stamps: Vec<&str> = sorted.iter().map(|i| i["updated_at"].as_str().expect("updated_at")).collect();
    assert!(stamps.len() > 3);
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "{stamps:?}");
    let asc = f.scan("/sales_invoices?sort=created_at&attributes=created_at").await;
    assert!(asc.windows(2).all(|w| w[0]["created_at"].as_str() <= w[1]["created_at"].as_str()));
}

#[tokio::test]
async fn businesses_are_selected_by_x_business_and_echoed() {
    let f = Fixture::new(12);
    let r = f.get("/businesses").await;
    assert_eq!(r.body["$total"], 2);
    let other = r.body["$items"][1]["id"].as_str().expect("id").to_owned();
    let lead = f.get("/businesses/lead").await;
    assert_eq!(lead.body["id"], f.lead);
    assert_eq!(lead.headers["x-business"], f.lead.as_str());
    let auth = format!("Bearer {}", f.token);
    let mine = f.get("/contacts").await.body["$total"].clone();
    let theirs = f.send(Method::GET, "/v3.1/contacts", &[("authorization", &auth), ("x-business", &other)], None).await;
    assert_eq!(theirs.headers["x-business"], other.as_str());
    assert_eq!(theirs.body["$total"], 10, "5 customers and 5 vendors in the other business");
    assert_ne!(theirs.body["$total"], mine);
    let nobody = f.send(Method::GET, "/v3.1/contacts", &[("authorization", &auth), ("x-business", "nope")], None).await;
    assert_sage_error(&nobody, 403, "MultiUserAccessDenied");
}

#[tokio::test]
async fn records_are_created_updated_and_deleted_as_sage_does() {
    let mut f = Fixture::new(5);
    f.freeze("2030-01-01T00:00:00Z");
    assert_sage_error(
        &f.api(Method::POST, "/contacts", Some(json!({"contact": {"name": "x"}}))).await,
        422,
        "RecordInvalid",
    );
    let created = f
        .api(Method::POST, "/contacts", Some(json!({"contact": {"name": "Zed", "contact_type_ids": ["VENDOR"]}})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["created_at"], "2030-01-01T00:00:00Z");
    f.sim.advance_clock(chrono::Duration::seconds(90));
    let updated = f.api(Method::PUT, &format!("/contacts/{id}"), Some(json!({"contact": {"name": "Zed Two"}}))).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["updated_at"], "2030-01-01T00:01:30Z");
    assert_eq!(updated.body["created_at"], "2030-01-01T00:00:00Z");
    assert_eq!(updated.body["displayed_as"], "Zed Two");
    assert_eq!(f.api(Method::DELETE, &format!("/contacts/{id}"), None).await.status, StatusCode::NO_CONTENT);
    assert_sage_error(&f.api(Method::DELETE, &format!("/contacts/{id}"), None).await, 404, "RecordNotFound");
    assert_sage_error(&f.api(Method::PUT, "/ledger_accounts/x", Some(json!({}))).await, 422, "RecordInvalid");
    assert_eq!(f.api(Method::DELETE, "/ledger_accounts/x", None).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn deleting_an_invoice_voids_it_unless_it_is_a_draft() {
    let f = Fixture::new(5);
    let contact = f.sim.record_ids(&f.lead, "contacts")[0].clone();
    let body = |status: &str| {
        json!({"sales_invoice": {"contact_id": contact, "date": "2024-06-01", "status_id": status,
            "invoice_lines": [{"description": "x", "quantity": 1, "unit_price": 10}]}})
    };
    let unpaid = f.api(Method::POST, "/sales_invoices", Some(body("UNPAID"))).await;
    let id = unpaid.body["id"].as_str().expect("id").to_owned();
    assert_eq!(unpaid.body["total_amount"], 12.0);
    assert_sage_error(&f.api(Method::DELETE, &format!("/sales_invoices/{id}"), None).await, 422, "RecordInvalid");
    f.advance(5);
    let voided = f.api(Method::DELETE, &format!("/sales_invoices/{id}?void_reason=mistake"), None).await;
    assert_eq!(voided.status, StatusCode::OK, "{}", voided.text);
    assert_eq!(voided.body["status"]["id"], "VOID");
    assert_eq!(voided.body["void_reason"], "mistake");
    assert!(ids(&f.scan("/sales_invoices").await).contains(&id), "a void invoice is still listed");
    assert!(f.scan("/sales_invoices?deleted_since=2000-01-01").await.is_empty());
    let draft = f.api(Method::POST, "/sales_invoices", Some(body("DRAFT"))).await;
    let draft_id = draft.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        f.api(Method::DELETE, &format!("/sales_invoices/{draft_id}"), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(ids(&f.scan("/sales_invoices?deleted_since=2000-01-01").await), [draft_id]);
}

#[tokio::test]
async fn the_same_seed_serves_the_same_data() {
    let a = Fixture::new(30);
    let b = Fixture::new(30);
    let c = Fixture::with(oc_sagesim::SimConfig { seed: 2, customers: 30, ..Default::default() });
    let q = "/contacts?attributes=all&items_per_page=200";
    assert_eq!(a.get(q).await.body, b.get(q).await.body);
    assert_ne!(a.get(q).await.body, c.get(q).await.body);
}

#[tokio::test]
async fn reference_filters_hold_for_records_with_many_references() {
    let f = Fixture::new(3);
    let types: Vec<String> = (1..=10).map(|i| format!("TYPE_{i}")).collect();
    let created =
        f.sim.create_record(&f.lead, "contacts", json!({"name": "Many", "contact_type_ids": types})).expect("create");
    let id = created["id"].as_str().expect("id");
    for ty in ["TYPE_1", "TYPE_10"] {
        assert_eq!(ids(&f.scan(&format!("/contacts?contact_type_id={ty}")).await), [id], "{ty}");
    }
    assert!(f.scan("/contacts?contact_type_id=TYPE_11").await.is_empty());
    let contact = f.sim.record_ids(&f.lead, "contacts")[0].clone();
    let invoices = f.scan(&format!("/sales_invoices?contact_id={contact}&attributes=contact")).await;
    assert!(invoices.iter().all(|i| i["contact"]["id"] == contact.as_str()));
    let all = f.scan("/sales_invoices?attributes=contact").await;
    assert_eq!(invoices.len(), all.iter().filter(|i| i["contact"]["id"] == contact.as_str()).count());
}

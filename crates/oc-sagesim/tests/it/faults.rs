//! The inconvenient parts on demand: rate limit, 429 bursts, 5xx, the `Date` header and the clock, equal
//! timestamps across pages, data moving between page requests, late-visible rows, the request log, the admin API.

use axum::http::{Method, StatusCode};
use oc_sagesim::{PageAction, PageHook, SimConfig};
use serde_json::json;

use crate::common::{self, Fixture, assert_sage_error, ids, t};

#[tokio::test]
async fn the_rate_limit_is_per_business_and_per_60_seconds_of_the_clock() {
    let f = Fixture::new(3);
    f.sim.set_rate_limit(3);
    for _ in 0..3 {
        assert_eq!(f.get("/contacts").await.status, StatusCode::OK);
    }
    let r = f.get("/contacts").await;
    assert_sage_error(&r, 429, "TooManyRequests");
    assert!(!r.headers.contains_key("retry-after"), "Sage documents no Retry-After");
    let other = f.sim.businesses()[1].id.clone();
    let auth = format!("Bearer {}", f.token);
    let theirs = f.send(Method::GET, "/v3.1/contacts", &[("authorization", &auth), ("x-business", &other)], None).await;
    assert_eq!(theirs.status, StatusCode::OK, "another business has its own budget");
    f.advance(59);
    assert_eq!(f.get("/contacts").await.status, StatusCode::TOO_MANY_REQUESTS);
    f.advance(1);
    assert_eq!(f.get("/contacts").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_default_rate_limit_is_200_per_minute() {
    let f = Fixture::with(SimConfig { customers: 3, ..SimConfig::default() });
    f.sim.set_rate_limit(SimConfig::default().rate_limit_per_minute);
    for _ in 0..200 {
        assert_eq!(f.get("/businesses/lead").await.status, StatusCode::OK);
    }
    assert_eq!(f.get("/businesses/lead").await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn bursts_of_429_and_500_then_recovery() {
    let f = Fixture::new(3);
    f.sim.throttle_next(2, Some(7));
    let r = f.get("/contacts").await;
    assert_sage_error(&r, 429, "TooManyRequests");
    assert_eq!(r.headers["retry-after"], "7");
    assert_eq!(f.get("/contacts").await.status, StatusCode::TOO_MANY_REQUESTS);
    f.sim.throttle_next(1, None);
    assert!(!f.get("/contacts").await.headers.contains_key("retry-after"));
    f.sim.fail_next(1);
    assert_sage_error(&f.get("/contacts").await, 500, "UnexpectedError");
    assert_eq!(f.get("/contacts").await.status, StatusCode::OK);
    f.sim.set_error_rate(1.0);
    assert_eq!(f.get("/contacts").await.status, StatusCode::INTERNAL_SERVER_ERROR);
    f.sim.clear_faults();
    assert_eq!(f.get("/contacts").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_date_header_follows_the_simulator_clock() {
    let mut f = Fixture::new(3);
    assert_eq!(f.get("/businesses").await.headers["date"], "Sat, 01 Jun 2024 12:00:00 GMT");
    f.sim.set_clock_offset(chrono::Duration::seconds(-90));
    assert_eq!(f.get("/businesses").await.headers["date"], "Sat, 01 Jun 2024 11:58:30 GMT");
    f.freeze("2031-02-03T04:05:06Z");
    f.advance(3600);
    assert_eq!(f.get("/businesses").await.headers["date"], "Mon, 03 Feb 2031 04:05:06 GMT");
    f.sim.advance_clock(chrono::Duration::seconds(4));
    assert_eq!(f.sim.now(), t("2031-02-03T04:05:10Z"));
}

#[tokio::test]
async fn many_records_share_one_updated_at_across_pages() {
    let mut f = Fixture::new(40);
    f.freeze("2030-01-01T00:00:00Z");
    let tied = f.sim.tie_updated_at(&f.lead, "contacts", 25).expect("tie");
    assert_eq!(tied.len(), 25);
    let items =
        f.scan("/contacts?updated_or_created_since=2030-01-01T00:00:00Z&items_per_page=10&attributes=updated_at").await;
    assert_eq!(items.len(), 25, "three pages");
    assert!(items.iter().all(|i| i["updated_at"] == "2030-01-01T00:00:00Z"));
    let mut got = ids(&items);
    got.sort();
    let mut want = tied.clone();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_record_deleted_from_page_1_while_the_client_is_on_page_2_shifts_a_row_out_of_sight() {
    let f = Fixture::new(30);
    let all_before = f.sim.record_ids(&f.lead, "contacts");
    f.sim.add_page_hook(PageHook {
        business: None,
        resource: "contacts".into(),
        after_page: 1,
        action: PageAction::DeleteFromPage { index: 0 },
    });
    let page1 = f.get("/contacts?items_per_page=10").await;
    let total = page1.body["$total"].as_u64().expect("total") as usize;
    let mut seen = ids(page1.body["$items"].as_array().expect("items"));
    seen.extend(ids(&f.scan("/contacts?items_per_page=10&page=2").await));
    assert_eq!(total, all_before.len());
    assert_eq!(seen.len(), total - 1, "offset paging skips the row that moved up to page 1");
    let skipped: Vec<_> = all_before.iter().filter(|id| !seen.contains(id)).collect();
    assert_eq!(skipped, [&all_before[10]], "the first row of page 2 slid onto page 1");
    let page2 = f.get("/contacts?items_per_page=10&page=2").await;
    assert_eq!(page2.body["$total"].as_u64(), Some(total as u64 - 1), "$total changed between pages");
    assert!(f.sim.faults().page_hooks.is_empty(), "one-shot");
}

#[tokio::test]
async fn a_mutation_between_two_page_requests_moves_a_row_to_a_later_page() {
    let mut f = Fixture::new(30);
    f.freeze("2030-01-01T00:00:00Z");
    f.sim.add_page_hook(PageHook {
        business: Some(f.lead.clone()),
        resource: "sales_invoices".into(),
        after_page: 1,
        action: PageAction::UpdateFromPage { index: 0, fields: serde_json::Map::new() },
    });
    let q = "/sales_invoices?sort=updated_at&items_per_page=5&attributes=updated_at";
    let items = f.scan(q).await;
    let list = ids(&items);
    let first = list[0].clone();
    assert_eq!(list.iter().filter(|id| **id == first).count(), 2, "seen on page 1 and again at the end");
    assert_eq!(items.last().expect("last")["updated_at"], "2030-01-01T00:00:00Z");
}

#[tokio::test]
async fn rows_become_visible_to_lists_only_after_the_delay() {
    let mut f = Fixture::new(5);
    f.freeze("2030-01-01T00:00:00Z");
    f.sim.set_visibility_delay(std::time::Duration::from_secs(30));
    let created = f
        .sim
        .create_record(&f.lead, "contacts", json!({"name": "Late", "contact_type_ids": ["CUSTOMER"]}))
        .expect("create");
    let id = created["id"].as_str().expect("id").to_owned();
    f.sim.advance_clock(chrono::Duration::seconds(29));
    assert!(!ids(&f.scan("/contacts").await).contains(&id));
    assert_eq!(f.get(&format!("/contacts/{id}")).await.status, StatusCode::OK, "a get sees it at once");
    f.sim.advance_clock(chrono::Duration::seconds(1));
    let items = f.scan("/contacts?updated_or_created_since=2030-01-01T00:00:00Z&attributes=updated_at").await;
    assert_eq!(ids(&items), [id.as_str()]);
    assert_eq!(items[0]["updated_at"], "2030-01-01T00:00:00Z", "visible late, stamped on time");
    f.sim.update_record(&f.lead, "contacts", &id, json!({"name": "Later"})).expect("update");
    let seen = f.scan("/contacts?attributes=name").await;
    let row = seen.iter().find(|i| i["id"] == id.as_str()).expect("still listed");
    assert_eq!(row["name"], "Late", "the previous state until the change is visible");
}

#[tokio::test]
async fn every_request_served_is_logged() {
    let f = Fixture::new(3);
    f.sim.clear_requests();
    let before = f.sim.requests_served();
    f.get("/contacts?items_per_page=5").await;
    f.send(Method::GET, "/v3.1/contacts", &[], None).await;
    f.send(Method::POST, "/token", &[], None).await;
    let log = f.sim.requests();
    assert_eq!(f.sim.requests_served(), before + 3);
    let summary: Vec<_> =
        log.iter().map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_deref(), r.status, r.authorized)).collect();
    assert_eq!(
        summary,
        [
            ("GET", "/v3.1/contacts", Some("items_per_page=5"), 200, true),
            ("GET", "/v3.1/contacts", None, 401, false),
            ("POST", "/token", None, 400, false),
        ]
    );
    assert_eq!(log[0].at, t(common::T0));
}

#[tokio::test]
async fn the_admin_api_is_off_unless_enabled() {
    let off = Fixture::new(3);
    assert_eq!(off.send(Method::GET, "/_sim", &[], None).await.status, StatusCode::NOT_FOUND);

    let mut f = Fixture::with(SimConfig { admin: true, customers: 3, ..SimConfig::default() });
    let state = f.send(Method::GET, "/_sim", &[], None).await;
    assert_eq!(state.status, StatusCode::OK);
    assert_eq!(state.body["now"], common::T0);
    let json_body = |v: serde_json::Value| Some(("application/json", v.to_string()));
    let r = f.send(Method::POST, "/_sim/clock", &[], json_body(json!({"freeze_at": "2030-01-01T00:00:00Z"}))).await;
    assert_eq!(r.body["now"], "2030-01-01T00:00:00Z");
    f.renew();
    let path = format!("/_sim/businesses/{}/contacts", f.lead);
    let created =
        f.send(Method::POST, &path, &[], json_body(json!({"name": "Admin", "contact_type_ids": ["CUSTOMER"]}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["created_at"], "2030-01-01T00:00:00Z");
    let id = created.body["id"].as_str().expect("id");
    let updated = f.send(Method::PUT, &format!("{path}/{id}"), &[], json_body(json!({"name": "Admin 2"}))).await;
    assert_eq!(updated.body["name"], "Admin 2");
    assert_eq!(f.send(Method::DELETE, &format!("{path}/{id}"), &[], None).await.status, StatusCode::OK);
    assert_eq!(f.send(Method::DELETE, &format!("{path}/{id}"), &[], None).await.status, StatusCode::NOT_FOUND);
    let faults = json!({"latency_ms": 0, "error_rate": 0.0, "fail_next": 0, "throttle_next": 1, "throttle_retry_after": 2,
        "visibility_delay_seconds": 0, "page_hooks": []});
    assert_eq!(f.send(Method::PUT, "/_sim/faults", &[], json_body(faults)).await.status, StatusCode::OK);
    assert_eq!(f.get("/contacts").await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(f.send(Method::POST, "/_sim/tokens/expire", &[], None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(f.get("/contacts").await.status, StatusCode::UNAUTHORIZED);
    let tokens = f.send(Method::POST, "/_sim/tokens", &[], json_body(json!({"client_id": common::CLIENT_ID}))).await;
    assert!(tokens.body["access_token"].is_string());
    let log = f.send(Method::GET, "/_sim/requests", &[], None).await;
    let paths: Vec<&str> = log.body.as_array().expect("log").iter().map(|r| r["path"].as_str().unwrap_or("")).collect();
    assert_eq!(paths, ["/v3.1/contacts", "/v3.1/contacts"], "the admin API's own calls are not logged");
    let step = f.send(Method::POST, "/_sim/activity/step", &[], None).await;
    assert!(step.body["did"].is_string());
}

#[tokio::test]
async fn activity_steps_change_the_lead_business() {
    let mut f = Fixture::new(10);
    f.freeze("2030-01-01T00:00:00Z");
    for _ in 0..20 {
        let did = f.sim.activity_step();
        assert!(!did.contains("failed"), "{did}");
    }
    let changed = f.scan("/contacts?updated_or_created_since=2030-01-01T00:00:00Z").await.len()
        + f.scan("/sales_invoices?updated_or_created_since=2030-01-01T00:00:00Z").await.len()
        + f.scan("/products?updated_or_created_since=2030-01-01T00:00:00Z").await.len()
        + f.scan("/contacts?deleted_since=2029-12-31").await.len();
    assert!(changed >= 10, "{changed}");
}

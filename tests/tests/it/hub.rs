//! Issue 15, items 3 and 4: the hub passthrough as an Open Connectors client uses it, against the Sage simulator
//! through the real service — paging with `elements-next-page-token` / `?nextPage=` to the end (every record
//! once, also for the composite `items` and with a `where` evaluated locally), tokens bound to their instance and
//! query, `fields`, `orderBy`, `GET /hubs/finance/{resource}/{id}`, a throttled Sage as a 429 with
//! `Retry-After`, and hub calls answered at once while the polls of an instance with six resources hold the
//! whole budget of its business.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use oc_store::testing;
use oc_tests::receiver::Receiver;
use oc_tests::sim::Sage;
use oc_tests::{Server, eventually};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const KEY: &str = "hub-signature-key";

/// A client of one instance's hub calls (`User .., Organization .., Element <token>`).
struct Hub {
    http: reqwest::Client,
    api: String,
    auth: String,
}

/// One answer of the hub.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn records(&self) -> Vec<Value> {
        self.body.as_array().cloned().unwrap_or_default()
    }

    /// The parameter the first problem names.
    fn problem_path(&self) -> &str {
        self.body["errors"][0]["path"].as_str().unwrap_or_default()
    }
}

impl Hub {
    async fn get(&self, path: &str) -> Answer {
        let resp = self
            .http
            .get(format!("{}{path}", self.api))
            .header("authorization", &self.auth)
            .send()
            .await
            .expect("the server answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    /// What an Open Connectors client does: GET, then follow `elements-next-page-token` with `?nextPage=` (the
    /// rest of the query unchanged) until no token comes back. Every answer, in order.
    async fn page_to_the_end(&self, path: &str) -> Vec<Answer> {
        let mut answers: Vec<Answer> = Vec::new();
        let mut url = path.to_string();
        loop {
            let answer = self.get(&url).await;
            assert_eq!(answer.status, 200, "GET {url}: {}", answer.body);
            let count: usize = answer.header("elements-returned-count").expect("a count").parse().unwrap();
            assert_eq!(count, answer.records().len(), "elements-returned-count");
            let token = answer.header("elements-next-page-token").map(str::to_string);
            answers.push(answer);
            let Some(token) = token else { break };
            assert!(answers.len() < 50, "the pages never end");
            let sep = if path.contains('?') { '&' } else { '?' };
            url = format!("{path}{sep}nextPage={token}");
        }
        answers
    }
}

fn ids(answers: &[Answer]) -> Vec<String> {
    answers.iter().flat_map(|a| a.records()).map(|r| r["id"].as_str().expect("an id").to_string()).collect()
}

/// A service on the simulator with `customers` live customers, and one instance polling customers (rarely).
struct Setup {
    sage: Sage,
    server: Server,
    hub: Hub,
    /// The `Authorization` of the organization, for a second instance.
    org_auth: String,
    _receiver: Receiver,
}

async fn setup(customers: usize, args: &[&str]) -> Setup {
    let sage = Sage::start(customers).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let mut all = sage.serve_args();
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let server = Server::start(testing::sqlite().await, &all).await.unwrap();
    let org = server.organization("hub").await;
    let code = sage.code().await.unwrap();
    let body = sage.instance_body(&code, &receiver.url("/hooks"), KEY, 600.0);
    let (_, created) = server.api(&org).create_instance(&body).await;
    let token = created["token"].as_str().expect("an instance token");
    let hub = Hub {
        http: server.http.clone(),
        api: server.api.clone(),
        auth: format!("{}, Element {token}", org.authorization),
    };
    Setup { sage, server, hub, org_auth: org.authorization.clone(), _receiver: receiver }
}

impl Setup {
    fn business(&self) -> String {
        self.sage.business()
    }

    fn records(&self, collection: &str) -> Vec<Value> {
        let business = self.business();
        self.sage
            .sim
            .record_ids(&business, collection)
            .iter()
            .filter_map(|id| self.sage.sim.get_record(&business, collection, id))
            .collect()
    }

    fn contacts_of(&self, kind: &str) -> Vec<Value> {
        self.records("contacts")
            .into_iter()
            .filter(|r| r["contact_types"].as_array().is_some_and(|t| t.iter().any(|t| t["id"] == kind)))
            .collect()
    }

    /// Another instance of the same organization.
    async fn second_hub(&self) -> Hub {
        let code = self.sage.code().await.unwrap();
        let body = self.sage.instance_body(&code, "http://127.0.0.1:1/hooks", KEY, 600.0);
        let api = oc_tests::Api::new(&self.server.api, &self.org_auth);
        let (_, created) = api.create_instance(&body).await;
        let token = created["token"].as_str().expect("an instance token");
        Hub {
            http: self.server.http.clone(),
            api: self.server.api.clone(),
            auth: format!("{}, Element {token}", self.org_auth),
        }
    }
}

fn set(ids: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    ids.into_iter().collect()
}

fn id_of(r: &Value) -> String {
    r["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pages_a_hub_with_next_page_to_the_end() {
    let s = setup(45, &[]).await;
    let customers = set(s.contacts_of("CUSTOMER").iter().map(id_of));
    assert_eq!(customers.len(), 45);

    let answers = s.hub.page_to_the_end("/hubs/finance/customers?pageSize=10&fields=name").await;
    for (i, a) in answers.iter().enumerate() {
        eprintln!(
            "page {}: {} records, elements-total-count {:?}, next token {}",
            i + 1,
            a.records().len(),
            a.header("elements-total-count"),
            a.header("elements-next-page-token").map_or("none".to_string(), |t| format!("{}…", &t[..16]))
        );
    }
    assert_eq!(answers.iter().map(|a| a.records().len()).collect::<Vec<_>>(), [10, 10, 10, 10, 5]);
    assert!(answers.iter().all(|a| a.header("elements-total-count") == Some("45")));
    let got = ids(&answers);
    assert_eq!(got.len(), 45, "every customer once");
    assert_eq!(set(got), customers);
    // fields: the name, and what Sage always returns
    for r in answers.iter().flat_map(|a| a.records()) {
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["$path", "displayed_as", "id", "name"], "{r}");
    }

    // the token works with the same query however it is written, with pageSize left out
    let token = answers[1].header("elements-next-page-token").unwrap().to_string();
    let third = s.hub.get(&format!("/hubs/finance/customers?FIELDS=%6Eame&nextPage={token}")).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(ids(std::slice::from_ref(&third)), ids(&answers[2..3]));

    // and with nothing else: forged, truncated, another query's, another instance's, an old page number
    let refused = |a: &Answer, what: &str| {
        assert_eq!(a.status, 400, "{what}: {}", a.body);
        assert_eq!(a.body["code"], "invalid_query", "{what}: {}", a.body);
        a.problem_path().to_string()
    };
    let mut forged = token.clone().into_bytes();
    let mid = forged.len() / 2;
    forged[mid] = if forged[mid] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for (what, path) in [
        ("forged", format!("/hubs/finance/customers?pageSize=10&fields=name&nextPage={forged}")),
        (
            "truncated",
            format!("/hubs/finance/customers?pageSize=10&fields=name&nextPage={}", &token[..token.len() - 3]),
        ),
        ("another query", format!("/hubs/finance/customers?pageSize=10&fields=email&nextPage={token}")),
        ("another resource", format!("/hubs/finance/vendors?pageSize=10&fields=name&nextPage={token}")),
        ("a page number", "/hubs/finance/customers?pageSize=10&fields=name&nextPage=2".to_string()),
        ("twice", format!("/hubs/finance/customers?fields=name&nextPage={token}&nextPage={token}")),
    ] {
        assert_eq!(refused(&s.hub.get(&path).await, what), "nextPage", "{what}");
    }
    let other = s.second_hub().await;
    let a = other.get(&format!("/hubs/finance/customers?pageSize=10&fields=name&nextPage={token}")).await;
    assert_eq!(refused(&a, "another instance"), "nextPage");
    assert!(a.body["message"].as_str().unwrap().contains("another instance"), "{}", a.body);
    // the page size cannot change midway (Sage's cursor carries it)
    let a = s.hub.get(&format!("/hubs/finance/customers?pageSize=20&fields=name&nextPage={token}")).await;
    assert_eq!(refused(&a, "another page size"), "pageSize");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_items_and_locally_filtered_lists_page_to_the_end() {
    let s = setup(45, &[]).await;
    let (products, services) =
        (set(s.records("products").iter().map(id_of)), set(s.records("services").iter().map(id_of)));
    assert_eq!((products.len(), services.len()), (8, 5));

    // items: Sage's products, then its services, one list for the client
    let answers = s.hub.page_to_the_end("/hubs/finance/items?pageSize=5&fields=item_code").await;
    assert_eq!(answers.iter().map(|a| a.records().len()).collect::<Vec<_>>(), [5, 3, 5]);
    assert!(answers.iter().all(|a| a.header("elements-total-count") == Some("13")), "{:?}", answers);
    let got = ids(&answers);
    assert_eq!(got.len(), 13);
    assert_eq!(set(got[..8].to_vec()), products);
    assert_eq!(set(got[8..].to_vec()), services);

    // a where Sage cannot evaluate: filtered here, pages read on while they come back empty, no total
    let wanted: BTreeSet<String> = s
        .contacts_of("CUSTOMER")
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.contains("Garage")))
        .map(id_of)
        .collect();
    assert!(!wanted.is_empty() && wanted.len() < 10, "{wanted:?}");
    // (`%` written `%25`, as a client's URL encoder writes it)
    let path = "/hubs/finance/customers?pageSize=4&where=name like '%25Garage%25'&fields=name";
    let answers = s.hub.page_to_the_end(path).await;
    let got = ids(&answers);
    assert_eq!(got.len(), wanted.len(), "every match once: {got:?}");
    assert_eq!(set(got), wanted);
    assert!(answers.iter().all(|a| a.header("elements-total-count").is_none()));
    // Sage's pages of 4 customers, most without a match, were read into one answer instead of answered empty
    assert!(answers.len() < 45_usize.div_ceil(4), "{} answers", answers.len());
    let empty_with_more =
        answers.iter().filter(|a| a.records().is_empty() && a.header("elements-next-page-token").is_some());
    assert_eq!(empty_with_more.count(), 0);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_order_by_and_their_problems() {
    let s = setup(30, &[]).await;
    // invoices: Sage sorts them
    let a = s.hub.get("/hubs/finance/invoices?orderBy=lastModifiedDate desc&fields=updated_at,total_amount").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let dates: Vec<String> = a.records().iter().map(|r| r["updated_at"].as_str().unwrap().to_string()).collect();
    assert!(dates.len() > 3, "{dates:?}");
    let mut sorted = dates.clone();
    sorted.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(dates, sorted, "newest first");
    assert!(a.records().iter().all(|r| r["total_amount"].is_number() && r.get("contact").is_none()));
    let a = s.hub.get("/hubs/finance/invoices?orderBy=date&fields=date").await;
    let dates: Vec<String> = a.records().iter().map(|r| r["date"].as_str().unwrap().to_string()).collect();
    let mut sorted = dates.clone();
    sorted.sort_unstable();
    assert_eq!(dates, sorted, "oldest first");

    // what cannot be done is a 400 naming the parameter, never silence
    for (path, parameter, says) in [
        ("/hubs/finance/customers?orderBy=name", "orderBy", "cannot be ordered by `name` (it has no sort)"),
        ("/hubs/finance/invoices?orderBy=reference", "orderBy", "sort keys: created_at, updated_at, date, due_date"),
        ("/hubs/finance/customers?fields=name,e mail", "fields", "`e mail` is not a field name"),
        ("/hubs/finance/customers?where=name = ", "where", "expected a value"),
        ("/hubs/finance/customers?pageSize=0", "pageSize", "whole number from 1"),
        ("/hubs/finance/widgets", "resource", "unknown resource `widgets`"),
    ] {
        let a = s.hub.get(path).await;
        assert_eq!((a.status, a.problem_path()), (400, parameter), "{path}: {}", a.body);
        assert!(a.body["errors"][0]["message"].as_str().unwrap().contains(says), "{path}: {}", a.body);
    }
    // an unknown field is asked for and said
    let a = s.hub.get("/hubs/finance/customers?fields=name,nmae").await;
    assert_eq!(a.status, 200);
    assert!(a.header("x-ocpoll-warnings").is_some_and(|w| w.contains("`nmae` is not a field")), "{:?}", a.headers);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_by_id() {
    let s = setup(10, &[]).await;
    let customer = s.contacts_of("CUSTOMER").remove(0);
    let vendor = s.contacts_of("VENDOR").remove(0);
    let a = s.hub.get(&format!("/hubs/finance/customers/{}", id_of(&customer))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.body["name"].clone(), a.body["email"].clone()),
        (customer["name"].clone(), customer["email"].clone())
    );
    let a = s.hub.get(&format!("/hubs/finance/customers/{}?fields=name", id_of(&customer))).await;
    assert_eq!(a.body.as_object().unwrap().len(), 4, "{}", a.body);
    // the resource's fixed filters hold: a vendor is not found among the customers
    let a = s.hub.get(&format!("/hubs/finance/customers/{}", id_of(&vendor))).await;
    assert_eq!((a.status, a.body["code"].as_str()), (404, Some("not_found")), "{}", a.body);
    assert_eq!(s.hub.get(&format!("/hubs/finance/vendors/{}", id_of(&vendor))).await.status, 200);
    assert_eq!(s.hub.get("/hubs/finance/customers/00000000000000000000000000000000").await.status, 404);
    // aliases: items (products, then services), tax-codes (tax rates), journal-entries (journals)
    let service = id_of(&s.records("services")[0]);
    let a = s.hub.get(&format!("/hubs/finance/items/{service}")).await;
    assert_eq!((a.status, id_of(&a.body)), (200, service));
    let business = s.business();
    let rate = s.sage.sim.create_record(&business, "tax_rates", json!({"name": "Standard", "percentage": 20})).unwrap();
    let a = s.hub.get(&format!("/hubs/finance/tax-codes/{}", id_of(&rate))).await;
    assert_eq!((a.status, a.body["name"].as_str()), (200, Some("Standard")), "{}", a.body);
    let journal = s.sage.sim.create_record(&business, "journals", json!({"reference": "J-7"})).unwrap();
    assert_eq!(s.hub.get(&format!("/hubs/finance/journal-entries/{}", id_of(&journal))).await.status, 200);
    // a read by id takes only fields
    let a = s.hub.get(&format!("/hubs/finance/customers/{}?where=name='x'", id_of(&customer))).await;
    assert_eq!((a.status, a.problem_path()), (400, "where"), "{}", a.body);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_sage_is_a_429_with_retry_after() {
    let s = setup(5, &[]).await;
    // Sage asks for 7 s, more than an interactive call waits
    s.sage.sim.throttle_next(3, Some(7));
    let started = Instant::now();
    let a = s.hub.get("/hubs/finance/customers").await;
    assert_eq!((a.status, a.header("retry-after")), (429, Some("7")), "{}", a.body);
    assert_eq!(a.body["code"], "provider_rate_limited");
    assert!(started.elapsed() < Duration::from_secs(5), "it did not wait Sage's 7 s out");
    s.server.stop().await;
}

/// Item 4 end to end: the simulator allows 60 requests a minute per business and ocpoll is told so; an instance
/// polls six resources every second, far more than the budget. Hub calls made meanwhile are answered at once
/// (from the reserve, before the queued polls), Sage never throttles, ocpoll never sends more than its share
/// (`--sage-budget-share 50`: 30 of the 60; issue 19), and the polls never use the reserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_calls_are_answered_while_polls_saturate_the_budget() {
    const LIMIT: usize = 60;
    // issue 19: ocpoll uses at most its share of the business's budget, hub calls included
    const SHARE_PERCENT: usize = 50;
    const SHARE: usize = LIMIT * SHARE_PERCENT / 100;
    const RESERVE_PERCENT: usize = 20;
    let sage = Sage::start(40).await.unwrap();
    sage.sim.set_rate_limit(LIMIT as u32);
    let receiver = Receiver::start(KEY).await;
    let mut args: Vec<String> = Vec::new();
    let mut given = sage.serve_args().into_iter();
    while let Some(a) = given.next() {
        if a == "--sage-rate-limit" {
            given.next();
        } else {
            args.push(a);
        }
    }
    let limit = LIMIT.to_string();
    let reserve = RESERVE_PERCENT.to_string();
    let share = SHARE_PERCENT.to_string();
    args.extend(
        ["--sage-rate-limit", &limit, "--sage-budget-share", &share, "--sage-interactive-reserve", &reserve]
            .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(testing::sqlite().await, &args).await.unwrap();
    let org = server.organization("saturated").await;
    let api = server.api(&org);
    let code = sage.code().await.unwrap();
    let mut body = sage.instance_body(&code, &receiver.url("/hooks"), KEY, 1.0);
    let pollers = &mut body["configuration"]["event.poller.configuration"];
    let customers = pollers["customers"].clone();
    for resource in ["vendors", "invoices", "products", "services", "ledger-accounts"] {
        let mut p = customers.clone();
        p["url"] = json!(p["url"].as_str().unwrap().replace("/customers?", &format!("/{resource}?")));
        pollers[resource] = p;
    }
    let (_, created) = api.create_instance(&body).await;
    let hub = Hub {
        http: server.http.clone(),
        api: server.api.clone(),
        auth: format!("{}, Element {}", org.authorization, created["token"].as_str().unwrap()),
    };
    let background_share = SHARE - SHARE * RESERVE_PERCENT / 100;
    // the polls use their whole share, and go on asking
    eventually(Duration::from_secs(30), "the polls to use their share of the budget", || async {
        sage.api_requests() >= background_share
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut latencies = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let a = hub.get("/hubs/finance/customers?pageSize=7&fields=name").await;
        latencies.push(started.elapsed());
        assert_eq!(a.status, 200, "{} {:?}", a.body, a.headers);
        assert_eq!(a.records().len(), 7);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("hub latencies while the polls hold the budget: {latencies:?}");
    // without the interactive lane a hub call waits for a slot of the full window: up to a minute
    assert!(latencies.iter().all(|l| *l < Duration::from_secs(5)), "{latencies:?}");

    // Sage never throttled; in any 60 s no more than ocpoll's share of the limit, and the polls no more than
    // their part of it
    let log: Vec<_> = sage.sim.requests().into_iter().filter(|r| r.path.starts_with("/v3.1")).collect();
    assert!(log.iter().all(|r| r.status != 429), "Sage throttled");
    let is_hub = |r: &oc_sagesim::LoggedRequest| r.query.as_deref().is_some_and(|q| q.contains("items_per_page=7"));
    // the lead business asked for when the instance was created is neither
    let is_poll = |r: &oc_sagesim::LoggedRequest| !is_hub(r) && !r.path.starts_with("/v3.1/businesses");
    assert_eq!(log.iter().filter(|r| is_hub(r)).count(), 4);
    for first in &log {
        let window: Vec<_> =
            log.iter().filter(|r| r.at >= first.at && r.at < first.at + chrono::Duration::seconds(60)).collect();
        assert!(window.len() <= SHARE, "{} requests in the minute from {}", window.len(), first.at);
        let polls = window.iter().filter(|r| is_poll(r)).count();
        assert!(polls <= background_share, "{polls} poll requests in the minute from {}", first.at);
    }
    assert!(log.iter().filter(|r| is_poll(r)).count() >= background_share, "the polls used their whole share");
    server.stop().await;
}

/// Issue 18, item 12: with Sage slow (40 s), a hub call (list or by id) answers within the deadline
/// (`--sage-call-deadline-seconds`) with a 504 in the API's error format naming Sage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sage_is_a_504_within_the_deadline() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, ResponseTemplate};

    let sage = oc_tests::sage_fake::sage_oauth_only().await;
    Mock::given(method("GET"))
        .and(path_regex("^/v3.1/contacts"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"$items": []})).set_delay(Duration::from_secs(40)),
        )
        .mount(&sage)
        .await;
    let mut args = oc_tests::sage_fake::sage_args(&sage);
    args.extend(["--sage-call-deadline-seconds".to_string(), "2".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(testing::sqlite().await, &args).await.unwrap();
    let org = server.organization("slow").await;
    let mut body: Value = serde_json::from_str(oc_tests::SEED_EXAMPLE).unwrap();
    body["configuration"]["event.notification.enabled"] = json!(false);
    let (_, created) = server.api(&org).create_instance(&body).await;
    let token = created["token"].as_str().expect("an instance token");
    let hub = Hub {
        http: server.http.clone(),
        api: server.api.clone(),
        auth: format!("{}, Element {token}", org.authorization),
    };
    for path in ["/hubs/finance/customers", "/hubs/finance/customers/abc123"] {
        let started = Instant::now();
        let a = hub.get(path).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{path}: answered after {took:?}");
        assert_eq!(a.status, 504, "{path}: {}", a.body);
        assert_eq!(a.body["code"], "provider_timeout", "{path}: {}", a.body);
        assert!(a.body["requestId"].is_string() && a.body["errors"].is_array(), "{path}: {}", a.body);
        let message = a.body["message"].as_str().unwrap();
        assert!(message.contains("Sage") && message.contains("2 s"), "{path}: {message}");
    }
    server.stop().await;
}

/// Issue 18, item 11: a page size over the provider's largest is capped with a warning stating the cap, whatever
/// its size, and a problem of the page size names `pageSize`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_sizes_over_the_largest_are_capped_with_the_bound_said() {
    let s = setup(3, &[]).await;
    for size in ["500", "99999999999"] {
        let a = s.hub.get(&format!("/hubs/finance/customers?pageSize={size}&fields=name")).await;
        assert_eq!(a.status, 200, "pageSize={size}: {}", a.body);
        assert_eq!(a.records().len(), 3, "pageSize={size}");
        let warning = a.header("x-ocpoll-warnings").unwrap_or_default();
        assert!(warning.contains("pageSize") && warning.contains("200"), "pageSize={size}: {warning:?}");
    }
    for (path, says) in [
        ("/hubs/finance/customers?where=name='a'&pageSize=abc", "from 1"),
        ("/hubs/finance/customers?pageSize=0&where=name='a'", "from 1"),
    ] {
        let a = s.hub.get(path).await;
        assert_eq!((a.status, a.problem_path()), (400, "pageSize"), "{path}: {}", a.body);
        assert!(a.body["errors"][0]["message"].as_str().unwrap().contains(says), "{path}: {}", a.body);
    }
    s.server.stop().await;
}

//! The Sage client against wiremock: paging, headers, declared parameters only, retries and backoff, token
//! refresh (single flight, persisted before use, `invalid_grant`), error arrays, skew, the rate limiter, and the
//! OAuth code exchange. Time is a `ManualClock`; waits go through a recording `Pause` that moves that clock, so
//! no test sleeps.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::config::Configuration;
use oc_model::ports::{
    Clock, CompiledQuery, Feed, FieldNeeds, Lane, ManualClock, OAuthApp, OAuthUrlRequest, PageCursor, PageRequest,
    Provider, ProviderAccount, ProviderError, Session, StoreError, TokenSet, TokenVault,
};
use oc_model::{InstanceId, Secret};
use oc_sageone::endpoints::endpoint;
use oc_sageone::{Pause, RateLimit, RefreshCounts, RetryPolicy, SageConfig, SageProvider};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

// ---- test doubles ----

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// An in-memory token vault that logs what it is asked to do.
#[derive(Default)]
struct MemVault {
    tokens: Mutex<HashMap<InstanceId, TokenSet>>,
    holder: Mutex<Option<String>>,
    invalid: Mutex<Option<String>>,
    log: Log,
    /// `lock_refresh` answers false this many times (another node holds the lock) ...
    foreign_rounds: AtomicUsize,
    /// ... and when it lets go, it has stored these tokens.
    foreign_tokens: Mutex<Option<TokenSet>>,
    /// The first `gate_parties` reads of the tokens wait for each other, so that concurrent callers all see the
    /// same (expired) tokens before any of them refreshes.
    gate: Option<Arc<tokio::sync::Barrier>>,
    gate_parties: usize,
    reads: AtomicUsize,
}

impl MemVault {
    fn with_tokens(id: InstanceId, tokens: TokenSet) -> Self {
        let v = MemVault::default();
        v.tokens.lock().unwrap().insert(id, tokens);
        v
    }

    fn current(&self, id: InstanceId) -> TokenSet {
        self.tokens.lock().unwrap()[&id].clone()
    }
}

#[async_trait]
impl TokenVault for MemVault {
    async fn tokens(&self, instance: InstanceId) -> Result<Option<TokenSet>, StoreError> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate
            && n < self.gate_parties
        {
            gate.wait().await;
        }
        Ok(self.tokens.lock().unwrap().get(&instance).cloned())
    }

    async fn lock_refresh(&self, _instance: InstanceId, holder: &str, _ttl: Duration) -> Result<bool, StoreError> {
        if self.foreign_rounds.load(Ordering::SeqCst) > 0 {
            if self.foreign_rounds.fetch_sub(1, Ordering::SeqCst) == 1
                && let Some(t) = self.foreign_tokens.lock().unwrap().take()
            {
                self.tokens.lock().unwrap().insert(1, t);
            }
            push(&self.log, "lock refused");
            return Ok(false);
        }
        let mut h = self.holder.lock().unwrap();
        if h.is_some() {
            push(&self.log, "lock refused");
            return Ok(false);
        }
        *h = Some(holder.to_string());
        push(&self.log, "lock");
        Ok(true)
    }

    async fn save_refreshed(&self, instance: InstanceId, holder: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        if self.holder.lock().unwrap().as_deref() != Some(holder) {
            return Err(StoreError::LeaseLost("not the holder".into()));
        }
        push(
            &self.log,
            format!("save access={} refresh={}", tokens.access_token.expose(), tokens.refresh_token.expose()),
        );
        self.tokens.lock().unwrap().insert(instance, tokens.clone());
        *self.holder.lock().unwrap() = None;
        Ok(())
    }

    async fn unlock_refresh(&self, _instance: InstanceId, holder: &str) -> Result<(), StoreError> {
        let mut h = self.holder.lock().unwrap();
        if h.as_deref() == Some(holder) {
            *h = None;
            push(&self.log, "unlock");
        }
        Ok(())
    }

    async fn mark_invalid(&self, _instance: InstanceId, reason: &str) -> Result<(), StoreError> {
        *self.invalid.lock().unwrap() = Some(reason.to_string());
        push(&self.log, "invalid");
        Ok(())
    }
}

/// Records every wait and moves the manual clock by it.
#[derive(Debug)]
struct RecordingPause {
    clock: Arc<ManualClock>,
    waits: Mutex<Vec<Duration>>,
}

#[async_trait]
impl Pause for RecordingPause {
    async fn pause(&self, duration: Duration) {
        self.waits.lock().unwrap().push(duration);
        self.clock.advance(duration);
    }
}

/// Answers with `template` and logs the request's bearer token.
struct Logged {
    log: Log,
    template: ResponseTemplate,
}

impl Respond for Logged {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("-");
        push(&self.log, format!("api {auth}"));
        self.template.clone()
    }
}

// ---- fixtures ----

const ID: InstanceId = 1;

fn t0() -> DateTime<Utc> {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

struct Fixture {
    server: MockServer,
    clock: Arc<ManualClock>,
    pause: Arc<RecordingPause>,
    sage: SageProvider,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(|_| {}).await
    }

    async fn with(tune: impl FnOnce(&mut SageConfig)) -> Fixture {
        let server = MockServer::start().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let pause = Arc::new(RecordingPause { clock: clock.clone(), waits: Mutex::new(Vec::new()) });
        let mut config = SageConfig {
            api_url: format!("{}/v3.1", server.uri()),
            token_url: format!("{}/token", server.uri()),
            authorize_url: format!("{}/oauth2/auth/central?filter=apiv3.1", server.uri()),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(1),
                budget: Duration::from_secs(60),
            },
            ..SageConfig::default()
        };
        tune(&mut config);
        let sage = SageProvider::with_time(config, clock.clone(), pause.clone()).unwrap();
        Fixture { server, clock, pause, sage }
    }

    fn waits(&self) -> Vec<Duration> {
        self.pause.waits.lock().unwrap().clone()
    }

    fn tokens(&self, access: &str, refresh: &str, lives: i64) -> TokenSet {
        TokenSet {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_at: self.clock.now() + chrono::Duration::seconds(lives),
            refresh_expires_at: None,
            scope: Some("full_access".into()),
        }
    }

    fn session(&self, vault: Arc<MemVault>, business: &str) -> Session {
        Session {
            instance_id: ID,
            app: app(),
            account: ProviderAccount { id: Some(business.into()), name: None, extra: json!({}) },
            configuration: Configuration::new(),
            vault,
            lane: Lane::Background,
        }
    }

    /// A session whose stored access token `good` is fresh.
    fn fresh_session(&self, business: &str) -> (Session, Arc<MemVault>) {
        let vault = Arc::new(MemVault::with_tokens(ID, self.tokens("good", "r0", 300)));
        (self.session(vault.clone(), business), vault)
    }

    fn compile(&self, url: &str) -> CompiledQuery {
        let needs = FieldNeeds { fields: vec!["id".into(), "updated_at".into(), "created_at".into()] };
        self.sage.compile(url, &needs).unwrap()
    }

    async fn fetch(
        &self,
        session: &Session,
        query: &CompiledQuery,
        feed: Feed,
        cursor: PageCursor,
    ) -> Result<oc_model::ports::Page, ProviderError> {
        let request = PageRequest { query, feed, cursor, page_size: 500 };
        self.sage.fetch_page(session, &request).await
    }

    async fn api_requests(&self) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path().starts_with("/v3.1/"))
            .collect()
    }
}

fn app() -> OAuthApp {
    OAuthApp {
        client_id: "cid".into(),
        client_secret: Secret::new("csecret"),
        redirect_uri: "https://app.example/cb".into(),
    }
}

fn contacts(ids: &[&str], next: Option<&str>, total: u64) -> Value {
    json!({
        "$total": total,
        "$page": 1,
        "$next": next,
        "$back": null,
        "$itemsPerPage": 2,
        "$items": ids.iter().map(|id| json!({"id": id, "displayed_as": id, "$path": format!("/contacts/{id}"),
            "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T11:00:00Z"})).collect::<Vec<_>>(),
    })
}

fn token_answer(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": access, "refresh_token": refresh, "token_type": "bearer", "scope": "full_access",
        "expires_in": 300, "refresh_token_expires_in": 2678400, "requested_by_id": "user-1"
    }))
}

const CUSTOMERS: &str =
    "/hubs/finance/customers?where=lastModifiedDate>='2024-01-01T00:00:00Z' and attributes='created_at,updated_at";

fn pairs(r: &Request) -> Vec<(String, String)> {
    r.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

// ---- paging, headers, parameters ----

#[tokio::test]
async fn follows_next_until_null_and_never_stops_on_an_empty_page() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .and(path("/v3.1/contacts"))
        .and(query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(
            &[],
            Some("/contacts?page=2&items_per_page=200"),
            3,
        )))
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3.1/contacts"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(
            &["a", "b"],
            Some("/v3.1/contacts?page=3&items_per_page=200"),
            3,
        )))
        .expect(1)
        .mount(&f.server)
        .await;
    // Sage answers a page past the end with the last page again: only `$next == null` ends the scan.
    Mock::given(method("GET"))
        .and(path("/v3.1/contacts"))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&["c"], None, 3)))
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3.1/contacts"))
        .and(query_param("page", "4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&["c"], None, 3)))
        .expect(0)
        .mount(&f.server)
        .await;
    let query = f.compile(CUSTOMERS);
    let mut cursor = PageCursor::First;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = f.fetch(&session, &query, Feed::Changes, cursor).await.unwrap();
        pages += 1;
        ids.extend(page.records.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        match page.next {
            Some(next) => cursor = PageCursor::Next(next),
            None => break,
        }
    }
    assert_eq!((pages, ids), (3, vec!["a".to_string(), "b".into(), "c".into()]));
    // The filters ride along on every page, also when `$next` does not repeat them.
    for r in f.api_requests().await {
        let p = pairs(&r);
        assert!(p.contains(&("contact_type_id".into(), "CUSTOMER".into())), "{p:?}");
        assert!(p.contains(&("updated_or_created_since".into(), "2024-01-01T00:00:00Z".into())), "{p:?}");
        assert!(p.contains(&("attributes".into(), "created_at,updated_at".into())), "{p:?}");
        assert_eq!(p.iter().filter(|(k, _)| k == "items_per_page").count(), 1, "{p:?}");
    }
}

#[tokio::test]
async fn sends_bearer_accept_and_x_business_and_caps_the_page_size() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-7");
    Mock::given(method("GET"))
        .and(path("/v3.1/contacts"))
        .and(header("authorization", "Bearer good"))
        .and(header("accept", "application/json"))
        .and(header("x-business", "biz-7"))
        .and(query_param("items_per_page", "200"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&["a"], None, 1)))
        .expect(1)
        .mount(&f.server)
        .await;
    let page = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn sends_only_parameters_the_endpoint_declares() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&[], None, 0)))
        .mount(&f.server)
        .await;
    let queries = [
        ("/contacts", f.compile("/hubs/finance/customers?where=lastModifiedDate>'2024-01-01T00:00:00Z' and search='x' and (name like 'A%' or email = 'e')&page=2")),
        ("/sales_invoices", f.compile("/hubs/finance/invoices?where=status_id='PAID' and total_amount > 10&orderBy=date desc")),
        ("/products", f.compile("/hubs/finance/products")),
    ];
    for (_, query) in &queries {
        f.fetch(&session, query, Feed::Changes, PageCursor::First).await.unwrap();
        f.fetch(&session, query, Feed::Deleted { since: t0() }, PageCursor::First).await.unwrap();
    }
    let requests = f.api_requests().await;
    assert_eq!(requests.len(), 6);
    for (i, r) in requests.iter().enumerate() {
        let (sage_path, _) = queries[i / 2];
        assert_eq!(r.url.path(), format!("/v3.1{sage_path}"));
        let e = endpoint(sage_path).unwrap();
        for (k, _) in pairs(r) {
            assert!(e.declares(&k), "{sage_path} does not declare {k}");
        }
    }
    // The deleted feed swaps the lower bound for `deleted_since`, keeps the other filters and asks for the
    // deletion date.
    let deleted = pairs(&requests[1]);
    assert_eq!(
        deleted,
        [
            ("contact_type_id", "CUSTOMER"),
            ("search", "x"),
            ("deleted_since", "2024-05-01T12:00:00Z"),
            ("attributes", "updated_at,created_at,name,email,deleted_at"),
            ("items_per_page", "200"),
            ("page", "2"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let attributes = |r| pairs(r).into_iter().find(|(k, _)| k == "attributes").map(|(_, v)| v);
    assert!(attributes(&requests[0]).is_none_or(|a| !a.contains("deleted_at")), "not in the changes feed");
    assert_eq!(attributes(&requests[5]).as_deref(), Some("updated_at,created_at,deleted_at"));
    assert_eq!(pairs(&requests[2]).iter().find(|(k, _)| k == "sort").unwrap().1, "date:desc");
}

#[tokio::test]
async fn a_resource_without_a_deleted_feed_refuses_the_deleted_feed() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    let query = f.compile("/hubs/finance/sales-quotes");
    let err = f.fetch(&session, &query, Feed::Deleted { since: t0() }, PageCursor::First).await.unwrap_err();
    assert_eq!(err, ProviderError::Other("sales-quotes (/sales_quotes) has no deleted-records feed".into()));
    assert!(f.api_requests().await.is_empty());
}

#[tokio::test]
async fn next_links_to_another_origin_are_refused() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    let err = f
        .fetch(
            &session,
            &f.compile(CUSTOMERS),
            Feed::Changes,
            PageCursor::Next("https://evil.example/v3.1/contacts".into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Other(m) if m.contains("another origin")));
}

// ---- retries ----

#[tokio::test]
async fn a_429_with_retry_after_waits_that_long_then_succeeds() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&["a"], None, 1)))
        .expect(1)
        .mount(&f.server)
        .await;
    let page = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(f.waits(), [Duration::from_secs(7)]);
    let stats = f.sage.stats();
    assert_eq!(stats.responses, BTreeMap::from([(200, 1), (429, 1)]));
    assert_eq!((stats.throttle_waits, stats.throttle_wait), (1, Duration::from_secs(7)));
    assert_eq!((stats.limiter_waits, stats.transport_errors, stats.requests()), (0, 0, 2));
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_with_jitter() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(2)
        .expect(2)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&["a"], None, 1)))
        .expect(1)
        .mount(&f.server)
        .await;
    f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap();
    let waits = f.waits();
    assert_eq!(waits.len(), 2);
    // Base 100 ms, doubled, each drawn in [half, all].
    assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(100), "{waits:?}");
    assert!(waits[1] >= Duration::from_millis(100) && waits[1] <= Duration::from_millis(200), "{waits:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_fails_at_once() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&f.server)
        .await;
    let err = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited { retry_after: Some(Duration::from_secs(3600)) });
    assert!(err.is_transient());
    assert!(f.waits().is_empty());
    let stats = f.sage.stats();
    assert_eq!((stats.responses.get(&429), stats.throttle_waits), (Some(&1), 0));
}

#[tokio::test]
async fn a_503_is_retried_until_the_attempts_run_out() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!([
            {"$severity": "error", "$dataCode": "ServiceUnavailable", "$message": "try later", "$source": ""}
        ])))
        .expect(4)
        .mount(&f.server)
        .await;
    let err = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Api {
            status: 503,
            code: "ServiceUnavailable".into(),
            message: "try later".into(),
            source_field: Some(String::new())
        }
    );
    assert!(err.is_transient());
    let waits = f.waits();
    assert_eq!(waits.len(), 3, "{waits:?}");
    // Server errors are retried but are not throttling.
    assert_eq!((f.sage.stats().responses, f.sage.stats().throttle_waits), (BTreeMap::from([(503, 4)]), 0));
    assert!(waits[2] >= Duration::from_millis(200) && waits[2] <= Duration::from_millis(400), "{waits:?}");
}

#[tokio::test]
async fn transport_failures_are_retried_then_reported() {
    // Nothing listens on the API port of this fixture.
    let f = Fixture::with(|c| {
        c.api_url = "http://127.0.0.1:9/v3.1".into();
        c.connect_timeout = Duration::from_secs(2);
    })
    .await;
    let (session, _) = f.fresh_session("biz-1");
    let err = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transport(_)), "{err:?}");
    assert_eq!(f.waits().len(), 3);
    let stats = f.sage.stats();
    assert_eq!((stats.transport_errors, stats.requests()), (4, 4));
    assert!(stats.responses.is_empty());
}

// ---- errors ----

#[tokio::test]
async fn sage_error_arrays_become_typed_errors() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!([
            {"$severity": "error", "$dataCode": "RecordInvalid", "$message": "is not a date", "$source": "updated_or_created_since"},
            {"$severity": "error", "$dataCode": "RecordInvalid", "$message": "is too long", "$source": "search"}
        ])))
        .expect(1)
        .mount(&f.server)
        .await;
    let err = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Api {
            status: 422,
            code: "RecordInvalid".into(),
            message: "is not a date; is too long".into(),
            source_field: Some("updated_or_created_since".into())
        }
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn skew_is_measured_from_the_date_header() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    let sage_now = t0() + chrono::Duration::seconds(90);
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", sage_now.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
                .set_body_json(contacts(&["a"], None, 1)),
        )
        .mount(&f.server)
        .await;
    assert_eq!(f.sage.skew(), None);
    let page = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap();
    assert_eq!(page.provider_time, Some(sage_now));
    assert_eq!(f.sage.skew(), Some(chrono::Duration::seconds(90)));
}

// ---- tokens ----

#[tokio::test]
async fn a_401_refreshes_once_and_retries_the_same_page_with_the_rotated_token_saved_first() {
    let f = Fixture::new().await;
    let (session, vault) = f.fresh_session("biz-1");
    let log = vault.log.clone();
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer good"))
        .respond_with(Logged {
            log: log.clone(),
            template: ResponseTemplate::new(401).set_body_json(json!([
                {"$severity": "error", "$dataCode": "AuthorizationFailure", "$message": "expired", "$source": ""}
            ])),
        })
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer new-access"))
        .and(query_param("page", "5"))
        .respond_with(Logged {
            log: log.clone(),
            template: ResponseTemplate::new(200).set_body_json(contacts(&["a"], None, 1)),
        })
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=r0"))
        .and(body_string_contains("client_id=cid"))
        .and(body_string_contains("client_secret=csecret"))
        .respond_with(token_answer("new-access", "r1"))
        .expect(1)
        .mount(&f.server)
        .await;
    let query = f.compile(CUSTOMERS);
    let page = f.fetch(&session, &query, Feed::Changes, PageCursor::Next("/contacts?page=5".into())).await.unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(
        entries(&log),
        ["api Bearer good", "lock", "save access=new-access refresh=r1", "api Bearer new-access"]
    );
    let stored = vault.current(ID);
    assert_eq!(stored.refresh_token.expose(), "r1");
    assert_eq!(stored.expires_at, t0() + chrono::Duration::seconds(300));
    assert_eq!(stored.refresh_expires_at, Some(t0() + chrono::Duration::seconds(2_678_400)));
    let stats = f.sage.stats();
    assert_eq!(stats.refreshes, RefreshCounts { ok: 1, ..RefreshCounts::default() });
    assert_eq!(stats.responses, BTreeMap::from([(200, 2), (401, 1)]));
}

#[tokio::test]
async fn a_second_401_after_the_refresh_is_an_error_not_a_loop() {
    let f = Fixture::new().await;
    let (session, _) = f.fresh_session("biz-1");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!([
            {"$severity": "error", "$dataCode": "AuthorizationFailure", "$message": "no", "$source": ""}
        ])))
        .expect(2)
        .mount(&f.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("a2", "r1"))
        .expect(1)
        .mount(&f.server)
        .await;
    let err = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap_err();
    assert!(matches!(err, ProviderError::Api { status: 401, ref code, .. } if code == "AuthorizationFailure"));
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_the_request() {
    let f = Fixture::new().await;
    // 30 s left, less than the 60 s refresh-ahead margin.
    let vault = Arc::new(MemVault::with_tokens(ID, f.tokens("old", "r0", 30)));
    let session = f.session(vault.clone(), "biz-1");
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("new-access", "r1"))
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer new-access"))
        .respond_with(Logged {
            log: vault.log.clone(),
            template: ResponseTemplate::new(200).set_body_json(contacts(&[], None, 0)),
        })
        .expect(1)
        .mount(&f.server)
        .await;
    f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap();
    // Cheap: the save releases the lock (no third write), and the tokens are read once before and once under
    // the lock.
    assert_eq!(entries(&vault.log), ["lock", "save access=new-access refresh=r1", "api Bearer new-access"]);
    assert_eq!(vault.reads.load(Ordering::SeqCst), 2, "reads of the tokens");
    assert!(vault.holder.lock().unwrap().is_none(), "the lock is released");
}

#[tokio::test]
async fn concurrent_refreshes_collapse_into_one_token_request() {
    let f = Fixture::new().await;
    let mut vault = MemVault::with_tokens(ID, f.tokens("expired", "r0", -1));
    vault.gate = Some(Arc::new(tokio::sync::Barrier::new(2)));
    vault.gate_parties = 2;
    let vault = Arc::new(vault);
    let session = f.session(vault.clone(), "biz-1");
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("new-access", "r1"))
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer new-access"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&["a"], None, 1)))
        .expect(2)
        .mount(&f.server)
        .await;
    let query = f.compile(CUSTOMERS);
    let (a, b) = tokio::join!(
        f.fetch(&session, &query, Feed::Changes, PageCursor::First),
        f.fetch(&session, &query, Feed::Changes, PageCursor::First)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(entries(&vault.log).iter().filter(|e| e.starts_with("save")).count(), 1);
    // The refresh made unnecessary by the first one is not counted.
    assert_eq!(f.sage.stats().refreshes, RefreshCounts { ok: 1, ..RefreshCounts::default() });
}

#[tokio::test]
async fn two_nodes_share_one_refresh_through_the_vault_lock() {
    // Node A's refresh is in flight (it holds the lock); node B waits, then finds A's tokens.
    let f = Fixture::new().await;
    let vault = MemVault::with_tokens(ID, f.tokens("expired", "r0", -1));
    vault.foreign_rounds.store(2, Ordering::SeqCst);
    *vault.foreign_tokens.lock().unwrap() = Some(f.tokens("from-node-a", "r1", 300));
    let vault = Arc::new(vault);
    let session = f.session(vault.clone(), "biz-1");
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("never", "never"))
        .expect(0)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer from-node-a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&["a"], None, 1)))
        .expect(1)
        .mount(&f.server)
        .await;
    f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap();
    assert_eq!(entries(&vault.log), ["lock refused", "lock refused"]);
    assert_eq!(f.waits(), [Duration::from_millis(250), Duration::from_millis(250)]);
}

#[tokio::test]
async fn invalid_grant_marks_the_instance_invalid_and_is_not_retried() {
    let f = Fixture::new().await;
    let vault = Arc::new(MemVault::with_tokens(ID, f.tokens("expired", "spent", -1)));
    let session = f.session(vault.clone(), "biz-1");
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": "refresh token revoked"})),
        )
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&f.server).await;
    let err = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap_err();
    assert_eq!(err, ProviderError::ReauthorizationRequired("refresh token revoked".into()));
    assert!(!err.is_transient());
    assert_eq!(entries(&vault.log), ["lock", "invalid", "unlock"]);
    assert!(vault.invalid.lock().unwrap().as_deref().unwrap().contains("invalid_grant"));
    assert!(f.waits().is_empty());
    let stats = f.sage.stats();
    assert_eq!(stats.refreshes, RefreshCounts { invalid_grant: 1, ..RefreshCounts::default() });
    assert_eq!(stats.responses, BTreeMap::from([(400, 1)]));
}

#[tokio::test]
async fn a_lost_refresh_lock_means_the_new_token_is_not_used() {
    let f = Fixture::new().await;
    let vault = Arc::new(MemVault::with_tokens(ID, f.tokens("expired", "r0", -1)));
    let session = f.session(vault.clone(), "biz-1");
    // The lock lapses while the token request is in flight: the store refuses the save.
    struct Steal(Arc<MemVault>);
    impl Respond for Steal {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            *self.0.holder.lock().unwrap() = Some("another node".into());
            token_answer("new-access", "r1")
        }
    }
    Mock::given(method("POST")).and(path("/token")).respond_with(Steal(vault.clone())).expect(1).mount(&f.server).await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&f.server).await;
    let err = f.fetch(&session, &f.compile(CUSTOMERS), Feed::Changes, PageCursor::First).await.unwrap_err();
    assert!(matches!(err, ProviderError::Store(StoreError::LeaseLost(_))), "{err:?}");
    assert_eq!(f.sage.stats().refreshes, RefreshCounts { failed: 1, ..RefreshCounts::default() });
}

// ---- rate limit ----

#[tokio::test]
async fn the_rate_limit_is_per_business_and_shared_by_sessions() {
    // the whole limit is this client's (no share left to other apps)
    let f = Fixture::with(|c| {
        c.rate_limit = RateLimit { requests: 2, per: Duration::from_secs(60) };
        c.budget_share_percent = 100;
    })
    .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contacts(&[], None, 0)))
        .mount(&f.server)
        .await;
    let query = f.compile(CUSTOMERS);
    let (one, _) = f.fresh_session("biz-1");
    let (two, _) = f.fresh_session("biz-1");
    let (other, _) = f.fresh_session("biz-2");
    f.fetch(&one, &query, Feed::Changes, PageCursor::First).await.unwrap();
    f.clock.advance(Duration::from_secs(10));
    f.fetch(&two, &query, Feed::Changes, PageCursor::First).await.unwrap();
    assert_eq!(f.sage.requests_in_window("biz-1"), 2);
    // Another business is not held up.
    f.fetch(&other, &query, Feed::Changes, PageCursor::First).await.unwrap();
    assert!(f.waits().is_empty());
    assert_eq!(f.sage.stats().limiter_waits, 0);
    // The third request of biz-1 waits until the first leaves the window.
    f.fetch(&one, &query, Feed::Changes, PageCursor::First).await.unwrap();
    assert_eq!(f.waits(), [Duration::from_secs(50)]);
    let stats = f.sage.stats();
    assert_eq!((stats.limiter_waits, stats.limiter_wait, stats.throttle_waits), (1, Duration::from_secs(50), 0));
    assert_eq!(stats.responses, BTreeMap::from([(200, 4)]));
    assert_eq!(f.api_requests().await.len(), 4);
}

// ---- OAuth ----

#[tokio::test]
async fn the_authorize_url_keeps_sages_filter_and_adds_the_request() {
    let f = Fixture::with(|c| c.authorize_url = oc_sageone::DEFAULT_AUTHORIZE_URL.into()).await;
    let url = f
        .sage
        .oauth_url(&OAuthUrlRequest {
            client_id: "cid".into(),
            redirect_uri: "https://app.example/cb?x=1".into(),
            state: Some("s t".into()),
            scope: None,
            country: Some("GB".into()),
        })
        .unwrap();
    assert_eq!(
        url,
        "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1&response_type=code&client_id=cid&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1&scope=full_access&state=s+t&country=GB"
    );
    let err = f.sage.oauth_url(&OAuthUrlRequest { client_id: String::new(), ..Default::default() }).unwrap_err();
    assert_eq!(err, ProviderError::Other("the client id (apiKey) is required".into()));
}

#[tokio::test]
async fn exchanging_a_code_gets_tokens_and_the_lead_business() {
    let f = Fixture::new().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=GB%2Fabc"))
        .and(body_string_contains("redirect_uri=https%3A%2F%2Fapp.example%2Fcb"))
        .respond_with(token_answer("a1", "r1").insert_header("Date", "Wed, 01 May 2024 12:00:05 GMT"))
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3.1/businesses/lead"))
        .and(header("authorization", "Bearer a1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "biz-lead", "name": "Lead Ltd", "displayed_as": "Lead Ltd", "address": {"country": {"id": "GB"}}
        })))
        .expect(1)
        .mount(&f.server)
        .await;
    // The code arrives still URL-encoded from the callback: it is sent as Sage issued it.
    let grant = f.sage.exchange_code(&app(), "GB%2Fabc", &Configuration::new()).await.unwrap();
    assert_eq!(grant.tokens.access_token.expose(), "a1");
    assert_eq!(grant.tokens.refresh_token.expose(), "r1");
    assert_eq!(grant.tokens.expires_at, t0() + chrono::Duration::seconds(300));
    assert_eq!(grant.account.id.as_deref(), Some("biz-lead"));
    assert_eq!(grant.account.name.as_deref(), Some("Lead Ltd"));
    assert_eq!(grant.account.extra, json!({"lead": true, "country": "GB", "requested_by_id": "user-1"}));
    assert_eq!(grant.provider_time, Some("2024-05-01T12:00:05Z".parse().unwrap()));
}

#[tokio::test]
async fn exchanging_a_code_for_a_given_business() {
    let f = Fixture::new().await;
    Mock::given(method("POST")).and(path("/token")).respond_with(token_answer("a1", "r1")).mount(&f.server).await;
    Mock::given(method("GET"))
        .and(path("/v3.1/businesses/biz-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "biz-2", "name": "Second"})))
        .expect(1)
        .mount(&f.server)
        .await;
    let grant = f.sage.exchange_code(&app(), "GB/abc", &business("biz-2")).await.unwrap();
    assert_eq!(grant.account.id.as_deref(), Some("biz-2"));
    assert_eq!(grant.account.extra["lead"], json!(false));
    // A business the user cannot reach is Sage's 404.
    Mock::given(method("GET"))
        .and(path("/v3.1/businesses/nope"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!([
            {"$severity": "error", "$dataCode": "RecordNotFound", "$message": "not found", "$source": ""}
        ])))
        .mount(&f.server)
        .await;
    let err = f.sage.exchange_code(&app(), "GB/abc", &business("nope")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Api { status: 404, ref code, .. } if code == "RecordNotFound"));
}

#[tokio::test]
async fn refused_codes_and_apps_are_distinct_errors() {
    let f = Fixture::new().await;
    Mock::given(method("POST"))
        .and(body_string_contains("code=spent"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": "code expired"})),
        )
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("code=other"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})))
        .expect(1)
        .mount(&f.server)
        .await;
    assert_eq!(
        f.sage.exchange_code(&app(), "spent", &Configuration::new()).await.unwrap_err(),
        ProviderError::InvalidCode("code expired".into())
    );
    assert_eq!(
        f.sage.exchange_code(&app(), "other", &Configuration::new()).await.unwrap_err(),
        ProviderError::InvalidClient("invalid_client".into())
    );
}

/// A configuration that asks for the business `id` (`sage.business.id`).
fn business(id: &str) -> Configuration {
    let mut c = Configuration::new();
    c.insert(oc_sageone::keys::BUSINESS_ID, json!(id));
    c
}

// ---- issue 18, item 4: a transient error of the code exchange does not spend the user's code in vain ----

/// The production retry policy: the code exchange is bounded by its own deadline, not by the polls' budget.
async fn exchange_fixture() -> Fixture {
    Fixture::with(|c| c.retry = RetryPolicy::default()).await
}

async fn lead_business(f: &Fixture) {
    Mock::given(method("GET"))
        .and(path("/v3.1/businesses/lead"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "biz-lead", "name": "Lead Ltd"})))
        .mount(&f.server)
        .await;
}

#[tokio::test]
async fn a_code_exchange_throttled_once_is_retried_after_retry_after_and_succeeds() {
    let f = exchange_fixture().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("a1", "r1"))
        .expect(1)
        .mount(&f.server)
        .await;
    lead_business(&f).await;
    let grant = f.sage.exchange_code(&app(), "GB/abc", &Configuration::new()).await.unwrap();
    assert_eq!(grant.tokens.access_token.expose(), "a1");
    assert_eq!(grant.account.id.as_deref(), Some("biz-lead"));
    assert_eq!(f.waits(), vec![Duration::from_secs(1)], "Retry-After honoured");
}

#[tokio::test]
async fn a_code_exchange_throttled_past_its_deadline_fails_within_it_and_says_the_code_may_be_spent() {
    let f = exchange_fixture().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "8"))
        .mount(&f.server)
        .await;
    let err = f.sage.exchange_code(&app(), "GB/abc", &Configuration::new()).await.unwrap_err();
    let waited: Duration = f.waits().iter().sum();
    assert!(waited <= Duration::from_secs(20), "waited {waited:?}: more than the 20 s deadline");
    assert!(f.clock.now() - t0() <= chrono::Duration::seconds(20));
    let message = err.to_string();
    assert!(message.contains("429"), "{message}");
    assert!(message.contains("may be spent") && message.contains("ask for a new code"), "{message}");
    assert!(!err.is_transient() || !matches!(err, ProviderError::RateLimited { .. }), "not a bare 429: {err:?}");
}

#[tokio::test]
async fn a_code_exchange_answered_503_until_the_deadline_says_the_code_may_be_spent() {
    let f = exchange_fixture().await;
    Mock::given(method("POST")).and(path("/token")).respond_with(ResponseTemplate::new(503)).mount(&f.server).await;
    let err = f.sage.exchange_code(&app(), "GB/abc", &Configuration::new()).await.unwrap_err();
    assert!(f.waits().iter().sum::<Duration>() <= Duration::from_secs(20));
    assert!(f.waits().len() >= 2, "retried: {:?}", f.waits());
    let message = err.to_string();
    assert!(message.contains("503") && message.contains("ask for a new code"), "{message}");
}

#[tokio::test]
async fn a_token_endpoint_never_reached_says_the_same_code_can_be_used_again() {
    // a port nothing listens on: every try fails to connect, so the code never reached Sage
    let f = Fixture::with(|c| {
        c.retry = RetryPolicy::default();
        c.token_url = "http://127.0.0.1:9/token".into();
    })
    .await;
    let err = f.sage.exchange_code(&app(), "GB/abc", &Configuration::new()).await.unwrap_err();
    assert!(f.waits().iter().sum::<Duration>() <= Duration::from_secs(20));
    assert!(!f.waits().is_empty(), "connection failures are retried");
    let message = err.to_string();
    assert!(message.contains("retry with the same code"), "{message}");
}

#[tokio::test]
async fn invalid_grant_after_a_throttled_try_says_that_try_may_have_spent_the_code() {
    let f = exchange_fixture().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&f.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&f.server)
        .await;
    let err = f.sage.exchange_code(&app(), "GB/abc", &Configuration::new()).await.unwrap_err();
    let ProviderError::InvalidCode(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("ask for a new code"), "{message}");
}

#[tokio::test]
async fn a_business_lookup_failing_after_the_exchange_says_the_code_is_spent() {
    let f = exchange_fixture().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("a1", "r1"))
        .expect(1)
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3.1/businesses/lead"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .mount(&f.server)
        .await;
    let err = f.sage.exchange_code(&app(), "GB/abc", &Configuration::new()).await.unwrap_err();
    assert!(f.waits().iter().sum::<Duration>() <= Duration::from_secs(20), "{:?}", f.waits());
    let message = err.to_string();
    assert!(message.contains("the code is spent") && message.contains("ask for a new code"), "{message}");
}

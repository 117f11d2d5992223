//! What the hub passthrough asks of the provider, against the Sage simulator: a composite resource (`items`:
//! products, then services) read page by page behind one cursor, one record by id inside the resource's fixed
//! filters, and the interactive lane of the rate limiter — a slot at once from the reserve while polls hold
//! their share, and a fast `RateLimited` with the delay when there is none (nothing sent to Sage then).
//! Time is a `ManualClock` moved by a recording `Pause`: no test sleeps.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use oc_model::config::Configuration;
use oc_model::ports::{
    Clock, CompiledQuery, Feed, FieldNeeds, Lane, ManualClock, OAuthApp, PageCursor, PageRequest, Provider,
    ProviderAccount, ProviderError, RecordRequest, Session, StoreError, TokenSet, TokenVault,
};
use oc_model::{InstanceId, Secret};
use oc_sageone::{InteractiveLane, Pause, RateLimit, SageConfig, SageProvider};
use oc_sagesim::{AppRegistration, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

/// Tokens in memory; refreshing is not exercised here.
#[derive(Default)]
struct Vault(Mutex<HashMap<InstanceId, TokenSet>>);

#[async_trait]
impl TokenVault for Vault {
    async fn tokens(&self, instance: InstanceId) -> Result<Option<TokenSet>, StoreError> {
        Ok(self.0.lock().unwrap().get(&instance).cloned())
    }
    async fn lock_refresh(&self, _: InstanceId, _: &str, _: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn save_refreshed(&self, instance: InstanceId, _: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(instance, tokens.clone());
        Ok(())
    }
    async fn unlock_refresh(&self, _: InstanceId, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn mark_invalid(&self, _: InstanceId, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Moves the manual clock by every wait, and records it.
#[derive(Debug)]
struct Moving {
    clock: Arc<ManualClock>,
    waits: Mutex<Vec<Duration>>,
}

#[async_trait]
impl Pause for Moving {
    async fn pause(&self, d: Duration) {
        self.waits.lock().unwrap().push(d);
        self.clock.advance(d);
    }
}

struct Fixture {
    sim: SimHandle,
    sage: SageProvider,
    pause: Arc<Moving>,
    session: Session,
}

const APP: &str = "hub-test-app";

async fn fixture(tune: impl FnOnce(&mut SageConfig)) -> Fixture {
    let app = AppRegistration::new(APP, "hub-test-secret", "https://app.example/cb");
    let config = SimConfig { customers: 12, apps: vec![app], rate_limit_per_minute: 0, ..SimConfig::default() };
    let sim = Simulator::start(config).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let pause = Arc::new(Moving { clock: clock.clone(), waits: Mutex::new(Vec::new()) });
    let mut config = SageConfig { api_url: sim.api_url(), token_url: sim.token_url(), ..SageConfig::default() };
    tune(&mut config);
    let sage = SageProvider::with_time(config, clock.clone(), pause.clone()).unwrap();
    let granted = sim.issue_tokens(APP).unwrap();
    let vault = Vault::default();
    vault.0.lock().unwrap().insert(
        1,
        TokenSet {
            access_token: Secret::new(granted.access_token),
            refresh_token: Secret::new(granted.refresh_token),
            expires_at: clock.now() + chrono::Duration::seconds(granted.expires_in),
            refresh_expires_at: None,
            scope: Some(granted.scope),
        },
    );
    let session = Session {
        instance_id: 1,
        app: OAuthApp {
            client_id: APP.into(),
            client_secret: Secret::new("hub-test-secret"),
            redirect_uri: "https://app.example/cb".into(),
        },
        account: ProviderAccount { id: Some(sim.lead_business()), name: None, extra: json!({}) },
        configuration: Configuration::new(),
        vault: Arc::new(vault),
        lane: Lane::Background,
    };
    Fixture { sim, sage, pause, session }
}

impl Fixture {
    fn compile(&self, url: &str) -> CompiledQuery {
        self.sage.compile(url, &FieldNeeds::default()).unwrap()
    }

    fn api_requests(&self) -> usize {
        self.sim.requests().iter().filter(|r| r.path.starts_with("/v3.1")).count()
    }

    fn ids(&self, resource: &str) -> BTreeSet<String> {
        self.sim.record_ids(&self.sim.lead_business(), resource).into_iter().collect()
    }

    async fn page(&self, query: &CompiledQuery, cursor: PageCursor, size: u32) -> oc_model::ports::Page {
        let request = PageRequest { query, feed: Feed::Changes, cursor, page_size: size };
        self.sage.fetch_page(&self.session, &request).await.unwrap()
    }

    async fn one(&self, url: &str, id: &str) -> Option<Value> {
        let query = self.compile(url);
        let session = self.session.clone().in_lane(Lane::Interactive);
        self.sage.fetch_one(&session, &RecordRequest { query: &query, id }).await.unwrap()
    }
}

fn id_of(record: &Value) -> String {
    record["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn items_are_products_then_services_read_behind_one_cursor() {
    let f = fixture(|_| {}).await;
    let (products, services) = (f.ids("products"), f.ids("services"));
    assert_eq!((products.len(), services.len()), (8, 5), "the simulator's seed");
    let query = f.compile("/hubs/finance/items?fields=item_code");
    let mut seen = Vec::new();
    let mut cursor = PageCursor::First;
    let mut pages = 0;
    loop {
        let page = f.page(&query, cursor, 3).await;
        pages += 1;
        assert_eq!(page.total, Some(13), "every page reports the sum of the lists' totals");
        assert!(page.records.iter().all(|r| r["item_code"].is_string()), "{:?}", page.records);
        seen.extend(page.records.iter().map(id_of));
        match page.next {
            Some(next) => cursor = PageCursor::Next(next),
            None => break,
        }
        assert!(pages < 10, "the cursor never ends");
    }
    // products 3 + 3 + 2, services 3 + 2
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 13, "every record once: {seen:?}");
    assert_eq!(seen[..8].iter().cloned().collect::<BTreeSet<_>>(), products);
    assert_eq!(seen[8..].iter().cloned().collect::<BTreeSet<_>>(), services);
    // a cursor of another resource's shape is refused, not followed
    let request = PageRequest {
        query: &query,
        feed: Feed::Changes,
        cursor: PageCursor::Next("/products?page=2".into()),
        page_size: 3,
    };
    assert!(matches!(f.sage.fetch_page(&f.session, &request).await, Err(ProviderError::Other(_))));
}

#[tokio::test]
async fn one_record_by_id_inside_the_resource() {
    let f = fixture(|_| {}).await;
    let business = f.sim.lead_business();
    let contacts: Vec<Value> =
        f.ids("contacts").iter().filter_map(|id| f.sim.get_record(&business, "contacts", id)).collect();
    let is = |r: &Value, kind: &str| r["contact_types"].as_array().unwrap().iter().any(|t| t["id"] == kind);
    let customer = contacts.iter().find(|r| is(r, "CUSTOMER")).unwrap();
    let vendor = contacts.iter().find(|r| is(r, "VENDOR")).unwrap();

    let got = f.one("/hubs/finance/customers", &id_of(customer)).await.expect("the customer");
    assert_eq!(got["name"], customer["name"]);
    assert_eq!(got["email"], customer["email"], "every field without fields");
    // fields: those, plus what Sage always returns
    let got = f.one("/hubs/finance/customers?fields=name", &id_of(customer)).await.unwrap();
    let mut keys: Vec<&str> = got.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["$path", "displayed_as", "id", "name"]);
    // a vendor is no customer, but it is a vendor and a contact
    assert_eq!(f.one("/hubs/finance/customers", &id_of(vendor)).await, None);
    assert!(f.one("/hubs/finance/vendors", &id_of(vendor)).await.is_some());
    assert!(f.one("/hubs/finance/contacts", &id_of(vendor)).await.is_some());
    // unknown, and ids that cannot be Sage's (not even asked)
    assert_eq!(f.one("/hubs/finance/customers", "0123456789abcdef0123456789abcdef").await, None);
    let before = f.api_requests();
    assert_eq!(f.one("/hubs/finance/customers", "../businesses").await, None);
    assert_eq!(f.one("/hubs/finance/customers", "").await, None);
    assert_eq!(f.api_requests(), before);
    // a composite resource looks in each of its lists; an alias reads its Sage list
    let service = f.ids("services").into_iter().next().unwrap();
    assert_eq!(f.one("/hubs/finance/items", &service).await.map(|r| id_of(&r)), Some(service));
    let rate = f.sim.create_record(&business, "tax_rates", json!({"name": "Standard 20%", "percentage": 20})).unwrap();
    assert_eq!(
        f.one("/hubs/finance/tax-codes", &id_of(&rate)).await.map(|r| r["name"].clone()),
        Some(json!("Standard 20%"))
    );
    let journal =
        f.sim.create_record(&business, "journals", json!({"reference": "J-1", "description": "accrual"})).unwrap();
    assert!(f.one("/hubs/finance/journal-entries", &id_of(&journal)).await.is_some());
}

#[tokio::test]
async fn interactive_requests_take_the_reserve_and_fail_fast_without_a_slot() {
    // 4 a minute, all of it ocpoll's, a quarter kept for interactive requests: polls get 3
    let f = fixture(|c| {
        c.rate_limit = RateLimit { requests: 4, per: Duration::from_secs(60) };
        c.budget_share_percent = 100;
        c.interactive = InteractiveLane { reserve_percent: 25, ..InteractiveLane::default() };
    })
    .await;
    let query = f.compile("/hubs/finance/products");
    for _ in 0..3 {
        f.page(&query, PageCursor::First, 1).await;
    }
    assert!(f.pause.waits.lock().unwrap().is_empty());
    // the polls' share is held; an interactive request finds the reserved slot at once
    let interactive = f.session.clone().in_lane(Lane::Interactive);
    let request = PageRequest { query: &query, feed: Feed::Changes, cursor: PageCursor::First, page_size: 1 };
    assert_eq!(f.sage.fetch_page(&interactive, &request).await.unwrap().records.len(), 1);
    assert!(f.pause.waits.lock().unwrap().is_empty(), "it did not wait");
    // the window is full: the next one answers RateLimited at once, with the time until a slot frees, and
    // sends nothing to Sage
    let sent = f.api_requests();
    match f.sage.fetch_page(&interactive, &request).await {
        Err(ProviderError::RateLimited { retry_after: Some(d) }) => {
            assert!(d > Duration::from_secs(55) && d <= Duration::from_secs(60), "{d:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(f.pause.waits.lock().unwrap().is_empty(), "failing was immediate");
    assert_eq!(f.api_requests(), sent);
    // a background request waits for the first slot of its share instead
    f.page(&query, PageCursor::First, 1).await;
    let waits = f.pause.waits.lock().unwrap().clone();
    assert!(waits.iter().sum::<Duration>() >= Duration::from_secs(55), "{waits:?}");
}

#[tokio::test]
async fn sage_throttling_an_interactive_request_is_reported_not_waited_out() {
    let f = fixture(|_| {}).await;
    let query = f.compile("/hubs/finance/products");
    let interactive = f.session.clone().in_lane(Lane::Interactive);
    let request = PageRequest { query: &query, feed: Feed::Changes, cursor: PageCursor::First, page_size: 1 };
    // Sage asks for 30 s: more than the interactive lane's 2 s of retrying
    f.sim.throttle_next(1, Some(30));
    match f.sage.fetch_page(&interactive, &request).await {
        Err(ProviderError::RateLimited { retry_after }) => assert_eq!(retry_after, Some(Duration::from_secs(30))),
        other => panic!("{other:?}"),
    }
    assert!(f.pause.waits.lock().unwrap().is_empty());
    // a short one is retried within the lane's budget
    f.sim.throttle_next(1, Some(1));
    assert!(f.sage.fetch_page(&interactive, &request).await.is_ok());
    assert_eq!(*f.pause.waits.lock().unwrap(), [Duration::from_secs(1)]);
    // a poll waits Sage's 30 s out
    f.sim.throttle_next(1, Some(30));
    assert!(f.sage.fetch_page(&f.session, &request).await.is_ok());
    assert_eq!(f.pause.waits.lock().unwrap().last(), Some(&Duration::from_secs(30)));
}

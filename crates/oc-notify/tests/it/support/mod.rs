//! A real store (oc-store's SQLite, or PostgreSQL when `OCPOLL_TEST_DATABASE_URL` is set) with an organization,
//! instances whose callbacks point at local receivers, and events committed the way the poller commits them.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::event::{Event, EventType, event_id};
use oc_model::instance::ElementInfo;
use oc_model::ports::{
    AccountStore, CompiledQuery, FieldNeeds, Grant, Instance, InstanceStore, ManualClock, NewInstance, NewOrganization,
    OAuthApp, OAuthUrlRequest, Page, PageRequest, PollCommit, PollOutcome, PollStatus, PollingStore, Provider,
    ProviderAccount, ProviderError, ProviderSpec, Providers, QueryError, Session, TokenSet,
};
use oc_model::{Configuration, InstanceId, Secret};
use serde_json::json;

use oc_store::SqlStore;
use oc_store::testing::TestStore;

pub const RESOURCE: &str = "customers";
/// The element of the instances, and the hub its provider says it is in.
pub const ELEMENT: &str = "books";
pub const HUB: &str = "ledgers";

/// A provider that only describes itself: the dispatcher asks the registry for an element's hub, nothing more.
#[derive(Debug)]
struct Described(ProviderSpec);

#[async_trait]
impl Provider for Described {
    fn spec(&self) -> &ProviderSpec {
        &self.0
    }
    fn oauth_url(&self, _: &OAuthUrlRequest) -> Result<String, ProviderError> {
        Err(ProviderError::Other("not in these tests".into()))
    }
    async fn exchange_code(&self, _: &OAuthApp, _: &str, _: &Configuration) -> Result<Grant, ProviderError> {
        Err(ProviderError::Other("not in these tests".into()))
    }
    fn compile(&self, _: &str, _: &FieldNeeds) -> Result<CompiledQuery, QueryError> {
        Err(QueryError(Vec::new()))
    }
    async fn fetch_page(&self, _: &Session, _: &PageRequest<'_>) -> Result<Page, ProviderError> {
        Err(ProviderError::Other("not in these tests".into()))
    }
}

/// The registry of the tests: the element [`ELEMENT`] in the hub [`HUB`].
pub fn providers() -> Providers {
    let element = ElementInfo { id: 9, key: ELEMENT.into(), name: "Books".into(), hub: HUB.into() };
    let spec =
        ProviderSpec { element, keys: &[], resources: vec![], deleted_date_field: "gone".into(), max_page_size: 100 };
    Providers::new().with(Arc::new(Described(spec)))
}

pub struct World {
    pub store: Arc<SqlStore>,
    _test: TestStore,
    pub clock: Arc<ManualClock>,
    pub org: i64,
    pub user: i64,
}

pub fn t0() -> DateTime<Utc> {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

impl World {
    /// On a fresh SQLite database.
    pub async fn sqlite() -> World {
        World::on(oc_store::testing::sqlite().await).await
    }

    /// On a fresh PostgreSQL schema, when `OCPOLL_TEST_DATABASE_URL` is set.
    pub async fn postgres() -> Option<World> {
        Some(World::on(oc_store::testing::postgres().await?).await)
    }

    async fn on(test: TestStore) -> World {
        let store = test.store();
        let clock = Arc::new(ManualClock::new(t0()));
        let new = NewOrganization {
            name: "acme".into(),
            org_secret: "org-secret".into(),
            user_secret: "user-secret".into(),
            now: t0(),
        };
        let (org, principal) = store.create_organization(&new).await.unwrap();
        World { store, _test: test, clock, org: org.id, user: principal.user_id }
    }

    /// The dispatcher's ports on this world's store and clock, delivering with `notifier`.
    pub fn ports<S: ?Sized>(
        &self,
        store: Arc<S>,
        notifier: Arc<dyn oc_model::ports::Notifier>,
    ) -> oc_notify::DeliveryPorts<S> {
        oc_notify::DeliveryPorts {
            store,
            notifier,
            clock: self.clock.clone(),
            providers: providers(),
            telemetry: Arc::new(oc_model::ports::NoTelemetry),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        use oc_model::ports::Clock;
        self.clock.now()
    }

    /// An instance notifying `callback`, signing with `key` when given.
    pub async fn instance(&self, name: &str, callback: &str, key: Option<&str>) -> Instance {
        let mut configuration = Configuration::new();
        configuration.insert("oauth.api.key", json!("client"));
        configuration.insert("oauth.api.secret", json!("secret"));
        configuration.insert("oauth.callback.url", json!("https://example.com/oauth"));
        configuration.insert("event.notification.enabled", json!("true"));
        configuration.insert("event.notification.callback.url", json!(callback));
        if let Some(key) = key {
            configuration.insert("event.notification.signature.key", json!(key));
        }
        configuration.insert(
            "event.poller.configuration",
            json!({RESOURCE: {"url": "/hubs/finance/customers", "idField": "id"}}),
        );
        let new = NewInstance {
            org_id: self.org,
            user_id: self.user,
            name: name.into(),
            element_key: ELEMENT.into(),
            tags: vec!["Test".into()],
            configuration,
            secret_keys: Default::default(),
            account: ProviderAccount::default(),
            tokens: TokenSet {
                access_token: Secret::new("access"),
                refresh_token: Secret::new("refresh"),
                expires_at: t0() + chrono::Duration::hours(1),
                refresh_expires_at: None,
                scope: None,
            },
            token: format!("element-token-{name}"),
            now: self.now(),
            poll_start: t0(),
        };
        self.store.create_instance(&new).await.unwrap()
    }

    /// Commits `events` for `instance` as one poll would.
    pub async fn commit(&self, instance: InstanceId, events: Vec<Event>) {
        let now = self.now();
        let claims = self.store.claim_polls("test-poller", now, 1000, Duration::from_secs(60)).await.unwrap();
        let mut events = Some(events);
        for claim in claims {
            if claim.instance_id() == instance && claim.resource == RESOURCE {
                let outcome = PollOutcome { pages: 1, ..PollOutcome::new(now, now, PollStatus::Ok, None) };
                let commit = PollCommit {
                    events: events.take().unwrap_or_default(),
                    seen: vec![],
                    watermark: Some(now),
                    skew_ms: 0,
                    outcome,
                    next_run_at: now,
                    reconciled: None,
                    trace_parent: None,
                };
                self.store.commit_poll(instance, RESOURCE, &claim.lease, &commit).await.unwrap();
            } else {
                self.store.release_poll(claim.instance_id(), &claim.resource, &claim.lease).await.unwrap();
            }
        }
        assert!(events.is_none(), "instance {instance} had no due poll job");
    }
}

/// Change `version` of object `object` of `instance`.
pub fn event(instance: InstanceId, object: &str, version: u64) -> Event {
    let date = t0() + chrono::Duration::seconds(version as i64);
    let event_type = if version == 0 { EventType::Created } else { EventType::Updated };
    Event {
        event_id: event_id(instance, RESOURCE, object, event_type, date, version),
        event_type,
        object_type: RESOURCE.into(),
        object_id: object.into(),
        date,
        record: json!({"id": object, "version": version, "updated_at": date}),
    }
}

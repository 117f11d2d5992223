//! A real store (oc-store's SQLite, or PostgreSQL when `OCPOLL_TEST_DATABASE_URL` is set) with an organization,
//! instances whose callbacks point at local receivers, and events committed the way the poller commits them.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::event::{Event, EventType, event_id};
use oc_model::ports::{
    AccountStore, Instance, InstanceStore, ManualClock, NewInstance, NewOrganization, PollCommit, PollOutcome,
    PollStatus, PollStore, ProviderAccount, TokenSet,
};
use oc_model::{Configuration, InstanceId, Secret};
use serde_json::json;

use oc_store::SqlStore;
use oc_store::testing::TestStore;

pub const RESOURCE: &str = "customers";

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
            element_key: "sageone".into(),
            tags: vec!["Test".into()],
            configuration,
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
            if claim.instance_id == instance && claim.resource == RESOURCE {
                let outcome = PollOutcome {
                    started_at: now,
                    finished_at: now,
                    status: PollStatus::Ok,
                    window_start: None,
                    pages: 1,
                    records: 0,
                    created: 0,
                    updated: 0,
                    deleted: 0,
                    warnings: vec![],
                    error: None,
                };
                let commit = PollCommit {
                    events: events.take().unwrap_or_default(),
                    seen: vec![],
                    watermark: Some(now),
                    skew_ms: 0,
                    outcome,
                    next_run_at: now,
                };
                self.store.commit_poll(instance, RESOURCE, &claim.lease, &commit).await.unwrap();
            } else {
                self.store.release_poll(claim.instance_id, &claim.resource, &claim.lease).await.unwrap();
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

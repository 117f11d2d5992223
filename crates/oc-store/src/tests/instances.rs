//! Instances: round trip, secrets at rest, updates and the poll jobs following the configuration.

use super::prelude::*;
use oc_model::config::Configuration;
use oc_model::ports::{InstanceUpdate, PollFailure, PollStatus, ProviderAccount, StoreError, TokenSet};
use oc_model::secret::Secret;
use serde_json::json;

use super::{TTL, at, config, customers, on_both, open, outcome, setup, t0};
use oc_model::config::{KeySpec, SecretKeys, ValueKind};

use crate::Backend;
use crate::db::args;

const PROVIDER_KEYS: &[KeySpec] = &[
    KeySpec { key: "app.subscription.key", kind: ValueKind::Text, secret: true, description: "a provider secret" },
    KeySpec { key: "app.signing.secret", kind: ValueKind::Text, secret: true, description: "another" },
];

async fn instance_round_trip(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, _) = setup(&s, customers()).await;
    let mut configuration = customers();
    configuration.insert("app.subscription.key", json!(12345));
    configuration.insert("app.signing.secret", serde_json::Value::Null);
    configuration.insert("zz.unknown", json!({"kept": [1, 2]}));
    let mut new = crate::testing::new_instance(owner, configuration.clone(), at(5));
    // a provider's own secret keys, a number and a null among them
    new.secret_keys = SecretKeys::with(PROVIDER_KEYS);
    new.name = "API_Polling".into();
    new.tags = vec!["a".into(), "b".into()];
    new.account =
        ProviderAccount { id: Some("biz-1".into()), name: Some("Biz".into()), extra: json!({"country": "GB"}) };
    new.poll_start = "2024-01-01T00:00:03.123456789Z".parse().unwrap();
    let created = s.create_instance(&new).await.unwrap();
    assert_eq!(created.configuration, configuration, "secrets come back in clear, order kept");
    let mut conn = s.pools.read().await.unwrap();
    let public = conn.c().one("SELECT configuration FROM instances WHERE id = $1", args![created.id]).await.unwrap();
    let public = public.text("configuration").unwrap();
    assert!(!public.contains("12345") && public.contains("\"app.subscription.key\":null"), "{public}");
    drop(conn);
    assert_eq!(
        created.configuration.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        configuration.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    assert_eq!((created.name.as_str(), created.element_key.as_str()), ("API_Polling", crate::testing::TEST_ELEMENT));
    assert_eq!(created.tags, new.tags);
    assert_eq!(created.account, new.account);
    assert_eq!((created.created_at, created.updated_at, created.poll_start), (at(5), at(5), new.poll_start));
    assert!(created.valid && !created.disabled && created.invalid_reason.is_none());
    assert_eq!(s.instance(owner.org_id, created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(s.instance_by_id(created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(s.instance(owner.org_id + 1000, created.id).await.unwrap(), None, "another organization's");
    assert_eq!(s.tokens(created.id).await.unwrap(), Some(new.tokens.clone()));
}

async fn secrets_are_not_stored_in_clear(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, _) = setup(&s, Configuration::new()).await;
    let mut new = crate::testing::new_instance(owner, customers(), t0());
    new.tokens.access_token = Secret::new("access-7c4a8d09ca3762af");
    new.tokens.refresh_token = Secret::new("refresh-e10adc3949ba59ab");
    new.token = "element-5f4dcc3b5aa765d6".into();
    let instance = s.create_instance(&new).await.unwrap();
    let secrets = [
        "client-secret-d41d8cd98f",
        "signature-key-8f00b204e9",
        "access-7c4a8d09ca3762af",
        "refresh-e10adc3949ba59ab",
        "element-5f4dcc3b5aa765d6",
    ];
    let store = t.store();
    let mut conn = store.pools.read().await.unwrap();
    let mut stored: Vec<Vec<u8>> = Vec::new();
    for r in
        conn.c().all("SELECT configuration, account, config_secrets, token_hash FROM instances", args![]).await.unwrap()
    {
        stored.push(r.text("configuration").unwrap().into_bytes());
        stored.push(r.text("account").unwrap().into_bytes());
        stored.push(r.opt_bytes("config_secrets").unwrap().unwrap_or_default());
        stored.push(r.opt_bytes("token_hash").unwrap().unwrap_or_default());
    }
    for r in conn.c().all("SELECT access_token, refresh_token FROM instance_tokens", args![]).await.unwrap() {
        stored.push(r.bytes("access_token").unwrap());
        stored.push(r.bytes("refresh_token").unwrap());
    }
    drop(conn);
    if b == Backend::Sqlite {
        // the database files themselves, WAL included
        let path = t.options().url.trim_start_matches("sqlite://").to_string();
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                stored.push(bytes);
            }
        }
    }
    for secret in secrets {
        for bytes in &stored {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} stored in clear");
        }
    }
    // and they still come back
    let back = s.instance_by_id(instance.id).await.unwrap().unwrap();
    assert_eq!(back.configuration.api_secret().unwrap().expose(), "client-secret-d41d8cd98f");
    assert_eq!(s.tokens(instance.id).await.unwrap().unwrap().refresh_token.expose(), "refresh-e10adc3949ba59ab");
}

async fn list_by_tags(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, first) = setup(&s, customers()).await;
    let mut ids = vec![first.id];
    for tags in [vec!["x"], vec!["x", "y"], vec!["y"]] {
        let mut new = crate::testing::new_instance(owner, customers(), t0());
        new.tags = tags.into_iter().map(String::from).collect();
        ids.push(s.create_instance(&new).await.unwrap().id);
    }
    setup(&s, customers()).await; // another organization's
    let check = |tags: &'static [&'static str], expected: Vec<i64>| {
        let s = s.clone();
        async move {
            let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
            let got: Vec<i64> = s.list_instances(owner.org_id, &tags).await.unwrap().iter().map(|i| i.id).collect();
            assert_eq!(got, expected, "{tags:?}");
        }
    };
    check(&[], ids.clone()).await;
    check(&["x"], vec![ids[1], ids[2]]).await;
    check(&["x", "y"], vec![ids[2]]).await;
    check(&["z"], vec![]).await;
}

async fn updates_and_jobs_follow_the_configuration(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let two = config(&[("customers", "/hubs/finance/customers"), ("vendors", "/hubs/finance/vendors")], "1", true);
    let (owner, inst) = setup(&s, two.clone()).await;
    // run both jobs once: next run at t0 + 60 s
    for c in s.claim_polls("n", t0(), 10, TTL).await.unwrap() {
        s.commit_poll(inst.id, &c.resource, &c.lease, &super::commit(vec![], Some(t0()), t0())).await.unwrap();
    }
    let due_at = |now| {
        let s = s.clone();
        async move {
            let claims = s.claim_polls("probe", now, 10, TTL).await.unwrap();
            for c in &claims {
                s.release_poll(c.instance_id(), &c.resource, &c.lease).await.unwrap();
            }
            let mut r: Vec<String> = claims.into_iter().map(|c| c.resource).collect();
            r.sort();
            r
        }
    };
    assert!(due_at(at(10)).await.is_empty());

    // the vendors URL changes, invoices is added, customers is unchanged
    let changed = config(
        &[
            ("customers", "/hubs/finance/customers"),
            ("vendors", "/hubs/finance/vendors?where=x='1'"),
            ("invoices", "/hubs/finance/invoices"),
        ],
        "1",
        true,
    );
    let update = InstanceUpdate {
        name: Some("renamed".into()),
        tags: Some(vec!["t".into()]),
        configuration: Some(changed.clone()),
        secret_keys: Default::default(),
        reenable_notifications: false,
        authorization: None,
        now: at(10),
    };
    let updated = s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.tags.clone(), updated.updated_at),
        ("renamed", vec!["t".to_string()], at(10))
    );
    assert_eq!(updated.configuration, changed);
    assert_eq!(due_at(at(10)).await, ["invoices", "vendors"]);
    // a resource added later starts its watermark at the time of the change (same clock offset as creation)
    let invoices = s.claim_polls("n", at(10), 10, TTL).await.unwrap();
    let invoices = invoices.iter().find(|c| c.resource == "invoices").unwrap();
    assert_eq!(invoices.job_created_at, at(10));
    for c in s.claim_polls("n", at(10), 10, TTL).await.unwrap() {
        s.release_poll(c.instance_id(), &c.resource, &c.lease).await.unwrap();
    }
    s.release_poll(inst.id, "invoices", &invoices.lease).await.unwrap();

    // an interval change makes every job due at once; a removed resource loses its job
    let slower = config(&[("customers", "/hubs/finance/customers"), ("invoices", "/hubs/finance/invoices")], "5", true);
    let update = InstanceUpdate { configuration: Some(slower), now: at(20), ..Default::default() };
    s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    assert_eq!(due_at(at(20)).await, ["customers", "invoices"]);
    assert_eq!(s.poll_state(inst.id, "vendors").await.unwrap(), None);
    assert!(s.poll_state(inst.id, "customers").await.unwrap().unwrap().watermark.is_some(), "state kept");

    // an invalid configuration is refused and changes nothing
    let mut bad = customers();
    bad.insert("event.poller.refresh_interval", json!("soon"));
    let update = InstanceUpdate { configuration: Some(bad), now: at(30), ..Default::default() };
    let err = s.update_instance(owner.org_id, inst.id, &update).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // unknown or foreign instances
    let update = InstanceUpdate { name: Some("x".into()), now: at(30), ..Default::default() };
    assert!(matches!(s.update_instance(owner.org_id + 99, inst.id, &update).await, Err(StoreError::NotFound(_))));
    assert_eq!(s.instance(owner.org_id, inst.id).await.unwrap().unwrap().name, "renamed");
}

async fn validity_and_switches(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let claimable = |now| {
        let s = s.clone();
        async move {
            let claims = s.claim_polls("probe", now, 10, TTL).await.unwrap();
            for c in &claims {
                s.release_poll(c.instance_id(), &c.resource, &c.lease).await.unwrap();
            }
            !claims.is_empty()
        }
    };
    assert!(claimable(t0()).await);

    s.mark_invalid(inst.id, "re-authorization required").await.unwrap();
    let i = s.instance(owner.org_id, inst.id).await.unwrap().unwrap();
    assert_eq!((i.valid, i.invalid_reason.as_deref()), (false, Some("re-authorization required")));
    assert!(!claimable(t0()).await, "invalid instances are not polled");
    let tokens = TokenSet {
        access_token: Secret::new("new-access"),
        refresh_token: Secret::new("new-refresh"),
        expires_at: at(3600),
        refresh_expires_at: Some(at(86400)),
        scope: Some("full_access".into()),
    };
    let account = ProviderAccount { id: Some("biz-2".into()), ..Default::default() };
    let update =
        InstanceUpdate { authorization: Some((tokens.clone(), account.clone())), now: at(1), ..Default::default() };
    let i = s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    assert_eq!((i.valid, i.invalid_reason, i.account), (true, None, account));
    assert_eq!(s.tokens(inst.id).await.unwrap(), Some(tokens));
    assert!(claimable(t0()).await);

    let i = s.set_disabled(owner.org_id, inst.id, true, at(2)).await.unwrap();
    assert!(i.disabled && i.updated_at == at(2));
    assert!(!claimable(t0()).await, "disabled instances are not polled");
    s.set_disabled(owner.org_id, inst.id, false, at(3)).await.unwrap();
    assert!(claimable(t0()).await);
    assert!(matches!(s.set_disabled(owner.org_id + 7, inst.id, true, at(3)).await, Err(StoreError::NotFound(_))));

    let off = config(&[("customers", "/hubs/finance/customers")], "1", false);
    let update = InstanceUpdate { configuration: Some(off), now: at(4), ..Default::default() };
    s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    assert!(!claimable(t0()).await, "instances with notifications off are not polled");

    // 410 switch-off: kept through unrelated changes, cleared when notifications are switched back on
    s.set_notifications_disabled(inst.id, Some("410 Gone from https://example.com/hook")).await.unwrap();
    let update = InstanceUpdate { configuration: Some(customers()), now: at(5), ..Default::default() };
    let i = s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    assert_eq!(i.notifications_disabled_reason, None, "re-enabling clears the 410 switch-off");
    s.set_notifications_disabled(inst.id, Some("410 Gone")).await.unwrap();
    let update =
        InstanceUpdate { name: Some("n".into()), configuration: Some(customers()), now: at(6), ..Default::default() };
    let i = s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    assert_eq!(i.notifications_disabled_reason.as_deref(), Some("410 Gone"), "same callback, still gone");
    let mut moved = customers();
    moved.insert("event.notification.callback.url", json!("https://example.com/new-hook"));
    let update = InstanceUpdate { configuration: Some(moved), now: at(7), ..Default::default() };
    let i = s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    assert_eq!(i.notifications_disabled_reason, None, "a new callback clears the 410 switch-off");
    assert!(matches!(s.set_notifications_disabled(987654, None).await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.mark_invalid(987654, "x").await, Err(StoreError::NotFound(_))));
}

/// A re-authorization makes the jobs due at once: the backoff scheduled by the failed polls (the one that found
/// the grant revoked included) does not delay the first poll with the new grant.
async fn reauthorization_makes_the_jobs_due_at_once(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let claim = s.claim_polls("node", at(1), 10, TTL).await.unwrap().pop().expect("a due job");
    let failure = PollFailure { outcome: outcome(PollStatus::ReauthorizationRequired, at(2)), next_run_at: at(3600) };
    s.abandon_poll(inst.id, "customers", &claim.lease, &failure).await.unwrap();
    s.mark_invalid(inst.id, "re-authorization required").await.unwrap();
    let tokens = TokenSet {
        access_token: Secret::new("new-access"),
        refresh_token: Secret::new("new-refresh"),
        expires_at: at(3600),
        refresh_expires_at: None,
        scope: None,
    };
    let update =
        InstanceUpdate { authorization: Some((tokens, ProviderAccount::default())), now: at(10), ..Default::default() };
    s.update_instance(owner.org_id, inst.id, &update).await.unwrap();
    let claims = s.claim_polls("node", at(10), 10, TTL).await.unwrap();
    assert_eq!(claims.len(), 1, "due at the re-authorization, not at the backoff");
    assert_eq!(claims[0].state.consecutive_failures, 0);
}

/// Migration 4 renames the account fields written by earlier versions (`business_id`, `business_name`).
async fn accounts_of_earlier_versions_are_renamed(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, instance) = setup(&s, customers()).await;
    let legacy = r#"{"business_id":"biz-9","business_name":"Old Ltd","extra":{"country":"GB"}}"#;
    let mut tx = s.pools.write().await.unwrap();
    tx.c().exec("UPDATE instances SET account = $2 WHERE id = $1", args![instance.id, legacy]).await.unwrap();
    let migration = match b {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0004_neutral_account.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0004_neutral_account.sql"),
    };
    tx.c().exec(migration, args![]).await.unwrap();
    tx.commit().await.unwrap();
    let back = s.instance(owner.org_id, instance.id).await.unwrap().unwrap();
    assert_eq!(
        back.account,
        ProviderAccount { id: Some("biz-9".into()), name: Some("Old Ltd".into()), extra: json!({"country": "GB"}) }
    );
}

on_both!(
    accounts_of_earlier_versions_are_renamed,
    reauthorization_makes_the_jobs_due_at_once,
    instance_round_trip,
    secrets_are_not_stored_in_clear,
    list_by_tags,
    updates_and_jobs_follow_the_configuration,
    validity_and_switches,
);

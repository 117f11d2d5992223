//! The token vault: sealed tokens and the refresh lock, driven by a manual clock.

use super::prelude::*;
use std::sync::Arc;
use std::time::Duration;

use oc_model::ports::{ManualClock, StoreError, TokenSet};
use oc_model::secret::Secret;

use super::{at, customers, on_both, setup, t0};
use crate::Backend;

async fn refresh_lock_is_single_flight(b: Backend) {
    let clock = Arc::new(ManualClock::new(t0()));
    let Some(t) = crate::testing::store(b, clock.clone()).await else { return };
    let s = t.store();
    let other = t.reopen(|o| o.clock = clock.clone()).await.unwrap();
    let (_, inst) = setup(&s, customers()).await;
    let ttl = Duration::from_secs(30);
    assert!(s.lock_refresh(inst.id, "node-a", ttl).await.unwrap());
    assert!(!other.lock_refresh(inst.id, "node-b", ttl).await.unwrap(), "held by node-a");
    assert!(s.lock_refresh(inst.id, "node-a", ttl).await.unwrap(), "the holder may take it again");
    let rotated = TokenSet {
        access_token: Secret::new("access-2"),
        refresh_token: Secret::new("refresh-2"),
        expires_at: at(300),
        refresh_expires_at: Some("2024-02-01T00:00:00.5Z".parse().unwrap()),
        scope: Some("full_access".into()),
    };
    let refused = other.save_refreshed(inst.id, "node-b", &rotated).await;
    assert!(matches!(refused, Err(StoreError::LeaseLost(_))), "{refused:?}");
    s.save_refreshed(inst.id, "node-a", &rotated).await.unwrap();
    assert_eq!(other.tokens(inst.id).await.unwrap(), Some(rotated.clone()), "persisted for every node");
    // the save released the lock in the same write: no unlock needed, and no second save without the lock
    assert!(other.lock_refresh(inst.id, "node-b", ttl).await.unwrap(), "the save released node-a's lock");
    let again = s.save_refreshed(inst.id, "node-a", &rotated).await;
    assert!(matches!(again, Err(StoreError::LeaseLost(_))), "a save needs the lock: {again:?}");
    other.unlock_refresh(inst.id, "node-b").await.unwrap();
    assert!(s.lock_refresh(inst.id, "node-a", ttl).await.unwrap());

    // node-a stalls past the lock's expiry: node-b takes it, node-a can no longer save
    clock.advance(Duration::from_secs(31));
    assert!(other.lock_refresh(inst.id, "node-b", ttl).await.unwrap(), "an expired lock is taken over");
    let stale = TokenSet { refresh_token: Secret::new("refresh-stale"), ..rotated.clone() };
    assert!(matches!(s.save_refreshed(inst.id, "node-a", &stale).await, Err(StoreError::LeaseLost(_))));
    s.unlock_refresh(inst.id, "node-a").await.unwrap(); // not the holder: nothing happens
    assert!(!s.lock_refresh(inst.id, "node-a", ttl).await.unwrap());
    other.unlock_refresh(inst.id, "node-b").await.unwrap();
    assert!(s.lock_refresh(inst.id, "node-a", ttl).await.unwrap());
    assert_eq!(s.tokens(inst.id).await.unwrap(), Some(rotated));

    // a lock held past its expiry cannot save even when nobody took it over
    clock.advance(Duration::from_secs(30));
    assert!(matches!(s.save_refreshed(inst.id, "node-a", &stale).await, Err(StoreError::LeaseLost(_))));

    assert!(matches!(s.lock_refresh(424242, "node-a", ttl).await, Err(StoreError::NotFound(_))));
    assert_eq!(s.tokens(424242).await.unwrap(), None);
    assert!(s.instance_by_id(inst.id).await.unwrap().is_some());
}

on_both!(refresh_lock_is_single_flight);

//! Organizations, users and authentication.

use super::prelude::*;
use oc_model::ports::{NewOrganization, StoreError};

use super::{customers, on_both, open, setup, t0};
use crate::Backend;

fn new_org(org_secret: &str, user_secret: &str) -> NewOrganization {
    NewOrganization { name: "acme".into(), org_secret: org_secret.into(), user_secret: user_secret.into(), now: t0() }
}

async fn organizations_and_authentication(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (org, p) = s.create_organization(&new_org("org-secret-1", "user-secret-1")).await.unwrap();
    assert_eq!((org.name.as_str(), org.created_at, p.org_id), ("acme", t0(), org.id));
    let check = |user: &'static str, orgs: &'static str, expected| {
        let s = s.clone();
        async move { assert_eq!(s.authenticate(user, orgs).await.unwrap(), expected, "{user} {orgs}") }
    };
    check("user-secret-1", "org-secret-1", Some(p)).await;
    check("user-secret-1", "org-secret-2", None).await;
    check("user-secret-2", "org-secret-1", None).await;
    check("", "", None).await;
    assert_eq!(s.authenticate_user("user-secret-1").await.unwrap(), Some(p));
    assert_eq!(s.authenticate_user("user-secret-2").await.unwrap(), None);

    let dup = s.create_organization(&new_org("org-secret-1", "user-secret-9")).await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(ref m) if m.contains("organization secret")), "{dup}");
    let dup = s.create_organization(&new_org("org-secret-9", "user-secret-1")).await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(ref m) if m.contains("user secret")), "{dup}");
    // the failed creation left nothing behind
    check("user-secret-9", "org-secret-1", None).await;
    assert!(s.create_organization(&new_org("org-secret-9", "user-secret-9")).await.is_ok());
}

async fn ensure_organization_is_idempotent(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let first = s.ensure_organization(&new_org("boot-org", "boot-user")).await.unwrap();
    let again = s.ensure_organization(&new_org("boot-org", "boot-user")).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(s.authenticate("boot-user", "boot-org").await.unwrap(), Some(first.1));
    // a second user of the same organization
    let (org2, p2) = s.ensure_organization(&new_org("boot-org", "boot-user-2")).await.unwrap();
    assert_eq!(org2.id, first.0.id);
    assert_ne!(p2.user_id, first.1.user_id);
    // a user secret of another organization is refused
    s.create_organization(&new_org("other-org", "other-user")).await.unwrap();
    let err = s.ensure_organization(&new_org("boot-org", "other-user")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

async fn concurrent_bootstrap_makes_one_organization(b: Backend) {
    let Some(t) = open(b).await else { return };
    let other = t.another_handle().await;
    let s = t.store();
    let new = new_org("boot-org", "boot-user");
    let (a, b2) = tokio::join!(s.ensure_organization(&new), other.ensure_organization(&new));
    assert_eq!(a.unwrap(), b2.unwrap());
}

async fn instance_tokens_authenticate(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, owner) = crate::testing::organization(&*s).await;
    let mut new = crate::testing::new_instance(owner, customers(), t0());
    new.token = "element-token-123".into();
    let instance = s.create_instance(&new).await.unwrap();
    assert_eq!(s.authenticate_instance("element-token-123").await.unwrap(), Some((owner, instance.id)));
    assert_eq!(s.authenticate_instance("element-token-124").await.unwrap(), None);
    assert_eq!(s.authenticate_instance("").await.unwrap(), None);
    // the same token twice is a conflict
    let err = s.create_instance(&new).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let (_, stranger) = setup(&s, customers()).await;
    assert_ne!(stranger.org_id, owner.org_id);
    assert!(s.delete_instance(owner.org_id, instance.id, t0()).await.unwrap());
    assert_eq!(s.authenticate_instance("element-token-123").await.unwrap(), None);
}

on_both!(
    organizations_and_authentication,
    ensure_organization_is_idempotent,
    concurrent_bootstrap_makes_one_organization,
    instance_tokens_authenticate,
);

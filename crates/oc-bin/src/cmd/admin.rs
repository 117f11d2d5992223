//! `ocpoll migrate` and `ocpoll org create`: database administration.

use std::sync::Arc;

use anyhow::Result;
use base64::Engine;
use oc_bin::service::open_store;
use oc_bin::settings::DatabaseArgs;
use oc_model::ports::{AccountStore, Clock, NewOrganization, SystemClock};
use serde_json::json;

/// `ocpoll migrate`: applies the migrations (and checks the master key), then exits.
pub(crate) async fn migrate(db: &DatabaseArgs) -> Result<()> {
    let store = open_store(db, Arc::new(SystemClock)).await?;
    println!(
        "migrations applied to {} (schema version {})",
        oc_model::secret::redact_url(&db.database_url),
        oc_store::SCHEMA_VERSION
    );
    store.close().await;
    Ok(())
}

fn secret() -> String {
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `ocpoll org create --name NAME`: prints the new organization with its secrets as JSON.
pub(crate) async fn org_create(db: &DatabaseArgs, name: &str) -> Result<()> {
    let clock = SystemClock;
    let store = open_store(db, Arc::new(SystemClock)).await?;
    let (org_secret, user_secret) = (secret(), secret());
    let (org, principal) = store
        .create_organization(&NewOrganization {
            name: name.to_string(),
            org_secret: org_secret.clone(),
            user_secret: user_secret.clone(),
            now: clock.now(),
        })
        .await?;
    let out = json!({
        "organization": {"id": org.id, "name": org.name, "createdDate": org.created_at},
        "user": {"id": principal.user_id},
        "organizationSecret": org_secret,
        "userSecret": user_secret,
        "authorization": format!("User {user_secret}, Organization {org_secret}"),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    store.close().await;
    Ok(())
}

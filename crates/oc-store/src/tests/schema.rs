//! Opening a database: the key check, migrations, a database from a newer binary, restarts.

use super::prelude::*;
use oc_model::ports::StoreError;

use super::{customers, on_both, open, setup};
use crate::db::args;
use crate::{Backend, MasterKey};

async fn a_wrong_key_is_refused_at_start(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let err = t.reopen(|o| o.key = MasterKey::generate()).await.unwrap_err();
    assert!(matches!(err, StoreError::Crypto(ref m) if m.contains("master key does not match")), "{err}");
    // the right key after a restart reads everything back
    let again = t.reopen(|_| {}).await.unwrap();
    assert_eq!(again.instance(owner.org_id, inst.id).await.unwrap(), Some(inst));
    again.migrate().await.unwrap();
}

async fn a_database_of_a_newer_binary_is_refused(b: Backend) {
    let Some(t) = open(b).await else { return };
    let store = t.store();
    let mut tx = store.pools.write().await.unwrap();
    tx.c()
        .exec(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0)",
            args![crate::SCHEMA_VERSION + 1, "from the future", vec![0u8; 48]],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let err = t.reopen(|_| {}).await.unwrap_err();
    assert!(matches!(err, StoreError::Schema(ref m) if m.contains("newer ocpoll")), "{err}");
}

async fn unsupported_urls_are_refused(b: Backend) {
    if b == Backend::Postgres {
        return;
    }
    let err = crate::connect("mysql://u:hunter2@h/db", MasterKey::generate()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unsupported database URL scheme \"mysql\""), "{text}");
    assert!(!text.contains("hunter2"), "no password in messages: {text}");
}

async fn in_memory_sqlite_works(b: Backend) {
    if b == Backend::Postgres {
        return;
    }
    let s = crate::connect("sqlite::memory:", MasterKey::generate()).await.unwrap();
    let (owner, inst) = setup(&s, customers()).await;
    assert_eq!(s.instance(owner.org_id, inst.id).await.unwrap(), Some(inst), "one database for reads and writes");
}

on_both!(
    in_memory_sqlite_works,
    a_wrong_key_is_refused_at_start,
    a_database_of_a_newer_binary_is_refused,
    unsupported_urls_are_refused
);

//! The operator's store calls: the online SQLite backup (a consistent copy while writes go on, opened with the
//! same key; refused on PostgreSQL and over an existing file) and the instance summaries.

use super::prelude::*;
use super::{customers, emit, event, on_both, open, setup, t0};
use crate::{Backend, StoreOptions, connect_with};

async fn a_backup_is_a_consistent_copy_taken_while_writing(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("copy.db");
    if b == Backend::Postgres {
        let refused = s.backup_sqlite(&to).await.unwrap_err().to_string();
        assert!(refused.contains("pg_dump"), "{refused}");
        return;
    }
    emit(&s, inst.id, "customers", vec![event(inst.id, "customers", "a", 1)], t0()).await;
    // writes go on while the copy is taken
    let writer = {
        let s = s.clone();
        let id = inst.id;
        tokio::spawn(async move {
            for n in 0..20 {
                s.mark_invalid(id, &format!("reason {n}")).await.unwrap();
            }
        })
    };
    let bytes = s.backup_sqlite(&to).await.unwrap();
    writer.await.unwrap();
    assert!(bytes > 0);
    assert!(s.backup_sqlite(&to).await.unwrap_err().to_string().contains("never overwrites"));
    let copy = connect_with(StoreOptions::new(format!("sqlite://{}", to.display()), t.options().key.clone()))
        .await
        .expect("the copy opens with the same key");
    let restored = copy.instance(owner.org_id, inst.id).await.unwrap().expect("the instance is in the copy");
    assert_eq!(restored.configuration, inst.configuration, "secrets included, sealed under the same key");
    let wrong =
        connect_with(StoreOptions::new(format!("sqlite://{}", to.display()), crate::MasterKey::generate())).await;
    assert!(wrong.is_err(), "the copy needs its key");
    let summaries = s.instance_summaries().await.unwrap();
    assert_eq!(summaries.iter().map(|i| i.id).collect::<Vec<_>>(), [inst.id]);
    assert!(summaries[0].configuration.get("oauth.api.secret").is_none_or(|v| v.is_null()), "no secret read");
}

on_both!(a_backup_is_a_consistent_copy_taken_while_writing);

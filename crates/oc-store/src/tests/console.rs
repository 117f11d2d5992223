//! The web console's sessions and OAuth rounds: expiry, sign-out, single use, bodies sealed at rest, pruning.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{
    ConsoleSession, NewConsoleSession, NewOAuthRound, OAuthRound, Principal, SecretDigest, StoreError,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::prelude::*;
use super::{at, customers, on_both, open, setup, t0};
use crate::db::args;
use crate::{Backend, SqlStore};

/// The digest of a secret named `name` (as the console would hash a cookie or a `state`).
fn digest(name: &str) -> SecretDigest {
    SecretDigest(Sha256::digest(name.as_bytes()).into())
}

fn new_session(token: &str, principal: Principal, expires_at: DateTime<Utc>) -> NewConsoleSession {
    NewConsoleSession {
        token: digest(token),
        principal,
        csrf: format!("csrf-of-{token}"),
        created_at: t0(),
        expires_at,
    }
}

fn new_round(state: &str, session: &str, principal: Principal, expires_at: DateTime<Utc>) -> NewOAuthRound {
    NewOAuthRound {
        state: digest(state),
        session: digest(session),
        principal,
        body: json!({"name": format!("instance of {state}"), "configuration": {"oauth.api.key": "client-id"}}),
        instance: None,
        created_at: t0(),
        expires_at,
    }
}

/// What [`SqlStore::take_oauth_round`] gives back for `new`.
fn taken(new: &NewOAuthRound) -> OAuthRound {
    OAuthRound {
        session: new.session,
        principal: new.principal,
        body: new.body.clone(),
        instance: new.instance,
        created_at: new.created_at,
        expires_at: new.expires_at,
    }
}

async fn count(s: &SqlStore, table: &str) -> i64 {
    let mut conn = s.pools.read().await.unwrap();
    conn.c().one(&format!("SELECT COUNT(*) AS n FROM {table}"), args![]).await.unwrap().i64("n").unwrap()
}

async fn sessions_live_until_they_expire_or_end(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, alice) = crate::testing::organization(&*s).await;
    let (_, bob) = crate::testing::organization(&*s).await;
    assert_ne!(alice.org_id, bob.org_id);
    s.create_console_session(&new_session("alice", alice, at(3600))).await.unwrap();
    s.create_console_session(&new_session("bob", bob, at(7200))).await.unwrap();

    let expected =
        ConsoleSession { principal: alice, csrf: "csrf-of-alice".into(), created_at: t0(), expires_at: at(3600) };
    assert_eq!(s.console_session(&digest("alice"), at(10)).await.unwrap(), Some(expected.clone()));
    assert_eq!(s.console_session(&digest("alice"), at(3599)).await.unwrap(), Some(expected));
    assert_eq!(s.console_session(&digest("alice"), at(3600)).await.unwrap(), None, "expired at its expiry");
    assert_eq!(s.console_session(&digest("alice"), at(5000)).await.unwrap(), None);
    assert_eq!(s.console_session(&digest("carol"), at(10)).await.unwrap(), None, "unknown");
    // another organization's cookie is another session, whoever asks
    let theirs = s.console_session(&digest("bob"), at(3600)).await.unwrap().unwrap();
    assert_eq!((theirs.principal, theirs.csrf.as_str()), (bob, "csrf-of-bob"));

    let err = s.create_console_session(&new_session("alice", bob, at(3600))).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(ref m) if m.contains("session token")), "{err}");
    assert_eq!(s.console_session(&digest("alice"), at(10)).await.unwrap().unwrap().principal, alice, "unchanged");

    // sign-out ends the session and the rounds it began, not another session's
    s.begin_oauth_round(&new_round("a1", "alice", alice, at(600))).await.unwrap();
    s.begin_oauth_round(&new_round("a2", "alice", alice, at(600))).await.unwrap();
    let bobs = new_round("b1", "bob", bob, at(600));
    s.begin_oauth_round(&bobs).await.unwrap();
    assert!(s.end_console_session(&digest("alice")).await.unwrap());
    assert_eq!(s.console_session(&digest("alice"), at(10)).await.unwrap(), None);
    assert_eq!(s.take_oauth_round(&digest("a1")).await.unwrap(), None, "its rounds are gone");
    assert_eq!(s.take_oauth_round(&digest("a2")).await.unwrap(), None);
    assert!(!s.end_console_session(&digest("alice")).await.unwrap(), "ended already");
    assert!(!s.end_console_session(&digest("carol")).await.unwrap());
    assert_eq!(s.console_session(&digest("bob"), at(10)).await.unwrap().unwrap().principal, bob);
    assert_eq!(s.take_oauth_round(&digest("b1")).await.unwrap(), Some(taken(&bobs)));
}

async fn rounds_are_taken_once(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, alice) = crate::testing::organization(&*s).await;
    s.create_console_session(&new_session("alice", alice, at(3600))).await.unwrap();

    let round = new_round("s1", "alice", alice, at(600));
    s.begin_oauth_round(&round).await.unwrap();
    assert_eq!(s.take_oauth_round(&digest("s1")).await.unwrap(), Some(taken(&round)));
    assert_eq!(s.take_oauth_round(&digest("s1")).await.unwrap(), None, "a state is used once");
    assert_eq!(s.take_oauth_round(&digest("unknown")).await.unwrap(), None);

    // an expired round is still handed back, once, with its expiry, so that the caller can say it expired
    let late = new_round("s2", "alice", alice, at(600));
    s.begin_oauth_round(&late).await.unwrap();
    let back = s.take_oauth_round(&digest("s2")).await.unwrap().unwrap();
    assert_eq!(back.expires_at, at(600));
    assert_eq!(back, taken(&late));
    assert_eq!(s.take_oauth_round(&digest("s2")).await.unwrap(), None);

    // a state twice is a conflict; the first round stays as it was
    let first = new_round("s3", "alice", alice, at(600));
    s.begin_oauth_round(&first).await.unwrap();
    let mut again = new_round("s3", "alice", alice, at(900));
    again.body = json!({"other": true});
    let err = s.begin_oauth_round(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(ref m) if m.contains("OAuth state")), "{err}");
    assert_eq!(s.take_oauth_round(&digest("s3")).await.unwrap(), Some(taken(&first)));

    // a round needs a live session
    let err = s.begin_oauth_round(&new_round("s4", "nobody", alice, at(600))).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let mut in_expired = new_round("s5", "alice", alice, at(4000));
    in_expired.created_at = at(3600);
    let err = s.begin_oauth_round(&in_expired).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(count(&s, "oauth_rounds").await, 0);
}

async fn a_state_raced_by_two_callbacks_is_taken_once(b: Backend) {
    let Some(t) = open(b).await else { return };
    let other = t.another_handle().await;
    let s = t.store();
    let (_, alice) = crate::testing::organization(&*s).await;
    s.create_console_session(&new_session("alice", alice, at(3600))).await.unwrap();
    for i in 0..20 {
        let state = format!("race-{i}");
        s.begin_oauth_round(&new_round(&state, "alice", alice, at(600))).await.unwrap();
        let d = digest(&state);
        let (one, two) = tokio::join!(s.take_oauth_round(&d), other.take_oauth_round(&d));
        let got = [one.unwrap(), two.unwrap()];
        assert_eq!(got.iter().filter(|r| r.is_some()).count(), 1, "{state}: {got:?}");
    }
}

async fn round_bodies_are_sealed_at_rest(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, instance) = setup(&s, customers()).await;
    s.create_console_session(&new_session("alice", owner, at(3600))).await.unwrap();
    let secrets = ["client-secret-0cc175b9c0f1b6a8", "signature-key-92eb5ffee6ae2fec"];
    let mut round = new_round("sealed", "alice", owner, at(600));
    round.body = json!({
        "name": "Sage",
        "configuration": {
            "oauth.api.key": "client-id",
            "oauth.api.secret": secrets[0],
            "event.notification.signature.key": secrets[1],
            "nested": [1, null, {"x": 2.5}],
        },
        "tags": ["a"],
    });
    s.begin_oauth_round(&round).await.unwrap();

    let mut conn = s.pools.read().await.unwrap();
    let row = conn.c().one("SELECT state, session, body FROM oauth_rounds", args![]).await.unwrap();
    let mut stored = vec![row.bytes("body").unwrap()];
    assert_eq!(row.bytes("state").unwrap(), digest("sealed").0, "the state digest only");
    assert_eq!(row.bytes("session").unwrap(), digest("alice").0);
    let config_secrets = conn
        .c()
        .one("SELECT config_secrets FROM instances WHERE id = $1", args![instance.id])
        .await
        .unwrap()
        .bytes("config_secrets")
        .unwrap();
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
    assert_eq!(s.take_oauth_round(&digest("sealed")).await.unwrap().unwrap().body, round.body, "and it opens");

    // a sealed value of another place does not open as a round's body: another round's, an instance's configuration
    for (state, swapped) in [("swap-round", None), ("swap-config", Some(config_secrets))] {
        s.begin_oauth_round(&new_round("donor", "alice", owner, at(600))).await.unwrap();
        s.begin_oauth_round(&new_round(state, "alice", owner, at(600))).await.unwrap();
        let mut tx = s.pools.write().await.unwrap();
        let donor = tx
            .c()
            .one("SELECT body FROM oauth_rounds WHERE state = $1", args![digest("donor").0.to_vec()])
            .await
            .unwrap()
            .bytes("body")
            .unwrap();
        tx.c()
            .exec(
                "UPDATE oauth_rounds SET body = $2 WHERE state = $1",
                args![digest(state).0.to_vec(), swapped.unwrap_or(donor)],
            )
            .await
            .unwrap();
        tx.c().exec("DELETE FROM oauth_rounds WHERE state = $1", args![digest("donor").0.to_vec()]).await.unwrap();
        tx.commit().await.unwrap();
        let err = s.take_oauth_round(&digest(state)).await.unwrap_err();
        assert!(matches!(err, StoreError::Crypto(_)), "{state}: {err}");
        assert_eq!(s.take_oauth_round(&digest(state)).await.unwrap(), None, "{state}: gone all the same");
    }
}

async fn pruning_removes_only_what_expired(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, p) = crate::testing::organization(&*s).await;
    s.create_console_session(&new_session("short", p, at(100))).await.unwrap();
    s.create_console_session(&new_session("long", p, at(1000))).await.unwrap();
    s.begin_oauth_round(&new_round("expired", "long", p, at(50))).await.unwrap();
    s.begin_oauth_round(&new_round("at-now", "long", p, at(100))).await.unwrap();
    let live = new_round("live", "long", p, at(500));
    s.begin_oauth_round(&live).await.unwrap();
    // not expired itself, but its session is: its callback can never come in a live session
    s.begin_oauth_round(&new_round("orphan", "short", p, at(500))).await.unwrap();

    assert_eq!(s.prune_console(at(99)).await.unwrap(), 1, "the expired round only");
    assert_eq!(s.prune_console(at(100)).await.unwrap(), 3, "a session and two rounds");
    assert_eq!(s.prune_console(at(100)).await.unwrap(), 0);
    assert_eq!((count(&s, "console_sessions").await, count(&s, "oauth_rounds").await), (1, 1));
    assert!(s.console_session(&digest("long"), at(100)).await.unwrap().is_some());
    assert_eq!(s.take_oauth_round(&digest("live")).await.unwrap(), Some(taken(&live)));
    for gone in ["expired", "at-now", "orphan"] {
        assert_eq!(s.take_oauth_round(&digest(gone)).await.unwrap(), None, "{gone}");
    }
}

async fn the_background_pruner_prunes_the_console(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, p) = crate::testing::organization(&*s).await;
    s.create_console_session(&new_session("old", p, at(100))).await.unwrap();
    s.create_console_session(&new_session("new", p, at(10_000))).await.unwrap();
    s.begin_oauth_round(&new_round("old-round", "new", p, at(100))).await.unwrap();
    let clock = std::sync::Arc::new(oc_model::ports::ManualClock::new(at(1000)));
    let pruner = crate::spawn_pruner(s.clone(), clock, crate::DEFAULT_RETENTION, Duration::from_secs(3600));
    // the first round runs at once
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&s, "console_sessions").await + count(&s, "oauth_rounds").await > 1 {
        assert!(tokio::time::Instant::now() < deadline, "not pruned within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pruner.abort();
    assert!(s.console_session(&digest("new"), at(1000)).await.unwrap().is_some(), "a live session stays");
}

async fn deleting_an_instance_with_a_reauthentication_in_flight(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, instance) = setup(&s, customers()).await;
    let kept = s.create_instance(&crate::testing::new_instance(owner, customers(), t0())).await.unwrap();
    s.create_console_session(&new_session("alice", owner, at(3600))).await.unwrap();
    let reauth = |state: &str, id| {
        let mut round = new_round(state, "alice", owner, at(600));
        round.instance = Some(id);
        round.body = json!({"oauth.api.key": "client-id", "oauth.api.secret": "client-secret-d41d8cd98f"});
        round
    };
    let round = reauth("reauth", instance.id);
    s.begin_oauth_round(&round).await.unwrap();
    assert_eq!(s.take_oauth_round(&digest("reauth")).await.unwrap(), Some(taken(&round)), "the instance comes back");

    s.begin_oauth_round(&round).await.unwrap();
    assert!(s.delete_instance(owner.org_id, instance.id, at(10)).await.unwrap());
    assert_eq!(s.take_oauth_round(&digest("reauth")).await.unwrap(), None, "its secrets went with the instance");
    assert!(s.console_session(&digest("alice"), at(10)).await.unwrap().is_some(), "the session stays");
    // and none is begun for it any more, nor for another organization's instance
    let err = s.begin_oauth_round(&round).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("instance")), "{err}");
    let (_, stranger) = setup(&s, customers()).await;
    let err = s.begin_oauth_round(&reauth("theirs", stranger.id)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("instance")), "{err}");
    assert_eq!(count(&s, "oauth_rounds").await, 0);

    // the row itself removed (no code does yet): the foreign key does not stand in the way, the round goes
    let other = reauth("reauth-2", kept.id);
    s.begin_oauth_round(&other).await.unwrap();
    let mut tx = s.pools.write().await.unwrap();
    for table in ["poll_jobs", "instance_tokens"] {
        tx.c().exec(&format!("DELETE FROM {table} WHERE instance_id = $1"), args![kept.id]).await.unwrap();
    }
    assert_eq!(tx.c().exec("DELETE FROM instances WHERE id = $1", args![kept.id]).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(s.take_oauth_round(&digest("reauth-2")).await.unwrap(), None);
}

/// A body that is not an object is still a body.
async fn any_json_body_round_trips(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, p) = crate::testing::organization(&*s).await;
    s.create_console_session(&new_session("alice", p, at(3600))).await.unwrap();
    for (i, body) in [Value::Null, json!("text"), json!([1, "two", {"3": [4.5]}]), json!({})].into_iter().enumerate() {
        let mut round = new_round(&format!("body-{i}"), "alice", p, at(600));
        round.body = body;
        s.begin_oauth_round(&round).await.unwrap();
        assert_eq!(s.take_oauth_round(&round.state).await.unwrap(), Some(taken(&round)));
    }
}

on_both!(
    sessions_live_until_they_expire_or_end,
    rounds_are_taken_once,
    a_state_raced_by_two_callbacks_is_taken_once,
    round_bodies_are_sealed_at_rest,
    pruning_removes_only_what_expired,
    the_background_pruner_prunes_the_console,
    deleting_an_instance_with_a_reauthentication_in_flight,
    any_json_body_round_trips,
);

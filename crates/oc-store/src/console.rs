//! [`ConsoleStore`] on SQL: the web console's sessions and its OAuth rounds in flight (tables `console_sessions`
//! and `oauth_rounds`), so that a sign-out holds on every node and a provider's redirect may land on any node.
//!
//! Cookies and `state`s are known here only by their digests. The pending instance body of a round is sealed
//! whole under the master key, bound to the round's `state` digest: a sealed instance configuration, or the body
//! of another round, copied into its place does not open.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::ports::{
    ConsoleSession, ConsoleStore, NewConsoleSession, NewOAuthRound, OAuthRound, Principal, SecretDigest, StoreError,
};
use serde_json::Value;

use crate::SqlStore;
use crate::codec::{from_ns, ns, to_json};
use crate::db::args;
use crate::error::corrupt;

/// The associated data of a round's sealed body: its purpose and its row.
fn round_aad(state: &SecretDigest) -> String {
    let hex: String = state.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("console oauth round {hex} body")
}

fn digest_of(column: &str, bytes: Vec<u8>) -> Result<SecretDigest, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(SecretDigest)
        .map_err(|b| corrupt(format_args!("column {column}: a digest of {} bytes", b.len())))
}

fn conflict(e: StoreError, what: &str) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(format!("{what} is already in use")),
        other => other,
    }
}

impl SqlStore {
    fn open_round_body(&self, state: &SecretDigest, sealed: &[u8]) -> Result<Value, StoreError> {
        let plain = self.cipher.open(&round_aad(state), sealed)?;
        serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Crypto(format!("a decrypted OAuth round body is not JSON: {e}")))
    }
}

#[async_trait]
impl ConsoleStore for SqlStore {
    async fn create_console_session(&self, new: &NewConsoleSession) -> Result<(), StoreError> {
        let mut tx = self.pools.write().await?;
        tx.c()
            .exec(
                "INSERT INTO console_sessions (token, org_id, user_id, csrf, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                args![
                    new.token.0.to_vec(),
                    new.principal.org_id,
                    new.principal.user_id,
                    &new.csrf,
                    ns(new.created_at),
                    ns(new.expires_at)
                ],
            )
            .await
            .map_err(|e| conflict(e, "this console session token"))?;
        tx.commit().await
    }

    async fn console_session(
        &self,
        token: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let mut conn = self.pools.read().await?;
        let row = conn
            .c()
            .opt(
                "SELECT org_id, user_id, csrf, created_at, expires_at FROM console_sessions \
                 WHERE token = $1 AND expires_at > $2",
                args![token.0.to_vec(), ns(now)],
            )
            .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                principal: Principal { org_id: r.i64("org_id")?, user_id: r.i64("user_id")? },
                csrf: r.text("csrf")?,
                created_at: from_ns(r.i64("created_at")?),
                expires_at: from_ns(r.i64("expires_at")?),
            })
        })
        .transpose()
    }

    async fn end_console_session(&self, token: &SecretDigest) -> Result<bool, StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        // Said here rather than left to the foreign key's cascade: the rounds go whatever the connection enforces.
        c.exec("DELETE FROM oauth_rounds WHERE session = $1", args![token.0.to_vec()]).await?;
        let n = c.exec("DELETE FROM console_sessions WHERE token = $1", args![token.0.to_vec()]).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn begin_oauth_round(&self, new: &NewOAuthRound) -> Result<(), StoreError> {
        let sealed = self.cipher.seal(&round_aad(&new.state), to_json(&new.body)?.as_bytes())?;
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        // PostgreSQL: a sign-out or an instance deletion running meanwhile waits for this round, then removes it.
        let share = if c.is_pg() { " FOR SHARE" } else { "" };
        // A round belongs to a session (its callback must come in it): none is begun for a session that is
        // unknown, ended or expired when the round begins, nor for an instance that is not its organization's.
        let session = c
            .opt(
                &format!("SELECT 1 AS live FROM console_sessions WHERE token = $1 AND expires_at > $2{share}"),
                args![new.session.0.to_vec(), ns(new.created_at)],
            )
            .await?;
        if session.is_none() {
            return Err(StoreError::NotFound("console session".into()));
        }
        if let Some(id) = new.instance {
            let instance = c
                .opt(
                    &format!(
                        "SELECT 1 AS live FROM instances WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL{share}"
                    ),
                    args![id, new.principal.org_id],
                )
                .await?;
            if instance.is_none() {
                return Err(StoreError::NotFound(format!("instance {id}")));
            }
        }
        c.exec(
            "INSERT INTO oauth_rounds (state, session, org_id, user_id, body, instance_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![
                new.state.0.to_vec(),
                new.session.0.to_vec(),
                new.principal.org_id,
                new.principal.user_id,
                sealed,
                new.instance,
                ns(new.created_at),
                ns(new.expires_at)
            ],
        )
        .await
        .map_err(|e| conflict(e, "this OAuth state"))?;
        tx.commit().await
    }

    async fn take_oauth_round(&self, state: &SecretDigest) -> Result<Option<OAuthRound>, StoreError> {
        let mut tx = self.pools.write().await?;
        // One statement removes and reads: of two callbacks racing with the same state, one gets the round.
        let row = tx
            .c()
            .opt(
                "DELETE FROM oauth_rounds WHERE state = $1 \
                 RETURNING session, org_id, user_id, body, instance_id, created_at, expires_at",
                args![state.0.to_vec()],
            )
            .await?;
        tx.commit().await?;
        // Gone whatever it holds: a body that does not open is an error now, and no round later.
        let Some(r) = row else { return Ok(None) };
        Ok(Some(OAuthRound {
            session: digest_of("session", r.bytes("session")?)?,
            principal: Principal { org_id: r.i64("org_id")?, user_id: r.i64("user_id")? },
            body: self.open_round_body(state, &r.bytes("body")?)?,
            instance: r.opt_i64("instance_id")?,
            created_at: from_ns(r.i64("created_at")?),
            expires_at: from_ns(r.i64("expires_at")?),
        }))
    }

    async fn prune_console(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        // The rounds of an expired session go with it (their callback cannot come in a live session), counted.
        let rounds = c
            .exec(
                "DELETE FROM oauth_rounds WHERE expires_at <= $1 \
                 OR session IN (SELECT token FROM console_sessions WHERE expires_at <= $1)",
                args![ns(now)],
            )
            .await?;
        let sessions = c.exec("DELETE FROM console_sessions WHERE expires_at <= $1", args![ns(now)]).await?;
        tx.commit().await?;
        Ok(rounds + sessions)
    }
}

//! The token vault: sealed OAuth tokens per instance, and a refresh lock (holder + expiry on the token row)
//! so that two nodes never spend the same rotating refresh token.

use std::time::Duration;

use async_trait::async_trait;
use oc_model::InstanceId;
use oc_model::ports::{AlertType, StoreError, TokenSet, TokenVault};
use oc_model::secret::Secret;

use crate::SqlStore;
use crate::alerts::raise;
use crate::codec::{after, ns, parse_time, time_text};
use crate::db::args;
use crate::instances::{access_aad, refresh_aad};

impl SqlStore {
    fn open_token(&self, aad: &str, sealed: &[u8]) -> Result<Secret, StoreError> {
        let plain = self.cipher.open(aad, sealed)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| StoreError::Crypto(format!("decrypted {aad} is not UTF-8")))
    }
}

#[async_trait]
impl TokenVault for SqlStore {
    async fn tokens(&self, instance: InstanceId) -> Result<Option<TokenSet>, StoreError> {
        let mut conn = self.pools.read().await?;
        let row = conn
            .c()
            .opt(
                "SELECT access_token, refresh_token, expires_at, refresh_expires_at, scope FROM instance_tokens \
                 WHERE instance_id = $1",
                args![instance],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(TokenSet {
            access_token: self.open_token(&access_aad(instance), &r.bytes("access_token")?)?,
            refresh_token: self.open_token(&refresh_aad(instance), &r.bytes("refresh_token")?)?,
            expires_at: parse_time(&r.text("expires_at")?)?,
            refresh_expires_at: r.opt_text("refresh_expires_at")?.as_deref().map(parse_time).transpose()?,
            scope: r.opt_text("scope")?,
        }))
    }

    async fn lock_refresh(&self, instance: InstanceId, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let n = c
            .exec(
                "UPDATE instance_tokens SET refresh_holder = $2, refresh_lock_until = $3 WHERE instance_id = $1 \
                 AND (refresh_holder IS NULL OR refresh_holder = $2 OR refresh_lock_until <= $4)",
                args![instance, holder, ns(after(now, ttl)), ns(now)],
            )
            .await?;
        let exists = n > 0
            || c.opt("SELECT 1 AS one FROM instance_tokens WHERE instance_id = $1", args![instance]).await?.is_some();
        tx.commit().await?;
        if !exists {
            return Err(StoreError::NotFound(format!("tokens of instance {instance}")));
        }
        Ok(n > 0)
    }

    async fn save_refreshed(&self, instance: InstanceId, holder: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        let now = self.clock.now();
        let access = self.cipher.seal(&access_aad(instance), tokens.access_token.expose().as_bytes())?;
        let refresh = self.cipher.seal(&refresh_aad(instance), tokens.refresh_token.expose().as_bytes())?;
        let mut tx = self.pools.write().await?;
        let n = tx
            .c()
            .exec(
                "UPDATE instance_tokens SET access_token = $4, refresh_token = $5, expires_at = $6, \
                 refresh_expires_at = $7, scope = $8, refresh_holder = NULL, refresh_lock_until = NULL \
                 WHERE instance_id = $1 AND refresh_holder = $2 AND refresh_lock_until > $3",
                args![
                    instance,
                    holder,
                    ns(now),
                    access,
                    refresh,
                    time_text(tokens.expires_at),
                    tokens.refresh_expires_at.map(time_text),
                    tokens.scope.clone()
                ],
            )
            .await?;
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::LeaseLost(format!(
                "refresh lock of instance {instance}: not held by {holder} (expired or taken over)"
            )));
        }
        Ok(())
    }

    async fn unlock_refresh(&self, instance: InstanceId, holder: &str) -> Result<(), StoreError> {
        let mut tx = self.pools.write().await?;
        tx.c()
            .exec(
                "UPDATE instance_tokens SET refresh_holder = NULL, refresh_lock_until = NULL \
                 WHERE instance_id = $1 AND refresh_holder = $2",
                args![instance, holder],
            )
            .await?;
        tx.commit().await
    }

    async fn mark_invalid(&self, instance: InstanceId, reason: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let lock = if c.is_pg() { " FOR UPDATE" } else { "" };
        let Some(row) = c.opt(&format!("SELECT valid FROM instances WHERE id = $1{lock}"), args![instance]).await?
        else {
            return Err(StoreError::NotFound(format!("instance {instance}")));
        };
        c.exec(
            "UPDATE instances SET valid = FALSE, invalid_reason = $2, updated_at = $3 WHERE id = $1",
            args![instance, reason, ns(now)],
        )
        .await?;
        // once per transition: an instance found invalid again by a later refresh is reported once
        if row.bool("valid")? {
            raise(&mut c, instance, AlertType::InstanceInvalid, now, reason, serde_json::Map::new()).await?;
        }
        tx.commit().await
    }
}

//! The token vault port: where a provider keeps an instance's rotating OAuth tokens (the store implements it), so
//! that a refresh survives a crash and is single-flight across nodes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::InstanceId;
use crate::ports::store::StoreError;
use crate::secret::Secret;

/// OAuth tokens of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// Bearer token.
    pub access_token: Secret,
    /// Refresh token (some providers rotate it on every use).
    pub refresh_token: Secret,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// When the refresh token expires, when known.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Granted scope.
    pub scope: Option<String>,
}

/// Where a provider keeps an instance's tokens. Implemented by the store.
///
/// A refresh lock's `holder` is named `{node}:{anything unique}`, `{node}` being the node id the wiring gives the
/// provider: that is how the locks of a node known to be gone are handed back at once
/// ([`MaintenanceStore::release_leases_of`](super::MaintenanceStore::release_leases_of)) instead of lapsing.
///
/// Refreshing is: [`lock_refresh`](TokenVault::lock_refresh) (single flight across nodes), re-read the tokens
/// (another node may have refreshed already), call the token endpoint, then
/// [`save_refreshed`](TokenVault::save_refreshed) **before** using the new access token: it persists the tokens and
/// releases the lock in one write. [`unlock_refresh`](TokenVault::unlock_refresh) is for a refresh that ends without
/// saving (refused, failed, or found done by someone else).
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// The instance's current tokens.
    async fn tokens(&self, instance: InstanceId) -> Result<Option<TokenSet>, StoreError>;
    /// Takes the instance's refresh lock for `holder` until `ttl` passes; false when someone else holds it.
    async fn lock_refresh(&self, instance: InstanceId, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Persists rotated tokens and releases `holder`'s refresh lock, in one write; fails with
    /// [`StoreError::LeaseLost`] (and writes nothing) when `holder` no longer holds the lock.
    async fn save_refreshed(&self, instance: InstanceId, holder: &str, tokens: &TokenSet) -> Result<(), StoreError>;
    /// Releases the refresh lock (no-op when not held by `holder`).
    async fn unlock_refresh(&self, instance: InstanceId, holder: &str) -> Result<(), StoreError>;
    /// Marks the instance invalid (e.g. "re-authorization required") so polling stops until a new code arrives.
    async fn mark_invalid(&self, instance: InstanceId, reason: &str) -> Result<(), StoreError>;
}

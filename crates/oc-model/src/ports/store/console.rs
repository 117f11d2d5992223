//! [`ConsoleStore`]: the web console's sign-ins and its OAuth rounds in flight. Both are kept in the database (not
//! in a node's memory) so that sign-out ends a session on every node and a Sage redirect may land on any node.
//!
//! The store never sees a cookie or a `state` in clear: callers hand it SHA-256 digests ([`SecretDigest`]), so a
//! copy of the database signs nobody in. The pending instance body of an OAuth round holds secrets (the Sage app's
//! client secret, the signature key): the store encrypts it at rest, as it does instance configurations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Principal, StoreError};
use crate::ids::InstanceId;

/// The SHA-256 digest of a random secret (a session cookie, an OAuth `state`), the only form the store keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretDigest(pub [u8; 32]);

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // a prefix is enough to tell two apart in a log; the digest is not a secret, but it need not be shown
        write!(f, "SecretDigest({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// A console sign-in to record.
#[derive(Debug, Clone)]
pub struct NewConsoleSession {
    /// The digest of the session cookie's value.
    pub token: SecretDigest,
    /// Who signed in (as the API's `User` and `Organization` secrets decide).
    pub principal: Principal,
    /// The session's anti-forgery token, given back with the session and compared by the console on every
    /// state-changing request (not a secret of the user: it only proves a form came from a console page).
    pub csrf: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it ends whatever happens (a bounded lifetime).
    pub expires_at: DateTime<Utc>,
}

/// A live console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Who it is.
    pub principal: Principal,
    /// Its anti-forgery token.
    pub csrf: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// An OAuth round begun by the console: the browser was sent to the provider's consent page with a `state`;
/// the round ends at the console's OAuth callback. Its `Debug` leaves the body out (it holds secrets).
#[derive(Clone)]
pub struct NewOAuthRound {
    /// The digest of the `state` sent to the provider.
    pub state: SecretDigest,
    /// The digest of the session cookie that began it: the callback must come in the same session.
    pub session: SecretDigest,
    /// Who began it.
    pub principal: Principal,
    /// The instance body to create (`POST /instances` without the code), or, for a re-authentication, the
    /// instance's provider-facing configuration. Encrypted at rest.
    pub body: Value,
    /// Set for a re-authentication of an existing instance.
    pub instance: Option<InstanceId>,
    /// When it was begun.
    pub created_at: DateTime<Utc>,
    /// When it can no longer end (a consent page left open longer is refused).
    pub expires_at: DateTime<Utc>,
}

/// An OAuth round taken back at the callback (it is gone from the store: a `state` is used once). Its `Debug`
/// leaves the body out (it holds secrets).
#[derive(Clone, PartialEq)]
pub struct OAuthRound {
    /// The digest of the session that began it.
    pub session: SecretDigest,
    /// Who began it.
    pub principal: Principal,
    /// The body given when it began.
    pub body: Value,
    /// The instance re-authenticated, if it is one.
    pub instance: Option<InstanceId>,
    /// When it was begun.
    pub created_at: DateTime<Utc>,
    /// When it expired or expires (the caller refuses a round past it).
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewOAuthRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOAuthRound")
            .field("state", &self.state)
            .field("session", &self.session)
            .field("principal", &self.principal)
            .field("instance", &self.instance)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OAuthRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthRound")
            .field("session", &self.session)
            .field("principal", &self.principal)
            .field("instance", &self.instance)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The console's sessions and OAuth rounds.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Records a sign-in.
    async fn create_console_session(&self, new: &NewConsoleSession) -> Result<(), StoreError>;
    /// The session of a cookie digest, unless it is unknown, ended or expired at `now`.
    async fn console_session(
        &self,
        token: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError>;
    /// Ends a session (sign-out) and the OAuth rounds it began; true when there was one.
    async fn end_console_session(&self, token: &SecretDigest) -> Result<bool, StoreError>;
    /// Records an OAuth round; [`StoreError::NotFound`] when its session is unknown or expired, or its instance
    /// (a re-authentication) is not a live instance of the principal's organization.
    async fn begin_oauth_round(&self, new: &NewOAuthRound) -> Result<(), StoreError>;
    /// Takes an OAuth round by its `state` digest: it is removed whatever it holds, so a replayed `state` finds
    /// nothing. An expired round is still returned (with its `expires_at`) so that the caller can say so.
    async fn take_oauth_round(&self, state: &SecretDigest) -> Result<Option<OAuthRound>, StoreError>;
    /// Removes sessions and rounds expired at `now`, and the rounds of expired sessions; how many.
    async fn prune_console(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

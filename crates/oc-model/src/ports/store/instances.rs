//! [`InstanceStore`]: connector instances as the API creates, reads, changes and deletes them. The poll jobs of an
//! instance follow its configuration.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::config::{Configuration, SecretKeys};
use crate::ids::{InstanceId, OrgId, UserId};
use crate::ports::provider::ProviderAccount;
use crate::ports::vault::TokenSet;

/// A stored connector instance. Secret configuration values are decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Id.
    pub id: InstanceId,
    /// Owner organization.
    pub org_id: OrgId,
    /// Creating user.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Element key (the provider's, e.g. `sageone`).
    pub element_key: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Configuration as given (secrets in clear here; masked only in API answers).
    pub configuration: Configuration,
    /// The provider-side account the instance works in.
    pub account: ProviderAccount,
    /// Switched off by the user.
    pub disabled: bool,
    /// False when re-authorization is required.
    pub valid: bool,
    /// Why it is not valid.
    pub invalid_reason: Option<String>,
    /// Why notifications are switched off by the receiver (`410 Gone`), when they are.
    pub notifications_disabled_reason: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Where the watermark of a resource starts unless backfilled (provider clock at creation).
    pub poll_start: DateTime<Utc>,
}

/// A new instance, authorized.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Owner organization.
    pub org_id: OrgId,
    /// Creating user.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Element key.
    pub element_key: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Configuration (secrets in clear; the store encrypts them).
    pub configuration: Configuration,
    /// Which configuration keys are secret (Open Connectors' and the element's provider's): encrypted at rest.
    pub secret_keys: SecretKeys,
    /// Provider account.
    pub account: ProviderAccount,
    /// OAuth tokens.
    pub tokens: TokenSet,
    /// The instance's `Element` token in clear; stored only as a hash.
    pub token: String,
    /// Creation time (local clock).
    pub now: DateTime<Utc>,
    /// Provider clock at creation: where watermarks start.
    pub poll_start: DateTime<Utc>,
}

/// A change of an instance. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InstanceUpdate {
    /// New name.
    pub name: Option<String>,
    /// New tags (replace all).
    pub tags: Option<Vec<String>>,
    /// New configuration (already merged by the caller, against the instance as stored: see
    /// [`InstanceStore::modify_instance`]). Poll jobs follow its resources and interval at once;
    /// a changed callback or re-enabled notifications clear a `410` switch-off.
    pub configuration: Option<Configuration>,
    /// Which keys of the new configuration are secret (as in [`NewInstance::secret_keys`]).
    pub secret_keys: SecretKeys,
    /// The caller set `event.notification.enabled` to true, whatever its stored value: clears a `410`
    /// switch-off.
    pub reenable_notifications: bool,
    /// A re-authorization: new tokens and account; the instance becomes valid again.
    pub authorization: Option<(TokenSet, ProviderAccount)>,
    /// When this happens.
    pub now: DateTime<Utc>,
}

/// Instances of organizations, as the API manages them.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// Creates an instance and its poll jobs (one per configured resource, due at once).
    async fn create_instance(&self, new: &NewInstance) -> Result<Instance, StoreError>;
    /// An instance of `org`; `None` also for another organization's instance.
    async fn instance(&self, org: OrgId, id: InstanceId) -> Result<Option<Instance>, StoreError>;
    /// Instances of `org` carrying every tag in `tags`, by id.
    async fn list_instances(&self, org: OrgId, tags: &[String]) -> Result<Vec<Instance>, StoreError>;
    /// Changes an instance of `org`.
    async fn update_instance(
        &self,
        org: OrgId,
        id: InstanceId,
        update: &InstanceUpdate,
    ) -> Result<Instance, StoreError>;
    /// Changes an instance of `org` by what `change` makes of it as stored: `change` is called with the instance
    /// read inside the write transaction that applies its answer, the row locked (PostgreSQL `FOR UPDATE`,
    /// SQLite's single writer), so a read–merge–write (a `PATCH` merging configuration keys) cannot lose a
    /// concurrent change (issue 18: ten concurrent `PATCH`es kept one or two of their keys). `change` answers
    /// `None` to change nothing (having noted why): the transaction is rolled back and `Ok(None)` returned. It
    /// must be quick and do no I/O: it runs while the instance (on SQLite, every write) waits.
    async fn modify_instance(
        &self,
        org: OrgId,
        id: InstanceId,
        change: &mut (dyn for<'i> FnMut(&'i Instance) -> Option<InstanceUpdate> + Send),
    ) -> Result<Option<Instance>, StoreError>;
    /// Switches an instance off or on; switching it on also turns its notifications back on after a `410`.
    async fn set_disabled(
        &self,
        org: OrgId,
        id: InstanceId,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<Instance, StoreError>;
    /// Deletes an instance: its token stops working, its poll jobs go, its pending notifications are dropped
    /// (status `dropped`, kept for the record). False when it did not exist.
    async fn delete_instance(&self, org: OrgId, id: InstanceId, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

//! [`AccountStore`]: organizations, users and API authentication (the API's extractor, `ocpoll org create`, the
//! bootstrap organization of `serve`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::ids::{InstanceId, OrgId, UserId};

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Id.
    pub id: OrgId,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A new organization with its first user. Secrets are given in clear and stored only as hashes.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Name.
    pub name: String,
    /// The organization secret.
    pub org_secret: String,
    /// The first user's secret.
    pub user_secret: String,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// Who is calling the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Organization.
    pub org_id: OrgId,
    /// User.
    pub user_id: UserId,
}

/// Organizations, users and API authentication.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an organization and its first user.
    async fn create_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError>;
    /// Creates the organization and user of these secrets unless they exist (idempotent bootstrap).
    async fn ensure_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError>;
    /// The principal whose user and organization secrets these are (constant-time comparison of hashes).
    async fn authenticate(&self, user_secret: &str, org_secret: &str) -> Result<Option<Principal>, StoreError>;
    /// The instance whose `Element` token this is, with its owner.
    async fn authenticate_instance(&self, token: &str) -> Result<Option<(Principal, InstanceId)>, StoreError>;
    /// The principal of a user secret alone (for `Authorization: User <u>, Element <t>`).
    async fn authenticate_user(&self, user_secret: &str) -> Result<Option<Principal>, StoreError>;
}

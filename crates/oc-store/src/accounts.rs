//! Organizations, users and API authentication: secrets are kept as SHA-256 hashes, looked up by hash and
//! compared in constant time.

use async_trait::async_trait;
use oc_model::InstanceId;
use oc_model::ports::{AccountStore, NewOrganization, Organization, Principal, StoreError};

use crate::SqlStore;
use crate::codec::{from_ns, ns};
use crate::db::{ConnRef, args};
use crate::key::{credential_hash, same_hash};

async fn find_org(c: &mut ConnRef<'_>, hash: &[u8]) -> Result<Option<Organization>, StoreError> {
    let row =
        c.opt("SELECT id, name, created_at FROM organizations WHERE secret_hash = $1", args![hash.to_vec()]).await?;
    row.map(|r| Ok(Organization { id: r.i64("id")?, name: r.text("name")?, created_at: from_ns(r.i64("created_at")?) }))
        .transpose()
}

async fn find_user(c: &mut ConnRef<'_>, hash: &[u8]) -> Result<Option<(i64, i64)>, StoreError> {
    let row = c.opt("SELECT id, org_id FROM users WHERE secret_hash = $1", args![hash.to_vec()]).await?;
    row.map(|r| Ok((r.i64("id")?, r.i64("org_id")?))).transpose()
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError> {
        let org_hash = credential_hash(&new.org_secret);
        let user_hash = credential_hash(&new.user_secret);
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let conflict = |e: StoreError, what: &str| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!("{what} is already in use")),
            other => other,
        };
        let org_id = c
            .one(
                "INSERT INTO organizations (name, secret_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
                args![&new.name, org_hash, ns(new.now)],
            )
            .await
            .map_err(|e| conflict(e, "this organization secret"))?
            .i64("id")?;
        let user_id = c
            .one(
                "INSERT INTO users (org_id, secret_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
                args![org_id, user_hash, ns(new.now)],
            )
            .await
            .map_err(|e| conflict(e, "this user secret"))?
            .i64("id")?;
        tx.commit().await?;
        let org = Organization { id: org_id, name: new.name.clone(), created_at: from_ns(ns(new.now)) };
        Ok((org, Principal { org_id, user_id }))
    }

    async fn ensure_organization(&self, new: &NewOrganization) -> Result<(Organization, Principal), StoreError> {
        let org_hash = credential_hash(&new.org_secret);
        let user_hash = credential_hash(&new.user_secret);
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        // ON CONFLICT DO NOTHING then read: two nodes bootstrapping at once end with one organization.
        c.exec(
            "INSERT INTO organizations (name, secret_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (secret_hash) DO NOTHING",
            args![&new.name, org_hash.clone(), ns(new.now)],
        )
        .await?;
        let org = find_org(&mut c, &org_hash)
            .await?
            .ok_or_else(|| StoreError::Database("the organization just ensured is missing".into()))?;
        c.exec(
            "INSERT INTO users (org_id, secret_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (secret_hash) DO NOTHING",
            args![org.id, user_hash.clone(), ns(new.now)],
        )
        .await?;
        let (user_id, user_org) = find_user(&mut c, &user_hash)
            .await?
            .ok_or_else(|| StoreError::Database("the user just ensured is missing".into()))?;
        if user_org != org.id {
            return Err(StoreError::Conflict("this user secret belongs to another organization".into()));
        }
        tx.commit().await?;
        Ok((org.clone(), Principal { org_id: org.id, user_id }))
    }

    async fn authenticate(&self, user_secret: &str, org_secret: &str) -> Result<Option<Principal>, StoreError> {
        let user_hash = credential_hash(user_secret);
        let org_hash = credential_hash(org_secret);
        let mut conn = self.pools.read().await?;
        let row = conn
            .c()
            .opt(
                "SELECT u.id, u.org_id, u.secret_hash AS user_hash, o.secret_hash AS org_hash \
                 FROM users u JOIN organizations o ON o.id = u.org_id WHERE u.secret_hash = $1",
                args![user_hash.clone()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        // Evaluate both comparisons: no early exit telling which secret was wrong.
        let user_ok = same_hash(&row.bytes("user_hash")?, &user_hash);
        let org_ok = same_hash(&row.bytes("org_hash")?, &org_hash);
        Ok((user_ok & org_ok).then_some(Principal { org_id: row.i64("org_id")?, user_id: row.i64("id")? }))
    }

    async fn authenticate_user(&self, user_secret: &str) -> Result<Option<Principal>, StoreError> {
        let hash = credential_hash(user_secret);
        let mut conn = self.pools.read().await?;
        let row = conn
            .c()
            .opt("SELECT id, org_id, secret_hash FROM users WHERE secret_hash = $1", args![hash.clone()])
            .await?;
        let Some(row) = row else { return Ok(None) };
        if !same_hash(&row.bytes("secret_hash")?, &hash) {
            return Ok(None);
        }
        Ok(Some(Principal { org_id: row.i64("org_id")?, user_id: row.i64("id")? }))
    }

    async fn authenticate_instance(&self, token: &str) -> Result<Option<(Principal, InstanceId)>, StoreError> {
        if token.is_empty() {
            return Ok(None);
        }
        let hash = credential_hash(token);
        let mut conn = self.pools.read().await?;
        let row = conn
            .c()
            .opt(
                "SELECT id, org_id, user_id, token_hash FROM instances WHERE token_hash = $1 AND deleted_at IS NULL",
                args![hash.clone()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored = row.opt_bytes("token_hash")?.unwrap_or_default();
        if !same_hash(&stored, &hash) {
            return Ok(None);
        }
        let principal = Principal { org_id: row.i64("org_id")?, user_id: row.i64("user_id")? };
        Ok(Some((principal, row.i64("id")?)))
    }
}

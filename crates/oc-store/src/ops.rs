//! Operations on the whole store, for the operator's commands (`ocpoll backup`, `ocpoll doctor`) rather than for
//! a port's caller: an online backup of a SQLite database, and every live instance at a glance.

use std::path::Path;

use oc_model::InstanceId;
use oc_model::config::Configuration;
use oc_model::ports::StoreError;

use crate::SqlStore;
use crate::db::args;

/// A live instance as the operator's checks see it: no secret in it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSummary {
    /// Id.
    pub id: InstanceId,
    /// Name.
    pub name: String,
    /// Its element.
    pub element_key: String,
    /// Switched off by the user.
    pub disabled: bool,
    /// False when re-authorization is required.
    pub valid: bool,
    /// The configuration's public values (the secret ones are not read).
    pub configuration: Configuration,
}

impl SqlStore {
    /// Writes a consistent copy of a SQLite database to `to` while it serves (`VACUUM INTO`: one read
    /// transaction, writers go on), readable only by its owner (0600). Refused on PostgreSQL (use `pg_dump`), and
    /// when `to` exists. The copy holds the secrets sealed as they are: it needs the same master key.
    pub async fn backup_sqlite(&self, to: &Path) -> Result<u64, StoreError> {
        if self.pools.is_pg() {
            return Err(StoreError::Conflict(
                "a PostgreSQL database is backed up with pg_dump (see docs/operations.md), not by ocpoll".into(),
            ));
        }
        if to.exists() {
            return Err(StoreError::Conflict(format!("{} exists: a backup never overwrites a file", to.display())));
        }
        let target = to.to_str().ok_or_else(|| StoreError::Conflict(format!("{} is not UTF-8", to.display())))?;
        let mut conn = self.pools.read().await?;
        conn.c().exec("VACUUM INTO $1", args![target]).await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::Database(format!("making {} private: {e}", to.display())))?;
        }
        std::fs::metadata(to)
            .map(|m| m.len())
            .map_err(|e| StoreError::Database(format!("reading {} after the backup: {e}", to.display())))
    }

    /// Every live instance, by id, with its public configuration.
    pub async fn instance_summaries(&self) -> Result<Vec<InstanceSummary>, StoreError> {
        let mut conn = self.pools.read().await?;
        let rows = conn
            .c()
            .all(
                "SELECT id, name, element_key, disabled, valid, configuration FROM instances \
                 WHERE deleted_at IS NULL ORDER BY id",
                args![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let configuration: Configuration = crate::codec::from_json("configuration", &r.text("configuration")?)?;
                Ok(InstanceSummary {
                    id: r.i64("id")?,
                    name: r.text("name")?,
                    element_key: r.text("element_key")?,
                    disabled: r.bool("disabled")?,
                    valid: r.bool("valid")?,
                    configuration,
                })
            })
            .collect()
    }
}

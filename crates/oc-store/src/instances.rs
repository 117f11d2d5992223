//! Instances and their poll jobs. The jobs of an instance follow its configuration: one per resource of
//! `event.poller.configuration`, created, changed (and made due at once) or removed with it.
//!
//! Secret configuration values are sealed as one JSON object bound to the instance id; the stored
//! configuration keeps every key in order, with `null` in place of a secret value.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::config::{Configuration, SecretKeys};
use oc_model::ports::{Instance, InstanceStore, InstanceUpdate, NewInstance, ProviderAccount, StoreError, TokenSet};
use oc_model::{InstanceId, OrgId};
use serde_json::{Map, Value, json};

use crate::SqlStore;
use crate::codec::{from_json, from_ns, ns, parse_time, time_text, to_json};
use crate::db::{ConnRef, Row, Val, args};
use crate::key::credential_hash;

const INSTANCE_COLUMNS: &str = "id, org_id, user_id, name, element_key, tags, configuration, config_secrets, account, \
     disabled, valid, invalid_reason, notifications_disabled_reason, created_at, updated_at, poll_start";

pub(crate) fn config_aad(id: InstanceId) -> String {
    format!("instance {id} configuration secrets")
}

pub(crate) fn access_aad(id: InstanceId) -> String {
    format!("instance {id} access token")
}

pub(crate) fn refresh_aad(id: InstanceId) -> String {
    format!("instance {id} refresh token")
}

fn account_json(account: &ProviderAccount) -> Result<String, StoreError> {
    to_json(&json!({"id": account.id, "name": account.name, "extra": account.extra}))
}

/// The stored account (accounts of earlier versions are renamed to this shape by migration 4).
fn parse_account(text: &str) -> Result<ProviderAccount, StoreError> {
    let mut v: Map<String, Value> = from_json("instance account", text)?;
    let mut text_of = |key: &str| match v.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let id = text_of("id");
    let name = text_of("name");
    Ok(ProviderAccount { id, name, extra: v.remove("extra").unwrap_or(Value::Null) })
}

/// What a poll job is made from: the resource, its configuration as stored (compared to notice changes) and
/// the instance's interval.
struct JobSpec {
    resource: String,
    config: String,
    interval_ms: i64,
    /// Where the resource's watermark starts: its own `backfill`, else the instance's `event.poller.backfill`.
    backfill: Option<DateTime<Utc>>,
}

fn job_specs(config: &Configuration) -> Result<Vec<JobSpec>, StoreError> {
    let invalid = |e: &dyn std::fmt::Display| StoreError::Conflict(format!("invalid instance configuration: {e}"));
    let configs = config.poller_configs().map_err(|e| invalid(&e))?;
    let interval = config.refresh_interval().map_err(|e| invalid(&e))?;
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let instance_backfill = config.backfill().map_err(|e| invalid(&e))?;
    configs
        .iter()
        .map(|(resource, c)| {
            Ok(JobSpec {
                resource: resource.to_string(),
                config: to_json(c)?,
                interval_ms,
                backfill: c.backfill.or(instance_backfill),
            })
        })
        .collect()
}

/// Makes the poll jobs of an instance match `specs`: new resources get a job due `now` starting its watermark at
/// `job_start`; a changed resource or interval makes the job due `now` (its state stays); removed resources lose
/// their job (a lease on it is then lost). A new backfill of a resource already polled, before its watermark,
/// replays it: the watermark moves back to the backfill and the engine reseeds its "already notified" set from
/// the outbox first.
async fn sync_jobs(
    c: &mut ConnRef<'_>,
    instance: InstanceId,
    specs: &[JobSpec],
    now: DateTime<Utc>,
    job_start: DateTime<Utc>,
) -> Result<(), StoreError> {
    let rows = c
        .all(
            "SELECT resource, config, interval_ms, backfill, watermark FROM poll_jobs WHERE instance_id = $1",
            args![instance],
        )
        .await?;
    let mut existing = HashMap::new();
    for r in rows {
        // '': a job of an earlier version, whose backfill is not known (migration 5)
        let backfill = match r.opt_text("backfill")?.as_deref() {
            None => Some(None),
            Some("") => None,
            Some(t) => Some(Some(parse_time(t)?)),
        };
        let watermark = r.opt_text("watermark")?.as_deref().map(parse_time).transpose()?;
        existing.insert(r.text("resource")?, (r.text("config")?, r.i64("interval_ms")?, backfill, watermark));
    }
    for spec in specs {
        match existing.remove(&spec.resource) {
            None => {
                c.exec(
                    "INSERT INTO poll_jobs (instance_id, resource, config, interval_ms, created_at, next_run_at, seen, \
                     backfill) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    args![
                        instance,
                        &spec.resource,
                        &spec.config,
                        spec.interval_ms,
                        time_text(job_start),
                        ns(now),
                        Vec::new(),
                        spec.backfill.map(time_text)
                    ],
                )
                .await?;
            }
            Some((config, interval_ms, backfill, watermark))
                if config != spec.config || interval_ms != spec.interval_ms || backfill != Some(spec.backfill) =>
            {
                c.exec(
                    "UPDATE poll_jobs SET config = $3, interval_ms = $4, next_run_at = $5, backfill = $6 \
                     WHERE instance_id = $1 AND resource = $2",
                    args![
                        instance,
                        &spec.resource,
                        &spec.config,
                        spec.interval_ms,
                        ns(now),
                        spec.backfill.map(time_text)
                    ],
                )
                .await?;
                // a new backfill before the watermark of a polled resource: replay it from there
                if let (Some(from), Some(w), Some(before)) = (spec.backfill, watermark, backfill)
                    && before != spec.backfill
                    && from < w
                {
                    c.exec(
                        "UPDATE poll_jobs SET watermark = $3, reseed = TRUE WHERE instance_id = $1 AND resource = $2",
                        args![instance, &spec.resource, time_text(from)],
                    )
                    .await?;
                }
            }
            Some(_) => {}
        }
    }
    for resource in existing.into_keys() {
        c.exec("DELETE FROM poll_jobs WHERE instance_id = $1 AND resource = $2", args![instance, resource]).await?;
    }
    Ok(())
}

impl SqlStore {
    /// The stored form of a configuration: the public JSON (secrets as `null`) and the sealed secrets.
    fn seal_config(
        &self,
        id: InstanceId,
        config: &Configuration,
        secret_keys: &SecretKeys,
    ) -> Result<(String, Option<Vec<u8>>), StoreError> {
        let mut public = Configuration::new();
        let mut secrets = Map::new();
        for (k, v) in config.iter() {
            if secret_keys.contains(k) {
                secrets.insert(k.to_string(), v.clone());
                public.insert(k, Value::Null);
            } else {
                public.insert(k, v.clone());
            }
        }
        let sealed = if secrets.is_empty() {
            None
        } else {
            Some(self.cipher.seal(&config_aad(id), to_json(&secrets)?.as_bytes())?)
        };
        Ok((to_json(&public)?, sealed))
    }

    fn open_config(&self, id: InstanceId, public: &str, sealed: Option<&[u8]>) -> Result<Configuration, StoreError> {
        let public: Configuration = from_json("instance configuration", public)?;
        let Some(sealed) = sealed else { return Ok(public) };
        let plain = self.cipher.open(&config_aad(id), sealed)?;
        let mut secrets: Map<String, Value> = serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Crypto(format!("decrypted configuration secrets are not JSON: {e}")))?;
        Ok(public.iter().map(|(k, v)| (k.to_string(), secrets.remove(k).unwrap_or_else(|| v.clone()))).collect())
    }

    pub(crate) fn instance_from_row(&self, r: &Row) -> Result<Instance, StoreError> {
        let id = r.i64("id")?;
        Ok(Instance {
            id,
            org_id: r.i64("org_id")?,
            user_id: r.i64("user_id")?,
            name: r.text("name")?,
            element_key: r.text("element_key")?,
            tags: from_json("instance tags", &r.text("tags")?)?,
            configuration: self.open_config(
                id,
                &r.text("configuration")?,
                r.opt_bytes("config_secrets")?.as_deref(),
            )?,
            account: parse_account(&r.text("account")?)?,
            disabled: r.bool("disabled")?,
            valid: r.bool("valid")?,
            invalid_reason: r.opt_text("invalid_reason")?,
            notifications_disabled_reason: r.opt_text("notifications_disabled_reason")?,
            created_at: from_ns(r.i64("created_at")?),
            updated_at: from_ns(r.i64("updated_at")?),
            poll_start: parse_time(&r.text("poll_start")?)?,
        })
    }

    /// A live (not deleted) instance, optionally of one organization.
    pub(crate) async fn load_instance(
        &self,
        c: &mut ConnRef<'_>,
        id: InstanceId,
        org: Option<OrgId>,
        lock: bool,
    ) -> Result<Option<Instance>, StoreError> {
        let lock = if lock && c.is_pg() { " FOR UPDATE" } else { "" };
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1 AND deleted_at IS NULL \
             AND ($2 IS NULL OR org_id = $2){lock}"
        );
        let row = c.opt(&sql, args![id, org]).await?;
        row.map(|r| self.instance_from_row(&r)).transpose()
    }

    /// Any live instance by id, for tests and tools (the engines get their instance with their claims).
    pub async fn instance_by_id(&self, id: InstanceId) -> Result<Option<Instance>, StoreError> {
        let mut conn = self.pools.read().await?;
        self.load_instance(&mut conn.c(), id, None, false).await
    }

    /// The live instances among `ids` (each read once, on a reader connection), shared by id.
    pub(crate) async fn instances_by_id(
        &self,
        ids: &[InstanceId],
    ) -> Result<HashMap<InstanceId, Arc<Instance>>, StoreError> {
        let mut distinct: Vec<InstanceId> = ids.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.is_empty() {
            return Ok(HashMap::new());
        }
        let mut conn = self.pools.read().await?;
        let mut c = conn.c();
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE deleted_at IS NULL AND id IN ({})",
            c.placeholders(1, distinct.len())
        );
        let rows = c.all(&sql, distinct.into_iter().map(Val::I64).collect()).await?;
        rows.iter().map(|r| self.instance_from_row(r).map(|i| (i.id, Arc::new(i)))).collect()
    }

    /// Writes the tokens of an instance (insert or replace), sealed.
    pub(crate) async fn write_tokens(
        &self,
        c: &mut ConnRef<'_>,
        id: InstanceId,
        tokens: &TokenSet,
    ) -> Result<(), StoreError> {
        let access = self.cipher.seal(&access_aad(id), tokens.access_token.expose().as_bytes())?;
        let refresh = self.cipher.seal(&refresh_aad(id), tokens.refresh_token.expose().as_bytes())?;
        c.exec(
            "INSERT INTO instance_tokens (instance_id, access_token, refresh_token, expires_at, refresh_expires_at, scope) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (instance_id) DO UPDATE SET access_token = excluded.access_token, \
             refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, \
             refresh_expires_at = excluded.refresh_expires_at, scope = excluded.scope",
            args![
                id,
                access,
                refresh,
                time_text(tokens.expires_at),
                tokens.refresh_expires_at.map(time_text),
                tokens.scope.clone()
            ],
        )
        .await?;
        Ok(())
    }
}

impl SqlStore {
    /// Writes `update` over `current`, read (locked) in the transaction of `c`; the instance as it then is.
    async fn apply_update(
        &self,
        c: &mut ConnRef<'_>,
        current: &Instance,
        update: &InstanceUpdate,
    ) -> Result<Instance, StoreError> {
        let id = current.id;
        let specs = update.configuration.as_ref().map(job_specs).transpose()?;
        let now = update.now;
        if let Some(name) = &update.name {
            c.exec("UPDATE instances SET name = $2 WHERE id = $1", args![id, name]).await?;
        }
        if let Some(tags) = &update.tags {
            c.exec("UPDATE instances SET tags = $2 WHERE id = $1", args![id, to_json(tags)?]).await?;
        }
        if let (Some(config), Some(specs)) = (&update.configuration, &specs) {
            // A changed signature key: the one it replaces keeps signing for the overlap. Decided here, in the
            // write transaction, against the stored configuration, so two concurrent updates cannot lose it.
            let config = &config.clone().with_key_rotation(Some(&current.configuration), now);
            let (public, sealed) = self.seal_config(id, config, &update.secret_keys)?;
            let was_enabled = current.configuration.notifications_enabled().unwrap_or(false);
            let enabled = config.notifications_enabled().unwrap_or(false);
            // A receiver that answered 410 is asked again once the user points elsewhere or switches
            // notifications back on.
            let clear_gone = (enabled && (!was_enabled || update.reenable_notifications))
                || config.notification_callback_url() != current.configuration.notification_callback_url();
            c.exec(
                "UPDATE instances SET configuration = $2, config_secrets = $3, notifications_enabled = $4, \
                 notifications_disabled_reason = CASE WHEN $5 THEN NULL ELSE notifications_disabled_reason END \
                 WHERE id = $1",
                args![id, public, sealed, enabled, clear_gone],
            )
            .await?;
            // A resource added later starts on the provider's clock as the first ones did.
            let offset = current.poll_start - current.created_at;
            let job_start = now.checked_add_signed(offset).unwrap_or(now);
            sync_jobs(c, id, specs, now, job_start).await?;
        }
        if let Some((tokens, account)) = &update.authorization {
            self.write_tokens(c, id, tokens).await?;
            c.exec(
                "UPDATE instances SET account = $2, valid = TRUE, invalid_reason = NULL WHERE id = $1",
                args![id, account_json(account)?],
            )
            .await?;
            // A new grant is a fresh start: the jobs are due at once instead of waiting out the backoff that the
            // failed polls (the invalid_grant one included) scheduled.
            c.exec(
                "UPDATE poll_jobs SET consecutive_failures = 0, failing_since = NULL, failing_alerted = FALSE, \
                 next_run_at = CASE WHEN next_run_at > $2 THEN $2 ELSE next_run_at END WHERE instance_id = $1",
                args![id, ns(now)],
            )
            .await?;
        }
        c.exec("UPDATE instances SET updated_at = $2 WHERE id = $1", args![id, ns(now)]).await?;
        self.load_instance(c, id, None, false).await?.ok_or_else(|| not_found(id))
    }
}

fn not_found(id: InstanceId) -> StoreError {
    StoreError::NotFound(format!("instance {id}"))
}

#[async_trait]
impl InstanceStore for SqlStore {
    async fn create_instance(&self, new: &NewInstance) -> Result<Instance, StoreError> {
        let specs = job_specs(&new.configuration)?;
        let notifications = new.configuration.notifications_enabled().unwrap_or(false);
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let id = c
            .one(
                "INSERT INTO instances (org_id, user_id, name, element_key, tags, configuration, account, \
                 notifications_enabled, token_hash, created_at, updated_at, poll_start) \
                 VALUES ($1, $2, $3, $4, $5, '{}', $6, $7, $8, $9, $9, $10) RETURNING id",
                args![
                    new.org_id,
                    new.user_id,
                    &new.name,
                    &new.element_key,
                    to_json(&new.tags)?,
                    account_json(&new.account)?,
                    notifications,
                    credential_hash(&new.token),
                    ns(new.now),
                    time_text(new.poll_start)
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("this instance token is already in use".into()),
                other => other,
            })?
            .i64("id")?;
        // The secrets are bound to the id, known only now. The keys of a key rotation are ocpoll's: none yet.
        let configuration = new.configuration.clone().with_key_rotation(None, new.now);
        let (public, sealed) = self.seal_config(id, &configuration, &new.secret_keys)?;
        c.exec("UPDATE instances SET configuration = $2, config_secrets = $3 WHERE id = $1", args![id, public, sealed])
            .await?;
        self.write_tokens(&mut c, id, &new.tokens).await?;
        sync_jobs(&mut c, id, &specs, new.now, new.poll_start).await?;
        let instance = self.load_instance(&mut c, id, None, false).await?.ok_or_else(|| not_found(id))?;
        tx.commit().await?;
        Ok(instance)
    }

    async fn instance(&self, org: OrgId, id: InstanceId) -> Result<Option<Instance>, StoreError> {
        let mut conn = self.pools.read().await?;
        self.load_instance(&mut conn.c(), id, Some(org), false).await
    }

    async fn list_instances(&self, org: OrgId, tags: &[String]) -> Result<Vec<Instance>, StoreError> {
        let mut conn = self.pools.read().await?;
        let sql =
            format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE org_id = $1 AND deleted_at IS NULL ORDER BY id");
        let rows = conn.c().all(&sql, args![org]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let tags_of: Vec<String> = from_json("instance tags", &r.text("tags")?)?;
            if tags.iter().all(|t| tags_of.contains(t)) {
                out.push(self.instance_from_row(r)?);
            }
        }
        Ok(out)
    }

    async fn update_instance(
        &self,
        org: OrgId,
        id: InstanceId,
        update: &InstanceUpdate,
    ) -> Result<Instance, StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let current = self.load_instance(&mut c, id, Some(org), true).await?.ok_or_else(|| not_found(id))?;
        let instance = self.apply_update(&mut c, &current, update).await?;
        tx.commit().await?;
        Ok(instance)
    }

    async fn modify_instance(
        &self,
        org: OrgId,
        id: InstanceId,
        change: &mut (dyn for<'i> FnMut(&'i Instance) -> Option<InstanceUpdate> + Send),
    ) -> Result<Option<Instance>, StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let current = self.load_instance(&mut c, id, Some(org), true).await?.ok_or_else(|| not_found(id))?;
        let Some(update) = change(&current) else {
            tx.rollback().await;
            return Ok(None);
        };
        let instance = self.apply_update(&mut c, &current, &update).await?;
        tx.commit().await?;
        Ok(Some(instance))
    }

    async fn set_disabled(
        &self,
        org: OrgId,
        id: InstanceId,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<Instance, StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        let n = c
            .exec(
                "UPDATE instances SET disabled = $3, updated_at = $4, \
                 notifications_disabled_reason = CASE WHEN $3 THEN notifications_disabled_reason ELSE NULL END \
                 WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
                args![id, org, disabled, ns(now)],
            )
            .await?;
        if n == 0 {
            return Err(not_found(id));
        }
        let instance = self.load_instance(&mut c, id, None, false).await?.ok_or_else(|| not_found(id))?;
        tx.commit().await?;
        Ok(instance)
    }

    async fn delete_instance(&self, org: OrgId, id: InstanceId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.pools.write().await?;
        let mut c = tx.c();
        // The row stays (its events and notifications are kept for the record); its token and secrets go.
        let n = c
            .exec(
                "UPDATE instances SET deleted_at = $3, updated_at = $3, token_hash = NULL, config_secrets = NULL \
                 WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
                args![id, org, ns(now)],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        c.exec("DELETE FROM poll_jobs WHERE instance_id = $1", args![id]).await?;
        c.exec("DELETE FROM instance_tokens WHERE instance_id = $1", args![id]).await?;
        // a re-authentication in flight carries the instance's secrets, and could only fail at its callback
        c.exec("DELETE FROM oauth_rounds WHERE instance_id = $1", args![id]).await?;
        c.exec(
            "UPDATE notifications SET status = 'dropped', next_attempt_at = NULL, lease_owner = NULL, \
             lease_expires_at = NULL, lease_generation = lease_generation + 1 \
             WHERE instance_id = $1 AND status IN ('pending', 'delivering')",
            args![id],
        )
        .await?;
        c.exec(
            "UPDATE events SET dropped = TRUE WHERE instance_id = $1 AND notification_id IS NULL AND NOT dropped",
            args![id],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

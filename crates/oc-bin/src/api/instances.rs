//! `/instances`: create (exchanging the OAuth code), list, read, replace, patch, delete, enable/disable, and the
//! configuration entries.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use oc_model::config::{Configuration, SecretKeys, keys};
use oc_model::ids::InstanceId;
use oc_model::instance::{InstanceResponse, UserRef};
use oc_model::ports::{Instance, InstanceUpdate, NewInstance, OAuthApp, Principal, Provider, Session};
use oc_model::secret::MASK;
use oc_model::{Problem, Problems};
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::callbacks::{check_body, check_callbacks};
use crate::validation::{Checked, check_instance_body};

fn parse_body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid("", "the request needs a JSON body"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid("", format!("the body is not valid JSON: {e}")))
}

fn invalid(problems: Problems) -> ApiError {
    ApiError::Invalid { message: format!("the instance has {} problem(s)", problems.0.len()), problems: problems.0 }
}

/// The secret configuration keys of an element: Open Connectors' and its provider's.
pub(crate) fn secret_keys(state: &AppState, element_key: &str) -> SecretKeys {
    state.providers.spec(element_key).map(|spec| spec.secret_keys()).unwrap_or_default()
}

/// An instance as the API shows it.
pub(super) fn to_response(
    state: &AppState,
    i: &Instance,
    token: Option<String>,
    warnings: Vec<Problem>,
) -> InstanceResponse {
    InstanceResponse {
        id: i.id,
        name: i.name.clone(),
        token,
        element: state.providers.element(&i.element_key),
        valid: i.valid,
        valid_message: i.invalid_reason.clone(),
        disabled: i.disabled,
        // off while a receiver's `410 Gone` holds them off
        events_enabled: i.configuration.notifications_enabled().unwrap_or(false)
            && i.notifications_disabled_reason.is_none(),
        events_disabled_reason: i.notifications_disabled_reason.clone(),
        configuration: i.configuration.to_response(&secret_keys(state, &i.element_key)),
        tags: i.tags.clone(),
        created_date: i.created_at,
        updated_date: Some(i.updated_at),
        user: UserRef { id: i.user_id },
        warnings,
    }
}

/// The provider session of an instance (its tokens in the store's vault).
pub(super) fn session(state: &AppState, i: &Instance) -> Result<Session, ApiError> {
    Session::of(i, state.vault.clone()).map_err(invalid)
}

/// True when `config` sets `event.notification.enabled` to true: notifications switched off by a receiver's
/// `410 Gone` come back on, whatever the stored value was.
fn asks_notifications(config: &Configuration) -> bool {
    config.get(keys::NOTIFICATION_ENABLED).and_then(oc_model::config::lenient_bool) == Some(true)
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn exchange(
    provider: &Arc<dyn Provider>,
    config: &Configuration,
    code: &str,
) -> Result<oc_model::ports::Grant, ApiError> {
    let app = OAuthApp::of(config).map_err(invalid)?;
    Ok(provider.exchange_code(&app, code, config).await?)
}

/// An instance just created, with its `Element` token (shown once) and the warnings of its body.
pub(crate) struct Created {
    /// The instance as stored.
    pub instance: Instance,
    /// Its `Element` token in clear; only its hash is stored.
    pub token: String,
    /// The warnings every layer found in the body (a repaired quote, say).
    pub warnings: Vec<Problem>,
}

/// Creates an instance from a `POST /instances` body for `principal`: validates the body with every layer's
/// rules, exchanges `providerData.code` with the provider, and stores the instance with its tokens. The one path
/// of both the API's `POST /instances` and the console's OAuth callback, so that both accept the same bodies and
/// give the same warnings.
pub(crate) async fn create_instance(state: &AppState, principal: Principal, body: &Value) -> Result<Created, ApiError> {
    let now = state.clock.now();
    let Checked { validated, warnings } = check_body(state, body, true, now).await.map_err(invalid)?;
    let request = validated.request;
    let provider = state.provider(&request.element.key)?.clone();
    let code = request.provider_data.code.clone().unwrap_or_default();
    let grant = exchange(&provider, &request.configuration, &code).await?;
    let token = new_token();
    let instance = state
        .store
        .create_instance(&NewInstance {
            org_id: principal.org_id,
            user_id: principal.user_id,
            name: request.name.clone(),
            element_key: request.element.key.clone(),
            tags: request.tags.clone(),
            configuration: request.configuration.clone(),
            secret_keys: secret_keys(state, &request.element.key),
            account: grant.account,
            tokens: grant.tokens,
            token: token.clone(),
            now,
            poll_start: grant.provider_time.unwrap_or(now),
        })
        .await?;
    tracing::info!(instance = instance.id, element = %instance.element_key, "instance created");
    Ok(Created { instance, token, warnings })
}

/// Authorizes an existing instance again with a new code obtained through `redirect_uri` (the console's
/// re-authentication): the code is exchanged with the instance's own app, and the new tokens and account
/// replace the old ones; `oauth.callback.url` becomes `redirect_uri`, the one the code was issued for.
pub(crate) async fn reauthorize(
    state: &AppState,
    principal: Principal,
    existing: &Instance,
    redirect_uri: &str,
    code: &str,
) -> Result<Instance, ApiError> {
    let provider = state.provider(&existing.element_key)?.clone();
    let mut configuration = existing.configuration.clone();
    configuration.insert(keys::OAUTH_CALLBACK_URL, Value::String(redirect_uri.to_string()));
    let grant = exchange(&provider, &configuration, code).await?;
    let (now, secret_keys) = (state.clock.now(), secret_keys(state, &existing.element_key));
    let mut authorization = Some((grant.tokens, grant.account));
    // against the configuration as stored when the new tokens are written, so no change made meanwhile is lost
    let updated = state
        .store
        .modify_instance(principal.org_id, existing.id, &mut |current| {
            let mut configuration = current.configuration.clone();
            configuration.insert(keys::OAUTH_CALLBACK_URL, Value::String(redirect_uri.to_string()));
            Some(InstanceUpdate {
                configuration: Some(configuration),
                secret_keys: secret_keys.clone(),
                authorization: authorization.take(),
                now,
                ..InstanceUpdate::default()
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("instance {} not found", existing.id)))?;
    tracing::info!(instance = updated.id, "instance authorized again");
    Ok(updated)
}

/// `POST /instances`.
pub(super) async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let Created { instance, token, warnings } = create_instance(&state, caller.principal, &body).await?;
    Ok((StatusCode::OK, Json(to_response(&state, &instance, Some(token), warnings))).into_response())
}

/// `GET /instances[?tags[]=x]`.
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<InstanceResponse>>, ApiError> {
    let tags: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "tags[]" || k == "tags")
        .map(|(_, v)| v.into_owned())
        .collect();
    let mut found = state.store.list_instances(caller.principal.org_id, &tags).await?;
    if let Some(own) = caller.instance {
        found.retain(|i| i.id == own);
    }
    Ok(Json(found.iter().map(|i| to_response(&state, i, None, vec![])).collect()))
}

/// The instance `id` as `caller` may see it.
pub(crate) async fn load(state: &AppState, caller: &Caller, id: InstanceId) -> Result<Instance, ApiError> {
    caller.may_address(id)?;
    state
        .store
        .instance(caller.principal.org_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("instance {id} not found")))
}

/// The instance of the caller's `Element` token; 403 when it is disabled.
pub(super) async fn load_own(state: &AppState, caller: &Caller) -> Result<Instance, ApiError> {
    let id = caller.element_instance()?;
    let i = load(state, caller, id).await?;
    if i.disabled {
        return Err(ApiError::Forbidden(format!("instance {id} is disabled")));
    }
    Ok(i)
}

/// `GET /instances/{id}`.
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
) -> Result<Json<InstanceResponse>, ApiError> {
    let i = load(&state, &caller, id).await?;
    Ok(Json(to_response(&state, &i, None, vec![])))
}

/// `PUT /instances/{id}`: full update; a `providerData.code` re-authorizes.
pub(super) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    body: Bytes,
) -> Result<Json<InstanceResponse>, ApiError> {
    let existing = load(&state, &caller, id).await?;
    let mut body = parse_body(&body)?;
    if !body.is_object() {
        return Err(ApiError::invalid("", "the body must be a JSON object"));
    }
    if let Some(obj) = body.as_object_mut() {
        obj.entry("element").or_insert_with(|| json!({"key": existing.element_key}));
        obj.entry("name").or_insert_with(|| json!(existing.name));
    }
    let now = state.clock.now();
    let secret_keys = secret_keys(&state, &existing.element_key);
    keep_masked_secrets(&mut body, &existing.configuration, &secret_keys);
    // A PUT replaces the whole configuration: it is checked as a create's is (the OAuth app's keys included, which
    // the instance needs to refresh its tokens), every problem at once; only `providerData.code` is optional.
    let mut problems = missing_oauth_keys(&body);
    let checked = check_body(&state, &body, false, now).await;
    let Checked { validated, warnings } = match checked {
        Ok(checked) if problems.is_empty() => checked,
        Ok(_) => return Err(invalid(problems)),
        Err(found) => {
            let mut all = found;
            all.0.append(&mut problems.0);
            return Err(invalid(all));
        }
    };
    let request = validated.request;
    if request.element.key != existing.element_key {
        return Err(ApiError::invalid("element.key", "the element of an instance cannot change"));
    }
    let authorization = match request.provider_data.code.as_deref() {
        Some(code) => {
            let provider = state.provider(&existing.element_key)?.clone();
            let grant = exchange(&provider, &request.configuration, code).await?;
            Some((grant.tokens, grant.account))
        }
        None => None,
    };
    let reenable_notifications = asks_notifications(&request.configuration);
    let update = InstanceUpdate {
        name: Some(request.name),
        tags: Some(request.tags),
        configuration: Some(request.configuration),
        secret_keys,
        reenable_notifications,
        authorization,
        now,
    };
    let updated = state.store.update_instance(caller.principal.org_id, id, &update).await?;
    Ok(Json(to_response(&state, &updated, None, warnings)))
}

/// The OAuth app keys an instance cannot do without (to refresh its tokens): a problem for each one `body`'s
/// configuration lacks. Nothing when the configuration is not an object (the body's check says so).
fn missing_oauth_keys(body: &Value) -> Problems {
    let mut problems = Problems::default();
    if let Some(Value::Object(config)) = body.get("configuration") {
        for key in [keys::OAUTH_API_KEY, keys::OAUTH_API_SECRET, keys::OAUTH_CALLBACK_URL] {
            if config.get(key).is_none_or(Value::is_null) {
                problems.push(
                    oc_model::config::config_path(key),
                    "missing: the instance needs it to refresh its OAuth tokens, and a PUT replaces the whole \
                     configuration",
                );
            }
        }
    }
    problems
}

/// A secret given back as the API shows it (`********`) keeps its stored value: a configuration read and sent
/// back unchanged does not overwrite its secrets with the mask.
fn keep_masked_secrets(body: &mut Value, stored: &Configuration, secrets: &SecretKeys) {
    let Some(Value::Object(config)) = body.get_mut("configuration") else { return };
    for (key, value) in config.iter_mut() {
        if value.as_str() == Some(MASK)
            && secrets.contains(key)
            && let Some(kept) = stored.get(key)
        {
            *value = kept.clone();
        }
    }
}

/// A partial update as asked: each field `None` when left as it is.
struct Patch {
    name: Option<String>,
    tags: Option<Vec<String>>,
    configuration: Option<Configuration>,
}

impl Patch {
    /// Reads a `PATCH` body, every problem at once.
    fn read(patch: &Value) -> Result<Patch, ApiError> {
        let Some(obj) = patch.as_object() else {
            return Err(ApiError::invalid("", "the body must be a JSON object"));
        };
        let mut problems = Problems::default();
        let name = match obj.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => {
                problems.push("name", "expected a non-empty string");
                None
            }
        };
        let tags = match obj.get("tags") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                Some(a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect::<Vec<_>>())
            }
            Some(_) => {
                problems.push("tags", "expected an array of strings");
                None
            }
        };
        let configuration = match obj.get("configuration") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Some(_) => {
                problems.push("configuration", "expected an object of configuration keys");
                None
            }
        };
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Ok(Patch { name, tags, configuration })
    }

    /// The update this patch makes of `current` (the instance as stored), with the warnings of the result; the
    /// result is checked as a whole, every problem at once.
    fn update_of(
        &self,
        state: &AppState,
        current: &Instance,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(InstanceUpdate, Vec<Problem>), Problems> {
        let secret_keys = secret_keys(state, &current.element_key);
        let configuration = self.configuration.as_ref().map(|patch| {
            let mut patch = patch.clone();
            for (key, value) in patch.clone().iter() {
                if value.as_str() == Some(MASK)
                    && secret_keys.contains(key)
                    && let Some(kept) = current.configuration.get(key)
                {
                    patch.insert(key, kept.clone());
                }
            }
            let mut merged = current.configuration.clone();
            merged.merge(&patch);
            merged
        });
        let full = json!({
            "element": {"key": current.element_key},
            "name": self.name.clone().unwrap_or_else(|| current.name.clone()),
            "tags": self.tags.clone().unwrap_or_else(|| current.tags.clone()),
            "configuration": configuration.as_ref().unwrap_or(&current.configuration),
        });
        let Checked { warnings, .. } = check_instance_body(&full, &state.providers, false, now)?;
        let reenable_notifications = self.configuration.as_ref().is_some_and(asks_notifications);
        let update = InstanceUpdate {
            name: self.name.clone(),
            tags: self.tags.clone(),
            configuration,
            secret_keys,
            reenable_notifications,
            authorization: None,
            now,
        };
        Ok((update, warnings))
    }
}

/// Applies a partial update (`name`, `tags`, `configuration` merged by key) to the instance `id`: merged with
/// and checked against the instance as stored, inside the write that stores the result
/// ([`InstanceStore::modify_instance`](oc_model::ports::InstanceStore::modify_instance)), so concurrent patches
/// all keep their keys.
async fn apply_patch(
    state: &AppState,
    caller: &Caller,
    id: InstanceId,
    patch: Value,
) -> Result<(Instance, Vec<Problem>), ApiError> {
    let patch = Patch::read(&patch)?;
    let now = state.clock.now();
    // the callback URLs the patch sets are checked before the write (the check may resolve a name): the merge
    // and the rest of the validation run inside it
    if let Some(configuration) = &patch.configuration {
        let body = json!({"configuration": configuration});
        check_callbacks(&body, state.allow_private_callbacks).await.map_err(invalid)?;
    }
    let mut verdict: Option<Result<Vec<Problem>, Problems>> = None;
    let updated = state
        .store
        .modify_instance(caller.principal.org_id, id, &mut |current| match patch.update_of(state, current, now) {
            Ok((update, warnings)) => {
                verdict = Some(Ok(warnings));
                Some(update)
            }
            Err(problems) => {
                verdict = Some(Err(problems));
                None
            }
        })
        .await?;
    match (updated, verdict) {
        (Some(updated), Some(Ok(warnings))) => {
            state.wakers.dispatcher.notify_one();
            Ok((updated, warnings))
        }
        (_, Some(Err(problems))) => Err(invalid(problems)),
        _ => Err(ApiError::NotFound(format!("instance {id} not found"))),
    }
}

/// `PATCH /instances/{id}`.
pub(super) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
    body: Bytes,
) -> Result<Json<InstanceResponse>, ApiError> {
    load(&state, &caller, id).await?;
    let patch = parse_body(&body)?;
    let (updated, warnings) = apply_patch(&state, &caller, id, patch).await?;
    Ok(Json(to_response(&state, &updated, None, warnings)))
}

/// `PATCH /instances` with an `Element` token.
pub(super) async fn patch_own(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<InstanceResponse>, ApiError> {
    let existing = load_own(&state, &caller).await?;
    let patch = parse_body(&body)?;
    let (updated, warnings) = apply_patch(&state, &caller, existing.id, patch).await?;
    Ok(Json(to_response(&state, &updated, None, warnings)))
}

/// `DELETE /instances/{id}`.
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
) -> Result<StatusCode, ApiError> {
    caller.may_address(id)?;
    if state.store.delete_instance(caller.principal.org_id, id, state.clock.now()).await? {
        tracing::info!(instance = id, "instance deleted");
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::NotFound(format!("instance {id} not found")))
    }
}

async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    id: InstanceId,
    disabled: bool,
) -> Result<InstanceResponse, ApiError> {
    load(state, caller, id).await?;
    let i = state.store.set_disabled(caller.principal.org_id, id, disabled, state.clock.now()).await?;
    state.wakers.dispatcher.notify_one();
    Ok(to_response(state, &i, None, vec![]))
}

/// `PUT /instances/{id}/enabled`.
pub(super) async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
) -> Result<Json<InstanceResponse>, ApiError> {
    Ok(Json(set_disabled(&state, &caller, id, false).await?))
}

/// `DELETE /instances/{id}/enabled`.
pub(super) async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
) -> Result<Json<InstanceResponse>, ApiError> {
    Ok(Json(set_disabled(&state, &caller, id, true).await?))
}

/// One configuration entry as Open Connectors lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConfigEntry {
    id: i64,
    key: String,
    name: String,
    property_value: Value,
    secret: bool,
}

/// A stable numeric id of a configuration key (FNV-1a, 53 bits so it survives JavaScript clients).
pub(super) fn config_id(key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h & ((1 << 53) - 1)) as i64
}

fn entries(state: &AppState, i: &Instance) -> Vec<ConfigEntry> {
    let secrets = secret_keys(state, &i.element_key);
    let spec = state.providers.spec(&i.element_key);
    let key_spec = |k: &str| spec.and_then(|s| s.key_spec(k)).or_else(|| oc_model::config::key_spec(k));
    i.configuration
        .iter()
        .map(|(k, v)| ConfigEntry {
            id: config_id(k),
            key: k.to_string(),
            name: key_spec(k).map(|s| s.description.to_string()).unwrap_or_else(|| k.to_string()),
            property_value: if secrets.contains(k) && !v.is_null() {
                Value::String(MASK.into())
            } else {
                match v {
                    Value::String(_) | Value::Null => v.clone(),
                    other => Value::String(other.to_string()),
                }
            },
            secret: secrets.contains(k),
        })
        .collect()
}

fn find_entry<'a>(config: &'a Configuration, config_id_or_key: &str) -> Option<&'a str> {
    config.iter().map(|(k, _)| k).find(|k| *k == config_id_or_key || config_id(k).to_string() == config_id_or_key)
}

/// `GET /instances/{id}/configuration`.
pub(super) async fn configuration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<InstanceId>,
) -> Result<Json<Vec<ConfigEntry>>, ApiError> {
    let i = load(&state, &caller, id).await?;
    Ok(Json(entries(&state, &i)))
}

/// `GET /instances/configuration` with an `Element` token.
pub(super) async fn own_configuration(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ConfigEntry>>, ApiError> {
    let i = load_own(&state, &caller).await?;
    Ok(Json(entries(&state, &i)))
}

fn entry_of(state: &AppState, i: &Instance, config_id: &str) -> Result<ConfigEntry, ApiError> {
    let key = find_entry(&i.configuration, config_id)
        .ok_or_else(|| ApiError::NotFound(format!("configuration entry {config_id} not found")))?;
    entries(state, i)
        .into_iter()
        .find(|e| e.key == key)
        .ok_or_else(|| ApiError::NotFound(format!("configuration entry {config_id} not found")))
}

/// `GET /instances/{id}/configuration/{configId}`.
pub(super) async fn configuration_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, config_id)): Path<(InstanceId, String)>,
) -> Result<Json<ConfigEntry>, ApiError> {
    let i = load(&state, &caller, id).await?;
    Ok(Json(entry_of(&state, &i, &config_id)?))
}

/// `GET /instances/configuration/{configId}` with an `Element` token.
pub(super) async fn own_configuration_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(config_id): Path<String>,
) -> Result<Json<ConfigEntry>, ApiError> {
    let i = load_own(&state, &caller).await?;
    Ok(Json(entry_of(&state, &i, &config_id)?))
}

async fn patch_entry(
    state: &AppState,
    caller: &Caller,
    i: Instance,
    config_id: &str,
    body: &Bytes,
) -> Result<ConfigEntry, ApiError> {
    let body = parse_body(body)?;
    let key = match find_entry(&i.configuration, config_id) {
        Some(k) => k.to_string(),
        None => match body.get("key").and_then(Value::as_str) {
            Some(k) if k == config_id => k.to_string(),
            _ => return Err(ApiError::NotFound(format!("configuration entry {config_id} not found"))),
        },
    };
    let value = body.get("propertyValue").cloned().ok_or_else(|| ApiError::invalid("propertyValue", "missing"))?;
    let patch = json!({ "configuration": { key.clone(): value } });
    let (updated, _) = apply_patch(state, caller, i.id, patch).await?;
    entries(state, &updated)
        .into_iter()
        .find(|e| e.key == key)
        .ok_or_else(|| ApiError::NotFound(format!("configuration entry {config_id} was removed")))
}

/// `PATCH /instances/{id}/configuration/{configId}`: body `{"propertyValue": ...}`.
pub(super) async fn patch_configuration_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, config_id)): Path<(InstanceId, String)>,
    body: Bytes,
) -> Result<Json<ConfigEntry>, ApiError> {
    let i = load(&state, &caller, id).await?;
    Ok(Json(patch_entry(&state, &caller, i, &config_id, &body).await?))
}

/// `PATCH /instances/configuration/{configId}` with an `Element` token.
pub(super) async fn patch_own_configuration_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(config_id): Path<String>,
    body: Bytes,
) -> Result<Json<ConfigEntry>, ApiError> {
    let i = load_own(&state, &caller).await?;
    Ok(Json(patch_entry(&state, &caller, i, &config_id, &body).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_ids_are_stable_and_small() {
        let id = config_id("event.poller.refresh_interval");
        assert_eq!(id, config_id("event.poller.refresh_interval"));
        assert!(id > 0 && id < (1 << 53));
        assert_ne!(id, config_id("event.poller.configuration"));
    }
}

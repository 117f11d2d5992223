//! OAuth with Sage: the authorize URL, the code exchange (and the choice of the business), and the refresh of
//! rotating refresh tokens.
//!
//! Sage rotates the refresh token on every use, so a refresh is single-flight: per instance inside this process
//! (a mutex), and across nodes through the vault's refresh lock. Under both, the tokens are read again (another
//! task or node may have refreshed meanwhile), the token endpoint is called, and the new tokens are saved with
//! [`TokenVault::save_refreshed`](oc_model::ports::TokenVault::save_refreshed) **before** the new access token is
//! used; that one write also releases the cross-node lock, so a refresh costs the store two writes (lock, save)
//! and two reads (the tokens before, and again under the lock; a third only after waiting for another task of
//! this process). `invalid_grant` marks the instance invalid and fails with
//! [`ProviderError::ReauthorizationRequired`]; it is never retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use oc_model::Secret;
use oc_model::ports::{
    Grant, OAuthApp, OAuthUrlRequest, ProviderAccount, ProviderError, Session, StoreError, TokenSet,
};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use std::time::Duration;

use crate::config::RetryPolicy;
use crate::http::{Answer, Resend, api_error, backoff, describe, header_date, snippet};
use crate::provider::Inner;
use crate::stats::RefreshOutcome;

/// Sage's token answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_token_expires_in: Option<Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    requested_by_id: Option<Value>,
}

/// Access tokens live five minutes when Sage does not say.
const DEFAULT_EXPIRES_IN: i64 = 300;

fn seconds(v: &Option<Value>) -> Option<i64> {
    match v.as_ref()? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// How a token request failed.
enum TokenFailure {
    InvalidGrant(String),
    InvalidClient(String),
    Other(ProviderError),
}

static HOLDER_SEQ: AtomicU64 = AtomicU64::new(0);

impl Inner {
    /// The authorize URL: Sage's, plus `response_type=code`, `client_id`, `redirect_uri`, `scope`, and `state` and
    /// `country` when given.
    pub(crate) fn oauth_url(&self, request: &OAuthUrlRequest) -> Result<String, ProviderError> {
        if request.client_id.trim().is_empty() {
            return Err(ProviderError::Other("the client id (apiKey) is required".into()));
        }
        if request.redirect_uri.trim().is_empty() {
            return Err(ProviderError::Other("the redirect uri (callbackUrl) is required".into()));
        }
        let mut url = Url::parse(&self.config.authorize_url)
            .map_err(|e| ProviderError::Other(format!("invalid sage authorize url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &request.client_id);
            q.append_pair("redirect_uri", &request.redirect_uri);
            q.append_pair("scope", request.scope.as_deref().unwrap_or(&self.config.default_scope));
            if let Some(state) = &request.state {
                q.append_pair("state", state);
            }
            if let Some(country) = &request.country {
                q.append_pair("country", country);
            }
        }
        Ok(url.into())
    }

    /// Exchanges `code`, then chooses the business: `business` when given (it must be one the user can reach),
    /// else the user's lead business.
    pub(crate) async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        business: Option<&str>,
    ) -> Result<Grant, ProviderError> {
        // A code copied from the callback URL may still be percent-encoded (`GB%2F...`): Sage wants `GB/...`.
        let code = if code.contains('%') { percent_decode(code) } else { code.to_string() };
        let form = [
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose()),
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", app.redirect_uri.as_str()),
        ];
        let deadline = self.clock.now() + chrono::Duration::from_std(self.config.exchange_deadline).unwrap_or_default();
        let (answer, date) = self.exchange_token(&form, deadline).await?;
        let requested_by = answer.requested_by_id.clone();
        let tokens = self.token_set(answer, None)?;
        // the code is spent from here on: a failure now needs a new one
        let left = (deadline - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        let policy = RetryPolicy { budget: left.min(self.config.retry.budget), ..self.config.retry };
        let mut account = match self.business(&tokens.access_token, business, policy).await {
            Ok(account) => account,
            Err(e) if e.is_transient() => {
                return Err(ProviderError::Other(format!(
                    "sage exchanged the authorization code, but reading the business failed: {e}; the code is \
                     spent: ask for a new code (authorize again)"
                )));
            }
            Err(e) => return Err(e),
        };
        if let (Some(by), Value::Object(extra)) = (requested_by, &mut account.extra) {
            extra.insert("requested_by_id".into(), by);
        }
        Ok(Grant { tokens, account, provider_time: date })
    }

    /// The token request of a code exchange, retried on 429, 5xx and connection failures (honouring
    /// `Retry-After`) until `deadline`. A code is single-use, so the error on giving up tells whether it may be
    /// spent: "retry with the same code" when no try reached Sage, "ask for a new code" when one may have.
    async fn exchange_token(
        &self,
        form: &[(&str, &str)],
        deadline: DateTime<Utc>,
    ) -> Result<(TokenAnswer, Option<DateTime<Utc>>), ProviderError> {
        let mut reached = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let build = || self.http.post(&self.config.token_url).header(ACCEPT, "application/json").form(form);
            let (failure, retry_after) = match build().send().await {
                Err(e) => {
                    self.stats.transport_error();
                    // a connection that never opened never carried the code
                    reached |= !e.is_connect();
                    (ProviderError::Transport(describe(&e)), None)
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    self.stats.answered(status);
                    let date = header_date(response.headers());
                    if let Some(date) = date {
                        self.record_provider_time(date);
                    }
                    let retry_after = self.retry_after(response.headers());
                    reached = true;
                    match response.bytes().await {
                        Err(e) => (ProviderError::Transport(describe(&e)), None),
                        Ok(body) if status == 429 || status >= 500 => (api_error(status, &body), retry_after),
                        Ok(body) => {
                            let answer = Answer { status, date, body: body.to_vec() };
                            return match self.token_answer(answer) {
                                Ok(a) => Ok(a),
                                Err(TokenFailure::InvalidGrant(m)) if attempt > 1 => {
                                    Err(ProviderError::InvalidCode(format!(
                                        "{m} (an earlier try of this exchange reached sage and may have spent the \
                                         code: ask for a new code)"
                                    )))
                                }
                                Err(TokenFailure::InvalidGrant(m)) => Err(ProviderError::InvalidCode(m)),
                                Err(TokenFailure::InvalidClient(m)) => Err(ProviderError::InvalidClient(m)),
                                Err(TokenFailure::Other(e)) => Err(e),
                            };
                        }
                    }
                }
            };
            let delay = retry_after.unwrap_or_else(|| backoff(&self.config.retry, attempt));
            let now = self.clock.now();
            if now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX) > deadline {
                let spent = if reached {
                    "the authorization code may be spent: ask for a new code (authorize again)"
                } else {
                    "sage's token endpoint was never reached, so the authorization code is unused: retry with the \
                     same code"
                };
                let failure = match failure {
                    ProviderError::Transport(m) => ProviderError::Transport(format!(
                        "{m}; the code exchange gave up after {attempt} tries; {spent}"
                    )),
                    ProviderError::Api { status, code, message, source_field } => {
                        let message = if message.is_empty() { String::new() } else { format!("{message}; ") };
                        ProviderError::Api {
                            status,
                            code,
                            message: format!(
                                "{message}sage's token endpoint answered {status} to {attempt} tries of the code \
                                 exchange; {spent}"
                            ),
                            source_field,
                        }
                    }
                    other => other,
                };
                return Err(failure);
            }
            tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying the code exchange");
            self.pause.pause(delay).await;
        }
    }

    /// `GET /businesses/{id}` or `GET /businesses/lead`.
    async fn business(
        &self,
        access: &Secret,
        wanted: Option<&str>,
        policy: RetryPolicy,
    ) -> Result<ProviderAccount, ProviderError> {
        let path = match wanted {
            Some(id) => format!("/businesses/{}", url_segment(id)),
            None => "/businesses/lead".to_string(),
        };
        let url = format!("{}{}", self.config.api_url.trim_end_matches('/'), path);
        let build = || self.http.get(&url).header(ACCEPT, "application/json").bearer_auth(access.expose());
        let answer = self.send_with(&build, None, Resend::Always, policy).await?;
        if !answer.is_success() {
            return Err(api_error(answer.status, &answer.body));
        }
        let business: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            ProviderError::Transport(format!("sage answered {path} with no business ({e}): {}", snippet(&answer.body)))
        })?;
        let text = |v: &Value| v.as_str().map(String::from);
        let id = text(&business["id"])
            .ok_or_else(|| ProviderError::Other(format!("sage answered {path} with no business id")))?;
        let name = text(&business["name"]).or_else(|| text(&business["displayed_as"]));
        let mut extra = serde_json::Map::new();
        extra.insert("lead".into(), json!(wanted.is_none()));
        if let Some(country) = text(&business["address"]["country"]["id"]).or_else(|| text(&business["country"]["id"]))
        {
            extra.insert("country".into(), json!(country));
        }
        Ok(ProviderAccount { id: Some(id), name, extra: Value::Object(extra) })
    }

    /// POSTs a token form. 429/5xx and connection failures are retried; a request that may have reached Sage is
    /// not sent twice.
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<(TokenAnswer, Option<DateTime<Utc>>), TokenFailure> {
        let build = || self.http.post(&self.config.token_url).header(ACCEPT, "application/json").form(form);
        let answer = self.send(&build, None, Resend::IfNotSent).await.map_err(TokenFailure::Other)?;
        self.token_answer(answer)
    }

    /// A token endpoint's answer that is not to be retried: the tokens, or why not.
    fn token_answer(&self, answer: Answer) -> Result<(TokenAnswer, Option<DateTime<Utc>>), TokenFailure> {
        if answer.is_success() {
            let parsed = serde_json::from_slice::<TokenAnswer>(&answer.body).map_err(|e| {
                TokenFailure::Other(ProviderError::Transport(format!(
                    "the token answer is not understood ({e}): {}",
                    snippet(&answer.body)
                )))
            })?;
            return Ok((parsed, answer.date));
        }
        match api_error(answer.status, &answer.body) {
            ProviderError::Api { code, message, .. } if code == "invalid_grant" => {
                Err(TokenFailure::InvalidGrant(message))
            }
            ProviderError::Api { code, message, .. } if code == "invalid_client" || code == "unauthorized_client" => {
                Err(TokenFailure::InvalidClient(message))
            }
            other => Err(TokenFailure::Other(other)),
        }
    }

    fn token_set(&self, answer: TokenAnswer, previous: Option<&TokenSet>) -> Result<TokenSet, ProviderError> {
        let now = self.clock.now();
        let expires_in = seconds(&answer.expires_in).unwrap_or(DEFAULT_EXPIRES_IN);
        let refresh_token = match (answer.refresh_token, previous) {
            (Some(r), _) => Secret::new(r),
            (None, Some(p)) => p.refresh_token.clone(),
            (None, None) => return Err(ProviderError::Other("sage's token answer carries no refresh token".into())),
        };
        let refresh_expires_at = seconds(&answer.refresh_token_expires_in)
            .map(|s| now + chrono::Duration::seconds(s))
            .or_else(|| previous.and_then(|p| p.refresh_expires_at));
        Ok(TokenSet {
            access_token: Secret::new(answer.access_token),
            refresh_token,
            expires_at: now + chrono::Duration::seconds(expires_in),
            refresh_expires_at,
            scope: answer.scope.or_else(|| previous.and_then(|p| p.scope.clone())),
        })
    }

    fn is_fresh(&self, tokens: &TokenSet) -> bool {
        let ahead = chrono::Duration::from_std(self.config.refresh_ahead).unwrap_or(chrono::Duration::zero());
        tokens.expires_at - ahead > self.clock.now()
    }

    /// An access token for the session: the stored one while fresh, else a refreshed one.
    pub(crate) async fn access_token(&self, session: &Session) -> Result<Secret, ProviderError> {
        let tokens = session.vault.tokens(session.instance_id).await?.ok_or_else(no_tokens)?;
        if self.is_fresh(&tokens) {
            return Ok(tokens.access_token);
        }
        self.refresh(session, &tokens.access_token).await
    }

    /// Refreshes the session's tokens because `stale` expired or was refused; single-flight (see the module doc).
    pub(crate) async fn refresh(&self, session: &Session, stale: &Secret) -> Result<Secret, ProviderError> {
        let id = session.instance_id;
        let lock = {
            let mut locks = self.refresh_locks.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(locks.entry(id).or_default())
        };
        // Waited for another task of this process: it may have refreshed meanwhile. Uncontended, the tokens were
        // just read; another node's refresh is still seen under the cross-node lock (`refresh_locked`).
        let _in_process = match lock.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                let guard = lock.lock().await;
                if let Some(fresh) = self.refreshed_meanwhile(session, stale).await? {
                    return Ok(fresh);
                }
                guard
            }
        };
        let holder = format!(
            "{}:{}:{}:{:x}",
            self.config.node_id,
            std::process::id(),
            HOLDER_SEQ.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let ttl = self.config.refresh_lock_ttl;
        let rounds = (ttl.as_millis() / self.config.refresh_lock_poll.as_millis().max(1)).max(1);
        let mut round = 0;
        while !session.vault.lock_refresh(id, &holder, ttl).await? {
            round += 1;
            if round > rounds {
                return Err(ProviderError::Store(StoreError::Conflict(format!(
                    "the token refresh lock of instance {id} stayed held by another node"
                ))));
            }
            self.pause.pause(self.config.refresh_lock_poll).await;
            if let Some(fresh) = self.refreshed_meanwhile(session, stale).await? {
                return Ok(fresh);
            }
        }
        let result = self.refresh_locked(session, &holder, stale).await;
        // Saving the new tokens released the lock in the same write; every other ending releases it here.
        if !matches!(result, Ok(Refreshed { saved: true, .. }))
            && let Err(e) = session.vault.unlock_refresh(id, &holder).await
        {
            tracing::warn!(instance = id, error = %e, "could not release the token refresh lock");
        }
        result.map(|r| r.access_token)
    }

    /// The stored access token when it is not `stale` and still fresh: someone else refreshed.
    async fn refreshed_meanwhile(&self, session: &Session, stale: &Secret) -> Result<Option<Secret>, ProviderError> {
        let current = session.vault.tokens(session.instance_id).await?;
        Ok(current.filter(|t| &t.access_token != stale && self.is_fresh(t)).map(|t| t.access_token))
    }

    async fn refresh_locked(
        &self,
        session: &Session,
        holder: &str,
        stale: &Secret,
    ) -> Result<Refreshed, ProviderError> {
        let id = session.instance_id;
        // Read again under the cross-node lock: another node may have rotated the tokens before we got it.
        let tokens = session.vault.tokens(id).await?.ok_or_else(no_tokens)?;
        if &tokens.access_token != stale && self.is_fresh(&tokens) {
            return Ok(Refreshed { access_token: tokens.access_token, saved: false });
        }
        let form = [
            ("client_id", session.app.client_id.as_str()),
            ("client_secret", session.app.client_secret.expose()),
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.expose()),
        ];
        let result = self
            .refresh_request(session, holder, &tokens, &form)
            .await
            .map(|access_token| Refreshed { access_token, saved: true });
        self.stats.refreshed(match &result {
            Ok(_) => RefreshOutcome::Ok,
            Err(ProviderError::ReauthorizationRequired(_)) => RefreshOutcome::InvalidGrant,
            Err(ProviderError::InvalidClient(_)) => RefreshOutcome::InvalidClient,
            Err(_) => RefreshOutcome::Failed,
        });
        result
    }

    /// Sends the refresh and saves what it brings (releasing the lock with the same write).
    async fn refresh_request(
        &self,
        session: &Session,
        holder: &str,
        tokens: &TokenSet,
        form: &[(&str, &str)],
    ) -> Result<Secret, ProviderError> {
        let id = session.instance_id;
        let answer = match self.token_request(form).await {
            Ok((answer, _)) => answer,
            Err(TokenFailure::InvalidGrant(message)) => {
                let reason = format!("sage refused the refresh token (invalid_grant: {message}); authorize again");
                if let Err(e) = session.vault.mark_invalid(id, &reason).await {
                    tracing::warn!(instance = id, error = %e, "could not mark the instance invalid");
                }
                return Err(ProviderError::ReauthorizationRequired(message));
            }
            Err(TokenFailure::InvalidClient(m)) => return Err(ProviderError::InvalidClient(m)),
            Err(TokenFailure::Other(e)) => return Err(e),
        };
        let new = self.token_set(answer, Some(tokens))?;
        // Persist before use: the old refresh token is spent, and only the store can carry the new one forward.
        session.vault.save_refreshed(id, holder, &new).await?;
        tracing::debug!(instance = id, "sage tokens refreshed and saved");
        Ok(new.access_token)
    }
}

/// How a refresh under the cross-node lock ended well.
struct Refreshed {
    access_token: Secret,
    /// New tokens were saved, which released the lock.
    saved: bool,
}

fn no_tokens() -> ProviderError {
    ProviderError::ReauthorizationRequired("no tokens are stored for the instance".into())
}

/// Percent-encodes a path segment.
fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = ((bytes[i + 1] as char).to_digit(16), (bytes[i + 2] as char).to_digit(16))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_decoded_once() {
        assert_eq!(percent_decode("GB%2Fabc"), "GB/abc");
        assert_eq!(percent_decode("GB%2fabc%"), "GB/abc%");
        assert_eq!(percent_decode("%zz%2"), "%zz%2");
        assert_eq!(url_segment("a b/c"), "a%20b%2Fc");
    }
}

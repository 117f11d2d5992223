//! OAuth with the Tasks API: the authorization-code exchange (which also names the workspace) and the refresh
//! of an instance's tokens through the session's [`TokenVault`](oc_model::ports::TokenVault): one refresh at a
//! time per instance in this process, and across nodes the vault's lock; the tokens are read again under the
//! lock (another node may have refreshed), saved **before** the new access token is used, and a refused
//! refresh token marks the instance invalid ([`ProviderError::ReauthorizationRequired`], never retried).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::Secret;
use oc_model::config::Configuration;
use oc_model::ports::{Grant, OAuthApp, ProviderAccount, ProviderError, Session, StoreError, TokenSet};
use reqwest::header::ACCEPT;
use serde_json::json;

use crate::provider::{Inner, transport};
use crate::spec::keys;
use crate::wire::{TokenAnswer, TokenRefusal, header_date, snippet, token_refusal};

/// Access tokens live this long when the API does not say.
const DEFAULT_EXPIRES_IN: i64 = 3600;
/// How often a refresh waiting for another node's lock looks again.
const LOCK_POLL: Duration = Duration::from_millis(100);

static HOLDER_SEQ: AtomicU64 = AtomicU64::new(0);

impl Inner {
    /// Exchanges `code`; the workspace of the grant must be `tasks.workspace` when that is configured.
    pub(crate) async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        configuration: &Configuration,
    ) -> Result<Grant, ProviderError> {
        let verifier = configuration.text_of(keys::PKCE_VERIFIER);
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose()),
            ("redirect_uri", app.redirect_uri.as_str()),
        ];
        form.extend(verifier.as_deref().map(|v| ("code_verifier", v)));
        let (answer, date) = self.token_request(&form).await.map_err(|r| match r {
            TokenRefusal::Grant(m) => ProviderError::InvalidCode(m),
            TokenRefusal::Client(m) => ProviderError::InvalidClient(m),
            TokenRefusal::Other(e) => e,
        })?;
        let Some(workspace) = answer.workspace.as_ref().map(|w| (w.id.clone(), w.name.clone())) else {
            return Err(ProviderError::Other("the token answer names no workspace".into()));
        };
        if let Some(wanted) = configuration.text_of(keys::WORKSPACE)
            && wanted != workspace.0
        {
            return Err(ProviderError::Other(format!(
                "the code grants the workspace {:?}, not {wanted:?} ({})",
                workspace.0,
                keys::WORKSPACE
            )));
        }
        let tokens = self.token_set(answer, None)?;
        let account = ProviderAccount { id: Some(workspace.0), name: workspace.1, extra: json!({}) };
        Ok(Grant { tokens, account, provider_time: date })
    }

    /// POSTs a token form; never resent (a code or a rotating refresh token is spent once it arrived).
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<(TokenAnswer, Option<DateTime<Utc>>), TokenRefusal> {
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .header(ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| TokenRefusal::Other(transport(e)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| TokenRefusal::Other(transport(e)))?;
        if !(200..300).contains(&status) {
            return Err(token_refusal(status, &headers, &body));
        }
        let answer = serde_json::from_slice(&body).map_err(|e| {
            TokenRefusal::Other(ProviderError::Transport(format!(
                "the token answer is not understood ({e}): {}",
                snippet(&body)
            )))
        })?;
        Ok((answer, header_date(&headers)))
    }

    fn token_set(&self, answer: TokenAnswer, previous: Option<&TokenSet>) -> Result<TokenSet, ProviderError> {
        let refresh_token = match (answer.refresh_token, previous) {
            (Some(r), _) => Secret::new(r),
            (None, Some(p)) => p.refresh_token.clone(),
            (None, None) => return Err(ProviderError::Other("the token answer carries no refresh token".into())),
        };
        let expires_in = answer.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
        Ok(TokenSet {
            access_token: Secret::new(answer.access_token),
            refresh_token,
            expires_at: self.clock.now() + chrono::Duration::seconds(expires_in),
            refresh_expires_at: previous.and_then(|p| p.refresh_expires_at),
            scope: previous.and_then(|p| p.scope.clone()),
        })
    }

    fn is_fresh(&self, tokens: &TokenSet) -> bool {
        let ahead = chrono::Duration::from_std(self.config.refresh_ahead).unwrap_or_default();
        tokens.expires_at - ahead > self.clock.now()
    }

    /// The session's access token: the stored one while fresh, else a refreshed one.
    pub(crate) async fn access_token(&self, session: &Session) -> Result<Secret, ProviderError> {
        let tokens = session.vault.tokens(session.instance_id).await?.ok_or_else(no_tokens)?;
        if self.is_fresh(&tokens) {
            return Ok(tokens.access_token);
        }
        self.refresh(session, &tokens.access_token).await
    }

    /// Refreshes the session's tokens because `stale` expired or was refused (see the module doc).
    pub(crate) async fn refresh(&self, session: &Session, stale: &Secret) -> Result<Secret, ProviderError> {
        let id = session.instance_id;
        let lock = {
            let mut locks = self.refresh_locks.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(locks.entry(id).or_default())
        };
        let _in_process = lock.lock().await;
        let holder = format!(
            "{}:tasks:{}:{}",
            self.config.node_id,
            std::process::id(),
            HOLDER_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ttl = self.config.refresh_lock_ttl;
        let mut waited = Duration::ZERO;
        loop {
            if let Some(fresh) = self.refreshed_meanwhile(session, stale).await? {
                return Ok(fresh);
            }
            if session.vault.lock_refresh(id, &holder, ttl).await? {
                break;
            }
            if waited >= ttl {
                let held = format!("the token refresh lock of instance {id} stayed held by another node");
                return Err(ProviderError::Store(StoreError::Conflict(held)));
            }
            tokio::time::sleep(LOCK_POLL).await;
            waited += LOCK_POLL;
        }
        let result = self.refresh_locked(session, &holder, stale).await;
        // saving released the lock in the same write; any other ending releases it here (an unlock that fails
        // leaves a lock that lapses after its ttl: nothing is lost)
        if !matches!(result, Ok((_, true))) {
            let _ = session.vault.unlock_refresh(id, &holder).await;
        }
        result.map(|(access_token, _)| access_token)
    }

    /// The stored access token when it is not `stale` and still fresh: someone else refreshed.
    async fn refreshed_meanwhile(&self, session: &Session, stale: &Secret) -> Result<Option<Secret>, ProviderError> {
        let current = session.vault.tokens(session.instance_id).await?;
        Ok(current.filter(|t| &t.access_token != stale && self.is_fresh(t)).map(|t| t.access_token))
    }

    /// The new access token, and whether it was saved (which released the lock).
    async fn refresh_locked(
        &self,
        session: &Session,
        holder: &str,
        stale: &Secret,
    ) -> Result<(Secret, bool), ProviderError> {
        let id = session.instance_id;
        // read again under the cross-node lock: another node may have rotated the tokens before we got it
        let tokens = session.vault.tokens(id).await?.ok_or_else(no_tokens)?;
        if &tokens.access_token != stale && self.is_fresh(&tokens) {
            return Ok((tokens.access_token, false));
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.expose()),
            ("client_id", session.app.client_id.as_str()),
            ("client_secret", session.app.client_secret.expose()),
        ];
        let answer = match self.token_request(&form).await {
            Ok((answer, _)) => answer,
            Err(TokenRefusal::Grant(message)) => {
                let reason = format!("the tasks api refused the refresh token ({message}); authorize again");
                // the engine marks it too (idempotent); failing here must not hide the refusal
                let _ = session.vault.mark_invalid(id, &reason).await;
                return Err(ProviderError::ReauthorizationRequired(message));
            }
            Err(TokenRefusal::Client(message)) => return Err(ProviderError::InvalidClient(message)),
            Err(TokenRefusal::Other(e)) => return Err(e),
        };
        let new = self.token_set(answer, Some(&tokens))?;
        // persist before use: the old refresh token is spent, and only the vault carries the new one forward
        session.vault.save_refreshed(id, holder, &new).await?;
        Ok((new.access_token, true))
    }
}

fn no_tokens() -> ProviderError {
    ProviderError::ReauthorizationRequired("no tokens are stored for the instance".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use oc_model::ids::InstanceId;
    use oc_model::ports::{Provider, TokenVault};
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::{TasksConfig, TasksProvider};

    /// A vault in memory that records what was done to it, in order.
    #[derive(Default)]
    pub(crate) struct MemoryVault {
        tokens: Mutex<Option<TokenSet>>,
        pub(crate) log: Mutex<Vec<String>>,
    }

    impl MemoryVault {
        pub(crate) fn with(tokens: TokenSet) -> Arc<MemoryVault> {
            Arc::new(MemoryVault { tokens: Mutex::new(Some(tokens)), log: Mutex::default() })
        }

        fn note(&self, what: String) {
            self.log.lock().unwrap().push(what);
        }

        pub(crate) fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl TokenVault for MemoryVault {
        async fn tokens(&self, _: InstanceId) -> Result<Option<TokenSet>, StoreError> {
            Ok(self.tokens.lock().unwrap().clone())
        }
        async fn lock_refresh(&self, _: InstanceId, holder: &str, _: Duration) -> Result<bool, StoreError> {
            self.note(format!("lock {}", holder.split(':').take(2).collect::<Vec<_>>().join(":")));
            Ok(true)
        }
        async fn save_refreshed(&self, _: InstanceId, _: &str, tokens: &TokenSet) -> Result<(), StoreError> {
            self.note(format!("save {}", tokens.access_token.expose()));
            *self.tokens.lock().unwrap() = Some(tokens.clone());
            Ok(())
        }
        async fn unlock_refresh(&self, _: InstanceId, _: &str) -> Result<(), StoreError> {
            self.note("unlock".into());
            Ok(())
        }
        async fn mark_invalid(&self, _: InstanceId, reason: &str) -> Result<(), StoreError> {
            self.note(format!("invalid: {reason}"));
            Ok(())
        }
    }

    pub(crate) fn session(vault: Arc<MemoryVault>, account: ProviderAccount) -> Session {
        Session {
            instance_id: 7,
            app: app(),
            account,
            configuration: Default::default(),
            vault,
            lane: Default::default(),
        }
    }

    fn app() -> OAuthApp {
        OAuthApp {
            client_id: "app".into(),
            client_secret: Secret::new("s3cret"),
            redirect_uri: "https://app/cb".into(),
        }
    }

    fn token_answer(access: &str, refresh: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).insert_header("date", "Wed, 31 Jan 2024 10:00:00 GMT").set_body_json(json!({
            "access_token": access, "refresh_token": refresh, "expires_in": 600,
            "workspace": {"id": "ws-1", "name": "Studio"}
        }))
    }

    fn refused() -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant", "error_description": "spent"}))
    }

    #[tokio::test]
    async fn the_code_exchange_names_the_workspace() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code=c1&client_id=app&client_secret=s3cret&redirect_uri=https%3A%2F%2Fapp%2Fcb"))
            .and(body_string_contains("code_verifier=v1"))
            .respond_with(token_answer("access-1", "refresh-1"))
            .mount(&server)
            .await;
        Mock::given(method("POST")).respond_with(refused()).mount(&server).await;
        let tasks = TasksProvider::new(TasksConfig::new(server.uri())).unwrap();
        let config = |pairs: &[(&str, &str)]| {
            let mut c = Configuration::new();
            for (k, v) in pairs {
                c.insert(*k, json!(v));
            }
            c
        };
        let verifier = (keys::PKCE_VERIFIER, "v1");
        let grant = tasks.exchange_code(&app(), "c1", &config(&[verifier])).await.unwrap();
        assert_eq!((grant.account.id.as_deref(), grant.account.name.as_deref()), (Some("ws-1"), Some("Studio")));
        assert_eq!(grant.tokens.access_token.expose(), "access-1");
        assert_eq!(grant.provider_time, "2024-01-31T10:00:00Z".parse().ok());
        let other = tasks.exchange_code(&app(), "c1", &config(&[verifier, (keys::WORKSPACE, "ws-2")])).await;
        assert!(matches!(other, Err(ProviderError::Other(m)) if m.contains("not \"ws-2\"")));
        let bad = tasks.exchange_code(&app(), "c2", &config(&[])).await;
        assert_eq!(bad.unwrap_err(), ProviderError::InvalidCode("spent".into()));
    }

    async fn refresh_server(answer: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(body_string_contains("grant_type=refresh_token&refresh_token=refresh-1"))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn an_expired_token_is_refreshed_under_the_lock_and_saved_before_use() {
        let server = refresh_server(token_answer("access-2", "refresh-2")).await;
        let tasks =
            TasksProvider::new(TasksConfig { node_id: "node-a".into(), ..TasksConfig::new(server.uri()) }).unwrap();
        let expired = TokenSet {
            access_token: Secret::new("access-1"),
            refresh_token: Secret::new("refresh-1"),
            expires_at: Utc::now() - chrono::Duration::seconds(1),
            refresh_expires_at: None,
            scope: None,
        };
        let vault = MemoryVault::with(expired);
        let session = session(vault.clone(), ProviderAccount { id: Some("ws-1".into()), ..Default::default() });
        assert_eq!(tasks.inner.access_token(&session).await.unwrap().expose(), "access-2");
        assert_eq!(vault.log(), ["lock node-a:tasks", "save access-2"], "the save released the lock");
        // fresh now: no second refresh (the mock expects one)
        assert_eq!(tasks.inner.access_token(&session).await.unwrap().expose(), "access-2");
    }

    #[tokio::test]
    async fn a_401_refreshes_once_and_a_refused_refresh_needs_a_new_authorization() {
        let server = refresh_server(refused()).await;
        Mock::given(method("GET"))
            .and(header("authorization", "Bearer access-1"))
            .respond_with(ResponseTemplate::new(401))
            .expect(1)
            .mount(&server)
            .await;
        let tasks = TasksProvider::new(TasksConfig::new(server.uri())).unwrap();
        let fresh = TokenSet {
            access_token: Secret::new("access-1"),
            refresh_token: Secret::new("refresh-1"),
            expires_at: Utc::now() + chrono::Duration::hours(1),
            refresh_expires_at: None,
            scope: None,
        };
        let vault = MemoryVault::with(fresh);
        let session = session(vault.clone(), ProviderAccount { id: Some("ws-1".into()), ..Default::default() });
        let query = tasks.compile("/hubs/work/tasks", &Default::default()).unwrap();
        let request = oc_model::ports::PageRequest {
            query: &query,
            feed: oc_model::ports::Feed::Changes,
            cursor: oc_model::ports::PageCursor::First,
            page_size: 10,
        };
        let e = tasks.fetch_page(&session, &request).await.unwrap_err();
        assert_eq!(e, ProviderError::ReauthorizationRequired("spent".into()));
        assert!(!e.is_transient());
        let log = vault.log();
        assert_eq!(log.len(), 3, "{log:?}");
        assert!(log[1].starts_with("invalid: the tasks api refused the refresh token (spent)"), "{log:?}");
        assert_eq!(log[2], "unlock");
    }
}

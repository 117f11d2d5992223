//! [`TasksProvider`]: the provider port implemented for the Tasks API — compile hub URLs, fetch one page at a
//! time (`limit`, the opaque `cursor` of the previous page, the tombstone list for deletions, `X-Workspace`),
//! refreshing the token once on a 401. No retries of its own: a failed page fails the poll, which the
//! scheduler tries again after its backoff (the port's "retry budget" of this provider is zero).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use oc_model::config::Configuration;
use oc_model::ids::InstanceId;
use oc_model::ports::{
    Clock, CompiledQuery, Feed, FieldNeeds, Grant, OAuthApp, OAuthUrlRequest, Page, PageCursor, PageRequest, Provider,
    ProviderError, ProviderSpec, QueryError, Session, SystemClock,
};
use reqwest::header::ACCEPT;
use url::Url;

use crate::error::TasksError;
use crate::spec::{MAX_PAGE_SIZE, WORKSPACE_HEADER, provider_spec};
use crate::wire::{api_error, decode_page, header_date, snippet};

/// Settings of a [`TasksProvider`].
#[derive(Debug, Clone)]
pub struct TasksConfig {
    /// The API's base URL (`https://tasks.example`): `/oauth/token` and `/v1/...` are under it.
    pub base_url: String,
    /// The node this process runs as: refresh locks are held as `{node_id}:tasks:...`, so that a node known
    /// to be gone has them handed back.
    pub node_id: String,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Refresh an access token this long before it expires.
    pub refresh_ahead: Duration,
    /// How long the refresh lock of an instance is held at most.
    pub refresh_lock_ttl: Duration,
}

impl TasksConfig {
    /// The defaults for the API at `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        TasksConfig {
            base_url: base_url.into(),
            node_id: "ocpoll".into(),
            request_timeout: Duration::from_secs(30),
            refresh_ahead: Duration::from_secs(30),
            refresh_lock_ttl: Duration::from_secs(30),
        }
    }
}

/// The Tasks provider. Cheap to clone (clones share the HTTP client and the refresh locks).
#[derive(Clone, Debug)]
pub struct TasksProvider {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: TasksConfig,
    spec: ProviderSpec,
    pub(crate) http: reqwest::Client,
    pub(crate) clock: Arc<dyn Clock>,
    /// One lock per instance: the in-process half of single-flight refreshing.
    pub(crate) refresh_locks: Mutex<HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TasksProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl TasksProvider {
    /// A provider on the system clock.
    pub fn new(config: TasksConfig) -> Result<Self, TasksError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A provider whose token expiry decisions ask `clock`.
    pub fn with_clock(config: TasksConfig, clock: Arc<dyn Clock>) -> Result<Self, TasksError> {
        Url::parse(&config.base_url)
            .map_err(|source| TasksError::BadBaseUrl { url: config.base_url.clone(), source })?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("ocpoll-tasks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(TasksError::Client)?;
        let inner = Inner { config, spec: provider_spec(), http, clock, refresh_locks: Mutex::new(HashMap::new()) };
        Ok(TasksProvider { inner: Arc::new(inner) })
    }

    /// The settings.
    pub fn config(&self) -> &TasksConfig {
        &self.inner.config
    }
}

impl Inner {
    /// `{base_url}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// The URL of one page: the compiled pairs (or `removed_since` for the tombstones), `limit`, and the cursor
    /// of the previous page.
    fn page_url(&self, request: &PageRequest<'_>) -> Result<Url, ProviderError> {
        let q = request.query;
        let mut pairs = match request.feed {
            Feed::Changes => q.query.clone(),
            Feed::Deleted { .. } if !q.has_deleted_feed => {
                return Err(ProviderError::Other(format!("{} has no tombstone list", q.resource)));
            }
            // the API's bound is inclusive, the port's exclusive: the wider set, de-duplicated by the engine
            Feed::Deleted { since } => {
                vec![("removed_since".to_string(), since.to_rfc3339_opts(SecondsFormat::AutoSi, true))]
            }
        };
        pairs.push(("limit".into(), request.page_size.clamp(1, MAX_PAGE_SIZE).to_string()));
        if let PageCursor::Next(cursor) = &request.cursor {
            pairs.push(("cursor".into(), cursor.clone()));
        }
        let mut url = Url::parse(&self.url(&q.path)).map_err(|e| ProviderError::Other(format!("invalid url: {e}")))?;
        url.query_pairs_mut().extend_pairs(pairs);
        Ok(url)
    }
}

/// A request that did not get an answer.
pub(crate) fn transport(e: reqwest::Error) -> ProviderError {
    ProviderError::Transport(oc_model::error::chain(&e))
}

#[async_trait]
impl Provider for TasksProvider {
    fn spec(&self) -> &ProviderSpec {
        &self.inner.spec
    }

    fn oauth_url(&self, request: &OAuthUrlRequest) -> Result<String, ProviderError> {
        let mut url = Url::parse(&self.inner.url("/oauth/authorize"))
            .map_err(|e| ProviderError::Other(format!("invalid url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &request.client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .extend_pairs(request.state.as_ref().map(|s| ("state", s)))
            .extend_pairs(request.scope.as_ref().map(|s| ("scope", s)));
        Ok(url.into())
    }

    async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        configuration: &Configuration,
    ) -> Result<Grant, ProviderError> {
        self.inner.exchange_code(app, code, configuration).await
    }

    fn compile(&self, hub_url: &str, _needs: &FieldNeeds) -> Result<CompiledQuery, QueryError> {
        crate::compile(hub_url)
    }

    async fn fetch_page(&self, session: &Session, request: &PageRequest<'_>) -> Result<Page, ProviderError> {
        let inner = &self.inner;
        let url = inner.page_url(request)?;
        let workspace = session.account.id.as_deref().ok_or_else(|| {
            ProviderError::ReauthorizationRequired("the instance has no tasks workspace; authorize again".into())
        })?;
        let mut token = inner.access_token(session).await?;
        let mut refreshed = false;
        loop {
            let response = inner
                .http
                .get(url.clone())
                .header(ACCEPT, "application/json")
                .header(WORKSPACE_HEADER, workspace)
                .bearer_auth(token.expose())
                .send()
                .await
                .map_err(transport)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(transport)?;
            if status == 401 && !refreshed {
                token = inner.refresh(session, &token).await?;
                refreshed = true;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(api_error(status, &headers, &body));
            }
            let mut page = decode_page(&body).map_err(|e| {
                ProviderError::Transport(format!(
                    "the tasks api answered a page that is not a list ({e}): {}",
                    snippet(&body)
                ))
            })?;
            page.provider_time = header_date(&headers);
            return Ok(page);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use oc_model::ports::ProviderAccount;
    use oc_model::{Secret, ports::TokenSet};
    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::oauth::tests::{MemoryVault, session};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    async fn provider(server: &MockServer) -> TasksProvider {
        TasksProvider::new(TasksConfig::new(server.uri())).unwrap()
    }

    fn tokens(access: &str, expires_at: DateTime<Utc>) -> TokenSet {
        TokenSet {
            access_token: Secret::new(access),
            refresh_token: Secret::new("refresh-1"),
            expires_at,
            refresh_expires_at: None,
            scope: None,
        }
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_with_the_workspace_and_the_bearer() {
        let server = MockServer::start().await;
        let list = |cursor: Option<&str>| {
            let m = Mock::given(method("GET"))
                .and(path("/v1/tasks"))
                .and(query_param("modified_since", "2024-01-31T10:00:00Z"))
                .and(query_param("limit", "2"))
                .and(header("authorization", "Bearer access-1"))
                .and(header("x-workspace", "ws-1"));
            match cursor {
                Some(c) => m.and(query_param("cursor", c)),
                None => m.and(query_param_is_missing("cursor")),
            }
        };
        list(None)
            .respond_with(
                ResponseTemplate::new(200).insert_header("date", "Wed, 31 Jan 2024 10:05:00 GMT").set_body_json(
                    json!({"items": [{"uid": "a"}, {"uid": "b"}], "next_cursor": "opaque==", "total": 3}),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        list(Some("opaque=="))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"items": [{"uid": "c"}], "next_cursor": null, "total": 3})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let tasks = provider(&server).await;
        let vault = MemoryVault::with(tokens("access-1", Utc::now() + chrono::Duration::hours(1)));
        let session = session(vault, ProviderAccount { id: Some("ws-1".into()), ..ProviderAccount::default() });
        let query = tasks
            .compile("/hubs/work/tasks?where=lastModifiedDate>='2024-01-31T10:00:00Z'", &FieldNeeds::default())
            .unwrap();
        let request = |cursor| PageRequest { query: &query, feed: Feed::Changes, cursor, page_size: 2 };
        let first = tasks.fetch_page(&session, &request(PageCursor::First)).await.unwrap();
        assert_eq!((first.records.len(), first.total, first.next.as_deref()), (2, Some(3), Some("opaque==")));
        assert_eq!(first.provider_time, Some(at("2024-01-31T10:05:00Z")));
        let second = tasks.fetch_page(&session, &request(PageCursor::Next("opaque==".into()))).await.unwrap();
        assert_eq!((second.records, second.next), (vec![json!({"uid": "c"})], None));
    }

    #[tokio::test]
    async fn deletions_come_from_the_tombstone_list() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/projects"))
            .and(query_param("removed_since", "2024-01-31T09:59:00.500Z"))
            .and(query_param_is_missing("modified_since"))
            .and(query_param("limit", "100"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"items": [{"uid": "p1", "removed_on": "2024-01-31T10:01:00.250Z"}], "next_cursor": null, "total": 1}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let tasks = provider(&server).await;
        let vault = MemoryVault::with(tokens("access-1", Utc::now() + chrono::Duration::hours(1)));
        let session = session(vault, ProviderAccount { id: Some("ws-1".into()), ..ProviderAccount::default() });
        let query = tasks
            .compile("/hubs/work/projects?where=lastModifiedDate>='2024-01-31T10:00:00Z'", &FieldNeeds::default())
            .unwrap();
        let feed = Feed::Deleted { since: at("2024-01-31T09:59:00.5Z") };
        let page = tasks
            .fetch_page(&session, &PageRequest { query: &query, feed, cursor: PageCursor::First, page_size: 500 })
            .await
            .unwrap();
        assert_eq!(page.records[0]["removed_on"], "2024-01-31T10:01:00.250Z");
        assert_eq!(tasks.spec().deleted_date_field, "removed_on");
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_the_ports() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500).set_body_json(json!({"code": "boom", "message": "try later"})))
            .mount(&server)
            .await;
        let tasks = provider(&server).await;
        let vault = MemoryVault::with(tokens("access-1", Utc::now() + chrono::Duration::hours(1)));
        let session = session(vault, ProviderAccount { id: Some("ws-1".into()), ..ProviderAccount::default() });
        let query = tasks.compile("/hubs/work/tasks", &FieldNeeds::default()).unwrap();
        let request = PageRequest { query: &query, feed: Feed::Changes, cursor: PageCursor::First, page_size: 10 };
        let e = tasks.fetch_page(&session, &request).await.unwrap_err();
        assert_eq!(e, ProviderError::RateLimited { retry_after: Some(Duration::from_secs(3)) });
        let e = tasks.fetch_page(&session, &request).await.unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("boom: try later"), "{e}");
    }
}

//! [`SageProvider`]: the provider port implemented for Sage Accounting v3.1 — compile hub URLs, fetch pages
//! (`$next`, `items_per_page` ≤ 200, `X-Business`, the deleted feed; a composite resource's lists one after the
//! other), read one record, and own OAuth through the session's [`TokenVault`](oc_model::ports::TokenVault).
//! Requests take a rate-limit slot in the session's lane.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::config::Configuration;
use oc_model::ports::{
    Clock, CompiledQuery, Feed, FieldNeeds, Grant, OAuthApp, OAuthUrlRequest, Page, PageCursor, PageRequest, Provider,
    ProviderError, ProviderSpec, QueryError, RecordRequest, Session, SystemClock,
};
use reqwest::header::{ACCEPT, HeaderValue};
use serde_json::Value;
use url::Url;

use crate::composite::ListsCursor;
use crate::config::SageConfig;
use crate::dates::format_sage;
use crate::dialect::DIALECT;
use crate::endpoints::{DELETED_SINCE, UPDATED_OR_CREATED_SINCE};
use crate::envelope::decode_page;
use crate::http::{Answer, Resend, api_error, snippet};
use crate::pause::{Pause, TokioPause};
use crate::ratelimit::RateLimiter;
use crate::resources::{Lists, resolve};
use crate::spec::{MAX_PAGE_SIZE, keys, provider_spec};
use crate::stats::{SageStats, SageStatsSnapshot};

/// The Sage Accounting v3.1 provider. Cheap to clone (clones share the HTTP client, the rate limiter, the
/// refresh locks and the skew measurement); build one per process.
#[derive(Clone, Debug)]
pub struct SageProvider {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: SageConfig,
    spec: ProviderSpec,
    pub(crate) http: reqwest::Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) pause: Arc<dyn Pause>,
    pub(crate) limiter: RateLimiter,
    /// One lock per instance: the in-process half of single-flight refreshing.
    pub(crate) refresh_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Sage's clock minus ours, from the last `Date` header.
    skew: Mutex<Option<chrono::Duration>>,
    /// Requests, waits and refreshes, counted.
    pub(crate) stats: SageStats,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SageProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SageProvider {
    /// A provider on the system clock, waiting on the tokio timer.
    pub fn new(config: SageConfig) -> Result<Self, ProviderError> {
        Self::with_time(config, Arc::new(SystemClock), Arc::new(TokioPause))
    }

    /// A provider whose decisions by time ask `clock` and whose waits go through `pause` (tests drive both).
    pub fn with_time(config: SageConfig, clock: Arc<dyn Clock>, pause: Arc<dyn Pause>) -> Result<Self, ProviderError> {
        Url::parse(&config.api_url).map_err(|e| ProviderError::Other(format!("invalid sage api url: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("ocpoll-sageone/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Other(format!("cannot build the http client: {e}")))?;
        Ok(SageProvider {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(config.rate_limit, config.budget_share_percent, config.interactive),
                config,
                spec: provider_spec(),
                http,
                clock,
                pause,
                refresh_locks: Mutex::new(HashMap::new()),
                skew: Mutex::new(None),
                stats: SageStats::default(),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &SageConfig {
        &self.inner.config
    }

    /// Sage's clock minus ours, measured from the `Date` header of the latest answer (`Date` has whole seconds,
    /// so the true skew lies in `[skew, skew + 1 s)`). `None` before the first answer.
    pub fn skew(&self) -> Option<chrono::Duration> {
        *self.inner.skew.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What this provider (and its clones) did so far: requests by status, rate-limit waits, token refreshes.
    pub fn stats(&self) -> SageStatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Divides each business's share of the budget by `nodes`: the nodes of a cluster that poll the same
    /// businesses (the service calls it from its heartbeat with the nodes listed in the database). At least 1.
    pub fn set_nodes(&self, nodes: usize) {
        self.inner.limiter.set_nodes(nodes);
    }

    /// The requests per window this node may send for one business (the share of the limit, divided by the
    /// nodes), and the window.
    pub fn business_budget(&self) -> (u32, std::time::Duration) {
        (self.inner.limiter.requests(), self.inner.config.rate_limit.per)
    }

    /// Requests counted in the current rate-limit window of a business.
    pub fn requests_in_window(&self, business: &str) -> usize {
        self.inner.limiter.in_window(business, self.inner.clock.now())
    }
}

impl Inner {
    /// `GET url` for the session: its bearer token (refreshed once on a 401), `X-Business`, a rate-limit slot
    /// of its business in its lane. Any answer but a 401 after the refresh is returned as it is.
    async fn get(&self, session: &Session, url: &Url) -> Result<Answer, ProviderError> {
        let business = session.account.id.clone();
        let limit_key = business.clone().unwrap_or_else(|| format!("instance:{}", session.instance_id));
        let mut token = self.access_token(session).await?;
        let mut refreshed = false;
        loop {
            let bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| ProviderError::Other("the access token is not a valid header value".into()))?;
            let build = || {
                let mut b = self
                    .http
                    .get(url.clone())
                    .header(ACCEPT, "application/json")
                    .header(reqwest::header::AUTHORIZATION, bearer.clone());
                if let Some(id) = &business {
                    b = b.header("X-Business", id.as_str());
                }
                b
            };
            let answer = self.send(&build, Some((&limit_key, session.lane)), Resend::Always).await?;
            if answer.status == 401 && !refreshed {
                tracing::debug!(instance = session.instance_id, "401 from sage: refreshing the token once");
                token = self.refresh(session, &token).await?;
                refreshed = true;
                continue;
            }
            return Ok(answer);
        }
    }

    pub(crate) fn record_provider_time(&self, provider: DateTime<Utc>) {
        let skew = provider - self.clock.now();
        *self.skew.lock().unwrap_or_else(|e| e.into_inner()) = Some(skew);
    }

    /// `{api_url}{path}`.
    fn api(&self, path: &str) -> String {
        format!("{}{}", self.config.api_url.trim_end_matches('/'), path)
    }

    /// The URL of a `$next` link: relative to the API base (`/contacts?page=2`), or absolute on the same origin,
    /// and on the list's own `path` (a cursor is never a way to another call). Pairs of `ours` that the link
    /// lacks are added (so filters survive a server that drops them), except `page`.
    fn next_url(&self, next: &str, ours: &[(String, String)], path: &str) -> Result<Url, ProviderError> {
        let base = Url::parse(&self.config.api_url).map_err(|e| ProviderError::Other(e.to_string()))?;
        let mut url = if next.starts_with("http://") || next.starts_with("https://") {
            let url = Url::parse(next).map_err(|e| ProviderError::Other(format!("invalid $next {next:?}: {e}")))?;
            if url.origin() != base.origin() {
                return Err(ProviderError::Other(format!("refusing to follow $next to another origin: {next}")));
            }
            url
        } else {
            let base_path = base.path().trim_end_matches('/');
            let rel = if next.starts_with('/') { next.to_string() } else { format!("/{next}") };
            let full = if !base_path.is_empty() && rel.starts_with(&format!("{base_path}/")) {
                format!("{}{}", base.origin().ascii_serialization(), rel)
            } else {
                self.api(&rel)
            };
            Url::parse(&full).map_err(|e| ProviderError::Other(format!("invalid $next {next:?}: {e}")))?
        };
        let list_path = format!("{}{path}", base.path().trim_end_matches('/'));
        if url.path().trim_end_matches('/') != list_path {
            return Err(ProviderError::Other(format!("refusing to follow $next off the list {path}: {next}")));
        }
        let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let missing: Vec<&(String, String)> =
            ours.iter().filter(|(k, _)| k != "page" && !present.iter().any(|p| p == k)).collect();
        if !missing.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in missing {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }
}

/// The query pairs of one page request (without `page`) of the list `list` of the query's resource: the
/// compiled pairs with the first list's fixed parameters swapped for `list`'s.
fn request_pairs(
    request: &PageRequest<'_>,
    lists: Option<&Lists>,
    list: usize,
) -> Result<Vec<(String, String)>, ProviderError> {
    let q = request.query;
    let mut pairs = q.query.clone();
    if let Some(lists) = lists
        && list > 0
        && let Some(target) = lists.get(list)
    {
        let first = lists.first();
        pairs.retain(|(k, _)| !first.fixed.iter().any(|(f, _)| f == k));
        let fixed = target.fixed.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        pairs = fixed.chain(pairs).collect();
    }
    if let Feed::Deleted { since } = request.feed {
        if !q.has_deleted_feed {
            return Err(ProviderError::Other(format!("{} ({}) has no deleted-records feed", q.resource, q.path)));
        }
        pairs.retain(|(k, _)| k != UPDATED_OR_CREATED_SINCE && k != DELETED_SINCE);
        // Sage's bound is exclusive; flooring to its whole seconds can only widen the set.
        let at = attributes_position(&pairs);
        pairs.insert(at, (DELETED_SINCE.to_string(), format_sage(since)));
        // the deletion date itself (every endpoint with the feed declares `deleted_at`): the event's date, and
        // how the poller tells a deleted record from a live one the server listed anyway
        match pairs.iter_mut().find(|(k, _)| k == "attributes") {
            Some((_, v)) if v.split(',').any(|a| a.trim() == "deleted_at" || a.trim().eq_ignore_ascii_case("all")) => {}
            Some((_, v)) => v.push_str(",deleted_at"),
            None => pairs.push(("attributes".to_string(), "deleted_at".to_string())),
        }
    }
    let size = request.page_size.clamp(1, MAX_PAGE_SIZE);
    pairs.push(("items_per_page".to_string(), size.to_string()));
    Ok(pairs)
}

/// Where a date parameter goes: before `attributes` and `sort`, so the pairs keep the compiled order.
fn attributes_position(pairs: &[(String, String)]) -> usize {
    pairs.iter().position(|(k, _)| k == "attributes" || k == "sort").unwrap_or(pairs.len())
}

/// True when `id` can be a Sage record id (GUIDs, and codes such as `GBP` or `VENDOR_PAYMENT`): anything else
/// is not looked up.
fn is_sage_id(id: &str) -> bool {
    (1..=100).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `record` with only what `attributes` (a compiled `attributes` value) asks for, plus what every Sage record
/// carries; all of it for `all` or no `attributes`.
fn project(record: Value, attributes: Option<&str>) -> Value {
    let Some(attributes) = attributes else { return record };
    let wanted: Vec<&str> = attributes.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    if wanted.is_empty() || wanted.iter().any(|a| a.eq_ignore_ascii_case("all")) {
        return record;
    }
    match record {
        Value::Object(map) => Value::Object(
            map.into_iter().filter(|(k, _)| DIALECT.is_always_returned(k) || wanted.contains(&k.as_str())).collect(),
        ),
        other => other,
    }
}

impl SageProvider {
    /// One page of the list at `path` (relative to the API base): its first page (`page` when given), or the
    /// page of Sage's `$next` link, which must stay on `path`.
    async fn list_page(
        &self,
        session: &Session,
        path: &str,
        pairs: &[(String, String)],
        next: Option<&str>,
        page: Option<u32>,
    ) -> Result<Page, ProviderError> {
        let inner = &self.inner;
        let url = match next {
            None => {
                let mut url =
                    Url::parse(&inner.api(path)).map_err(|e| ProviderError::Other(format!("invalid sage url: {e}")))?;
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in pairs {
                        q.append_pair(k, v);
                    }
                    if let Some(page) = page {
                        q.append_pair("page", &page.to_string());
                    }
                }
                url
            }
            Some(next) => inner.next_url(next, pairs, path)?,
        };
        let answer = inner.get(session, &url).await?;
        if !answer.is_success() {
            return Err(api_error(answer.status, &answer.body));
        }
        let mut page = decode_page(&answer.body).map_err(|e| {
            ProviderError::Transport(format!(
                "sage answered a page that is not a list ({e}): {}",
                snippet(&answer.body)
            ))
        })?;
        page.provider_time = answer.date;
        Ok(page)
    }

    /// A page of a composite resource (`items`): the lists one after the other behind one cursor
    /// ([`ListsCursor`]). The first page of the changes first asks every later list for its total (one record
    /// each), so that every page reports the same total — the sum — as long as nothing changes, as the
    /// engine's consistency check wants.
    async fn lists_page(
        &self,
        session: &Session,
        request: &PageRequest<'_>,
        lists: &Lists,
    ) -> Result<Page, ProviderError> {
        let mut at = match &request.cursor {
            PageCursor::First => ListsCursor::start(lists.len()),
            PageCursor::Next(text) => ListsCursor::decode(text, lists.len())?,
        };
        let changes = matches!(request.feed, Feed::Changes);
        if changes && request.cursor == PageCursor::First {
            for index in 1..lists.len() {
                let list = lists.get(index).map(|l| l.endpoint.path).unwrap_or_default();
                let mut pairs = request_pairs(request, Some(lists), index)?;
                if let Some((_, size)) = pairs.iter_mut().find(|(k, _)| k == "items_per_page") {
                    *size = "1".into();
                }
                at.totals[index] = self.list_page(session, list, &pairs, None, None).await?.total;
            }
        }
        let path = lists.get(at.list).map(|l| l.endpoint.path).unwrap_or_default();
        let pairs = request_pairs(request, Some(lists), at.list)?;
        let first_page = if at.list == 0 { request.query.page } else { None };
        let page = self.list_page(session, path, &pairs, at.next.as_deref(), first_page).await?;
        at.totals[at.list] = page.total;
        let total = if changes { at.total() } else { None };
        let next = match page.next {
            Some(next) => Some(ListsCursor { next: Some(next), ..at.clone() }),
            None if at.list + 1 < lists.len() => Some(ListsCursor { list: at.list + 1, next: None, ..at.clone() }),
            None => None,
        };
        Ok(Page {
            records: page.records,
            total,
            page: page.page,
            next: next.map(|c| c.encode()),
            provider_time: page.provider_time,
        })
    }
}

#[async_trait]
impl Provider for SageProvider {
    fn spec(&self) -> &ProviderSpec {
        &self.inner.spec
    }

    fn oauth_url(&self, request: &OAuthUrlRequest) -> Result<String, ProviderError> {
        self.inner.oauth_url(request)
    }

    async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        configuration: &Configuration,
    ) -> Result<Grant, ProviderError> {
        let business = configuration.text_of(keys::BUSINESS_ID);
        self.inner.exchange_code(app, code, business.as_deref()).await
    }

    fn compile(&self, hub_url: &str, needs: &FieldNeeds) -> Result<CompiledQuery, QueryError> {
        crate::translate::compile(hub_url, needs)
    }

    async fn fetch_page(&self, session: &Session, request: &PageRequest<'_>) -> Result<Page, ProviderError> {
        match resolve(&request.query.resource) {
            Some(lists) if lists.is_composite() => self.lists_page(session, request, &lists).await,
            _ => {
                let pairs = request_pairs(request, None, 0)?;
                let next = match &request.cursor {
                    PageCursor::First => None,
                    PageCursor::Next(next) => Some(next.as_str()),
                };
                self.list_page(session, &request.query.path, &pairs, next, request.query.page).await
            }
        }
    }

    /// The rate limiter's answer for the session's business (see [`Provider::budget_wait`]).
    fn budget_wait(&self, session: &Session, pending: usize) -> std::time::Duration {
        let key = session.account.id.clone().unwrap_or_else(|| format!("instance:{}", session.instance_id));
        self.inner.limiter.background_wait(&key, pending, self.inner.clock.now())
    }

    /// The background part of this node's share of a business's budget (see [`Provider::budget`]).
    fn budget(&self, _session: &Session) -> Option<oc_model::ports::Budget> {
        let (requests, per) = self.inner.limiter.background_budget()?;
        Some(oc_model::ports::Budget { requests: u32::try_from(requests).unwrap_or(u32::MAX), per })
    }

    /// `GET /{path}/{id}` of each list of the resource in turn (a composite resource has several), the first
    /// record found inside the resource's fixed filters (a vendor is no customer), projected to the compiled
    /// `attributes`. An id that cannot be Sage's is not looked up.
    async fn fetch_one(&self, session: &Session, request: &RecordRequest<'_>) -> Result<Option<Value>, ProviderError> {
        let query = request.query;
        let lists = resolve(&query.resource)
            .ok_or_else(|| ProviderError::Other(format!("unknown resource {:?}", query.resource)))?;
        if !is_sage_id(request.id) {
            return Ok(None);
        }
        let attributes = query.query.iter().find(|(k, _)| k == "attributes").map(|(_, v)| v.as_str());
        for list in lists.all() {
            let mut url = Url::parse(&self.inner.api(list.endpoint.path))
                .map_err(|e| ProviderError::Other(format!("invalid sage url: {e}")))?;
            url.path_segments_mut()
                .map_err(|_| ProviderError::Other("the sage api url cannot have paths".into()))?
                .push(request.id);
            let answer = self.inner.get(session, &url).await?;
            if answer.status == 404 {
                continue;
            }
            if !answer.is_success() {
                return Err(api_error(answer.status, &answer.body));
            }
            let record: Value = serde_json::from_slice(&answer.body).map_err(|e| {
                ProviderError::Transport(format!(
                    "sage answered a record that is not json ({e}): {}",
                    snippet(&answer.body)
                ))
            })?;
            if list.holds_for(&record) {
                return Ok(Some(project(record, attributes)));
            }
        }
        Ok(None)
    }
}

//! [`SageProvider`]: the provider port implemented for Sage Accounting v3.1 — compile hub URLs, fetch pages
//! (`$next`, `items_per_page` ≤ 200, `X-Business`, the deleted feed), and own OAuth through the session's
//! [`TokenVault`](oc_model::ports::TokenVault).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oc_model::instance::ElementInfo;
use oc_model::ports::{
    Clock, CompiledQuery, Feed, FieldNeeds, Grant, OAuthApp, OAuthUrlRequest, Page, PageCursor, PageRequest, Provider,
    ProviderError, QueryError, Session, SystemClock,
};
use reqwest::header::{ACCEPT, HeaderValue};
use url::Url;

use crate::config::SageConfig;
use crate::dates::format_sage;
use crate::dialect::{ELEMENT_KEY, HUB};
use crate::endpoints::{DELETED_SINCE, UPDATED_OR_CREATED_SINCE};
use crate::envelope::decode_page;
use crate::http::{Resend, api_error, snippet};
use crate::pause::{Pause, TokioPause};
use crate::ratelimit::RateLimiter;
use crate::stats::{SageStats, SageStatsSnapshot};

/// The largest `items_per_page` Sage serves.
pub const MAX_PAGE_SIZE: u32 = 200;

/// The element this provider serves. Open Connectors' own numbering of elements is not public: `id` is
/// ocpoll's.
pub fn element_info() -> ElementInfo {
    ElementInfo { id: 1, key: ELEMENT_KEY.into(), name: "Sage Business Cloud Accounting".into(), hub: HUB.into() }
}

/// The Sage Accounting v3.1 provider. Cheap to clone (clones share the HTTP client, the rate limiter, the
/// refresh locks and the skew measurement); build one per process.
#[derive(Clone, Debug)]
pub struct SageProvider {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: SageConfig,
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
                limiter: RateLimiter::new(config.rate_limit),
                config,
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

    /// Requests counted in the current rate-limit window of a business.
    pub fn requests_in_window(&self, business: &str) -> usize {
        self.inner.limiter.in_window(business, self.inner.clock.now())
    }
}

impl Inner {
    pub(crate) fn record_provider_time(&self, provider: DateTime<Utc>) {
        let skew = provider - self.clock.now();
        *self.skew.lock().unwrap_or_else(|e| e.into_inner()) = Some(skew);
    }

    /// `{api_url}{path}`.
    fn api(&self, path: &str) -> String {
        format!("{}{}", self.config.api_url.trim_end_matches('/'), path)
    }

    /// The URL of a `$next` link: relative to the API base (`/contacts?page=2`), or absolute on the same origin.
    /// Pairs of `ours` that the link lacks are added (so filters survive a server that drops them), except `page`.
    fn next_url(&self, next: &str, ours: &[(String, String)]) -> Result<Url, ProviderError> {
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

/// The query pairs of one page request (without `page`).
fn request_pairs(request: &PageRequest<'_>) -> Result<Vec<(String, String)>, ProviderError> {
    let q = request.query;
    let mut pairs = q.query.clone();
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

#[async_trait]
impl Provider for SageProvider {
    fn element(&self) -> ElementInfo {
        element_info()
    }

    fn oauth_url(&self, request: &OAuthUrlRequest) -> Result<String, ProviderError> {
        self.inner.oauth_url(request)
    }

    async fn exchange_code(&self, app: &OAuthApp, code: &str, business: Option<&str>) -> Result<Grant, ProviderError> {
        self.inner.exchange_code(app, code, business).await
    }

    fn compile(&self, hub_url: &str, needs: &FieldNeeds) -> Result<CompiledQuery, QueryError> {
        crate::translate::compile(hub_url, needs)
    }

    async fn fetch_page(&self, session: &Session, request: &PageRequest<'_>) -> Result<Page, ProviderError> {
        let inner = &self.inner;
        let pairs = request_pairs(request)?;
        let url = match &request.cursor {
            PageCursor::First => {
                let mut url = Url::parse(&inner.api(&request.query.path))
                    .map_err(|e| ProviderError::Other(format!("invalid sage url: {e}")))?;
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in &pairs {
                        q.append_pair(k, v);
                    }
                    if let Some(page) = request.query.page {
                        q.append_pair("page", &page.to_string());
                    }
                }
                url
            }
            PageCursor::Next(next) => inner.next_url(next, &pairs)?,
        };
        let business = session.account.business_id.clone();
        let limit_key = business.clone().unwrap_or_else(|| format!("instance:{}", session.instance_id));
        let mut token = inner.access_token(session).await?;
        let mut refreshed = false;
        loop {
            let bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| ProviderError::Other("the access token is not a valid header value".into()))?;
            let build = || {
                let mut b = inner
                    .http
                    .get(url.clone())
                    .header(ACCEPT, "application/json")
                    .header(reqwest::header::AUTHORIZATION, bearer.clone());
                if let Some(id) = &business {
                    b = b.header("X-Business", id.as_str());
                }
                b
            };
            let answer = inner.send(&build, Some(&limit_key), Resend::Always).await?;
            if answer.status == 401 && !refreshed {
                tracing::debug!(instance = session.instance_id, "401 from sage: refreshing the token once");
                token = inner.refresh(session, &token).await?;
                refreshed = true;
                continue;
            }
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
            return Ok(page);
        }
    }

    fn max_page_size(&self) -> u32 {
        MAX_PAGE_SIZE
    }
}

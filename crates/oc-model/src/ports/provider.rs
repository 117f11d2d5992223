//! The provider port: what the engine and the API need from a SaaS API.
//!
//! A provider describes itself ([`ProviderSpec`]: its element, hub, configuration keys, pollable resources with
//! their default poller configuration, the field of its deletion date), turns a rendered hub URL
//! (`/hubs/{hub}/{resource}?where=...`) into a [`CompiledQuery`] (the provider request plus the residual predicate
//! it cannot push down), fetches one page at a time, and owns OAuth. Tokens live in a
//! [`TokenVault`](super::TokenVault) (the store), so a refresh survives a crash and is single-flight across nodes.
//! A second provider is one more crate implementing [`Provider`], registered in [`Providers`](super::Providers).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::{Configuration, KeySpec, SecretKeys, config_path, keys};
use crate::error::Problems;
use crate::ids::InstanceId;
use crate::instance::ElementInfo;
use crate::poller::PollerConfig;
use crate::ports::store::{Instance, StoreError};
use crate::ports::vault::{TokenSet, TokenVault};
use crate::secret::Secret;

/// What a provider is, as the neutral layers need to know it. Built once by the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSpec {
    /// The element it serves: its key (`element.key` of instance bodies), name and hub.
    pub element: ElementInfo,
    /// Its own configuration keys, besides Open Connectors' ([`crate::config::KEYS`]), with which are secret.
    pub keys: &'static [KeySpec],
    /// The resources it can poll, in the order a user is shown them.
    pub resources: Vec<ResourceSpec>,
    /// The field of a record of the deleted feed that holds its deletion date.
    pub deleted_date_field: String,
    /// The largest page it serves.
    pub max_page_size: u32,
}

impl ProviderSpec {
    /// The resource of this name, when it is one of [`resources`](Self::resources).
    pub fn resource(&self, name: &str) -> Option<&ResourceSpec> {
        self.resources.iter().find(|r| r.name == name)
    }

    /// Every secret configuration key of an instance of this element: Open Connectors' and the provider's.
    pub fn secret_keys(&self) -> SecretKeys {
        SecretKeys::with(self.keys)
    }

    /// The declaration of a configuration key: Open Connectors' own, else the provider's.
    pub fn key_spec(&self, key: &str) -> Option<&'static KeySpec> {
        crate::config::key_spec(key).or_else(|| self.keys.iter().find(|k| k.key == key))
    }
}

/// A resource a provider can poll.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSpec {
    /// Its name in hub URLs and the events' `objectType` (`customers`).
    pub name: String,
    /// What it is, for people (`Customers`).
    pub title: String,
    /// True when the provider has a feed of its deleted records.
    pub has_deleted_feed: bool,
    /// The poller configuration a user starts from (`event.poller.configuration.{name}`).
    pub poller: PollerConfig,
}

/// An OAuth app registered with the provider (`oauth.api.key`, `oauth.api.secret`, `oauth.callback.url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthApp {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Redirect URI; must match the one used to get the code.
    pub redirect_uri: String,
}

impl OAuthApp {
    /// The OAuth app of an instance configuration, or every missing key with its path.
    pub fn of(config: &Configuration) -> Result<OAuthApp, Problems> {
        let client_id = config.api_key();
        let secret = config.api_secret();
        let redirect = config.oauth_callback_url();
        match (client_id, secret, redirect) {
            (Some(client_id), Some(client_secret), Some(redirect_uri)) => {
                Ok(OAuthApp { client_id, client_secret, redirect_uri })
            }
            (client_id, secret, redirect) => {
                let mut problems = Problems::default();
                for (key, missing) in [
                    (keys::OAUTH_API_KEY, client_id.is_none()),
                    (keys::OAUTH_API_SECRET, secret.is_none()),
                    (keys::OAUTH_CALLBACK_URL, redirect.is_none()),
                ] {
                    if missing {
                        problems.push(config_path(key), "missing (needed to talk to the provider)");
                    }
                }
                Err(problems)
            }
        }
    }
}

/// The query of `GET /elements/{key}/oauth/url`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthUrlRequest {
    /// Client id (`apiKey`).
    pub client_id: String,
    /// Redirect URI (`callbackUrl`).
    pub redirect_uri: String,
    /// Opaque state echoed to the redirect.
    pub state: Option<String>,
    /// Scope; the provider's default when absent.
    pub scope: Option<String>,
    /// Country hint.
    pub country: Option<String>,
}

/// The provider-side account an instance works in (a company, a business, a workspace), as the provider chose
/// it at the code exchange.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderAccount {
    /// The provider's id of the account, sent by the provider with its requests.
    pub id: Option<String>,
    /// Its name, for display.
    pub name: Option<String>,
    /// Other provider facts worth keeping.
    pub extra: Value,
}

/// The result of exchanging an authorization code.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The tokens.
    pub tokens: TokenSet,
    /// The account chosen.
    pub account: ProviderAccount,
    /// The provider's clock when it answered (its `Date` header), to start the watermark on its clock.
    pub provider_time: Option<DateTime<Utc>>,
}

/// Who a provider request is for, so that a provider with a rate limit can serve a person before its polls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Work nobody is waiting on (the engine's polls): it may be held back and is served after interactive work.
    #[default]
    Background,
    /// A caller waiting for the answer (the hub passthrough): served first, and failing fast
    /// ([`ProviderError::RateLimited`] with a retry delay) rather than waiting long for the provider's budget.
    Interactive,
}

/// What a provider needs to act for one instance.
#[derive(Clone)]
pub struct Session {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its OAuth app.
    pub app: OAuthApp,
    /// Its provider account.
    pub account: ProviderAccount,
    /// Its configuration, for the provider's own keys (secrets in clear: never log it).
    pub configuration: Configuration,
    /// Where its tokens are.
    pub vault: Arc<dyn TokenVault>,
    /// Whom its requests are for ([`Lane::Background`] unless the caller says otherwise).
    pub lane: Lane,
}

impl Session {
    /// The session of an instance, its tokens in `vault`: the one builder the API and the scheduler use. Fails
    /// with the missing OAuth keys of its configuration.
    pub fn of(instance: &Instance, vault: Arc<dyn TokenVault>) -> Result<Session, Problems> {
        Ok(Session {
            instance_id: instance.id,
            app: OAuthApp::of(&instance.configuration)?,
            account: instance.account.clone(),
            configuration: instance.configuration.clone(),
            vault,
            lane: Lane::Background,
        })
    }

    /// The same session in `lane`.
    pub fn in_lane(mut self, lane: Lane) -> Session {
        self.lane = lane;
        self
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("instance_id", &self.instance_id)
            .field("account", &self.account)
            .field("lane", &self.lane)
            .finish()
    }
}

/// Record fields the engine needs in every record (id and date fields), which the provider must ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldNeeds {
    /// Field paths (dotted allowed); the provider requests their top-level members.
    pub fields: Vec<String>,
}

/// A predicate the provider could not push down, evaluated on fetched records.
pub trait RecordFilter: Send + Sync + fmt::Debug {
    /// True when the record passes.
    fn matches(&self, record: &Value) -> bool;
    /// The predicate written back in the query language (for display).
    fn describe(&self) -> String;
}

/// A hub URL compiled into a provider request.
#[derive(Debug, Clone)]
pub struct CompiledQuery {
    /// The hub resource as named in the URL (`customers`): the events' `objectType`.
    pub resource: String,
    /// The provider path (`/contacts`).
    pub path: String,
    /// Query pairs, in the order sent.
    pub query: Vec<(String, String)>,
    /// `pageSize` asked for in the hub URL.
    pub page_size: Option<u32>,
    /// `page` asked for in the hub URL (passthrough only; the engine reads every page).
    pub page: Option<u32>,
    /// True when the resource has a deleted-records feed.
    pub has_deleted_feed: bool,
    /// The residual predicate applied to fetched records.
    pub local: Option<Arc<dyn RecordFilter>>,
    /// Things accepted but worth telling the user (e.g. a repaired quote).
    pub warnings: Vec<String>,
}

/// A positioned problem in a hub URL or its `where` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, lowercase.
    pub message: String,
    /// Byte range in the input, when known.
    pub span: Option<Range<usize>>,
    /// The message with the input and a caret line under the span.
    pub rendered: String,
}

/// Why a hub URL cannot be compiled. Lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|d| d.rendered.as_str()).collect::<Vec<_>>().join("\n"))]
pub struct QueryError(pub Vec<Diagnostic>);

/// Which list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Records created or updated (the query as compiled).
    Changes,
    /// Records deleted after `since` (exclusive), from the provider's feed of deleted records.
    Deleted {
        /// Lower bound.
        since: DateTime<Utc>,
    },
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageCursor {
    /// The first page (or the `page` of the compiled query).
    First,
    /// The provider's [`Page::next`] of the previous page of the same query and feed: opaque to the caller
    /// (a link, a token, or a provider's own encoding of where it is, e.g. in a list made of several).
    Next(String),
}

/// One page request.
#[derive(Debug, Clone)]
pub struct PageRequest<'a> {
    /// The compiled query.
    pub query: &'a CompiledQuery,
    /// Changes or deletions.
    pub feed: Feed,
    /// Which page.
    pub cursor: PageCursor,
    /// Records per page wanted (the provider caps it at its maximum).
    pub page_size: u32,
}

/// A request for one record by its id, in the resource of a compiled query (its fixed filters hold: a record
/// outside them is not found).
#[derive(Debug, Clone)]
pub struct RecordRequest<'a> {
    /// The compiled query of the resource (`/hubs/{hub}/{resource}`, with the fields asked for in its
    /// [`FieldNeeds`]).
    pub query: &'a CompiledQuery,
    /// The record's id, as given by the caller (the provider checks and encodes it).
    pub id: &'a str,
}

/// One page of records.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Records, as the provider returned them.
    pub records: Vec<Value>,
    /// The provider's total count for the query, when given.
    pub total: Option<u64>,
    /// The page number, when given.
    pub page: Option<u32>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<String>,
    /// The provider's clock (its `Date` header), for skew measurement.
    pub provider_time: Option<DateTime<Utc>>,
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The refresh token was refused (`invalid_grant`): the user must authorize again. Never retried.
    #[error("re-authorization required: {0}")]
    ReauthorizationRequired(String),
    /// The authorization code was refused.
    #[error("the authorization code was refused: {0}")]
    InvalidCode(String),
    /// The app's client id or secret was refused.
    #[error("the provider refused the app credentials: {0}")]
    InvalidClient(String),
    /// Throttled beyond the retry budget.
    #[error("rate limited by the provider{}", .retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The provider's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// An error answer of the provider's API.
    #[error("provider error {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The provider's error code.
        code: String,
        /// The provider's message.
        message: String,
        /// The field or parameter it is about, when the provider says.
        source_field: Option<String>,
    },
    /// Transport trouble (connection, timeout, bad body) beyond the retry budget.
    #[error("provider unreachable: {0}")]
    Transport(String),
    /// The query cannot be sent.
    #[error("invalid query: {0}")]
    Query(#[from] QueryError),
    /// The token vault failed.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// Anything else the provider reports, e.g. a missing setting.
    #[error("{0}")]
    Other(String),
    /// The provider does not do what was asked (e.g. read one record).
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl ProviderError {
    /// True when retrying later may help (throttling, 5xx, transport).
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::RateLimited { .. } | ProviderError::Transport(_) => true,
            ProviderError::Api { status, .. } => *status >= 500,
            ProviderError::Store(e) => !matches!(e, StoreError::NotFound(_)),
            _ => false,
        }
    }
}

/// A SaaS API behind the engine.
#[async_trait]
pub trait Provider: Send + Sync {
    /// What the provider is: element, hub, configuration keys, resources, deletion date field.
    fn spec(&self) -> &ProviderSpec;

    /// The authorize URL a user opens to grant access.
    fn oauth_url(&self, request: &OAuthUrlRequest) -> Result<String, ProviderError>;

    /// Exchanges an authorization code for tokens and chooses the account, reading the instance configuration
    /// for the provider's own keys (e.g. which account to work in).
    async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        configuration: &Configuration,
    ) -> Result<Grant, ProviderError>;

    /// Compiles a rendered hub URL, adding what `needs` asks for. Pure: no I/O.
    fn compile(&self, hub_url: &str, needs: &FieldNeeds) -> Result<CompiledQuery, QueryError>;

    /// Fetches one page, refreshing the session's token when needed and retrying throttling and transient
    /// failures within the provider's budget (a short one in [`Lane::Interactive`]).
    async fn fetch_page(&self, session: &Session, request: &PageRequest<'_>) -> Result<Page, ProviderError>;

    /// Reads one record by id: `None` when the provider has none (or one outside the resource's fixed filters).
    /// The default answers [`ProviderError::Unsupported`].
    async fn fetch_one(&self, session: &Session, request: &RecordRequest<'_>) -> Result<Option<Value>, ProviderError> {
        let _ = (session, request);
        Err(ProviderError::Unsupported(format!("{} does not read single records", self.spec().element.key)))
    }

    /// How long until one more background request for the account of `session` could go without waiting for
    /// the provider's request budget, when `pending` polls of that account already started on this node may take
    /// theirs first: zero when it could go now. The scheduler asks before it gives a poll one of its slots, so
    /// that no slot is held by a poll that could only wait for its account's budget. The default (a provider
    /// without a budget): always zero.
    fn budget_wait(&self, session: &Session, pending: usize) -> Duration {
        let _ = (session, pending);
        Duration::ZERO
    }

    /// The background requests this node may send for the account of `session` in each window of the
    /// provider's budget: what the scheduler weighs the account's configured polls against (to report a
    /// shortfall) and spends its spare on (adaptive polling). The default (a provider without a budget): `None`.
    fn budget(&self, session: &Session) -> Option<Budget> {
        let _ = session;
        None
    }
}

/// A provider account's request budget on this node: at most `requests` background requests in any window of
/// `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Background requests per window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

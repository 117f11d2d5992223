//! The provider's settings: where Sage is, how fast it may be called (and what of it is kept for interactive
//! requests), how hard to retry, and when to refresh tokens. Every field has the default Sage documents (or a
//! conservative one where Sage documents none).

use std::time::Duration;

/// Sage's production API base.
pub const DEFAULT_API_URL: &str = "https://api.accounting.sage.com/v3.1";
/// Sage's authorize URL for v3.1 (it already carries a query: parameters are appended to it).
pub const DEFAULT_AUTHORIZE_URL: &str = "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1";
/// Sage's token URL.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth.accounting.sage.com/token";

/// The default of [`SageConfig::budget_share_percent`]: half of each business's budget.
pub const DEFAULT_BUDGET_SHARE_PERCENT: u8 = 50;

/// Settings of a [`SageProvider`](crate::SageProvider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SageConfig {
    /// API base URL, without a trailing slash (default [`DEFAULT_API_URL`]).
    pub api_url: String,
    /// Authorize URL (default [`DEFAULT_AUTHORIZE_URL`]).
    pub authorize_url: String,
    /// Token URL (default [`DEFAULT_TOKEN_URL`]).
    pub token_url: String,
    /// Requests allowed per Sage business (default 200 per 60 s, Sage's v3.0 figure).
    pub rate_limit: RateLimit,
    /// Percent of [`rate_limit`](Self::rate_limit) that this provider uses at most, over every instance,
    /// resource and lane of a business (1 to 100; default 50): the business's other apps share Sage's budget.
    /// With several nodes each uses its part ([`SageProvider::set_nodes`](crate::SageProvider::set_nodes)).
    pub budget_share_percent: u8,
    /// What interactive requests ([`Lane::Interactive`](oc_model::ports::Lane), the hub passthrough) get of the
    /// rate limit, and how long they may wait.
    pub interactive: InteractiveLane,
    /// Retries of throttled and failed requests (of background requests: the polls).
    pub retry: RetryPolicy,
    /// Time allowed for one request, answer included (default 30 s).
    pub request_timeout: Duration,
    /// Time allowed to connect (default 10 s).
    pub connect_timeout: Duration,
    /// The longest an authorization-code exchange (the token request and the business lookup, retries
    /// included) takes before it gives up (default 20 s): a person waits on it. 429, 5xx and connection failures
    /// are retried within it, honouring `Retry-After`.
    pub exchange_deadline: Duration,
    /// A token is refreshed when it expires within this margin (default 60 s; Sage's tokens live 5 minutes).
    pub refresh_ahead: Duration,
    /// How long the cross-node refresh lock is held at most (default 60 s; longer than a token request with its
    /// retries, so that the rotated refresh token can still be saved under the lock).
    pub refresh_lock_ttl: Duration,
    /// How often a refresh waiting for another node's lock looks again (default 250 ms).
    pub refresh_lock_poll: Duration,
    /// Scope asked for when the authorize request names none (default `full_access`).
    pub default_scope: String,
    /// This node's name in refresh-lock holder ids (default `ocpoll`).
    pub node_id: String,
}

impl Default for SageConfig {
    fn default() -> Self {
        SageConfig {
            api_url: DEFAULT_API_URL.to_string(),
            authorize_url: DEFAULT_AUTHORIZE_URL.to_string(),
            token_url: DEFAULT_TOKEN_URL.to_string(),
            rate_limit: RateLimit::default(),
            budget_share_percent: DEFAULT_BUDGET_SHARE_PERCENT,
            interactive: InteractiveLane::default(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            exchange_deadline: Duration::from_secs(20),
            refresh_ahead: Duration::from_secs(60),
            refresh_lock_ttl: Duration::from_secs(60),
            refresh_lock_poll: Duration::from_millis(250),
            default_scope: "full_access".to_string(),
            node_id: "ocpoll".to_string(),
        }
    }
}

/// At most `requests` requests in any window of `per`, per Sage business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per window (0 switches the limiter off).
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { requests: 200, per: Duration::from_secs(60) }
    }
}

/// The interactive lane of the rate limiter: a share of each business's budget that background requests (the
/// polls) may not use, so that a person's request finds a slot at once; interactive requests go before waiting
/// background ones and may use the whole budget, but fail fast instead of waiting long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InteractiveLane {
    /// Percent of [`RateLimit::requests`] that background requests leave free (rounded down; default 10, so
    /// polls use at most 180 of Sage's 200 requests a minute). At most 90.
    pub reserve_percent: u8,
    /// Longest an interactive request waits for a slot (default 2 s); beyond, it fails at once with
    /// [`ProviderError::RateLimited`](oc_model::ports::ProviderError::RateLimited) and the time until a slot
    /// frees.
    pub max_wait: Duration,
    /// Retries of interactive requests that Sage throttles or fails (default 2 tries, 2 s of waiting at most).
    pub retry: RetryPolicy,
}

impl InteractiveLane {
    /// The requests of a window of `limit` that background requests leave to interactive ones.
    pub fn reserve_of(&self, limit: u32) -> u32 {
        let percent = u64::from(self.reserve_percent.min(90));
        u32::try_from(u64::from(limit) * percent / 100).unwrap_or(0)
    }
}

impl Default for InteractiveLane {
    fn default() -> Self {
        InteractiveLane {
            reserve_percent: 10,
            max_wait: Duration::from_secs(2),
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(1),
                budget: Duration::from_secs(2),
            },
        }
    }
}

/// Exponential backoff with jitter for 429, 5xx and transport failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (default 5).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled each time (default 500 ms). The delay used is drawn between half
    /// of it and all of it (jitter).
    pub base_delay: Duration,
    /// Cap of one delay without `Retry-After` (default 30 s).
    pub max_delay: Duration,
    /// Total waiting allowed for one request (default 120 s); a `Retry-After` beyond it ends the retries.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            budget: Duration::from_secs(120),
        }
    }
}

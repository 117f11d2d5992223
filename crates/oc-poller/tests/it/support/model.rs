//! A model provider: an in-memory SaaS list API with Sage's paging semantics and every fault of the oracle of
//! `change-detection.md` — creates, several updates inside one second, deletes, equal timestamps across page
//! boundaries, mutations between page requests (offset shifts), rows visible late, clock skew, 401/429/5xx
//! beyond the retry budget, re-authorization, and a crash (a page request that never answers).

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use oc_model::Configuration;
use oc_model::instance::ElementInfo;
use oc_model::ports::{
    Clock, CompiledQuery, Feed, FieldNeeds, Grant, ManualClock, OAuthApp, OAuthUrlRequest, Page, PageCursor,
    PageRequest, Provider, ProviderError, ProviderSpec, QueryError, RecordFilter, Session,
};
use serde_json::{Value, json};

/// A small deterministic random source (xorshift64*), so a case replays from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[derive(Debug, Clone)]
struct Version {
    updated_ms: i64,
    visible_ms: i64,
    n: u64,
    color: &'static str,
}

#[derive(Debug, Clone)]
struct Rec {
    created_ms: i64,
    versions: Vec<Version>,
    /// (deleted_at, visible from)
    deleted: Option<(i64, i64)>,
}

/// Faults injected into page requests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Probability that a request fails beyond the retry budget (5xx, 429 or transport).
    pub error_rate: f64,
    /// Probability that a request answers re-authorization required.
    pub reauth_rate: f64,
    /// Probability that random mutations happen right before a page request is served.
    pub mutation_rate: f64,
    /// The page request (1-based, counted over the model's life) that never answers: a crash.
    pub crash_at: Option<u64>,
}

/// The model's data and knobs.
#[derive(Debug)]
pub struct ModelState {
    records: BTreeMap<String, Rec>,
    order: Vec<String>,
    next_id: u64,
    counter: u64,
    /// Provider clock minus local clock.
    pub skew_ms: i64,
    /// List by `(updated_at, id)` (Sage's `sort=updated_at`); otherwise by creation order.
    pub sorted: bool,
    /// Rows become visible up to this many ms after their timestamp.
    pub max_late_ms: i64,
    pub faults: Faults,
    pub rng: Rng,
    /// Page requests so far.
    pub calls: u64,
    /// 401s answered by refreshing inside the provider (they never reach the engine).
    pub refreshes: u64,
    /// Every (id, updated_at, content) served in a changes page, and (id, deleted_at) in a deleted page.
    pub served: HashSet<(String, i64, String)>,
    /// Requests per (feed, lower bound text, page): for the paging-loop test.
    pub requests: Vec<String>,
    /// Advance the local clock by up to this many ms at each page request.
    pub page_latency_ms: u64,
    /// Advance the local clock by exactly this many ms at each page request.
    pub fixed_latency_ms: u64,
    /// Makes every new row become visible this many ms after its timestamp (instead of the random delay).
    pub late_override: Option<i64>,
    /// Actions run right before the page request of the given number (see [`ModelState::calls`]) is served.
    pub script: Vec<(u64, Action)>,
    /// A careless provider (a minimal fake) that ignores the lower bounds: both feeds answer every live record;
    /// the deleted feed's records with `"deleted_at": null` (`Some(true)`) or without the field (`Some(false)`).
    pub ignores_bounds: Option<bool>,
    /// Requests per 60 s allowed to an account (by its id): a request beyond waits for the budget, as Sage's
    /// rate limiter makes it wait.
    pub budget: HashMap<String, usize>,
    /// The requests sent under a budget: (account, local time in ms).
    pub budget_sent: Vec<(String, i64)>,
}

/// The window of [`ModelState::budget`].
pub const BUDGET_WINDOW_MS: i64 = 60_000;

impl ModelState {
    /// Ms until `account` could send with `pending` requests before it, 0 when now.
    pub fn budget_wait_ms(&self, account: &str, pending: usize, now: i64) -> i64 {
        let Some(&limit) = self.budget.get(account) else { return 0 };
        let mut inside: Vec<i64> =
            self.budget_sent.iter().filter(|(a, t)| a == account && *t + BUDGET_WINDOW_MS > now).map(|s| s.1).collect();
        if inside.len() + pending < limit {
            return 0;
        }
        inside.sort_unstable();
        let must_free = inside.len() + pending + 1 - limit;
        inside.get(must_free - 1).map_or(BUDGET_WINDOW_MS, |t| t + BUDGET_WINDOW_MS - now)
    }
}

/// A scripted action of the model.
#[derive(Debug, Clone)]
pub enum Action {
    /// Update a record.
    Update(String),
    /// Delete a record.
    Delete(String),
    /// Create a record.
    Create,
    /// Fail the request (a 503 beyond the retry budget).
    Fail,
    /// Throttle the request (a 429 beyond the retry budget).
    Throttle,
}

/// The model provider.
#[derive(Debug)]
pub struct Model {
    pub spec: ProviderSpec,
    pub state: Mutex<ModelState>,
    pub clock: Arc<ManualClock>,
    /// Notified when the crash request arrives.
    pub crashed: tokio::sync::Notify,
}

/// The model's element key.
pub const MODEL_ELEMENT: &str = "model";

pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn floor_sec(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

/// Reads a lower bound as Sage does: a date is midnight UTC; a date-time without offset, or with `Z`, is UTC.
pub fn read_bound(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.len() == 10 {
        return format!("{t}T00:00:00Z").parse::<DateTime<Utc>>().ok().map(|d| d.timestamp_millis());
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    format!("{t}Z").parse::<DateTime<Utc>>().ok().map(|d| d.timestamp_millis())
}

#[derive(Debug)]
struct ExcludeColor(String);

impl RecordFilter for ExcludeColor {
    fn matches(&self, record: &Value) -> bool {
        record.get("color").and_then(Value::as_str) != Some(self.0.as_str())
    }
    fn describe(&self) -> String {
        format!("color != '{}'", self.0)
    }
}

impl Model {
    pub fn new(clock: Arc<ManualClock>, skew_ms: i64, seed: u64) -> Self {
        Model {
            spec: ProviderSpec {
                element: ElementInfo { id: 1, key: MODEL_ELEMENT.into(), name: "Model".into(), hub: "finance".into() },
                keys: &[],
                resources: Vec::new(),
                deleted_date_field: "deleted_at".into(),
                max_page_size: 200,
            },
            state: Mutex::new(ModelState {
                records: BTreeMap::new(),
                order: Vec::new(),
                next_id: 0,
                counter: 0,
                skew_ms,
                sorted: true,
                max_late_ms: 0,
                faults: Faults::default(),
                rng: Rng::new(seed),
                calls: 0,
                refreshes: 0,
                served: HashSet::new(),
                requests: Vec::new(),
                page_latency_ms: 0,
                fixed_latency_ms: 0,
                late_override: None,
                script: Vec::new(),
                ignores_bounds: None,
                budget: HashMap::new(),
                budget_sent: Vec::new(),
            }),
            clock,
            crashed: tokio::sync::Notify::new(),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut ModelState, i64) -> R) -> R {
        let mut s = self.state.lock().unwrap();
        let now = self.clock.now().timestamp_millis() + s.skew_ms;
        f(&mut s, now)
    }

    /// The provider's clock now (Unix ms).
    pub fn provider_now(&self) -> i64 {
        self.with(|_, now| now)
    }
}

impl ModelState {
    fn late(&mut self) -> i64 {
        if let Some(l) = self.late_override {
            return l;
        }
        if self.max_late_ms > 0 && self.rng.chance(0.3) { self.rng.below(self.max_late_ms as u64) as i64 } else { 0 }
    }

    fn color(&mut self) -> &'static str {
        ["red", "green", "blue"][self.rng.below(3) as usize]
    }

    /// Creates a record at provider time `now`; returns its id.
    pub fn create(&mut self, now: i64) -> String {
        self.next_id += 1;
        self.counter += 1;
        let id = format!("r{:04}", self.next_id);
        let late = self.late();
        let color = self.color();
        let v = Version { updated_ms: floor_sec(now), visible_ms: now + late, n: self.counter, color };
        self.records.insert(id.clone(), Rec { created_ms: floor_sec(now), versions: vec![v], deleted: None });
        self.order.push(id.clone());
        id
    }

    /// Updates `id` at provider time `now` (no-op when deleted).
    pub fn update(&mut self, id: &str, now: i64) {
        self.counter += 1;
        let late = self.late();
        let color = self.color();
        let n = self.counter;
        let Some(r) = self.records.get_mut(id) else { return };
        if r.deleted.is_some() {
            return;
        }
        // a later write of a row cannot become visible before an earlier one
        let after = r.versions.last().map_or(0, |v| v.visible_ms);
        r.versions.push(Version { updated_ms: floor_sec(now), visible_ms: (now + late).max(after), n, color });
    }

    /// Deletes `id` at provider time `now`.
    pub fn delete(&mut self, id: &str, now: i64) {
        let late = self.late();
        let Some(r) = self.records.get_mut(id) else { return };
        if r.deleted.is_some() {
            return;
        }
        let after = r.versions.last().map_or(0, |v| v.visible_ms);
        r.deleted = Some((floor_sec(now), (now + late).max(after)));
    }

    /// One random mutation at `now`.
    pub fn mutate(&mut self, now: i64) {
        let live: Vec<String> = self.order.iter().filter(|id| self.records[*id].deleted.is_none()).cloned().collect();
        match self.rng.below(10) {
            0..=3 => {
                self.create(now);
            }
            4..=8 if !live.is_empty() => {
                let id = live[self.rng.below(live.len() as u64) as usize].clone();
                self.update(&id, now);
            }
            _ if !live.is_empty() => {
                let id = live[self.rng.below(live.len() as u64) as usize].clone();
                self.delete(&id, now);
            }
            _ => {
                self.create(now);
            }
        }
    }

    fn record_json(id: &str, r: &Rec, v: &Version) -> Value {
        json!({"id": id, "created_at": iso(r.created_ms), "updated_at": iso(v.updated_ms), "n": v.n, "color": v.color})
    }

    /// The state of `id` visible at `now`: `None` when not visible or deleted.
    pub fn visible(&self, id: &str, now: i64) -> Option<Value> {
        let r = self.records.get(id)?;
        if r.deleted.is_some_and(|(_, vis)| vis <= now) {
            return None;
        }
        let v = r.versions.iter().rev().find(|v| v.visible_ms <= now)?;
        Some(Self::record_json(id, r, v))
    }

    /// Every record id ever created.
    pub fn ids(&self) -> Vec<String> {
        self.order.clone()
    }

    /// Creation time of `id`.
    pub fn created_ms(&self, id: &str) -> i64 {
        self.records[id].created_ms
    }

    /// True when `id` changed (created, updated or deleted) at or after `start_ms`.
    pub fn changed_since(&self, id: &str, start_ms: i64) -> bool {
        let r = &self.records[id];
        r.versions.iter().any(|v| v.updated_ms >= start_ms) || r.deleted.is_some_and(|(d, _)| d >= start_ms)
    }

    fn list(&self, now: i64, since: Option<i64>) -> Vec<(String, Value, i64)> {
        let mut rows: Vec<(String, Value, i64)> = Vec::new();
        for id in &self.order {
            let r = &self.records[id];
            if r.deleted.is_some_and(|(_, vis)| vis <= now) {
                continue;
            }
            let Some(v) = r.versions.iter().rev().find(|v| v.visible_ms <= now) else { continue };
            if since.is_some_and(|s| v.updated_ms < s) {
                continue;
            }
            rows.push((id.clone(), Self::record_json(id, r, v), v.updated_ms));
        }
        if self.sorted {
            rows.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
        }
        rows
    }

    fn list_deleted(&self, now: i64, since: i64) -> Vec<(String, Value, i64)> {
        let mut rows: Vec<(String, Value, i64)> = self
            .order
            .iter()
            .filter_map(|id| {
                let (d, vis) = self.records[id].deleted?;
                (vis <= now && d > since).then(|| (id.clone(), json!({"id": id, "deleted_at": iso(d)}), d))
            })
            .collect();
        rows.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
        rows
    }
}

/// The query the model understands: `/hubs/finance/things?since=<date>[&exclude=<color>]`.
fn parse_query(hub_url: &str) -> Result<CompiledQuery, QueryError> {
    let bad =
        |m: &str| QueryError(vec![oc_model::ports::Diagnostic { message: m.into(), span: None, rendered: m.into() }]);
    let (path, qs) = hub_url.split_once('?').unwrap_or((hub_url, ""));
    let resource = path.rsplit('/').next().unwrap_or_default().to_string();
    let mut query = Vec::new();
    let mut local: Option<Arc<dyn RecordFilter>> = None;
    let mut deleted_feed = true;
    for pair in qs.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| bad("pair without ="))?;
        match k {
            "since" => {
                read_bound(v).ok_or_else(|| bad("unreadable since"))?;
                query.push((k.to_string(), v.to_string()));
            }
            "exclude" => local = Some(Arc::new(ExcludeColor(v.to_string()))),
            "nodeleted" => deleted_feed = false,
            _ => return Err(bad("unknown parameter")),
        }
    }
    Ok(CompiledQuery {
        resource,
        path: path.to_string(),
        query,
        page_size: None,
        page: None,
        has_deleted_feed: deleted_feed,
        local,
        warnings: Vec::new(),
    })
}

#[async_trait]
impl Provider for Model {
    fn spec(&self) -> &ProviderSpec {
        &self.spec
    }

    fn oauth_url(&self, _: &OAuthUrlRequest) -> Result<String, ProviderError> {
        Err(ProviderError::Other("the model has no OAuth".into()))
    }

    async fn exchange_code(&self, _: &OAuthApp, _: &str, _: &Configuration) -> Result<Grant, ProviderError> {
        Err(ProviderError::Other("the model has no OAuth".into()))
    }

    fn compile(&self, hub_url: &str, _needs: &FieldNeeds) -> Result<CompiledQuery, QueryError> {
        parse_query(hub_url)
    }

    fn budget(&self, session: &Session) -> Option<oc_model::ports::Budget> {
        let account = session.account.id.as_ref()?;
        let requests = *self.state.lock().unwrap().budget.get(account)?;
        Some(oc_model::ports::Budget {
            requests: requests as u32,
            per: std::time::Duration::from_millis(BUDGET_WINDOW_MS as u64),
        })
    }

    fn budget_wait(&self, session: &Session, pending: usize) -> std::time::Duration {
        let Some(account) = &session.account.id else { return std::time::Duration::ZERO };
        let now = self.clock.now().timestamp_millis();
        let ms = self.state.lock().unwrap().budget_wait_ms(account, pending, now);
        std::time::Duration::from_millis(ms as u64)
    }

    async fn fetch_page(&self, session: &Session, request: &PageRequest<'_>) -> Result<Page, ProviderError> {
        if let Some(account) = &session.account.id {
            // an account with a budget: wait (for the clock to move) until a request fits in the window
            loop {
                let sent = {
                    let mut s = self.state.lock().unwrap();
                    let now = self.clock.now().timestamp_millis();
                    let fits = s.budget_wait_ms(account, 0, now) == 0;
                    if fits && s.budget.contains_key(account) {
                        s.budget_sent.push((account.clone(), now));
                    }
                    fits
                };
                if sent {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        let crash = {
            let mut s = self.state.lock().unwrap();
            s.calls += 1;
            s.faults.crash_at == Some(s.calls)
        };
        if crash {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        let mut guard = self.state.lock().unwrap();
        let s = &mut *guard;
        if s.page_latency_ms > 0 {
            let d = s.rng.below(s.page_latency_ms + 1);
            self.clock.advance(std::time::Duration::from_millis(d));
        }
        if s.fixed_latency_ms > 0 {
            self.clock.advance(std::time::Duration::from_millis(s.fixed_latency_ms));
        }
        let now = self.clock.now().timestamp_millis() + s.skew_ms;
        let call = s.calls;
        let page_no: usize = match &request.cursor {
            PageCursor::First => 1,
            PageCursor::Next(n) => n.trim_start_matches("page=").parse().unwrap_or(1),
        };
        // every request, also one that fails below
        s.requests.push(format!(
            "{}:{}:{page_no}",
            matches!(request.feed, Feed::Deleted { .. }),
            request.query.query.first().map(|p| p.1.as_str()).unwrap_or("")
        ));
        let actions: Vec<Action> = s.script.iter().filter(|(c, _)| *c == call).map(|(_, a)| a.clone()).collect();
        for a in actions {
            match a {
                Action::Update(id) => s.update(&id, now),
                Action::Delete(id) => s.delete(&id, now),
                Action::Create => {
                    s.create(now);
                }
                Action::Throttle => return Err(ProviderError::RateLimited { retry_after: None }),
                Action::Fail => {
                    return Err(ProviderError::Api {
                        status: 503,
                        code: "Unavailable".into(),
                        message: "scripted failure".into(),
                        source_field: None,
                    });
                }
            }
        }
        // 401: refreshed inside the provider, invisible to the engine
        if s.rng.chance(0.05) {
            s.refreshes += 1;
        }
        let (er, rr) = (s.faults.error_rate, s.faults.reauth_rate);
        if s.rng.chance(rr) {
            return Err(ProviderError::ReauthorizationRequired("invalid_grant".into()));
        }
        if s.rng.chance(er) {
            return Err(match s.rng.below(3) {
                0 => ProviderError::Api {
                    status: 500,
                    code: "UnexpectedError".into(),
                    message: "boom".into(),
                    source_field: None,
                },
                1 => ProviderError::RateLimited { retry_after: None },
                _ => ProviderError::Transport("connection reset".into()),
            });
        }
        // mutations between page requests
        let mr = s.faults.mutation_rate;
        if s.order.len() < 80 && s.rng.chance(mr) {
            for _ in 0..=s.rng.below(2) {
                s.mutate(now);
            }
        }
        let size = request.page_size.clamp(1, 200) as usize;
        let since = request.query.query.iter().find(|(k, _)| k == "since").and_then(|(_, v)| read_bound(v));
        let rows = match request.feed {
            Feed::Changes => s.list(now, since.filter(|_| s.ignores_bounds.is_none())),
            Feed::Deleted { since } => match s.ignores_bounds {
                None => s.list_deleted(now, since.timestamp_millis()),
                Some(null_field) => {
                    let mut rows = s.list(now, None);
                    if null_field {
                        for (_, v, _) in &mut rows {
                            v["deleted_at"] = Value::Null;
                        }
                    }
                    rows
                }
            },
        };
        let total = rows.len();
        let pages = total.div_ceil(size).max(1);
        // Sage: a page past the end returns the last page again
        let p = page_no.min(pages);
        let chunk: Vec<(String, Value, i64)> = rows.into_iter().skip((p - 1) * size).take(size).collect();
        for (id, v, d) in &chunk {
            let content = if matches!(request.feed, Feed::Changes) { v.to_string() } else { "deleted".into() };
            s.served.insert((id.clone(), *d, content));
        }
        Ok(Page {
            records: chunk.into_iter().map(|c| c.1).collect(),
            total: Some(total as u64),
            page: Some(p as u32),
            next: (p < pages).then(|| format!("page={}", p + 1)),
            provider_time: DateTime::from_timestamp_millis(floor_sec(now)),
        })
    }
}

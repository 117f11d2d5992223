//! The scheduler: claims due poll jobs from the store, runs them with a bounded number in flight, and
//! computes when each job is due again (interval less a jitter, exponential capped backoff after failures).
//!
//! Everything it knows about instances it re-reads from the store at every claim, so created, updated,
//! disabled and deleted instances are picked up without a restart. Leases in the store keep two nodes (or two
//! tasks) from polling the same (instance, resource) at once. Decisions read time from the [`Clock`] port;
//! only [`Scheduler::run`]'s idle wait between claims uses the runtime's timer.
//!
//! **A slot is never held while waiting for an account's budget.** Before a claimed job gets one of the
//! slots (at most [`max_in_flight`](SchedulerConfig::max_in_flight)), its provider is asked whether the job's provider
//! account could send a request now, counting the polls of that account this node already started
//! ([`Provider::budget_wait`](oc_model::ports::Provider::budget_wait)). A job that could only wait stays claimed
//! — its lease renewed, its place kept: waiting jobs are admitted oldest due first — but takes no slot, and is
//! not counted as a failure; claims go on, so the jobs of other accounts are reached and run in the free slots.
//! At most [`max_waiting`](SchedulerConfig::max_waiting) jobs wait so.
//!
//! **The interval is the promise; spare budget goes where the changes are.** With adaptive polling (the
//! server's [`adaptive`](SchedulerConfig::adaptive), or `event.poller.adaptive` of an instance) a pair that
//! found changes is polled again after the [floor](SchedulerConfig::adaptive_floor), backing off to the interval
//! as it stays quiet; such an early poll runs only on the budget its account's promised polls leave over. The
//! rules are those of `pacing.rs`; an account whose configured intervals need more than its budget has its polls
//! spread oldest due first, and each carries a warning saying so.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::config::DEFAULT_REFRESH_INTERVAL;
use oc_model::error::chain;
use oc_model::ids::InstanceId;
use oc_model::ports::{
    Budget, Clock, Lease, PollClaim, PollStatus, PollWarning, PollingStore, Providers, ScheduleReport, Session,
    StoreError, Telemetry, TokenVault,
};
use tokio::task::JoinSet;

use crate::concurrency::{Ended, Limit};
use crate::engine::{Engine, EngineConfig, PollJob, PollReport};
use crate::error::PollError;
use crate::pacing::{Account, Due, Pacer};

/// Settings of the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This node's name in leases.
    pub owner: String,
    /// The most polls running at once, over all instances (default 16). The limit itself adapts between
    /// [`min_in_flight`](Self::min_in_flight) and this (AIMD, `concurrency.rs`): one more slot per round of polls
    /// while more work is due than there are slots, a quarter less when Sage or the store says it is overloaded
    /// or polls start queueing.
    pub max_in_flight: usize,
    /// The fewest polls the adaptive limit allows at once (default 4).
    pub min_in_flight: usize,
    /// Where the adaptive limit starts (default: `max_in_flight`).
    pub initial_in_flight: Option<usize>,
    /// How often [`Scheduler::run`] looks for due jobs when nothing finishes (default 250 ms: an adaptive poll due
    /// after a floor of a few seconds starts at most a quarter second late).
    pub tick: Duration,
    /// Jitter taken off each interval, so that a poll is never later than its interval (a change then waits at
    /// most one interval for its poll): up to this fraction of it, at most [`max_jitter`](Self::max_jitter)
    /// (default 0.1).
    pub jitter: f64,
    /// The largest jitter (default 30 s).
    pub max_jitter: Duration,
    /// The first delay after a failure when it is longer than the interval (default 30 s).
    pub backoff_base: Duration,
    /// The longest delay after failures (default 1 h; never shorter than the interval).
    pub backoff_cap: Duration,
    /// How long shutdown waits for running polls before abandoning them (default 30 s).
    pub shutdown_deadline: Duration,
    /// Claimed jobs that may wait, without a slot, for their account's budget (default 4,096). When as many
    /// wait, nothing more is claimed until some of them run.
    pub max_waiting: usize,
    /// Adaptive polling for the instances that do not say (`event.poller.adaptive`; default off: every pair is
    /// polled once per interval, as Open Connectors does).
    pub adaptive: bool,
    /// The shortest delay between two polls of an adaptive pair (default 3 s).
    pub adaptive_floor: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            owner: "ocpoll".into(),
            max_in_flight: 16,
            min_in_flight: 4,
            initial_in_flight: None,
            tick: Duration::from_millis(250),
            jitter: 0.1,
            max_jitter: Duration::from_secs(30),
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(3600),
            shutdown_deadline: Duration::from_secs(30),
            max_waiting: DEFAULT_MAX_WAITING,
            adaptive: false,
            adaptive_floor: DEFAULT_ADAPTIVE_FLOOR,
        }
    }
}

/// The default of [`SchedulerConfig::max_waiting`].
pub const DEFAULT_MAX_WAITING: usize = 4096;

/// The default of [`SchedulerConfig::adaptive_floor`].
pub const DEFAULT_ADAPTIVE_FLOOR: Duration = Duration::from_secs(3);

fn account_of(claim: &PollClaim) -> Account {
    let i = &claim.instance;
    (i.element_key.clone(), i.account.id.clone().unwrap_or_else(|| format!("instance:{}", i.id)))
}

/// A claimed job being admitted: its account, whether it is early, where it sorts, and its session.
struct Candidate {
    claim: PollClaim,
    account: Account,
    due: Due,
    order: (u8, DateTime<Utc>),
    session: Option<Session>,
}

/// The configured interval of `claim`'s instance (the promise of its polls, less the jitter).
fn interval_of(claim: &PollClaim) -> Duration {
    claim.instance.configuration.refresh_interval().unwrap_or(DEFAULT_REFRESH_INTERVAL)
}

/// A job in a slot: its current lease (renewals replace it) and its account.
struct Slot {
    lease: Arc<Mutex<Lease>>,
    account: Account,
}

type Running = Mutex<HashMap<(InstanceId, String), Slot>>;

/// What happened to one claimed job.
#[derive(Debug)]
pub struct JobResult {
    /// The instance.
    pub instance_id: InstanceId,
    /// The resource.
    pub resource: String,
    /// The poll's report.
    pub result: Result<PollReport, PollError>,
}

/// What a [`Scheduler`] works with: the ports it sees the world through.
#[derive(Clone)]
pub struct PollPorts {
    /// Poll jobs and their results.
    pub store: Arc<dyn PollingStore>,
    /// Where the providers keep the instances' tokens.
    pub vault: Arc<dyn TokenVault>,
    /// The providers, by element key.
    pub providers: Providers,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where polls are reported.
    pub telemetry: Arc<dyn Telemetry>,
}

/// Runs the engine for every due (instance, resource).
pub struct Scheduler {
    store: Arc<dyn PollingStore>,
    vault: Arc<dyn TokenVault>,
    providers: Providers,
    clock: Arc<dyn Clock>,
    engine: Engine,
    config: SchedulerConfig,
    running: Running,
    /// Claimed jobs waiting for their account's budget, without a slot.
    waiting: Mutex<Vec<PollClaim>>,
    /// What is known of the pairs polled and the accounts' demand.
    pacer: Mutex<Pacer>,
    telemetry: Arc<dyn Telemetry>,
    /// Early polls admitted so far.
    early_polls: std::sync::atomic::AtomicU64,
    /// When the schedule was last reported.
    reported_at: Mutex<Option<DateTime<Utc>>>,
    /// The adaptive limit on polls in flight.
    limit: Mutex<Limit>,
    /// More work was due than there were slots at the last admission.
    backlog: std::sync::atomic::AtomicBool,
}

impl Scheduler {
    /// A scheduler over `ports`.
    pub fn new(ports: PollPorts, engine: EngineConfig, config: SchedulerConfig) -> Arc<Self> {
        let PollPorts { store, vault, providers, clock, telemetry } = ports;
        Arc::new(Scheduler {
            engine: Engine::new(clock.clone(), engine, telemetry.clone()),
            telemetry,
            pacer: Mutex::new(Pacer::default()),
            early_polls: std::sync::atomic::AtomicU64::new(0),
            reported_at: Mutex::new(None),
            limit: Mutex::new(Limit::new(
                config.initial_in_flight.unwrap_or(config.max_in_flight),
                config.min_in_flight,
                config.max_in_flight,
            )),
            backlog: std::sync::atomic::AtomicBool::new(false),
            store,
            vault,
            providers,
            clock,
            config,
            running: Mutex::new(HashMap::new()),
            waiting: Mutex::new(Vec::new()),
        })
    }

    /// Polls running now.
    pub fn in_flight(&self) -> usize {
        lock(&self.running).len()
    }

    /// Polls that may run at once now (the adaptive limit).
    pub fn concurrency(&self) -> usize {
        lock(&self.limit).get()
    }

    /// Claimed jobs waiting, without a slot, for their account's budget.
    pub fn waiting(&self) -> usize {
        lock(&self.waiting).len()
    }

    fn free_slots(&self) -> usize {
        self.concurrency().saturating_sub(self.in_flight())
    }

    /// Claims due jobs, as many as there are free slots (none when [`SchedulerConfig::max_waiting`] jobs wait);
    /// returns them with the number asked for.
    async fn claim(&self) -> Result<(Vec<PollClaim>, usize), PollError> {
        let free = self.free_slots();
        if free == 0 || self.waiting() >= self.config.max_waiting {
            return Ok((Vec::new(), 0));
        }
        let ttl = self.engine.config().lease_ttl;
        Ok((self.store.claim_polls(&self.config.owner, self.clock.now(), free, ttl).await?, free))
    }

    /// Gives slots to the waiting jobs and to `claims` while slots are free and each job's account has budget
    /// for it; the others wait. Promised jobs go first, oldest due first; early ones (adaptive polls before their
    /// promise) after them, by promise, and only on the budget the account's promised polls leave over. Returns
    /// the jobs admitted (each already in its slot).
    fn admit(&self, claims: Vec<PollClaim>) -> Vec<PollClaim> {
        let mut waiting = lock(&self.waiting);
        let candidates = std::mem::take(&mut *waiting);
        if candidates.is_empty() && claims.is_empty() {
            return Vec::new();
        }
        let now = self.clock.now();
        let mut pacer = lock(&self.pacer);
        let mut candidates: Vec<Candidate> = candidates
            .into_iter()
            .chain(claims)
            .map(|claim| {
                let session = Session::of(&claim.instance, self.vault.clone()).ok();
                let provider = self.providers.get(&claim.instance.element_key);
                let budget = match (&provider, &session) {
                    (Some(p), Some(s)) => p.budget(s),
                    _ => None,
                };
                let account = account_of(&claim);
                let key = (claim.instance_id(), claim.resource.as_str());
                let due = pacer.claimed(key, &account, interval_of(&claim), self.adaptive(&claim), budget, now);
                let order = match due {
                    Due::Promised => (0, claim.due_at),
                    Due::Early { promise_at } => (1, promise_at),
                };
                Candidate { claim, account, due, order, session }
            })
            .collect();
        candidates.sort_by(|a, b| {
            (a.order, a.claim.instance.id, &a.claim.resource).cmp(&(b.order, b.claim.instance.id, &b.claim.resource))
        });
        let mut running = lock(&self.running);
        let mut started: HashMap<Account, usize> = HashMap::new();
        for slot in running.values() {
            *started.entry(slot.account.clone()).or_default() += 1;
        }
        let mut blocked: HashMap<Account, Duration> = HashMap::new();
        let mut admitted = Vec::new();
        let limit = self.concurrency();
        let mut starved = false;
        for Candidate { claim, account, due, session, .. } in candidates {
            if running.len() >= limit {
                starved |= due == Due::Promised && !blocked.contains_key(&account);
                waiting.push(claim);
                continue;
            }
            if blocked.contains_key(&account) {
                waiting.push(claim);
                continue;
            }
            let pending = started.get(&account).copied().unwrap_or(0);
            // an early poll leaves a whole window of the account's promised polls free
            let reserve = match due {
                Due::Promised => 0,
                Due::Early { .. } => pacer.demand(&account).ceil() as usize,
            };
            let wait = match (self.providers.get(&claim.instance.element_key), session) {
                (Some(provider), Some(session)) => provider.budget_wait(&session, pending + reserve),
                // the poll fails without a request: nothing to wait for
                _ => Duration::ZERO,
            };
            if !wait.is_zero() {
                if due == Due::Promised {
                    tracing::debug!(
                        instance_id = claim.instance.id,
                        resource = claim.resource,
                        wait_ms = wait.as_millis() as u64,
                        "poll waits for its account's budget, without a slot"
                    );
                    // the account's later jobs wait too: the oldest due goes first
                    blocked.insert(account, wait);
                }
                waiting.push(claim);
                continue;
            }
            if matches!(due, Due::Early { .. }) {
                self.early_polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            *started.entry(account.clone()).or_default() += 1;
            let lease = Arc::new(Mutex::new(claim.lease.clone()));
            running.insert((claim.instance_id(), claim.resource.clone()), Slot { lease, account });
            admitted.push(claim);
        }
        if starved {
            self.backlog.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        admitted
    }

    /// Whether `claim`'s instance polls adaptively: its `event.poller.adaptive`, else the server's default.
    fn adaptive(&self, claim: &PollClaim) -> bool {
        claim.instance.configuration.poller_adaptive().ok().flatten().unwrap_or(self.config.adaptive)
    }

    /// Reports the schedule to the telemetry, at most once a second.
    fn report(&self) {
        let now = self.clock.now();
        {
            let mut at = lock(&self.reported_at);
            if at.is_some_and(|t| now - t < chrono::Duration::seconds(1)) {
                return;
            }
            *at = Some(now);
        }
        let (accounts, short_accounts, adaptive_pairs) = {
            let pacer = lock(&self.pacer);
            (pacer.accounts(), pacer.short_accounts(), pacer.adaptive_pairs())
        };
        self.telemetry.schedule(&ScheduleReport {
            in_flight: self.in_flight(),
            concurrency: self.concurrency(),
            waiting: self.waiting(),
            accounts,
            short_accounts,
            adaptive_pairs,
            early_polls: self.early_polls.load(std::sync::atomic::Ordering::Relaxed),
        });
    }

    /// Renews the leases of waiting jobs that would lapse within half a lease; a job whose lease was lost
    /// meanwhile is dropped (another node has it).
    async fn renew_waiting(&self) {
        let ttl = self.engine.config().lease_ttl;
        let now = self.clock.now();
        let margin = chrono::Duration::from_std(ttl / 2).unwrap_or(chrono::Duration::MAX);
        let due: Vec<(InstanceId, String, Lease)> = lock(&self.waiting)
            .iter()
            .filter(|c| c.lease.expires_at - now <= margin)
            .map(|c| (c.instance_id(), c.resource.clone(), c.lease.clone()))
            .collect();
        for (instance, resource, lease) in due {
            let renewed = self.store.renew_poll(instance, &resource, &lease, now, ttl).await;
            let mut waiting = lock(&self.waiting);
            let Some(at) = waiting.iter().position(|c| {
                c.instance_id() == instance && c.resource == resource && c.lease.generation == lease.generation
            }) else {
                continue;
            };
            match renewed {
                Ok(lease) => waiting[at].lease = lease,
                Err(e) => {
                    tracing::warn!(instance, resource, error = %e, "a job waiting for its budget lost its lease");
                    waiting.remove(at);
                }
            }
        }
    }

    /// Claims and admits: the waiting jobs first, then new claims — again while some of the jobs claimed had to
    /// wait (they hold no slot, so the jobs of other accounts are reached at once). Returns the jobs to run.
    async fn claim_and_admit(&self) -> Result<Vec<PollClaim>, PollError> {
        self.renew_waiting().await;
        self.backlog.store(false, std::sync::atomic::Ordering::Relaxed);
        let mut ready = self.admit(Vec::new());
        loop {
            let (claims, asked) = self.claim().await?;
            let got = claims.len();
            if got > 0 && got == asked {
                // every free slot found a job: more may be due
                self.backlog.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let before = ready.len();
            ready.extend(self.admit(claims));
            let some_waited = ready.len() - before < got;
            if got == 0 || got < asked || !some_waited {
                self.report();
                return Ok(ready);
            }
        }
    }

    /// One step: claims the due jobs (as many as there are free slots), admits those whose account has budget
    /// (the others wait, without a slot, for a later step) and runs them, concurrently, to the end. For tests
    /// and tools; the service uses [`run`](Self::run).
    pub async fn tick(self: &Arc<Self>) -> Result<Vec<JobResult>, PollError> {
        let claims = self.claim_and_admit().await?;
        let mut set = JoinSet::new();
        for claim in claims {
            let this = self.clone();
            set.spawn(async move { this.run_claim(claim).await });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(r) => out.push(r),
                Err(e) => tracing::error!(error = %e, "poll task failed"),
            }
        }
        Ok(out)
    }

    /// Runs until `shutdown` completes, then stops claiming, lets running polls finish for up to
    /// [`SchedulerConfig::shutdown_deadline`], and abandons the rest (nothing half-committed: a commit is one
    /// store transaction) and releases their leases.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut set: JoinSet<JobResult> = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            match self.claim_and_admit().await {
                Ok(claims) => {
                    for claim in claims {
                        let this = self.clone();
                        set.spawn(async move { this.run_claim(claim).await });
                    }
                }
                Err(e) => tracing::warn!(error = %chain(&e), "claiming poll jobs failed"),
            }
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = set.join_next(), if !set.is_empty() => log_result(done),
                _ = tokio::time::sleep(self.config.tick) => {}
            }
        }
        let deadline = tokio::time::sleep(self.config.shutdown_deadline);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = set.join_next() => match next {
                    Some(done) => log_result(done),
                    None => break,
                },
                _ = &mut deadline => {
                    set.abort_all();
                    while set.join_next().await.is_some() {}
                    break;
                }
            }
        }
        self.release_all().await;
    }

    async fn release_all(&self) {
        let mut leases: Vec<((InstanceId, String), Lease)> = {
            let mut running = lock(&self.running);
            running.drain().map(|(k, v)| (k, lock(&v.lease).clone())).collect()
        };
        let waiting = std::mem::take(&mut *lock(&self.waiting));
        leases.extend(waiting.into_iter().map(|c| ((c.instance_id(), c.resource), c.lease)));
        for ((instance, resource), lease) in leases {
            if let Err(e) = self.store.release_poll(instance, &resource, &lease).await {
                tracing::warn!(instance, resource, error = %e, "releasing a lease at shutdown failed");
            }
        }
    }

    /// Runs an admitted job (already in its slot, see [`admit`](Self::admit)) and frees its slot.
    async fn run_claim(self: Arc<Self>, claim: PollClaim) -> JobResult {
        let key = (claim.instance_id(), claim.resource.clone());
        let slot = lock(&self.running).get(&key).map(|s| s.lease.clone());
        let slot = slot.unwrap_or_else(|| Arc::new(Mutex::new(claim.lease.clone())));
        let started = self.clock.now();
        let (result, promise) = self.poll_claim(&claim, &slot).await;
        lock(&self.running).remove(&key);
        let changes = match &result {
            Ok(r) if r.outcome.status.completed() => {
                Some(u64::from(r.outcome.created) + u64::from(r.outcome.updated) + u64::from(r.outcome.deleted) > 0)
            }
            _ => None,
        };
        let delay = match &result {
            Ok(r) => (r.next_run_at - started).to_std().unwrap_or(Duration::ZERO),
            Err(_) => promise,
        };
        lock(&self.pacer).polled((key.0, &key.1), started, changes, delay, promise);
        let ended = Ended {
            took: (self.clock.now() - started).to_std().unwrap_or(Duration::ZERO),
            congested: match &result {
                Ok(r) => r.congested,
                Err(PollError::Store(StoreError::LeaseLost(_))) => false,
                Err(PollError::Store(_)) => true,
                Err(_) => false,
            },
            backlog: self.backlog.load(std::sync::atomic::Ordering::Relaxed),
        };
        lock(&self.limit).ended(ended, self.clock.now());
        log_poll(&claim, &result);
        JobResult { instance_id: claim.instance_id(), resource: claim.resource, result }
    }

    /// Polls `claim`; returns the result and the promise it made (the longest its next poll may wait).
    async fn poll_claim(&self, claim: &PollClaim, slot: &Mutex<Lease>) -> (Result<PollReport, PollError>, Duration) {
        let instance = &claim.instance;
        let now = self.clock.now();
        let interval = interval_of(claim);
        let promise = interval.saturating_sub(self.jitter(claim, interval, now));
        let (quiet, changed) =
            lock(&self.pacer).delays((claim.instance_id(), &claim.resource), promise, self.config.adaptive_floor, now);
        let next_run_ok = now + to_chrono(quiet);
        let failures = claim.state.consecutive_failures.saturating_add(1);
        let next_run_failed = now + to_chrono(self.backoff(interval, failures));
        let Some(provider) = self.providers.get(&instance.element_key) else {
            let error = format!("no provider serves the element {:?}", instance.element_key);
            let failed = self.engine.fail_unpolled(self.store.as_ref(), claim, error, next_run_failed).await;
            return (failed, promise);
        };
        let session = match Session::of(instance, self.vault.clone()) {
            Ok(session) => session,
            Err(problems) => {
                let error = format!("the instance cannot talk to its provider: {problems}");
                let failed = self.engine.fail_unpolled(self.store.as_ref(), claim, error, next_run_failed).await;
                return (failed, promise);
            }
        };
        let warnings = self.shortfall(claim, provider.budget(&session)).into_iter().collect();
        let job = PollJob {
            claim,
            provider: provider.as_ref(),
            session: &session,
            store: self.store.as_ref(),
            next_run_ok,
            next_run_changed: changed.map(|d| now + to_chrono(d)),
            next_run_failed,
            lease_slot: Some(slot),
            warnings,
        };
        (self.engine.poll(job).await, promise)
    }

    /// The warning of a poll whose account's configured intervals need more than its budget.
    fn shortfall(&self, claim: &PollClaim, budget: Option<Budget>) -> Option<PollWarning> {
        let budget = budget?;
        let demand = lock(&self.pacer).demand(&account_of(claim));
        (demand > f64::from(budget.requests)).then(|| {
            let per = budget.per.as_secs_f64();
            PollWarning::general(format!(
                "the intervals of this account's polls need {demand:.0} requests per {per:.0} s, more than the \
                 {} it may use here: its polls are spread, oldest due first, and come up to {:.0}% later than \
                 their intervals (lengthen the intervals, poll fewer resources, or give the account a larger \
                 share of its budget)",
                budget.requests,
                (demand / f64::from(budget.requests.max(1)) - 1.0) * 100.0
            ))
        })
    }

    /// A small deterministic jitter, so that instances created together spread out; taken off the interval
    /// (added to it, a change could wait up to interval + jitter for its poll).
    fn jitter(&self, claim: &PollClaim, interval: Duration, now: DateTime<Utc>) -> Duration {
        let max = interval.mul_f64(self.config.jitter.clamp(0.0, 1.0)).min(self.config.max_jitter);
        let seed =
            crate::hash::content_hash(&serde_json::json!([claim.instance.id, claim.resource, now.timestamp_millis()]));
        max.mul_f64((seed >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// The delay after the `failures`-th failure in a row: the interval (or the base) doubled per failure,
    /// capped.
    pub fn backoff(&self, interval: Duration, failures: u32) -> Duration {
        let first = interval.max(self.config.backoff_base);
        let cap = self.config.backoff_cap.max(interval);
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        first.saturating_mul(factor).min(cap)
    }
}

/// Polls themselves are logged as they end (`log_poll`); here only a task that did not end.
fn log_result(done: Result<JobResult, tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "poll task failed");
    }
}

/// One line per poll: at INFO when it found events, failed (and so backs off), stayed inconsistent or recorded
/// warnings; at DEBUG when it found nothing. Counts, times and the error only: never a record, token or secret
/// (the error is the one the API shows in the poll's outcome).
fn log_poll(claim: &PollClaim, result: &Result<PollReport, PollError>) {
    let (instance_id, resource) = (claim.instance.id, claim.resource.as_str());
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(instance_id, resource, error = %chain(e), "poll not recorded");
            return;
        }
    };
    let o = &r.outcome;
    let events = u64::from(o.created) + u64::from(o.updated) + u64::from(o.deleted);
    let completed = o.status.completed();
    // failures in a row, this one included: what the backoff was computed from
    let failures = (!completed).then(|| claim.state.consecutive_failures.saturating_add(1));
    let (inserted, duplicates) = match r.inserted {
        Some((i, d)) => (Some(i as u64), Some(d as u64)),
        None => (None, None),
    };
    let duration_ms = (o.finished_at - o.started_at).num_milliseconds().max(0);
    let next_poll_in_s = (r.next_run_at - o.finished_at).num_milliseconds().max(0) as f64 / 1000.0;
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                $level,
                instance_id,
                resource,
                outcome = o.status.as_str(),
                records = o.records,
                pages = o.pages,
                events,
                created = o.created,
                updated = o.updated,
                deleted = o.deleted,
                inserted,
                duplicates,
                warnings = o.warnings.len(),
                duration_ms,
                next_poll_in_s,
                failures,
                error = o.error.as_deref(),
                "poll done"
            )
        };
    }
    if events > 0 || !o.warnings.is_empty() || o.status != PollStatus::Ok {
        line!(tracing::Level::INFO);
    } else {
        line!(tracing::Level::DEBUG);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

//! The scheduler: claims due poll jobs from the store, runs them with a bounded number in flight, and
//! computes when each job is due again (interval less a jitter, exponential capped backoff after failures).
//!
//! Everything it knows about instances it re-reads from the store at every claim, so created, updated,
//! disabled and deleted instances are picked up without a restart. Leases in the store keep two nodes (or two
//! tasks) from polling the same (instance, resource) at once. Decisions read time from the [`Clock`] port;
//! only [`Scheduler::run`]'s idle wait between claims uses the runtime's timer.
//!
//! **A slot is never held while waiting for an account's budget.** Before a claimed job gets one of the
//! [`max_in_flight`](SchedulerConfig::max_in_flight) slots, its provider is asked whether the job's provider
//! account could send a request now, counting the polls of that account this node already started
//! ([`Provider::budget_wait`](oc_model::ports::Provider::budget_wait)). A job that could only wait stays claimed
//! — its lease renewed, its place kept: waiting jobs are admitted oldest due first — but takes no slot, and is
//! not counted as a failure; claims go on, so the jobs of other accounts are reached and run in the free slots.
//! At most [`max_waiting`](SchedulerConfig::max_waiting) jobs wait so.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::config::DEFAULT_REFRESH_INTERVAL;
use oc_model::error::chain;
use oc_model::ids::InstanceId;
use oc_model::ports::{Clock, Lease, PollClaim, PollStatus, PollingStore, Providers, Session, Telemetry, TokenVault};
use tokio::task::JoinSet;

use crate::engine::{Engine, EngineConfig, PollJob, PollReport};
use crate::error::PollError;

/// Settings of the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This node's name in leases.
    pub owner: String,
    /// Polls running at once, over all instances (default 16).
    pub max_in_flight: usize,
    /// How often [`Scheduler::run`] looks for due jobs when nothing finishes (default 1 s).
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
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            owner: "ocpoll".into(),
            max_in_flight: 16,
            tick: Duration::from_secs(1),
            jitter: 0.1,
            max_jitter: Duration::from_secs(30),
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(3600),
            shutdown_deadline: Duration::from_secs(30),
            max_waiting: DEFAULT_MAX_WAITING,
        }
    }
}

/// The default of [`SchedulerConfig::max_waiting`].
pub const DEFAULT_MAX_WAITING: usize = 4096;

/// Whose request budget a job spends: its element and its provider account (the instance's own when the
/// provider names none).
type Account = (String, String);

fn account_of(claim: &PollClaim) -> Account {
    let i = &claim.instance;
    (i.element_key.clone(), i.account.id.clone().unwrap_or_else(|| format!("instance:{}", i.id)))
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
}

impl Scheduler {
    /// A scheduler over `ports`.
    pub fn new(ports: PollPorts, engine: EngineConfig, config: SchedulerConfig) -> Arc<Self> {
        let PollPorts { store, vault, providers, clock, telemetry } = ports;
        Arc::new(Scheduler {
            engine: Engine::new(clock.clone(), engine, telemetry),
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

    /// Claimed jobs waiting, without a slot, for their account's budget.
    pub fn waiting(&self) -> usize {
        lock(&self.waiting).len()
    }

    fn free_slots(&self) -> usize {
        self.config.max_in_flight.saturating_sub(self.in_flight())
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

    /// Gives slots to the waiting jobs and to `claims`, oldest due first, while slots are free and each job's
    /// account has budget for it; the others wait. Returns the jobs admitted (each already in its slot).
    fn admit(&self, claims: Vec<PollClaim>) -> Vec<PollClaim> {
        let mut waiting = lock(&self.waiting);
        let mut candidates = std::mem::take(&mut *waiting);
        if candidates.is_empty() && claims.is_empty() {
            return Vec::new();
        }
        candidates.extend(claims);
        candidates.sort_by(|a, b| (a.due_at, a.instance.id, &a.resource).cmp(&(b.due_at, b.instance.id, &b.resource)));
        let mut running = lock(&self.running);
        let mut started: HashMap<Account, usize> = HashMap::new();
        for slot in running.values() {
            *started.entry(slot.account.clone()).or_default() += 1;
        }
        let mut blocked: HashMap<Account, Duration> = HashMap::new();
        let mut admitted = Vec::new();
        for claim in candidates {
            let account = account_of(&claim);
            if running.len() >= self.config.max_in_flight || blocked.contains_key(&account) {
                waiting.push(claim);
                continue;
            }
            let pending = started.get(&account).copied().unwrap_or(0);
            let wait = match (
                self.providers.get(&claim.instance.element_key),
                Session::of(&claim.instance, self.vault.clone()),
            ) {
                (Some(provider), Ok(session)) => provider.budget_wait(&session, pending),
                // the poll fails without a request: nothing to wait for
                _ => Duration::ZERO,
            };
            if !wait.is_zero() {
                tracing::debug!(
                    instance_id = claim.instance.id,
                    resource = claim.resource,
                    wait_ms = wait.as_millis() as u64,
                    "poll waits for its account's budget, without a slot"
                );
                blocked.insert(account, wait);
                waiting.push(claim);
                continue;
            }
            *started.entry(account.clone()).or_default() += 1;
            let lease = Arc::new(Mutex::new(claim.lease.clone()));
            running.insert((claim.instance_id(), claim.resource.clone()), Slot { lease, account });
            admitted.push(claim);
        }
        admitted
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
        let mut ready = self.admit(Vec::new());
        loop {
            let (claims, asked) = self.claim().await?;
            let got = claims.len();
            let before = ready.len();
            ready.extend(self.admit(claims));
            let some_waited = ready.len() - before < got;
            if got == 0 || got < asked || !some_waited {
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
        let result = self.poll_claim(&claim, &slot).await;
        lock(&self.running).remove(&key);
        log_poll(&claim, &result);
        JobResult { instance_id: claim.instance_id(), resource: claim.resource, result }
    }

    async fn poll_claim(&self, claim: &PollClaim, slot: &Mutex<Lease>) -> Result<PollReport, PollError> {
        let instance = &claim.instance;
        let now = self.clock.now();
        let interval = instance.configuration.refresh_interval().unwrap_or(DEFAULT_REFRESH_INTERVAL);
        let next_run_ok = now + to_chrono(interval.saturating_sub(self.jitter(claim, interval, now)));
        let failures = claim.state.consecutive_failures.saturating_add(1);
        let next_run_failed = now + to_chrono(self.backoff(interval, failures));
        let Some(provider) = self.providers.get(&instance.element_key) else {
            let error = format!("no provider serves the element {:?}", instance.element_key);
            return self.engine.fail_unpolled(self.store.as_ref(), claim, error, next_run_failed).await;
        };
        let session = match Session::of(instance, self.vault.clone()) {
            Ok(session) => session,
            Err(problems) => {
                let error = format!("the instance cannot talk to its provider: {problems}");
                return self.engine.fail_unpolled(self.store.as_ref(), claim, error, next_run_failed).await;
            }
        };
        let job = PollJob {
            claim,
            provider: provider.as_ref(),
            session: &session,
            store: self.store.as_ref(),
            next_run_ok,
            next_run_failed,
            lease_slot: Some(slot),
        };
        self.engine.poll(job).await
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

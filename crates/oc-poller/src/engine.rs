//! One poll of one (instance, resource): the steps of `change-detection.md` from `T0` to the commit, in four
//! stages — [`plan`](Engine::prepare) (the compiled configuration, the window, the query rendered once),
//! [`scan`](Engine::scan) (every page, rescans while inconsistent), [`classify`](Engine::classify) (events, the
//! new `seen` set and watermark; pure) and commit (one store call, or an abandoned poll).
//!
//! ```text
//! T0 = local + skew − 1 s (before the first request)      S = W − L      URL rendered with S
//! every page of every scan ──▶ Collector (newest state per id) ──▶ consistent? else rescan (≤ 3)
//! deleted feed (same) ──▶ Classifier (seen + hashes) ──▶ events, seen, W = T0 ──▶ store.commit_poll (one tx)
//! ```
//!
//! The pitfalls the steps defend against are numbered in `docs/change-detection.md`; the comments cite them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

use chrono::{DateTime, SubsecRound, Utc};
use oc_model::error::chain;
use oc_model::event::{Event, EventType, event_id};
use oc_model::ports::{
    Clock, CompiledQuery, Feed, Known, Lease, PollClaim, PollCommit, PollFailure, PollOutcome, PollRecorded,
    PollStatus, PollWarning, PollingStore, Provider, ProviderError, Reconciled, Session, StoreError, Telemetry,
};
use serde_json::Value;

use crate::classify::{Classified, Classifier, Collector, FeedKind, MAX_WARNINGS, Observation, RecordReader, Window};
use crate::defences::Defences;
use crate::error::PollError;
use crate::hash::content_hash;
use crate::plan::{PlanSettings, PollPlan};
use crate::scan::{LeaseKeeper, ScanReport, Scanner, Skew};
use crate::seen::{SeenEntry, SeenSet};

/// Settings of the engine (per server).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The smallest lookback window `L` (default 60 s).
    pub default_lookback: Duration,
    /// Rescans of an inconsistent window before giving up on moving the watermark (default 3).
    pub max_rescans: u32,
    /// Pages one scan may read before it is considered a provider paging loop (default 10,000).
    pub max_pages: u32,
    /// The lease time of a poll job; the engine renews it between pages (default 5 min).
    pub lease_ttl: Duration,
    /// The defences (all on; switchable only with the feature `mutations`, for the pitfall tests).
    #[cfg(feature = "mutations")]
    pub defences: Defences,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_lookback: Duration::from_secs(60),
            max_rescans: 3,
            max_pages: 10_000,
            lease_ttl: Duration::from_secs(300),
            #[cfg(feature = "mutations")]
            defences: Defences::default(),
        }
    }
}

impl EngineConfig {
    /// The defences in force: all of them, unless a `mutations` build says otherwise.
    fn defences(&self) -> Defences {
        #[cfg(feature = "mutations")]
        return self.defences;
        #[cfg(not(feature = "mutations"))]
        Defences::ALL
    }
}

/// The change-detection engine.
#[derive(Debug)]
pub struct Engine {
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    telemetry: Arc<dyn Telemetry>,
}

/// One poll to run.
pub struct PollJob<'a> {
    /// The claimed job, with its instance and the state to continue from.
    pub claim: &'a PollClaim,
    /// The provider of the instance's element.
    pub provider: &'a dyn Provider,
    /// The instance's provider session.
    pub session: &'a Session,
    /// Where the result goes.
    pub store: &'a dyn PollingStore,
    /// When the job is due again after a successful poll.
    pub next_run_ok: DateTime<Utc>,
    /// When the job is due again after a successful poll that found changes, when sooner (adaptive polling).
    pub next_run_changed: Option<DateTime<Utc>>,
    /// When the job is due again after a failed poll (backoff).
    pub next_run_failed: DateTime<Utc>,
    /// Where the current lease is published for the scheduler (renewals replace it).
    pub lease_slot: Option<&'a Mutex<Lease>>,
    /// Warnings the scheduler adds to the poll's outcome (a shortfall of the account's budget).
    pub warnings: Vec<PollWarning>,
}

/// What a poll did.
#[derive(Debug, Clone)]
pub struct PollReport {
    /// The outcome as recorded in the store.
    pub outcome: PollOutcome,
    /// Events inserted and ignored as duplicates, when committed.
    pub inserted: Option<(usize, usize)>,
    /// The watermark after the poll.
    pub watermark: Option<DateTime<Utc>>,
    /// When the job is due again: the next interval after a completed poll, the backoff after a failed one.
    pub next_run_at: DateTime<Utc>,
    /// The poll was stopped by an overloaded provider: throttled beyond its retries, a transport failure or a
    /// 5xx ([`ProviderError::is_transient`]). The scheduler's concurrency limit backs off on it.
    pub congested: bool,
}

/// A poll ready to scan: the plan, the window and the query.
struct Prepared {
    plan: PollPlan,
    /// Where the watermark starts when there is none: the backfill, else the job's creation.
    start: DateTime<Utc>,
    /// The watermark before this poll.
    w_prev: DateTime<Utc>,
    /// The lower bound really queried (`S = W − L`, or earlier after mask truncation).
    window_start: DateTime<Utc>,
    seen: SeenSet,
    query: CompiledQuery,
    page_size: u32,
    warnings: Vec<PollWarning>,
    /// What the store knows of each object, when this poll reseeds or reconciles.
    known: Known,
    /// The query of a complete scan of every id, when this poll reconciles deletions.
    reconcile: Option<CompiledQuery>,
    /// No watermark yet, no backfill and no replay: the job's first poll, which replays nothing.
    first_poll: bool,
}

/// Why a poll stops before its commit: the outcome to record as abandoned.
struct Stop {
    status: PollStatus,
    error: PollError,
    window_start: Option<DateTime<Utc>>,
    warnings: Vec<PollWarning>,
}

impl Stop {
    fn failed(error: PollError) -> Stop {
        Stop { status: PollStatus::Failed, error, window_start: None, warnings: Vec::new() }
    }
}

/// What the scans read.
struct Scanned {
    changes: Collector,
    deletions: Collector,
    problems: Vec<String>,
    pages: u32,
    /// Every id of a complete reconciling scan, when one ran and proved complete.
    all_ids: Option<HashSet<Box<str>>>,
    /// Why a reconciling scan proved nothing, when one ran.
    reconcile_problem: Option<String>,
    /// Ids of the first scan of the changes (only for the pitfall-11 mutation).
    #[cfg(feature = "mutations")]
    first_ids: Vec<Box<str>>,
}

/// What a classification decided: the commit of a completed poll.
struct Decided {
    events: Vec<Event>,
    seen: SeenSet,
    watermark: Option<DateTime<Utc>>,
    outcome: PollOutcome,
    /// The ids live after this poll, when a complete reconciling scan ran.
    live_ids: Option<Vec<Box<str>>>,
}

impl Engine {
    /// An engine reading time from `clock` and reporting every poll to `telemetry`.
    pub fn new(clock: Arc<dyn Clock>, config: EngineConfig, telemetry: Arc<dyn Telemetry>) -> Self {
        Engine { clock, config, telemetry }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The plan settings of this engine.
    pub fn plan_settings(&self) -> PlanSettings {
        // pitfall-3 mutation: without the lookback, `L = pollDelay`
        let lookback = self.config.defences().lookback;
        PlanSettings { default_lookback: if lookback { self.config.default_lookback } else { Duration::ZERO } }
    }

    /// Runs one poll and records its result in the store: events + `seen` + watermark in one commit, or an
    /// abandoned poll (nothing but the outcome). An `Err` means the store refused the result (e.g. the lease
    /// was lost); the poll then had no effect.
    ///
    /// It runs in a span `poll` (fields `instance.id`, `resource`, and, once it ended, `poll.status` and
    /// `poll.events`) whose children are the provider's requests and the span `commit`.
    pub async fn poll(&self, job: PollJob<'_>) -> Result<PollReport, PollError> {
        let span = tracing::info_span!(
            "poll",
            instance.id = job.claim.instance.id,
            resource = %job.claim.resource,
            poll.status = tracing::field::Empty,
            poll.events = tracing::field::Empty,
        );
        let result = self.run(job).instrument(span.clone()).await;
        match &result {
            Ok(report) => {
                span.record("poll.status", report.outcome.status.as_str());
                if let Some((inserted, _)) = report.inserted {
                    span.record("poll.events", inserted);
                }
            }
            Err(e) => {
                span.record("poll.status", "refused");
                span.in_scope(|| tracing::warn!(error = %e, "the store refused the poll's result"));
            }
        }
        result
    }

    async fn run(&self, job: PollJob<'_>) -> Result<PollReport, PollError> {
        let started_at = self.clock.now();
        let mut prepared = match self.prepare(&job) {
            Ok(p) => p,
            Err(mut stop) => {
                stop.warnings.extend(job.warnings.iter().cloned());
                return self.abandon(&job, &job.claim.lease, started_at, stop).await;
            }
        };
        prepared.warnings.extend(job.warnings.iter().cloned());
        if job.claim.state.reseed || prepared.reconcile.is_some() {
            let claim = job.claim;
            prepared.known = job.store.known(claim.instance.id, &claim.resource).await?;
            if claim.state.reseed {
                prepared.seen = reseeded(&prepared.seen, &prepared.known.notified);
            }
        }
        // T0's local part: before the first request (pitfall 4)
        let local_start = self.clock.now();
        let mut keeper = LeaseKeeper {
            store: job.store,
            instance: job.claim.instance.id,
            resource: &job.claim.resource,
            lease: job.claim.lease.clone(),
            ttl: self.config.lease_ttl,
            slot: job.lease_slot,
        };
        let mut skew = Skew::default();
        let scanned = self.scan(&job, &prepared, &mut keeper, &mut skew).await;
        let lease = keeper.lease.clone();
        let scanned = match scanned {
            Ok(s) => s,
            Err(PollError::Store(e)) => return Err(PollError::Store(e)),
            Err(error) => {
                #[cfg(feature = "mutations")]
                if !self.config.defences().keep_watermark_on_failure
                    && !matches!(error, PollError::Provider(ProviderError::ReauthorizationRequired(_)))
                {
                    // pitfall-9 mutation: the careless engine moves its cursor anyway
                    let t0 = self.t0(local_start, &skew, job.claim.state.skew_ms);
                    let mut outcome = PollOutcome::new(started_at, self.clock.now(), PollStatus::Failed, None);
                    outcome.window_start = Some(prepared.window_start);
                    outcome.error = Some(chain(&error));
                    let commit = PollCommit {
                        events: Vec::new(),
                        seen: job.claim.state.seen.clone(),
                        watermark: Some(t0),
                        skew_ms: job.claim.state.skew_ms,
                        outcome,
                        next_run_at: job.next_run_failed,
                        reconciled: None,
                        trace_parent: None,
                    };
                    return self.commit(&job, &lease, commit).await;
                }
                let status = match &error {
                    PollError::Provider(ProviderError::ReauthorizationRequired(reason)) => {
                        // the provider marks the instance invalid; make sure of it (idempotent)
                        let _ = job.session.vault.mark_invalid(job.claim.instance.id, reason).await;
                        PollStatus::ReauthorizationRequired
                    }
                    _ => PollStatus::Failed,
                };
                let window_start = Some(prepared.window_start);
                let stop = Stop { status, error, window_start, warnings: prepared.warnings };
                return self.abandon(&job, &lease, started_at, stop).await;
            }
        };
        let t0 = if self.config.defences().t0_before_first_request {
            self.t0(local_start, &skew, job.claim.state.skew_ms)
        } else {
            // pitfall-4 mutation: the cursor taken at the end of the run
            self.t0(self.clock.now(), &skew, job.claim.state.skew_ms)
        };
        let skew_ms =
            if self.config.defences().skew_correction { skew.min_ms.unwrap_or(job.claim.state.skew_ms) } else { 0 };
        let decided = self.classify(job.claim, prepared, scanned, t0, started_at);
        let next_run_at = match job.next_run_changed {
            Some(sooner) if !decided.events.is_empty() => sooner.min(job.next_run_ok),
            _ => job.next_run_ok,
        };
        let commit = PollCommit {
            events: decided.events,
            seen: decided.seen.encode(),
            watermark: decided.watermark,
            skew_ms,
            outcome: decided.outcome,
            next_run_at,
            reconciled: decided.live_ids.map(|live_ids| Reconciled { at: t0, live_ids }),
            trace_parent: None,
        };
        self.commit(&job, &lease, commit).await
    }

    /// Stage 1: the plan of the claimed resource, the window `[S, T0)` and the query rendered once for `S`.
    fn prepare(&self, job: &PollJob<'_>) -> Result<Prepared, Stop> {
        let claim = job.claim;
        let instance = &claim.instance;
        let d = self.config.defences();
        let config_error =
            |message: String| Stop::failed(PollError::Config { resource: claim.resource.clone(), message });
        let configs = instance.configuration.poller_configs().map_err(|p| config_error(p.to_string()))?;
        let config =
            configs.get(&claim.resource).ok_or_else(|| config_error("the resource is no longer configured".into()))?;
        let spec = job.provider.spec();
        let plan = PollPlan::compile(config, &spec.deleted_date_field, self.plan_settings(), self.clock.now())
            .map_err(|problems| {
                config_error(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            })?;
        let backfill = match config.backfill {
            Some(b) => Some(b),
            None => instance.configuration.backfill().map_err(|p| config_error(p.to_string()))?,
        };
        let start = backfill.unwrap_or_else(|| claim.job_created_at.max(instance.poll_start));
        let mut warnings = Vec::new();
        let w_prev = claim.state.watermark.unwrap_or(start);
        let mut seen = match SeenSet::decode(&claim.state.seen) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(PollWarning::general(format!("{e}; starting from an empty seen set")));
                // without the set, only changes after the watermark can be known not to be notified yet
                let mut s = SeenSet::new();
                s.raise_floor(w_prev.timestamp_millis());
                s
            }
        };
        seen.clear_observed();
        let s = w_prev - plan.lookback;
        let (query, sent) = plan.query(job.provider, s, d.zone_guard);
        let window_start = sent.map_or(s, |b| b.min(s));
        let query = match query {
            Ok(q) => q,
            Err(e) => {
                let error = PollError::Query(e);
                return Err(Stop { status: PollStatus::Failed, error, window_start: Some(window_start), warnings });
            }
        };
        let page_size = plan.page_size(&query, spec.max_page_size);
        let reconcile = if self.reconcile_due(claim, &plan, &query) {
            match plan.reconcile_query(job.provider) {
                Ok(q) => Some(q),
                Err(e) => {
                    warnings.push(PollWarning::general(format!("deletions not reconciled: {}", chain(&e))));
                    None
                }
            }
        } else {
            None
        };
        Ok(Prepared {
            plan,
            start,
            w_prev,
            window_start,
            seen,
            query,
            page_size,
            warnings,
            known: Known::default(),
            reconcile,
            first_poll: claim.state.watermark.is_none() && backfill.is_none() && !claim.state.reseed,
        })
    }

    /// True when this poll of a resource that reconciles its deletions (and has no deleted feed) is to scan every
    /// id: never done, or done one period ago (on the provider's clock).
    fn reconcile_due(&self, claim: &PollClaim, plan: &PollPlan, query: &CompiledQuery) -> bool {
        if !plan.config.reconcile_deletes || query.has_deleted_feed {
            return false;
        }
        let now = self.clock.now() + chrono::Duration::milliseconds(claim.state.skew_ms);
        let period = chrono::Duration::from_std(plan.config.reconcile_period()).unwrap_or(chrono::Duration::MAX);
        claim.state.reconciled_at.is_none_or(|at| now - at >= period)
    }

    /// Stage 2: every page of the changes (and of the deletions, where the resource has a feed), rescanning
    /// while inconsistent.
    async fn scan(
        &self,
        job: &PollJob<'_>,
        prepared: &Prepared,
        keeper: &mut LeaseKeeper<'_>,
        skew: &mut Skew,
    ) -> Result<Scanned, PollError> {
        let d = self.config.defences();
        #[cfg(feature = "mutations")]
        let rebase_fn = |bound: DateTime<Utc>| -> Result<CompiledQuery, PollError> {
            prepared.plan.query(job.provider, bound, d.zone_guard).0.map_err(PollError::Query)
        };
        let mut scanner = Scanner {
            provider: job.provider,
            session: job.session,
            clock: &*self.clock,
            reader: &prepared.plan.reader,
            seen: &prepared.seen,
            page_size: prepared.page_size,
            max_pages: self.config.max_pages,
            keeper,
            skew,
            prior_skew_ms: if d.skew_correction { job.claim.state.skew_ms } else { 0 },
            check_consistency: d.consistency_check,
            #[cfg(feature = "mutations")]
            failure_ends_scan: !d.abandon_partial_scan,
            #[cfg(feature = "mutations")]
            rebase: if d.fixed_lower_bound { None } else { Some(&rebase_fn) },
        };
        let mut scanned =
            scan_all(&mut scanner, &prepared.query, prepared.window_start, self.config.max_rescans, d).await?;
        if let Some(query) = &prepared.reconcile {
            // every id, once; a scan that fails or moves proves nothing (no deletion is inferred from it)
            let mut all = Collector::new();
            match scanner.scan(query, Feed::Changes, FeedKind::Changes, &mut all).await {
                Ok(report) => {
                    scanned.pages += report.pages;
                    let ids: HashSet<Box<str>> = all.observations().map(|(id, _)| id.into()).collect();
                    let known = known_live(&prepared.known).len();
                    if !report.problems.is_empty() {
                        scanned.reconcile_problem = Some(report.problems.join("; "));
                    } else if ids.len() * 2 < known {
                        scanned.reconcile_problem = Some(format!(
                            "the scan returned {} ids of the {known} known live ones: too few to prove deletions",
                            ids.len()
                        ));
                    } else {
                        scanned.all_ids = Some(ids);
                    }
                }
                Err(PollError::Store(e)) => return Err(PollError::Store(e)),
                Err(e) => scanned.reconcile_problem = Some(chain(&e)),
            }
        }
        Ok(scanned)
    }

    /// Stage 3 (pure): the events, the new `seen` set (pruned below what the next query will send) and the
    /// watermark `T0` when the scan was consistent.
    fn classify(
        &self,
        claim: &PollClaim,
        prepared: Prepared,
        scanned: Scanned,
        t0: DateTime<Utc>,
        started_at: DateTime<Utc>,
    ) -> Decided {
        let d = self.config.defences();
        let Prepared { plan, start, w_prev, window_start, mut seen, query, mut warnings, known, first_poll, .. } =
            prepared;
        let consistent = scanned.problems.is_empty();
        let records = scanned.changes.read + scanned.deletions.read;
        warnings.extend(scanned.changes.warnings.iter().cloned());
        warnings.extend(scanned.deletions.warnings.iter().cloned());
        let dropped = scanned.changes.dropped_warnings + scanned.deletions.dropped_warnings;
        let window = Window {
            instance_id: claim.instance.id,
            resource: claim.resource.clone(),
            t0_ms: t0.timestamp_millis(),
            updated_from_ms: plan.config.filter_by_updated_date.then(|| window_start.max(start).timestamp_millis()),
            strict_lower_bound: !d.inclusive_lower_bound,
            skip_after_t0: plan.config.filter_by_current_date,
            created_after_ms: (w_prev - plan.lookback - plan.tolerance).timestamp_millis(),
            created_from_ms: start.timestamp_millis().max(seen.floor_ms().unwrap_or(i64::MIN)),
            compare_hashes: d.content_hash,
            // the first poll without a backfill (or replay) of a resource without an updated date reads every
            // record: what exists now is its baseline, not changes (the first poll replays nothing)
            baseline: first_poll && plan.reader.updated.is_none(),
        };
        let mut classified = Classified::default();
        let classifier = Classifier::new(&plan.reader, &window, query.local.as_deref());
        #[cfg(feature = "mutations")]
        let absent = if d.deletes_from_feed_only {
            Vec::new()
        } else {
            crate::mutations::absent_ids(&seen, &scanned.first_ids, window_start)
        };
        let changes = scanned.changes.into_observations();
        let deletions =
            deletions_to_notify(scanned.deletions.into_observations(), &changes, &plan.reader, &mut warnings);
        let in_changes: HashSet<Box<str>> = changes.iter().map(|o| o.id.clone()).collect();
        classifier.classify(changes, &mut seen, &mut classified);
        classifier.classify_deleted(deletions, &mut seen, &mut classified);
        let live_ids = match (scanned.all_ids, &scanned.reconcile_problem) {
            (Some(all), _) => {
                let id_field = &plan.config.id_field;
                Some(reconcile_deletes(&window, &known, all, &in_changes, id_field, &mut seen, &mut classified))
            }
            (None, Some(why)) => {
                warnings.push(PollWarning::general(format!("deletions not reconciled this time: {why}")));
                None
            }
            (None, None) => None,
        };
        #[cfg(feature = "mutations")]
        crate::mutations::infer_deletes(&window, absent, &mut seen, &mut classified);
        warnings.append(&mut classified.warnings);
        warnings.truncate(MAX_WARNINGS);
        if dropped > 0 {
            warnings.push(PollWarning::general(format!("{dropped} more records without an id were skipped")));
        }
        if !consistent {
            warnings.push(PollWarning::general(format!(
                "the window stayed inconsistent after {} rescans ({}); the watermark stays",
                self.config.max_rescans,
                scanned.problems.join("; ")
            )));
        }

        // step 7: the new watermark, and `seen` pruned below what the next query will really send
        let w_next = if consistent { t0 } else { w_prev };
        let s_next = w_next - plan.lookback;
        if d.prune_below_sent_bound {
            let sent_next = plan.url.sent_bound(s_next, d.zone_guard);
            let bound = [Some(s_next - plan.tolerance), sent_next, Some(s_next.trunc_subsecs(0))]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(s_next);
            seen.prune(bound.timestamp_millis(), consistent);
        } else {
            // pitfall-7 mutation: pruned at `S` itself, below which a truncated bound still reads
            seen.prune_without_floor(s_next.timestamp_millis());
        }
        let mut events = std::mem::take(&mut classified.events);
        crate::classify::sort_events(&mut events);
        let status = if consistent { PollStatus::Ok } else { PollStatus::Inconsistent };
        let mut outcome = PollOutcome::new(started_at, self.clock.now(), status, Some(window_start));
        outcome.pages = scanned.pages;
        outcome.records = records;
        outcome.created = classified.created;
        outcome.updated = classified.updated;
        outcome.deleted = classified.deleted;
        outcome.warnings = warnings;
        Decided { events, seen, watermark: consistent.then_some(t0), outcome, live_ids }
    }

    fn t0(&self, local: DateTime<Utc>, skew: &Skew, stored_ms: i64) -> DateTime<Utc> {
        let skew_ms = if self.config.defences().skew_correction { skew.min_ms.unwrap_or(stored_ms) } else { 0 };
        local + chrono::Duration::milliseconds(skew_ms) - chrono::Duration::seconds(1)
    }

    /// Stage 4: events, `seen`, watermark and outcome in one store call.
    async fn commit(&self, job: &PollJob<'_>, lease: &Lease, mut commit: PollCommit) -> Result<PollReport, PollError> {
        let claim = job.claim;
        commit.trace_parent = self.telemetry.trace_parent(&tracing::Span::current());
        let span = tracing::info_span!("commit", commit.events = commit.events.len());
        let result = job.store.commit_poll(claim.instance.id, &claim.resource, lease, &commit).instrument(span).await;
        let recorded = match &result {
            Ok(summary) => PollRecorded::Committed { events: &commit.events, summary: *summary },
            Err(e) => PollRecorded::Refused(e),
        };
        self.report(claim, &commit.outcome, recorded);
        let summary = result?;
        Ok(PollReport {
            watermark: commit.watermark.or(claim.state.watermark),
            inserted: Some((summary.inserted, summary.duplicates)),
            next_run_at: commit.next_run_at,
            outcome: commit.outcome,
            congested: false,
        })
    }

    fn report(&self, claim: &PollClaim, outcome: &PollOutcome, recorded: PollRecorded<'_>) {
        self.telemetry.poll(&oc_model::ports::PollReport { claim, outcome, recorded });
    }

    /// Records a poll that could not start — no provider serves the instance's element, or the instance cannot
    /// talk to it — as failed, to be tried again at `next_run_at`.
    pub async fn fail_unpolled(
        &self,
        store: &dyn PollingStore,
        claim: &PollClaim,
        error: String,
        next_run_at: DateTime<Utc>,
    ) -> Result<PollReport, PollError> {
        let now = self.clock.now();
        let outcome = PollOutcome { error: Some(error), ..PollOutcome::new(now, now, PollStatus::Failed, None) };
        self.record_failure(store, claim, &claim.lease, PollFailure { outcome, next_run_at }, false).await
    }

    async fn abandon(
        &self,
        job: &PollJob<'_>,
        lease: &Lease,
        started_at: DateTime<Utc>,
        stop: Stop,
    ) -> Result<PollReport, PollError> {
        let mut outcome = PollOutcome::new(started_at, self.clock.now(), stop.status, stop.window_start);
        outcome.error = Some(chain(&stop.error));
        outcome.warnings = stop.warnings;
        let failure = PollFailure { outcome, next_run_at: job.next_run_failed };
        let congested = matches!(&stop.error, PollError::Provider(e) if e.is_transient());
        self.record_failure(job.store, job.claim, lease, failure, congested).await
    }

    /// Records an abandoned poll; a lease lost meanwhile is no error (another node polls it now).
    async fn record_failure(
        &self,
        store: &dyn PollingStore,
        claim: &PollClaim,
        lease: &Lease,
        failure: PollFailure,
        congested: bool,
    ) -> Result<PollReport, PollError> {
        let result = store.abandon_poll(claim.instance.id, &claim.resource, lease, &failure).await;
        let recorded = match &result {
            Ok(()) => PollRecorded::Abandoned,
            Err(e) => PollRecorded::Refused(e),
        };
        self.report(claim, &failure.outcome, recorded);
        match result {
            Ok(()) | Err(StoreError::LeaseLost(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(PollReport {
            outcome: failure.outcome,
            inserted: None,
            watermark: claim.state.watermark,
            next_run_at: failure.next_run_at,
            congested,
        })
    }
}

/// The records of the deleted feed that are deletions by the provider's own account. Left out, with a warning:
/// - a record whose deletion date field is there and `null`: a live record (the provider did not apply its
///   deletion bound), never a deletion;
/// - a record without a deletion date that this poll's change scan read live: not notified as deleted by this
///   poll. Were it deleted after the change scan read it, the next poll's deleted feed returns it again (its
///   window starts before this poll's start) and its change scan no longer does, so the deletion is notified
///   then; a provider that ignores the bound gets no DELETED event for every live record it returns.
fn deletions_to_notify(
    deletions: Vec<Observation>,
    changes: &[Observation],
    reader: &RecordReader,
    warnings: &mut Vec<PollWarning>,
) -> Vec<Observation> {
    if deletions.is_empty() {
        return deletions;
    }
    let live: HashSet<&str> = changes.iter().map(|o| &*o.id).collect();
    let field = reader.deleted.as_string();
    deletions
        .into_iter()
        .filter(|obs| {
            let why = match reader.deleted.get_or_null(&obs.record) {
                Some(Value::Null) => format!(
                    "the deleted feed returned a record whose {field} is null: a live record, not notified as deleted"
                ),
                None if live.contains(&*obs.id) => format!(
                    "the deleted feed returned a record without {field} that this poll read live: not notified as \
                     deleted by this poll"
                ),
                _ => return true,
            };
            if warnings.len() < MAX_WARNINGS {
                warnings.push(PollWarning { record_id: Some(obs.id.to_string()), position: None, message: why });
            }
            false
        })
        .collect()
}

/// Scans the changes (and the deletions, where the resource has a feed), rescanning while inconsistent.
///
/// A scan is consistent when every page reported the first page's total, it read at least that many distinct
/// ids, and it cannot have skipped a row through a removal before its cursor compensated by an addition after
/// it (pitfall 5). Such an addition is a new state dated after the scan began; the removal is a deletion from
/// then on — known from the deleted feed where the resource has one, else assumed.
async fn scan_all(
    scanner: &mut Scanner<'_, '_>,
    query: &CompiledQuery,
    window_start: DateTime<Utc>,
    max_rescans: u32,
    defences: Defences,
) -> Result<Scanned, PollError> {
    let _ = defences;
    let mut pages = 0;
    let mut changes = Collector::new();
    let mut deletions = Collector::new();
    #[cfg(feature = "mutations")]
    let mut first_ids = Vec::new();
    let mut problems = Vec::new();
    for attempt in 0..=max_rescans {
        #[cfg(not(feature = "mutations"))]
        let _ = attempt;
        let r: ScanReport = scanner.scan(query, Feed::Changes, FeedKind::Changes, &mut changes).await?;
        pages += r.pages;
        #[cfg(feature = "mutations")]
        if attempt == 0 && !defences.deletes_from_feed_only {
            first_ids = changes.observations().map(|(id, _)| id.into()).collect();
        }
        if query.has_deleted_feed {
            // rows never leave the deleted list, so paging it cannot skip one (a row added meanwhile can only
            // be read twice): one scan is complete for every deletion that existed when it began
            let feed = Feed::Deleted { since: window_start };
            let d = scanner.scan(query, feed, FeedKind::Deleted, &mut deletions).await?;
            pages += d.pages;
        }
        problems = r.problems;
        if r.added {
            let removed = !query.has_deleted_feed
                || deletions.observations().any(|(_, o)| o.date_ms.is_none_or(|d| d >= r.start_ms - 1000));
            if removed {
                problems.push("records were added to and removed from the window while it was read".into());
            }
        }
        if problems.is_empty() {
            break;
        }
    }
    Ok(Scanned {
        changes,
        deletions,
        problems,
        pages,
        all_ids: None,
        reconcile_problem: None,
        #[cfg(feature = "mutations")]
        first_ids,
    })
}

/// The `seen` set of a replay: what the stored set knows, and what the outbox holds of each object (the newer of
/// the two), without a floor, so that the replay from the backfill notifies nothing again that was notified
/// (under the same state) and can still notify records created after the backfill as CREATED.
fn reseeded(seen: &SeenSet, notified: &[Event]) -> SeenSet {
    let mut out = SeenSet::new();
    out.reserve(seen.len() + notified.len());
    for (id, e) in seen.iter() {
        out.insert(id, *e);
    }
    for e in notified {
        let entry = SeenEntry {
            date_ms: Some(e.date.timestamp_millis()),
            hash: content_hash(&e.record),
            deleted: e.event_type == EventType::Deleted,
            observed: false,
        };
        let newer = out.get(&e.object_id).is_none_or(|old| old.date_ms.is_none_or(|d| d <= e.date.timestamp_millis()));
        if newer {
            out.insert(&e.object_id, entry);
        }
    }
    out
}

/// The ids ocpoll knows to be live: those of the last complete id scan, and those whose latest notified event is
/// not a deletion.
fn known_live(known: &Known) -> HashMap<&str, Option<&Event>> {
    let mut live: HashMap<&str, Option<&Event>> = known.live_ids.iter().map(|id| (&**id, None)).collect();
    for e in &known.notified {
        if e.event_type == EventType::Deleted {
            live.remove(e.object_id.as_str());
        } else {
            live.insert(&e.object_id, Some(e));
        }
    }
    live
}

/// Deletions found by a complete scan of every id (`all`): an object known to be live that neither that scan nor
/// this poll's change scan returned is DELETED (dated `T0`, with its last notified record, or only its id when it
/// was never notified). Returns the ids live after this poll, the baseline of the next scan.
fn reconcile_deletes(
    window: &Window,
    known: &Known,
    all: HashSet<Box<str>>,
    in_changes: &HashSet<Box<str>>,
    id_field: &str,
    seen: &mut SeenSet,
    out: &mut Classified,
) -> Vec<Box<str>> {
    let date = DateTime::from_timestamp_millis(window.t0_ms).unwrap_or_default();
    let mut live = all;
    for (id, last) in known_live(known) {
        if live.contains(id) || in_changes.contains(id) || seen.get(id).is_some_and(|s| s.deleted) {
            continue;
        }
        seen.insert(id, SeenEntry { date_ms: Some(window.t0_ms), hash: 0, deleted: true, observed: true });
        out.deleted += 1;
        let record = match last {
            Some(e) => e.record.clone(),
            None => serde_json::Value::Object(std::iter::once((id_field.to_string(), id.into())).collect()),
        };
        out.events.push(Event {
            event_id: event_id(window.instance_id, &window.resource, id, EventType::Deleted, date, 0),
            event_type: EventType::Deleted,
            object_type: window.resource.clone(),
            object_id: id.to_string(),
            date,
            record,
        });
    }
    // what this poll's change scan returned is live too (unless it was just deleted)
    live.extend(in_changes.iter().filter(|id| !seen.get(id).is_some_and(|s| s.deleted)).cloned());
    let mut live: Vec<Box<str>> = live.into_iter().collect();
    live.sort_unstable();
    live
}

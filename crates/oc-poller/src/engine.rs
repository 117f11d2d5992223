//! One poll of one (instance, resource): the steps of `change-detection.md` from `T0` to the commit.
//!
//! ```text
//! T0 = local + skew − 1 s (before the first request)      S = W − L      URL rendered with S
//! every page of every scan ──▶ Collector (newest state per id) ──▶ consistent? else rescan (≤ 3)
//! deleted feed (same) ──▶ Classifier (seen + hashes) ──▶ events, seen, W = T0 ──▶ store.commit_poll (one tx)
//! ```

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use oc_model::error::chain;
use oc_model::ports::{
    Clock, CompiledQuery, Feed, FieldNeeds, Lease, PollClaim, PollCommit, PollFailure, PollOutcome, PollRecorded,
    PollStatus, PollWarning, PollingStore, Provider, ProviderError, Session, StoreError, Telemetry,
};
use oc_model::{PollerConfig, event::Event};
use serde_json::Value;

use crate::classify::{
    Classified, Classifier, Collector, FeedKind, MAX_WARNINGS, Observation, RecordReader, Window, sort_events,
};
use crate::error::PollError;
use crate::fields::{DateFormat, FieldPath};
use crate::scan::{LeaseKeeper, ScanReport, Scanner, Skew};
use crate::seen::SeenSet;
use crate::window::UrlPlan;

/// The defences against the pitfalls of `change-detection.md`, each one switchable so that a test can show the
/// defect it prevents. Production code always uses [`Defences::default`] (all on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defences {
    /// Pitfall 1: an inclusive lower bound (`≥`) with `seen` de-duplication, not a strict `>` cursor.
    pub inclusive_lower_bound: bool,
    /// Pitfall 2: one lower bound for the whole window, following the provider's page cursor.
    pub fixed_lower_bound: bool,
    /// Pitfall 3: the lookback window `L` (`max(pollDelay, default_lookback)`); off, `L = pollDelay`.
    pub lookback: bool,
    /// Pitfall 4: `T0` taken before the first request, not at the end of the run.
    pub t0_before_first_request: bool,
    /// Pitfall 5: consistency checks and rescans when the data moved while it was paged.
    pub consistency_check: bool,
    /// Pitfall 6: `T0` on the provider's clock (skew measured from its `Date` header).
    pub skew_correction: bool,
    /// Pitfall 7: render placeholders so that every reading of the text (its zone, or UTC for a literal `Z` or
    /// no offset) is at or before the lower bound.
    pub zone_guard: bool,
    /// Pitfall 7 / step 7: prune `seen` below the bound the next query really sends (after mask truncation).
    pub prune_below_sent_bound: bool,
    /// Pitfall 8: compare content hashes, not only second-granularity dates.
    pub content_hash: bool,
    /// Pitfall 9: a failed poll leaves the watermark where it was.
    pub keep_watermark_on_failure: bool,
    /// Pitfall 10: a page that fails beyond the retry budget abandons the poll (partial data is not complete).
    pub abandon_partial_scan: bool,
    /// Pitfall 11: DELETED only from the provider's deleted feed, never inferred from absence in a scan.
    pub deletes_from_feed_only: bool,
}

impl Default for Defences {
    fn default() -> Self {
        Defences {
            inclusive_lower_bound: true,
            fixed_lower_bound: true,
            lookback: true,
            t0_before_first_request: true,
            consistency_check: true,
            skew_correction: true,
            zone_guard: true,
            prune_below_sent_bound: true,
            content_hash: true,
            keep_watermark_on_failure: true,
            abandon_partial_scan: true,
            deletes_from_feed_only: true,
        }
    }
}

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
    /// The defences (all on outside tests).
    pub defences: Defences,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_lookback: Duration::from_secs(60),
            max_rescans: 3,
            max_pages: 10_000,
            lease_ttl: Duration::from_secs(300),
            defences: Defences::default(),
        }
    }
}

/// The change-detection engine.
#[derive(Debug)]
pub struct Engine {
    clock: std::sync::Arc<dyn Clock>,
    config: EngineConfig,
    telemetry: std::sync::Arc<dyn Telemetry>,
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
    /// When the job is due again after a failed poll (backoff).
    pub next_run_failed: DateTime<Utc>,
    /// Where the current lease is published for the scheduler (renewals replace it).
    pub lease_slot: Option<&'a Mutex<Lease>>,
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
}

/// Everything a poll derives from the instance's configuration before the first request.
struct Plan {
    config: PollerConfig,
    reader: RecordReader,
    url: UrlPlan,
    lookback: chrono::Duration,
    tolerance: chrono::Duration,
    start: DateTime<Utc>,
}

fn secs(s: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((s.clamp(0.0, 1e10) * 1000.0).round() as i64)
}

impl Engine {
    /// An engine reading time from `clock` and reporting every poll to `telemetry`.
    pub fn new(
        clock: std::sync::Arc<dyn Clock>,
        config: EngineConfig,
        telemetry: std::sync::Arc<dyn Telemetry>,
    ) -> Self {
        Engine { clock, config, telemetry }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn plan(&self, claim: &PollClaim, provider: &dyn Provider) -> Result<Plan, PollError> {
        let instance = &claim.instance;
        let config_error = |message: String| PollError::Config { resource: claim.resource.clone(), message };
        let configs = instance.configuration.poller_configs().map_err(|p| config_error(p.to_string()))?;
        let config = configs
            .get(&claim.resource)
            .cloned()
            .ok_or_else(|| config_error("the resource is no longer configured".into()))?;
        let url = UrlPlan::new(&config.url).map_err(config_error)?;
        let dates = config.dates_configuration.clone().unwrap_or_default();
        let format = |mask: &Option<String>, zone: &Option<String>| -> Result<DateFormat, PollError> {
            match mask {
                None => Ok(DateFormat::Iso),
                Some(m) => DateFormat::mask(m, zone.as_deref(), self.clock.now()).map_err(config_error),
            }
        };
        let reader = RecordReader {
            id: FieldPath::new(&config.id_field),
            updated: match &dates.updated_date_field {
                Some(f) => Some((FieldPath::new(f), format(&dates.updated_date_format, &dates.updated_date_timezone)?)),
                None => None,
            },
            created: match &dates.created_date_field {
                Some(f) => Some((FieldPath::new(f), format(&dates.created_date_format, &dates.created_date_timezone)?)),
                None => None,
            },
            deleted: FieldPath::new(&provider.spec().deleted_date_field),
        };
        let delay = secs(config.poll_delay);
        let default = chrono::Duration::from_std(self.config.default_lookback).unwrap_or(chrono::Duration::MAX);
        let lookback = if self.config.defences.lookback { delay.max(default) } else { delay };
        let backfill = match config.backfill {
            Some(b) => Some(b),
            None => instance.configuration.backfill().map_err(|p| config_error(p.to_string()))?,
        };
        let start = backfill.unwrap_or_else(|| claim.job_created_at.max(instance.poll_start));
        Ok(Plan { tolerance: secs(config.created_check_tolerance), config, reader, url, lookback, start })
    }

    /// Runs one poll and records its result in the store: events + `seen` + watermark in one commit, or an
    /// abandoned poll (nothing but the outcome). An `Err` means the store refused the result (e.g. the lease
    /// was lost); the poll then had no effect.
    pub async fn poll(&self, job: PollJob<'_>) -> Result<PollReport, PollError> {
        let started_at = self.clock.now();
        let claim = job.claim;
        let plan = match self.plan(claim, job.provider) {
            Ok(p) => p,
            Err(e) => return self.abandon(&job, started_at, None, PollStatus::Failed, &e, Vec::new()).await,
        };
        let d = self.config.defences;
        let mut warnings = Vec::new();
        let w_prev = claim.state.watermark.unwrap_or(plan.start);
        let mut seen = match SeenSet::decode(&claim.state.seen) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(PollWarning {
                    record_id: None,
                    position: None,
                    message: format!("{e}; starting from an empty seen set"),
                });
                // without the set, only changes after the watermark can be known not to be notified yet
                let mut s = SeenSet::new();
                s.raise_floor(w_prev.timestamp_millis());
                s
            }
        };
        seen.clear_observed();
        let s = w_prev - plan.lookback;
        let (url, sent) = plan.url.render(s, d.zone_guard);
        let window_start = sent.map_or(s, |b| b.min(s));
        let needs = FieldNeeds {
            fields: std::iter::once(plan.config.id_field.clone())
                .chain(plan.config.updated_field().map(str::to_owned))
                .chain(plan.config.created_field().map(str::to_owned))
                .collect(),
        };
        let query = match job.provider.compile(&url, &needs) {
            Ok(q) => q,
            Err(e) => {
                let e = PollError::Query(e);
                return self.abandon(&job, started_at, Some(window_start), PollStatus::Failed, &e, warnings).await;
            }
        };
        let max_page_size = job.provider.spec().max_page_size.max(1);
        let page_size = plan.config.page_size.or(query.page_size).unwrap_or(max_page_size).clamp(1, max_page_size);

        // T0's local part: before the first request
        let local_start = self.clock.now();
        let mut keeper = LeaseKeeper {
            store: job.store,
            instance: claim.instance.id,
            resource: &claim.resource,
            lease: claim.lease.clone(),
            ttl: self.config.lease_ttl,
            slot: job.lease_slot,
        };
        let mut skew = Skew::default();
        let rebase_fn = |bound: DateTime<Utc>| -> Result<CompiledQuery, PollError> {
            let (url, _) = plan.url.render(bound, d.zone_guard);
            job.provider.compile(&url, &needs).map_err(PollError::Query)
        };
        let mut scanner = Scanner {
            provider: job.provider,
            session: job.session,
            clock: &*self.clock,
            reader: &plan.reader,
            seen: &seen,
            page_size,
            max_pages: self.config.max_pages,
            keeper: &mut keeper,
            skew: &mut skew,
            prior_skew_ms: if d.skew_correction { claim.state.skew_ms } else { 0 },
            check_consistency: d.consistency_check,
            failure_ends_scan: !d.abandon_partial_scan,
            rebase: if d.fixed_lower_bound { None } else { Some(&rebase_fn) },
        };
        let scanned =
            scan_all(&mut scanner, &query, window_start, self.config.max_rescans, !d.deletes_from_feed_only).await;
        let Scanned { changes, deletions, problems, pages, first_ids } = match scanned {
            Ok(s) => s,
            Err(PollError::Store(e)) => return Err(PollError::Store(e)),
            Err(e)
                if !d.keep_watermark_on_failure
                    && !matches!(e, PollError::Provider(ProviderError::ReauthorizationRequired(_))) =>
            {
                // pitfall-9 mutation: the careless engine moves its cursor anyway
                let t0 = self.t0(local_start, &skew, claim.state.skew_ms);
                let outcome = outcome(started_at, self.clock.now(), PollStatus::Failed, Some(window_start), 0, 0);
                let commit = PollCommit {
                    events: Vec::new(),
                    seen: claim.state.seen.clone(),
                    watermark: Some(t0),
                    skew_ms: claim.state.skew_ms,
                    outcome: PollOutcome { error: Some(chain(&e)), ..outcome },
                    next_run_at: job.next_run_failed,
                };
                return self.commit(&job, &keeper.lease, commit).await;
            }
            Err(e) => {
                let status = match &e {
                    PollError::Provider(ProviderError::ReauthorizationRequired(reason)) => {
                        // the provider marks the instance invalid; make sure of it (idempotent)
                        let _ = job.session.vault.mark_invalid(claim.instance.id, reason).await;
                        PollStatus::ReauthorizationRequired
                    }
                    _ => PollStatus::Failed,
                };
                return self
                    .abandon_with(&job, &keeper.lease, started_at, Some(window_start), status, &e, warnings)
                    .await;
            }
        };
        let consistent = problems.is_empty();
        let t0 = if d.t0_before_first_request {
            self.t0(local_start, &skew, claim.state.skew_ms)
        } else {
            // pitfall-4 mutation: the cursor taken at the end of the run
            self.t0(self.clock.now(), &skew, claim.state.skew_ms)
        };
        let records = changes.read + deletions.read;
        warnings.extend(changes.warnings.iter().cloned());
        warnings.extend(deletions.warnings.iter().cloned());
        let dropped = changes.dropped_warnings + deletions.dropped_warnings;

        let window = Window {
            instance_id: claim.instance.id,
            resource: claim.resource.clone(),
            t0_ms: t0.timestamp_millis(),
            updated_from_ms: plan
                .config
                .filter_by_updated_date
                .then(|| window_start.max(plan.start).timestamp_millis()),
            strict_lower_bound: !d.inclusive_lower_bound,
            skip_after_t0: plan.config.filter_by_current_date,
            created_after_ms: (w_prev - plan.lookback - plan.tolerance).timestamp_millis(),
            created_from_ms: plan.start.timestamp_millis().max(seen.floor_ms().unwrap_or(i64::MIN)),
            compare_hashes: d.content_hash,
        };
        let mut classified = Classified::default();
        let classifier = Classifier::new(&plan.reader, &window, query.local.as_deref());
        let absent = if d.deletes_from_feed_only { Vec::new() } else { absent_ids(&seen, &first_ids, window_start) };
        let changes = changes.into_observations();
        let deletions = deletions_to_notify(deletions.into_observations(), &changes, &plan.reader, &mut warnings);
        classifier.classify(changes, &mut seen, &mut classified);
        classifier.classify_deleted(deletions, &mut seen, &mut classified);
        for id in absent {
            // pitfall-11 mutation: "not in this scan, so deleted"
            push_inferred_delete(&window, &id, &mut seen, &mut classified);
        }
        warnings.append(&mut classified.warnings);
        warnings.truncate(MAX_WARNINGS);
        if dropped > 0 {
            warnings.push(PollWarning {
                record_id: None,
                position: None,
                message: format!("{dropped} more records without an id were skipped"),
            });
        }
        if !consistent {
            warnings.push(PollWarning {
                record_id: None,
                position: None,
                message: format!(
                    "the window stayed inconsistent after {} rescans ({}); the watermark stays",
                    self.config.max_rescans,
                    problems.join("; ")
                ),
            });
        }

        // step 7: the new watermark, and `seen` pruned below what the next query will really send
        let w_next = if consistent { t0 } else { w_prev };
        let s_next = w_next - plan.lookback;
        if d.prune_below_sent_bound {
            let (_, sent_next) = plan.url.render(s_next, d.zone_guard);
            let bound = [Some(s_next - plan.tolerance), sent_next, Some(s_next.trunc_subsecs(0))]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(s_next);
            seen.prune(bound.timestamp_millis(), consistent);
        } else {
            seen.prune_without_floor(s_next.timestamp_millis());
        }
        let mut events: Vec<Event> = std::mem::take(&mut classified.events);
        sort_events(&mut events);
        let status = if consistent { PollStatus::Ok } else { PollStatus::Inconsistent };
        let mut out = outcome(started_at, self.clock.now(), status, Some(window_start), pages, records);
        out.created = classified.created;
        out.updated = classified.updated;
        out.deleted = classified.deleted;
        out.warnings = warnings;
        let commit = PollCommit {
            events,
            seen: seen.encode(),
            watermark: consistent.then_some(t0),
            skew_ms: if d.skew_correction { skew.min_ms.unwrap_or(claim.state.skew_ms) } else { 0 },
            outcome: out,
            next_run_at: job.next_run_ok,
        };
        self.commit(&job, &keeper.lease, commit).await
    }

    fn t0(&self, local: DateTime<Utc>, skew: &Skew, stored_ms: i64) -> DateTime<Utc> {
        let skew_ms = if self.config.defences.skew_correction { skew.min_ms.unwrap_or(stored_ms) } else { 0 };
        local + chrono::Duration::milliseconds(skew_ms) - chrono::Duration::seconds(1)
    }

    async fn commit(&self, job: &PollJob<'_>, lease: &Lease, commit: PollCommit) -> Result<PollReport, PollError> {
        let claim = job.claim;
        let result = job.store.commit_poll(claim.instance.id, &claim.resource, lease, &commit).await;
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
        let failure = PollFailure { outcome, next_run_at };
        self.record_failure(store, claim, &claim.lease, failure).await
    }

    async fn abandon(
        &self,
        job: &PollJob<'_>,
        started_at: DateTime<Utc>,
        window_start: Option<DateTime<Utc>>,
        status: PollStatus,
        error: &PollError,
        warnings: Vec<PollWarning>,
    ) -> Result<PollReport, PollError> {
        self.abandon_with(job, &job.claim.lease, started_at, window_start, status, error, warnings).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn abandon_with(
        &self,
        job: &PollJob<'_>,
        lease: &Lease,
        started_at: DateTime<Utc>,
        window_start: Option<DateTime<Utc>>,
        status: PollStatus,
        error: &PollError,
        warnings: Vec<PollWarning>,
    ) -> Result<PollReport, PollError> {
        let mut out = outcome(started_at, self.clock.now(), status, window_start, 0, 0);
        out.error = Some(chain(error));
        out.warnings = warnings;
        let failure = PollFailure { outcome: out, next_run_at: job.next_run_failed };
        self.record_failure(job.store, job.claim, lease, failure).await
    }

    /// Records an abandoned poll; a lease lost meanwhile is no error (another node polls it now).
    async fn record_failure(
        &self,
        store: &dyn PollingStore,
        claim: &PollClaim,
        lease: &Lease,
        failure: PollFailure,
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
        })
    }
}

fn outcome(
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    status: PollStatus,
    window_start: Option<DateTime<Utc>>,
    pages: u32,
    records: u64,
) -> PollOutcome {
    PollOutcome { pages, records, ..PollOutcome::new(started_at, finished_at, status, window_start) }
}

struct Scanned {
    changes: Collector,
    deletions: Collector,
    problems: Vec<String>,
    pages: u32,
    /// Ids of the first scan of the changes (only for the pitfall-11 mutation).
    first_ids: Vec<Box<str>>,
}

/// The records of the deleted feed that are deletions by the provider's own account. Left out, with a warning:
/// - a record whose deletion date field is there and `null`: a live record (the provider did not apply
///   `deleted_since`), never a deletion;
/// - a record without a deletion date that this poll's change scan read live: not notified as deleted by this
///   poll. Were it deleted after the change scan read it, the next poll's deleted feed returns it again (its
///   window starts before this poll's start) and its change scan no longer does, so the deletion is notified
///   then; a provider that ignores `deleted_since` gets no DELETED event for every live record it returns.
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
/// it. Such an addition is a new state dated after the scan began; the removal is a deletion from then on —
/// known from the deleted feed where the resource has one, else assumed.
async fn scan_all(
    scanner: &mut Scanner<'_, '_>,
    query: &CompiledQuery,
    window_start: DateTime<Utc>,
    max_rescans: u32,
    keep_first_ids: bool,
) -> Result<Scanned, PollError> {
    let mut pages = 0;
    let mut changes = Collector::new();
    let mut deletions = Collector::new();
    let mut first_ids = Vec::new();
    let mut problems = Vec::new();
    for attempt in 0..=max_rescans {
        let r: ScanReport = scanner.scan(query, Feed::Changes, FeedKind::Changes, &mut changes).await?;
        pages += r.pages;
        if attempt == 0 && keep_first_ids {
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
    Ok(Scanned { changes, deletions, problems, pages, first_ids })
}

/// Ids in `seen` dated inside the window but missing from `ids` (the pitfall-11 mutation's evidence).
fn absent_ids(seen: &SeenSet, ids: &[Box<str>], window_start: DateTime<Utc>) -> Vec<Box<str>> {
    let present: std::collections::HashSet<&str> = ids.iter().map(|b| &**b).collect();
    let from = window_start.timestamp_millis();
    let mut v: Vec<Box<str>> = seen
        .iter()
        .filter(|(id, e)| !e.deleted && e.date_ms.is_some_and(|d| d >= from) && !present.contains(id))
        .map(|(id, _)| id.into())
        .collect();
    v.sort();
    v
}

fn push_inferred_delete(window: &Window, id: &str, seen: &mut SeenSet, out: &mut Classified) {
    use oc_model::event::{EventType, event_id};
    let date = DateTime::from_timestamp_millis(window.t0_ms).unwrap_or_default();
    seen.insert(id, crate::seen::SeenEntry { date_ms: Some(window.t0_ms), hash: 0, deleted: true, observed: true });
    out.deleted += 1;
    out.events.push(Event {
        event_id: event_id(window.instance_id, &window.resource, id, EventType::Deleted, date, 0),
        event_type: EventType::Deleted,
        object_type: window.resource.clone(),
        object_id: id.to_owned(),
        date,
        record: serde_json::json!({ "id": id }),
    });
}

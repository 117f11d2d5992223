//! Reading every page of one window from the provider, with the consistency checks of `change-detection.md`
//! step 4 and lease renewal between pages.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{CompiledQuery, Feed, Lease, PageCursor, PageRequest, PollingStore, Provider, Session};

use crate::classify::{Collector, FeedKind, RecordReader};
use crate::error::PollError;
use crate::seen::SeenSet;

/// Keeps a poll's lease alive: renews it between pages once a third of its time has passed.
pub(crate) struct LeaseKeeper<'a> {
    pub(crate) store: &'a dyn PollingStore,
    pub(crate) instance: i64,
    pub(crate) resource: &'a str,
    pub(crate) lease: Lease,
    pub(crate) ttl: Duration,
    /// Where the scheduler reads the current lease (to release it on shutdown).
    pub(crate) slot: Option<&'a Mutex<Lease>>,
}

impl LeaseKeeper<'_> {
    pub(crate) async fn keep(&mut self, now: DateTime<Utc>) -> Result<(), PollError> {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        if self.lease.expires_at - now > ttl * 2 / 3 {
            return Ok(());
        }
        self.lease = self.store.renew_poll(self.instance, self.resource, &self.lease, now, self.ttl).await?;
        if let Some(slot) = self.slot {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = self.lease.clone();
        }
        Ok(())
    }
}

/// The provider clock minus the local clock, as measured from the pages' `Date` headers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Skew {
    /// The smallest measurement of this poll: the `Date` header is floored to the second and read after the
    /// answer left the provider, so every measurement is at most the true skew; the smallest is the safest.
    pub(crate) min_ms: Option<i64>,
}

impl Skew {
    fn observe(&mut self, provider_time: Option<DateTime<Utc>>, local: DateTime<Utc>) {
        if let Some(p) = provider_time {
            let m = (p - local).num_milliseconds();
            self.min_ms = Some(self.min_ms.map_or(m, |o| o.min(m)));
        }
    }
}

/// How one scan went.
#[derive(Debug, Default)]
pub(crate) struct ScanReport {
    /// Why the scan cannot be trusted to be complete; empty when it can.
    pub(crate) problems: Vec<String>,
    /// Pages read.
    pub(crate) pages: u32,
    /// Records were added to the window while it was read (a new state dated after the scan began). Alone
    /// this is harmless; together with a removal before the cursor it can hide a shifted row.
    pub(crate) added: bool,
    /// When the scan began, on the provider's clock (Unix ms, rounded down by a second).
    pub(crate) start_ms: i64,
}

/// What a scan needs besides the query.
pub(crate) struct Scanner<'a, 'k> {
    pub(crate) provider: &'a dyn Provider,
    pub(crate) session: &'a Session,
    pub(crate) clock: &'a dyn oc_model::ports::Clock,
    pub(crate) reader: &'a RecordReader,
    pub(crate) seen: &'a SeenSet,
    pub(crate) page_size: u32,
    pub(crate) max_pages: u32,
    pub(crate) keeper: &'a mut LeaseKeeper<'k>,
    pub(crate) skew: &'a mut Skew,
    /// Skew to assume before this scan measured one.
    pub(crate) prior_skew_ms: i64,
    /// The checks of step 4 (off only in the pitfall-5 mutation test).
    pub(crate) check_consistency: bool,
    /// Treat a failed page as the end of the data (the pitfall-10 mutation).
    #[cfg(feature = "mutations")]
    pub(crate) failure_ends_scan: bool,
    /// Pitfall-2 mutation: re-query from the newest date of each page instead of following the provider's
    /// cursor. Given the function that compiles the query for a new lower bound.
    #[cfg(feature = "mutations")]
    pub(crate) rebase: Option<&'a (dyn Fn(DateTime<Utc>) -> Result<CompiledQuery, PollError> + Sync)>,
}

impl Scanner<'_, '_> {
    /// Reads every page of `feed` once into `collector`.
    pub(crate) async fn scan(
        &mut self,
        query: &CompiledQuery,
        feed: Feed,
        kind: FeedKind,
        collector: &mut Collector,
    ) -> Result<ScanReport, PollError> {
        let mut report = ScanReport::default();
        let local_start = self.clock.now();
        let mut scan_start_ms: Option<i64> = None;
        let mut first_total: Option<u64> = None;
        let mut cursor = PageCursor::First;
        #[cfg_attr(not(feature = "mutations"), allow(unused_mut))]
        let mut rebased: Option<CompiledQuery> = None;
        let mut moved = false;
        let mut position = 0u64;
        collector.begin_scan();
        loop {
            if report.pages >= self.max_pages {
                return Err(PollError::PageLimit(self.max_pages));
            }
            self.keeper.keep(self.clock.now()).await?;
            let request =
                PageRequest { query: rebased.as_ref().unwrap_or(query), feed, cursor, page_size: self.page_size };
            let page = match self.provider.fetch_page(self.session, &request).await {
                Ok(p) => p,
                #[cfg(feature = "mutations")]
                Err(e)
                    if self.failure_ends_scan
                        && !matches!(e, oc_model::ports::ProviderError::ReauthorizationRequired(_)) =>
                {
                    return Ok(report);
                }
                Err(e) => return Err(e.into()),
            };
            let received = self.clock.now();
            self.skew.observe(page.provider_time, received);
            report.pages += 1;
            let start_ms = *scan_start_ms.get_or_insert_with(|| {
                let skew = self.skew.min_ms.unwrap_or(self.prior_skew_ms);
                local_start.timestamp_millis() + skew - 1000
            });
            report.start_ms = start_ms;
            match (first_total, page.total) {
                (None, Some(t)) if report.pages == 1 => {
                    first_total = Some(t);
                    collector.reserve(usize::try_from(t).unwrap_or(usize::MAX));
                }
                (Some(a), Some(b)) if a != b => {
                    push_once(&mut report.problems, format!("the total changed from {a} to {b} between pages"))
                }
                _ => {}
            }
            let mut newest: Option<i64> = None;
            for record in page.records {
                position += 1;
                if let Some(o) = collector.offer(self.reader, kind, record, position - 1, Some(self.seen))
                    && let Some(d) = o.date_ms
                {
                    newest = Some(newest.map_or(d, |n: i64| n.max(d)));
                    // a record added to the window during this scan can hide a shifted one: note it, unless this
                    // state was already observed before the scan began
                    if d > start_ms && !o.known {
                        moved = true;
                    }
                }
            }
            #[cfg(feature = "mutations")]
            if let Some(rebase) = self.rebase {
                // the naive cursor: `updated >= newest of the page`, from the first page again
                match (newest, page.next) {
                    (Some(n), Some(_)) => {
                        rebased = Some(rebase(DateTime::from_timestamp_millis(n).unwrap_or_default())?);
                        cursor = PageCursor::First;
                        continue;
                    }
                    _ => break,
                }
            }
            match page.next {
                Some(next) if PageCursor::Next(next.clone()) == request.cursor => {
                    return Err(PollError::PageLimit(report.pages));
                }
                Some(next) => cursor = PageCursor::Next(next),
                None => break,
            }
        }
        if self.check_consistency && kind == FeedKind::Changes {
            if let Some(t) = first_total
                && (collector.distinct_in_scan() as u64) < t
            {
                let n = collector.distinct_in_scan();
                report.problems.push(format!("{n} distinct records read of a total of {t}"));
            }
            report.added = moved;
        } else {
            report.problems.clear();
        }
        Ok(report)
    }
}

fn push_once(problems: &mut Vec<String>, p: String) {
    if !problems.contains(&p) {
        problems.push(p);
    }
}

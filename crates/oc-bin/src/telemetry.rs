//! Metrics from inside the engine, the dispatcher and the Sage provider, which know nothing of this crate.
//!
//! - [`Metrics`] implements the [`Telemetry`] port: the engine reports every poll (outcome, duration, records read,
//!   events by type, duplicates), the dispatcher every delivery attempt with its claim in hand (outcome, answer
//!   class, delivery latency since the change and since batching) and every batching round.
//! - [`sage_scrape_hook`] copies the Sage provider's own counters ([`SageStatsSnapshot`]: requests by status,
//!   rate-limit waits, token refreshes) into the registry when `/metrics` is rendered.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use oc_model::event::EventType;
use oc_model::ports::{AttemptReport, NextStep, PollRecorded, PollReport, ScheduleReport, StoreError, Telemetry};
use oc_sageone::{SageProvider, SageStatsSnapshot};

use crate::metrics::{Metrics, ScrapeHook};

impl Telemetry for Metrics {
    fn poll(&self, report: &PollReport<'_>) {
        let outcome = report.outcome;
        let label = match report.recorded {
            PollRecorded::Refused(e) => refused_label(e),
            PollRecorded::Committed { .. } | PollRecorded::Abandoned => outcome.status.as_str(),
        };
        self.count("ocpoll_polls_total", vec![("outcome", label.to_string())], 1.0);
        self.observe("ocpoll_poll_duration_seconds", vec![], outcome.duration());
        if outcome.records > 0 {
            self.count("ocpoll_records_fetched_total", vec![], outcome.records as f64);
        }
        if let PollRecorded::Committed { events, summary } = report.recorded {
            for t in [EventType::Created, EventType::Updated, EventType::Deleted] {
                let n = events.iter().filter(|e| e.event_type == t).count();
                if n > 0 {
                    self.count("ocpoll_events_total", vec![("type", t.as_str().to_string())], n as f64);
                }
            }
            if summary.duplicates > 0 {
                self.count("ocpoll_duplicate_events_total", vec![], summary.duplicates as f64);
            }
        }
    }

    fn attempt(&self, report: &AttemptReport<'_>) {
        if report.recorded.is_err() {
            return;
        }
        self.count(
            "ocpoll_notifications_total",
            vec![
                ("outcome", attempt_label(report.next).to_string()),
                ("class", class_label(report.attempt.status_code)),
            ],
            1.0,
        );
        if let Some(since) = report.latency_since_change() {
            self.observe("ocpoll_delivery_latency_seconds", vec![("since", "change".to_string())], positive(since));
        }
        if let Some(since) = report.latency_since_batched() {
            self.observe("ocpoll_delivery_latency_seconds", vec![("since", "batched".to_string())], positive(since));
        }
    }

    fn batched(&self, notifications: usize, _at: chrono::DateTime<chrono::Utc>) {
        self.count("ocpoll_notifications_built_total", vec![], notifications as f64);
    }

    fn schedule(&self, report: &ScheduleReport) {
        self.gauge("ocpoll_polls_in_flight", Vec::new(), report.in_flight as f64);
        self.gauge("ocpoll_poll_concurrency", Vec::new(), report.concurrency as f64);
        self.gauge("ocpoll_polls_waiting_budget", Vec::new(), report.waiting as f64);
        self.gauge("ocpoll_budget_accounts", Vec::new(), report.accounts as f64);
        self.gauge("ocpoll_budget_short_accounts", Vec::new(), report.short_accounts as f64);
        self.gauge("ocpoll_adaptive_pairs", Vec::new(), report.adaptive_pairs as f64);
        self.set_counter("ocpoll_polls_early_total", Vec::new(), report.early_polls as f64);
    }

    fn trace_parent(&self, span: &tracing::Span) -> Option<String> {
        crate::traces::trace_parent(span)
    }

    fn continue_trace(&self, span: &tracing::Span, trace_parent: &str) {
        crate::traces::continue_trace(span, trace_parent);
    }
}

/// The `outcome` label of a poll the store refused to record.
fn refused_label(e: &StoreError) -> &'static str {
    match e {
        StoreError::LeaseLost(_) => "lease_lost",
        _ => "store_error",
    }
}

/// A span of time, negative ones (clocks apart) as zero.
fn positive(d: Duration) -> StdDuration {
    d.to_std().unwrap_or(StdDuration::ZERO)
}

/// The `outcome` label of a delivery attempt.
fn attempt_label(next: NextStep) -> &'static str {
    match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::Failed => "failed",
    }
}

/// The `class` label of an answer: `2xx` … `5xx`, `none` when none came.
fn class_label(status: Option<u16>) -> String {
    match status {
        Some(s @ 100..=599) => format!("{}xx", s / 100),
        Some(_) => "other".to_string(),
        None => "none".to_string(),
    }
}

/// Copies a snapshot of the Sage provider's counters into `metrics`: `ocpoll_sage_requests_total{status}`,
/// `ocpoll_rate_limit_waits_total{by}`, `ocpoll_rate_limit_wait_seconds_total{by}` and
/// `ocpoll_token_refreshes_total{outcome}`. The figures are totals, so they are set, not added.
pub fn record_sage_stats(metrics: &Metrics, stats: &SageStatsSnapshot) {
    for (status, n) in &stats.responses {
        metrics.set_counter("ocpoll_sage_requests_total", vec![("status", status.to_string())], *n as f64);
    }
    if stats.transport_errors > 0 {
        let labels = vec![("status", "transport_error".to_string())];
        metrics.set_counter("ocpoll_sage_requests_total", labels, stats.transport_errors as f64);
    }
    for (by, n, waited) in
        [("limiter", stats.limiter_waits, stats.limiter_wait), ("sage", stats.throttle_waits, stats.throttle_wait)]
    {
        metrics.set_counter("ocpoll_rate_limit_waits_total", vec![("by", by.to_string())], n as f64);
        metrics.set_counter("ocpoll_rate_limit_wait_seconds_total", vec![("by", by.to_string())], waited.as_secs_f64());
    }
    let r = &stats.refreshes;
    for (outcome, n) in
        [("ok", r.ok), ("invalid_grant", r.invalid_grant), ("invalid_client", r.invalid_client), ("failed", r.failed)]
    {
        metrics.set_counter("ocpoll_token_refreshes_total", vec![("outcome", outcome.to_string())], n as f64);
    }
}

/// A scrape hook reading `sage`'s counters (shared by its clones) at every rendering of the metrics.
pub fn sage_scrape_hook(sage: SageProvider) -> ScrapeHook {
    Arc::new(move |metrics: &Metrics| {
        record_sage_stats(metrics, &sage.stats());
        let (requests, per) = sage.business_budget();
        let per_minute = f64::from(requests) * 60.0 / per.as_secs_f64().max(1e-9);
        metrics.gauge("ocpoll_sage_business_budget", Vec::new(), per_minute);
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use oc_model::Configuration;
    use oc_model::event::{Event, event_id};
    use oc_model::ports::{
        CommitSummary, DeliveryClaim, Instance, Lease, NewAttempt, NotificationRecord, NotificationStatus, PollClaim,
        PollOutcome, PollState, PollStatus, ProviderAccount,
    };
    use oc_sageone::RefreshCounts;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    const RESOURCE: &str = "customers";

    fn t0() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn instance() -> Arc<Instance> {
        Arc::new(Instance {
            id: 7,
            org_id: 1,
            user_id: 1,
            name: "test".into(),
            element_key: "sageone".into(),
            tags: vec![],
            configuration: Configuration::new(),
            account: ProviderAccount::default(),
            disabled: false,
            valid: true,
            invalid_reason: None,
            notifications_disabled_reason: None,
            created_at: t0(),
            updated_at: t0(),
            poll_start: t0(),
        })
    }

    fn lease() -> Lease {
        Lease { owner: "node-poll".into(), generation: 1, expires_at: t0() + Duration::minutes(5) }
    }

    fn claim() -> PollClaim {
        PollClaim {
            instance: instance(),
            resource: RESOURCE.into(),
            due_at: t0(),
            job_created_at: t0(),
            lease: lease(),
            state: PollState::default(),
        }
    }

    fn outcome(status: PollStatus, took: StdDuration, records: u64) -> PollOutcome {
        let started = t0() - Duration::from_std(took).unwrap();
        PollOutcome { records, ..PollOutcome::new(started, t0(), status, None) }
    }

    fn event(object: &str, event_type: EventType, date: DateTime<Utc>) -> Event {
        Event {
            event_id: event_id(7, RESOURCE, object, event_type, date, 0),
            event_type,
            object_type: RESOURCE.into(),
            object_id: object.into(),
            date,
            record: json!({"id": object}),
        }
    }

    fn delivery(events: Vec<Event>, batched_at: DateTime<Utc>) -> DeliveryClaim {
        DeliveryClaim {
            notification: NotificationRecord {
                id: Uuid::from_u128(1),
                instance_id: 7,
                object_type: RESOURCE.into(),
                status: NotificationStatus::Delivering,
                attempts: 0,
                created_at: batched_at,
                next_attempt_at: None,
                delivered_at: None,
                last_error: None,
            },
            events,
            lease: lease(),
            instance: instance(),
            trace_parent: None,
        }
    }

    fn attempt(at: DateTime<Utc>, status: u16, latency_ms: u64) -> NewAttempt {
        NewAttempt { at, status_code: Some(status), latency_ms, error: None, response_excerpt: String::new() }
    }

    /// `expected` lines are all in `text`.
    fn check(text: &str, expected: &[&str]) {
        for line in expected {
            assert!(text.lines().any(|l| l == *line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_commit_counts_the_poll_its_records_and_its_events_by_type() {
        let m = Metrics::default();
        let claim = claim();
        let date = t0() - Duration::seconds(30);
        let events = [
            event("a", EventType::Created, date),
            event("b", EventType::Created, date),
            event("c", EventType::Updated, date),
        ];
        let ok = outcome(PollStatus::Ok, StdDuration::from_secs(2), 7);
        let summary = CommitSummary { inserted: 3, duplicates: 0 };
        m.poll(&PollReport {
            claim: &claim,
            outcome: &ok,
            recorded: PollRecorded::Committed { events: &events, summary },
        });
        let text = m.render();
        check(
            &text,
            &[
                "ocpoll_polls_total{outcome=\"ok\"} 1",
                "ocpoll_records_fetched_total 7",
                "ocpoll_events_total{type=\"CREATED\"} 2",
                "ocpoll_events_total{type=\"UPDATED\"} 1",
                "ocpoll_poll_duration_seconds_bucket{le=\"1\"} 0",
                "ocpoll_poll_duration_seconds_bucket{le=\"2.5\"} 1",
                "ocpoll_poll_duration_seconds_sum 2",
                "ocpoll_poll_duration_seconds_count 1",
            ],
        );
        assert!(!text.contains("type=\"DELETED\"") && !text.contains("\nocpoll_duplicate_events_total "), "{text}");

        // The same events again (a poll repeated after a crash): the outbox ignored them, and that is said.
        let again = outcome(PollStatus::Ok, StdDuration::from_millis(20), 3);
        let summary = CommitSummary { inserted: 0, duplicates: 3 };
        m.poll(&PollReport {
            claim: &claim,
            outcome: &again,
            recorded: PollRecorded::Committed { events: &events, summary },
        });
        check(
            &m.render(),
            &[
                "ocpoll_polls_total{outcome=\"ok\"} 2",
                "ocpoll_records_fetched_total 10",
                "ocpoll_events_total{type=\"CREATED\"} 4",
                "ocpoll_duplicate_events_total 3",
                "ocpoll_poll_duration_seconds_bucket{le=\"0.025\"} 1",
                "ocpoll_poll_duration_seconds_count 2",
            ],
        );
    }

    #[test]
    fn abandoned_and_refused_polls_are_counted_by_outcome() {
        let m = Metrics::default();
        let claim = claim();
        let reauth = outcome(PollStatus::ReauthorizationRequired, StdDuration::from_millis(300), 0);
        m.poll(&PollReport { claim: &claim, outcome: &reauth, recorded: PollRecorded::Abandoned });
        // A commit the store refused (its lease was lost): counted as such, its events not.
        let lost = StoreError::LeaseLost("poll job 7/customers".into());
        let events = [event("a", EventType::Created, t0())];
        let _ = &events;
        let ok = outcome(PollStatus::Ok, StdDuration::from_secs(1), 4);
        m.poll(&PollReport { claim: &claim, outcome: &ok, recorded: PollRecorded::Refused(&lost) });
        let failed = StoreError::Database("disk full".into());
        m.poll(&PollReport { claim: &claim, outcome: &ok, recorded: PollRecorded::Refused(&failed) });
        let text = m.render();
        check(
            &text,
            &[
                "ocpoll_polls_total{outcome=\"reauthorization_required\"} 1",
                "ocpoll_polls_total{outcome=\"lease_lost\"} 1",
                "ocpoll_polls_total{outcome=\"store_error\"} 1",
                "ocpoll_records_fetched_total 8",
                "ocpoll_poll_duration_seconds_count 3",
            ],
        );
        assert!(!text.contains("ocpoll_events_total{"), "{text}");
    }

    #[test]
    fn attempts_are_counted_and_a_delivery_observes_its_latency() {
        let m = Metrics::default();
        let events = vec![
            event("a", EventType::Created, t0() - Duration::seconds(40)),
            event("b", EventType::Updated, t0() - Duration::seconds(20)),
        ];
        let claim = delivery(events, t0());
        // First attempt: the receiver is down. Counted, no latency.
        let failed = attempt(t0(), 503, 100);
        let retry = NextStep::RetryAt(t0() + Duration::seconds(30));
        m.attempt(&AttemptReport { claim: &claim, attempt: &failed, next: retry, recorded: Ok(()) });
        let text = m.render();
        check(&text, &["ocpoll_notifications_total{outcome=\"retry\",class=\"5xx\"} 1"]);
        assert!(!text.contains("ocpoll_delivery_latency_seconds_count"), "{text}");
        // An attempt the store refused (lease lost) is neither counted nor observed.
        let lost = StoreError::LeaseLost("notification".into());
        let late = attempt(t0() + Duration::seconds(30), 204, 500);
        m.attempt(&AttemptReport { claim: &claim, attempt: &late, next: NextStep::Delivered, recorded: Err(&lost) });
        assert!(!m.render().contains("outcome=\"delivered\""));
        // 30 s later it goes through, 500 ms after the attempt started: 70.5 s after the oldest change, 30.5 s
        // after it was batched.
        m.attempt(&AttemptReport { claim: &claim, attempt: &late, next: NextStep::Delivered, recorded: Ok(()) });
        check(
            &m.render(),
            &[
                "ocpoll_notifications_total{outcome=\"delivered\",class=\"2xx\"} 1",
                "ocpoll_notifications_total{outcome=\"retry\",class=\"5xx\"} 1",
                "ocpoll_delivery_latency_seconds_bucket{since=\"change\",le=\"60\"} 0",
                "ocpoll_delivery_latency_seconds_bucket{since=\"change\",le=\"300\"} 1",
                "ocpoll_delivery_latency_seconds_sum{since=\"change\"} 70.5",
                "ocpoll_delivery_latency_seconds_sum{since=\"batched\"} 30.5",
                "ocpoll_delivery_latency_seconds_count{since=\"batched\"} 1",
            ],
        );
    }

    #[test]
    fn batches_are_counted() {
        let m = Metrics::default();
        m.batched(3, t0());
        m.batched(2, t0());
        check(&m.render(), &["ocpoll_notifications_built_total 5"]);
    }

    #[test]
    fn answer_classes() {
        let cases = [(Some(200), "2xx"), (Some(410), "4xx"), (Some(503), "5xx"), (Some(999), "other"), (None, "none")];
        for (status, expected) in cases {
            assert_eq!(class_label(status), expected, "{status:?}");
        }
    }

    #[test]
    fn sage_counters_are_copied_as_totals() {
        let m = Metrics::default();
        let mut stats = SageStatsSnapshot {
            responses: BTreeMap::from([(200, 41), (429, 2)]),
            transport_errors: 1,
            limiter_waits: 3,
            limiter_wait: StdDuration::from_millis(4500),
            throttle_waits: 2,
            throttle_wait: StdDuration::from_secs(14),
            refreshes: RefreshCounts { ok: 5, invalid_grant: 1, invalid_client: 0, failed: 0 },
        };
        record_sage_stats(&m, &stats);
        stats.responses.insert(200, 42);
        // Copied twice: set, not added.
        record_sage_stats(&m, &stats);
        check(
            &m.render(),
            &[
                "ocpoll_sage_requests_total{status=\"200\"} 42",
                "ocpoll_sage_requests_total{status=\"429\"} 2",
                "ocpoll_sage_requests_total{status=\"transport_error\"} 1",
                "ocpoll_rate_limit_waits_total{by=\"limiter\"} 3",
                "ocpoll_rate_limit_waits_total{by=\"sage\"} 2",
                "ocpoll_rate_limit_wait_seconds_total{by=\"limiter\"} 4.5",
                "ocpoll_rate_limit_wait_seconds_total{by=\"sage\"} 14",
                "ocpoll_token_refreshes_total{outcome=\"ok\"} 5",
                "ocpoll_token_refreshes_total{outcome=\"invalid_grant\"} 1",
                "ocpoll_token_refreshes_total{outcome=\"invalid_client\"} 0",
            ],
        );
    }

    #[test]
    fn the_sage_hook_reads_the_provider_at_each_rendering() {
        let m = Metrics::default();
        let sage = SageProvider::new(oc_sageone::SageConfig::default()).unwrap();
        m.on_scrape(sage_scrape_hook(sage));
        check(
            &m.render(),
            &["ocpoll_token_refreshes_total{outcome=\"ok\"} 0", "ocpoll_rate_limit_waits_total{by=\"limiter\"} 0"],
        );
    }
}

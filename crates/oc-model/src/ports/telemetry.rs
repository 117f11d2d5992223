//! The telemetry port: the engines report what they did where they hold the facts — a poll with what it found and
//! what the store made of it, a delivery attempt with its claim in hand, a batching round. Every method has a
//! default that does nothing (in the manner of ripgrep's `Sink`), so an implementation overrides only what it
//! counts; [`NoTelemetry`] counts nothing. `oc-bin`'s metrics implement it.
//!
//! Calls are made on the engines' hot paths: an implementation must be cheap and must not block.
//!
//! Traces cross the outbox through it: a poll asks for the W3C `traceparent` of its span
//! ([`Telemetry::trace_parent`]), the store keeps it with the events the poll commits, and the delivery attempts
//! of those events, on whichever node, continue that trace ([`Telemetry::continue_trace`]): poll, provider
//! requests, commit and delivery attempts are one trace.

use std::fmt::Debug;

use chrono::{DateTime, Utc};

use crate::event::Event;
use crate::ports::store::{CommitSummary, DeliveryClaim, NewAttempt, NextStep, PollClaim, PollOutcome, StoreError};

/// What the store made of a poll's result.
#[derive(Debug, Clone, Copy)]
pub enum PollRecorded<'a> {
    /// Committed: these events were written (the outbox ignoring those it had already).
    Committed {
        /// The events of the commit.
        events: &'a [Event],
        /// What the outbox kept of them.
        summary: CommitSummary,
    },
    /// Recorded as abandoned: nothing but the outcome was written.
    Abandoned,
    /// The store refused to record it (e.g. [`StoreError::LeaseLost`]): the poll had no effect.
    Refused(&'a StoreError),
}

/// One poll of one (instance, resource), as it ended.
#[derive(Debug, Clone, Copy)]
pub struct PollReport<'a> {
    /// The claimed job.
    pub claim: &'a PollClaim,
    /// What the poll did.
    pub outcome: &'a PollOutcome,
    /// What the store made of it.
    pub recorded: PollRecorded<'a>,
}

/// One delivery attempt, as recorded (or not).
#[derive(Debug, Clone, Copy)]
pub struct AttemptReport<'a> {
    /// The claim it was made under: the notification, its events and its instance.
    pub claim: &'a DeliveryClaim,
    /// The attempt.
    pub attempt: &'a NewAttempt,
    /// What follows it.
    pub next: NextStep,
    /// Whether the store recorded it (`Err`: refused or failed; the notification is then retried by whoever
    /// holds it next).
    pub recorded: Result<(), &'a StoreError>,
}

impl AttemptReport<'_> {
    /// The time from the oldest change the notification carries (provider clock) to its delivery, when this
    /// attempt delivered it and was recorded.
    pub fn latency_since_change(&self) -> Option<chrono::Duration> {
        self.delivered_at().and_then(|at| Some(at - self.claim.oldest_change()?))
    }

    /// The time from the notification's batching to its delivery, when this attempt delivered it and was
    /// recorded.
    pub fn latency_since_batched(&self) -> Option<chrono::Duration> {
        self.delivered_at().map(|at| at - self.claim.notification.created_at)
    }

    fn delivered_at(&self) -> Option<DateTime<Utc>> {
        (self.recorded.is_ok() && self.next == NextStep::Delivered).then(|| self.attempt.ended_at())
    }
}

/// Where the engines report. Every method defaults to doing nothing.
pub trait Telemetry: Send + Sync + Debug {
    /// A poll ended.
    fn poll(&self, report: &PollReport<'_>) {
        let _ = report;
    }

    /// A delivery attempt ended and its recording was answered.
    fn attempt(&self, report: &AttemptReport<'_>) {
        let _ = report;
    }

    /// Outbox events were grouped into `notifications` new notifications at `at`.
    fn batched(&self, notifications: usize, at: DateTime<Utc>) {
        let _ = (notifications, at);
    }

    /// The scheduler's view of its work and of the accounts' budgets, at most once a second.
    fn schedule(&self, report: &ScheduleReport) {
        let _ = report;
    }

    /// The W3C `traceparent` (`00-<trace id>-<span id>-<flags>`) of `span` when traces are exported and `span` is
    /// recorded; `None` otherwise.
    fn trace_parent(&self, span: &tracing::Span) -> Option<String> {
        let _ = span;
        None
    }

    /// Makes `span`, created but not yet entered, a child of the span `trace_parent` names (a `traceparent` that
    /// [`trace_parent`](Self::trace_parent) gave, maybe on another node). Ignores a malformed value.
    fn continue_trace(&self, span: &tracing::Span, trace_parent: &str) {
        let _ = (span, trace_parent);
    }
}

/// The scheduler's view of its work and of the provider accounts' budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleReport {
    /// Polls running.
    pub in_flight: usize,
    /// Polls that may run at once now.
    pub concurrency: usize,
    /// Claimed polls waiting, without a slot, for their account's budget.
    pub waiting: usize,
    /// Provider accounts with polls on this node.
    pub accounts: usize,
    /// Accounts whose configured intervals need more requests than their budget (their polls come late).
    pub short_accounts: usize,
    /// (instance, resource) pairs polled adaptively.
    pub adaptive_pairs: usize,
    /// Early polls (adaptive, before their interval, on spare budget) started so far.
    pub early_polls: u64,
}

/// Telemetry that counts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {}

//! The ports: the narrow traits through which the engines see the outside world, each cut by its caller.
//!
//! - [`Clock`]: time, so tests drive it instead of sleeping;
//! - [`Provider`] and its description [`ProviderSpec`]: a SaaS API — OAuth, query compilation, one page at a
//!   time; [`Providers`], the registry of them by element key;
//! - [`TokenVault`]: where a provider keeps an instance's rotating OAuth tokens (the store implements it);
//! - the store, cut by caller: [`PollingStore`] (scheduler and engine), [`DeliveryStore`] (dispatcher),
//!   [`AccountStore`], [`InstanceStore`] and [`ActivityStore`] (the API), [`MaintenanceStore`] (housekeeping);
//! - [`Notifier`]: one HTTP delivery of one notification;
//! - [`Telemetry`]: what the engines report as they work (metrics), every method optional.
//!
//! Only `oc-bin` wires concrete implementations together.

mod clock;
mod notifier;
mod provider;
mod registry;
mod store;
mod telemetry;
mod vault;

pub use clock::{Clock, ManualClock, SystemClock};
pub use notifier::{AttemptOutcome, DeliveryRequest, DeliveryResult, Notifier};
pub use provider::{Budget, Lane, RecordRequest};
pub use provider::{
    CompiledQuery, Diagnostic, Feed, FieldNeeds, Grant, OAuthApp, OAuthUrlRequest, Page, PageCursor, PageRequest,
    Provider, ProviderAccount, ProviderError, ProviderSpec, QueryError, RecordFilter, ResourceSpec, Session,
};
pub use registry::Providers;
pub use store::{
    AccountStore, ActivityStore, AlertClaim, AlertPage, AlertRecord, AlertStatus, AlertStep, AlertStore, AlertType,
    AttemptRecord, Change, ChangePage, ChangeQuery, CommitSummary, ConsoleSession, ConsoleStore, DeliveryClaim,
    DeliveryStore, EventDetail, EventFilter, EventPage, EventStatus, EventView, Instance, InstanceStore,
    InstanceUpdate, Known, Lease, MaintenanceStore, NewAttempt, NewConsoleSession, NewInstance, NewOAuthRound,
    NewOrganization, NextStep, NodeBeat, NotificationRecord, NotificationStatus, OAuthRound, OcEventStatus,
    Organization, OutboxStats, PollClaim, PollCommit, PollFailure, PollOutcome, PollRecord, PollState, PollStatus,
    PollWarning, PollingStore, Principal, Reconciled, ReleasedLeases, ReplayQuery, SecretDigest, StatusFilter,
    StoreError, StoredAttempt, node_of_holder,
};
pub use telemetry::{AttemptReport, NoTelemetry, PollRecorded, PollReport, ScheduleReport, Telemetry};
pub use vault::{TokenSet, TokenVault};

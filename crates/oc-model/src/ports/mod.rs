//! The ports: the narrow traits through which the engine sees the outside world.
//!
//! - [`Clock`]: time, so tests drive it instead of sleeping;
//! - [`Provider`]: a SaaS API (Sage) — OAuth, query compilation, one page at a time;
//! - [`TokenVault`]: where a provider keeps an instance's rotating OAuth tokens (the store implements it);
//! - the store traits [`AccountStore`], [`InstanceStore`], [`PollStore`], [`OutboxStore`] and their union
//!   [`Store`];
//! - [`Notifier`]: one HTTP delivery of one notification.
//!
//! Only `oc-bin` wires concrete implementations together.

mod clock;
mod notifier;
mod provider;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use notifier::{AttemptOutcome, DeliveryRequest, DeliveryResult, Notifier};
pub use provider::{
    CompiledQuery, Diagnostic, Feed, FieldNeeds, Grant, OAuthApp, OAuthUrlRequest, Page, PageCursor, PageRequest,
    Provider, ProviderAccount, ProviderError, QueryError, RecordFilter, Session, TokenSet, TokenVault,
};
pub use store::{
    AccountStore, AttemptRecord, CommitSummary, DeliveryClaim, EventDetail, EventFilter, EventPage, EventStatus,
    EventView, Instance, InstanceStore, InstanceUpdate, Lease, NewAttempt, NewInstance, NewOrganization, NextStep,
    NotificationRecord, NotificationStatus, Organization, OutboxStats, OutboxStore, PollClaim, PollCommit, PollFailure,
    PollOutcome, PollRecord, PollState, PollStatus, PollStore, PollWarning, Principal, Store, StoreError,
    StoredAttempt,
};

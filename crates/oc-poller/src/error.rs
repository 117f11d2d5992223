//! Errors of the engine and the scheduler.

use oc_model::ports::{ProviderError, QueryError, StoreError};

/// Why a poll could not run or commit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PollError {
    /// The resource's poller configuration cannot be used (bad URL template, mask or zone).
    #[error("poller configuration of {resource}: {message}")]
    Config {
        /// The resource.
        resource: String,
        /// What is wrong.
        message: String,
    },
    /// The rendered URL does not compile into a provider query.
    #[error("the rendered url does not compile")]
    Query(#[source] QueryError),
    /// The provider failed beyond its retry budget: the poll was abandoned.
    #[error("provider")]
    Provider(#[source] ProviderError),
    /// A scan read more pages than any complete scan can need (a provider paging loop).
    #[error("more than {0} pages in one scan: the provider keeps returning a next page")]
    PageLimit(u32),
    /// The store failed.
    #[error("store")]
    Store(#[source] StoreError),
    /// The stored `seen` set cannot be read.
    #[error("stored poll state: {0}")]
    CorruptState(String),
}

impl From<StoreError> for PollError {
    fn from(e: StoreError) -> Self {
        PollError::Store(e)
    }
}

impl From<ProviderError> for PollError {
    fn from(e: ProviderError) -> Self {
        PollError::Provider(e)
    }
}

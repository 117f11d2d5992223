//! Errors of the notifier and the delivery engine.

use oc_model::ports::StoreError;

/// Why building a notifier or running the delivery engine failed. Failed deliveries are not errors: they are
/// recorded attempts.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the http client")]
    Client(#[source] reqwest::Error),
    /// A retry policy or configuration value is out of range.
    #[error("invalid delivery settings: {0}")]
    InvalidPolicy(String),
    /// The store failed.
    #[error("store")]
    Store(#[from] StoreError),
}

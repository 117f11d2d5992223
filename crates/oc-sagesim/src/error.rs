//! Errors of the simulator's Rust API (starting it, registering apps, driving records and faults).

use std::net::SocketAddr;

/// What went wrong when starting or driving the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// An `--app` value is not `CLIENT_ID:CLIENT_SECRET:REDIRECT_URI`.
    #[error("invalid app {value:?}: {reason}")]
    InvalidApp {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// No business with this id.
    #[error("unknown business {0:?}")]
    UnknownBusiness(String),
    /// The swagger has no resource with this name (or the simulator cannot hold records of it).
    #[error("unknown resource {0:?}")]
    UnknownResource(String),
    /// No live record with this id in the business and resource.
    #[error("no record {id:?} in {resource}")]
    RecordNotFound {
        /// The resource.
        resource: String,
        /// The id asked for.
        id: String,
    },
    /// The record fields given are not acceptable (not an object, missing required fields, ...).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// No registered OAuth app with this client id.
    #[error("unknown client id {0:?}")]
    UnknownClient(String),
    /// The server task failed.
    #[error("server failed")]
    Serve(#[source] std::io::Error),
}

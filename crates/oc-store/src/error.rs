//! Errors of this crate: loading the master key, and the mapping of database errors onto the port's
//! [`StoreError`], which every store call returns.

use std::io;
use std::path::PathBuf;

use oc_model::ports::StoreError;

/// Why a master key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read the master key file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The key file could not be created.
    #[error("cannot create the master key file {path}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No key was given where one is required (PostgreSQL: every node must use the same key).
    #[error(
        "a master key is required: pass --master-key-file or set OCPOLL_MASTER_KEY (64 hex digits or base64 of 32 bytes)"
    )]
    Missing,
    /// The text is not a 256-bit key in one of the accepted forms.
    #[error("{what} is not a 256-bit key: expected 64 hex digits, the base64 of 32 bytes, or 32 raw bytes")]
    Format {
        /// Where the text came from (a file name or an environment variable).
        what: String,
    },
}

impl From<KeyError> for StoreError {
    fn from(e: KeyError) -> Self {
        StoreError::Crypto(error_chain(&e))
    }
}

/// The message of an error followed by its causes, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A stored value that does not decode: the database was changed behind our back.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("corrupt stored value: {what}"))
}

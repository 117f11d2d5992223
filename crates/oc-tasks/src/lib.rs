//! A second provider, to prove that providers can be swapped: an invented "Tasks" JSON API behind
//! `oc-model`'s provider port, deliberately unlike Sage. It is a proof used by the end-to-end tests, not a
//! product feature: `ocpoll` does not serve it, and nothing in `oc-poller`, `oc-notify` or `oc-store` knows it.
//!
//! The Tasks API, as this crate speaks it:
//!
//! | | |
//! |---|---|
//! | auth | `POST {base}/oauth/token` (form: `grant_type`, `code` or `refresh_token`, `client_id`, `client_secret`, `redirect_uri`, `code_verifier`) → `{"access_token", "refresh_token", "expires_in", "workspace": {"id", "name"}}`; errors `{"error": "invalid_grant" \| "invalid_client", "error_description"}` |
//! | requests | `Authorization: Bearer ...` and `X-Workspace: {id}` |
//! | changes | `GET {base}/v1/{tasks\|projects}?modified_since=&limit=&cursor=` → `{"items": [...], "next_cursor": "..." \| null, "total": N}`, ordered by `(modified, uid)`, `modified_since` inclusive |
//! | deletions | `GET {base}/v1/{resource}?removed_since=&limit=&cursor=` → the same envelope of tombstones `{"uid", "removed_on"}` |
//! | records | id `uid`, dates `modified` and `created` (RFC 3339) |
//! | errors | `{"code", "message"}`; 401 refreshes the token once; 429 with `Retry-After` |
//!
//! - [`TasksProvider`] (settings in [`TasksConfig`]) implements [`oc_model::ports::Provider`]; tokens live in
//!   the session's [`TokenVault`](oc_model::ports::TokenVault), refreshed single-flight and saved before use;
//! - [`compile`]: a hub URL (`/hubs/work/tasks?where=...`) → the request, through `oc-ceql` and [`DIALECT`];
//! - [`provider_spec`]: what the neutral layers know of it (element `tasks`, hub `work`, its keys, resources).
//!
//! ```
//! use oc_model::ports::{Provider, FieldNeeds};
//!
//! let tasks = oc_tasks::TasksProvider::new(oc_tasks::TasksConfig::new("http://127.0.0.1:9")).unwrap();
//! let q = tasks
//!     .compile("/hubs/work/tasks?where=lastModifiedDate >= '2024-01-31T10:00:00Z' and done = false", &FieldNeeds::default())
//!     .unwrap();
//! assert_eq!(q.path, "/v1/tasks");
//! assert_eq!(q.query, [("modified_since".to_string(), "2024-01-31T10:00:00Z".to_string())]);
//! assert_eq!(q.local.unwrap().describe(), "done = false");
//! ```

mod compile;
mod error;
mod oauth;
mod provider;
mod spec;
mod wire;

pub use compile::compile;
pub use error::{CompileError, CompileErrorKind, TasksError};
pub use provider::{TasksConfig, TasksProvider};
pub use spec::{
    DELETED_DATE_FIELD, DIALECT, ELEMENT_KEY, HUB, KEYS, MAX_PAGE_SIZE, WORKSPACE_HEADER, keys, provider_spec,
};
pub use wire::decode_page;

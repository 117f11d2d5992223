//! Durable state on embedded SQLite (the default) and PostgreSQL (several nodes): instances, tokens, poll
//! state, the event outbox, notifications and delivery attempts, leases, and secrets encrypted at rest. It
//! implements the store port of `oc-model` and is the only crate that writes SQL.

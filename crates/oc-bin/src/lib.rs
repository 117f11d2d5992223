//! The library half of the `ocpoll` binary: the HTTP API ([`api::app`]) and the web console ([`console`]),
//! validation across layers, metrics, and the wiring of concrete implementations. End-to-end tests drive
//! [`api::app`] directly.

pub mod api;
pub mod callbacks;
pub mod console;
pub mod demo;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod receiver;
pub mod service;
pub mod settings;
pub mod telemetry;
pub mod traces;
pub mod validation;

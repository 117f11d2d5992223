//! Integration tests of oc-sageone, one binary: the Sage client against wiremock, what the hub passthrough asks
//! of it against the simulator (`hub`), and the crate's data checked against Sage's swagger (`swagger`, which
//! also regenerates `src/endpoints/table.rs`).

mod client;
mod hub;
mod swagger;

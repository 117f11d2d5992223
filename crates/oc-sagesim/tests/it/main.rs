//! Integration tests of the Sage simulator, one binary: list semantics, OAuth over HTTP, injected faults and
//! the admin API (driven in-process through the router, `common`), and the simulator as a real TCP server.

mod common;

mod faults;
mod lists;
mod oauth;
mod server;

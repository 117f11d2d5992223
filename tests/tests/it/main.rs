//! One test binary: end to end: the API and its authentication, the seed example, six resources in one instance, lifecycle, delivery, the change feed, key rotation, operational alerts, crashes, two nodes, the second provider, the hub passthrough, the console in a browser.

mod api_auth;
mod api_errors;
mod api_http;
mod api_instances;
mod api_limits;
mod console_browser;
mod console_harness;
mod e2e_alerts;
mod e2e_crash;
mod e2e_delivery;
mod e2e_feed;
mod e2e_lifecycle;
mod e2e_resources;
mod e2e_rotation;
mod e2e_second_provider;
mod e2e_seed;
mod e2e_traces;
mod e2e_two_nodes;
mod hub;
mod ops_commands;
mod packaging;

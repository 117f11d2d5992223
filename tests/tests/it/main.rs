//! One test binary: end to end: the API and its authentication, the seed example, lifecycle, delivery, crashes, two nodes, the second provider, the hub passthrough.

mod api_auth;
mod api_instances;
mod e2e_crash;
mod e2e_delivery;
mod e2e_lifecycle;
mod e2e_second_provider;
mod e2e_seed;
mod e2e_two_nodes;
mod hub;

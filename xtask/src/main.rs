//! `cargo xtask`: the project's automation (tests, CI, benchmarks), in Rust so it runs wherever cargo does.

fn main() {}

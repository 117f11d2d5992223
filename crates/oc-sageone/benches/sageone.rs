//! Benchmarks of oc-sageone (placeholder while the crate is written).

fn main() {}

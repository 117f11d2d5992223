//! List-call throughput of the simulator (filled in below).

fn main() {}

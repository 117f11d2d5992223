//! The `ocpoll` binary.

fn main() {}

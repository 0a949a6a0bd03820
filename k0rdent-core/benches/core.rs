//! Benchmarks for k0rdent-core (planning, state saves).
fn main() {}

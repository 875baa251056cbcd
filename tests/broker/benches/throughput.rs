//! Throughput benchmark of the TCP server (placeholder until written).
fn main() {}

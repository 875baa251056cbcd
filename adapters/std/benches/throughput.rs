//! Throughput benchmarks (written with the publish path measurements).
fn main() {}

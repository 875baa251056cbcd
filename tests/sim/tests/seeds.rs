//! The simulator's test suite: many seeds hold every invariant; one seed twice gives a
//! byte-identical trace; a failing seed can be replayed with its full trace.
//!
//! `cargo test -p amps-sim --release` runs 10,000 seeds (about 15 s on the dev machine); a
//! debug `cargo test` (as in CI) runs 1,000. `SIM_SEEDS=n` overrides the count, `SIM_SEED=n`
//! replays one seed with its full trace.

use amps_sim::{TraceMode, run};

fn seed_count() -> u64 {
    if let Some(n) = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()) {
        return n;
    }
    // Debug builds run about 10x slower than release: keep `cargo test` quick there.
    if cfg!(debug_assertions) {
        1_000
    } else {
        10_000
    }
}

#[test]
fn every_seed_holds_the_invariants() {
    let n = seed_count();
    let (mut published, mut delivered, mut faults, mut two_brokers) = (0u64, 0u64, 0u64, 0u64);
    for seed in 0..n {
        match run(seed, TraceMode::Digest) {
            Ok(o) => {
                published += o.published;
                delivered += o.delivered;
                faults += u64::from(o.faults);
                two_brokers += u64::from(o.params.brokers == 2);
                assert!(
                    o.published == o.params.messages,
                    "seed {seed}: published {} of {}",
                    o.published,
                    o.params.messages
                );
            }
            Err(f) => panic!("{f}"),
        }
    }
    println!(
        "{n} seeds: {published} messages published, {delivered} delivered to bookmark subscribers, {faults} faults, {two_brokers} failover runs"
    );
    assert!(faults > n, "faults are injected");
    assert!(two_brokers > 0, "failover runs are part of the mix");
}

#[test]
fn same_seed_gives_a_byte_identical_trace() {
    for seed in [3, 42, 1_000_003] {
        let a = run(seed, TraceMode::Full).unwrap_or_else(|f| panic!("{f}"));
        let b = run(seed, TraceMode::Full).unwrap_or_else(|f| panic!("{f}"));
        assert!(!a.trace.is_empty());
        assert_eq!(a.trace, b.trace, "seed {seed}: traces differ");
        assert_eq!(a.digest, b.digest);
    }
    let x = run(5, TraceMode::Digest).unwrap_or_else(|f| panic!("{f}"));
    let y = run(6, TraceMode::Digest).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(x.digest, y.digest, "different seeds take different paths");
}

/// `SIM_SEED=n cargo test -p amps-sim --release --test seeds replay -- --nocapture`
#[test]
fn replay() {
    let seed = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    match run(seed, TraceMode::Full) {
        Ok(o) => {
            if std::env::var("SIM_SEED").is_ok() {
                println!("{}", String::from_utf8_lossy(&o.trace));
            }
            println!("seed {seed}: {:?}", o.params);
            assert_eq!(o.published, o.params.messages);
        }
        Err(f) => panic!("{f}"),
    }
}

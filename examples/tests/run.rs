//! Every example, run by `cargo test -p amps-examples`: each is compiled into this test as a
//! module and its `main` (or, for those taking arguments, its `run` with the defaults) called,
//! so an example that no longer builds, fails or hangs fails the tests. Each one starts its
//! own in-process broker on a free port (unless `AMPS_URI` is set), so they run in parallel.
//!
//! Examples check what they show and return an error when it does not hold.

// `main` of these examples reads the process's arguments, which belong to the test harness
// here: the tests call `run` with the defaults instead, and `main` is left unused.
#[allow(dead_code)]
#[path = "../publish.rs"]
mod publish;
#[allow(dead_code)]
#[path = "../quickstart.rs"]
mod quickstart;

#[path = "../bookmark_replay.rs"]
mod bookmark_replay;
#[path = "../conflation.rs"]
mod conflation;
#[path = "../delta.rs"]
mod delta;
#[path = "../errors_and_listeners.rs"]
mod errors_and_listeners;
#[path = "../failover.rs"]
mod failover;
#[path = "../heartbeats.rs"]
mod heartbeats;
#[path = "../message_types.rs"]
mod message_types;
#[path = "../queue_worker.rs"]
mod queue_worker;
#[path = "../sow_and_subscribe.rs"]
mod sow_and_subscribe;
#[path = "../sow_delete.rs"]
mod sow_delete;
#[path = "../subscribe.rs"]
mod subscribe;
#[path = "../timeouts.rs"]
mod timeouts;
#[path = "../tls.rs"]
mod tls;
#[path = "../transport_filter.rs"]
mod transport_filter;

type Outcome = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread")]
async fn quickstart() -> Outcome {
    let count = quickstart::DEFAULT_COUNT;
    quickstart::run(quickstart::Args { count }).await
}

#[test]
fn publish() -> Outcome {
    publish::run(publish::DEFAULT_COUNT)
}

macro_rules! run_main {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() -> Outcome {
            $name::main()
        }
    )*};
}

run_main!(
    subscribe,
    sow_and_subscribe,
    queue_worker,
    failover,
    delta,
    bookmark_replay,
    errors_and_listeners,
    conflation,
    sow_delete,
    message_types,
    transport_filter,
    tls,
    heartbeats,
    timeouts,
);

/// An example added to Cargo.toml but not to this file would never run: every `[[example]]`
/// must have its module here.
#[test]
fn every_example_is_run() {
    let manifest = include_str!("../Cargo.toml");
    let this = include_str!("run.rs");
    let mut names = Vec::new();
    let mut in_example = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_example = line == "[[example]]";
        } else if in_example && let Some(v) = line.strip_prefix("name = ") {
            names.push(v.trim_matches('"'));
        }
    }
    // Sixteen when this was written: fewer means the manifest was not read right.
    assert!(names.len() >= 16, "the examples in Cargo.toml: {names:?}");
    for name in names {
        assert!(
            this.contains(&format!("mod {name};")),
            "the example `{name}` is not run by tests/run.rs"
        );
    }
}

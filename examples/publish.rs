//! Publishing with the blocking client (amps-std): fire-and-forget publishes batched by the
//! I/O thread, a `flush()` barrier, then reliable publishing through an HA client's publish
//! store with `publish_flush` and `unpersisted_count` (user guide: "Publishing", "Publish stores").
//!
//! ```text
//! cargo run --release -p amps-examples --example publish [-- COUNT]
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example publish
//! ```
//!
//! Uses the topics `telemetry` (any topic works) and `events` (transaction-logged, so the
//! server acknowledges persistence and numbers publishes).

use std::time::{Duration, Instant};

use amps_examples::{client_name, server};
use amps_std::{Client, DefaultServerChooser, HaClient};

/// Messages published without an argument.
pub(crate) const DEFAULT_COUNT: u32 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u32 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("COUNT must be a number, not `{n}`"))?,
        None => DEFAULT_COUNT,
    };
    run(count)
}

/// Publish `count` messages, then 1000 reliable ones.
pub(crate) fn run(count: u32) -> Result<(), Box<dyn std::error::Error>> {
    let server = server(amps_broker::Config::default())?;

    // 1. A plain client: publish() returns once the message is queued; the I/O thread batches
    //    the writes. flush() returns once the server has processed everything sent before.
    let client = Client::new(client_name("publisher"))?;
    client.connect(&server.uri)?;
    client.logon()?;
    let started = Instant::now();
    for i in 0..count {
        client.publish(
            "telemetry",
            format!(
                r#"{{"sensor":{},"seq":{i},"temp":{}}}"#,
                i % 16,
                20 + i % 70
            ),
        )?;
    }
    client.flush()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "published {count} messages to `telemetry` and flushed in {:.3} s ({:.0} msg/s)",
        secs,
        f64::from(count) / secs
    );
    client.close()?;

    // 2. An HA client with a memory publish store: every publish is kept until the server
    //    acknowledges it as persisted, and replayed after a reconnect.
    let reliable = HaClient::builder(client_name("reliable"))
        .server_chooser(DefaultServerChooser::new(vec![server.uri.clone()]))
        .memory_backed()
        .build()?;
    reliable.connect_and_logon()?;
    for i in 0..1000 {
        reliable.publish("events", format!(r#"{{"event":{i}}}"#))?;
    }
    println!(
        "published 1000 events; not yet acknowledged as persisted: {}",
        reliable.unpersisted_count()
    );
    reliable.publish_flush(Duration::from_secs(10))?;
    let left = reliable.unpersisted_count();
    println!("publish_flush done; unpersisted now: {left}");
    if left != 0 {
        return Err(format!("{left} publishes were not acknowledged after publish_flush").into());
    }
    reliable.close()?;
    Ok(())
}

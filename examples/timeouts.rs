//! Timeouts with the blocking client (amps-std): the default deadlines every waiting call
//! has (`DEFAULT_*_TIMEOUT`), `command_timeout` on the builder for calls that set none
//! themselves, a per-command timeout (`Command::timeout`, or `Params::timeout` for the named
//! methods) that takes precedence (shorter or longer), `flush_timeout`, and the `TimedOut`
//! error a call fails with when its deadline passes, here against a broker whose acks are
//! delayed.
//!
//! ```text
//! cargo run -p amps-examples --example timeouts
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example timeouts
//! ```
//!
//! The delayed acks come from the in-process broker's fault hooks; with `AMPS_URI` the example
//! shows the defaults and a per-command timeout only. Uses the topics `slow`, `patient` (any
//! topics work) and `events` (transaction-logged).

use std::time::{Duration, Instant};

use amps_examples::{client_name, server};
use amps_std::{
    Client, Command, DEFAULT_CLOSE_TIMEOUT, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_AND_LOGON_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOGON_TIMEOUT, ErrorKind,
    MemoryPublishStore, Params,
};

/// The builder's limit for calls that set none.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
/// How long the broker holds every ack.
const ACK_DELAY: Duration = Duration::from_millis(1_000);

/// Run `call`, which must fail `TimedOut`, and print how long it took.
fn expect_timeout<T>(what: &str, call: impl FnOnce() -> amps_std::Result<T>) -> Result<(), String> {
    let t0 = Instant::now();
    match call() {
        Err(e) if e.kind() == ErrorKind::TimedOut => {
            println!("  {what}: {} after {:.0?}", e.kind(), t0.elapsed());
            Ok(())
        }
        Err(e) => Err(format!("{what}: expected TimedOut, got {e}")),
        Ok(_) => Err(format!("{what}: expected TimedOut, it succeeded")),
    }
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("default deadlines:");
    println!("  connect, TLS handshake included:     {DEFAULT_CONNECT_TIMEOUT:?}");
    println!("  logon:                               {DEFAULT_LOGON_TIMEOUT:?}");
    println!("  commands, flush, full publish queue: {DEFAULT_COMMAND_TIMEOUT:?}");
    println!("  close:                               {DEFAULT_CLOSE_TIMEOUT:?}");
    println!("  HaClient::connect_and_logon:         {DEFAULT_CONNECT_AND_LOGON_TIMEOUT:?}");

    let server = server(amps_broker::Config::default())?;
    let client = Client::builder(client_name("deadlines"))
        .command_timeout(COMMAND_TIMEOUT)
        .publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 1000))
        .build()?;
    client.connect(&server.uri)?;
    client.logon()?;
    println!("client built with command_timeout({COMMAND_TIMEOUT:?})");

    let Some(broker) = server.broker() else {
        let t0 = Instant::now();
        let _s = client.execute(&Command::subscribe("patient").timeout(Duration::from_secs(5)))?;
        println!(
            "  subscribe with its own 5 s timeout: processed in {:.0?}",
            t0.elapsed()
        );
        println!("(delayed acks need the in-process broker; the TimedOut cases are skipped)");
        client.close()?;
        return Ok(());
    };

    broker.faults(|f| f.delay_acks = Some(ACK_DELAY.into()));
    println!("the broker now holds every ack for {ACK_DELAY:?}:");

    // A per-command timeout longer than the builder's: the command waits for its ack.
    let t0 = Instant::now();
    let patient = client.execute(&Command::subscribe("patient").timeout(Duration::from_secs(5)))?;
    println!(
        "  subscribe with its own 5 s timeout: processed after {:.0?}",
        t0.elapsed()
    );
    drop(patient);

    // The builder's command timeout for a call that sets none, and flush_timeout's own.
    expect_timeout("flush (the builder's 300 ms)", || client.flush())?;
    expect_timeout("flush_timeout(100 ms)", || {
        client.flush_timeout(Duration::from_millis(100))
    })?;
    // A per-command timeout shorter than the builder's, on a Command or through the named
    // method's Params; the subscription is withdrawn.
    expect_timeout("subscribe with its own 100 ms timeout (Command)", || {
        client.execute(&Command::subscribe("slow").timeout(Duration::from_millis(100)))
    })?;
    expect_timeout("subscribe with its own 100 ms timeout (Params)", || {
        client.subscribe("slow", Params::new().timeout(Duration::from_millis(100)))
    })?;
    // publish_flush takes its deadline as an argument.
    client.publish("events", r#"{"n":1}"#)?;
    expect_timeout("publish_flush(50 ms)", || {
        client.publish_flush(Duration::from_millis(50))
    })?;
    println!(
        "  the publish is still in the store: {} unpersisted",
        client.unpersisted_count()
    );

    broker.faults(|f| f.delay_acks = None);
    client.publish_flush(Duration::from_secs(10))?;
    println!(
        "acks flow again: publish_flush(10 s) returned, {} unpersisted",
        client.unpersisted_count()
    );
    client.close()?;
    Ok(())
}

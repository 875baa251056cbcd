//! Heartbeats with the async client (amps-tokio): with `heartbeat(interval, timeout)` on the
//! builder the server sends traffic at least every `interval`, and the client declares the
//! connection dead after `timeout` without a complete frame, so a server (or network) that
//! goes silent is noticed even when no application traffic flows. What the application sees
//! then: the state listener gets `Disconnected`, the exception listener the reason, and
//! streams end with a `Disconnected` error.
//!
//! ```text
//! cargo run -p amps-examples --example heartbeats
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example heartbeats
//! ```
//!
//! The silent server is the in-process broker with its heartbeats stopped by a fault hook;
//! with `AMPS_URI` the example only shows heartbeats keeping a quiet connection alive. Uses
//! the topic `quiet` (any topic works).

use std::time::{Duration, Instant};

use amps_examples::{client_name, server_async};
use amps_tokio::{Client, ConnectionState, ErrorKind};
use tokio::sync::mpsc;
use tokio::time::timeout;

const INTERVAL: Duration = Duration::from_secs(1);
/// Twice the interval, the server's own rule for silent clients.
const SILENCE: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(10);

/// Wait until `rx` yields `want`, skipping other values.
async fn until<T: PartialEq + std::fmt::Debug>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    want: T,
) -> Result<(), String> {
    loop {
        match timeout(WAIT, rx.recv()).await {
            Ok(Some(v)) if v == want => return Ok(()),
            Ok(Some(_)) => {}
            _ => return Err(format!("{want:?} did not come")),
        }
    }
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server_async(amps_broker::Config::default()).await?;

    // Server heartbeats are frames like any other: the transport filter spots them.
    let (beat_tx, mut beats) = mpsc::unbounded_channel();
    let client = Client::builder(client_name("heartbeat"))
        .heartbeat(INTERVAL, SILENCE)
        .transport_filter(move |dir, bytes| {
            if dir == amps_tokio::Direction::Incoming
                && bytes.windows(15).any(|w| w == br#""c":"heartbeat""#)
            {
                let _ = beat_tx.send(());
            }
        })
        .build()?;
    let (state_tx, mut states) = mpsc::unbounded_channel();
    client.add_connection_state_listener(move |s| {
        println!("  [state] {s:?}");
        let _ = state_tx.send(s);
    });
    let (err_tx, mut errors) = mpsc::unbounded_channel();
    client.set_exception_listener(move |e| {
        let _ = err_tx.send(e.to_string());
    });
    client.connect(&server.uri).await?;
    client.logon().await?;
    until(&mut states, ConnectionState::HeartbeatInitiated).await?;
    println!(
        "heartbeats on: every {INTERVAL:?} from the server, dead after {SILENCE:?} of silence"
    );
    let mut quiet = client.subscribe("quiet", None).await?;

    // No application traffic for longer than the silence timeout: the server's heartbeats
    // (periodic ones, and one answering each `beat` the client sends) keep the connection up.
    let started = Instant::now();
    let mut count = 0;
    while started.elapsed() <= SILENCE {
        until(&mut beats, ()).await?;
        count += 1;
    }
    println!(
        "quiet for {:.1?}: {count} heartbeat frames from the server, still logged on: {}",
        started.elapsed(),
        client.is_logged_on()
    );
    if !client.is_logged_on() {
        return Err("the quiet connection was dropped".into());
    }

    let Some(broker) = server.broker() else {
        println!("(the silent server needs the in-process broker; skipped with AMPS_URI)");
        drop(quiet);
        client.close().await?;
        return Ok(());
    };

    // The server goes silent: no heartbeats, no answers.
    broker.faults(|f| f.heartbeats_off = true);
    let silent = Instant::now();
    println!("the server goes silent");
    until(&mut states, ConnectionState::Disconnected).await?;
    println!(
        "  disconnected {:.1?} after the server went silent",
        silent.elapsed()
    );
    if let Ok(Some(reason)) = timeout(WAIT, errors.recv()).await {
        println!("  [exception listener] {reason}");
    }
    match quiet.recv_timeout(WAIT).await {
        Err(e) if e.kind() == ErrorKind::Disconnected => {
            println!("  the subscription's stream ended with {}", e.kind());
        }
        other => return Err(format!("expected the stream to end, got {other:?}").into()),
    }
    client.close().await?;
    Ok(())
}

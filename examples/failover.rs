//! High availability (seeds: "HAClient"): a publisher and a subscriber fail over from one
//! broker to another. The publisher's memory store replays what the first broker had not
//! acknowledged; the subscriber's handler subscription is re-entered on the second broker.
//!
//! ```text
//! cargo run -p amps-examples --example failover
//! AMPS_URIS=tcp://a:9007/amps/json,tcp://b:9007/amps/json cargo run -p amps-examples --example failover
//! ```
//!
//! Without `AMPS_URIS` it starts two in-process brokers and shuts the first down halfway; with
//! it, stop the first server yourself while the example runs.

use std::sync::mpsc;
use std::time::Duration;

use amps_examples::{client_name, start_broker, uri_of};
use amps_std::{
    Command, ConnectionState, CoreDuration, DefaultServerChooser, FixedDelayStrategy, HaClient,
};

const MESSAGES: u32 = 2_000;

fn ha(role: &str, uris: &[String]) -> Result<HaClient, amps_std::Error> {
    let c = HaClient::memory_backed(&client_name(role));
    c.set_server_chooser(DefaultServerChooser::new(uris.to_vec()))?;
    c.set_reconnect_delay_strategy(FixedDelayStrategy {
        delay: CoreDuration::from_millis(100),
        max_retry_time: Some(CoreDuration::from_secs(30)),
    })?;
    let who = role.to_owned();
    c.add_connection_state_listener(move |s| println!("  [{who}] {s:?}"));
    Ok(c)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut brokers = Vec::new();
    let uris: Vec<String> = match std::env::var("AMPS_URIS") {
        Ok(list) => list.split(',').map(str::to_owned).collect(),
        Err(_) => {
            for _ in 0..2 {
                brokers.push(start_broker(amps_broker::Config::default())?);
            }
            brokers.iter().map(uri_of).collect()
        }
    };
    println!("servers: {uris:?}");

    let subscriber = ha("subscriber", &uris)?;
    subscriber.connect_and_logon()?;
    let (tx, rx) = mpsc::channel();
    subscriber.execute_async(&Command::subscribe("prices"), move |m| {
        let _ = tx.send(m.data().into_owned());
    })?;
    let publisher = ha("publisher", &uris)?;
    let (state_tx, state_rx) = mpsc::channel();
    publisher.add_connection_state_listener(move |s| {
        let _ = state_tx.send(s);
    });
    publisher.connect_and_logon()?;

    for i in 0..MESSAGES {
        if i == MESSAGES / 2
            && let Some(first) = brokers.first()
        {
            println!("shutting down the first broker after {i} messages");
            first.shutdown();
            // Wait until the publisher is back (on the second broker) before going on, so
            // the demo shows the replay; publishing while disconnected works too (stored).
            while state_rx.recv_timeout(Duration::from_secs(30))? != ConnectionState::Resubscribed {
            }
        }
        publisher.publish("prices", format!(r#"{{"tick":{i}}}"#))?;
    }
    publisher.publish_flush(Duration::from_secs(30))?;
    println!(
        "publisher done; unpersisted messages: {}",
        publisher.unpersisted_count()
    );

    let mut received = 0;
    while rx.recv_timeout(Duration::from_millis(500)).is_ok() {
        received += 1;
    }
    println!("subscriber received {received} of {MESSAGES} ticks across both brokers");
    publisher.close();
    subscriber.close();
    Ok(())
}

//! High availability with the blocking client (amps-std): a publisher and a subscriber fail
//! over from one broker to another. The publisher's memory store replays what the first
//! broker had not acknowledged; the subscriber's handler subscription is re-entered on the
//! second broker.
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
use amps_std::{Command, ConnectionState, FixedDelay, HaClient};

const MESSAGES: u32 = 2_000;

fn ha(role: &str, uris: &[String]) -> Result<HaClient, amps_std::Error> {
    let c = HaClient::builder(client_name(role))
        .uris(uris.iter().cloned())
        .delay_strategy(
            FixedDelay::new(Duration::from_millis(100)).max_retry_time(Duration::from_secs(30)),
        )
        .memory_backed()
        .build()?;
    let who = role.to_owned();
    c.add_connection_state_listener(move |s| println!("  [{who}] {s:?}"));
    Ok(c)
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let (sub_state_tx, sub_state_rx) = mpsc::channel();
    subscriber.add_connection_state_listener(move |s| {
        let _ = sub_state_tx.send(s);
    });
    subscriber.connect_and_logon()?;
    let (tx, rx) = mpsc::channel();
    subscriber.execute_async(&Command::subscribe("prices"), move |m| {
        let _ = tx.send(String::from_utf8_lossy(m.data()).into_owned());
    })?;
    let publisher = ha("publisher", &uris)?;
    let (state_tx, state_rx) = mpsc::channel();
    publisher.add_connection_state_listener(move |s| {
        let _ = state_tx.send(s);
    });
    publisher.connect_and_logon()?;

    let wait = Duration::from_secs(30);
    let mut received = 0;
    let mut ticks = std::collections::BTreeSet::new();
    for i in 0..MESSAGES {
        if i == MESSAGES / 2
            && let Some(first) = brokers.first()
        {
            // What the first broker delivered is lost with it if the subscriber has not taken
            // it yet: wait for the first half before pulling the plug.
            while ticks.len() < i as usize {
                ticks.insert(rx.recv_timeout(wait)?);
                received += 1;
            }
            println!("shutting down the first broker after {i} messages");
            first.shutdown();
            // Wait until both clients lost the first broker and are back on the second
            // (publishing while disconnected works too: the store keeps the messages). The
            // channels also hold the states of the first connection, hence the two waits each.
            for states in [&state_rx, &sub_state_rx] {
                while states.recv_timeout(wait)? != ConnectionState::Disconnected {}
                while states.recv_timeout(wait)? != ConnectionState::Resubscribed {}
            }
            // Resubscribed means the subscription was sent again; once a flush comes back the
            // second broker has processed it, so the subscriber misses no later tick.
            subscriber.flush()?;
        }
        publisher.publish("prices", format!(r#"{{"tick":{i}}}"#))?;
    }
    publisher.publish_flush(wait)?;
    println!(
        "publisher done; unpersisted messages: {}",
        publisher.unpersisted_count()
    );

    while ticks.len() < MESSAGES as usize {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(tick) => {
                received += 1;
                ticks.insert(tick);
            }
            Err(_) => break,
        }
    }
    // A tick the first broker delivered but had not yet acknowledged as persisted is replayed
    // to the second one (the brokers do not replicate), so it can arrive twice.
    println!(
        "subscriber received {} distinct of {MESSAGES} ticks ({received} messages) across both \
         brokers",
        ticks.len()
    );
    if ticks.len() < MESSAGES as usize && !brokers.is_empty() {
        return Err(format!("{} ticks were lost", MESSAGES as usize - ticks.len()).into());
    }
    publisher.close()?;
    subscriber.close()?;
    Ok(())
}

//! Delta publish and delta subscribe, with the async client (amps-tokio): a delta publish
//! merges the fields it carries into the SOW record its key names, and a delta subscription
//! receives only the fields a publish changed (with the key), instead of the whole record.
//!
//! ```text
//! cargo run -p amps-examples --example delta
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example delta
//! ```
//!
//! Uses the SOW topic `orders` keyed by `/id` (the in-process broker has it) and the record
//! `delta-1`, which it deletes at the end.

use std::time::Duration;

use amps_examples::{client_name, server_async};
use amps_tokio::{Client, CommandKind, Message, MessageStream};

const TOPIC: &str = "orders";
const KEY_FILTER: &str = "/id = 'delta-1'";

async fn connect(uri: &str, role: &str) -> amps_tokio::Result<Client> {
    let client = Client::new(client_name(role))?;
    client.connect(uri).await?;
    client.logon().await?;
    Ok(client)
}

/// The next message of `stream`, or an error if none arrives within 10 s.
async fn next(stream: &mut MessageStream) -> Result<Message, Box<dyn std::error::Error>> {
    Ok(stream
        .recv_timeout(Duration::from_secs(10))
        .await?
        .ok_or("the stream ended")?)
}

/// The next delivery (skipping the group markers around a query's records).
async fn next_publish(stream: &mut MessageStream) -> Result<Message, Box<dyn std::error::Error>> {
    loop {
        let m = next(stream).await?;
        if m.command() == CommandKind::Publish {
            return Ok(m);
        }
    }
}

/// A delta must carry the changed field and leave out the unchanged ones.
fn check_delta(m: &Message, changed: &str, unchanged: &[&str]) -> Result<(), String> {
    let text = m.data_str().unwrap_or("");
    if !text.contains(changed) || unchanged.iter().any(|f| text.contains(f)) {
        return Err(format!(
            "expected a delta with {changed} and without {unchanged:?}, got {text}"
        ));
    }
    Ok(())
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server_async(amps_broker::Config::default()).await?;
    let trader = connect(&server.uri, "trader").await?;
    let blotter = connect(&server.uri, "blotter").await?;

    // The full record, published once.
    trader
        .publish(
            TOPIC,
            r#"{"id":"delta-1","sym":"MSFT","qty":100,"price":410.5,"status":"open"}"#,
        )
        .await?;
    trader.flush().await?;
    println!("published the full order delta-1");

    // A delta subscription, and a query + delta subscription: the current record in full,
    // then only changes.
    let mut changes = blotter.delta_subscribe(TOPIC, KEY_FILTER).await?;
    let mut view = blotter.sow_and_delta_subscribe(TOPIC, KEY_FILTER).await?;
    loop {
        let m = next(&mut view).await?;
        match m.command() {
            CommandKind::Sow => println!("  current record: {}", m.data_str().unwrap_or("")),
            CommandKind::GroupEnd => break,
            _ => {}
        }
    }

    // 1. A delta publish: only the fields it carries (with the key) change in the SOW.
    trader
        .delta_publish(TOPIC, r#"{"id":"delta-1","status":"filled"}"#)
        .await?;
    let m = next_publish(&mut changes).await?;
    println!(
        "delta publish of status -> delta subscriber got {}",
        m.data_str().unwrap_or("")
    );
    check_delta(&m, "filled", &["MSFT", "410.5"])?;
    let m = next_publish(&mut view).await?;
    check_delta(&m, "filled", &["MSFT", "410.5"])?;

    // 2. A full publish that changes one field: delta subscribers still get only that field.
    trader
        .publish(
            TOPIC,
            r#"{"id":"delta-1","sym":"MSFT","qty":150,"price":410.5,"status":"filled"}"#,
        )
        .await?;
    let m = next_publish(&mut changes).await?;
    println!(
        "full publish changing qty -> delta subscriber got {}",
        m.data_str().unwrap_or("")
    );
    check_delta(&m, "150", &["MSFT", "410.5", "filled"])?;
    let m = next_publish(&mut view).await?;
    check_delta(&m, "150", &["MSFT", "410.5", "filled"])?;

    // The SOW holds the merged record.
    let mut sow = blotter.sow(TOPIC, KEY_FILTER).await?;
    let mut record = None;
    while let Some(m) = sow.recv().await {
        let m = m?;
        if m.command() == CommandKind::Sow {
            record = Some(m.data_str().unwrap_or("").to_owned());
        }
    }
    let record = record.ok_or("the record is not in the SOW")?;
    println!("the SOW now holds {record}");
    if !(record.contains("MSFT") && record.contains("150") && record.contains("filled")) {
        return Err(format!("the merged record lost a field: {record}").into());
    }

    let deleted = trader.sow_delete(TOPIC, KEY_FILTER).await?;
    println!(
        "deleted the example's record ({} removed)",
        deleted.records_deleted().unwrap_or(0)
    );
    blotter.close().await?;
    trader.close().await?;
    Ok(())
}

//! Conflation with the async client (amps-tokio): a stream that keeps only the newest unread
//! message per SOW key, so a slow reader sees the latest price of each symbol instead of
//! working through every tick it missed. `MessageStream::conflate()` turns it on for a stream;
//! `StreamOptions { conflate: true, .. }` from the start (per command with `execute_with`, or
//! for every stream with the builder's `stream_options`).
//!
//! ```text
//! cargo run -p amps-examples --example conflation
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example conflation
//! ```
//!
//! Uses the SOW topic `orders` keyed by `/id` (the in-process broker has it): conflation needs
//! the SOW key the server puts on each message. Deletes its records at the end.

use amps_examples::{client_name, server_async};
use amps_tokio::{Client, Command, MessageStream, StreamOptions};

const TOPIC: &str = "orders";
const SYMBOLS: [&str; 3] = ["conf-MSFT", "conf-IBM", "conf-AAPL"];
const TICKS: u32 = 50;
const FILTER: &str = "/id LIKE '^conf-'";

async fn connect(uri: &str, role: &str) -> amps_tokio::Result<Client> {
    let client = Client::new(client_name(role))?;
    client.connect(uri).await?;
    client.logon().await?;
    Ok(client)
}

/// Every message waiting in `stream` (it holds `stream.len()` now).
async fn drain(stream: &mut MessageStream) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut got = Vec::new();
    for _ in 0..stream.len() {
        let m = stream.recv().await.ok_or("the stream ended")??;
        got.push(m.data_str().unwrap_or("").to_owned());
    }
    Ok(got)
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server_async(amps_broker::Config::default()).await?;
    let feed = connect(&server.uri, "price-feed").await?;
    let reader = connect(&server.uri, "slow-reader").await?;

    // Three subscriptions to the same prices: every tick, conflated, conflated from the start.
    let mut every = reader.subscribe(TOPIC, FILTER).await?;
    let mut latest = reader.subscribe(TOPIC, FILTER).await?.conflate();
    let mut latest_too = reader
        .execute_with(
            &Command::subscribe(TOPIC).filter(FILTER),
            StreamOptions {
                conflate: true,
                ..StreamOptions::default()
            },
        )
        .await?;

    // The feed ticks while the reader reads nothing: the slowest reader there is.
    for tick in 0..TICKS {
        for (i, sym) in SYMBOLS.iter().enumerate() {
            let price = 100 * (i as u32 + 1) + tick;
            feed.publish(
                TOPIC,
                format!(r#"{{"id":"{sym}","tick":{tick},"price":{price}}}"#),
            )
            .await?;
        }
    }
    // Once the feed's publishes are processed and the reader's flush comes back, every
    // delivery has reached the reader's streams.
    feed.flush().await?;
    reader.flush().await?;
    let published = TICKS as usize * SYMBOLS.len();
    println!(
        "published {published} ticks for {} symbols; waiting unread: every tick {}, conflated {}, \
         conflated from the start {}",
        SYMBOLS.len(),
        every.len(),
        latest.len(),
        latest_too.len()
    );

    let latest_prices = drain(&mut latest).await?;
    println!("the conflated stream holds the latest price per symbol:");
    for p in &latest_prices {
        println!("  {p}");
    }
    let last_tick = format!(r#""tick":{}"#, TICKS - 1);
    if latest_prices.len() != SYMBOLS.len() || !latest_prices.iter().all(|p| p.contains(&last_tick))
    {
        return Err(format!("expected the last tick of each symbol, got {latest_prices:?}").into());
    }
    if drain(&mut latest_too).await? != latest_prices {
        return Err("the two conflated streams differ".into());
    }
    let all = drain(&mut every).await?;
    println!("the plain stream held all {} ticks", all.len());
    if all.len() != published {
        return Err(format!("expected {published} ticks, got {}", all.len()).into());
    }

    // Conflation keeps working on what arrives later.
    feed.publish(TOPIC, r#"{"id":"conf-IBM","tick":50,"price":250}"#)
        .await?;
    feed.publish(TOPIC, r#"{"id":"conf-IBM","tick":51,"price":251}"#)
        .await?;
    feed.flush().await?;
    reader.flush().await?;
    let ibm = drain(&mut latest).await?;
    println!(
        "two more IBM ticks -> the conflated stream holds {}",
        ibm.join(", ")
    );
    if ibm.len() != 1 || !ibm[0].contains(r#""tick":51"#) {
        return Err(format!("expected IBM's tick 51 alone, got {ibm:?}").into());
    }

    let deleted = feed.sow_delete(TOPIC, FILTER).await?;
    println!(
        "deleted the example's records ({} removed)",
        deleted.records_deleted().unwrap_or(0)
    );
    reader.close().await?;
    feed.close().await?;
    Ok(())
}

//! Deleting State-of-the-World records with the async client (amps-tokio): by content
//! filter, by SOW keys, and by data (the record a message would update), each returning the
//! server's ack with its statistics (`records_deleted()`, `matches()`).
//!
//! ```text
//! cargo run -p amps-examples --example sow_delete
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example sow_delete
//! ```
//!
//! Uses the SOW topic `orders` keyed by `/id` (the in-process broker has it), records whose
//! id starts with `del-`, which it deletes at the end.

use amps_examples::{client_name, server_async};
use amps_tokio::{Client, CommandKind, ErrorKind, Message, Params};

const TOPIC: &str = "orders";
const MINE: &str = "/id LIKE '^del-'";

fn order(n: u32) -> String {
    let status = if n.is_multiple_of(2) {
        "open"
    } else {
        "filled"
    };
    format!(r#"{{"id":"del-{n}","qty":{},"status":"{status}"}}"#, n * 10)
}

/// The example's records now, ordered by id (a query's options go in `Params`).
async fn records(client: &Client) -> amps_tokio::Result<Vec<Message>> {
    let mut sow = client
        .sow(TOPIC, Params::filter(MINE).order_by("/id"))
        .await?;
    let mut out = Vec::new();
    while let Some(m) = sow.recv().await {
        let m = m?;
        if m.command() == CommandKind::Sow {
            out.push(m);
        }
    }
    Ok(out)
}

/// Print an ack's statistics and check how many records it deleted.
fn report(what: &str, ack: &Message, expected: u64) -> Result<(), String> {
    let deleted = ack.records_deleted().unwrap_or(0);
    println!(
        "{what}: records_deleted={deleted} matches={}",
        ack.matches().map_or("-".into(), |n| n.to_string())
    );
    if deleted != expected {
        return Err(format!(
            "{what}: expected {expected} deleted, got {deleted}"
        ));
    }
    Ok(())
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server_async(amps_broker::Config::default()).await?;
    let client = Client::new(client_name("sow-delete"))?;
    client.connect(&server.uri).await?;
    client.logon().await?;
    for n in 1..=8 {
        client.publish(TOPIC, order(n)).await?;
    }
    client.flush().await?;
    println!("stored 8 orders (del-1 .. del-8) in `{TOPIC}`");

    // 1. By filter: every record the filter matches.
    let ack = client
        .sow_delete(TOPIC, &format!("{MINE} AND /qty < 30"))
        .await?;
    report("by filter /qty < 30", &ack, 2)?;

    // 2. By keys: the SOW keys the records carry (here those of the filled orders).
    let keys: Vec<String> = records(&client)
        .await?
        .iter()
        .filter(|m| m.data_str().is_some_and(|d| d.contains("filled")))
        .filter_map(|m| m.sow_key().map(str::to_owned))
        .collect();
    let ack = client.sow_delete_by_keys(TOPIC, &keys.join(",")).await?;
    report(&format!("by {} keys", keys.len()), &ack, 3)?;

    // 3. By data: the record this message would update (the key fields are what count).
    let ack = client
        .sow_delete_by_data(TOPIC, r#"{"id":"del-4","qty":0}"#)
        .await?;
    report("by data {\"id\":\"del-4\"}", &ack, 1)?;

    let left: Vec<String> = records(&client)
        .await?
        .iter()
        .map(|m| m.data_str().unwrap_or("").to_owned())
        .collect();
    println!("left in the SOW: {}", left.join(", "));
    if left != [order(6), order(8)] {
        return Err(format!("expected del-6 and del-8 to be left, got {left:?}").into());
    }

    // A topic without a SOW: the server's failure, typed.
    match client.sow_delete("no-such-sow", "1=1").await {
        Err(e) if e.kind() == ErrorKind::InvalidTopic => {
            println!("sow_delete on a topic without a SOW: {e}");
        }
        other => return Err(format!("expected InvalidTopic, got {other:?}").into()),
    }

    let ack = client.sow_delete(TOPIC, MINE).await?;
    report("cleaning up", &ack, 2)?;
    client.close().await?;
    Ok(())
}

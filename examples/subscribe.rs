//! Subscribing with the blocking client (amps-std): a content-filtered `MessageStream`
//! iterated on the calling thread, and a message handler on the client's dispatch thread
//! (user guide: "Subscriptions", "Content filtering", "Asynchronous message processing").
//!
//! ```text
//! cargo run -p amps-examples --example subscribe
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example subscribe
//! ```
//!
//! Uses the topic `messages` (any topic works).

use std::sync::mpsc;
use std::time::Duration;

use amps_examples::{client_name, server};
use amps_std::Client;

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server(amps_broker::Config::default())?;
    let subscriber = Client::new(client_name("subscriber"))?;
    subscriber.connect(&server.uri)?;
    subscriber.logon()?;
    let publisher = Client::new(client_name("sender"))?;
    publisher.connect(&server.uri)?;
    publisher.logon()?;

    // A stream with a content filter: the server sends only messages from mom.
    let mut from_mom = subscriber.subscribe("messages", "/sender = 'mom'")?;
    println!("subscribed to `messages` with filter /sender = 'mom'");

    // A handler sees every message, on the dispatch thread.
    let (tx, rx) = mpsc::channel();
    let sub_id = subscriber.subscribe_with_handler("messages", None, move |m| {
        let _ = tx.send(String::from_utf8_lossy(m.data()).into_owned());
    })?;
    println!("handler subscription `{sub_id}` sees everything");

    let senders = ["mom", "dad", "mom", "sis", "mom"];
    for (i, sender) in senders.iter().enumerate() {
        publisher.publish(
            "messages",
            format!(r#"{{"sender":"{sender}","text":"message {i}"}}"#),
        )?;
    }

    for _ in 0..senders.iter().filter(|s| **s == "mom").count() {
        let m = from_mom.next().ok_or("the stream ended early")??;
        let data = m.data_str().unwrap_or("");
        println!("stream (filtered): {data}");
        if !data.contains(r#""sender":"mom""#) {
            return Err(format!("the filter let through {data}").into());
        }
    }
    let mut all = Vec::new();
    for _ in 0..senders.len() {
        let data = rx.recv_timeout(Duration::from_secs(10))?;
        println!("handler (all):     {data}");
        all.push(data);
    }
    // Both subscriptions got everything in order; once a flush comes back no late message can
    // still be on its way to the filtered stream.
    subscriber.flush()?;
    if !from_mom.is_empty() {
        return Err("the filtered stream got more than mom's messages".into());
    }
    let expected: Vec<String> = (0..senders.len()).map(|i| format!("message {i}")).collect();
    if !all
        .iter()
        .zip(&expected)
        .all(|(d, e)| d.contains(e.as_str()))
    {
        return Err(format!("the handler got {all:?}, out of order or not all").into());
    }

    subscriber.unsubscribe(&sub_id)?;
    drop(from_mom); // unsubscribes too
    println!("unsubscribed");
    subscriber.close()?;
    publisher.close()?;
    Ok(())
}

//! Errors and listeners with the blocking client (amps-std): every failure is one `Error`
//! whose `kind()` is matched (a bad filter, a bad topic regex, a refused logon, connection
//! errors), and what has no caller to return to goes to listeners: the exception listener (a
//! failing handler of `subscribe_with_handler`), the connection state listener, the
//! failed-write handler (a publish the server refused), the last-chance handler (a message
//! nothing else handles), and the same reports as events from `client.events()`. For a report
//! it also shows `client.uri()` (the password masked) and `client.server_version()`.
//!
//! ```text
//! cargo run -p amps-examples --example errors_and_listeners
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example errors_and_listeners
//! ```
//!
//! Uses the topics `orders`, `events` (transaction-logged) and `alerts`. The refused logon and
//! the refused publishes use the in-process broker's fault hooks, and are skipped with a
//! server named by `AMPS_URI`.

use std::sync::mpsc;
use std::time::Duration;

use amps_examples::{client_name, server};
use amps_std::{Client, ClientEvent, Command, ConnectionState, Error, ErrorKind};

const WAIT: Duration = Duration::from_secs(10);

/// What an application typically does with each kind.
fn advice(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::BadFilter | ErrorKind::BadRegexTopic | ErrorKind::InvalidTopic => {
            "fix the command"
        }
        ErrorKind::Authentication | ErrorKind::NotEntitled => "check the credentials",
        ErrorKind::ConnectionRefused | ErrorKind::Disconnected | ErrorKind::TimedOut => {
            "retry later (or let an HaClient do it)"
        }
        ErrorKind::InvalidUri | ErrorKind::TransportType | ErrorKind::InvalidTransportOptions => {
            "fix the connection string"
        }
        _ => "report it",
    }
}

/// Print an expected failure, and check it has the expected kind.
fn expect_kind<T>(what: &str, r: amps_std::Result<T>, kind: ErrorKind) -> Result<(), String> {
    match r {
        Ok(_) => Err(format!("{what}: expected {kind}, it succeeded")),
        Err(e) if e.kind() == kind => {
            let reason = e.reason().map_or(String::new(), |r| format!(" ({r})"));
            println!("  {what}: {}{reason} -> {}", e.kind(), advice(&e));
            Ok(())
        }
        Err(e) => Err(format!("{what}: expected {kind}, got {e}")),
    }
}

/// A port nothing listens on.
fn closed_port() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server(amps_broker::Config::default())?;

    // 1. Error kinds, matched.
    println!("errors, by kind:");
    let c = Client::new(client_name("errors"))?;
    expect_kind(
        "connect to nothing",
        c.connect(&format!("tcp://{}/amps/json", closed_port()?)),
        ErrorKind::ConnectionRefused,
    )?;
    expect_kind(
        "connect with a bad URI",
        c.connect("tcp://no-port"),
        ErrorKind::InvalidUri,
    )?;
    expect_kind(
        "publish before connecting",
        c.publish("orders", "{}"),
        ErrorKind::Disconnected,
    )?;
    c.connect(&server.uri)?;
    c.logon()?;
    // What to put in a report: where the client is connected (the password masked) and to
    // which server version.
    println!(
        "  connected to {} (server version {})",
        c.uri().unwrap_or_default(),
        c.server_version()
            .map_or_else(|| "unknown".to_owned(), |v| v.as_str().to_owned())
    );
    expect_kind(
        "bad filter",
        c.subscribe("orders", "/qty = = ("),
        ErrorKind::BadFilter,
    )?;
    expect_kind(
        "bad topic regex",
        c.subscribe("(unclosed", None),
        ErrorKind::BadRegexTopic,
    )?;
    expect_kind(
        "SOW query of a topic without a SOW",
        c.sow("alerts", None),
        ErrorKind::InvalidTopic,
    )?;
    c.close()?;
    if let Some(broker) = server.broker() {
        broker.faults(|f| f.refuse_logons = Some("authentication failed".into()));
        let refused = Client::new(client_name("intruder"))?;
        refused.connect(&server.uri)?;
        expect_kind("refused logon", refused.logon(), ErrorKind::Authentication)?;
        refused.close()?;
        broker.faults(|f| f.refuse_logons = None);
    }

    // 2. Listeners, set before connecting so they see everything.
    let client = Client::builder(client_name("listener"))
        .publish_store(amps_std::MemoryPublishStore::new(vec![0; 1 << 20], 1000))
        .build()?;
    let mut events = client.events();
    client.add_connection_state_listener(|s: ConnectionState| {
        println!("  [state listener] {s:?}");
    });
    let (exc_tx, exc_rx) = mpsc::channel();
    client.set_exception_listener(move |e| {
        println!("  [exception listener] {e}");
        let _ = exc_tx.send(e.kind());
    });
    let (fw_tx, fw_rx) = mpsc::channel();
    client.set_failed_write_handler(move |fw| {
        println!(
            "  [failed-write handler] publish #{} to `{}` refused: {} ({})",
            fw.seq(),
            fw.message().and_then(|m| m.topic()).unwrap_or("?"),
            fw.error().kind(),
            fw.error().reason().unwrap_or("-")
        );
        let _ = fw_tx.send(fw.seq());
    });
    let (lc_tx, lc_rx) = mpsc::channel();
    client.set_last_chance_message_handler(move |m| {
        println!(
            "  [last-chance handler] {:?} ({:?})",
            m.command(),
            m.ack_type()
        );
        let _ = lc_tx.send(());
    });
    println!("connecting with listeners:");
    client.connect(&server.uri)?;
    client.logon()?;

    // A message handler that fails: the error goes to the exception listener, the handler
    // keeps receiving.
    let (ok_tx, ok_rx) = mpsc::channel();
    client.subscribe_with_handler("alerts", None, move |m| {
        if m.data().starts_with(b"bad") {
            return Err(format!(
                "cannot handle {}",
                String::from_utf8_lossy(m.data())
            ));
        }
        let _ = ok_tx.send(());
        Ok(())
    })?;
    client.publish("alerts", "bad alert")?;
    client.publish("alerts", "good alert")?;
    let kind = exc_rx.recv_timeout(WAIT)?;
    ok_rx.recv_timeout(WAIT)?;
    println!(
        "  the handler's error reached the exception listener as {kind}; the next message was handled"
    );

    // A message nothing handles goes to the last-chance handler: here the acks of a publish
    // command that asked for a `processed` ack nobody waits for.
    client.publish_command(
        &Command::publish("alerts", b"good, acked").ack(amps_std::AckType::Processed),
    )?;
    lc_rx.recv_timeout(WAIT)?;

    if let Some(broker) = server.broker() {
        // A publish the server refuses: the failed-write handler gets it, with the stored copy.
        client.publish("events", r#"{"n":1}"#)?;
        client.publish_flush(WAIT)?;
        broker.faults(|f| f.fail_next_publish = Some("not entitled".into()));
        client.publish("events", r#"{"n":2}"#)?;
        let seq = fw_rx.recv_timeout(WAIT)?;
        println!("  publish #{seq} was refused; the store no longer holds it");
        client.publish_flush(WAIT)?;
    }
    client.close()?;

    // 3. The same reports as events, in order; the receiver ends once the client is closed.
    println!("events from client.events():");
    let mut errors = 0;
    for ev in events.by_ref() {
        match ev {
            ClientEvent::State(s) => println!("  state {s:?}"),
            ClientEvent::Error(e) => {
                errors += 1;
                println!("  error {e}");
            }
            ClientEvent::FailedWrite(fw) => println!("  failed write #{}", fw.seq()),
            ClientEvent::LastChance(m) => println!("  last chance {:?}", m.command()),
            ClientEvent::Lagged(n) => println!("  missed {n} events"),
            _ => println!("  {ev:?}"),
        }
    }
    if errors == 0 {
        return Err("the handler's error did not reach the event receiver".into());
    }
    Ok(())
}

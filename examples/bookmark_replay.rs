//! Transaction-log replay with the blocking client (amps-std): bookmark subscriptions from
//! EPOCH (everything the log holds, then live), from a bookmark taken from a message (what
//! came after it), and from NOW (only what comes next); then a file-backed bookmark store
//! (amps-fs, through the builder's `file_backed`) with which a subscriber restarted under the
//! same name resumes from MOST_RECENT: after the last message it discarded, with no gap; and a
//! memory bookmark store whose resume points a recovery-point adapter keeps in a SOW topic of
//! the server, so a restarted subscriber resumes with nothing on disk.
//!
//! ```text
//! cargo run -p amps-examples --example bookmark_replay
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example bookmark_replay
//! ```
//!
//! Needs the transaction-logged topic `events` and the SOW topic `/ADMIN/bookmark_store` keyed
//! by `/clientName` and `/subId` (the in-process broker is given it); the file stores live in
//! a temporary directory removed at the end. Every event carries the run's id and every
//! subscription filters on it, so messages of earlier runs in a server's log are left out.

use std::time::Duration;

use amps_broker::config::SowTopic;
use amps_examples::{client_name, server};
use amps_std::{
    Client, HaClient, MemoryBookmarkStore, Message, MessageStream, RECOVERY_TOPIC,
    RecoveryPointStore, SowRecoveryPointAdapter, bookmark,
};

const TOPIC: &str = "events";

fn connect(uri: &str, role: &str) -> amps_std::Result<Client> {
    let client = Client::new(client_name(role))?;
    client.connect(uri)?;
    client.logon()?;
    Ok(client)
}

/// The next message of `stream`, or an error if none arrives within 10 s.
fn next(stream: &mut MessageStream) -> Result<Message, Box<dyn std::error::Error>> {
    Ok(stream
        .recv_timeout(Duration::from_secs(10))?
        .ok_or("the stream ended")?)
}

/// Take `n` messages, printing each with its bookmark.
fn take(stream: &mut MessageStream, n: usize) -> Result<Vec<Message>, Box<dyn std::error::Error>> {
    let mut got = Vec::new();
    for _ in 0..n {
        let m = next(stream)?;
        println!(
            "    {}  (bookmark {})",
            m.data_str().unwrap_or(""),
            m.bookmark().unwrap_or("-")
        );
        got.push(m);
    }
    Ok(got)
}

fn event(n: u32) -> String {
    format!(r#"{{"run":{},"n":{n}}}"#, std::process::id())
}

/// Only this run's events.
fn this_run() -> String {
    format!("/run = {}", std::process::id())
}

fn expect(got: &[Message], want: std::ops::Range<u32>) -> Result<(), String> {
    let got: Vec<&str> = got.iter().map(|m| m.data_str().unwrap_or("")).collect();
    let want: Vec<String> = want.map(event).collect();
    if got == want {
        Ok(())
    } else {
        Err(format!("expected {want:?}, got {got:?}"))
    }
}

/// A subscriber with durable stores in `dir`: the same name and files after a restart.
fn durable_subscriber(
    name: &str,
    uri: &str,
    dir: &std::path::Path,
) -> Result<HaClient, amps_std::Error> {
    let client = HaClient::builder(name)
        .uris([uri])
        .file_backed(dir.join("publish"), dir.join("bookmarks.log"))?
        .build()?;
    client.connect_and_logon()?;
    Ok(client)
}

/// A subscriber whose resume points `keeper` keeps in the server's recovery topic: its own
/// bookmark store is in memory and starts empty on every run.
fn recovering_subscriber(name: &str, uri: &str, keeper: &Client) -> amps_std::Result<Client> {
    let adapter = SowRecoveryPointAdapter::new(keeper, name)?;
    let store = RecoveryPointStore::new(MemoryBookmarkStore::<_>::new(vec![0; 1 << 16]), adapter)?;
    let client = Client::builder(name).bookmark_store(store).build()?;
    client.connect(uri)?;
    client.logon()?;
    Ok(client)
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = amps_broker::Config::default();
    config.sow.push(SowTopic {
        topic: RECOVERY_TOPIC.into(),
        key: vec!["/clientName".into(), "/subId".into()],
        logged: false,
        expiration: Default::default(),
        message_type: Default::default(),
    });
    let server = server(config)?;
    let filter = this_run();
    let filter = Some(filter.as_str());
    let publisher = connect(&server.uri, "recorder")?;
    for n in 0..5 {
        publisher.publish(TOPIC, event(n))?;
    }
    publisher.flush()?;
    println!("published events 0..5 to the transaction-logged topic `{TOPIC}`");

    // 1. From EPOCH: the whole log, then live messages on the same stream.
    let reader = connect(&server.uri, "reader")?;
    let mut all = reader.bookmark_subscribe(TOPIC, bookmark::EPOCH, filter, None)?;
    println!("from EPOCH (replay):");
    let replayed = take(&mut all, 5)?;
    expect(&replayed, 0..5)?;
    publisher.publish(TOPIC, event(5))?;
    println!("from EPOCH (live):");
    expect(&take(&mut all, 1)?, 5..6)?;

    // 2. From a bookmark: what came after the message that carried it.
    let third = &replayed[2];
    let mark = third
        .bookmark()
        .ok_or("a replayed message has a bookmark")?;
    println!("from the bookmark of {}:", third.data_str().unwrap_or(""));
    let mut after = reader.bookmark_subscribe(TOPIC, mark, filter, None)?;
    expect(&take(&mut after, 3)?, 3..6)?;
    drop(after);

    // 3. From NOW: nothing old, only what is published next.
    let mut fresh = reader.bookmark_subscribe(TOPIC, bookmark::NOW, filter, None)?;
    publisher.publish(TOPIC, event(6))?;
    println!("from NOW:");
    expect(&take(&mut fresh, 1)?, 6..7)?;
    drop(fresh);
    drop(all);
    reader.close()?;

    // 4. A durable bookmark store: MOST_RECENT resumes after the last discarded message.
    let dir = tempfile::tempdir()?;
    let name = client_name("audit");
    let audit = durable_subscriber(&name, &server.uri, dir.path())?;
    // With an empty store MOST_RECENT means EPOCH. A stable sub_id names the subscription
    // in the store across restarts.
    let mut s = audit.bookmark_subscribe(TOPIC, bookmark::MOST_RECENT, filter, Some("audit"))?;
    println!("durable subscriber, first run (processes and discards events 0..4):");
    for _ in 0..4 {
        let m = next(&mut s)?;
        println!("    processed {}", m.data_str().unwrap_or(""));
        m.discard()?;
    }
    drop(s);
    audit.close()?; // syncs the stores: a crash loses nothing either (the store's fsync policy)
    println!("subscriber stopped; meanwhile two more events are published");
    for n in 7..9 {
        publisher.publish(TOPIC, event(n))?;
    }
    publisher.flush()?;

    let audit = durable_subscriber(&name, &server.uri, dir.path())?;
    let mut s = audit.bookmark_subscribe(TOPIC, bookmark::MOST_RECENT, filter, Some("audit"))?;
    println!("durable subscriber, after the restart (MOST_RECENT):");
    let resumed = take(&mut s, 5)?;
    expect(&resumed, 4..9)?;
    for m in &resumed {
        m.discard()?;
    }
    drop(s);
    audit.prune()?;
    audit.close()?;
    println!("resumed at event 4: no gap, nothing processed twice");

    // 5. A memory store with recovery points kept by the server: another client (`keeper`,
    //    never the tracked one) writes each subscription's resume point to RECOVERY_TOPIC.
    let keeper = connect(&server.uri, "keeper")?;
    let name = client_name("ledger");
    let ledger = recovering_subscriber(&name, &server.uri, &keeper)?;
    let mut s = ledger.bookmark_subscribe(TOPIC, bookmark::MOST_RECENT, filter, Some("ledger"))?;
    println!("memory store + recovery points, first run (processes and discards events 0..6):");
    for _ in 0..6 {
        let m = next(&mut s)?;
        println!("    processed {}", m.data_str().unwrap_or(""));
        m.discard()?;
    }
    drop(s);
    // Hands the last resume point to the adapter; the keeper's flush makes sure the server
    // stored it before this process "ends".
    ledger.sync_stores()?;
    keeper.flush()?;
    ledger.close()?;
    let ledger = recovering_subscriber(&name, &server.uri, &keeper)?;
    let mut s = ledger.bookmark_subscribe(TOPIC, bookmark::MOST_RECENT, filter, Some("ledger"))?;
    println!("after the restart, with an empty memory store (MOST_RECENT from the adapter):");
    let resumed = take(&mut s, 3)?;
    expect(&resumed, 6..9)?;
    drop(s);
    ledger.close()?;
    keeper.close()?;
    println!("resumed at event 6 from the recovery point the server kept");
    publisher.close()?;
    Ok(())
}

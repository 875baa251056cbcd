//! Heartbeats (docs/protocol.md §9, V10) over TCP. Timing itself is pinned by the engine tests
//! with a virtual clock; here short intervals and waits on the events themselves.

mod common;

use amps_core::codec::{AckType, Command, CommandKind};
use common::*;

#[test]
fn v10_start_then_server_heartbeat_then_beat() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "hb");
    c.send_raw(&vector("0000001f", r#"{"c":"heartbeat","o":"start,5"}"#));
    c.send_raw(&vector("0000001c", r#"{"c":"heartbeat","o":"beat"}"#));
    let f = c.recv();
    let mut wire = (f.body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&f.body);
    assert_eq!(
        wire,
        [
            0x00, 0x00, 0x00, 0x11, 0x7b, 0x22, 0x63, 0x22, 0x3a, 0x22, 0x68, 0x65, 0x61, 0x72,
            0x74, 0x62, 0x65, 0x61, 0x74, 0x22, 0x7d
        ]
    );
}

#[test]
fn server_beats_every_interval_and_drops_a_silent_client() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "hb");
    c.send(&Command::new(CommandKind::Heartbeat).options("start,100ms"));
    let frames = c.expect_close();
    // Beats at 100 ms and 200 ms, close at 300 ms (2 intervals after the first beat).
    assert!(frames.len() >= 2, "{frames:?}");
    assert!(frames.iter().all(|f| f.c() == "heartbeat"));
}

#[test]
fn a_client_that_answers_stays_connected() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "hb");
    // A generous interval: the client must answer within 2N even on a loaded CI machine.
    c.send(&Command::new(CommandKind::Heartbeat).options("start,700ms"));
    // Answer three server beats; each answer is itself answered by a beat (§9, observed).
    let mut beats = 0;
    while beats < 3 {
        let f = c.recv();
        assert_eq!(f.c(), "heartbeat");
        beats += 1;
        c.send(&Command::heartbeat_beat());
    }
    c.send(&Command::heartbeat_stop());
    let rest = c.drain();
    assert!(rest.iter().all(|f| f.c() == "heartbeat"));
    assert_eq!(b.inspect(|e| e.connection_count()).unwrap(), 1);
}

#[test]
fn heartbeat_acks_and_bad_options() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "hb");
    c.send(
        &Command::heartbeat_start(30)
            .command_id("h")
            .ack(AckType::Received)
            .ack(AckType::Processed)
            .ack(AckType::Completed),
    );
    assert!(c.recv().is_ack("received"));
    assert!(c.recv().is_ack("processed"));
    assert!(
        c.drain().is_empty(),
        "completed is not supported for heartbeat (§5.3)"
    );
    let f = c.request(&Command::heartbeat_beat().options("sometimes"));
    assert_eq!(f.reason(), Some("invalid options"));
}

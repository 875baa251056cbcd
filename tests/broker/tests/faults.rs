//! Fault hooks reached through `ServerHandle` over TCP.

mod common;

use std::time::Instant;

use amps_core::Duration;
use amps_core::codec::{AckType, Command, CommandKind};
use common::*;

#[test]
fn kill_connections_closes_everyone_now() {
    let b = broker();
    let mut a = Client::logon(b.local_addr(), "a");
    let mut c = Client::logon(b.local_addr(), "c");
    b.kill_connections();
    assert!(a.expect_close().is_empty());
    assert!(c.expect_close().is_empty());
    let _again = Client::logon(b.local_addr(), "a");
}

#[test]
fn close_after_n_frames() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    b.faults(|f| f.close_after(2));
    c.send(
        &Command::publish("t", b"1")
            .command_id("1")
            .ack(AckType::Processed),
    );
    assert!(c.recv().ok());
    c.send(
        &Command::publish("t", b"2")
            .command_id("2")
            .ack(AckType::Processed),
    );
    assert!(
        c.expect_close().is_empty(),
        "the second frame's reply is dropped with the link"
    );
}

#[test]
fn fail_next_publish_with_a_reason() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "s");
    s.subscribe("t", "s", None);
    let mut c = Client::logon(b.local_addr(), "c");
    b.faults(|f| f.fail_next_publish = Some("not entitled".into()));
    let f = c.request(&Command::publish("t", b"1"));
    assert_eq!(f.reason(), Some("not entitled"));
    assert!(c.request(&Command::publish("t", b"2")).ok());
    let got = s.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data(), b"2");
}

#[test]
fn refuse_logons_then_accept_again() {
    let b = broker();
    b.faults(|f| f.refuse_logons = Some("authentication failed".into()));
    let mut c = Client::connect(b.local_addr());
    c.send(&Command::logon("x").command_id("1"));
    let frames = c.expect_close();
    assert_eq!(frames[0].reason(), Some("authentication failed"));
    b.faults(|f| f.refuse_logons = None);
    let _ok = Client::logon(b.local_addr(), "x");
}

#[test]
fn delayed_acks_arrive_late_and_in_order() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    b.faults(|f| f.delay_acks = Some(Duration::from_millis(150)));
    let start = Instant::now();
    c.send(
        &Command::publish("t", b"1")
            .command_id("1")
            .ack(AckType::Processed),
    );
    c.send(
        &Command::publish("t", b"2")
            .command_id("2")
            .ack(AckType::Processed),
    );
    assert_eq!(c.recv().s("cid"), Some("1"));
    assert!(start.elapsed() >= std::time::Duration::from_millis(150));
    assert_eq!(c.recv().s("cid"), Some("2"));
}

#[test]
fn withheld_acks_never_arrive_but_deliveries_do() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    c.subscribe("self", "me", None);
    b.faults(|f| f.withhold_acks = true);
    c.send(
        &Command::publish("t", b"1")
            .command_id("1")
            .ack(AckType::Processed),
    );
    c.publish("self", "barrier");
    let f = c.recv();
    assert_eq!(f.data(), b"barrier", "the ack was withheld: {f:?}");
    b.faults(|f| f.withhold_acks = false);
    assert!(c.drain().is_empty());
}

#[test]
fn heartbeats_off_stops_answering() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    c.subscribe("self", "me", None);
    b.faults(|f| f.heartbeats_off = true);
    c.send(&Command::new(CommandKind::Heartbeat).options("start,20ms"));
    c.send(&Command::heartbeat_beat());
    c.publish("self", "barrier");
    let f = c.recv();
    assert_eq!(f.c(), "p", "no heartbeat answer: {f:?}");
}

#[test]
fn restart_keeps_sow_and_drops_connections() {
    let b = broker();
    let mut p = Client::logon(b.local_addr(), "p");
    p.publish("orders", r#"{"id":"R1"}"#);
    p.drain();
    b.restart();
    assert!(p.expect_close().is_empty());
    let mut q = Client::logon(b.local_addr(), "q");
    q.send(&Command::sow("orders").command_id("s"));
    let (before, _) = q.recv_until(|f| f.c() == "group_end");
    assert_eq!(before.len(), 2);
    assert_eq!(before[1].c(), "sow");
}

#[test]
fn control_lines_reach_the_engine() {
    let b = broker();
    assert!(b.control("bogus").is_err());
    b.control("fail-next-publish invalid topic").unwrap();
    let mut c = Client::logon(b.local_addr(), "c");
    assert_eq!(
        c.request(&Command::publish("t", b"x")).reason(),
        Some("invalid topic")
    );
    b.control("restart").unwrap();
    assert!(c.expect_close().is_empty());
}

#[test]
fn close_one_client_by_name() {
    let b = broker();
    let mut a = Client::logon(b.local_addr(), "keep");
    let mut c = Client::logon(b.local_addr(), "drop-me");
    b.control("close-client drop-me").unwrap();
    assert!(c.expect_close().is_empty());
    assert!(a.drain().is_empty());
    let names = b.inspect(|e| e.connections()).unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].1.as_deref(), Some("keep"));
}

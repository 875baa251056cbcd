//! Item 3, MessageStream: bounded by default with a named overflow policy (block, drop oldest,
//! slow consumer), client-side conflation by SOW key, close, and the end with an error after a
//! disconnect once drained.

mod common;

use amps_std::{CommandKind, ErrorKind, OverflowPolicy};
use common::*;

fn publish_n(p: &amps_std::Client, topic: &str, n: usize) {
    for i in 0..n {
        p.publish(topic, format!("m{i}")).unwrap();
    }
    p.flush().unwrap();
}

fn drain(s: &mut amps_std::MessageStream, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| s.recv_timeout(GUARD).unwrap().unwrap().data().into_owned())
        .collect()
}

#[test]
fn block_policy_holds_back_input_and_loses_nothing() {
    let b = broker();
    let c = client(&b, "blk");
    let p = client(&b, "blkp");
    c.set_stream_limits(8, OverflowPolicy::Block);
    let mut s = c.subscribe("flow", None).unwrap();
    publish_n(&p, "flow", 500);
    // The stream holds at most 8; the rest waits on the connection.
    let got = drain(&mut s, 500);
    assert_eq!(got, (0..500).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert!(s.len() <= 8);
    c.close();
    p.close();
}

#[test]
fn drop_oldest_keeps_the_newest() {
    let b = broker();
    let c = client(&b, "old");
    let p = client(&b, "oldp");
    c.set_stream_limits(10, OverflowPolicy::DropOldest);
    let mut s = c.subscribe("flow", None).unwrap();
    publish_n(&p, "flow", 100);
    // The flush ack follows every delivery of the messages published before it.
    c.flush().unwrap();
    assert_eq!(s.len(), 10);
    assert_eq!(
        drain(&mut s, 10),
        (90..100).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    c.close();
    p.close();
}

#[test]
fn slow_consumer_policy_ends_the_stream_with_an_error() {
    let b = broker();
    let c = client(&b, "slow");
    let p = client(&b, "slowp");
    c.set_stream_limits(10, OverflowPolicy::SlowConsumer);
    let mut s = c.subscribe("flow", None).unwrap();
    publish_n(&p, "flow", 100);
    c.flush().unwrap();
    assert_eq!(drain(&mut s, 10).len(), 10);
    let e = s.next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert!(s.next().is_none());
    c.close();
    p.close();
}

#[test]
fn conflation_keeps_the_latest_per_sow_key() {
    let b = broker();
    let c = client(&b, "conf");
    let p = client(&b, "confp");
    let s = c.subscribe("orders", None).unwrap().conflate();
    for round in 0..50 {
        for id in ["K1", "K2", "K3"] {
            p.publish("orders", format!(r#"{{"id":"{id}","v":{round}}}"#))
                .unwrap();
        }
    }
    p.flush().unwrap();
    c.flush().unwrap();
    let mut s = s;
    let n = s.len();
    let got = drain(&mut s, n);
    assert_eq!(
        got,
        [
            r#"{"id":"K1","v":49}"#,
            r#"{"id":"K2","v":49}"#,
            r#"{"id":"K3","v":49}"#
        ]
    );
    c.close();
    p.close();
}

#[test]
fn a_stream_ends_with_an_error_after_a_disconnect_once_drained() {
    let b = broker();
    let c = client(&b, "disc");
    let p = client(&b, "discp");
    let mut s = c.subscribe("flow", None).unwrap();
    let mut q = c.sow("orders", None).unwrap();
    publish_n(&p, "flow", 3);
    c.flush().unwrap();
    b.kill_connections();
    assert_eq!(drain(&mut s, 3), ["m0", "m1", "m2"]);
    let e = s.next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert!(s.next().is_none());
    // A completed query ended normally before the disconnect.
    let kinds: Vec<_> = q.by_ref().map(|m| m.unwrap().command()).collect();
    assert_eq!(kinds, [CommandKind::GroupBegin, CommandKind::GroupEnd]);
    c.close();
    p.close();
}

#[test]
fn close_drops_what_is_queued_and_ends_iteration() {
    let b = broker();
    let c = client(&b, "close");
    let p = client(&b, "closep");
    let mut s = c.subscribe("flow", None).unwrap();
    publish_n(&p, "flow", 5);
    c.flush().unwrap();
    assert_eq!(s.len(), 5);
    s.close();
    assert!(s.is_empty());
    assert!(s.next().is_none());
    s.close();
    c.close();
    p.close();
}

#[test]
fn a_full_stream_does_not_get_the_client_disconnected_or_block_close() {
    use amps_std::ConnectionState as CS;
    use std::sync::mpsc;
    use std::time::Duration;
    let b = broker();
    let c = amps_std::Client::new(&name("full"));
    c.set_heartbeat(1, Duration::from_secs(2)).unwrap();
    let (st_tx, st_rx) = mpsc::channel();
    c.add_connection_state_listener(move |s| {
        let _ = st_tx.send(s);
    });
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    c.set_stream_limits(4, OverflowPolicy::Block);
    let p = client(&b, "fullp");
    let mut s = c.subscribe("flow", None).unwrap();
    publish_n(&p, "flow", 100);
    // The consumer is away for longer than the heartbeat timeout; the I/O thread holds the
    // rest of the input but the connection stays alive.
    std::thread::sleep(Duration::from_millis(3_500));
    assert_eq!(drain(&mut s, 100).len(), 100);
    let states: Vec<_> = st_rx.try_iter().collect();
    assert!(!states.contains(&CS::Disconnected), "{states:?}");
    // Full again, and never consumed: close() still returns.
    let _idle = c.subscribe("flow2", None).unwrap();
    publish_n(&p, "flow2", 100);
    let (done_tx, done_rx) = mpsc::channel();
    let c2 = c.clone();
    std::thread::spawn(move || {
        c2.close();
        let _ = done_tx.send(());
    });
    recv(&done_rx, "close() with a full stream");
    p.close();
}

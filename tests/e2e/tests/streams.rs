//! Message streams: the overflow policies (block, drop oldest, slow consumer), conflation, the
//! byte bound on received messages, the end after a disconnect, close, messages nobody
//! handles, an oversized frame, and closing a client whose stream is full.

use std::sync::mpsc;
use std::time::Duration;

use amps_e2e::*;
use amps_host::{
    ClientEvent, Command, CommandKind, ConnectionState as CS, ErrorKind, OverflowPolicy,
};

fn publish_n<A: Api>(p: &A, topic: &str, n: usize) {
    for i in 0..n {
        p.publish(topic, format!("m{i}")).unwrap();
    }
    p.flush().unwrap();
}

fn drain<S: Strm>(s: &mut S, n: usize) -> Vec<String> {
    (0..n).map(|_| text(&s.next_msg())).collect()
}

fn block_policy_holds_back_input_and_loses_nothing<A: Api>() {
    let b = broker();
    let c: A = client(&b, "blk");
    let p: A = client(&b, "blkp");
    let mut s = c
        .execute_with(&Command::subscribe("flow"), opts(8, OverflowPolicy::Block))
        .unwrap();
    publish_n(&p, "flow", 500);
    let got = drain(&mut s, 500);
    assert_eq!(got, (0..500).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert!(s.len() <= 8);
    c.close().unwrap();
    p.close().unwrap();
}

fn drop_oldest_keeps_the_newest<A: Api>() {
    let b = broker();
    let c: A = client(&b, "old");
    let p: A = client(&b, "oldp");
    let mut s = c
        .execute_with(
            &Command::subscribe("flow"),
            opts(10, OverflowPolicy::DropOldest),
        )
        .unwrap();
    publish_n(&p, "flow", 100);
    c.flush().unwrap();
    assert_eq!(s.len(), 10);
    assert_eq!(s.dropped_count(), 90);
    assert_eq!(
        drain(&mut s, 10),
        (90..100).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    c.close().unwrap();
    p.close().unwrap();
}

fn slow_consumer_policy_ends_the_stream_with_an_error<A: Api>() {
    let b = broker();
    let c: A = client(&b, "slow");
    let p: A = client(&b, "slowp");
    let mut s = c
        .execute_with(
            &Command::subscribe("flow"),
            opts(10, OverflowPolicy::SlowConsumer),
        )
        .unwrap();
    publish_n(&p, "flow", 100);
    c.flush().unwrap();
    assert_eq!(drain(&mut s, 10).len(), 10);
    let e = s.next_item().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert!(s.next_item().is_none());
    c.close().unwrap();
    p.close().unwrap();
}

fn conflation_keeps_the_latest_per_sow_key<A: Api>() {
    let b = broker();
    let c: A = client(&b, "conf");
    let p: A = client(&b, "confp");
    let mut s = c.subscribe("orders", None).unwrap().conflate();
    for round in 0..50 {
        for id in ["K1", "K2", "K3"] {
            p.publish("orders", format!(r#"{{"id":"{id}","v":{round}}}"#))
                .unwrap();
        }
    }
    p.flush().unwrap();
    c.flush().unwrap();
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
    c.close().unwrap();
    p.close().unwrap();
}

fn received_bytes_stay_under_the_client_bound<A: Api>() {
    const BOUND: usize = 4 << 20;
    const BIG: usize = 256 * 1024;
    let b = broker();
    let c = A::build(A::builder("bytes").receive_bytes(BOUND));
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let p: A = client(&b, "bytesp");
    let body = vec![b'x'; BIG];
    // An unread stream with the default capacity (10 000 messages) and policy (Block): the
    // client holds what fits in its bound, the rest waits in the network.
    let mut blocked = c.subscribe("flood", None).unwrap();
    for _ in 0..40 {
        p.publish("flood", &body).unwrap();
    }
    p.flush().unwrap();
    let (used, limit) = c.received_bytes();
    assert_eq!(limit, BOUND);
    assert!(used <= BOUND, "{used} bytes held, bound {BOUND}");
    assert!(blocked.len() < 40, "not everything fits: {}", blocked.len());
    // Reading makes room: everything still arrives, in order, nothing lost.
    for _ in 0..40 {
        assert_eq!(blocked.next_msg().data().len(), BIG);
        let (used, _) = c.received_bytes();
        assert!(used <= BOUND, "{used} bytes held while draining");
    }
    blocked.close();
    // DropOldest at the byte bound: the newest are kept, the count says what was dropped.
    let mut dropping = c
        .execute_with(
            &Command::subscribe("flood2"),
            opts(10_000, OverflowPolicy::DropOldest),
        )
        .unwrap();
    for _ in 0..40 {
        p.publish("flood2", &body).unwrap();
    }
    p.flush().unwrap();
    c.flush().unwrap();
    let (used, _) = c.received_bytes();
    assert!(used <= BOUND, "{used} bytes held, bound {BOUND}");
    assert_eq!(dropping.len() + dropping.dropped_count() as usize, 40);
    assert!(dropping.dropped_count() > 0);
    dropping.close();
    assert_eq!(c.received_bytes().0, 0, "closed streams hold nothing");
    c.close().unwrap();
    p.close().unwrap();
}

fn a_stream_ends_with_an_error_after_a_disconnect_once_drained<A: Api>() {
    let b = broker();
    let c: A = client(&b, "disc");
    let p: A = client(&b, "discp");
    let mut s = c.subscribe("flow", None).unwrap();
    let mut q = c.sow("orders", None).unwrap();
    publish_n(&p, "flow", 3);
    c.flush().unwrap();
    b.kill_connections();
    assert_eq!(drain(&mut s, 3), ["m0", "m1", "m2"]);
    let e = s.next_item().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert!(s.next_item().is_none());
    let kinds: Vec<_> = q.collect_all().iter().map(|m| m.command()).collect();
    assert_eq!(kinds, [CommandKind::GroupBegin, CommandKind::GroupEnd]);
    c.close().unwrap();
    p.close().unwrap();
}

fn close_drops_what_is_queued_and_ends_iteration<A: Api>() {
    let b = broker();
    let c: A = client(&b, "close");
    let p: A = client(&b, "closep");
    let mut s = c.subscribe("flow", None).unwrap();
    publish_n(&p, "flow", 5);
    c.flush().unwrap();
    assert_eq!(s.len(), 5);
    s.close();
    assert!(s.is_empty());
    assert!(s.next_item().is_none());
    s.close();
    c.close().unwrap();
    p.close().unwrap();
}

fn a_full_stream_does_not_get_the_client_disconnected_or_block_close<A: Api>() {
    let b = broker();
    let c = A::build(
        A::builder("full")
            .heartbeat(Duration::from_secs(1), Duration::from_secs(2))
            .stream_options(opts(4, OverflowPolicy::Block)),
    );
    let st_rx = states(&c);
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    until(&st_rx, CS::HeartbeatInitiated);
    let p: A = client(&b, "fullp");
    let mut s = c.subscribe("flow", None).unwrap();
    publish_n(&p, "flow", 100);
    // Longer than the heartbeat timeout while the stream is full: heartbeats still flow.
    quiet(
        &st_rx,
        Duration::from_millis(3_500),
        "state change while a stream is full",
    );
    assert_eq!(drain(&mut s, 100).len(), 100);
    // Close while another stream is full.
    let _idle = c.subscribe("flow2", None).unwrap();
    publish_n(&p, "flow2", 100);
    let (done_tx, done_rx) = mpsc::channel();
    let c2 = c.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(c2.close());
    });
    recv(&done_rx, "close() with a full stream").unwrap();
    assert_eq!(c.state(), CS::Shutdown);
    assert_eq!(
        c.publish("t", "x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    p.close().unwrap();
}

fn unroutable_messages_go_to_the_last_chance_handler<A: Api>() {
    let b = broker();
    let c: A = client(&b, "lc");
    let mut events = c.events();
    let (tx, rx) = mpsc::channel();
    c.set_last_chance_message_handler(move |m| {
        let _ = tx.send(m.topic().map(str::to_owned));
    });
    let s = c
        .execute_with(&Command::subscribe("lc"), opts(1, OverflowPolicy::Block))
        .unwrap();
    let p: A = client(&b, "lcp");
    publish_n(&p, "lc", 3);
    let t0 = std::time::Instant::now();
    while s.is_empty() {
        assert!(t0.elapsed() < GUARD, "nothing arrived");
        std::thread::yield_now();
    }
    // Messages in flight for a dropped stream reach nobody but the last-chance handler.
    drop(s);
    assert_eq!(recv(&rx, "last chance").as_deref(), Some("lc"));
    let e = events.wait_for(|e| matches!(e, ClientEvent::LastChance(_)));
    assert!(matches!(e, ClientEvent::LastChance(m) if m.topic() == Some("lc")));
    c.flush().unwrap();
    c.close().unwrap();
}

fn an_oversized_frame_is_a_stream_error_not_a_hang<A: Api>() {
    let b = broker();
    let limits = amps_host::Limits {
        max_frame: 64 * 1024,
        rx_bytes: 64 * 1024 + 4,
        ..amps_host::Limits::default()
    };
    let c = A::build(A::builder("small").limits(limits));
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let mut events = c.events();
    let mut s = c.subscribe("big", None).unwrap();
    let p: A = client(&b, "p");
    p.publish("big", vec![b'x'; 200 * 1024]).unwrap();
    events.wait_for(|e| matches!(e, ClientEvent::Error(e) if e.kind() == ErrorKind::Stream));
    let end = s.next_item().unwrap();
    assert_eq!(end.unwrap_err().kind(), ErrorKind::Disconnected);
    c.close().unwrap();
}

suite!(
    block_policy_holds_back_input_and_loses_nothing,
    drop_oldest_keeps_the_newest,
    slow_consumer_policy_ends_the_stream_with_an_error,
    conflation_keeps_the_latest_per_sow_key,
    received_bytes_stay_under_the_client_bound,
    a_stream_ends_with_an_error_after_a_disconnect_once_drained,
    close_drops_what_is_queued_and_ends_iteration,
    a_full_stream_does_not_get_the_client_disconnected_or_block_close,
    unroutable_messages_go_to_the_last_chance_handler,
    an_oversized_frame_is_a_stream_error_not_a_hang,
);

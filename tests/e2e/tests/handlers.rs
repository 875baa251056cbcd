//! Handlers on the dispatch thread (callbacks into the client, slow handlers and heartbeats),
//! the exception listener (errors and panics), the last-chance and failed-write handlers and
//! events, the disconnect handler, heartbeats, the transport filter.

use std::sync::mpsc;
use std::time::Duration;

use amps_e2e::*;
use amps_host::{
    ClientEvent, Command, CommandKind, ConnectionState as CS, Direction, ErrorKind,
    MemoryPublishStore,
};

fn a_handler_may_call_back_into_its_own_client<A: Api>() {
    let b = broker();
    let c: A = client(&b, "reent");
    let p: A = client(&b, "reentp");
    let (tx, rx) = mpsc::channel();
    let c2 = c.clone();
    c.execute_async(
        &Command::subscribe("requests"),
        move |m| -> amps_host::Result<()> {
            // Commands that wait for acks, from the dispatch thread: the connection's loop
            // processes the acks meanwhile.
            c2.flush()?;
            let stream = c2.subscribe("side", None)?;
            c2.publish("replies", m.data())?;
            let records = c2.sow("orders", None)?.collect_all().len();
            let _ = tx.send((stream.sub_id(), records));
            Ok(())
        },
    )
    .unwrap();
    let mut replies = p.subscribe("replies", None).unwrap();
    p.publish("requests", "ping").unwrap();
    let (sub_id, records) = recv(&rx, "handler done");
    assert!(!sub_id.is_empty());
    assert_eq!(records, 2, "group_begin and group_end of an empty SOW");
    assert_eq!(text(&replies.next_msg()), "ping");
    c.close().unwrap();
    p.close().unwrap();
}

fn a_slow_handler_does_not_get_the_client_disconnected<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("slowh"));
    c.set_heartbeat(Duration::from_secs(1), Duration::from_secs(2))
        .unwrap();
    let st_rx = states(&c);
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    assert_eq!(recv(&st_rx, "Connected"), CS::Connected);
    assert_eq!(recv(&st_rx, "LoggedOn"), CS::LoggedOn);
    assert_eq!(recv(&st_rx, "HeartbeatInitiated"), CS::HeartbeatInitiated);
    let p: A = client(&b, "slowhp");
    let (tx, rx) = mpsc::channel();
    c.execute_async(&Command::subscribe("work"), move |m| {
        if m.data() == b"slow" {
            // Longer than the heartbeat timeout (2 s) and the server's silence limit (2N).
            std::thread::sleep(Duration::from_millis(3_500));
        }
        let _ = tx.send(text(m));
    })
    .unwrap();
    p.publish("work", "slow").unwrap();
    p.publish("work", "next").unwrap();
    assert_eq!(recv(&rx, "slow"), "slow");
    assert_eq!(recv(&rx, "next"), "next");
    // Still the same connection: no state change, commands work.
    assert!(st_rx.try_recv().is_err(), "the connection never dropped");
    assert!(c.is_logged_on());
    c.flush().unwrap();
    c.close().unwrap();
    p.close().unwrap();
}

fn handler_errors_and_panics_reach_the_exception_listener_and_events<A: Api>() {
    let b = broker();
    let c: A = client(&b, "exc");
    let p: A = client(&b, "excp");
    let mut events = c.events();
    let (tx, rx) = mpsc::channel();
    c.set_exception_listener(move |e| {
        let _ = tx.send((
            e.kind(),
            e.to_string(),
            std::error::Error::source(e).is_some(),
        ));
    });
    let (ok_tx, ok_rx) = mpsc::channel();
    c.execute_async(&Command::subscribe("bad"), move |m| {
        match m.data() {
            b"err" => return Err(std::io::Error::other("handler refused")),
            b"panic" => panic!("handler blew up"),
            _ => {}
        }
        let _ = ok_tx.send(());
        Ok(())
    })
    .unwrap();
    p.publish("bad", "err").unwrap();
    p.publish("bad", "panic").unwrap();
    p.publish("bad", "fine").unwrap();
    let (kind, text, has_source) = recv(&rx, "handler error");
    assert_eq!(kind, ErrorKind::Unknown);
    assert!(text.contains("handler refused") && has_source, "{text}");
    let (_, text, _) = recv(&rx, "handler panic");
    assert!(
        text.contains("panicked") && text.contains("handler blew up"),
        "{text}"
    );
    // The handler keeps running after both.
    recv(&ok_rx, "later message");
    // The same reports as events.
    events.wait_for(|e| matches!(e, ClientEvent::Error(e) if e.to_string().contains("refused")));
    events.wait_for(|e| matches!(e, ClientEvent::Error(e) if e.to_string().contains("blew up")));
    c.close().unwrap();
    p.close().unwrap();
}

fn failed_writes_carry_the_stored_message_or_go_to_the_last_chance_handler<A: Api>() {
    let b = broker();
    let c =
        A::build(A::builder("fw").publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 1000)));
    let mut events = c.events();
    let (fw_tx, fw_rx) = mpsc::channel();
    c.set_failed_write_handler(move |fw| {
        let m = fw.message().expect("stored message");
        let _ = fw_tx.send((
            fw.seq(),
            fw.error().kind(),
            fw.error().reason().map(str::to_owned),
            m.topic().map(str::to_owned),
            text(m),
        ));
    });
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    c.publish("events", "ok-1").unwrap();
    c.publish_flush(GUARD).unwrap();
    b.faults(|f| f.fail_next_publish = Some("not entitled".into()));
    c.publish("events", "refused").unwrap();
    let (seq, kind, reason, topic, data) = recv(&fw_rx, "failed write");
    assert_eq!(seq, 2);
    assert_eq!(kind, ErrorKind::NotEntitled);
    assert_eq!(reason.as_deref(), Some("not entitled"));
    assert_eq!(
        (topic.as_deref(), data.as_str()),
        (Some("events"), "refused")
    );
    let e = events.wait_for(|e| matches!(e, ClientEvent::FailedWrite(_)));
    assert!(matches!(e, ClientEvent::FailedWrite(fw) if fw.seq() == 2));
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0, "a refused write leaves the store");
    c.close().unwrap();

    // Without a failed-write handler: the failure ack is an unexpected message.
    let c =
        A::build(A::builder("fw2").publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 1000)));
    let (lc_tx, lc_rx) = mpsc::channel();
    c.set_last_chance_message_handler(move |m| {
        let _ = lc_tx.send((m.command(), m.status(), m.reason().map(str::to_owned)));
    });
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    b.faults(|f| f.fail_next_publish = Some("not entitled".into()));
    c.publish("events", "refused").unwrap();
    let (kind, status, reason) = recv(&lc_rx, "last chance");
    assert_eq!(kind, CommandKind::Ack);
    assert_eq!(status, Some(amps_host::Status::Failure));
    assert_eq!(reason.as_deref(), Some("not entitled"));
    c.close().unwrap();
}

fn the_disconnect_handler_can_reconnect_the_client<A: Api>() {
    let b = broker();
    let c: A = client(&b, "dh");
    let u = uri(&b);
    let (tx, rx) = mpsc::channel();
    c.set_disconnect_handler(move |client| {
        let r = client.connect(&u).and_then(|()| client.logon());
        let _ = tx.send(r.map_err(|e| e.kind()));
    })
    .unwrap();
    b.kill_connections();
    assert_eq!(recv(&rx, "disconnect handler"), Ok(()));
    assert!(c.is_logged_on());
    let mut s = c.subscribe("after", None).unwrap();
    c.publish("after", "x").unwrap();
    assert_eq!(text(&s.next_msg()), "x");
    // Not called for a disconnect the application asked for.
    c.disconnect().unwrap();
    quiet(&rx, Duration::from_millis(100), "disconnect handler call");
    c.close().unwrap();
}

fn heartbeats_detect_a_silent_server<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("hb"));
    let rx = states(&c);
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    // Set after connecting: sent at once.
    c.set_heartbeat(Duration::from_secs(1), Duration::from_secs(1))
        .unwrap();
    let seen: Vec<_> = (0..3).map(|_| recv(&rx, "state")).collect();
    assert_eq!(seen, [CS::Connected, CS::LoggedOn, CS::HeartbeatInitiated]);
    b.faults(|f| f.heartbeats_off = true);
    let t0 = std::time::Instant::now();
    assert_eq!(recv(&rx, "Disconnected"), CS::Disconnected);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    // Heartbeats from the builder, and off again.
    let c2 = A::build(A::builder("hb2").heartbeat(Duration::from_secs(1), Duration::from_secs(2)));
    let rx2 = states(&c2);
    c2.connect(&uri(&b)).unwrap();
    c2.logon().unwrap();
    until(&rx2, CS::HeartbeatInitiated);
    c2.set_heartbeat(Duration::ZERO, Duration::ZERO).unwrap();
    assert!(
        c2.set_heartbeat(Duration::from_millis(10), Duration::from_secs(1))
            .is_err_and(|e| e.kind() == ErrorKind::Usage),
        "the interval is whole seconds"
    );
    c.close().unwrap();
    c2.close().unwrap();
}

fn the_transport_filter_sees_raw_bytes_both_ways<A: Api>() {
    let b = broker();
    let (tx, rx) = mpsc::channel();
    let c = A::build(A::builder("tf").transport_filter(move |dir, bytes| {
        let _ = tx.send((dir, bytes.to_vec()));
    }));
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let (dir, out) = recv(&rx, "outgoing logon");
    assert_eq!(dir, Direction::Outgoing);
    let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
    assert_eq!(
        len,
        out.len() - 4,
        "the length prefix is part of what the filter sees"
    );
    assert!(out[4..].starts_with(br#"{"c":"logon""#));
    let (dir, inc) = recv(&rx, "incoming ack");
    assert_eq!(dir, Direction::Incoming);
    assert!(String::from_utf8_lossy(&inc).contains(r#""c":"ack""#));
    c.close().unwrap();
}

fn a_panicking_transport_filter_is_reported_and_the_connection_works<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("tfpanic").transport_filter(|dir, _| {
        if dir == Direction::Outgoing {
            panic!("filter bug");
        }
    }));
    let (tx, rx) = mpsc::channel();
    c.set_exception_listener(move |e| {
        let _ = tx.send(e.to_string());
    });
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    assert!(recv(&rx, "filter panic").contains("transport filter panicked"));
    c.flush().unwrap();
    c.close().unwrap();
}

suite!(
    a_handler_may_call_back_into_its_own_client,
    a_slow_handler_does_not_get_the_client_disconnected,
    handler_errors_and_panics_reach_the_exception_listener_and_events,
    failed_writes_carry_the_stored_message_or_go_to_the_last_chance_handler,
    the_disconnect_handler_can_reconnect_the_client,
    heartbeats_detect_a_silent_server,
    the_transport_filter_sees_raw_bytes_both_ways,
    a_panicking_transport_filter_is_reported_and_the_connection_works,
);

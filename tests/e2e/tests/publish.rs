//! Publishing: publish and delta publish, publish options and built commands, the three
//! `sow_delete` forms with their counts, flush ordering and `publish_flush(timeout)`,
//! backpressure of the publish queue.

use std::time::Duration;

use amps_e2e::*;
use amps_host::{Command, ErrorKind, MemoryPublishStore, PublishOptions};

fn publish_and_delta_publish_update_the_sow<A: Api>() {
    let b = broker();
    let c: A = client(&b, "pub");
    for (id, qty) in [("A1", 10), ("A2", 20), ("A3", 30)] {
        c.publish("orders", format!(r#"{{"id":"{id}","qty":{qty},"px":5}}"#))
            .unwrap();
    }
    c.delta_publish("orders", r#"{"id":"A2","qty":21}"#)
        .unwrap();
    c.flush().unwrap();
    let mut got = texts(&sow_records(&c, "orders", None));
    got.sort();
    assert_eq!(
        got,
        [
            r#"{"id":"A1","qty":10,"px":5}"#,
            r#"{"id":"A2","qty":21,"px":5}"#,
            r#"{"id":"A3","qty":30,"px":5}"#
        ]
    );
    c.close().unwrap();
}

fn publish_options_and_commands_carry_extra_headers<A: Api>() {
    let b = broker();
    let sub: A = client(&b, "sub");
    let c: A = client(&b, "pub");
    let mut s = sub.subscribe("notes", None).unwrap();
    c.publish_command(&Command::publish("notes", b"n1").correlation_id("Y29ycg"))
        .unwrap();
    let m = s.next_msg();
    assert_eq!(m.correlation_id(), Some("Y29ycg"));
    assert_eq!(m.data(), b"n1");
    let o = PublishOptions {
        correlation_id: Some("QUJD"),
        expiration: Some(60),
        ..PublishOptions::default()
    };
    c.publish_with("notes", b"n2", o).unwrap();
    let m = s.next_msg();
    assert_eq!((m.correlation_id(), m.data()), (Some("QUJD"), &b"n2"[..]));
    // Only sequenced commands go this way.
    assert_eq!(
        c.publish_command(&Command::subscribe("x"))
            .unwrap_err()
            .kind(),
        ErrorKind::Usage
    );
    sub.close().unwrap();
    c.close().unwrap();
}

fn sow_delete_forms_return_their_counts<A: Api>() {
    let b = broker();
    let c: A = client(&b, "del");
    for i in 0..6 {
        c.publish("orders", format!(r#"{{"id":"D{i}","qty":{i}}}"#))
            .unwrap();
    }
    c.flush().unwrap();
    // By filter.
    let ack = c.sow_delete("orders", "/qty < 2").unwrap();
    assert_eq!(ack.records_deleted(), Some(2));
    assert_eq!(ack.matches(), Some(2));
    // By the SOW keys the records carry.
    let keys: Vec<String> = sow_records(&c, "orders", Some("/qty >= 4"))
        .iter()
        .map(|m| m.sow_key().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2);
    let ack = c.sow_delete_by_keys("orders", &keys.join(",")).unwrap();
    assert_eq!(ack.records_deleted(), Some(2));
    // By data: the record this message would update.
    let ack = c
        .sow_delete_by_data("orders", br#"{"id":"D2","qty":99}"#)
        .unwrap();
    assert_eq!(ack.records_deleted(), Some(1));
    assert_eq!(
        texts(&sow_records(&c, "orders", None)),
        [r#"{"id":"D3","qty":3}"#]
    );
    // A topic without a SOW: the server's failure, typed.
    let e = c.sow_delete("plain-topic", "1=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidTopic);
    c.close().unwrap();
}

fn publish_flush_waits_for_persisted_acks_and_times_out<A: Api>() {
    let b = broker();
    let c = A::build(
        A::builder("pflush").publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 10_000)),
    );
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    for i in 0..100 {
        c.publish("events", format!(r#"{{"n":{i}}}"#)).unwrap();
    }
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    // Acks withheld: the store cannot drain in time.
    b.faults(|f| f.withhold_acks = true);
    c.publish("events", r#"{"n":100}"#).unwrap();
    assert_eq!(c.unpersisted_count(), 1);
    let t0 = std::time::Instant::now();
    let e = c.publish_flush(Duration::from_millis(200)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(c.unpersisted_count(), 1);
    // The error names what is still unpersisted: the 101st publish.
    assert_eq!(e.unpersisted_range(), Some(101..=101), "{e}");
    assert!(e.to_string().contains("sequence numbers 101 to 101"), "{e}");
    // Acks flow again: the next conflated persisted ack covers both.
    b.faults(|f| f.withhold_acks = false);
    c.publish("events", r#"{"n":101}"#).unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    c.close().unwrap();
}

fn flush_orders_after_earlier_publishes<A: Api>() {
    let b = broker();
    let sub: A = client(&b, "fsub");
    let c: A = client(&b, "fpub");
    let mut s = sub.subscribe("burst", None).unwrap();
    for i in 0..5_000 {
        c.publish("burst", format!("m{i}")).unwrap();
    }
    // Every publish before the flush was processed by the server when it returns.
    c.flush().unwrap();
    for i in 0..5_000 {
        assert_eq!(text(&s.next_msg()), format!("m{i}"));
    }
    sub.close().unwrap();
    c.close().unwrap();
}

fn a_full_publish_window_is_backpressure_with_bounded_memory<A: Api>() {
    let b = broker();
    let limits = amps_host::Limits {
        publish_window_messages: 8,
        ..amps_host::Limits::default()
    };
    let c = A::build_ha(
        A::ha_builder("bp")
            .uris([uri(&b)])
            .limits(limits)
            .publish_queue_bytes(1024)
            .memory_backed(),
    );
    c.connect_and_logon().unwrap();
    b.faults(|f| f.withhold_acks = true);
    let payload = [b'x'; 100];
    let mut accepted = 0;
    let mut refused_in_a_row = 0;
    while refused_in_a_row < 20 {
        match c.try_publish("events", &payload) {
            Ok(()) => {
                accepted += 1;
                refused_in_a_row = 0;
                assert!(accepted < 1000, "memory must be bounded");
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Busy);
                refused_in_a_row += 1;
                std::thread::yield_now();
            }
        }
    }
    assert!(accepted > 0, "the window and the queue hold some");
    assert_eq!(
        c.unpersisted_count(),
        accepted,
        "stored or queued, each counted once"
    );
    // A blocking publish waits. The acks the broker dropped are never sent again: a
    // reconnect replays what is unpersisted, the broker acknowledges it (each message once),
    // and that releases the waiting publish.
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || c.publish("events", [b'y'; 100]))
    };
    b.faults(|f| f.withhold_acks = false);
    b.kill_connections();
    waiter.join().unwrap().unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    // Every accepted publish reached the log once.
    let r: A = client(&b, "reader");
    let mut s = r
        .bookmark_subscribe("events", amps_host::bookmark::EPOCH, None, None)
        .unwrap();
    for _ in 0..accepted + 1 {
        s.next_msg();
    }
    r.flush().unwrap();
    assert!(s.is_empty(), "exactly the accepted publishes, once each");
    c.close().unwrap();
}

/// A hybrid store (4 messages in memory, the rest in a file) holds what the server has not
/// acknowledged, and a reconnect replays it from both parts in sequence order, once each.
fn a_hybrid_store_spills_to_a_file_and_replays_in_order<A: Api>() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let me = name("hybrid");
    let spill = amps_fs::FilePublishStore::open(dir.path(), &me, Default::default()).unwrap();
    let store =
        amps_host::HybridPublishStore::new(MemoryPublishStore::new(vec![0; 4096], 4), spill);
    let c = A::build_ha(
        amps_host::ClientBuilder::<A::H>::new(me.clone())
            .uris([uri(&b)])
            .publish_store(store),
    );
    c.connect_and_logon().unwrap();
    b.faults(|f| f.withhold_acks = true);
    for i in 0..20 {
        c.publish("events", format!("h{i}")).unwrap();
    }
    assert_eq!(
        c.unpersisted_count(),
        20,
        "4 in memory, 16 spilled, none persisted"
    );
    // The acks the broker dropped are never sent: a reconnect replays all twenty.
    b.faults(|f| f.withhold_acks = false);
    b.kill_connections();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    let r: A = client(&b, "hybrid-reader");
    let mut s = r
        .bookmark_subscribe("events", amps_host::bookmark::EPOCH, None, None)
        .unwrap();
    for i in 0..20 {
        assert_eq!(text(&s.next_msg()), format!("h{i}"));
    }
    r.flush().unwrap();
    assert!(s.is_empty(), "each publish once");
    c.close().unwrap();
    r.close().unwrap();
}

fn a_server_missing_persisted_publishes_is_a_publish_gap<A: Api>() {
    let (first, second) = (broker(), broker());
    for refuse in [true, false] {
        let c = A::build(
            A::builder("gap")
                .publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 1_000))
                .error_on_publish_gap(refuse),
        );
        c.connect(&uri(&first)).unwrap();
        c.logon().unwrap();
        for i in 0..3 {
            c.publish("events", format!("{i}")).unwrap();
        }
        c.publish_flush(GUARD).unwrap();
        c.disconnect().unwrap();
        // The second server never received them (no replication between the two).
        c.connect(&uri(&second)).unwrap();
        match c.logon() {
            Err(e) if refuse => {
                assert_eq!(e.kind(), ErrorKind::PublishStoreGap, "{e}");
                assert!(
                    e.to_string().contains("server persisted 0, client saw 3"),
                    "{e}"
                );
            }
            Ok(()) if !refuse => {}
            other => panic!("error_on_publish_gap({refuse}): {other:?}"),
        }
        c.close().unwrap();
    }
}

suite!(
    a_hybrid_store_spills_to_a_file_and_replays_in_order,
    a_server_missing_persisted_publishes_is_a_publish_gap,
    publish_and_delta_publish_update_the_sow,
    publish_options_and_commands_carry_extra_headers,
    sow_delete_forms_return_their_counts,
    publish_flush_waits_for_persisted_acks_and_times_out,
    flush_orders_after_earlier_publishes,
    a_full_publish_window_is_backpressure_with_bounded_memory,
);

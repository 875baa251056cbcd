//! Item 2: publish, delta_publish, the three sow_delete forms returning their counts, flush and
//! publish_flush(timeout), publish_command with extra headers.

mod common;

use std::time::Duration;

use amps_std::{Client, Command, ErrorKind, MemoryPublishStore};
use common::*;

#[test]
fn publish_and_delta_publish_update_the_sow() {
    let b = broker();
    let c = client(&b, "pub");
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
    c.close();
}

#[test]
fn publish_command_carries_extra_headers() {
    let b = broker();
    let sub = client(&b, "sub");
    let c = client(&b, "pub");
    let mut s = sub.subscribe("notes", None).unwrap();
    c.publish_command(&Command::publish("notes", b"n1").correlation_id("Y29ycg"))
        .unwrap();
    let m = s.recv_timeout(GUARD).unwrap().unwrap();
    assert_eq!(m.correlation_id(), Some("Y29ycg"));
    assert_eq!(m.data(), "n1");
    // Only sequenced commands go this way.
    assert_eq!(
        c.publish_command(&Command::subscribe("x"))
            .unwrap_err()
            .kind(),
        ErrorKind::Usage
    );
    sub.close();
    c.close();
}

#[test]
fn sow_delete_forms_return_their_counts() {
    let b = broker();
    let c = client(&b, "del");
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
        .sow_delete_by_data("orders", r#"{"id":"D2","qty":99}"#)
        .unwrap();
    assert_eq!(ack.records_deleted(), Some(1));
    assert_eq!(
        texts(&sow_records(&c, "orders", None)),
        [r#"{"id":"D3","qty":3}"#]
    );
    // A topic without a SOW: the server's failure, typed.
    let e = c.sow_delete("plain-topic", "1=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidTopic);
    c.close();
}

#[test]
fn publish_flush_waits_for_persisted_acks_and_times_out() {
    let b = broker();
    let c = Client::new(&name("pflush"));
    c.set_publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 10_000))
        .unwrap();
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
    // Acks flow again: the next conflated persisted ack covers both.
    b.faults(|f| f.withhold_acks = false);
    c.publish("events", r#"{"n":101}"#).unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    c.close();
}

#[test]
fn flush_orders_after_earlier_publishes() {
    let b = broker();
    let sub = client(&b, "fsub");
    let c = client(&b, "fpub");
    let mut s = sub.subscribe("burst", None).unwrap();
    for i in 0..5_000 {
        c.publish("burst", format!("m{i}")).unwrap();
    }
    // Every publish before the flush was processed by the server when it returns.
    c.flush().unwrap();
    for i in 0..5_000 {
        let m = s.recv_timeout(GUARD).unwrap().unwrap();
        assert_eq!(m.data(), format!("m{i}"));
    }
    sub.close();
    c.close();
}

//! Malformed, oversized and unknown input, floods and slow consumers (docs/protocol.md §1.4):
//! the documented failure ack or a disconnect with a reason, never a panic.

mod common;

use amps_broker::{CloseReason, Config, Engine, EngineEvent};
use amps_core::Instant;
use amps_core::codec::Command;
use common::*;
use proptest::prelude::*;

#[test]
fn unknown_command_gets_a_failure_ack_with_its_cid_then_close() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    c.send_frame(r#"{"c":"teleport","cid":"42"}"#, b"");
    let frames = c.expect_close();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].header(),
        r#"{"c":"ack","cid":"42","a":"processed","status":"failure","reason":"unknown command"}"#
    );
}

#[test]
fn server_only_commands_from_a_client_are_unknown() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    c.send_frame(r#"{"c":"ack","cid":"1","a":"processed"}"#, b"");
    assert_eq!(c.expect_close()[0].reason(), Some("unknown command"));
}

#[test]
fn a_header_that_is_not_json_gets_a_failure_ack_without_cid() {
    // A header that parses but holds a field of the wrong type has its own reason: see
    // tests/reasons.rs.
    for header in [r#"["c","p"]"#, r#"{"c":"p","t":"#, "garbage"] {
        let b = broker();
        let mut c = Client::logon(b.local_addr(), "c");
        c.send_frame(header, b"payload");
        let frames = c.expect_close();
        assert_eq!(
            frames[0].header(),
            r#"{"c":"ack","a":"processed","status":"failure","reason":"unknown command"}"#,
            "{header}"
        );
    }
}

#[test]
fn a_zero_length_frame_is_malformed() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    c.send_raw(&[0, 0, 0, 0]);
    assert_eq!(c.expect_close()[0].reason(), Some("unknown command"));
}

#[test]
fn an_oversized_frame_is_refused_on_its_prefix() {
    let b = broker_with(Config {
        max_frame: 1024,
        ..Config::default()
    });
    let mut c = Client::logon(b.local_addr(), "c");
    c.send_raw(&2048u32.to_be_bytes());
    let frames = c.expect_close();
    assert_eq!(frames[0].reason(), Some("message too large"));
}

#[test]
fn a_frame_split_into_single_bytes_is_reassembled() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    let wire = Command::logon("slow").command_id("1").to_vec().unwrap();
    for byte in wire {
        c.send_raw(&[byte]);
    }
    assert!(c.recv().ok());
}

#[test]
fn a_flood_to_a_slow_consumer_disconnects_it_and_memory_stays_bounded() {
    let b = broker_with(Config {
        slow_consumer_bytes: 256 * 1024,
        ..Config::default()
    });
    let mut slow = Client::logon(b.local_addr(), "slow");
    slow.subscribe("flood", "f", None);
    let mut p = Client::logon(b.local_addr(), "p");
    let body = "x".repeat(4096);
    let frame = Command::publish("flood", body.as_bytes()).to_vec().unwrap();
    let mut batch = Vec::new();
    for _ in 0..256 {
        batch.extend_from_slice(&frame);
    }
    // Publish until the broker has dropped the subscriber that never reads (1 MB per round;
    // the kernel buffers a few MB before the broker's own queue starts to grow).
    let mut rounds = 0;
    while b.inspect(|e| e.connection_count()).unwrap() == 2 {
        p.send_raw(&batch);
        p.drain();
        rounds += 1;
        assert!(rounds < 200, "slow consumer never disconnected");
    }
    // The slow client sees the end of its stream after what was already in flight.
    let frames = slow.expect_close();
    assert!(frames.iter().all(|f| f.c() == "p"));
    assert!(p.drain().is_empty(), "the publisher is unaffected");
}

#[test]
fn too_many_subscriptions_fail() {
    let b = broker_with(Config {
        max_subscriptions: 3,
        ..Config::default()
    });
    let mut c = Client::logon(b.local_addr(), "c");
    for i in 0..3 {
        assert!(c.subscribe("t", &i.to_string(), None).ok());
    }
    assert_eq!(
        c.subscribe("t", "4", None).reason(),
        Some("too many subscriptions")
    );
}

#[test]
fn the_engine_closes_a_connection_whose_output_passes_the_limit() {
    let mut e = Engine::new(Config {
        slow_consumer_bytes: 10_000,
        ..Config::default()
    });
    let now = Instant::from_secs(1);
    let sub = e.open(now);
    e.handle_bytes(now, sub, &Command::logon("s").to_vec().unwrap());
    e.handle_bytes(
        now,
        sub,
        &Command::subscribe("t").sub_id("s").to_vec().unwrap(),
    );
    let p = e.open(now);
    e.handle_bytes(now, p, &Command::logon("p").to_vec().unwrap());
    let frame = Command::publish("t", &[b'x'; 1000]).to_vec().unwrap();
    let mut closed = None;
    for _ in 0..20 {
        e.handle_bytes(now, p, &frame);
        while let Some(ev) = e.poll_event() {
            if let EngineEvent::Close { conn, reason } = ev {
                closed = Some((conn, reason));
            }
        }
    }
    assert_eq!(closed, Some((sub, CloseReason::SlowConsumer)));
    let mut out = Vec::new();
    e.drain_output(sub, &mut out);
    assert!(out.is_empty(), "a slow consumer's queue is dropped");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Arbitrary bytes, before or after logon, in any chunking: no panic, and every close has
    /// a reason.
    #[test]
    fn arbitrary_input_never_panics(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
        logon_first in any::<bool>(),
    ) {
        let mut e = Engine::new(Config::default());
        let now = Instant::from_secs(1);
        let c = e.open(now);
        if logon_first {
            e.handle_bytes(now, c, &Command::logon("fuzz").to_vec().unwrap());
        }
        for (i, chunk) in chunks.iter().enumerate() {
            e.handle_bytes(Instant::from_secs(1 + i as u64), c, chunk);
            e.handle_timeout(Instant::from_secs(1 + i as u64));
            while e.poll_event().is_some() {}
        }
    }

    /// Well-framed but hostile headers: every known command with odd fields.
    #[test]
    fn hostile_headers_never_panic(
        kind in prop::sample::select(vec![
            "logon", "p", "publish", "delta_publish", "subscribe", "delta_subscribe", "sow",
            "sow_and_subscribe", "sow_and_delta_subscribe", "sow_delete", "unsubscribe",
            "flush", "heartbeat", "start_timer",
        ]),
        topic in prop::sample::select(vec!["orders", "jobs", "events", "x", "", "(", ".*", "/AMPS/x"]),
        opts in "[a-z_=,0-9\\[\\]/ ]{0,24}",
        filter in "[/a-z0-9 =<>'()]{0,16}",
        bm in prop::sample::select(vec!["", "0", "0|1|", "1|2|", "[0:1|1|]", "x,y", "20260101T000000Z", "recent"]),
        payload in prop::collection::vec(any::<u8>(), 0..32),
        num in any::<u64>(),
    ) {
        let mut e = Engine::new(Config::default());
        let now = Instant::from_secs(1);
        let c = e.open(now);
        e.handle_bytes(now, c, &Command::logon("fuzz").to_vec().unwrap());
        let header = serde_json::json!({
            "c": kind, "cid": "1", "t": topic, "o": opts, "f": filter, "bm": bm,
            "a": "received,processed,completed,persisted,stats", "s": num, "bs": num % 20000,
            "top_n": num % 7, "sub_id": "s", "sow_keys": "1,2", "e": num % 3, "orderby": filter,
        }).to_string();
        let mut frame = ((header.len() + payload.len()) as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(header.as_bytes());
        frame.extend_from_slice(&payload);
        for t in 0..3u64 {
            e.handle_bytes(Instant::from_secs(1 + t), c, &frame);
            e.handle_timeout(Instant::from_secs(100 * (t + 1)));
            while e.poll_event().is_some() {}
        }
    }
}

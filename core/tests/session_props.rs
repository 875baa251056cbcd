//! Property tests of the session: identical events however the input is chunked; command ids never
//! reused within a generation; the publish store never exceeds its capacity whatever is published
//! and acknowledged.

mod common;
use std::collections::HashSet;

use amps_core::codec::Command;
use amps_core::session::{PublishError, TransportClosed};
use amps_core::store::PublishStore;
use common::*;
use proptest::prelude::*;

/// A script of server frames exercising acks, deliveries with sids, sow batches, oof,
/// heartbeats, persisted acks and a failure ack.
fn server_stream(sub: u64, query: u64, n: u64) -> Vec<u8> {
    let mut frames = vec![
        format!(r#"{{"c":"ack","cid":"{sub}","a":"processed","status":"success"}}"#),
        format!(
            r#"{{"c":"ack","cid":"{query}","a":"processed","status":"success","query_id":"{query}"}}"#
        ),
        format!(r#"{{"c":"group_begin","query_id":"{query}"}}"#),
        format!(
            r#"{{"c":"sow","t":"orders","query_id":"{query}","bs":3}}{{"k":"1","l":3}}abc{{"k":"2","x":"q\"x","l":2}}de{{"k":"3","l":0}}"#
        ),
        format!(r#"{{"c":"group_end","query_id":"{query}"}}"#),
        format!(r#"{{"c":"ack","cid":"{query}","a":"completed","status":"success"}}"#),
    ];
    for i in 1..=n {
        frames.push(format!(
            r#"{{"c":"p","t":"orders","sids":"{sub},ghost","k":"{i}","bm":"5|{i}|"}}{{"i":{i}}}"#
        ));
        if i % 3 == 0 {
            frames.push(r#"{"c":"heartbeat"}"#.into());
        }
        if i % 4 == 0 {
            frames.push(format!(
                r#"{{"c":"oof","t":"orders","sub_id":"{sub}","k":"{i}","reason":"match"}}x"#
            ));
        }
    }
    frames.push(r#"{"c":"ack","a":"persisted","status":"success","s":2}"#.into());
    frames.push(
        r#"{"c":"ack","a":"processed","status":"failure","reason":"unknown command"}"#.into(),
    );
    let mut wire = Vec::new();
    for f in frames {
        wire.extend((f.len() as u32).to_be_bytes());
        wire.extend(f.as_bytes());
    }
    wire
}

fn run_chunked(chunks: &[usize]) -> (Vec<Ev>, Vec<String>) {
    let mut h = H::new(&config("pub-1"));
    let mut evs = h.logon();
    h.s.publish(h.now, "orders", b"1").unwrap();
    h.s.publish(h.now, "orders", b"2").unwrap();
    let sub = h.s.execute(h.now, &Command::subscribe("orders")).unwrap();
    let query = h.s.execute(h.now, &Command::sow("orders")).unwrap();
    let mut tx = h.tx();
    let wire = server_stream(sub.wire(), query.wire(), 12);
    let mut rest = &wire[..];
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks[i % chunks.len()].clamp(1, rest.len());
        i += 1;
        h.chunk = 0;
        evs.extend(h.feed_bytes(&rest[..n]));
        rest = &rest[n..];
    }
    tx.extend(h.tx());
    (evs, tx)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn identical_events_however_the_input_is_chunked(chunks in proptest::collection::vec(1usize..300, 1..40)) {
        let whole = run_chunked(&[usize::MAX]);
        prop_assert!(whole.0.len() >= 28, "the script produces many events: {}", whole.0.len());
        prop_assert_eq!(run_chunked(&chunks), whole);
    }

    #[test]
    fn command_ids_are_never_reused_within_a_generation(
        ops in proptest::collection::vec(0u8..5, 1..120),
        reconnect_at in proptest::collection::vec(0usize..120, 0..4),
    ) {
        let mut h = H::new(&config("c"));
        h.logon();
        let mut seen: HashSet<(u32, u64)> = HashSet::new();
        let mut wires: HashSet<u64> = HashSet::new();
        for (i, op) in ops.iter().enumerate() {
            if reconnect_at.contains(&i) {
                h.s.handle_closed(h.now, TransportClosed::PeerClosed);
                h.events();
                h.logon();
            }
            let cmd = match op {
                0 => Command::subscribe("t"),
                1 => Command::sow("t"),
                2 => Command::flush(),
                3 => Command::sow_delete("t", "1=1").ack(amps_core::codec::AckType::Processed),
                _ => Command::unsubscribe("all"),
            };
            if let Ok(id) = h.s.execute(h.now, &cmd) {
                prop_assert!(seen.insert((id.generation(), id.wire())), "id reused: {id:?}");
                prop_assert!(wires.insert(id.wire()), "wire cid reused: {}", id.wire());
            }
            h.tx();
        }
    }

    #[test]
    fn the_publish_store_never_exceeds_its_capacity(
        window in 1usize..20,
        ops in proptest::collection::vec((0u8..4, 0usize..200), 1..300),
    ) {
        let mut cfg = config("pub-1");
        cfg.limits.publish_window_messages = window;
        cfg.limits.publish_window_bytes = 2_000;
        let mut h = H::new(&cfg);
        h.logon();
        let mut last_seq = 0;
        for (op, size) in ops {
            match op {
                0 | 1 => match h.s.publish(h.now, "t", &vec![b'x'; size]) {
                    Ok(Some(seq)) => {
                        prop_assert_eq!(seq, last_seq + 1, "sequence numbers are consecutive");
                        last_seq = seq;
                    }
                    Ok(None) => prop_assert!(false, "a store is configured"),
                    Err(PublishError::WindowFull | PublishError::TooLarge | PublishError::WouldBlock) => {}
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                },
                2 => {
                    h.tx();
                    let upto = last_seq.saturating_sub(size as u64 % 3);
                    h.feed(&format!(r#"{{"c":"ack","a":"persisted","status":"success","s":{upto}}}"#));
                }
                _ => {
                    h.s.handle_closed(h.now, TransportClosed::Error);
                    h.events();
                    h.logon_with_seq(last_seq.saturating_sub(size as u64 % 5));
                }
            }
            prop_assert!(h.s.unpersisted_count() <= window);
            prop_assert!(h.s.publish_store().unpersisted_bytes() <= 2_000 + 64 * window);
        }
    }
}

/// One step of the fuzz-style property below.
#[derive(Debug, Clone)]
enum Op {
    Bytes(Vec<u8>),
    Frame(String),
    Execute(u8),
    Publish(usize),
    Timeout(u64),
    Closed,
    Reconnect,
    Ack(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Op::Bytes),
        prop_oneof![
            Just(
                r#"{"c":"ack","cid":"3","a":"processed","status":"success","o":"max_backlog=2"}"#
                    .to_string()
            ),
            Just(r#"{"c":"ack","a":"persisted","status":"success","s":5}"#.to_string()),
            Just(
                r#"{"c":"ack","a":"persisted","status":"failure","s":2,"reason":"x"}"#.to_string()
            ),
            Just(r#"{"c":"p","t":"t","sids":"2,3,4","bm":"1|2|","lp":"x"}data"#.to_string()),
            Just(r#"{"c":"sow","query_id":"3"}{"k":"1","l":99}x"#.to_string()),
            Just(r#"{"c":"oof","sub_id":"2","reason":"deleted"}"#.to_string()),
            Just(r#"{"c":"heartbeat"}"#.to_string()),
            Just(r#"{"c":"group_end","query_id":"5"}"#.to_string()),
            r#"\{"c":"[a-z_]{1,12}","cid":"[0-9]{1,2}","a":"[a-z]{1,9}","status":"[a-z]{4,7}"\}"#,
        ]
        .prop_map(Op::Frame),
        (0u8..6).prop_map(Op::Execute),
        (0usize..300).prop_map(Op::Publish),
        (0u64..5_000).prop_map(Op::Timeout),
        Just(Op::Closed),
        Just(Op::Reconnect),
        (0u8..3).prop_map(Op::Ack),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A logged-on session fed arbitrary bytes, frames and operations never panics, never drops
    /// an event, and stays within every bound (the session fuzz target, as a property).
    #[test]
    fn arbitrary_input_and_operations_never_break_the_session(ops in proptest::collection::vec(op(), 1..80)) {
        let mut cfg = config("pub-1");
        cfg.heartbeat = Some(amps_core::session::HeartbeatConfig::new(1));
        cfg.reconnect = amps_core::ha::ReconnectPolicy::Fixed(Default::default());
        cfg.resubscribe = true;
        cfg.limits.max_commands = 8;
        cfg.limits.max_routes = 4;
        cfg.limits.publish_window_messages = 6;
        let lim = cfg.limits;
        let mut h = H::new(&cfg);
        h.s.start(h.now);
        let _ = h.s.poll_connect(h.now);
        h.logon();
        let mut t = 0;
        let mut last_route = None;
        for op in ops {
            match op {
                Op::Bytes(b) => {
                    if h.s.handle_bytes(h.now, &b).is_ok() {
                        h.events();
                    }
                }
                Op::Frame(f) => {
                    let mut w = (f.len() as u32).to_be_bytes().to_vec();
                    w.extend(f.as_bytes());
                    if h.s.handle_bytes(h.now, &w).is_ok() {
                        h.events();
                    }
                }
                Op::Execute(k) => {
                    let cmd = match k {
                        0 => Command::subscribe("t").options("max_backlog=3"),
                        1 => Command::sow("t"),
                        2 => Command::subscribe("t").bookmark("recent").sub_id("b"),
                        3 => Command::flush(),
                        4 => Command::unsubscribe("all"),
                        _ => Command::sow_and_subscribe("t").options("oof"),
                    };
                    if let Ok(id) = h.s.execute_with(h.now, &cmd, amps_core::session::Exec { resubscribe: k % 2 == 0 }) {
                        last_route = Some(id);
                    }
                }
                Op::Publish(n) => {
                    let _ = h.s.publish(h.now, "t", &vec![b'p'; n]);
                }
                Op::Timeout(ms) => {
                    t += ms;
                    h.timeout(t);
                    if h.s.poll_connect(h.now).is_some() {
                        h.logon();
                    }
                }
                Op::Closed => {
                    h.s.handle_closed(h.now, TransportClosed::PeerClosed);
                    h.events();
                }
                Op::Reconnect => {
                    if h.s.state() == amps_core::session::State::Disconnected {
                        h.s.start(h.now);
                        if h.s.poll_connect(h.now).is_some() {
                            h.logon();
                        }
                    }
                }
                Op::Ack(k) => {
                    let how = [amps_core::session::AckHow::Ack, amps_core::session::AckHow::Cancel, amps_core::session::AckHow::Expire][k as usize];
                    if let Some(id) = last_route {
                        let _ = h.s.ack(h.now, id, "t", "1|2|", how);
                    }
                }
            }
            h.tx();
            prop_assert!(h.s.pending_commands() <= lim.max_commands);
            prop_assert!(h.s.routes() <= lim.max_routes);
            prop_assert!(h.s.unpersisted_count() <= lim.publish_window_messages);
            prop_assert_eq!(h.s.dropped_events(), 0);
        }
    }
}

//! Scripted servers that lie, loop or stall: the session keeps every wait bounded and delivers
//! nothing twice.

mod common;
use amps_core::codec::{AckType, Command};
use amps_core::session::{CommandError, HeartbeatConfig, Logon, SessionError};
use common::*;

fn ready(name: &str) -> H {
    let mut h = H::new(&config(name));
    h.logon();
    h.tx();
    h
}

fn completed(evs: &[Ev], id: amps_core::session::CommandId) -> bool {
    evs.iter()
        .any(|e| matches!(e, Ev::Completed { id: i, .. } if *i == id))
}

#[test]
fn publish_flush_answered_with_processed_only_completes_when_the_store_drains() {
    let mut h = ready("pub-1");
    h.s.publish(h.now, "orders", b"1").unwrap();
    h.tx();
    let f = h.s.publish_flush(h.now, d(10_000)).unwrap();
    h.tx();
    // This server acknowledges the flush with `processed` only, never `persisted`.
    let evs = h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        f.wire()
    ));
    assert!(!completed(&evs, f), "message 1 is still unpersisted");
    let evs = h.feed(r#"{"c":"ack","a":"persisted","status":"success","s":1,"bm":"1|1|"}"#);
    assert!(completed(&evs, f), "{evs:?}");
}

#[test]
fn publish_flush_times_out_at_its_deadline_whatever_acks_arrive() {
    let mut h = ready("pub-1");
    h.at(1_000);
    h.s.publish(h.now, "orders", b"1").unwrap();
    h.tx();
    let f = h.s.publish_flush(h.now, d(5_000)).unwrap();
    h.tx();
    h.at(2_000);
    h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        f.wire()
    ));
    // The processed ack does not lift the deadline set for the whole wait.
    assert_eq!(
        h.s.poll_timeout(),
        Some(amps_core::Instant::from_millis(6_000))
    );
    assert!(h.timeout(5_999).is_empty());
    let evs = h.timeout(6_000);
    assert!(
        evs.contains(&Ev::Failed {
            id: f,
            error: CommandError::TimedOut
        }),
        "{evs:?}"
    );
    assert_eq!(h.s.unpersisted_count(), 1, "nothing is lost");
}

#[test]
fn publish_flush_of_a_drained_store_completes_at_once() {
    let mut h = ready("pub-1");
    let f = h.s.publish_flush(h.now, d(10_000)).unwrap();
    assert!(h.tx().is_empty(), "nothing to ask the server");
    assert!(completed(&h.events(), f));
}

#[test]
fn an_endless_logon_retry_backs_off_repeats_the_same_logon_and_fails_at_its_deadline() {
    let mut cfg = config("c");
    cfg.logon_timeout = d(5_000);
    cfg.logon_options = Some("pretty");
    let mut h = H::new(&cfg);
    let first =
        h.s.handle_connected(
            h.now,
            &Logon {
                user_id: Some("u"),
                password: Some("p"),
                message_type: Some("json"),
                options: Some("ack_conflation=10ms"),
            },
        )
        .unwrap();
    h.events();
    let tx = h.tx();
    let mut sent = vec![tx[0].clone()];
    let mut ids = vec![first];
    let mut times = vec![0u64];
    // The server answers every logon with `retry`; the client answers each (as an
    // authenticator would), until the logon deadline.
    let mut failed = None;
    for _ in 0..10_000 {
        let id = *ids.last().unwrap();
        let evs = h.feed(&format!(
            r#"{{"c":"ack","cid":"{}","a":"processed","status":"retry","pw":"again"}}"#,
            id.wire()
        ));
        // A challenge that names no user is for the one logging on.
        assert!(
            evs.iter()
                .any(|e| matches!(e, Ev::LogonRetry { user, .. } if user == "u")),
            "{evs:?}"
        );
        let next = h.s.handle_logon_retry(h.now, None, "p").unwrap();
        ids.push(next);
        // Nothing goes out before the backoff ends; then exactly the logon.
        let mut out = h.tx();
        while out.is_empty() {
            let at = h.s.poll_timeout().expect("a deadline").as_micros() / 1_000;
            let evs = h.timeout(at);
            if let Some(e) = evs.iter().find(|e| matches!(e, Ev::Failed { .. })) {
                failed = Some((e.clone(), at));
                break;
            }
            out = h.tx();
        }
        if failed.is_some() {
            break;
        }
        assert_eq!(out.len(), 1);
        sent.push(out.remove(0));
        times.push(h.now.as_micros() / 1_000);
    }
    let (ev, at) = failed.expect("the logon gives up");
    assert_eq!(
        ev,
        Ev::Failed {
            id: *ids.last().unwrap(),
            error: CommandError::TimedOut
        }
    );
    assert_eq!(at, 5_000, "within the logon timeout of the first logon");
    // Few logons (backoff), not hundreds of thousands.
    assert!(sent.len() < 15, "{} logons: {times:?}", sent.len());
    // The gaps grow: 0 (the genuine challenge), then 50 ms doubling up to 1 s.
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps[..6], [0, 50, 100, 200, 400, 800], "{gaps:?}");
    assert!(gaps[6..].iter().all(|g| *g == 1_000), "{gaps:?}");
    // Every retried logon is the same command as the first (bar its id and password).
    for f in &sent {
        assert_eq!(field(f, "c"), "logon");
        assert_eq!(field(f, "mt"), "json", "{f}");
        assert_eq!(field(f, "o"), "pretty,ack_conflation=10ms", "{f}");
        assert_eq!(field(f, "user_id"), "u", "{f}");
        assert_eq!(field(f, "client_name"), "c", "{f}");
    }
}

#[test]
fn a_sub_id_named_many_times_in_one_delivery_is_delivered_once() {
    let mut h = ready("c");
    let a = h.s.execute(h.now, &Command::subscribe("orders")).unwrap();
    let b =
        h.s.execute(h.now, &Command::subscribe("orders").sub_id("b"))
            .unwrap();
    h.tx();
    let aw = a.wire().to_string();
    let mut sids = vec![aw.as_str(); 2_000];
    sids.insert(1_000, "b");
    let evs = h.feed(&format!(
        r#"{{"c":"p","t":"orders","sids":"{}"}}x"#,
        sids.join(",")
    ));
    let ids: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::Delivery { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [a, b]);
    // The next delivery to the same subscriptions is delivered again.
    let evs = h.feed(&format!(r#"{{"c":"p","t":"orders","sids":"b,{aw},b"}}y"#));
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(e, Ev::Delivery { .. }))
            .count(),
        2
    );
}

#[test]
fn a_server_trickling_one_endless_frame_is_silent() {
    let mut cfg = config("c");
    cfg.heartbeat = Some(HeartbeatConfig::new(5));
    let mut h = H::new(&cfg);
    h.logon();
    h.tx();
    // A frame announcing 30,000 bytes, sent a byte a second: bytes flow, no frame completes.
    let mut wire = 30_000u32.to_be_bytes().to_vec();
    wire.extend_from_slice(br#"{"c":"p","t":"x"}"#);
    let mut evs = Vec::new();
    for (i, b) in wire.iter().enumerate() {
        evs.extend(h.timeout(1_000 * (i as u64 + 1)));
        h.tx();
        if evs.contains(&Ev::Close) {
            break;
        }
        h.s.handle_bytes(h.now, &[*b]).unwrap();
        evs.extend(h.events());
    }
    assert!(
        evs.contains(&Ev::Error(SessionError::Silent)),
        "the trickle does not count as traffic: {evs:?}"
    );
    assert!(
        h.now.as_micros() / 1_000 <= 10_000,
        "ended within the heartbeat timeout"
    );
}

#[test]
fn frames_completed_before_heartbeats_start_are_not_traffic_after() {
    let mut h = ready("c");
    // Without heartbeats: a whole frame, not drained yet when heartbeats start.
    let frame = r#"{"c":"heartbeat"}"#;
    let mut wire = (frame.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(frame.as_bytes());
    h.s.handle_bytes(h.now, &wire).unwrap();
    h.s.set_heartbeat(h.now, Some(HeartbeatConfig::new(5)))
        .unwrap();
    let mut trickle = 30_000u32.to_be_bytes().to_vec();
    trickle.extend_from_slice(br#"{"c":"p","t":"x"}"#);
    // A second later the first byte of a frame that never completes arrives while the old
    // frame still waits: the old frame is not news.
    h.at(1_000);
    h.s.handle_bytes(h.now, &trickle[..1]).unwrap();
    let mut evs = h.events();
    for (i, b) in trickle.iter().enumerate().skip(1) {
        evs.extend(h.timeout(1_000 * (i as u64 + 1)));
        h.tx();
        if evs.contains(&Ev::Close) {
            break;
        }
        h.s.handle_bytes(h.now, &[*b]).unwrap();
        evs.extend(h.events());
    }
    assert!(evs.contains(&Ev::Error(SessionError::Silent)), "{evs:?}");
    assert!(
        h.now.as_micros() / 1_000 <= 10_000,
        "ended within the heartbeat timeout counted from set_heartbeat"
    );
}

#[test]
fn complete_frames_keep_a_heartbeat_connection_alive() {
    let mut cfg = config("c");
    cfg.heartbeat = Some(HeartbeatConfig::new(5));
    let mut h = H::new(&cfg);
    h.logon();
    h.tx();
    // A whole frame every 4 s, fed in two halves: the connection stays up.
    for i in 1..=10u64 {
        let frame = r#"{"c":"heartbeat"}"#;
        let mut wire = (frame.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(frame.as_bytes());
        let t = i * 4_000;
        let evs = h.timeout(t - 2_000);
        assert!(!evs.contains(&Ev::Close), "{evs:?}");
        h.tx();
        h.s.handle_bytes(h.now, &wire[..5]).unwrap();
        let evs = h.timeout(t);
        assert!(!evs.contains(&Ev::Close), "{evs:?}");
        h.s.handle_bytes(h.now, &wire[5..]).unwrap();
        h.events();
        h.tx();
    }
}

#[test]
fn a_command_waiting_for_completion_times_out_even_after_processed() {
    let mut cfg = config("c");
    cfg.command_timeout = Some(d(3_000));
    let mut h = H::new(&cfg);
    h.logon();
    h.tx();
    // A flush that waits for `processed` and then `completed`.
    let id =
        h.s.execute(
            h.now,
            &Command::flush()
                .ack(AckType::Processed)
                .ack(AckType::Completed),
        )
        .unwrap();
    let tx = h.tx();
    assert_eq!(field(&tx[0], "a"), "processed,completed");
    h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        id.wire()
    ));
    let evs = h.timeout(3_000);
    assert!(
        evs.contains(&Ev::Failed {
            id,
            error: CommandError::TimedOut
        }),
        "{evs:?}"
    );
}

/// Log on with the server saying it persisted up to `s`; the events of the exchange.
fn logon_at(h: &mut H, s: u64) -> Vec<Ev> {
    h.logon_with_seq(s)
}

#[test]
fn a_server_that_lost_persisted_publishes_is_refused_with_error_on_publish_gap() {
    for on in [false, true] {
        let mut cfg = config("pub-1");
        cfg.error_on_publish_gap = on;
        let mut h = H::new(&cfg);
        logon_at(&mut h, 0);
        for i in 0..3u8 {
            h.s.publish(h.now, "t", &[b'0' + i]).unwrap();
        }
        h.tx();
        h.feed(r#"{"c":"ack","a":"persisted","status":"success","s":3}"#);
        assert_eq!(h.s.unpersisted_count(), 0);
        h.s.handle_closed(h.now, amps_core::session::TransportClosed::PeerClosed);
        h.events();
        // Another server, which never received messages 1..=3 from this client.
        let evs = logon_at(&mut h, 1);
        let failed = evs.iter().find_map(|e| e.failed_kind());
        if on {
            assert_eq!(
                failed,
                Some(amps_core::session::FailureKind::PublishGap),
                "{evs:?}"
            );
            assert!(evs.contains(&Ev::Close), "the connection is given up");
        } else {
            assert_eq!(failed, None, "{evs:?}");
        }
        // A server that has them all is accepted either way.
        if on {
            let evs = logon_at(&mut h, 3);
            assert_eq!(evs.iter().find_map(|e| e.failed_kind()), None, "{evs:?}");
        }
    }
}

#[test]
fn a_restored_store_knows_what_was_persisted() {
    let mut cfg = config("pub-1");
    cfg.error_on_publish_gap = true;
    let lim = cfg.limits;
    // A store that numbered up to 5 and holds 4 and 5: 1..=3 were persisted before.
    let mut store = amps_core::session::heap_publish_store(&lim);
    use amps_core::store::PublishStore;
    for seq in [4u64, 5] {
        store.store(seq, b"\0\0\0\x01x").unwrap();
    }
    let mut h = H {
        s: amps_core::session::Session::new(
            &cfg,
            amps_core::session::Parts::heap(
                &lim,
                store,
                amps_core::session::heap_bookmark_store(64),
            ),
        )
        .unwrap(),
        now: amps_core::Instant::ZERO,
        chunk: 0,
    };
    let evs = logon_at(&mut h, 2);
    assert_eq!(
        evs.iter().find_map(|e| e.failed_kind()),
        Some(amps_core::session::FailureKind::PublishGap),
        "{evs:?}"
    );
}

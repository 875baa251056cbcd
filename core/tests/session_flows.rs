//! Scripted exchanges: routing by sub_id and sids, replace, SOW batches with group_begin/end and
//! stats, OOF, queue acks (batching, backlog cap, timeout, cancel/expire), flush and
//! publish_flush, the publish store window, failed writes, last-chance and protocol errors.

mod common;
use amps_core::codec::{AckType, Command, CommandKind, OofReason};
use amps_core::session::{AckHow, CommandError, FailureKind, PublishError, SessionError};
use common::*;

fn ready(name: &str) -> H {
    let mut h = H::new(&config(name));
    h.logon();
    h.tx();
    h
}

fn ack(cid: impl std::fmt::Display, a: &str) -> String {
    format!(r#"{{"c":"ack","cid":"{cid}","a":"{a}","status":"success"}}"#)
}

#[test]
fn deliveries_route_by_sub_id_and_fan_out_on_sids() {
    let mut h = ready("c");
    let a =
        h.s.execute(h.now, &Command::subscribe("orders").filter("/qty > 50"))
            .unwrap();
    let b =
        h.s.execute(h.now, &Command::subscribe("^ord.*").sub_id("mine"))
            .unwrap();
    let tx = h.tx();
    assert_eq!(field(&tx[0], "f"), "/qty > 50");
    assert_eq!(field(&tx[1], "t"), "^ord.*");
    let evs = h.feed(&format!(
        r#"{{"c":"p","t":"orders","sub_id":"{}","k":"7","bm":"1|1|"}}{{"id":1}}"#,
        a.wire()
    ));
    assert_eq!(
        evs,
        vec![Ev::Delivery {
            id: a,
            sub_id: a.wire().to_string(),
            kind: CommandKind::Publish,
            data: r#"{"id":1}"#.into(),
            key: Some("7".into()),
            bm: Some("1|1|".into()),
            oof: None
        }]
    );
    // One frame for two subscriptions (§7.1): one delivery each, in sids order.
    let evs = h.feed(&format!(
        r#"{{"c":"p","t":"orders","sids":"mine,{}"}}x"#,
        a.wire()
    ));
    let ids: Vec<_> = evs
        .iter()
        .map(|e| {
            if let Ev::Delivery { id, .. } = e {
                *id
            } else {
                panic!("{e:?}")
            }
        })
        .collect();
    assert_eq!(ids, [b, a]);
    // Unknown subscription: the last-chance event.
    let evs = h.feed(r#"{"c":"p","t":"orders","sub_id":"gone"}x"#);
    assert!(matches!(evs[..], [Ev::LastChance(CommandKind::Publish, _)]));
}

#[test]
fn replace_updates_the_route_and_duplicates_are_refused() {
    let mut h = ready("c");
    let a =
        h.s.execute(
            h.now,
            &Command::subscribe("orders").sub_id("s1").filter("/a = 1"),
        )
        .unwrap();
    assert_eq!(
        h.s.execute(h.now, &Command::subscribe("orders").sub_id("s1")),
        Err(CommandError::DuplicateId)
    );
    let r =
        h.s.execute(
            h.now,
            &Command::subscribe("orders")
                .sub_id("s1")
                .filter("/a = 2")
                .options("replace"),
        )
        .unwrap();
    let tx = h.tx();
    assert_eq!(field(&tx[1], "o"), "replace");
    assert_eq!(h.s.routes(), 1);
    // Deliveries keep coming to the handle the application holds.
    let evs = h.feed(r#"{"c":"p","t":"orders","sub_id":"s1"}x"#);
    assert!(matches!(evs[..], [Ev::Delivery { id, .. }] if id == a));
    assert_eq!(r, a, "a replace reports under the subscription's handle");
}

#[test]
fn sow_batches_group_markers_completed_and_stats() {
    let mut h = ready("c");
    let q =
        h.s.execute(
            h.now,
            &Command::sow("orders")
                .filter("/qty >= 5")
                .batch_size(2)
                .ack(AckType::Stats),
        )
        .unwrap();
    let tx = h.tx();
    assert_eq!(field(&tx[0], "a"), "processed,completed,stats");
    assert_eq!(field(&tx[0], "query_id"), q.wire().to_string());
    let qid = q.wire();
    let mut evs = h.feed(&ack(qid, "processed"));
    evs.extend(h.feed(&format!(r#"{{"c":"group_begin","query_id":"{qid}"}}"#)));
    evs.extend(h.feed(&format!(
        r#"{{"c":"sow","t":"orders","query_id":"{qid}","bs":2}}{{"k":"1","l":21}}{{"id":"A1","qty":100}}{{"k":"2","l":19}}{{"id":"A2","qty":5}}"#
    )));
    evs.extend(h.feed(&format!(r#"{{"c":"group_end","query_id":"{qid}"}}"#)));
    evs.extend(h.feed(&ack(qid, "completed")));
    evs.extend(h.feed(&format!(
        r#"{{"c":"ack","cid":"{qid}","a":"stats","status":"success","query_id":"{qid}","matches":2,"topic_matches":3,"records_returned":2}}"#
    )));
    let kinds: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::Delivery {
                kind, key, data, ..
            } => Some(format!("{kind}:{}:{data}", key.clone().unwrap_or_default())),
            Ev::Completed {
                matches, returned, ..
            } => Some(format!("done:{matches:?}:{returned:?}")),
            Ev::Ack { ack, .. } => Some(format!("ack:{ack}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "group_begin::",
            r#"sow:1:{"id":"A1","qty":100}"#,
            r#"sow:2:{"id":"A2","qty":5}"#,
            "group_end::",
            "ack:stats",
            "done:Some(2):Some(2)"
        ]
    );
    assert_eq!(h.s.routes(), 0, "a plain query's route ends at completed");
}

#[test]
fn oof_reaches_the_subscription_with_its_reason() {
    let mut h = ready("c");
    let s =
        h.s.execute(h.now, &Command::sow_and_subscribe("orders").options("oof"))
            .unwrap();
    h.tx();
    let evs = h.feed(&format!(
        r#"{{"c":"oof","t":"orders","sub_id":"{}","k":"9","reason":"deleted"}}{{"id":"A2"}}"#,
        s.wire()
    ));
    assert!(
        matches!(
            &evs[..],
            [Ev::Delivery {
                kind: CommandKind::Oof,
                oof: Some(OofReason::Deleted),
                ..
            }]
        ),
        "{evs:?}"
    );
}

#[test]
fn queue_acks_batch_capped_by_backlog_timeout_and_cancel() {
    let mut cfg = config("c");
    cfg.ack_batch_size = 10;
    cfg.ack_timeout = d(1_000);
    let mut h = H::new(&cfg);
    h.logon();
    h.tx();
    let q =
        h.s.execute(h.now, &Command::subscribe("jobs").options("max_backlog=10"))
            .unwrap();
    h.tx();
    h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success","o":"max_backlog=2"}}"#,
        q.wire()
    ));
    assert_eq!(h.s.backlog(q), Some(2));
    // The batch size (10) is capped by the backlog (2): the second ack flushes.
    h.s.ack(h.now, q, "jobs", "7|41|", AckHow::Ack).unwrap();
    assert!(h.tx().is_empty());
    h.s.ack(h.now, q, "jobs", "7|42|", AckHow::Ack).unwrap();
    assert_eq!(
        h.tx(),
        vec![r#"{"c":"sow_delete","t":"jobs","bm":"7|41|,7|42|"}"#]
    );
    // A lone ack goes out after the ack timeout.
    h.at(5_000);
    h.s.ack(h.now, q, "jobs", "7|43|", AckHow::Ack).unwrap();
    assert_eq!(
        h.s.poll_timeout(),
        Some(amps_core::Instant::from_millis(6_000))
    );
    h.timeout(6_000);
    assert_eq!(
        h.tx(),
        vec![r#"{"c":"sow_delete","t":"jobs","bm":"7|43|"}"#]
    );
    // Cancel (a failed handler under auto-ack) and expire go out at once.
    h.s.handled(h.now, q, "jobs", "7|44|", false).unwrap();
    h.s.ack(h.now, q, "jobs", "7|45|", AckHow::Expire).unwrap();
    assert_eq!(
        h.tx(),
        vec![
            r#"{"c":"sow_delete","t":"jobs","bm":"7|44|","o":"cancel"}"#,
            r#"{"c":"sow_delete","t":"jobs","bm":"7|45|","o":"expire"}"#
        ]
    );
    // Acking a message of a non-queue subscription does nothing, as in the Python client.
    let plain = h.s.execute(h.now, &Command::subscribe("events")).unwrap();
    h.tx();
    h.s.ack(h.now, plain, "events", "1|1|", AckHow::Ack)
        .unwrap();
    assert!(h.tx().is_empty());
}

#[test]
fn a_full_ack_batch_flushes_early_and_never_mixes_topics() {
    let mut cfg = config("c");
    cfg.ack_batch_size = 100;
    // "jobs" + two 5-byte bookmarks and a comma: 15 bytes.
    cfg.limits.ack_batch_bytes = 16;
    let mut h = H::new(&cfg);
    h.logon();
    h.tx();
    let jobs = h.s.execute(h.now, &Command::subscribe("jobs")).unwrap();
    let work = h.s.execute(h.now, &Command::subscribe("work")).unwrap();
    h.tx();
    for (q, bm) in [(jobs, "1|41|"), (jobs, "1|42|"), (jobs, "1|43|")] {
        h.feed(&format!(
            r#"{{"c":"ack","cid":"{}","a":"processed","status":"success","o":"max_backlog=100"}}"#,
            q.wire()
        ));
        h.s.ack(h.now, q, "jobs", bm, AckHow::Ack).unwrap();
    }
    h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success","o":"max_backlog=100"}}"#,
        work.wire()
    ));
    // The third bookmark did not fit: the first two went, the third waits.
    assert_eq!(
        h.tx(),
        vec![r#"{"c":"sow_delete","t":"jobs","bm":"1|41|,1|42|"}"#]
    );
    // Another topic sends the waiting batch first.
    h.s.ack(h.now, work, "work", "2|1|", AckHow::Ack).unwrap();
    assert_eq!(
        h.tx(),
        vec![r#"{"c":"sow_delete","t":"jobs","bm":"1|43|"}"#]
    );
    // A bookmark longer than the whole buffer goes out on its own, after the batch.
    let long = "3|123456789012345|";
    h.s.ack(h.now, work, "work", long, AckHow::Ack).unwrap();
    assert_eq!(
        h.tx(),
        vec![
            r#"{"c":"sow_delete","t":"work","bm":"2|1|"}"#.to_string(),
            format!(r#"{{"c":"sow_delete","t":"work","bm":"{long}"}}"#)
        ]
    );
}

#[test]
fn flush_completes_on_its_ack() {
    let mut h = ready("c");
    let f = h.s.flush(h.now).unwrap();
    assert_eq!(
        h.tx(),
        vec![format!(
            r#"{{"c":"flush","cid":"{}","a":"completed"}}"#,
            f.wire()
        )]
    );
    let evs = h.feed(&ack(f.wire(), "completed"));
    // `Command::flush()` requests `completed` itself, so the ack is forwarded, then completion.
    assert!(
        matches!(evs[..], [Ev::Ack { id: a, ack: AckType::Completed, .. }, Ev::Completed { id, .. }] if id == f && a == f),
        "{evs:?}"
    );
}

#[test]
fn publish_store_numbers_keeps_and_trims_and_publish_flush_waits_for_it() {
    let mut h = ready("pub-1");
    assert_eq!(h.s.publish(h.now, "orders", br#"{"id":"A1"}"#), Ok(Some(1)));
    assert_eq!(h.s.publish(h.now, "orders", br#"{"id":"A2"}"#), Ok(Some(2)));
    let tx = h.tx();
    assert_eq!(
        tx,
        vec![
            r#"{"c":"p","t":"orders","s":1,"a":"persisted"}{"id":"A1"}"#,
            r#"{"c":"p","t":"orders","s":2,"a":"persisted"}{"id":"A2"}"#
        ]
    );
    assert_eq!(h.s.unpersisted_count(), 2);
    let f = h.s.publish_flush(h.now, d(10_000)).unwrap();
    let tx = h.tx();
    assert_eq!(field(&tx[0], "c"), "flush");
    // Every ack the flush waits for is requested: a server sends only those (docs/protocol.md
    // §5.1).
    assert_eq!(field(&tx[0], "a"), "processed,persisted");
    // The flush's own ack is not enough while the store holds messages.
    h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"persisted","status":"success"}}"#,
        f.wire()
    ));
    let evs = h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        f.wire()
    ));
    assert!(
        !evs.iter().any(|e| matches!(e, Ev::Completed { .. })),
        "{evs:?}"
    );
    let evs = h.feed(r#"{"c":"ack","a":"persisted","status":"success","s":2,"bm":"1|2|"}"#);
    assert_eq!(
        evs,
        vec![
            Ev::Persisted(2),
            Ev::Completed {
                id: f,
                matches: None,
                returned: None,
                deleted: None
            }
        ]
    );
    assert_eq!(h.s.unpersisted_count(), 0);
}

#[test]
fn publish_window_pushes_back() {
    let mut cfg = config("pub-1");
    cfg.limits.publish_window_messages = 3;
    let mut h = H::new(&cfg);
    assert_eq!(
        h.s.publish(h.now, "t", b"x"),
        Err(PublishError::NotConnected),
        "server sequence unknown yet"
    );
    h.logon();
    h.tx();
    for i in 1..=3 {
        assert_eq!(h.s.publish(h.now, "t", b"x"), Ok(Some(i)));
    }
    assert_eq!(h.s.publish(h.now, "t", b"x"), Err(PublishError::WindowFull));
    h.feed(r#"{"c":"ack","a":"persisted","status":"success","s":1}"#);
    assert_eq!(h.s.publish(h.now, "t", b"x"), Ok(Some(4)));
}

#[test]
fn failed_write_carries_the_stored_message() {
    let mut h = ready("pub-1");
    for i in 1..=3u8 {
        h.s.publish(h.now, "orders", &[b'0' + i]).unwrap();
    }
    h.tx();
    // §8.4: 1..3 with 2 rejected → success s=1, failure s=2, success s=3.
    let mut evs = h.feed(r#"{"c":"ack","a":"persisted","status":"success","s":1}"#);
    evs.extend(
        h.feed(r#"{"c":"ack","a":"persisted","status":"failure","s":2,"reason":"not entitled"}"#),
    );
    evs.extend(h.feed(r#"{"c":"ack","a":"persisted","status":"success","s":3}"#));
    assert_eq!(
        evs,
        vec![
            Ev::Persisted(1),
            Ev::FailedWrite {
                seq: 2,
                kind: FailureKind::NotEntitled,
                reason: "not entitled".into(),
                stored: Some(r#"{"c":"p","t":"orders","s":2,"a":"persisted"}2"#.into())
            },
            Ev::Persisted(3)
        ]
    );
    assert_eq!(h.s.unpersisted_count(), 0);
}

#[test]
fn failure_without_cid_is_a_protocol_error_and_bad_frames_are_skipped() {
    let mut h = ready("c");
    let evs =
        h.feed(r#"{"c":"ack","a":"processed","status":"failure","reason":"unknown command"}"#);
    assert!(
        matches!(
            evs[..],
            [Ev::Error(SessionError::Protocol {
                kind: FailureKind::Protocol,
                ..
            })]
        ),
        "{evs:?}"
    );
    // A malformed header inside a well-framed frame: reported, the connection survives.
    let evs = h.feed(r#"{"c":"p","t":}"#);
    assert!(
        matches!(evs[..], [Ev::Error(SessionError::Decode(_))]),
        "{evs:?}"
    );
    let s = h.s.execute(h.now, &Command::subscribe("t")).unwrap();
    h.tx();
    let evs = h.feed(&format!(r#"{{"c":"p","t":"t","sub_id":"{}"}}ok"#, s.wire()));
    assert!(matches!(evs[..], [Ev::Delivery { .. }]));
    // A frame above the limit ends the connection.
    let evs = h.feed_bytes(&[0xff, 0xff, 0xff, 0xff]);
    assert!(evs.contains(&Ev::Close), "{evs:?}");
}

#[test]
fn subscription_failures_end_the_route() {
    let mut h = ready("c");
    let s =
        h.s.execute(h.now, &Command::subscribe("orders").filter("/v = = (("))
            .unwrap();
    h.tx();
    let evs = h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"failure","reason":"bad filter"}}"#,
        s.wire()
    ));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].failed_kind(), Some(FailureKind::BadFilter));
    assert_eq!(h.s.routes(), 0);
}

#[test]
fn identical_events_whatever_the_chunking() {
    let script = |chunk: usize| {
        let mut h = H::new(&config("c"));
        h.chunk = chunk;
        let mut all = h.logon();
        let q = h.s.execute(h.now, &Command::sow("orders")).unwrap();
        h.tx();
        let qid = q.wire();
        let mut wire = Vec::new();
        for f in [
            ack(qid, "processed"),
            format!(r#"{{"c":"group_begin","query_id":"{qid}"}}"#),
            format!(r#"{{"c":"sow","query_id":"{qid}"}}{{"k":"1","l":3}}abc{{"k":"2","l":2}}de"#),
            format!(r#"{{"c":"group_end","query_id":"{qid}"}}"#),
            ack(qid, "completed"),
            r#"{"c":"heartbeat"}"#.to_string(),
        ] {
            wire.extend((f.len() as u32).to_be_bytes());
            wire.extend(f.as_bytes());
        }
        all.extend(h.feed_bytes(&wire));
        (all, h.tx())
    };
    let whole = script(0);
    assert_eq!(whole.0.len(), 9, "{:?}", whole.0);
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(script(chunk), whole, "chunk {chunk}");
    }
}

/// Writing straight from the session's transmit buffer, in small pieces, while publishing more:
/// every frame arrives once, whole and in order, and a full buffer pushes back rather than
/// losing or reordering anything.
#[test]
fn output_taken_from_the_transmit_buffer_in_pieces_keeps_every_frame_in_order() {
    let mut cfg = config("zero-copy");
    cfg.limits.tx_bytes = 256;
    // Nothing is persisted here: the window must hold every message.
    cfg.limits.publish_window_messages = 1_000;
    cfg.limits.publish_window_bytes = 1 << 20;
    let mut h = H::new(&cfg);
    h.logon();
    h.tx();
    let mut wire = Vec::new();
    let (mut next, mut pushed_back) = (0u32, 0u32);
    for round in 0..2_000 {
        if next < 300 {
            let payload = format!(r#"{{"n":{next}}}"#);
            match h.s.publish(h.now, "t", payload.as_bytes()) {
                Ok(_) => next += 1,
                Err(PublishError::WouldBlock) => pushed_back += 1,
                Err(e) => panic!("publish {next}: {e:?}"),
            }
        }
        // The transport takes 1 to 29 bytes at a time.
        let out = h.s.transmit_buffer(h.now);
        let n = out.len().min(1 + round % 29);
        wire.extend_from_slice(&out[..n]);
        h.s.transmitted(n);
    }
    assert_eq!(next, 300, "every publish eventually went in");
    assert!(
        pushed_back > 0,
        "the 256-byte buffer never filled: the test proves nothing"
    );
    assert!(h.s.transmit_buffer(h.now).is_empty());
    let mut rest = &wire[..];
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let (body, used) = amps_core::codec::split_frame(rest, u32::MAX)
            .unwrap()
            .expect("whole frames");
        let body = String::from_utf8_lossy(body).into_owned();
        let n: u32 = body
            .rsplit_once(r#"{"n":"#)
            .and_then(|(_, t)| t.trim_end_matches('}').parse().ok())
            .unwrap_or_else(|| panic!("{body}"));
        seen.push(n);
        rest = &rest[used..];
    }
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
}

#[test]
fn an_empty_sow_batch_does_not_stop_the_events_behind_it() {
    let mut h = ready("c");
    let q = h.s.execute(h.now, &Command::sow("orders")).unwrap();
    h.tx();
    let qid = q.wire();
    h.feed(&ack(qid, "processed"));
    // Both frames in one read: a batch without records, then the group's end.
    let mut wire = Vec::new();
    for f in [
        format!(r#"{{"c":"sow","t":"orders","query_id":"{qid}"}}"#),
        format!(r#"{{"c":"group_end","query_id":"{qid}"}}"#),
    ] {
        wire.extend((f.len() as u32).to_be_bytes());
        wire.extend(f.as_bytes());
    }
    assert_eq!(h.s.handle_bytes(h.now, &wire), Ok(wire.len()));
    // One drain, as an adapter does after a read: the group's end is in it.
    let evs = h.events();
    assert!(
        evs.iter()
            .any(|e| matches!(e, Ev::Delivery { kind, .. } if *kind == CommandKind::GroupEnd)),
        "{evs:?}"
    );
}

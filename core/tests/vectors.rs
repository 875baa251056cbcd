//! Every test vector of docs/protocol.md §18: each frame decodes with the documented meaning, its
//! prefix matches its length, and every client-to-server frame is reproduced byte for byte by
//! the `Command` builder (V5 uses the long name `publish`, which we decode but never send).

use amps_core::codec::{
    AckStats, AckType, AckTypes, Command, CommandKind, FrameDecoder, Message, OofReason, Scratch,
    Status, split_frame,
};

struct Vector {
    name: String,
    to_server: bool,
    wire: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    include_str!("data/vectors.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let (name, dir, hex, frame) = (
                it.next().unwrap(),
                it.next().unwrap(),
                it.next().unwrap(),
                it.next().unwrap(),
            );
            let len = u32::from_str_radix(hex, 16).unwrap();
            let mut wire = len.to_be_bytes().to_vec();
            wire.extend_from_slice(frame.as_bytes());
            Vector {
                name: name.to_string(),
                to_server: dir == "C>S",
                wire,
            }
        })
        .collect()
}

fn vector(name: &str) -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name}"))
        .wire
}

fn with_msg<R>(name: &str, f: impl FnOnce(Message<'_>) -> R) -> R {
    let wire = vector(name);
    let (body, used) = split_frame(&wire, 1 << 20).unwrap().unwrap();
    assert_eq!(
        used,
        wire.len(),
        "{name}: prefix must announce exactly the frame"
    );
    let mut scratch = vec![0u8; body.len()];
    f(Message::parse(body, &mut Scratch::new(&mut scratch)).unwrap())
}

fn encode(cmd: Command<'_>) -> Vec<u8> {
    cmd.to_vec().unwrap()
}

#[test]
fn there_are_39_vectors_and_all_decode_as_one_stream() {
    let all = vectors();
    assert_eq!(all.len(), 39);
    let mut stream = Vec::new();
    for v in &all {
        stream.extend_from_slice(&v.wire);
    }
    let mut d = FrameDecoder::new(vec![0u8; 4096], 1 << 20);
    let mut n = 0;
    let mut scratch = [0u8; 512];
    for chunk in stream.chunks(5) {
        assert_eq!(d.push(chunk), chunk.len());
        while let Some(frame) = d.next_frame().unwrap() {
            let m = Message::parse(frame, &mut Scratch::new(&mut scratch)).unwrap();
            assert_eq!(frame, &all[n].wire[4..], "{}", all[n].name);
            assert!(m.command().is_some());
            n += 1;
        }
    }
    assert_eq!(n, 39);
}

#[test]
fn client_frames_are_reproduced_byte_for_byte() {
    let cases: Vec<(&str, Command<'_>)> = vec![
        (
            "V1.1",
            Command::logon("pub-1")
                .command_id("1")
                .user_id("alice")
                .password("secret")
                .message_type("json")
                .version("0.1.0:rust"),
        ),
        (
            "V4.1",
            Command::publish("orders", br#"{"id":"A1","qty":100}"#)
                .seq(1)
                .ack(AckType::Persisted),
        ),
        (
            "V6.1",
            Command::subscribe("orders")
                .command_id("2")
                .sub_id("2")
                .filter("/qty > 50")
                .ack(AckType::Processed),
        ),
        (
            "V7.1",
            Command::sow("orders")
                .command_id("3")
                .query_id("3")
                .filter("/qty >= 5")
                .batch_size(2)
                .acks(AckType::Processed | AckType::Completed | AckType::Stats),
        ),
        (
            "V8.1",
            Command::sow_delete("orders", "/qty < 10")
                .command_id("4")
                .acks(AckType::Processed | AckType::Stats),
        ),
        ("V10.1", Command::heartbeat_start(5)),
        ("V10.3", Command::heartbeat_beat()),
        (
            "V11.1",
            Command::subscribe("jobs")
                .command_id("6")
                .sub_id("6")
                .options("max_backlog=10")
                .ack(AckType::Processed),
        ),
        (
            "V11.4",
            Command::sow_delete_by_bookmarks("jobs", "7844322447166541787|41|")
                .command_id("8")
                .ack(AckType::Processed),
        ),
        (
            "V11.6",
            Command::sow_delete_by_bookmarks(
                "jobs",
                "7844322447166541787|42|,7844322447166541787|43|",
            )
            .options("cancel"),
        ),
        (
            "V13.1",
            Command::subscribe("events")
                .command_id("11")
                .sub_id("11")
                .bookmark("0")
                .acks(AckType::Processed | AckType::Completed),
        ),
    ];
    let client_vectors: Vec<_> = vectors()
        .into_iter()
        .filter(|v| v.to_server)
        .map(|v| v.name)
        .collect();
    for (name, cmd) in &cases {
        assert_eq!(
            String::from_utf8_lossy(&encode(*cmd)),
            String::from_utf8_lossy(&vector(name)),
            "{name}"
        );
    }
    // Every C>S vector is covered, except V5 (long name `publish`, checked below).
    for name in client_vectors {
        assert!(
            name == "V5.1" || cases.iter().any(|(n, _)| *n == name),
            "{name} not covered"
        );
    }
}

#[test]
fn v5_long_publish_name_decodes_like_p() {
    with_msg("V5.1", |m| {
        assert_eq!(m.kind(), CommandKind::Publish);
        assert_eq!((m.command_id(), m.topic()), (Some("7"), Some("orders")));
        assert_eq!(m.ack_types(), AckTypes::of(AckType::Processed));
        assert_eq!(m.data(), br#"{"id":"A2","qty":5}"#);
        let ours = encode(
            Command::publish("orders", br#"{"id":"A2","qty":5}"#)
                .command_id("7")
                .ack(AckType::Processed),
        );
        assert_eq!(
            &ours[4..],
            br#"{"c":"p","cid":"7","t":"orders","a":"processed"}{"id":"A2","qty":5}"#
        );
    });
}

#[test]
fn logon_acks() {
    with_msg("V1.2", |m| {
        assert_eq!(
            (m.kind(), m.ack_type(), m.status()),
            (
                CommandKind::Ack,
                Some(AckType::Processed),
                Some(Status::Success)
            )
        );
        assert_eq!(
            (m.client_name(), m.seq(), m.bookmark()),
            (Some("pub-1"), Some(0), Some("3084015820777091662|0|"))
        );
        assert_eq!(m.version(), Some("5.3.5.0"));
    });
    with_msg("V2.1", |m| assert_eq!(m.seq(), Some(3)));
    with_msg("V3.1", |m| {
        assert_eq!(m.status(), Some(Status::Failure));
        assert!(!m.is_success());
        assert_eq!(m.reason(), Some("authentication failed"));
    });
}

#[test]
fn persisted_ack_without_cid() {
    with_msg("V4.2", |m| {
        assert_eq!(
            (m.ack_type(), m.command_id(), m.seq()),
            (Some(AckType::Persisted), None, Some(1))
        );
        assert_eq!(m.bookmark(), Some("3084015820777091662|1|"));
    });
}

#[test]
fn delivery_and_subscribe_ack() {
    with_msg("V6.2", |m| {
        assert_eq!(
            (m.command_id(), m.ack_type()),
            (Some("2"), Some(AckType::Processed))
        )
    });
    with_msg("V6.3", |m| {
        assert_eq!(m.kind(), CommandKind::Publish);
        assert_eq!(m.sub_ids().collect::<Vec<_>>(), ["2"]);
        assert_eq!(
            (m.sow_key(), m.msg_len()),
            (Some("16666569833721932681"), Some(21))
        );
        assert_eq!(m.data(), br#"{"id":"A1","qty":100}"#);
    });
}

#[test]
fn sow_exchange() {
    with_msg("V7.2", |m| assert_eq!(m.query_id(), Some("3")));
    with_msg("V7.3", |m| {
        assert_eq!(
            (m.kind(), m.query_id()),
            (CommandKind::GroupBegin, Some("3"))
        )
    });
    with_msg("V7.4", |m| {
        assert_eq!((m.kind(), m.batch_size()), (CommandKind::Sow, Some(2)));
        let recs: Vec<_> = m
            .sow_records(Scratch::empty())
            .map(Result::unwrap)
            .collect();
        let keys: Vec<_> = recs.iter().map(|r| r.sow_key().unwrap()).collect();
        assert_eq!(keys, ["16666569833721932681", "16666566535187048048"]);
        assert_eq!(recs[1].data, br#"{"id":"A2","qty":5}"#);
    });
    with_msg("V7.5", |m| {
        let recs: Vec<_> = m
            .sow_records(Scratch::empty())
            .map(Result::unwrap)
            .collect();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].data, br#"{"id":"A3","qty":70}"#);
    });
    with_msg("V7.6", |m| assert_eq!(m.kind(), CommandKind::GroupEnd));
    with_msg("V7.7", |m| {
        assert_eq!(m.ack_type(), Some(AckType::Completed))
    });
    with_msg("V7.8", |m| {
        assert_eq!(m.ack_type(), Some(AckType::Stats));
        assert_eq!(
            m.stats(),
            AckStats {
                matches: Some(3),
                topic_matches: Some(3),
                records_returned: Some(3),
                ..AckStats::default()
            }
        );
    });
}

#[test]
fn sow_delete_stats() {
    with_msg("V8.3", |m| {
        let s = m.stats();
        assert_eq!(
            (s.matches, s.topic_matches, s.records_deleted),
            (Some(1), Some(3), Some(1))
        );
    });
}

#[test]
fn oof_reasons() {
    with_msg("V9.1", |m| {
        assert_eq!(
            (m.kind(), m.oof_reason()),
            (CommandKind::Oof, Some(OofReason::Deleted))
        );
        assert_eq!(m.data(), br#"{"id":"A2","qty":5}"#);
    });
    with_msg("V9.2", |m| {
        assert_eq!(m.oof_reason(), Some(OofReason::Match))
    });
}

#[test]
fn heartbeat_smallest_frame_byte_exact() {
    assert_eq!(
        vector("V10.2"),
        [
            0x00, 0x00, 0x00, 0x11, 0x7b, 0x22, 0x63, 0x22, 0x3a, 0x22, 0x68, 0x65, 0x61, 0x72,
            0x74, 0x62, 0x65, 0x61, 0x74, 0x22, 0x7d
        ]
    );
    with_msg("V10.2", |m| assert_eq!(m.kind(), CommandKind::Heartbeat));
    with_msg("V10.1", |m| assert_eq!(m.options(), Some("start,5")));
}

#[test]
fn queue_exchange() {
    with_msg("V11.2", |m| assert_eq!(m.max_backlog(), Some(2)));
    with_msg("V11.3", |m| {
        assert_eq!(m.bookmark(), Some("7844322447166541787|41|"));
        assert_eq!(m.lease_period(), Some("20261121T180530.250000Z"));
    });
}

#[test]
fn failure_acks() {
    with_msg("V12.1", |m| {
        assert_eq!(
            (m.status(), m.reason()),
            (Some(Status::Failure), Some("bad filter"))
        )
    });
    with_msg("V12.2", |m| {
        assert_eq!(
            (m.command_id(), m.reason()),
            (Some("10"), Some("bad regex topic"))
        )
    });
}

#[test]
fn bookmark_replay_completed() {
    with_msg("V13.3", |m| {
        assert_eq!(m.bookmark(), Some("3084015820777091662|1|"))
    });
    with_msg("V13.4", |m| {
        assert_eq!(
            (m.ack_type(), m.sub_id()),
            (Some(AckType::Completed), Some("11"))
        );
        assert_eq!(m.bookmark(), Some("3084015820777091662|1|"));
    });
}

//! Input read straight into the session's receive buffer (`receive_buffer` + `received`): the
//! same events as `handle_bytes`, whatever the read sizes, with the buffer's bounds kept.

mod common;
use amps_core::codec::Command;
use amps_core::session::{HeartbeatConfig, InputError, Limits, TransportClosed};
use common::*;

fn ready_with(cfg: &amps_core::session::Config<'_>) -> H {
    let mut h = H::new(cfg);
    h.logon();
    h.tx();
    h
}

/// A frame on the wire: length prefix + text.
fn wire(frame: &str) -> Vec<u8> {
    let mut w = (frame.len() as u32).to_be_bytes().to_vec();
    w.extend_from_slice(frame.as_bytes());
    w
}

fn publish(sub_id: &str, data: &str) -> Vec<u8> {
    wire(&format!(
        r#"{{"c":"p","t":"orders","sub_id":"{sub_id}"}}{data}"#
    ))
}

/// Write `bytes` the way a socket read does: into the lent buffer, then report the count.
fn read_into(h: &mut H, bytes: &[u8]) -> usize {
    let buf = h.s.receive_buffer();
    let n = bytes.len().min(buf.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    h.s.received(h.now, n).expect("connected")
}

fn data(evs: &[Ev]) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Delivery { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_frame_split_across_reads_is_delivered_once_whole() {
    let mut h = ready_with(&config("lend-1"));
    h.s.execute(h.now, &Command::subscribe("orders").sub_id("s1"))
        .unwrap();
    h.tx();
    let mut input = publish("s1", "first");
    input.extend(publish("s1", &"x".repeat(3000)));
    input.extend(publish("s1", "third"));
    // Cuts inside the prefix, the header and the payload.
    let cuts = [2, 9, 40, 1500, input.len() - 3, input.len()];
    let mut evs = Vec::new();
    let mut at = 0;
    for cut in cuts {
        assert_eq!(read_into(&mut h, &input[at..cut]), cut - at);
        at = cut;
        let got = h.events();
        if cut < input.len() - 3 {
            assert!(data(&got).len() <= 1, "only complete frames: {got:?}");
        }
        evs.extend(got);
    }
    assert_eq!(
        data(&evs),
        ["first".to_owned(), "x".repeat(3000), "third".into()]
    );
}

#[test]
fn a_full_buffer_lends_nothing_until_its_events_are_taken() {
    let mut cfg = config("lend-2");
    cfg.limits = Limits {
        rx_bytes: 1024,
        ..cfg.limits
    };
    cfg.limits.max_frame = 1024;
    let mut h = ready_with(&cfg);
    h.s.execute(h.now, &Command::subscribe("orders").sub_id("s1"))
        .unwrap();
    h.tx();
    let one = publish("s1", &"y".repeat(60));
    let input: Vec<u8> = one.iter().copied().cycle().take(one.len() * 40).collect();
    let mut at = read_into(&mut h, &input);
    assert_eq!(at, 1024, "as much as the buffer holds, and no more");
    assert!(h.s.receive_buffer().is_empty(), "full: nothing lent");
    assert_eq!(h.s.received(h.now, 10), Ok(0), "nothing taken beyond it");
    let mut delivered = data(&h.events()).len();
    assert_eq!(delivered, 1024 / one.len(), "the complete frames it held");
    while at < input.len() {
        let n = read_into(&mut h, &input[at..]);
        assert!(n > 0, "room again after the events were taken");
        at += n;
        delivered += data(&h.events()).len();
    }
    assert_eq!(delivered, 40);
}

#[test]
fn taken_bytes_make_room_by_moving_the_rest_to_the_front() {
    let mut cfg = config("lend-3");
    cfg.limits = Limits {
        rx_bytes: 4096,
        ..cfg.limits
    };
    cfg.limits.max_frame = 4096;
    let mut h = ready_with(&cfg);
    h.s.execute(h.now, &Command::subscribe("orders").sub_id("s1"))
        .unwrap();
    h.tx();
    let a = publish("s1", &"a".repeat(1000));
    let b = publish("s1", &"b".repeat(1000));
    let mut input = a.clone();
    input.extend_from_slice(&b[..100]);
    assert_eq!(read_into(&mut h, &input), input.len());
    assert_eq!(data(&h.events()), ["a".repeat(1000)]);
    // Lent again before `received`: the same place, what was written still there.
    let lent = h.s.receive_buffer();
    lent[..100].copy_from_slice(&b[..100]);
    assert_eq!(&h.s.receive_buffer()[..100], &b[..100]);
    assert_eq!(h.s.receive_buffer().len(), 4096 - 100);
    assert_eq!(h.s.received(h.now, 0), Ok(0));
    // 100 bytes held behind the 1000-odd taken: they move, the rest of the buffer is free.
    assert_eq!(h.s.receive_buffer().len(), 4096 - 100);
    assert_eq!(read_into(&mut h, &b[100..]), b.len() - 100);
    assert_eq!(data(&h.events()), ["b".repeat(1000)]);
    // Everything taken: the whole buffer is free again.
    assert_eq!(h.s.receive_buffer().len(), 4096);

    // More held than taken before it: not moved while there is room at the end.
    let c = publish("s1", &"c".repeat(30));
    let d = publish("s1", &"d".repeat(3000));
    let mut input = c.clone();
    input.extend_from_slice(&d[..2000]);
    assert_eq!(read_into(&mut h, &input), input.len());
    assert_eq!(data(&h.events()), ["c".repeat(30)]);
    assert_eq!(h.s.receive_buffer().len(), 4096 - input.len());
    // Filling the end moves them; the frame still arrives whole.
    let rest = &d[2000..];
    let mut at = 0;
    while at < rest.len() {
        at += read_into(&mut h, &rest[at..]);
    }
    assert_eq!(data(&h.events()), ["d".repeat(3000)]);
}

#[test]
fn a_record_batch_handed_out_in_parts_survives_the_move() {
    let mut h = ready_with(&config("lend-4"));
    h.s.execute(h.now, &Command::subscribe("orders").sub_id("s1"))
        .unwrap();
    let q = h.s.execute(h.now, &Command::sow("orders")).unwrap();
    h.tx();
    let qid = q.wire();
    let mut input = publish("s1", &"p".repeat(20_000));
    input.extend(wire(&format!(
        r#"{{"c":"sow","t":"orders","query_id":"{qid}"}}{{"k":"1","l":3}}one{{"k":"2","l":3}}two{{"k":"3","l":5}}three"#
    )));
    h.s.handle_bytes(h.now, &input).unwrap();
    let first = h.s.poll_event().map(owned);
    assert!(matches!(&first, Some(Ev::Delivery { data, .. }) if data.len() == 20_000));
    let rec1 = h.s.poll_event().map(owned);
    assert!(
        matches!(&rec1, Some(Ev::Delivery { data, .. }) if data == "one"),
        "{rec1:?}"
    );
    // The batch is still being handed out when new input moves it to the front (through either
    // input path).
    let big = publish("s1", &"q".repeat(30_000));
    assert_eq!(h.s.handle_bytes(h.now, &big[..25_000]), Ok(25_000));
    let rest = h.events();
    assert_eq!(data(&rest), ["two", "three"], "{rest:?}");
    assert_eq!(read_into(&mut h, &big[25_000..]), big.len() - 25_000);
    assert_eq!(data(&h.events()), ["q".repeat(30_000)]);
}

#[test]
fn input_without_a_connection_is_refused_and_ignored() {
    let mut h = H::new(&config("lend-5"));
    h.s.receive_buffer()[..4].copy_from_slice(&[0, 0, 0, 1]);
    assert_eq!(h.s.received(h.now, 4), Err(InputError::NotConnected));
    h.logon();
    h.tx();
    h.s.handle_closed(h.now, TransportClosed::PeerClosed);
    h.events();
    let w = publish("s1", "late");
    let buf = h.s.receive_buffer();
    buf[..w.len()].copy_from_slice(&w);
    assert_eq!(h.s.received(h.now, w.len()), Err(InputError::NotConnected));
    assert!(data(&h.events()).is_empty());
}

#[test]
fn only_completed_frames_read_into_the_buffer_prove_the_server_alive() {
    let mut cfg = config("lend-6");
    cfg.heartbeat = Some(HeartbeatConfig {
        interval_secs: 1,
        timeout: d(2_000),
    });
    let mut h = ready_with(&cfg);
    let hb = wire(r#"{"c":"heartbeat"}"#);
    h.at(1_500);
    assert_eq!(read_into(&mut h, &hb), hb.len());
    h.events();
    // A frame trickled in but never completed does not extend the deadline.
    h.at(3_000);
    assert_eq!(read_into(&mut h, &hb[..5]), 5);
    h.events();
    let evs = h.timeout(3_400);
    assert!(
        !evs.contains(&Ev::Close),
        "the complete frame moved the deadline: {evs:?}"
    );
    let evs = h.timeout(3_600);
    assert!(evs.contains(&Ev::Close), "deadline 1.5 s + 2 s: {evs:?}");
}

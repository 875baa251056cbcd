//! Transaction log, bookmarks, replay, persisted acks, sequence dedupe (docs/protocol.md §8.4, §10,
//! V4, V13) over TCP with raw frames.

mod common;

use amps_core::codec::{AckType, Command};
use common::*;

/// A publisher `pub-1` that wrote `n` messages `{"n":"e<i>"}` to `events` with `s` = i.
fn with_events(n: u64) -> (amps_broker::ServerHandle, Client) {
    let b = broker();
    let mut p = Client::logon(b.local_addr(), "pub-1");
    for i in 1..=n {
        let body = format!(r#"{{"n":"e{i}"}}"#);
        p.send(&Command::publish("events", body.as_bytes()).seq(i));
    }
    p.drain();
    (b, p)
}

fn bm(i: u64) -> String {
    format!("3084015820777091662|{i}|")
}

/// Subscribe with `bookmark` and collect the replayed payloads up to the completed ack.
fn replay(c: &mut Client, id: &str, bookmark: &str, opts: Option<&str>) -> (Vec<String>, Frame) {
    let mut cmd = Command::subscribe("events")
        .sub_id(id)
        .command_id(id)
        .bookmark(bookmark)
        .ack(AckType::Completed);
    if let Some(o) = opts {
        cmd = cmd.options(o);
    }
    c.send(&cmd);
    let (before, done) = c.recv_until(|f| f.is_ack("completed"));
    let data = before
        .iter()
        .map(|f| {
            assert_eq!(f.s("sub_id"), Some(id));
            String::from_utf8(f.data().to_vec()).unwrap()
        })
        .collect();
    (data, done)
}

#[test]
fn v13_replay_from_epoch_then_completed() {
    let (b, _p) = with_events(1);
    let mut c = Client::logon(b.local_addr(), "sub");
    c.send_raw(&vector(
        "0000005a",
        r#"{"c":"subscribe","cid":"11","sub_id":"11","t":"events","bm":"0","a":"processed,completed"}"#,
    ));
    let got: Vec<String> = (0..3).map(|_| c.recv().text().to_owned()).collect();
    assert_eq!(
        got,
        [
            r#"{"c":"ack","cid":"11","a":"processed","status":"success"}"#,
            r#"{"c":"p","t":"events","sub_id":"11","bm":"3084015820777091662|1|","l":10}{"n":"e1"}"#,
            r#"{"c":"ack","cid":"11","a":"completed","status":"success","sub_id":"11","bm":"3084015820777091662|1|"}"#,
        ]
    );
}

#[test]
fn v4_conflated_persisted_ack() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.request(&Command::logon("pub-1").options("ack_conflation=20ms"));
    c.send_raw(&vector(
        "00000041",
        r#"{"c":"p","t":"orders","s":1,"a":"persisted"}{"id":"A1","qty":100}"#,
    ));
    assert_eq!(
        c.recv().header(),
        r#"{"c":"ack","a":"persisted","status":"success","s":1,"bm":"3084015820777091662|1|"}"#
    );
}

#[test]
fn flush_sends_the_owed_persisted_ack_first() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "pub-1");
    for s in 1..=3 {
        c.send(
            &Command::publish("events", b"{}")
                .seq(s)
                .ack(AckType::Persisted),
        );
    }
    c.send(
        &Command::flush()
            .command_id("f")
            .ack(AckType::Processed)
            .ack(AckType::Persisted),
    );
    let got: Vec<String> = (0..4).map(|_| c.recv().header().to_owned()).collect();
    assert_eq!(
        got,
        [
            r#"{"c":"ack","a":"persisted","status":"success","s":3,"bm":"3084015820777091662|3|"}"#,
            r#"{"c":"ack","cid":"f","a":"processed","status":"success"}"#,
            r#"{"c":"ack","cid":"f","a":"completed","status":"success"}"#,
            r#"{"c":"ack","cid":"f","a":"persisted","status":"success"}"#,
        ]
    );
}

#[test]
fn replay_starts_after_a_bookmark() {
    let (b, _p) = with_events(4);
    let mut c = Client::logon(b.local_addr(), "sub");
    let (got, done) = replay(&mut c, "a", &bm(2), None);
    assert_eq!(got, [r#"{"n":"e3"}"#, r#"{"n":"e4"}"#]);
    assert_eq!(done.s("bm"), Some(bm(4).as_str()));
}

#[test]
fn a_bookmark_list_starts_at_the_earliest() {
    let (b, _p) = with_events(4);
    let mut c = Client::logon(b.local_addr(), "sub");
    let (got, _) = replay(&mut c, "l", &format!("{},{}", bm(3), bm(1)), None);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], r#"{"n":"e2"}"#);
}

#[test]
fn a_timestamp_before_the_log_is_epoch_and_after_is_now() {
    let (b, _p) = with_events(2);
    let mut c = Client::logon(b.local_addr(), "sub");
    assert_eq!(replay(&mut c, "t1", "20000101T000000Z", None).0.len(), 2);
    assert_eq!(replay(&mut c, "t2", "29991231T000000Z", None).0.len(), 0);
}

#[test]
fn a_timestamp_inside_the_log_starts_there() {
    let b = broker();
    let mut p = Client::logon(b.local_addr(), "pub-1");
    p.send(&Command::publish("events", b"old").seq(1));
    p.drain();
    let mark = std::time::SystemTime::now();
    // Timestamps are whole seconds: wait until the wall clock has passed the first message's
    // second (an explicit condition, polled).
    let second =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    while second(std::time::SystemTime::now()) == second(mark) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let ts = amps_broker::format_ts(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64,
    );
    let ts = format!("{}Z", &ts[..15]);
    p.send(&Command::publish("events", b"new").seq(2));
    p.drain();
    let mut c = Client::logon(b.local_addr(), "sub");
    assert_eq!(replay(&mut c, "t", &ts, None).0, ["new"]);
}

#[test]
fn ranges_replay_then_complete_and_stop() {
    let (b, mut p) = with_events(5);
    let mut c = Client::logon(b.local_addr(), "sub");
    let (got, done) = replay(&mut c, "r", &format!("[{}:{}]", bm(2), bm(4)), None);
    assert_eq!(got, [r#"{"n":"e2"}"#, r#"{"n":"e3"}"#, r#"{"n":"e4"}"#]);
    assert_eq!(done.s("bm"), Some(bm(4).as_str()));
    let (got, _) = replay(&mut c, "x", &format!("({}:{})", bm(2), bm(4)), None);
    assert_eq!(got, [r#"{"n":"e3"}"#]);
    p.send(&Command::publish("events", b"live").seq(6));
    p.drain();
    assert!(
        c.drain().is_empty(),
        "a finished range delivers nothing live"
    );
}

#[test]
fn unknown_bookmarks_follow_bookmark_not_found() {
    let (b, _p) = with_events(2);
    let mut c = Client::logon(b.local_addr(), "sub");
    assert_eq!(replay(&mut c, "n", "9|9|", None).0.len(), 0);
    assert_eq!(
        replay(&mut c, "e", "9|9|", Some("bookmark_not_found=epoch"))
            .0
            .len(),
        2
    );
    let f = c.request(
        &Command::subscribe("events")
            .sub_id("f")
            .bookmark("9|9|")
            .options("bookmark_not_found=fail"),
    );
    assert_eq!(f.reason(), Some("invalid bookmark"));
    let f = c.request(
        &Command::subscribe("events")
            .sub_id("g")
            .bookmark("20261399T000000"),
    );
    assert_eq!(f.reason(), Some("invalid bookmark"));
}

#[test]
fn replay_then_live_without_gap_or_duplicate() {
    let (b, mut p) = with_events(3);
    let mut c = Client::logon(b.local_addr(), "sub");
    let (got, _) = replay(&mut c, "s", "0", None);
    assert_eq!(got.len(), 3);
    p.send(&Command::publish("events", br#"{"n":"e4"}"#).seq(4));
    let live = c.recv();
    assert_eq!(live.data(), br#"{"n":"e4"}"#);
    assert_eq!(live.s("bm"), Some(bm(4).as_str()));
}

#[test]
fn top_n_limits_the_replay() {
    let (b, _p) = with_events(5);
    let mut c = Client::logon(b.local_addr(), "sub");
    c.send(
        &Command::subscribe("events")
            .sub_id("t")
            .bookmark("0")
            .top_n(2)
            .command_id("t")
            .ack(AckType::Completed),
    );
    let (before, _) = c.recv_until(|f| f.is_ack("completed"));
    assert_eq!(before.len(), 2);
}

#[test]
fn now_bookmark_replays_nothing_and_marks_live_messages() {
    let (b, mut p) = with_events(2);
    let mut c = Client::logon(b.local_addr(), "sub");
    let (got, done) = replay(&mut c, "n", "0|1|", None);
    assert!(got.is_empty());
    assert_eq!(done.s("bm"), Some(bm(2).as_str()));
    p.send(&Command::publish("events", b"x").seq(3));
    assert_eq!(c.recv().s("bm"), Some(bm(3).as_str()));
}

#[test]
fn bookmark_subscription_on_an_unlogged_topic_is_invalid_topic() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "sub");
    let f = c.request(&Command::subscribe("chat").sub_id("c").bookmark("0"));
    assert_eq!(f.reason(), Some("invalid topic"));
}

#[test]
fn pause_then_resume_replays_what_was_missed() {
    let (b, mut p) = with_events(1);
    let mut c = Client::logon(b.local_addr(), "sub");
    replay(&mut c, "p", "0", None);
    assert!(
        c.request(&Command::subscribe("events").sub_id("p").options("pause"))
            .ok()
    );
    p.send(&Command::publish("events", b"while-paused").seq(2));
    p.drain();
    assert!(c.drain().is_empty());
    assert!(
        c.request(&Command::subscribe("events").sub_id("p").options("resume"))
            .ok()
    );
    let f = c.recv();
    assert_eq!(f.data(), b"while-paused");
    p.send(&Command::publish("events", b"after").seq(3));
    assert_eq!(c.recv().data(), b"after");
}

#[test]
fn duplicate_sequences_are_dropped_silently() {
    let (b, mut p) = with_events(2);
    let mut c = Client::logon(b.local_addr(), "sub");
    c.subscribe("events", "live", None);
    let ack = p.request(&Command::publish("events", b"dup").seq(2));
    assert!(ack.ok(), "no failure for a duplicate: {ack:?}");
    p.send(&Command::publish("events", b"new").seq(3));
    let f = c.recv();
    assert_eq!(f.data(), b"new");
    assert!(c.drain().is_empty());
    assert_eq!(b.inspect(|e| e.txlog_len()).unwrap(), 3);
}

#[test]
fn bookmark_subscriptions_get_periodic_persisted_acks() {
    let (b, mut p) = with_events(1);
    let mut c = Client::connect(b.local_addr());
    c.request(&Command::logon("sub").options("ack_conflation=20ms"));
    c.send(
        &Command::subscribe("events")
            .sub_id("s")
            .command_id("c1")
            .bookmark("0")
            .ack(AckType::Persisted),
    );
    let (_, ack) = c.recv_until(|f| f.is_ack("persisted"));
    assert_eq!(
        ack.header(),
        r#"{"c":"ack","cid":"c1","a":"persisted","status":"success","sub_id":"s","bm":"3084015820777091662|1|"}"#
    );
    p.send(&Command::publish("events", b"x").seq(2));
    let (_, ack) = c.recv_until(|f| f.is_ack("persisted"));
    assert_eq!(ack.s("bm"), Some(bm(2).as_str()));
}

#[test]
fn restart_keeps_the_log_and_sequences() {
    let (b, mut p) = with_events(3);
    b.restart();
    assert!(p.expect_close().is_empty());
    let mut p = Client::connect(b.local_addr());
    let ack = p.request(&Command::logon("pub-1"));
    assert_eq!(ack.n("s"), Some(3));
    let mut c = Client::logon(b.local_addr(), "sub");
    assert_eq!(replay(&mut c, "r", "0", None).0.len(), 3);
}

//! Engine-level tests with a virtual clock.
#![allow(clippy::unwrap_used)]

use amps_core::Instant;
use amps_core::codec::{AckType, Command, Message, Scratch, split_frame};

use super::*;

pub(crate) struct Harness {
    pub(crate) e: Engine,
    pub(crate) now: Instant,
}

/// A received frame as text (header + payload).
pub(crate) fn frames(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok(Some((body, used))) = split_frame(rest, u32::MAX) {
        let mut s = vec![0u8; body.len()];
        Message::parse(body, &mut Scratch::new(&mut s)).unwrap();
        out.push(String::from_utf8_lossy(body).into_owned());
        rest = &rest[used..];
    }
    out
}

impl Harness {
    pub(crate) fn new(cfg: Config) -> Harness {
        Harness {
            e: Engine::new(cfg),
            now: Instant::from_secs(1_800_000_000),
        }
    }
    pub(crate) fn open(&mut self) -> ConnId {
        self.e.open(self.now)
    }
    pub(crate) fn send(&mut self, c: ConnId, cmd: Command<'_>) {
        self.e.handle_bytes(self.now, c, &cmd.to_vec().unwrap());
    }
    /// Everything written to `c` so far, as frame texts; also returns close events.
    pub(crate) fn out(&mut self, c: ConnId) -> Vec<String> {
        let mut closes = Vec::new();
        while let Some(ev) = self.e.poll_event() {
            if let EngineEvent::Close { conn, reason } = ev {
                closes.push((conn, reason));
            }
        }
        let mut buf = Vec::new();
        self.e.drain_output(c, &mut buf);
        let mut f = frames(&buf);
        for (conn, reason) in closes {
            if conn == c {
                f.push(format!("CLOSE {reason}"));
            }
        }
        f
    }
    pub(crate) fn advance(&mut self, secs_ms: u64) {
        self.now += amps_core::Duration::from_millis(secs_ms);
        self.e.handle_timeout(self.now);
    }
    pub(crate) fn logon(&mut self, name: &str) -> ConnId {
        let c = self.open();
        self.send(c, Command::logon(name).command_id("L"));
        let f = self.out(c);
        assert!(f[0].contains("success"), "{f:?}");
        c
    }
}

fn cfg() -> Config {
    Config::default()
}

#[test]
fn heartbeat_timing_matches_the_observed_server() {
    // §9: N=1, silent client: heartbeats at 1 s and 2 s, close at 3 s.
    let mut h = Harness::new(cfg());
    let c = h.logon("hb");
    h.send(c, Command::heartbeat_start(1));
    assert!(h.out(c).is_empty());
    h.advance(999);
    assert!(h.out(c).is_empty());
    assert_eq!(
        h.e.poll_timeout(),
        Some(h.now + amps_core::Duration::from_millis(1))
    );
    h.advance(1);
    assert_eq!(h.out(c), [r#"{"c":"heartbeat"}"#]);
    h.advance(1000);
    assert_eq!(h.out(c), [r#"{"c":"heartbeat"}"#]);
    h.advance(999);
    assert!(h.out(c).is_empty());
    h.advance(1);
    assert_eq!(h.out(c), ["CLOSE heartbeat"]);
}

#[test]
fn late_timers_still_give_the_client_two_intervals_to_answer() {
    // The timers run at 5 s instead of 1 s (a busy engine): the heartbeat goes out then, and
    // the client is silent for 2N from that heartbeat, not from when it was due.
    let mut h = Harness::new(cfg());
    let c = h.logon("hb");
    h.send(c, Command::heartbeat_start(1));
    assert!(h.out(c).is_empty());
    h.advance(5000);
    assert_eq!(h.out(c), [r#"{"c":"heartbeat"}"#]);
    assert!(
        h.e.poll_timeout().is_some_and(|t| t > h.now),
        "a deadline already past right after handle_timeout"
    );
    h.advance(1999);
    assert_eq!(h.out(c), [r#"{"c":"heartbeat"}"#]);
    h.advance(1);
    assert_eq!(h.out(c), ["CLOSE heartbeat"]);
}

#[test]
fn any_frame_keeps_a_heartbeat_connection_alive() {
    let mut h = Harness::new(cfg());
    let c = h.logon("hb");
    h.send(c, Command::heartbeat_start(1));
    for _ in 0..10 {
        h.advance(1000);
        assert_eq!(h.out(c), [r#"{"c":"heartbeat"}"#]);
        h.send(c, Command::heartbeat_beat());
        // Each client beat is answered (§9, observed).
        assert_eq!(h.out(c), [r#"{"c":"heartbeat"}"#]);
    }
    h.send(c, Command::heartbeat_stop());
    h.advance(10_000);
    assert!(h.out(c).is_empty());
    assert_eq!(h.e.connection_count(), 1);
}

#[test]
fn heartbeats_off_fault_silences_the_broker() {
    let mut h = Harness::new(cfg());
    let c = h.logon("hb");
    h.send(c, Command::heartbeat_start(1));
    h.e.faults().heartbeats_off = true;
    h.send(c, Command::heartbeat_beat());
    h.advance(5000);
    assert!(h.out(c).is_empty());
    assert_eq!(h.e.connection_count(), 1);
}

#[test]
fn persisted_acks_are_conflated_per_interval() {
    let mut h = Harness::new(cfg());
    let c = h.logon("pub-1");
    for s in 1..=5 {
        h.send(
            c,
            Command::publish("orders", br#"{"id":"A1","qty":100}"#)
                .seq(s)
                .ack(AckType::Persisted),
        );
    }
    assert!(h.out(c).is_empty(), "nothing before the interval");
    h.advance(999);
    assert!(h.out(c).is_empty());
    h.advance(1);
    assert_eq!(
        h.out(c),
        [r#"{"c":"ack","a":"persisted","status":"success","s":5,"bm":"3084015820777091662|5|"}"#]
    );
    h.advance(5000);
    assert!(h.out(c).is_empty(), "nothing owed, nothing sent");
}

#[test]
fn a_failure_splits_the_persisted_run() {
    // §8.4: 1–5 with 3 rejected → success s=2, failure s=3, success s=5.
    let mut h = Harness::new(cfg());
    let c = h.logon("pub-1");
    for s in 1..=5 {
        if s == 3 {
            h.e.faults().fail_next_publish = Some("not entitled".into());
        }
        h.send(
            c,
            Command::publish("orders", br#"{"id":"A1"}"#)
                .seq(s)
                .ack(AckType::Persisted),
        );
    }
    h.advance(1000);
    assert_eq!(
        h.out(c),
        [
            r#"{"c":"ack","a":"persisted","status":"success","s":2,"bm":"3084015820777091662|2|"}"#,
            r#"{"c":"ack","a":"persisted","status":"failure","reason":"not entitled","s":3}"#,
            r#"{"c":"ack","a":"persisted","status":"success","s":5,"bm":"3084015820777091662|5|"}"#,
        ]
    );
}

#[test]
fn logon_option_changes_the_conflation_interval() {
    let mut h = Harness::new(cfg());
    let c = h.open();
    h.send(c, Command::logon("p").options("ack_conflation=100ms"));
    h.out(c);
    h.send(
        c,
        Command::publish("events", b"{}")
            .seq(1)
            .ack(AckType::Persisted),
    );
    h.advance(100);
    assert_eq!(h.out(c).len(), 1);
}

#[test]
fn sow_records_expire_with_oof() {
    let mut h = Harness::new(cfg());
    let sub = h.logon("sub");
    h.send(
        sub,
        Command::sow_and_subscribe("orders")
            .sub_id("s")
            .options("oof"),
    );
    h.out(sub);
    let p = h.logon("pub");
    h.send(
        p,
        Command::publish("orders", br#"{"id":"E1"}"#).expiration(2),
    );
    assert_eq!(h.out(sub).len(), 1);
    h.advance(1999);
    assert!(h.out(sub).is_empty());
    assert_eq!(h.e.sow_count("orders"), Some(1));
    h.advance(1);
    let f = h.out(sub);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].starts_with(r#"{"c":"oof","t":"orders","sub_id":"s","k":"#),
        "{f:?}"
    );
    assert!(f[0].contains(r#""reason":"expired""#) && f[0].ends_with(r#"{"id":"E1"}"#));
    assert_eq!(h.e.sow_count("orders"), Some(0));
}

#[test]
fn an_update_resets_the_expiration() {
    let mut h = Harness::new(cfg());
    let p = h.logon("pub");
    h.send(
        p,
        Command::publish("orders", br#"{"id":"E1"}"#).expiration(1),
    );
    h.advance(500);
    h.send(
        p,
        Command::publish("orders", br#"{"id":"E1"}"#).expiration(1),
    );
    h.advance(600);
    assert_eq!(h.e.sow_count("orders"), Some(1));
    h.advance(400);
    assert_eq!(h.e.sow_count("orders"), Some(0));
}

#[test]
fn queue_leases_expire_and_redeliver() {
    let mut h = Harness::new(cfg());
    let w1 = h.logon("w1");
    h.send(w1, Command::subscribe("jobs").sub_id("q"));
    let p = h.logon("pub");
    h.send(p, Command::publish("jobs", br#"{"job":1}"#));
    let f = h.out(w1);
    assert_eq!(f.len(), 1);
    assert!(f[0].contains(r#""lp":""#), "{f:?}");
    // The default lease is 30 s: nothing before, redelivery after.
    h.advance(29_999);
    assert!(h.out(w1).is_empty());
    h.advance(1);
    let again = h.out(w1);
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].contains(r#""bm":"#));
}

#[test]
fn delayed_acks_are_released_on_time() {
    let mut h = Harness::new(cfg());
    let c = h.logon("d");
    h.e.faults().delay_acks = Some(amps_core::Duration::from_millis(300));
    h.send(
        c,
        Command::publish("x", b"1")
            .command_id("1")
            .ack(AckType::Processed),
    );
    assert!(h.out(c).is_empty());
    assert_eq!(
        h.e.poll_timeout(),
        Some(h.now + amps_core::Duration::from_millis(300))
    );
    h.advance(300);
    assert_eq!(h.out(c).len(), 1);
}

/// The same calls in the same order give byte-identical output.
#[test]
fn deterministic() {
    fn run() -> Vec<String> {
        let mut h = Harness::new(cfg());
        let subs: Vec<ConnId> = (0..4)
            .map(|i| {
                let c = h.logon(&format!("s{i}"));
                h.send(c, Command::subscribe(".*").sub_id("all"));
                h.send(
                    c,
                    Command::sow_and_subscribe("orders")
                        .sub_id("o")
                        .options("oof"),
                );
                h.send(
                    c,
                    Command::subscribe("jobs")
                        .sub_id("j")
                        .options("max_backlog=2"),
                );
                c
            })
            .collect();
        let p = h.logon("p");
        for i in 0..20 {
            let body = format!(r#"{{"id":"K{}","n":{i}}}"#, i % 5);
            h.send(
                p,
                Command::publish("orders", body.as_bytes()).seq(3 * i + 1),
            );
            h.send(p, Command::publish("jobs", body.as_bytes()).seq(3 * i + 2));
            h.send(
                p,
                Command::publish("events", body.as_bytes()).seq(3 * i + 3),
            );
            h.advance(700);
        }
        h.send(p, Command::sow_delete("orders", "/n > 10"));
        let mut all = Vec::new();
        for c in subs.into_iter().chain([p]) {
            all.extend(h.out(c));
        }
        all
    }
    let a = run();
    assert!(a.len() > 100);
    assert_eq!(a, run());
}

#[test]
fn restart_keeps_state_and_drops_connections() {
    let mut h = Harness::new(cfg());
    let c = h.logon("pub-1");
    h.send(c, Command::publish("orders", br#"{"id":"A1"}"#).seq(7));
    h.send(c, Command::publish("jobs", br#"{"j":1}"#));
    h.e.restart(h.now);
    assert_eq!(h.out(c), ["CLOSE broker restart"]);
    assert_eq!(h.e.connection_count(), 0);
    assert_eq!(h.e.sow_count("orders"), Some(1));
    assert_eq!(h.e.queue_depth("jobs"), Some(1));
    assert_eq!(h.e.txlog_len(), 1);
    let c = h.open();
    h.send(c, Command::logon("pub-1").command_id("1"));
    assert!(
        h.out(c)[0].contains(r#""s":8"#),
        "7, then the queue publish took 8"
    );
}

#[test]
fn closed_connections_are_ignored() {
    let mut h = Harness::new(cfg());
    let c = h.logon("x");
    h.e.faults().close(c);
    assert_eq!(h.out(c), ["CLOSE fault injected"]);
    h.send(c, Command::publish("x", b"1"));
    h.e.handle_closed(h.now, c);
    h.e.handle_timeout(h.now);
    assert!(h.out(c).is_empty());
}

fn queue_cfg(q: crate::config::QueueTopic) -> Config {
    Config {
        queues: vec![q],
        ..Config::default()
    }
}

#[test]
fn queue_max_deliveries_expires_a_message() {
    let mut h = Harness::new(queue_cfg(crate::config::QueueTopic {
        topic: "jobs".into(),
        lease_period: crate::config::ConfDuration(amps_core::Duration::from_secs(1)),
        max_deliveries: 2,
        ..Default::default()
    }));
    let w = h.logon("w");
    h.send(w, Command::subscribe("jobs").sub_id("q"));
    h.out(w);
    let p = h.logon("p");
    h.send(p, Command::publish("jobs", b"{}"));
    assert_eq!(h.out(w).len(), 1);
    h.advance(1000);
    assert_eq!(h.out(w).len(), 1, "second delivery");
    h.advance(1000);
    assert!(h.out(w).is_empty(), "two deliveries: expired");
    assert_eq!(h.e.queue_depth("jobs"), Some(0));
}

#[test]
fn queue_max_cancels_expires_a_message() {
    let mut h = Harness::new(queue_cfg(crate::config::QueueTopic {
        topic: "jobs".into(),
        max_cancels: 1,
        ..Default::default()
    }));
    let w = h.logon("w");
    h.send(w, Command::subscribe("jobs").sub_id("q"));
    h.out(w);
    let p = h.logon("p");
    h.send(p, Command::publish("jobs", b"{}"));
    let f = h.out(w);
    let bm = f[0]
        .split(r#""bm":""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    h.send(
        w,
        Command::sow_delete_by_bookmarks("jobs", &bm).options("cancel"),
    );
    assert!(h.out(w).is_empty());
    assert_eq!(h.e.queue_depth("jobs"), Some(0));
}

#[test]
fn at_most_once_queues_remove_on_send_but_hold_the_backlog() {
    let mut h = Harness::new(queue_cfg(crate::config::QueueTopic {
        topic: "jobs".into(),
        at_most_once: true,
        ..Default::default()
    }));
    let w = h.logon("w");
    h.send(w, Command::subscribe("jobs").sub_id("q"));
    h.out(w);
    let p = h.logon("p");
    h.send(p, Command::publish("jobs", b"1"));
    h.send(p, Command::publish("jobs", b"2"));
    let f = h.out(w);
    assert_eq!(f.len(), 1);
    assert!(!f[0].contains(r#""lp""#), "no lease: {f:?}");
    assert_eq!(h.e.queue_depth("jobs"), Some(1));
    let bm = f[0]
        .split(r#""bm":""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    h.send(w, Command::sow_delete_by_bookmarks("jobs", &bm));
    assert_eq!(h.out(w).len(), 1, "the slot freed: the next message");
    h.advance(60_000);
    assert!(h.out(w).is_empty(), "never redelivered");
}

#[test]
fn queue_messages_expire() {
    let mut h = Harness::new(cfg());
    let p = h.logon("p");
    h.send(p, Command::publish("jobs", b"1").expiration(1));
    assert_eq!(h.e.queue_depth("jobs"), Some(1));
    h.advance(1000);
    assert_eq!(h.e.queue_depth("jobs"), Some(0));
}

#[test]
fn paused_queue_consumers_get_nothing_until_resumed() {
    let mut h = Harness::new(cfg());
    let w = h.logon("w");
    h.send(w, Command::subscribe("jobs").sub_id("q").options("pause"));
    h.out(w);
    let p = h.logon("p");
    h.send(p, Command::publish("jobs", b"1"));
    assert!(h.out(w).is_empty());
    h.send(w, Command::subscribe("jobs").sub_id("q").options("resume"));
    let f = h.out(w);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].ends_with("}1"));
}

#[test]
fn engine_is_send() {
    fn send<T: Send>() {}
    send::<Engine>();
}

#[test]
fn conflation_delivers_the_latest_update_per_key_per_interval() {
    let mut h = Harness::new(cfg());
    let s = h.logon("s");
    h.send(
        s,
        Command::subscribe("orders")
            .sub_id("c")
            .options("conflation=1s"),
    );
    h.send(
        s,
        Command::subscribe("chat")
            .sub_id("p")
            .options("conflation=1s"),
    );
    h.out(s);
    let p = h.logon("p");
    for q in 1..=3 {
        let body = format!(r#"{{"id":"A1","q":{q}}}"#);
        h.send(p, Command::publish("orders", body.as_bytes()));
    }
    h.send(p, Command::publish("orders", br#"{"id":"A2","q":9}"#));
    h.send(p, Command::publish("chat", b"not a SOW topic: at once"));
    assert_eq!(h.out(s).len(), 1);
    h.advance(999);
    assert!(h.out(s).is_empty());
    h.advance(1);
    let f = h.out(s);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f[0].ends_with(r#"{"id":"A1","q":3}"#));
    assert!(f[1].ends_with(r#"{"id":"A2","q":9}"#));
    h.advance(5000);
    assert!(h.out(s).is_empty());
    h.send(
        s,
        Command::subscribe("x")
            .sub_id("bad")
            .options("conflation=soon"),
    );
    assert!(h.out(s).is_empty(), "no processed requested");
}

#[test]
fn any_chunking_gives_the_same_output() {
    fn run(chunk: usize) -> Vec<String> {
        let mut h = Harness::new(cfg());
        let s = h.logon("s");
        h.send(s, Command::subscribe("t").sub_id("x"));
        h.out(s);
        let p = h.open();
        let mut wire = Command::logon("p").to_vec().unwrap();
        for i in 0..50u64 {
            let body = format!("payload-{i}-{}", "z".repeat(i as usize * 7));
            wire.extend(Command::publish("t", body.as_bytes()).to_vec().unwrap());
        }
        for piece in wire.chunks(chunk) {
            h.e.handle_bytes(h.now, p, piece);
        }
        h.out(s)
    }
    let whole = run(usize::MAX);
    assert_eq!(whole.len(), 50);
    for chunk in [1, 2, 3, 5, 7, 64, 333] {
        assert_eq!(run(chunk), whole, "chunk {chunk}");
    }
}

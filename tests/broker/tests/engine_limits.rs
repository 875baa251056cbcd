//! The limits at the engine level, on a virtual clock: compilation offloaded while other
//! connections go on, logon and idle timeouts, the caps on partial frames and on unsent output
//! (largest first), and the accounted figures behind them.

use amps_broker::config::Limits;
use amps_broker::{CloseReason, Config, ConnId, Engine, EngineEvent};
use amps_core::codec::{AckType, Command, Message, Scratch, split_frame};
use amps_core::{Duration, Instant};

struct H {
    e: Engine,
    now: Instant,
}

impl H {
    fn new(cfg: Config) -> H {
        H {
            e: Engine::new(cfg),
            now: Instant::from_secs(1_800_000_000),
        }
    }
    fn send(&mut self, c: ConnId, cmd: Command<'_>) {
        self.e.handle_bytes(self.now, c, &cmd.to_vec().unwrap());
    }
    fn logon(&mut self, name: &str) -> ConnId {
        let c = self.e.open(self.now);
        self.send(c, Command::logon(name).command_id("L"));
        let f = self.out(c).0;
        assert!(f[0].contains(r#""status":"success""#), "{f:?}");
        c
    }
    /// Frames written to `c` (drained) and every close event so far.
    fn out(&mut self, c: ConnId) -> (Vec<String>, Vec<(ConnId, CloseReason)>) {
        let closes = self.closes();
        let mut buf = Vec::new();
        self.e.drain_output(c, &mut buf);
        (frames(&buf), closes)
    }
    fn closes(&mut self) -> Vec<(ConnId, CloseReason)> {
        let mut v = Vec::new();
        while let Some(ev) = self.e.poll_event() {
            if let EngineEvent::Close { conn, reason } = ev {
                v.push((conn, reason));
            }
        }
        v
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.e.handle_timeout(self.now);
    }
}

fn frames(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some((body, used))) = split_frame(bytes, u32::MAX) {
        let mut s = vec![0u8; body.len()];
        Message::parse(body, &mut Scratch::new(&mut s)).unwrap();
        out.push(String::from_utf8_lossy(body).into_owned());
        bytes = &bytes[used..];
    }
    out
}

fn with_limits(f: impl FnOnce(&mut Limits)) -> Config {
    let mut cfg = Config::default();
    f(&mut cfg.limits);
    cfg
}

#[test]
fn offloaded_compilation_parks_only_the_connection_that_needs_it() {
    let mut h = H::new(Config::default());
    h.e.set_offload_compiles(true);
    let attacker = h.logon("attacker");
    let mut wire = Vec::new();
    for i in 0..1000 {
        let id = i.to_string();
        wire.extend(
            Command::subscribe(r"^orders\.[a-z]+$")
                .sub_id(&id)
                .command_id(&id)
                .ack(AckType::Received)
                .ack(AckType::Processed)
                .to_vec()
                .unwrap(),
        );
    }
    wire.extend(Command::flush().command_id("f").to_vec().unwrap());
    h.e.handle_bytes(h.now, attacker, &wire);
    assert!(h.e.input_paused(attacker));
    assert!(h.out(attacker).0.is_empty(), "not even `received` yet");
    // Everyone else goes on while the pattern waits: logon, publish, subscribe.
    let other = h.logon("other");
    h.send(
        other,
        Command::subscribe("plain").sub_id("s").command_id("s"),
    );
    h.send(other, Command::flush().command_id("f"));
    assert!(
        h.out(other)
            .0
            .last()
            .unwrap()
            .contains(r#""a":"completed""#)
    );
    let s = h.e.stats();
    assert_eq!(
        (s.compiles, s.compiles_pending, s.parked_connections),
        (0, 1, 1)
    );
    // One job for the 1,000 identical patterns.
    let job = h.e.poll_compile().expect("a job");
    assert!(h.e.poll_compile().is_none());
    h.e.handle_compiled(h.now, job.run());
    let got = h.out(attacker).0;
    assert_eq!(
        got.len(),
        2001,
        "received + processed per subscribe, then the flush"
    );
    assert!(got[0].contains(r#""cid":"0","a":"received""#));
    assert!(got[1].contains(r#""cid":"0","a":"processed","status":"success""#));
    assert!(got[1999].contains(r#""cid":"999","a":"processed""#));
    assert!(
        got[2000].contains(r#""cid":"f""#),
        "later frames after: {}",
        got[2000]
    );
    let s = h.e.stats();
    assert_eq!((s.compiles, s.inline_compiles, s.patterns), (1, 0, 1));
    assert_eq!(s.compile_hits, 1000);
    assert!(!h.e.input_paused(attacker));
}

#[test]
fn a_refused_pattern_fails_every_waiting_command_and_is_compiled_once() {
    let mut h = H::new(Config::default());
    h.e.set_offload_compiles(true);
    let a = h.logon("a");
    let b = h.logon("b");
    for c in [a, b] {
        for i in 0..3 {
            h.send(
                c,
                Command::subscribe(r"\w{1,100}z")
                    .sub_id(&i.to_string())
                    .command_id(&i.to_string())
                    .ack(AckType::Processed),
            );
        }
    }
    let job = h.e.poll_compile().unwrap();
    assert!(h.e.poll_compile().is_none(), "two connections, one job");
    h.e.handle_compiled(h.now, job.run());
    for c in [a, b] {
        let got = h.out(c).0;
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|f| f.contains(
            r#""reason":"bad regex topic: pattern too large (compiled size limit 4194304 bytes)""#
        )));
    }
    h.send(a, Command::subscribe(r"\w{1,100}z").sub_id("again"));
    assert!(h.e.poll_compile().is_none(), "the refusal is remembered");
    assert_eq!(h.e.stats().compiles, 1);
}

#[test]
fn the_pattern_budget_holds_and_frees_with_unsubscribe() {
    let one = Limits::default().regex().min_cost();
    let mut h = H::new(with_limits(|l| l.max_pattern_bytes = 3 * one));
    let c = h.logon("c");
    for i in 0..5 {
        h.send(
            c,
            Command::subscribe(&format!("^t{i}.*"))
                .sub_id(&i.to_string())
                .command_id(&i.to_string())
                .ack(AckType::Processed),
        );
    }
    let got = h.out(c).0;
    assert_eq!(got.iter().filter(|f| f.contains("success")).count(), 3);
    assert!(got[3].contains(&format!(
        "bad regex topic: compiled patterns too large (broker limit {} bytes)",
        3 * one
    )));
    let s = h.e.stats();
    assert!(s.pattern_bytes <= 3 * one && s.pattern_bytes_peak <= 3 * one);
    h.send(c, Command::unsubscribe("0").command_id("u"));
    h.send(
        c,
        Command::subscribe("^t9.*")
            .sub_id("9")
            .command_id("9")
            .ack(AckType::Processed),
    );
    assert!(h.out(c).0.last().unwrap().contains("success"), "room made");
}

#[test]
fn silent_connections_are_closed_at_the_logon_timeout() {
    let mut h = H::new(with_limits(|l| {
        l.logon_timeout = amps_broker::config::ConfDuration(Duration::from_secs(10));
        l.idle_timeout = amps_broker::config::ConfDuration(Duration::ZERO);
    }));
    let silent = h.e.open(h.now);
    let half = h.e.open(h.now);
    h.e.handle_bytes(h.now, half, &Command::logon("x").to_vec().unwrap()[..10]);
    assert_eq!(
        h.e.poll_timeout(),
        Some(h.now + Duration::from_secs(10)),
        "the deadline is a timer"
    );
    h.advance(Duration::from_secs(9));
    let ok = h.logon("ok");
    assert!(h.closes().is_empty());
    h.advance(Duration::from_secs(1));
    let closes = h.closes();
    assert_eq!(
        closes,
        [
            (silent, CloseReason::LogonTimeout),
            (half, CloseReason::LogonTimeout)
        ]
    );
    assert_eq!(h.e.connections(), [(ok, Some("ok".to_owned()))]);
    assert_eq!(h.e.stats().closed_logon_timeout, 2);
    assert_eq!(h.e.stats().input_bytes, 0, "the half frame is gone");
}

#[test]
fn a_connection_without_a_complete_frame_is_closed_at_the_idle_timeout() {
    let mut h = H::new(with_limits(|l| {
        l.idle_timeout = amps_broker::config::ConfDuration(Duration::from_secs(60))
    }));
    let stalled = h.logon("stalled");
    let lively = h.logon("lively");
    // Half a frame is not a frame.
    let frame = Command::publish("t", &[b'x'; 1000]).to_vec().unwrap();
    h.e.handle_bytes(h.now, stalled, &frame[..500]);
    h.advance(Duration::from_secs(30));
    h.send(lively, Command::heartbeat_beat());
    h.advance(Duration::from_secs(30));
    assert_eq!(h.closes(), [(stalled, CloseReason::IdleTimeout)]);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.closes(), [(lively, CloseReason::IdleTimeout)]);
}

#[test]
fn partial_frames_above_the_total_close_the_largest_holder() {
    let mut h = H::new(Config {
        max_frame: 1 << 20,
        limits: Limits {
            max_input_bytes: 1 << 20,
            ..Limits::default()
        },
        ..Config::default()
    });
    let small = h.logon("small");
    let large = h.logon("large");
    let prefix = |n: u32| n.to_be_bytes().to_vec();
    let mut part = prefix(900_000);
    part.extend(vec![b'{'; 300_000]);
    h.e.handle_bytes(h.now, small, &part);
    let mut part = prefix(900_000);
    part.extend(vec![b'{'; 800_000]);
    h.e.handle_bytes(h.now, large, &part);
    let (got, closes) = h.out(large);
    assert_eq!(closes, [(large, CloseReason::InputLimit)]);
    assert_eq!(
        got,
        [r#"{"c":"ack","a":"processed","status":"failure","reason":"message too large"}"#]
    );
    let s = h.e.stats();
    assert!(s.input_bytes <= 1 << 20, "{s:?}");
    assert!(s.input_bytes_peak <= 1 << 20, "{s:?}");
    assert_eq!(s.closed_input_limit, 1);
}

#[test]
fn output_above_the_total_closes_the_largest_backlog_first() {
    let mut h = H::new(Config {
        limits: Limits {
            max_output_bytes: 200_000,
            ..Limits::default()
        },
        ..Config::default()
    });
    // Three subscribers that never read: `big` matches three topics, `mid` two, `low` one.
    let subs: Vec<(ConnId, usize)> = [("big", 3), ("mid", 2), ("low", 1)]
        .into_iter()
        .map(|(name, n)| {
            let c = h.logon(name);
            for t in 0..n {
                h.send(
                    c,
                    Command::subscribe(&format!("t{t}")).sub_id(&t.to_string()),
                );
            }
            (c, n)
        })
        .collect();
    let publisher = h.logon("p");
    let mut order = Vec::new();
    for round in 0..200 {
        for t in 0..3 {
            h.send(publisher, Command::publish(&format!("t{t}"), &[b'x'; 1000]));
        }
        let s = h.e.stats();
        assert!(s.output_bytes <= 200_000, "round {round}: {s:?}");
        let mut sink = Vec::new();
        h.e.drain_output(publisher, &mut sink);
        for (c, why) in h.closes() {
            assert_eq!(why, CloseReason::SlowConsumer);
            order.push(c);
        }
    }
    let expect: Vec<ConnId> = subs.iter().map(|(c, _)| *c).collect();
    assert_eq!(order, expect, "largest backlog first");
    assert!(h.e.stats().output_bytes_peak <= 200_000);
}

#[test]
fn written_bytes_count_until_the_driver_reports_them() {
    let mut h = H::new(Config::default());
    h.e.set_track_writes(true);
    let c = h.logon("c");
    // The logon ack was drained by `logon` and is still in flight.
    let in_flight = h.e.stats().output_bytes;
    assert!(in_flight > 0);
    h.send(c, Command::flush().command_id("f"));
    let queued = h.e.stats().output_bytes - in_flight;
    assert!(queued > 0);
    h.e.handle_written(c, in_flight);
    assert_eq!(h.e.stats().output_bytes, queued);
    let mut buf = Vec::new();
    h.e.drain_output(c, &mut buf);
    h.e.handle_written(c, buf.len());
    assert_eq!(h.e.stats().output_bytes, 0);
    // A connection's own limit counts what is in flight too.
    let mut h = H::new(Config {
        slow_consumer_bytes: 4_000,
        ..Config::default()
    });
    h.e.set_track_writes(true);
    let s = h.logon("s");
    h.send(s, Command::subscribe("t").sub_id("s"));
    let p = h.logon("p");
    for _ in 0..3 {
        h.send(p, Command::publish("t", &[b'x'; 1000]));
        let mut buf = Vec::new();
        h.e.drain_output(s, &mut buf); // handed to a socket that never finishes writing
    }
    assert!(h.closes().is_empty());
    h.send(p, Command::publish("t", &[b'x'; 1000]));
    assert_eq!(h.closes(), [(s, CloseReason::SlowConsumer)]);
}

#[test]
fn a_compiled_pattern_is_held_while_its_command_waits_for_another() {
    let r = Limits::default().regex().min_cost();
    let f = "/a = 1".len() * amps_broker::compile::FILTER_BYTES_PER_CHAR;
    // Room for an unused pattern plus the two the subscription needs, less one byte.
    let mut h = H::new(with_limits(|l| l.max_pattern_bytes = r + r + f - 1));
    h.e.set_offload_compiles(true);
    let c = h.logon("c");
    // A query compiles `^u.*` and leaves it unused.
    h.send(c, Command::sow("^u.*").command_id("q"));
    let job = h.e.poll_compile().unwrap();
    h.e.handle_compiled(h.now, job.run());
    h.out(c);
    h.send(
        c,
        Command::subscribe("^r.*")
            .filter("/a = 1")
            .sub_id("s")
            .command_id("s")
            .ack(AckType::Processed),
    );
    let (first, second) = (h.e.poll_compile().unwrap(), h.e.poll_compile().unwrap());
    h.e.handle_compiled(h.now, first.run());
    assert!(h.e.input_paused(c));
    // Making room for the second drops the unused pattern, not the one the command holds.
    h.e.handle_compiled(h.now, second.run());
    let got = h.out(c).0;
    assert!(got[0].contains(r#""status":"success""#), "{got:?}");
    assert!(h.e.poll_compile().is_none());
    let s = h.e.stats();
    assert_eq!((s.compiles, s.patterns), (3, 2), "{s:?}");
    assert!(s.pattern_bytes_peak < r + r + f);
}

mod offload_props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A subscribe (or sow, or sow_delete) from connection `c`, in `split` pieces.
        Cmd {
            c: usize,
            kind: u8,
            topic: usize,
            filter: usize,
            split: usize,
        },
        /// Run the oldest (or newest) pending compilation.
        Compile {
            newest: bool,
        },
        Close(usize),
        Advance(u64),
        Hold(bool),
    }

    const TOPICS: [&str; 5] = ["orders", "^o.*", r"\w{1,100}z", "(", "t.x"];
    const FILTERS: [&str; 4] = ["", "/a = 1", "/a LIKE 'x.*'", "(("];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3usize, 0..4u8, 0..TOPICS.len(), 0..FILTERS.len(), 1..4usize).prop_map(
                |(c, kind, topic, filter, split)| Op::Cmd { c, kind, topic, filter, split }
            ),
            3 => any::<bool>().prop_map(|newest| Op::Compile { newest }),
            1 => (0..3usize).prop_map(Op::Close),
            1 => (0..20_000u64).prop_map(Op::Advance),
            1 => any::<bool>().prop_map(Op::Hold),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

        /// Parking, compiling in any order, closing and timing out never panic, never lose
        /// count (the engine re-counts its accounting at every call in debug builds), and
        /// every connection is unparked once every job has run.
        #[test]
        fn offloaded_compilation_in_any_order(ops in prop::collection::vec(op(), 1..60)) {
            // A small program limit keeps refusals quick in a debug build.
            let cfg = with_limits(|l| {
                l.regex_size_limit = 256 << 10;
                l.max_pattern_bytes = 3 * l.regex().min_cost();
            });
            let budget = cfg.limits.max_pattern_bytes;
            let mut h = H::new(cfg);
            h.e.set_offload_compiles(true);
            let conns: Vec<ConnId> = (0..3).map(|i| h.logon(&format!("c{i}"))).collect();
            let mut jobs = Vec::new();
            let mut n = 0u32;
            for op in ops {
                match op {
                    Op::Cmd { c, kind, topic, filter, split } => {
                        n += 1;
                        let id = n.to_string();
                        let (t, f) = (TOPICS[topic], FILTERS[filter]);
                        let cmd = match kind {
                            0 => Command::subscribe(t).sub_id(&id),
                            1 => Command::sow(t),
                            2 => Command::sow_and_subscribe(t).sub_id(&id),
                            _ => Command::sow_delete(t, f),
                        };
                        let cmd = if f.is_empty() { cmd } else { cmd.filter(f) };
                        let wire = cmd.command_id(&id).ack(AckType::Processed).to_vec().unwrap();
                        for piece in wire.chunks(wire.len().div_ceil(split)) {
                            h.e.handle_bytes(h.now, conns[c], piece);
                        }
                    }
                    Op::Compile { newest } => {
                        while let Some(j) = h.e.poll_compile() {
                            jobs.push(j);
                        }
                        let j = if newest { jobs.pop() } else if jobs.is_empty() { None } else { Some(jobs.remove(0)) };
                        if let Some(j) = j {
                            h.e.handle_compiled(h.now, j.run());
                        }
                    }
                    Op::Close(c) => h.e.handle_closed(h.now, conns[c]),
                    Op::Advance(ms) => h.advance(Duration::from_millis(ms)),
                    Op::Hold(on) => h.e.faults().hold_compiles = on,
                }
                h.closes();
                for c in &conns {
                    let mut sink = Vec::new();
                    h.e.drain_output(*c, &mut sink);
                }
                let s = h.e.stats();
                prop_assert!(s.pattern_bytes <= budget);
            }
            h.e.faults().hold_compiles = false;
            loop {
                while let Some(j) = h.e.poll_compile() {
                    jobs.push(j);
                }
                let Some(j) = jobs.pop() else { break };
                h.e.handle_compiled(h.now, j.run());
            }
            for c in &conns {
                prop_assert!(!h.e.input_paused(*c));
            }
            prop_assert_eq!(h.e.stats().compiles_pending, 0);
            prop_assert_eq!(h.e.stats().inline_compiles, 0);
        }
    }
}

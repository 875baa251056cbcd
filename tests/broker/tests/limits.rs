//! One misbehaving client against the TCP server, over loopback: while it tries each abuse,
//! another client logs on, and the broker's accounted figures stay within their caps.
//!
//! Synchronisation is explicit: `wait_for` polls the broker's accounted figures (each poll is a
//! round trip through the engine task, no sleep), compilation is held with the
//! `hold_compiles` fault, and timeouts run on a manual clock moved by `advance_clock`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant as WallInstant;

use amps_broker::config::{ConfDuration, Limits};
use amps_broker::{Config, ServerHandle, Stats};
use amps_core::codec::{AckType, Command};
use amps_core::{Duration, Instant};
use common::*;

/// Poll the broker's figures until `pred` holds (panics after the guard).
fn wait_for(b: &ServerHandle, what: &str, pred: impl Fn(&Stats) -> bool) -> Stats {
    let start = WallInstant::now();
    loop {
        let s = b.stats().expect("broker running");
        if pred(&s) {
            return s;
        }
        assert!(start.elapsed() < GUARD, "never reached: {what}; last {s:?}");
        std::thread::yield_now();
    }
}

fn manual(cfg: Config) -> ServerHandle {
    ServerHandle::start_blocking_manual_clock(
        cfg,
        "127.0.0.1:0".parse().unwrap(),
        Instant::from_secs(1_800_000_000),
    )
    .unwrap()
}

fn secs(n: u64) -> ConfDuration {
    ConfDuration(Duration::from_secs(n))
}

/// `n` subscribe frames for `topic`, each asking for its processed ack.
fn subscribes(topic: &str, filter: Option<&str>, n: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..n {
        let id = i.to_string();
        let mut cmd = Command::subscribe(topic)
            .sub_id(&id)
            .command_id(&id)
            .ack(AckType::Processed);
        if let Some(f) = filter {
            cmd = cmd.filter(f);
        }
        wire.extend(cmd.to_vec().unwrap());
    }
    wire
}

#[test]
fn a_compile_flood_does_not_hold_up_another_logon() {
    let b = broker();
    let mut attacker = Client::logon(b.local_addr(), "attacker");
    b.faults(|f| f.hold_compiles = true);
    // A pattern that compiles to a large program, 1,000 times: about 10 MiB of program each without
    // limits.
    attacker.send_raw(&subscribes(r"\w{1,100}z", None, 1000));
    wait_for(&b, "the attacker waits for one compilation", |s| {
        s.parked_connections == 1 && s.compiles_pending == 1
    });
    // Compilation is held: nothing it could cost is in the way of another client.
    let mut other = Client::logon(b.local_addr(), "other");
    assert!(other.subscribe("plain", "s", None).ok());
    other.publish("plain", r#"{"n":1}"#);
    assert_eq!(other.drain().len(), 1, "its own delivery");
    b.faults(|f| f.hold_compiles = false);
    for i in 0..1000 {
        let f = attacker.recv();
        assert_eq!(f.s("cid"), Some(i.to_string().as_str()));
        assert_eq!(
            f.reason(),
            Some("bad regex topic: pattern too large (compiled size limit 4194304 bytes)")
        );
    }
    let s = b.stats().unwrap();
    assert_eq!((s.compiles, s.inline_compiles), (1, 0), "{s:?}");
    assert_eq!(s.pattern_bytes_peak, 0, "nothing kept");
}

#[test]
fn identical_patterns_compile_once_and_are_accounted_once() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    c.send_raw(&subscribes(r"^orders\.[a-z]+$", Some("/qty > 10"), 1000));
    for _ in 0..1000 {
        assert!(c.recv().ok());
    }
    let s = b.stats().unwrap();
    assert_eq!(
        (s.compiles, s.inline_compiles, s.patterns),
        (2, 0, 2),
        "{s:?}"
    );
    let one_regex = Limits::default().regex().min_cost();
    let filter = "/qty > 10".len() * amps_broker::compile::FILTER_BYTES_PER_CHAR;
    assert_eq!(s.pattern_bytes, one_regex + filter);
    assert!(s.pattern_bytes_peak <= Limits::default().max_pattern_bytes);
}

#[test]
fn distinct_patterns_stop_at_the_pattern_budget() {
    let one = Limits::default().regex().min_cost();
    let b = broker_with(Config {
        limits: Limits {
            max_pattern_bytes: 4 * one,
            ..Limits::default()
        },
        ..Config::default()
    });
    let mut c = Client::logon(b.local_addr(), "c");
    let mut refused = 0;
    for i in 0..20 {
        let f = c.request(&Command::subscribe(&format!("^t{i}.*")).sub_id(&i.to_string()));
        if !f.ok() {
            refused += 1;
            assert_eq!(
                f.reason().unwrap(),
                format!(
                    "bad regex topic: compiled patterns too large (broker limit {} bytes)",
                    4 * one
                )
            );
        }
    }
    assert_eq!(refused, 16);
    let s = b.stats().unwrap();
    assert!(s.pattern_bytes_peak <= 4 * one, "{s:?}");
    let mut other = Client::logon(b.local_addr(), "other");
    assert!(
        other
            .subscribe("literal-topics-cost-nothing", "x", None)
            .ok()
    );
}

#[test]
fn silent_and_stalled_connections_are_closed_and_do_not_delay_a_logon() {
    let b = manual(Config {
        max_frame: 4 << 20,
        limits: Limits {
            logon_timeout: secs(10),
            idle_timeout: secs(60),
            ..Limits::default()
        },
        ..Config::default()
    });
    let addr = b.local_addr();
    // Five connections that send nothing, one with most of a 64 KiB frame before logon, one
    // logged on with 3 MiB of a 4 MiB frame.
    let silent: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut half_logon = Client::connect(addr);
    let mut part = (64u32 << 10).to_be_bytes().to_vec();
    part.extend(vec![b' '; 60 << 10]);
    half_logon.send_raw(&part);
    let mut stalled = Client::logon(addr, "stalled");
    let mut part = (4u32 << 20).to_be_bytes().to_vec();
    part.extend(vec![b' '; 3 << 20]);
    stalled.send_raw(&part);
    let s = wait_for(&b, "every abuse in place", |s| {
        s.connections == 7 && s.input_bytes >= (3 << 20) + (60 << 10)
    });
    assert!(s.input_bytes <= Limits::default().max_input_bytes);
    // Another client logs on meanwhile.
    let mut fine = Client::logon(addr, "fine");
    // 9 s: nothing is due yet.
    assert!(b.advance_clock(Duration::from_secs(9)));
    assert_eq!(b.stats().unwrap().connections, 8);
    fine.drain();
    // 10 s: the six that never logged on are closed, with a FIN and no frame.
    assert!(b.advance_clock(Duration::from_secs(1)));
    for s in silent {
        assert!(Client::from_stream(s).expect_close().is_empty());
    }
    assert!(half_logon.expect_close().is_empty());
    let s = b.stats().unwrap();
    assert_eq!(s.closed_logon_timeout, 6, "{s:?}");
    // 60 s after its last complete frame the stalled one goes; `fine` sent one at 9 s.
    assert!(b.advance_clock(Duration::from_secs(50)));
    assert!(stalled.expect_close().is_empty());
    let s = b.stats().unwrap();
    assert_eq!(s.closed_idle_timeout, 1, "{s:?}");
    assert_eq!(s.input_bytes, 0, "the partial frames are gone");
    assert!(fine.drain().is_empty(), "still connected");
}

#[test]
fn partial_frames_past_the_total_close_the_largest_holder() {
    let cap = 3 << 20;
    let b = broker_with(Config {
        max_frame: 4 << 20,
        limits: Limits {
            max_input_bytes: cap,
            ..Limits::default()
        },
        ..Config::default()
    });
    let addr = b.local_addr();
    let mut holders: Vec<Client> = (0..3)
        .map(|i| Client::logon(addr, &format!("holder-{i}")))
        .collect();
    for h in &mut holders {
        let mut part = (4u32 << 20).to_be_bytes().to_vec();
        part.extend(vec![b' '; 1_200_000]);
        h.send_raw(&part);
    }
    let s = wait_for(&b, "a holder closed", |s| s.closed_input_limit >= 1);
    assert!(s.input_bytes_peak <= cap, "{s:?}");
    let mut fine = Client::logon(addr, "fine");
    assert!(fine.drain().is_empty());
    let open: Vec<Option<String>> = b
        .inspect(|e| e.connections().into_iter().map(|(_, n)| n).collect())
        .unwrap();
    let mut closed = 0;
    for (i, h) in holders.iter_mut().enumerate() {
        if !open.contains(&Some(format!("holder-{i}"))) {
            let frames = h.expect_close();
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].reason(), Some("message too large"));
            closed += 1;
        }
    }
    // More may be closed after the snapshot, as the rest of their bytes arrive.
    let s = b.stats().unwrap();
    assert!(
        closed >= 1 && closed <= s.closed_input_limit,
        "{closed} {s:?}"
    );
    assert!(s.input_bytes_peak <= cap, "{s:?}");
}

#[test]
fn slow_consumers_past_the_output_total_are_closed_and_do_not_delay_a_logon() {
    let cap = 2 << 20;
    let b = broker_with(Config {
        limits: Limits {
            max_output_bytes: cap,
            ..Limits::default()
        },
        ..Config::default()
    });
    let addr = b.local_addr();
    let mut slow: Vec<Client> = (0..3)
        .map(|i| {
            let mut c = Client::logon(addr, &format!("slow-{i}"));
            assert!(c.subscribe("flood", "f", None).ok());
            c
        })
        .collect();
    let mut p = Client::logon(addr, "p");
    let frame = Command::publish("flood", &[b'x'; 4096]).to_vec().unwrap();
    let batch: Vec<u8> = frame.repeat(256);
    let mut logged_on_during = false;
    let mut rounds = 0;
    while b.stats().unwrap().closed_slow_consumer < 3 {
        p.send_raw(&batch);
        p.drain();
        let s = b.stats().unwrap();
        assert!(s.output_bytes_peak <= cap, "{s:?}");
        if s.closed_slow_consumer >= 1 && !logged_on_during {
            let mut fine = Client::logon(addr, "fine");
            assert!(fine.drain().is_empty());
            logged_on_during = true;
        }
        rounds += 1;
        assert!(rounds < 400, "slow consumers never closed: {s:?}");
    }
    assert!(logged_on_during);
    for c in &mut slow {
        let frames = c.expect_close();
        assert!(frames.iter().all(|f| f.c() == "p"));
    }
    assert!(p.drain().is_empty(), "the publisher is unaffected");
    assert!(b.stats().unwrap().output_bytes_peak <= cap);
}

#[test]
fn connections_past_the_cap_are_closed_cleanly() {
    let b = manual(Config {
        limits: Limits {
            max_connections: 4,
            logon_timeout: secs(10),
            ..Limits::default()
        },
        ..Config::default()
    });
    let addr = b.local_addr();
    let held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    wait_for(&b, "four accepted", |s| s.connections == 4);
    for _ in 0..10 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(GUARD)).unwrap();
        c.write_all(&Command::logon("late").to_vec().unwrap())
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(c.read(&mut buf).unwrap(), 0, "FIN, no frame, no reset");
    }
    let s = b.stats().unwrap();
    assert_eq!(
        (s.connections_refused, s.connections_peak),
        (10, 4),
        "{s:?}"
    );
    // The held slots come back at the logon timeout.
    assert!(b.advance_clock(Duration::from_secs(10)));
    wait_for(&b, "slots free", |s| s.connections == 0);
    let mut fine = Client::logon(addr, "fine");
    assert!(fine.drain().is_empty());
    drop(held);
}

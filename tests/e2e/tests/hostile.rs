//! Servers that lie, stall, trickle, flood, reset or vanish, scripted on loopback: every call
//! ends with a typed error within its deadline, memory stays bounded, nothing panics, and
//! `close()` returns in bounded time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use amps_e2e::script::{Frame, ScriptServer};
use amps_e2e::*;
use amps_host::{ClientBuilder, ClientEvent, ErrorKind, MemoryPublishStore};

/// The deadline the clients of this suite are given for everything.
const LIMIT: Duration = Duration::from_millis(800);
/// What a loaded machine may add to a deadline before the test calls it a hang.
const SLACK: Duration = Duration::from_secs(3);

/// Run `f`, asserting it returned within `limit` (and the slack).
fn within<T>(limit: Duration, what: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let v = f();
    let took = t0.elapsed();
    assert!(
        took <= limit + SLACK,
        "{what} took {took:?}; its deadline is {limit:?}"
    );
    v
}

/// A client whose every wait is short.
fn quick<A: Api>(prefix: &str) -> ClientBuilder<A::C> {
    A::builder(prefix)
        .connect_timeout(LIMIT)
        .logon_timeout(LIMIT)
        .command_timeout(LIMIT)
        .close_timeout(LIMIT)
}

fn close<A: Api>(c: &A) {
    within(LIMIT, "close", || c.close().unwrap());
}

/// The first error event of `kind`, within the guard.
fn error_event(events: &mut impl Evts, kind: ErrorKind) -> String {
    match events.wait_for(|e| matches!(e, ClientEvent::Error(e) if e.kind() == kind)) {
        ClientEvent::Error(e) => e.to_string(),
        _ => unreachable!(),
    }
}

fn a_server_that_never_answers_the_logon<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.expect("logon");
        s.drain();
    });
    let c = A::build(quick::<A>("mute-logon"));
    c.connect(&srv.uri()).unwrap();
    let e = within(LIMIT, "logon", || c.logon().unwrap_err());
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    close(&c);
}

fn a_server_that_closes_in_the_middle_of_a_frame<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        s.expect("subscribe");
        // A frame announcing 100 bytes, 10 of them sent, then the connection closes.
        let _ = s.send_raw(&100u32.to_be_bytes());
        let _ = s.send_raw(br#"{"c":"ack","#);
    });
    let c = A::build(quick::<A>("mid-frame"));
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let e = within(LIMIT, "subscribe", || c.subscribe("t", None).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    close(&c);
}

fn a_server_that_resets_the_connection<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        s.expect("subscribe");
        s.reset();
    });
    let c = A::build(quick::<A>("rst"));
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let e = within(LIMIT, "subscribe", || c.subscribe("t", None).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    close(&c);
}

fn a_server_that_answers_every_logon_with_retry<A: Api>() {
    let logons = Arc::new(Mutex::new(Vec::<Frame>::new()));
    let seen = logons.clone();
    let srv = ScriptServer::start(move |mut s| {
        while let Some(f) = s.expect("logon") {
            let cid = f.get("cid").unwrap_or_default();
            seen.lock().unwrap().push(f);
            let ack = format!(
                r#"{{"c":"ack","cid":"{cid}","a":"processed","status":"retry","pw":"again"}}"#
            );
            if s.send(&ack, b"").is_err() {
                return;
            }
        }
    });
    let limit = Duration::from_secs(2);
    let c = A::build(quick::<A>("retry").logon_timeout(limit));
    let uri = srv.uri().replace("tcp://", "tcp://user:pw@") + "?pretty=true";
    c.connect(&uri).unwrap();
    let e = within(limit, "logon", || c.logon().unwrap_err());
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    close(&c);
    let logons = logons.lock().unwrap();
    // Backed off: a handful of logons in two seconds, not hundreds of thousands.
    assert!(
        (2..20).contains(&logons.len()),
        "{} logons in {limit:?}",
        logons.len()
    );
    // Every logon is the same command as the first.
    for f in logons.iter() {
        assert_eq!(f.get("mt").as_deref(), Some("json"));
        assert_eq!(f.get("o").as_deref(), Some("pretty"));
        assert_eq!(f.get("user_id").as_deref(), Some("user"));
        assert_eq!(f.get("client_name"), logons[0].get("client_name"));
    }
}

/// Sends a frame announcing 1 MiB, one byte every 50 ms, after the logon.
fn trickler() -> ScriptServer {
    ScriptServer::start(|mut s| {
        s.accept_logon();
        let mut wire = (1u32 << 20).to_be_bytes().to_vec();
        wire.extend_from_slice(br#"{"c":"p","t":"x","sub_id":"1"}"#);
        wire.resize(1 << 20, b' ');
        for b in wire {
            if s.send_raw(&[b]).is_err() {
                return;
            }
            // The scenario's pace, not a synchronisation.
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

fn a_server_that_trickles_a_frame_forever_fails_the_command<A: Api>() {
    let srv = trickler();
    let c = A::build(quick::<A>("trickle"));
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let e = within(LIMIT, "subscribe", || c.subscribe("t", None).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    close(&c);
}

fn a_server_that_trickles_a_frame_forever_is_disconnected_by_heartbeat<A: Api>() {
    let srv = trickler();
    let hb = Duration::from_secs(2);
    let c = A::build(
        quick::<A>("trickle-hb")
            .command_timeout(Duration::from_secs(30))
            .heartbeat(Duration::from_secs(1), hb),
    );
    let mut events = c.events();
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    // Bytes flow all along, but no frame completes: the connection is silent.
    let e = within(hb, "subscribe", || c.subscribe("t", None).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    let why = error_event(&mut events, ErrorKind::TimedOut);
    assert!(why.contains("no complete frame"), "{why}");
    close(&c);
}

fn a_server_that_goes_silent_is_disconnected_by_heartbeat<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        s.hold();
    });
    let hb = Duration::from_secs(2);
    let c = A::build(quick::<A>("silent").heartbeat(Duration::from_secs(1), hb));
    let mut events = c.events();
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let states = states(&c);
    within(hb, "disconnect", || {
        until(&states, amps_host::ConnectionState::Disconnected)
    });
    error_event(&mut events, ErrorKind::TimedOut);
    close(&c);
}

fn a_flood_at_an_unread_stream_stays_within_the_receive_budget<A: Api>() {
    const MSG: usize = 256 << 10;
    const BUDGET: usize = 4 << 20;
    let (sent_tx, sent_rx) = mpsc::channel();
    let srv = ScriptServer::start(move |mut s| {
        s.accept_logon();
        let Some(sub) = s.expect("subscribe") else {
            return;
        };
        let _ = s.ack(&sub, "processed", "success");
        let header = format!(
            r#"{{"c":"p","t":"t","sub_id":"{}"}}"#,
            sub.get("sub_id").unwrap_or_default()
        );
        let payload = vec![b'x'; MSG];
        // Until the client stops taking them (the write stays blocked).
        s.set_write_timeout(Duration::from_millis(500));
        let mut sent = 0usize;
        while s.send(&header, &payload).is_ok() {
            sent += 1;
        }
        let _ = sent_tx.send(sent);
        s.hold();
    });
    let c = A::build(quick::<A>("flood").receive_bytes(BUDGET));
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let mut stream = c.subscribe("t", None).unwrap();
    let sent = recv(&sent_rx, "the server blocked");
    let (used, limit) = c.received_bytes();
    assert_eq!(limit, BUDGET);
    assert!(
        used <= BUDGET,
        "{used} bytes held for the application, budget {BUDGET}"
    );
    assert!(
        sent * MSG > 2 * BUDGET,
        "the server got {sent} messages out before blocking"
    );
    // What was held is intact.
    assert_eq!(stream.next_msg().data().len(), MSG);
    close(&c);
}

fn random_bytes_from_the_server_are_a_stream_error<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        s.expect("subscribe");
        // xorshift64: the same 64 KiB every run.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes: Vec<u8> = (0..1 << 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = s.send_raw(&bytes);
        s.drain();
    });
    let c = A::build(quick::<A>("noise"));
    let mut events = c.events();
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let e = within(LIMIT, "subscribe", || c.subscribe("t", None).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    error_event(&mut events, ErrorKind::Stream);
    close(&c);
}

fn a_sub_id_repeated_in_one_delivery_is_delivered_once<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        let Some(sub) = s.expect("subscribe") else {
            return;
        };
        let _ = s.ack(&sub, "processed", "success");
        let sid = sub.get("sub_id").unwrap_or_default();
        let sids = vec![sid.as_str(); 200_000].join(",");
        let _ = s.send(&format!(r#"{{"c":"p","t":"t","sids":"{sids}"}}"#), b"dup");
        let _ = s.send(&format!(r#"{{"c":"p","t":"t","sub_id":"{sid}"}}"#), b"end");
        s.drain();
    });
    let c = A::build(quick::<A>("dup-sids"));
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let mut stream = c.subscribe("t", None).unwrap();
    assert_eq!(text(&stream.next_msg()), "dup");
    assert_eq!(text(&stream.next_msg()), "end");
    assert_eq!(stream.len(), 0);
    close(&c);
}

/// Answers a flush with `processed` only, and acknowledges publishes as persisted when
/// `persist`.
fn processed_only_flush(persist: bool) -> ScriptServer {
    ScriptServer::start(move |mut s| {
        s.accept_logon();
        while let Some(f) = s.read_frame() {
            let ok = match f.command().as_str() {
                "flush" => s.ack(&f, "processed", "success"),
                "p" if persist => {
                    let seq = f.get("s").unwrap_or_default();
                    s.send(
                        &format!(r#"{{"c":"ack","a":"persisted","status":"success","s":{seq}}}"#),
                        b"",
                    )
                }
                _ => Ok(()),
            };
            if ok.is_err() {
                return;
            }
        }
    })
}

fn publish_flush_ends_at_its_deadline_when_nothing_is_persisted<A: Api>() {
    let srv = processed_only_flush(false);
    let c = A::build(
        quick::<A>("pf-never").publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 1_000)),
    );
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    for i in 0..3 {
        c.publish("t", format!("{i}")).unwrap();
    }
    let e = within(LIMIT, "publish_flush", || {
        c.publish_flush(LIMIT).unwrap_err()
    });
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert_eq!(c.unpersisted_count(), 3, "nothing is lost");
    close(&c);
}

fn publish_flush_answered_with_processed_only_returns_once_persisted<A: Api>() {
    let srv = processed_only_flush(true);
    let c = A::build(
        quick::<A>("pf-processed").publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 1_000)),
    );
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    for i in 0..3 {
        c.publish("t", format!("{i}")).unwrap();
    }
    within(LIMIT, "publish_flush", || c.publish_flush(LIMIT).unwrap());
    assert_eq!(c.unpersisted_count(), 0);
    // With nothing unpersisted it returns at once, without asking the server.
    within(LIMIT, "publish_flush", || c.publish_flush(LIMIT).unwrap());
    close(&c);
}

fn a_server_that_stops_reading_fails_publishes_at_the_deadline<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        s.hold();
    });
    let c = A::build(quick::<A>("stall").publish_queue_bytes(1 << 20));
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let payload = vec![b'x'; 64 << 10];
    let mut err = None;
    // Socket buffers and the client's queue fill, then a publish waits out its deadline.
    for _ in 0..100_000 {
        let t0 = Instant::now();
        if let Err(e) = c.publish("t", &payload) {
            assert!(t0.elapsed() <= LIMIT + SLACK, "a publish waited too long");
            err = Some(e);
            break;
        }
    }
    let e = err.expect("a publish fails");
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    let e = within(LIMIT, "flush", || c.flush().unwrap_err());
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    close(&c);
}

fn a_server_that_lies_in_its_acks_is_survived<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        let Some(sub) = s.expect("subscribe") else {
            return;
        };
        let sid = sub.get("sub_id").unwrap_or_default();
        let lies = [
            // Acks for commands never sent, a persisted ack for publishes never made, a
            // delivery for an unknown subscription, an ack without a command id.
            r#"{"c":"ack","cid":"999","a":"processed","status":"success"}"#,
            r#"{"c":"ack","a":"persisted","status":"success","s":1000}"#,
            r#"{"c":"p","t":"t","sub_id":"nobody"}"#,
            r#"{"c":"ack","a":"completed","status":"failure","reason":"what"}"#,
        ];
        for l in lies {
            let _ = s.send(l, b"lie");
        }
        let _ = s.ack(&sub, "processed", "success");
        let _ = s.send(
            &format!(r#"{{"c":"p","t":"t","sub_id":"{sid}"}}"#),
            b"truth",
        );
        s.drain();
    });
    let c = A::build(quick::<A>("liar"));
    let (tx, rx) = mpsc::channel();
    c.set_last_chance_message_handler(move |m| {
        let _ = tx.send(text(m));
    });
    let errors = Arc::new(AtomicUsize::new(0));
    let e2 = errors.clone();
    c.set_exception_listener(move |_| {
        e2.fetch_add(1, Ordering::SeqCst);
    });
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    let mut stream = c.subscribe("t", None).unwrap();
    assert_eq!(text(&stream.next_msg()), "truth");
    assert_eq!(recv(&rx, "the unknown delivery"), "lie");
    assert!(c.is_logged_on());
    close(&c);
}

fn close_returns_in_time_while_a_handler_is_stuck<A: Api>() {
    let srv = ScriptServer::start(|mut s| {
        s.accept_logon();
        let Some(sub) = s.expect("subscribe") else {
            return;
        };
        let _ = s.ack(&sub, "processed", "success");
        let header = format!(
            r#"{{"c":"p","t":"t","sub_id":"{}"}}"#,
            sub.get("sub_id").unwrap_or_default()
        );
        for _ in 0..10_000 {
            if s.send(&header, b"m").is_err() {
                return;
            }
        }
        s.drain();
    });
    let c = A::build(quick::<A>("stuck-handler"));
    c.connect(&srv.uri()).unwrap();
    c.logon().unwrap();
    // The handler blocks on its first message until the test ends; thousands queue behind it.
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    c.execute_async(&amps_host::Command::subscribe("t"), move |_m| {
        let _ = entered_tx.send(());
        let _ = release_rx.lock().unwrap().recv();
    })
    .unwrap();
    recv(&entered_rx, "the handler runs");
    close(&c);
    drop(release_tx);
}

suite!(
    close_returns_in_time_while_a_handler_is_stuck,
    a_server_that_never_answers_the_logon,
    a_server_that_closes_in_the_middle_of_a_frame,
    a_server_that_resets_the_connection,
    a_server_that_answers_every_logon_with_retry,
    a_server_that_trickles_a_frame_forever_fails_the_command,
    a_server_that_trickles_a_frame_forever_is_disconnected_by_heartbeat,
    a_server_that_goes_silent_is_disconnected_by_heartbeat,
    a_flood_at_an_unread_stream_stays_within_the_receive_budget,
    random_bytes_from_the_server_are_a_stream_error,
    a_sub_id_repeated_in_one_delivery_is_delivered_once,
    publish_flush_ends_at_its_deadline_when_nothing_is_persisted,
    publish_flush_answered_with_processed_only_returns_once_persisted,
    a_server_that_stops_reading_fails_publishes_at_the_deadline,
    a_server_that_lies_in_its_acks_is_survived,
);

//! Item 5: HaClient: connect_and_logon with a server chooser, delay strategies and giving up,
//! the recovery states in the seeds' order, resubscription, failover between two brokers, a
//! broker killed mid-publish with nothing lost, bookmark subscriptions resumed from
//! MOST_RECENT with discard(), retry_on_disconnect, unpersisted_count().

mod common;

use std::sync::mpsc;
use std::time::Duration;

use amps_std::{
    Command, ConnectionState as CS, CoreDuration, DefaultServerChooser, ErrorKind,
    ExponentialDelayStrategy, FixedDelayStrategy, HaClient, bookmark,
};
use common::*;

fn fixed(ms: u64) -> FixedDelayStrategy {
    FixedDelayStrategy {
        delay: CoreDuration::from_millis(ms),
        max_retry_time: None,
    }
}

fn ha(prefix: &str, uris: Vec<String>, memory: bool) -> HaClient {
    let c = if memory {
        HaClient::memory_backed(&name(prefix))
    } else {
        HaClient::new(&name(prefix))
    };
    c.set_server_chooser(DefaultServerChooser::new(uris))
        .unwrap();
    c.set_reconnect_delay_strategy(fixed(50)).unwrap();
    c
}

/// Skip states until `want`.
fn until(st: &mpsc::Receiver<CS>, want: CS) {
    while recv(st, "state") != want {}
}

fn states(c: &HaClient) -> mpsc::Receiver<CS> {
    let (tx, rx) = mpsc::channel();
    c.add_connection_state_listener(move |s| {
        let _ = tx.send(s);
    });
    rx
}

const RECOVERY: [CS; 5] = [
    CS::Connected,
    CS::LoggedOn,
    CS::HeartbeatInitiated,
    CS::PublishReplayed,
    CS::Resubscribed,
];

#[test]
fn recovery_states_in_order_and_handler_subscriptions_come_back() {
    let b = broker();
    let c = ha("ha", vec![uri(&b)], true);
    c.set_heartbeat(5, Duration::from_secs(10)).unwrap();
    let st = states(&c);
    c.connect_and_logon().unwrap();
    for s in RECOVERY {
        assert_eq!(recv(&st, "recovery state"), s);
    }
    let (tx, rx) = mpsc::channel();
    c.execute_async(&Command::subscribe("ticks"), move |m| {
        let _ = tx.send(m.data().into_owned());
    })
    .unwrap();
    let p = client(&b, "hap");
    p.publish("ticks", "before").unwrap();
    assert_eq!(recv(&rx, "before"), "before");
    b.kill_connections();
    assert_eq!(recv(&st, "Disconnected"), CS::Disconnected);
    for s in RECOVERY {
        assert_eq!(recv(&st, "recovery state after reconnect"), s);
    }
    let p = client(&b, "hap2");
    p.publish("ticks", "after").unwrap();
    assert_eq!(recv(&rx, "after"), "after");
    c.close();
    assert_eq!(recv(&st, "Disconnected at close"), CS::Disconnected);
    assert_eq!(recv(&st, "Shutdown"), CS::Shutdown);
}

#[test]
fn failover_to_the_second_broker() {
    let a = broker();
    let b = broker();
    let c = ha("fo", vec![uri(&a), uri(&b)], true);
    let st = states(&c);
    c.connect_and_logon().unwrap();
    let (tx, rx) = mpsc::channel();
    c.execute_async(&Command::subscribe("alerts"), move |m| {
        let _ = tx.send(m.data().into_owned());
    })
    .unwrap();
    c.publish("alerts", "to-a").unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(recv(&rx, "own publish on a"), "to-a");
    a.shutdown();
    until(&st, CS::Disconnected);
    until(&st, CS::Resubscribed);
    let p = client(&b, "fop");
    p.publish("alerts", "on-b").unwrap();
    assert_eq!(recv(&rx, "message from b"), "on-b");
    c.publish("alerts", "to-b").unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(recv(&rx, "own publish on b"), "to-b");
    c.close();
}

#[test]
fn a_broker_killed_mid_publish_loses_nothing() {
    const N: usize = 20_000;
    let b = broker();
    let c = ha("mid", vec![uri(&b)], true);
    c.connect_and_logon().unwrap();
    // The connection dies twice while the publishes stream out.
    b.faults(|f| f.close_after(N as u64 / 3));
    let st = states(&c);
    let publisher = {
        let c = c.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                c.publish("events", format!(r#"{{"n":{i}}}"#)).unwrap();
            }
        })
    };
    until(&st, CS::Disconnected);
    b.faults(|f| f.close_after(N as u64 / 3));
    until(&st, CS::Disconnected);
    publisher.join().unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    // Replay the log: every message exactly once, in order.
    let r = client(&b, "midr");
    let (tx, rx) = mpsc::channel();
    r.bookmark_subscribe("events", bookmark::EPOCH, None, None, move |m| {
        let _ = tx.send(m.data().into_owned());
    })
    .unwrap();
    for i in 0..N {
        assert_eq!(recv(&rx, "replayed message"), format!(r#"{{"n":{i}}}"#));
    }
    r.flush().unwrap();
    quiet(&rx, Duration::from_millis(50), "duplicate");
    c.close();
    r.close();
}

#[test]
fn bookmark_subscriptions_resume_from_most_recent() {
    let b = broker();
    let c = ha("bmr", vec![uri(&b)], true);
    let st = states(&c);
    let (sub_tx, sub_rx) = mpsc::channel();
    c.set_transport_filter(move |dir, bytes| {
        let text = String::from_utf8_lossy(bytes);
        if dir == amps_std::Direction::Outgoing && text.contains(r#""c":"subscribe""#) {
            let _ = sub_tx.send(text.into_owned());
        }
    })
    .unwrap();
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    let (tx, rx) = mpsc::channel();
    c.bookmark_subscribe(
        "events",
        bookmark::MOST_RECENT,
        None,
        Some("resume-1"),
        move |m| {
            m.discard().unwrap();
            let _ = tx.send((m.data().into_owned(), m.bookmark().unwrap().to_owned()));
        },
    )
    .unwrap();
    // MOST_RECENT never goes on the wire: with an empty store it is EPOCH (protocol.md §10.1).
    assert!(recv(&sub_rx, "first subscribe").contains(r#""bm":"0""#));
    let p = client(&b, "bmrp");
    for i in 0..5 {
        p.publish("events", format!("e{i}")).unwrap();
    }
    let mut last = String::new();
    for i in 0..5 {
        let (data, bm) = recv(&rx, "live");
        assert_eq!(data, format!("e{i}"));
        last = bm;
    }
    c.flush().unwrap();
    b.kill_connections();
    let p = client(&b, "bmrp2");
    for i in 5..10 {
        p.publish("events", format!("e{i}")).unwrap();
    }
    until(&st, CS::Resubscribed);
    // Re-entered from the last discarded message, and exactly what was missed arrives.
    let again = recv(&sub_rx, "resubscribe");
    assert!(again.contains(&format!(r#""bm":"{last}""#)), "{again}");
    for i in 5..10 {
        assert_eq!(recv(&rx, "resumed").0, format!("e{i}"));
    }
    p.flush().unwrap();
    c.flush().unwrap();
    quiet(&rx, Duration::from_millis(50), "duplicate after resume");
    c.close();
}

#[test]
fn retry_on_disconnect_waits_for_the_reconnect_or_fails_fast() {
    let b = broker();
    let c = ha("retry", vec![uri(&b)], false);
    c.set_reconnect_delay_strategy(fixed(300)).unwrap();
    let st = states(&c);
    c.connect_and_logon().unwrap();
    b.kill_connections();
    until(&st, CS::Disconnected);
    // Default: the command waits for the new connection.
    c.flush().unwrap();
    assert!(c.is_connected());
    c.set_retry_on_disconnect(false);
    c.set_reconnect_delay_strategy(fixed(10_000)).unwrap();
    b.kill_connections();
    until(&st, CS::Disconnected);
    assert_eq!(c.flush().unwrap_err().kind(), ErrorKind::Disconnected);
    assert_eq!(
        c.publish("t", "x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    c.close();
}

#[test]
fn delay_strategy_gives_up_and_logon_failures_are_final() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://{}/amps/json", l.local_addr().unwrap())
    };
    let c = ha("giveup", vec![dead], false);
    c.set_reconnect_delay_strategy(
        ExponentialDelayStrategy::new(
            CoreDuration::from_millis(20),
            2.0,
            CoreDuration::from_millis(100),
        )
        .with_max_retry_time(CoreDuration::from_millis(300)),
    )
    .unwrap();
    let st = states(&c);
    let t0 = std::time::Instant::now();
    assert_eq!(
        c.connect_and_logon().unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert!(t0.elapsed() >= Duration::from_millis(200));
    let seen: Vec<_> = std::iter::from_fn(|| st.recv_timeout(Duration::from_secs(5)).ok())
        .take_while(|s| *s != CS::Shutdown)
        .collect();
    assert!(!seen.contains(&CS::LoggedOn));
    c.close();

    let b = broker();
    b.faults(|f| f.refuse_logons = Some("authentication failed".into()));
    let c = ha("refused", vec![uri(&b)], false);
    assert_eq!(
        c.connect_and_logon().unwrap_err().kind(),
        ErrorKind::Authentication
    );
    c.close();

    // A chooser without servers.
    let c = HaClient::new(&name("empty"));
    c.set_server_chooser(DefaultServerChooser::new(Vec::<String>::new()))
        .unwrap();
    assert_eq!(
        c.connect_and_logon().unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    c.close();
    // No chooser at all.
    let c = HaClient::new(&name("nochooser"));
    assert_eq!(c.connect_and_logon().unwrap_err().kind(), ErrorKind::Usage);
    c.close();
}

#[test]
fn a_disconnect_handler_replaces_the_automatic_reconnect() {
    let b = broker();
    let c = ha("dhha", vec![uri(&b)], false);
    let st = states(&c);
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    let (tx, rx) = mpsc::channel();
    c.set_disconnect_handler(move |_| {
        let _ = tx.send(());
    })
    .unwrap();
    b.kill_connections();
    recv(&rx, "disconnect handler");
    assert_eq!(recv(&st, "Disconnected"), CS::Disconnected);
    let after: Vec<_> =
        std::iter::from_fn(|| st.recv_timeout(Duration::from_millis(300)).ok()).collect();
    assert!(
        !after.contains(&CS::LoggedOn),
        "no automatic reconnect: {after:?}"
    );
    c.close();
}

#[test]
fn file_backed_stores_survive_a_restart_of_the_client() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let (pdir, bfile) = (dir.path().join("publish"), dir.path().join("bookmarks.log"));
    let me = name("file");
    // First run: a bookmark subscription processes all but its last message; then the
    // connection drops and the client publishes into its store before it goes away.
    let c = HaClient::file_backed(&me, &pdir, &bfile).unwrap();
    c.set_server_chooser(DefaultServerChooser::new(vec![uri(&b)]))
        .unwrap();
    c.set_reconnect_delay_strategy(fixed(60_000)).unwrap();
    let st = states(&c);
    c.connect_and_logon().unwrap();
    let (tx, rx) = mpsc::channel();
    c.bookmark_subscribe(
        "events",
        bookmark::MOST_RECENT,
        None,
        Some("fsub"),
        move |m| {
            if m.data() != "p2" {
                m.discard().unwrap();
            }
            let _ = tx.send(m.data().into_owned());
        },
    )
    .unwrap();
    let p = client(&b, "filep");
    for i in 0..3 {
        p.publish("events", format!("p{i}")).unwrap();
    }
    for i in 0..3 {
        assert_eq!(recv(&rx, "first run"), format!("p{i}"));
    }
    b.kill_connections();
    until(&st, CS::Disconnected);
    for i in 0..50 {
        c.publish("events", format!("u{i}")).unwrap();
    }
    assert_eq!(c.unpersisted_count(), 50);
    c.close();

    // Second run: the same name and files.
    let c = HaClient::file_backed(&me, &pdir, &bfile).unwrap();
    assert!(
        HaClient::file_backed(&me, &pdir, &bfile).is_err_and(|e| e.kind() == ErrorKind::Store),
        "a store is used by one client at a time"
    );
    assert_eq!(c.unpersisted_count(), 50, "recovered from the file");
    c.set_server_chooser(DefaultServerChooser::new(vec![uri(&b)]))
        .unwrap();
    c.connect_and_logon().unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    let (tx, rx) = mpsc::channel();
    c.bookmark_subscribe(
        "events",
        bookmark::MOST_RECENT,
        None,
        Some("fsub"),
        move |m| {
            m.discard().unwrap();
            let _ = tx.send(m.data().into_owned());
        },
    )
    .unwrap();
    // Resumed after the last discarded message: p2 again, then the replayed publishes.
    assert_eq!(recv(&rx, "resumed"), "p2");
    for i in 0..50 {
        assert_eq!(recv(&rx, "replayed publish"), format!("u{i}"));
    }
    c.flush().unwrap();
    quiet(&rx, Duration::from_millis(50), "duplicate");
    c.close();
    p.close();
}

#[test]
fn a_broker_restart_keeps_state_and_the_client_carries_on() {
    let b = broker();
    let c = ha("restart", vec![uri(&b)], true);
    let st = states(&c);
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    c.publish("orders", r#"{"id":"R1","qty":1}"#).unwrap();
    c.publish_flush(GUARD).unwrap();
    b.restart();
    until(&st, CS::Disconnected);
    until(&st, CS::Resubscribed);
    // The SOW survived the restart; publishing continues numbered after the server's last.
    c.publish("orders", r#"{"id":"R2","qty":2}"#).unwrap();
    c.publish_flush(GUARD).unwrap();
    let mut got = texts(&sow_records(&c, "orders", None));
    got.sort();
    assert_eq!(got, [r#"{"id":"R1","qty":1}"#, r#"{"id":"R2","qty":2}"#]);
    c.close();
}

#[test]
fn a_logon_that_is_dropped_or_unanswered_is_retried() {
    // The connection closes while the logon is processed: the client reconnects.
    let b = broker();
    b.faults(|f| f.close_after(1));
    let c = ha("droplogon", vec![uri(&b)], false);
    let st = states(&c);
    c.connect_and_logon().unwrap();
    assert!(c.is_connected());
    until(&st, CS::Disconnected);
    c.close();

    // The logon ack comes too late: the attempt times out and a new one succeeds.
    let b = broker();
    b.faults(|f| f.delay_acks = Some(CoreDuration::from_millis(2_000)));
    let c = ha("slowlogon", vec![uri(&b)], false);
    c.set_logon_timeout(Duration::from_millis(300)).unwrap();
    let st = states(&c);
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || c.connect_and_logon())
    };
    until(&st, CS::Disconnected);
    b.faults(|f| f.delay_acks = None);
    waiter.join().unwrap().unwrap();
    assert!(c.is_connected());
    c.close();
}

#[test]
fn a_flush_cut_by_a_disconnect_is_asked_again_after_the_reconnect() {
    let b = broker();
    let c = ha("reflush", vec![uri(&b)], true);
    let (flush_tx, flush_rx) = mpsc::channel();
    c.set_transport_filter(move |dir, bytes| {
        if dir == amps_std::Direction::Outgoing
            && String::from_utf8_lossy(bytes).contains(r#""c":"flush""#)
        {
            let _ = flush_tx.send(());
        }
    })
    .unwrap();
    c.connect_and_logon().unwrap();
    for i in 0..100 {
        c.publish("events", format!("f{i}")).unwrap();
    }
    // The broker holds its acks: the flush is in flight when the connection drops.
    b.faults(|f| f.delay_acks = Some(CoreDuration::from_secs(60)));
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || c.publish_flush(GUARD))
    };
    recv(&flush_rx, "flush sent");
    b.faults(|f| f.delay_acks = None);
    b.kill_connections();
    recv(&flush_rx, "flush sent again");
    waiter.join().unwrap().unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    c.close();
}

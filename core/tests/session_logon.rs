//! Scripted exchanges: logon (success, failure kinds, challenge, timeout), command ids with
//! generations, heartbeats with both deadlines, per-command timeouts.

mod common;
use amps_core::codec::{AckType, Command};
use amps_core::session::{
    CommandError, CommandStatus, ConnectionState as CS, FailureKind, HeartbeatConfig, Logon,
    SessionError, State,
};
use common::*;

#[test]
fn logon_frame_and_success_states() {
    let mut h = H::new(&config("pub-1"));
    h.at(1_000);
    let id =
        h.s.handle_connected(
            h.now,
            &Logon {
                user_id: Some("alice"),
                password: Some("secret"),
                message_type: Some("json"),
                options: None,
            },
        )
        .unwrap();
    assert_eq!(h.events(), vec![Ev::State(CS::Connected)]);
    assert_eq!(h.s.state(), State::LoggingOn);
    let tx = h.tx();
    assert_eq!(tx.len(), 1);
    assert!(tx[0].starts_with(r#"{"c":"logon","cid":"1","client_name":"pub-1","user_id":"alice","pw":"secret","a":"processed","mt":"json","version":""#), "{}", tx[0]);
    // Commands are refused until the logon completes.
    assert_eq!(
        h.s.execute(h.now, &Command::subscribe("t")),
        Err(CommandError::NotConnected)
    );
    let evs = h.feed(r#"{"c":"ack","cid":"1","a":"processed","status":"success","client_name":"pub-1","s":0,"bm":"1|0|","version":"5.3.5.0"}"#);
    assert_eq!(states(&evs), vec![CS::LoggedOn, CS::PublishReplayed]);
    assert!(evs.contains(&Ev::Completed {
        id,
        matches: None,
        returned: None,
        deleted: None
    }));
    assert_eq!(h.s.state(), State::Ready);
}

#[test]
fn logon_failures_map_to_kinds_and_do_not_reconnect() {
    for (reason, kind) in [
        ("authentication failed", FailureKind::Authentication),
        ("name in use", FailureKind::NameInUse),
    ] {
        let mut cfg = config("pub-1");
        cfg.reconnect = amps_core::ha::ReconnectPolicy::Fixed(Default::default());
        let mut h = H::new(&cfg);
        h.s.start(h.now);
        assert!(h.s.poll_connect(h.now).is_some());
        let id = h.s.handle_connected(h.now, &Logon::default()).unwrap();
        h.events();
        h.tx();
        let evs = h.feed(&format!(
            r#"{{"c":"ack","cid":"1","a":"processed","status":"failure","reason":"{reason}"}}"#
        ));
        let failed = evs
            .iter()
            .find(|e| matches!(e, Ev::Failed { id: i, .. } if *i == id))
            .expect("logon failed");
        assert_eq!(failed.failed_kind(), Some(kind));
        assert!(evs.contains(&Ev::Close));
        assert_eq!(states(&evs), vec![CS::Disconnected]);
        // No automatic retry with the same credentials (docs/protocol.md §8.2).
        h.at(60_000);
        assert_eq!(h.s.poll_connect(h.now), None);
        assert_eq!(h.s.poll_timeout(), None);
    }
}

#[test]
fn logon_challenge_then_success() {
    let mut h = H::new(&config("c"));
    h.s.handle_connected(
        h.now,
        &Logon {
            user_id: Some("u"),
            password: Some("p"),
            ..Default::default()
        },
    )
    .unwrap();
    h.events();
    h.tx();
    let evs = h.feed(
        r#"{"c":"ack","cid":"1","a":"processed","status":"retry","user_id":"u","pw":"nonce-42"}"#,
    );
    assert_eq!(
        evs,
        vec![Ev::LogonRetry {
            user: "u".into(),
            token: "nonce-42".into()
        }]
    );
    let id =
        h.s.handle_logon_retry(h.now, Some("u"), "hashed-nonce")
            .unwrap();
    let tx = h.tx();
    assert_eq!(field(&tx[0], "pw"), "hashed-nonce");
    assert_eq!(field(&tx[0], "cid"), id.wire().to_string());
    let evs = h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        id.wire()
    ));
    assert!(states(&evs).contains(&CS::LoggedOn));
}

#[test]
fn logon_timeout() {
    let mut cfg = config("c");
    cfg.logon_timeout = d(5_000);
    let mut h = H::new(&cfg);
    let id = h.s.handle_connected(h.now, &Logon::default()).unwrap();
    h.events();
    assert_eq!(
        h.s.poll_timeout(),
        Some(amps_core::Instant::from_millis(5_000))
    );
    assert!(h.timeout(4_999).is_empty(), "not yet");
    let evs = h.timeout(5_000);
    assert!(evs.contains(&Ev::Failed {
        id,
        error: CommandError::TimedOut
    }));
    assert!(evs.contains(&Ev::Close));
}

#[test]
fn acks_route_by_cid_and_ids_never_alias_across_connections() {
    let mut h = H::new(&config("c"));
    h.logon();
    h.tx();
    let a =
        h.s.execute(
            h.now,
            &Command::sow_delete("orders", "1=1").ack(AckType::Processed),
        )
        .unwrap();
    let b =
        h.s.execute(
            h.now,
            &Command::sow_delete("orders", "/x=1").ack(AckType::Processed),
        )
        .unwrap();
    assert_ne!(a, b);
    // Acks arrive in the other order: routed by cid, not position (§5.4).
    let evs = h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        b.wire()
    ));
    assert!(matches!(evs[0], Ev::Ack { id, .. } if id == b));
    assert!(
        evs.iter()
            .any(|e| matches!(e, Ev::Completed { id, .. } if *id == b))
    );
    assert_eq!(h.s.command_status(a), CommandStatus::Pending);
    // Reconnect: `a` fails with Disconnected; new ids belong to the new generation.
    h.s.handle_closed(h.now, amps_core::session::TransportClosed::PeerClosed);
    let evs = h.events();
    assert!(evs.contains(&Ev::Failed {
        id: a,
        error: CommandError::Disconnected
    }));
    h.logon();
    let c = h.s.execute(h.now, &Command::flush()).unwrap();
    assert!(c.generation() > a.generation());
    assert!(c.wire() > b.wire(), "wire cids never repeat");
    assert_eq!(h.s.command_status(a), CommandStatus::NotPending);
    // A late ack for the old cid is not mistaken for anything current.
    let evs = h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        a.wire()
    ));
    assert!(matches!(evs[..], [Ev::LastChance(..)]));
}

#[test]
fn heartbeats_start_beat_answer_and_detect_silence() {
    let mut cfg = config("c");
    cfg.heartbeat = Some(HeartbeatConfig::new(5));
    let mut h = H::new(&cfg);
    let evs = h.logon();
    assert_eq!(
        states(&evs),
        vec![
            CS::Connected,
            CS::LoggedOn,
            CS::HeartbeatInitiated,
            CS::PublishReplayed
        ]
    );
    let tx = h.tx();
    assert!(
        tx.iter().any(|f| f == r#"{"c":"heartbeat","o":"start,5"}"#),
        "{tx:?}"
    );
    // A beat every interval.
    assert!(h.timeout(5_000).is_empty());
    assert_eq!(h.tx(), vec![r#"{"c":"heartbeat","o":"beat"}"#]);
    // Every server heartbeat is answered, and counts as traffic.
    h.at(9_000);
    h.feed(r#"{"c":"heartbeat"}"#);
    assert_eq!(h.tx(), vec![r#"{"c":"heartbeat","o":"beat"}"#]);
    // Silence for the whole timeout (2N from the last traffic at 9 s) ends the connection.
    h.timeout(10_000);
    h.tx();
    h.timeout(15_000);
    h.tx();
    assert!(h.timeout(18_999).is_empty());
    let evs = h.timeout(19_000);
    assert_eq!(
        evs,
        vec![
            Ev::Error(SessionError::Silent),
            Ev::Close,
            Ev::State(CS::Disconnected)
        ]
    );
    // Input after the end is refused until the next connection.
    assert!(h.s.handle_bytes(h.now, b"x").is_err());
}

#[test]
fn command_timeout_unsubscribes_and_reports() {
    let mut h = H::new(&config("c"));
    h.logon();
    h.tx();
    h.at(1_000);
    let id =
        h.s.execute(h.now, &Command::subscribe("orders").timeout(d(2_000)))
            .unwrap();
    let tx = h.tx();
    assert_eq!(field(&tx[0], "a"), "processed");
    assert_eq!(field(&tx[0], "sub_id"), id.wire().to_string());
    assert_eq!(
        h.s.poll_timeout(),
        Some(amps_core::Instant::from_millis(3_000))
    );
    let evs = h.timeout(3_000);
    assert_eq!(
        evs,
        vec![Ev::Failed {
            id,
            error: CommandError::TimedOut
        }]
    );
    let tx = h.tx();
    assert_eq!(
        tx,
        vec![format!(r#"{{"c":"unsubscribe","sub_id":"{}"}}"#, id.wire())]
    );
    assert_eq!(h.s.routes(), 0);
    // A processed ack that arrives in time clears the deadline.
    let id2 =
        h.s.execute(h.now, &Command::subscribe("orders").timeout(d(2_000)))
            .unwrap();
    h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success"}}"#,
        id2.wire()
    ));
    assert!(h.timeout(10_000).is_empty());
    assert_eq!(h.s.routes(), 1);
}

/// Fixed tables: the session caps its limits to them, and a reconnect while the table is full
/// of the ended connection's commands still logs on (one slot is kept for the logon).
#[test]
fn fixed_tables_cap_the_limits_and_keep_room_for_the_logon() {
    use amps_core::session::{Parts, Pending, Route, Session, Storage};
    use amps_core::store::{NoBookmarkStore, NoPublishStore};
    struct Tiny;
    impl Storage for Tiny {
        type Bytes = Vec<u8>;
        type Commands = heapless::Vec<Pending, 4>;
        type Routes = heapless::Vec<Route, 2>;
        type PublishStore = NoPublishStore;
        type BookmarkStore = NoBookmarkStore;
    }
    let cfg = config("tiny");
    let parts = Parts::<Tiny> {
        rx: vec![0; 1 << 16],
        tx: vec![0; 1 << 14],
        scratch: vec![0; 512],
        ack_batch: Vec::new(),
        arena: vec![0; 1024],
        commands: heapless::Vec::new(),
        routes: heapless::Vec::new(),
        publish_store: NoPublishStore,
        bookmark_store: NoBookmarkStore,
    };
    let mut s = Session::new(&cfg, parts).unwrap();
    assert_eq!((s.limits().max_commands, s.limits().max_routes), (4, 2));
    let now = amps_core::Instant::ZERO;
    let logon = |s: &mut Session<Tiny>, cid: u64| {
        s.handle_connected(now, &Logon::default()).unwrap();
        let ack = format!(r#"{{"c":"ack","cid":"{cid}","a":"processed","status":"success"}}"#);
        let mut w = (ack.len() as u32).to_be_bytes().to_vec();
        w.extend(ack.as_bytes());
        let mut out = [0u8; 512];
        while s.poll_transmit(now, &mut out).is_some() {}
        s.handle_bytes(now, &w).unwrap();
        let mut states = Vec::new();
        while let Some(e) = s.poll_event() {
            if let amps_core::session::Event::State(st) = e {
                states.push(st);
            }
        }
        states
    };
    assert!(logon(&mut s, 1).contains(&CS::LoggedOn));
    for _ in 0..3 {
        s.flush(now).unwrap();
    }
    assert_eq!(
        s.flush(now),
        Err(CommandError::TooManyCommands),
        "one slot stays free"
    );
    s.handle_closed(now, amps_core::session::TransportClosed::PeerClosed);
    // Reconnect before the old commands' failures are drained: the logon still fits.
    assert!(logon(&mut s, 5).contains(&CS::LoggedOn));
    assert_eq!(s.pending_commands(), 0);
}

#[test]
fn logon_options_changed_between_logons_go_with_the_next_logon_only() {
    let mut cfg = config("pub-1");
    cfg.logon_options = Some("ack_conflation=10ms");
    let mut h = H::new(&cfg);
    // Too long: refused, and the options in force are unchanged.
    assert_eq!(
        h.s.set_logon_options(&"x".repeat(129)),
        Err(amps_core::session::ConfigError::LogonOptions)
    );
    let id = h.s.handle_connected(h.now, &Logon::default()).unwrap();
    let tx = h.tx();
    assert!(tx[0].contains(r#""o":"ack_conflation=10ms""#), "{}", tx[0]);
    // Changed while logging on: the logon already sent is not affected.
    h.s.set_logon_options("pretty").unwrap();
    h.feed(&format!(
        r#"{{"c":"ack","cid":"{}","a":"processed","status":"success","s":0}}"#,
        id.wire()
    ));
    assert_eq!(h.s.state(), State::Ready);
    h.s.disconnect(h.now);
    h.events();
    h.s.handle_connected(h.now, &Logon::default()).unwrap();
    let tx = h.tx();
    assert!(tx[0].contains(r#""o":"pretty""#), "{}", tx[0]);
    // Empty: no options at all.
    h.s.set_logon_options("").unwrap();
    h.s.disconnect(h.now);
    h.events();
    h.s.handle_connected(h.now, &Logon::default()).unwrap();
    let tx = h.tx();
    assert!(!tx[0].contains(r#""o":"#), "{}", tx[0]);
}

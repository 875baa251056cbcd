//! Scripted exchanges for the HA machinery: reconnect delays and give-up, the recovery sequence
//! of connection states, publish-store replay, resubscription (async subscriptions yes, streams
//! no, bookmark subscriptions from MOST_RECENT), shutdown, and a chooser-driven failover.

mod common;
use amps_core::codec::Command;
use amps_core::ha::{
    DefaultServerChooser, ExponentialDelayStrategy, FixedDelayStrategy, ReconnectPolicy,
    ServerChooser,
};
use amps_core::session::{
    CommandError, ConnectionState as CS, Exec, HeartbeatConfig, SessionError, State,
    TransportClosed,
};
use amps_core::{Duration, Instant};
use common::*;

fn ha_config(name: &str) -> amps_core::session::Config<'_> {
    let mut c = config(name);
    c.reconnect = ReconnectPolicy::Fixed(FixedDelayStrategy {
        delay: d(500),
        max_retry_time: None,
    });
    c.resubscribe = true;
    c
}

fn connect(h: &mut H) {
    h.s.start(h.now);
    assert!(h.s.poll_connect(h.now).is_some());
}

#[test]
fn fixed_delay_reconnect_and_full_recovery_state_order() {
    let mut cfg = ha_config("pub-1");
    cfg.heartbeat = Some(HeartbeatConfig::new(3));
    let mut h = H::new(&cfg);
    connect(&mut h);
    let evs = h.logon();
    assert_eq!(
        states(&evs),
        [
            CS::Connected,
            CS::LoggedOn,
            CS::HeartbeatInitiated,
            CS::PublishReplayed,
            CS::Resubscribed
        ]
    );
    h.tx();
    h.at(1_000);
    h.s.handle_closed(h.now, TransportClosed::PeerClosed);
    assert_eq!(states(&h.events()), [CS::Disconnected]);
    assert_eq!(h.s.poll_timeout(), Some(Instant::from_millis(1_500)));
    h.at(1_499);
    assert_eq!(h.s.poll_connect(h.now), None);
    h.at(1_500);
    assert_eq!(h.s.poll_connect(h.now).map(|r| r.attempt), Some(1));
    // The attempt fails: the next one is one delay later.
    h.s.handle_connect_failed(h.now);
    h.at(2_000);
    assert_eq!(h.s.poll_connect(h.now).map(|r| r.attempt), Some(2));
    let evs = h.logon();
    assert_eq!(
        states(&evs),
        [
            CS::Connected,
            CS::LoggedOn,
            CS::HeartbeatInitiated,
            CS::PublishReplayed,
            CS::Resubscribed
        ]
    );
}

#[test]
fn exponential_backoff_gives_up_after_the_maximum_retry_time() {
    let mut cfg = ha_config("c");
    cfg.reconnect = ReconnectPolicy::Exponential(
        ExponentialDelayStrategy::new(d(100), 2.0, d(400))
            .with_max_retry_time(Duration::from_secs(1)),
    );
    let mut h = H::new(&cfg);
    connect(&mut h);
    h.logon();
    h.s.handle_closed(h.now, TransportClosed::Error);
    h.events();
    let mut waits = Vec::new();
    let mut last = h.now;
    while let Some(t) = h.s.poll_timeout() {
        waits.push((t - last).as_millis());
        last = t;
        h.now = t;
        assert!(h.s.poll_connect(h.now).is_some());
        h.s.handle_connect_failed(h.now);
    }
    assert_eq!(
        waits,
        [100, 200, 400],
        "the next 400 ms would pass the 1 s limit"
    );
    let evs = h.events();
    assert!(evs.contains(&Ev::Error(SessionError::GaveUp)));
    assert_eq!(states(&evs), [CS::Shutdown]);
    assert_eq!(h.s.state(), State::Shutdown);
}

#[test]
fn publish_store_is_trimmed_by_the_logon_ack_and_replayed_in_order() {
    let mut h = H::new(&ha_config("pub-1"));
    connect(&mut h);
    h.logon();
    h.tx();
    for i in 1..=5u8 {
        assert_eq!(
            h.s.publish(h.now, "orders", &[b'0' + i]),
            Ok(Some(u64::from(i)))
        );
    }
    h.tx();
    h.feed(r#"{"c":"ack","a":"persisted","status":"success","s":2}"#);
    h.s.handle_closed(h.now, TransportClosed::PeerClosed);
    h.events();
    // While disconnected, publishes are kept (as the Python client keeps them) and numbered on.
    assert_eq!(h.s.publish(h.now, "orders", b"6"), Ok(Some(6)));
    assert_eq!(h.s.unpersisted_count(), 4);
    h.at(1_000);
    assert!(h.s.poll_connect(h.now).is_some());
    // The server has everything up to 3 (docs/protocol.md §8.4): 4, 5, 6 are replayed, in order,
    // once.
    let evs = h.logon_with_seq(3);
    let tx = h.tx();
    let seqs: Vec<_> = tx
        .iter()
        .filter(|f| field(f, "c") == "p")
        .map(|f| field(f, "s"))
        .collect();
    assert_eq!(seqs, ["4", "5", "6"]);
    assert!(states(&evs).contains(&CS::PublishReplayed));
    // 3 was dropped from the store because the server has it: that is a persisted event.
    assert!(evs.contains(&Ev::Persisted(3)), "{evs:?}");
    assert_eq!(h.s.unpersisted_count(), 3);
    assert_eq!(h.s.publish(h.now, "orders", b"7"), Ok(Some(7)));
    // Numbering continues after max(server s, stored).
    let mut h2 = H::new(&ha_config("pub-2"));
    connect(&mut h2);
    let evs = h2.logon_with_seq(40);
    assert!(
        !evs.iter().any(|e| matches!(e, Ev::Persisted(_))),
        "nothing stored, nothing persisted: {evs:?}"
    );
    assert_eq!(h2.s.publish(h2.now, "t", b"x"), Ok(Some(41)));
}

#[test]
fn async_subscriptions_are_re_entered_streams_are_not() {
    let mut h = H::new(&ha_config("c"));
    connect(&mut h);
    h.logon();
    let a =
        h.s.execute_with(
            h.now,
            &Command::subscribe("orders")
                .sub_id("async-1")
                .filter("/x > 1"),
            Exec { resubscribe: true },
        )
        .unwrap();
    let stream =
        h.s.execute(h.now, &Command::subscribe("orders").sub_id("stream-1"))
            .unwrap();
    // Replace the async one's filter: the re-entry uses the new filter, without `replace`.
    h.s.execute_with(
        h.now,
        &Command::subscribe("orders")
            .sub_id("async-1")
            .filter("/x > 2")
            .options("replace,oof"),
        Exec { resubscribe: true },
    )
    .unwrap();
    h.tx();
    h.s.handle_closed(h.now, TransportClosed::PeerClosed);
    let evs = h.events();
    // The stream's pending subscribe fails; the async one is not reported failed.
    assert!(evs.contains(&Ev::Failed {
        id: stream,
        error: CommandError::Disconnected
    }));
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Ev::Failed { id, .. } if *id == a))
    );
    assert_eq!(h.s.routes(), 1);
    h.at(500);
    assert!(h.s.poll_connect(h.now).is_some());
    h.logon();
    let tx = h.tx();
    let subs: Vec<_> = tx.iter().filter(|f| field(f, "c") == "subscribe").collect();
    assert_eq!(subs.len(), 1, "{tx:?}");
    assert_eq!(field(subs[0], "sub_id"), "async-1");
    assert_eq!(field(subs[0], "f"), "/x > 2");
    assert_eq!(field(subs[0], "o"), "oof");
    // Its processed ack reports under the handle the application holds.
    let cid = field(subs[0], "cid");
    let evs = h.feed(&format!(
        r#"{{"c":"ack","cid":"{cid}","a":"processed","status":"success"}}"#
    ));
    assert!(
        matches!(evs[..], [Ev::Completed { id, .. }] if id == a),
        "{evs:?}"
    );
    let evs = h.feed(r#"{"c":"p","t":"orders","sub_id":"async-1"}x"#);
    assert!(matches!(evs[..], [Ev::Delivery { id, .. }] if id == a));
}

#[test]
fn bookmark_subscription_resumes_from_most_recent_without_duplicates() {
    let mut h = H::new(&ha_config("c"));
    connect(&mut h);
    h.logon();
    let s =
        h.s.execute_with(
            h.now,
            &Command::subscribe("events")
                .sub_id("bm-1")
                .bookmark("recent"),
            Exec { resubscribe: true },
        )
        .unwrap();
    let tx = h.tx();
    assert_eq!(
        field(&tx[0], "bm"),
        "0",
        "MOST_RECENT never goes on the wire: EPOCH without state (§10.1)"
    );
    for i in 1..=4 {
        let evs = h.feed(&format!(
            r#"{{"c":"p","t":"events","sub_id":"bm-1","bm":"9|{i}|"}}m{i}"#
        ));
        assert_eq!(evs.len(), 1);
    }
    // Processed (discarded) 1, 2 and 4; 3 is still being worked on when the link drops.
    for i in [1, 2, 4] {
        h.s.discard(s, &format!("9|{i}|")).unwrap();
    }
    h.s.handle_closed(h.now, TransportClosed::PeerClosed);
    h.events();
    h.at(500);
    assert!(h.s.poll_connect(h.now).is_some());
    h.logon();
    let tx = h.tx();
    let sub = tx.iter().find(|f| field(f, "c") == "subscribe").unwrap();
    assert_eq!(
        field(sub, "bm"),
        "9|2|",
        "resume after the discarded prefix"
    );
    // Replay from after 9|2|: 3 is delivered again (not discarded), 4 is dropped (discarded), 5 is
    // new.
    let mut got = Vec::new();
    for i in 3..=5 {
        for e in h.feed(&format!(
            r#"{{"c":"p","t":"events","sub_id":"bm-1","bm":"9|{i}|"}}m{i}"#
        )) {
            if let Ev::Delivery { data, .. } = e {
                got.push(data);
            }
        }
    }
    assert_eq!(got, ["m3", "m5"]);
}

#[test]
fn close_shuts_down_and_fails_everything() {
    let mut h = H::new(&ha_config("c"));
    connect(&mut h);
    h.logon();
    let f = h.s.flush(h.now).unwrap();
    h.s.close(h.now);
    let evs = h.events();
    assert_eq!(evs[0], Ev::Close);
    assert_eq!(states(&evs), [CS::Disconnected, CS::Shutdown]);
    assert!(
        evs.contains(&Ev::Failed {
            id: f,
            error: CommandError::Disconnected
        }) || evs.contains(&Ev::Failed {
            id: f,
            error: CommandError::Shutdown
        })
    );
    assert_eq!(
        h.s.execute(h.now, &Command::flush()),
        Err(CommandError::Shutdown)
    );
    assert_eq!(h.s.poll_connect(h.now), None);
}

#[test]
fn chooser_moves_to_the_next_server_after_a_failure() {
    let mut chooser =
        DefaultServerChooser::new(["tcp://a:9007/amps/json", "tcp://b:9007/amps/json"]);
    let mut h = H::new(&ha_config("c"));
    h.s.start(h.now);
    let mut tried = Vec::new();
    for _ in 0..3 {
        let t = h.s.poll_timeout().unwrap_or(h.now);
        h.now = h.now.max(t);
        assert!(h.s.poll_connect(h.now).is_some());
        let uri = chooser.current_uri().unwrap().to_string();
        tried.push(uri.clone());
        if uri.contains("//b:") {
            h.logon();
            chooser.report_success(&uri);
            break;
        }
        chooser.report_failure(&uri, &"connection refused");
        h.s.handle_connect_failed(h.now);
    }
    assert_eq!(tried, ["tcp://a:9007/amps/json", "tcp://b:9007/amps/json"]);
    assert_eq!(h.s.state(), State::Ready);
}

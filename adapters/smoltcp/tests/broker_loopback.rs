//! amps-smoltcp against the real broker engine: one smoltcp interface over
//! the crate's loopback device, the amps-broker engine behind listening smoltcp sockets, and
//! clients driven exactly as firmware would drive them. The link is cut and restored with the
//! device's switch; time is virtual (tests/common).

mod common;

use amps_core::codec::Command;
use amps_core::session::{ConnectionState as CS, State};
use amps_smoltcp::Link;
use common::*;
use smoltcp::time::Duration;

fn payload(n: u32) -> String {
    format!(r#"{{"n":{n}}}"#)
}

/// The numbers in a list of `{"n":N}` payloads.
fn numbers(data: &[String]) -> Vec<u32> {
    data.iter()
        .map(|d| {
            d.trim_start_matches(r#"{"n":"#)
                .trim_end_matches('}')
                .parse()
                .unwrap()
        })
        .collect()
}

fn publish_range(w: &World, p: &mut Peer, range: std::ops::RangeInclusive<u32>) {
    for n in range {
        let seq = p
            .client
            .publish(w.now, "events", payload(n).as_bytes())
            .unwrap_or_else(|e| panic!("publish {n}: {e}"));
        assert!(seq.is_some(), "publishes go through the publish store");
    }
}

#[test]
fn publishes_survive_a_lost_link_and_the_subscriber_is_re_entered() {
    let mut w = World::new(6, true);
    let mut publisher = w.peer(PeerSpec::new("pub-1", 50_000));
    let mut subscriber = w.peer(PeerSpec::new("sub-1", 51_000));
    publisher.client.connect(w.now);
    subscriber.client.connect(w.now);
    assert!(
        w.run_until(
            &mut [&mut publisher, &mut subscriber],
            Duration::from_secs(5),
            |_, p| { p.iter().all(|p| p.client.is_ready()) }
        ),
        "both clients log on"
    );
    assert_eq!(
        publisher.states(),
        [
            CS::Connected,
            CS::LoggedOn,
            CS::HeartbeatInitiated,
            CS::PublishReplayed,
            CS::Resubscribed
        ]
    );

    let sub = subscriber.client.subscribe(w.now, "events", None).unwrap();
    assert!(w.run_until(
        &mut [&mut publisher, &mut subscriber],
        Duration::from_secs(5),
        |_, p| { p[1].completed(sub) }
    ));

    // 1..=10 on a healthy link: persisted and delivered.
    publish_range(&w, &mut publisher, 1..=10);
    assert!(w.run_until(
        &mut [&mut publisher, &mut subscriber],
        Duration::from_secs(5),
        |_, p| { p[0].unpersisted() == 0 && p[1].deliveries(sub).len() == 10 }
    ));

    // Cut the link. 11..=20 are written to the socket and lost on the wire.
    w.device.set_link_up(false);
    publish_range(&w, &mut publisher, 11..=20);
    // Heartbeat silence (2 s) ends the connection; reconnect attempts lose their SYNs until
    // the TCP timeout; the backoff schedules the next ones.
    assert!(
        w.run_until(
            &mut [&mut publisher, &mut subscriber],
            Duration::from_secs(30),
            |_, p| { p.iter().all(|p| p.client.stats().connect_failures >= 2) }
        ),
        "reconnect attempts fail while the link is down"
    );
    assert_ne!(publisher.client.session().state(), State::Ready);
    assert_eq!(
        publisher.unpersisted(),
        10,
        "11..=20 wait in the publish store"
    );

    // 21..=30 while disconnected: kept in the store only.
    publish_range(&w, &mut publisher, 21..=30);
    assert_eq!(publisher.unpersisted(), 20);

    // Restore the link: reconnect, log on, replay the store, re-enter the subscription.
    w.device.set_link_up(true);
    assert!(
        w.run_until(
            &mut [&mut publisher, &mut subscriber],
            Duration::from_secs(30),
            |_, p| { p.iter().all(|p| p.client.is_ready()) && p[0].unpersisted() == 0 }
        ),
        "recovered after the link came back"
    );
    let stats = publisher.client.stats();
    assert!(stats.disconnects >= 1, "{stats:?}");
    assert!(stats.connects >= 3, "{stats:?}");
    assert!(
        publisher
            .events
            .iter()
            .any(|e| matches!(e, Ev::Persisted(30)))
    );
    assert!(
        subscriber
            .states()
            .ends_with(&[CS::PublishReplayed, CS::Resubscribed])
    );

    // The re-entered subscription is live again.
    publish_range(&w, &mut publisher, 31..=40);
    assert!(w.run_until(
        &mut [&mut publisher, &mut subscriber],
        Duration::from_secs(5),
        |_, p| { p[0].unpersisted() == 0 && numbers(&p[1].deliveries(sub)).contains(&40) }
    ));
    let got = numbers(&subscriber.deliveries(sub));
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(got, dedup, "no duplicate deliveries");
    assert!(got.starts_with(&(1..=10).collect::<Vec<_>>()));
    assert!(got.ends_with(&(31..=40).collect::<Vec<_>>()));

    // The transaction log holds every message exactly once, in publish order: nothing the
    // publish store held was lost, and the replay produced no duplicate.
    let mut auditor = w.peer(PeerSpec {
        reconnect: false,
        ..PeerSpec::new("audit", 52_000)
    });
    auditor.client.connect(w.now);
    assert!(w.run_until(
        &mut [&mut publisher, &mut subscriber, &mut auditor],
        Duration::from_secs(5),
        |_, p| p[2].client.is_ready()
    ));
    let replay = auditor
        .client
        .execute(w.now, &Command::subscribe("events").bookmark("0"))
        .unwrap();
    assert!(w.run_until(
        &mut [&mut publisher, &mut subscriber, &mut auditor],
        Duration::from_secs(5),
        |_, p| p[2].deliveries(replay).len() >= 40
    ));
    w.run_for(
        &mut [&mut publisher, &mut subscriber, &mut auditor],
        Duration::from_secs(2),
    );
    assert_eq!(
        numbers(&auditor.deliveries(replay)),
        (1..=40).collect::<Vec<_>>()
    );
}

#[test]
fn refused_connects_back_off_until_the_broker_listens() {
    let mut w = World::new(2, false);
    let mut p = w.peer(PeerSpec::new("pub-2", 50_100));
    p.client.connect(w.now);
    // Nobody listens: every SYN is answered by a reset. Attempts are spaced by the exponential
    // backoff (100 ms doubling, capped at 2 s), so 5 s of virtual time see only a few.
    w.run_for(&mut [&mut p], Duration::from_secs(5));
    let failures = p.client.stats().connect_failures;
    assert!(
        (4..=8).contains(&failures),
        "{failures} failed attempts in 5 s"
    );
    assert_eq!(p.client.link(), Link::Idle);
    assert_eq!(p.client.session().state(), State::Disconnected);

    w.set_listening(true);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.is_ready()
    }));
    assert_eq!(p.client.stats().connect_failures, failures);
}

#[test]
fn heartbeats_keep_an_idle_connection_alive() {
    let mut w = World::new(2, true);
    let mut p = w.peer(PeerSpec::new("idle-1", 50_200));
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.is_ready()
    }));
    // 30 s with nothing to say: beats both ways keep both sides satisfied (docs/protocol.md §9:
    // the broker closes after 2 intervals of silence, and so would the client).
    w.run_for(&mut [&mut p], Duration::from_secs(30));
    assert_eq!(p.client.stats().disconnects, 0);
    assert_eq!(w.broker_closes(), 0);
    assert!(p.client.is_ready());
    assert!(p.client.stats().bytes_out > 30 * 20, "beats were sent");
}

#[test]
fn publish_flush_then_close_ends_with_fin() {
    let mut w = World::new(2, true);
    let mut p = w.peer(PeerSpec::new("pub-3", 50_300));
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.is_ready()
    }));
    publish_range(&w, &mut p, 1..=5);
    let flush = p
        .client
        .publish_flush(w.now, Duration::from_secs(5))
        .unwrap();
    let done = w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].completed(flush)
    });
    assert!(done, "{:?} unpersisted {}", p.events, p.unpersisted());
    assert_eq!(p.unpersisted(), 0);
    p.client.close(w.now);
    assert!(w.run_until(
        &mut [&mut p],
        Duration::from_secs(5),
        |w, _| w.connected_slots() == 0
    ));
    assert_eq!(p.client.link(), Link::Idle);
    assert_eq!(p.client.session().state(), State::Shutdown);
    assert_eq!(p.states().last(), Some(&CS::Shutdown));
    // Closed for good: nothing reconnects.
    w.run_for(&mut [&mut p], Duration::from_secs(5));
    assert_eq!(p.client.stats().connects, 1);
}

//! Failover between servers, each with its own logon (`Options::failover`), against the real
//! broker engine: several brokers on one smoltcp interface (tests/common), each with its own
//! port and users, some of them refusing connections, refusing logons or never answering.
//! Time is virtual.

mod common;

use amps_core::session::{CommandError, FailureKind, State};
use amps_smoltcp::{Link, Server};
use common::*;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpEndpoint};

fn at(port: u16) -> IpEndpoint {
    IpEndpoint::new(ADDR, port)
}

fn refused_logons(p: &Peer) -> usize {
    p.failures()
        .iter()
        .filter(|e| {
            matches!(
                e,
                CommandError::Failed {
                    kind: FailureKind::Authentication,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn unreachable_servers_are_skipped_and_the_next_one_gets_its_own_logon() {
    // Server 0 cannot be addressed, server 1 refuses connections, server 2 serves and knows
    // only bob: any other server's credentials would be refused there.
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(9100).mode(Mode::Closed),
        BrokerSpec::new(BROKER_PORT).users(&[("bob", "bob-pw")]),
    ]);
    let mut p = w.peer(PeerSpec {
        server: IpEndpoint::new(IpAddress::v4(0, 0, 0, 0), BROKER_PORT),
        logon: Some(logon("alice", "alice-pw")),
        failover: servers(vec![
            Server::new(at(9100), logon("carol", "carol-pw")),
            Server::new(at(BROKER_PORT), logon("bob", "bob-pw")),
        ]),
        ..PeerSpec::new("dev-1", 50_000)
    });
    assert_eq!(p.client.server_count(), 3);
    assert_eq!(p.client.current_server().0, 0);
    p.client.connect(w.now);
    assert!(
        w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| p[0]
            .client
            .is_ready()),
        "logged on to the third server: {:?}",
        p.events
    );
    assert_eq!(p.client.current_server(), (2, at(BROKER_PORT)));
    let stats = p.client.stats();
    assert_eq!(stats.connects, 3, "{stats:?}");
    assert_eq!(stats.connect_failures, 2, "{stats:?}");
    assert_eq!(stats.failovers, 2, "{stats:?}");
    assert!(p.failures().is_empty(), "{:?}", p.failures());
    // Server 2 got its own logon, and no other server's credentials.
    let serving = &w.brokers[1];
    assert!(serving.saw(r#""user_id":"bob""#));
    assert!(!serving.saw("alice") && !serving.saw("carol"));
    assert_eq!(serving.accepts, 1);
    assert_eq!(w.brokers[0].accepts, 0, "server 1 never accepted");
}

#[test]
fn a_refused_logon_moves_on_at_once_to_the_next_server() {
    // Both brokers have users; the client's credentials for server 0 are wrong.
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(BROKER_PORT).users(&[("alice", "right")]),
        BrokerSpec::new(9008).users(&[("bob", "bob-pw")]),
    ]);
    let mut p = w.peer(PeerSpec {
        logon: Some(logon("alice", "wrong")),
        failover: servers(vec![Server::new(at(9008), logon("bob", "bob-pw"))]),
        ..PeerSpec::new("dev-2", 50_100)
    });
    p.client.connect(w.now);
    assert!(
        w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| p[0]
            .client
            .is_ready()),
        "{:?}",
        p.events
    );
    assert_eq!(refused_logons(&p), 1, "{:?}", p.failures());
    assert_eq!(p.client.current_server(), (1, at(9008)));
    let stats = p.client.stats();
    assert_eq!((stats.connects, stats.failovers), (2, 1), "{stats:?}");
    // At once: no reconnect delay (the first one is 100 ms) between the refusal and the
    // attempt on the next server.
    assert!(w.now < Instant::from_millis(100), "ready at {}", w.now);
    assert!(w.brokers[0].saw(r#""user_id":"alice""#));
    assert!(w.brokers[1].saw(r#""user_id":"bob""#));
    assert!(
        !w.brokers[1].saw("alice"),
        "server 0's logon never reached server 1"
    );
}

#[test]
fn a_challenge_answered_and_refused_moves_on_at_once() {
    // Server 0 challenges alice's logon; the token comes back wrong.
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(BROKER_PORT).challenged_users(&[("alice", "alice-pw")]),
        BrokerSpec::new(9008).users(&[("bob", "bob-pw")]),
    ]);
    let mut p = w.peer(PeerSpec {
        logon: Some(logon("alice", "alice-pw")),
        failover: servers(vec![Server::new(at(9008), logon("bob", "bob-pw"))]),
        ..PeerSpec::new("dev-7", 50_600)
    });
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].challenge().is_some()
    }));
    let (user, token) = p.challenge().unwrap();
    assert_eq!(user, "alice");
    p.client
        .answer_logon_retry(w.now, None, &format!("{token}-forged"))
        .unwrap();
    assert!(
        w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| p[0]
            .client
            .is_ready()),
        "{:?}",
        p.events
    );
    assert_eq!(refused_logons(&p), 1, "{:?}", p.failures());
    assert_eq!(p.client.current_server(), (1, at(9008)));
    let stats = p.client.stats();
    assert_eq!((stats.connects, stats.failovers), (2, 1), "{stats:?}");
    assert!(w.now < Instant::from_millis(100), "ready at {}", w.now);

    // The right answer logs on where the challenge came from.
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(BROKER_PORT).challenged_users(&[("alice", "alice-pw")]),
        BrokerSpec::new(9008),
    ]);
    let mut p = w.peer(PeerSpec {
        logon: Some(logon("alice", "alice-pw")),
        failover: servers(vec![Server::new(at(9008), logon("bob", "bob-pw"))]),
        ..PeerSpec::new("dev-8", 50_700)
    });
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].challenge().is_some()
    }));
    let (_, token) = p.challenge().unwrap();
    p.client.answer_logon_retry(w.now, None, &token).unwrap();
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.is_ready()
    }));
    assert_eq!(p.client.current_server().0, 0);
    assert_eq!(p.client.stats().failovers, 0);
}

#[test]
fn when_every_server_refused_its_logon_the_client_waits_for_connect() {
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(BROKER_PORT).users(&[("alice", "right")]),
        BrokerSpec::new(9008).users(&[("bob", "right")]),
    ]);
    let mut p = w.peer(PeerSpec {
        logon: Some(logon("alice", "wrong")),
        failover: servers(vec![Server::new(at(9008), logon("bob", "wrong"))]),
        ..PeerSpec::new("dev-3", 50_200)
    });
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        refused_logons(p[0]) == 2
    }));
    // Retrying refused credentials cannot help: the client stops, as the core does for one
    // server, and stays stopped.
    w.run_for(&mut [&mut p], Duration::from_secs(30));
    let stats = p.client.stats();
    assert_eq!((stats.connects, stats.failovers), (2, 2), "{stats:?}");
    assert_eq!(refused_logons(&p), 2);
    assert_eq!(p.client.session().state(), State::Disconnected);
    assert_eq!(p.client.link(), Link::Idle);
    assert_eq!(p.client.current_server().0, 0, "wrapped around");

    // The application starts over: each server is tried once more.
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        refused_logons(p[0]) == 4
    }));
    w.run_for(&mut [&mut p], Duration::from_secs(10));
    assert_eq!(p.client.stats().connects, 4);
    assert_eq!(w.brokers[0].accepts, 2);
    assert_eq!(w.brokers[1].accepts, 2);
}

#[test]
fn a_logon_timeout_moves_on_to_the_next_server() {
    // Server 0 accepts the connection and never answers the logon.
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(BROKER_PORT).mode(Mode::Mute),
        BrokerSpec::new(9008),
    ]);
    let mut p = w.peer(PeerSpec {
        logon_timeout: Some(Duration::from_secs(2)),
        failover: servers(vec![Server::new(at(9008), logon("bob", "bob-pw"))]),
        ..PeerSpec::new("dev-4", 50_300)
    });
    p.client.connect(w.now);
    assert!(
        w.run_until(&mut [&mut p], Duration::from_secs(10), |_, p| p[0]
            .client
            .is_ready()),
        "{:?}",
        p.events
    );
    assert_eq!(p.failures(), [CommandError::TimedOut]);
    assert!(
        w.now >= Instant::from_secs(2),
        "not before the logon timeout"
    );
    assert_eq!(p.client.current_server(), (1, at(9008)));
    assert_eq!(p.client.stats().failovers, 1);
    assert_eq!(w.brokers[0].accepts, 1);
    assert!(
        w.brokers[0].saw(r#""c":"logon""#),
        "the logon was sent to server 0"
    );
}

#[test]
fn a_connection_reset_during_the_logon_moves_on() {
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(BROKER_PORT).mode(Mode::Mute),
        BrokerSpec::new(9008),
    ]);
    let mut p = w.peer(PeerSpec {
        failover: servers(vec![Server::new(at(9008), logon("bob", "bob-pw"))]),
        ..PeerSpec::new("dev-5", 50_400)
    });
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |w, _| {
        w.brokers[0].saw(r#""c":"logon""#)
    }));
    assert_eq!(p.client.session().state(), State::LoggingOn);
    w.drop_connections(0);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.is_ready()
    }));
    assert_eq!(p.client.current_server(), (1, at(9008)));
    assert_eq!(p.client.stats().failovers, 1);
    assert_eq!(w.brokers[0].accepts, 1, "server 0 was not tried again");
}

#[test]
fn a_session_lost_after_logon_is_retried_on_the_same_server_first() {
    let mut w = World::with_brokers(vec![
        BrokerSpec::new(BROKER_PORT).users(&[("alice", "alice-pw")]),
        BrokerSpec::new(9008).users(&[("bob", "bob-pw")]),
    ]);
    let mut p = w.peer(PeerSpec {
        logon: Some(logon("alice", "alice-pw")),
        failover: servers(vec![Server::new(at(9008), logon("bob", "bob-pw"))]),
        ..PeerSpec::new("dev-6", 50_500)
    });
    p.client.connect(w.now);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.is_ready()
    }));
    assert_eq!(p.client.current_server().0, 0);

    // The server resets the logged-on connection: the client comes back to the same server.
    w.drop_connections(0);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.stats().disconnects == 1
    }));
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.is_ready()
    }));
    assert_eq!(p.client.current_server(), (0, at(BROKER_PORT)));
    assert_eq!(w.brokers[0].accepts, 2);
    assert_eq!(w.brokers[1].accepts, 0);
    assert_eq!(p.client.stats().failovers, 0);

    // Lost again, and now server 0 refuses connections: its retry fails, and only then does
    // the client move on (with server 1's logon).
    w.brokers[0].mode = Mode::Closed;
    w.drop_connections(0);
    assert!(w.run_until(&mut [&mut p], Duration::from_secs(5), |_, p| {
        p[0].client.stats().disconnects == 2
    }));
    assert!(
        w.run_until(&mut [&mut p], Duration::from_secs(10), |_, p| p[0]
            .client
            .is_ready()),
        "{:?}",
        p.events
    );
    let stats = p.client.stats();
    assert_eq!(p.client.current_server(), (1, at(9008)));
    assert_eq!(
        stats.connect_failures, 1,
        "one retry of server 0: {stats:?}"
    );
    assert_eq!(stats.failovers, 1, "{stats:?}");
    assert_eq!(stats.connects, 4, "{stats:?}");
    assert_eq!(w.brokers[1].accepts, 1);
    assert!(w.brokers[1].saw(r#""user_id":"bob""#));
    assert!(
        p.failures()
            .iter()
            .all(|e| *e == CommandError::Disconnected)
    );
}

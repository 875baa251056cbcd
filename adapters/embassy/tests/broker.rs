//! amps-embassy end to end against amps-broker on loopback (tests/common): logon, publish
//! through the bounded publish store with persisted acks, subscribe, heartbeats, a broker
//! restart (connections dropped, log kept) and a broker stopped and started again (connects
//! refused and retried with backoff through the connect function).

mod common;

use amps_broker::Server;
use amps_core::session::{ConnectionState as CS, State};
use amps_embassy::Link;
use common::*;
use tokio::task::LocalSet;

#[tokio::test(flavor = "current_thread")]
async fn publishes_survive_a_broker_restart_exactly_once() {
    LocalSet::new()
        .run_until(async {
            let b = broker().await;
            let addr = b.local_addr();
            let publisher = peer(addr, Spec::new("pub-1"));
            let subscriber = peer(addr, Spec::new("sub-1"));
            publisher.client.connect().await;
            subscriber.client.connect().await;
            publisher
                .rec
                .until("publisher logon", |r| r.recoveries() == 1)
                .await;
            subscriber
                .rec
                .until("subscriber logon", |r| r.recoveries() == 1)
                .await;
            assert_eq!(
                publisher.rec.states(),
                [
                    CS::Connected,
                    CS::LoggedOn,
                    CS::HeartbeatInitiated,
                    CS::PublishReplayed,
                    CS::Resubscribed
                ]
            );
            assert!(publisher.client.is_ready().await);
            assert_eq!(publisher.client.link().await, Link::Open);

            let sub = subscriber.client.subscribe("events", None).await.unwrap();
            subscriber
                .rec
                .until("subscribe ack", |r| r.completed(sub))
                .await;

            // 1..=10 on a healthy connection: persisted and delivered.
            publish_range(&publisher, "events", 1..=10).await;
            publisher
                .rec
                .until("1..=10 persisted", |r| r.persisted() == 10)
                .await;
            subscriber
                .rec
                .until("1..=10 delivered", |r| r.deliveries(sub).len() == 10)
                .await;
            assert_eq!(publisher.client.unpersisted_count().await, 0);

            // The broker drops every connection (keeping its log and sequence numbers).
            b.restart();
            // 11..=20 while the clients notice, reconnect and recover: kept in the store
            // until persisted, replayed after the logon if the connection took them down.
            publish_range(&publisher, "events", 11..=20).await;
            publisher
                .rec
                .until("publisher recovered", |r| r.recoveries() == 2)
                .await;
            subscriber
                .rec
                .until("subscriber recovered", |r| r.recoveries() == 2)
                .await;
            publisher
                .rec
                .until("11..=20 persisted", |r| r.persisted() == 20)
                .await;
            assert_eq!(publisher.client.unpersisted_count().await, 0);
            let stats = publisher.client.stats().await;
            assert_eq!(stats.disconnects, 1, "{stats:?}");
            assert_eq!(stats.connects, 2, "{stats:?}");
            assert!(
                publisher.rec.states().ends_with(&[
                    CS::Disconnected,
                    CS::Connected,
                    CS::LoggedOn,
                    CS::HeartbeatInitiated,
                    CS::PublishReplayed,
                    CS::Resubscribed
                ]),
                "{:?}",
                publisher.rec.states()
            );

            // The re-entered subscription is live again.
            publish_range(&publisher, "events", 21..=25).await;
            subscriber
                .rec
                .until("21..=25 delivered", |r| {
                    numbers(&r.deliveries(sub)).contains(&25)
                })
                .await;
            let got = numbers(&subscriber.rec.deliveries(sub));
            let mut dedup = got.clone();
            dedup.dedup();
            assert_eq!(got, dedup, "no duplicate deliveries");
            assert!(got.starts_with(&(1..=10).collect::<Vec<_>>()));
            assert!(got.ends_with(&(21..=25).collect::<Vec<_>>()));

            // The transaction log holds every message exactly once, in publish order.
            assert_eq!(
                audit(addr, "events", 25).await,
                (1..=25).collect::<Vec<_>>()
            );
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stopped_broker_is_retried_with_backoff_until_a_new_one_listens() {
    LocalSet::new()
        .run_until(async {
            let first = broker().await;
            let addr = first.local_addr();
            let p = peer(addr, Spec::new("pub-2"));
            p.client.connect().await;
            p.rec.until("logon", |r| r.recoveries() == 1).await;
            publish_range(&p, "events", 1..=5).await;
            p.rec.until("1..=5 persisted", |r| r.persisted() == 5).await;

            // The broker stops: the connection ends and every attempt is refused. The
            // backoff (50 ms doubling to 400 ms) spaces them; the store keeps what is
            // published meanwhile.
            first.shutdown();
            p.rec
                .until("connects refused", |r| r.refused.get() >= 3)
                .await;
            assert_ne!(p.client.state().await, State::Ready);
            assert_eq!(p.client.link().await, Link::Idle);
            publish_range(&p, "events", 6..=10).await;
            assert_eq!(p.client.unpersisted_count().await, 5);

            // A new broker on the same port (the refused attempts show the old listener is
            // gone): the client gets in, replays 6..=10, and a fresh subscription sees new
            // messages.
            let second = Server::start(broker_config(), addr).await.unwrap();
            p.rec.until("recovered", |r| r.recoveries() == 2).await;
            p.rec
                .until("6..=10 persisted", |r| r.persisted() >= 10)
                .await;
            assert_eq!(p.client.unpersisted_count().await, 0);
            let stats = p.client.stats().await;
            assert_eq!(stats.connect_failures, p.rec.refused.get(), "{stats:?}");
            assert_eq!(stats.connects, stats.connect_failures + 2, "{stats:?}");
            assert_eq!(p.rec.opened.get(), 2);

            // The new broker's log has exactly what the store replayed.
            assert_eq!(audit(addr, "events", 5).await, (6..=10).collect::<Vec<_>>());
            drop(second);
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn heartbeats_keep_an_idle_connection_alive() {
    LocalSet::new()
        .run_until(async {
            let b = broker().await;
            let p = peer(b.local_addr(), Spec::new("idle-1"));
            p.client.connect().await;
            p.rec.until("logon", |r| r.recoveries() == 1).await;
            // Nothing to say for four beats (1 s apart): the broker would close a silent
            // connection after 2 s, and the client a silent server after 2 s.
            let start = p.rec.beats_out.get();
            p.rec
                .until("four beats", |r| r.beats_out.get() >= start + 4)
                .await;
            assert_eq!(p.rec.states().last(), Some(&CS::Resubscribed));
            assert_eq!(p.client.stats().await.disconnects, 0);
            assert_eq!(p.rec.opened.get(), 1);
            assert!(p.client.is_ready().await);
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn publish_flush_then_close_ends_the_driver() {
    LocalSet::new()
        .run_until(async {
            let b = broker().await;
            let p = peer(b.local_addr(), Spec::new("pub-3"));
            // Before the first logon the server's sequence is unknown: publish_wait waits.
            let early = tokio::task::spawn_local(async move {
                p.client.publish_wait("flush", payload(1).as_bytes()).await
            });
            p.client.connect().await;
            assert_eq!(within("early publish", early).await.unwrap(), Ok(Some(1)));
            publish_range(&p, "flush", 2..=5).await;
            let flush = p
                .client
                .publish_flush(amps_core::Duration::from_secs(5))
                .await
                .unwrap();
            p.rec.until("publish_flush", |r| r.completed(flush)).await;
            assert_eq!(p.client.unpersisted_count().await, 0);
            assert_eq!(p.rec.persisted(), 5);

            p.client.close().await;
            let stats = within("the driver to end", p.driver).await.unwrap();
            assert_eq!(stats.connects, 1);
            assert_eq!(stats.disconnects, 1);
            assert_eq!(p.client.state().await, State::Shutdown);
            assert_eq!(p.rec.states().last(), Some(&CS::Shutdown));
            assert_eq!(p.client.link().await, Link::Idle);
            assert!(stats.bytes_out > 0 && stats.bytes_in > 0, "{stats:?}");
        })
        .await;
}

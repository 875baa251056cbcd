//! A transport that breaks the `embedded_io_async` contract (tests/common's `Lie`) on a live
//! connection to amps-broker: the driver must end that connection with a reason the
//! application can read in `Stats::last_disconnect`, reconnect with the session's backoff and
//! replay the publish store, never stall or retry without end. Heartbeats are off, so a stalled
//! driver is not rescued by the session's silence timer.

mod common;

use amps_core::session::State;
use amps_embassy::Disconnect;
use common::*;
use tokio::task::LocalSet;

/// Publish 1..=10 on an honest connection, make it lie, publish 11..=20: the lying connection
/// ends with `expected`, the next one is honest, and the log has 1..=20 exactly once.
async fn lie_then_recover(name: &'static str, lie: Lie, expected: Disconnect) {
    LocalSet::new()
        .run_until(async {
            let b = broker().await;
            let addr = b.local_addr();
            let p = peer(
                addr,
                Spec {
                    heartbeat: None,
                    ..Spec::new(name)
                },
            );
            p.client.connect().await;
            p.rec.until("logon", |r| r.recoveries() == 1).await;
            publish_range(&p, "events", 1..=10).await;
            p.rec
                .until("1..=10 persisted", |r| r.persisted() == 10)
                .await;
            assert_eq!(p.client.stats().await.last_disconnect, None);

            // From now on the first connection lies (the next one is honest).
            p.rec.lie.set(Some((1, lie)));
            publish_range(&p, "events", 11..=20).await;
            p.rec
                .until("a new connection after the lie", |r| r.opened.get() == 2)
                .await;
            p.rec.until("recovery", |r| r.recoveries() == 2).await;
            // The store drains: a flush waits for every replayed publish to be persisted.
            let flush = p
                .client
                .publish_flush(amps_core::Duration::from_secs(10))
                .await
                .unwrap();
            p.rec
                .until("the store drained", |r| r.completed(flush))
                .await;
            assert_eq!(p.client.unpersisted_count().await, 0);

            let told = p.rec.lies_told.get();
            assert!(told >= 1, "the transport never lied");
            // One lie ends the connection: the driver does not retry a lying call.
            assert_eq!(told, 1, "{lie:?} was retried");
            let stats = p.client.stats().await;
            assert_eq!(stats.last_disconnect, Some(expected), "{stats:?}");
            assert_eq!(stats.disconnects, 1, "{stats:?}");
            assert_eq!(stats.connects, 2, "{stats:?}");

            // Nothing published was lost or doubled.
            assert_eq!(
                audit(addr, "events", 20).await,
                (1..=20).collect::<Vec<_>>()
            );

            p.client.close().await;
            let end = within("the driver", p.driver).await.unwrap();
            assert_eq!(end.disconnects, 2, "{end:?}");
            assert_eq!(end.last_disconnect, Some(Disconnect::Session), "{end:?}");
            assert_eq!(p.client.state().await, State::Shutdown);
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_of_zero_bytes_ends_the_connection() {
    lie_then_recover("liar-write-zero", Lie::WriteZero, Disconnect::WriteZero).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_claiming_more_than_it_was_given_ends_the_connection() {
    lie_then_recover(
        "liar-write-overrun",
        Lie::WriteOverrun,
        Disconnect::WriteOverrun,
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_read_claiming_more_than_the_buffer_ends_the_connection() {
    lie_then_recover(
        "liar-read-overrun",
        Lie::ReadOverrun,
        Disconnect::ReadOverrun,
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn end_of_stream_is_a_disconnect_then_a_reconnect() {
    lie_then_recover("liar-eof", Lie::Eof, Disconnect::PeerClosed).await;
}

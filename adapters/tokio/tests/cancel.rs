//! Backpressure and cancel-safety: `publish` waits when the publish window is full and
//! `try_publish` errors; futures dropped at any await point lose nothing, duplicate nothing, and
//! leave the client working.

mod common;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use std::time::Duration;

use amps_tokio::{Command, ErrorKind, HaClient, Limits, bookmark};
use common::*;
use futures::task::noop_waker_ref;

/// Poll `f` at most `polls` times, then drop it; true if it completed.
fn poll_then_drop<F: Future>(f: F, polls: usize) -> bool {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(noop_waker_ref());
    (0..polls).any(|_| matches!(f.as_mut().poll(&mut cx), Poll::Ready(_)))
}

/// An HA client logged on to `b` with a publish window of 8 messages and a 1 KiB publish
/// queue, so backpressure starts after a handful of publishes.
async fn small_window(name: &str, b: &amps_broker::ServerHandle) -> HaClient {
    let limits = Limits {
        publish_window_messages: 8,
        ..Limits::default()
    };
    let ha = HaClient::builder(name)
        .uris([uri(b)])
        .limits(limits)
        .publish_queue_bytes(1024)
        .memory_backed()
        .build()
        .unwrap();
    within(ha.connect_and_logon()).await.unwrap();
    ha
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_waits_for_the_window_and_try_publish_refuses() {
    let b = broker().await;
    let ha = small_window("bp", &b).await;
    // The server stops acknowledging: the window (8 messages) fills, then the queue (1 KiB).
    b.faults(|f| f.withhold_acks = true);
    let payload = [b'x'; 100];
    let mut accepted = 0;
    let mut refused_in_a_row = 0;
    // Full means: refused again and again while the driver had every chance to take more
    // (it may take one more batch from the queue when the window fills exactly at its end).
    while refused_in_a_row < 20 {
        match ha.try_publish("events", payload) {
            Ok(()) => {
                accepted += 1;
                refused_in_a_row = 0;
                assert!(accepted < 1000, "memory must be bounded");
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Busy);
                refused_in_a_row += 1;
            }
        }
        tokio::task::yield_now().await;
    }
    // `publish` waits instead. A slow driver may still take one more batch, so a publish
    // that completes is counted; one must then stay pending while acks are withheld.
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut waiting = Box::pin(ha.publish("events", payload));
    let mut pending_rounds = 0;
    while pending_rounds < 100 {
        if waiting.as_mut().poll(&mut cx).is_ready() {
            accepted += 1;
            assert!(accepted < 1000, "memory must be bounded");
            waiting = Box::pin(ha.publish("events", payload));
            pending_rounds = 0;
        } else {
            pending_rounds += 1;
        }
        tokio::task::yield_now().await;
    }
    // Every accepted publish is counted, exactly: queued in the client or in the publish store
    // (one consistent reading of both, whatever the driver is doing).
    assert_eq!(ha.unpersisted_count(), accepted);
    // Acks flow again: the waiting publish completes and everything is persisted.
    b.faults(|f| f.withhold_acks = false);
    within(waiting).await.unwrap();
    within(ha.publish_flush(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(ha.unpersisted_count(), 0);
    let sub = client(&b, "reader").await;
    let s = within(sub.bookmark_subscribe("events", bookmark::EPOCH, None, None))
        .await
        .unwrap();
    let mut s = s;
    for _ in 0..accepted + 1 {
        next(&mut s).await;
    }
    within(sub.flush()).await.unwrap();
    assert!(s.is_empty(), "exactly the accepted publishes, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_publish_futures_neither_lose_nor_duplicate() {
    let b = broker().await;
    let ha = small_window("cancel-pub", &b).await;
    let reader = client(&b, "reader").await;
    let mut s = within(reader.subscribe("events", None)).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..400u32 {
        let body = i.to_string();
        // Polls 0, 1, 2 times: dropped before, at, or after the await on queue space.
        if poll_then_drop(ha.publish("events", body.as_bytes()), (i % 3) as usize) {
            sent.push(i);
        }
        if i % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    within(ha.publish_flush(Duration::from_secs(5)))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(text(&next(&mut s).await).parse::<u32>().unwrap());
    }
    assert_eq!(
        got, sent,
        "every completed publish once, in order, nothing else"
    );
    within(reader.flush()).await.unwrap();
    assert!(s.is_empty());
    assert!(
        !sent.is_empty() && sent.len() < 400,
        "some were dropped, some completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_subscribe_futures_leave_no_subscription() {
    let b = broker().await;
    let c = client(&b, "c").await;
    for polls in 0..4 {
        let cmd = Command::subscribe("t").sub_id("reused");
        poll_then_drop(c.execute(&cmd), polls);
        // Whatever point the drop hit, the id is free again and the client works.
        let s = within(c.execute(&Command::subscribe("t").sub_id("reused")))
            .await
            .unwrap();
        drop(s);
    }
    // A cancelled flush and sow do not wedge anything either.
    poll_then_drop(c.flush(), 1);
    poll_then_drop(c.sow("orders", None), 1);
    let p = client(&b, "p").await;
    let mut s = within(c.subscribe("t", None)).await.unwrap();
    p.publish("t", "still works").await.unwrap();
    assert_eq!(text(&next(&mut s).await), "still works");
    within(c.flush()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_next_futures_keep_the_message() {
    use futures::StreamExt;
    let b = broker().await;
    let c = client(&b, "c").await;
    let p = client(&b, "p").await;
    let mut s = within(c.subscribe("t", None)).await.unwrap();
    // Dropped while pending: no message yet.
    assert!(!poll_then_drop(s.next(), 1));
    p.publish("t", "kept").await.unwrap();
    assert_eq!(text(&next(&mut s).await), "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_connect_leaves_the_client_disconnected() {
    let b = broker().await;
    let c = amps_tokio::Client::new("cc").unwrap();
    poll_then_drop(c.connect(&uri(&b)), 1);
    // The abandoned attempt is undone (or never finished): a new connect succeeds.
    within(async {
        loop {
            match c.connect(&uri(&b)).await {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::AlreadyConnected => {
                    c.disconnect().await.unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    within(c.logon()).await.unwrap();
    within(c.flush()).await.unwrap();
}

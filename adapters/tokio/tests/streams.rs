//! Stream bounds and reports (issue 6 item 1): the overflow policies (block, drop oldest,
//! slow consumer), client-side conflation by SOW key, and the failed-write, last-chance and
//! error events.

mod common;
use amps_tokio::{
    ClientEvent, Command, Duration, ErrorKind, HaClient, OverflowPolicy, StreamOptions,
};
use common::*;

fn opts(capacity: usize, policy: OverflowPolicy) -> StreamOptions {
    StreamOptions {
        capacity,
        policy,
        ..StreamOptions::default()
    }
}

/// Publish `n` numbered messages to `topic` from a separate client and wait until the
/// broker processed them.
async fn feed(b: &amps_broker::ServerHandle, topic: &str, n: u32) {
    let p = client(b, "feeder").await;
    for i in 0..n {
        p.publish(topic, i.to_string().as_bytes()).await.unwrap();
    }
    within(p.flush()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_policy_loses_nothing_beyond_capacity() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let mut s = within(c.execute_with(Command::subscribe("t"), opts(4, OverflowPolicy::Block)))
        .await
        .unwrap();
    feed(&b, "t", 50).await;
    // The stream holds 4; the client stopped reading until there is room, so all 50 arrive.
    for i in 0..50 {
        assert_eq!(text(&next(&mut s).await), i.to_string());
    }
    // And the client still answers commands afterwards.
    within(c.flush()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_keeps_the_newest() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let mut s =
        within(c.execute_with(Command::subscribe("t"), opts(3, OverflowPolicy::DropOldest)))
            .await
            .unwrap();
    feed(&b, "t", 10).await;
    within(c.flush()).await.unwrap(); // every delivery was processed before the flush ack
    assert_eq!(s.dropped_count(), 7);
    let got: Vec<String> = vec![
        text(&next(&mut s).await),
        text(&next(&mut s).await),
        text(&next(&mut s).await),
    ];
    assert_eq!(got, ["7", "8", "9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_ends_the_stream_with_an_error() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let mut s = within(c.execute_with(
        Command::subscribe("t"),
        opts(2, OverflowPolicy::SlowConsumer),
    ))
    .await
    .unwrap();
    feed(&b, "t", 5).await;
    within(c.flush()).await.unwrap();
    assert_eq!(text(&next(&mut s).await), "0");
    assert_eq!(text(&next(&mut s).await), "1");
    let e = within(futures::StreamExt::next(&mut s))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflation_keeps_the_latest_per_sow_key() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let mut s = within(c.subscribe("orders", None)).await.unwrap();
    s.conflate();
    let p = client(&b, "p").await;
    for (id, qty) in [("A", 1), ("B", 1), ("A", 2), ("A", 3), ("B", 2)] {
        let m = format!(r#"{{"id":"{id}","qty":{qty}}}"#);
        p.publish("orders", m.as_bytes()).await.unwrap();
    }
    within(p.flush()).await.unwrap();
    within(c.flush()).await.unwrap();
    assert_eq!(text(&next(&mut s).await), r#"{"id":"A","qty":3}"#);
    assert_eq!(text(&next(&mut s).await), r#"{"id":"B","qty":2}"#);
    assert!(s.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_carry_the_stored_message() {
    let b = broker().await;
    let ha = HaClient::builder("fw")
        .uris([uri(&b)])
        .memory_stores()
        .build()
        .unwrap();
    within(ha.connect_and_logon()).await.unwrap();
    let mut events = ha.events();
    b.faults(|f| f.fail_next_publish = Some("not entitled".into()));
    ha.publish("events", b"refused").await.unwrap();
    ha.publish("events", b"fine").await.unwrap();
    let e = wait_event(&mut events, |e| {
        matches!(e, ClientEvent::FailedWrite { .. })
    })
    .await;
    let ClientEvent::FailedWrite {
        seq,
        kind,
        reason,
        stored,
    } = e
    else {
        unreachable!()
    };
    assert_eq!(seq, 1);
    assert_eq!(kind, amps_core::session::FailureKind::NotEntitled);
    assert_eq!(reason, "not entitled");
    let stored = stored.expect("the publish store had it");
    assert!(stored.ends_with(b"refused"));
    within(ha.publish_flush(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(ha.unpersisted_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_messages_go_to_last_chance() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let mut events = c.events();
    // Capacity 1 with Block: message 0 waits in the stream, message 1 in the client, message 2
    // still on the wire when the application drops the stream.
    let s = within(c.execute_with(Command::subscribe("lc"), opts(1, OverflowPolicy::Block)))
        .await
        .unwrap();
    feed(&b, "lc", 3).await;
    within(async {
        while s.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    drop(s);
    // The subscription is gone locally at once; what the server sent before it processed
    // the unsubscribe reaches the last-chance handler (seeds: "Unexpected messages").
    let e = wait_event(&mut events, |e| matches!(e, ClientEvent::LastChance(_))).await;
    let ClientEvent::LastChance(m) = e else {
        unreachable!()
    };
    assert_eq!(m.topic(), Some("lc"));
    within(c.flush()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_failures_and_errors_are_typed() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let e = c
        .execute(Command::sow("orders").batch_size(20_000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidOptions);
    let e = c
        .execute(Command::subscribe("t").timeout(Duration::from_millis(1)))
        .await;
    // Either acknowledged within 1 ms or timed out (seeds: TimedOutException), never hung.
    if let Err(e) = e {
        assert_eq!(e.kind(), ErrorKind::TimedOut);
    }
    b.faults(|f| f.withhold_acks = true);
    let e = c
        .execute(Command::subscribe("t2").timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_a_stream_error_not_a_hang() {
    let b = broker().await;
    let limits = amps_tokio::Limits {
        max_frame: 64 * 1024,
        rx_bytes: 64 * 1024 + 4,
        ..amps_tokio::Limits::default()
    };
    let c = amps_tokio::Client::builder("small")
        .limits(limits)
        .build()
        .unwrap();
    within(c.connect(&uri(&b))).await.unwrap();
    within(c.logon()).await.unwrap();
    let mut events = c.events();
    let mut s = within(c.subscribe("big", None)).await.unwrap();
    let p = client(&b, "p").await;
    p.publish("big", &vec![b'x'; 200 * 1024]).await.unwrap();
    let e = wait_event(
        &mut events,
        |e| matches!(e, ClientEvent::Error(e) if e.kind() == ErrorKind::Stream),
    )
    .await;
    assert!(matches!(e, ClientEvent::Error(_)));
    let end = within(futures::StreamExt::next(&mut s)).await.unwrap();
    assert_eq!(end.unwrap_err().kind(), ErrorKind::Disconnected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_while_a_full_stream_holds_the_client_still_shuts_down() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let s = within(c.execute_with(Command::subscribe("t"), opts(1, OverflowPolicy::Block)))
        .await
        .unwrap();
    feed(&b, "t", 5).await;
    within(async {
        while s.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    within(c.close()).await.unwrap();
    assert!(!c.is_logged_on());
    assert_eq!(*c.state().borrow(), amps_tokio::ConnectionState::Shutdown);
    assert_eq!(
        c.publish("t", b"x").await.unwrap_err().kind(),
        ErrorKind::Disconnected
    );
}

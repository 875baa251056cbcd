//! The HA client against amps-broker (issue 6 item 1, 5): failover between two brokers with
//! the default chooser, publish-store replay with nothing lost, resubscription of streams,
//! bookmark subscriptions resumed from MOST_RECENT, the recovery state order, delay
//! strategies giving up, and `unpersisted_count`.

mod common;
use amps_tokio::{
    ClientEvent, Command, ConnectionState as CS, Duration, ErrorKind, ExponentialDelayStrategy,
    FixedDelayStrategy, HaClient, bookmark,
};
use common::*;
use futures::StreamExt;

fn fast() -> FixedDelayStrategy {
    FixedDelayStrategy {
        delay: Duration::from_millis(20),
        max_retry_time: None,
    }
}

/// An HA client with memory stores and a short fixed reconnect delay, logged on to `b`.
async fn ha_client(name: &str, b: &amps_broker::ServerHandle) -> HaClient {
    let c = HaClient::builder(name)
        .uris([uri(b)])
        .memory_stores()
        .fixed_delay(fast())
        .build()
        .unwrap();
    within(c.connect_and_logon()).await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_second_broker_resubscribes_and_replays() {
    let a = broker().await;
    let b = broker().await;
    let ha = HaClient::builder("ha-sub")
        .uris([uri(&a), uri(&b)])
        .memory_stores()
        .fixed_delay(fast())
        .build()
        .unwrap();
    let mut states = ha.events().states();
    within(ha.connect_and_logon()).await.unwrap();
    let got: Vec<CS> = within(states.by_ref().take(4).collect()).await;
    assert_eq!(
        got,
        [
            CS::Connected,
            CS::LoggedOn,
            CS::PublishReplayed,
            CS::Resubscribed
        ]
    );
    let mut s = within(ha.subscribe("ticks", None)).await.unwrap();
    let pa = client(&a, "pa").await;
    pa.publish("ticks", b"1").await.unwrap();
    assert_eq!(text(&next(&mut s).await), "1");

    // Broker A goes away for good: the client fails over to B, and the stream goes on.
    a.shutdown();
    within(async { while states.next().await != Some(CS::Resubscribed) {} }).await;
    let pb = client(&b, "pb").await;
    pb.publish("ticks", b"2").await.unwrap();
    assert_eq!(text(&next(&mut s).await), "2");
    assert!(ha.is_logged_on());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_during_an_outage_are_kept_and_replayed_exactly_once() {
    let b = broker().await;
    let ha = ha_client("ha-pub", &b).await;
    let sub = client(&b, "sub").await;
    let mut s = within(sub.bookmark_subscribe("events", bookmark::EPOCH, None))
        .await
        .unwrap();
    for i in 0..50 {
        ha.publish("events", format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    // The server drops every connection mid-stream (keeping its log and sequences).
    b.restart();
    for i in 50..100 {
        ha.publish("events", format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    within(ha.publish_flush(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(ha.unpersisted_count(), 0);
    // `sub` was disconnected too: read what reached the log with a fresh client.
    drop(s);
    let sub = client(&b, "sub2").await;
    s = within(sub.bookmark_subscribe("events", bookmark::EPOCH, None))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 100 {
        seen.push(text(&next(&mut s).await).parse::<u32>().unwrap());
    }
    assert_eq!(seen, (0..100).collect::<Vec<_>>(), "no loss, no duplicate");
    within(sub.flush()).await.unwrap();
    assert!(s.is_empty(), "nothing after the 100th message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmark_subscription_resumes_after_the_last_discarded_message() {
    let b = broker().await;
    let ha = ha_client("ha-bm", &b).await;
    let mut states = ha.events().states();
    let p = ha_client("ha-bm-pub", &b).await;
    let mut s = within(ha.bookmark_subscribe("events", bookmark::MOST_RECENT, Some("bm-1")))
        .await
        .unwrap();
    for i in 1..=3 {
        p.publish("events", format!("e{i}").as_bytes())
            .await
            .unwrap();
    }
    for i in 1..=3 {
        let m = next(&mut s).await;
        assert_eq!(text(&m), format!("e{i}"));
        m.discard();
    }
    within(ha.flush()).await.unwrap(); // the discards reached the driver before the outage
    b.kill_connections();
    within(async { while states.next().await != Some(CS::Resubscribed) {} }).await;
    p.publish("events", b"e4").await.unwrap();
    let m = next(&mut s).await;
    assert_eq!(text(&m), "e4", "resumed after e3: nothing replayed twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_streams_end_with_an_error_after_draining() {
    let b = broker().await;
    let c = client(&b, "plain").await;
    let p = client(&b, "p").await;
    let mut s = within(c.subscribe("t", None)).await.unwrap();
    p.publish("t", b"before").await.unwrap();
    within(p.flush()).await.unwrap();
    // Wait until the message is in the stream, then cut the connection.
    within(async {
        while s.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    b.kill_connections();
    assert_eq!(text(&next(&mut s).await), "before");
    let e = within(s.next()).await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert!(within(s.next()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_strategies_give_up_and_report() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = format!("tcp://127.0.0.1:{port}/amps/json");
    let ha = HaClient::builder("gives-up")
        .uris([dead.clone()])
        .exponential_delay(
            ExponentialDelayStrategy::new(
                Duration::from_millis(10),
                2.0,
                Duration::from_millis(40),
            )
            .with_max_retry_time(Duration::from_millis(300)),
        )
        .build()
        .unwrap();
    let mut ev = ha.events();
    let e = within(ha.connect_and_logon()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    let refused = wait_event(
        &mut ev,
        |e| matches!(e, ClientEvent::Error(e) if e.kind() == ErrorKind::ConnectionRefused),
    )
    .await;
    assert!(matches!(refused, ClientEvent::Error(_)));
    wait_event(&mut ev, |e| matches!(e, ClientEvent::State(CS::Shutdown))).await;
    let fixed = HaClient::builder("fixed")
        .uris([dead])
        .fixed_delay(FixedDelayStrategy {
            delay: Duration::from_millis(10),
            max_retry_time: Some(Duration::from_millis(100)),
        })
        .build()
        .unwrap();
    assert!(within(fixed.connect_and_logon()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_wait_for_the_reconnect_with_retry_on_disconnect() {
    let b = broker().await;
    let ha = HaClient::builder("retry")
        .uris([uri(&b)])
        .fixed_delay(fast())
        .build()
        .unwrap();
    within(ha.connect_and_logon()).await.unwrap();
    let mut state = ha.state();
    b.kill_connections();
    within(state.wait_for(|s| *s == CS::Disconnected))
        .await
        .unwrap();
    // Issued while (or just after) reconnecting: it waits and succeeds.
    let s = within(ha.execute(Command::subscribe("x"))).await.unwrap();
    assert!(!s.sub_id().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_backed_publishes_survive_a_restart_of_the_client() {
    let b = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let (pubs, bms) = (dir.path().join("publish"), dir.path().join("bookmarks.log"));
    let first = HaClient::file_backed("durable", [uri(&b)], &pubs, &bms).unwrap();
    within(first.connect_and_logon()).await.unwrap();
    // The broker takes the first publish, drops the connection without acknowledging it and
    // refuses the reconnect: all 20 stay in the file store, 19 of them nowhere else.
    b.faults(|f| {
        f.close_after(1);
        f.refuse_logons = Some("authentication failed".into());
    });
    for i in 0..20 {
        first
            .publish("events", format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    within(async {
        while first.unpersisted_count() != 20 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    within(first.close()).await.unwrap();
    drop(first);
    b.faults(|f| f.refuse_logons = None);
    // A second run with the same name and files replays them once logged on.
    let again = HaClient::file_backed("durable", [uri(&b)], &pubs, &bms).unwrap();
    assert_eq!(
        again.unpersisted_count(),
        20,
        "the store's count, before connecting"
    );
    within(again.connect_and_logon()).await.unwrap();
    within(again.publish_flush(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(again.unpersisted_count(), 0);
    within(again.prune()).await.unwrap();
    let reader = client(&b, "reader").await;
    let mut s = within(reader.bookmark_subscribe("events", bookmark::EPOCH, None))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 20 {
        got.push(text(&next(&mut s).await).parse::<u32>().unwrap());
    }
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    // The store is locked while open: a second instance is refused with a typed error.
    let e = HaClient::file_backed("durable", [uri(&b)], &pubs, &bms).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store);
}

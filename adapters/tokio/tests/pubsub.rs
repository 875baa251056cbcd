//! Connecting, publishing and receiving against amps-broker over loopback (issue 6 item 1):
//! logon, publish / delta_publish, subscribe with a content filter, SOW queries,
//! sow_and_subscribe with OOF, sow_delete variants with counts, flush, execute, typed errors.

mod common;
use amps_tokio::{AckType, Client, Command, CommandKind, ErrorKind, OofReason};
use common::*;

#[tokio::test]
async fn publish_and_filtered_subscribe_round_trip() {
    let b = broker().await;
    let sub = client(&b, "sub").await;
    let publ = client(&b, "pub").await;
    let mut s = within(sub.subscribe("telemetry", Some("/temp > 50")))
        .await
        .unwrap();
    for t in [10, 60, 20, 70] {
        let m = format!(r#"{{"id":{t},"temp":{t}}}"#);
        within(publ.publish("telemetry", m.as_bytes()))
            .await
            .unwrap();
    }
    let a = next(&mut s).await;
    let c = next(&mut s).await;
    assert_eq!(text(&a), r#"{"id":60,"temp":60}"#);
    assert_eq!(text(&c), r#"{"id":70,"temp":70}"#);
    assert_eq!(a.topic(), Some("telemetry"));
    assert_eq!(a.kind(), CommandKind::Publish);
    assert_eq!(a.sub_id(), s.sub_id());
    within(publ.flush()).await.unwrap();
    assert!(s.is_empty(), "the filter held back the cool readings");
}

#[tokio::test]
async fn sow_query_sow_and_subscribe_and_oof() {
    let b = broker().await;
    let c = client(&b, "c").await;
    for (id, qty) in [("A", 5), ("B", 50), ("C", 500)] {
        let m = format!(r#"{{"id":"{id}","qty":{qty}}}"#);
        c.publish("orders", m.as_bytes()).await.unwrap();
    }
    within(c.flush()).await.unwrap();
    let msgs = drain(within(c.sow("orders", Some("/qty >= 50"))).await.unwrap()).await;
    let kinds: Vec<_> = msgs.iter().map(|m| m.kind()).collect();
    assert_eq!(
        kinds,
        [
            CommandKind::GroupBegin,
            CommandKind::Sow,
            CommandKind::Sow,
            CommandKind::GroupEnd
        ]
    );
    assert!(msgs[1].sow_key().is_some());
    assert_eq!(text(&msgs[1]), r#"{"id":"B","qty":50}"#);
    // A detached copy (memory of its own) reads the same as the shared one.
    let own = msgs[1].detach();
    assert_eq!(
        (own.data(), own.sow_key(), own.topic(), own.kind()),
        (
            msgs[1].data(),
            msgs[1].sow_key(),
            msgs[1].topic(),
            CommandKind::Sow
        )
    );

    let cmd = Command::sow_and_subscribe("orders")
        .filter("/qty > 10")
        .options("oof");
    let mut s = within(c.execute(cmd)).await.unwrap();
    let mut records = 0;
    loop {
        let m = next(&mut s).await;
        match m.kind() {
            CommandKind::Sow => records += 1,
            CommandKind::GroupEnd => break,
            _ => {}
        }
    }
    assert_eq!(records, 2);
    let other = client(&b, "other").await;
    other
        .publish("orders", br#"{"id":"B","qty":1}"#)
        .await
        .unwrap();
    let oof = next(&mut s).await;
    assert_eq!(oof.kind(), CommandKind::Oof);
    assert_eq!(oof.oof_reason(), Some(OofReason::Match));
    other
        .delta_publish("orders", br#"{"id":"C","note":"x"}"#)
        .await
        .unwrap();
    let d = next(&mut s).await;
    assert_eq!(
        text(&d),
        r#"{"id":"C","qty":500,"note":"x"}"#,
        "merged record"
    );
}

#[tokio::test]
async fn delta_subscribe_gets_changed_fields() {
    let b = broker().await;
    let c = client(&b, "c").await;
    c.publish("orders", br#"{"id":"D","qty":1,"px":2}"#)
        .await
        .unwrap();
    let mut s = within(c.sow_and_delta_subscribe("orders", None))
        .await
        .unwrap();
    while next(&mut s).await.kind() != CommandKind::GroupEnd {}
    let p = client(&b, "p").await;
    p.publish("orders", br#"{"id":"D","qty":1,"px":3}"#)
        .await
        .unwrap();
    let m = next(&mut s).await;
    assert_eq!(text(&m), r#"{"id":"D","px":3}"#);
    let mut s2 = within(c.delta_subscribe("orders", None)).await.unwrap();
    p.publish("orders", br#"{"id":"D","qty":9,"px":3}"#)
        .await
        .unwrap();
    assert_eq!(text(&next(&mut s2).await), r#"{"id":"D","qty":9}"#);
}

#[tokio::test]
async fn sow_delete_variants_return_counts() {
    let b = broker().await;
    let c = client(&b, "c").await;
    for i in 0..6 {
        let m = format!(r#"{{"id":"K{i}","qty":{i}}}"#);
        c.publish("orders", m.as_bytes()).await.unwrap();
    }
    let ack = within(c.sow_delete("orders", "/qty < 2")).await.unwrap();
    assert_eq!(ack.ack_type(), Some(AckType::Stats));
    assert_eq!(ack.records_deleted(), Some(2));
    let ack = within(c.sow_delete_by_data("orders", br#"{"id":"K2","qty":0}"#))
        .await
        .unwrap();
    assert_eq!(ack.records_deleted(), Some(1));
    let keys: Vec<String> = drain(c.sow("orders", Some("/qty >= 4")).await.unwrap())
        .await
        .iter()
        .filter_map(|m| m.sow_key().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 2);
    let ack = within(c.sow_delete_by_keys("orders", &keys.join(",")))
        .await
        .unwrap();
    assert_eq!(ack.records_deleted(), Some(2));
    let left = drain(c.sow("orders", None).await.unwrap()).await;
    assert_eq!(
        left.iter().filter(|m| m.kind() == CommandKind::Sow).count(),
        1
    );
}

#[tokio::test]
async fn failures_map_to_the_seeds_exception_kinds() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let e = c.subscribe("orders", Some("/x = = ((")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadFilter);
    assert_eq!(e.reason(), Some("bad filter"));
    let e = c.subscribe("(unclosed", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadRegexTopic);
    let e = c.sow("not-a-sow-topic", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidTopic);
    let _s = c
        .execute(Command::subscribe("t").sub_id("dup"))
        .await
        .unwrap();
    let e = c
        .execute(Command::subscribe("t").sub_id("dup"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SubscriptionAlreadyExists);
    let e = c.connect(&uri(&b)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyConnected);

    let fresh = Client::new("fresh").unwrap();
    for (u, kind) in [
        ("tcp//x", ErrorKind::InvalidUri),
        ("ftp://h:1/amps/json", ErrorKind::TransportType),
        (
            "tcp://h:1/amps/json?tcp_nodelay=maybe",
            ErrorKind::InvalidTransportOptions,
        ),
    ] {
        assert_eq!(fresh.connect(u).await.unwrap_err().kind(), kind, "{u}");
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = fresh
        .connect(&format!("tcp://127.0.0.1:{port}/amps/json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    let e = fresh.publish("t", b"x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    let e = fresh.subscribe("t", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert!(Client::new("").is_err());
}

#[tokio::test]
async fn authentication_failure_is_typed() {
    let mut cfg = config();
    cfg.users = vec![
        amps_broker::config::User {
            name: "alice".into(),
            password: "secret".into(),
            challenge: false,
        },
        amps_broker::config::User {
            name: "carol".into(),
            password: "pw".into(),
            challenge: true,
        },
    ];
    let b = amps_broker::Server::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = b.local_addr().port();
    let c = Client::new("a").unwrap();
    c.connect(&format!("tcp://alice:wrong@127.0.0.1:{port}/amps/json"))
        .await
        .unwrap();
    assert_eq!(
        within(c.logon()).await.unwrap_err().kind(),
        ErrorKind::Authentication
    );
    let ok = Client::new("b").unwrap();
    ok.connect(&format!("tcp://alice:secret@127.0.0.1:{port}/amps/json"))
        .await
        .unwrap();
    within(ok.logon()).await.unwrap();
    assert!(ok.is_logged_on());
    // Challenge/response (protocol.md §8.2): the default authenticator answers the token.
    let ch = Client::new("c").unwrap();
    ch.connect(&format!("tcp://carol:pw@127.0.0.1:{port}/amps/json"))
        .await
        .unwrap();
    within(ch.logon()).await.unwrap();
    assert!(ch.is_logged_on());
}

#[tokio::test]
async fn unsubscribe_and_drop_end_subscriptions() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let p = client(&b, "p").await;
    let s = within(c.execute(Command::subscribe("t").sub_id("one")))
        .await
        .unwrap();
    within(c.unsubscribe("one")).await.unwrap();
    assert!(
        drain(s).await.is_empty(),
        "the stream ends after unsubscribe"
    );
    // Dropping a stream unsubscribes: the same sub_id can be used again at once.
    let s = within(c.execute(Command::subscribe("t").sub_id("two")))
        .await
        .unwrap();
    drop(s);
    let mut s = within(c.execute(Command::subscribe("t").sub_id("two")))
        .await
        .unwrap();
    p.publish("t", b"hello").await.unwrap();
    assert_eq!(text(&next(&mut s).await), "hello");
}

#[tokio::test]
async fn replace_moves_the_subscription_to_the_new_stream() {
    let b = broker().await;
    let c = client(&b, "c").await;
    let p = client(&b, "p").await;
    let old = within(c.subscribe("r", Some("/n < 10"))).await.unwrap();
    let cmd = Command::subscribe("r")
        .sub_id(old.sub_id())
        .filter("/n >= 10")
        .options("replace");
    let mut new = within(c.execute(cmd)).await.unwrap();
    assert_eq!(new.sub_id(), old.sub_id());
    assert!(drain(old).await.is_empty(), "the old stream ends normally");
    // Dropping the old stream did not unsubscribe the moved subscription.
    p.publish("r", br#"{"n":1}"#).await.unwrap();
    p.publish("r", br#"{"n":11}"#).await.unwrap();
    assert_eq!(text(&next(&mut new).await), r#"{"n":11}"#);
}

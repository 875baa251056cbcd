//! Item 3: subscribe (filters, regex topics, replace), delta_subscribe, sow, sow_and_subscribe,
//! sow_and_delta_subscribe, bookmark_subscribe, unsubscribe, execute / execute_async, batch
//! size, per-command timeout, message accessors.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use amps_std::{Command, CommandKind, ErrorKind, bookmark, options};
use common::*;

#[test]
fn content_filters_and_regex_topics() {
    let b = broker();
    let sub = client(&b, "sub");
    let p = client(&b, "pub");
    let mut big = sub.subscribe("trades", Some("/qty > 50")).unwrap();
    let mut any = sub.subscribe("^trade.*", None).unwrap();
    p.publish("trades", r#"{"qty":10}"#).unwrap();
    p.publish("trades", r#"{"qty":60}"#).unwrap();
    p.publish("trades-eu", r#"{"qty":70}"#).unwrap();
    let m = big.recv_timeout(GUARD).unwrap().unwrap();
    assert_eq!(m.data(), r#"{"qty":60}"#);
    let got: Vec<_> = (0..3)
        .map(|_| {
            let m = any.recv_timeout(GUARD).unwrap().unwrap();
            (m.topic().unwrap().to_owned(), m.data().into_owned())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("trades".into(), r#"{"qty":10}"#.into()),
            ("trades".into(), r#"{"qty":60}"#.into()),
            ("trades-eu".into(), r#"{"qty":70}"#.into())
        ]
    );
    // Typed server failures.
    assert_eq!(
        sub.subscribe("trades", Some("/qty = = (("))
            .unwrap_err()
            .kind(),
        ErrorKind::BadFilter
    );
    assert_eq!(
        sub.subscribe("(unclosed", None).unwrap_err().kind(),
        ErrorKind::BadRegexTopic
    );
    assert_eq!(
        sub.sow("not-a-sow", None).unwrap_err().kind(),
        ErrorKind::InvalidTopic
    );
    sub.close();
    p.close();
}

#[test]
fn sow_then_sow_and_subscribe_with_oof_and_batches() {
    let b = broker();
    let c = client(&b, "sowc");
    let p = client(&b, "sowp");
    for i in 0..5 {
        p.publish("orders", format!(r#"{{"id":"S{i}","qty":{}}}"#, i * 20))
            .unwrap();
    }
    p.flush().unwrap();
    // A query: group_begin, records, group_end, then the stream ends.
    let all: Vec<_> = c
        .execute(&Command::sow("orders").batch_size(2).order_by("/qty DESC"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let kinds: Vec<_> = all.iter().map(|m| m.command()).collect();
    assert_eq!(kinds.first(), Some(&CommandKind::GroupBegin));
    assert_eq!(kinds.last(), Some(&CommandKind::GroupEnd));
    let records: Vec<_> = all
        .iter()
        .filter(|m| m.command() == CommandKind::Sow)
        .collect();
    assert_eq!(records.len(), 5);
    assert_eq!(
        records[0].data(),
        r#"{"id":"S4","qty":80}"#,
        "ordered by qty desc"
    );
    assert!(records.iter().all(|m| m.sow_key().is_some()));
    assert!(
        records.iter().any(|m| m.batch_size() == Some(2)),
        "batches of two"
    );
    assert!(records.iter().all(|m| m.query_id().is_some()));
    // A detached copy (memory of its own) reads the same as the shared one.
    let own = records[1].detach();
    assert_eq!(
        (own.data(), own.sow_key(), own.query_id(), own.command()),
        (
            records[1].data(),
            records[1].sow_key(),
            records[1].query_id(),
            CommandKind::Sow
        )
    );
    // Query and subscribe: the matching records, then live updates and out-of-focus notices.
    let mut s = c
        .execute(
            &Command::sow_and_subscribe("orders")
                .filter("/qty >= 40")
                .options(options::OOF),
        )
        .unwrap();
    let mut initial = Vec::new();
    loop {
        let m = s.recv_timeout(GUARD).unwrap().unwrap();
        match m.command() {
            CommandKind::Sow => initial.push(m.data().into_owned()),
            CommandKind::GroupEnd => break,
            _ => {}
        }
    }
    initial.sort();
    assert_eq!(initial.len(), 3);
    p.publish("orders", r#"{"id":"S4","qty":5}"#).unwrap(); // leaves the filter
    p.publish("orders", r#"{"id":"S0","qty":45}"#).unwrap(); // enters it
    let oof = s.recv_timeout(GUARD).unwrap().unwrap();
    assert_eq!(oof.command(), CommandKind::Oof);
    assert_eq!(oof.reason(), Some("match"));
    let live = s.recv_timeout(GUARD).unwrap().unwrap();
    assert_eq!(live.command(), CommandKind::Publish);
    assert_eq!(live.data(), r#"{"id":"S0","qty":45}"#);
    c.close();
    p.close();
}

#[test]
fn delta_subscribe_and_sow_and_delta_subscribe_send_changed_fields() {
    let b = broker();
    let c = client(&b, "delta");
    let p = client(&b, "deltap");
    p.publish("orders", r#"{"id":"X","status":"open","qty":1}"#)
        .unwrap();
    p.flush().unwrap();
    let mut d = c.delta_subscribe("orders", None).unwrap();
    let mut sd = c
        .sow_and_delta_subscribe("orders", Some("/id = 'X'"))
        .unwrap();
    p.publish("orders", r#"{"id":"X","status":"filled","qty":1}"#)
        .unwrap();
    let m = d.recv_timeout(GUARD).unwrap().unwrap();
    assert_eq!(m.data(), r#"{"id":"X","status":"filled"}"#);
    let kinds: Vec<_> = (0..4)
        .map(|_| sd.recv_timeout(GUARD).unwrap().unwrap())
        .map(|m| (m.command(), m.data().into_owned()))
        .collect();
    assert_eq!(kinds[1].0, CommandKind::Sow);
    assert_eq!(kinds[1].1, r#"{"id":"X","status":"open","qty":1}"#);
    assert_eq!(
        kinds[3],
        (
            CommandKind::Publish,
            r#"{"id":"X","status":"filled"}"#.into()
        )
    );
    c.close();
    p.close();
}

#[test]
fn replace_changes_a_subscription_filter_in_place() {
    let b = broker();
    let c = client(&b, "repl");
    let p = client(&b, "replp");
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let sub = c
        .execute_async(
            &Command::subscribe("ticks").filter("/v > 50").sub_id("r1"),
            move |m| {
                let _ = tx.send(m.data().into_owned());
            },
        )
        .unwrap();
    assert_eq!(sub, "r1");
    p.publish("ticks", r#"{"v":60}"#).unwrap();
    assert_eq!(recv(&rx, "first"), r#"{"v":60}"#);
    let again = c
        .execute_async(
            &Command::subscribe("ticks")
                .filter("/v < 50")
                .sub_id("r1")
                .options(options::REPLACE),
            move |m| {
                let _ = tx2.send(format!("new:{}", m.data()));
            },
        )
        .unwrap();
    assert_eq!(again, "r1");
    p.publish("ticks", r#"{"v":70}"#).unwrap();
    p.publish("ticks", r#"{"v":7}"#).unwrap();
    assert_eq!(recv(&rx, "after replace"), r#"new:{"v":7}"#);
    // Without `replace` the id is taken.
    let e = c
        .execute_async(&Command::subscribe("ticks").sub_id("r1"), |_| {})
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SubscriptionAlreadyExists);
    c.close();
    p.close();
}

#[test]
fn unsubscribe_and_dropping_a_stream_end_subscriptions_on_the_server() {
    let b = broker();
    let c = client(&b, "unsub");
    let p = client(&b, "unsubp");
    let (lc_tx, lc_rx) = mpsc::channel();
    c.set_last_chance_message_handler(move |m| {
        let _ = lc_tx.send(m.data().into_owned());
    });
    let (tx, rx) = mpsc::channel();
    let barrier_tx = tx.clone();
    let sub = c
        .execute_async(&Command::subscribe("a"), move |m| {
            let _ = tx.send(format!("a:{}", m.data()));
        })
        .unwrap();
    c.execute_async(&Command::subscribe("barrier"), move |m| {
        let _ = barrier_tx.send(format!("barrier:{}", m.data()));
    })
    .unwrap();
    let stream = c.subscribe("b", None).unwrap();
    p.publish("a", "1").unwrap();
    assert_eq!(recv(&rx, "a:1"), "a:1");
    c.unsubscribe(&sub).unwrap();
    drop(stream);
    // The unsubscribe of the dropped stream is queued before this flush.
    c.flush().unwrap();
    p.publish("a", "2").unwrap();
    p.publish("b", "3").unwrap();
    p.publish("barrier", "done").unwrap();
    // Deliveries to this client keep the publisher's order: had either subscription survived on
    // the server, its message would have reached a handler before the barrier's.
    assert_eq!(recv(&rx, "barrier"), "barrier:done");
    assert!(
        lc_rx.try_recv().is_err(),
        "no message for an ended subscription"
    );
    c.close();
    p.close();
}

#[test]
fn bookmark_subscribe_replays_from_epoch_then_goes_live() {
    let b = broker();
    let c = client(&b, "bm");
    let p = client(&b, "bmp");
    for i in 0..5 {
        p.publish("events", format!(r#"{{"n":{i}}}"#)).unwrap();
    }
    p.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let sub = c
        .bookmark_subscribe("events", bookmark::EPOCH, None, Some("bm-1"), move |m| {
            let _ = tx.send((m.data().into_owned(), m.bookmark().map(str::to_owned)));
        })
        .unwrap();
    assert_eq!(sub, "bm-1");
    for i in 0..5 {
        let (data, bm) = recv(&rx, "replay");
        assert_eq!(data, format!(r#"{{"n":{i}}}"#));
        assert!(
            bm.is_some(),
            "every message of a bookmark subscription has a bookmark"
        );
    }
    p.publish("events", r#"{"n":5}"#).unwrap();
    assert_eq!(recv(&rx, "live").0, r#"{"n":5}"#);
    // From NOW: only what comes after.
    let mut now = c
        .execute(&Command::subscribe("events").bookmark(bookmark::NOW))
        .unwrap();
    p.publish("events", r#"{"n":6}"#).unwrap();
    assert_eq!(
        now.recv_timeout(GUARD).unwrap().unwrap().data(),
        r#"{"n":6}"#
    );
    c.close();
    p.close();
}

#[test]
fn per_command_timeout_fails_with_timed_out() {
    let b = broker();
    let c = client(&b, "tmo");
    b.faults(|f| f.delay_acks = Some(amps_core::Duration::from_millis(2_000)));
    let t0 = std::time::Instant::now();
    let e = c
        .execute(&Command::subscribe("slow").timeout(amps_core::Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "returned at the timeout"
    );
    c.close();
}

#[test]
fn execute_async_delivers_on_the_dispatch_thread_with_every_header() {
    let b = broker();
    let c = client(&b, "hdr");
    let p = client(&b, "hdrp");
    let (tx, rx) = mpsc::channel();
    let sub = c
        .execute_async(
            &Command::subscribe("orders").options(options::TIMESTAMP),
            move |m| {
                let _ = tx.send((std::thread::current().name().map(str::to_owned), m.clone()));
            },
        )
        .unwrap();
    p.publish_command(&Command::publish("orders", br#"{"id":"H1"}"#).correlation_id("QUJD"))
        .unwrap();
    let (thread, m) = recv(&rx, "delivery");
    assert!(thread.unwrap().starts_with("amps-dispatch"));
    assert_eq!(m.command(), CommandKind::Publish);
    assert_eq!(m.sub_id(), Some(sub.as_str()));
    assert_eq!(m.topic(), Some("orders"));
    assert!(m.sow_key().is_some());
    assert!(m.bookmark().is_some(), "orders is transaction-logged");
    assert!(m.timestamp().is_some());
    assert_eq!(m.correlation_id(), Some("QUJD"));
    assert_eq!(m.data_raw(), br#"{"id":"H1"}"#);
    c.close();
    p.close();
}

//! Receiving: subscribe (filters, regex topics, replace), delta subscriptions, sow and
//! sow_and_subscribe with batches and oof, bookmark subscriptions, unsubscribe, execute with a
//! handler, per-command timeouts, message accessors, messages as large as the receive buffer.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use amps_e2e::*;
use amps_host::{Command, CommandKind, Direction, ErrorKind, bookmark, options};

fn content_filters_and_regex_topics<A: Api>() {
    let b = broker();
    let sub: A = client(&b, "sub");
    let p: A = client(&b, "pub");
    let mut big = sub.subscribe("trades", Some("/qty > 50")).unwrap();
    let mut any = sub.subscribe("^trade.*", None).unwrap();
    p.publish("trades", r#"{"qty":10}"#).unwrap();
    p.publish("trades", r#"{"qty":60}"#).unwrap();
    p.publish("trades-eu", r#"{"qty":70}"#).unwrap();
    assert_eq!(text(&big.next_msg()), r#"{"qty":60}"#);
    let got: Vec<_> = (0..3)
        .map(|_| {
            let m = any.next_msg();
            (m.topic().unwrap().to_owned(), text(&m))
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
    let e = sub.subscribe("trades", Some("/qty = = ((")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadFilter);
    assert!(e.reason().is_some(), "the server's reason is kept");
    assert_eq!(
        sub.subscribe("(unclosed", None).unwrap_err().kind(),
        ErrorKind::BadRegexTopic
    );
    assert_eq!(
        sub.sow("not-a-sow", None).unwrap_err().kind(),
        ErrorKind::InvalidTopic
    );
    assert_eq!(
        sub.execute(&Command::sow("orders").batch_size(20_000))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidOptions
    );
    sub.close().unwrap();
    p.close().unwrap();
}

fn sow_then_sow_and_subscribe_with_oof_and_batches<A: Api>() {
    let b = broker();
    let c: A = client(&b, "sowc");
    let p: A = client(&b, "sowp");
    for i in 0..5 {
        p.publish("orders", format!(r#"{{"id":"S{i}","qty":{}}}"#, i * 20))
            .unwrap();
    }
    p.flush().unwrap();
    // A query: group_begin, records, group_end, then the stream ends.
    let all = c
        .execute(&Command::sow("orders").batch_size(2).order_by("/qty DESC"))
        .unwrap()
        .collect_all();
    let kinds: Vec<_> = all.iter().map(|m| m.command()).collect();
    assert_eq!(kinds.first(), Some(&CommandKind::GroupBegin));
    assert_eq!(kinds.last(), Some(&CommandKind::GroupEnd));
    let records: Vec<_> = all
        .iter()
        .filter(|m| m.command() == CommandKind::Sow)
        .collect();
    assert_eq!(records.len(), 5);
    assert_eq!(
        text(records[0]),
        r#"{"id":"S4","qty":80}"#,
        "ordered by qty"
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
        let m = s.next_msg();
        match m.command() {
            CommandKind::Sow => initial.push(text(&m)),
            CommandKind::GroupEnd => break,
            _ => {}
        }
    }
    assert_eq!(initial.len(), 3);
    p.publish("orders", r#"{"id":"S4","qty":5}"#).unwrap(); // leaves the filter
    p.publish("orders", r#"{"id":"S0","qty":45}"#).unwrap(); // enters it
    let oof = s.next_msg();
    assert_eq!(oof.command(), CommandKind::Oof);
    assert_eq!(oof.reason(), Some("match"));
    assert_eq!(oof.oof_reason(), Some(amps_host::OofReason::Match));
    let live = s.next_msg();
    assert_eq!(live.command(), CommandKind::Publish);
    assert_eq!(text(&live), r#"{"id":"S0","qty":45}"#);
    c.close().unwrap();
    p.close().unwrap();
}

fn delta_subscriptions_send_changed_fields<A: Api>() {
    let b = broker();
    let c: A = client(&b, "delta");
    let p: A = client(&b, "deltap");
    p.publish("orders", r#"{"id":"X","status":"open","qty":1}"#)
        .unwrap();
    p.flush().unwrap();
    let mut d = c.delta_subscribe("orders", None).unwrap();
    let mut sd = c
        .sow_and_delta_subscribe("orders", Some("/id = 'X'"))
        .unwrap();
    p.publish("orders", r#"{"id":"X","status":"filled","qty":1}"#)
        .unwrap();
    assert_eq!(text(&d.next_msg()), r#"{"id":"X","status":"filled"}"#);
    let kinds: Vec<_> = (0..4)
        .map(|_| sd.next_msg())
        .map(|m| (m.command(), text(&m)))
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
    c.close().unwrap();
    p.close().unwrap();
}

fn replace_changes_a_handler_subscription_in_place<A: Api>() {
    let b = broker();
    let c: A = client(&b, "repl");
    let p: A = client(&b, "replp");
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let sub = c
        .execute_async(
            &Command::subscribe("ticks").filter("/v > 50").sub_id("r1"),
            move |m| {
                let _ = tx.send(text(m));
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
                let _ = tx2.send(format!("new:{}", text(m)));
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
    c.close().unwrap();
    p.close().unwrap();
}

fn replace_moves_a_subscription_to_the_new_stream<A: Api>() {
    let b = broker();
    let c: A = client(&b, "c");
    let p: A = client(&b, "p");
    let mut old = c.subscribe("r", Some("/n < 10")).unwrap();
    let sub_id = old.sub_id();
    let cmd = Command::subscribe("r")
        .sub_id(&sub_id)
        .filter("/n >= 10")
        .options("replace");
    let mut new = c.execute(&cmd).unwrap();
    assert_eq!(new.sub_id(), old.sub_id());
    assert!(old.collect_all().is_empty(), "the old stream ends normally");
    drop(old);
    // Dropping the old stream did not unsubscribe the moved subscription.
    p.publish("r", br#"{"n":1}"#).unwrap();
    p.publish("r", br#"{"n":11}"#).unwrap();
    assert_eq!(text(&new.next_msg()), r#"{"n":11}"#);
    c.close().unwrap();
}

fn unsubscribe_and_dropping_a_stream_end_subscriptions_on_the_server<A: Api>() {
    let b = broker();
    let c: A = client(&b, "unsub");
    let p: A = client(&b, "unsubp");
    let (lc_tx, lc_rx) = mpsc::channel();
    c.set_last_chance_message_handler(move |m| {
        let _ = lc_tx.send(text(m));
    });
    let (tx, rx) = mpsc::channel();
    let barrier_tx = tx.clone();
    let sub = c
        .execute_async(&Command::subscribe("a"), move |m| {
            let _ = tx.send(format!("a:{}", text(m)));
        })
        .unwrap();
    c.execute_async(&Command::subscribe("barrier"), move |m| {
        let _ = barrier_tx.send(format!("barrier:{}", text(m)));
    })
    .unwrap();
    let stream = c.subscribe("b", None).unwrap();
    let mut ended = c.subscribe("d", None).unwrap();
    p.publish("a", "1").unwrap();
    assert_eq!(recv(&rx, "a:1"), "a:1");
    c.unsubscribe(&sub).unwrap();
    c.unsubscribe(&ended.sub_id()).unwrap();
    assert!(ended.next_item().is_none(), "an unsubscribed stream ends");
    drop(stream);
    // The unsubscribe of the dropped stream is queued before this flush.
    c.flush().unwrap();
    p.publish("a", "2").unwrap();
    p.publish("b", "3").unwrap();
    p.publish("barrier", "done").unwrap();
    // Deliveries keep the publisher's order: had either subscription survived on the server,
    // its message would have reached a handler before the barrier's.
    assert_eq!(recv(&rx, "barrier"), "barrier:done");
    assert!(
        lc_rx.try_recv().is_err(),
        "no message for an ended subscription"
    );
    c.close().unwrap();
    p.close().unwrap();
}

fn bookmark_subscriptions_replay_from_epoch_then_go_live<A: Api>() {
    let b = broker();
    let c: A = client(&b, "bm");
    let p: A = client(&b, "bmp");
    for i in 0..5 {
        p.publish("events", format!(r#"{{"n":{i}}}"#)).unwrap();
    }
    p.flush().unwrap();
    let mut s = c
        .bookmark_subscribe("events", bookmark::EPOCH, None, Some("bm-1"))
        .unwrap();
    assert_eq!(s.sub_id(), "bm-1");
    for i in 0..5 {
        let m = s.next_msg();
        assert_eq!(text(&m), format!(r#"{{"n":{i}}}"#));
        assert!(
            m.bookmark().is_some(),
            "a bookmark subscription's messages have one"
        );
    }
    p.publish("events", r#"{"n":5}"#).unwrap();
    assert_eq!(text(&s.next_msg()), r#"{"n":5}"#);
    // With a filter, from NOW: only what comes after, and only what matches.
    let mut now = c
        .bookmark_subscribe("events", bookmark::NOW, Some("/n > 6"), None)
        .unwrap();
    p.publish("events", r#"{"n":6}"#).unwrap();
    p.publish("events", r#"{"n":7}"#).unwrap();
    assert_eq!(text(&now.next_msg()), r#"{"n":7}"#);
    c.close().unwrap();
    p.close().unwrap();
}

fn per_command_timeout_fails_with_timed_out<A: Api>() {
    let b = broker();
    let c: A = client(&b, "tmo");
    b.faults(|f| f.delay_acks = Some(amps_core::Duration::from_millis(2_000)));
    let t0 = std::time::Instant::now();
    let e = c
        .execute(&Command::subscribe("slow").timeout(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "returned at the timeout"
    );
    c.close().unwrap();
}

fn handlers_run_on_the_dispatch_thread_with_every_header<A: Api>() {
    let b = broker();
    let c: A = client(&b, "hdr");
    let p: A = client(&b, "hdrp");
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
    assert_eq!(m.data(), br#"{"id":"H1"}"#);
    c.close().unwrap();
    p.close().unwrap();
}

/// Messages nearly as large as the receive buffer, between small ones: each arrives in many
/// socket reads, fills the buffer, and waits for the frames before it to be taken and moved
/// out of the way; every byte arrives in order, and the transport filter sees exactly what
/// was read.
fn messages_as_large_as_the_receive_buffer_arrive_whole<A: Api>() {
    let b = broker();
    let limits = amps_host::Limits {
        max_frame: 1 << 20,
        rx_bytes: (1 << 20) + 4,
        ..amps_host::Limits::default()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let wire = seen.clone();
    let c = A::build(
        A::builder("large")
            .limits(limits)
            .transport_filter(move |dir, bytes| {
                if dir == Direction::Incoming {
                    wire.lock().unwrap().extend_from_slice(bytes);
                }
            }),
    );
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let mut s = c.subscribe("large", None).unwrap();
    let p: A = client(&b, "large-pub");
    let sizes = [1_000_000, 17, 900_000, 1, 1_000_000, 1_000_000, 300_000, 5];
    let payloads: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| b'a' + ((j * 7 + i) % 26) as u8).collect())
        .collect();
    for data in &payloads {
        p.publish("large", data).unwrap();
    }
    for (i, want) in payloads.iter().enumerate() {
        let got = s.next_msg();
        assert!(
            got.data() == &want[..],
            "message {i} ({} bytes) intact",
            want.len()
        );
    }
    // The filter saw the stream as read: frame by frame, the payloads at the ends of frames.
    let bytes = seen.lock().unwrap().clone();
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(body) = rest.get(4..4 + len) else {
            break;
        };
        frames.push(body);
        rest = &rest[4 + len..];
    }
    let mut want = payloads.iter().filter(|p| p.len() > 1000);
    let mut next = want.next();
    for f in frames {
        if next.is_some_and(|w| f.ends_with(w)) {
            next = want.next();
        }
    }
    assert!(
        next.is_none(),
        "every large payload seen by the filter, in order"
    );
    c.close().unwrap();
    p.close().unwrap();
}

suite!(
    content_filters_and_regex_topics,
    sow_then_sow_and_subscribe_with_oof_and_batches,
    delta_subscriptions_send_changed_fields,
    replace_changes_a_handler_subscription_in_place,
    replace_moves_a_subscription_to_the_new_stream,
    unsubscribe_and_dropping_a_stream_end_subscriptions_on_the_server,
    bookmark_subscriptions_replay_from_epoch_then_go_live,
    per_command_timeout_fails_with_timed_out,
    handlers_run_on_the_dispatch_thread_with_every_header,
    messages_as_large_as_the_receive_buffer_arrive_whole,
);

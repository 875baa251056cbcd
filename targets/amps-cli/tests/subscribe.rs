//! `amps subscribe`, `delta_subscribe`, `sow_and_subscribe` end to end against amps-broker on
//! loopback: filters, formats, bookmarks, copying, queues with acks, and Ctrl-C.

mod common;

use common::*;

#[test]
fn subscribe_with_a_filter_prints_matching_messages() {
    let b = broker();
    let mut sub = Running::start(&[
        "subscribe",
        "-server",
        &server(&b),
        "-topic",
        "ticks",
        "-filter",
        "/px > 10",
        "--max-messages",
        "2",
    ]);
    sub.wait_stderr("subscribe to ticks");
    let p = client(&b, "pub");
    for px in [5, 11, 7, 12, 13] {
        p.publish("ticks", format!(r#"{{"px":{px}}}"#)).unwrap();
    }
    assert_eq!(sub.lines(2), [r#"{"px":11}"#, r#"{"px":12}"#]);
    let r = sub.finish();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("2 records received"), "{}", r.stderr);
}

#[test]
fn json_output_carries_the_headers() {
    let b = broker();
    let mut sub = Running::start(&[
        "subscribe",
        "--server",
        &server(&b),
        "--topic",
        "orders",
        "--format",
        "json",
        "--options",
        "timestamp",
        "--max-messages",
        "1",
    ]);
    sub.wait_stderr("subscribe to orders");
    let p = client(&b, "pub");
    p.publish("orders", r#"{"id":7}"#).unwrap();
    p.flush().unwrap();
    let v: serde_json::Value = serde_json::from_str(&sub.line()).unwrap();
    assert_eq!(v["command"], "p");
    assert_eq!(v["topic"], "orders");
    assert_eq!(v["data"], r#"{"id":7}"#);
    assert!(v["sow_key"].is_string(), "{v}");
    assert!(v["timestamp"].is_string(), "{v}");
    assert_eq!(sub.finish().code, 0);
}

#[test]
fn sow_and_subscribe_prints_the_records_then_the_updates() {
    let b = broker();
    let p = client(&b, "pub");
    for i in 1..=3 {
        p.publish("orders", format!(r#"{{"id":{i},"v":0}}"#))
            .unwrap();
    }
    p.flush().unwrap();
    let mut sub = Running::start(&[
        "sow_and_subscribe",
        "-server",
        &server(&b),
        "-topic",
        "orders",
        "-filter",
        "/id >= 2",
        "-orderby",
        "/id",
        "-format",
        "{command}:{data}",
        "--max-messages",
        "3",
    ]);
    sub.wait_stderr("sow_and_subscribe to orders");
    assert_eq!(
        sub.lines(2),
        [r#"sow:{"id":2,"v":0}"#, r#"sow:{"id":3,"v":0}"#]
    );
    p.publish("orders", r#"{"id":1,"v":1}"#).unwrap();
    p.publish("orders", r#"{"id":3,"v":1}"#).unwrap();
    assert_eq!(sub.line(), r#"p:{"id":3,"v":1}"#);
    assert_eq!(sub.finish().code, 0);
}

#[test]
fn delta_subscribe_receives_changed_fields() {
    let b = broker();
    let p = client(&b, "pub");
    p.publish("orders", r#"{"id":1,"a":1,"b":1}"#).unwrap();
    p.flush().unwrap();
    for cmd in ["delta_subscribe", "subscribe"] {
        let mut args = vec!["-server".to_owned(), server(&b)];
        args.extend(["-topic", "orders", "--max-messages", "1"].map(String::from));
        let mut argv = vec![cmd];
        argv.extend(args.iter().map(String::as_str));
        if cmd == "subscribe" {
            argv.push("-delta");
        }
        let mut sub = Running::start(&argv);
        sub.wait_stderr("delta_subscribe to orders");
        p.publish("orders", r#"{"id":1,"a":1,"b":2}"#).unwrap();
        let v: serde_json::Value = serde_json::from_str(&sub.line()).unwrap();
        assert_eq!(v["b"], 2, "{cmd}: {v}");
        assert!(v.get("a").is_none(), "{cmd}: unchanged field sent: {v}");
        assert_eq!(sub.finish().code, 0);
        p.publish("orders", r#"{"id":1,"a":1,"b":1}"#).unwrap();
        p.flush().unwrap();
    }
}

#[test]
fn bookmark_replays_the_transaction_log() {
    let b = broker();
    let p = client(&b, "pub");
    for i in 0..3 {
        p.publish("events", format!(r#"{{"e":{i}}}"#)).unwrap();
    }
    p.flush().unwrap();
    let r = wait(
        amps(&[
            "subscribe",
            "-server",
            &server(&b),
            "-topic",
            "events",
            "-bookmark",
            "0",
            "--max-messages",
            "3",
            "-format",
            "{bookmark} {data}",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let lines = r.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        let (bm, data) = l.split_once(' ').unwrap();
        assert!(bm.contains('|'), "bookmark: {l}");
        assert_eq!(data, format!(r#"{{"e":{i}}}"#));
    }
}

#[test]
fn copy_republishes_to_another_server() {
    let a = broker();
    let b = broker();
    let on_b = client(&b, "watcher");
    let mut copies = on_b.subscribe("feed", None).unwrap();
    let mut sub = Running::start(&[
        "subscribe",
        "-server",
        &server(&a),
        "-topic",
        "feed",
        "-copy",
        &server(&b),
        "--max-messages",
        "2",
    ]);
    sub.wait_stderr("subscribe to feed");
    let p = client(&a, "pub");
    p.publish("feed", r#"{"n":1}"#).unwrap();
    let first = sub.line();
    p.publish("feed", r#"{"n":"last"}"#).unwrap();
    let second = sub.line();
    assert_eq!(sub.finish().code, 0);
    let got: Vec<String> = (0..2)
        .map(|_| {
            let m = copies.recv_timeout(DEADLINE).unwrap().unwrap();
            m.data_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(got, [first, second]);
}

#[test]
fn queue_messages_are_acknowledged_in_batches() {
    let b = broker();
    let p = client(&b, "pub");
    for i in 0..10 {
        p.publish("work", format!(r#"{{"job":{i}}}"#)).unwrap();
    }
    p.flush().unwrap();
    let depth = || b.inspect(|e| e.queue_depth("work")).unwrap().unwrap();
    assert_eq!(depth(), 10);
    // 7 messages, acks in batches of 3: the last one is a partial batch sent at the stop.
    let r = wait(
        amps(&[
            "subscribe",
            "-server",
            &server(&b),
            "-topic",
            "work",
            "-ack",
            "-backlog",
            "5",
            "--ack-batch",
            "3",
            "--max-messages",
            "7",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.lines().len(), 7);
    assert_eq!(
        depth(),
        3,
        "every printed message is acknowledged, no other"
    );
    // The three left are the ones not printed.
    let rest = client(&b, "rest");
    let mut s = rest
        .execute(&amps::Command::subscribe("work").options("max_backlog=10"))
        .unwrap();
    let left: Vec<String> = (0..3)
        .map(|_| {
            s.recv_timeout(DEADLINE)
                .unwrap()
                .unwrap()
                .data_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(left, [7, 8, 9].map(|i| format!(r#"{{"job":{i}}}"#)));
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_flushing_acks_and_unsubscribing() {
    let b = broker();
    let p = client(&b, "pub");
    for i in 0..20 {
        p.publish("work", format!(r#"{{"job":{i}}}"#)).unwrap();
    }
    p.flush().unwrap();
    let mut sub = Running::start(&[
        "subscribe",
        "-server",
        &server(&b),
        "-topic",
        "work",
        "-ack",
        "-backlog",
        "4",
        "--ack-batch",
        "4",
        "--ack-timeout",
        "200ms",
    ]);
    sub.wait_stderr("subscribe to work");
    // Five printed: one full batch of four acks went out at once, the fifth waits in a batch.
    let printed = sub.lines(5);
    sub.interrupt();
    let r = sub.finish();
    assert_eq!(r.code, 0, "{r:?}");
    let total = 5 + r.lines().iter().filter(|l| !l.is_empty()).count();
    assert!(
        r.stderr.contains(&format!("{total} records received")),
        "{}",
        r.stderr
    );
    // Every printed message was acknowledged; every other one is back in the queue.
    assert_eq!(
        b.inspect(|e| e.queue_depth("work")).unwrap().unwrap(),
        20 - total
    );
    assert_eq!(printed[0], r#"{"job":0}"#);
    // The subscription is gone: a new consumer gets the rest at once. The command may have
    // taken all twenty before the interrupt landed, so one more message makes sure the queue
    // holds something: the first the new consumer sees is still the oldest unacknowledged.
    p.publish("work", r#"{"job":20}"#).unwrap();
    p.flush().unwrap();
    let rest = client(&b, "rest");
    let mut s = rest
        .execute(&amps::Command::subscribe("work").options("max_backlog=100"))
        .unwrap();
    let first = s.recv_timeout(DEADLINE).unwrap().unwrap();
    assert_eq!(first.data_str().unwrap(), format!(r#"{{"job":{total}}}"#));
}

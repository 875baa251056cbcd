//! Queues: the backlog limiting deliveries, `ack()` removing messages, cancel and expire,
//! auto-ack of handled messages (a failing handler returns its message), auto-ack on a
//! stream's next message, `process()`, and acks batched by size and flushed by timeout.

use std::sync::mpsc;
use std::time::Duration;

use amps_e2e::*;
use amps_host::{AckHow, ClientEvent, Command, Direction};

fn depth(b: &amps_broker::ServerHandle) -> usize {
    b.inspect(|e| e.queue_depth("jobs")).flatten().unwrap()
}

fn publish_jobs<A: Api>(p: &A, n: usize) {
    for i in 0..n {
        p.publish("jobs", format!(r#"{{"job":{i}}}"#)).unwrap();
    }
    p.flush().unwrap();
}

/// Wait until the queue is empty (the acks were processed), flushing the client meanwhile.
fn until_drained<A: Api>(b: &amps_broker::ServerHandle, c: &A) {
    let t0 = std::time::Instant::now();
    while depth(b) != 0 {
        assert!(t0.elapsed() < GUARD, "acks never arrived");
        c.flush().unwrap();
    }
}

fn backlog_limits_deliveries_and_ack_removes_messages<A: Api>() {
    let b = broker();
    let c: A = client(&b, "q");
    let p: A = client(&b, "qp");
    let mut s = c
        .execute(&Command::subscribe("jobs").options("max_backlog=2"))
        .unwrap();
    publish_jobs(&p, 5);
    let m0 = s.next_msg();
    let m1 = s.next_msg();
    assert!(m0.is_queue_message() && m0.lease_period().is_some());
    c.flush().unwrap();
    assert!(s.is_empty(), "a backlog of two holds the rest back");
    m0.ack().unwrap();
    m1.ack().unwrap();
    m1.ack().unwrap(); // at most once per message
    let rest: Vec<_> = (0..3)
        .map(|_| {
            let m = s.next_msg();
            m.ack().unwrap();
            m
        })
        .collect();
    until_drained(&b, &c);
    let jobs: Vec<_> = [m0, m1].iter().chain(&rest).map(text).collect();
    assert_eq!(
        jobs,
        (0..5)
            .map(|i| format!(r#"{{"job":{i}}}"#))
            .collect::<Vec<_>>()
    );
    c.close().unwrap();
    p.close().unwrap();
}

fn cancel_returns_a_message_and_expire_removes_it<A: Api>() {
    let b = broker();
    let c: A = client(&b, "qc");
    let p: A = client(&b, "qcp");
    let mut s = c.subscribe("jobs", None).unwrap();
    publish_jobs(&p, 1);
    let m = s.next_msg();
    m.ack_with(AckHow::Cancel).unwrap();
    let again = s.next_msg();
    assert_eq!(again.data(), m.data());
    assert_eq!(again.bookmark(), m.bookmark());
    again.ack_with(AckHow::Expire).unwrap();
    until_drained(&b, &c);
    c.close().unwrap();
    p.close().unwrap();
}

fn auto_ack_acks_handled_messages_and_cancels_failed_ones<A: Api>() {
    let b = broker();
    let c: A = client(&b, "qa");
    let p: A = client(&b, "qap");
    c.set_auto_ack(true);
    let (tx, rx) = mpsc::channel();
    let mut failed_once = false;
    c.execute_async(&Command::subscribe("jobs"), move |m| {
        let data = text(m);
        let _ = tx.send(data.clone());
        if data.contains("\"job\":1") && !failed_once {
            failed_once = true;
            return Err("cannot do job 1 yet");
        }
        Ok(())
    })
    .unwrap();
    publish_jobs(&p, 3);
    let mut seen: Vec<_> = (0..4).map(|_| recv(&rx, "job")).collect();
    seen.sort();
    assert_eq!(seen.iter().filter(|d| d.contains("\"job\":1")).count(), 2);
    until_drained(&b, &c);
    c.close().unwrap();
    p.close().unwrap();
}

fn stream_auto_ack_acks_the_previous_message_when_asked_for_the_next<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("qs").auto_ack(true));
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let p: A = client(&b, "qsp");
    let mut s = c.subscribe("jobs", None).unwrap();
    publish_jobs(&p, 5);
    for i in 0..5 {
        assert_eq!(text(&s.next_msg()), format!(r#"{{"job":{i}}}"#));
    }
    c.flush().unwrap();
    assert_eq!(
        depth(&b),
        1,
        "the last one is acknowledged by the next request"
    );
    s.close();
    until_drained(&b, &c);
    c.close().unwrap();
    p.close().unwrap();
}

fn process_acks_successes_and_cancels_failures<A: Api>() {
    let b = broker();
    let c: A = client(&b, "qproc");
    let p: A = client(&b, "qprocp");
    publish_jobs(&p, 4);
    let mut events = c.events();
    let s = c
        .execute(&Command::subscribe("jobs").options("max_backlog=2"))
        .unwrap();
    let worker = std::thread::spawn(move || {
        let mut seen = Vec::new();
        s.process(|m| {
            let body = text(m);
            seen.push(body.clone());
            let first = seen.iter().filter(|b| **b == body).count() == 1;
            if body.contains("\"job\":1}") && first {
                Err("job 1 failed once")
            } else {
                Ok(())
            }
        })
    });
    let e = events.wait_for(|e| matches!(e, ClientEvent::Error(_)));
    assert!(
        matches!(&e, ClientEvent::Error(e) if e.to_string().contains("job 1")),
        "{e:?}"
    );
    // The cancelled job comes back and is processed; then the queue is empty.
    until_drained(&b, &c);
    c.close().unwrap();
    // The stream ended with the client: process() returns.
    assert!(worker.join().unwrap().is_err(), "ends with the close");
}

fn acks_are_batched_by_size_and_flushed_by_timeout<A: Api>() {
    let mut cfg = config();
    cfg.queues[0].max_backlog = 10;
    let b = broker_with(cfg);
    let (tx, rx) = mpsc::channel();
    let c = A::build(
        A::builder("qb")
            .transport_filter(move |dir, bytes| {
                let text = String::from_utf8_lossy(bytes);
                if dir == Direction::Outgoing {
                    for frame in text.split("{\"c\":").skip(1) {
                        if frame.starts_with("\"sow_delete\"") {
                            let _ = tx.send(frame.to_owned());
                        }
                    }
                }
            })
            .ack_batch_size(3)
            .ack_timeout(Duration::from_millis(200)),
    );
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let p: A = client(&b, "qbp");
    let mut s = c
        .execute(&Command::subscribe("jobs").options("max_backlog=10,"))
        .unwrap();
    publish_jobs(&p, 4);
    let msgs: Vec<_> = (0..4).map(|_| s.next_msg()).collect();
    for m in &msgs {
        m.ack().unwrap();
    }
    let first = recv(&rx, "batched acks");
    let bms = |f: &str| f.matches("|,").count() + 1;
    assert_eq!(bms(&first), 3, "{first}");
    let t0 = std::time::Instant::now();
    let second = recv(&rx, "timed-out batch");
    assert_eq!(bms(&second), 1, "{second}");
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "held until the ack timeout"
    );
    until_drained(&b, &c);
    // The same settings at run time.
    c.set_ack_batch_size(1).unwrap();
    c.set_ack_timeout(Duration::from_millis(50)).unwrap();
    publish_jobs(&p, 1);
    s.next_msg().ack().unwrap();
    assert_eq!(bms(&recv(&rx, "unbatched ack")), 1);
    until_drained(&b, &c);
    c.close().unwrap();
    p.close().unwrap();
}

/// `ack(topic, bookmark)` settles messages known only by their bookmarks (kept across a
/// restart of the consumer's logic, say), batched like the other acks.
fn ack_by_topic_and_bookmark_settles_messages_without_them<A: Api>() {
    let b = broker();
    let c: A = client(&b, "qb");
    let p: A = client(&b, "qbp");
    let mut s = c
        .execute(&Command::subscribe("jobs").options("max_backlog=2"))
        .unwrap();
    publish_jobs(&p, 2);
    let bookmarks: Vec<String> = (0..2)
        .map(|_| {
            s.next_msg()
                .bookmark()
                .expect("a queue bookmark")
                .to_owned()
        })
        .collect();
    assert_eq!(depth(&b), 2);
    for bm in &bookmarks {
        c.ack("jobs", bm).unwrap();
    }
    until_drained(&b, &c);
    // A bookmark the client does not hold changes nothing and is no error.
    publish_jobs(&p, 1);
    let held = s.next_msg();
    c.ack("jobs", &bookmarks[0]).unwrap();
    c.flush().unwrap();
    assert_eq!(depth(&b), 1);
    held.ack().unwrap();
    until_drained(&b, &c);
    c.close().unwrap();
    p.close().unwrap();
}

suite!(
    ack_by_topic_and_bookmark_settles_messages_without_them,
    backlog_limits_deliveries_and_ack_removes_messages,
    cancel_returns_a_message_and_expire_removes_it,
    auto_ack_acks_handled_messages_and_cancels_failed_ones,
    stream_auto_ack_acks_the_previous_message_when_asked_for_the_next,
    process_acks_successes_and_cancels_failures,
    acks_are_batched_by_size_and_flushed_by_timeout,
);

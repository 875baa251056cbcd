//! Item 3, queues: max_backlog, message.ack() / ack_with(cancel | expire), auto-ack for handlers
//! (cancel on failure) and streams, ack batching by size and by timeout.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use amps_broker::Config;
use amps_std::{AckHow, Command, Direction};
use common::*;

fn depth(b: &amps_broker::ServerHandle) -> usize {
    b.inspect(|e| e.queue_depth("jobs")).flatten().unwrap()
}

fn publish_jobs(p: &amps_std::Client, n: usize) {
    for i in 0..n {
        p.publish("jobs", format!(r#"{{"job":{i}}}"#)).unwrap();
    }
    p.flush().unwrap();
}

#[test]
fn backlog_limits_deliveries_and_ack_removes_messages() {
    let b = broker();
    let c = client(&b, "q");
    let p = client(&b, "qp");
    let mut s = c
        .execute(&Command::subscribe("jobs").options("max_backlog=10"))
        .unwrap();
    publish_jobs(&p, 5);
    let m0 = s.recv_timeout(GUARD).unwrap().unwrap();
    let m1 = s.recv_timeout(GUARD).unwrap().unwrap();
    assert!(m0.is_queue_message() && m0.lease_period().is_some());
    // The broker's queue allows 2 unacknowledged messages: nothing more comes yet.
    c.flush().unwrap();
    assert!(s.is_empty());
    m0.ack().unwrap();
    m1.ack().unwrap();
    // Each ack frees a slot for the next message.
    let rest: Vec<_> = (0..3)
        .map(|_| {
            let m = s.recv_timeout(GUARD).unwrap().unwrap();
            m.ack().unwrap();
            m
        })
        .collect();
    c.flush().unwrap();
    assert_eq!(depth(&b), 0);
    let jobs: Vec<_> = [m0, m1]
        .iter()
        .chain(&rest)
        .map(|m| m.data().into_owned())
        .collect();
    assert_eq!(
        jobs,
        (0..5)
            .map(|i| format!(r#"{{"job":{i}}}"#))
            .collect::<Vec<_>>()
    );
    c.close();
    p.close();
}

#[test]
fn cancel_returns_a_message_and_expire_removes_it() {
    let b = broker();
    let c = client(&b, "qc");
    let p = client(&b, "qcp");
    let mut s = c.subscribe("jobs", None).unwrap();
    publish_jobs(&p, 1);
    let m = s.recv_timeout(GUARD).unwrap().unwrap();
    m.ack_with(AckHow::Cancel).unwrap();
    let again = s.recv_timeout(GUARD).unwrap().unwrap();
    assert_eq!(again.data(), m.data());
    assert_eq!(again.bookmark(), m.bookmark());
    again.ack_with(AckHow::Expire).unwrap();
    c.flush().unwrap();
    assert_eq!(depth(&b), 0);
    c.close();
    p.close();
}

#[test]
fn auto_ack_acks_handled_messages_and_cancels_failed_ones() {
    let b = broker();
    let c = client(&b, "qa");
    let p = client(&b, "qap");
    c.set_auto_ack(true);
    let (tx, rx) = mpsc::channel();
    let mut failed_once = false;
    c.execute_async(&Command::subscribe("jobs"), move |m| {
        let data = m.data().into_owned();
        let _ = tx.send(data.clone());
        if data.contains("\"job\":1") && !failed_once {
            failed_once = true;
            return Err("cannot do job 1 yet");
        }
        Ok(())
    })
    .unwrap();
    publish_jobs(&p, 3);
    let mut seen = Vec::new();
    // Job 1 fails once and comes back: four deliveries for three jobs.
    for _ in 0..4 {
        seen.push(recv(&rx, "job"));
    }
    seen.sort();
    assert_eq!(seen.iter().filter(|d| d.contains("\"job\":1")).count(), 2);
    // The dispatch thread sends its acks after its batch; a flush after them settles it.
    let t0 = std::time::Instant::now();
    while depth(&b) != 0 {
        assert!(t0.elapsed() < GUARD, "acks never arrived");
        c.flush().unwrap();
    }
    c.close();
    p.close();
}

#[test]
fn stream_auto_ack_acks_the_previous_message_when_asked_for_the_next() {
    let b = broker();
    let c = client(&b, "qs");
    let p = client(&b, "qsp");
    c.set_auto_ack(true);
    let mut s = c.subscribe("jobs", None).unwrap();
    publish_jobs(&p, 5);
    // Backlog 2: all five only arrive because each `next` acknowledges the one before.
    for i in 0..5 {
        let m = s.recv_timeout(GUARD).unwrap().unwrap();
        assert_eq!(m.data(), format!(r#"{{"job":{i}}}"#));
    }
    c.flush().unwrap();
    assert_eq!(
        depth(&b),
        1,
        "the last one is acknowledged by the next request"
    );
    s.close();
    c.flush().unwrap();
    assert_eq!(depth(&b), 0);
    c.close();
    p.close();
}

#[test]
fn acks_are_batched_by_size_and_flushed_by_timeout() {
    let mut cfg = Config::default();
    cfg.queues[0].max_backlog = 10;
    let b = broker_with(cfg);
    let c = amps_std::Client::new(&name("qb"));
    let (tx, rx) = mpsc::channel();
    c.set_transport_filter(move |dir, bytes| {
        let text = String::from_utf8_lossy(bytes);
        if dir == Direction::Outgoing {
            for frame in text.split("{\"c\":").skip(1) {
                if frame.starts_with("\"sow_delete\"") {
                    let _ = tx.send(frame.to_owned());
                }
            }
        }
    })
    .unwrap();
    c.set_ack_batch_size(3).unwrap();
    c.set_ack_timeout(Duration::from_millis(200)).unwrap();
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let p = client(&b, "qbp");
    let mut s = c
        .execute(&Command::subscribe("jobs").options("max_backlog=10,"))
        .unwrap();
    publish_jobs(&p, 4);
    let msgs: Vec<_> = (0..4)
        .map(|_| s.recv_timeout(GUARD).unwrap().unwrap())
        .collect();
    for m in &msgs {
        m.ack().unwrap();
    }
    // Three acks go out together; the fourth waits for the ack timeout.
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
    c.flush().unwrap();
    assert_eq!(depth(&b), 0);
    c.close();
    p.close();
}

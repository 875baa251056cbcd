//! Queues (docs/protocol.md §11, V11) over TCP with raw frames.

mod common;

use amps_broker::Config;
use amps_broker::config::{ConfDuration, QueueTopic};
use amps_core::Duration;
use amps_core::codec::{AckType, Command};
use common::*;

fn queue_config(lease_ms: u64, max_backlog: u64) -> Config {
    Config {
        queues: vec![QueueTopic {
            topic: "jobs".into(),
            lease_period: ConfDuration(Duration::from_millis(lease_ms)),
            max_backlog,
            ..QueueTopic::default()
        }],
        ..Config::default()
    }
}

fn publish_jobs(b: &amps_broker::ServerHandle, n: u32) -> Client {
    let mut p = Client::logon(b.local_addr(), "pub");
    for i in 1..=n {
        p.publish("jobs", &format!(r#"{{"job":{i}}}"#));
    }
    p.drain();
    p
}

#[test]
fn v11_subscribe_reports_the_effective_backlog_and_deliveries_carry_bm_and_lp() {
    let b = broker();
    let mut w = Client::logon(b.local_addr(), "worker");
    w.send_raw(&vector(
        "00000058",
        r#"{"c":"subscribe","cid":"6","sub_id":"6","t":"jobs","o":"max_backlog=10","a":"processed"}"#,
    ));
    assert_eq!(
        w.recv().header(),
        r#"{"c":"ack","cid":"6","a":"processed","status":"success","o":"max_backlog=2"}"#
    );
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("jobs", r#"{"job":"build-7"}"#);
    let f = w.recv();
    assert_eq!(f.s("sub_id"), Some("6"));
    let bm = f.s("bm").unwrap().to_owned();
    assert_eq!(bm, format!("{}|1|", amps_broker::publisher_id("pub")));
    let lp = f.s("lp").unwrap();
    assert!(amps_broker::parse_ts(lp).is_some(), "{lp}");
    assert_eq!(f.n("l"), Some(17));
    assert_eq!(f.with(|m| m.max_backlog()), None);
    let ack = w.request(&Command::sow_delete_by_bookmarks("jobs", &bm).command_id("8"));
    assert_eq!(
        ack.header(),
        r#"{"c":"ack","cid":"8","a":"processed","status":"success"}"#
    );
    assert_eq!(b.inspect(|e| e.queue_depth("jobs")).unwrap(), Some(0));
}

#[test]
fn backlog_bounds_unacknowledged_messages() {
    let b = broker();
    let mut w = Client::logon(b.local_addr(), "w");
    let ack = w.request(&Command::subscribe("jobs").sub_id("q"));
    assert_eq!(ack.with(|m| m.max_backlog()), Some(1), "no option: 1");
    let _p = publish_jobs(&b, 3);
    let first = w.recv();
    assert!(w.drain().is_empty(), "backlog 1: one at a time");
    w.send(&Command::sow_delete_by_bookmarks(
        "jobs",
        first.s("bm").unwrap(),
    ));
    assert_eq!(w.recv().data(), br#"{"job":2}"#);
}

#[test]
fn each_message_goes_to_one_consumer() {
    let b = broker();
    let mut w1 = Client::logon(b.local_addr(), "w1");
    let mut w2 = Client::logon(b.local_addr(), "w2");
    w1.request(
        &Command::subscribe("jobs")
            .sub_id("a")
            .options("max_backlog=2"),
    );
    w2.request(
        &Command::subscribe("jobs")
            .sub_id("b")
            .options("max_backlog=2"),
    );
    let _p = publish_jobs(&b, 4);
    let a = w1.drain();
    let bb = w2.drain();
    assert_eq!(a.len() + bb.len(), 4);
    assert_eq!(a.len(), 2);
    let mut all: Vec<Vec<u8>> = a.iter().chain(&bb).map(|f| f.data().to_vec()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4);
}

#[test]
fn cancel_returns_and_expire_removes() {
    let b = broker();
    let mut w = Client::logon(b.local_addr(), "w");
    w.request(
        &Command::subscribe("jobs")
            .sub_id("q")
            .options("max_backlog=2"),
    );
    let _p = publish_jobs(&b, 2);
    let (m1, m2) = (w.recv(), w.recv());
    let list = format!("{},{}", m1.s("bm").unwrap(), m2.s("bm").unwrap());
    w.send(&Command::sow_delete_by_bookmarks("jobs", &list).options("cancel"));
    let again: Vec<Vec<u8>> = (0..2).map(|_| w.recv().data().to_vec()).collect();
    assert_eq!(
        again,
        [m1.data().to_vec(), m2.data().to_vec()],
        "oldest first, same place"
    );
    w.send(
        &Command::sow_delete_by_bookmarks("jobs", &list)
            .options("expire")
            .command_id("x")
            .ack(AckType::Stats),
    );
    let stats = w.recv();
    assert_eq!(stats.n("records_deleted"), Some(2));
    assert_eq!(b.inspect(|e| e.queue_depth("jobs")).unwrap(), Some(0));
}

#[test]
fn a_disconnect_returns_leased_messages() {
    let b = broker();
    let mut w1 = Client::logon(b.local_addr(), "w1");
    w1.request(&Command::subscribe("jobs").sub_id("a"));
    let _p = publish_jobs(&b, 1);
    let got = w1.recv();
    let mut w2 = Client::logon(b.local_addr(), "w2");
    w2.request(&Command::subscribe("jobs").sub_id("b"));
    assert!(w2.drain().is_empty());
    drop(w1);
    let again = w2.recv();
    assert_eq!(again.data(), got.data());
    assert_eq!(again.s("bm"), got.s("bm"));
}

#[test]
fn lease_expiry_redelivers() {
    let b = broker_with(queue_config(50, 5));
    let mut w = Client::logon(b.local_addr(), "w");
    w.request(&Command::subscribe("jobs").sub_id("q"));
    let _p = publish_jobs(&b, 1);
    let first = w.recv();
    let second = w.recv();
    assert_eq!(first.s("bm"), second.s("bm"));
    assert_ne!(first.s("lp"), second.s("lp"));
}

#[test]
fn queue_filters_and_sow_delete_by_filter() {
    let b = broker();
    let mut w = Client::logon(b.local_addr(), "w");
    w.request(
        &Command::subscribe("jobs")
            .sub_id("q")
            .filter("/job > 2")
            .options("max_backlog=5"),
    );
    let mut p = publish_jobs(&b, 4);
    let got: Vec<Vec<u8>> = w.drain().iter().map(|f| f.data().to_vec()).collect();
    assert_eq!(got, [br#"{"job":3}"#.to_vec(), br#"{"job":4}"#.to_vec()]);
    p.send(
        &Command::sow_delete("jobs", "/job < 3")
            .command_id("d")
            .ack(AckType::Stats),
    );
    assert_eq!(p.recv().n("records_deleted"), Some(2));
    assert_eq!(b.inspect(|e| e.queue_depth("jobs")).unwrap(), Some(2));
}

#[test]
fn only_the_lease_holder_can_acknowledge() {
    let b = broker();
    let mut w = Client::logon(b.local_addr(), "w");
    w.request(&Command::subscribe("jobs").sub_id("q"));
    let mut p = publish_jobs(&b, 1);
    let f = w.recv();
    p.send(
        &Command::sow_delete_by_bookmarks("jobs", f.s("bm").unwrap())
            .command_id("x")
            .ack(AckType::Stats),
    );
    assert_eq!(p.recv().n("records_deleted"), Some(0));
    assert_eq!(b.inspect(|e| e.queue_depth("jobs")).unwrap(), Some(1));
}

#[test]
fn bookmark_acks_on_a_non_queue_topic_are_invalid_topic() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    let f = c.request(&Command::sow_delete_by_bookmarks("orders", "1|1|"));
    assert_eq!(f.reason(), Some("invalid topic"));
}

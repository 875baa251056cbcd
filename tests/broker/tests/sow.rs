//! State of the World: sow, sow_and_subscribe, sow_delete, OOF (docs/protocol.md §6.6–§6.8, §7.2–
//! §7.4, V7–V9) over TCP with raw frames.

mod common;

use amps_core::codec::{AckType, Command};
use common::*;

const A1: &str = r#"{"id":"A1","qty":100}"#;
const A2: &str = r#"{"id":"A2","qty":5}"#;
const A3: &str = r#"{"id":"A3","qty":70}"#;

fn seeded() -> (amps_broker::ServerHandle, Client) {
    let b = broker();
    let mut p = Client::logon(b.local_addr(), "pub-1");
    for r in [A1, A2, A3] {
        p.publish("orders", r);
    }
    p.drain();
    (b, p)
}

fn headers(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(|f| f.text().to_owned()).collect()
}

#[test]
fn v7_sow_exchange_is_byte_exact() {
    let (b, _p) = seeded();
    let mut c = Client::logon(b.local_addr(), "q");
    c.send_raw(&vector(
        "00000068",
        r#"{"c":"sow","cid":"3","query_id":"3","t":"orders","f":"/qty >= 5","bs":2,"a":"processed,completed,stats"}"#,
    ));
    let got: Vec<Frame> = (0..7).map(|_| c.recv()).collect();
    assert_eq!(
        headers(&got),
        [
            r#"{"c":"ack","cid":"3","a":"processed","status":"success","query_id":"3"}"#,
            r#"{"c":"group_begin","query_id":"3"}"#,
            r#"{"c":"sow","t":"orders","query_id":"3","bs":2}{"k":"16666569833721932681","l":21}{"id":"A1","qty":100}{"k":"16666566535187048048","l":19}{"id":"A2","qty":5}"#,
            r#"{"c":"sow","t":"orders","query_id":"3","bs":1}{"k":"16666567634698676259","l":20}{"id":"A3","qty":70}"#,
            r#"{"c":"group_end","query_id":"3"}"#,
            r#"{"c":"ack","cid":"3","a":"completed","status":"success","query_id":"3"}"#,
            r#"{"c":"ack","cid":"3","a":"stats","status":"success","query_id":"3","matches":3,"topic_matches":3,"records_returned":3}"#,
        ]
    );
    let lens = [0x47, 0x22, 0x9c, 0x65, 0x20, 0x47, 0x76];
    for (f, len) in got.iter().zip(lens) {
        assert_eq!(f.body.len(), len, "{f:?}");
    }
    // The records decode with amps-core's sow batch reader.
    got[2].with(|m| {
        let keys: Vec<String> = m
            .sow_records(amps_core::codec::Scratch::empty())
            .map(|r| r.unwrap().sow_key().unwrap().to_owned())
            .collect();
        assert_eq!(keys.len(), 2);
    });
}

#[test]
fn v8_sow_delete_by_filter() {
    let (b, _p) = seeded();
    let mut c = Client::logon(b.local_addr(), "d");
    c.send_raw(&vector(
        "0000004f",
        r#"{"c":"sow_delete","cid":"4","t":"orders","f":"/qty < 10","a":"processed,stats"}"#,
    ));
    assert_eq!(
        c.recv().header(),
        r#"{"c":"ack","cid":"4","a":"processed","status":"success"}"#
    );
    assert_eq!(
        c.recv().header(),
        r#"{"c":"ack","cid":"4","a":"stats","status":"success","matches":1,"topic_matches":3,"records_deleted":1}"#
    );
    assert_eq!(b.inspect(|e| e.sow_count("orders")).unwrap(), Some(2));
}

#[test]
fn v9_oof_on_delete_and_on_leaving_the_filter() {
    let (b, mut p) = seeded();
    let mut s = Client::logon(b.local_addr(), "s");
    s.send(
        &Command::sow_and_subscribe("orders")
            .command_id("5")
            .sub_id("5")
            .options("oof")
            .ack(AckType::Completed),
    );
    s.recv_until(|f| f.is_ack("completed"));
    p.send(&Command::sow_delete("orders", "/id = 'A2'"));
    p.publish("orders", r#"{"id":"A1","qty":40}"#);
    p.drain();
    let got = s.drain();
    assert_eq!(
        headers(&got),
        [
            r#"{"c":"oof","t":"orders","sub_id":"5","k":"16666566535187048048","reason":"deleted","l":19}{"id":"A2","qty":5}"#,
            r#"{"c":"p","t":"orders","sub_id":"5","k":"16666569833721932681","bm":"3084015820777091662|5|","l":20}{"id":"A1","qty":40}"#,
        ]
    );
    let mut s2 = Client::logon(b.local_addr(), "s2");
    s2.send(
        &Command::sow_and_subscribe("orders")
            .sub_id("5")
            .filter("/qty > 50")
            .options("oof"),
    );
    s2.recv_until(|f| f.c() == "group_end");
    p.publish("orders", r#"{"id":"A3","qty":40}"#);
    p.drain();
    let got = s2.drain();
    let oof = got.last().unwrap();
    assert_eq!(
        oof.text(),
        r#"{"c":"oof","t":"orders","sub_id":"5","k":"16666567634698676259","reason":"match","l":20}{"id":"A3","qty":40}"#
    );
}

#[test]
fn sow_on_a_topic_without_sow_is_invalid_topic() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "q");
    assert_eq!(
        c.request(&Command::sow("chat")).reason(),
        Some("invalid topic")
    );
    assert_eq!(
        c.request(&Command::sow_delete("chat", "1=1")).reason(),
        Some("invalid topic")
    );
}

#[test]
fn batch_size_above_10000_is_invalid_options() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "q");
    let f = c.request(&Command::sow("orders").batch_size(10_001));
    assert_eq!(f.reason(), Some("invalid options"));
    assert!(c.request(&Command::sow("orders").batch_size(10_000)).ok());
}

#[test]
fn empty_results_still_have_groups() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "q");
    c.send(
        &Command::sow("orders")
            .command_id("e")
            .ack(AckType::Completed)
            .ack(AckType::Stats),
    );
    let got: Vec<String> = (0..4).map(|_| c.recv().c().to_owned()).collect();
    assert_eq!(got, ["group_begin", "group_end", "ack", "ack"]);
}

fn query(c: &mut Client, cmd: Command<'_>) -> (Vec<Vec<u8>>, Frame) {
    c.send(
        &cmd.command_id("Q")
            .ack(AckType::Completed)
            .ack(AckType::Stats),
    );
    let (before, stats) = c.recv_until(|f| f.is_ack("stats"));
    let mut records = Vec::new();
    for f in before.iter().filter(|f| f.c() == "sow") {
        f.with(|m| {
            for r in m.sow_records(amps_core::codec::Scratch::empty()) {
                records.push(r.unwrap().data.to_vec());
            }
        });
    }
    (records, stats)
}

#[test]
fn top_n_skip_n_orderby_and_stats_counts() {
    let (b, _p) = seeded();
    let mut c = Client::logon(b.local_addr(), "q");
    let (r, stats) = query(
        &mut c,
        Command::sow("orders").order_by("/qty DESC").top_n(2),
    );
    assert_eq!(r, [A1.as_bytes().to_vec(), A3.as_bytes().to_vec()]);
    assert_eq!(
        (
            stats.n("matches"),
            stats.n("topic_matches"),
            stats.n("records_returned")
        ),
        (Some(3), Some(3), Some(2))
    );
    let (r, _) = query(
        &mut c,
        Command::sow("orders")
            .order_by("/qty")
            .options("top_n=1,skip_n=1"),
    );
    assert_eq!(r, [A3.as_bytes().to_vec()]);
    // The stats trick: top_n=0 counts without sending records.
    let (r, stats) = query(&mut c, Command::sow("orders").filter("/qty > 6").top_n(0));
    assert!(r.is_empty());
    assert_eq!(stats.n("matches"), Some(2));
    let f = c.request(&Command::sow("orders").options("skip_n=1"));
    assert_eq!(f.reason(), Some("invalid options"));
    let f = c.request(&Command::sow("orders").order_by("/qty SIDEWAYS"));
    assert_eq!(f.reason(), Some("invalid options"));
}

#[test]
fn sow_keys_and_no_sowkey() {
    let (b, _p) = seeded();
    let mut c = Client::logon(b.local_addr(), "q");
    let keys = format!(
        "{},{}",
        amps_broker::sow_key("orders", &["A3"]),
        amps_broker::sow_key("orders", &["A1"])
    );
    let (r, stats) = query(&mut c, Command::sow("orders").sow_keys(&keys));
    assert_eq!(r, [A1.as_bytes().to_vec(), A3.as_bytes().to_vec()]);
    assert_eq!(stats.n("matches"), Some(2));
    c.send(&Command::sow("orders").options("no_sowkey").command_id("n"));
    let (before, _) = c.recv_until(|f| f.c() == "group_end");
    assert!(!before[1].text().contains(r#""k""#), "{:?}", before[1]);
}

#[test]
fn sow_and_subscribe_sequence_then_live() {
    let (b, mut p) = seeded();
    let mut s = Client::logon(b.local_addr(), "s");
    s.send(
        &Command::sow_and_subscribe("orders")
            .command_id("7")
            .sub_id("7")
            .filter("/qty > 50")
            .batch_size(10)
            .ack(AckType::Processed)
            .ack(AckType::Completed)
            .ack(AckType::Stats),
    );
    let first = s.recv();
    assert!(first.is_ack("processed"));
    // The whole result is queued with the processed ack: a publish now is delivered live.
    p.publish("orders", r#"{"id":"A4","qty":99}"#);
    let kinds: Vec<String> = (0..6)
        .map(|_| {
            let f = s.recv();
            format!("{}:{}", f.c(), f.s("a").unwrap_or(""))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "group_begin:",
            "sow:",
            "group_end:",
            "ack:completed",
            "ack:stats",
            "p:"
        ]
    );
}

#[test]
fn sow_and_subscribe_works_on_topics_without_sow() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "s");
    s.send(
        &Command::sow_and_subscribe("chat")
            .sub_id("c")
            .command_id("c"),
    );
    let (_, _) = s.recv_until(|f| f.c() == "group_end");
    let mut p = Client::logon(b.local_addr(), "p");
    p.publish("chat", "hi");
    assert_eq!(s.recv().data(), b"hi");
}

#[test]
fn replace_reruns_the_query_with_only_new_records() {
    let (b, _p) = seeded();
    let mut s = Client::logon(b.local_addr(), "s");
    s.send(
        &Command::sow_and_subscribe("orders")
            .sub_id("r")
            .filter("/qty > 50")
            .options("oof")
            .command_id("1"),
    );
    let (first, _) = s.recv_until(|f| f.c() == "group_end");
    assert!(first.iter().any(|f| f.c() == "sow"));
    s.send(
        &Command::sow_and_subscribe("orders")
            .sub_id("r")
            .filter("/qty < 80")
            .options("oof,replace")
            .command_id("2"),
    );
    let (second, _) = s.recv_until(|f| f.c() == "group_end");
    let mut got = Vec::new();
    for f in second.iter().filter(|f| f.c() == "sow") {
        f.with(|m| {
            for r in m.sow_records(amps_core::codec::Scratch::empty()) {
                got.push(r.unwrap().data.to_vec());
            }
        });
    }
    assert_eq!(got, [A2.as_bytes().to_vec()], "A3 was already delivered");
    let after = s.drain();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].s("reason"), Some("match"));
    assert_eq!(after[0].data(), A1.as_bytes());
}

#[test]
fn sow_delete_by_keys_and_by_data_with_counts_and_oof() {
    let (b, _p) = seeded();
    let mut s = Client::logon(b.local_addr(), "s");
    s.send(
        &Command::sow_and_subscribe("orders")
            .sub_id("o")
            .options("oof"),
    );
    s.recv_until(|f| f.c() == "group_end");
    let mut d = Client::logon(b.local_addr(), "d");
    let k1 = amps_broker::sow_key("orders", &["A1"]);
    d.send(
        &Command::sow_delete_by_keys("orders", &format!("{k1},nope"))
            .command_id("k")
            .ack(AckType::Processed)
            .ack(AckType::Completed)
            .ack(AckType::Stats),
    );
    let kinds: Vec<String> = (0..3)
        .map(|_| d.recv().s("a").unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["processed", "completed", "stats"]);
    d.send(
        &Command::sow_delete_by_data("orders", br#"{"id":"A3","qty":0}"#)
            .command_id("x")
            .ack(AckType::Stats),
    );
    let stats = d.recv();
    assert_eq!(stats.n("records_deleted"), Some(1));
    let oofs = s.drain();
    let reasons: Vec<&str> = oofs.iter().map(|f| f.s("reason").unwrap()).collect();
    assert_eq!(reasons, ["deleted", "deleted"]);
    assert_eq!(oofs[1].data(), A3.as_bytes(), "the previous record");
    assert_eq!(b.inspect(|e| e.sow_count("orders")).unwrap(), Some(1));
}

#[test]
fn sow_and_subscribe_with_a_historical_bookmark_is_refused() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "s");
    let f = s.request(
        &Command::sow_and_subscribe("orders")
            .sub_id("h")
            .bookmark("0"),
    );
    assert_eq!(f.reason(), Some("invalid bookmark"));
    assert!(
        s.request(
            &Command::sow_and_subscribe("orders")
                .sub_id("n")
                .bookmark("0|1|")
        )
        .ok()
    );
}

#[test]
fn regex_sow_queries_span_sow_topics() {
    let (b, _p) = seeded();
    let mut c = Client::logon(b.local_addr(), "q");
    let (r, stats) = query(&mut c, Command::sow("^ord"));
    assert_eq!(r.len(), 3);
    assert_eq!(stats.n("topic_matches"), Some(3));
}

#[test]
fn paginated_subscription_keeps_its_window() {
    let (b, mut p) = seeded(); // qty: A1 100, A2 5, A3 70
    let mut s = Client::logon(b.local_addr(), "s");
    s.send(
        &Command::sow_and_subscribe("orders")
            .sub_id("pg")
            .command_id("pg")
            .order_by("/qty DESC")
            .top_n(1)
            .options("oof,skip_n=1"),
    );
    let (first, _) = s.recv_until(|f| f.c() == "group_end");
    let mut window = Vec::new();
    for f in first.iter().filter(|f| f.c() == "sow") {
        f.with(|m| {
            for r in m.sow_records(amps_core::codec::Scratch::empty()) {
                window.push(r.unwrap().data.to_vec());
            }
        });
    }
    assert_eq!(window, [A3.as_bytes().to_vec()], "second by qty");
    // A2 jumps to the top: A1 becomes second (enters), A3 third (leaves with oof match).
    p.publish("orders", r#"{"id":"A2","qty":500}"#);
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].c(), got[0].data()), ("p", A1.as_bytes()));
    assert_eq!(got[1].c(), "oof");
    assert_eq!(got[1].s("reason"), Some("match"));
    assert_eq!(got[1].data(), A3.as_bytes());
    // Deleting the record in the window: oof deleted, and the next one enters.
    p.send(&Command::sow_delete("orders", "/id = 'A1'"));
    p.drain();
    let got = s.drain();
    let kinds: Vec<(String, Option<String>)> = got
        .iter()
        .map(|f| (f.c().to_owned(), f.s("reason").map(str::to_owned)))
        .collect();
    assert_eq!(
        kinds,
        [
            ("p".to_owned(), None),
            ("oof".to_owned(), Some("deleted".to_owned()))
        ]
    );
    assert_eq!(got[0].data(), A3.as_bytes());
}

#[test]
fn sow_and_delta_subscribe_sends_the_sow_then_deltas() {
    let (b, mut p) = seeded();
    let mut s = Client::logon(b.local_addr(), "s");
    s.send(
        &Command::sow_and_delta_subscribe("orders")
            .sub_id("d")
            .command_id("d")
            .filter("/qty > 50")
            .ack(AckType::Completed),
    );
    let (before, _) = s.recv_until(|f| f.is_ack("completed"));
    assert_eq!(before.iter().filter(|f| f.c() == "sow").count(), 2);
    p.publish("orders", r#"{"id":"A1","qty":101}"#);
    let f = s.recv();
    assert_eq!(f.data(), br#"{"id":"A1","qty":101}"#.as_slice());
    p.publish("orders", r#"{"id":"A3","qty":70,"note":"x"}"#);
    assert_eq!(s.recv().data(), br#"{"id":"A3","note":"x"}"#);
}

//! Publish, subscribe, filters, regex topics, replace, delta (docs/protocol.md §6.2–§6.5, §6.9,
//! §7.1, §12, §14, §16) over TCP with raw frames.

mod common;

use amps_broker::Config;
use amps_broker::config::{MessageType, SowTopic};
use amps_core::codec::{AckType, Command};
use common::*;

#[test]
fn v5_publish_processed_ack() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "pub");
    c.send_raw(&vector(
        "00000049",
        r#"{"c":"publish","cid":"7","t":"orders","a":"processed"}{"id":"A2","qty":5}"#,
    ));
    assert_eq!(
        c.recv().header(),
        r#"{"c":"ack","cid":"7","a":"processed","status":"success"}"#
    );
}

#[test]
fn v6_subscribe_and_delivery_are_byte_exact() {
    let b = broker();
    let mut sub = Client::logon(b.local_addr(), "sub");
    sub.send_raw(&vector(
        "00000055",
        r#"{"c":"subscribe","cid":"2","sub_id":"2","t":"orders","f":"/qty > 50","a":"processed"}"#,
    ));
    assert_eq!(
        sub.recv().header(),
        r#"{"c":"ack","cid":"2","a":"processed","status":"success"}"#
    );
    let mut p = Client::logon(b.local_addr(), "pub-1");
    p.send_raw(&vector(
        "00000041",
        r#"{"c":"p","t":"orders","s":1,"a":"persisted"}{"id":"A1","qty":100}"#,
    ));
    let f = sub.recv();
    assert_eq!(
        f.text(),
        r#"{"c":"p","t":"orders","sub_id":"2","k":"16666569833721932681","bm":"3084015820777091662|1|","l":21}{"id":"A1","qty":100}"#
    );
    assert_eq!(f.body.len(), 0x78);
}

#[test]
fn plain_topics_deliver_to_current_subscribers_only() {
    let b = broker();
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("chat", "before");
    p.drain();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("chat", "s1", None);
    p.publish("chat", "after");
    let f = s.recv();
    assert_eq!(f.text(), r#"{"c":"p","t":"chat","sub_id":"s1","l":5}after"#);
    assert!(s.drain().is_empty());
}

#[test]
fn filters_select_messages() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("px", "s", Some("/sym = 'IBM' AND /px > 100"));
    let mut p = Client::logon(b.local_addr(), "pub");
    for body in [
        r#"{"sym":"IBM","px":99}"#,
        r#"{"sym":"MSFT","px":200}"#,
        r#"{"sym":"IBM","px":101}"#,
        "not json",
    ] {
        p.publish("px", body);
    }
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].data(), br#"{"sym":"IBM","px":101}"#);
}

#[test]
fn v12_bad_filter_and_bad_regex_failure_acks() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.send(
        &Command::subscribe("orders")
            .command_id("9")
            .filter("/v = = ((")
            .ack(AckType::Processed),
    );
    assert_eq!(
        s.recv().header(),
        r#"{"c":"ack","cid":"9","a":"processed","status":"failure","reason":"bad filter"}"#
    );
    s.send(
        &Command::subscribe("orders(")
            .command_id("10")
            .ack(AckType::Processed),
    );
    assert_eq!(
        s.recv().header(),
        r#"{"c":"ack","cid":"10","a":"processed","status":"failure","reason":"bad regex topic"}"#
    );
}

#[test]
fn regex_topics_match_anywhere_and_report_the_concrete_topic() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("trade.info", "r", None);
    s.subscribe("^client.*", "c", None);
    let mut p = Client::logon(b.local_addr(), "pub");
    for t in [
        "trade/info",
        "trade-info",
        "my-trade_info-x",
        "tradeinfo",
        "client-7",
        "xclient",
    ] {
        p.publish(t, "1");
    }
    p.drain();
    let topics: Vec<String> = s
        .drain()
        .iter()
        .map(|f| f.s("t").unwrap().to_owned())
        .collect();
    assert_eq!(
        topics,
        ["trade/info", "trade-info", "my-trade_info-x", "client-7"]
    );
}

#[test]
fn non_regex_topic_is_literal() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    assert!(
        s.request(
            &Command::subscribe("a.b")
                .sub_id("l")
                .options("non_regex_topic")
        )
        .ok()
    );
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("aXb", "no");
    p.publish("a.b", "yes");
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data(), b"yes");
}

#[test]
fn several_matching_subscriptions_get_one_frame_with_sids() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("t", "a", None);
    s.subscribe("t", "b", Some("/n > 1"));
    s.subscribe("^t$", "c", None);
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("t", r#"{"n":5}"#);
    p.publish("t", r#"{"n":0}"#);
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].s("sids"), Some("a,b,c"));
    assert_eq!(got[0].s("sub_id"), None);
    assert_eq!(got[1].s("sids"), Some("a,c"));
    got[0].with(|m| assert_eq!(m.sub_ids().collect::<Vec<_>>(), ["a", "b", "c"]));
}

#[test]
fn correlation_id_and_timestamp_are_delivered() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.request(&Command::subscribe("t").sub_id("s").options("timestamp"));
    let mut p = Client::logon(b.local_addr(), "pub");
    p.send(&Command::publish("t", b"x").correlation_id("QUJD"));
    let f = s.recv();
    assert_eq!(f.s("x"), Some("QUJD"));
    let ts = f.s("ts").unwrap();
    assert_eq!(ts.len(), "20250909T171919.976304Z".len(), "{ts}");
    assert!(amps_broker::parse_ts(ts).is_some());
}

#[test]
fn own_publishes_reach_own_subscriptions() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "both");
    c.subscribe("loop", "me", None);
    c.publish("loop", "hi");
    assert_eq!(c.recv().data(), b"hi");
}

#[test]
fn unsubscribe_stops_delivery() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("t", "a", None);
    s.subscribe("t", "b", None);
    s.subscribe("u", "c", None);
    assert!(s.request(&Command::unsubscribe("a")).ok());
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("t", "1");
    p.drain();
    assert_eq!(s.drain()[0].s("sub_id"), Some("b"));
    assert!(s.request(&Command::unsubscribe_all()).ok());
    p.publish("t", "2");
    p.publish("u", "3");
    p.drain();
    assert!(s.drain().is_empty());
    // Unknown ids are not an error (§6.9).
    assert!(s.request(&Command::unsubscribe("nope,zip")).ok());
}

#[test]
fn reusing_a_sub_id_without_replace_fails() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("t", "a", None);
    let f = s.request(&Command::subscribe("t").sub_id("a"));
    assert_eq!(f.reason(), Some("subscription already exists"));
}

#[test]
fn replace_swaps_filter_and_topic_atomically() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("t", "a", Some("/n = 1"));
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("t", r#"{"n":1}"#);
    p.publish("t", r#"{"n":2}"#);
    p.drain();
    let mut got: Vec<Vec<u8>> = s.drain().iter().map(|f| f.data().to_vec()).collect();
    assert!(
        s.request(
            &Command::subscribe("t")
                .sub_id("a")
                .filter("/n = 2")
                .options("replace")
        )
        .ok()
    );
    p.publish("t", r#"{"n":1}"#);
    p.publish("t", r#"{"n":2}"#);
    p.drain();
    got.extend(s.drain().iter().map(|f| f.data().to_vec()));
    assert_eq!(got, [br#"{"n":1}"#.to_vec(), br#"{"n":2}"#.to_vec()]);
    // A failed replace leaves the old subscription untouched.
    let f = s.request(
        &Command::subscribe("t")
            .sub_id("a")
            .filter("(((")
            .options("replace"),
    );
    assert_eq!(f.reason(), Some("bad filter"));
    p.publish("t", r#"{"n":2}"#);
    p.drain();
    assert_eq!(s.drain().len(), 1);
}

#[test]
fn invalid_options_fail() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    for o in ["bogus", "max_backlog=lots", "bookmark_not_found=maybe"] {
        let f = s.request(&Command::subscribe("t").sub_id(o).options(o));
        assert_eq!(f.reason(), Some("invalid options"), "{o}");
    }
}

#[test]
fn every_supported_ack_of_publish_in_order() {
    let b = broker_with(Config::bare());
    let mut c = Client::logon(b.local_addr(), "pub");
    c.send(
        &Command::publish("t", b"1")
            .command_id("6")
            .seq(2)
            .ack(AckType::Received)
            .ack(AckType::Processed)
            .ack(AckType::Completed)
            .ack(AckType::Persisted)
            .ack(AckType::Stats),
    );
    let types: Vec<String> = (0..4)
        .map(|_| c.recv().s("a").unwrap().to_owned())
        .collect();
    assert_eq!(types, ["received", "processed", "completed", "persisted"]);
    assert!(
        c.drain().is_empty(),
        "stats is not produced for publish (§5.3)"
    );
}

#[test]
fn without_a_transaction_log_persisted_acks_are_per_command() {
    let b = broker_with(Config::bare());
    let mut c = Client::logon(b.local_addr(), "pub");
    c.send(
        &Command::publish("t", b"1")
            .command_id("6")
            .seq(2)
            .ack(AckType::Persisted),
    );
    assert_eq!(
        c.recv().header(),
        r#"{"c":"ack","cid":"6","a":"persisted","status":"success","s":2}"#
    );
}

#[test]
fn delta_publish_merges_and_full_subscribers_get_the_merged_record() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("orders", "full", None);
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("orders", r#"{"id":"D1","n":{"p":1,"q":2},"tag":"x"}"#);
    p.send(&Command::delta_publish(
        "orders",
        br#"{"id":"D1","n":{"q":3}}"#,
    ));
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].data(), br#"{"id":"D1","n":{"p":1,"q":3},"tag":"x"}"#);
    assert_eq!(got[0].s("k"), got[1].s("k"));
}

#[test]
fn delta_subscribe_gets_keys_and_changed_fields() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.request(&Command::delta_subscribe("orders").sub_id("d"));
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish(
        "orders",
        r#"{"id":"O3","customer":"Patrick","status":"open","qty":1000}"#,
    );
    p.publish(
        "orders",
        r#"{"id":"O3","customer":"Patrick","status":"pending","qty":1000}"#,
    );
    p.publish(
        "orders",
        r#"{"id":"O3","customer":"Patrick","status":"pending","qty":1000}"#,
    );
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].data(),
        br#"{"id":"O3","customer":"Patrick","status":"open","qty":1000}"#,
        "a new record is sent whole"
    );
    assert_eq!(got[1].data(), br#"{"id":"O3","status":"pending"}"#);
    assert_eq!(
        got[2].data(),
        br#"{"id":"O3"}"#,
        "no change detection (§12.1 item 5)"
    );
}

#[test]
fn delta_subscribe_no_empties_drops_key_only_updates() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.request(
        &Command::delta_subscribe("orders")
            .sub_id("d")
            .options("no_empties"),
    );
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("orders", r#"{"id":"E","v":1}"#);
    p.publish("orders", r#"{"id":"E","v":1}"#);
    p.publish("orders", r#"{"id":"E","v":2}"#);
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].data(), br#"{"id":"E","v":2}"#);
}

#[test]
fn bookmark_delta_subscriptions_are_rejected() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    let f = s.request(&Command::delta_subscribe("events").sub_id("d").bookmark("0"));
    assert_eq!(f.reason(), Some("invalid options"));
}

fn fix_config() -> Config {
    let mut c = Config::default();
    c.sow.push(SowTopic {
        topic: "fixorders".into(),
        key: vec!["/11".into()],
        logged: false,
        expiration: Default::default(),
        message_type: MessageType::Fix,
    });
    c.sow.push(SowTopic {
        topic: "blobs".into(),
        key: vec![],
        logged: false,
        expiration: Default::default(),
        message_type: MessageType::Binary,
    });
    c
}

#[test]
fn fix_payloads_filter_key_and_merge() {
    let b = broker_with(fix_config());
    let mut s = Client::connect(b.local_addr());
    s.request(&Command::logon("fixsub").message_type("fix"));
    s.request(
        &Command::subscribe("fixorders")
            .sub_id("f")
            .filter("/55 = 'IBM'"),
    );
    let mut p = Client::connect(b.local_addr());
    p.request(&Command::logon("fixpub").message_type("fix"));
    p.publish("fixorders", "11=A\x0155=IBM\x0138=100\x01");
    p.publish("fixorders", "11=B\x0155=MSFT\x0138=100\x01");
    p.send(&Command::delta_publish("fixorders", b"11=A\x0138=200"));
    p.drain();
    let got = s.drain();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].data(), b"11=A\x0155=IBM\x0138=200\x01");
    assert_eq!(
        got[0].s("k"),
        Some(amps_broker::sow_key("fixorders", &["A"]).as_str())
    );
}

#[test]
fn binary_payloads_are_opaque_and_need_an_explicit_key() {
    let b = broker_with(fix_config());
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("blobs", "all", None);
    s.subscribe("blobs", "filtered", Some("/a = 1"));
    let mut p = Client::logon(b.local_addr(), "pub");
    let f = p.request(&Command::publish("blobs", b"\x00\xffraw"));
    assert_eq!(f.reason(), Some("invalid sow key"));
    assert!(
        p.request(&Command::publish("blobs", b"\x00\xffraw").sow_key("k1"))
            .ok()
    );
    let got = s.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].s("sub_id"), Some("all"));
    assert_eq!(got[0].s("k"), Some("k1"));
    assert_eq!(got[0].data(), b"\x00\xffraw");
}

#[test]
fn publish_to_a_reserved_or_empty_topic_fails() {
    let b = broker();
    let mut p = Client::logon(b.local_addr(), "pub");
    let f = p.request(&Command::publish("/AMPS/stats", b"1"));
    assert_eq!(f.reason(), Some("invalid topic"));
}

#[test]
fn a_delta_may_name_its_record_by_k() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.subscribe("orders", "full", None);
    let mut p = Client::logon(b.local_addr(), "pub");
    p.publish("orders", r#"{"id":"K1","a":1,"b":2}"#);
    let k = amps_broker::sow_key("orders", &["K1"]);
    p.send(&Command::delta_publish("orders", br#"{"b":3}"#).sow_key(&k));
    p.drain();
    let got = s.drain();
    assert_eq!(got[1].data(), br#"{"id":"K1","a":1,"b":3}"#);
}

#[test]
fn delta_subscribe_acks_in_order() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    s.send(
        &Command::delta_subscribe("orders")
            .sub_id("d")
            .command_id("d")
            .ack(AckType::Received)
            .ack(AckType::Processed)
            .ack(AckType::Stats),
    );
    let got: Vec<String> = (0..3)
        .map(|_| s.recv().s("a").unwrap().to_owned())
        .collect();
    assert_eq!(got, ["received", "processed", "stats"]);
}

#[test]
fn documented_bad_filters_fail_as_bad_filter() {
    let b = broker();
    let mut s = Client::logon(b.local_addr(), "sub");
    for (i, f) in ["/v = = ((", "/x = 'abc", "(/x = 1", "/x IN (1,2"]
        .into_iter()
        .enumerate()
    {
        let ack = s.request(&Command::subscribe("t").sub_id(&i.to_string()).filter(f));
        assert_eq!(ack.reason(), Some("bad filter"), "{f}");
    }
    let ack = s.request(&Command::sow("orders").filter("(/x = 1"));
    assert_eq!(ack.reason(), Some("bad filter"));
    let ack = s.request(&Command::sow_delete("orders", "/x IN (1,2"));
    assert_eq!(ack.reason(), Some("bad filter"));
}

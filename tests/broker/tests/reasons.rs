//! Failure acks say precisely what is wrong (bad field type, missing field, unknown command,
//! too large), over TCP; and every processed ack of a queue subscription reports its effective
//! backlog.

mod common;

use amps_broker::Config;
use amps_broker::config::QueueTopic;
use amps_core::codec::Command;
use amps_core::session::FailureKind;
use common::*;

/// The failure ack of a frame that does not decode, then the close.
fn refused(header: &str) -> Frame {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    c.send_frame(header, b"");
    let frames = c.expect_close();
    assert_eq!(frames.len(), 1, "{header}: {frames:?}");
    frames[0].clone()
}

#[test]
fn a_field_of_the_wrong_type_is_named() {
    for (header, field) in [
        (r#"{"c":{"x":1},"cid":"7"}"#, "c"),
        (r#"{"c":["p"]}"#, "c"),
        (r#"{"c":"p","s":-1}"#, "s"),
        (r#"{"c":"p","s":"12x"}"#, "s"),
        (r#"{"c":"p","t":{"a":1}}"#, "t"),
        (r#"{"c":"subscribe","topic":["a"]}"#, "t"),
        (r#"{"c":"sow","bs":1.5}"#, "bs"),
        (r#"{"c":"p","s":123456789012345678901234}"#, "s"),
        (r#"{"c":"sow","send_oof":"maybe"}"#, "send_oof"),
    ] {
        let f = refused(header);
        assert_eq!(
            f.header(),
            format!(
                r#"{{"c":"ack","a":"processed","status":"failure","reason":"bad field type: {field}"}}"#
            ),
            "{header}"
        );
    }
}

#[test]
fn a_missing_command_is_a_missing_field_with_the_cid() {
    let f = refused(r#"{"cid":"9","t":"x"}"#);
    assert_eq!(
        f.header(),
        r#"{"c":"ack","cid":"9","a":"processed","status":"failure","reason":"missing field: c"}"#
    );
    assert_eq!(refused(r#"{"c":null}"#).reason(), Some("missing field: c"));
    // An unknown one stays `unknown command`.
    assert_eq!(
        refused(r#"{"c":"teleport","cid":"1"}"#).reason(),
        Some("unknown command")
    );
}

#[test]
fn commands_without_a_required_field_fail_and_the_connection_stays() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    for (i, header) in [
        r#"{"c":"p","cid":"0","a":"processed"}"#,
        r#"{"c":"delta_publish","cid":"1","a":"processed"}"#,
        r#"{"c":"subscribe","cid":"2","a":"processed"}"#,
        r#"{"c":"delta_subscribe","cid":"3","a":"processed"}"#,
        r#"{"c":"sow","cid":"4","a":"processed"}"#,
        r#"{"c":"sow_and_subscribe","cid":"5","a":"processed"}"#,
        r#"{"c":"sow_delete","cid":"6","a":"processed","f":"1=1"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        c.send_frame(header, b"{}");
        let f = c.recv();
        assert_eq!(f.s("cid"), Some(i.to_string().as_str()));
        assert_eq!(f.reason(), Some("missing field: t"), "{header}");
    }
    c.send_frame(r#"{"c":"unsubscribe","cid":"u","a":"processed"}"#, b"");
    assert_eq!(c.recv().reason(), Some("missing field: sub_id"));
    // An empty topic is present: still `invalid topic`.
    assert_eq!(
        c.request(&Command::publish("", b"{}")).reason(),
        Some("invalid topic")
    );
    assert!(c.drain().is_empty(), "still connected");
}

#[test]
fn a_logon_without_a_client_name_names_the_field_and_closes() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.send_frame(r#"{"c":"logon","cid":"1","a":"processed"}"#, b"");
    let frames = c.expect_close();
    assert_eq!(frames[0].reason(), Some("missing field: client_name"));
}

#[test]
fn frames_above_the_limits_are_too_large() {
    let b = broker_with(Config {
        max_frame: 1 << 20,
        ..Config::default()
    });
    // Before logon the limit is 64 KiB: refused on the length prefix alone.
    let mut c = Client::connect(b.local_addr());
    c.send_raw(&(100_000u32).to_be_bytes());
    assert_eq!(c.expect_close()[0].reason(), Some("message too large"));
    // After logon the same size is fine.
    let mut c = Client::logon(b.local_addr(), "big");
    let body = "x".repeat(100_000);
    let ack = c.request(&Command::publish("t", body.as_bytes()));
    assert!(ack.ok(), "{ack:?}");
    c.send_raw(&(2u32 << 20).to_be_bytes());
    assert_eq!(c.expect_close()[0].reason(), Some("message too large"));
}

#[test]
fn patterns_over_the_size_limits_are_refused_precisely() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "c");
    let deep = format!("{}1 = 1{}", "(".repeat(70), ")".repeat(70));
    let cases = [
        (
            Command::subscribe(r"\w{1,100}z"),
            "bad regex topic: pattern too large (compiled size limit 4194304 bytes)",
        ),
        (
            Command::subscribe("t").filter(r"/a LIKE r'\w{1,100}z'"),
            "bad filter: LIKE pattern too large (compiled size limit 4194304 bytes)",
        ),
        (
            Command::sow("orders").filter(&deep),
            "bad filter: expression nested deeper than 64 levels",
        ),
    ];
    for (i, (cmd, reason)) in cases.iter().enumerate() {
        let f = c.request(&cmd.sub_id(&i.to_string()));
        assert_eq!(f.reason(), Some(*reason));
    }
    let long = format!("/a IN ({})", vec!["1"; 200_000].join(","));
    let f = c.request(&Command::subscribe("t").sub_id("long").filter(&long));
    assert_eq!(f.reason(), Some("bad filter: longer than 262144 bytes"));
    // Syntax errors keep the documented reasons.
    let f = c.request(&Command::subscribe("(").sub_id("syntax"));
    assert_eq!(f.reason(), Some("bad regex topic"));
}

#[test]
fn the_client_still_classifies_the_limit_reasons() {
    for (reason, kind) in [
        (
            "bad regex topic: pattern too large (compiled size limit 4194304 bytes)",
            FailureKind::BadRegexTopic,
        ),
        (
            "bad regex topic: compiled patterns too large (broker limit 268435456 bytes)",
            FailureKind::BadRegexTopic,
        ),
        (
            "bad filter: LIKE pattern too large (compiled size limit 4194304 bytes)",
            FailureKind::BadFilter,
        ),
        (
            "bad filter: expression nested deeper than 64 levels",
            FailureKind::BadFilter,
        ),
        (
            "bad filter: longer than 262144 bytes",
            FailureKind::BadFilter,
        ),
        ("unknown command", FailureKind::Protocol),
    ] {
        assert_eq!(FailureKind::classify(reason, false), kind, "{reason}");
    }
}

fn queue_broker() -> amps_broker::ServerHandle {
    broker_with(Config {
        queues: vec![QueueTopic {
            topic: "jobs".into(),
            max_backlog: 3,
            ..QueueTopic::default()
        }],
        ..Config::default()
    })
}

#[test]
fn every_processed_ack_of_a_queue_subscription_carries_max_backlog() {
    let b = queue_broker();
    let mut w = Client::logon(b.local_addr(), "w");
    let backlog = |f: &Frame| f.with(|m| m.max_backlog());
    let f = w.request(
        &Command::subscribe("jobs")
            .sub_id("a")
            .options("max_backlog=10"),
    );
    assert_eq!(f.s("o"), Some("max_backlog=3"), "capped by the queue");
    let f = w.request(&Command::subscribe("jobs").sub_id("b"));
    assert_eq!(backlog(&f), Some(1), "no option: 1");
    let f = w.request(
        &Command::subscribe("jobs")
            .sub_id("b")
            .options("replace,max_backlog=2"),
    );
    assert_eq!(backlog(&f), Some(2), "replace");
    let f = w.request(&Command::subscribe("jobs").sub_id("b").options("pause"));
    assert_eq!(backlog(&f), Some(2), "pause of an existing subscription");
    let f = w.request(
        &Command::delta_subscribe("jobs")
            .sub_id("c")
            .options("max_backlog=2"),
    );
    assert_eq!(backlog(&f), Some(2), "delta_subscribe");
    let f = w.request(&Command::sow_and_subscribe("jobs").sub_id("d"));
    assert_eq!(backlog(&f), Some(1), "sow_and_subscribe");
    w.drain();
    // Not a queue: no backlog.
    let f = w.request(&Command::subscribe("plain").sub_id("p"));
    assert_eq!(backlog(&f), None);
}

#[test]
fn max_backlog_bounds_what_a_consumer_holds() {
    let b = queue_broker();
    let mut w = Client::logon(b.local_addr(), "w");
    let f = w.request(
        &Command::subscribe("jobs")
            .sub_id("q")
            .options("max_backlog=2"),
    );
    assert_eq!(f.with(|m| m.max_backlog()), Some(2));
    let mut p = Client::logon(b.local_addr(), "p");
    for i in 0..5 {
        p.publish("jobs", &format!(r#"{{"n":{i}}}"#));
    }
    p.drain();
    assert_eq!(
        w.drain().len(),
        2,
        "the reported backlog is the one applied"
    );
}

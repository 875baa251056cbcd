//! Logon (docs/protocol.md §6.1, §8) over TCP with raw frames.

mod common;

use amps_broker::Config;
use amps_broker::config::User;
use amps_core::codec::{AckType, Command};
use common::*;

fn auth_config() -> Config {
    Config {
        users: vec![
            User {
                name: "alice".into(),
                password: "secret".into(),
                challenge: false,
            },
            User {
                name: "bob".into(),
                password: "hunter2".into(),
                challenge: false,
            },
            User {
                name: "carol".into(),
                password: "pass".into(),
                challenge: true,
            },
        ],
        ..Config::default()
    }
}

#[test]
fn v1_logon_ack_is_byte_exact() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.send_raw(&vector(
        "00000080",
        r#"{"c":"logon","cid":"1","client_name":"pub-1","user_id":"alice","pw":"secret","a":"processed","mt":"json","version":"0.1.0:rust"}"#,
    ));
    let ack = c.recv();
    assert_eq!(
        ack.header(),
        r#"{"c":"ack","cid":"1","a":"processed","status":"success","client_name":"pub-1","s":0,"bm":"3084015820777091662|0|","version":"5.3.5.0"}"#
    );
    assert_eq!(ack.body.len(), 0x86);
}

#[test]
fn v2_logon_ack_after_reconnect_reports_last_sequence() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "pub-1");
    for s in 1..=3 {
        c.send(&Command::publish("orders", br#"{"id":"A1"}"#).seq(s));
    }
    c.drain();
    drop(c);
    let mut c = Client::connect(b.local_addr());
    let ack = c.request(&Command::logon("pub-1").command_id("1"));
    assert_eq!(
        ack.header(),
        r#"{"c":"ack","cid":"1","a":"processed","status":"success","client_name":"pub-1","s":3,"bm":"3084015820777091662|3|","version":"5.3.5.0"}"#
    );
}

#[test]
fn v3_bad_credentials_fail_then_close() {
    let b = broker_with(auth_config());
    let mut c = Client::connect(b.local_addr());
    c.send(
        &Command::logon("pub-1")
            .command_id("1")
            .user_id("alice")
            .password("wrong"),
    );
    let frames = c.expect_close();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].header(),
        r#"{"c":"ack","cid":"1","a":"processed","status":"failure","reason":"authentication failed"}"#
    );
}

#[test]
fn auth_on_accepts_listed_users() {
    let b = broker_with(auth_config());
    let mut c = Client::connect(b.local_addr());
    let ack = c.request(&Command::logon("pub-1").user_id("alice").password("secret"));
    assert!(ack.ok());
}

#[test]
fn auth_off_accepts_any_credentials() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    let ack = c.request(&Command::logon("x").user_id("nobody").password("nothing"));
    assert!(ack.ok());
}

#[test]
fn commands_before_logon_are_refused_and_not_executed() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.send(
        &Command::publish("orders", br#"{"id":"Z"}"#)
            .command_id("p1")
            .ack(AckType::Processed),
    );
    let f = c.recv();
    assert_eq!(
        f.header(),
        r#"{"c":"ack","cid":"p1","a":"processed","status":"failure","reason":"logon required"}"#
    );
    // The connection stays usable and nothing was stored.
    assert!(c.request(&Command::logon("late")).ok());
    assert_eq!(b.inspect(|e| e.sow_count("orders")).unwrap(), Some(0));
}

#[test]
fn second_logon_is_refused_and_connection_stays() {
    let b = broker();
    let mut c = Client::logon(b.local_addr(), "one");
    let f = c.request(&Command::logon("one"));
    assert_eq!(f.reason(), Some("already logged on"));
    assert!(c.drain().is_empty());
}

#[test]
fn logon_ack_is_sent_even_unrequested() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.send(
        &Command::logon("quiet")
            .acks(Default::default())
            .command_id("9"),
    );
    let f = c.recv();
    assert!(f.is_ack("processed") && f.ok());
}

#[test]
fn unknown_message_type_fails() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.send(&Command::logon("x").message_type("klingon").command_id("1"));
    let frames = c.expect_close();
    assert_eq!(frames[0].reason(), Some("invalid message type"));
}

#[test]
fn duplicate_name_same_user_replaces_the_old_connection() {
    let b = broker();
    let mut old = Client::logon(b.local_addr(), "dup");
    let _new = Client::logon(b.local_addr(), "dup");
    assert!(old.expect_close().is_empty());
}

#[test]
fn duplicate_name_other_user_is_name_in_use() {
    let b = broker_with(auth_config());
    let mut first = Client::connect(b.local_addr());
    assert!(
        first
            .request(&Command::logon("dup").user_id("alice").password("secret"))
            .ok()
    );
    let mut second = Client::connect(b.local_addr());
    second.send(
        &Command::logon("dup")
            .command_id("2")
            .user_id("bob")
            .password("hunter2"),
    );
    let frames = second.expect_close();
    assert_eq!(frames[0].reason(), Some("name in use"));
    assert!(first.drain().is_empty(), "the first connection survives");
}

#[test]
fn duplicate_names_are_tolerated_without_a_transaction_log() {
    let b = broker_with(Config::bare());
    let mut a = Client::logon(b.local_addr(), "same");
    let mut c = Client::logon(b.local_addr(), "same");
    assert!(a.drain().is_empty() && c.drain().is_empty());
}

#[test]
fn received_ack_comes_before_processed() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.send(
        &Command::logon("r")
            .command_id("1")
            .ack(AckType::Received)
            .ack(AckType::Processed),
    );
    assert!(c.recv().is_ack("received"));
    assert!(c.recv().is_ack("processed"));
}

#[test]
fn bad_ack_conflation_option_fails() {
    let b = broker();
    let mut c = Client::connect(b.local_addr());
    c.send(
        &Command::logon("x")
            .options("ack_conflation=soon")
            .command_id("1"),
    );
    assert_eq!(c.expect_close()[0].reason(), Some("invalid options"));
}

#[test]
fn challenge_then_retry_with_the_token() {
    let b = broker_with(auth_config());
    let mut c = Client::connect(b.local_addr());
    c.send(
        &Command::logon("ch")
            .command_id("1")
            .user_id("carol")
            .password("pass"),
    );
    let retry = c.recv();
    assert_eq!(
        retry.header(),
        r#"{"c":"ack","cid":"1","a":"processed","status":"retry","reason":"challenge","user_id":"carol","pw":"token-1"}"#
    );
    let token = retry.s("pw").unwrap().to_owned();
    let ok = c.request(&Command::logon("ch").user_id("carol").password(&token));
    assert!(ok.ok(), "{ok:?}");
}

#[test]
fn a_wrong_challenge_answer_fails() {
    let b = broker_with(auth_config());
    let mut c = Client::connect(b.local_addr());
    c.send(&Command::logon("ch").user_id("carol").password("pass"));
    assert_eq!(c.recv().s("status"), Some("retry"));
    c.send(
        &Command::logon("ch")
            .command_id("2")
            .user_id("carol")
            .password("pass"),
    );
    assert_eq!(c.expect_close()[0].reason(), Some("authentication failed"));
}

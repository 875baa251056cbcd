//! No credential reaches `Debug` or `Display`: every core type that can hold one is formatted
//! both ways and searched for it.

use amps_core::codec::{Command, Message, Scratch};
use amps_core::ha::DefaultServerChooser;
use amps_core::session::{Config, Logon};
use amps_core::uri::{Secret, Uri};

const SECRET: &str = "s3cr3t-Pa55";
/// The same secret percent-escaped in a URI ('3' is %33).
const ESCAPED: &str = "s%33cr%33t-Pa55";

fn assert_hidden(what: &str, text: &str) {
    for needle in [SECRET, ESCAPED, "s3cr3t"] {
        assert!(!text.contains(needle), "{what} shows the secret: {text}");
    }
}

fn both(what: &str, v: &(impl std::fmt::Debug + std::fmt::Display)) {
    assert_hidden(&format!("{what} (Debug)"), &format!("{v:?}"));
    assert_hidden(&format!("{what} (Debug, pretty)"), &format!("{v:#?}"));
    assert_hidden(&format!("{what} (Display)"), &format!("{v}"));
}

fn debug(what: &str, v: &impl std::fmt::Debug) {
    assert_hidden(&format!("{what} (Debug)"), &format!("{v:?}"));
    assert_hidden(&format!("{what} (Debug, pretty)"), &format!("{v:#?}"));
}

#[test]
fn connection_strings_hide_their_passwords() {
    for uri in [
        format!("tcp://alice:{SECRET}@broker:9007/amps/json"),
        format!("tcps://alice:{ESCAPED}@broker:9007/amps/json?tcp_nodelay=true"),
        format!("tcp://alice:{SECRET}@[::1]:9007/amps/json?pretty=true"),
    ] {
        let u = Uri::parse(&uri).unwrap();
        both("Uri", &u);
        both("Secret", u.password.as_ref().unwrap());
        assert!(u.to_string().contains("alice"), "the user is shown");
    }
    both("Secret", &Secret::new(SECRET));
    // A connection string that does not parse is not echoed in the error.
    let e = Uri::parse(&format!("tcp://alice:{SECRET}@broker:port/amps/json")).unwrap_err();
    both("UriError", &e);
}

#[test]
fn choosers_hide_their_connection_strings_passwords() {
    let a = format!("tcp://alice:{SECRET}@one:9007/amps/json");
    let b = format!("tcp://bob:{ESCAPED}@two:9007/amps/json");
    let broken = format!("tcp://carol:{SECRET}@three:notaport/amps/json");
    debug(
        "DefaultServerChooser<Vec<String>>",
        &DefaultServerChooser::new(vec![a.clone(), b.clone(), broken.clone()]),
    );
    let arr = [a.as_str(), b.as_str()];
    debug(
        "DefaultServerChooser<[&str; 2]>",
        &DefaultServerChooser::new(arr),
    );
    debug(
        "DefaultServerChooser<&[&str]>",
        &DefaultServerChooser::new(&arr[..]),
    );
    let shown = format!("{:?}", DefaultServerChooser::new(vec![a]));
    assert!(shown.contains("one:9007"), "the servers are shown: {shown}");
}

#[test]
fn logons_commands_and_received_headers_hide_passwords() {
    let logon = Logon {
        user_id: Some("alice"),
        password: Some(SECRET),
        message_type: Some("json"),
        options: None,
    };
    debug("Logon", &logon);
    assert!(format!("{logon:?}").contains("alice"));
    let cmd = Command::logon("client").user_id("alice").password(SECRET);
    debug("Command", &cmd);
    // A frame carrying `pw` (a logon as a server reads it, a retry ack as the client does).
    for frame in [
        format!(r#"{{"c":"logon","cid":"1","client_name":"c","user_id":"alice","pw":"{SECRET}"}}"#),
        format!(r#"{{"c":"ack","cid":"1","a":"processed","status":"retry","pw":"{SECRET}"}}"#),
    ] {
        let mut scratch = vec![0u8; frame.len()];
        let m = Message::parse(frame.as_bytes(), &mut Scratch::new(&mut scratch)).unwrap();
        debug("Message", &m);
        debug("Header", &m.header());
    }
    let mut cfg = Config::new("client");
    cfg.logon_options = Some("pretty");
    debug("Config", &cfg);
}

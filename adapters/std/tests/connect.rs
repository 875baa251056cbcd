//! Item 1: connecting, logging on, disconnecting and closing; the seeds' exception kinds for
//! connection problems; connection states in the seeds' order.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use amps_std::{Client, ConnectionState as CS, ErrorKind};
use common::*;

#[test]
fn connect_logon_publish_subscribe_round_trip() {
    let b = broker();
    let sub = client(&b, "sub");
    let pubr = client(&b, "pub");
    let mut stream = sub.subscribe("greetings", None).unwrap();
    pubr.publish("greetings", r#"{"hello":"world"}"#).unwrap();
    let m = stream.recv_timeout(GUARD).unwrap().unwrap();
    assert_eq!(m.topic(), Some("greetings"));
    assert_eq!(m.data(), r#"{"hello":"world"}"#);
    assert_eq!(m.sub_id(), Some(stream.sub_id()));
    sub.close();
    pubr.close();
}

#[test]
fn connection_errors_have_the_seeds_kinds() {
    let b = broker();
    let c = Client::new(&name("errs"));
    // Before connecting nothing can be sent, and nothing waits for an answer.
    assert_eq!(c.logon().unwrap_err().kind(), ErrorKind::Disconnected);
    assert_eq!(
        c.unsubscribe("x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    let ha = amps_std::HaClient::new(&name("ha-errs"));
    assert_eq!(
        ha.subscribe("t", None).unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert_eq!(ha.flush().unwrap_err().kind(), ErrorKind::Disconnected);
    ha.close();
    assert_eq!(
        c.publish("t", "x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert_eq!(c.flush().unwrap_err().kind(), ErrorKind::Disconnected);
    assert_eq!(
        c.connect("tcp://nohost").unwrap_err().kind(),
        ErrorKind::InvalidUri
    );
    assert_eq!(
        c.connect("http://h:1/amps/json").unwrap_err().kind(),
        ErrorKind::TransportType
    );
    assert_eq!(
        c.connect("tcp://h:1/amps/json?tcp_nodelay=sometimes")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidTransportOptions
    );
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = c.connect(&format!("tcp://{dead}/amps/json")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(
        std::error::Error::source(&e).is_some(),
        "the io error is the source"
    );
    // Legacy protocols are not spoken.
    assert_eq!(
        c.connect(&format!("tcp://{}/fix", b.local_addr()))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidUri
    );
    // A client name the server cannot take (1..=128 bytes, protocol.md §8.3).
    let unnamed = Client::new("");
    assert_eq!(
        unnamed.connect(&uri(&b)).unwrap_err().kind(),
        ErrorKind::Usage
    );
    c.connect(&uri(&b)).unwrap();
    assert_eq!(
        c.connect(&uri(&b)).unwrap_err().kind(),
        ErrorKind::AlreadyConnected
    );
    c.logon().unwrap();
    assert_eq!(
        c.connect(&uri(&b)).unwrap_err().kind(),
        ErrorKind::AlreadyConnected
    );
    c.close();
    assert_eq!(
        c.publish("t", "x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
}

#[test]
fn refused_logon_is_an_authentication_error() {
    let b = broker();
    b.faults(|f| f.refuse_logons = Some("authentication failed".into()));
    let c = Client::new(&name("auth"));
    c.connect(&uri(&b)).unwrap();
    let e = c.logon().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    assert_eq!(e.reason(), Some("authentication failed"));
    c.close();
}

#[test]
fn states_in_the_seeds_order_and_disconnect_then_reconnect() {
    let b = broker();
    let c = Client::new(&name("states"));
    let (tx, rx) = mpsc::channel();
    c.add_connection_state_listener(move |s| {
        let _ = tx.send(s);
    });
    c.connect(&uri(&b)).unwrap();
    assert_eq!(recv(&rx, "Connected"), CS::Connected);
    c.logon().unwrap();
    assert_eq!(recv(&rx, "LoggedOn"), CS::LoggedOn);
    assert!(c.is_connected());
    c.disconnect().unwrap();
    assert_eq!(recv(&rx, "Disconnected"), CS::Disconnected);
    assert!(!c.is_connected());
    // disconnect() is not a reason to call off the client: it connects again.
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    assert_eq!(recv(&rx, "Connected"), CS::Connected);
    assert_eq!(recv(&rx, "LoggedOn"), CS::LoggedOn);
    c.close();
    assert_eq!(recv(&rx, "Disconnected"), CS::Disconnected);
    assert_eq!(recv(&rx, "Shutdown"), CS::Shutdown);
    quiet(&rx, Duration::from_millis(50), "state after shutdown");
}

#[test]
fn uri_credentials_and_authenticators_with_a_challenge() {
    use amps_broker::config::User;
    use std::sync::{Arc, Mutex};
    let cfg = amps_broker::Config {
        users: vec![
            User {
                name: "alice".into(),
                password: "secret".into(),
                challenge: false,
            },
            User {
                name: "bob".into(),
                password: "hunter2".into(),
                challenge: true,
            },
        ],
        ..amps_broker::Config::default()
    };
    let b = broker_with(cfg);
    let at = |cred: &str| format!("tcp://{cred}@{}/amps/json", b.local_addr());
    // DefaultAuthenticator: the URI's password.
    let c = Client::new(&name("alice"));
    c.connect(&at("alice:secret")).unwrap();
    c.logon().unwrap();
    c.close();
    let c = Client::new(&name("alice-bad"));
    c.connect(&at("alice:wrong")).unwrap();
    assert_eq!(c.logon().unwrap_err().kind(), ErrorKind::Authentication);
    c.close();

    // A custom authenticator supplies the password and answers the server's challenge.
    struct Vault(Arc<Mutex<Vec<String>>>);
    impl amps_std::Authenticator for Vault {
        fn authenticate(
            &mut self,
            user: &str,
            uri_password: &str,
            out: &mut dyn std::fmt::Write,
        ) -> std::fmt::Result {
            self.0
                .lock()
                .unwrap()
                .push(format!("auth {user} [{uri_password}]"));
            out.write_str("hunter2")
        }
        fn retry(
            &mut self,
            user: &str,
            token: &str,
            out: &mut dyn std::fmt::Write,
        ) -> std::fmt::Result {
            self.0
                .lock()
                .unwrap()
                .push(format!("retry {user} {}", token.starts_with("token-")));
            out.write_str(token)
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let c = Client::new(&name("bob"));
    c.connect(&at("bob")).unwrap();
    c.logon_with(Vault(log.clone())).unwrap();
    assert!(c.is_connected());
    assert_eq!(*log.lock().unwrap(), ["auth bob []", "retry bob true"]);
    c.close();
}

#[test]
fn every_transport_option_is_accepted_end_to_end() {
    let b = broker();
    let c = Client::new(&name("opts"));
    let u = format!(
        "tcp://localhost:{}/amps/json?bind=127.0.0.1:0&tcp_nodelay=true&tcp_rcvbuf=262144\
         &tcp_sndbuf=262144&tcp_linger=1&tcp_keepalive=true&ip_protocol_prefer=ipv4&pretty=true",
        b.local_addr().port()
    );
    c.connect(&u).unwrap();
    c.logon().unwrap();
    let mut s = c.subscribe("opts", None).unwrap();
    c.publish("opts", "ok").unwrap();
    assert_eq!(s.recv_timeout(GUARD).unwrap().unwrap().data(), "ok");
    c.close();
}

//! Connecting, logging on, disconnecting and closing; the error kinds of connection problems;
//! connection states in order; credentials and authenticators; transport options.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use amps_e2e::*;
use amps_host::{ConnectionState as CS, ErrorKind};

fn connect_logon_publish_subscribe_round_trip<A: Api>() {
    let b = broker();
    let sub: A = client(&b, "sub");
    let pubr: A = client(&b, "pub");
    let mut stream = sub.subscribe("greetings", None).unwrap();
    pubr.publish("greetings", r#"{"hello":"world"}"#).unwrap();
    let m = stream.next_msg();
    assert_eq!(m.topic(), Some("greetings"));
    assert_eq!(m.data(), br#"{"hello":"world"}"#);
    assert_eq!(m.sub_id(), Some(stream.sub_id().as_str()));
    sub.close().unwrap();
    pubr.close().unwrap();
}

fn connection_errors_have_their_kinds<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("errs"));
    // Before connecting nothing can be sent, and nothing waits for an answer.
    assert_eq!(c.logon().unwrap_err().kind(), ErrorKind::Disconnected);
    assert_eq!(
        c.unsubscribe("x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    let ha = A::build_ha(A::ha_builder("ha-errs"));
    assert_eq!(
        ha.subscribe("t", None).unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert_eq!(ha.flush().unwrap_err().kind(), ErrorKind::Disconnected);
    ha.close().unwrap();
    assert_eq!(
        c.publish("t", "x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert_eq!(c.flush().unwrap_err().kind(), ErrorKind::Disconnected);
    for (u, kind) in [
        ("tcp://nohost", ErrorKind::InvalidUri),
        ("http://h:1/amps/json", ErrorKind::TransportType),
        (
            "tcp://h:1/amps/json?tcp_nodelay=sometimes",
            ErrorKind::InvalidTransportOptions,
        ),
    ] {
        assert_eq!(c.connect(u).unwrap_err().kind(), kind, "{u}");
    }
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
    // A client name the server cannot take (1..=128 bytes) is refused when building.
    let unnamed = amps_host::ClientBuilder::<A::C>::new("").build();
    assert_eq!(unnamed.err().map(|e| e.kind()), Some(ErrorKind::Usage));
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
    // Typed server failures.
    assert_eq!(
        c.subscribe("orders", Some("/x = = ((")).unwrap_err().kind(),
        ErrorKind::BadFilter
    );
    let _dup = c
        .execute(&amps_host::Command::subscribe("t").sub_id("dup"))
        .unwrap();
    assert_eq!(
        c.execute(&amps_host::Command::subscribe("t").sub_id("dup"))
            .unwrap_err()
            .kind(),
        ErrorKind::SubscriptionAlreadyExists
    );
    c.close().unwrap();
    assert_eq!(
        c.publish("t", "x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert_eq!(c.state(), CS::Shutdown);
}

fn refused_logon_is_an_authentication_error<A: Api>() {
    let b = broker();
    b.faults(|f| f.refuse_logons = Some("authentication failed".into()));
    let c = A::build(A::builder("auth"));
    c.connect(&uri(&b)).unwrap();
    let e = c.logon().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    assert_eq!(e.reason(), Some("authentication failed"));
    c.close().unwrap();
}

fn states_in_order_and_disconnect_then_reconnect<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("states"));
    let rx = states(&c);
    c.connect(&uri(&b)).unwrap();
    assert_eq!(recv(&rx, "Connected"), CS::Connected);
    c.logon().unwrap();
    assert_eq!(recv(&rx, "LoggedOn"), CS::LoggedOn);
    assert!(c.is_logged_on());
    c.disconnect().unwrap();
    assert_eq!(recv(&rx, "Disconnected"), CS::Disconnected);
    assert!(!c.is_logged_on());
    // disconnect() is not a reason to call off the client: it connects again.
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    assert_eq!(recv(&rx, "Connected"), CS::Connected);
    assert_eq!(recv(&rx, "LoggedOn"), CS::LoggedOn);
    c.close().unwrap();
    assert_eq!(recv(&rx, "Disconnected"), CS::Disconnected);
    assert_eq!(recv(&rx, "Shutdown"), CS::Shutdown);
    quiet(&rx, Duration::from_millis(50), "state after shutdown");
}

/// Supplies the password and answers the server's challenge, logging what it was asked.
struct Vault(Arc<Mutex<Vec<String>>>);

impl amps_host::Authenticator for Vault {
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

fn uri_credentials_and_authenticators_with_a_challenge<A: Api>() {
    use amps_broker::config::User;
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
        ..config()
    };
    let b = broker_with(cfg);
    let at = |cred: &str| format!("tcp://{cred}@{}/amps/json", b.local_addr());
    // The default authenticator: the connection string's password.
    let c = A::build(A::builder("alice"));
    c.connect(&at("alice:secret")).unwrap();
    c.logon().unwrap();
    c.close().unwrap();
    let c = A::build(A::builder("alice-bad"));
    c.connect(&at("alice:wrong")).unwrap();
    assert_eq!(c.logon().unwrap_err().kind(), ErrorKind::Authentication);
    c.close().unwrap();
    // A custom authenticator supplies the password and answers the server's challenge.
    let log = Arc::new(Mutex::new(Vec::new()));
    let c = A::build(A::builder("bob"));
    c.connect(&at("bob")).unwrap();
    c.logon_with(Vault(log.clone())).unwrap();
    assert!(c.is_logged_on());
    assert_eq!(*log.lock().unwrap(), ["auth bob []", "retry bob true"]);
    c.close().unwrap();
    // The same authenticator from the builder.
    let log = Arc::new(Mutex::new(Vec::new()));
    let c = A::build(A::builder("bob2").authenticator(Vault(log.clone())));
    c.connect(&at("bob")).unwrap();
    c.logon().unwrap();
    assert_eq!(log.lock().unwrap().len(), 2);
    c.close().unwrap();
}

fn every_transport_option_is_accepted_end_to_end<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("opts"));
    let u = format!(
        "tcp://localhost:{}/amps/json?bind=127.0.0.1:0&tcp_nodelay=true&tcp_rcvbuf=262144\
         &tcp_sndbuf=262144&tcp_linger=1&tcp_keepalive=true&ip_protocol_prefer=ipv4&pretty=true",
        b.local_addr().port()
    );
    c.connect(&u).unwrap();
    c.logon().unwrap();
    let mut s = c.subscribe("opts", None).unwrap();
    c.publish("opts", "ok").unwrap();
    assert_eq!(s.next_msg().data(), b"ok");
    c.close().unwrap();
}

fn closing_twice_and_dropping_every_handle_are_clean<A: Api>() {
    let b = broker();
    let c: A = client(&b, "drop");
    let rx = states(&c);
    c.close().unwrap();
    c.close().unwrap();
    until(&rx, CS::Shutdown);
    // A client dropped without close() shuts down by itself.
    let d: A = client(&b, "dropped");
    let (tx, rx) = mpsc::channel();
    d.add_connection_state_listener(move |s| {
        let _ = tx.send(s);
    });
    drop(d);
    until(&rx, CS::Shutdown);
}

/// Every password in this test contains this, so one search finds any of them.
const SECRET: &str = "s3cr3t";

fn credentials_never_reach_errors_events_or_debug_output<A: Api>() {
    use amps_broker::config::User;
    let cfg = amps_broker::Config {
        users: vec![User {
            name: "alice".into(),
            password: format!("{SECRET}-right"),
            challenge: false,
        }],
        ..config()
    };
    let hidden = |what: &str, text: String| {
        assert!(!text.contains(SECRET), "{what} shows a password: {text}");
    };
    hidden("broker config", format!("{cfg:?}"));
    let b = broker_with(cfg);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let at = |pw: &str, addr: std::net::SocketAddr| format!("tcp://alice:{pw}@{addr}/amps/json");
    let good = at(&format!("{SECRET}-right"), b.local_addr());
    let wrong = at(&format!("{SECRET}-wrong"), b.local_addr());
    let refused = at(&format!("{SECRET}-dead"), dead);

    let mut texts = Vec::new();
    let c = A::build(A::builder("secrets"));
    let mut events = c.events();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    c.set_exception_listener(move |e| e2.lock().unwrap().push(format!("{e} {e:?}")));
    for (uri, kind) in [
        (&refused, ErrorKind::ConnectionRefused),
        (&wrong, ErrorKind::Authentication),
    ] {
        let e = match c.connect(uri) {
            Err(e) => e,
            Ok(()) => c.logon().unwrap_err(),
        };
        assert_eq!(e.kind(), kind, "{e}");
        texts.push(format!("{e} {e:?}"));
        let _ = c.disconnect();
    }
    c.connect(&good).unwrap();
    c.logon().unwrap();
    texts.push(format!("{c:?} {c:#?}"));
    c.close().unwrap();
    while let Some(ev) = events.recv_timeout(Duration::ZERO) {
        texts.push(format!("{ev:?}"));
    }

    // An HA client rotating through servers, one of them dead.
    let builder = A::ha_builder("secrets-ha")
        .uris([refused.clone(), good.clone()])
        .delay_strategy(amps_host::FixedDelay::new(Duration::from_millis(10)));
    texts.push(format!("{builder:?} {builder:#?}"));
    let h = A::build_ha(builder);
    let mut events = h.events();
    h.connect_and_logon().unwrap();
    texts.push(format!("{h:?}"));
    h.close().unwrap();
    while let Some(ev) = events.recv_timeout(Duration::ZERO) {
        texts.push(format!("{ev:?}"));
    }
    texts.extend(errors.lock().unwrap().iter().cloned());
    assert!(
        texts.iter().any(|t| t.contains("alice")),
        "the reports name the user: {texts:#?}"
    );
    for t in texts {
        hidden("a report", t);
    }
}

/// The server's version from the logon ack, and the connection string without its password.
fn server_version_and_uri_describe_the_connection<A: Api>() {
    let b = broker();
    let c = A::build(A::builder("version"));
    assert!(c.server_version().is_none(), "no version before a logon");
    assert!(c.uri().is_none(), "no uri before a connection");
    let with_password = format!("tcp://alice:s3cr3t@{}/amps/json", b.local_addr());
    c.connect(&with_password).unwrap();
    c.logon().unwrap();
    let v = c.server_version().expect("the logon ack names the version");
    assert_eq!(v.as_str(), "5.3.5.0");
    assert_eq!(v.number(), Some(5_030_500));
    let uri = c.uri().expect("connected");
    assert!(!uri.contains("s3cr3t"), "{uri}");
    assert!(
        uri.contains("alice") && uri.contains(&b.local_addr().to_string()),
        "{uri}"
    );
    // Both stay readable after the connection ends, describing the last one.
    c.disconnect().unwrap();
    assert_eq!(c.server_version().unwrap().as_str(), "5.3.5.0");
    assert!(c.uri().is_some_and(|u| !u.contains("s3cr3t")));
    c.close().unwrap();
}

/// Logon options reach the server with every logon, after the builder's and before the
/// connection string's; settings read back as set.
fn logon_options_and_settings_read_back<A: Api>() {
    let b = broker();
    let (tx, rx) = mpsc::channel();
    let c = A::build(
        A::builder("logonopts")
            .logon_options("ack_conflation=10ms")
            .transport_filter(move |dir, bytes| {
                if dir == amps_host::Direction::Outgoing {
                    let _ = tx.send(String::from_utf8_lossy(bytes).into_owned());
                }
            }),
    );
    assert_eq!(c.logon_options().as_deref(), Some("ack_conflation=10ms"));
    c.connect(&format!("{}?pretty", uri(&b))).unwrap();
    c.logon().unwrap();
    let sent = rx.recv_timeout(GUARD).expect("the logon went out");
    assert!(sent.contains(r#""c":"logon""#), "{sent}");
    assert!(
        sent.contains(r#""o":"ack_conflation=10ms,pretty""#),
        "{sent}"
    );
    // Queue-ack batching reads back as last set.
    assert_eq!(
        (c.ack_batch_size(), c.ack_timeout()),
        (1, Duration::from_secs(1))
    );
    c.set_ack_batch_size(25).unwrap();
    c.set_ack_timeout(Duration::from_millis(250)).unwrap();
    assert_eq!(
        (c.ack_batch_size(), c.ack_timeout()),
        (25, Duration::from_millis(250))
    );
    c.close().unwrap();
    // Options the session cannot hold are refused when the client is built.
    let long = A::builder("logonopts")
        .logon_options("x".repeat(129))
        .build();
    let e = long.err().expect("129 bytes of options are refused");
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    // An HA client's retry setting reads back too.
    let ha = A::build_ha(A::ha_builder("logonopts-ha"));
    assert!(ha.retry_on_disconnect(), "the default");
    ha.set_retry_on_disconnect(false);
    assert!(!ha.retry_on_disconnect());
    ha.close().unwrap();
}

suite!(
    logon_options_and_settings_read_back,
    server_version_and_uri_describe_the_connection,
    credentials_never_reach_errors_events_or_debug_output,
    connect_logon_publish_subscribe_round_trip,
    connection_errors_have_their_kinds,
    refused_logon_is_an_authentication_error,
    states_in_order_and_disconnect_then_reconnect,
    uri_credentials_and_authenticators_with_a_challenge,
    every_transport_option_is_accepted_end_to_end,
    closing_twice_and_dropping_every_handle_are_clean,
);

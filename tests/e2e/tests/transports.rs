//! Transports: `tcps` through a TLS-terminating proxy with a private CA (verification on by
//! default: the default roots refuse it), a TLS server that never answers the handshake, and
//! `unix` through a socket forwarded to the broker. The broker itself only listens on TCP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use amps_e2e::*;
use amps_host::{Direction, ErrorKind, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

/// A CA and a server certificate for `localhost` signed by it.
fn pki() -> (Vec<u8>, Arc<ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let server =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
    (ca.der().to_vec(), Arc::new(server))
}

/// Copy `from` to `to` until either end closes.
fn pump(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// A TLS-terminating proxy in front of `backend`; returns its port.
fn tls_proxy(config: Arc<ServerConfig>, backend: std::net::SocketAddr) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let tls = Arc::new(Mutex::new(ServerConnection::new(config.clone()).unwrap()));
            let Ok(up) = TcpStream::connect(backend) else {
                return;
            };
            // Client → broker: decrypt what arrives (answering the handshake), forward it.
            let (tls_in, mut sock_in, mut up_out) = (
                tls.clone(),
                sock.try_clone().unwrap(),
                up.try_clone().unwrap(),
            );
            let mut sock_w = sock.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = sock_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut plain = Vec::new();
                    {
                        let mut t = tls_in.lock().unwrap();
                        let mut rd = &buf[..n];
                        while !rd.is_empty() {
                            if t.read_tls(&mut rd).is_err() || t.process_new_packets().is_err() {
                                return;
                            }
                        }
                        let _ = t.reader().read_to_end(&mut plain);
                        while t.wants_write() {
                            if t.write_tls(&mut sock_w).is_err() {
                                return;
                            }
                        }
                    }
                    if up_out.write_all(&plain).is_err() {
                        return;
                    }
                }
                let _ = up_out.shutdown(std::net::Shutdown::Both);
            });
            // Broker → client: encrypt and send.
            let mut sock_out = sock;
            std::thread::spawn(move || {
                let mut up = up;
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = up.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut t = tls.lock().unwrap();
                    if t.writer().write_all(&buf[..n]).is_err() {
                        break;
                    }
                    while t.wants_write() {
                        if t.write_tls(&mut sock_out).is_err() {
                            return;
                        }
                    }
                }
                let _ = sock_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

fn tcps_with_a_private_ca_and_verification_on_by_default<A: Api>() {
    let b = broker();
    let (ca, server) = pki();
    let port = tls_proxy(server, b.local_addr());
    let tls_uri = format!("tcps://localhost:{port}/amps/json");

    // Default roots (webpki): the private CA is not trusted, the connection is refused.
    let c = A::build(A::builder("tls-default"));
    let e = c.connect(&tls_uri).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(
        format!("{e:?}").to_lowercase().contains("certificate"),
        "a certificate error: {e:?}"
    );
    c.close().unwrap();

    // Custom roots: works end to end, and the transport filter sees plaintext.
    let (tx, rx) = mpsc::channel();
    let c = A::build(
        A::builder("tls")
            .tls(TlsConfig::with_root_certificates([ca]))
            .transport_filter(move |dir, bytes| {
                if dir == Direction::Outgoing {
                    let _ = tx.send(String::from_utf8_lossy(bytes).into_owned());
                }
            }),
    );
    c.connect(&tls_uri).unwrap();
    c.logon().unwrap();
    assert!(recv(&rx, "plaintext logon").contains(r#""c":"logon""#));
    let mut s = c.subscribe("secure", None).unwrap();
    let p: A = client(&b, "tlsp");
    for i in 0..1000 {
        p.publish("secure", format!("s{i}")).unwrap();
    }
    for i in 0..1000 {
        assert_eq!(text(&s.next_msg()), format!("s{i}"));
    }
    c.publish("secure", "from-tls").unwrap();
    assert_eq!(text(&s.next_msg()), "from-tls");
    c.close().unwrap();
    p.close().unwrap();
}

fn a_tls_handshake_that_never_finishes_is_a_timeout<A: Api>() {
    // Accepts and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let c = A::build(A::builder("tls-mute").connect_timeout(Duration::from_millis(300)));
    let t0 = std::time::Instant::now();
    let e = c
        .connect(&format!("tcps://localhost:{port}/amps/json"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e:?}");
    assert!(t0.elapsed() < GUARD);
    c.close().unwrap();
}

fn unix_socket_forwarded_to_the_broker<A: Api>() {
    use std::os::unix::net::UnixListener;
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amps.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let backend = b.local_addr();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            let Ok(up) = TcpStream::connect(backend) else {
                return;
            };
            let (s2, up2) = (s.try_clone().unwrap(), up.try_clone().unwrap());
            std::thread::spawn(move || pump(s, up));
            std::thread::spawn(move || pump(up2, s2));
        }
    });
    let c = A::build(A::builder("unix"));
    // Host and port are ignored for unix; `path` names the socket.
    c.connect(&format!(
        "unix://localhost:0/amps/json?path={}",
        path.display()
    ))
    .unwrap();
    c.logon().unwrap();
    let mut s = c.subscribe("local", None).unwrap();
    c.publish("local", "via-unix").unwrap();
    assert_eq!(text(&s.next_msg()), "via-unix");
    c.close().unwrap();
    // A unix URI without `path` is an invalid transport option.
    let c = A::build(A::builder("unix2"));
    assert_eq!(
        c.connect("unix://localhost:0/amps/json")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidTransportOptions
    );
}

/// A transport filter set on a built client sees what follows, in order with the calls made
/// before; removed, it sees nothing more.
fn a_transport_filter_can_be_set_and_removed_on_a_built_client<A: Api>() {
    let b = broker();
    let c: A = A::build(A::builder("filter-later"));
    let (tx, rx) = mpsc::channel();
    // Set before the connection: it sees the logon.
    c.set_transport_filter(move |dir, bytes| {
        let _ = tx.send((dir, String::from_utf8_lossy(bytes).into_owned()));
    })
    .unwrap();
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    c.publish("filtered", "seen-1").unwrap();
    c.flush().unwrap();
    let seen: Vec<(Direction, String)> = rx.try_iter().collect();
    let out = |what: &str| {
        seen.iter()
            .any(|(d, t)| *d == Direction::Outgoing && t.contains(what))
    };
    assert!(out(r#""c":"logon""#), "{seen:?}");
    assert!(out("seen-1"), "{seen:?}");
    assert!(
        seen.iter().any(|(d, _)| *d == Direction::Incoming),
        "the logon ack came in: {seen:?}"
    );
    c.clear_transport_filter().unwrap();
    c.publish("filtered", "unseen-2").unwrap();
    c.flush().unwrap();
    let after: Vec<(Direction, String)> = rx.try_iter().collect();
    assert!(after.is_empty(), "nothing after removal: {after:?}");
    c.close().unwrap();
}

suite!(
    a_transport_filter_can_be_set_and_removed_on_a_built_client,
    tcps_with_a_private_ca_and_verification_on_by_default,
    a_tls_handshake_that_never_finishes_is_a_timeout,
    unix_socket_forwarded_to_the_broker,
);

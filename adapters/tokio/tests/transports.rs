//! `tcps` (an rcgen CA and a small TLS front forwarding to the broker), `unix` (a forwarding
//! Unix socket), heartbeats detecting a silent server, and connection-state events.

mod common;
use std::sync::Arc;

use amps_tokio::{Client, ConnectionState as CS, Duration, ErrorKind, TlsConfig};
use common::*;
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};

/// Copy bytes both ways between `a` and the broker.
async fn pipe<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut a: S,
    broker: std::net::SocketAddr,
) {
    let mut b = TcpStream::connect(broker).await.unwrap();
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}

/// A TLS front for `broker` with a certificate for `localhost` signed by a fresh CA; returns
/// its port and the CA certificate (DER).
async fn tls_front(broker: std::net::SocketAddr) -> (u16, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    pipe(tls, broker).await;
                }
            });
        }
    });
    (port, ca.der().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcps_verifies_the_server_and_carries_the_protocol() {
    let b = broker().await;
    let (port, ca) = tls_front(b.local_addr()).await;
    let u = format!("tcps://localhost:{port}/amps/json?tcp_nodelay=true");
    let c = Client::builder("tls")
        .tls(TlsConfig::with_root_certificates([ca]))
        .build()
        .unwrap();
    within(c.connect(&u)).await.unwrap();
    within(c.logon()).await.unwrap();
    let mut s = within(c.subscribe("secure", None)).await.unwrap();
    let p = client(&b, "plain").await;
    p.publish("secure", b"over tls").await.unwrap();
    assert_eq!(text(&next(&mut s).await), "over tls");
    // Verification is on by default: the webpki roots do not know this CA.
    let d = Client::new("default-roots").unwrap();
    let e = within(d.connect(&u)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_transport() {
    let b = broker().await;
    let dir = std::env::temp_dir().join(format!("amps-tokio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unix.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let addr = b.local_addr();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(pipe(s, addr));
        }
    });
    let c = Client::new("unix").unwrap();
    let u = format!("unix://localhost:0/amps/json?path={}", path.display());
    within(c.connect(&u)).await.unwrap();
    within(c.logon()).await.unwrap();
    let msgs = drain(within(c.sow("orders", None)).await.unwrap()).await;
    assert_eq!(msgs.len(), 2, "group_begin and group_end of an empty SOW");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_detect_a_silent_server_and_states_are_ordered() {
    let b = broker().await;
    let c = Client::builder("hb")
        .heartbeat_with_timeout(1, Duration::from_millis(1500))
        .build()
        .unwrap();
    let mut states = c.events().states();
    within(c.connect(&uri(&b))).await.unwrap();
    within(c.logon()).await.unwrap();
    let got: Vec<CS> = within(states.by_ref().take(3).collect()).await;
    assert_eq!(got, [CS::Connected, CS::LoggedOn, CS::HeartbeatInitiated]);
    // The server goes silent: no heartbeats, no answers. The client gives up on it.
    b.faults(|f| f.heartbeats_off = true);
    let started = std::time::Instant::now();
    within(async { while states.next().await != Some(CS::Disconnected) {} }).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(*c.state().borrow(), CS::Disconnected);

    // Heartbeats can also start on a logged-on client (seeds: `set_heartbeat` after connect).
    let late = client(&b, "late").await;
    let mut states = late.events().states();
    within(late.set_heartbeat(Some(amps_tokio::HeartbeatConfig::new(5))))
        .await
        .unwrap();
    assert_eq!(within(states.next()).await, Some(CS::HeartbeatInitiated));
    assert!(
        late.set_heartbeat(Some(amps_tokio::HeartbeatConfig::new(0)))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_filter_sees_the_raw_bytes_both_ways() {
    use std::sync::Mutex;
    let b = broker().await;
    let seen: Arc<Mutex<(Vec<u8>, Vec<u8>)>> = Arc::default();
    let log = seen.clone();
    let c = Client::builder("filtered")
        .transport_filter(move |dir, bytes| {
            let mut l = log.lock().unwrap();
            match dir {
                amps_tokio::Direction::Outgoing => l.0.extend_from_slice(bytes),
                amps_tokio::Direction::Incoming => l.1.extend_from_slice(bytes),
            }
        })
        .build()
        .unwrap();
    within(c.connect(&uri(&b))).await.unwrap();
    within(c.logon()).await.unwrap();
    c.publish("t", b"filtered payload").await.unwrap();
    within(c.flush()).await.unwrap();
    let (out, inc) = seen.lock().unwrap().clone();
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // Whole frames with their length prefixes, as on the wire (protocol.md §1.1).
    let logon_len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
    assert!(has(&out[4..4 + logon_len], br#""c":"logon""#));
    assert!(has(&out, b"filtered payload"));
    assert!(has(&inc, br#""c":"ack""#));
}

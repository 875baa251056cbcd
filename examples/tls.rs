//! TLS (`tcps://`) with the async client (amps-tokio): the client verifies the server's
//! certificate against the webpki roots by default; to trust a private CA, give its
//! certificate with `TlsConfig::with_root_certificates`. The in-process broker listens on TCP
//! only, so this example puts a TLS-terminating proxy in front of it, with a CA and a
//! `localhost` certificate made on the spot (rcgen).
//!
//! ```text
//! cargo run -p amps-examples --example tls
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example tls
//! ```
//!
//! With `AMPS_URI` the proxy forwards to that server (its credentials and message type are
//! kept). Uses the topic `secure` (any topic works).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amps_examples::{client_name, server_async};
use amps_tokio::{Client, ErrorKind, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

type BoxError = Box<dyn std::error::Error>;

/// A private CA and a server configuration with a certificate for `localhost` it signed;
/// returns the CA certificate (DER), which clients must trust.
fn pki() -> Result<(Vec<u8>, Arc<ServerConfig>), BoxError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    Ok((ca.der().to_vec(), Arc::new(config)))
}

/// Accept TLS connections on a loopback port and forward each, decrypted, to `backend`.
async fn tls_proxy(config: Arc<ServerConfig>, backend: SocketAddr) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                if let Ok(mut up) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    Ok(port)
}

/// `tcp://[creds@]host:port/path` → (`creds@`, `host:port`, `/path`).
fn split_uri(uri: &str) -> Result<(&str, &str, &str), String> {
    let rest = uri
        .strip_prefix("tcp://")
        .ok_or_else(|| format!("expected a tcp:// connection string, got {uri}"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (creds, host_port) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    Ok((creds, host_port, path))
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), BoxError> {
    let server = server_async(amps_broker::Config::default()).await?;
    let (creds, host_port, path) = split_uri(&server.uri)?;
    let backend = tokio::net::lookup_host(host_port)
        .await?
        .next()
        .ok_or("the server's address does not resolve")?;
    let (ca, server_config) = pki()?;
    let port = tls_proxy(server_config, backend).await?;
    // The certificate names `localhost`: connect by that name.
    let tls_uri = format!("tcps://{creds}localhost:{port}{path}");
    println!("TLS proxy on localhost:{port}, forwarding to {backend}");

    // The default roots do not know the private CA: the connection is refused.
    let untrusting = Client::new(client_name("tls-default"))?;
    match untrusting.connect(&tls_uri).await {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            println!("with the default roots: refused ({e})");
        }
        other => return Err(format!("expected ConnectionRefused, got {other:?}").into()),
    }
    untrusting.close().await?;

    // Trusting the CA: a verified TLS connection, used like any other.
    let client = Client::builder(client_name("tls"))
        .tls(TlsConfig::with_root_certificates([ca]))
        .build()?;
    client.connect(&tls_uri).await?;
    client.logon().await?;
    println!("with the private CA as root: connected and logged on over TLS");
    let mut secure = client.subscribe("secure", None).await?;
    client
        .publish("secure", r#"{"msg":"encrypted on the wire"}"#)
        .await?;
    let m = secure
        .recv_timeout(Duration::from_secs(10))
        .await?
        .ok_or("the stream ended")?;
    println!("round trip over tcps: {}", m.data_str().unwrap_or(""));
    drop(secure);
    client.close().await?;
    Ok(())
}

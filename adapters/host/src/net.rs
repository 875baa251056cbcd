//! Connection set-up shared by the host clients: the transport options of a connection string
//! applied to the socket (`bind`, `tcp_nodelay`, `tcp_rcvbuf`, `tcp_sndbuf`, `tcp_linger`,
//! `tcp_keepalive`, `ip_protocol_prefer`), address resolution in the preferred order, the TLS
//! configuration of `tcps`, the path of a `unix` socket, and the transport filter's types.
//! Opening the socket itself (blocking or async) is each client's own business.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use amps_core::uri::{Host, IpPrefer, TransportOptions, Uri};
#[cfg(feature = "tls")]
use rustls_pki_types::{CertificateDer, ServerName};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::Result;
#[cfg(feature = "tls")]
use crate::error::{Error, ErrorKind};

/// Which way bytes travel, for the transport filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Bytes to the server (before encryption).
    Outgoing,
    /// Bytes from the server (after decryption). Not aligned to frames.
    Incoming,
}

/// A transport filter: sees the raw bytes of the connection both ways, length prefixes
/// included, after TLS decryption and before encryption. It runs on the connection's own
/// loop: it must be quick and must not call the client.
pub type TransportFilter = dyn Fn(Direction, &[u8]) + Send + Sync;

/// Put `addrs` in the order `prefer` asks for (IPv4 first by default), keeping the resolver's
/// order within each family.
pub fn order_addrs(addrs: &mut [SocketAddr], prefer: Option<IpPrefer>) {
    let want_v6 = prefer == Some(IpPrefer::Ipv6);
    addrs.sort_by_key(|a| a.is_ipv6() != want_v6);
}

/// The addresses to try for the URI's host, in the preferred order; a literal address is
/// used as is (the preference does not apply). Blocks on name resolution.
pub fn resolve(uri: &Uri<'_>) -> io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = match uri.host {
        Host::Ipv4(a) => return Ok(vec![SocketAddr::new(IpAddr::V4(a), uri.port)]),
        Host::Ipv6(a) => return Ok(vec![SocketAddr::new(IpAddr::V6(a), uri.port)]),
        Host::Name(n) => (n, uri.port).to_socket_addrs()?.collect(),
    };
    order_addrs(&mut addrs, uri.options.ip_protocol_prefer);
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} resolves to no address", uri.host),
        ));
    }
    Ok(addrs)
}

/// A TCP socket for `addr` with the URI's options applied and `bind` done, not connected yet
/// (so buffer sizes take part in the handshake's window negotiation). Defaults: keepalive on,
/// Nagle as the system sets it, no linger (a lingering close blocks the closing thread).
pub fn socket_for(addr: SocketAddr, opts: &TransportOptions<'_>) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(on) = opts.tcp_nodelay {
        s.set_tcp_nodelay(on)?;
    }
    if let Some(n) = opts.tcp_rcvbuf {
        s.set_recv_buffer_size(n as usize)?;
    }
    if let Some(n) = opts.tcp_sndbuf {
        s.set_send_buffer_size(n as usize)?;
    }
    if let Some(secs) = opts.tcp_linger {
        s.set_linger(Some(Duration::from_secs(u64::from(secs))))?;
    }
    s.set_keepalive(opts.tcp_keepalive.unwrap_or(true))?;
    if let Some(b) = opts.bind {
        if b.is_ipv4() != addr.is_ipv4() {
            // A socket bound to one family cannot reach the other.
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("bind address {b} cannot reach {addr}"),
            ));
        }
        s.bind(&SockAddr::from(b))?;
    }
    Ok(s)
}

/// Connect to the first address of the URI's host that accepts, with its options, each
/// attempt limited by `timeout`. Blocking.
pub fn connect_tcp(uri: &Uri<'_>, timeout: Duration) -> io::Result<std::net::TcpStream> {
    let mut last = None;
    for addr in resolve(uri)? {
        let attempt = socket_for(addr, &uri.options).and_then(|s| {
            s.connect_timeout(&SockAddr::from(addr), timeout)
                .map(|()| s)
        });
        match attempt {
            Ok(s) => return Ok(s.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
}

/// The path of a `unix` connection string: host and port are ignored, the `path` option
/// (percent-decoded) names the socket.
pub fn unix_path(uri: &Uri<'_>) -> Result<String> {
    let raw = uri.options.path.unwrap_or("");
    let mut buf = vec![0u8; raw.len()];
    Ok(amps_core::uri::percent_decode_into(raw, &mut buf, 0)?.to_owned())
}

/// How `tcps` connections verify the server.
///
/// The default trusts the Mozilla roots shipped in `webpki-roots`. Verification cannot be
/// turned off; to trust a private CA, give its certificate:
///
/// ```
/// # fn ca_der() -> Vec<u8> { Vec::new() }
/// let tls = amps_host::TlsConfig::with_root_certificates([ca_der()]);
/// # let _ = tls;
/// ```
///
/// Without the `tls` feature the type still exists (so settings compile the same), and a
/// `tcps` connection string fails with `TransportType`.
#[derive(Clone, Default)]
pub struct TlsConfig {
    #[cfg(feature = "tls")]
    config: Option<Arc<rustls::ClientConfig>>,
    roots: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("TlsConfig");
        #[cfg(feature = "tls")]
        d.field("custom_config", &self.config.is_some());
        d.field("roots", &self.roots.len()).finish()
    }
}

impl TlsConfig {
    /// Trust only these DER-encoded CA certificates (instead of the webpki roots).
    pub fn with_root_certificates<I, C>(certs: I) -> TlsConfig
    where
        I: IntoIterator<Item = C>,
        C: Into<Vec<u8>>,
    {
        TlsConfig {
            #[cfg(feature = "tls")]
            config: None,
            roots: certs.into_iter().map(Into::into).collect(),
        }
    }

    /// Use a complete rustls configuration (client certificates, other verifiers, ...).
    #[cfg(feature = "tls")]
    pub fn with_rustls_config(config: Arc<rustls::ClientConfig>) -> TlsConfig {
        TlsConfig {
            config: Some(config),
            roots: Vec::new(),
        }
    }

    /// The rustls configuration: the one given, or one with verification on and the chosen
    /// roots (rustls with the ring provider).
    #[cfg(feature = "tls")]
    pub fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        if self.roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        } else {
            for c in &self.roots {
                roots
                    .add(CertificateDer::from(c.clone()))
                    .map_err(|e| Error::usage(format!("bad root certificate: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::usage(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// The name the server's certificate must carry.
#[cfg(feature = "tls")]
pub fn server_name(host: &Host<'_>) -> Result<ServerName<'static>> {
    match *host {
        Host::Ipv4(a) => Ok(ServerName::IpAddress(IpAddr::V4(a).into())),
        Host::Ipv6(a) => Ok(ServerName::IpAddress(IpAddr::V6(a).into())),
        Host::Name(n) => ServerName::try_from(n.to_owned()).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidUri,
                format!("`{n}` is not a TLS server name"),
                e,
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::SockRef;

    #[test]
    fn preference_orders_families_and_literals_are_kept() {
        let mut v: Vec<SocketAddr> = vec![
            "[::1]:1".parse().unwrap(),
            "127.0.0.1:1".parse().unwrap(),
            "[::2]:1".parse().unwrap(),
        ];
        order_addrs(&mut v, Some(IpPrefer::Ipv6));
        assert!(v[0].is_ipv6() && v[1].is_ipv6() && v[2].is_ipv4());
        assert_eq!(v[0], "[::1]:1".parse().unwrap(), "resolver order kept");
        order_addrs(&mut v, None);
        assert!(v[0].is_ipv4());
        let uri = Uri::parse("tcp://127.0.0.1:9/amps/json?ip_protocol_prefer=ipv6").unwrap();
        assert_eq!(resolve(&uri).unwrap(), vec!["127.0.0.1:9".parse().unwrap()]);
    }

    #[test]
    fn every_option_reaches_the_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Pick a free local port for `bind` by binding and releasing it.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bind_port = free.local_addr().unwrap().port();
        drop(free);
        let text = format!(
            "tcp://127.0.0.1:{port}/amps/json?bind=127.0.0.1:{bind_port}&tcp_nodelay=true\
             &tcp_rcvbuf=65536&tcp_sndbuf=131072&tcp_linger=3&tcp_keepalive=false\
             &ip_protocol_prefer=ipv6"
        );
        let uri = Uri::parse(&text).unwrap();
        let s = connect_tcp(&uri, Duration::from_secs(10)).unwrap();
        let (peer, from) = listener.accept().unwrap();
        assert_eq!(from.port(), bind_port, "bound to the requested address");
        drop(peer);
        let r = SockRef::from(&s);
        assert!(r.tcp_nodelay().unwrap());
        assert!(!r.keepalive().unwrap());
        assert_eq!(r.linger().unwrap(), Some(Duration::from_secs(3)));
        // Linux doubles the requested sizes for bookkeeping; at least the request is granted.
        assert!(r.recv_buffer_size().unwrap() >= 65536);
        assert!(r.send_buffer_size().unwrap() >= 131072);
        // Defaults: keepalive on.
        let text = format!("tcp://127.0.0.1:{port}/amps/json");
        let uri = Uri::parse(&text).unwrap();
        let s = connect_tcp(&uri, Duration::from_secs(10)).unwrap();
        assert!(SockRef::from(&s).keepalive().unwrap());
    }

    #[test]
    fn refused_and_mismatched_bind_are_errors() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let text = format!("tcp://127.0.0.1:{port}/amps/json");
        let uri = Uri::parse(&text).unwrap();
        let e = connect_tcp(&uri, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let text = format!("tcp://127.0.0.1:{port}/amps/json?bind=[::1]:0");
        let uri = Uri::parse(&text).unwrap();
        let e = connect_tcp(&uri, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable);
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_names_and_configs() {
        assert!(server_name(&Host::Name("broker.example")).is_ok());
        assert!(server_name(&Host::Ipv4([127, 0, 0, 1].into())).is_ok());
        assert_eq!(
            server_name(&Host::Name("bad name!")).unwrap_err().kind(),
            ErrorKind::InvalidUri
        );
        assert!(TlsConfig::default().rustls_config().is_ok());
        let bad = TlsConfig::with_root_certificates([vec![1u8, 2, 3]]);
        assert_eq!(bad.rustls_config().unwrap_err().kind(), ErrorKind::Usage);
    }
}

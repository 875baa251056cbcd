//! Opening the byte stream a URI names (seeds: "Connection strings", "Transport options";
//! protocol.md §1.5): `tcp` and `tcps` sockets with every transport option applied through
//! socket2, TLS with rustls, and Unix domain sockets.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use amps_core::uri::{Host, IpPrefer, Transport as Scheme, TransportOptions, Uri};
#[cfg(test)]
use socket2::SockRef;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::{Error, Result};
use crate::tls::TlsConfig;

/// An open connection to a server.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// Open the transport of `uri` (already parsed and validated by the core).
pub(crate) async fn connect(uri: &Uri<'_>, tls: &TlsConfig) -> Result<Stream> {
    match uri.transport {
        Scheme::Tcp => Ok(Stream::Tcp(connect_tcp(uri).await?)),
        Scheme::Tcps => {
            let tcp = connect_tcp(uri).await?;
            let stream = tls.connect(&uri.host, tcp).await?;
            Ok(Stream::Tls(Box::new(stream)))
        }
        Scheme::Unix => connect_unix(uri).await,
        _ => Err(Error::new(
            amps_core::error_kind::ErrorKind::TransportType,
            "unsupported transport",
        )),
    }
}

#[cfg(unix)]
async fn connect_unix(uri: &Uri<'_>) -> Result<Stream> {
    let raw = uri.options.path.unwrap_or("");
    let mut buf = vec![0u8; raw.len()];
    let path = amps_core::uri::percent_decode_into(raw, &mut buf, 0)?;
    let s = tokio::net::UnixStream::connect(path)
        .await
        .map_err(Error::connect_io)?;
    Ok(Stream::Unix(s))
}

#[cfg(not(unix))]
async fn connect_unix(_: &Uri<'_>) -> Result<Stream> {
    Err(Error::new(
        amps_core::error_kind::ErrorKind::TransportType,
        "unix sockets are not available on this platform",
    ))
}

/// Resolve the host, preferring the family `ip_protocol_prefer` names (IPv4 by default), and
/// try each address in that order.
async fn connect_tcp(uri: &Uri<'_>) -> Result<TcpStream> {
    let addrs = resolve(&uri.host, uri.port, uri.options.ip_protocol_prefer).await?;
    let mut last = None;
    for addr in addrs {
        match connect_addr(addr, &uri.options).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::connect_io(io::Error::new(
            io::ErrorKind::NotFound,
            "host name resolved to no address",
        ))
    }))
}

async fn resolve(host: &Host<'_>, port: u16, prefer: Option<IpPrefer>) -> Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = match host {
        // A literal address decides the family itself; the preference has no effect (seeds).
        Host::Ipv4(a) => vec![SocketAddr::new((*a).into(), port)],
        Host::Ipv6(a) => vec![SocketAddr::new((*a).into(), port)],
        Host::Name(n) => tokio::net::lookup_host((*n, port))
            .await
            .map_err(Error::connect_io)?
            .collect(),
    };
    let want_v6 = prefer == Some(IpPrefer::Ipv6);
    // Stable sort: the preferred family first, the resolver's order kept within a family.
    addrs.sort_by_key(|a| a.is_ipv6() != want_v6);
    Ok(addrs)
}

/// Build the socket with socket2 so every option is applied before `connect`.
async fn connect_addr(addr: SocketAddr, opts: &TransportOptions<'_>) -> Result<TcpStream> {
    let socket = configured_socket(addr, opts).map_err(|e| {
        Error::new(
            amps_core::error_kind::ErrorKind::InvalidTransportOptions,
            format!("applying transport options: {e}"),
        )
    })?;
    let stream = TcpSocket::from_std_stream(std::net::TcpStream::from(socket))
        .connect(addr)
        .await
        .map_err(Error::connect_io)?;
    Ok(stream)
}

/// A non-blocking socket for `addr` with the URI's options: `bind`, `tcp_nodelay` (seeds
/// default off), `tcp_rcvbuf`, `tcp_sndbuf`, `tcp_linger`, `tcp_keepalive` (seeds default on).
///
/// `SO_LINGER` is set only when the URI asks for it: the seeds' client enables a 10 s linger
/// by default, but on Linux a lingering `close` blocks the calling thread, which would stall a
/// runtime worker (docs/protocol-notes.md, "amps-tokio").
pub(crate) fn configured_socket(
    addr: SocketAddr,
    opts: &TransportOptions<'_>,
) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if let Some(bind) = opts.bind {
        let bind = match (bind.is_ipv4(), addr.is_ipv4()) {
            (a, b) if a == b => bind,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "bind address family differs from the server's",
                ));
            }
        };
        socket.bind(&bind.into())?;
    }
    socket.set_tcp_nodelay(opts.tcp_nodelay.unwrap_or(false))?;
    if let Some(n) = opts.tcp_rcvbuf {
        socket.set_recv_buffer_size(n as usize)?;
    }
    if let Some(n) = opts.tcp_sndbuf {
        socket.set_send_buffer_size(n as usize)?;
    }
    if let Some(secs) = opts.tcp_linger {
        socket.set_linger(Some(std::time::Duration::from_secs(u64::from(secs))))?;
    }
    socket.set_keepalive(opts.tcp_keepalive.unwrap_or(true))?;
    Ok(socket)
}

impl Stream {
    /// The socket, for inspecting options in tests.
    #[cfg(test)]
    pub(crate) fn sock_ref(&self) -> Option<SockRef<'_>> {
        match self {
            Stream::Tcp(s) => Some(SockRef::from(s)),
            Stream::Tls(s) => Some(SockRef::from(s.get_ref().0)),
            #[cfg(unix)]
            Stream::Unix(_) => None,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_tcp_option_reaches_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = format!(
            "tcp://127.0.0.1:{port}/amps/json?bind=127.0.0.1&tcp_nodelay=true&tcp_rcvbuf=65536\
             &tcp_sndbuf=131072&tcp_linger=3&tcp_keepalive=false"
        );
        let uri = Uri::parse(&text).unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.unwrap() });
        let stream = connect(&uri, &TlsConfig::default()).await.unwrap();
        let (_peer, from) = accept.await.unwrap();
        assert_eq!(from.ip().to_string(), "127.0.0.1");
        let s = stream.sock_ref().unwrap();
        assert!(s.tcp_nodelay().unwrap());
        assert!(!s.keepalive().unwrap());
        assert_eq!(s.linger().unwrap(), Some(std::time::Duration::from_secs(3)));
        // Linux doubles the requested sizes for bookkeeping: at least what was asked.
        assert!(s.recv_buffer_size().unwrap() >= 65536);
        assert!(s.send_buffer_size().unwrap() >= 131072);
    }

    #[tokio::test]
    async fn defaults_follow_the_seeds_and_refusal_is_typed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = format!("tcp://localhost:{port}/amps/json");
        let stream = connect(&Uri::parse(&text).unwrap(), &TlsConfig::default())
            .await
            .unwrap();
        let s = stream.sock_ref().unwrap();
        assert!(!s.tcp_nodelay().unwrap());
        assert!(s.keepalive().unwrap());
        drop(listener);
        let err = match connect(&Uri::parse(&text).unwrap(), &TlsConfig::default()).await {
            Err(e) => e,
            Ok(_) => panic!("connected to a closed port"),
        };
        assert_eq!(
            err.kind(),
            amps_core::error_kind::ErrorKind::ConnectionRefused
        );
    }

    #[tokio::test]
    async fn ipv6_preference_orders_addresses() {
        let v = resolve(&Host::Name("localhost"), 1, Some(IpPrefer::Ipv6))
            .await
            .unwrap();
        if v.iter().any(SocketAddr::is_ipv6) {
            assert!(v[0].is_ipv6());
        }
        let v = resolve(&Host::Name("localhost"), 1, None).await.unwrap();
        if v.iter().any(SocketAddr::is_ipv4) {
            assert!(v[0].is_ipv4());
        }
    }
}

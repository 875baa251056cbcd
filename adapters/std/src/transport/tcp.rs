//! TCP connections with every transport option of the URI applied to the socket (seeds:
//! "Connection parameters"): `bind`, `tcp_nodelay`, `tcp_rcvbuf`, `tcp_sndbuf`, `tcp_linger`,
//! `tcp_keepalive`, `ip_protocol_prefer`.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use amps_core::uri::{Host, IpPrefer, TransportOptions};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The addresses to try for `host:port`, in the order `ip_protocol_prefer` asks for (IPv4
/// first by default). A literal address is used as is: the preference does not apply (seeds).
pub(crate) fn resolve(host: &Host<'_>, port: u16, prefer: IpPrefer) -> io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = match *host {
        Host::Ipv4(a) => return Ok(vec![SocketAddr::new(IpAddr::V4(a), port)]),
        Host::Ipv6(a) => return Ok(vec![SocketAddr::new(IpAddr::V6(a), port)]),
        Host::Name(n) => (n, port).to_socket_addrs()?.collect(),
    };
    // Stable: the resolver's order is kept within each family.
    addrs.sort_by_key(|a| match prefer {
        IpPrefer::Ipv4 => a.is_ipv6(),
        IpPrefer::Ipv6 => a.is_ipv4(),
    });
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// Apply the socket options of `opts` to `s` (before connecting, so buffer sizes take part in
/// the handshake's window negotiation).
pub(crate) fn apply_options(s: &Socket, opts: &TransportOptions<'_>) -> io::Result<()> {
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
    // Seeds: keepalive is on unless the URI turns it off.
    s.set_keepalive(opts.tcp_keepalive.unwrap_or(true))?;
    Ok(())
}

/// Connect to the first address of `host:port` that accepts, applying `opts`.
pub(crate) fn connect(
    host: &Host<'_>,
    port: u16,
    opts: &TransportOptions<'_>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let addrs = resolve(host, port, opts.ip_protocol_prefer.unwrap_or_default())?;
    let mut last = None;
    for addr in addrs {
        if let Some(b) = opts.bind
            && b.is_ipv4() != addr.is_ipv4()
        {
            // A socket bound to one family cannot reach the other.
            last = Some(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("bind address {b} cannot reach {addr}"),
            ));
            continue;
        }
        match connect_one(addr, opts, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
}

fn connect_one(
    addr: SocketAddr,
    opts: &TransportOptions<'_>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    apply_options(&s, opts)?;
    if let Some(b) = opts.bind {
        s.bind(&SockAddr::from(b))?;
    }
    s.connect_timeout(&SockAddr::from(addr), timeout)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::uri::Uri;
    use socket2::SockRef;

    #[test]
    fn preference_orders_families_and_literals_are_kept() {
        let h = Host::Name("localhost");
        if let Ok(v) = resolve(&h, 1, IpPrefer::Ipv6) {
            let first_v4 = v.iter().position(SocketAddr::is_ipv4).unwrap_or(v.len());
            assert!(v[first_v4..].iter().all(SocketAddr::is_ipv4), "{v:?}");
        }
        if let Ok(v) = resolve(&h, 1, IpPrefer::Ipv4) {
            let first_v6 = v.iter().position(SocketAddr::is_ipv6).unwrap_or(v.len());
            assert!(v[first_v6..].iter().all(SocketAddr::is_ipv6), "{v:?}");
        }
        let lit = resolve(&Host::Ipv4([127, 0, 0, 1].into()), 9, IpPrefer::Ipv6).unwrap();
        assert_eq!(lit, vec!["127.0.0.1:9".parse().unwrap()]);
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
        let s = connect(&uri.host, uri.port, &uri.options, Duration::from_secs(10)).unwrap();
        let (peer, from) = listener.accept().unwrap();
        assert_eq!(
            from.port(),
            bind_port,
            "bound to the requested local address"
        );
        drop(peer);
        let r = SockRef::from(&s);
        assert!(r.tcp_nodelay().unwrap());
        assert!(!r.keepalive().unwrap());
        assert_eq!(r.linger().unwrap(), Some(Duration::from_secs(3)));
        // Linux doubles the requested sizes for bookkeeping; at least the request is granted.
        assert!(r.recv_buffer_size().unwrap() >= 65536);
        assert!(r.send_buffer_size().unwrap() >= 131072);
        // Defaults: keepalive on (seeds), nodelay as the system sets it.
        let text = format!("tcp://127.0.0.1:{port}/amps/json");
        let uri = Uri::parse(&text).unwrap();
        let s = connect(&uri.host, uri.port, &uri.options, Duration::from_secs(10)).unwrap();
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
        let e = connect(&uri.host, uri.port, &uri.options, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let text = format!("tcp://127.0.0.1:{port}/amps/json?bind=[::1]:0");
        let uri = Uri::parse(&text).unwrap();
        let e = connect(&uri.host, uri.port, &uri.options, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable);
    }
}

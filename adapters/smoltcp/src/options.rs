//! How the client reaches its servers: [`Options`], the failover [`Server`]s, and the
//! connection strings this adapter can serve.

use amps_core::session::Logon;
use amps_core::uri::{Host, Protocol, Transport, Uri};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint};

/// First port of the IANA dynamic range, where local ports are picked from.
pub(crate) const DYNAMIC_PORTS: u16 = 49152;

/// How the client reaches its servers.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// The server's address (smoltcp has no resolver: an IP literal): server 0, the first one
    /// tried.
    pub server: IpEndpoint,
    /// Credentials and message type sent in the logon to [`Options::server`] (docs/protocol.md,
    /// section 6.1).
    pub logon: Logon<'a>,
    /// Servers to fail over to, each with its own logon: servers 1, 2, ... after
    /// [`Options::server`]. The client moves to the next one (wrapping) when a connection
    /// attempt fails or a connection ends before its logon succeeded, and retries a connection
    /// lost after a successful logon on the same server first (see
    /// [`Client::current_server`](crate::Client::current_server) and the crate docs). Default
    /// empty: one server.
    pub failover: &'a [Server<'a>],
    /// Local port of the first connection; each reconnect takes the next one, so a server
    /// still holding the previous connection (TIME-WAIT, or a half-open one after a link
    /// loss) never sees a reused 4-tuple. Defaults to the start of the dynamic range.
    pub first_local_port: u16,
    /// smoltcp's retransmission give-up time: a connect or a send not acknowledged for this
    /// long resets the socket (a connect attempt to a dead host ends, and the session's
    /// reconnect policy takes over). Default 10 s.
    pub tcp_timeout: Option<Duration>,
    /// Nagle's algorithm (default off: AMPS frames are small and latency matters, the
    /// equivalent of the URI option `tcp_nodelay=true`).
    pub nagle: bool,
}

impl<'a> Options<'a> {
    /// Connect to `server` with an anonymous JSON logon.
    pub fn new(server: impl Into<IpEndpoint>) -> Self {
        Options {
            server: server.into(),
            logon: Logon {
                user_id: None,
                password: None,
                message_type: Some("json"),
                options: None,
            },
            failover: &[],
            first_local_port: DYNAMIC_PORTS,
            tcp_timeout: Some(Duration::from_secs(10)),
            nagle: false,
        }
    }

    /// Options from a connection string such as `tcp://user:pw@192.0.2.7:9007/amps/json`
    /// (AMPS Python client guide: "Connection strings"). The host must be an IPv4 literal
    /// (there is no resolver), the transport `tcp`, the protocol `amps`; a password with
    /// percent-escapes must be decoded by the caller and set in [`Options::logon`].
    /// `tcp_nodelay=false` turns Nagle on.
    pub fn from_uri(uri: &Uri<'a>) -> Result<Self, UriUnsupported> {
        if uri.transport != Transport::Tcp {
            return Err(UriUnsupported::Transport);
        }
        if uri.protocol != Protocol::Amps {
            return Err(UriUnsupported::Protocol);
        }
        let addr = match uri.host {
            Host::Ipv4(a) => a,
            Host::Name(_) | Host::Ipv6(_) => return Err(UriUnsupported::Host),
        };
        let password = match uri.password {
            Some(p) if p.expose().contains('%') => return Err(UriUnsupported::EscapedPassword),
            Some(p) => Some(p.expose()),
            None => None,
        };
        let mut o = Options::new((IpAddress::Ipv4(addr), uri.port));
        o.logon = Logon {
            user_id: uri.user,
            password,
            message_type: uri.message_type,
            options: if uri.options.pretty {
                Some("pretty")
            } else {
                None
            },
        };
        o.nagle = uri.options.tcp_nodelay == Some(false);
        Ok(o)
    }
}

/// Why [`Options::from_uri`] refused a connection string this adapter cannot serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriUnsupported {
    /// Only `tcp` (no TLS, no Unix sockets on smoltcp).
    Transport,
    /// Only the `amps` protocol (docs/protocol.md §1).
    Protocol,
    /// The host is not an IPv4 literal.
    Host,
    /// The password holds percent-escapes.
    EscapedPassword,
}

impl core::fmt::Display for UriUnsupported {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UriUnsupported::Transport => "only tcp:// is supported over smoltcp",
            UriUnsupported::Protocol => "only the amps protocol is supported",
            UriUnsupported::Host => "the host must be an IPv4 literal (no resolver)",
            UriUnsupported::EscapedPassword => "percent-escaped passwords must be decoded first",
        })
    }
}

impl core::error::Error for UriUnsupported {}

/// A server to fail over to, with the logon it takes (its own credentials and message type).
/// `Debug` leaves the password out.
#[derive(Clone, Copy, Debug)]
pub struct Server<'a> {
    /// The server's address (an IP literal: smoltcp has no resolver).
    pub endpoint: IpEndpoint,
    /// The logon sent to this server.
    pub logon: Logon<'a>,
}

impl<'a> Server<'a> {
    /// `endpoint`, logging on with `logon`.
    pub fn new(endpoint: impl Into<IpEndpoint>, logon: Logon<'a>) -> Self {
        Server {
            endpoint: endpoint.into(),
            logon,
        }
    }

    /// A server from a connection string such as `tcp://user:pw@192.0.2.8:9007/amps/json`,
    /// with the rules of [`Options::from_uri`](crate::Options::from_uri).
    pub fn from_uri(uri: &Uri<'a>) -> Result<Self, UriUnsupported> {
        let o = Options::from_uri(uri)?;
        Ok(Server {
            endpoint: o.server,
            logon: o.logon,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_a_connection_string() {
        let uri =
            Uri::parse("tcp://alice:secret@192.0.2.7:9007/amps/json?tcp_nodelay=false").unwrap();
        let o = Options::from_uri(&uri).unwrap();
        assert_eq!(o.server, IpEndpoint::new(IpAddress::v4(192, 0, 2, 7), 9007));
        assert_eq!(o.logon.user_id, Some("alice"));
        assert_eq!(o.logon.password, Some("secret"));
        assert_eq!(o.logon.message_type, Some("json"));
        assert!(o.nagle);
        // The options hold the password; their `Debug` output does not.
        let shown = format!("{o:?} {o:#?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }

    #[test]
    fn failover_servers_from_connection_strings_keep_their_passwords_out_of_debug() {
        let backup = Uri::parse("tcp://bob:hunter2@192.0.2.8:9008/amps/json").unwrap();
        let failover = [Server::from_uri(&backup).unwrap()];
        assert_eq!(
            failover[0].endpoint,
            IpEndpoint::new(IpAddress::v4(192, 0, 2, 8), 9008)
        );
        assert_eq!(failover[0].logon.user_id, Some("bob"));
        assert_eq!(failover[0].logon.password, Some("hunter2"));
        assert_eq!(
            Server::from_uri(&Uri::parse("tcp://amps.example:9007/amps/json").unwrap())
                .unwrap_err(),
            UriUnsupported::Host
        );
        let mut o = Options::new((IpAddress::v4(192, 0, 2, 7), 9007));
        o.failover = &failover;
        let shown = format!("{o:?} {o:#?} {:?}", failover[0]);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("bob") && shown.contains("9008"), "{shown}");
    }

    #[test]
    fn connection_strings_this_adapter_cannot_serve() {
        let refuse = |s: &str| Options::from_uri(&Uri::parse(s).unwrap()).unwrap_err();
        assert_eq!(
            refuse("tcp://amps.example:9007/amps/json"),
            UriUnsupported::Host
        );
        assert_eq!(
            refuse("tcps://192.0.2.7:9007/amps/json"),
            UriUnsupported::Transport
        );
        assert_eq!(refuse("tcp://192.0.2.7:9007/fix"), UriUnsupported::Protocol);
        assert_eq!(
            refuse("tcp://u:p%40ss@192.0.2.7:9007/amps/json"),
            UriUnsupported::EscapedPassword
        );
    }
}

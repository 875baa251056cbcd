//! The client: one amps-core [`Session`] bound to one smoltcp TCP socket.
//!
//! This file holds the type, its construction from [`Options`] and the user commands (which
//! only queue work in the session, design.md §2); the I/O half, [`Client::poll`], is in
//! `drive.rs`.

use amps_core::codec::Command;
use amps_core::session::{
    CommandError, CommandId, Exec, HeartbeatConfig, Logon, PublishError, Session, State, Storage,
};
use amps_core::uri::{Host, Protocol, Transport, Uri};
use smoltcp::iface::SocketHandle;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::time::{duration_to_core, to_core};

/// First port of the IANA dynamic range, where local ports are picked from.
const DYNAMIC_PORTS: u16 = 49152;

/// How the client reaches its server.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// The server's address (smoltcp has no resolver: an IP literal).
    pub server: IpEndpoint,
    /// Credentials and message type sent in the logon (protocol.md §6.1).
    pub logon: Logon<'a>,
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
            first_local_port: DYNAMIC_PORTS,
            tcp_timeout: Some(Duration::from_secs(10)),
            nagle: false,
        }
    }

    /// Options from a connection string such as `tcp://user:pw@192.0.2.7:9007/amps/json`
    /// (seeds: "Connection strings"). The host must be an IPv4 literal (there is no resolver),
    /// the transport `tcp`, the protocol `amps`; a password with percent-escapes must be
    /// decoded by the caller and set in [`Options::logon`]. `tcp_nodelay=false` turns Nagle on.
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
    /// Only the `amps` protocol (protocol.md §1).
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

/// Where the TCP connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No connection (waiting for the session to ask for one).
    Idle,
    /// SYN sent, waiting for the handshake.
    Connecting,
    /// Established: the session talks over it.
    Open,
}

/// Counters about the transport (for diagnostics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connect attempts started.
    pub connects: u32,
    /// Attempts that did not reach Established (refused, timed out, no route).
    pub connect_failures: u32,
    /// Established connections that ended (peer close, reset, heartbeat silence, user close).
    pub disconnects: u32,
    /// Bytes handed to the session.
    pub bytes_in: u64,
    /// Bytes written into the socket.
    pub bytes_out: u64,
}

/// An AMPS client over a smoltcp TCP socket, driven from the application's poll loop.
///
/// The application owns the interface, the socket set and the socket's buffers; the client
/// holds the socket's handle and the session (which holds its own caller-provided buffers, see
/// [`amps_core::session::FixedStorage`]). See the crate docs for the loop.
pub struct Client<'a, S: Storage> {
    pub(crate) session: Session<S>,
    pub(crate) socket: SocketHandle,
    pub(crate) opts: Options<'a>,
    pub(crate) link: Link,
    pub(crate) next_port: u16,
    /// The next close the session asks for was requested by the application: end with FIN
    /// (after what the socket still holds) instead of a reset.
    pub(crate) graceful: bool,
    pub(crate) stats: Stats,
}

impl<'a, S: Storage> Client<'a, S> {
    /// A client for `session` over the socket `socket` (a `tcp::Socket` in the application's
    /// socket set, with buffers the application chose). Nothing happens until
    /// [`Client::connect`] and [`Client::poll`].
    pub fn new(session: Session<S>, socket: SocketHandle, opts: Options<'a>) -> Self {
        Client {
            session,
            socket,
            next_port: opts.first_local_port.max(1),
            opts,
            link: Link::Idle,
            graceful: false,
            stats: Stats::default(),
        }
    }

    /// The session (state, publish store, counters).
    pub fn session(&self) -> &Session<S> {
        &self.session
    }

    /// The session, for commands this type does not wrap (`execute_with`, `ack`, `discard`,
    /// ...). Drive it only through [`Client::poll`].
    pub fn session_mut(&mut self) -> &mut Session<S> {
        &mut self.session
    }

    /// The socket this client uses.
    pub fn socket(&self) -> SocketHandle {
        self.socket
    }

    /// Where the TCP connection is.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Transport counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether the session is logged on and recovered.
    pub fn is_ready(&self) -> bool {
        self.session.state() == State::Ready
    }

    /// Connect and log on at the next [`Client::poll`] (seeds: `connect` + `logon`; with a
    /// reconnect policy, the HA client's `connect_and_logon`: losses are recovered by itself).
    pub fn connect(&mut self, now: Instant) {
        self.graceful = false;
        self.session.start(to_core(now));
    }

    /// Publish `data` to `topic` (protocol.md §6.2). With a publish store in the session the
    /// message is numbered and kept until persisted, also across reconnects; the result is its
    /// sequence number. [`PublishError::WindowFull`] and [`PublishError::WouldBlock`] are
    /// backpressure: poll, then retry.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: &str,
        data: &[u8],
    ) -> Result<Option<u64>, PublishError> {
        self.session.publish(to_core(now), topic, data)
    }

    /// Subscribe to `topic` with an optional content filter (protocol.md §6.4). Deliveries
    /// arrive as `Event::Delivery` with the returned id; with `resubscribe` on in the session
    /// config the subscription is re-entered after every reconnect.
    pub fn subscribe(
        &mut self,
        now: Instant,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<CommandId, CommandError> {
        let mut cmd = Command::subscribe(topic);
        if let Some(f) = filter {
            cmd = cmd.filter(f);
        }
        self.session
            .execute_with(to_core(now), &cmd, Exec { resubscribe: true })
    }

    /// Send any command (see [`Session::execute`]).
    pub fn execute(&mut self, now: Instant, cmd: &Command<'_>) -> Result<CommandId, CommandError> {
        self.session.execute(to_core(now), cmd)
    }

    /// Start, change or stop heartbeats (protocol.md §9; seeds: `set_heartbeat`).
    pub fn set_heartbeat(
        &mut self,
        now: Instant,
        hb: Option<HeartbeatConfig>,
    ) -> Result<(), amps_core::session::ConfigError> {
        self.session.set_heartbeat(to_core(now), hb)
    }

    /// Flush and wait for the publish store to drain (seeds: `publish_flush(timeout)`): the
    /// returned command completes (`Event::Completed`) once every stored publish is persisted,
    /// or fails with `TimedOut`.
    pub fn publish_flush(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> Result<CommandId, CommandError> {
        self.session
            .publish_flush(to_core(now), duration_to_core(timeout))
    }

    /// Close the connection and stop reconnecting (seeds: `disconnect()`); [`Client::connect`]
    /// resumes. The socket ends with FIN after what it already holds.
    pub fn disconnect(&mut self, now: Instant) {
        self.graceful = true;
        self.session.disconnect(to_core(now));
    }

    /// Close for good (seeds: `close()`): every pending command fails and nothing reconnects.
    /// The socket ends with FIN after what it already holds; keep polling until
    /// [`Client::link`] is [`Link::Idle`] if the FIN must go out.
    pub fn close(&mut self, now: Instant) {
        self.graceful = true;
        self.session.close(to_core(now));
    }

    /// The local port for the next connection (cycling through the dynamic range).
    pub(crate) fn take_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX { DYNAMIC_PORTS } else { p + 1 };
        p
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

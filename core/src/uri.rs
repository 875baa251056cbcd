//! Connection strings (AMPS Python client guide: "Connection strings", "Transport options";
//! docs/protocol.md §1.5, §8.2).
//!
//! ```text
//! tcp://user:password@host:9007/amps/json?tcp_nodelay=true&tcp_sndbuf=1048576
//! tcps://[::1]:9443/amps/json
//! unix://localhost:0/amps/json?path=/tmp/amps.sock
//! tcp://host:9007/fix                      legacy protocol: no message type
//! ```
//!
//! Parsing borrows the input and allocates nothing. Errors distinguish an invalid URI, an
//! unknown transport (scheme) and an invalid transport option, each with the byte offset of the
//! problem. The password is kept in a [`Secret`] that never appears in `Debug` or `Display`;
//! [`Uri`]'s `Display` masks it as `****`. Applying the socket options is the adapters' job.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The scheme: how bytes travel (docs/protocol.md §1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// `tcp`.
    Tcp,
    /// `tcps`: TLS over TCP.
    Tcps,
    /// `unix`: a Unix domain socket named by option `path`.
    Unix,
}

impl Transport {
    /// The scheme text.
    pub const fn scheme(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tcps => "tcps",
            Transport::Unix => "unix",
        }
    }
}

/// The host part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A name to resolve.
    Name(&'a str),
    /// A literal IPv4 address.
    Ipv4(Ipv4Addr),
    /// A literal IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// The protocol from the path (AMPS Python client guide: "Protocol").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol<'a> {
    /// `amps`: JSON headers, length-prefixed frames (docs/protocol.md §1). The only one this client
    /// speaks; the others parse so that a connect can fail with a clear error.
    Amps,
    /// Legacy `fix`.
    Fix,
    /// Legacy `nvfix`.
    Nvfix,
    /// Legacy `xml`.
    Xml,
    /// A custom protocol module.
    Other(&'a str),
}

impl Protocol<'_> {
    /// The path segment.
    pub fn name(&self) -> &str {
        match self {
            Protocol::Amps => "amps",
            Protocol::Fix => "fix",
            Protocol::Nvfix => "nvfix",
            Protocol::Xml => "xml",
            Protocol::Other(s) => s,
        }
    }
    /// Legacy protocols carry exactly one message type and take none in the URI.
    pub fn is_legacy(&self) -> bool {
        matches!(self, Protocol::Fix | Protocol::Nvfix | Protocol::Xml)
    }
}

/// `ip_protocol_prefer`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpPrefer {
    /// Prefer IPv4 when resolving names (the default).
    #[default]
    Ipv4,
    /// Prefer IPv6.
    Ipv6,
}

/// A credential that never shows in `Debug` or `Display`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret<'a>(&'a str);

impl<'a> Secret<'a> {
    /// Wrap a credential.
    pub const fn new(s: &'a str) -> Self {
        Secret(s)
    }
    /// The credential as written in the URI (percent-escapes not decoded).
    pub fn expose(&self) -> &'a str {
        self.0
    }
    /// The credential with percent-escapes decoded into `buf`.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, UriError> {
        percent_decode_into(self.0, buf, 0)
    }
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Transport options from the query string, validated (AMPS Python client guide: "Transport
/// options").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportOptions<'a> {
    /// `bind`: local address (and optional port) for the outgoing socket.
    pub bind: Option<SocketAddr>,
    /// `tcp_nodelay` (default off).
    pub tcp_nodelay: Option<bool>,
    /// `tcp_rcvbuf` in bytes.
    pub tcp_rcvbuf: Option<u32>,
    /// `tcp_sndbuf` in bytes.
    pub tcp_sndbuf: Option<u32>,
    /// `tcp_linger` in seconds (AMPS default: enabled, 10 s).
    pub tcp_linger: Option<u32>,
    /// `tcp_keepalive` (default on).
    pub tcp_keepalive: Option<bool>,
    /// `ip_protocol_prefer` (default IPv4).
    pub ip_protocol_prefer: Option<IpPrefer>,
    /// `path` of the Unix socket (required for `unix`, refused otherwise); percent-escapes are
    /// not decoded (see [`percent_decode_into`]).
    pub path: Option<&'a str>,
    /// `pretty`: logon option (docs/protocol.md §6.1).
    pub pretty: bool,
}

/// What is wrong with a URI that is not a valid connection string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UriProblem {
    /// No `scheme://`.
    MissingScheme,
    /// No host.
    MissingHost,
    /// No `:port` (required for `tcp` and `tcps`).
    MissingPort,
    /// The port is not a number in 1..=65535.
    BadPort,
    /// `[` without a valid IPv6 address and `]`.
    BadIpv6,
    /// A host name with characters a host name cannot have.
    BadHost,
    /// A path that is not `/<protocol>` or `/<protocol>/<message type>`, or a legacy protocol
    /// given a message type.
    BadPath,
    /// A bad `%` escape.
    BadEscape,
    /// A query item that is not `key=value`.
    BadQuery,
    /// The decode buffer is too small.
    BufferTooSmall,
}

/// Which transport option an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptionName {
    /// `bind`.
    Bind,
    /// `tcp_nodelay`.
    TcpNodelay,
    /// `tcp_rcvbuf`.
    TcpRcvbuf,
    /// `tcp_sndbuf`.
    TcpSndbuf,
    /// `tcp_linger`.
    TcpLinger,
    /// `tcp_keepalive`.
    TcpKeepalive,
    /// `ip_protocol_prefer`.
    IpProtocolPrefer,
    /// `path`.
    Path,
    /// `pretty`.
    Pretty,
    /// A name this client does not know.
    Unknown,
}

/// What is wrong with a transport option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptionProblem {
    /// Not an option this client knows.
    Unknown,
    /// The value does not parse for this option.
    BadValue,
    /// Given twice.
    Duplicate,
    /// Not valid for this transport (e.g. `path` on `tcp`).
    NotForTransport,
    /// Required but absent (`path` on `unix`).
    Missing,
}

/// A connection string that cannot be used (Python client: InvalidUriException,
/// TransportTypeException, InvalidTransportOptionsException).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UriError {
    /// Not a well-formed connection string.
    InvalidUri {
        /// What is wrong.
        problem: UriProblem,
        /// Byte offset in the URI.
        at: usize,
    },
    /// The scheme is not `tcp`, `tcps` or `unix`.
    UnknownTransport,
    /// An option or option value is invalid.
    InvalidTransportOption {
        /// Which option.
        option: OptionName,
        /// What is wrong.
        problem: OptionProblem,
        /// Byte offset of the option in the URI.
        at: usize,
    },
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UriError::InvalidUri { problem, at } => {
                write!(f, "invalid URI at byte {at}: {problem:?}")
            }
            UriError::UnknownTransport => {
                f.write_str("unknown transport type (expected tcp, tcps or unix)")
            }
            UriError::InvalidTransportOption {
                option,
                problem,
                at,
            } => {
                write!(
                    f,
                    "invalid transport option {option:?} at byte {at}: {problem:?}"
                )
            }
        }
    }
}

impl core::error::Error for UriError {}

/// A parsed connection string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The scheme.
    pub transport: Transport,
    /// User name (percent-escapes not decoded).
    pub user: Option<&'a str>,
    /// Password, if given after `user:`.
    pub password: Option<Secret<'a>>,
    /// Host.
    pub host: Host<'a>,
    /// Port (0 when absent on `unix`, where host and port are ignored).
    pub port: u16,
    /// Protocol from the path (`amps` when the path is empty).
    pub protocol: Protocol<'a>,
    /// Message type from `/amps/<type>`.
    pub message_type: Option<&'a str>,
    /// Validated transport options.
    pub options: TransportOptions<'a>,
}

fn invalid(problem: UriProblem, at: usize) -> UriError {
    UriError::InvalidUri { problem, at }
}

fn bad_opt(option: OptionName, problem: OptionProblem, at: usize) -> UriError {
    UriError::InvalidTransportOption {
        option,
        problem,
        at,
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        _ if v.eq_ignore_ascii_case("true") || v == "1" || v.eq_ignore_ascii_case("yes") => {
            Some(true)
        }
        _ if v.eq_ignore_ascii_case("false") || v == "0" || v.eq_ignore_ascii_case("no") => {
            Some(false)
        }
        _ => None,
    }
}

fn parse_bind(v: &str) -> Option<SocketAddr> {
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Some(sa);
    }
    let ip = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

impl<'a> Uri<'a> {
    /// Parse a connection string.
    pub fn parse(uri: &'a str) -> Result<Uri<'a>, UriError> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or(invalid(UriProblem::MissingScheme, 0))?;
        let transport = match scheme {
            s if s.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            s if s.eq_ignore_ascii_case("tcps") => Transport::Tcps,
            s if s.eq_ignore_ascii_case("unix") => Transport::Unix,
            "" => return Err(invalid(UriProblem::MissingScheme, 0)),
            _ => return Err(UriError::UnknownTransport),
        };
        let base = scheme.len() + 3;
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);

        // userinfo: the last '@' separates it from the host (passwords may contain '@' only
        // percent-encoded, but be lenient).
        let (userinfo, hostport, host_at) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..], base + i + 1),
            None => (None, authority, base),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                check_escapes(ui, base)?;
                match ui.split_once(':') {
                    Some((u, p)) => ((!u.is_empty()).then_some(u), Some(Secret(p))),
                    None => ((!ui.is_empty()).then_some(ui), None),
                }
            }
        };

        let (host, port) = parse_host_port(hostport, host_at, transport)?;

        let (path, query, query_at) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q), base + auth_end + p.len() + 1),
            None => (tail, None, 0),
        };
        let (protocol, message_type) = parse_path(path, base + auth_end)?;

        let mut options = TransportOptions::default();
        if let Some(q) = query {
            parse_query(q, query_at, transport, &mut options)?;
        }
        if transport == Transport::Unix && options.path.is_none() {
            return Err(bad_opt(OptionName::Path, OptionProblem::Missing, uri.len()));
        }
        Ok(Uri {
            transport,
            user,
            password,
            host,
            port,
            protocol,
            message_type,
            options,
        })
    }
}

fn check_escapes(s: &str, at: usize) -> Result<(), UriError> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return Err(invalid(UriProblem::BadEscape, at + i));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn parse_host_port(hp: &str, at: usize, transport: Transport) -> Result<(Host<'_>, u16), UriError> {
    let (host_str, port_str) = if let Some(v6) = hp.strip_prefix('[') {
        let close = v6.find(']').ok_or(invalid(UriProblem::BadIpv6, at))?;
        let addr = &v6[..close];
        let after = &v6[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(invalid(UriProblem::BadPort, at + close + 2)),
        };
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| invalid(UriProblem::BadIpv6, at + 1))?;
        (Host::Ipv6(ip), port)
    } else {
        let (h, p) = match hp.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        };
        if h.is_empty() {
            return Err(invalid(UriProblem::MissingHost, at));
        }
        let host = match h.parse::<Ipv4Addr>() {
            Ok(ip) => Host::Ipv4(ip),
            Err(_) => {
                let valid = h
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
                if !valid {
                    return Err(invalid(UriProblem::BadHost, at));
                }
                Host::Name(h)
            }
        };
        (host, p)
    };
    let port_at = at + hp.len() - port_str.map_or(0, str::len);
    let port = match port_str {
        Some(p) => {
            let n: u32 = p
                .parse()
                .map_err(|_| invalid(UriProblem::BadPort, port_at))?;
            match u16::try_from(n) {
                Ok(n) if n > 0 || transport == Transport::Unix => n,
                _ => return Err(invalid(UriProblem::BadPort, port_at)),
            }
        }
        None if transport == Transport::Unix => 0,
        None => return Err(invalid(UriProblem::MissingPort, at + hp.len())),
    };
    Ok((host_str, port))
}

fn parse_path(path: &str, at: usize) -> Result<(Protocol<'_>, Option<&str>), UriError> {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        return Ok((Protocol::Amps, None));
    }
    let p = p
        .strip_prefix('/')
        .ok_or(invalid(UriProblem::BadPath, at))?;
    let mut parts = p.split('/');
    let proto = parts.next().unwrap_or("");
    let mt = parts.next();
    if parts.next().is_some() || proto.is_empty() || mt == Some("") {
        return Err(invalid(UriProblem::BadPath, at));
    }
    let protocol = match proto {
        "amps" => Protocol::Amps,
        "fix" => Protocol::Fix,
        "nvfix" => Protocol::Nvfix,
        "xml" => Protocol::Xml,
        other => Protocol::Other(other),
    };
    if protocol.is_legacy() && mt.is_some() {
        return Err(invalid(UriProblem::BadPath, at + 1 + proto.len()));
    }
    Ok((protocol, mt))
}

fn parse_query<'a>(
    q: &'a str,
    base: usize,
    transport: Transport,
    o: &mut TransportOptions<'a>,
) -> Result<(), UriError> {
    let mut seen = 0u16;
    let mut at = base;
    for item in q.split('&') {
        let item_at = at;
        at += item.len() + 1;
        if item.is_empty() {
            continue;
        }
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        let name = match k {
            "bind" => OptionName::Bind,
            "tcp_nodelay" => OptionName::TcpNodelay,
            "tcp_rcvbuf" => OptionName::TcpRcvbuf,
            "tcp_sndbuf" => OptionName::TcpSndbuf,
            "tcp_linger" => OptionName::TcpLinger,
            "tcp_keepalive" => OptionName::TcpKeepalive,
            "ip_protocol_prefer" => OptionName::IpProtocolPrefer,
            "path" => OptionName::Path,
            "pretty" => OptionName::Pretty,
            _ => {
                return Err(bad_opt(
                    OptionName::Unknown,
                    OptionProblem::Unknown,
                    item_at,
                ));
            }
        };
        let bit = 1u16 << (name as u16);
        if seen & bit != 0 {
            return Err(bad_opt(name, OptionProblem::Duplicate, item_at));
        }
        seen |= bit;
        let bad = || bad_opt(name, OptionProblem::BadValue, item_at);
        // `pretty` is a flag; everything else needs a value.
        let val = match (name, v) {
            (OptionName::Pretty, None) => "true",
            (_, Some(v)) if !v.is_empty() => v,
            _ => return Err(bad()),
        };
        let tcp_only = !matches!(name, OptionName::Path | OptionName::Pretty);
        if (tcp_only && transport == Transport::Unix)
            || (name == OptionName::Path && transport != Transport::Unix)
        {
            return Err(bad_opt(name, OptionProblem::NotForTransport, item_at));
        }
        let num = || val.parse::<u32>().map_err(|_| bad());
        match name {
            OptionName::Bind => o.bind = Some(parse_bind(val).ok_or_else(bad)?),
            OptionName::TcpNodelay => o.tcp_nodelay = Some(parse_bool(val).ok_or_else(bad)?),
            OptionName::TcpKeepalive => o.tcp_keepalive = Some(parse_bool(val).ok_or_else(bad)?),
            OptionName::TcpRcvbuf => o.tcp_rcvbuf = Some(num()?),
            OptionName::TcpSndbuf => o.tcp_sndbuf = Some(num()?),
            OptionName::TcpLinger => o.tcp_linger = Some(num()?),
            OptionName::IpProtocolPrefer => {
                o.ip_protocol_prefer = Some(match val {
                    v if v.eq_ignore_ascii_case("ipv4") => IpPrefer::Ipv4,
                    v if v.eq_ignore_ascii_case("ipv6") => IpPrefer::Ipv6,
                    _ => return Err(bad()),
                });
            }
            OptionName::Path => {
                check_escapes(val, item_at).map_err(|_| bad())?;
                o.path = Some(val);
            }
            OptionName::Pretty => o.pretty = parse_bool(val).ok_or_else(bad)?,
            OptionName::Unknown => return Err(bad_opt(name, OptionProblem::Unknown, item_at)),
        }
    }
    Ok(())
}

/// Decode `%XX` escapes of `s` into `buf`. `at` is the offset of `s` in the URI, for errors.
pub fn percent_decode_into<'b>(s: &str, buf: &'b mut [u8], at: usize) -> Result<&'b str, UriError> {
    let b = s.as_bytes();
    let (mut i, mut o) = (0, 0);
    while let Some(&byte) = b.get(i) {
        let c = if byte == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok());
            let v = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(invalid(UriProblem::BadEscape, at + i))?;
            i += 3;
            v
        } else {
            i += 1;
            byte
        };
        *buf.get_mut(o)
            .ok_or(invalid(UriProblem::BufferTooSmall, at))? = c;
        o += 1;
    }
    core::str::from_utf8(buf.get(..o).unwrap_or(&[]))
        .map_err(|_| invalid(UriProblem::BadEscape, at))
}

/// Writes the URI back with the password masked as `****`.
impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.transport.scheme())?;
        if let Some(u) = self.user {
            f.write_str(u)?;
        }
        if self.password.is_some() {
            f.write_str(":****")?;
        }
        if self.user.is_some() || self.password.is_some() {
            f.write_str("@")?;
        }
        write!(f, "{}:{}/{}", self.host, self.port, self.protocol.name())?;
        if let Some(mt) = self.message_type {
            write!(f, "/{mt}")?;
        }
        let o = &self.options;
        let mut sep = '?';
        let mut put = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| {
            let r = write!(f, "{sep}{k}={v}");
            sep = '&';
            r
        };
        if let Some(v) = o.bind {
            put(f, "bind", &v)?;
        }
        if let Some(v) = o.tcp_nodelay {
            put(f, "tcp_nodelay", &v)?;
        }
        if let Some(v) = o.tcp_rcvbuf {
            put(f, "tcp_rcvbuf", &v)?;
        }
        if let Some(v) = o.tcp_sndbuf {
            put(f, "tcp_sndbuf", &v)?;
        }
        if let Some(v) = o.tcp_linger {
            put(f, "tcp_linger", &v)?;
        }
        if let Some(v) = o.tcp_keepalive {
            put(f, "tcp_keepalive", &v)?;
        }
        if let Some(v) = o.ip_protocol_prefer {
            put(
                f,
                "ip_protocol_prefer",
                &if v == IpPrefer::Ipv6 { "ipv6" } else { "ipv4" },
            )?;
        }
        if let Some(v) = o.path {
            put(f, "path", &v)?;
        }
        if o.pretty {
            put(f, "pretty", &true)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uri")
            .field("transport", &self.transport)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("protocol", &self.protocol)
            .field("message_type", &self.message_type)
            .field("options", &self.options)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_tcp_uri() {
        let u = Uri::parse(
            "tcp://JohnDoe:s3cr%40t@localhost:9007/amps/json?tcp_nodelay=true&tcp_sndbuf=1048576&tcp_rcvbuf=65536&tcp_linger=5&tcp_keepalive=false&ip_protocol_prefer=ipv6&bind=127.0.0.1:0&pretty",
        )
        .unwrap();
        assert_eq!(u.transport, Transport::Tcp);
        assert_eq!(u.user, Some("JohnDoe"));
        assert_eq!(u.password.map(|p| p.expose()), Some("s3cr%40t"));
        let mut buf = [0u8; 16];
        assert_eq!(u.password.unwrap().decode_into(&mut buf), Ok("s3cr@t"));
        assert_eq!((u.host, u.port), (Host::Name("localhost"), 9007));
        assert_eq!((u.protocol, u.message_type), (Protocol::Amps, Some("json")));
        let o = u.options;
        assert_eq!(o.tcp_nodelay, Some(true));
        assert_eq!(o.tcp_sndbuf, Some(1_048_576));
        assert_eq!(o.tcp_rcvbuf, Some(65536));
        assert_eq!(o.tcp_linger, Some(5));
        assert_eq!(o.tcp_keepalive, Some(false));
        assert_eq!(o.ip_protocol_prefer, Some(IpPrefer::Ipv6));
        assert_eq!(o.bind, Some("127.0.0.1:0".parse().unwrap()));
        assert!(o.pretty);
    }

    #[test]
    fn hosts_ipv4_ipv6_names() {
        assert_eq!(
            Uri::parse("tcp://10.0.0.1:1/amps/json").unwrap().host,
            Host::Ipv4(Ipv4Addr::new(10, 0, 0, 1))
        );
        let u = Uri::parse("tcps://[::1]:9443/amps/json").unwrap();
        assert_eq!(
            (u.transport, u.host, u.port),
            (Transport::Tcps, Host::Ipv6(Ipv6Addr::LOCALHOST), 9443)
        );
        assert_eq!(
            Uri::parse("tcp://JohnDoe:@h:1/amps")
                .unwrap()
                .password
                .map(|p| p.expose()),
            Some("")
        );
        assert_eq!(Uri::parse("tcp://h:1/amps").unwrap().message_type, None);
        assert_eq!(Uri::parse("tcp://h:1").unwrap().protocol, Protocol::Amps);
    }

    #[test]
    fn legacy_protocols_take_no_message_type() {
        assert_eq!(Uri::parse("tcp://h:1/fix").unwrap().protocol, Protocol::Fix);
        assert_eq!(
            Uri::parse("tcp://h:1/nvfix/").unwrap().protocol,
            Protocol::Nvfix
        );
        assert!(matches!(
            Uri::parse("tcp://h:1/xml/json"),
            Err(UriError::InvalidUri {
                problem: UriProblem::BadPath,
                ..
            })
        ));
    }

    #[test]
    fn unix_needs_path_and_ignores_host() {
        let u = Uri::parse("unix://localhost:0/amps/json?path=/tmp/amps.sock").unwrap();
        assert_eq!(
            (u.transport, u.options.path),
            (Transport::Unix, Some("/tmp/amps.sock"))
        );
        assert!(matches!(
            Uri::parse("unix://localhost:0/amps/json"),
            Err(UriError::InvalidTransportOption {
                option: OptionName::Path,
                problem: OptionProblem::Missing,
                ..
            })
        ));
        assert!(matches!(
            Uri::parse("tcp://h:1/amps/json?path=/x"),
            Err(UriError::InvalidTransportOption {
                option: OptionName::Path,
                problem: OptionProblem::NotForTransport,
                ..
            })
        ));
        assert!(matches!(
            Uri::parse("unix://h:0/amps?path=/x&tcp_nodelay=true"),
            Err(UriError::InvalidTransportOption {
                problem: OptionProblem::NotForTransport,
                ..
            })
        ));
    }

    #[test]
    fn errors_are_distinguished() {
        use OptionProblem as P;
        assert_eq!(
            Uri::parse("udp://h:1/amps/json"),
            Err(UriError::UnknownTransport)
        );
        for (uri, problem) in [
            ("localhost:9007", UriProblem::MissingScheme),
            ("tcp://:9007/amps", UriProblem::MissingHost),
            ("tcp://h/amps", UriProblem::MissingPort),
            ("tcp://h:0/amps", UriProblem::BadPort),
            ("tcp://h:70000/amps", UriProblem::BadPort),
            ("tcp://h:x/amps", UriProblem::BadPort),
            ("tcp://[::1/amps", UriProblem::BadIpv6),
            ("tcp://[zz]:1/amps", UriProblem::BadIpv6),
            ("tcp://h h:1/amps", UriProblem::BadHost),
            ("tcp://h:1/amps/json/x", UriProblem::BadPath),
            ("tcp://u:p%zz@h:1/amps", UriProblem::BadEscape),
        ] {
            assert!(
                matches!(Uri::parse(uri), Err(UriError::InvalidUri { problem: p, .. }) if p == problem),
                "{uri}: {:?}",
                Uri::parse(uri)
            );
        }
        for (uri, problem) in [
            ("tcp://h:1/amps?bogus=1", P::Unknown),
            ("tcp://h:1/amps?tcp_nodelay=maybe", P::BadValue),
            ("tcp://h:1/amps?tcp_sndbuf=-1", P::BadValue),
            ("tcp://h:1/amps?tcp_sndbuf=", P::BadValue),
            ("tcp://h:1/amps?bind=nothost", P::BadValue),
            ("tcp://h:1/amps?ip_protocol_prefer=ipv5", P::BadValue),
            ("tcp://h:1/amps?tcp_linger=1&tcp_linger=2", P::Duplicate),
        ] {
            assert!(
                matches!(Uri::parse(uri), Err(UriError::InvalidTransportOption { problem: p, .. }) if p == problem),
                "{uri}: {:?}",
                Uri::parse(uri)
            );
        }
        // The offset points at the offending option.
        let Err(UriError::InvalidTransportOption { at, .. }) =
            Uri::parse("tcp://h:1/amps?tcp_nodelay=1&x=2")
        else {
            panic!()
        };
        assert_eq!(&"tcp://h:1/amps?tcp_nodelay=1&x=2"[at..], "x=2");
    }

    #[test]
    fn password_never_shows() {
        let u = Uri::parse("tcps://alice:hunter2@h:1/amps/json?tcp_nodelay=true").unwrap();
        let shown = format!("{u} {u:?} {:?}", u.password);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            u.to_string(),
            "tcps://alice:****@h:1/amps/json?tcp_nodelay=true"
        );
    }
}

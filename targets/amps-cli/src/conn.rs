//! Connecting: the connection string from spark's flags or `--uri`, connect and logon, and
//! the failures that end a command with their exit codes.

use std::fmt;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use amps::blocking::{Client, ClientBuilder};
use amps::core::codec::{Message as Frame, Scratch, split_frame};
use amps::core::uri::Uri;
use amps::{Direction, Error, ErrorKind};

use crate::args::Conn;

/// Why a command ended without success; each kind has its exit code (see `--help`).
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command failed on the server, or timed out (exit 1).
    Command(String),
    /// Invalid flags or values found after parsing (exit 2).
    Usage(String),
    /// Connecting or logging on failed, or the connection was lost (exit 3).
    Connection(String),
    /// The input file or standard output failed (exit 4).
    Io(String),
}

impl Failure {
    /// The process exit code.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Failure::Command(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Connection(_) => 3,
            Failure::Io(_) => 4,
        }
    }

    /// The exit code as the process returns it.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// A failed client call: connection kinds are connection failures, the rest are command
    /// failures, with the server's reason when it gave one.
    pub(crate) fn from_client(what: &str, e: &Error) -> Failure {
        let text = describe(what, e);
        match e.kind() {
            ErrorKind::Disconnected | ErrorKind::ConnectionRefused | ErrorKind::Stream => {
                Failure::Connection(text)
            }
            ErrorKind::InvalidUri
            | ErrorKind::TransportType
            | ErrorKind::InvalidTransportOptions => Failure::Usage(text),
            _ => Failure::Command(text),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Command(s) | Failure::Usage(s) | Failure::Connection(s) | Failure::Io(s) => {
                f.write_str(s)
            }
        }
    }
}

/// `what failed: Kind: message (server: reason)`.
fn describe(what: &str, e: &Error) -> String {
    match e.reason() {
        Some(r) if !e.message().contains(r) => format!("{what} failed: {e} (server: {r})"),
        _ => format!("{what} failed: {e}"),
    }
}

/// The connection string a command uses: `--uri` as given, `-server` as given when it is
/// already a URI, else `tcp://<server>/<proto>/<type>` (legacy protocols take no type).
pub(crate) fn uri_of(conn: &Conn) -> Result<String, Failure> {
    if let Some(u) = &conn.uri {
        return Ok(u.clone());
    }
    let server = conn
        .server
        .as_deref()
        .ok_or_else(|| Failure::Usage("-server or --uri is required".into()))?;
    Ok(server_uri(server, &conn.proto, &conn.message_type))
}

/// `[user[:password]@]host[:port]` (or a URI) with a protocol and message type.
pub(crate) fn server_uri(server: &str, proto: &str, message_type: &str) -> String {
    if server.contains("://") {
        return server.to_owned();
    }
    let host_part = server.rsplit('@').next().unwrap_or(server);
    let has_port = if let Some(rest) = host_part.strip_prefix('[') {
        rest.split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'))
    } else {
        host_part.contains(':')
    };
    let port = if has_port { "" } else { ":9007" };
    let legacy = matches!(proto, "fix" | "nvfix" | "xml");
    if legacy || message_type.is_empty() {
        format!("tcp://{server}{port}/{proto}")
    } else {
        format!("tcp://{server}{port}/{proto}/{message_type}")
    }
}

/// A client name unique enough for a command-line tool.
fn default_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("amps-cli-{}-{nanos:09}", std::process::id())
}

/// A connected, logged-on client, and the server version the logon ack reported.
pub(crate) struct Connected {
    /// The client.
    pub(crate) client: Client,
    /// The connection string with the password masked.
    pub(crate) shown: String,
    /// The server's `version`, when the logon ack had one.
    pub(crate) server_version: Option<String>,
}

/// Connect to `uri` and log on. `tune` adjusts the builder (ack batching, ...).
pub(crate) fn connect(
    conn: &Conn,
    uri: &str,
    tune: impl FnOnce(ClientBuilder<Client>) -> ClientBuilder<Client>,
) -> Result<Connected, Failure> {
    let shown = Uri::parse(uri)
        .map_err(|e| Failure::Usage(format!("invalid connection string: {e}")))?
        .to_string();
    let name = conn.name.clone().unwrap_or_else(default_name);
    let version = Arc::new(Mutex::new(VersionProbe::default()));
    let probe = Arc::clone(&version);
    let mut builder = Client::builder(name).transport_filter(move |dir, bytes| {
        if dir == Direction::Incoming
            && let Ok(mut p) = probe.lock()
        {
            p.feed(bytes);
        }
    });
    if let Some(t) = conn.timeout {
        builder = builder
            .connect_timeout(t)
            .logon_timeout(t)
            .command_timeout(t);
    }
    let client = tune(builder)
        .build()
        .map_err(|e| Failure::Usage(describe("creating the client", &e)))?;
    client.connect(uri).map_err(|e| {
        let f = Failure::from_client(&format!("connecting to {shown}"), &e);
        match f {
            Failure::Command(s) => Failure::Connection(s),
            other => other,
        }
    })?;
    client
        .logon()
        .map_err(|e| Failure::Connection(describe(&format!("logon to {shown}"), &e)))?;
    let server_version = version.lock().ok().and_then(|mut p| p.version.take());
    Ok(Connected {
        client,
        shown,
        server_version,
    })
}

/// Reads the server's `version` from the first frame the server sends (the logon ack): the
/// client API does not expose the logon ack, so the transport filter sees it go by.
#[derive(Default)]
struct VersionProbe {
    buf: Vec<u8>,
    done: bool,
    version: Option<String>,
}

impl VersionProbe {
    fn feed(&mut self, bytes: &[u8]) {
        if self.done {
            return;
        }
        self.buf.extend_from_slice(bytes);
        match split_frame(&self.buf, 1 << 20) {
            Ok(Some((frame, _))) => {
                let mut scratch = vec![0u8; frame.len()];
                if let Ok(m) = Frame::parse(frame, &mut Scratch::new(&mut scratch)) {
                    self.version = m.header().version().map(str::to_owned);
                }
                self.done = true;
                self.buf = Vec::new();
            }
            Ok(None) if self.buf.len() < 1 << 20 => {}
            _ => {
                self.done = true;
                self.buf = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_flags_make_connection_strings() {
        assert_eq!(server_uri("h:1", "amps", "json"), "tcp://h:1/amps/json");
        assert_eq!(server_uri("h", "amps", "nvfix"), "tcp://h:9007/amps/nvfix");
        assert_eq!(
            server_uri("u:pw@h:1", "amps", "json"),
            "tcp://u:pw@h:1/amps/json"
        );
        assert_eq!(
            server_uri("u:pw@h", "amps", "json"),
            "tcp://u:pw@h:9007/amps/json"
        );
        assert_eq!(
            server_uri("[::1]:5", "amps", "json"),
            "tcp://[::1]:5/amps/json"
        );
        assert_eq!(
            server_uri("[::1]", "amps", "json"),
            "tcp://[::1]:9007/amps/json"
        );
        assert_eq!(server_uri("h:1", "fix", "json"), "tcp://h:1/fix");
        assert_eq!(
            server_uri("tcps://h:1/amps/json", "amps", "xml"),
            "tcps://h:1/amps/json"
        );
    }

    #[test]
    fn passwords_are_masked_in_what_is_shown() {
        let shown = Uri::parse("tcp://alice:s3cret@h:1/amps/json")
            .unwrap()
            .to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }

    #[test]
    fn failures_have_distinct_exit_codes() {
        let codes: Vec<u8> = [
            Failure::Command(String::new()),
            Failure::Usage(String::new()),
            Failure::Connection(String::new()),
            Failure::Io(String::new()),
        ]
        .iter()
        .map(Failure::code)
        .collect();
        assert_eq!(codes, [1, 2, 3, 4]);
        let e = Error::new(ErrorKind::BadFilter, "bad");
        assert!(matches!(
            Failure::from_client("sow", &e),
            Failure::Command(_)
        ));
        let e = Error::new(ErrorKind::Disconnected, "gone");
        assert!(matches!(
            Failure::from_client("sow", &e),
            Failure::Connection(_)
        ));
    }

    #[test]
    fn the_version_probe_reads_the_first_frame_in_pieces() {
        let ack = br#"{"c":"ack","a":"processed","status":"success","version":"5.3.5.0"}"#;
        let mut frame = (ack.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(ack);
        let mut p = VersionProbe::default();
        let (a, b) = frame.split_at(7);
        p.feed(a);
        assert_eq!(p.version, None);
        p.feed(b);
        assert_eq!(p.version.as_deref(), Some("5.3.5.0"));
    }
}

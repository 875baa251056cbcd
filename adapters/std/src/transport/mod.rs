//! Transports (seeds: "Connection strings"): `tcp`, `tcps` (TLS) and `unix`, one byte stream
//! each. A connection has a reader thread that only moves bytes from the socket into the I/O
//! thread's inbox (std offers no way to wait on a socket and a channel at once); everything
//! else, writing included, happens on the I/O thread.

pub(crate) mod tcp;
pub(crate) mod tls;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use amps_core::uri::{Transport, Uri};
use rustls::{ClientConfig, ClientConnection};

use crate::client::Shared;
use crate::error::{Error, Result};

/// How long one write may block before the I/O thread turns to other work (inbound bytes,
/// timers) and tries again; a server that stops reading never freezes the client's heartbeats.
const WRITE_SLICE: Duration = Duration::from_millis(20);

/// Which way bytes travel, for the transport filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Bytes to the server (before encryption).
    Outgoing,
    /// Bytes from the server (after decryption). Not aligned to frames.
    Incoming,
}

/// A transport filter (seeds: `set_transport_filter`): sees the raw bytes of the connection
/// both ways, length prefixes included. It runs on the I/O thread: it must be quick and must
/// not call the client.
pub type TransportFilter = dyn Fn(Direction, &[u8]) + Send + Sync;

/// A connected socket.
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            #[cfg(unix)]
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }
    fn shutdown(&self) {
        // Already-closed sockets report NotConnected; nothing to do about it.
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            #[cfg(unix)]
            Stream::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// True for the errors a write with a timeout reports when the socket stayed full.
pub(crate) fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Open the transport `uri` names. `tls` is the `tcps` configuration (the default one is built
/// on first use).
pub(crate) fn open(
    uri: &Uri<'_>,
    tls: &mut Option<Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<(Stream, Option<ClientConnection>)> {
    let shown = uri.to_string();
    match uri.transport {
        Transport::Tcp => {
            let s = tcp::connect(&uri.host, uri.port, &uri.options, timeout)
                .map_err(|e| Error::connect(&shown, e))?;
            Ok((Stream::Tcp(s), None))
        }
        Transport::Tcps => {
            let config = match tls {
                Some(c) => c.clone(),
                None => tls.insert(tls::default_client_config()?).clone(),
            };
            let name = tls::server_name(&uri.host)?;
            let mut s = tcp::connect(&uri.host, uri.port, &uri.options, timeout)
                .map_err(|e| Error::connect(&shown, e))?;
            s.set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .map_err(|e| Error::connect(&shown, e))?;
            let conn =
                tls::handshake(config, name, &mut s).map_err(|e| Error::connect(&shown, e))?;
            Ok((Stream::Tcp(s), Some(conn)))
        }
        #[cfg(unix)]
        Transport::Unix => {
            // Seeds: host and port are ignored; the `path` option names the socket.
            let raw = uri.options.path.unwrap_or("");
            let mut buf = vec![0u8; raw.len()];
            let path = amps_core::uri::percent_decode_into(raw, &mut buf, 0)?;
            let s = UnixStream::connect(path).map_err(|e| Error::connect(&shown, e))?;
            Ok((Stream::Unix(s), None))
        }
        #[cfg(not(unix))]
        Transport::Unix => Err(Error::new(
            crate::ErrorKind::TransportType,
            "unix sockets are not available on this platform",
        )),
        _ => Err(Error::new(
            crate::ErrorKind::TransportType,
            "unknown transport",
        )),
    }
}

/// An open connection: the socket for writing, TLS state, and the reader thread.
pub(crate) struct Conn {
    stream: Stream,
    tls: Option<Box<ClientConnection>>,
    /// Which connection this is; the reader tags what it sends with it.
    pub(crate) conn_id: u64,
    reader: Option<JoinHandle<()>>,
}

impl Conn {
    /// Start the reader thread for `stream`.
    pub(crate) fn start(
        stream: Stream,
        tls: Option<ClientConnection>,
        conn_id: u64,
        shared: &Arc<Shared>,
    ) -> io::Result<Conn> {
        stream.set_timeouts(None, Some(WRITE_SLICE))?;
        let mut rd = stream.try_clone()?;
        let shared = shared.clone();
        let reader = std::thread::Builder::new()
            .name(format!("amps-read-{}", shared.name))
            .spawn(move || read_loop(&mut rd, conn_id, &shared))?;
        Ok(Conn {
            stream,
            tls: tls.map(Box::new),
            conn_id,
            reader: Some(reader),
        })
    }

    /// Whether bytes from the reader need decrypting.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Decrypt bytes the reader read (TLS only). Returns false once the peer closed TLS.
    pub(crate) fn decrypt(&mut self, cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
        match &mut self.tls {
            Some(t) => tls::decrypt(t, cipher, plain),
            None => {
                plain.extend_from_slice(cipher);
                Ok(true)
            }
        }
    }

    /// Write plaintext. Returns how much was taken; `Err` WouldBlock/TimedOut when the socket
    /// stayed full for the write slice.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.stream.write(data),
            Some(t) => {
                Self::flush_tls(t, &mut self.stream)?;
                let n = t.writer().write(data)?;
                // Push out what fits now; the rest goes with the next write or flush.
                match Self::flush_tls(t, &mut self.stream) {
                    Err(e) if is_would_block(&e) => Ok(n),
                    other => other.map(|()| n),
                }
            }
        }
    }

    /// Write TLS records still buffered (after a write that the socket did not fully take, or
    /// a TLS message of the library's own). Ok when nothing is left.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            None => Ok(()),
            Some(t) => Self::flush_tls(t, &mut self.stream),
        }
    }

    fn flush_tls(t: &mut ClientConnection, s: &mut Stream) -> io::Result<()> {
        while t.wants_write() {
            t.write_tls(s)?;
        }
        Ok(())
    }

    /// Close the socket; the reader thread sees the end and exits. Returns its handle.
    pub(crate) fn close(mut self) -> Option<JoinHandle<()>> {
        if let Some(t) = &mut self.tls {
            t.send_close_notify();
            let _ = Self::flush_tls(t, &mut self.stream);
        }
        self.stream.shutdown();
        self.reader.take()
    }
}

fn read_loop(s: &mut Stream, conn_id: u64, shared: &Shared) {
    loop {
        let mut buf = shared.inbox.read_buf();
        match s.read(&mut buf) {
            Ok(0) => {
                shared.inbox.push_closed(conn_id, None);
                return;
            }
            Ok(n) => {
                if shared.inbox.push_bytes(conn_id, buf, n).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => shared.inbox.recycle_read(buf),
            Err(e) => {
                shared.inbox.push_closed(conn_id, Some(e));
                return;
            }
        }
    }
}

//! The socket: `tcp`, `tcps` (rustls) and `unix` connections opened as the driver asks, and a
//! reader thread per connection that only moves bytes from the socket into the I/O thread's
//! inbound queue (std offers no way to wait on a socket and a condition at once). Writing and
//! TLS happen on the I/O thread.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use amps_core::uri::{Transport, Uri};
#[cfg(feature = "tls")]
use amps_host::net::server_name;
use amps_host::net::{connect_tcp, unix_path};
use amps_host::{Error, ErrorKind, OpenRequest, Result, Signal};
#[cfg(feature = "tls")]
use rustls::ClientConnection;

/// TLS state of a connection (nothing without the `tls` feature).
#[cfg(feature = "tls")]
type Tls = Option<Box<ClientConnection>>;
#[cfg(not(feature = "tls"))]
type Tls = Option<std::convert::Infallible>;

/// How long one write may block before the I/O thread turns to other work (inbound bytes,
/// timers) and tries again; a server that stops reading never freezes the client's heartbeats.
const WRITE_SLICE: Duration = Duration::from_millis(20);
/// Size of the reader's buffers.
const READ_BYTES: usize = 64 * 1024;
/// Inbound bytes read and not yet given to the driver before the reader waits.
const INBOUND_BYTES: usize = 8 << 20;
const SPARE_READS: usize = 32;

/// A connected socket.
enum Stream {
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

/// Something the reader of connection `conn_id` saw.
pub(crate) enum In {
    Bytes {
        conn_id: u64,
        buf: Vec<u8>,
        len: usize,
    },
    /// The connection ended (`None`: orderly close).
    Closed {
        conn_id: u64,
        error: Option<io::Error>,
    },
}

struct InState {
    items: VecDeque<In>,
    bytes: usize,
    closed: bool,
    spare: Vec<Vec<u8>>,
}

/// Bytes from the reader threads to the I/O thread, bounded (the reader waits, TCP pushes
/// back).
pub(crate) struct Inbound {
    state: Mutex<InState>,
    space: Condvar,
    signal: Arc<Signal>,
}

impl Inbound {
    pub(crate) fn new(signal: Arc<Signal>) -> Arc<Self> {
        Arc::new(Inbound {
            state: Mutex::new(InState {
                items: VecDeque::new(),
                bytes: 0,
                closed: false,
                spare: Vec::new(),
            }),
            space: Condvar::new(),
            signal,
        })
    }

    fn lock(&self) -> MutexGuard<'_, InState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, item: In) -> bool {
        let len = match &item {
            In::Bytes { len, .. } => *len,
            In::Closed { .. } => 0,
        };
        let mut st = self.lock();
        while !st.closed && st.bytes > 0 && st.bytes + len > INBOUND_BYTES {
            st = self.space.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.closed {
            return false;
        }
        st.bytes += len;
        st.items.push_back(item);
        drop(st);
        self.signal.wake();
        true
    }

    /// The oldest item, if any.
    pub(crate) fn pop(&self) -> Option<In> {
        self.lock().items.pop_front()
    }

    /// Put back an item the driver could not take all of yet.
    pub(crate) fn unpop(&self, item: In) {
        self.lock().items.push_front(item);
    }

    /// The I/O thread is done with `n` bytes (and the buffer that held them).
    pub(crate) fn release(&self, n: usize, buf: Option<Vec<u8>>) {
        let mut st = self.lock();
        st.bytes = st.bytes.saturating_sub(n);
        if let Some(b) = buf
            && b.len() == READ_BYTES
            && st.spare.len() < SPARE_READS
        {
            st.spare.push(b);
        }
        drop(st);
        self.space.notify_all();
    }

    fn read_buf(&self) -> Vec<u8> {
        self.lock()
            .spare
            .pop()
            .unwrap_or_else(|| vec![0; READ_BYTES])
    }

    /// Stop: readers waiting for room return.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.space.notify_all();
    }
}

/// An open connection: the socket for writing, TLS state, and the reader thread.
pub(crate) struct Conn {
    stream: Stream,
    tls: Tls,
    pub(crate) conn_id: u64,
    reader: Option<JoinHandle<()>>,
}

/// Open what `req` names and start its reader.
pub(crate) fn open(req: &OpenRequest, conn_id: u64, inbound: &Arc<Inbound>) -> Result<Conn> {
    let uri = Uri::parse(&req.uri)?;
    let shown = uri.to_string();
    let (stream, tls) = match uri.transport {
        Transport::Tcp => {
            let s = connect_tcp(&uri, req.timeout).map_err(|e| Error::connect(&shown, e))?;
            (Stream::Tcp(s), None)
        }
        #[cfg(feature = "tls")]
        Transport::Tcps => {
            let config = req.tls.rustls_config()?;
            let name = server_name(&uri.host)?;
            // Opening, handshake included, is bounded by one limit (as the async client's).
            let deadline = std::time::Instant::now() + req.timeout;
            let mut s = connect_tcp(&uri, req.timeout).map_err(|e| Error::connect(&shown, e))?;
            let mut tls = ClientConnection::new(config, name)
                .map_err(|e| Error::connect(&shown, io::Error::other(e)))?;
            while tls.is_handshaking() {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let timed_out = || Error::connect(&shown, io::ErrorKind::TimedOut.into());
                if left.is_zero() {
                    return Err(timed_out());
                }
                s.set_read_timeout(Some(left))
                    .and_then(|()| s.set_write_timeout(Some(left)))
                    .map_err(|e| Error::connect(&shown, e))?;
                tls.complete_io(&mut s).map_err(|e| {
                    if is_would_block(&e) {
                        timed_out()
                    } else {
                        Error::connect(&shown, e)
                    }
                })?;
            }
            (Stream::Tcp(s), Some(Box::new(tls)))
        }
        #[cfg(unix)]
        Transport::Unix => {
            let path = unix_path(&uri)?;
            let s = UnixStream::connect(path).map_err(|e| Error::connect(&shown, e))?;
            (Stream::Unix(s), None)
        }
        _ => {
            return Err(Error::new(
                ErrorKind::TransportType,
                "this transport is not available here",
            ));
        }
    };
    stream
        .set_timeouts(None, Some(WRITE_SLICE))
        .map_err(|e| Error::connect(&shown, e))?;
    let mut rd = stream.try_clone().map_err(|e| Error::connect(&shown, e))?;
    let inbound = inbound.clone();
    let reader = std::thread::Builder::new()
        .name("amps-read".to_owned())
        .spawn(move || read_loop(&mut rd, conn_id, &inbound))
        .map_err(|e| Error::connect(&shown, e))?;
    let mut conn = Conn {
        stream,
        tls,
        conn_id,
        reader: Some(reader),
    };
    // What the handshake left to send (a session ticket acknowledgement, ...).
    conn.flush().map_err(|e| Error::connect(&shown, e))?;
    Ok(conn)
}

impl Conn {
    /// Decrypt bytes the reader read (TLS only; plain bytes pass through). Returns false once
    /// the peer closed TLS.
    pub(crate) fn decrypt(&mut self, cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return decrypt(tls, cipher, plain);
        }
        plain.extend_from_slice(cipher);
        Ok(true)
    }

    /// Whether bytes from the reader need decrypting.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Write plaintext. Returns how much was taken; `Err` WouldBlock/TimedOut when the socket
    /// stayed full for the write slice.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(t) = &mut self.tls {
            flush_tls(t, &mut self.stream)?;
            let n = t.writer().write(data)?;
            // Push out what fits now; the rest goes with the next write or flush.
            return match flush_tls(t, &mut self.stream) {
                Err(e) if is_would_block(&e) => Ok(n),
                other => other.map(|()| n),
            };
        }
        self.stream.write(data)
    }

    /// Write TLS records still buffered. Ok when nothing is left.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(t) = &mut self.tls {
            return flush_tls(t, &mut self.stream);
        }
        Ok(())
    }

    /// Close the socket; the reader thread sees the end and exits. Returns its handle.
    pub(crate) fn close(mut self) -> Option<JoinHandle<()>> {
        #[cfg(feature = "tls")]
        if let Some(t) = &mut self.tls {
            t.send_close_notify();
            let _ = flush_tls(t, &mut self.stream);
        }
        self.stream.shutdown();
        self.reader.take()
    }
}

/// Decrypt `cipher` into `plain`. Returns false once the peer closed TLS.
#[cfg(feature = "tls")]
fn decrypt(tls: &mut ClientConnection, mut cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
    let mut open = true;
    while !cipher.is_empty() {
        let n = tls.read_tls(&mut cipher)?;
        tls.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        loop {
            let start = plain.len();
            plain.resize(start + 16 * 1024, 0);
            match tls.reader().read(&mut plain[start..]) {
                Ok(0) => {
                    plain.truncate(start);
                    open = false;
                    break;
                }
                Ok(k) => plain.truncate(start + k),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    plain.truncate(start);
                    break;
                }
                Err(e) => {
                    plain.truncate(start);
                    return Err(e);
                }
            }
        }
        if n == 0 && !cipher.is_empty() {
            // rustls refused input without making room: its buffer is full of undecodable
            // data, which `process_new_packets` would have reported.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS input stalled",
            ));
        }
    }
    Ok(open)
}

#[cfg(feature = "tls")]
fn flush_tls(t: &mut ClientConnection, s: &mut Stream) -> io::Result<()> {
    while t.wants_write() {
        t.write_tls(s)?;
    }
    Ok(())
}

fn read_loop(s: &mut Stream, conn_id: u64, inbound: &Inbound) {
    loop {
        let mut buf = inbound.read_buf();
        match s.read(&mut buf) {
            Ok(0) => {
                inbound.push(In::Closed {
                    conn_id,
                    error: None,
                });
                return;
            }
            Ok(len) => {
                if !inbound.push(In::Bytes { conn_id, buf, len }) {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => inbound.release(0, Some(buf)),
            Err(e) => {
                inbound.push(In::Closed {
                    conn_id,
                    error: Some(e),
                });
                return;
            }
        }
    }
}

//! The image's network: one in-memory connection at a time between the client (through
//! [`Connector`], amps-embassy's connect function) and the responder ([`Net::accept`]), with
//! ends implementing `embedded_io_async::{Read, Write}` the way embassy-net's `TcpSocket`
//! does: cancel-safe reads and writes, a read of 0 when the peer closed.
//!
//! The link can be cut ([`Net::set_up`]): bytes written then vanish in both directions (a
//! cable pulled: neither end notices until its heartbeat timeout) and connection attempts
//! fail until it is back.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use amps_core::session::ConnectRequest;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::waitqueue::WakerRegistration;
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

/// Bytes buffered in each direction.
pub const RING: usize = 2048;

/// One direction of the connection.
struct Dir {
    buf: heapless::Deque<u8, RING>,
    reader: WakerRegistration,
    writer: WakerRegistration,
}

impl Dir {
    const fn new() -> Self {
        Dir {
            buf: heapless::Deque::new(),
            reader: WakerRegistration::new(),
            writer: WakerRegistration::new(),
        }
    }

    fn wake_all(&mut self) {
        self.reader.wake();
        self.writer.wake();
    }
}

struct State {
    to_server: Dir,
    to_client: Dir,
    /// Number of the current connection; an end of an older one reads as closed.
    generation: u32,
    open: bool,
    up: bool,
    listening: bool,
    accepted: u32,
    acceptor: WakerRegistration,
}

/// The network: create one, then hand `&'static Net` to both sides.
pub struct Net {
    state: Mutex<CriticalSectionRawMutex, RefCell<State>>,
}

/// Connection attempts refused (link down, or the responder not listening).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// The peer closed the connection (or a newer one replaced it) while writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

impl core::fmt::Display for Closed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("connection closed")
    }
}

impl core::error::Error for Closed {}

impl embedded_io_async::Error for Closed {
    fn kind(&self) -> ErrorKind {
        ErrorKind::ConnectionReset
    }
}

/// Which side an end is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// One end of connection number `generation`.
pub struct End {
    net: &'static Net,
    generation: u32,
    side: Side,
}

impl Net {
    /// A network with the link up and nobody listening.
    pub const fn new() -> Self {
        Net {
            state: Mutex::new(RefCell::new(State {
                to_server: Dir::new(),
                to_client: Dir::new(),
                generation: 0,
                open: false,
                up: true,
                listening: false,
                accepted: 0,
                acceptor: WakerRegistration::new(),
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.state.lock(|s| f(&mut s.borrow_mut()))
    }

    /// Cut (`false`) or restore (`true`) the link.
    pub fn set_up(&self, up: bool) {
        self.with(|s| s.up = up);
    }

    /// Open a connection to the responder (replacing any previous one).
    pub fn connect(&'static self) -> Result<End, Refused> {
        self.with(|s| {
            if !s.up || !s.listening {
                return Err(Refused);
            }
            s.generation = s.generation.wrapping_add(1);
            s.open = true;
            s.listening = false;
            s.to_server.buf.clear();
            s.to_client.buf.clear();
            s.to_server.wake_all();
            s.to_client.wake_all();
            s.acceptor.wake();
            Ok(End {
                net: self,
                generation: s.generation,
                side: Side::Client,
            })
        })
    }

    /// Wait for the next connection (the responder's listening socket).
    pub async fn accept(&'static self) -> End {
        poll_fn(|cx| {
            self.with(|s| {
                if s.open && s.generation != s.accepted {
                    s.accepted = s.generation;
                    return Poll::Ready(End {
                        net: self,
                        generation: s.generation,
                        side: Side::Server,
                    });
                }
                s.listening = true;
                s.acceptor.register(cx.waker());
                Poll::Pending
            })
        })
        .await
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl End {
    /// Close the connection (both ends read 0 from now on).
    pub fn close(&mut self) {
        let generation = self.generation;
        self.net.with(|s| {
            if s.generation == generation && s.open {
                s.open = false;
                s.to_server.wake_all();
                s.to_client.wake_all();
            }
        });
    }
}

impl ErrorType for End {
    type Error = Closed;
}

impl Read for End {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Closed> {
        poll_fn(|cx| {
            self.net.with(|s| {
                if s.generation != self.generation || !s.open {
                    return Poll::Ready(Ok(0));
                }
                let dir = match self.side {
                    Side::Client => &mut s.to_client,
                    Side::Server => &mut s.to_server,
                };
                if dir.buf.is_empty() {
                    dir.reader.register(cx.waker());
                    return Poll::Pending;
                }
                let mut n = 0;
                for slot in buf.iter_mut() {
                    match dir.buf.pop_front() {
                        Some(b) => *slot = b,
                        None => break,
                    }
                    n += 1;
                }
                dir.writer.wake();
                Poll::Ready(Ok(n))
            })
        })
        .await
    }
}

impl Write for End {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Closed> {
        poll_fn(|cx| {
            self.net.with(|s| {
                if s.generation != self.generation || !s.open {
                    return Poll::Ready(Err(Closed));
                }
                if !s.up {
                    // Lost on the wire.
                    return Poll::Ready(Ok(buf.len()));
                }
                let dir = match self.side {
                    Side::Client => &mut s.to_server,
                    Side::Server => &mut s.to_client,
                };
                if dir.buf.is_full() && !buf.is_empty() {
                    dir.writer.register(cx.waker());
                    return Poll::Pending;
                }
                let mut n = 0;
                for &b in buf {
                    if dir.buf.push_back(b).is_err() {
                        break;
                    }
                    n += 1;
                }
                dir.reader.wake();
                Poll::Ready(Ok(n))
            })
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        Ok(())
    }
}

/// amps-embassy's connect function over this network.
pub struct Connector(pub &'static Net);

impl amps_embassy::Connect for Connector {
    type Conn<'c> = End;
    type Error = Refused;

    async fn connect(&mut self, _req: ConnectRequest) -> Result<End, Refused> {
        self.0.connect()
    }

    async fn close(conn: &mut Self::Conn<'_>, _graceful: bool) {
        conn.close();
    }
}

//! The I/O thread: the host driver's loop on a thread of its own (see
//! `amps_host::Driver` for the loop it runs), with blocking sockets. Bytes arrive from the
//! connection's reader thread; writes block at most a short slice, so a server that stops
//! reading never freezes heartbeats.

use std::sync::Arc;
use std::thread::JoinHandle;

use amps_host::{Driver, Error, ErrorKind, IoRequest, Result, Signal};

use crate::conn::{self, Conn, In, Inbound, is_would_block};

/// Start the driver's loop on its own thread.
pub(crate) fn spawn(driver: Driver) -> Result<()> {
    let signal = driver.signal();
    let inbound = Inbound::new(signal.clone());
    let io = IoLoop {
        driver,
        signal,
        inbound,
        conn: None,
        conn_id: 0,
        readers: Vec::new(),
        pending: None,
    };
    std::thread::Builder::new()
        .name("amps-io".to_owned())
        .spawn(move || io.run())
        .map(drop)
        .map_err(|e| Error::with_source(ErrorKind::Unknown, "cannot start the I/O thread", e))
}

/// Bytes of the current connection not yet taken by the driver.
struct Unread {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Bytes of the inbound bound it counts for, and whether `buf` is a reader's buffer.
    counted: usize,
    recycle: bool,
}

struct IoLoop {
    driver: Driver,
    signal: Arc<Signal>,
    inbound: Arc<Inbound>,
    conn: Option<Conn>,
    conn_id: u64,
    readers: Vec<JoinHandle<()>>,
    pending: Option<Unread>,
}

impl IoLoop {
    fn run(mut self) {
        loop {
            self.driver.step();
            self.handle_io();
            self.feed();
            let drained = self.write();
            self.handle_io();
            if self.driver.is_finished() {
                break;
            }
            if self.driver.has_work() || !drained {
                // Runnable work, or a socket that took part of the output: go round again
                // (a full socket blocks the write for at most its slice).
                continue;
            }
            self.signal.wait_blocking(self.driver.deadline());
        }
        self.drop_conn();
        self.inbound.close();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// Open or close the transport as the driver asks.
    fn handle_io(&mut self) {
        while let Some(req) = self.driver.poll_io() {
            match req {
                IoRequest::Open(r) => {
                    self.drop_conn();
                    self.conn_id += 1;
                    let opened = conn::open(&r, self.conn_id, &self.inbound);
                    let result = opened.map(|c| self.conn = Some(c));
                    self.driver.handle_opened(result);
                }
                IoRequest::Close => self.drop_conn(),
            }
        }
    }

    /// Close the socket; bytes of it still queued are moot.
    fn drop_conn(&mut self) {
        if let Some(c) = self.conn.take()
            && let Some(r) = c.close()
        {
            self.readers.push(r);
        }
        self.readers.retain(|h| !h.is_finished());
        if let Some(u) = self.pending.take() {
            self.inbound.release(u.counted, u.recycle.then_some(u.buf));
        }
    }

    /// Give received bytes to the driver, in order, while it takes them.
    fn feed(&mut self) {
        let current = self.conn.as_ref().map(|c| c.conn_id);
        while self.driver.wants_input() {
            if let Some(u) = &mut self.pending {
                let taken = self
                    .driver
                    .handle_input(u.buf.get(u.pos..u.len).unwrap_or(&[]));
                u.pos += taken;
                if u.pos < u.len {
                    // The driver waits for room in a stream: offer the rest later.
                    return;
                }
                if let Some(u) = self.pending.take() {
                    self.inbound.release(u.counted, u.recycle.then_some(u.buf));
                }
                continue;
            }
            let Some(item) = self.inbound.pop() else {
                return;
            };
            match item {
                In::Bytes { conn_id, buf, len } if Some(conn_id) != current => {
                    // From a connection that is already closed.
                    self.inbound.release(len, Some(buf));
                }
                In::Bytes { conn_id, buf, len } => {
                    let Some(conn) = self.conn.as_mut() else {
                        self.inbound.release(len, Some(buf));
                        continue;
                    };
                    if !conn.is_tls() {
                        self.pending = Some(Unread {
                            buf,
                            pos: 0,
                            len,
                            counted: len,
                            recycle: true,
                        });
                        continue;
                    }
                    let mut plain = Vec::new();
                    let r = conn.decrypt(buf.get(..len).unwrap_or(&[]), &mut plain);
                    self.inbound.release(len, Some(buf));
                    let plen = plain.len();
                    self.pending = Some(Unread {
                        buf: plain,
                        pos: 0,
                        len: plen,
                        counted: 0,
                        recycle: false,
                    });
                    match r {
                        Ok(true) => {}
                        // Handled once the plaintext before it was taken.
                        Ok(false) => self.inbound.unpop(In::Closed {
                            conn_id,
                            error: None,
                        }),
                        Err(e) => self.inbound.unpop(In::Closed {
                            conn_id,
                            error: Some(e),
                        }),
                    }
                }
                In::Closed { conn_id, error } => {
                    if Some(conn_id) == current {
                        self.driver.handle_closed(error);
                        self.handle_io();
                    }
                    return;
                }
            }
        }
    }

    /// Write what the driver has to send. False while the socket takes no more.
    fn write(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return true;
        };
        let failed = match conn.flush() {
            Err(e) if is_would_block(&e) => return false,
            Err(e) => Some(e),
            Ok(()) => loop {
                let out = self.driver.output();
                if out.is_empty() {
                    return true;
                }
                match conn.write(out) {
                    Ok(0) => break Some(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.driver.handle_written(n),
                    Err(e) if is_would_block(&e) => return false,
                    Err(e) => break Some(e),
                }
            },
        };
        // The write failed: the connection is gone.
        self.driver.handle_closed(failed);
        true
    }
}

//! The task that owns the session and the socket (design.md §3): one loop feeds bytes in,
//! drains events, drains transmit, and sleeps until the socket, a user request, a publish,
//! a stream with room again, or the session's next deadline wakes it. No lock is held around
//! the session: user handles reach it through channels and the staging buffer.

mod events;
mod requests;

use std::collections::HashMap;
use std::future::poll_fn;
use std::hash::BuildHasherDefault;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use amps_core::ha::{Authenticator, ServerChooser};
use amps_core::owned::BlockWriter;
use amps_core::session::{CommandId, CommandIdHasher, HeapStorage, Session, TransportClosed};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};

use crate::config::{BoxBookmarkStore, BoxPublishStore};
use crate::error::Result;
use crate::message::Message;
use crate::shared::{Control, Shared};
use crate::stream::StreamShared;
use crate::tls::TlsConfig;
use crate::transport::Stream;

pub(crate) use requests::{Cmd, Ctl};

/// The session type of host adapters: stores chosen at run time.
pub(crate) type HostSession = Session<HeapStorage<BoxPublishStore, BoxBookmarkStore>>;

/// Read chunk and write batch sizes: large, so a busy connection moves many frames per
/// system call.
const READ_BUF: usize = 256 * 1024;
/// At least this, and at least the session's transmit buffer (see `fill_wbuf`).
const WRITE_BUF: usize = 256 * 1024;
/// Commands handled per loop turn before the socket is serviced again (fairness).
const CMDS_PER_TURN: usize = 64;

/// A command waiting for acks, with the stream its messages go to.
pub(crate) struct Entry {
    pub(crate) stream: Arc<StreamShared>,
    /// Answered once: at the `processed` ack for subscriptions and queries, when sent for
    /// other commands.
    pub(crate) reply: Option<oneshot::Sender<Result<()>>>,
    /// The stream ends at `Completed` (everything but subscriptions).
    pub(crate) ends_on_complete: bool,
    /// The application asked for `processed` acks (else they are not put in the stream).
    pub(crate) user_processed: bool,
    /// Re-entered after a reconnect (HA): survives disconnects.
    pub(crate) resubscribe: bool,
    /// Messages carry an ack handle (queue or bookmark messages can be acked / discarded).
    pub(crate) ackable: bool,
    /// A flush (`Some(None)`) or publish_flush (`Some(Some(timeout))`): re-issued after a
    /// reconnect by the HA client with `retry_on_disconnect` instead of failing.
    pub(crate) flush: Option<Option<amps_core::Duration>>,
}

/// HA mode: who to connect to.
pub(crate) struct Ha {
    pub(crate) chooser: Box<dyn ServerChooser + Send>,
    pub(crate) retry_on_disconnect: bool,
    /// `connect_and_logon` callers waiting for the first logon.
    pub(crate) waiters: Vec<oneshot::Sender<Result<()>>>,
}

/// What woke the loop.
enum Wake {
    Kick,
    Read(usize),
    ReadClosed(TransportClosed),
    Wrote(usize),
    WriteFailed,
    Ctl(Ctl),
    CtlClosed,
    Cmd(Cmd),
    Timer,
}

pub(crate) struct Driver {
    pub(crate) session: HostSession,
    pub(crate) shared: Arc<Shared>,
    ctl_rx: mpsc::UnboundedReceiver<Ctl>,
    cmd_rx: mpsc::Receiver<Cmd>,
    origin: std::time::Instant,
    pub(crate) ha: Option<Ha>,
    pub(crate) tls: TlsConfig,
    pub(crate) connect_timeout: std::time::Duration,
    pub(crate) authenticator: Box<dyn Authenticator + Send>,
    filter: Option<crate::config::TransportFilter>,
    pub(crate) io: Option<Stream>,
    /// The URI of the open (or last) connection.
    pub(crate) uri: Option<String>,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    wend: usize,
    /// Looked up per delivered message: keyed with the cheap command-id hasher.
    pub(crate) entries: HashMap<CommandId, Entry, BuildHasherDefault<CommandIdHasher>>,
    /// Copies deliveries into shared blocks (one allocation per block, not per message).
    pub(crate) writer: BlockWriter,
    /// The logon in flight and who waits for it (`None` for the HA client's own logons).
    pub(crate) logon: Option<(CommandId, Option<oneshot::Sender<Result<()>>>)>,
    /// Plain client: `Connected` was reported by `connect`, so the session's is skipped.
    pub(crate) connected_reported: bool,
    /// Staged publishes taken from [`Shared`], and how far they were handed to the session.
    batch: Vec<u8>,
    batch_pos: usize,
    /// Staged publishes cannot go on now (window or transmit buffer full, or not logged on).
    pub(crate) blocked: bool,
    /// A command taken from the channel that must wait behind blocked publishes.
    pending_cmd: Option<Cmd>,
    controls: Vec<Control>,
    /// A message for a full `Block` stream: nothing else is processed until it fits.
    pub(crate) stalled: Option<(CommandId, Arc<StreamShared>, Message)>,
    /// The connection is being ended by the application: a full `Block` stream drops what
    /// does not fit instead of holding the driver (the events of the end must get through).
    pub(crate) ending: bool,
    /// Streams that got messages during the current drain, woken at its end.
    pub(crate) to_wake: Vec<Arc<StreamShared>>,
    /// The session timer; made on the runtime when the loop starts.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Flushes interrupted by a disconnect, re-issued once recovered (HA client).
    pub(crate) retry_flushes: Vec<(Option<amps_core::Duration>, oneshot::Sender<Result<()>>)>,
    /// `close()` callers, answered after the driver (and its stores) are dropped.
    close_replies: Vec<oneshot::Sender<Result<()>>>,
    /// `close()` ran: the loop ends.
    pub(crate) finished: bool,
}

/// Everything the driver is built from.
pub(crate) struct DriverParts {
    pub(crate) session: HostSession,
    pub(crate) shared: Arc<Shared>,
    pub(crate) ctl_rx: mpsc::UnboundedReceiver<Ctl>,
    pub(crate) cmd_rx: mpsc::Receiver<Cmd>,
    pub(crate) ha: Option<Ha>,
    pub(crate) tls: TlsConfig,
    pub(crate) connect_timeout: std::time::Duration,
    pub(crate) authenticator: Box<dyn Authenticator + Send>,
    pub(crate) filter: Option<crate::config::TransportFilter>,
}

impl Driver {
    pub(crate) fn new(p: DriverParts) -> Driver {
        let wbuf = WRITE_BUF.max(p.session.limits().tx_bytes);
        Driver {
            session: p.session,
            shared: p.shared,
            ctl_rx: p.ctl_rx,
            cmd_rx: p.cmd_rx,
            origin: std::time::Instant::now(),
            ha: p.ha,
            tls: p.tls,
            connect_timeout: p.connect_timeout,
            authenticator: p.authenticator,
            filter: p.filter,
            io: None,
            uri: None,
            rbuf: vec![0; READ_BUF],
            rpos: 0,
            rend: 0,
            wbuf: vec![0; wbuf],
            wpos: 0,
            wend: 0,
            entries: HashMap::default(),
            writer: BlockWriter::new(BlockWriter::DEFAULT_BLOCK),
            logon: None,
            connected_reported: false,
            batch: Vec::new(),
            batch_pos: 0,
            blocked: false,
            pending_cmd: None,
            controls: Vec::new(),
            stalled: None,
            to_wake: Vec::new(),
            ending: false,
            sleep: None,
            retry_flushes: Vec::new(),
            close_replies: Vec::new(),
            finished: false,
        }
    }

    /// The session's clock: microseconds since the driver started (monotonic).
    pub(crate) fn now(&self) -> amps_core::Instant {
        amps_core::Instant::from_micros(
            u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX),
        )
    }

    /// Run until the client is closed or every handle is gone.
    pub(crate) async fn run(mut self) {
        loop {
            if self.shared.is_shutdown() && !self.finished {
                self.shutdown().await;
            }
            if self.finished {
                let replies = std::mem::take(&mut self.close_replies);
                drop(self);
                for r in replies {
                    let _ = r.send(Ok(()));
                }
                return;
            }
            let now = self.now();
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
                self.drain_events(now);
            }
            self.try_unstall(now);
            if self.stalled.is_none() {
                self.handle_controls(now);
                self.feed(now);
            }
            self.ha_connect(now).await;
            self.fill_wbuf(now);
            let wake = self.wait().await;
            let now = self.now();
            match wake {
                Wake::Kick | Wake::Timer => {}
                Wake::Read(n) => {
                    self.filter(crate::config::Direction::Incoming, 0, n);
                    self.rend += n;
                    self.handle_input(now);
                }
                Wake::ReadClosed(cause) => self.transport_closed(now, cause),
                Wake::Wrote(n) => {
                    self.filter(crate::config::Direction::Outgoing, self.wpos, n);
                    self.wpos += n;
                    if self.wpos == self.wend {
                        self.wpos = 0;
                        self.wend = 0;
                    }
                }
                Wake::WriteFailed => self.transport_closed(now, TransportClosed::Error),
                Wake::Ctl(c) => self.handle_ctl(now, c).await,
                Wake::CtlClosed => self.shared.request_shutdown(),
                Wake::Cmd(c) => self.handle_cmd(now, c),
            }
        }
    }

    /// Show `n` bytes at `at` of the read or write buffer to the transport filter.
    fn filter(&self, dir: crate::config::Direction, at: usize, n: usize) {
        let Some(f) = &self.filter else { return };
        let buf = match dir {
            crate::config::Direction::Incoming => &self.rbuf,
            crate::config::Direction::Outgoing => &self.wbuf,
        };
        if let Some(bytes) = buf.get(at..at + n) {
            f(dir, bytes);
        }
    }

    /// Offer the received bytes to the session, draining events whenever it pushes back.
    fn handle_input(&mut self, now: amps_core::Instant) {
        let mut stuck = false;
        while self.rpos < self.rend && self.stalled.is_none() {
            let Some(input) = self.rbuf.get(self.rpos..self.rend) else {
                break;
            };
            match self.session.handle_bytes(now, input) {
                Ok(0) if stuck => {
                    // Twice nothing taken with every event drained: the session cannot make
                    // progress (it reports an oversized frame as a decode error and ends the
                    // connection, after which it refuses bytes). Never spin or wedge here.
                    self.shared.report(crate::events::ClientEvent::Error(
                        crate::error::Error::new(
                            amps_core::error_kind::ErrorKind::Stream,
                            "the session accepts no more input",
                        ),
                    ));
                    self.transport_closed(now, TransportClosed::Error);
                    break;
                }
                Ok(n) => {
                    stuck = n == 0;
                    self.rpos += n;
                    self.drain_events(now);
                }
                Err(_) => {
                    // No connection in the session (ended by it): the bytes are moot.
                    self.rpos = self.rend;
                }
            }
        }
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        }
    }

    /// The transport closed or failed.
    pub(crate) fn transport_closed(&mut self, now: amps_core::Instant, cause: TransportClosed) {
        self.close_io();
        self.session.handle_closed(now, cause);
        self.drain_events(now);
    }

    /// Drop the socket and forget buffered bytes of it.
    pub(crate) fn close_io(&mut self) {
        self.io = None;
        self.rpos = 0;
        self.rend = 0;
        self.wpos = 0;
        self.wend = 0;
    }

    /// Move what the session wants to send into the write buffer, all of it or nothing.
    ///
    /// Draining the session's transmit buffer only in part would leave it non-empty at its
    /// front, and the session then compacts it on every following publish (a copy of
    /// everything pending per message). The write buffer is at least as large as the transmit
    /// buffer, so once the socket took what was written before, everything fits.
    pub(crate) fn fill_wbuf(&mut self, now: amps_core::Instant) -> bool {
        if self.io.is_none() {
            return false;
        }
        let pending = self.session.pending_transmit();
        if pending > self.wbuf.len() - self.wend {
            if self.wpos == 0 || pending > self.wbuf.len() - (self.wend - self.wpos) {
                return false;
            }
            self.wbuf.copy_within(self.wpos..self.wend, 0);
            self.wend -= self.wpos;
            self.wpos = 0;
        }
        let before = self.wend;
        while self.wend < self.wbuf.len() {
            let Some(out) = self.wbuf.get_mut(self.wend..) else {
                break;
            };
            match self.session.poll_transmit(now, out) {
                Some(n) => self.wend += n,
                None => break,
            }
        }
        self.wend > before
    }

    /// Write everything pending to the socket (used before closing), within `limit`.
    pub(crate) async fn flush_out(&mut self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let now = self.now();
            self.fill_wbuf(now);
            if self.wpos == self.wend {
                return;
            }
            let Some(io) = self.io.as_mut() else { return };
            let chunk = self.wbuf.get(self.wpos..self.wend).unwrap_or(&[]);
            let write = tokio::io::AsyncWriteExt::write(io, chunk);
            match tokio::time::timeout_at(deadline, write).await {
                Ok(Ok(n)) if n > 0 => {
                    self.filter(crate::config::Direction::Outgoing, self.wpos, n);
                    self.wpos += n;
                    if self.wpos == self.wend {
                        self.wpos = 0;
                        self.wend = 0;
                    }
                }
                _ => return,
            }
        }
    }

    /// Whether commands may be taken from the channel now.
    fn cmd_gate_open(&self) -> bool {
        if self.blocked || self.pending_cmd.is_some() || self.stalled.is_some() {
            return false;
        }
        // The HA client with retry_on_disconnect keeps commands waiting while it reconnects.
        match &self.ha {
            Some(ha) if ha.retry_on_disconnect => {
                self.shared.is_logged_on()
                    || self.session.state() == amps_core::session::State::Shutdown
            }
            _ => true,
        }
    }

    /// Sleep until something needs the loop.
    async fn wait(&mut self) -> Wake {
        let deadline = self
            .session
            .poll_timeout()
            .map(|t| self.origin + std::time::Duration::from_micros(t.as_micros()));
        if let Some(d) = deadline {
            match self.sleep.as_mut() {
                Some(s) => s.as_mut().reset(d.into()),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(d.into()))),
            }
        }
        let gate = self.cmd_gate_open();
        let connected = self.io.is_some()
            && !matches!(
                self.session.state(),
                amps_core::session::State::Disconnected | amps_core::session::State::Shutdown
            );
        let want_read = connected && self.stalled.is_none() && self.rend == 0;
        poll_fn(|cx| {
            if self.shared.poll_kick(cx) {
                return Poll::Ready(Wake::Kick);
            }
            if let Some(io) = self.io.as_mut() {
                if self.wpos < self.wend {
                    let chunk = self.wbuf.get(self.wpos..self.wend).unwrap_or(&[]);
                    match Pin::new(&mut *io).poll_write(cx, chunk) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            return Poll::Ready(Wake::WriteFailed);
                        }
                        Poll::Ready(Ok(n)) => return Poll::Ready(Wake::Wrote(n)),
                        Poll::Pending => {}
                    }
                }
                if want_read {
                    let mut rb = ReadBuf::new(&mut self.rbuf);
                    match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) => {
                            let n = rb.filled().len();
                            return Poll::Ready(if n == 0 {
                                Wake::ReadClosed(TransportClosed::PeerClosed)
                            } else {
                                Wake::Read(n)
                            });
                        }
                        Poll::Ready(Err(_)) => {
                            return Poll::Ready(Wake::ReadClosed(TransportClosed::Error));
                        }
                        Poll::Pending => {}
                    }
                }
            }
            match self.ctl_rx.poll_recv(cx) {
                Poll::Ready(Some(c)) => return Poll::Ready(Wake::Ctl(c)),
                Poll::Ready(None) => return Poll::Ready(Wake::CtlClosed),
                Poll::Pending => {}
            }
            if gate && let Poll::Ready(Some(c)) = self.cmd_rx.poll_recv(cx) {
                return Poll::Ready(Wake::Cmd(c));
            }
            if deadline.is_some()
                && let Some(s) = self.sleep.as_mut()
                && s.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await
    }
}

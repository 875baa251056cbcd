//! The engine task: the only owner of the [`Engine`]. It accepts connections (up to the cap),
//! feeds their input to the engine, hands output to the writer tasks, runs the engine's timers,
//! and has the patterns the engine asks for compiled on the blocking pool.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use amps_core::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::AbortHandle;

use super::tasks::{self, Permit, WriterMsg};
use crate::compile::CompileDone;
use crate::engine::{CloseReason, ConnId, Engine, EngineEvent, Stats};

/// A closure run on the engine task.
pub(super) type EngineFn = Box<dyn FnOnce(&mut Engine, Instant) + Send>;

/// Work for the engine task that must never wait (control, accepted sockets, finished writes
/// and compilations).
pub(super) enum Ctl {
    Accept(TcpStream),
    WriteDone(ConnId, Vec<u8>),
    Compiled(CompileDone),
    Engine(EngineFn),
    Stats(std_mpsc::Sender<Stats>),
    /// Advance a manual clock and run the timers; answers `false` with the system clock.
    Advance(Duration, std_mpsc::Sender<bool>),
    Shutdown,
}

/// Input from reader tasks; bounded (in bytes by the input-queue permits), so a flooding
/// client is slowed by TCP backpressure.
pub(super) enum Data {
    Bytes(ConnId, Vec<u8>, Permit),
    Closed(ConnId),
}

/// Where the engine's `now` comes from.
pub(super) enum Clock {
    /// Wall-clock microseconds since the Unix epoch; timers sleep on tokio's clock.
    System,
    /// Moved only by [`super::ServerHandle::advance_clock`]; no timer fires by itself.
    Manual(Instant),
}

struct ConnIo {
    writer: mpsc::UnboundedSender<WriterMsg>,
    writer_task: AbortHandle,
    reader_task: AbortHandle,
    pause: watch::Sender<bool>,
    writing: bool,
}

/// Owns the engine; the only place it is touched.
pub(super) struct EngineTask {
    engine: Engine,
    conns: BTreeMap<ConnId, ConnIo>,
    /// Connections whose reader is paused (their input waits for a compilation).
    paused: BTreeSet<ConnId>,
    ctl: mpsc::UnboundedSender<Ctl>,
    data: mpsc::Sender<Data>,
    queue: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    spare: Vec<Vec<u8>>,
    clock: Clock,
    last: Instant,
    refused: u64,
}

impl EngineTask {
    pub(super) fn new(
        mut engine: Engine,
        ctl: mpsc::UnboundedSender<Ctl>,
        data: mpsc::Sender<Data>,
        clock: Clock,
    ) -> Self {
        engine.set_offload_compiles(true);
        engine.set_track_writes(true);
        let limits = &engine.config().limits;
        let queue = Arc::new(Semaphore::new(limits.input_queue_bytes));
        let workers = Arc::new(Semaphore::new(limits.compile_threads));
        EngineTask {
            engine,
            conns: BTreeMap::new(),
            paused: BTreeSet::new(),
            ctl,
            data,
            queue,
            workers,
            spare: Vec::new(),
            clock,
            last: Instant::ZERO,
            refused: 0,
        }
    }

    /// The engine's `now`, never going backwards (engine contract).
    fn now(&mut self) -> Instant {
        let t = match self.clock {
            Clock::System => {
                let us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
                Instant::from_micros(us)
            }
            Clock::Manual(t) => t,
        };
        self.last = self.last.max(t);
        self.last
    }

    pub(super) async fn run(
        mut self,
        mut ctl_rx: mpsc::UnboundedReceiver<Ctl>,
        mut data_rx: mpsc::Receiver<Data>,
        accept: AbortHandle,
    ) {
        loop {
            let deadline = match self.clock {
                Clock::System => self.engine.poll_timeout().map(|t| {
                    let now = self.now();
                    let wait = std::time::Duration::from_micros(
                        t.saturating_duration_since(now).as_micros(),
                    );
                    tokio::time::Instant::now() + wait
                }),
                Clock::Manual(_) => None,
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                c = ctl_rx.recv() => match c {
                    None | Some(Ctl::Shutdown) => break,
                    Some(c) => self.on_ctl(c),
                },
                d = data_rx.recv() => {
                    let Some(d) = d else { break };
                    self.on_data(d);
                    // Take what else is queued before writing: bigger batches, fewer syscalls.
                    for _ in 0..256 {
                        match data_rx.try_recv() {
                            Ok(d) => self.on_data(d),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep => {
                    let now = self.now();
                    self.engine.handle_timeout(now);
                }
            }
            self.pump();
        }
        accept.abort();
        for (_, io) in std::mem::take(&mut self.conns) {
            io.reader_task.abort();
            io.writer_task.abort();
        }
    }

    fn on_ctl(&mut self, c: Ctl) {
        let now = self.now();
        match c {
            Ctl::Accept(stream) => self.accept(now, stream),
            Ctl::WriteDone(id, mut buf) => {
                self.engine.handle_written(id, buf.len());
                buf.clear();
                if buf.capacity() <= 4 << 20 && self.spare.len() < 64 {
                    self.spare.push(buf);
                }
                if let Some(io) = self.conns.get_mut(&id) {
                    io.writing = false;
                }
                self.write(id);
            }
            Ctl::Compiled(done) => {
                self.engine.handle_compiled(now, done);
                self.resume_readers();
            }
            Ctl::Engine(f) => f(&mut self.engine, now),
            Ctl::Stats(reply) => {
                let mut s = self.engine.stats();
                s.connections_refused = self.refused;
                s.input_queue_bytes = self
                    .engine
                    .config()
                    .limits
                    .input_queue_bytes
                    .saturating_sub(self.queue.available_permits());
                let _ = reply.send(s);
            }
            Ctl::Advance(by, reply) => {
                let advanced = match &mut self.clock {
                    Clock::Manual(t) => {
                        *t += by;
                        true
                    }
                    Clock::System => false,
                };
                if advanced {
                    let now = self.now();
                    self.engine.handle_timeout(now);
                    self.pump();
                }
                let _ = reply.send(advanced);
            }
            Ctl::Shutdown => {}
        }
    }

    fn on_data(&mut self, d: Data) {
        let now = self.now();
        match d {
            Data::Bytes(id, bytes, permit) => {
                self.engine.handle_bytes(now, id, &bytes);
                drop(permit);
                if self.engine.input_paused(id)
                    && let Some(io) = self.conns.get(&id)
                {
                    io.pause.send_replace(true);
                    self.paused.insert(id);
                }
            }
            Data::Closed(id) => {
                self.engine.handle_closed(now, id);
                self.paused.remove(&id);
                if let Some(io) = self.conns.remove(&id) {
                    io.writer_task.abort();
                }
            }
        }
    }

    /// Let the readers of connections that no longer wait read again.
    fn resume_readers(&mut self) {
        let ready: Vec<ConnId> = self
            .paused
            .iter()
            .copied()
            .filter(|id| !self.engine.input_paused(*id))
            .collect();
        for id in ready {
            self.paused.remove(&id);
            if let Some(io) = self.conns.get(&id) {
                io.pause.send_replace(false);
            }
        }
    }

    fn accept(&mut self, now: Instant, stream: TcpStream) {
        if self.engine.connection_count() >= self.engine.config().limits.max_connections {
            self.refused += 1;
            tokio::spawn(tasks::refuse(stream));
            return;
        }
        let id = self.engine.open(now);
        let (r, w) = stream.into_split();
        let (wtx, wrx) = mpsc::unbounded_channel();
        let (pause, pause_rx) = watch::channel(false);
        let writer_task = tokio::spawn(tasks::writer(id, w, wrx, self.ctl.clone())).abort_handle();
        let reader_task = tokio::spawn(tasks::reader(
            id,
            r,
            self.data.clone(),
            self.queue.clone(),
            pause_rx,
        ))
        .abort_handle();
        self.conns.insert(
            id,
            ConnIo {
                writer: wtx,
                writer_task,
                reader_task,
                pause,
                writing: false,
            },
        );
    }

    /// Hand the engine's pending output for `id` to its writer, unless a write is in flight.
    fn write(&mut self, id: ConnId) {
        let Some(io) = self.conns.get_mut(&id) else {
            return;
        };
        if io.writing {
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        self.engine.drain_output(id, &mut buf);
        if buf.is_empty() {
            self.spare.push(buf);
            return;
        }
        io.writing = io.writer.send(WriterMsg::Bytes(buf)).is_ok();
    }

    fn pump(&mut self) {
        while let Some(job) = self.engine.poll_compile() {
            tokio::spawn(tasks::compile(job, self.workers.clone(), self.ctl.clone()));
        }
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                EngineEvent::Transmit(id) => self.write(id),
                EngineEvent::Close { conn, reason } => self.close(conn, reason),
            }
        }
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.paused.remove(&conn);
        let Some(io) = self.conns.remove(&conn) else {
            let mut sink = Vec::new();
            self.engine.drain_output(conn, &mut sink);
            return;
        };
        io.reader_task.abort();
        if matches!(reason, CloseReason::SlowConsumer | CloseReason::Fault) {
            // A stuck write (slow consumer) or an injected drop: cut the socket now.
            io.writer_task.abort();
            let mut sink = Vec::new();
            self.engine.drain_output(conn, &mut sink);
            return;
        }
        let mut last = Vec::new();
        self.engine.drain_output(conn, &mut last);
        if !last.is_empty() {
            let _ = io.writer.send(WriterMsg::Bytes(last));
        }
        let _ = io.writer.send(WriterMsg::Close);
    }
}

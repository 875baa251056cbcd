//! The engine task and the per-connection reader and writer tasks.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use amps_core::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::engine::{CloseReason, ConnId, Engine, EngineEvent};

/// A closure run on the engine task.
pub(super) type EngineFn = Box<dyn FnOnce(&mut Engine, Instant) + Send>;

/// Work for the engine task that must never wait (control, accepted sockets, finished writes).
pub(super) enum Ctl {
    Accept(TcpStream),
    WriteDone(ConnId, Vec<u8>),
    Engine(EngineFn),
    Shutdown,
}

/// Input from reader tasks; bounded, so a flooding client is slowed by TCP backpressure.
pub(super) enum Data {
    Bytes(ConnId, Vec<u8>),
    Closed(ConnId),
}

enum WriterMsg {
    Bytes(Vec<u8>),
    Close,
}

struct ConnIo {
    writer: mpsc::UnboundedSender<WriterMsg>,
    writer_task: AbortHandle,
    reader_task: AbortHandle,
    writing: bool,
}

/// Owns the engine; the only place it is touched.
pub(super) struct EngineTask {
    engine: Engine,
    conns: BTreeMap<ConnId, ConnIo>,
    ctl: mpsc::UnboundedSender<Ctl>,
    data: mpsc::Sender<Data>,
    spare: Vec<Vec<u8>>,
    last: Instant,
}

/// Read chunk size.
const READ_CHUNK: usize = 64 * 1024;

impl EngineTask {
    pub(super) fn new(
        engine: Engine,
        ctl: mpsc::UnboundedSender<Ctl>,
        data: mpsc::Sender<Data>,
    ) -> Self {
        EngineTask {
            engine,
            conns: BTreeMap::new(),
            ctl,
            data,
            spare: Vec::new(),
            last: Instant::ZERO,
        }
    }

    /// Wall-clock microseconds since the Unix epoch, never going backwards (engine contract).
    fn now(&mut self) -> Instant {
        let us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.last = self.last.max(Instant::from_micros(us));
        self.last
    }

    pub(super) async fn run(
        mut self,
        mut ctl_rx: mpsc::UnboundedReceiver<Ctl>,
        mut data_rx: mpsc::Receiver<Data>,
        accept: AbortHandle,
    ) {
        loop {
            let deadline = self.engine.poll_timeout().map(|t| {
                let now = self.now();
                let wait =
                    std::time::Duration::from_micros(t.saturating_duration_since(now).as_micros());
                tokio::time::Instant::now() + wait
            });
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
                buf.clear();
                if buf.capacity() <= 4 << 20 && self.spare.len() < 64 {
                    self.spare.push(buf);
                }
                if let Some(io) = self.conns.get_mut(&id) {
                    io.writing = false;
                }
                self.write(id);
            }
            Ctl::Engine(f) => f(&mut self.engine, now),
            Ctl::Shutdown => {}
        }
    }

    fn on_data(&mut self, d: Data) {
        let now = self.now();
        match d {
            Data::Bytes(id, bytes) => self.engine.handle_bytes(now, id, &bytes),
            Data::Closed(id) => {
                self.engine.handle_closed(now, id);
                if let Some(io) = self.conns.remove(&id) {
                    io.writer_task.abort();
                }
            }
        }
    }

    fn accept(&mut self, now: Instant, stream: TcpStream) {
        let id = self.engine.open(now);
        let (r, w) = stream.into_split();
        let (wtx, wrx) = mpsc::unbounded_channel();
        let writer_task = tokio::spawn(writer(id, w, wrx, self.ctl.clone())).abort_handle();
        let reader_task = tokio::spawn(reader(id, r, self.data.clone())).abort_handle();
        self.conns.insert(
            id,
            ConnIo {
                writer: wtx,
                writer_task,
                reader_task,
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
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                EngineEvent::Transmit(id) => self.write(id),
                EngineEvent::Close { conn, reason } => {
                    let Some(io) = self.conns.remove(&conn) else {
                        let mut sink = Vec::new();
                        self.engine.drain_output(conn, &mut sink);
                        continue;
                    };
                    io.reader_task.abort();
                    if matches!(reason, CloseReason::SlowConsumer | CloseReason::Fault) {
                        // A stuck write (slow consumer) or an injected drop: cut the socket now.
                        io.writer_task.abort();
                        let mut sink = Vec::new();
                        self.engine.drain_output(conn, &mut sink);
                        continue;
                    }
                    let mut last = Vec::new();
                    self.engine.drain_output(conn, &mut last);
                    if !last.is_empty() {
                        let _ = io.writer.send(WriterMsg::Bytes(last));
                    }
                    let _ = io.writer.send(WriterMsg::Close);
                }
            }
        }
    }
}

async fn reader(id: ConnId, mut r: OwnedReadHalf, data: mpsc::Sender<Data>) {
    loop {
        let mut buf = Vec::with_capacity(READ_CHUNK);
        match r.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = data.send(Data::Closed(id)).await;
                return;
            }
            Ok(_) => {
                if data.send(Data::Bytes(id, buf)).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn writer(
    id: ConnId,
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    ctl: mpsc::UnboundedSender<Ctl>,
) {
    while let Some(m) = rx.recv().await {
        match m {
            WriterMsg::Bytes(buf) => {
                if w.write_all(&buf).await.is_err() {
                    return;
                }
                if ctl.send(Ctl::WriteDone(id, buf)).is_err() {
                    return;
                }
            }
            WriterMsg::Close => {
                let _ = w.shutdown().await;
                return;
            }
        }
    }
}

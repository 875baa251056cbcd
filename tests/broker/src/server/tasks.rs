//! The per-connection reader and writer tasks, the refusal of a connection beyond the cap, and
//! the compile workers.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::io::{Ctl, Data};
use crate::compile::{CompileDone, CompileJob, PatternKey};
use crate::engine::ConnId;

/// Largest socket read.
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// How long a refused connection is drained before it is dropped (so the peer sees a FIN, not
/// a reset, even if it had already sent something).
const REFUSE_DRAIN: StdDuration = StdDuration::from_secs(1);

pub(super) enum WriterMsg {
    Bytes(Vec<u8>),
    Close,
}

/// Read `r` into the engine's input queue. Bytes read hold permits of `queue` (one per byte)
/// until the engine task has processed them, so everything read and not yet processed is
/// bounded; an idle reader holds none. Stops reading while `pause` is true.
pub(super) async fn reader(
    id: ConnId,
    r: OwnedReadHalf,
    data: mpsc::Sender<Data>,
    queue: Arc<Semaphore>,
    mut pause: watch::Receiver<bool>,
) {
    let closed = |data: mpsc::Sender<Data>| async move {
        let _ = data.send(Data::Closed(id)).await;
    };
    loop {
        while *pause.borrow_and_update() {
            if pause.changed().await.is_err() {
                return;
            }
        }
        if r.readable().await.is_err() {
            return closed(data).await;
        }
        let Ok(mut permit) = queue.clone().acquire_many_owned(READ_CHUNK as u32).await else {
            return;
        };
        let mut buf = Vec::with_capacity(READ_CHUNK);
        match r.try_read_buf(&mut buf) {
            Ok(0) => return closed(data).await,
            Ok(n) => {
                if n < READ_CHUNK / 2 {
                    buf.shrink_to_fit();
                }
                let keep = buf.capacity().min(READ_CHUNK);
                drop(permit.split(READ_CHUNK - keep));
                if data.send(Data::Bytes(id, buf, permit)).await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return closed(data).await,
        }
    }
}

/// Write what the engine task hands over; report each write so the engine stops counting it.
pub(super) async fn writer(
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

/// Close a connection beyond the cap cleanly: FIN at once, then read and drop what the peer
/// sends (at most 64 KiB, at most a second) so the close is not turned into a reset.
pub(super) async fn refuse(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        while total < READ_CHUNK {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSE_DRAIN, drain).await;
}

/// Compile `job` on the blocking pool, at most `workers` at a time, and hand the result to the
/// engine task.
pub(super) async fn compile(job: CompileJob, workers: Arc<Semaphore>, ctl: mpsc::UnboundedSender<Ctl>) {
    let Ok(_slot) = workers.acquire_owned().await else {
        return;
    };
    let key = job.key().clone();
    let done = match tokio::task::spawn_blocking(move || job.run()).await {
        Ok(done) => done,
        Err(_) => {
            let reason = match key {
                PatternKey::Regex(_) => "bad regex topic: compilation failed",
                PatternKey::Filter(_) => "bad filter: compilation failed",
            };
            CompileDone::refused(key, reason)
        }
    };
    let _ = ctl.send(Ctl::Compiled(done));
}

/// A socket read waiting for the engine task, with its share of the input queue.
pub(super) type Permit = OwnedSemaphorePermit;

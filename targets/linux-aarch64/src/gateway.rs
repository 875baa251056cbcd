//! The gateway's run: an HA client with a file-backed publish store publishes `count`
//! samples at `rate`, then shuts down cleanly with `publish_flush` (AMPS Python client guide:
//! "publish_flush", "File-backed stores"; docs/protocol.md §8.4: every message stays in the store
//! until the server has persisted it, and is replayed after a reconnect or a restart).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amps_fs::{FilePublishStore, FileStoreOptions, OpenError};
use amps_std::{ConnectionState, DefaultServerChooser, HaClient};

use crate::args::Args;
use crate::telemetry::{self, EncodeError, MAX_SAMPLE};

/// How a run went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Samples published in this run.
    pub published: u64,
    /// Messages a previous run left unpersisted in the store (replayed after the logon).
    pub recovered: usize,
    /// Messages still unpersisted after the final flush (0 on success).
    pub unpersisted: usize,
    /// Sequenced messages the server refused.
    pub failed_writes: u64,
    /// Connections lost during the run.
    pub disconnects: u64,
}

impl Summary {
    /// Every sample of this run and of the previous ones is persisted and none was refused.
    pub fn all_persisted(&self) -> bool {
        self.unpersisted == 0 && self.failed_writes == 0
    }
}

/// Why the gateway stopped.
#[derive(Debug)]
pub enum GatewayError {
    /// The publish store could not be opened (locked by another instance, damaged, I/O).
    Store(OpenError),
    /// The client failed (connect, logon, publish, flush timed out...).
    Client(amps_std::Error),
    /// A sample did not fit its buffer.
    Encode(EncodeError),
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::Store(e) => write!(f, "publish store: {e}"),
            GatewayError::Client(e) => write!(f, "AMPS client: {e}"),
            GatewayError::Encode(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GatewayError {}

impl From<amps_std::Error> for GatewayError {
    fn from(e: amps_std::Error) -> Self {
        GatewayError::Client(e)
    }
}

/// Publish `args.count` samples and flush. The summary says whether everything is persisted;
/// an error means the run could not finish (the store keeps what was not persisted, and the
/// next run with the same `--name` and `--store` replays it).
pub fn run(args: &Args) -> Result<Summary, GatewayError> {
    let store = FilePublishStore::open(&args.store, &args.name, FileStoreOptions::default())
        .map_err(GatewayError::Store)?;
    let mut summary = Summary {
        recovered: amps_core::store::PublishStore::unpersisted_count(&store),
        ..Summary::default()
    };
    let mut builder = HaClient::builder(&args.name)
        .publish_store(store)
        .server_chooser(DefaultServerChooser::new(vec![args.uri.clone()]));
    if args.heartbeat > 0 {
        // The server's own rule: silence for two intervals means the peer is gone.
        let interval = Duration::from_secs(u64::from(args.heartbeat));
        builder = builder.heartbeat(interval, 2 * interval);
    }
    let client = builder.build()?;
    let failed = Arc::new(AtomicU64::new(0));
    let f = Arc::clone(&failed);
    client.set_failed_write_handler(move |w| {
        f.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "gateway: server refused sequence {}: {}",
            w.seq(),
            w.error()
        );
    });
    let lost = Arc::new(AtomicU64::new(0));
    let l = Arc::clone(&lost);
    client.add_connection_state_listener(move |s| {
        if s == ConnectionState::Disconnected {
            l.fetch_add(1, Ordering::Relaxed);
        }
    });
    client.connect_and_logon()?;

    let mut buf = [0u8; MAX_SAMPLE];
    let start = Instant::now();
    for seq in 1..=args.count {
        if let Some(period) = args.period() {
            // Pace to the configured rate (a schedule, not a synchronisation).
            let due = start + period.mul_f64((seq - 1) as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let sample = telemetry::read(seq);
        let data = sample.encode(&mut buf).map_err(GatewayError::Encode)?;
        client.publish(&args.topic, data)?;
        summary.published += 1;
    }

    // Clean shutdown: wait until the server has persisted everything in the store.
    let flushed = client.publish_flush(args.flush_timeout);
    summary.unpersisted = client.unpersisted_count();
    summary.failed_writes = failed.load(Ordering::Relaxed);
    summary.disconnects = lost.load(Ordering::Relaxed);
    client.close()?;
    flushed?;
    Ok(summary)
}

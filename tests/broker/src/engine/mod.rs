//! The sans-IO broker engine: connections, frames in, frames out, `now` passed in.
//!
//! The engine never reads a clock, a socket or an RNG, and it is deterministic: the same calls in
//! the same order produce byte-identical output (ordered maps for everything that is iterated;
//! hash maps only for lookups). `now` is interpreted as microseconds since the Unix epoch where a
//! wall-clock time is needed (`ts`, `lp`, timestamp bookmarks); the TCP server passes real time,
//! a simulator may pass anything that never goes backwards.
//!
//! Drive loop (what [`crate::Server`] does):
//!
//! ```
//! use amps_broker::{Config, Engine, EngineEvent};
//! use amps_core::Instant;
//! use amps_core::codec::Command;
//!
//! let mut engine = Engine::new(Config::default());
//! let now = Instant::from_secs(1_800_000_000);
//! let conn = engine.open(now);
//! engine.handle_bytes(now, conn, &Command::logon("pub-1").command_id("1").to_vec().unwrap());
//! let mut wire = Vec::new();
//! while let Some(event) = engine.poll_event() {
//!     match event {
//!         EngineEvent::Transmit(c) => engine.drain_output(c, &mut wire), // write to the socket
//!         EngineEvent::Close { conn, reason } => { let _ = (conn, reason); } // drain, then close
//!     }
//! }
//! assert!(wire.windows(7).any(|w| w == b"success"));
//! // Sleep until engine.poll_timeout() or the next input, then call engine.handle_timeout(now).
//! ```

mod acks;
mod conflate;
mod conn;
mod fanout;
mod guard;
mod heartbeat;
mod logon;
mod page;
mod patterns;
mod publish;
mod queue;
mod route;
mod sow;
mod subscribe;
mod txlog;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use amps_core::Instant;

use crate::compile::{CompileJob, PatternCache, PatternKey};
use crate::config::Config;
use crate::faults::Faults;

pub(crate) use conn::Conn;
pub use guard::Stats;
use guard::Acct;
use queue::Queue;
use fanout::Routes;
use sow::SowStore;
use txlog::TxLog;

/// Identifies one connection of an [`Engine`]; never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Why the engine closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Logon refused: bad credentials, refused by a fault, bad message type (docs/protocol.md
    /// §8.2).
    LogonFailed,
    /// `name in use`: the client name belongs to another user's live connection (§8.3).
    NameInUse,
    /// A newer logon with the same client name replaced this connection (§8.3).
    Superseded,
    /// Unknown or malformed command (§1.4).
    ProtocolError,
    /// A frame above the configured maximum (§1.4).
    FrameTooLarge,
    /// No frame within two heartbeat intervals after a server heartbeat (§9).
    HeartbeatTimeout,
    /// Unsent output passed the connection's limit (`slow_consumer_bytes`), or the total of
    /// every connection's passed `limits.max_output_bytes` and this one had the largest backlog.
    SlowConsumer,
    /// Not logged on within `limits.logon_timeout`.
    LogonTimeout,
    /// No complete frame within `limits.idle_timeout`.
    IdleTimeout,
    /// Partial frames of every connection passed `limits.max_input_bytes` and this one held
    /// the largest.
    InputLimit,
    /// A fault hook (close now / after N frames).
    Fault,
    /// [`Engine::restart`].
    Restart,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::LogonFailed => "logon failed",
            CloseReason::NameInUse => "name in use",
            CloseReason::Superseded => "client name reused by a newer connection",
            CloseReason::ProtocolError => "unknown or malformed command",
            CloseReason::FrameTooLarge => "frame too large",
            CloseReason::HeartbeatTimeout => "heartbeat",
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::LogonTimeout => "logon timeout",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::InputLimit => "input buffers full",
            CloseReason::Fault => "fault injected",
            CloseReason::Restart => "broker restart",
        })
    }
}

/// What the engine asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineEvent {
    /// The connection has bytes to send: call [`Engine::drain_output`].
    Transmit(ConnId),
    /// Close the connection after writing what [`Engine::drain_output`] still returns for it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
}

/// The broker: every topic, SOW, queue, transaction log and connection (see the module docs).
pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) now: Instant,
    next_conn: u64,
    pub(crate) conns: BTreeMap<ConnId, Conn>,
    closed_out: BTreeMap<ConnId, Vec<u8>>,
    pub(crate) events: VecDeque<EngineEvent>,
    pub(crate) faults: Faults,
    pub(crate) sows: BTreeMap<String, SowStore>,
    pub(crate) queues: BTreeMap<String, Queue>,
    pub(crate) log: TxLog,
    /// Per client name: its slot in `client_seqs`. Survives restarts.
    pub(crate) clients: BTreeMap<String, usize>,
    /// Per client: the highest publisher sequence seen. A logged-on session holds its
    /// slot, so a publish finds it without a name lookup. Survives restarts.
    pub(crate) client_seqs: Vec<u64>,
    /// SOW record expirations: (when, topic, key); stale entries are skipped when popped.
    pub(crate) expiries: BTreeSet<(Instant, String, Arc<str>)>,
    routes: HashMap<String, Arc<Routes>, FnvBuild>,
    scratch: Vec<u8>,
    pub(crate) delayed: VecDeque<(Instant, ConnId, Vec<u8>)>,
    pending_close: Vec<(ConnId, CloseReason)>,
    next_auto: u64,
    /// Compiled regex topics and filters.
    pub(crate) patterns: PatternCache,
    /// Misses become [`CompileJob`]s for the driver instead of being compiled here.
    offload: bool,
    /// Jobs not yet handed to the driver.
    jobs: VecDeque<CompileJob>,
    /// Patterns being compiled (queued or handed out).
    in_flight: BTreeSet<PatternKey>,
    /// Connections waiting for each pattern being compiled.
    waiters: BTreeMap<PatternKey, BTreeSet<ConnId>>,
    /// The driver reports written bytes ([`Engine::handle_written`]).
    track_writes: bool,
    /// Accounted memory and counters.
    pub(crate) acct: Acct,
}

impl Engine {
    /// A broker with `config` and nothing stored.
    pub fn new(config: Config) -> Engine {
        let sows = config
            .sow
            .iter()
            .map(|s| (s.topic.clone(), SowStore::new(s.clone())))
            .collect();
        let queues = config
            .queues
            .iter()
            .map(|q| (q.topic.clone(), Queue::new(q.clone())))
            .collect();
        let patterns = PatternCache::new(
            config.limits.regex(),
            config.limits.filter(),
            config.limits.max_pattern_bytes,
        );
        Engine {
            log: TxLog::new(config.txlog_max_entries),
            patterns,
            offload: false,
            jobs: VecDeque::new(),
            in_flight: BTreeSet::new(),
            waiters: BTreeMap::new(),
            track_writes: false,
            acct: Acct::default(),
            cfg: config,
            now: Instant::ZERO,
            next_conn: 1,
            conns: BTreeMap::new(),
            closed_out: BTreeMap::new(),
            events: VecDeque::new(),
            faults: Faults::default(),
            sows,
            queues,
            clients: BTreeMap::new(),
            client_seqs: Vec::new(),
            expiries: BTreeSet::new(),
            routes: HashMap::default(),
            scratch: Vec::new(),
            delayed: VecDeque::new(),
            pending_close: Vec::new(),
            next_auto: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A connection was accepted.
    pub fn open(&mut self, now: Instant) -> ConnId {
        self.advance(now);
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(id, Conn::new(now, &self.cfg));
        self.finish();
        id
    }

    /// Bytes arrived on `conn`, in any chunking. Ignored for unknown or closed connections.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        self.advance(now);
        self.input(conn, bytes);
        self.finish();
    }

    /// The peer went away (no [`EngineEvent::Close`] is produced for it).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.advance(now);
        if let Some(c) = self.conns.remove(&conn) {
            let out = self.cleanup(conn, c);
            self.acct.output -= out.len();
        }
        if let Some(rest) = self.closed_out.remove(&conn) {
            self.acct.output -= rest.len();
        }
        self.finish();
    }

    /// Run every timer that is due; spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.release_delayed_acks();
        self.run_heartbeats();
        self.run_persist_timers();
        self.run_conflation();
        self.run_expirations();
        self.run_queue_timers();
        self.run_conn_timeouts();
        self.finish();
    }

    /// The earliest instant at which [`Engine::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if let Some((at, _, _)) = self.delayed.front() {
            min(*at);
        }
        for (id, c) in &self.conns {
            if let Some(x) = c.next_timer(&self.faults, &self.cfg.limits) {
                min(x);
            }
            if let Some(x) = self.conflation_timer(*id) {
                min(x);
            }
        }
        if let Some((at, _, _)) = self.expiries.first() {
            min(*at);
        }
        for q in self.queues.values() {
            if let Some(x) = q.next_timer() {
                min(x);
            }
        }
        t
    }

    /// The next thing the driver must do.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.settle();
        self.events.pop_front()
    }

    /// Append the bytes pending for `conn` to `out` (also the last bytes of a closed connection).
    ///
    /// The bytes stop counting towards the output limits here, unless the driver reports writes
    /// ([`Engine::set_track_writes`]): then they count until [`Engine::handle_written`].
    pub fn drain_output(&mut self, conn: ConnId, out: &mut Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let n = c.out.len();
            if out.is_empty() {
                std::mem::swap(out, &mut c.out);
            } else {
                out.append(&mut c.out);
            }
            c.tx_signalled = false;
            if self.track_writes {
                c.in_flight += n;
            } else {
                self.acct.output -= n;
            }
        } else if let Some(mut rest) = self.closed_out.remove(&conn) {
            self.acct.output -= rest.len();
            out.append(&mut rest);
        }
    }

    /// Fault hooks for tests. Connection requests run at the next engine call.
    pub fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }

    /// Drop every connection ([`EngineEvent::Close`] with [`CloseReason::Restart`]) and keep the
    /// transaction log, the SOW, the queues and the per-client sequence table, as a server
    /// restart with durable storage would.
    pub fn restart(&mut self, now: Instant) {
        self.advance(now);
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.schedule_close(id, CloseReason::Restart, false);
        }
        self.finish();
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Every open connection with its client name once logged on, in id order.
    pub fn connections(&self) -> Vec<(ConnId, Option<String>)> {
        self.conns
            .iter()
            .map(|(id, c)| (*id, c.session.as_ref().map(|s| s.client_name.clone())))
            .collect()
    }

    /// Records stored in a SOW topic (`None` if `topic` has no SOW).
    pub fn sow_count(&self, topic: &str) -> Option<usize> {
        self.sows.get(topic).map(SowStore::len)
    }

    /// Messages in the transaction log.
    pub fn txlog_len(&self) -> usize {
        self.log.len()
    }

    /// Messages held by a queue, leased or not (`None` if `topic` is not a queue).
    pub fn queue_depth(&self, topic: &str) -> Option<usize> {
        self.queues.get(topic).map(Queue::len)
    }

    fn advance(&mut self, now: Instant) {
        // `now` never goes backwards (contract); clamp rather than trust it.
        self.now = self.now.max(now);
    }

    /// Apply pending fault requests and closes.
    fn settle(&mut self) {
        for name in std::mem::take(&mut self.faults.close_names) {
            let ids: Vec<ConnId> = self
                .connections()
                .into_iter()
                .filter(|(_, n)| n.as_deref() == Some(name.as_str()))
                .map(|(id, _)| id)
                .collect();
            for c in ids {
                self.schedule_close(c, CloseReason::Fault, false);
            }
        }
        for req in std::mem::take(&mut self.faults.close_requests) {
            match req {
                Some(c) => self.schedule_close(c, CloseReason::Fault, false),
                None => {
                    let ids: Vec<ConnId> = self.conns.keys().copied().collect();
                    for c in ids {
                        self.schedule_close(c, CloseReason::Fault, false);
                    }
                }
            }
        }
        while !self.pending_close.is_empty() {
            for (conn, reason) in std::mem::take(&mut self.pending_close) {
                if let Some(c) = self.conns.remove(&conn) {
                    let out = self.cleanup(conn, c);
                    if !out.is_empty() {
                        self.closed_out.insert(conn, out);
                    }
                    self.acct.count_close(reason);
                    self.events.push_back(EngineEvent::Close { conn, reason });
                }
            }
        }
    }

    /// The end of an input call: settle, then note the peaks of the accounted figures (taken
    /// between calls, see [`Stats`]).
    fn finish(&mut self) {
        self.settle();
        self.acct.note_peaks(self.conns.len(), self.patterns.bytes());
        debug_assert_eq!(
            self.acct.recount(self),
            (self.acct.input, self.acct.output),
            "accounted input and output"
        );
    }

    /// Mark `conn` for closing at the end of this call. `keep_output` leaves what was already
    /// queued (a failure ack) to be written before the close.
    pub(crate) fn schedule_close(&mut self, conn: ConnId, reason: CloseReason, keep_output: bool) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            c.closing = true;
            if !keep_output {
                self.acct.output -= c.out.len();
                c.out.clear();
            }
            self.pending_close.push((conn, reason));
        }
    }

    /// Forget a removed connection: subscriptions, queue leases, held input, patterns it waited
    /// for. Returns its unsent output (still accounted; the caller keeps or subtracts it).
    fn cleanup(&mut self, conn: ConnId, c: Conn) -> Vec<u8> {
        self.acct.input -= c.in_acct;
        self.acct.output -= c.in_flight;
        if let Some(p) = &c.parked {
            self.unwait(conn, p);
        }
        if !c.subs.is_empty() {
            self.routes.clear();
        }
        for (sid, sub) in &c.subs {
            if sub.queue.is_some() {
                self.queue_unsubscribe(conn, sid, sub);
            }
        }
        c.out
    }

    /// The highest publisher sequence seen from client `name` (0: none).
    pub(crate) fn client_seq(&self, name: &str) -> u64 {
        self.clients
            .get(name)
            .and_then(|&i| self.client_seqs.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The slot of client `name` in `client_seqs`, made on first use.
    pub(crate) fn client_slot(&mut self, name: &str) -> usize {
        if let Some(&i) = self.clients.get(name) {
            return i;
        }
        let i = self.client_seqs.len();
        self.client_seqs.push(0);
        self.clients.insert(name.to_owned(), i);
        i
    }

    /// A fresh id for subscriptions that carry neither `sub_id` nor `cid`.
    pub(crate) fn auto_id(&mut self) -> String {
        self.next_auto += 1;
        format!("auto-{}", self.next_auto - 1)
    }

    /// Subscriptions changed: cached routes are stale.
    pub(crate) fn invalidate_routes(&mut self) {
        self.routes.clear();
    }
}

/// FNV-1a for the engine's lookup-only hash maps: fast on short keys, and fixed (the maps are
/// never iterated, so output does not depend on it either way).
#[derive(Default, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Builds [`Fnv`] hashers.
pub(crate) type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

#[cfg(test)]
mod tests;

//! What one client may cost (the `[limits]` of the configuration): logon and idle timeouts,
//! the caps on partial frames and on unsent output across every connection, and the accounted
//! figures behind them ([`Stats`]).
//!
//! Accounting is exact bookkeeping, not a measurement of the process: input is the capacity of
//! every connection's partial-frame buffer; output is every connection's queued bytes plus the
//! bytes handed to the driver and not yet reported written (with
//! [`Engine::set_track_writes`]), plus the last bytes of closed connections not yet drained;
//! patterns are the accounted sizes of the compiled regex topics and filters (see
//! [`crate::compile`]). Each cap is enforced as soon as the figure passes it, so it is passed by
//! at most one read (input) or one frame (output) within one engine call and never between
//! calls; the peaks in [`Stats`] are taken between calls.

use amps_core::codec::AckType;

use super::{CloseReason, ConnId, Engine};

/// Accounted memory, peaks and counters of an engine (and of the TCP server around it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections.
    pub connections: usize,
    /// Most connections open at once.
    pub connections_peak: usize,
    /// Connections refused at the `max_connections` cap (TCP server; 0 from the engine).
    pub connections_refused: u64,
    /// Bytes of partial frames held (buffer capacity).
    pub input_bytes: usize,
    /// Highest `input_bytes` between calls.
    pub input_bytes_peak: usize,
    /// Bytes read from sockets and not yet processed (TCP server; 0 from the engine).
    pub input_queue_bytes: usize,
    /// Unsent output bytes: queued, in flight, and the last bytes of closed connections.
    pub output_bytes: usize,
    /// Highest `output_bytes` between calls.
    pub output_bytes_peak: usize,
    /// Accounted bytes of the compiled regex topics and filters.
    pub pattern_bytes: usize,
    /// Highest `pattern_bytes` between calls.
    pub pattern_bytes_peak: usize,
    /// Distinct compiled patterns cached.
    pub patterns: usize,
    /// Compilations finished (on the engine's thread or off it).
    pub compiles: u64,
    /// Compilations run on the engine's own thread (cache misses without offloading).
    pub inline_compiles: u64,
    /// Pattern lookups answered from the cache.
    pub compile_hits: u64,
    /// Compilations queued for the driver or running.
    pub compiles_pending: usize,
    /// Connections whose input waits for a compilation.
    pub parked_connections: usize,
    /// Connections closed for not logging on in time.
    pub closed_logon_timeout: u64,
    /// Connections closed for sending no complete frame in time.
    pub closed_idle_timeout: u64,
    /// Connections closed as slow consumers (their own limit or the total one).
    pub closed_slow_consumer: u64,
    /// Connections closed because the partial frames of all connections passed the cap.
    pub closed_input_limit: u64,
    /// Connections closed for a frame above the frame limit.
    pub closed_frame_too_large: u64,
}

/// The engine's running totals.
#[derive(Debug, Default)]
pub(crate) struct Acct {
    pub(crate) input: usize,
    pub(crate) output: usize,
    input_peak: usize,
    output_peak: usize,
    pattern_peak: usize,
    conn_peak: usize,
    closed: [u64; 5],
}

impl Acct {
    pub(super) fn note_peaks(&mut self, conns: usize, patterns: usize) {
        self.input_peak = self.input_peak.max(self.input);
        self.output_peak = self.output_peak.max(self.output);
        self.pattern_peak = self.pattern_peak.max(patterns);
        self.conn_peak = self.conn_peak.max(conns);
    }

    pub(super) fn count_close(&mut self, reason: CloseReason) {
        let i = match reason {
            CloseReason::LogonTimeout => 0,
            CloseReason::IdleTimeout => 1,
            CloseReason::SlowConsumer => 2,
            CloseReason::InputLimit => 3,
            CloseReason::FrameTooLarge => 4,
            _ => return,
        };
        if let Some(n) = self.closed.get_mut(i) {
            *n += 1;
        }
    }

    /// The input and output totals recomputed from scratch (a check of the bookkeeping).
    pub(super) fn recount(&self, e: &Engine) -> (usize, usize) {
        let input = e.conns.values().map(|c| c.in_acct).sum();
        let output = e.conns.values().map(|c| c.backlog()).sum::<usize>()
            + e.closed_out.values().map(Vec::len).sum::<usize>();
        (input, output)
    }
}

impl Engine {
    /// Accounted memory, peaks and counters ([`Stats`]).
    pub fn stats(&self) -> Stats {
        let [logon, idle, slow, input, frame] = self.acct.closed;
        Stats {
            connections: self.conns.len(),
            connections_peak: self.acct.conn_peak,
            input_bytes: self.acct.input,
            input_bytes_peak: self.acct.input_peak,
            output_bytes: self.acct.output,
            output_bytes_peak: self.acct.output_peak,
            pattern_bytes: self.patterns.bytes(),
            pattern_bytes_peak: self.acct.pattern_peak,
            patterns: self.patterns.len(),
            compiles: self.patterns.counters.compiles,
            inline_compiles: self.patterns.counters.inline_compiles,
            compile_hits: self.patterns.counters.hits,
            compiles_pending: self.in_flight.len(),
            parked_connections: self.conns.values().filter(|c| c.parked.is_some()).count(),
            closed_logon_timeout: logon,
            closed_idle_timeout: idle,
            closed_slow_consumer: slow,
            closed_input_limit: input,
            closed_frame_too_large: frame,
            ..Stats::default()
        }
    }

    /// Count drained bytes as output until the driver reports them written
    /// ([`Engine::handle_written`]). Off by default: drained bytes stop counting at once.
    pub fn set_track_writes(&mut self, on: bool) {
        self.track_writes = on;
    }

    /// `bytes` drained from `conn` were written to the socket (with
    /// [`Engine::set_track_writes`]).
    pub fn handle_written(&mut self, conn: ConnId, bytes: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let n = bytes.min(c.in_flight);
            c.in_flight -= n;
            self.acct.output -= n;
        }
    }

    /// The connection's input waits for a compilation: a driver may stop reading it until
    /// [`Engine::handle_compiled`].
    pub fn input_paused(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.parked.is_some())
    }

    /// Logon and idle timeouts.
    pub(super) fn run_conn_timeouts(&mut self) {
        let now = self.now;
        let limits = &self.cfg.limits;
        let mut due = Vec::new();
        for (id, c) in &self.conns {
            if c.logon_deadline(limits).is_some_and(|t| now >= t) {
                due.push((*id, CloseReason::LogonTimeout));
            } else if c.idle_deadline(limits).is_some_and(|t| now >= t) {
                due.push((*id, CloseReason::IdleTimeout));
            }
        }
        for (id, why) in due {
            self.schedule_close(id, why, true);
        }
    }

    /// Bring `conn`'s accounted input up to date, then enforce the total.
    pub(super) fn account_input(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let now = c.inbuf.capacity();
        self.acct.input = self.acct.input - c.in_acct + now;
        c.in_acct = now;
        if self.acct.input > self.cfg.limits.max_input_bytes {
            self.shed_input();
        }
    }

    /// The partial frames of all connections passed the cap: close the largest holders until
    /// the rest fits (`message too large`, no `cid`).
    fn shed_input(&mut self) {
        let mut over = self.acct.input - self.cfg.limits.max_input_bytes;
        let mut holders: Vec<(usize, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing && c.in_acct > 0)
            .map(|(id, c)| (c.in_acct, *id))
            .collect();
        holders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (n, id) in holders {
            if over == 0 {
                break;
            }
            over = over.saturating_sub(n);
            self.ack_raw(
                id,
                None,
                AckType::Processed,
                Some("message too large"),
                |_| {},
            );
            self.schedule_close(id, CloseReason::InputLimit, true);
            // The held input goes now, not when the close is settled.
            if let Some(c) = self.conns.get_mut(&id) {
                self.acct.input -= c.in_acct;
                c.in_acct = 0;
                c.inbuf = Vec::new();
            }
        }
    }

    /// Unsent output of all connections passed the cap: close the connections with the largest
    /// backlog first until the rest fits.
    pub(super) fn shed_output(&mut self) {
        let cap = self.cfg.limits.max_output_bytes;
        let mut backlogs: Vec<(usize, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing)
            .map(|(id, c)| (c.backlog(), *id))
            .collect();
        backlogs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        // Bytes in flight of the connections closed here go when the driver cuts their
        // sockets (it aborts the write of a slow consumer).
        let mut releasing = 0usize;
        for (_, id) in backlogs {
            if self.acct.output.saturating_sub(releasing) <= cap {
                break;
            }
            releasing += self.conns.get(&id).map_or(0, |c| c.in_flight);
            self.schedule_close(id, CloseReason::SlowConsumer, false);
        }
    }
}

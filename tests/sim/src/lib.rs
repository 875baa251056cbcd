//! # amps-sim
//!
//! A deterministic simulator: client sessions of `amps-core` and one or two `amps-broker` engines
//! in one process, connected by a virtual wire with latency, random splitting and coalescing,
//! disconnects at any byte, silent black holes, broker restarts and failover between two brokers,
//! under a virtual clock that jumps to the next deadline.
//!
//! Everything random comes from one seed: the same seed produces a byte-identical trace. Each
//! run checks these invariants: no publish lost once the caller was told it is stored, no duplicate
//! or gap delivered to a bookmark subscriber that discards, every command completes or fails, every
//! bound respected.
//!
//! ```
//! let outcome = amps_sim::run(7, amps_sim::TraceMode::Digest).unwrap();
//! assert!(outcome.published > 0);
//! ```

mod actors;
mod check;
mod wire;

use std::fmt::Write as _;

use amps_broker::{Engine, EngineEvent};
use amps_core::util::Rng;
use amps_core::{Duration, Instant};

use actors::{Client, Role};
use wire::Link;

/// How much of the trace to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// Only a digest (FNV-1a 64) and the last lines, for bulk runs.
    Digest,
    /// Every line, for determinism tests and replays.
    Full,
}

/// The shape of one run, derived from its seed.
#[derive(Clone, Debug)]
pub struct Params {
    /// The seed.
    pub seed: u64,
    /// One broker, or two for failover.
    pub brokers: usize,
    /// Messages the publisher publishes.
    pub messages: u64,
    /// Whether a bookmark subscriber runs (single-broker runs).
    pub subscriber: bool,
    /// Faults are injected until this virtual time.
    pub fault_horizon: Duration,
    /// Mean gap between faults.
    pub fault_gap: Duration,
    /// Publish window of the publisher (messages).
    pub window: usize,
}

impl Params {
    /// Parameters for `seed`.
    pub fn from_seed(seed: u64) -> Params {
        let mut r = Rng::new(seed ^ 0xA5A5_5A5A);
        let brokers = if r.below(4) == 0 { 2 } else { 1 };
        Params {
            seed,
            brokers,
            messages: 10 + r.below(150),
            subscriber: brokers == 1,
            fault_horizon: Duration::from_millis(500 + r.below(4_000)),
            fault_gap: Duration::from_millis(50 + r.below(400)),
            window: 8 + r.below(56) as usize,
        }
    }
}

/// What a successful run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its parameters.
    pub params: Params,
    /// Messages accepted by the publish store.
    pub published: u64,
    /// Messages delivered to the bookmark subscriber.
    pub delivered: u64,
    /// Faults injected.
    pub faults: u32,
    /// Connections opened.
    pub connections: u32,
    /// Virtual time at the end.
    pub end: Instant,
    /// FNV-1a 64 of the whole trace.
    pub digest: u64,
    /// The trace (`TraceMode::Full`) or its last lines.
    pub trace: Vec<u8>,
}

/// A violated invariant.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub what: String,
    /// The end of the trace.
    pub trace_tail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed: {}\nreplay with: SIM_SEED={} cargo test -p amps-sim --release --test seeds replay -- --nocapture\n--- trace tail ---\n{}",
            self.seed, self.what, self.seed, self.trace_tail
        )
    }
}

pub(crate) struct Trace {
    mode: TraceMode,
    full: Vec<u8>,
    tail: std::collections::VecDeque<String>,
    line: String,
    digest: u64,
}

impl Trace {
    fn new(mode: TraceMode) -> Self {
        Trace {
            mode,
            full: Vec::new(),
            tail: Default::default(),
            line: String::new(),
            digest: 0xcbf2_9ce4_8422_2325,
        }
    }

    pub(crate) fn log(&mut self, now: Instant, args: std::fmt::Arguments<'_>) {
        self.line.clear();
        let _ = write!(self.line, "{:>10} ", now.as_micros());
        let _ = self.line.write_fmt(args);
        self.line.push('\n');
        for b in self.line.bytes() {
            self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        match self.mode {
            TraceMode::Full => self.full.extend_from_slice(self.line.as_bytes()),
            TraceMode::Digest => {
                if self.tail.len() == 400 {
                    self.tail.pop_front();
                }
                self.tail.push_back(self.line.clone());
            }
        }
    }

    fn tail_text(&self) -> String {
        match self.mode {
            TraceMode::Full => {
                let s = String::from_utf8_lossy(&self.full);
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(400)..].join("\n")
            }
            TraceMode::Digest => self.tail.iter().map(String::as_str).collect(),
        }
    }
}

pub(crate) struct Broker {
    pub(crate) engine: Engine,
    /// Refuses connections until this time (a broker that is down).
    pub(crate) down_until: Instant,
}

/// The world.
pub(crate) struct Sim {
    pub(crate) p: Params,
    pub(crate) now: Instant,
    pub(crate) rng: Rng,
    pub(crate) brokers: Vec<Broker>,
    pub(crate) clients: Vec<Client>,
    pub(crate) links: Vec<Option<Link>>,
    pub(crate) trace: Trace,
    pub(crate) faults: u32,
    pub(crate) connections: u32,
    next_fault: Instant,
    quiet: bool,
    scratch: Vec<u8>,
}

/// Run seed `seed` and check every invariant.
pub fn run(seed: u64, mode: TraceMode) -> Result<Outcome, Failure> {
    let p = Params::from_seed(seed);
    let mut sim = Sim::new(p, mode);
    let result = sim.run_to_end();
    match result {
        Ok(()) => Ok(sim.outcome()),
        Err(what) => Err(Failure {
            seed,
            what,
            trace_tail: sim.trace.tail_text(),
        }),
    }
}

impl Sim {
    fn new(p: Params, mode: TraceMode) -> Sim {
        let mut rng = Rng::new(p.seed);
        let brokers = (0..p.brokers)
            .map(|_| {
                let cfg = amps_broker::Config {
                    ack_conflation: amps_broker::config::ConfDuration(Duration::from_millis(
                        20 + rng.below(200),
                    )),
                    ..amps_broker::Config::default()
                };
                Broker {
                    engine: Engine::new(cfg),
                    down_until: Instant::ZERO,
                }
            })
            .collect();
        let mut clients = vec![Client::publisher(&p, &mut rng)];
        if p.subscriber {
            clients.push(Client::subscriber(&p, &mut rng));
        }
        let first_fault =
            Instant::ZERO + Duration::from_micros(rng.below(p.fault_gap.as_micros().max(1) * 2));
        Sim {
            p,
            now: Instant::ZERO,
            rng,
            brokers,
            clients,
            links: Vec::new(),
            trace: Trace::new(mode),
            faults: 0,
            connections: 0,
            next_fault: first_fault,
            quiet: false,
            scratch: vec![0u8; 4096],
        }
    }

    fn outcome(&self) -> Outcome {
        let (published, delivered) = self.clients.iter().fold((0, 0), |(p, d), c| match &c.role {
            Role::Publisher(pb) => (p + pb.accepted.len() as u64, d),
            Role::Subscriber(s) => (p, d + s.got.len() as u64),
            Role::Auditor(_) => (p, d),
        });
        Outcome {
            params: self.p.clone(),
            published,
            delivered,
            faults: self.faults,
            connections: self.connections,
            end: self.now,
            digest: self.trace.digest,
            trace: match self.trace.mode {
                TraceMode::Full => self.trace.full.clone(),
                TraceMode::Digest => self.trace.tail_text().into_bytes(),
            },
        }
    }

    fn run_to_end(&mut self) -> Result<(), String> {
        let limit = Instant::ZERO + self.p.fault_horizon + Duration::from_secs(120);
        let mut steps = 0u64;
        loop {
            steps += 1;
            if steps > 2_000_000 {
                return Err(format!(
                    "no progress: step limit; due now: {}",
                    self.due_now()
                ));
            }
            self.step()?;
            check::bounds(self)?;
            if self.finished() {
                if self
                    .clients
                    .iter()
                    .any(|c| matches!(c.role, Role::Auditor(_)))
                {
                    break;
                }
                // The world is quiet: read every broker's log from EPOCH.
                for b in 0..self.brokers.len() {
                    self.clients.push(Client::auditor(b));
                }
                self.trace.log(self.now, format_args!("auditors start"));
            }
            let Some(next) = self.next_time() else {
                return Err("quiescent before finishing: nothing scheduled".into());
            };
            if next > limit {
                return Err(format!("not finished by {limit:?}: {}", self.progress()));
            }
            self.now = next.max(self.now);
        }
        check::final_state(self)
    }

    /// Everything that happens at `now`, until nothing more does.
    fn step(&mut self) -> Result<(), String> {
        self.inject_faults();
        for i in 0..self.links.len() {
            self.deliver(i)?;
        }
        for b in 0..self.brokers.len() {
            let now = self.now;
            let e = &mut self.brokers[b].engine;
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
            self.broker_events(b);
        }
        for c in 0..self.clients.len() {
            self.client_turn(c)?;
        }
        self.close_drained_links();
        Ok(())
    }

    fn next_time(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for l in self.links.iter().flatten() {
            add(l.to_broker.next_at());
            add(l.to_client.next_at());
            add(l.closing_at);
        }
        for b in &self.brokers {
            add(b.engine.poll_timeout());
        }
        for c in &self.clients {
            add(c.session.poll_timeout());
            add(c.next_action(self.p.messages));
        }
        if self.now < Instant::ZERO + self.p.fault_horizon {
            add(Some(self.next_fault));
        }
        // Never stand still: anything due now has been handled by `step`.
        t.map(|t| t.max(self.now + Duration::from_micros(1)))
    }

    /// What keeps the clock from advancing (diagnostics for a stuck run).
    fn due_now(&self) -> String {
        let now = self.now;
        let mut out = Vec::new();
        for (i, l) in self.links.iter().enumerate() {
            if let Some(l) = l {
                for (what, t) in [
                    ("to_broker", l.to_broker.next_at()),
                    ("to_client", l.to_client.next_at()),
                    ("closing", l.closing_at),
                ] {
                    if t.is_some_and(|t| t <= now) {
                        out.push(format!("link {i} {what}"));
                    }
                }
            }
        }
        for (b, br) in self.brokers.iter().enumerate() {
            if br.engine.poll_timeout().is_some_and(|t| t <= now) {
                out.push(format!("broker {b} timeout {:?}", br.engine.poll_timeout()));
            }
        }
        for (c, cl) in self.clients.iter().enumerate() {
            if cl.session.poll_timeout().is_some_and(|t| t <= now) {
                out.push(format!(
                    "client {c} timeout {:?} state {:?}",
                    cl.session.poll_timeout(),
                    cl.session.state()
                ));
            }
            if cl.next_action(self.p.messages).is_some_and(|t| t <= now) {
                out.push(format!("client {c} action"));
            }
        }
        format!("{now:?}: {}", out.join(", "))
    }

    fn finished(&self) -> bool {
        self.now >= Instant::ZERO + self.p.fault_horizon
            && self.clients.iter().all(|c| c.done(&self.p))
    }

    fn progress(&self) -> String {
        self.clients
            .iter()
            .map(|c| c.progress())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Move due bytes across link `i`.
    fn deliver(&mut self, i: usize) -> Result<(), String> {
        let now = self.now;
        let Some(link) = self.links[i].as_mut() else {
            return Ok(());
        };
        let (ci, bi, conn) = (link.client, link.broker, link.conn);
        let to_b = link.to_broker.take_due(now, &mut self.rng);
        let to_c = link.to_client.take_due(now, &mut self.rng);
        for chunk in to_b {
            self.trace
                .log(now, format_args!("wire c{ci}->b{bi} {} bytes", chunk.len()));
            self.brokers[bi].engine.handle_bytes(now, conn, &chunk);
        }
        for chunk in to_c {
            self.trace
                .log(now, format_args!("wire b{bi}->c{ci} {} bytes", chunk.len()));
            self.feed_client(ci, &chunk)?;
        }
        Ok(())
    }

    fn broker_events(&mut self, b: usize) {
        let now = self.now;
        while let Some(ev) = self.brokers[b].engine.poll_event() {
            match ev {
                EngineEvent::Transmit(conn) => {
                    self.scratch.clear();
                    let mut out = std::mem::take(&mut self.scratch);
                    self.brokers[b].engine.drain_output(conn, &mut out);
                    if let Some(l) = self
                        .links
                        .iter_mut()
                        .flatten()
                        .find(|l| l.broker == b && l.conn == conn)
                        && !l.black_hole
                    {
                        l.to_client.send(now, l.latency, &out, &mut self.rng);
                    }
                    self.scratch = out;
                }
                EngineEvent::Close { conn, reason } => {
                    let mut out = Vec::new();
                    self.brokers[b].engine.drain_output(conn, &mut out);
                    self.trace
                        .log(now, format_args!("b{b} closes {conn}: {reason}"));
                    if let Some(l) = self
                        .links
                        .iter_mut()
                        .flatten()
                        .find(|l| l.broker == b && l.conn == conn)
                    {
                        if !l.black_hole {
                            l.to_client.send(now, l.latency, &out, &mut self.rng);
                        }
                        let done = l.to_client.last_at().unwrap_or(now).max(now);
                        l.closing_at = Some(l.closing_at.map_or(done, |t| t.min(done)));
                    }
                }
            }
        }
    }

    /// Close links whose closing time came: both ends are told.
    fn close_drained_links(&mut self) {
        let now = self.now;
        for i in 0..self.links.len() {
            let due = self.links[i]
                .as_ref()
                .is_some_and(|l| l.closing_at.is_some_and(|t| t <= now));
            if due {
                self.close_link(i);
            }
        }
    }

    pub(crate) fn close_link(&mut self, i: usize) {
        let now = self.now;
        let Some(l) = self.links[i].take() else {
            return;
        };
        self.trace.log(
            now,
            format_args!("link {i} (c{} b{}) closed", l.client, l.broker),
        );
        self.brokers[l.broker].engine.handle_closed(now, l.conn);
        self.broker_events(l.broker);
        let c = &mut self.clients[l.client];
        if c.link == Some(i) {
            c.link = None;
            c.session
                .handle_closed(now, amps_core::session::TransportClosed::PeerClosed);
        }
    }

    fn inject_faults(&mut self) {
        let horizon = Instant::ZERO + self.p.fault_horizon;
        if self.now >= horizon && !self.quiet {
            // The world turns quiet: armed faults are disarmed too.
            self.quiet = true;
            for b in &mut self.brokers {
                b.engine.faults().clear();
            }
            self.trace.log(self.now, format_args!("fault horizon"));
        }
        if self.now < self.next_fault || self.now >= horizon {
            return;
        }
        let gap = self.p.fault_gap.as_micros().max(1);
        self.next_fault = self.now + Duration::from_micros(1 + self.rng.below(gap * 2));
        self.faults += 1;
        let live: Vec<usize> = (0..self.links.len())
            .filter(|&i| self.links[i].is_some())
            .collect();
        let now = self.now;
        match self.rng.below(10) {
            0..=5 if !live.is_empty() => {
                // Cut a link at any byte: keep a random prefix of what is in flight.
                let i = live[self.rng.below(live.len() as u64) as usize];
                let rng = &mut self.rng;
                if let Some(l) = self.links[i].as_mut() {
                    let (a, b) = (l.to_broker.bytes_in_flight(), l.to_client.bytes_in_flight());
                    l.to_broker.truncate(rng.below(a as u64 + 1) as usize);
                    l.to_client.truncate(rng.below(b as u64 + 1) as usize);
                    let done = l
                        .to_broker
                        .last_at()
                        .max(l.to_client.last_at())
                        .unwrap_or(now)
                        .max(now);
                    l.closing_at = Some(done);
                    self.trace.log(now, format_args!("fault: cut link {i}"));
                }
            }
            6 if !live.is_empty() => {
                let i = live[self.rng.below(live.len() as u64) as usize];
                if let Some(l) = self.links[i].as_mut() {
                    l.black_hole = true;
                    l.to_broker.clear();
                    l.to_client.clear();
                    self.trace
                        .log(now, format_args!("fault: black hole on link {i}"));
                }
            }
            7 | 8 => {
                let b = self.rng.below(self.brokers.len() as u64) as usize;
                self.trace
                    .log(now, format_args!("fault: restart broker {b}"));
                let down = Duration::from_millis(self.rng.below(300));
                self.brokers[b].down_until = now + down;
                self.brokers[b].engine.restart(now);
                self.broker_events(b);
                // A restarted broker's connections are gone at once (their bytes with them).
                for i in 0..self.links.len() {
                    if self.links[i].as_ref().is_some_and(|l| l.broker == b) {
                        if let Some(l) = self.links[i].as_mut() {
                            l.to_broker.clear();
                            l.to_client.clear();
                        }
                        self.close_link(i);
                    }
                }
            }
            _ => {
                // Close the next connection that a broker sees a few frames on.
                let b = self.rng.below(self.brokers.len() as u64) as usize;
                let n = 1 + self.rng.below(20) as u32;
                self.brokers[b].engine.faults().close_after(u64::from(n));
                self.trace.log(
                    now,
                    format_args!("fault: broker {b} closes a connection after {n} frames"),
                );
            }
        }
    }
}

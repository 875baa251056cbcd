//! The simulated applications: an HA publisher with a memory publish store, an HA bookmark
//! subscriber that discards every message it processes, and auditors that read a broker's
//! whole transaction log from EPOCH at the end.

use std::collections::BTreeSet;

use amps_core::codec::{AckType, Command};
use amps_core::ha::{
    DefaultServerChooser, ExponentialDelayStrategy, ReconnectPolicy, ServerChooser,
};
use amps_core::session::{
    CommandId, Config, ConnectionState, Event, Exec, HeapStorage, HeartbeatConfig, Limits, Logon,
    Parts, PublishError, Session, SessionError, heap_bookmark_store, heap_publish_store,
};
use amps_core::store::{BookmarkStore, NoBookmarkStore, NoPublishStore, PublishStore};
use amps_core::util::Rng;
use amps_core::{Duration, Instant};

use crate::wire::{Link, Pipe};
use crate::{Params, Sim};

pub(crate) type Store = HeapStorage<Box<dyn PublishStore + Send>, Box<dyn BookmarkStore + Send>>;

pub(crate) const TOPIC: &str = "events";

pub(crate) struct Publisher {
    pub(crate) next_at: Instant,
    pub(crate) accepted: Vec<u64>,
    pub(crate) persisted: u64,
}

pub(crate) struct Subscriber {
    pub(crate) sub: Option<CommandId>,
    /// Every delivery, redeliveries included.
    pub(crate) got: Vec<u64>,
    /// Processed and discarded (Python client: `discard()`).
    pub(crate) discarded: BTreeSet<u64>,
    /// Work in progress: (done at, seq, bookmark). The application finishes messages late and
    /// out of order, so a disconnect finds some received but not yet discarded.
    pub(crate) working: Vec<(Instant, u64, String)>,
}

pub(crate) struct Auditor {
    pub(crate) cmd: Option<CommandId>,
    pub(crate) got: Vec<u64>,
    pub(crate) done: bool,
}

pub(crate) enum Role {
    Publisher(Publisher),
    Subscriber(Subscriber),
    Auditor(Auditor),
}

pub(crate) struct Client {
    pub(crate) name: &'static str,
    pub(crate) session: Session<Store>,
    pub(crate) role: Role,
    pub(crate) chooser: DefaultServerChooser<Vec<String>>,
    pub(crate) link: Option<usize>,
    /// Commands sent and not yet completed or failed.
    pub(crate) open: BTreeSet<CommandId>,
    pub(crate) errors: Vec<String>,
}

fn uri(b: usize) -> String {
    format!("tcp://broker{b}:9007/amps/json")
}

fn limits(window: usize) -> Limits {
    Limits {
        max_frame: 1 << 16,
        rx_bytes: (1 << 16) + 4,
        tx_bytes: 1 << 14,
        publish_window_messages: window,
        publish_window_bytes: window * 64,
        ..Limits::small()
    }
}

fn ha(name: &'static str, rng: &mut Rng, resubscribe: bool) -> Config<'static> {
    let mut c = Config::new(name);
    c.reconnect = ReconnectPolicy::Exponential(
        ExponentialDelayStrategy::new(
            Duration::from_millis(1 + rng.below(20)),
            2.0,
            Duration::from_millis(400),
        )
        .with_jitter(Duration::from_millis(rng.below(10))),
    );
    c.resubscribe = resubscribe;
    c.heartbeat = Some(HeartbeatConfig::new(1));
    c.seed = rng.next_u64();
    c
}

impl Client {
    fn new(
        cfg: &Config<'_>,
        name: &'static str,
        ps: Box<dyn PublishStore + Send>,
        bs: Box<dyn BookmarkStore + Send>,
        role: Role,
        brokers: Vec<String>,
    ) -> Client {
        let parts = Parts::heap(&cfg.limits, ps, bs);
        let mut session = match Session::new(cfg, parts) {
            Ok(s) => s,
            Err(e) => panic!("simulator config is valid: {e}"),
        };
        session.start(Instant::ZERO);
        Client {
            name,
            session,
            role,
            chooser: DefaultServerChooser::new(brokers),
            link: None,
            open: BTreeSet::new(),
            errors: Vec::new(),
        }
    }

    pub(crate) fn publisher(p: &Params, rng: &mut Rng) -> Client {
        let mut cfg = ha("sim-pub", rng, false);
        cfg.limits = limits(p.window);
        let store: Box<dyn PublishStore + Send> = Box::new(heap_publish_store(&cfg.limits));
        let role = Role::Publisher(Publisher {
            next_at: Instant::ZERO,
            accepted: Vec::new(),
            persisted: 0,
        });
        Client::new(
            &cfg,
            "sim-pub",
            store,
            Box::new(NoBookmarkStore),
            role,
            (0..p.brokers).map(uri).collect(),
        )
    }

    pub(crate) fn subscriber(p: &Params, rng: &mut Rng) -> Client {
        let mut cfg = ha("sim-sub", rng, true);
        cfg.limits = limits(8);
        let role = Role::Subscriber(Subscriber {
            sub: None,
            got: Vec::new(),
            discarded: BTreeSet::new(),
            working: Vec::new(),
        });
        Client::new(
            &cfg,
            "sim-sub",
            Box::new(NoPublishStore),
            Box::new(heap_bookmark_store(1 << 16)),
            role,
            (0..p.brokers).map(uri).collect(),
        )
    }

    pub(crate) fn auditor(broker: usize) -> Client {
        let mut cfg = Config::new("sim-audit");
        cfg.limits = limits(8);
        // One try is enough: the world is quiet by now.
        cfg.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::new(
            Duration::from_millis(10),
            1.0,
            Duration::from_millis(10),
        ));
        let role = Role::Auditor(Auditor {
            cmd: None,
            got: Vec::new(),
            done: false,
        });
        Client::new(
            &cfg,
            "sim-audit",
            Box::new(NoPublishStore),
            Box::new(NoBookmarkStore),
            role,
            vec![uri(broker)],
        )
    }

    /// When the application wants to act next.
    pub(crate) fn next_action(&self, total: u64) -> Option<Instant> {
        match &self.role {
            Role::Publisher(p) if (p.accepted.len() as u64) < total => Some(p.next_at),
            Role::Subscriber(s) => s.working.iter().map(|w| w.0).min(),
            _ => None,
        }
    }

    pub(crate) fn done(&self, p: &Params) -> bool {
        let quiet = self.open.is_empty();
        match &self.role {
            Role::Publisher(pb) => {
                quiet
                    && pb.accepted.len() as u64 == p.messages
                    && self.session.unpersisted_count() == 0
            }
            Role::Subscriber(s) => {
                quiet && s.working.is_empty() && s.discarded.len() as u64 >= p.messages
            }
            Role::Auditor(a) => a.done,
        }
    }

    pub(crate) fn progress(&self) -> String {
        match &self.role {
            Role::Publisher(p) => format!(
                "{}: accepted {} persisted {} unpersisted {} open {:?} state {:?}",
                self.name,
                p.accepted.len(),
                p.persisted,
                self.session.unpersisted_count(),
                self.open,
                self.session.state()
            ),
            Role::Subscriber(s) => format!(
                "{}: got {} discarded {} working {} open {:?} state {:?}",
                self.name,
                s.got.len(),
                s.discarded.len(),
                s.working.len(),
                self.open,
                self.session.state()
            ),
            Role::Auditor(a) => format!(
                "{}: got {} done {} state {:?}",
                self.name,
                a.got.len(),
                a.done,
                self.session.state()
            ),
        }
    }
}

/// The sequence number in a bookmark `<publisher>|<seq>|` (docs/protocol.md §10.3).
pub(crate) fn seq_of(bm: &str) -> Option<u64> {
    amps_core::codec::BookmarkId::new(bm).seq()
}

impl Sim {
    /// One client's turn: connect if asked, act, handle events, transmit.
    pub(crate) fn client_turn(&mut self, c: usize) -> Result<(), String> {
        let now = self.now;
        if self.clients[c]
            .session
            .poll_timeout()
            .is_some_and(|t| t <= now)
        {
            self.clients[c].session.handle_timeout(now);
        }
        if self.clients[c].session.poll_connect(now).is_some() {
            self.connect(c);
        }
        self.act(c)?;
        self.client_events(c)?;
        self.transmit(c);
        Ok(())
    }

    fn connect(&mut self, c: usize) {
        let now = self.now;
        let uri = self.clients[c]
            .chooser
            .current_uri()
            .unwrap_or_default()
            .to_string();
        let b = uri.as_bytes().get(12).map_or(0, |d| usize::from(d - b'0'));
        if b >= self.brokers.len() || now < self.brokers[b].down_until {
            self.trace
                .log(now, format_args!("c{c} connect to b{b} refused"));
            let cl = &mut self.clients[c];
            cl.chooser.report_failure(&uri, &"connection refused");
            cl.session.handle_connect_failed(now);
            return;
        }
        let conn = self.brokers[b].engine.open(now);
        let latency = Duration::from_micros(self.rng.below(3_000));
        self.links.push(Some(Link {
            client: c,
            broker: b,
            conn,
            latency,
            to_broker: Pipe::default(),
            to_client: Pipe::default(),
            black_hole: false,
            closing_at: None,
        }));
        self.connections += 1;
        let cl = &mut self.clients[c];
        cl.link = Some(self.links.len() - 1);
        self.trace
            .log(now, format_args!("c{c} connected to b{b} as {conn}"));
        let logon = Logon {
            message_type: Some("json"),
            ..Logon::default()
        };
        if let Err(e) = cl.session.handle_connected(now, &logon) {
            cl.errors.push(format!("handle_connected: {e}"));
        }
    }

    fn act(&mut self, c: usize) -> Result<(), String> {
        let now = self.now;
        let total = self.p.messages;
        let gap = self.rng.below(20_000);
        let flush = self.rng.below(30) == 0;
        let cl = &mut self.clients[c];
        let ready = cl.session.state() == amps_core::session::State::Ready;
        match &mut cl.role {
            Role::Publisher(p) if (p.accepted.len() as u64) < total && now >= p.next_at => {
                let n = p.accepted.len() + 1;
                let payload = format!(r#"{{"n":{n}}}"#);
                match cl.session.publish(now, TOPIC, payload.as_bytes()) {
                    Ok(Some(seq)) => {
                        p.accepted.push(seq);
                        p.next_at = now + Duration::from_micros(gap);
                        self.trace
                            .log(now, format_args!("c{c} published n={n} seq={seq}"));
                        if flush
                            && ready
                            && let Ok(id) = cl.session.publish_flush(now, Duration::from_secs(60))
                        {
                            cl.open.insert(id);
                        }
                    }
                    Ok(None) => return Err("publish without a store sequence".into()),
                    Err(
                        PublishError::WindowFull
                        | PublishError::NotConnected
                        | PublishError::WouldBlock,
                    ) => {
                        p.next_at = now + Duration::from_millis(5);
                    }
                    Err(e) => return Err(format!("publish failed: {e}")),
                }
            }
            Role::Subscriber(s) if s.working.iter().any(|w| w.0 <= now) => {
                let due: Vec<usize> = (0..s.working.len())
                    .filter(|&i| s.working[i].0 <= now)
                    .collect();
                let pick = due[self.rng.below(due.len() as u64) as usize];
                let (_, seq, bm) = s.working.swap_remove(pick);
                if let Some(sub) = s.sub
                    && let Err(e) = cl.session.discard(sub, &bm)
                {
                    return Err(format!("discard failed: {e}"));
                }
                s.discarded.insert(seq);
                self.trace
                    .log(now, format_args!("c{c} discarded seq={seq}"));
            }
            Role::Subscriber(s) if s.sub.is_none() && ready => {
                let cmd = Command::subscribe(TOPIC)
                    .sub_id("sim-sub-1")
                    .bookmark("recent");
                match cl
                    .session
                    .execute_with(now, &cmd, Exec { resubscribe: true })
                {
                    Ok(id) => {
                        s.sub = Some(id);
                        cl.open.insert(id);
                    }
                    Err(e) => return Err(format!("subscribe failed: {e}")),
                }
            }
            Role::Auditor(a) if a.cmd.is_none() && ready => {
                let cmd = Command::subscribe(TOPIC)
                    .sub_id("audit")
                    .bookmark("0")
                    .ack(AckType::Completed);
                match cl.session.execute(now, &cmd) {
                    Ok(id) => {
                        a.cmd = Some(id);
                        cl.open.insert(id);
                    }
                    Err(e) => return Err(format!("audit subscribe failed: {e}")),
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn feed_client(&mut self, c: usize, mut bytes: &[u8]) -> Result<(), String> {
        let now = self.now;
        while !bytes.is_empty() {
            match self.clients[c].session.handle_bytes(now, bytes) {
                Ok(n) => bytes = &bytes[n..],
                // The session ended the connection (e.g. heartbeat): late bytes are dropped.
                Err(_) => return Ok(()),
            }
            self.client_events(c)?;
        }
        self.client_events(c)
    }

    fn client_events(&mut self, c: usize) -> Result<(), String> {
        let now = self.now;
        let mut close = false;
        {
            let cl = &mut self.clients[c];
            while let Some(ev) = cl.session.poll_event() {
                match ev {
                    Event::State(s) => {
                        self.trace.log(now, format_args!("c{c} state {s:?}"));
                        if s == ConnectionState::LoggedOn
                            && let Some(u) = cl.chooser.current_uri().map(str::to_string)
                        {
                            cl.chooser.report_success(&u);
                        }
                    }
                    Event::CloseTransport => close = true,
                    Event::Delivery(d) => {
                        let seq = d.bookmark().and_then(seq_of);
                        self.trace
                            .log(now, format_args!("c{c} delivery seq={seq:?}"));
                        let Some(seq) = seq else {
                            cl.errors.push("delivery without a bookmark".into());
                            continue;
                        };
                        let (id, bm) = (d.id, d.bookmark().unwrap_or("").to_string());
                        match &mut cl.role {
                            Role::Subscriber(s) => {
                                let _ = id;
                                if s.discarded.contains(&seq) {
                                    cl.errors.push(format!(
                                        "seq {seq} delivered again after it was discarded"
                                    ));
                                    continue;
                                }
                                s.got.push(seq);
                                if !s.working.iter().any(|w| w.1 == seq) {
                                    let delay = match self.rng.below(3) {
                                        0 => 0,
                                        _ => self.rng.below(40_000),
                                    };
                                    s.working
                                        .push((now + Duration::from_micros(delay), seq, bm));
                                }
                            }
                            Role::Auditor(a) => a.got.push(seq),
                            Role::Publisher(_) => cl.errors.push("publisher got a delivery".into()),
                        }
                    }
                    Event::Persisted { up_to } => {
                        self.trace.log(now, format_args!("c{c} persisted {up_to}"));
                        if let Role::Publisher(p) = &mut cl.role {
                            p.persisted = p.persisted.max(up_to);
                        }
                    }
                    Event::Completed { id, .. } => {
                        self.trace.log(now, format_args!("c{c} completed {id:?}"));
                        cl.open.remove(&id);
                        if let Role::Auditor(a) = &mut cl.role
                            && a.cmd == Some(id)
                        {
                            a.done = true;
                        }
                    }
                    Event::Failed { id, error } => {
                        self.trace
                            .log(now, format_args!("c{c} failed {id:?}: {error}"));
                        cl.open.remove(&id);
                        match &mut cl.role {
                            // The subscription failed outright (not a disconnect): subscribe again.
                            Role::Subscriber(s) if s.sub == Some(id) => s.sub = None,
                            // The audit replay was cut short: start it over from EPOCH.
                            Role::Auditor(a) if a.cmd == Some(id) => {
                                a.cmd = None;
                                a.got.clear();
                            }
                            _ => {}
                        }
                    }
                    Event::Ack { .. } | Event::LastChance(_) => {}
                    Event::FailedWrite { seq, reason, .. } => {
                        cl.errors.push(format!("failed write {seq}: {reason}"))
                    }
                    Event::Error(SessionError::GaveUp) => {
                        cl.errors.push("gave up reconnecting".into())
                    }
                    // The heartbeat deadline passed without a complete frame: what a
                    // partition or a stalled link injected by the simulation does. The session
                    // ends the connection and reconnects; the invariants judge the outcome.
                    Event::Error(SessionError::Silent) => {}
                    Event::Error(e) => cl.errors.push(format!("session error: {e}")),
                    Event::LogonRetry { .. } => cl.errors.push("unexpected logon challenge".into()),
                    _ => {}
                }
            }
        }
        if let Some(e) = self.clients[c].errors.first() {
            return Err(format!("{}: {e}", self.clients[c].name));
        }
        if close && let Some(i) = self.clients[c].link.take() {
            // The client closes its socket: what it already sent still arrives, then FIN.
            self.trace.log(now, format_args!("c{c} closes link {i}"));
            if let Some(l) = self.links[i].as_mut() {
                l.to_client.clear();
                let done = l.to_broker.last_at().unwrap_or(now).max(now);
                l.closing_at = Some(done);
            }
        }
        Ok(())
    }

    fn transmit(&mut self, c: usize) {
        let now = self.now;
        let mut buf = [0u8; 2048];
        while let Some(n) = self.clients[c].session.poll_transmit(now, &mut buf) {
            let Some(i) = self.clients[c].link else {
                continue;
            };
            if let Some(l) = self.links[i].as_mut()
                && !l.black_hole
            {
                l.to_broker.send(now, l.latency, &buf[..n], &mut self.rng);
            }
        }
    }
}

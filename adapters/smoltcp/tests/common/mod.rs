//! A virtual network for the adapter's tests: one smoltcp interface over the crate's loopback
//! device, brokers (each the real amps-broker engine with its own users, behind a pool of
//! listening smoltcp sockets on its own port) and any number of clients. Time is virtual: when
//! nothing moves, the clock jumps to the earliest deadline of the interface, the clients and
//! the engines, so heartbeat timeouts, logon timeouts and reconnect backoff take no wall-clock
//! time and every run is identical.
#![allow(dead_code, unreachable_pub)]

use amps_broker::config::User;
use amps_broker::{Config as BrokerConfig, ConnId, Engine, EngineEvent};
use amps_core::codec::CommandKind;
use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
use amps_core::session::{
    CommandError, CommandId, Config, ConnectionState, Event, FixedStorage, HeartbeatConfig, Limits,
    Logon,
};
use amps_smoltcp::loopback::Loopback;
use amps_smoltcp::{Buffers, Client, Options, Server};
use smoltcp::iface::SocketStorage;
use smoltcp::iface::{Config as IfaceConfig, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Medium;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint};

pub const BROKER_PORT: u16 = 9007;
pub const ADDR: IpAddress = IpAddress::v4(10, 0, 0, 1);
/// The engine reads `now` as wall-clock microseconds (for `ts`, `lp`): start it in 2027.
const ENGINE_EPOCH_US: u64 = 1_800_000_000_000_000;

pub fn buf(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

pub type Storage = FixedStorage<16, 4>;

/// An owned copy of the events a test looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Ev {
    State(ConnectionState),
    Persisted(u64),
    Delivery { id: CommandId, data: String },
    Completed(CommandId),
    Failed(CommandId, CommandError),
    LogonRetry { user: String, token: String },
    Other,
}

/// A client and everything it reported.
pub struct Peer {
    pub client: Client<'static, Storage>,
    pub events: Vec<Ev>,
}

impl Peer {
    pub fn deliveries(&self, id: CommandId) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Delivery { id: i, data } if *i == id => Some(data.clone()),
                _ => None,
            })
            .collect()
    }
    pub fn completed(&self, id: CommandId) -> bool {
        self.events.contains(&Ev::Completed(id))
    }
    pub fn states(&self) -> Vec<ConnectionState> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::State(s) => Some(*s),
                _ => None,
            })
            .collect()
    }
    /// The last challenge received (user, token).
    pub fn challenge(&self) -> Option<(String, String)> {
        self.events.iter().rev().find_map(|e| match e {
            Ev::LogonRetry { user, token } => Some((user.clone(), token.clone())),
            _ => None,
        })
    }
    /// Every command failure reported, in order.
    pub fn failures(&self) -> Vec<CommandError> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Failed(_, err) => Some(*err),
                _ => None,
            })
            .collect()
    }
    pub fn unpersisted(&self) -> usize {
        self.client.session().unpersisted_count()
    }
}

/// How a test client is set up.
pub struct PeerSpec {
    pub name: &'static str,
    pub heartbeat: Option<u32>,
    pub reconnect: bool,
    pub first_port: u16,
    /// Server 0.
    pub server: IpEndpoint,
    /// Server 0's logon (`None`: the default of [`Options::new`]).
    pub logon: Option<Logon<'static>>,
    /// The servers after server 0.
    pub failover: &'static [Server<'static>],
    /// The session's logon timeout (`None`: the default).
    pub logon_timeout: Option<Duration>,
}

impl PeerSpec {
    pub fn new(name: &'static str, first_port: u16) -> Self {
        PeerSpec {
            name,
            heartbeat: Some(1),
            reconnect: true,
            first_port,
            server: IpEndpoint::new(ADDR, BROKER_PORT),
            logon: None,
            failover: &[],
            logon_timeout: None,
        }
    }
}

/// A logon with these credentials (JSON).
pub fn logon(user: &'static str, password: &'static str) -> Logon<'static> {
    Logon {
        user_id: Some(user),
        password: Some(password),
        message_type: Some("json"),
        options: None,
    }
}

/// A failover list that lives as long as the test.
pub fn servers(list: Vec<Server<'static>>) -> &'static [Server<'static>] {
    Box::leak(list.into_boxed_slice())
}

/// What a broker's port does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept connections and run the engine on them.
    Serve,
    /// Accept connections and never answer (a server that hangs during the logon).
    Mute,
    /// Not listening: every SYN is answered by a reset.
    Closed,
}

/// One broker connection slot: a listening socket, then the connection it accepted (run by
/// the engine unless the broker is mute).
struct Slot {
    handle: SocketHandle,
    accepted: bool,
    conn: Option<ConnId>,
    out: Vec<u8>,
    closing: bool,
}

/// A broker: its own engine (and users), listening on its own port of [`ADDR`].
pub struct Broker {
    pub port: u16,
    pub mode: Mode,
    pub engine: Engine,
    slots: Vec<Slot>,
    /// Connections accepted so far.
    pub accepts: usize,
    /// Connections the engine closed.
    pub closes: usize,
    /// Every byte received, in order (which logon reached this broker).
    pub received: Vec<u8>,
}

impl Broker {
    /// Whether `needle` occurs in what this broker received.
    pub fn saw(&self, needle: &str) -> bool {
        self.received
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    /// Open connections (accepted and not closed).
    pub fn open_connections(&self) -> usize {
        self.slots.iter().filter(|s| s.accepted).count()
    }

    /// Move bytes between this broker's sockets and its engine. Returns whether anything moved.
    fn pump(&mut self, sockets: &mut SocketSet<'static>, t: amps_core::Instant) -> bool {
        let mut progress = false;
        if self.engine.poll_timeout().is_some_and(|d| d <= t) {
            self.engine.handle_timeout(t);
        }
        let mut rx = [0u8; 2048];
        for slot in &mut self.slots {
            let sock = sockets.get_mut::<tcp::Socket>(slot.handle);
            if slot.closing && slot.conn.is_none() {
                // Closed by the engine: wait for the FIN exchange to end, then listen again.
                if !sock.is_open() {
                    slot.closing = false;
                    slot.accepted = false;
                }
                continue;
            }
            if !slot.accepted {
                if sock.may_send() {
                    slot.accepted = true;
                    self.accepts += 1;
                    if self.mode == Mode::Serve {
                        slot.conn = Some(self.engine.open(t));
                    }
                    progress = true;
                } else if !sock.is_open() && self.mode != Mode::Closed {
                    sock.listen(self.port).unwrap();
                } else if sock.is_listening() && self.mode == Mode::Closed {
                    sock.abort();
                }
                if !slot.accepted {
                    continue;
                }
            }
            while sock.can_recv() {
                let n = sock.recv_slice(&mut rx).unwrap();
                self.received.extend_from_slice(&rx[..n]);
                if let Some(conn) = slot.conn {
                    self.engine.handle_bytes(t, conn, &rx[..n]);
                }
                progress = true;
            }
            if !sock.may_recv() {
                // Peer closed or reset: the engine forgets the connection.
                if let Some(conn) = slot.conn.take() {
                    self.engine.handle_closed(t, conn);
                }
                sock.abort();
                slot.accepted = false;
                slot.closing = false;
                slot.out.clear();
                progress = true;
            }
        }
        while let Some(ev) = self.engine.poll_event() {
            progress = true;
            let (EngineEvent::Transmit(c) | EngineEvent::Close { conn: c, .. }) = ev;
            let Some(slot) = self.slots.iter_mut().find(|s| s.conn == Some(c)) else {
                continue;
            };
            self.engine.drain_output(c, &mut slot.out);
            if matches!(ev, EngineEvent::Close { .. }) {
                slot.closing = true;
                self.closes += 1;
            }
        }
        for slot in &mut self.slots {
            let sock = sockets.get_mut::<tcp::Socket>(slot.handle);
            if !slot.out.is_empty() && sock.may_send() {
                let n = sock.send_slice(&slot.out).unwrap_or(0);
                slot.out.drain(..n);
                progress |= n > 0;
            }
            if slot.closing && slot.conn.is_some() && slot.out.is_empty() {
                sock.close();
                slot.conn = None;
            }
        }
        progress
    }
}

/// How a test broker is set up.
pub struct BrokerSpec {
    pub port: u16,
    pub mode: Mode,
    pub config: BrokerConfig,
    pub slots: usize,
}

impl BrokerSpec {
    /// A broker serving on `port` with the default configuration (no users: any logon).
    pub fn new(port: u16) -> Self {
        BrokerSpec {
            port,
            mode: Mode::Serve,
            config: BrokerConfig::default(),
            slots: 2,
        }
    }

    /// Only these users (name, password) may log on.
    pub fn users(self, users: &[(&str, &str)]) -> Self {
        self.users_with(users, false)
    }

    /// Only these users may log on, each after a challenge: the first logon is answered
    /// `retry` with a token, which the client must send back as its password.
    pub fn challenged_users(self, users: &[(&str, &str)]) -> Self {
        self.users_with(users, true)
    }

    fn users_with(mut self, users: &[(&str, &str)], challenge: bool) -> Self {
        self.config.users = users
            .iter()
            .map(|(name, password)| User {
                name: (*name).into(),
                password: (*password).into(),
                challenge,
            })
            .collect();
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

pub struct World {
    pub now: Instant,
    pub device: Loopback<64, 1500>,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub brokers: Vec<Broker>,
}

impl World {
    /// A world whose one broker (port [`BROKER_PORT`]) listens on `slots` sockets (when
    /// `listening`).
    pub fn new(slots: usize, listening: bool) -> World {
        let mut spec = BrokerSpec::new(BROKER_PORT);
        spec.slots = slots;
        if !listening {
            spec.mode = Mode::Closed;
        }
        World::with_brokers(vec![spec])
    }

    /// A world with these brokers, all on [`ADDR`].
    pub fn with_brokers(specs: Vec<BrokerSpec>) -> World {
        let mut device = Loopback::new(Medium::Ip);
        let mut cfg = IfaceConfig::new(HardwareAddress::Ip);
        cfg.random_seed = 0x5eed;
        let now = Instant::from_millis(0);
        let mut iface = Interface::new(cfg, &mut device, now);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(ADDR, 8)).unwrap();
        });
        let storage: &'static mut [SocketStorage<'static>] =
            Box::leak(Box::new([SocketStorage::EMPTY; 24]));
        let mut sockets = SocketSet::new(storage);
        let brokers = specs
            .into_iter()
            .map(|spec| Broker {
                port: spec.port,
                mode: spec.mode,
                engine: Engine::new(spec.config),
                slots: (0..spec.slots)
                    .map(|_| Slot {
                        handle: sockets.add(tcp::Socket::new(
                            tcp::SocketBuffer::new(buf(8192)),
                            tcp::SocketBuffer::new(buf(8192)),
                        )),
                        accepted: false,
                        conn: None,
                        out: Vec::new(),
                        closing: false,
                    })
                    .collect(),
                accepts: 0,
                closes: 0,
                received: Vec::new(),
            })
            .collect();
        World {
            now,
            device,
            iface,
            sockets,
            brokers,
        }
    }

    /// Let the first broker serve (or refuse connections).
    pub fn set_listening(&mut self, on: bool) {
        self.brokers[0].mode = if on { Mode::Serve } else { Mode::Closed };
    }

    /// Connections the brokers' engines closed.
    pub fn broker_closes(&self) -> usize {
        self.brokers.iter().map(|b| b.closes).sum()
    }

    /// Connections the brokers hold open.
    pub fn connected_slots(&self) -> usize {
        self.brokers.iter().map(Broker::open_connections).sum()
    }

    /// Reset every connection broker `i` holds (the engine forgets them).
    pub fn drop_connections(&mut self, i: usize) {
        let t = self.engine_now();
        let b = &mut self.brokers[i];
        for slot in &mut b.slots {
            if slot.accepted {
                self.sockets.get_mut::<tcp::Socket>(slot.handle).abort();
                if let Some(conn) = slot.conn.take() {
                    b.engine.handle_closed(t, conn);
                }
                slot.accepted = false;
                slot.closing = false;
                slot.out.clear();
            }
        }
    }

    /// A client on this world's interface.
    pub fn peer(&mut self, spec: PeerSpec) -> Peer {
        let mut config = Config::new(spec.name);
        config.heartbeat = spec.heartbeat.map(HeartbeatConfig::new);
        if spec.reconnect {
            config.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::new(
                amps_core::Duration::from_millis(100),
                2.0,
                amps_core::Duration::from_secs(2),
            ));
        }
        if let Some(t) = spec.logon_timeout {
            config.logon_timeout = amps_core::Duration::from_millis(t.total_millis());
        }
        config.resubscribe = true;
        config.limits = Limits::small();
        let buffers = Buffers {
            rx: buf(4100),
            tx: buf(4096),
            scratch: buf(512),
            arena: buf(1024),
            ack_batch: buf(2048),
            publish_store: buf(16 * 1024),
            publish_window: 64,
            bookmark_store: buf(512),
        };
        let session = buffers.session(&config).unwrap();
        let socket = self.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(buf(4096)),
            tcp::SocketBuffer::new(buf(4096)),
        ));
        let mut opts = Options::new(spec.server);
        if let Some(logon) = spec.logon {
            opts.logon = logon;
        }
        opts.failover = spec.failover;
        opts.first_local_port = spec.first_port;
        // A SYN lost on a cut link gives up after this long (then the backoff runs).
        opts.tcp_timeout = Some(Duration::from_secs(3));
        Peer {
            client: Client::new(session, socket, opts),
            events: Vec::new(),
        }
    }

    fn engine_now(&self) -> amps_core::Instant {
        amps_core::Instant::from_micros(ENGINE_EPOCH_US + self.now.total_micros() as u64)
    }

    /// One round: the interface, the brokers, every client.
    pub fn step(&mut self, peers: &mut [&mut Peer]) -> bool {
        let mut progress = self
            .iface
            .poll(self.now, &mut self.device, &mut self.sockets)
            == PollResult::SocketStateChanged;
        let t = self.engine_now();
        for b in &mut self.brokers {
            progress |= b.pump(&mut self.sockets, t);
        }
        for p in peers.iter_mut() {
            let events = &mut p.events;
            progress |= p
                .client
                .poll(self.now, &mut self.iface, &mut self.sockets, |e| {
                    events.push(owned(e))
                });
        }
        progress
    }

    /// When something is due next.
    fn next_deadline(&mut self, peers: &[&mut Peer]) -> Option<Instant> {
        let mut t = self.iface.poll_at(self.now, &self.sockets);
        for p in peers {
            t = amps_smoltcp::time::earliest(t, p.client.poll_at(self.now, &self.sockets));
        }
        for b in &self.brokers {
            let engine = b.engine.poll_timeout().map(|d| {
                Instant::from_micros(d.as_micros().saturating_sub(ENGINE_EPOCH_US) as i64)
            });
            t = amps_smoltcp::time::earliest(t, engine);
        }
        t
    }

    /// Run until `done` holds, at most `limit` of virtual time. Returns whether it held.
    pub fn run_until(
        &mut self,
        peers: &mut [&mut Peer],
        limit: Duration,
        mut done: impl FnMut(&World, &[&mut Peer]) -> bool,
    ) -> bool {
        let end = self.now + limit;
        for _ in 0..2_000_000 {
            let progress = self.step(peers);
            if done(self, peers) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            if !progress {
                let next = self.next_deadline(peers).unwrap_or(end);
                // Jump to the deadline (at least 1 ms: a deadline already due with nothing
                // moving must not spin), but not past the end.
                self.now = next.max(self.now + Duration::from_millis(1)).min(end);
            }
        }
        panic!("run_until: too many rounds without reaching the limit");
    }

    /// Advance `d` of virtual time, polling all along.
    pub fn run_for(&mut self, peers: &mut [&mut Peer], d: Duration) {
        self.run_until(peers, d, |_, _| false);
    }
}

pub fn owned(e: Event<'_>) -> Ev {
    match e {
        Event::State(s) => Ev::State(s),
        Event::Persisted { up_to } => Ev::Persisted(up_to),
        Event::Delivery(d) if d.kind() == CommandKind::Publish => Ev::Delivery {
            id: d.id,
            data: String::from_utf8_lossy(d.data()).into_owned(),
        },
        Event::Completed { id, .. } => Ev::Completed(id),
        Event::Failed { id, error } => Ev::Failed(id, error),
        Event::LogonRetry { user_id, token } => Ev::LogonRetry {
            user: user_id.into(),
            token: token.into(),
        },
        _ => Ev::Other,
    }
}

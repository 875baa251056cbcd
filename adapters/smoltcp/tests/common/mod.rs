//! A virtual network for the adapter's tests: one smoltcp interface over the crate's loopback
//! device, the real broker engine (amps-broker) behind a pool of listening smoltcp sockets, and
//! any number of clients. Time is virtual: when nothing moves, the clock jumps to the earliest
//! deadline of the interface, the clients and the engine, so heartbeat timeouts and reconnect
//! backoff take no wall-clock time and every run is identical.
#![allow(dead_code, unreachable_pub)]

use amps_broker::{Config as BrokerConfig, ConnId, Engine, EngineEvent};
use amps_core::codec::CommandKind;
use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
use amps_core::session::{
    CommandError, CommandId, Config, ConnectionState, Event, FixedStorage, HeartbeatConfig, Limits,
};
use amps_smoltcp::loopback::Loopback;
use amps_smoltcp::{Buffers, Client, Options};
use smoltcp::iface::SocketStorage;
use smoltcp::iface::{Config as IfaceConfig, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Medium;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

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
}

impl PeerSpec {
    pub fn new(name: &'static str, first_port: u16) -> Self {
        PeerSpec {
            name,
            heartbeat: Some(1),
            reconnect: true,
            first_port,
        }
    }
}

/// One broker connection slot: a listening socket, then the engine connection it accepted.
struct Slot {
    handle: SocketHandle,
    conn: Option<ConnId>,
    out: Vec<u8>,
    closing: bool,
}

pub struct World {
    pub now: Instant,
    pub device: Loopback<64, 1500>,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub engine: Engine,
    slots: Vec<Slot>,
    listening: bool,
    pub broker_closes: usize,
}

impl World {
    /// A world whose broker listens on `slots` sockets (when `listening`).
    pub fn new(slots: usize, listening: bool) -> World {
        let mut device = Loopback::new(Medium::Ip);
        let mut cfg = IfaceConfig::new(HardwareAddress::Ip);
        cfg.random_seed = 0x5eed;
        let now = Instant::from_millis(0);
        let mut iface = Interface::new(cfg, &mut device, now);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(ADDR, 8)).unwrap();
        });
        let storage: &'static mut [SocketStorage<'static>] =
            Box::leak(Box::new([SocketStorage::EMPTY; 16]));
        let mut sockets = SocketSet::new(storage);
        let slots = (0..slots)
            .map(|_| Slot {
                handle: sockets.add(tcp::Socket::new(
                    tcp::SocketBuffer::new(buf(8192)),
                    tcp::SocketBuffer::new(buf(8192)),
                )),
                conn: None,
                out: Vec::new(),
                closing: false,
            })
            .collect();
        World {
            now,
            device,
            iface,
            sockets,
            engine: Engine::new(BrokerConfig::default()),
            slots,
            listening,
            broker_closes: 0,
        }
    }

    pub fn set_listening(&mut self, on: bool) {
        self.listening = on;
    }

    /// A client on this world's interface, connecting to the broker.
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
        config.resubscribe = true;
        config.limits = Limits::small();
        let buffers = Buffers {
            rx: buf(4100),
            tx: buf(4096),
            scratch: buf(512),
            arena: buf(1024),
            publish_store: buf(16 * 1024),
            publish_window: 64,
            bookmark_store: buf(512),
        };
        let session = buffers.session(&config).unwrap();
        let socket = self.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(buf(4096)),
            tcp::SocketBuffer::new(buf(4096)),
        ));
        let mut opts = Options::new((ADDR, BROKER_PORT));
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

    /// Move bytes between the broker sockets and the engine. Returns whether anything moved.
    fn pump_broker(&mut self) -> bool {
        let t = self.engine_now();
        let mut progress = false;
        if self.engine.poll_timeout().is_some_and(|d| d <= t) {
            self.engine.handle_timeout(t);
        }
        let mut rx = [0u8; 2048];
        for slot in &mut self.slots {
            let sock = self.sockets.get_mut::<tcp::Socket>(slot.handle);
            match slot.conn {
                None if !slot.closing => {
                    if sock.may_send() {
                        slot.conn = Some(self.engine.open(t));
                        progress = true;
                    } else if !sock.is_open() && self.listening {
                        sock.listen(BROKER_PORT).unwrap();
                    } else if sock.is_listening() && !self.listening {
                        sock.abort();
                    }
                }
                None => {
                    // Closed by the engine: wait for the FIN exchange to end, then listen again.
                    if !sock.is_open() {
                        slot.closing = false;
                    }
                }
                Some(conn) => {
                    while sock.can_recv() {
                        let n = sock.recv_slice(&mut rx).unwrap();
                        self.engine.handle_bytes(t, conn, &rx[..n]);
                        progress = true;
                    }
                    if !sock.may_recv() {
                        // Peer closed or reset: the engine forgets the connection.
                        self.engine.handle_closed(t, conn);
                        sock.abort();
                        slot.conn = None;
                        slot.out.clear();
                        progress = true;
                    }
                }
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
                self.broker_closes += 1;
            }
        }
        for slot in &mut self.slots {
            let sock = self.sockets.get_mut::<tcp::Socket>(slot.handle);
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

    /// One round: the interface, the broker, every client.
    pub fn step(&mut self, peers: &mut [&mut Peer]) -> bool {
        let mut progress = self
            .iface
            .poll(self.now, &mut self.device, &mut self.sockets)
            == PollResult::SocketStateChanged;
        progress |= self.pump_broker();
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
        let engine = self
            .engine
            .poll_timeout()
            .map(|d| Instant::from_micros(d.as_micros().saturating_sub(ENGINE_EPOCH_US) as i64));
        amps_smoltcp::time::earliest(t, engine)
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

    pub fn connected_slots(&self) -> usize {
        self.slots.iter().filter(|s| s.conn.is_some()).count()
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
        _ => Ev::Other,
    }
}

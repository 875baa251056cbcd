//! The self-test scenario: a telemetry publisher on amps-smoltcp, the in-image responder, one
//! smoltcp interface over the loopback device, and a virtual clock.
//!
//! The clock is virtual so the run is deterministic and quick under QEMU: when nothing moves,
//! it jumps to the earliest deadline of the interface (TCP timers) and of the client (heartbeat,
//! reconnect backoff, command timeouts). A device would read a hardware timer instead; the
//! drive loop is the same.

use amps_core::codec::CommandKind;
use amps_core::session::{CommandId, Event, FixedStorage, PublishError};
use amps_smoltcp::loopback::Loopback;
use amps_smoltcp::{Client, Link};
use smoltcp::iface::{Interface, PollResult, SocketSet};
use smoltcp::time::{Duration, Instant};

use crate::responder::Responder;
use crate::telemetry;

/// Telemetry messages per phase (3 phases: healthy link, cut link, disconnected).
pub const PER_PHASE: u32 = 8;
pub const TOPIC: &str = "telemetry";

/// The session's table sizes.
pub type Storage = FixedStorage<8, 2>;

/// What the run saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Highest sequence the client saw persisted.
    pub persisted: u64,
    /// Deliveries of the telemetry subscription (the client's own messages, via the
    /// responder).
    pub deliveries: u32,
    /// Deliveries whose payload did not carry the expected next `seq`.
    pub out_of_order: u32,
    /// Whether the final publish_flush completed.
    pub flushed: bool,
    /// Virtual time at the end, in milliseconds.
    pub elapsed_ms: i64,
}

/// Why the self-test failed (printed with `Debug` on the semihosting console).
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // the fields are read through `Debug` only
pub enum Failure {
    /// A step did not finish within its virtual-time limit.
    Timeout(&'static str),
    /// A publish was refused.
    Publish(PublishError),
    /// A command was refused.
    Command(amps_core::session::CommandError),
    /// A telemetry reading did not fit its buffer.
    Encode,
}

/// Everything the loop drives.
pub struct Rig<'a, const N: usize> {
    pub now: Instant,
    pub device: &'a mut Loopback<8, 576>,
    pub iface: &'a mut Interface,
    pub sockets: &'a mut SocketSet<'static>,
    pub client: &'a mut Client<'static, Storage>,
    pub responder: &'a mut Responder<N>,
    pub report: Report,
    sub: Option<CommandId>,
    flush: Option<CommandId>,
    next_delivery: u32,
}

impl<'a, const N: usize> Rig<'a, N> {
    /// A rig at time zero.
    pub fn new(
        device: &'a mut Loopback<8, 576>,
        iface: &'a mut Interface,
        sockets: &'a mut SocketSet<'static>,
        client: &'a mut Client<'static, Storage>,
        responder: &'a mut Responder<N>,
    ) -> Self {
        Rig {
            now: Instant::from_millis(0),
            device,
            iface,
            sockets,
            client,
            responder,
            report: Report::default(),
            sub: None,
            flush: None,
            next_delivery: 1,
        }
    }

    /// One pass of the drive loop. Returns whether anything moved.
    fn step(&mut self) -> bool {
        let mut progress = self.iface.poll(self.now, &mut *self.device, &mut *self.sockets)
            == PollResult::SocketStateChanged;
        progress |= self.responder.poll(self.sockets);
        let report = &mut self.report;
        let sub = self.sub;
        let flush = self.flush;
        let next = &mut self.next_delivery;
        progress |= self
            .client
            .poll(self.now, self.iface, self.sockets, |event| match event {
                Event::Persisted { up_to } => report.persisted = up_to,
                Event::Delivery(d) if Some(d.id) == sub && d.kind() == CommandKind::Publish => {
                    report.deliveries += 1;
                    match telemetry::seq_of(d.data()) {
                        Some(s) if s == *next => *next += 1,
                        _ => report.out_of_order += 1,
                    }
                }
                Event::Completed { id, .. } if Some(id) == flush => report.flushed = true,
                _ => {}
            });
        progress
    }

    /// One pass, then, if nothing moved, a jump of the virtual clock to the earliest
    /// deadline (at least 1 ms, at most to `end`).
    fn tick(&mut self, end: Instant) {
        if !self.step() {
            let next = amps_smoltcp::time::earliest(
                self.iface.poll_at(self.now, self.sockets),
                self.client.poll_at(self.now, self.sockets),
            )
            .unwrap_or(end);
            self.now = next.max(self.now + Duration::from_millis(1)).min(end);
        }
    }

    /// Drive until `done` holds, advancing the virtual clock when idle.
    fn run_until(
        &mut self,
        what: &'static str,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<(), Failure> {
        let end = self.now + limit;
        loop {
            self.tick(end);
            if done(self) {
                return Ok(());
            }
            if self.now >= end {
                return Err(Failure::Timeout(what));
            }
        }
    }

    fn publish(&mut self, seq: u32) -> Result<(), Failure> {
        let mut buf = [0u8; 64];
        let n = telemetry::to_json(&telemetry::sample(seq), &mut buf).ok_or(Failure::Encode)?;
        let data = buf.get(..n).ok_or(Failure::Encode)?;
        // A full transmit buffer or publish window is backpressure: keep driving the loop
        // (acks and socket space free them) and retry, for at most 5 s.
        let end = self.now + Duration::from_secs(5);
        loop {
            match self.client.publish(self.now, TOPIC, data) {
                Ok(_) => return Ok(()),
                Err(PublishError::WouldBlock | PublishError::WindowFull) if self.now < end => {
                    self.tick(end);
                }
                Err(e) => return Err(Failure::Publish(e)),
            }
        }
    }

    /// The whole scenario.
    pub fn run(&mut self) -> Result<Report, Failure> {
        let secs = Duration::from_secs;
        self.client.connect(self.now);
        self.run_until("logon", secs(5), |r| r.client.is_ready())?;
        let sub = self
            .client
            .subscribe(self.now, TOPIC, None)
            .map_err(Failure::Command)?;
        self.sub = Some(sub);
        self.run_until("subscribe", secs(5), |r| {
            r.client.session().command_status(sub) == amps_core::session::CommandStatus::NotPending
        })?;

        // Phase 1: a healthy link. Every reading is persisted and comes back as a delivery.
        for seq in 1..=PER_PHASE {
            self.publish(seq)?;
        }
        self.run_until("phase 1 persisted", secs(5), |r| {
            r.report.persisted == u64::from(PER_PHASE) && r.report.deliveries == PER_PHASE
        })?;

        // Phase 2: the link is cut. Readings go into the socket and are lost on the wire; the
        // publish store keeps them. Heartbeat silence ends the connection.
        self.device.set_link_up(false);
        for seq in PER_PHASE + 1..=2 * PER_PHASE {
            self.publish(seq)?;
        }
        self.run_until("link loss noticed", secs(30), |r| {
            r.client.link() == Link::Idle && r.client.stats().disconnects >= 1
        })?;

        // Phase 3: still disconnected; readings only go into the store.
        for seq in 2 * PER_PHASE + 1..=3 * PER_PHASE {
            self.publish(seq)?;
        }

        // The link comes back: reconnect with backoff, log on, replay, re-subscribe.
        self.device.set_link_up(true);
        let total = u64::from(3 * PER_PHASE);
        self.run_until("recovery", secs(30), |r| {
            r.client.is_ready() && r.report.persisted == total
        })?;

        // Clean shutdown: flush, then close with FIN.
        let flush = self
            .client
            .publish_flush(self.now, secs(5))
            .map_err(Failure::Command)?;
        self.flush = Some(flush);
        self.run_until("publish_flush", secs(5), |r| r.report.flushed)?;
        self.client.close(self.now);
        self.run_until("close", secs(5), |r| {
            r.client.link() == Link::Idle && r.responder.open_connections() == 0
        })?;
        self.report.elapsed_ms = self.now.total_millis();
        Ok(self.report)
    }
}

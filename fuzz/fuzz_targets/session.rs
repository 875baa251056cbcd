//! The client `Session` fed arbitrary server bytes.
//!
//! The session connects and logs on (unless a flag leaves the logon to the fuzz input), enters
//! a subscription, a query, a queue subscription, a bookmark subscription and two publishes,
//! then takes the stream in arbitrary chunks, interleaved with timers, transmits into buffers of
//! arbitrary size, peer closes, reconnects and user commands (publish, queue acks, unsubscribe,
//! flush). Checked throughout: no panic; `handle_bytes` never takes more than offered and,
//! once events are drained, always makes progress; `poll_transmit` never returns `Some(0)` or
//! more than the buffer; everything transmitted is whole frames that decode; tables and
//! buffers stay within their limits; no event is dropped; after `handle_timeout(now)` a
//! connected session has no timer already due (an adapter would spin).
#![no_main]

use amps_core::codec::{AckType, Command, split_frame};
use amps_core::ha::{FixedDelayStrategy, ReconnectPolicy};
use amps_core::session::{
    AckHow, CommandId, Config, Event, HeapStorage, HeartbeatConfig, InputError, Limits, Logon,
    Parts, Session, State, TransportClosed, heap_bookmark_store, heap_publish_store,
};
use amps_core::store::{MemoryBookmarkStore, MemoryPublishStore};
use amps_core::{Duration, Instant};
use amps_fuzz::session_flags::*;
use amps_fuzz::{Steer, assert_whole_frames};
use libfuzzer_sys::fuzz_target;

type Store = HeapStorage<MemoryPublishStore<Vec<u8>>, MemoryBookmarkStore<Vec<u8>>>;

struct Driver {
    s: Session<Store>,
    now: Instant,
    /// Bytes transmitted on the current connection and not yet checked as whole frames.
    tx: Vec<u8>,
    /// Queue messages delivered, to acknowledge: (route, bookmark).
    to_ack: Vec<(CommandId, String)>,
    /// A logon challenge to answer.
    retry: Option<String>,
    routes: Vec<CommandId>,
    closed: bool,
}

impl Driver {
    fn check_limits(&self) {
        let lim = *self.s.limits();
        assert!(self.s.pending_transmit() <= lim.tx_bytes);
        assert!(self.s.pending_commands() <= lim.max_commands);
        assert!(self.s.routes() <= lim.max_routes);
        assert_eq!(self.s.dropped_events(), 0, "an event was dropped");
    }

    fn events(&mut self) {
        while let Some(e) = self.s.poll_event() {
            match e {
                Event::CloseTransport => self.closed = true,
                Event::Ack { msg, .. } => {
                    let _ = (msg.ack_type(), msg.is_success(), msg.stats(), msg.reason());
                }
                Event::Delivery(d) => {
                    let _ = (
                        d.kind(),
                        d.data(),
                        d.topic(),
                        d.sow_key(),
                        d.correlation_id(),
                    );
                    let _ = (d.timestamp(), d.msg.oof_reason(), d.sub_id.len());
                    if let (Some(bm), Some("jobs")) = (d.bookmark(), d.topic())
                        && self.to_ack.len() < 8
                    {
                        self.to_ack.push((d.id, bm.to_string()));
                    }
                }
                Event::FailedWrite { reason, stored, .. } => {
                    let _ = (reason.len(), stored.map(<[u8]>::len));
                }
                Event::LastChance(m) => {
                    let _ = (m.kind(), m.data(), m.topic());
                }
                Event::LogonRetry { token, .. } => self.retry = Some(token.to_string()),
                _ => {}
            }
        }
        self.check_limits();
    }

    /// Drain `poll_transmit` into buffers of `size` bytes and check the frames.
    fn transmit(&mut self, size: usize) {
        self.events();
        let mut buf = vec![0u8; size];
        while let Some(n) = self.s.poll_transmit(self.now, &mut buf) {
            assert!(n > 0, "poll_transmit returned Some(0)");
            assert!(n <= buf.len(), "poll_transmit wrote past the buffer");
            self.tx.extend_from_slice(&buf[..n]);
            self.events();
        }
        // Whole frames so far must decode; a partial one waits for its rest.
        let mut whole = 0;
        while let Ok(Some((_, used))) = split_frame(&self.tx[whole..], u32::MAX) {
            whole += used;
        }
        assert_whole_frames(&self.tx[..whole], "the session");
        self.tx.drain(..whole);
        self.check_limits();
    }

    fn connected(&self) -> bool {
        matches!(
            self.s.state(),
            State::LoggingOn | State::Recovering | State::Ready
        )
    }

    fn timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.s.handle_timeout(self.now);
        self.transmit(4096);
        if self.connected()
            && let Some(t) = self.s.poll_timeout()
        {
            assert!(t > self.now, "a timer is due right after handle_timeout");
        }
    }

    /// Open a connection, send the logon, and acknowledge it unless the input does.
    fn connect(&mut self, auto_logon: bool) {
        self.tx.clear();
        self.closed = false;
        let logon = Logon {
            user_id: Some("alice"),
            password: Some("secret"),
            message_type: Some("json"),
            options: None,
        };
        let Ok(id) = self.s.handle_connected(self.now, &logon) else {
            return;
        };
        self.transmit(4096);
        if auto_logon {
            let ack = format!(
                r#"{{"c":"ack","cid":"{}","a":"processed","status":"success","client_name":"fuzz","s":0,"bm":"1|0|","version":"5.3.5.0"}}"#,
                id.wire()
            );
            let wire = amps_fuzz::frame(ack.as_bytes());
            let n = self.s.handle_bytes(self.now, &wire).expect("connected");
            assert_eq!(n, wire.len());
            self.transmit(4096);
        }
    }

    fn user_command(&mut self, steer: &mut Steer) {
        let now = self.now;
        match steer.below(6) {
            0 => {
                let _ = self.s.publish(now, "orders", br#"{"id":"A9","qty":9}"#);
            }
            1 => {
                if let Some((route, bm)) = self.to_ack.pop() {
                    let how =
                        [AckHow::Ack, AckHow::Cancel, AckHow::Expire][steer.below(3) as usize];
                    let _ = self.s.ack(now, route, "jobs", &bm, how);
                }
            }
            2 => {
                if let Some(&r) = self.routes.get(steer.below(4) as usize) {
                    let _ = self.s.unsubscribe(now, r);
                }
            }
            3 => {
                let _ = self.s.flush(now);
            }
            4 => self.s.flush_acks(now),
            _ => {
                let _ = self.s.publish_flush(now, Duration::from_millis(500));
            }
        }
        self.transmit(4096);
    }
}

fuzz_target!(|data: &[u8]| {
    let (mut steer, mut stream) = Steer::split(data);
    let mut cfg = Config::new("fuzz");
    cfg.limits = Limits::small();
    if steer.flag(HEARTBEAT) {
        cfg.heartbeat = Some(HeartbeatConfig::new(1));
    }
    if steer.flag(RECONNECT) {
        cfg.reconnect = ReconnectPolicy::Fixed(FixedDelayStrategy::default());
        cfg.resubscribe = true;
    }
    if steer.flag(COMMAND_TIMEOUT) {
        cfg.command_timeout = Some(Duration::from_secs(2));
    }
    if steer.flag(ACK_BATCH) {
        cfg.ack_batch_size = 3;
    }
    let lim = cfg.limits;
    let parts = Parts::heap(&lim, heap_publish_store(&lim), heap_bookmark_store(2048));
    let mut d = Driver {
        s: Session::new(&cfg, parts).expect("a valid configuration"),
        now: Instant::from_secs(1),
        tx: Vec::new(),
        to_ack: Vec::new(),
        retry: None,
        routes: Vec::new(),
        closed: false,
    };
    let auto_logon = !steer.flag(MANUAL_LOGON);
    d.connect(auto_logon);
    if auto_logon && !steer.flag(NO_COMMANDS) {
        let now = d.now;
        let cmds = [
            Command::subscribe("orders").sub_id("2").filter("/qty > 50"),
            Command::sow("orders").query_id("3").batch_size(2),
            Command::subscribe("jobs")
                .sub_id("6")
                .options("max_backlog=10"),
            Command::subscribe("events").sub_id("11").bookmark("0"),
        ];
        for c in cmds {
            if let Ok(id) = d.s.execute(now, &c.ack(AckType::Processed)) {
                d.routes.push(id);
            }
        }
        for _ in 0..2 {
            let _ = d.s.publish(now, "orders", br#"{"id":"A1","qty":100}"#);
        }
        d.transmit(4096);
    }

    let mut stalled = false;
    while !stream.is_empty() {
        match steer.below(32) {
            0 | 1 => {
                let dt = Duration::from_millis(steer.below(3000));
                d.timeout(d.now + dt);
            }
            2 => {
                if let Some(t) = d.s.poll_timeout() {
                    d.timeout(t);
                }
            }
            3 => {
                let size = 1 + steer.below(64) as usize;
                d.transmit(size);
            }
            4 => d.user_command(&mut steer),
            5 if steer.below(4) == 0 => {
                d.s.handle_closed(d.now, TransportClosed::PeerClosed);
                d.closed = true;
                d.transmit(4096);
            }
            _ => {
                let want = steer.chunk(stream.len());
                match d.s.handle_bytes(d.now, &stream[..want]) {
                    Ok(n) => {
                        assert!(n <= want, "handle_bytes took more than offered");
                        if n == 0 {
                            assert!(!stalled, "no progress after draining every event");
                            stalled = true;
                        } else {
                            stalled = false;
                        }
                        stream = &stream[n..];
                    }
                    Err(InputError::NotConnected) => {
                        d.closed = true;
                    }
                    Err(e) => panic!("unexpected input error {e:?}"),
                }
                d.events();
                d.transmit(4096);
            }
        }
        if let Some(token) = d.retry.take() {
            let _ = d.s.handle_logon_retry(d.now, Some("alice"), &token);
            d.transmit(4096);
        }
        if d.closed && !d.connected() {
            stalled = false;
            if !steer.flag(RECONNECT) {
                break;
            }
            // Wait for the reconnect timer, then open a new connection.
            let Some(t) = d.s.poll_timeout() else { break };
            d.now = d.now.max(t);
            if d.s.poll_connect(d.now).is_none() {
                break;
            }
            d.connect(auto_logon);
        }
    }
    if d.connected() {
        d.transmit(4096);
        assert!(d.tx.is_empty(), "a partial frame left after draining");
    }
});

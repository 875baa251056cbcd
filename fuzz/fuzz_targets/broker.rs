//! The broker's sans-IO `Engine` fed arbitrary client bytes on up to three connections.
//!
//! Flags of the first byte choose the configuration (authentication with a challenge, small
//! frame and slow-consumer limits, an FIX-typed SOW topic) and whether each connection logs on
//! before the fuzz input starts. The stream is then cut into chunks, each for a connection the
//! control bytes pick, interleaved with timers, peer closes and new connections. Checked: no
//! panic; everything the broker writes is whole frames that decode; a close is reported once,
//! for a connection that was open, and the connection count agrees; after
//! `handle_timeout(now)` no timer is already due (a driver would spin).
#![no_main]

use std::sync::OnceLock;

use amps_broker::{Config, ConnId, Engine, EngineEvent};
use amps_core::codec::Command;
use amps_core::{Duration, Instant};
use amps_fuzz::broker_flags::*;
use amps_fuzz::{Steer, assert_whole_frames};
use libfuzzer_sys::fuzz_target;

fn config(flags: u8) -> Config {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    let all = CONFIGS.get_or_init(|| {
        (0u8..8)
            .map(|bits| {
                let mut toml = String::new();
                if bits & 4 != 0 {
                    toml.push_str("max_frame = 2048\nslow_consumer_bytes = 16384\n");
                }
                if bits & 2 != 0 {
                    toml.push_str(
                        "[[sow]]\ntopic = \"orders\"\nkey = [\"/id\"]\nlogged = true\n\
                         [[sow]]\ntopic = \"quotes\"\nkey = [\"/55\"]\nmessage_type = \"fix\"\n\
                         expiration = \"2s\"\n\
                         [[queues]]\ntopic = \"jobs\"\nlease_period = \"1s\"\nmax_deliveries = 2\n",
                    );
                }
                if bits & 1 != 0 {
                    toml.push_str(
                        "[[users]]\nname = \"alice\"\npassword = \"secret\"\nchallenge = true\n\
                         [[users]]\nname = \"bob\"\npassword = \"pw\"\n",
                    );
                }
                Config::from_toml_str(&toml).expect("a valid fuzz configuration")
            })
            .collect()
    });
    all[usize::from(flags & 7)].clone()
}

struct Driver {
    e: Engine,
    now: Instant,
    open: Vec<ConnId>,
}

impl Driver {
    /// Handle every event; check what each connection is sent.
    fn drain(&mut self) {
        while let Some(ev) = self.e.poll_event() {
            match ev {
                EngineEvent::Transmit(c) => {
                    assert!(self.open.contains(&c), "output for {c}, never opened");
                    let mut out = Vec::new();
                    self.e.drain_output(c, &mut out);
                    assert_whole_frames(&out, "the broker");
                }
                EngineEvent::Close { conn, .. } => {
                    let i = self.open.iter().position(|c| *c == conn);
                    let i = i.unwrap_or_else(|| panic!("close of {conn}, not open"));
                    self.open.remove(i);
                    let mut out = Vec::new();
                    self.e.drain_output(conn, &mut out);
                    assert_whole_frames(&out, "the broker");
                }
            }
        }
        assert_eq!(self.e.connection_count(), self.open.len());
    }

    fn open(&mut self, logon: bool, auth: bool) {
        let c = self.e.open(self.now);
        self.open.push(c);
        if logon {
            let n = self.open.len().to_string();
            let name = format!("client-{}", c.0);
            let mut cmd = Command::logon(&name).command_id(&n);
            if auth {
                cmd = cmd.user_id("bob").password("pw");
            }
            let wire = cmd.to_vec().expect("a logon encodes");
            self.e.handle_bytes(self.now, c, &wire);
        }
        self.drain();
    }

    fn timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.e.handle_timeout(self.now);
        self.drain();
        if let Some(t) = self.e.poll_timeout() {
            assert!(t > self.now, "a timer is due right after handle_timeout");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (mut steer, mut stream) = Steer::split(data);
    let bits = u8::from(steer.flag(AUTH))
        | u8::from(steer.flag(EXTRA_TOPICS)) << 1
        | u8::from(steer.flag(SMALL_LIMITS)) << 2;
    let mut d = Driver {
        e: Engine::new(config(bits)),
        now: Instant::from_secs(1_800_000_000),
        open: Vec::new(),
    };
    let logon = steer.flag(AUTO_LOGON);
    let auth = steer.flag(AUTH);
    let conns = if steer.flag(ONE_CONN) { 1 } else { 3 };
    for _ in 0..conns {
        d.open(logon, auth);
    }
    while !stream.is_empty() {
        match steer.below(32) {
            0 | 1 => {
                let dt = Duration::from_millis(steer.below(2500));
                d.timeout(d.now + dt);
            }
            2 => {
                if let Some(t) = d.e.poll_timeout() {
                    d.timeout(t);
                }
            }
            3 if !d.open.is_empty() && steer.below(4) == 0 => {
                let i = steer.below(d.open.len() as u64) as usize;
                let c = d.open.remove(i);
                d.e.handle_closed(d.now, c);
                d.drain();
            }
            4 if d.open.len() < 3 => d.open(logon, auth),
            _ => {
                if d.open.is_empty() {
                    d.open(logon, auth);
                }
                let i = steer.below(d.open.len() as u64) as usize;
                let c = d.open[i];
                let want = steer.chunk(stream.len());
                d.e.handle_bytes(d.now, c, &stream[..want]);
                stream = &stream[want..];
                d.drain();
            }
        }
    }
    // Everything still owed (conflated acks, leases) is sent in due time.
    for _ in 0..4 {
        let Some(t) = d.e.poll_timeout() else { break };
        d.timeout(t);
    }
});

//! Heartbeats (docs/protocol.md §9): `start,N` / `beat` / `stop`, server beats every N seconds,
//! answers to each client beat, disconnect of a client silent for 2N after a server heartbeat.

use amps_core::codec::options::{OptionsIter, parse_duration};
use amps_core::codec::{AckType, Message};
use amps_core::{Duration, Instant};

use super::{CloseReason, ConnId, Engine};

/// A connection's heartbeat timer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heartbeat {
    interval: Duration,
    next_beat: Instant,
    /// Time of the first server heartbeat sent since the client's last frame.
    silent_since: Option<Instant>,
}

impl Heartbeat {
    pub(crate) fn next_deadline(&self) -> Instant {
        match self.silent_since {
            Some(s) => self.next_beat.min(s + self.interval.saturating_mul(2)),
            None => self.next_beat,
        }
    }

    /// A frame arrived from the client: any frame counts as liveness.
    pub(crate) fn touch(&mut self) {
        self.silent_since = None;
    }
}

impl Engine {
    pub(super) fn on_heartbeat(&mut self, conn: ConnId, msg: &Message<'_>) {
        let mut items = OptionsIter::new(msg.options().unwrap_or(""));
        let mut start = None;
        let mut beat = false;
        let mut stop = false;
        while let Some(opt) = items.next() {
            match (opt.key, opt.value) {
                ("start", None) => {
                    // `start,N`: the interval is the next comma item (§4: bare number = seconds).
                    let Some(d) = items.next().and_then(|n| parse_duration(n.key)) else {
                        return self.fail(conn, msg, "invalid options");
                    };
                    start = Some(d);
                }
                ("beat", None) => beat = true,
                ("stop", None) => stop = true,
                _ => return self.fail(conn, msg, "invalid options"),
            }
        }
        let limits = self.cfg.heartbeat;
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            if let Some(d) = start {
                let interval = d.max(limits.min.0).min(limits.max.0);
                c.hb = Some(Heartbeat {
                    interval,
                    next_beat: now + interval,
                    silent_since: None,
                });
            }
            if stop {
                c.hb = None;
            }
        }
        self.success(conn, msg, AckType::Processed);
        if beat && !self.faults.heartbeats_off {
            self.send_heartbeat(conn);
        }
    }

    fn send_heartbeat(&mut self, conn: ConnId) {
        self.emit(conn, &[], |w| {
            w.str("c", "heartbeat");
        });
    }

    pub(super) fn run_heartbeats(&mut self) {
        if self.faults.heartbeats_off {
            return;
        }
        let now = self.now;
        let mut beats = Vec::new();
        let mut dead = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            let Some(hb) = c.hb.as_mut() else { continue };
            if hb
                .silent_since
                .is_some_and(|s| now >= s + hb.interval.saturating_mul(2))
            {
                dead.push(*id);
                continue;
            }
            if now >= hb.next_beat {
                beats.push(*id);
                // Silence counts from the heartbeat actually sent: when the timers run late,
                // the client still gets its 2N to answer (and no deadline is already past).
                hb.silent_since.get_or_insert(now);
                hb.next_beat += hb.interval;
                if hb.next_beat <= now {
                    hb.next_beat = now + hb.interval;
                }
            }
        }
        for id in dead {
            self.schedule_close(id, CloseReason::HeartbeatTimeout, false);
        }
        for id in beats {
            self.send_heartbeat(id);
        }
    }
}

//! One connection's state, the input loop (framing, docs/protocol.md §1) and command dispatch.

use std::collections::BTreeMap;
use std::sync::Arc;

use amps_core::codec::{
    AckType, CommandKind, DecodeError, Field, FrameWriter, Header, Message, Scratch, split_frame,
};
use amps_core::{Duration, Instant};

use super::heartbeat::Heartbeat;
use super::patterns::Parked;
use super::subscribe::Sub;
use super::{CloseReason, ConnId, Engine};
use crate::config::{Config, Limits, MessageType};
use crate::faults::Faults;
use crate::wire::put_frame;

/// The logged-on identity of a connection (§8).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) client_name: String,
    pub(crate) user: Option<String>,
    pub(crate) pub_id: u64,
    /// Its slot in the engine's per-client sequences.
    pub(crate) seq_slot: usize,
}

/// Conflated `persisted` ack state (§8.4).
#[derive(Debug, Default)]
pub(crate) struct Persist {
    /// A success ack is owed for the client's current highest sequence.
    pub(crate) pending: bool,
    /// Bookmark subscriptions owe a periodic `persisted` ack.
    pub(crate) subs_pending: bool,
    /// When the owed acks are sent.
    pub(crate) due: Option<Instant>,
}

pub(crate) struct Conn {
    pub(crate) inbuf: Vec<u8>,
    pub(crate) out: Vec<u8>,
    pub(crate) tx_signalled: bool,
    pub(crate) closing: bool,
    pub(crate) session: Option<Session>,
    pub(crate) mt: MessageType,
    pub(crate) subs: BTreeMap<Arc<str>, Sub>,
    pub(crate) hb: Option<Heartbeat>,
    pub(crate) persist: Persist,
    pub(crate) ack_conflation: Duration,
    /// A logon challenge sent and not yet answered: (user, token) (§8.2).
    pub(crate) challenge: Option<(String, String)>,
    /// When the connection was opened (logon timeout).
    pub(crate) opened: Instant,
    /// When the last complete frame arrived (idle timeout).
    pub(crate) last_frame: Instant,
    /// Bytes of `inbuf` accounted in the engine's input total (its capacity).
    pub(crate) in_acct: usize,
    /// Bytes handed to the driver and not yet reported written ([`Engine::handle_written`]).
    pub(crate) in_flight: usize,
    /// Input processing waits for patterns being compiled off the engine's thread.
    pub(crate) parked: Option<Parked>,
}

impl Conn {
    pub(crate) fn new(now: Instant, cfg: &Config) -> Conn {
        Conn {
            opened: now,
            last_frame: now,
            in_acct: 0,
            in_flight: 0,
            parked: None,
            inbuf: Vec::new(),
            out: Vec::new(),
            tx_signalled: false,
            closing: false,
            session: None,
            mt: MessageType::Json,
            subs: BTreeMap::new(),
            hb: None,
            persist: Persist::default(),
            ack_conflation: cfg.ack_conflation.0,
            challenge: None,
        }
    }

    /// The earliest timer of this connection.
    pub(crate) fn next_timer(&self, faults: &Faults, limits: &Limits) -> Option<Instant> {
        let hb = if faults.heartbeats_off {
            None
        } else {
            self.hb.as_ref().map(Heartbeat::next_deadline)
        };
        [hb, self.persist.due, self.logon_deadline(limits), self.idle_deadline(limits)]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the connection is closed unless it has logged on.
    pub(crate) fn logon_deadline(&self, limits: &Limits) -> Option<Instant> {
        let t = limits.logon_timeout.0;
        (self.session.is_none() && !t.is_zero() && !self.closing).then(|| self.opened + t)
    }

    /// When the connection is closed unless a complete frame arrives.
    pub(crate) fn idle_deadline(&self, limits: &Limits) -> Option<Instant> {
        let t = limits.idle_timeout.0;
        (!t.is_zero() && !self.closing).then(|| self.last_frame + t)
    }

    /// Unsent output: queued here and handed to the driver but not yet written.
    pub(crate) fn backlog(&self) -> usize {
        self.out.len() + self.in_flight
    }
}

/// What became of one frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Processed (or refused).
    Done,
    /// Not processed: it waits for patterns being compiled; so does the rest of the input.
    Parked,
}

impl Engine {
    /// Frame and process input (docs/protocol.md §1.1: any chunking).
    pub(super) fn input(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        if c.parked.is_some() {
            // Kept in order behind the frame that waits (the TCP server also stops reading).
            c.inbuf.extend_from_slice(bytes);
            self.account_input(conn);
            return;
        }
        let mut inbuf = std::mem::take(&mut c.inbuf);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut rest = bytes;
        // A frame split across reads: top the held part up with just the bytes it lacks, so a
        // large read is not copied as a whole.
        while !inbuf.is_empty() && !rest.is_empty() {
            let need = match inbuf.first_chunk::<4>() {
                Some(p) => 4usize.saturating_add(u32::from_be_bytes(*p) as usize),
                None => 4,
            };
            let take = need.saturating_sub(inbuf.len()).min(rest.len());
            inbuf.extend_from_slice(rest.get(..take).unwrap_or(&[]));
            rest = rest.get(take..).unwrap_or(&[]);
            let used = self.frames(conn, &inbuf, &mut scratch);
            inbuf.drain(..used.min(inbuf.len()));
            if take == 0 || self.conns.get(&conn).is_none_or(|c| c.closing) {
                break;
            }
        }
        if inbuf.is_empty() {
            let used = self.frames(conn, rest, &mut scratch);
            inbuf.extend_from_slice(rest.get(used..).unwrap_or(&[]));
        } else if !rest.is_empty() {
            inbuf.extend_from_slice(rest);
            let used = self.frames(conn, &inbuf, &mut scratch);
            inbuf.drain(..used.min(inbuf.len()));
        }
        self.scratch = scratch;
        self.store_inbuf(conn, inbuf);
    }

    /// Process the input held while the connection was parked (see [`Engine::handle_compiled`]).
    pub(super) fn resume_input(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing || c.parked.is_some() {
            return;
        }
        let mut inbuf = std::mem::take(&mut c.inbuf);
        let mut scratch = std::mem::take(&mut self.scratch);
        let used = self.frames(conn, &inbuf, &mut scratch);
        inbuf.drain(..used.min(inbuf.len()));
        self.scratch = scratch;
        self.store_inbuf(conn, inbuf);
    }

    /// Give `conn` its held input back and account it.
    fn store_inbuf(&mut self, conn: ConnId, mut inbuf: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            if inbuf.capacity() > 1 << 20 && inbuf.len() < 1 << 16 {
                inbuf.shrink_to(1 << 16);
            }
            c.inbuf = inbuf;
            self.account_input(conn);
        }
    }

    /// Process every complete frame of `data`; returns the bytes consumed.
    fn frames(&mut self, conn: ConnId, data: &[u8], scratch: &mut Vec<u8>) -> usize {
        let mut pos = 0;
        loop {
            let limit = match self.conns.get(&conn) {
                None => return data.len(),
                Some(c) if c.closing => return data.len(),
                // Waiting for a pattern: the rest stays held, in order.
                Some(c) if c.parked.is_some() => return pos,
                Some(c) => self.frame_limit(c),
            };
            let rest = data.get(pos..).unwrap_or(&[]);
            match split_frame(rest, limit) {
                Ok(None) => return pos,
                Ok(Some((body, used))) => {
                    if scratch.len() < body.len() {
                        scratch.resize(body.len(), 0);
                    }
                    // Liveness counts on arrival, even for a frame that has to wait.
                    let now = self.now;
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.last_frame = now;
                        if let Some(hb) = c.hb.as_mut() {
                            hb.touch();
                        }
                    }
                    if self.frame(conn, body, scratch) == Outcome::Parked {
                        return pos;
                    }
                    pos += used;
                    self.count_frame_fault(conn);
                }
                Err(e) => {
                    // §1.4: a frame we cannot even delimit; say why without a cid, then close.
                    let (reason, why) = match e {
                        DecodeError::FrameTooLarge { .. } => {
                            ("message too large", CloseReason::FrameTooLarge)
                        }
                        _ => ("unknown command", CloseReason::ProtocolError),
                    };
                    self.ack_raw(conn, None, AckType::Processed, Some(reason), |_| {});
                    self.schedule_close(conn, why, true);
                    return data.len();
                }
            }
        }
    }

    /// The largest frame `c` may send now: `max_frame`, or less before logon.
    fn frame_limit(&self, c: &Conn) -> u32 {
        if c.session.is_some() {
            self.cfg.max_frame
        } else {
            self.cfg.max_frame.min(self.cfg.limits.max_frame_before_logon)
        }
    }

    fn count_frame_fault(&mut self, conn: ConnId) {
        if let Some(n) = self.faults.close_after_frames {
            if n <= 1 {
                self.faults.close_after_frames = None;
                self.schedule_close(conn, CloseReason::Fault, false);
            } else {
                self.faults.close_after_frames = Some(n - 1);
            }
        }
    }

    /// One frame body.
    fn frame(&mut self, conn: ConnId, body: &[u8], scratch: &mut [u8]) -> Outcome {
        let msg = match Message::parse(body, &mut Scratch::new(scratch)) {
            Ok(m) => m,
            Err(e) => {
                // A malformed command: a failure ack saying what is wrong (with the cid if one
                // can be read), then close.
                let (cid, reason) = malformed(body, e);
                self.ack_raw(conn, cid.as_deref(), AckType::Processed, Some(&reason), |_| {});
                self.schedule_close(conn, CloseReason::ProtocolError, true);
                return Outcome::Done;
            }
        };
        let kind = msg.kind();
        let logged_on = self.conns.get(&conn).is_some_and(|c| c.session.is_some());
        if !is_client_command(kind) {
            self.ack_raw(
                conn,
                msg.command_id(),
                AckType::Processed,
                Some("unknown command"),
                |_| {},
            );
            self.schedule_close(conn, CloseReason::ProtocolError, true);
            return Outcome::Done;
        }
        if kind != CommandKind::Logon && !logged_on {
            // §8.1: not executed.
            self.ack_raw(
                conn,
                msg.command_id(),
                AckType::Processed,
                Some("logon required"),
                |_| {},
            );
            return Outcome::Done;
        }
        if self.park_for_patterns(conn, &msg) {
            return Outcome::Parked;
        }
        if self.wants(&msg, AckType::Received) {
            self.ack(conn, &msg, AckType::Received, None, |_| {});
        }
        match kind {
            CommandKind::Logon => self.on_logon(conn, &msg),
            CommandKind::Publish => self.on_publish(conn, &msg, false),
            CommandKind::DeltaPublish => self.on_publish(conn, &msg, true),
            CommandKind::Subscribe
            | CommandKind::DeltaSubscribe
            | CommandKind::Sow
            | CommandKind::SowAndSubscribe
            | CommandKind::SowAndDeltaSubscribe => self.on_subscribe(conn, &msg),
            CommandKind::SowDelete => self.on_sow_delete(conn, &msg),
            CommandKind::Unsubscribe => self.on_unsubscribe(conn, &msg),
            CommandKind::Flush => self.on_flush(conn, &msg),
            CommandKind::Heartbeat => self.on_heartbeat(conn, &msg),
            _ => {
                // start_timer / stop_timer (§3): acked, nothing else.
                self.success(conn, &msg, AckType::Processed);
            }
        }
        Outcome::Done
    }

    /// True when `msg` asked for any ack its command can produce (see `wants`).
    pub(crate) fn wants_any(&self, msg: &Message<'_>) -> bool {
        !msg.ack_types()
            .intersect(msg.kind().supported_acks())
            .is_empty()
    }

    /// True when `msg` asked for `a` and its command can produce it (§5.3).
    pub(crate) fn wants(&self, msg: &Message<'_>, a: AckType) -> bool {
        msg.ack_types()
            .intersect(msg.kind().supported_acks())
            .contains(a)
    }

    /// Append a frame to `conn`'s output and signal it; enforces the slow-consumer limit.
    pub(crate) fn emit(
        &mut self,
        conn: ConnId,
        payload: &[u8],
        header: impl Fn(&mut FrameWriter<'_>),
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        let before = c.out.len();
        put_frame(&mut c.out, payload, header);
        self.acct.output += c.out.len().saturating_sub(before);
        self.signal(conn);
    }

    /// Append pre-built bytes (a delayed ack) to `conn`'s output.
    pub(crate) fn emit_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            c.out.extend_from_slice(bytes);
            self.acct.output += bytes.len();
            self.signal(conn);
        }
    }

    /// Output was queued for `conn`: enforce the per-connection and total limits, then ask the
    /// driver to transmit.
    pub(super) fn signal(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        // Within every limit (the common case): one lookup.
        if c.backlog() <= self.cfg.slow_consumer_bytes
            && self.acct.output <= self.cfg.limits.max_output_bytes
        {
            if !c.closing && !c.tx_signalled && !c.out.is_empty() {
                c.tx_signalled = true;
                self.events.push_back(super::EngineEvent::Transmit(conn));
            }
            return;
        }
        if c.backlog() > self.cfg.slow_consumer_bytes {
            self.schedule_close(conn, CloseReason::SlowConsumer, false);
            return;
        }
        if self.acct.output > self.cfg.limits.max_output_bytes {
            self.shed_output();
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        if !c.tx_signalled && !c.out.is_empty() {
            c.tx_signalled = true;
            self.events.push_back(super::EngineEvent::Transmit(conn));
        }
    }
}

/// The failure ack of a frame that does not decode: its `cid` when the header can be read,
/// and the precise reason (docs/protocol.md §23.2).
fn malformed(body: &[u8], e: DecodeError) -> (Option<String>, String) {
    let field_reason = |f: Field| format!("bad field type: {}", f.wire_key());
    match e {
        DecodeError::WrongType { field } | DecodeError::NumberOutOfRange { field } => {
            (None, field_reason(field))
        }
        DecodeError::UnknownCommand => {
            let mut s2 = vec![0u8; body.len()];
            match Header::parse(body, &mut Scratch::new(&mut s2)) {
                Ok((h, _)) => {
                    let cid = h.command_id().map(str::to_owned);
                    if h.has(Field::Command) {
                        (cid, "unknown command".into())
                    } else {
                        (cid, "missing field: c".into())
                    }
                }
                Err(_) => (None, "unknown command".into()),
            }
        }
        // Empty frame, not JSON, not UTF-8, nested too deep: a malformed command.
        _ => (None, "unknown command".into()),
    }
}

/// Commands a client may send (§3); server-only kinds are `unknown command` (§1.4).
fn is_client_command(kind: CommandKind) -> bool {
    !matches!(
        kind,
        CommandKind::Ack | CommandKind::GroupBegin | CommandKind::GroupEnd | CommandKind::Oof
    )
}

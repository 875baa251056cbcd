//! One connection's state, the input loop (framing, protocol.md §1) and command dispatch.

use std::collections::BTreeMap;
use std::sync::Arc;

use amps_core::codec::{
    AckType, CommandKind, DecodeError, FrameWriter, Header, Message, Scratch, split_frame,
};
use amps_core::{Duration, Instant};

use super::heartbeat::Heartbeat;
use super::subscribe::Sub;
use super::{CloseReason, ConnId, Engine};
use crate::config::{Config, MessageType};
use crate::faults::Faults;
use crate::wire::put_frame;

/// The logged-on identity of a connection (§8).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) client_name: String,
    pub(crate) user: Option<String>,
    pub(crate) pub_id: u64,
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
}

impl Conn {
    pub(crate) fn new(_now: Instant, cfg: &Config) -> Conn {
        Conn {
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
    pub(crate) fn next_timer(&self, faults: &Faults) -> Option<Instant> {
        let hb = if faults.heartbeats_off {
            None
        } else {
            self.hb.as_ref().map(Heartbeat::next_deadline)
        };
        match (hb, self.persist.due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Engine {
    /// Frame and process input (protocol.md §1.1: any chunking).
    pub(super) fn input(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
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
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            if inbuf.capacity() > 1 << 20 && inbuf.len() < 1 << 16 {
                inbuf.shrink_to(1 << 16);
            }
            c.inbuf = inbuf;
        }
    }

    /// Process every complete frame of `data`; returns the bytes consumed.
    fn frames(&mut self, conn: ConnId, data: &[u8], scratch: &mut Vec<u8>) -> usize {
        let mut pos = 0;
        loop {
            if self.conns.get(&conn).is_none_or(|c| c.closing) {
                return data.len();
            }
            let rest = data.get(pos..).unwrap_or(&[]);
            match split_frame(rest, self.cfg.max_frame) {
                Ok(None) => return pos,
                Ok(Some((body, used))) => {
                    pos += used;
                    if scratch.len() < body.len() {
                        scratch.resize(body.len(), 0);
                    }
                    self.frame(conn, body, scratch);
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
    fn frame(&mut self, conn: ConnId, body: &[u8], scratch: &mut [u8]) {
        let msg = match Message::parse(body, &mut Scratch::new(scratch)) {
            Ok(m) => m,
            Err(_) => {
                // §1.4: failure ack `unknown command` (with the cid if one can be read), close.
                let mut s2 = vec![0u8; body.len()];
                let cid = Header::parse(body, &mut Scratch::new(&mut s2))
                    .ok()
                    .and_then(|(h, _)| h.command_id().map(str::to_owned));
                self.ack_raw(
                    conn,
                    cid.as_deref(),
                    AckType::Processed,
                    Some("unknown command"),
                    |_| {},
                );
                self.schedule_close(conn, CloseReason::ProtocolError, true);
                return;
            }
        };
        self.touch(conn);
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
            return;
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
            return;
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
        let limit = self.cfg.slow_consumer_bytes;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        put_frame(&mut c.out, payload, header);
        self.signal(conn, limit);
    }

    /// Append pre-built bytes (a delayed ack) to `conn`'s output.
    pub(crate) fn emit_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        let limit = self.cfg.slow_consumer_bytes;
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            c.out.extend_from_slice(bytes);
            self.signal(conn, limit);
        }
    }

    fn signal(&mut self, conn: ConnId, limit: usize) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.out.len() > limit {
            self.schedule_close(conn, CloseReason::SlowConsumer, false);
            return;
        }
        if !c.tx_signalled && !c.out.is_empty() {
            c.tx_signalled = true;
            self.events.push_back(super::EngineEvent::Transmit(conn));
        }
    }
}

/// Commands a client may send (§3); server-only kinds are `unknown command` (§1.4).
fn is_client_command(kind: CommandKind) -> bool {
    !matches!(
        kind,
        CommandKind::Ack | CommandKind::GroupBegin | CommandKind::GroupEnd | CommandKind::Oof
    )
}

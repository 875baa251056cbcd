//! The in-image responder: just enough of a server (docs/protocol.md) for the self-test, on
//! listening sockets of the same interface. The full amps-broker needs std; this speaks the
//! subset the client uses, with amps-core's codec on both sides of the wire:
//!
//! - `logon` → `processed` ack with `client_name` and `s` = the highest sequence it holds for
//!   the client (§6.1, §8.4); a second logon with the same name supersedes the older
//!   connection (§8.3, the reconnect case after a lost link);
//! - `heartbeat` `beat` → a server `heartbeat` (§9, §17.11);
//! - `p` with `s` → accepted if `s` is the next sequence, dropped as a duplicate if not above
//!   the highest (§8.4), a gap is counted as an error; one conflated `persisted` ack per poll
//!   (§8.4) and a delivery to a matching subscription (§7.1);
//! - `subscribe` → `processed` ack (§6.4); `flush` → the acks it requested (§6.10).

use amps_core::codec::{
    AckType, CommandKind, FrameDecoder, FrameWriter, Message, Scratch,
};
use heapless::String;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

/// Port the responder listens on.
pub const PORT: u16 = 9007;
const OUT: usize = 1024;

/// What the responder saw, for the self-test's verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Logons answered.
    pub logons: u32,
    /// Publishes accepted (in sequence).
    pub accepted: u32,
    /// Publishes dropped as duplicates (replays of what it had).
    pub duplicates: u32,
    /// Publishes whose sequence skipped ahead (lost messages): must stay 0.
    pub gaps: u32,
    /// Deliveries sent to subscriptions.
    pub delivered: u32,
    /// Frames it could not parse or output it could not buffer: must stay 0.
    pub errors: u32,
}

/// One accepted connection.
struct Conn {
    handle: SocketHandle,
    open: bool,
    decoder: FrameDecoder<[u8; 512]>,
    out: [u8; OUT],
    out_len: usize,
    name: String<32>,
    sub_id: String<16>,
    sub_topic: String<32>,
    persist_due: bool,
}

/// A responder over `N` listening sockets.
pub struct Responder<const N: usize> {
    conns: [Conn; N],
    highest: u64,
    /// Sequence numbers are accepted for this client name only (one publisher in the test).
    pub tally: Tally,
}

impl<const N: usize> Responder<N> {
    /// A responder using the sockets `handles` (already in the socket set).
    pub fn new(handles: [SocketHandle; N]) -> Self {
        Responder {
            conns: handles.map(|handle| Conn {
                handle,
                open: false,
                decoder: FrameDecoder::new([0; 512], 508),
                out: [0; OUT],
                out_len: 0,
                name: String::new(),
                sub_id: String::new(),
                sub_topic: String::new(),
                persist_due: false,
            }),
            highest: 0,
            tally: Tally::default(),
        }
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.conns.iter().filter(|c| c.open).count()
    }

    /// Accept, read, answer, write. Returns whether anything moved.
    pub fn poll(&mut self, sockets: &mut SocketSet<'_>) -> bool {
        let mut progress = false;
        for i in 0..N {
            progress |= self.poll_conn(i, sockets);
        }
        for c in self.conns.iter_mut() {
            let sock = sockets.get_mut::<tcp::Socket>(c.handle);
            if c.persist_due && c.open {
                c.persist_due = false;
                let highest = self.highest;
                emit(c, &mut self.tally, |w| {
                    w.str("c", "ack").str("a", "persisted").str("status", "success");
                    w.int("s", highest);
                });
            }
            if c.out_len > 0 && sock.may_send() {
                let n = sock.send_slice(c.out.get(..c.out_len).unwrap_or(&[])).unwrap_or(0);
                c.out.copy_within(n..c.out_len, 0);
                c.out_len -= n;
                progress |= n > 0;
            }
        }
        progress
    }

    fn poll_conn(&mut self, i: usize, sockets: &mut SocketSet<'_>) -> bool {
        let Some(c) = self.conns.get_mut(i) else {
            return false;
        };
        let sock = sockets.get_mut::<tcp::Socket>(c.handle);
        if !c.open {
            if sock.may_send() {
                c.open = true;
                c.decoder.clear();
                c.out_len = 0;
                c.name.clear();
                c.sub_id.clear();
                return true;
            }
            if !sock.is_open() {
                let _ = sock.listen(PORT);
            }
            return false;
        }
        let mut progress = false;
        let mut chunk = [0u8; 256];
        while sock.can_recv() && c.decoder.free() >= chunk.len() {
            let n = sock.recv_slice(&mut chunk).unwrap_or(0);
            c.decoder.push(chunk.get(..n).unwrap_or(&[]));
            progress |= n > 0;
        }
        if !sock.may_recv() {
            // The client closed or reset the connection: listen again.
            sock.abort();
            c.open = false;
            return true;
        }
        let mut superseded = None;
        loop {
            let Some(c) = self.conns.get_mut(i) else {
                break;
            };
            let frame = match c.decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    self.tally.errors += 1;
                    c.decoder.clear();
                    break;
                }
            };
            // Copy the frame out of the decoder so replies can be written while reading it.
            let mut copy = [0u8; 512];
            let Some(dst) = copy.get_mut(..frame.len()) else {
                self.tally.errors += 1;
                continue;
            };
            dst.copy_from_slice(frame);
            let len = frame.len();
            let Some(frame) = copy.get(..len) else {
                continue;
            };
            let Ok(msg) = Message::parse(frame, &mut Scratch::empty()) else {
                self.tally.errors += 1;
                continue;
            };
            progress = true;
            if let Some(name) = self.handle(i, &msg) {
                superseded = Some(name);
            }
        }
        if let Some(name) = superseded {
            // Same client name on another connection: the newer logon wins (§8.3).
            for (j, other) in self.conns.iter_mut().enumerate() {
                if j != i && other.open && other.name == name {
                    sockets.get_mut::<tcp::Socket>(other.handle).abort();
                    other.open = false;
                }
            }
        }
        progress
    }

    /// Answer one frame; returns the client name of a logon.
    fn handle(&mut self, i: usize, msg: &Message<'_>) -> Option<String<32>> {
        let highest = self.highest;
        let c = self.conns.get_mut(i)?;
        let cid = msg.command_id().unwrap_or("");
        match msg.kind() {
            CommandKind::Logon => {
                self.tally.logons += 1;
                c.name.clear();
                let _ = c.name.push_str(msg.client_name().unwrap_or(""));
                let name = c.name.clone();
                emit(c, &mut self.tally, |w| {
                    w.str("c", "ack").str("cid", cid).str("a", "processed");
                    w.str("status", "success").str("client_name", name.as_str());
                    w.int("s", highest).str("version", "0.0.0.0");
                });
                return Some(c.name.clone());
            }
            CommandKind::Heartbeat => {
                if msg.options().is_some_and(|o| o.contains("beat")) {
                    emit(c, &mut self.tally, |w| {
                        w.str("c", "heartbeat");
                    });
                }
            }
            CommandKind::Publish => self.on_publish(i, msg),
            CommandKind::Subscribe => {
                c.sub_id.clear();
                c.sub_topic.clear();
                let ok = c.sub_id.push_str(msg.sub_id().unwrap_or(cid)).is_ok()
                    && c.sub_topic.push_str(msg.topic().unwrap_or("")).is_ok();
                if !ok {
                    self.tally.errors += 1;
                }
                ack(c, &mut self.tally, msg, AckType::Processed);
            }
            CommandKind::Flush => {
                // Everything before the flush is accepted and persisted at once.
                ack(c, &mut self.tally, msg, AckType::Processed);
                ack(c, &mut self.tally, msg, AckType::Completed);
                ack(c, &mut self.tally, msg, AckType::Persisted);
            }
            _ => ack(c, &mut self.tally, msg, AckType::Processed),
        }
        None
    }

    fn on_publish(&mut self, from: usize, msg: &Message<'_>) {
        let Some(seq) = msg.seq() else {
            self.tally.errors += 1;
            return;
        };
        if seq <= self.highest {
            self.tally.duplicates += 1;
            return;
        }
        if seq != self.highest + 1 {
            self.tally.gaps += 1;
        }
        self.highest = seq;
        self.tally.accepted += 1;
        if let Some(c) = self.conns.get_mut(from) {
            c.persist_due = true;
        }
        let topic = msg.topic().unwrap_or("");
        for c in self.conns.iter_mut() {
            if c.open && !c.sub_id.is_empty() && c.sub_topic == topic {
                let sub = c.sub_id.clone();
                let data = msg.data();
                self.tally.delivered += 1;
                emit_payload(c, &mut self.tally, data, |w| {
                    w.str("c", "p").str("t", topic).str("sub_id", sub.as_str());
                    w.int("s", seq).int("l", data.len() as u64);
                });
            }
        }
    }
}

/// An ack of `ty` for `msg` if it asked for one (a server sends only requested acks, §5.1).
fn ack(c: &mut Conn, tally: &mut Tally, msg: &Message<'_>, ty: AckType) {
    if !msg.ack_types().contains(ty) {
        return;
    }
    let cid = msg.command_id().unwrap_or("");
    emit(c, tally, |w| {
        w.str("c", "ack").str("cid", cid).str("a", ty.wire_name());
        w.str("status", "success");
    });
}

fn emit(c: &mut Conn, tally: &mut Tally, header: impl FnOnce(&mut FrameWriter<'_>)) {
    emit_payload(c, tally, &[], header);
}

/// Append one frame to the connection's output (an overflow is an error of the self-test).
fn emit_payload(
    c: &mut Conn,
    tally: &mut Tally,
    payload: &[u8],
    header: impl FnOnce(&mut FrameWriter<'_>),
) {
    let Some(tail) = c.out.get_mut(c.out_len..) else {
        tally.errors += 1;
        return;
    };
    let mut w = FrameWriter::new(tail);
    header(&mut w);
    match w.finish(payload) {
        Ok(n) => c.out_len += n,
        Err(_) => tally.errors += 1,
    }
}

//! The in-image responder: just enough of a server for the self-test, on the server end of
//! the image's link, written with amps-core's codec (the full amps-broker needs std):
//!
//! - `logon` → `processed` ack with `client_name` and `s` = the highest sequence it holds;
//! - `heartbeat` with `beat` → a server `heartbeat`;
//! - `p` with `s` → accepted if `s` is the next sequence, dropped as a duplicate if not above
//!   the highest, a gap counted as an error; one conflated `persisted` ack per read and a
//!   delivery to a matching subscription of the same connection;
//! - `subscribe` → `processed` ack; `flush` → the acks it requested; anything else → a
//!   `processed` ack if requested.

use core::cell::Cell;

use amps_core::codec::{AckType, CommandKind, FrameDecoder, FrameWriter, Message, Scratch};
use critical_section::Mutex;
use embedded_io_async::{Read, Write};
use heapless::String;

use crate::link::{End, Net};

const OUT: usize = 1024;

/// The responder's [`Tally`] as of its last answer, for the self-test task to read.
pub static TALLY: Mutex<Cell<Tally>> = Mutex::new(Cell::new(Tally {
    connections: 0,
    logons: 0,
    accepted: 0,
    duplicates: 0,
    gaps: 0,
    delivered: 0,
    errors: 0,
}));

/// The latest [`Tally`].
pub fn tally() -> Tally {
    critical_section::with(|cs| TALLY.borrow(cs).get())
}

/// What the responder saw, for the self-test's verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Connections accepted.
    pub connections: u32,
    /// Logons answered.
    pub logons: u32,
    /// Publishes accepted (in sequence).
    pub accepted: u32,
    /// Publishes dropped as duplicates (replays of what it had).
    pub duplicates: u32,
    /// Publishes whose sequence skipped ahead (lost messages): must stay 0.
    pub gaps: u32,
    /// Deliveries sent to the subscription.
    pub delivered: u32,
    /// Frames it could not parse or output it could not buffer: must stay 0.
    pub errors: u32,
}

/// The responder's state (kept across connections: the highest sequence it persisted).
pub struct Responder {
    decoder: FrameDecoder<[u8; 512]>,
    out: [u8; OUT],
    out_len: usize,
    sub_id: String<16>,
    sub_topic: String<32>,
    highest: u64,
    persist_due: bool,
    /// What it saw.
    pub tally: Tally,
}

impl Responder {
    /// A responder that has persisted nothing.
    pub fn new() -> Self {
        Responder {
            decoder: FrameDecoder::new([0; 512], 508),
            out: [0; OUT],
            out_len: 0,
            sub_id: String::new(),
            sub_topic: String::new(),
            highest: 0,
            persist_due: false,
            tally: Tally::default(),
        }
    }

    /// Serve connections for ever.
    pub async fn serve(&mut self, net: &'static Net) -> ! {
        loop {
            let mut conn = net.accept().await;
            self.tally.connections += 1;
            let tally = self.tally;
            critical_section::with(|cs| TALLY.borrow(cs).set(tally));
            self.decoder.clear();
            self.out_len = 0;
            self.sub_id.clear();
            self.sub_topic.clear();
            self.connection(&mut conn).await;
            conn.close();
        }
    }

    /// One connection, until the client closes it.
    async fn connection(&mut self, conn: &mut End) {
        let mut chunk = [0u8; 256];
        loop {
            let room = self.decoder.free().min(chunk.len());
            let Some(buf) = chunk.get_mut(..room) else {
                return;
            };
            let n = match conn.read(buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            self.decoder.push(chunk.get(..n).unwrap_or(&[]));
            self.frames();
            if self.persist_due {
                self.persist_due = false;
                let highest = self.highest;
                self.emit(&[], |w| {
                    w.str("c", "ack").str("a", "persisted").str("status", "success");
                    w.int("s", highest);
                });
            }
            let tally = self.tally;
            critical_section::with(|cs| TALLY.borrow(cs).set(tally));
            let out = self.out.get(..self.out_len).unwrap_or(&[]);
            if conn.write_all(out).await.is_err() {
                return;
            }
            self.out_len = 0;
        }
    }

    /// Answer every complete frame in the decoder.
    fn frames(&mut self) {
        loop {
            let mut copy = [0u8; 512];
            let len = match self.decoder.next_frame() {
                Ok(Some(f)) => match copy.get_mut(..f.len()) {
                    // Copied out so replies can be written while reading it.
                    Some(dst) => {
                        dst.copy_from_slice(f);
                        f.len()
                    }
                    None => {
                        self.tally.errors += 1;
                        continue;
                    }
                },
                Ok(None) => return,
                Err(_) => {
                    self.tally.errors += 1;
                    self.decoder.clear();
                    return;
                }
            };
            let frame = copy.get(..len).unwrap_or(&[]);
            match Message::parse(frame, &mut Scratch::empty()) {
                Ok(msg) => self.handle(&msg),
                Err(_) => self.tally.errors += 1,
            }
        }
    }

    fn handle(&mut self, msg: &Message<'_>) {
        let cid = msg.command_id().unwrap_or("");
        match msg.kind() {
            CommandKind::Logon => {
                self.tally.logons += 1;
                let highest = self.highest;
                let name = msg.client_name().unwrap_or("");
                self.emit(&[], |w| {
                    w.str("c", "ack").str("cid", cid).str("a", "processed");
                    w.str("status", "success").str("client_name", name);
                    w.int("s", highest).str("version", "0.0.0.0");
                });
            }
            CommandKind::Heartbeat => {
                if msg.options().is_some_and(|o| o.contains("beat")) {
                    self.emit(&[], |w| {
                        w.str("c", "heartbeat");
                    });
                }
            }
            CommandKind::Publish => self.publish(msg),
            CommandKind::Subscribe => {
                self.sub_id.clear();
                self.sub_topic.clear();
                let ok = self.sub_id.push_str(msg.sub_id().unwrap_or(cid)).is_ok()
                    && self.sub_topic.push_str(msg.topic().unwrap_or("")).is_ok();
                if !ok {
                    self.tally.errors += 1;
                }
                self.ack(msg, AckType::Processed);
            }
            CommandKind::Flush => {
                // Everything before the flush is accepted and persisted at once.
                self.ack(msg, AckType::Processed);
                self.ack(msg, AckType::Completed);
                self.ack(msg, AckType::Persisted);
            }
            _ => self.ack(msg, AckType::Processed),
        }
    }

    fn publish(&mut self, msg: &Message<'_>) {
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
        self.persist_due = true;
        let topic = msg.topic().unwrap_or("");
        if !self.sub_id.is_empty() && self.sub_topic == topic {
            let sub = self.sub_id.clone();
            let data = msg.data();
            self.tally.delivered += 1;
            self.emit(data, |w| {
                w.str("c", "p").str("t", topic).str("sub_id", sub.as_str());
                w.int("s", seq).int("l", data.len() as u64);
            });
        }
    }

    /// An ack of `ty` for `msg` if it asked for one (a server sends only requested acks).
    fn ack(&mut self, msg: &Message<'_>, ty: AckType) {
        if !msg.ack_types().contains(ty) {
            return;
        }
        let cid = msg.command_id().unwrap_or("");
        self.emit(&[], |w| {
            w.str("c", "ack").str("cid", cid).str("a", ty.wire_name());
            w.str("status", "success");
        });
    }

    /// Append one frame to the output (an overflow is an error of the self-test).
    fn emit(&mut self, payload: &[u8], header: impl FnOnce(&mut FrameWriter<'_>)) {
        let Some(tail) = self.out.get_mut(self.out_len..) else {
            self.tally.errors += 1;
            return;
        };
        let mut w = FrameWriter::new(tail);
        header(&mut w);
        match w.finish(payload) {
            Ok(n) => self.out_len += n,
            Err(_) => self.tally.errors += 1,
        }
    }
}

impl Default for Responder {
    fn default() -> Self {
        Responder::new()
    }
}

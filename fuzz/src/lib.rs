//! Shared pieces of the fuzz targets.
//!
//! Most targets read their input as `control | stream`: the first [`CTRL`] bytes steer the
//! driver (feature flags, chunk sizes, when timers fire, buffer sizes) and the rest is the byte
//! stream under test. Keeping the stream verbatim after a fixed-size prefix means a seed is
//! just a prefix plus real wire bytes, and the fuzzer's mutations of the stream stay
//! meaningful. [`seed`] builds such an input.

use amps_core::codec::{Message, Scratch, split_frame};

/// Bytes of control prefix: one byte of flags, then the PRNG seed.
pub const CTRL: usize = 8;

/// The driver's decisions, drawn from the control prefix.
pub struct Steer {
    /// The first control byte, as bits the target interprets.
    pub flags: u8,
    state: u64,
}

impl Steer {
    /// Split `data` into the driver and the stream (a short input is padded with zeros).
    pub fn split(data: &[u8]) -> (Steer, &[u8]) {
        let mut ctrl = [0u8; CTRL];
        let n = data.len().min(CTRL);
        ctrl[..n].copy_from_slice(&data[..n]);
        let mut seed = [0u8; 8];
        seed[..CTRL - 1].copy_from_slice(&ctrl[1..]);
        (
            Steer {
                flags: ctrl[0],
                state: u64::from_le_bytes(seed),
            },
            &data[n..],
        )
    }

    /// Whether flag bit `bit` is set.
    pub fn flag(&self, bit: u8) -> bool {
        self.flags & (1 << bit) != 0
    }

    /// The next pseudo-random number (SplitMix64).
    pub fn draw(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.draw() % n }
    }

    /// The length of the next chunk of a stream with `left` bytes left: mostly small (1 to 16
    /// bytes, to split prefixes and headers), sometimes up to 512, sometimes everything.
    pub fn chunk(&mut self, left: usize) -> usize {
        let n = match self.below(8) {
            0..=3 => 1 + self.below(16) as usize,
            4..=6 => 1 + self.below(512) as usize,
            _ => left,
        };
        n.clamp(1, left.max(1))
    }
}

/// A fuzz input from control bytes and a stream (what the seed corpora hold).
pub fn seed(flags: u8, prng: u64, stream: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(CTRL + stream.len());
    v.push(flags);
    v.extend_from_slice(&prng.to_le_bytes()[..CTRL - 1]);
    v.extend_from_slice(stream);
    v
}

/// A frame on the wire: length prefix and `body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// Assert that `bytes` is a sequence of whole frames whose headers all decode (what a sender
/// that never writes garbage produces); returns how many frames there were.
pub fn assert_whole_frames(bytes: &[u8], who: &str) -> usize {
    let mut rest = bytes;
    let mut n = 0;
    let mut scratch = Vec::new();
    while !rest.is_empty() {
        let (body, used) = match split_frame(rest, u32::MAX) {
            Ok(Some(x)) => x,
            other => panic!("{who} wrote a bad or partial frame ({other:?}) at frame {n}"),
        };
        scratch.clear();
        scratch.resize(body.len(), 0);
        if let Err(e) = Message::parse(body, &mut Scratch::new(&mut scratch)) {
            panic!(
                "{who} wrote a frame that does not decode ({e:?}): {:?}",
                String::from_utf8_lossy(body)
            );
        }
        rest = &rest[used..];
        n += 1;
    }
    n
}

/// The protocol's test vectors: `(name, server_to_client, wire bytes)`.
pub fn vectors() -> Vec<(String, bool, Vec<u8>)> {
    include_str!("../../core/tests/data/vectors.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let (name, dir, _len, body) = (it.next()?, it.next()?, it.next()?, it.next()?);
            Some((name.to_string(), dir == "S>C", frame(body.as_bytes())))
        })
        .collect()
}

/// Flag bits (of [`Steer::flags`]) of the `session` target.
pub mod session_flags {
    /// The fuzz input answers the logon (else the driver acknowledges it).
    pub const MANUAL_LOGON: u8 = 0;
    /// Heartbeats every second.
    pub const HEARTBEAT: u8 = 1;
    /// Reconnect (fixed delay) and re-enter subscriptions.
    pub const RECONNECT: u8 = 2;
    /// A two-second limit on `processed` acks.
    pub const COMMAND_TIMEOUT: u8 = 3;
    /// Queue acks batched by three.
    pub const ACK_BATCH: u8 = 4;
    /// Enter no subscriptions or publishes before the stream.
    pub const NO_COMMANDS: u8 = 5;
}

/// Flag bits (of [`Steer::flags`]) of the `broker` target.
pub mod broker_flags {
    /// Users with passwords, one answered by a challenge.
    pub const AUTH: u8 = 0;
    /// A 2 KiB frame limit and a 16 KiB slow-consumer limit.
    pub const SMALL_LIMITS: u8 = 1;
    /// Every connection logs on before the stream.
    pub const AUTO_LOGON: u8 = 2;
    /// One connection instead of three.
    pub const ONE_CONN: u8 = 3;
    /// A FIX SOW topic with expiring records and a queue with short leases.
    pub const EXTRA_TOPICS: u8 = 4;
}

/// Store files of `amps-fs` built from records, for the `fs_store` target (the layout
/// `adapters/fs/src/record.rs` documents: magic, version, header record, records; each record
/// `length (u32 LE) | crc32 (u32 LE) | payload`, the CRC over the length field and payload).
pub mod fs_file {
    /// The format version the stores write.
    pub const VERSION: u32 = 1;
    /// A `0xff` length byte: the rest of the input is appended raw.
    pub const RAW_TAIL: u8 = 0xff;

    fn record(out: &mut Vec<u8>, payload: &[u8]) {
        let len = (payload.len() as u32).to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len);
        crc.update(payload);
        out.extend_from_slice(&len);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(payload);
    }

    /// A publish segment (id 1, the first a store creates; `last_seq` from the first 8 input bytes) or a bookmark log of
    /// `client_name`, holding the records `input` describes: a length byte, then that many
    /// payload bytes (type byte first), repeated; [`RAW_TAIL`] ends with raw bytes.
    pub fn from_records(bookmark: bool, client_name: &str, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + input.len() + input.len() / 2);
        out.extend_from_slice(if bookmark { b"AMPSFSBM" } else { b"AMPSFSPS" });
        out.extend_from_slice(&VERSION.to_le_bytes());
        let mut header = vec![0x01];
        header.extend_from_slice(&(client_name.len() as u16).to_le_bytes());
        header.extend_from_slice(client_name.as_bytes());
        let mut rest = input;
        if !bookmark {
            let mut last = [0u8; 8];
            let n = rest.len().min(8);
            last[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            header.extend_from_slice(&1u64.to_le_bytes());
            header.extend_from_slice(&last);
        }
        record(&mut out, &header);
        while let Some((&len, tail)) = rest.split_first() {
            if len == RAW_TAIL {
                out.extend_from_slice(tail);
                break;
            }
            let n = usize::from(len).min(tail.len());
            record(&mut out, &tail[..n]);
            rest = &tail[n..];
        }
        out
    }

    /// The inverse for files the stores wrote: `last_seq` (publish only) and each record after
    /// the header as a length byte and payload (records of 255 bytes or more are skipped).
    pub fn to_records(bookmark: bool, file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 12;
        let mut first = true;
        while let Some(hdr) = file.get(at..at + 8) {
            let len = u32::from_le_bytes(hdr[..4].try_into().expect("4 bytes")) as usize;
            let Some(payload) = file.get(at + 8..at + 8 + len) else {
                break;
            };
            if first {
                if !bookmark {
                    out.extend_from_slice(payload.get(payload.len() - 8..).unwrap_or(&[0; 8]));
                }
                first = false;
            } else if len < usize::from(RAW_TAIL) {
                out.push(len as u8);
                out.extend_from_slice(payload);
            }
            at += 8 + len;
        }
        out
    }
}

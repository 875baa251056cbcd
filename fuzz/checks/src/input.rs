//! Reading a fuzz input (the control prefix and the stream), building one, and checking what a
//! sender wrote.

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

/// A fuzz input from control bytes and a stream (what the starting corpora hold).
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

/// The protocol's test vectors (`core/tests/data/vectors.txt`):
/// `(name, server_to_client, wire bytes)`.
pub fn vectors() -> Vec<(String, bool, Vec<u8>)> {
    include_str!("../../../core/tests/data/vectors.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let (name, dir, _len, body) = (it.next()?, it.next()?, it.next()?, it.next()?);
            Some((name.to_string(), dir == "S>C", frame(body.as_bytes())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_splits_back_into_its_flags_prng_and_stream() {
        let data = seed(0b101, 0x0011_2233_4455_6677, b"stream");
        let (mut steer, stream) = Steer::split(&data);
        assert_eq!((steer.flags, stream), (0b101, &b"stream"[..]));
        assert!(steer.flag(0) && !steer.flag(1) && steer.flag(2));
        // Only the low 7 bytes of the PRNG seed are kept.
        let (mut other, _) = Steer::split(&seed(0, 0x7711_2233_4455_6677, b""));
        assert_eq!(steer.draw(), other.draw());
        for left in [1usize, 5, 600] {
            let n = steer.chunk(left);
            assert!((1..=left).contains(&n));
        }
        assert_eq!(steer.below(0), 0);
    }

    #[test]
    fn whole_frames_are_counted_and_a_partial_one_is_refused() {
        let mut wire = frame(br#"{"c":"p","t":"a"}x"#);
        wire.extend_from_slice(&frame(br#"{"c":"ack"}"#));
        assert_eq!(assert_whole_frames(&wire, "test"), 2);
        let cut = wire.len() - 1;
        let r = std::panic::catch_unwind(|| assert_whole_frames(&wire[..cut], "test"));
        assert!(r.is_err());
    }

    #[test]
    fn the_vectors_are_read() {
        let v = vectors();
        assert!(v.len() > 20);
        assert!(v.iter().any(|x| x.1) && v.iter().any(|x| !x.1));
    }
}

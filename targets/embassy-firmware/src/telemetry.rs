//! The firmware's "sensor": deterministic readings, serialized as compact JSON into a caller
//! buffer with integer formatting only (no `core::fmt`, no floats: small code on a Cortex-M4).

/// One reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Sample number, from 1.
    pub seq: u32,
    /// Temperature in milli-degrees Celsius.
    pub temp_mc: i32,
    /// Supply voltage in millivolts.
    pub vbat_mv: u32,
}

/// Reading number `seq`: a slow triangle wave around 21.5 °C and a draining battery.
pub fn sample(seq: u32) -> Reading {
    let phase = (seq % 40) as i32;
    let tri = if phase < 20 { phase } else { 40 - phase };
    Reading {
        seq,
        temp_mc: 21_500 + (tri - 10) * 125,
        vbat_mv: 3_300u32.saturating_sub(seq / 4),
    }
}

/// Appends bytes to a fixed buffer; any overflow makes the whole write fail.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
    ok: bool,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if self.ok => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.ok = false,
        }
    }
}

/// `{"seq":N,"temp_mc":N,"vbat_mv":N}` into `out`; `None` if it does not fit.
pub fn to_json(r: &Reading, out: &mut [u8]) -> Option<usize> {
    let mut w = Out {
        buf: out,
        len: 0,
        ok: true,
    };
    let mut n = itoa::Buffer::new();
    w.put(b"{\"seq\":");
    w.put(n.format(r.seq).as_bytes());
    w.put(b",\"temp_mc\":");
    w.put(n.format(r.temp_mc).as_bytes());
    w.put(b",\"vbat_mv\":");
    w.put(n.format(r.vbat_mv).as_bytes());
    w.put(b"}");
    w.ok.then_some(w.len)
}

/// The `seq` of a payload written by [`to_json`] (the responder's and the check's view).
pub fn seq_of(payload: &[u8]) -> Option<u32> {
    let rest = payload.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    let digits = core::str::from_utf8(rest.get(..end)?).ok()?;
    digits.parse().ok()
}

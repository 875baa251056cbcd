//! Records from a file, standard input or one `-data` value, split on a delimiter byte without
//! copying: the reader fills a large buffer and hands out slices of it.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::conn::Failure;

/// Bytes read at a time (grown when one record is larger).
const CHUNK: usize = 1 << 20;

/// Where records come from.
pub(crate) struct Records {
    source: Box<dyn Read>,
    buf: Vec<u8>,
    /// Start and end of the unread bytes in `buf`.
    start: usize,
    end: usize,
    eof: bool,
    /// `None`: the whole input is one record.
    delimiter: Option<u8>,
    /// Bytes handed out or skipped so far (for progress).
    consumed: u64,
    /// Total size, when known (a regular file).
    total: Option<u64>,
    name: String,
}

impl Records {
    /// Records of the file at `path`, or of standard input for `None`.
    pub(crate) fn open(path: Option<&Path>, delimiter: u8) -> Result<Records, Failure> {
        let (source, total, name): (Box<dyn Read>, _, _) = match path {
            Some(p) => {
                let f = File::open(p)
                    .map_err(|e| Failure::Io(format!("cannot open {}: {e}", p.display())))?;
                let total = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                (Box::new(f), total, p.display().to_string())
            }
            None => (Box::new(io::stdin()), None, "standard input".to_owned()),
        };
        Ok(Records::from_reader(source, total, name, delimiter))
    }

    /// One record: `data` as it is, delimiters and all.
    pub(crate) fn single(data: Vec<u8>) -> Records {
        let len = data.len();
        Records {
            source: Box::new(io::empty()),
            buf: data,
            start: 0,
            end: len,
            eof: true,
            delimiter: None,
            consumed: 0,
            total: Some(len as u64),
            name: "-data".into(),
        }
    }

    /// Records of `source`.
    pub(crate) fn from_reader(
        source: Box<dyn Read>,
        total: Option<u64>,
        name: String,
        delimiter: u8,
    ) -> Records {
        Records {
            source,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            delimiter: Some(delimiter),
            consumed: 0,
            total,
            name,
        }
    }

    /// Total bytes, when known.
    pub(crate) fn total(&self) -> Option<u64> {
        self.total
    }

    /// Bytes consumed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next record, without its delimiter (and without a `\r` before a newline
    /// delimiter); empty records are skipped. `None` at the end.
    pub(crate) fn next_record(&mut self) -> Result<Option<&[u8]>, Failure> {
        let (from, len) = loop {
            let window = &self.buf[self.start..self.end];
            let cut = self.delimiter.and_then(|d| memchr::memchr(d, window));
            let (mut len, skip) = match cut {
                Some(i) => (i, i + 1),
                None if self.eof => (window.len(), window.len()),
                None => {
                    self.fill()?;
                    continue;
                }
            };
            if skip == 0 {
                return Ok(None);
            }
            let from = self.start;
            self.start += skip;
            self.consumed += skip as u64;
            if self.delimiter == Some(b'\n') && len > 0 && self.buf[from + len - 1] == b'\r' {
                len -= 1;
            }
            if len > 0 {
                break (from, len);
            }
        };
        Ok(Some(&self.buf[from..from + len]))
    }

    /// Read more: move the unread tail to the front (growing the buffer when it is all one
    /// record), then read.
    fn fill(&mut self) -> Result<(), Failure> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        loop {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::Io(format!("reading {}: {e}", self.name))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `step` bytes per read, to cut records across reads.
    struct Trickle(Vec<u8>, usize, usize);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len() - self.2);
            out[..n].copy_from_slice(&self.0[self.2..self.2 + n]);
            self.2 += n;
            Ok(n)
        }
    }

    fn all(input: &[u8], step: usize, delim: u8) -> Vec<Vec<u8>> {
        let src = Box::new(Trickle(input.to_vec(), step, 0));
        let mut r = Records::from_reader(src, None, "test".into(), delim);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec.to_vec());
        }
        assert_eq!(r.consumed(), input.len() as u64);
        out
    }

    #[test]
    fn splits_on_the_delimiter_across_reads() {
        let want: Vec<Vec<u8>> = vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()];
        for step in [1, 2, 3, 100] {
            assert_eq!(all(b"a\nbb\r\n\nccc", step, b'\n'), want, "step {step}");
            assert_eq!(all(b"a\nbb\nccc\n", step, b'\n'), want, "step {step}");
        }
        assert_eq!(
            all(b"x|y\n|", 2, b'|'),
            vec![b"x".to_vec(), b"y\n".to_vec()]
        );
        assert!(all(b"", 4, b'\n').is_empty());
        let mut one = Records::single(b"a\nb".to_vec());
        assert_eq!(one.next_record().unwrap(), Some(&b"a\nb"[..]));
        assert_eq!(one.next_record().unwrap(), None);
    }

    #[test]
    fn records_larger_than_the_buffer_grow_it() {
        let big = vec![b'x'; CHUNK * 2 + 5];
        let mut input = big.clone();
        input.extend_from_slice(b"\nend");
        assert_eq!(all(&input, CHUNK, b'\n'), vec![big, b"end".to_vec()]);
    }
}

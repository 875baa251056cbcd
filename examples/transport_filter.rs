//! A transport filter with the blocking client (amps-std): a function given on the builder
//! that sees the raw bytes of the connection both ways (after TLS decryption, before
//! parsing), here counting them and keeping the first chunks to print. It runs on the
//! connection's loop: it must be quick and must not call the client.
//!
//! ```text
//! cargo run -p amps-examples --example transport_filter
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example transport_filter
//! ```
//!
//! Uses the topic `wire` (any topic works).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amps_examples::{client_name, server};
use amps_std::{Client, Direction};

const MESSAGES: usize = 100;
/// Chunks kept per direction for printing.
const SAMPLES: usize = 2;

/// What the filter saw.
#[derive(Default)]
struct Wire {
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    chunks_out: AtomicU64,
    chunks_in: AtomicU64,
    samples: Mutex<Vec<(Direction, Vec<u8>)>>,
}

impl Wire {
    fn record(&self, dir: Direction, bytes: &[u8]) {
        let (total, chunks) = match dir {
            Direction::Outgoing => (&self.bytes_out, &self.chunks_out),
            _ => (&self.bytes_in, &self.chunks_in),
        };
        total.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let n = chunks.fetch_add(1, Ordering::Relaxed);
        if n < SAMPLES as u64
            && let Ok(mut s) = self.samples.lock()
        {
            s.push((dir, bytes.to_vec()));
        }
    }
}

/// The start of a chunk as text: the 4-byte length prefix in hex, then the frame, with the
/// logon's password (from a connection string with credentials) left out.
fn preview(bytes: &[u8]) -> String {
    let (prefix, rest) = bytes.split_at(bytes.len().min(4));
    let hex: Vec<String> = prefix.iter().map(|b| format!("{b:02x}")).collect();
    let mut text = String::from_utf8_lossy(rest).into_owned();
    if let Some(start) = text.find(r#""pw":""#).map(|i| i + r#""pw":""#.len())
        && let Some(len) = text[start..].find('"')
    {
        text.replace_range(start..start + len, "<redacted>");
    }
    let cut = text.char_indices().nth(90).map_or(text.len(), |(i, _)| i);
    format!("[{}] {}", hex.join(" "), &text[..cut])
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server(amps_broker::Config::default())?;
    let wire = Arc::new(Wire::default());
    let seen = wire.clone();
    let client = Client::builder(client_name("wiretap"))
        .transport_filter(move |dir, bytes| seen.record(dir, bytes))
        .build()?;
    client.connect(&server.uri)?;
    client.logon()?;
    let mut stream = client.subscribe("wire", None)?;
    for i in 0..MESSAGES {
        client.publish("wire", format!(r#"{{"n":{i}}}"#))?;
    }
    for _ in 0..MESSAGES {
        stream
            .recv_timeout(Duration::from_secs(10))?
            .ok_or("the stream ended")?;
    }
    client.flush()?;
    drop(stream);
    client.close()?;

    println!("first chunks each way (a frame is a 4-byte big-endian length, then the frame):");
    let samples = wire.samples.lock().map_err(|_| "poisoned")?.clone();
    for (dir, bytes) in &samples {
        let arrow = if *dir == Direction::Outgoing {
            "->"
        } else {
            "<-"
        };
        println!("  {arrow} {} bytes: {}", bytes.len(), preview(bytes));
    }
    let out = wire.bytes_out.load(Ordering::Relaxed);
    let inc = wire.bytes_in.load(Ordering::Relaxed);
    println!(
        "after {MESSAGES} publishes and deliveries: {out} bytes out in {} chunks, {inc} bytes in \
         in {} chunks (writes are batched, reads arrive as the socket gives them)",
        wire.chunks_out.load(Ordering::Relaxed),
        wire.chunks_in.load(Ordering::Relaxed)
    );
    let first_out = samples.iter().find(|(d, _)| *d == Direction::Outgoing);
    if !first_out.is_some_and(|(_, b)| {
        b.get(4..)
            .is_some_and(|f| f.starts_with(br#"{"c":"logon""#))
    }) {
        return Err("the first bytes out were not the logon".into());
    }
    if out == 0 || inc == 0 {
        return Err("the filter saw no traffic".into());
    }
    Ok(())
}

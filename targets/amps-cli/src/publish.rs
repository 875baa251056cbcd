//! `publish` and `delta_publish`: records from a file, standard input or `-data`, optionally
//! paced by `-rate`, with progress on standard error and a summary line at the end.

use std::time::{Duration, Instant};

use amps::blocking::Client;

use crate::args::PublishArgs;
use crate::conn::{self, Failure};
use crate::input::Records;
use crate::progress::{self, Progress};

/// Records between progress updates (and rate checks when no rate is set).
const UPDATE_EVERY: u64 = 4096;

/// Run `publish` (`delta` for delta_publish).
pub(crate) fn run(args: &PublishArgs, delta: bool) -> Result<(), Failure> {
    let delta = delta || args.delta;
    let uri = conn::uri_of(&args.conn)?;
    let mut records = match &args.data {
        Some(d) => Records::single(d.clone().into_bytes()),
        None => Records::open(args.file.as_deref(), args.delimiter)?,
    };
    let c = conn::connect(&args.conn, &uri, |b| b)?;
    let client = c.client;
    let mode = if args.quiet {
        crate::args::ProgressMode::Never
    } else {
        args.progress
    };
    let progress = Progress::new(mode, "published", records.total());
    let mut pacer = args.rate.map(Pacer::new);
    let mut n: u64 = 0;
    let topic = args.topic.as_str();
    let result = (|| {
        while let Some(rec) = records.next_record()? {
            send(&client, topic, rec, delta)?;
            n += 1;
            if let Some(p) = &mut pacer {
                p.wait(n);
            }
            if n.is_multiple_of(UPDATE_EVERY) {
                progress.update(n, records.consumed());
            }
        }
        // Every publish was processed by the server once the flush is answered.
        client
            .flush()
            .map_err(|e| Failure::from_client("flush after publishing", &e))
    })();
    progress.finish(n, records.consumed());
    let elapsed = progress.elapsed();
    let _ = client.close();
    result?;
    if !args.quiet {
        eprintln!(
            "{} to {topic} on {}",
            progress::summary("published", n, elapsed),
            c.shown
        );
    }
    Ok(())
}

fn send(client: &Client, topic: &str, rec: &[u8], delta: bool) -> Result<(), Failure> {
    let r = if delta {
        client.delta_publish(topic, rec)
    } else {
        client.publish(topic, rec)
    };
    r.map_err(|e| Failure::from_client("publish", &e))
}

/// Paces publishing at a fixed rate: record `n` goes out `n / rate` seconds after the start.
/// A sender that fell more than a second behind starts a new schedule instead of bursting.
struct Pacer {
    rate: f64,
    start: Instant,
    base: u64,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            rate,
            start: Instant::now(),
            base: 0,
        }
    }

    /// When record `n` (counted from 1) may go.
    fn due(&self, n: u64) -> Instant {
        let ahead = (n - self.base) as f64 / self.rate;
        self.start + Duration::from_secs_f64(ahead.min(1e9))
    }

    /// Wait until the record after `sent` may go.
    fn wait(&mut self, sent: u64) {
        let due = self.due(sent);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_secs(1) {
            self.start = now;
            self.base = sent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_spreads_records_over_time() {
        let p = Pacer {
            rate: 4.0,
            start: Instant::now(),
            base: 0,
        };
        assert_eq!(p.due(4) - p.start, Duration::from_secs(1));
        assert_eq!(p.due(1) - p.start, Duration::from_millis(250));
        let slow = Pacer { rate: 0.25, ..p };
        assert_eq!(slow.due(1) - slow.start, Duration::from_secs(4));
    }
}

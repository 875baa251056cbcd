//! `subscribe`, `delta_subscribe`, `sow_and_subscribe`, `sow_and_delta_subscribe`: print
//! what arrives until Ctrl-C (or `--max-messages`); on a queue with `-ack`, acknowledge each
//! message once printed. Stopping is clean: batched acks are sent and confirmed, then the
//! subscription is ended on the server (messages received but not printed go back to the
//! queue), then the client closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use amps::blocking::{Client, MessageStream};
use amps::{Command, CommandKind, ErrorKind, Message, bookmark};

use crate::args::{Conn, Out, QueryOpts, SubOpts};
use crate::conn::{self, Failure};
use crate::output::{Format, Printer};

/// How long a wait for the next message lasts before the stop flag is looked at again (and
/// standard output is flushed).
const POLL: Duration = Duration::from_millis(100);

/// What to subscribe to.
pub(crate) struct Plan<'a> {
    /// Connection flags.
    pub(crate) conn: &'a Conn,
    /// Topic or regular expression.
    pub(crate) topic: &'a str,
    /// Subscription flags.
    pub(crate) sub: &'a SubOpts,
    /// Output flags.
    pub(crate) out: &'a Out,
    /// Query flags, for sow_and_subscribe.
    pub(crate) query: Option<&'a QueryOpts>,
    /// Delta subscription.
    pub(crate) delta: bool,
}

/// The bookmark a `-bookmark` value names: `0`/`epoch`, `now`, `recent`, or a bookmark.
fn bookmark_of(v: &str) -> &str {
    match v.to_ascii_lowercase().as_str() {
        "0" | "epoch" => bookmark::EPOCH,
        "now" => bookmark::NOW,
        "recent" | "most_recent" => bookmark::MOST_RECENT,
        _ => v,
    }
}

/// The `o` header: the user's options plus `max_backlog=N`.
fn options_of(sub: &SubOpts) -> Option<String> {
    let mut parts: Vec<String> = sub.options.iter().cloned().collect();
    if let Some(n) = sub.backlog {
        parts.push(format!("max_backlog={n}"));
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Run the subscription until `stop` is set, the stream ends or enough messages came.
pub(crate) fn run(plan: &Plan<'_>, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let format = Format::parse(plan.out.format.as_deref())?;
    let uri = conn::uri_of(plan.conn)?;
    let sub = plan.sub;
    let ack_batch = sub.ack_batch.or(sub.backlog).unwrap_or(1).max(1);
    let ack_timeout = sub.ack_timeout;
    let c = conn::connect(plan.conn, &uri, |b| {
        b.ack_batch_size(ack_batch).ack_timeout(ack_timeout)
    })?;
    let client = c.client;
    let copy = match &sub.copy {
        Some(server) => {
            let copy_uri = conn::server_uri(server, &plan.conn.proto, &plan.conn.message_type);
            Some(conn::connect(plan.conn, &copy_uri, |b| b)?.client)
        }
        None => None,
    };

    let kind = match (plan.query.is_some(), plan.delta || sub.delta) {
        (false, false) => CommandKind::Subscribe,
        (false, true) => CommandKind::DeltaSubscribe,
        (true, false) => CommandKind::SowAndSubscribe,
        (true, true) => CommandKind::SowAndDeltaSubscribe,
    };
    let options = options_of(sub);
    let mut cmd = Command::new(kind).topic(plan.topic);
    if let Some(f) = &sub.filter {
        cmd = cmd.filter(f);
    }
    if let Some(o) = &options {
        cmd = cmd.options(o);
    }
    if let Some(b) = &sub.bookmark {
        cmd = cmd.bookmark(bookmark_of(b));
    }
    if let Some(q) = plan.query {
        if let Some(o) = &q.orderby {
            cmd = cmd.order_by(o);
        }
        if let Some(n) = q.topn {
            cmd = cmd.top_n(n);
        }
        if let Some(n) = q.batchsize {
            cmd = cmd.batch_size(n);
        }
    }
    let what = kind.to_string();
    let stream = client
        .execute(&cmd)
        .map_err(|e| Failure::from_client(&what, &e))?;
    let quiet = plan.out.quiet;
    if !quiet {
        // Also the readiness line scripts (and the tests) wait for.
        eprintln!(
            "amps: {what} to {} on {} (Ctrl-C stops)",
            plan.topic, c.shown
        );
    }
    let started = std::time::Instant::now();
    let mut printer = Printer::new(format, plan.out.delimiter);
    let mut session = Session {
        printer: &mut printer,
        copy: copy.as_ref(),
        ack: sub.ack,
        acked: false,
        received: 0,
        max: sub.max_messages,
    };
    let (stream, outcome) = session.pump(stream, stop);
    let acked = session.acked;
    let received = session.received;
    let flushed = printer.flush();
    let stopped = stop_cleanly(&client, stream, acked, ack_batch, ack_timeout);
    if let Some(c) = copy {
        let _ = c.flush();
        let _ = c.close();
    }
    let _ = client.close();
    outcome?;
    stopped?;
    if !quiet {
        eprintln!(
            "{} from {}",
            crate::progress::summary("received", received, started.elapsed()),
            plan.topic
        );
    }
    match flushed {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Io(format!("standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// The receiving loop's state.
struct Session<'a> {
    printer: &'a mut Printer,
    copy: Option<&'a Client>,
    ack: bool,
    /// Whether a queue message was acknowledged.
    acked: bool,
    received: u64,
    max: Option<u64>,
}

impl Session<'_> {
    /// Take messages until told to stop; returns the stream (still subscribed) and how the
    /// loop ended.
    fn pump(
        &mut self,
        mut stream: MessageStream,
        stop: &AtomicBool,
    ) -> (MessageStream, Result<(), Failure>) {
        loop {
            if stop.load(Ordering::Relaxed) || self.max.is_some_and(|m| self.received >= m) {
                return (stream, Ok(()));
            }
            match stream.recv_timeout(POLL) {
                Ok(Some(m)) => match self.handle(&m) {
                    Ok(true) => {}
                    Ok(false) => return (stream, Ok(())),
                    Err(f) => return (stream, Err(f)),
                },
                Ok(None) => return (stream, Ok(())),
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    if self.printer.flush().is_err() {
                        return (stream, Ok(()));
                    }
                    continue;
                }
                Err(e) => return (stream, Err(Failure::from_client("the subscription", &e))),
            }
            if stream.is_empty() && self.printer.flush().is_err() {
                // Standard output is gone (e.g. `| head`): stop as after Ctrl-C.
                return (stream, Ok(()));
            }
        }
    }

    /// Print (and copy, and acknowledge) one message. `Ok(false)`: standard output closed.
    fn handle(&mut self, m: &Message) -> Result<bool, Failure> {
        if !crate::output::printable(m, self.printer.format()) {
            return Ok(true);
        }
        if let Err(e) = self.printer.print(m) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(false);
            }
            return Err(Failure::Io(format!("standard output: {e}")));
        }
        self.received += 1;
        if let (Some(copy), Some(topic)) = (self.copy, m.topic())
            && m.command() != CommandKind::Oof
        {
            copy.publish(topic, m.data())
                .map_err(|e| Failure::from_client("copy", &e))?;
        }
        if self.ack && m.is_queue_message() {
            m.ack().map_err(|e| Failure::from_client("ack", &e))?;
            self.acked = true;
        }
        Ok(true)
    }
}

/// Send the acks still batched in the client, then end the subscription, in that order on
/// the wire, so the server never returns a message that was printed to the queue.
///
/// The client has no call to send a partial batch at once: it sends it when the ack timeout
/// since the batch's first ack has passed. So: a first flush returns once the client's I/O
/// thread has taken every ack (the batch's timer is then set, due at most one ack timeout
/// after that); after that timeout, a second flush is handled in a step that also fires the
/// due timer, so the batch is written no later than that step, and the unsubscribe, sent
/// after the second flush returned, follows it.
fn stop_cleanly(
    client: &Client,
    mut stream: MessageStream,
    acked: bool,
    ack_batch: u32,
    ack_timeout: Duration,
) -> Result<(), Failure> {
    if acked && ack_batch > 1 {
        let flush = || {
            client
                .flush()
                .map_err(|e| Failure::from_client("flushing acks", &e))
        };
        flush()?;
        std::thread::sleep(ack_timeout + Duration::from_millis(1));
        flush()?;
    }
    let sub_id = stream.sub_id().to_owned();
    let r = client.unsubscribe(&sub_id);
    stream.close();
    match r {
        Ok(()) => Ok(()),
        // The server ended it already (e.g. the connection went away): nothing to undo.
        Err(e) if e.kind() == ErrorKind::Disconnected => Ok(()),
        Err(e) => Err(Failure::from_client("unsubscribe", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmark_names_and_options() {
        assert_eq!(bookmark_of("0"), "0");
        assert_eq!(bookmark_of("EPOCH"), "0");
        assert_eq!(bookmark_of("now"), bookmark::NOW);
        assert_eq!(bookmark_of("recent"), bookmark::MOST_RECENT);
        assert_eq!(bookmark_of("12|3|"), "12|3|");
    }
}

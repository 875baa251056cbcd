//! State shared between the user handles and the driver task: the publish staging buffer, the
//! control inbox (acks, discards, dropped streams), the wake-up signal, and mirrored counters.
//!
//! None of this is the session: the session lives in the driver task alone. Publishes take a
//! short lock to append bytes to the staging buffer (no allocation per message once it has
//! grown), and the driver swaps the whole buffer out in O(1), so publishers and the driver
//! never wait on each other for longer than a `memcpy`.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use amps_core::session::{AckHow, CommandId, ConnectionState};
use futures::task::AtomicWaker;
use tokio::sync::{Notify, broadcast, watch};

use crate::events::ClientEvent;

/// Events buffered per receiver before the oldest are dropped for it.
const EVENT_CAPACITY: usize = 1024;

/// What the driver should do besides its channels.
#[derive(Debug)]
pub(crate) enum Control {
    /// Acknowledge a queue message (protocol.md §11).
    Ack {
        route: CommandId,
        topic: String,
        bookmark: String,
        how: AckHow,
    },
    /// The application processed a bookmark-subscription message (seeds: `discard()`).
    Discard { route: CommandId, bookmark: String },
    /// A stream was dropped or closed: unsubscribe (seeds: unsubscribe when the stream goes),
    /// unless the subscription moved to another stream since (a `replace`).
    StreamClosed(CommandId, std::sync::Weak<crate::stream::StreamShared>),
}

/// Kinds of staged publish records.
pub(crate) const REC_PUBLISH: u8 = 0;
pub(crate) const REC_DELTA: u8 = 1;

/// Optional fields of a staged publish.
#[derive(Clone, Copy, Debug, Default)]
pub struct PublishOptions<'a> {
    /// `e`: SOW lifetime in seconds.
    pub expiration: Option<u64>,
    /// `x`: correlation id passed to subscribers.
    pub correlation_id: Option<&'a str>,
    /// `k`: explicit SOW key (topics keyed by the publisher).
    pub sow_key: Option<&'a str>,
}

/// Publishes waiting for the driver, as length-prefixed records.
pub(crate) struct Staging {
    pub(crate) buf: Vec<u8>,
    pub(crate) records: usize,
}

/// Encoded size of a record (kind, flags, four lengths, expiration, strings, data).
pub(crate) fn record_len(topic: &str, data: &[u8], o: &PublishOptions<'_>) -> usize {
    2 + 4 * 4
        + 8
        + topic.len()
        + data.len()
        + o.correlation_id.map_or(0, str::len)
        + o.sow_key.map_or(0, str::len)
}

fn put_u32(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Append one record: `[kind][flags][topic_len][data_len][x_len][k_len][e: u64][topic][data][x][k]`.
pub(crate) fn put_record(
    buf: &mut Vec<u8>,
    kind: u8,
    topic: &str,
    data: &[u8],
    o: &PublishOptions<'_>,
) {
    let flags = u8::from(o.expiration.is_some())
        | u8::from(o.correlation_id.is_some()) << 1
        | u8::from(o.sow_key.is_some()) << 2;
    buf.push(kind);
    buf.push(flags);
    put_u32(buf, topic.len());
    put_u32(buf, data.len());
    put_u32(buf, o.correlation_id.map_or(0, str::len));
    put_u32(buf, o.sow_key.map_or(0, str::len));
    buf.extend_from_slice(&o.expiration.unwrap_or(0).to_le_bytes());
    buf.extend_from_slice(topic.as_bytes());
    buf.extend_from_slice(data);
    buf.extend_from_slice(o.correlation_id.unwrap_or("").as_bytes());
    buf.extend_from_slice(o.sow_key.unwrap_or("").as_bytes());
}

/// One staged record, borrowed from a taken batch.
pub(crate) struct Record<'a> {
    pub(crate) kind: u8,
    pub(crate) topic: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) options: PublishOptions<'a>,
}

/// Read the record at `buf[at..]`; returns it and its length. Records are written by
/// [`put_record`] from `&str`s, so the text fields are valid UTF-8; a malformed record (which
/// would be a bug) reads as `None` and ends the batch.
pub(crate) fn read_record(buf: &[u8], at: usize) -> Option<(Record<'_>, usize)> {
    let b = buf.get(at..)?;
    let kind = *b.first()?;
    let flags = *b.get(1)?;
    let len = |i: usize| -> Option<usize> {
        let s = b.get(2 + 4 * i..6 + 4 * i)?;
        Some(u32::from_le_bytes(s.try_into().ok()?) as usize)
    };
    let (tl, dl, xl, kl) = (len(0)?, len(1)?, len(2)?, len(3)?);
    let e = u64::from_le_bytes(b.get(18..26)?.try_into().ok()?);
    let mut p = 26;
    let mut take = |n: usize| {
        let s = b.get(p..p + n);
        p += n;
        s
    };
    let topic = std::str::from_utf8(take(tl)?).ok()?;
    let data = take(dl)?;
    let x = std::str::from_utf8(take(xl)?).ok()?;
    let k = std::str::from_utf8(take(kl)?).ok()?;
    let options = PublishOptions {
        expiration: (flags & 1 != 0).then_some(e),
        correlation_id: (flags & 2 != 0).then_some(x),
        sow_key: (flags & 4 != 0).then_some(k),
    };
    Some((
        Record {
            kind,
            topic,
            data,
            options,
        },
        p,
    ))
}

/// Everything the handles and the driver share.
pub(crate) struct Shared {
    waker: AtomicWaker,
    kicked: AtomicBool,
    staging: Mutex<Staging>,
    /// Bytes the staging buffer may hold before publishers wait (backpressure).
    pub(crate) staging_cap: usize,
    /// Signalled when the driver took the staged publishes (room for more).
    pub(crate) space: Notify,
    control: Mutex<Vec<Control>>,
    shutdown: AtomicBool,
    /// Publish store entries not yet persisted, mirrored by the driver.
    pub(crate) unpersisted: AtomicUsize,
    /// Publishes accepted by `publish` and not yet handed to the publish store.
    pub(crate) queued: AtomicUsize,
    /// The last connection state, mirrored for synchronous checks.
    state: AtomicU8,
    /// A publish store is configured (publishes survive disconnects).
    pub(crate) has_store: AtomicBool,
    /// Events for the application (bounded: slow receivers lose the oldest, and are told).
    pub(crate) events: broadcast::Sender<ClientEvent>,
    /// The current connection state.
    pub(crate) state_tx: watch::Sender<ConnectionState>,
}

impl Shared {
    pub(crate) fn new(staging_cap: usize) -> Shared {
        Shared {
            waker: AtomicWaker::new(),
            kicked: AtomicBool::new(false),
            staging: Mutex::new(Staging {
                buf: Vec::new(),
                records: 0,
            }),
            staging_cap: staging_cap.max(1024),
            space: Notify::new(),
            control: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            unpersisted: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            state: AtomicU8::new(state_code(ConnectionState::Disconnected)),
            has_store: AtomicBool::new(false),
            events: broadcast::channel(EVENT_CAPACITY).0,
            state_tx: watch::channel(ConnectionState::Disconnected).0,
        }
    }

    /// Wake the driver.
    pub(crate) fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Register the driver's waker and report (and clear) a pending kick.
    pub(crate) fn poll_kick(&self, cx: &std::task::Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.kicked.swap(false, Ordering::AcqRel)
    }

    /// Lock the staging buffer. A poisoned lock only means a publisher panicked between two
    /// `extend_from_slice` calls; the driver validates records, so the data is still usable.
    pub(crate) fn staging(&self) -> MutexGuard<'_, Staging> {
        self.staging.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take every staged record (the driver), handing the caller's empty buffer back in.
    pub(crate) fn take_staged(&self, spare: &mut Vec<u8>) -> usize {
        spare.clear();
        let n = {
            let mut s = self.staging();
            std::mem::swap(&mut s.buf, spare);
            std::mem::take(&mut s.records)
        };
        if n > 0 {
            self.space.notify_waiters();
        }
        n
    }

    pub(crate) fn push_control(&self, c: Control) {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
        self.kick();
    }

    pub(crate) fn take_control(&self, into: &mut Vec<Control>) {
        let mut c = self.control.lock().unwrap_or_else(|p| p.into_inner());
        into.append(&mut c);
    }

    pub(crate) fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.kick();
        // Publishers waiting for room must see the shutdown.
        self.space.notify_waiters();
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Record and publish a connection state.
    pub(crate) fn set_state(&self, s: ConnectionState) {
        self.state.store(state_code(s), Ordering::Release);
        self.state_tx.send_replace(s);
        let _ = self.events.send(ClientEvent::State(s));
    }

    /// Report an event (nobody listening is fine).
    pub(crate) fn report(&self, e: ClientEvent) {
        let _ = self.events.send(e);
    }

    /// True from LoggedOn until Disconnected.
    pub(crate) fn is_logged_on(&self) -> bool {
        matches!(
            self.state.load(Ordering::Acquire),
            1..=4 // LoggedOn, HeartbeatInitiated, PublishReplayed, Resubscribed
        )
    }
}

fn state_code(s: ConnectionState) -> u8 {
    match s {
        ConnectionState::Connected => 0,
        ConnectionState::LoggedOn => 1,
        ConnectionState::HeartbeatInitiated => 2,
        ConnectionState::PublishReplayed => 3,
        ConnectionState::Resubscribed => 4,
        ConnectionState::Disconnected => 5,
        _ => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        let o = PublishOptions {
            expiration: Some(7),
            correlation_id: Some("corr"),
            sow_key: None,
        };
        put_record(&mut buf, REC_DELTA, "orders", b"{\"id\":1}", &o);
        put_record(&mut buf, REC_PUBLISH, "t", b"", &PublishOptions::default());
        assert_eq!(
            buf.len(),
            record_len("orders", b"{\"id\":1}", &o) + record_len("t", b"", &Default::default())
        );
        let (r, n) = read_record(&buf, 0).unwrap();
        assert_eq!(
            (r.kind, r.topic, r.data),
            (REC_DELTA, "orders", &b"{\"id\":1}"[..])
        );
        assert_eq!(r.options.expiration, Some(7));
        assert_eq!(r.options.correlation_id, Some("corr"));
        assert_eq!(r.options.sow_key, None);
        let (r, m) = read_record(&buf, n).unwrap();
        assert_eq!((r.kind, r.topic, r.data.len()), (REC_PUBLISH, "t", 0));
        assert!(read_record(&buf, n + m).is_none());
        assert!(
            read_record(&buf[..n - 1], 0).is_none(),
            "truncated records are refused"
        );
    }
}

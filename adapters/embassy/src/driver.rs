//! The I/O task: [`Driver::run`] opens connections when the session asks, moves bytes between
//! the transport and the session, fires the session's timers and hands every event to the
//! application, in the order the core requires (input, then `poll_event`, then
//! `poll_transmit`; see amps-core's `session` module).

use amps_core::session::{ConnectRequest, Event, Logon, State, Storage};
use amps_core::{Duration, Instant};
use embassy_futures::select::{Either, Either3, select, select3};
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::mutex::MutexGuard;
use embedded_io_async::{Read, Write};

use crate::client::{Client, Inner, Link, Stats};
use crate::clock::Clock;
use crate::connect::Connect;
use crate::disconnect::{Disconnect, check_read, check_write};
use crate::log;

/// How the driver logs on and bounds connection attempts.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// Credentials and message type sent in the logon (the password is left out of `Debug`).
    pub logon: Logon<'a>,
    /// Longest time one call of the connect function may take; it is dropped (cancelled) and
    /// counted as a failed attempt after that. Default 10 s.
    pub connect_timeout: Duration,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options::new()
    }
}

impl Options<'_> {
    /// An anonymous JSON logon, 10 s per connection attempt.
    pub const fn new() -> Self {
        Options {
            logon: Logon {
                user_id: None,
                password: None,
                message_type: Some("json"),
                options: None,
            },
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Drives one [`Client`] over connections from a [`Connect`]or. Run it in a task of its own;
/// the application's tasks use the client.
///
/// `CHUNK` is the size of the driver's I/O buffer: bytes read from the transport wait there
/// until the session takes them, bytes taken from the session wait there until the transport
/// accepts them. Reads and writes take turns (the session takes all the input before the next
/// output is fetched), so one buffer serves both. Any size from 1 works: a larger one means
/// fewer `read` and `write` calls, a smaller one less RAM in the driver's task (the buffer is
/// part of it). The default, 256, is the speed choice: 128 saves 128 bytes of task RAM but
/// makes 1.7 to 2 times the `read` and `write` calls for 64- to 400-byte messages (see
/// BENCHMARKS.md, "Embassy firmware image").
pub struct Driver<'a, M: RawMutex, S: Storage, K: Clock, C: Connect, const CHUNK: usize = 256> {
    client: &'a Client<M, S, K>,
    connector: C,
    opts: Options<'a>,
    buf: [u8; CHUNK],
}

impl<'a, M, S, K, C, const CHUNK: usize> Driver<'a, M, S, K, C, CHUNK>
where
    M: RawMutex,
    S: Storage,
    K: Clock,
    C: Connect,
{
    /// A driver for `client` that opens connections with `connector`.
    pub fn new(client: &'a Client<M, S, K>, connector: C, opts: Options<'a>) -> Self {
        Driver {
            client,
            connector,
            opts,
            buf: [0; CHUNK],
        }
    }

    /// Run until the session is closed for good ([`Client::close`], or a reconnect policy that
    /// gave up), then return the transport counters.
    ///
    /// `on_event` sees every [`Event`] of the session ([`Event::CloseTransport`] is acted on
    /// right after it returns). It runs while the driver holds the client's lock, so it must
    /// not wait for the client (the client's methods are `async` for that reason); copy what
    /// must outlive the call (events borrow the session's receive buffer) and hand it to other
    /// tasks, for example through an `embassy_sync` channel.
    ///
    /// Dropping the future stops the driver mid-way; the next `run` starts over with a new
    /// connection when the session asks for one.
    pub async fn run<F: FnMut(Event<'_>)>(&mut self, mut on_event: F) -> Stats {
        // The future holds only the awaits: everything done under the lock is in the plain
        // functions `idle_step` and `connection_step`, which keeps the task's code and its
        // state small.
        let Driver {
            client,
            connector,
            opts,
            buf,
        } = self;
        let client: &Client<M, S, K> = client;
        let mut after = After::Nothing;
        loop {
            let guard = client.inner.lock().await;
            let told = core::mem::replace(&mut after, After::Nothing);
            let req = match idle_step(client, guard, told, &mut on_event) {
                Next::Stop(stats) => return stats,
                Next::Wait(deadline) => {
                    select(client.wake.wait(), sleep_until(&client.clock, deadline)).await;
                    continue;
                }
                Next::Connect(req) => req,
            };
            let at = client.clock.now().saturating_add(opts.connect_timeout);
            let Either::First(Ok(mut conn)) =
                select(connector.connect(req), client.clock.sleep_until(at)).await
            else {
                after = After::Failed(req.attempt);
                continue;
            };
            // Serve the connection until it ends (written out here rather than as an async
            // fn of its own, whose future would hold copies of its arguments).
            let mut p = Pending::default();
            let end = loop {
                let guard = client.inner.lock().await;
                let deadline =
                    match connection_step(client, guard, &opts.logon, buf, &mut p, &mut on_event) {
                        Ok(deadline) => deadline,
                        Err(end) => break end,
                    };
                let writing = p.out_pos < p.out_len;
                if !writing && p.unflushed {
                    p.unflushed = false;
                    if conn.flush().await.is_err() {
                        break End::lost(Disconnect::WriteFailed);
                    }
                }
                // One transport operation at a time: write what is pending, else wait for
                // input; either races the session's next timer and the commands of other
                // tasks.
                let io = async {
                    if writing {
                        conn.write(buf.get(p.out_pos..p.out_len).unwrap_or(&[]))
                            .await
                    } else {
                        conn.read(buf).await
                    }
                };
                let timer = sleep_until(&client.clock, deadline);
                // What the transport returned is checked, not trusted: a count it could not
                // have moved ends the connection rather than stall or spin the driver.
                let r = match select3(io, timer, client.wake.wait()).await {
                    Either3::First(Ok(n)) if writing => {
                        check_write(n, p.out_len - p.out_pos).map(|n| {
                            p.out_pos += n;
                            p.written += n;
                            p.unflushed = true;
                        })
                    }
                    Either3::First(Ok(n)) => check_read(n, CHUNK).map(|n| p.in_len = n),
                    Either3::First(Err(_)) if writing => Err(Disconnect::WriteFailed),
                    Either3::First(Err(_)) => Err(Disconnect::ReadFailed),
                    Either3::Second(()) | Either3::Third(()) => Ok(()),
                };
                if let Err(why) = r {
                    break End::lost(why);
                }
            };
            C::close(&mut conn, end.graceful).await;
            drop(conn);
            after = After::Closed(end);
        }
    }
}

/// What happened since the driver last held the lock without a connection.
#[derive(Clone, Copy)]
enum After {
    /// Nothing to tell the session (a timer or a command woke the driver).
    Nothing,
    /// Connect attempt number `.0` failed or timed out.
    Failed(u32),
    /// A connection was opened and is closed now.
    Closed(End),
}

/// How a connection ended, from the driver's side.
#[derive(Clone, Copy)]
struct End {
    /// Why. Unless the session asked (`CloseTransport`, or it moved on: `Session`), the
    /// session is told after the transport is closed.
    why: Disconnect,
    /// End with FIN (the application asked for the close), not a reset.
    graceful: bool,
    /// The session took the connection (its end counts as a disconnect).
    accepted: bool,
}

impl End {
    /// The session ended an accepted connection.
    fn session(graceful: bool) -> Self {
        End {
            why: Disconnect::Session,
            graceful,
            accepted: true,
        }
    }

    /// The transport of an accepted connection closed, failed or misbehaved.
    fn lost(why: Disconnect) -> Self {
        End {
            why,
            graceful: false,
            accepted: true,
        }
    }
}

/// What the driver does next without a connection.
enum Next {
    /// The session is shut down: return the counters.
    Stop(Stats),
    /// Open a connection.
    Connect(ConnectRequest),
    /// Wait for a command or the session's next timer (none: only a command).
    Wait(Option<Instant>),
}

/// Without a connection, under the lock: tell the session how the last attempt or connection
/// ended, fire timers, hand out events, and see whether the session wants a connection.
fn idle_step<M, S, K, F>(
    client: &Client<M, S, K>,
    mut guard: MutexGuard<'_, M, Inner<S>>,
    after: After,
    on_event: &mut F,
) -> Next
where
    M: RawMutex,
    S: Storage,
    K: Clock,
    F: FnMut(Event<'_>),
{
    let g = &mut *guard;
    let now = client.clock.now();
    let mut progress = false;
    match after {
        After::Nothing => {}
        After::Failed(attempt) => {
            log::warning!("amps-embassy: connect attempt {} failed", attempt);
            g.stats.connect_failures += 1;
            g.session.handle_connect_failed(now);
            g.link = Link::Idle;
        }
        After::Closed(end) => {
            if let Some(cause) = end.why.transport_closed() {
                g.session.handle_closed(now, cause);
                // Frames received before the close are still delivered.
                drain(g, on_event);
            }
            g.link = Link::Idle;
            if end.accepted {
                g.stats.disconnects += 1;
                g.stats.last_disconnect = Some(end.why);
                log::warning!("amps-embassy: connection ended: {}", end.why);
            }
            progress = true;
        }
    }
    fire_timers(g, now);
    progress |= drain(g, on_event).any;
    let next = if g.session.state() == State::Shutdown {
        Next::Stop(g.stats)
    } else if let Some(req) = g.session.poll_connect(now) {
        g.link = Link::Connecting;
        g.stats.connects += 1;
        Next::Connect(req)
    } else {
        Next::Wait(g.session.poll_timeout())
    };
    drop(guard);
    if progress {
        client.progress.signal(());
    }
    next
}

/// What one round of event handling saw.
#[derive(Clone, Copy, Default)]
struct Drained {
    any: bool,
    close: bool,
}

/// Hand every queued event to `on_event`.
fn drain<S: Storage, F: FnMut(Event<'_>)>(g: &mut Inner<S>, on_event: &mut F) -> Drained {
    let mut d = Drained::default();
    while let Some(ev) = g.session.poll_event() {
        d.any = true;
        d.close |= matches!(ev, Event::CloseTransport);
        on_event(ev);
    }
    d
}

/// Fire the session's timers if one is due.
fn fire_timers<S: Storage>(g: &mut Inner<S>, now: Instant) {
    if g.session.poll_timeout().is_some_and(|d| d <= now) {
        g.session.handle_timeout(now);
    }
}

/// Sleep until `at`, or forever without a deadline.
async fn sleep_until<K: Clock>(clock: &K, at: Option<Instant>) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => core::future::pending().await,
    }
}

/// The state of one open connection between rounds: what the I/O buffer holds.
#[derive(Default)]
struct Pending {
    /// The session took the connection (the first round hands it over).
    accepted: bool,
    /// Bytes read into the buffer, all offered to the session in the next round.
    in_len: usize,
    /// Bytes of the buffer taken from the session: `out_pos..out_len` are not written yet.
    out_pos: usize,
    out_len: usize,
    /// Written since the counters were last updated.
    written: usize,
    /// Something was written since the last flush.
    unflushed: bool,
}

/// One round of an open connection, under the lock: hand a new connection to the session,
/// fire timers, feed the input, hand out events, and take the next output. Returns the
/// session's next deadline, or how the connection ends.
fn connection_step<M, S, K, F>(
    client: &Client<M, S, K>,
    mut guard: MutexGuard<'_, M, Inner<S>>,
    logon: &Logon<'_>,
    buf: &mut [u8],
    p: &mut Pending,
    on_event: &mut F,
) -> Result<Option<Instant>, End>
where
    M: RawMutex,
    S: Storage,
    K: Clock,
    F: FnMut(Event<'_>),
{
    let g = &mut *guard;
    let now = client.clock.now();
    if !p.accepted {
        // The application may have closed the session while the attempt ran.
        let ok = g.session.state() == State::Connecting
            && g.session.handle_connected(now, logon).is_ok();
        if !ok {
            g.link = Link::Idle;
            return Err(End {
                why: Disconnect::Session,
                graceful: true,
                accepted: false,
            });
        }
        g.link = Link::Open;
        p.accepted = true;
        log::info!("amps-embassy: connected");
    }
    g.stats.bytes_out += core::mem::take(&mut p.written) as u64;
    fire_timers(g, now);
    let input = buf.get(..core::mem::take(&mut p.in_len)).unwrap_or(&[]);
    let fed = feed(g, now, input, on_event);
    let d = drain(g, on_event);
    if fed.close || d.close {
        return Err(End::session(g.graceful));
    }
    if fed.stuck {
        // A frame the receive buffer cannot hold that the session did not refuse: end the
        // connection rather than spin.
        return Err(End::lost(Disconnect::Stuck));
    }
    if matches!(
        g.session.state(),
        State::Disconnected | State::Shutdown | State::Connecting
    ) {
        // The session moved on without asking to close (closed during the logon).
        return Err(End::session(g.graceful));
    }
    // The input is all taken (or the connection ended above), so the buffer is free for
    // output once the last output is written.
    if p.out_pos == p.out_len {
        p.out_pos = 0;
        p.out_len = g.session.poll_transmit(now, buf).unwrap_or(0);
    }
    let progress = fed.any || d.any || p.out_len > 0;
    let deadline = g.session.poll_timeout();
    drop(guard);
    if progress {
        client.progress.signal(());
    }
    Ok(deadline)
}

/// What feeding input did.
#[derive(Clone, Copy, Default)]
struct Fed {
    any: bool,
    close: bool,
    stuck: bool,
}

/// Offer `input` to the session, draining events whenever it pushes back, until it took all
/// of it, refused it, asked to close, or took nothing twice in a row (`stuck`).
fn feed<S: Storage, F: FnMut(Event<'_>)>(
    g: &mut Inner<S>,
    now: Instant,
    input: &[u8],
    on_event: &mut F,
) -> Fed {
    let mut fed = Fed::default();
    let mut pos = 0;
    let mut idle_rounds = 0;
    while pos < input.len() {
        let rest = input.get(pos..).unwrap_or(&[]);
        let taken = match g.session.handle_bytes(now, rest) {
            Ok(n) => n,
            // Not accepting input: the session ended this connection; what is left is moot.
            Err(_) => break,
        };
        pos += taken;
        g.stats.bytes_in += taken as u64;
        fed.any |= taken > 0;
        // Frames are decoded while events are drained, which frees the receive buffer.
        let d = drain(g, on_event);
        fed.any |= d.any;
        if d.close {
            fed.close = true;
            break;
        }
        idle_rounds = if taken == 0 { idle_rounds + 1 } else { 0 };
        if idle_rounds >= 2 {
            fed.stuck = true;
            break;
        }
    }
    fed
}

//! The I/O task: [`Driver::run`] opens connections when the session asks, moves bytes between
//! the transport and the session, fires the session's timers and hands every event to the
//! application, in the order the core requires (input, then `poll_event`, then
//! `poll_transmit`; see amps-core's `session` module).

use amps_core::session::{ConnectRequest, Event, Logon, State, Storage, TransportClosed};
use amps_core::{Duration, Instant};
use embassy_futures::select::{Either, Either3, select, select3};
use embassy_sync::blocking_mutex::raw::RawMutex;
use embedded_io_async::{Read, Write};

use crate::client::{Client, Inner, Link, Stats};
use crate::clock::Clock;
use crate::connect::Connect;
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
/// `CHUNK` is the size of the driver's two I/O buffers (bytes read from the transport before
/// the session takes them, bytes taken from the session before the transport accepts them);
/// any size from 1 works, larger ones mean fewer `read`/`write` calls.
pub struct Driver<'a, M: RawMutex, S: Storage, K: Clock, C: Connect, const CHUNK: usize = 256> {
    client: &'a Client<M, S, K>,
    connector: C,
    opts: Options<'a>,
    input: [u8; CHUNK],
    output: [u8; CHUNK],
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

/// Why a connection ended, from the driver's side.
enum End {
    /// The session asked (`CloseTransport`): graceful if the application requested it.
    Session { graceful: bool },
    /// The transport closed or failed (the session is told after the transport is closed).
    Lost(TransportClosed),
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
            input: [0; CHUNK],
            output: [0; CHUNK],
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
        let Driver {
            client,
            connector,
            opts,
            input,
            output,
        } = self;
        let client: &Client<M, S, K> = client;
        loop {
            let Some(req) = Self::wait_for_request(client, &mut on_event).await else {
                return client.inner.lock().await.stats;
            };
            let started = client.clock.now();
            let timeout = client
                .clock
                .sleep_until(started.saturating_add(opts.connect_timeout));
            let attempt = match select(connector.connect(req), timeout).await {
                Either::First(Ok(conn)) => Some(conn),
                Either::First(Err(_)) | Either::Second(()) => None,
            };
            let accepted = {
                let mut g = client.inner.lock().await;
                let now = client.clock.now();
                let ok = if attempt.is_none() {
                    log::warning!("amps-embassy: connect attempt {} failed", req.attempt);
                    g.stats.connect_failures += 1;
                    g.session.handle_connect_failed(now);
                    false
                } else {
                    // The application may have closed the session while the attempt ran.
                    g.session.state() == State::Connecting
                        && g.session.handle_connected(now, &opts.logon).is_ok()
                };
                g.link = if ok { Link::Open } else { Link::Idle };
                ok
            };
            let Some(mut conn) = attempt else {
                continue;
            };
            let end = if accepted {
                log::info!("amps-embassy: connected");
                connected(client, &mut conn, input, output, &mut on_event).await
            } else {
                End::Session { graceful: true }
            };
            let graceful = matches!(end, End::Session { graceful: true });
            C::close(&mut conn, graceful).await;
            drop(conn);
            let mut g = client.inner.lock().await;
            if let End::Lost(cause) = end {
                let now = client.clock.now();
                g.session.handle_closed(now, cause);
                // Frames received before the close are still delivered.
                drain(&mut g, &mut on_event);
            }
            g.link = Link::Idle;
            if accepted {
                g.stats.disconnects += 1;
                log::warning!("amps-embassy: connection ended");
            }
            drop(g);
            client.progress.signal(());
        }
    }

    /// Without a connection: fire timers, hand out events, and wait until the session asks
    /// for a connection (`None` once it is shut down).
    async fn wait_for_request<F: FnMut(Event<'_>)>(
        client: &Client<M, S, K>,
        on_event: &mut F,
    ) -> Option<ConnectRequest> {
        loop {
            let deadline = {
                let mut g = client.inner.lock().await;
                let now = client.clock.now();
                fire_timers(&mut g, now);
                let d = drain(&mut g, on_event);
                if d.any {
                    client.progress.signal(());
                }
                if g.session.state() == State::Shutdown {
                    return None;
                }
                if let Some(req) = g.session.poll_connect(now) {
                    g.link = Link::Connecting;
                    g.stats.connects += 1;
                    return Some(req);
                }
                g.session.poll_timeout()
            };
            select(client.wake.wait(), sleep_until(&client.clock, deadline)).await;
        }
    }
}

/// Bytes read from the transport and not yet taken by the session, and bytes taken from the
/// session and not yet written.
struct Pending {
    in_pos: usize,
    in_len: usize,
    out_pos: usize,
    out_len: usize,
    /// Written since the counters were last updated.
    written: u64,
    /// Something was written since the last flush.
    unflushed: bool,
}

/// Serve one open connection until it ends.
async fn connected<M, S, K, T, F>(
    client: &Client<M, S, K>,
    conn: &mut T,
    input: &mut [u8],
    output: &mut [u8],
    on_event: &mut F,
) -> End
where
    M: RawMutex,
    S: Storage,
    K: Clock,
    T: Read + Write,
    F: FnMut(Event<'_>),
{
    let mut p = Pending {
        in_pos: 0,
        in_len: 0,
        out_pos: 0,
        out_len: 0,
        written: 0,
        unflushed: false,
    };
    loop {
        let deadline = {
            let mut guard = client.inner.lock().await;
            let g = &mut *guard;
            let now = client.clock.now();
            g.stats.bytes_out += core::mem::take(&mut p.written);
            fire_timers(g, now);
            let fed = feed(g, now, input, &mut p, on_event);
            let d = drain(g, on_event);
            if fed.close || d.close {
                return End::Session {
                    graceful: g.graceful,
                };
            }
            if fed.stuck {
                // A frame the receive buffer cannot hold that the session did not refuse:
                // end the connection rather than spin.
                return End::Lost(TransportClosed::Error);
            }
            if matches!(
                g.session.state(),
                State::Disconnected | State::Shutdown | State::Connecting
            ) {
                // The session moved on without asking to close (closed during the logon).
                return End::Session {
                    graceful: g.graceful,
                };
            }
            if p.out_pos == p.out_len {
                p.out_pos = 0;
                p.out_len = g.session.poll_transmit(now, output).unwrap_or(0);
            }
            if fed.any || d.any || p.out_len > 0 {
                client.progress.signal(());
            }
            g.session.poll_timeout()
        };

        if p.out_pos == p.out_len && p.unflushed {
            p.unflushed = false;
            if conn.flush().await.is_err() {
                return End::Lost(TransportClosed::Error);
            }
        }
        let writing = p.out_pos < p.out_len;
        if !writing && p.in_pos < p.in_len {
            // The session took part of the input; the rest is offered in the next round.
            continue;
        }
        // One transport operation at a time: write what is pending, else wait for input;
        // either races the session's next timer and the commands of other tasks.
        let io = async {
            if writing {
                let chunk = output.get(p.out_pos..p.out_len).unwrap_or(&[]);
                (true, conn.write(chunk).await)
            } else {
                (false, conn.read(input).await)
            }
        };
        let timer = sleep_until(&client.clock, deadline);
        match select3(io, timer, client.wake.wait()).await {
            Either3::First((_, Err(_))) => return End::Lost(TransportClosed::Error),
            Either3::First((true, Ok(n))) => {
                p.out_pos += n;
                p.written += n as u64;
                p.unflushed = true;
            }
            Either3::First((false, Ok(0))) => return End::Lost(TransportClosed::PeerClosed),
            Either3::First((false, Ok(n))) => {
                p.in_pos = 0;
                p.in_len = n;
            }
            Either3::Second(()) | Either3::Third(()) => {}
        }
    }
}

/// What feeding input did.
#[derive(Clone, Copy, Default)]
struct Fed {
    any: bool,
    close: bool,
    stuck: bool,
}

/// Offer the unconsumed input to the session, draining events whenever it pushes back.
fn feed<S: Storage, F: FnMut(Event<'_>)>(
    g: &mut Inner<S>,
    now: Instant,
    input: &[u8],
    p: &mut Pending,
    on_event: &mut F,
) -> Fed {
    let mut fed = Fed::default();
    let mut idle_rounds = 0;
    while p.in_pos < p.in_len {
        let rest = input.get(p.in_pos..p.in_len).unwrap_or(&[]);
        let taken = match g.session.handle_bytes(now, rest) {
            Ok(n) => n,
            // Not accepting input: the session ended this connection; what is left is moot.
            Err(_) => {
                p.in_pos = p.in_len;
                break;
            }
        };
        p.in_pos += taken;
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

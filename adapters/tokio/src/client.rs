//! [`Client`]: the handle applications use. Cheap to clone; every clone talks to the one
//! driver task over channels. The driver starts with the first connect.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use amps_core::Duration;
use amps_core::codec::{AckType, Command};
use amps_core::error_kind::ErrorKind;
use amps_core::ha::Authenticator;
use amps_core::session::{Config, ConnectionState, HeartbeatConfig, Parts};
use tokio::sync::{mpsc, oneshot, watch};

use crate::command::OwnedCommand;
use crate::config::{ClientBuilder, ClientConfig};
use crate::driver::{Cmd, Ctl, Driver, DriverParts, Ha};
use crate::error::{Error, Result};
use crate::events::EventStream;
use crate::message::Message;
use crate::shared::{PublishOptions, REC_DELTA, REC_PUBLISH, Shared, put_record, record_len};
use crate::stream::{MessageStream, StreamOptions, StreamShared};

/// Commands queued for the driver before `execute` waits (bounded: backpressure).
const CMD_QUEUE: usize = 1024;
/// Header room reserved when checking that a publish fits the transmit buffer.
const HEADER_ROOM: usize = 1024;

/// An AMPS client (seeds: `Client`). Clone it freely: clones share one connection.
///
/// ```no_run
/// # async fn demo() -> amps_tokio::Result<()> {
/// use futures::StreamExt;
/// let client = amps_tokio::Client::new("my-app")?;
/// client.connect("tcp://127.0.0.1:9007/amps/json").await?;
/// client.logon().await?;
/// let mut stream = client.subscribe("orders", Some("/qty > 10")).await?;
/// client.publish("orders", br#"{"id":1,"qty":20}"#).await?;
/// while let Some(msg) = stream.next().await {
///     println!("{}", msg?.data_str().unwrap_or(""));
/// }
/// # Ok(()) }
/// ```
///
/// Every async method documents its cancel-safety: what happens when its future is dropped
/// before it completes.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    ctl: mpsc::UnboundedSender<Ctl>,
    cmd: mpsc::Sender<Cmd>,
    driver: Mutex<Option<Driver>>,
    /// The driver was spawned (checked before taking the lock above).
    started: std::sync::atomic::AtomicBool,
    name: String,
    ha: bool,
    stream_defaults: StreamOptions,
    auto_ack: Mutex<bool>,
    max_publish: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the driver sends what is queued and closes.
        self.shared.request_shutdown();
    }
}

impl Client {
    /// A client named `name` with default settings (seeds: `Client(name)`). The name must be
    /// 1 to 128 bytes, unique per server and stable across restarts of a publisher
    /// (protocol.md §8.3).
    pub fn new(name: impl Into<String>) -> Result<Client> {
        Client::builder(name).build()
    }

    /// A builder for settings other than the defaults.
    pub fn builder(name: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(name)
    }

    pub(crate) fn from_builder(b: ClientBuilder) -> Result<Client> {
        let ClientBuilder {
            config,
            authenticator,
        } = b;
        let ClientConfig {
            name,
            limits,
            heartbeat,
            tls,
            stream,
            auto_ack,
            ack_batch_size,
            ack_timeout,
            command_timeout,
            logon_timeout,
            connect_timeout,
            staging_bytes,
            publish_store,
            bookmark_store,
            ha,
            filter,
        } = config;
        let mut cfg = Config::new(&name);
        cfg.limits = limits;
        cfg.heartbeat = heartbeat;
        cfg.ack_batch_size = ack_batch_size;
        cfg.ack_timeout = ack_timeout;
        cfg.command_timeout = command_timeout;
        cfg.logon_timeout = logon_timeout;
        cfg.seed = seed();
        if let Some(h) = &ha {
            cfg.reconnect = h.reconnect;
            cfg.resubscribe = true;
        }
        let has_store = publish_store.is_enabled();
        let session = crate::driver::HostSession::new(
            &cfg,
            Parts::heap(&limits, publish_store, bookmark_store),
        )?;
        let max_publish = session.limits().tx_bytes.saturating_sub(HEADER_ROOM);
        let shared = Arc::new(Shared::new(staging_bytes));
        shared.has_store.store(has_store, Ordering::Release);
        // A file store may hold messages from an earlier run: count them before connecting.
        shared
            .unpersisted
            .store(session.unpersisted_count(), Ordering::Release);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (cmd, cmd_rx) = mpsc::channel(CMD_QUEUE);
        let is_ha = ha.is_some();
        let driver = Driver::new(DriverParts {
            session,
            shared: shared.clone(),
            ctl_rx,
            cmd_rx,
            ha: ha.map(|h| Ha {
                chooser: h.chooser,
                retry_on_disconnect: h.retry_on_disconnect,
                waiters: Vec::new(),
            }),
            tls,
            connect_timeout,
            authenticator,
            filter,
        });
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                ctl,
                cmd,
                driver: Mutex::new(Some(driver)),
                started: std::sync::atomic::AtomicBool::new(false),
                name,
                ha: is_ha,
                stream_defaults: stream,
                auto_ack: Mutex::new(auto_ack),
                max_publish,
            }),
        })
    }

    /// The client name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Start the driver task on the current runtime (once).
    fn start(&self) {
        if self.inner.started.load(Ordering::Acquire) {
            return;
        }
        self.inner.started.store(true, Ordering::Release);
        let d = self
            .inner
            .driver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(d) = d {
            tokio::spawn(d.run());
        }
    }

    pub(crate) async fn ctl<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Ctl,
    ) -> Result<T> {
        self.start();
        let (tx, rx) = oneshot::channel();
        self.inner
            .ctl
            .send(make(tx))
            .map_err(|_| Error::shutdown())?;
        rx.await.unwrap_or_else(|_| Err(Error::shutdown()))
    }

    /// Open the transport to `uri` (`tcp://`, `tcps://` or `unix://`, with transport options;
    /// seeds: `connect`). Errors: `InvalidUri`, `TransportType`, `InvalidTransportOptions`,
    /// `ConnectionRefused`, `AlreadyConnected`.
    ///
    /// Cancel-safety: dropping the future abandons the attempt; a connection opened for it is
    /// closed again, and the client stays disconnected.
    pub async fn connect(&self, uri: &str) -> Result<()> {
        // Validate here, so a bad URI never reaches the driver.
        amps_core::uri::Uri::parse(uri)?;
        let uri = uri.to_owned();
        self.ctl(|reply| Ctl::Connect { uri, reply }).await
    }

    /// Log on with the URI's credentials (seeds: `logon()`; default authenticator).
    ///
    /// Cancel-safety: dropping the future does not cancel the logon already sent; its outcome
    /// shows in [`Client::state`].
    pub async fn logon(&self) -> Result<()> {
        self.ctl(|reply| Ctl::Logon { auth: None, reply }).await
    }

    /// Log on, asking `authenticator` for the password (seeds: `logon(authenticator)`).
    ///
    /// Cancel-safety: as [`Client::logon`].
    pub async fn logon_with(
        &self,
        authenticator: impl Authenticator + Send + 'static,
    ) -> Result<()> {
        let auth: Box<dyn Authenticator + Send> = Box::new(authenticator);
        self.ctl(|reply| Ctl::Logon {
            auth: Some(auth),
            reply,
        })
        .await
    }

    /// Close the connection (seeds: `disconnect()`); publishes already queued are sent first.
    /// A plain client can `connect` again; an HA client stops reconnecting until
    /// `connect_and_logon`.
    ///
    /// Cancel-safety: the disconnect happens even if the future is dropped once polled.
    pub async fn disconnect(&self) -> Result<()> {
        self.ctl(|reply| Ctl::Disconnect { reply }).await
    }

    /// Close for good (seeds: `close()`): queued publishes are sent, the connection closes,
    /// every stream ends, and every later call fails with `Disconnected`.
    ///
    /// Cancel-safety: the close happens even if the future is dropped once polled.
    pub async fn close(&self) -> Result<()> {
        let r = self.ctl(|reply| Ctl::Close { reply }).await;
        self.inner.shared.request_shutdown();
        match r {
            Err(e) if e.kind() == ErrorKind::Disconnected => Ok(()),
            r => r,
        }
    }

    /// Publish `data` to `topic` (seeds: `publish`). Returns once the message is queued for
    /// sending, in order with every other publish and command of this client. When the
    /// client's publish queue is full (the publish store's window of unpersisted messages is
    /// full, or the socket cannot keep up) it waits: backpressure, never unbounded memory.
    ///
    /// Errors at once: `Disconnected` (a plain client that is not logged on), `Usage` (larger
    /// than the transmit buffer).
    ///
    /// Cancel-safety: the message is queued exactly once when the future completes, and not
    /// at all if it is dropped before.
    pub async fn publish(&self, topic: &str, data: &[u8]) -> Result<()> {
        self.stage(REC_PUBLISH, topic, data, &PublishOptions::default())
            .await
    }

    /// [`Client::publish`] with an expiration, correlation id or explicit SOW key.
    ///
    /// Cancel-safety: as [`Client::publish`].
    pub async fn publish_with(
        &self,
        topic: &str,
        data: &[u8],
        options: PublishOptions<'_>,
    ) -> Result<()> {
        self.stage(REC_PUBLISH, topic, data, &options).await
    }

    /// Publish a partial record merged into the SOW record it names (seeds: `delta_publish`;
    /// protocol.md §6.3).
    ///
    /// Cancel-safety: as [`Client::publish`].
    pub async fn delta_publish(&self, topic: &str, data: &[u8]) -> Result<()> {
        self.stage(REC_DELTA, topic, data, &PublishOptions::default())
            .await
    }

    /// [`Client::publish`] without waiting: `Busy` when the publish queue is full.
    pub fn try_publish(&self, topic: &str, data: &[u8]) -> Result<()> {
        match self.try_stage(REC_PUBLISH, topic, data, &PublishOptions::default())? {
            true => Ok(()),
            false => Err(Error::new(ErrorKind::Busy, "publish queue full")),
        }
    }

    /// Append a record to the staging buffer; `Ok(false)` when it is full.
    fn try_stage(
        &self,
        kind: u8,
        topic: &str,
        data: &[u8],
        o: &PublishOptions<'_>,
    ) -> Result<bool> {
        let shared = &self.inner.shared;
        if shared.is_shutdown() {
            return Err(Error::shutdown());
        }
        if !self.inner.ha && !shared.is_logged_on() && !shared.has_store.load(Ordering::Acquire) {
            return Err(Error::disconnected());
        }
        let len = record_len(topic, data, o);
        if len > self.inner.max_publish || len > shared.staging_cap {
            return Err(Error::usage("message larger than the transmit buffer"));
        }
        let first = {
            let mut s = shared.staging();
            if s.records > 0 && s.buf.len() + len > shared.staging_cap {
                return Ok(false);
            }
            put_record(&mut s.buf, kind, topic, data, o);
            s.records += 1;
            s.records == 1
        };
        if shared.has_store.load(Ordering::Relaxed) {
            // Counted only where `unpersisted_count` reports it (a shared counter per publish
            // costs a contended cache line otherwise).
            shared.queued.fetch_add(1, Ordering::AcqRel);
        }
        if first {
            // The driver takes whole batches: only the first record of one needs a wake-up.
            shared.kick();
        }
        Ok(true)
    }

    async fn stage(
        &self,
        kind: u8,
        topic: &str,
        data: &[u8],
        o: &PublishOptions<'_>,
    ) -> Result<()> {
        self.start();
        // Fast path: room in the queue, no waiter registration.
        if self.try_stage(kind, topic, data, o)? {
            return Ok(());
        }
        loop {
            let notified = self.inner.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.try_stage(kind, topic, data, o)? {
                return Ok(());
            }
            notified.await;
        }
    }

    /// Messages published and not yet acknowledged as persisted (seeds:
    /// `unpersisted_count()`): the publish store's count plus publishes still queued in the
    /// client. 0 without a publish store.
    pub fn unpersisted_count(&self) -> usize {
        let s = &self.inner.shared;
        if !s.has_store.load(Ordering::Acquire) {
            return 0;
        }
        s.unpersisted.load(Ordering::Acquire) + s.queued.load(Ordering::Acquire)
    }

    async fn cmd_wait(&self, publish_flush: Option<Duration>) -> Result<()> {
        self.start();
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmd
            .send(Cmd::Flush {
                publish_flush,
                reply: tx,
            })
            .await
            .map_err(|_| Error::shutdown())?;
        rx.await.unwrap_or_else(|_| Err(Error::shutdown()))
    }

    /// Wait until the server processed every command sent before (seeds: `flush()`;
    /// protocol.md §6.10).
    ///
    /// Cancel-safety: dropping the future only stops the waiting; nothing is lost.
    pub async fn flush(&self) -> Result<()> {
        self.cmd_wait(None).await
    }

    /// Flush and wait until the publish store is empty (seeds: `publish_flush(timeout)`):
    /// `TimedOut` after `timeout`.
    ///
    /// Cancel-safety: as [`Client::flush`].
    pub async fn publish_flush(&self, timeout: Duration) -> Result<()> {
        self.cmd_wait(Some(timeout)).await
    }

    /// Send any command and get its messages (seeds: `execute(command)`): deliveries and
    /// records for subscriptions and queries, and the acks the command asked for. Returns
    /// once the server acknowledged a subscription or query (`processed`), at once for other
    /// commands. The stream uses the client's default [`StreamOptions`].
    ///
    /// Cancel-safety: dropping the future before it completes leaves no subscription behind
    /// (an entered one is unsubscribed); the command itself may have reached the server.
    pub async fn execute(&self, cmd: Command<'_>) -> Result<MessageStream> {
        self.execute_with(cmd, self.inner.stream_defaults).await
    }

    /// [`Client::execute`] with explicit stream options.
    ///
    /// Cancel-safety: as [`Client::execute`].
    pub async fn execute_with(
        &self,
        cmd: Command<'_>,
        opts: StreamOptions,
    ) -> Result<MessageStream> {
        self.start();
        let stream = StreamShared::new(&opts);
        let resubscribe = opts.resubscribe.unwrap_or(self.inner.ha);
        let auto_ack = opts.auto_ack.unwrap_or(
            *self
                .inner
                .auto_ack
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let (reply, reply_rx) = oneshot::channel();
        let (ready, ready_rx) = oneshot::channel();
        self.inner
            .cmd
            .send(Cmd::Execute {
                cmd: Box::new(OwnedCommand::new(&cmd)),
                stream: stream.clone(),
                resubscribe,
                reply,
                ready,
            })
            .await
            .map_err(|_| Error::shutdown())?;
        let (handle, sub_id) = reply_rx.await.unwrap_or_else(|_| Err(Error::shutdown()))?;
        // From here the stream exists: dropping it (also on cancellation) unsubscribes.
        let ms = MessageStream::new(stream, self.inner.shared.clone(), handle, sub_id, auto_ack);
        ready_rx.await.unwrap_or_else(|_| Err(Error::shutdown()))?;
        Ok(ms)
    }

    /// Subscribe to `topic` (a name or a regex, protocol.md §14), with an optional content
    /// filter (seeds: `subscribe`).
    ///
    /// Cancel-safety: as [`Client::execute`].
    pub async fn subscribe(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(with_filter(Command::subscribe(topic), filter))
            .await
    }

    /// Subscribe to changed fields only (seeds: `delta_subscribe`; protocol.md §12.2).
    ///
    /// Cancel-safety: as [`Client::execute`].
    pub async fn delta_subscribe(
        &self,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<MessageStream> {
        self.execute(with_filter(Command::delta_subscribe(topic), filter))
            .await
    }

    /// Query the State of the World (seeds: `sow`): the stream yields `group_begin`, the
    /// records, `group_end`, then ends. Batch size 10, as the seeds' clients send.
    ///
    /// Cancel-safety: as [`Client::execute`].
    pub async fn sow(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(with_filter(Command::sow(topic).batch_size(10), filter))
            .await
    }

    /// Query and subscribe atomically (seeds: `sow_and_subscribe`; protocol.md §6.7).
    ///
    /// Cancel-safety: as [`Client::execute`].
    pub async fn sow_and_subscribe(
        &self,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<MessageStream> {
        let cmd = Command::sow_and_subscribe(topic).batch_size(10);
        self.execute(with_filter(cmd, filter)).await
    }

    /// Query, then subscribe to changed fields (seeds: `sow_and_delta_subscribe`).
    ///
    /// Cancel-safety: as [`Client::execute`].
    pub async fn sow_and_delta_subscribe(
        &self,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<MessageStream> {
        let cmd = Command::sow_and_delta_subscribe(topic).batch_size(10);
        self.execute(with_filter(cmd, filter)).await
    }

    /// Replay the transaction log from `bookmark` (a bookmark, `bookmark::EPOCH`,
    /// `bookmark::NOW`, or `bookmark::MOST_RECENT` to resume from the bookmark store), then
    /// continue live (seeds: `bookmark_subscribe`). Pass the same `sub_id` across restarts to
    /// resume a subscription.
    ///
    /// Cancel-safety: as [`Client::execute`].
    pub async fn bookmark_subscribe(
        &self,
        topic: &str,
        bookmark: &str,
        sub_id: Option<&str>,
    ) -> Result<MessageStream> {
        let mut cmd = Command::subscribe(topic).bookmark(bookmark);
        if let Some(s) = sub_id {
            cmd = cmd.sub_id(s);
        }
        self.execute(cmd).await
    }

    /// End the subscription `sub_id` (or `"all"`); its stream ends (seeds: `unsubscribe`).
    ///
    /// Cancel-safety: once polled, the unsubscribe is sent even if the future is dropped.
    pub async fn unsubscribe(&self, sub_id: &str) -> Result<()> {
        let cmd = Command::unsubscribe(sub_id).ack(AckType::Processed);
        self.execute(cmd).await?.collect_acks().await.map(drop)
    }

    /// Delete the SOW records matching `filter` (seeds: `sow_delete`); the returned ack
    /// carries the counts (`records_deleted()`, `matches()`).
    ///
    /// Cancel-safety: dropping the future does not cancel a delete already sent.
    pub async fn sow_delete(&self, topic: &str, filter: &str) -> Result<Message> {
        self.sow_delete_cmd(Command::sow_delete(topic, filter))
            .await
    }

    /// Delete the records with these SOW keys (comma list; seeds: `sow_delete_by_keys`).
    ///
    /// Cancel-safety: as [`Client::sow_delete`].
    pub async fn sow_delete_by_keys(&self, topic: &str, keys: &str) -> Result<Message> {
        self.sow_delete_cmd(Command::sow_delete_by_keys(topic, keys))
            .await
    }

    /// Delete the record `data` would update (seeds: `sow_delete_by_data`).
    ///
    /// Cancel-safety: as [`Client::sow_delete`].
    pub async fn sow_delete_by_data(&self, topic: &str, data: &[u8]) -> Result<Message> {
        self.sow_delete_cmd(Command::sow_delete_by_data(topic, data))
            .await
    }

    async fn sow_delete_cmd(&self, cmd: Command<'_>) -> Result<Message> {
        let cmd = cmd.ack(AckType::Processed).ack(AckType::Stats);
        let acks = self.execute(cmd).await?.collect_acks().await?;
        // The stats ack has the counts; a server that sends none puts them on `completed`.
        acks.into_iter()
            .rev()
            .find(|m| m.ack_type() == Some(AckType::Stats))
            .ok_or_else(|| Error::new(ErrorKind::Command, "no stats ack for sow_delete"))
    }

    /// Start, change (`Some`) or stop (`None`) heartbeats (seeds: `set_heartbeat`).
    ///
    /// Cancel-safety: the setting applies once the future was polled.
    pub async fn set_heartbeat(&self, heartbeat: Option<HeartbeatConfig>) -> Result<()> {
        self.ctl(|reply| Ctl::Heartbeat {
            hb: heartbeat,
            reply,
        })
        .await
    }

    /// Make the publish and bookmark stores durable now (file stores: fsync), whatever their
    /// sync policy. `close()` does this too.
    ///
    /// Cancel-safety: the sync happens even if the future is dropped once polled.
    pub async fn sync_stores(&self) -> Result<()> {
        self.ctl(|reply| Ctl::Stores {
            prune: false,
            reply,
        })
        .await
    }

    /// Sync the stores and prune the bookmark store (seeds: `prune()`, "most applications call
    /// prune() when the application exits"). A no-op for memory stores.
    ///
    /// Cancel-safety: as [`Client::sync_stores`].
    pub async fn prune(&self) -> Result<()> {
        self.ctl(|reply| Ctl::Stores { prune: true, reply }).await
    }

    /// Queue acks batched before sending (seeds: `set_ack_batch_size`).
    pub fn set_ack_batch_size(&self, n: u32) {
        let _ = self.inner.ctl.send(Ctl::AckBatch(n));
    }

    /// Longest time a queue ack waits in a batch (seeds: `set_ack_timeout`).
    pub fn set_ack_timeout(&self, t: Duration) {
        let _ = self.inner.ctl.send(Ctl::AckTimeout(t));
    }

    /// Acknowledge queue messages of streams created from now on automatically (seeds:
    /// `set_auto_ack`).
    pub fn set_auto_ack(&self, on: bool) {
        *self
            .inner
            .auto_ack
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = on;
    }

    /// The client's events (states, failed writes, last-chance messages, errors) from now on.
    pub fn events(&self) -> EventStream {
        EventStream::new(self.inner.shared.events.subscribe())
    }

    /// The current connection state, as a `watch` channel.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.shared.state_tx.subscribe()
    }

    /// True while logged on.
    pub fn is_logged_on(&self) -> bool {
        self.inner.shared.is_logged_on()
    }
}

fn with_filter<'a>(cmd: Command<'a>, filter: Option<&'a str>) -> Command<'a> {
    match filter {
        Some(f) => cmd.filter(f),
        None => cmd,
    }
}

/// A per-process seed for reconnect jitter (the core has no OS randomness).
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

impl MessageStream {
    /// Collect the messages until the stream ends (for commands that end: queries, acks).
    pub(crate) async fn collect_acks(mut self) -> Result<Vec<Message>> {
        use futures::StreamExt;
        let mut out = Vec::new();
        while let Some(m) = self.next().await {
            out.push(m?);
        }
        Ok(out)
    }
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.inner.name)
            .finish()
    }
}

//! [`Client`] and [`HaClient`]: the async face of the shared host client. Every method is the
//! host operation of the same name, awaited. Each documents its cancel-safety: what happens
//! when its future is dropped before it completes.

use std::ops::Deref;
use std::time::Duration;

use amps_core::session::ConnectionState;
use amps_host::{
    Adapter, Authenticator, BookmarkStoreInfo, ClientBuilder, Command, CommandKind,
    DelayStrategyHandle, Direction, DisconnectHandler, Driver, Error, ErrorKind, ExceptionListener,
    FailedWrite, HaAdapter, Handle, HandlerResult, ListenerId, Message, Params, PublishOptions,
    PublishStoreInfo, Result, ServerChooserHandle, ServerVersion, StreamOptions,
};

use crate::stream::{EventStream, MessageStream};

/// A connection to an AMPS server. A `Client` is a cheap handle: clone it freely, share it
/// across threads; dropping the last clone closes it.
///
/// ```no_run
/// # async fn demo() -> amps_tokio::Result<()> {
/// use futures::StreamExt;
/// let client = amps_tokio::Client::new("my-app-1")?;
/// client.connect("tcp://127.0.0.1:9007/amps/json").await?;
/// client.logon().await?;
/// client.publish("orders", r#"{"id":"A1","qty":100}"#).await?;
/// let mut sow = client.sow("orders", Some("/qty > 50")).await?;
/// while let Some(msg) = sow.next().await {
///     println!("{}", msg?.data_str().unwrap_or(""));
/// }
/// client.close().await?;
/// # Ok(()) }
/// ```
///
/// Tasks: the first command (inside a tokio runtime) spawns a driver task that owns the
/// connection, processes acks and answers heartbeats, and a dispatch thread that runs message
/// handlers and listeners.
///
/// # Cancel-safety
///
/// Every method that sends something to the server queues it when its future is first
/// polled; dropping the future before that does nothing. Dropping it afterwards only stops
/// the waiting: the command still runs (a `disconnect` or `close` still happens). A
/// subscription or query whose future is dropped before it returned its stream is ended
/// again, so nothing is left subscribed. A publish is queued exactly once when its future
/// completes, and not at all if it is dropped before.
#[derive(Clone)]
pub struct Client {
    pub(crate) handle: Handle,
}

impl Adapter for Client {
    const HA: bool = false;
    fn from_handle(handle: Handle) -> Self {
        Client { handle }
    }
    fn spawn(driver: Driver) -> Result<()> {
        crate::driver::spawn(driver)
    }
}

impl Client {
    /// A client named `name` with the default settings (unique per server and stable across
    /// restarts of a publisher). Errors: `Usage` for an invalid name.
    pub fn new(name: impl Into<String>) -> Result<Client> {
        Client::builder(name).build()
    }

    /// A builder for settings other than the defaults.
    pub fn builder(name: impl Into<String>) -> ClientBuilder<Client> {
        ClientBuilder::new(name)
    }

    /// The client name.
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// Open the connection `uri` names: `tcp://`, `tcps://` or `unix://`, with credentials,
    /// message type and transport options, e.g.
    /// `tcp://user:pw@host:9007/amps/json?tcp_nodelay=true`. Errors: `AlreadyConnected`,
    /// `ConnectionRefused`, `TimedOut`, `InvalidUri`, `TransportType`,
    /// `InvalidTransportOptions`.
    pub async fn connect(&self, uri: &str) -> Result<()> {
        self.handle.connect(uri).await
    }

    /// Log on with the connection string's credentials.
    pub async fn logon(&self) -> Result<()> {
        self.handle.logon().await
    }

    /// Log on with `authenticator` supplying the password and answering challenges.
    pub async fn logon_with(
        &self,
        authenticator: impl Authenticator + Send + 'static,
    ) -> Result<()> {
        self.handle.logon_with(authenticator).await
    }

    /// Close the connection; the client can connect again. No disconnect handler runs and an
    /// HA client does not reconnect.
    pub async fn disconnect(&self) -> Result<()> {
        self.handle.disconnect().await
    }

    /// Shut the client down for good: queued publishes are sent, the connection closes,
    /// streams end, pending commands fail, the background threads stop (listeners see
    /// `Shutdown`).
    pub async fn close(&self) -> Result<()> {
        self.handle.close().await
    }

    /// The connection state now.
    pub fn state(&self) -> ConnectionState {
        self.handle.state()
    }

    /// The version of the server, as its last logon ack gave it (`None` before the first
    /// logon); [`ServerVersion::number`] compares versions.
    pub fn server_version(&self) -> Option<ServerVersion> {
        self.handle.server_version()
    }

    /// The connection string of the open (or last) connection, password masked.
    pub fn uri(&self) -> Option<String> {
        self.handle.uri()
    }

    /// Acknowledge a queue message by topic and bookmark, without the message (e.g. bookmarks
    /// kept across a restart); batched with the other acks.
    pub fn ack(&self, topic: &str, bookmark: &str) -> Result<()> {
        self.handle.ack(topic, bookmark)
    }

    /// Whether the client is logged on now.
    pub fn is_logged_on(&self) -> bool {
        self.handle.is_logged_on()
    }

    /// Publish `data` to `topic`. Returns once the message is queued for the connection,
    /// without waiting for the server; blocks while the client's publish queue is full
    /// (backpressure). With a publish store the message is numbered, kept until persisted and
    /// replayed after a reconnect. Errors: `Disconnected` when not logged on (and no store
    /// keeps it).
    pub async fn publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        let none = PublishOptions::default();
        self.handle
            .publish_async(false, topic, data.as_ref(), &none)
            .await
    }

    /// [`Client::publish`] with an expiration, correlation id or explicit SOW key.
    pub async fn publish_with(
        &self,
        topic: &str,
        data: impl AsRef<[u8]>,
        options: PublishOptions<'_>,
    ) -> Result<()> {
        self.handle
            .publish_async(false, topic, data.as_ref(), &options)
            .await
    }

    /// Merge `data` into the SOW record it keys.
    pub async fn delta_publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        let none = PublishOptions::default();
        self.handle
            .publish_async(true, topic, data.as_ref(), &none)
            .await
    }

    /// [`Client::publish`] without waiting: `Busy` when the publish queue is full.
    pub fn try_publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        let none = PublishOptions::default();
        match self
            .handle
            .try_publish(false, topic, data.as_ref(), &none)?
        {
            true => Ok(()),
            false => Err(Error::new(ErrorKind::Busy, "publish queue full")),
        }
    }

    /// Publish a built command (publish or delta publish with any headers).
    pub fn publish_command(&self, command: &Command<'_>) -> Result<()> {
        self.handle.publish_command(command)
    }

    /// Wait until the server processed every command sent before.
    pub async fn flush(&self) -> Result<()> {
        self.handle.flush(None).await
    }

    /// [`Client::flush`] with its own time limit instead of the command timeout.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        self.handle.flush(Some(timeout)).await
    }

    /// Flush, then wait until the publish store is empty, at most `timeout` (`TimedOut`).
    pub async fn publish_flush(&self, timeout: Duration) -> Result<()> {
        self.handle.publish_flush(timeout).await
    }

    /// Messages in the publish store not yet acknowledged as persisted (0 without a store).
    pub fn unpersisted_count(&self) -> usize {
        self.handle.unpersisted_count()
    }

    /// Send `command` and iterate what it produces: records and deliveries, and the acks the
    /// command asks for. Returns once the server processed a subscription or query (a failure
    /// is the error, e.g. `BadFilter`), at once for other commands.
    pub async fn execute(&self, command: &Command<'_>) -> Result<MessageStream> {
        self.handle.execute(command, None).await.map(MessageStream)
    }

    /// [`Client::execute`] with explicit stream options.
    pub async fn execute_with(
        &self,
        command: &Command<'_>,
        options: StreamOptions,
    ) -> Result<MessageStream> {
        self.handle
            .execute(command, Some(options))
            .await
            .map(MessageStream)
    }

    /// Send `command` with `handler` receiving its messages on the dispatch thread (a plain
    /// thread: the handler must not block on the runtime); returns
    /// the subscription id once the server processed it. The handler may return `()` or a
    /// `Result`; errors and panics go to the exception listener.
    pub async fn execute_async<F, R>(&self, command: &Command<'_>, handler: F) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.handle.execute_async(command, handler).await
    }

    /// Subscribe to `topic` (a name or a regular expression). `params`: a filter
    /// (`&str`, `Option<&str>`) or [`Params`] (sub id, options, bookmark, timeout).
    pub async fn subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Result<MessageStream> {
        self.handle
            .subscribe(topic, params)
            .await
            .map(MessageStream)
    }

    /// Subscribe receiving only changed fields. `params` as for `subscribe`.
    pub async fn delta_subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Result<MessageStream> {
        self.handle
            .delta_subscribe(topic, params)
            .await
            .map(MessageStream)
    }

    /// Query the State of the World of `topic`; the stream ends after the last record.
    /// `params`: a filter or [`Params`] (`top_n`, `order_by`, `batch_size`, bookmark, …).
    pub async fn sow<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Result<MessageStream> {
        self.handle.sow(topic, params).await.map(MessageStream)
    }

    /// Query and subscribe atomically. `params` as for `sow`.
    pub async fn sow_and_subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Result<MessageStream> {
        self.handle
            .sow_and_subscribe(topic, params)
            .await
            .map(MessageStream)
    }

    /// Query and delta-subscribe atomically. `params` as for `sow`.
    pub async fn sow_and_delta_subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Result<MessageStream> {
        self.handle
            .sow_and_delta_subscribe(topic, params)
            .await
            .map(MessageStream)
    }

    /// [`Client::subscribe`] with `handler` receiving the messages on the dispatch thread instead
    /// of a stream; returns the subscription (or query) id.
    pub async fn subscribe_with_handler<'a, F, R>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
        handler: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.handle
            .named_with_handler(CommandKind::Subscribe, topic, params, handler)
            .await
    }

    /// [`Client::delta_subscribe`] with `handler` receiving the messages on the dispatch thread
    /// instead of a stream; returns the subscription (or query) id.
    pub async fn delta_subscribe_with_handler<'a, F, R>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
        handler: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.handle
            .named_with_handler(CommandKind::DeltaSubscribe, topic, params, handler)
            .await
    }

    /// [`Client::sow`] with `handler` receiving the messages on the dispatch thread instead of
    /// a stream; returns the subscription (or query) id.
    pub async fn sow_with_handler<'a, F, R>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
        handler: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.handle
            .named_with_handler(CommandKind::Sow, topic, params, handler)
            .await
    }

    /// [`Client::sow_and_subscribe`] with `handler` receiving the messages on the dispatch thread
    /// instead of a stream; returns the subscription (or query) id.
    pub async fn sow_and_subscribe_with_handler<'a, F, R>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
        handler: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.handle
            .named_with_handler(CommandKind::SowAndSubscribe, topic, params, handler)
            .await
    }

    /// [`Client::sow_and_delta_subscribe`] with `handler` receiving the messages on the dispatch
    /// thread instead of a stream; returns the subscription (or query) id.
    pub async fn sow_and_delta_subscribe_with_handler<'a, F, R>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
        handler: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        self.handle
            .named_with_handler(CommandKind::SowAndDeltaSubscribe, topic, params, handler)
            .await
    }

    /// Subscribe from a point in the transaction log: `bookmark` is a bookmark, `EPOCH`,
    /// `NOW` or `MOST_RECENT` (resolved from the bookmark store). A stable `sub_id` resumes
    /// the same subscription after a restart; call `discard()` on each message once
    /// processed.
    pub async fn bookmark_subscribe(
        &self,
        topic: &str,
        bookmark: &str,
        filter: Option<&str>,
        sub_id: Option<&str>,
    ) -> Result<MessageStream> {
        self.handle
            .bookmark_subscribe(topic, bookmark, filter, sub_id)
            .await
            .map(MessageStream)
    }

    /// Delete the SOW records of `topic` matching the filter; the returned ack carries the
    /// counts (`records_deleted()`, `matches()`). `params`: the filter, or [`Params`] with a
    /// filter and options or a timeout.
    pub async fn sow_delete<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Result<Message> {
        self.handle.sow_delete(topic, params).await
    }

    /// Delete the SOW records with these keys (comma-separated SOW keys).
    pub async fn sow_delete_by_keys(&self, topic: &str, keys: &str) -> Result<Message> {
        self.handle.sow_delete_by_keys(topic, keys).await
    }

    /// Delete the SOW record `data` would update if published.
    pub async fn sow_delete_by_data(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<Message> {
        self.handle.sow_delete_by_data(topic, data.as_ref()).await
    }

    /// End a subscription by its id; `"all"` ends every one.
    pub async fn unsubscribe(&self, sub_id: &str) -> Result<()> {
        self.handle.unsubscribe(sub_id).await
    }

    /// Acknowledge queue messages automatically: when a handler returns (a failing handler
    /// returns the message to the queue), or when a stream is asked for its next message.
    pub fn set_auto_ack(&self, on: bool) {
        self.handle.set_auto_ack(on);
    }

    /// Whether auto-ack is on.
    pub fn auto_ack(&self) -> bool {
        self.handle.auto_ack()
    }

    /// Acks sent together in one `sow_delete`; capped by the subscription's backlog.
    pub fn set_ack_batch_size(&self, n: u32) -> Result<()> {
        self.handle.set_ack_batch_size(n)
    }

    /// Longest time an ack waits in a batch.
    pub fn set_ack_timeout(&self, t: Duration) -> Result<()> {
        self.handle.set_ack_timeout(t)
    }

    /// Replace the transport filter (`ClientBuilder::transport_filter`, with the same rules)
    /// from the next byte the connection reads or writes.
    pub fn set_transport_filter(
        &self,
        f: impl Fn(Direction, &[u8]) + Send + Sync + 'static,
    ) -> Result<()> {
        self.handle.set_transport_filter(f)
    }

    /// Remove the transport filter, from the next byte the connection reads or writes.
    pub fn clear_transport_filter(&self) -> Result<()> {
        self.handle.clear_transport_filter()
    }

    /// Acks sent together in one `sow_delete`, as last set (default 1).
    pub fn ack_batch_size(&self) -> u32 {
        self.handle.ack_batch_size()
    }

    /// Longest time an ack waits in a batch, as last set (default 1 s).
    pub fn ack_timeout(&self) -> Duration {
        self.handle.ack_timeout()
    }

    /// The options sent with every logon: `ClientBuilder::logon_options`, or the latest
    /// [`Client::set_logon_options`], if any.
    pub fn logon_options(&self) -> Option<String> {
        self.handle.logon_options()
    }

    /// Replace the options sent with every logon (e.g. `ack_conflation=100ms`; empty: none)
    /// from the next logon on, an HA client's reconnects included; a connection already
    /// logged on keeps the options it logged on with. Errors: `Usage` when longer than 128
    /// bytes (like `ClientBuilder::logon_options`; the options in force are kept), the client
    /// is closed.
    pub fn set_logon_options(&self, options: impl Into<String>) -> Result<()> {
        self.handle.set_logon_options(options)
    }

    /// The publish store, described: its type, unpersisted count and gap setting (`None`
    /// without one). The store itself belongs to the connection; its operations are client
    /// methods (`unpersisted_count`, `publish_flush`, `sync_stores`).
    pub fn publish_store(&self) -> Option<PublishStoreInfo> {
        self.handle.publish_store()
    }

    /// The bookmark store, described: its type (`None` without one). Its operations are
    /// client methods (`most_recent`, `prune`, `sync_stores`) and `Message::discard`.
    pub fn bookmark_store(&self) -> Option<BookmarkStoreInfo> {
        self.handle.bookmark_store()
    }

    /// Heartbeats every `interval` (whole seconds), the connection dead after `timeout`
    /// without a complete frame; an `interval` of zero stops them.
    pub async fn set_heartbeat(&self, interval: Duration, timeout: Duration) -> Result<()> {
        self.handle.set_heartbeat(interval, timeout).await
    }

    /// Make the stores durable now (file stores: fsync). `close()` does this too.
    pub async fn sync_stores(&self) -> Result<()> {
        self.handle.sync_stores(false).await
    }

    /// The bookmark store's resume point for subscription `sub_id`: where a subscription with
    /// bookmark `MOST_RECENT` resumes (empty: none known, it starts at `EPOCH`).
    pub async fn most_recent(&self, sub_id: &str) -> Result<String> {
        self.handle.most_recent(sub_id).await
    }

    /// Sync the stores and prune the bookmark store (applications call it when they exit).
    pub async fn prune(&self) -> Result<()> {
        self.handle.sync_stores(true).await
    }

    /// Receive errors that have no caller to return to: handler errors and panics, failures
    /// of re-entered subscriptions, dropped publishes. Runs on the dispatch thread.
    pub fn set_exception_listener(&self, f: impl Fn(&Error) + Send + Sync + 'static) {
        self.handle.set_exception_listener(f);
    }

    /// The exception listener, if one is set: the client's own (shared) reference, so a new
    /// listener can call the one it replaces.
    pub fn exception_listener(&self) -> Option<ExceptionListener> {
        self.handle.exception_listener()
    }

    /// Receive messages nothing else handles.
    pub fn set_last_chance_message_handler(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        self.handle.set_last_chance_message_handler(f);
    }

    /// Receive publishes the server refused, with the stored message when a publish store is
    /// set. Without it the failure ack goes to the last-chance handler.
    pub fn set_failed_write_handler(&self, f: impl Fn(&FailedWrite) + Send + Sync + 'static) {
        self.handle.set_failed_write_handler(f);
    }

    /// Be told of connection state changes, in order (Connected, LoggedOn,
    /// HeartbeatInitiated, PublishReplayed, Resubscribed; Disconnected; Shutdown), on the
    /// dispatch thread.
    pub fn add_connection_state_listener(
        &self,
        f: impl Fn(ConnectionState) + Send + Sync + 'static,
    ) -> ListenerId {
        self.handle.add_connection_state_listener(f)
    }

    /// Remove a connection state listener.
    pub fn remove_connection_state_listener(&self, id: ListenerId) {
        self.handle.remove_connection_state_listener(id);
    }

    /// Run `f` with the client when the connection is lost (not after `disconnect()` or
    /// `close()`), on the dispatch thread. On an HA client it replaces the automatic
    /// reconnect.
    pub fn set_disconnect_handler(
        &self,
        f: impl Fn(&Client) + Send + Sync + 'static,
    ) -> Result<()> {
        let weak = self.handle.downgrade();
        self.handle.set_disconnect_handler(move || {
            if let Some(handle) = weak.upgrade() {
                f(&Client { handle });
            }
        })
    }

    /// The disconnect handler, if one is set (`None`: an HA client reconnects by itself, a
    /// plain client does nothing). Calling it runs the handler with this client.
    pub fn disconnect_handler(&self) -> Option<DisconnectHandler> {
        self.handle.disconnect_handler()
    }

    /// The client's events from now on: states, failed writes, last-chance messages,
    /// errors.
    pub fn events(&self) -> EventStream {
        EventStream(self.handle.events())
    }

    /// Bytes of received messages the client holds for the application now, and the limit.
    pub fn received_bytes(&self) -> (usize, usize) {
        self.handle.received_bytes()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.handle, f)
    }
}

/// A client that reconnects and fails over by itself: its server chooser names the server,
/// its delay strategy the wait; after each logon it replays its publish store, then re-enters
/// its subscriptions (streams stay open across a failover; bookmark subscriptions resume from
/// the bookmark store). It offers every method of [`Client`] (it dereferences to one) and adds
/// [`HaClient::connect_and_logon`].
///
/// ```no_run
/// # async fn demo() -> amps_tokio::Result<()> {
/// use amps_tokio::HaClient;
/// let client = HaClient::builder("reliable-publisher")
///     .uris(["tcp://primary:9007/amps/json", "tcp://secondary:9007/amps/json"])
///     .memory_backed()
///     .build()?;
/// client.connect_and_logon().await?;
/// client.publish("events", r#"{"n":1}"#).await?;
/// client.publish_flush(std::time::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HaClient {
    client: Client,
}

impl Adapter for HaClient {
    const HA: bool = true;
    fn from_handle(handle: Handle) -> Self {
        HaClient {
            client: Client { handle },
        }
    }
    fn spawn(driver: Driver) -> Result<()> {
        crate::driver::spawn(driver)
    }
}

impl HaAdapter for HaClient {}

impl HaClient {
    /// A builder: give it servers (`uris` or `server_chooser`) and stores.
    pub fn builder(name: impl Into<String>) -> ClientBuilder<HaClient> {
        ClientBuilder::new(name)
    }

    /// The plain client handle (shares the connection).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Connect to the server the chooser names and log on, failing over and retrying as the
    /// delay strategy allows. Errors: the logon was refused (`Authentication`, ...; not
    /// retried with the same credentials), or the strategy or the chooser gave up
    /// (`Disconnected`).
    pub async fn connect_and_logon(&self) -> Result<()> {
        self.client.handle.connect_and_logon().await
    }

    /// Commands issued while reconnecting wait for the new connection (`true`, the default)
    /// or fail at once with `Disconnected`; publishes with a publish store are kept either
    /// way.
    pub fn set_retry_on_disconnect(&self, on: bool) {
        self.client.handle.set_retry_on_disconnect(on);
    }

    /// Whether commands issued while reconnecting wait for the new connection.
    pub fn retry_on_disconnect(&self) -> bool {
        self.client.handle.retry_on_disconnect()
    }

    /// The server chooser, shared with the client (`None` when built without one): servers
    /// added or removed through it count from the next connection attempt, e.g.
    /// `ha.server_chooser()?.with_as(|c: &mut DefaultServerChooser<Vec<String>>|
    /// c.uris_mut().push(uri))` for a client built with `uris`.
    pub fn server_chooser(&self) -> Option<ServerChooserHandle> {
        self.client.handle.server_chooser()
    }

    /// The reconnect delay strategy, shared with the client: a change made through the
    /// handle applies from the next reconnect attempt, e.g.
    /// `ha.delay_strategy().with_as(|d: &mut FixedDelay| d.delay = Duration::from_secs(1))`.
    pub fn delay_strategy(&self) -> DelayStrategyHandle {
        self.client
            .handle
            .delay_strategy()
            .expect("an HA client has a delay strategy")
    }
}

/// The host-layer handle, for extensions that work with either client (e.g.
/// [`amps_host::SowRecoveryPointAdapter`]).
impl AsRef<Handle> for Client {
    fn as_ref(&self) -> &Handle {
        &self.handle
    }
}

impl AsRef<Handle> for HaClient {
    fn as_ref(&self) -> &Handle {
        &self.client.handle
    }
}

impl Deref for HaClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

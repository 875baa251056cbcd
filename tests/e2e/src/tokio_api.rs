//! [`Api`] for the async client: each call awaited on a shared runtime.

use std::time::Duration;

use amps_host::{
    Authenticator, ClientEvent, Command, CommandKind, ConnectionState, Error, FailedWrite,
    HandlerResult, Message, Params, PublishOptions, Result, StreamOptions,
};

use crate::{Api, Evts, GUARD, Strm};

/// The runtime every async client of the tests runs on.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Run `f` to completion on the shared runtime.
fn block<F: Future>(f: F) -> F::Output {
    rt().block_on(f)
}

/// The async client (`amps-tokio`).
#[derive(Clone, Debug)]
pub struct TokioApi {
    c: amps_tokio::Client,
    ha: Option<amps_tokio::HaClient>,
}

impl AsRef<amps_host::Handle> for TokioApi {
    fn as_ref(&self) -> &amps_host::Handle {
        self.c.as_ref()
    }
}

impl Api for TokioApi {
    type C = amps_tokio::Client;
    type H = amps_tokio::HaClient;
    type S = amps_tokio::MessageStream;
    type E = amps_tokio::EventStream;

    fn plain(c: Self::C) -> Self {
        TokioApi { c, ha: None }
    }
    fn ha(h: Self::H) -> Self {
        TokioApi {
            c: h.client().clone(),
            ha: Some(h),
        }
    }
    fn name(&self) -> String {
        self.c.name().to_owned()
    }
    fn connect(&self, uri: &str) -> Result<()> {
        block(self.c.connect(uri))
    }
    fn logon(&self) -> Result<()> {
        block(self.c.logon())
    }
    fn logon_with(&self, a: impl Authenticator + Send + 'static) -> Result<()> {
        block(self.c.logon_with(a))
    }
    fn connect_and_logon(&self) -> Result<()> {
        block(self.ha.as_ref().expect("an HA client").connect_and_logon())
    }
    fn disconnect(&self) -> Result<()> {
        block(self.c.disconnect())
    }
    fn close(&self) -> Result<()> {
        block(self.c.close())
    }
    fn state(&self) -> ConnectionState {
        self.c.state()
    }
    fn is_logged_on(&self) -> bool {
        self.c.is_logged_on()
    }
    fn publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        block(self.c.publish(topic, data))
    }
    fn publish_with(&self, topic: &str, data: &[u8], o: PublishOptions<'_>) -> Result<()> {
        block(self.c.publish_with(topic, data, o))
    }
    fn delta_publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        block(self.c.delta_publish(topic, data))
    }
    fn try_publish(&self, topic: &str, data: &[u8]) -> Result<()> {
        self.c.try_publish(topic, data)
    }
    fn publish_command(&self, c: &Command<'_>) -> Result<()> {
        self.c.publish_command(c)
    }
    fn flush(&self) -> Result<()> {
        block(self.c.flush())
    }
    fn flush_timeout(&self, t: Duration) -> Result<()> {
        block(self.c.flush_timeout(t))
    }
    fn server_version(&self) -> Option<amps_host::ServerVersion> {
        self.c.server_version()
    }
    fn uri(&self) -> Option<String> {
        self.c.uri()
    }
    fn ack(&self, topic: &str, bookmark: &str) -> Result<()> {
        self.c.ack(topic, bookmark)
    }
    fn publish_flush(&self, t: Duration) -> Result<()> {
        block(self.c.publish_flush(t))
    }
    fn unpersisted_count(&self) -> usize {
        self.c.unpersisted_count()
    }
    fn execute(&self, c: &Command<'_>) -> Result<Self::S> {
        block(self.c.execute(c))
    }
    fn execute_with(&self, c: &Command<'_>, o: StreamOptions) -> Result<Self::S> {
        block(self.c.execute_with(c, o))
    }
    fn execute_async<F, R>(&self, c: &Command<'_>, f: F) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        block(self.c.execute_async(c, f))
    }
    fn subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S> {
        block(self.c.subscribe(topic, filter))
    }
    fn delta_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S> {
        block(self.c.delta_subscribe(topic, filter))
    }
    fn sow(&self, topic: &str, filter: Option<&str>) -> Result<Self::S> {
        block(self.c.sow(topic, filter))
    }
    fn sow_and_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S> {
        block(self.c.sow_and_subscribe(topic, filter))
    }
    fn sow_and_delta_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S> {
        block(self.c.sow_and_delta_subscribe(topic, filter))
    }
    fn bookmark_subscribe(
        &self,
        topic: &str,
        bookmark: &str,
        filter: Option<&str>,
        sub_id: Option<&str>,
    ) -> Result<Self::S> {
        block(self.c.bookmark_subscribe(topic, bookmark, filter, sub_id))
    }
    fn named(&self, kind: CommandKind, topic: &str, p: Params<'_>) -> Result<Self::S> {
        match kind {
            CommandKind::Subscribe => block(self.c.subscribe(topic, p)),
            CommandKind::DeltaSubscribe => block(self.c.delta_subscribe(topic, p)),
            CommandKind::Sow => block(self.c.sow(topic, p)),
            CommandKind::SowAndSubscribe => block(self.c.sow_and_subscribe(topic, p)),
            CommandKind::SowAndDeltaSubscribe => block(self.c.sow_and_delta_subscribe(topic, p)),
            other => panic!("no named method for {other}"),
        }
    }
    fn named_with_handler<F, R>(
        &self,
        kind: CommandKind,
        topic: &str,
        p: Params<'_>,
        f: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        match kind {
            CommandKind::Subscribe => block(self.c.subscribe_with_handler(topic, p, f)),
            CommandKind::DeltaSubscribe => block(self.c.delta_subscribe_with_handler(topic, p, f)),
            CommandKind::Sow => block(self.c.sow_with_handler(topic, p, f)),
            CommandKind::SowAndSubscribe => {
                block(self.c.sow_and_subscribe_with_handler(topic, p, f))
            }
            CommandKind::SowAndDeltaSubscribe => {
                block(self.c.sow_and_delta_subscribe_with_handler(topic, p, f))
            }
            other => panic!("no named method for {other}"),
        }
    }
    fn sow_delete_params(&self, topic: &str, p: Params<'_>) -> Result<Message> {
        block(self.c.sow_delete(topic, p))
    }
    fn sow_delete(&self, topic: &str, filter: &str) -> Result<Message> {
        block(self.c.sow_delete(topic, filter))
    }
    fn sow_delete_by_keys(&self, topic: &str, keys: &str) -> Result<Message> {
        block(self.c.sow_delete_by_keys(topic, keys))
    }
    fn sow_delete_by_data(&self, topic: &str, data: &[u8]) -> Result<Message> {
        block(self.c.sow_delete_by_data(topic, data))
    }
    fn unsubscribe(&self, sub_id: &str) -> Result<()> {
        block(self.c.unsubscribe(sub_id))
    }
    fn set_auto_ack(&self, on: bool) {
        self.c.set_auto_ack(on)
    }
    fn set_transport_filter(
        &self,
        f: impl Fn(amps_host::Direction, &[u8]) + Send + Sync + 'static,
    ) -> Result<()> {
        self.c.set_transport_filter(f)
    }
    fn clear_transport_filter(&self) -> Result<()> {
        self.c.clear_transport_filter()
    }
    fn set_ack_batch_size(&self, n: u32) -> Result<()> {
        self.c.set_ack_batch_size(n)
    }
    fn set_ack_timeout(&self, t: Duration) -> Result<()> {
        self.c.set_ack_timeout(t)
    }
    fn set_heartbeat(&self, interval: Duration, timeout: Duration) -> Result<()> {
        block(self.c.set_heartbeat(interval, timeout))
    }
    fn set_retry_on_disconnect(&self, on: bool) {
        self.ha
            .as_ref()
            .expect("an HA client")
            .set_retry_on_disconnect(on)
    }
    fn retry_on_disconnect(&self) -> bool {
        self.ha
            .as_ref()
            .expect("an HA client")
            .retry_on_disconnect()
    }
    fn ack_batch_size(&self) -> u32 {
        self.c.ack_batch_size()
    }
    fn ack_timeout(&self) -> Duration {
        self.c.ack_timeout()
    }
    fn logon_options(&self) -> Option<String> {
        self.c.logon_options()
    }
    fn set_logon_options(&self, o: &str) -> Result<()> {
        self.c.set_logon_options(o)
    }
    fn publish_store(&self) -> Option<amps_host::PublishStoreInfo> {
        self.c.publish_store()
    }
    fn bookmark_store(&self) -> Option<amps_host::BookmarkStoreInfo> {
        self.c.bookmark_store()
    }
    fn server_chooser(&self) -> Option<amps_host::ServerChooserHandle> {
        self.ha.as_ref().expect("an HA client").server_chooser()
    }
    fn delay_strategy(&self) -> amps_host::DelayStrategyHandle {
        self.ha.as_ref().expect("an HA client").delay_strategy()
    }
    fn sync_stores(&self) -> Result<()> {
        block(self.c.sync_stores())
    }
    fn most_recent(&self, sub_id: &str) -> Result<String> {
        block(self.c.most_recent(sub_id))
    }
    fn prune(&self) -> Result<()> {
        block(self.c.prune())
    }
    fn set_exception_listener(&self, f: impl Fn(&Error) + Send + Sync + 'static) {
        self.c.set_exception_listener(f)
    }
    fn exception_listener(&self) -> Option<amps_host::ExceptionListener> {
        self.c.exception_listener()
    }
    fn disconnect_handler(&self) -> Option<amps_host::DisconnectHandler> {
        self.c.disconnect_handler()
    }
    fn set_last_chance_message_handler(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        self.c.set_last_chance_message_handler(f)
    }
    fn set_failed_write_handler(&self, f: impl Fn(&FailedWrite) + Send + Sync + 'static) {
        self.c.set_failed_write_handler(f)
    }
    fn add_connection_state_listener(&self, f: impl Fn(ConnectionState) + Send + Sync + 'static) {
        self.c.add_connection_state_listener(f);
    }
    fn set_disconnect_handler(&self, f: impl Fn(&Self) + Send + Sync + 'static) -> Result<()> {
        self.c
            .set_disconnect_handler(move |c| f(&TokioApi::plain(c.clone())))
    }
    fn events(&self) -> Self::E {
        self.c.events()
    }
    fn received_bytes(&self) -> (usize, usize) {
        self.c.received_bytes()
    }
}

impl Strm for amps_tokio::MessageStream {
    fn next_item(&mut self) -> Option<Result<Message>> {
        use futures::StreamExt;
        block(async {
            tokio::time::timeout(GUARD, self.next())
                .await
                .expect("no message within the guard")
        })
    }
    fn recv_timeout(&mut self, d: Duration) -> Result<Option<Message>> {
        use futures::StreamExt;
        block(async {
            match tokio::time::timeout(d, self.next()).await {
                Ok(item) => item.transpose(),
                Err(_) => Err(Error::new(
                    amps_host::ErrorKind::TimedOut,
                    "no message in time",
                )),
            }
        })
    }
    fn close(&mut self) {
        amps_tokio::MessageStream::close(self)
    }
    fn conflate(self) -> Self {
        amps_tokio::MessageStream::conflate(self)
    }
    fn len(&self) -> usize {
        amps_tokio::MessageStream::len(self)
    }
    fn sub_id(&self) -> String {
        amps_tokio::MessageStream::sub_id(self).to_owned()
    }
    fn dropped_count(&self) -> u64 {
        amps_tokio::MessageStream::dropped_count(self)
    }
    fn process<F, E>(self, mut f: F) -> Result<()>
    where
        F: FnMut(&Message) -> std::result::Result<(), E> + Send,
        E: std::fmt::Display + Send,
    {
        block(amps_tokio::MessageStream::process(self, move |m| {
            let r = f(m);
            async move { r }
        }))
    }
}

impl Evts for amps_tokio::EventStream {
    fn recv_timeout(&mut self, d: Duration) -> Option<ClientEvent> {
        use futures::StreamExt;
        block(async { tokio::time::timeout(d, self.next()).await.ok().flatten() })
    }
}

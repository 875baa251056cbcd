//! The commands application threads (and the dispatch thread) send to the driver, in order
//! with the publishes sent before them (see `inbox`).

use std::sync::Arc;
use std::time::Duration;

use amps_core::ha::Authenticator;

use crate::command::OwnedCommand;
use crate::control::Control;
use crate::error::Error;
use crate::handler::Handler;
use crate::message::Message;
use crate::net::TransportFilter;
use crate::stream::{StreamCore, StreamShared};
use crate::sync::Reply;

/// What a command's caller gets back.
pub(crate) enum Target {
    /// A stream of its messages (the stream is answered at the `processed` ack of a
    /// subscription or query, at once for other commands).
    Stream {
        stream: Arc<StreamShared>,
        auto_ack: bool,
        reply: Reply<StreamCore>,
    },
    /// A message handler on the dispatch thread; answered with the subscription id.
    Handler {
        handler: Handler,
        reply: Reply<String>,
    },
    /// Nothing but its acks: answered at completion with the last ack carrying counts
    /// (`sow_delete` returns its stats ack).
    Collect(Reply<Message>),
}

/// A command from an application thread (or the dispatch thread).
pub(crate) enum Op {
    /// Plain client: open the transport.
    Connect { uri: String, reply: Reply<()> },
    /// Plain client: log on over the open transport.
    Logon {
        auth: Option<Box<dyn Authenticator + Send>>,
        reply: Reply<()>,
    },
    /// HA client: connect (with the server chooser) and log on, retrying per the delay
    /// strategy.
    ConnectAndLogon { reply: Reply<()> },
    /// Close the connection; no reconnect.
    Disconnect { reply: Reply<()> },
    /// Shut the client down.
    Close { reply: Reply<()> },
    /// Send a command.
    Execute {
        cmd: Box<OwnedCommand>,
        target: Target,
        resubscribe: bool,
    },
    /// A sequenced command without a reply (publish with arbitrary headers).
    PublishCommand(Box<OwnedCommand>),
    /// Unsubscribe by sub_id (or `all`).
    Unsubscribe { sub_id: String, reply: Reply<()> },
    /// `flush` or `publish_flush`.
    Flush { kind: FlushKind, reply: Reply<()> },
    /// Acks, discards, closed streams and reports from messages and streams.
    Control(Control),
    /// Heartbeats on (interval, timeout), or off.
    Heartbeat {
        hb: Option<(Duration, Duration)>,
        reply: Reply<()>,
    },
    /// Queue-ack batching.
    AckBatch {
        size: Option<u32>,
        timeout: Option<Duration>,
    },
    /// Sync the stores, and prune the bookmark store when asked.
    Stores { prune: bool, reply: Reply<()> },
    /// The bookmark store's resume point for a subscription.
    MostRecent {
        sub_id: String,
        reply: Reply<String>,
    },
    /// HA: a disconnect handler replaces the automatic reconnect.
    StopReconnecting,
    /// Replace (or remove) the transport filter.
    TransportFilter(Option<Arc<TransportFilter>>),
    /// The logon options from the next logon on (validated by the caller).
    LogonOptions(Option<String>),
}

/// What a flush waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlushKind {
    /// `flush`: the server processed everything before, within this limit (else the client's
    /// command timeout).
    Server(Option<Duration>),
    /// `publish_flush(timeout)`: that, and the publish store emptied, within `timeout`.
    Store(Duration),
}

impl Op {
    /// Commands that keep their place behind publishes sent before them; the others (control,
    /// acks) are run even while the queue waits (for a reconnect, for the publish window), so
    /// `close()` or `connect_and_logon()` are never stuck behind it.
    pub(crate) fn is_ordered(&self) -> bool {
        matches!(
            self,
            Op::Execute { .. } | Op::PublishCommand(_) | Op::Unsubscribe { .. } | Op::Flush { .. }
        )
    }

    /// Whether the inbox bound applies (control ops that end or close always get through).
    pub(crate) fn is_bounded(&self) -> bool {
        !matches!(
            self,
            Op::Close { .. } | Op::Disconnect { .. } | Op::Control(Control::StreamClosed { .. })
        )
    }

    /// Fail the op's caller (the client is shut down or the op cannot run).
    pub(crate) fn fail(self, e: &Error) {
        match self {
            Op::Connect { reply, .. }
            | Op::Logon { reply, .. }
            | Op::ConnectAndLogon { reply }
            | Op::Disconnect { reply }
            | Op::Unsubscribe { reply, .. }
            | Op::Flush { reply, .. }
            | Op::Heartbeat { reply, .. }
            | Op::Stores { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
            Op::MostRecent { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
            Op::Close { reply } => {
                let _ = reply.send(Ok(()));
            }
            Op::Execute { target, .. } => target.fail(e),
            Op::PublishCommand(_)
            | Op::Control(_)
            | Op::AckBatch { .. }
            | Op::StopReconnecting
            | Op::TransportFilter(_)
            | Op::LogonOptions(_) => {}
        }
    }
}

impl Target {
    pub(crate) fn fail(self, e: &Error) {
        match self {
            Target::Stream { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
            Target::Handler { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
            Target::Collect(reply) => {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ops may carry credentials (connection strings): only their kind is shown.
        let name = match self {
            Op::Connect { .. } => "Connect",
            Op::Logon { .. } => "Logon",
            Op::ConnectAndLogon { .. } => "ConnectAndLogon",
            Op::Disconnect { .. } => "Disconnect",
            Op::Close { .. } => "Close",
            Op::Execute { .. } => "Execute",
            Op::PublishCommand(_) => "PublishCommand",
            Op::Unsubscribe { .. } => "Unsubscribe",
            Op::Control(_) => "Control",
            Op::Flush { .. } => "Flush",
            Op::Heartbeat { .. } => "Heartbeat",
            Op::AckBatch { .. } => "AckBatch",
            Op::Stores { .. } => "Stores",
            Op::MostRecent { .. } => "MostRecent",
            Op::StopReconnecting => "StopReconnecting",
            Op::TransportFilter(_) => "TransportFilter",
            Op::LogonOptions(_) => "LogonOptions",
        };
        f.write_str(name)
    }
}

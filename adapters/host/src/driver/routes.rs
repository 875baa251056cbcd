//! The driver's tables: where each command's messages go (routes) and who waits for its
//! answer (waits), and the ordered outputs on their way to streams and the dispatch thread.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use amps_core::codec::{AckTypes, CommandKind};
use amps_core::session::{CommandId, CommandIdHasher};

use super::State;
use crate::dispatch::Item as DItem;
use crate::error::Error;
use crate::message::Message;
use crate::stream::{Push, StreamCore, StreamShared};
use crate::sync::Reply;

/// A map keyed by command id, with the cheap command-id hasher (looked up per message).
pub(super) type IdMap<V> = HashMap<CommandId, V, BuildHasherDefault<CommandIdHasher>>;

/// A subscription, query or other command whose messages go somewhere.
pub(super) struct Route {
    pub(super) kind: CommandKind,
    pub(super) target: RouteTarget,
    /// Acks the application asked for (delivered as messages).
    pub(super) user_acks: AckTypes,
    /// The server reported a queue backlog for it.
    pub(super) queue: bool,
    pub(super) sub_id: String,
}

pub(super) enum RouteTarget {
    Stream(Arc<StreamShared>),
    Handler,
}

/// A caller waiting until a command is processed or complete.
pub(super) struct Wait {
    pub(super) reply: WaitReply,
    /// Answer at the `processed` ack (subscriptions, queries) rather than at completion.
    pub(super) on_processed: bool,
    /// The last ack with counts (for `sow_delete`).
    pub(super) ack: Option<Message>,
}

pub(super) enum WaitReply {
    /// No one waits (the caller was answered when the command was sent).
    None,
    /// The stream of a subscription or query, handed over at the `processed` ack.
    Stream(Reply<StreamCore>, Box<StreamCore>),
    /// The subscription id of a handler subscription.
    Handler(Reply<String>, String),
    /// The ack with the counts, at completion.
    Collect(Reply<Message>),
    Unit(Reply<()>),
    /// A `flush` (`publish_flush` with a limit), sent again after a reconnect if the
    /// connection drops before it completes (HA with retry-on-disconnect).
    Flush(Reply<()>, crate::op::FlushKind),
}

impl WaitReply {
    /// Answer with an error.
    pub(super) fn fail(self, e: &Error) {
        match self {
            WaitReply::None => {}
            WaitReply::Stream(r, _) => {
                let _ = r.send(Err(e.clone()));
            }
            WaitReply::Handler(r, _) => {
                let _ = r.send(Err(e.clone()));
            }
            WaitReply::Collect(r) => {
                let _ = r.send(Err(e.clone()));
            }
            WaitReply::Unit(r) | WaitReply::Flush(r, _) => {
                let _ = r.send(Err(e.clone()));
            }
        }
    }

    /// The caller stopped waiting (dropped its pending answer).
    pub(super) fn is_abandoned(&self) -> bool {
        match self {
            WaitReply::None => false,
            WaitReply::Stream(r, _) => r.is_closed(),
            WaitReply::Handler(r, _) => r.is_closed(),
            WaitReply::Collect(r) => r.is_closed(),
            WaitReply::Unit(r) | WaitReply::Flush(r, _) => r.is_closed(),
        }
    }

    /// Answer with success (the last ack for `Collect`). False if the caller stopped
    /// waiting.
    #[must_use]
    pub(super) fn succeed(self, ack: Option<Message>) -> bool {
        match self {
            WaitReply::None => true,
            WaitReply::Stream(r, core) => r.send(Ok(*core)).is_ok(),
            WaitReply::Handler(r, sub_id) => r.send(Ok(sub_id)).is_ok(),
            WaitReply::Collect(r) => {
                let v = ack.ok_or_else(|| {
                    Error::new(
                        crate::ErrorKind::Command,
                        "the server sent no acknowledgement",
                    )
                });
                r.send(v).is_ok()
            }
            WaitReply::Unit(r) | WaitReply::Flush(r, _) => r.send(Ok(())).is_ok(),
        }
    }
}

/// An output of the driver, delivered in order.
// A handler's message is held inline: boxing it would cost an allocation per message, which
// is what the owned messages' shared blocks avoid.
#[allow(clippy::large_enum_variant)]
pub(super) enum Out {
    /// Consecutive messages for one stream (route `id`), pushed under one lock.
    Stream {
        stream: Arc<StreamShared>,
        id: CommandId,
        msgs: VecDeque<Message>,
    },
    /// End a stream, normally or with an error.
    Finish(Arc<StreamShared>, Option<Error>),
    Dispatch(DItem),
    /// Answer a caller, in order with the messages before it: when a `flush` returns, what
    /// the server sent before its ack is in the streams. `id` is ended again if the caller of
    /// a subscription stopped waiting.
    Answer {
        id: CommandId,
        reply: WaitReply,
        ack: Option<Message>,
    },
    /// Answer a caller with an error, in order.
    Fail(WaitReply, Error),
}

/// What a delivery of outputs asks of the session afterwards.
pub(super) enum Overflow {
    /// A stream overflowed under the slow-consumer policy: end its subscription.
    Unsubscribe(CommandId),
}

impl State {
    /// Deliver outputs in order while their destinations have room. False when some wait.
    pub(super) fn flush_out(&mut self, after: &mut Vec<Overflow>) -> bool {
        let mut batch = VecDeque::new();
        while let Some(front) = self.out.front() {
            match front {
                Out::Stream { .. } => {
                    let Some(Out::Stream {
                        stream,
                        id,
                        mut msgs,
                    }) = self.out.pop_front()
                    else {
                        break;
                    };
                    let mut p = stream.producer();
                    while let Some(m) = msgs.pop_front() {
                        match p.push(m) {
                            Push::Queued => {}
                            Push::Ended => break,
                            Push::Gone(m) => {
                                // Received for a stream the application dropped: nobody else
                                // handles it.
                                drop(p);
                                for m in std::iter::once(m).chain(msgs) {
                                    self.last_chance(m);
                                }
                                break;
                            }
                            Push::Overflowed => {
                                after.push(Overflow::Unsubscribe(id));
                                break;
                            }
                            // Closing: nobody waits for what a full stream cannot take.
                            Push::Blocked(_) if self.closing => break,
                            Push::Blocked(m) => {
                                msgs.push_front(m);
                                drop(p);
                                self.out.push_front(Out::Stream { stream, id, msgs });
                                return false;
                            }
                        }
                    }
                }
                Out::Finish(..) | Out::Answer { .. } | Out::Fail(..) => {
                    match self.out.pop_front() {
                        Some(Out::Finish(s, e)) => s.finish(e),
                        Some(Out::Answer { id, reply, ack }) => {
                            let subscription = matches!(reply, WaitReply::Stream(..));
                            if !reply.succeed(ack) && subscription {
                                // The caller stopped waiting before the subscription was
                                // acknowledged: nobody will take its messages.
                                after.push(Overflow::Unsubscribe(id));
                            }
                        }
                        Some(Out::Fail(reply, e)) => reply.fail(&e),
                        _ => {}
                    }
                }
                Out::Dispatch(_) => {
                    while let Some(Out::Dispatch(_)) = self.out.front() {
                        if let Some(Out::Dispatch(item)) = self.out.pop_front() {
                            batch.push_back(item);
                        }
                    }
                    if self.closing {
                        for item in batch.drain(..) {
                            self.dispatch.push_urgent(item, &self.shared);
                        }
                    } else if !self.dispatch.push_from(&mut batch, &self.shared) {
                        for item in batch.drain(..).rev() {
                            self.out.push_front(Out::Dispatch(item));
                        }
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Queue `m` for the destination of route `id`, joining the batch of the stream's
    /// previous message when it is last. A message for no route is a last-chance message.
    pub(super) fn deliver(&mut self, id: CommandId, m: Message) {
        let Some(r) = self.routes.get(&id) else {
            self.last_chance(m);
            return;
        };
        match &r.target {
            RouteTarget::Stream(s) => match self.out.back_mut() {
                Some(Out::Stream { stream, msgs, .. }) if Arc::ptr_eq(stream, s) => {
                    msgs.push_back(m)
                }
                _ => self.out.push_back(Out::Stream {
                    stream: s.clone(),
                    id,
                    msgs: VecDeque::from([m]),
                }),
            },
            RouteTarget::Handler => self.out.push_back(Out::Dispatch(DItem::Message(id, m))),
        }
    }

    /// A message nothing else handles.
    pub(super) fn last_chance(&mut self, m: Message) {
        self.out.push_back(Out::Dispatch(DItem::Event(
            crate::events::ClientEvent::LastChance(m),
        )));
    }

    /// Forget a route and end its destination (normally, or with `error`).
    pub(super) fn end_route(&mut self, id: CommandId, error: Option<Error>) {
        let Some(r) = self.routes.remove(&id) else {
            return;
        };
        match r.target {
            RouteTarget::Stream(s) => self.out.push_back(Out::Finish(s, error)),
            RouteTarget::Handler => self.out.push_back(Out::Dispatch(DItem::Unregister(id))),
        }
    }

    /// Closing: deliver what the dispatch thread takes, end every stream and answer every
    /// caller still waiting.
    pub(super) fn shutdown_outputs(&mut self) {
        let err = Error::closed();
        for out in std::mem::take(&mut self.out) {
            match out {
                Out::Dispatch(item) => self.dispatch.push_urgent(item, &self.shared),
                Out::Finish(s, e) => s.finish(e),
                Out::Answer { reply, ack, .. } => {
                    // Closing: a subscription nobody took ends with everything else.
                    let _ = reply.succeed(ack);
                }
                Out::Fail(reply, e) => reply.fail(&e),
                // Nobody consumes a full stream any more: what it could not take is dropped.
                Out::Stream { .. } => {}
            }
        }
        for (_, r) in self.routes.drain() {
            if let RouteTarget::Stream(s) = r.target {
                s.finish(Some(err.clone()));
            }
        }
        for (_, w) in self.waits.drain() {
            w.reply.fail(&err);
        }
    }
}

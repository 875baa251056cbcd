//! Connecting and logging on: a plain client's `connect` and `logon`, and the HA client's
//! reconnects through its server chooser (the session says when, the chooser says where, the
//! adapter opens the transport). Credentials come from the connection string and the
//! authenticator; they never reach a log or a `Debug` output.

use amps_core::Instant;
use amps_core::ha::Authenticator;
use amps_core::session::{CommandId, Logon, State as SState};
use amps_core::uri::{Protocol, Uri, percent_decode_into};

use super::ops::Ran;
use super::{Connecting, Driver, IoRequest, LogonWait, OpenRequest};
use crate::dispatch::Item as DItem;
use crate::error::{Error, ErrorKind, Result};
use crate::events::ClientEvent;
use crate::shared::Status;
use crate::sync::Reply;

/// Whose transport the adapter is opening.
pub(super) enum Opening {
    /// A plain client's `connect`.
    Plain(Connecting),
    /// The HA client's reconnect to this server.
    Ha(String),
}

impl Driver {
    fn is_logged_on(&self) -> bool {
        matches!(self.session.state(), SState::Recovering | SState::Ready)
    }

    /// Ask the adapter to open `uri`.
    fn request_open(&mut self, uri: &str, opening: Opening) {
        self.st.io = Some(IoRequest::Open(OpenRequest {
            uri: uri.to_owned(),
            timeout: self.st.timeouts.connect,
            tls: self.st.tls.clone(),
        }));
        self.st.opening = Some(opening);
    }

    /// Plain client: open the transport.
    pub(super) fn connect_plain(&mut self, uri: String, reply: Reply<()>) -> Ran {
        let refused = if self.st.open || self.st.opening.is_some() || self.is_logged_on() {
            Some(Error::new(
                ErrorKind::AlreadyConnected,
                "the client is already connected",
            ))
        } else if self.session.state() == SState::Shutdown {
            Some(Error::closed())
        } else {
            check_protocol(&uri).err()
        };
        match refused {
            Some(e) => {
                let _ = reply.send(Err(e));
            }
            None => self.request_open(&uri.clone(), Opening::Plain(Connecting { uri, reply })),
        }
        Ran::Done
    }

    /// The adapter opened the transport it was asked for (or could not).
    pub fn handle_opened(&mut self, result: Result<()>) {
        let now = self.now();
        match (self.st.opening.take(), result) {
            (None, Ok(())) => {
                // Nobody asked any more (closed meanwhile): close it again.
                self.st.io = Some(IoRequest::Close);
            }
            (None, Err(_)) => {}
            (Some(Opening::Plain(c)), Ok(())) => {
                if c.reply.send(Ok(())).is_err() {
                    // The caller gave up: the attempt is abandoned, the client stays
                    // disconnected.
                    self.st.io = Some(IoRequest::Close);
                } else {
                    self.st.open = true;
                    self.st.shared.set_uri(&c.uri);
                    self.st.uri = Some(c.uri);
                    self.st.user_disconnect = false;
                    self.st.skip_connected = true;
                    self.st.shared.set_status(Status::Connected);
                    self.st
                        .shared
                        .set_state(amps_core::session::ConnectionState::Connected);
                    self.st
                        .out
                        .push_back(super::routes::Out::Dispatch(DItem::Event(
                            ClientEvent::State(amps_core::session::ConnectionState::Connected),
                        )));
                }
            }
            (Some(Opening::Plain(c)), Err(e)) => {
                let _ = c.reply.send(Err(e));
            }
            (Some(Opening::Ha(uri)), Ok(())) => {
                self.st.open = true;
                self.st.shared.set_uri(&uri);
                self.st.uri = Some(uri.clone());
                match self.send_logon(now, &uri) {
                    Ok(id) => {
                        self.st.logon = Some(LogonWait {
                            id,
                            reply: None,
                            uri,
                        })
                    }
                    Err(e) => self.ha_failed(now, &uri, e),
                }
            }
            (Some(Opening::Ha(uri)), Err(e)) => self.ha_failed(now, &uri, e),
        }
        self.drain_events(now);
    }

    /// HA: the connection to `uri` failed before the logon.
    fn ha_failed(&mut self, now: Instant, uri: &str, e: Error) {
        if let Some(c) = self.st.ha.as_mut().and_then(|h| h.chooser.as_mut()) {
            c.report_failure(uri, &e);
        }
        self.st.report(e);
        self.st.close_conn();
        self.session.handle_connect_failed(now);
    }

    /// Plain client: log on over the open transport.
    pub(super) fn logon_plain(
        &mut self,
        now: Instant,
        auth: Option<Box<dyn Authenticator + Send>>,
        reply: Reply<()>,
    ) -> Ran {
        if let Some(a) = auth {
            self.st.authenticator = a;
        }
        let uri = match (self.st.open, &self.st.uri) {
            (true, Some(u)) => u.clone(),
            _ => {
                let _ = reply.send(Err(Error::disconnected(
                    "not connected: call connect() first",
                )));
                return Ran::Done;
            }
        };
        if self.is_logged_on() || self.st.logon.is_some() {
            let _ = reply.send(Err(Error::usage("already logged on")));
            return Ran::Done;
        }
        match self.send_logon(now, &uri) {
            Ok(id) => {
                self.st.logon = Some(LogonWait {
                    id,
                    reply: Some(reply),
                    uri,
                })
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
        Ran::Done
    }

    /// HA client: start connecting through the server chooser.
    pub(super) fn ha_start(&mut self, now: Instant, reply: Reply<()>) -> Ran {
        if self.is_logged_on() {
            let _ = reply.send(Ok(()));
            return Ran::Done;
        }
        if self.session.state() == SState::Shutdown {
            let _ = reply.send(Err(Error::closed()));
            return Ran::Done;
        }
        let Some(ha) = self.st.ha.as_mut() else {
            let _ = reply.send(Err(Error::usage("not an HA client")));
            return Ran::Done;
        };
        if ha.chooser.is_none() {
            let _ = reply.send(Err(Error::usage(
                "no server chooser: give the builder one (uris or server_chooser)",
            )));
            return Ran::Done;
        }
        if ha.waiters.is_empty() {
            ha.wait_deadline = Some(now + self.st.timeouts.connect_and_logon.into());
        }
        ha.waiters.push(reply);
        ha.delay.reset();
        self.st.user_disconnect = false;
        self.session.start(now);
        Ran::Done
    }

    /// HA: `connect_and_logon` callers still waiting at their deadline are told `TimedOut`,
    /// and the client stops trying (until the next `connect_and_logon`).
    pub(super) fn ha_deadline(&mut self, now: Instant) {
        let Some(ha) = self.st.ha.as_mut() else {
            return;
        };
        if ha.waiters.is_empty() || ha.wait_deadline.is_none_or(|t| now < t) {
            return;
        }
        ha.wait_deadline = None;
        let limit = self.st.timeouts.connect_and_logon;
        let e = Error::timed_out(format!(
            "no server accepted a logon within {limit:?}; the client stopped trying"
        ));
        for r in ha.waiters.drain(..) {
            let _ = r.send(Err(e.clone()));
        }
        self.st.user_disconnect = true;
        if matches!(self.st.opening, Some(Opening::Ha(_))) {
            // The adapter closes the transport it is opening when it reports it.
            self.st.opening = None;
        }
        self.session.disconnect(now);
    }

    /// When the `connect_and_logon` callers give up, if they wait.
    pub(super) fn ha_wait_deadline(&self) -> Option<Instant> {
        let ha = self.st.ha.as_ref()?;
        if ha.waiters.is_empty() {
            None
        } else {
            ha.wait_deadline
        }
    }

    /// HA: open the connection the session asks for, to the server the chooser names.
    pub(super) fn ha_connect(&mut self, now: Instant) {
        if self.st.ha.is_none() || self.st.open || self.st.opening.is_some() {
            return;
        }
        if self.session.poll_connect(now).is_none() {
            return;
        }
        // Asked through the shared handle: the driver's chooser is a proxy of it, which cannot
        // lend out a string held behind its lock.
        let chooser = self
            .st
            .shared
            .ha_parts
            .as_ref()
            .and_then(|h| h.chooser.as_ref());
        let named = chooser.map(|c| {
            c.with(|c| {
                c.current_uri()
                    .map(str::to_owned)
                    .ok_or_else(|| c.error().to_owned())
            })
        });
        let Some(Ok(uri)) = named else {
            let why = match named {
                Some(Err(why)) => why,
                _ => "no server chooser".to_owned(),
            };
            if let Some(ha) = self.st.ha.as_mut() {
                for r in ha.waiters.drain(..) {
                    let _ = r.send(Err(Error::disconnected(why.clone())));
                }
            }
            self.st
                .report(Error::disconnected(format!("gave up reconnecting: {why}")));
            self.session.handle_give_up(now);
            return;
        };
        match check_protocol(&uri) {
            Ok(()) => self.request_open(&uri.clone(), Opening::Ha(uri)),
            Err(e) => self.ha_failed(now, &uri, e),
        }
    }

    /// Send the logon with the credentials of `uri` and the authenticator.
    fn send_logon(&mut self, now: Instant, uri: &str) -> Result<CommandId> {
        let parsed = Uri::parse(uri)?;
        let mut ubuf = vec![0u8; parsed.user.map_or(0, str::len)];
        let user = match parsed.user {
            Some(u) => Some(percent_decode_into(u, &mut ubuf, 0)?),
            None => None,
        };
        let mut pbuf = vec![0u8; parsed.password.map_or(0, |p| p.expose().len())];
        let uri_password = match parsed.password {
            Some(p) => p.decode_into(&mut pbuf)?,
            None => "",
        };
        let mut password = String::new();
        self.st
            .authenticator()
            .authenticate(user.unwrap_or(""), uri_password, &mut password)
            .map_err(|_| Error::new(ErrorKind::Authentication, "the authenticator failed"))?;
        let logon = Logon {
            user_id: user,
            password: (parsed.password.is_some() || !password.is_empty())
                .then_some(password.as_str()),
            message_type: parsed.message_type,
            options: parsed.options.pretty.then_some("pretty"),
        };
        Ok(self.session.handle_connected(now, &logon)?)
    }
}

/// Refuse a connection string for another protocol than `amps`.
fn check_protocol(uri: &str) -> Result<()> {
    let parsed = Uri::parse(uri)?;
    if parsed.protocol != Protocol::Amps {
        return Err(Error::new(
            ErrorKind::InvalidUri,
            format!(
                "protocol `{}` is not supported: this client speaks `amps`",
                parsed.protocol.name()
            ),
        ));
    }
    Ok(())
}

//! The connection side of the I/O thread: connecting and logging on (plain and HA), bytes in
//! (decrypting, filtering, feeding the session), bytes out (the session's transmit buffer to
//! the socket), and closing.

use amps_core::Instant;
use amps_core::session::{Logon, State as SessionState, TransportClosed};
use amps_core::uri::{Protocol, Uri, percent_decode_into};

use super::{Blocked, Driver, LogonWait, Reply, Rx, State, WBUF, answer};
use crate::dispatch;
use crate::error::{Error, ErrorKind, Result};
use crate::inbox::Item;
use crate::transport::{self, Conn, Direction, is_would_block};

impl Driver {
    /// Sort an inbox item: commands to the user queue, bytes to the receive path.
    pub(super) fn intake(&mut self, item: Item) {
        match item {
            Item::Publishes(_) | Item::Op(_) => self.st.user_q.push_back(item),
            Item::Bytes { conn_id, buf, len } => self.st.take_bytes(conn_id, buf, len),
            Item::Closed { conn_id, error } => self.st.rx.push_back(Rx::Closed { conn_id, error }),
        }
    }

    fn is_logged_on(&self) -> bool {
        matches!(
            self.session.state(),
            SessionState::Recovering | SessionState::Ready
        )
    }

    /// Plain client: open the transport (seeds: `connect(uri)`).
    pub(super) fn connect_plain(&mut self, uri: String, reply: Reply<()>) {
        let r = if self.st.conn.is_some() || self.is_logged_on() {
            Err(Error::new(
                ErrorKind::AlreadyConnected,
                "the client is already connected",
            ))
        } else if self.session.state() == SessionState::Shutdown {
            Err(Error::disconnected("the client is closed"))
        } else {
            self.open(&uri).map(|()| {
                self.st.uri = Some(uri);
                self.st.user_disconnect = false;
                self.st.skip_connected = true;
                self.st.shared.set_status(crate::client::Status::Connected);
                self.st
                    .out
                    .push_back(super::Out::Dispatch(dispatch::Item::State(
                        amps_core::session::ConnectionState::Connected,
                    )));
            })
        };
        answer(reply, r);
    }

    /// Plain client: log on over the open transport (seeds: `logon()`).
    pub(super) fn logon_plain(
        &mut self,
        now: Instant,
        auth: Option<Box<dyn amps_core::ha::Authenticator + Send>>,
        reply: Reply<()>,
    ) {
        if let Some(a) = auth {
            self.st.cfg.authenticator = a;
        }
        let uri = match (&self.st.conn, &self.st.uri) {
            (Some(_), Some(u)) => u.clone(),
            _ => {
                return answer(
                    reply,
                    Err(Error::disconnected("not connected: call connect() first")),
                );
            }
        };
        if self.is_logged_on() || self.st.logon.is_some() {
            return answer(reply, Err(Error::usage("already logged on")));
        }
        match self.send_logon(now, &uri) {
            Ok(id) => {
                self.st.logon = Some(LogonWait {
                    id,
                    reply: Some(reply),
                    uri,
                })
            }
            Err(e) => answer(reply, Err(e)),
        }
    }

    /// HA client: start connecting through the server chooser (seeds: `connect_and_logon()`).
    pub(super) fn ha_start(&mut self, now: Instant, reply: Reply<()>) {
        if self.is_logged_on() {
            return answer(reply, Ok(()));
        }
        if self.session.state() == SessionState::Shutdown {
            return answer(reply, Err(Error::disconnected("the client is closed")));
        }
        if self.st.cfg.chooser.is_none() {
            return answer(
                reply,
                Err(Error::usage(
                    "no server chooser: call set_server_chooser before connect_and_logon",
                )),
            );
        }
        self.st.user_disconnect = false;
        self.st.ha_waiters.push(reply);
        self.session.start(now);
    }

    /// HA: open the connection the session asks for, to the server the chooser names.
    pub(super) fn ha_connect(&mut self, now: Instant) {
        if self.session.poll_connect(now).is_none() {
            return;
        }
        let chooser = self.st.cfg.chooser.as_ref();
        let Some(uri) = chooser.and_then(|c| c.current_uri()).map(str::to_owned) else {
            let why = chooser
                .map_or("no server chooser", |c| c.error())
                .to_owned();
            for r in self.st.ha_waiters.drain(..) {
                answer(r, Err(Error::disconnected(why.clone())));
            }
            self.st
                .report(Error::disconnected(format!("gave up reconnecting: {why}")));
            self.session.handle_give_up(now);
            return;
        };
        let logon = self.open(&uri).and_then(|()| self.send_logon(now, &uri));
        match logon {
            Ok(id) => {
                self.st.logon = Some(LogonWait {
                    id,
                    reply: None,
                    uri,
                })
            }
            Err(e) => {
                if let Some(c) = self.st.cfg.chooser.as_mut() {
                    c.report_failure(&uri, &e);
                }
                self.st.close_conn();
                self.session.handle_connect_failed(now);
            }
        }
    }

    /// Open `uri` and start its reader.
    fn open(&mut self, uri: &str) -> Result<()> {
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
        let timeout = self.st.cfg.connect_timeout;
        let (stream, tls) = transport::open(&parsed, &mut self.st.cfg.tls, timeout)?;
        self.st.conn_id += 1;
        let conn = Conn::start(stream, tls, self.st.conn_id, &self.st.shared)
            .map_err(|e| Error::connect(parsed, e))?;
        self.st.close_conn();
        self.st.conn = Some(conn);
        Ok(())
    }

    /// Send the logon with the credentials of `uri` and the authenticator (protocol.md §6.1).
    fn send_logon(&mut self, now: Instant, uri: &str) -> Result<amps_core::session::CommandId> {
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
            .cfg
            .authenticator
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

    /// Give received bytes to the session, in order, handling the events they produce; stop
    /// while outputs wait for a full stream or dispatch queue.
    pub(super) fn feed(&mut self, now: Instant) {
        loop {
            // While outputs wait for a full stream or dispatch queue, bytes still go into the
            // session's receive buffer (that keeps the heartbeat deadline fed) but no events
            // are taken; a close is handled only after the frames before it.
            let stalled = !self.st.out.is_empty();
            let current = self.st.conn.as_ref().map(|c| c.conn_id);
            let Some(front) = self.st.rx.front_mut() else {
                break;
            };
            match front {
                Rx::Closed { conn_id, .. } => {
                    if stalled {
                        break;
                    }
                    let conn_id = *conn_id;
                    let error = match self.st.rx.pop_front() {
                        Some(Rx::Closed { error, .. }) => error,
                        _ => None,
                    };
                    if current == Some(conn_id) {
                        let cause = if error.is_some() {
                            TransportClosed::Error
                        } else {
                            TransportClosed::PeerClosed
                        };
                        self.session.handle_closed(now, cause);
                        self.st.close_conn();
                    }
                }
                Rx::Bytes {
                    conn_id,
                    buf,
                    len,
                    pos,
                    ..
                } => {
                    let taken = if current == Some(*conn_id) {
                        match self.session.handle_bytes(now, &buf[*pos..*len]) {
                            Ok(n) => n,
                            Err(_) => *len - *pos,
                        }
                    } else {
                        *len - *pos
                    };
                    *pos += taken;
                    if *pos >= *len {
                        if let Some(rx) = self.st.rx.pop_front() {
                            self.st.recycle(rx);
                        }
                    } else if taken == 0 {
                        // The session's receive buffer is full: its events must drain first.
                        if stalled || self.drain_events(now) == 0 {
                            break;
                        }
                        continue;
                    }
                }
            }
            if !stalled {
                self.drain_events(now);
            }
        }
    }

    /// Write what the session has to send. Returns false while the socket takes no more.
    pub(super) fn transmit(&mut self, now: Instant) -> bool {
        let st = &mut self.st;
        let Some(conn) = st.conn.as_mut() else {
            st.wpos = 0;
            st.wlen = 0;
            return true;
        };
        let mut failed = None;
        if let Err(e) = conn.flush() {
            if is_would_block(&e) {
                return false;
            }
            failed = Some(e);
        }
        while failed.is_none() {
            if st.wpos < st.wlen {
                match conn.write(&st.wbuf[st.wpos..st.wlen]) {
                    Ok(0) => failed = Some(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => st.wpos += n,
                    Err(e) if is_would_block(&e) => return false,
                    Err(e) => failed = Some(e),
                }
                continue;
            }
            let mut len = 0;
            while len < WBUF {
                match self.session.poll_transmit(now, &mut st.wbuf[len..]) {
                    Some(n) => len += n,
                    None => break,
                }
            }
            if len == 0 {
                return true;
            }
            if let Some(f) = &st.cfg.transport_filter {
                filter(
                    f.as_ref(),
                    Direction::Outgoing,
                    &st.wbuf[..len],
                    &mut st.out,
                );
            }
            st.wpos = 0;
            st.wlen = len;
        }
        // The write failed: the connection is gone.
        self.session.handle_closed(now, TransportClosed::Error);
        self.st.close_conn();
        if self.st.blocked == Some(Blocked::Transmit) {
            self.st.blocked = None;
        }
        true
    }
}

impl State {
    /// Bytes the reader of connection `conn_id` read.
    fn take_bytes(&mut self, conn_id: u64, buf: Vec<u8>, len: usize) {
        let Some(conn) = self.conn.as_mut().filter(|c| c.conn_id == conn_id) else {
            // From a connection that is already closed.
            self.done_in += len;
            self.shared.inbox.recycle_read(buf);
            return;
        };
        if !conn.is_tls() {
            if let Some(f) = &self.cfg.transport_filter {
                filter(f.as_ref(), Direction::Incoming, &buf[..len], &mut self.out);
            }
            self.rx.push_back(Rx::Bytes {
                conn_id,
                buf,
                len,
                pos: 0,
                recycle: true,
                counted: len,
            });
            return;
        }
        let mut plain = Vec::new();
        let r = conn.decrypt(&buf[..len], &mut plain);
        self.shared.inbox.recycle_read(buf);
        if let Some(f) = &self.cfg.transport_filter
            && !plain.is_empty()
        {
            filter(f.as_ref(), Direction::Incoming, &plain, &mut self.out);
        }
        let plen = plain.len();
        self.rx.push_back(Rx::Bytes {
            conn_id,
            buf: plain,
            len: plen,
            pos: 0,
            recycle: false,
            counted: len,
        });
        match r {
            Ok(true) => {}
            Ok(false) => self.rx.push_back(Rx::Closed {
                conn_id,
                error: None,
            }),
            Err(e) => self.rx.push_back(Rx::Closed {
                conn_id,
                error: Some(e),
            }),
        }
    }

    /// A receive entry is done with.
    fn recycle(&mut self, rx: Rx) {
        if let Rx::Bytes {
            buf,
            recycle,
            counted,
            ..
        } = rx
        {
            self.done_in += counted;
            if recycle {
                self.shared.inbox.recycle_read(buf);
            }
        }
    }

    /// Close the socket (the session already knows or decided); bytes of it still queued are
    /// dropped.
    pub(super) fn close_conn(&mut self) {
        if let Some(c) = self.conn.take()
            && let Some(r) = c.close()
        {
            self.readers.push(r);
        }
        self.readers.retain(|h| !h.is_finished());
        for rx in std::mem::take(&mut self.rx) {
            // Bytes of the old connection are moot, and so is its reader's end notice.
            self.recycle(rx);
        }
        self.wpos = 0;
        self.wlen = 0;
    }
}

/// Run the application's transport filter; a panic in it is reported, not propagated into the
/// I/O thread.
fn filter(
    f: &crate::transport::TransportFilter,
    dir: Direction,
    bytes: &[u8],
    out: &mut std::collections::VecDeque<super::Out>,
) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(dir, bytes)));
    if r.is_err() {
        out.push_back(super::Out::Dispatch(dispatch::Item::Error(Error::new(
            ErrorKind::Unknown,
            "the transport filter panicked",
        ))));
    }
}

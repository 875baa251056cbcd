//! `logon` (docs/protocol.md §6.1, §8): authentication, client names, the sequence reconciliation
//! the logon ack carries.

use amps_core::codec::options;
use amps_core::codec::{AckType, Message};

use super::conn::Session;
use super::{CloseReason, ConnId, Engine};
use crate::config::MessageType;
use crate::wire::{bookmark, publisher_id};

impl Engine {
    pub(super) fn on_logon(&mut self, conn: ConnId, msg: &Message<'_>) {
        let already = self.conns.get(&conn).is_some_and(|c| c.session.is_some());
        if already {
            // §8.1 (our convention): the connection stays up.
            self.logon_ack(conn, msg, Some("already logged on"));
            return;
        }
        if let Some(reason) = self.faults.refuse_logons.clone() {
            return self.logon_refused(conn, msg, &reason, CloseReason::LogonFailed);
        }
        let Some(name) = msg.client_name().filter(|n| !n.is_empty()) else {
            return self.logon_refused(
                conn,
                msg,
                "missing field: client_name",
                CloseReason::LogonFailed,
            );
        };
        let Some(mt) = MessageType::from_wire(msg.message_type().unwrap_or("json")) else {
            return self.logon_refused(conn, msg, "invalid message type", CloseReason::LogonFailed);
        };
        let user = msg.user_id().map(str::to_owned);
        let pending = self.conns.get_mut(&conn).and_then(|c| c.challenge.take());
        if let Some((u, token)) = pending {
            // The answer to a challenge (§8.2): the token replaces the password.
            if msg.user_id() != Some(u.as_str()) || msg.password() != Some(token.as_str()) {
                return self.logon_refused(
                    conn,
                    msg,
                    "authentication failed",
                    CloseReason::LogonFailed,
                );
            }
        } else if self.cfg.auth_enabled() {
            let found = self.cfg.users.iter().find(|u| {
                Some(u.name.as_str()) == msg.user_id()
                    && Some(u.password.as_str()) == msg.password()
            });
            if let Some(u) = found.filter(|u| u.challenge) {
                let (name, token) = (u.name.clone(), format!("token-{}", conn.0));
                return self.challenge(conn, msg, name, token);
            }
            if found.is_none() {
                return self.logon_refused(
                    conn,
                    msg,
                    "authentication failed",
                    CloseReason::LogonFailed,
                );
            }
        }
        let mut conflation = None;
        if let Some(o) = msg.options() {
            for opt in options::OptionsIter::new(o) {
                match (opt.key, opt.value) {
                    ("ack_conflation", Some(v)) => match options::parse_duration(v) {
                        Some(d) => conflation = Some(d),
                        None => {
                            return self.logon_refused(
                                conn,
                                msg,
                                "invalid options",
                                CloseReason::LogonFailed,
                            );
                        }
                    },
                    ("pretty", None) => {}
                    _ => {
                        return self.logon_refused(
                            conn,
                            msg,
                            "invalid options",
                            CloseReason::LogonFailed,
                        );
                    }
                }
            }
        }
        // §8.3: with a transaction log a name is one session. Same user (or no authentication):
        // the existing connection is dropped; another user: this logon fails.
        if self.cfg.has_txlog() {
            let holders: Vec<(ConnId, Option<String>)> = self
                .conns
                .iter()
                .filter(|(id, c)| **id != conn && !c.closing)
                .filter_map(|(id, c)| {
                    let s = c.session.as_ref()?;
                    (s.client_name == name).then(|| (*id, s.user.clone()))
                })
                .collect();
            for (other, other_user) in holders {
                if self.cfg.auth_enabled() && other_user != user {
                    return self.logon_refused(conn, msg, "name in use", CloseReason::NameInUse);
                }
                self.schedule_close(other, CloseReason::Superseded, false);
            }
        }
        let pub_id = publisher_id(name);
        if !self.conns.contains_key(&conn) {
            return;
        }
        let seq_slot = self.client_slot(name);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.session = Some(Session {
            client_name: name.to_owned(),
            user,
            pub_id,
            seq_slot,
        });
        c.mt = mt;
        if let Some(d) = conflation {
            c.ack_conflation = d;
        }
        self.logon_ack(conn, msg, None);
    }

    /// The logon ack is always sent, requested or not: a client cannot proceed without it
    /// (§6.1 "Response: ack processed"; §17.4 lets clients accept unrequested acks).
    fn logon_ack(&mut self, conn: ConnId, msg: &Message<'_>, reason: Option<&str>) {
        if reason.is_some() {
            self.ack(conn, msg, AckType::Processed, reason, |_| {});
            return;
        }
        let Some((name, pub_id)) = self.identity(conn) else {
            return;
        };
        let s = self.client_seq(&name);
        let bm = bookmark(pub_id, s);
        let version = self.cfg.version.clone();
        self.ack(conn, msg, AckType::Processed, None, |w| {
            w.str("client_name", &name)
                .int("s", s)
                .str("bm", &bm)
                .str("version", &version);
        });
    }

    /// §8.2 challenge: `status` `retry` with the credentials for the next logon.
    fn challenge(&mut self, conn: ConnId, msg: &Message<'_>, name: String, token: String) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.challenge = Some((name.clone(), token.clone()));
        }
        let cid = msg.command_id();
        self.emit(conn, &[], |w| {
            w.str("c", "ack");
            if let Some(cid) = cid {
                w.str("cid", cid);
            }
            w.str("a", "processed")
                .str("status", "retry")
                .str("reason", "challenge")
                .str("user_id", &name)
                .str("pw", &token);
        });
    }

    /// §8.2: failure ack, then the connection is closed.
    fn logon_refused(&mut self, conn: ConnId, msg: &Message<'_>, reason: &str, why: CloseReason) {
        self.ack(conn, msg, AckType::Processed, Some(reason), |_| {});
        self.schedule_close(conn, why, true);
    }
}

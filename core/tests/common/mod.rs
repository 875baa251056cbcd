//! Scripted-exchange harness for session tests: time is pinned by the test (`at(ms)`), frames
//! are fed as text, and events and transmitted frames are collected as owned values.
#![allow(dead_code, unreachable_pub)]

use amps_core::codec::{AckType, CommandKind, OofReason, PREFIX_LEN, Scratch, split_frame};
use amps_core::session::{
    CommandError, CommandId, Config, ConnectionState, Event, FailureKind, HeapStorage, Limits,
    Logon, Parts, SessionError, heap_bookmark_store, heap_publish_store,
};
use amps_core::store::{MemoryBookmarkStore, MemoryPublishStore};
use amps_core::{Duration, Instant};

pub type Store = HeapStorage<MemoryPublishStore<Vec<u8>>, MemoryBookmarkStore<Vec<u8>>>;
pub type Session = amps_core::session::Session<Store>;

/// An owned copy of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    State(ConnectionState),
    Close,
    Ack {
        id: CommandId,
        ack: AckType,
        ok: bool,
        header: String,
    },
    Completed {
        id: CommandId,
        matches: Option<u64>,
        returned: Option<u64>,
        deleted: Option<u64>,
    },
    Failed {
        id: CommandId,
        error: CommandError,
    },
    Delivery {
        id: CommandId,
        sub_id: String,
        kind: CommandKind,
        data: String,
        key: Option<String>,
        bm: Option<String>,
        oof: Option<OofReason>,
    },
    Persisted(u64),
    FailedWrite {
        seq: u64,
        kind: FailureKind,
        reason: String,
        stored: Option<String>,
    },
    LastChance(CommandKind, String),
    LogonRetry {
        user: String,
        token: String,
    },
    Error(SessionError),
}

impl Ev {
    pub fn failed_kind(&self) -> Option<FailureKind> {
        match self {
            Ev::Failed {
                error: CommandError::Failed { kind, .. },
                ..
            } => Some(*kind),
            _ => None,
        }
    }
}

pub fn owned(e: Event<'_>) -> Ev {
    match e {
        Event::State(s) => Ev::State(s),
        Event::CloseTransport => Ev::Close,
        Event::Ack { id, msg } => Ev::Ack {
            id,
            ack: msg.ack_type().unwrap(),
            ok: msg.is_success(),
            header: msg.header().raw().to_string(),
        },
        Event::Completed { id, stats } => Ev::Completed {
            id,
            matches: stats.matches,
            returned: stats.records_returned,
            deleted: stats.records_deleted,
        },
        Event::Failed { id, error } => Ev::Failed { id, error },
        Event::Delivery(d) => Ev::Delivery {
            id: d.id,
            sub_id: d.sub_id.to_string(),
            kind: d.kind(),
            data: String::from_utf8_lossy(d.data()).into_owned(),
            key: d.sow_key().map(str::to_string),
            bm: d.bookmark().map(str::to_string),
            oof: d.msg.oof_reason(),
        },
        Event::Persisted { up_to } => Ev::Persisted(up_to),
        Event::FailedWrite {
            seq,
            kind,
            reason,
            stored,
        } => Ev::FailedWrite {
            seq,
            kind,
            reason: reason.to_string(),
            stored: stored.map(|s| String::from_utf8_lossy(&s[PREFIX_LEN..]).into_owned()),
        },
        Event::LastChance(m) => Ev::LastChance(m.kind(), m.header().raw().to_string()),
        Event::LogonRetry { user_id, token } => Ev::LogonRetry {
            user: user_id.into(),
            token: token.into(),
        },
        Event::Error(e) => Ev::Error(e),
        _ => panic!("unexpected event kind"),
    }
}

pub struct H {
    pub s: Session,
    pub now: Instant,
    /// Feed input in chunks of this size (0: whole frames at once).
    pub chunk: usize,
}

pub fn config(name: &str) -> Config<'_> {
    let mut c = Config::new(name);
    c.limits = Limits {
        rx_bytes: 1 << 16,
        tx_bytes: 1 << 14,
        ..Limits::small()
    };
    c.limits.max_frame = 1 << 15;
    c
}

pub fn session(cfg: &Config<'_>) -> Session {
    let lim = cfg.limits;
    Session::new(
        cfg,
        Parts::heap(&lim, heap_publish_store(&lim), heap_bookmark_store(4096)),
    )
    .unwrap()
}

impl H {
    pub fn new(cfg: &Config<'_>) -> H {
        H {
            s: session(cfg),
            now: Instant::ZERO,
            chunk: 0,
        }
    }

    pub fn at(&mut self, ms: u64) -> &mut Self {
        let t = Instant::from_millis(ms);
        assert!(t >= self.now, "time goes forward");
        self.now = t;
        self
    }

    /// Feed one frame (header + payload text).
    pub fn feed(&mut self, frame: &str) -> Vec<Ev> {
        let mut wire = (frame.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(frame.as_bytes());
        self.feed_bytes(&wire)
    }

    /// Feed raw bytes, draining events whenever the session pushes back.
    pub fn feed_bytes(&mut self, mut wire: &[u8]) -> Vec<Ev> {
        let mut evs = Vec::new();
        while !wire.is_empty() {
            let take = if self.chunk == 0 {
                wire.len()
            } else {
                self.chunk.min(wire.len())
            };
            let n = self
                .s
                .handle_bytes(self.now, &wire[..take])
                .expect("connected");
            wire = &wire[n..];
            evs.extend(self.events());
        }
        evs
    }

    pub fn events(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.s.poll_event() {
            out.push(owned(e));
        }
        assert_eq!(self.s.dropped_events(), 0);
        out
    }

    /// Everything the session wants to send, as frame texts (prefix checked and stripped).
    pub fn tx(&mut self) -> Vec<String> {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 7]; // odd size: exercises partial frames
        while let Some(n) = self.s.poll_transmit(self.now, &mut buf) {
            assert!(n > 0);
            bytes.extend_from_slice(&buf[..n]);
        }
        let mut frames = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (body, used) = split_frame(rest, u32::MAX).unwrap().expect("whole frames");
            frames.push(String::from_utf8_lossy(body).into_owned());
            rest = &rest[used..];
        }
        frames
    }

    pub fn timeout(&mut self, ms: u64) -> Vec<Ev> {
        self.at(ms);
        self.s.handle_timeout(self.now);
        self.events()
    }

    /// Connect and log on; returns the events of the whole exchange.
    pub fn logon_with_seq(&mut self, s: u64) -> Vec<Ev> {
        self.s
            .handle_connected(
                self.now,
                &Logon {
                    user_id: Some("alice"),
                    password: Some("secret"),
                    message_type: Some("json"),
                    options: None,
                },
            )
            .unwrap();
        let mut evs = self.events();
        let tx = self.tx();
        let logon = tx
            .iter()
            .find(|f| f.contains(r#""c":"logon""#))
            .expect("logon frame");
        let cid = field(logon, "cid");
        evs.extend(self.feed(&format!(
            r#"{{"c":"ack","cid":"{cid}","a":"processed","status":"success","client_name":"{}","s":{s},"bm":"1|{s}|","version":"5.3.5.0"}}"#,
            self.s.client_name()
        )));
        evs
    }

    pub fn logon(&mut self) -> Vec<Ev> {
        self.logon_with_seq(0)
    }
}

/// The string value of `key` in a frame's header (first occurrence).
pub fn field(frame: &str, key: &str) -> String {
    let mut scratch = vec![0u8; frame.len()];
    let m = amps_core::codec::Message::parse(frame.as_bytes(), &mut Scratch::new(&mut scratch))
        .unwrap();
    match m.header().get(key) {
        Some(amps_core::codec::RawValue::Str { raw, .. }) => raw.to_string(),
        Some(amps_core::codec::RawValue::Num(n)) => n.to_string(),
        other => panic!("no {key} in {frame}: {other:?}"),
    }
}

pub fn has_field(frame: &str, key: &str) -> bool {
    let mut scratch = vec![0u8; frame.len()];
    let m = amps_core::codec::Message::parse(frame.as_bytes(), &mut Scratch::new(&mut scratch))
        .unwrap();
    m.header().get(key).is_some()
}

pub fn states(evs: &[Ev]) -> Vec<ConnectionState> {
    evs.iter()
        .filter_map(|e| if let Ev::State(s) = e { Some(*s) } else { None })
        .collect()
}

pub fn d(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

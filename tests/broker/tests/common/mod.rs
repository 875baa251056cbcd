//! Raw-frame test client: frames are built with amps-core's `Command`/`FrameWriter` and read with
//! `split_frame`/`Message::parse`. Every wait is on an explicit event (a frame, a close), with a
//! generous timeout only as a failure guard; absence is proven with a `flush` barrier.
#![allow(dead_code, unreachable_pub)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use amps_broker::{Config, ServerHandle};
use amps_core::codec::{AckType, Command, Message, Scratch, split_frame};
use serde_json::Value;

/// Failure guard for every wait.
pub const GUARD: Duration = Duration::from_secs(10);

pub fn broker() -> ServerHandle {
    broker_with(Config::default())
}

pub fn broker_with(cfg: Config) -> ServerHandle {
    ServerHandle::start_blocking(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// One received frame, owned.
#[derive(Clone)]
pub struct Frame {
    pub body: Vec<u8>,
    pub hlen: usize,
    pub json: Value,
}

impl Frame {
    fn from_body(body: Vec<u8>) -> Frame {
        let mut scratch = vec![0u8; body.len()];
        let (hlen, json) = {
            let m = Message::parse(&body, &mut Scratch::new(&mut scratch))
                .unwrap_or_else(|e| panic!("broker sent an undecodable frame: {e}"));
            let raw = m.header().raw();
            (raw.len(), serde_json::from_str(raw).unwrap())
        };
        Frame { body, hlen, json }
    }
    /// Parse again with amps-core and look at it.
    pub fn with<R>(&self, f: impl FnOnce(&Message<'_>) -> R) -> R {
        let mut scratch = vec![0u8; self.body.len()];
        let m = Message::parse(&self.body, &mut Scratch::new(&mut scratch)).unwrap();
        f(&m)
    }
    pub fn c(&self) -> &str {
        self.json["c"].as_str().unwrap_or("")
    }
    pub fn s(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Value::as_str)
    }
    pub fn n(&self, key: &str) -> Option<u64> {
        self.json.get(key).and_then(Value::as_u64)
    }
    pub fn header(&self) -> &str {
        std::str::from_utf8(&self.body[..self.hlen]).unwrap()
    }
    pub fn data(&self) -> &[u8] {
        &self.body[self.hlen..]
    }
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
    pub fn is_ack(&self, a: &str) -> bool {
        self.c() == "ack" && self.s("a") == Some(a)
    }
    pub fn ok(&self) -> bool {
        self.s("status") == Some("success")
    }
    pub fn reason(&self) -> Option<&str> {
        self.s("reason")
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.body))
    }
}

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    next_cid: u64,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).unwrap())
    }

    /// A client over an already connected socket.
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(GUARD)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
            next_cid: 1000,
        }
    }

    /// Connect and log on as `name`, asserting success.
    pub fn logon(addr: SocketAddr, name: &str) -> Client {
        let mut c = Client::connect(addr);
        let ack = c.request(&Command::logon(name).command_id("L"));
        assert!(ack.ok(), "logon failed: {ack:?}");
        c
    }

    pub fn send(&mut self, cmd: &Command<'_>) {
        let bytes = cmd.to_vec().unwrap();
        self.send_raw(&bytes);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Send a frame made of a header text and a payload.
    pub fn send_frame(&mut self, header: &str, payload: &[u8]) {
        let len = (header.len() + payload.len()) as u32;
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(payload);
        self.send_raw(&v);
    }

    /// The next frame; panics after the guard or on close.
    pub fn recv(&mut self) -> Frame {
        self.try_recv()
            .unwrap_or_else(|| panic!("connection closed while waiting for a frame"))
    }

    /// The next frame, or `None` when the broker closed the connection.
    pub fn try_recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((body, used)) = split_frame(&self.buf, u32::MAX).unwrap() {
                let body = body.to_vec();
                self.buf.drain(..used);
                return Some(Frame::from_body(body));
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("no frame within the guard: {e}"),
            }
        }
    }

    /// Receive until `pred` holds; returns the frames before it and the matching one.
    pub fn recv_until(&mut self, pred: impl Fn(&Frame) -> bool) -> (Vec<Frame>, Frame) {
        let mut before = Vec::new();
        loop {
            let f = self.recv();
            if pred(&f) {
                return (before, f);
            }
            before.push(f);
        }
    }

    /// Send `cmd` (with a cid if it has none, requesting processed) and return its processed
    /// ack, asserting nothing else arrived before it.
    pub fn request(&mut self, cmd: &Command<'_>) -> Frame {
        let cid = cmd
            .command_id
            .map(str::to_owned)
            .unwrap_or_else(|| self.cid());
        let cmd = cmd.command_id(&cid).ack(AckType::Processed);
        self.send(&cmd);
        let f = self.recv();
        assert!(
            f.is_ack("processed") && f.s("cid") == Some(cid.as_str()),
            "expected the processed ack of {cid}, got {f:?}"
        );
        f
    }

    pub fn cid(&mut self) -> String {
        self.next_cid += 1;
        self.next_cid.to_string()
    }

    /// Everything the broker sends before the `completed` ack of a flush: proves absence of
    /// anything else without sleeping.
    pub fn drain(&mut self) -> Vec<Frame> {
        let cid = self.cid();
        self.send(&Command::flush().command_id(&cid));
        let (before, _) =
            self.recv_until(|f| f.is_ack("completed") && f.s("cid") == Some(cid.as_str()));
        before
    }

    /// Assert the broker closes the connection (after any frames, which are returned).
    pub fn expect_close(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.try_recv() {
            frames.push(f);
            assert!(frames.len() < 10_000, "connection not closed");
        }
        frames
    }

    pub fn publish(&mut self, topic: &str, data: &str) {
        self.send(&Command::publish(topic, data.as_bytes()));
    }

    pub fn subscribe(&mut self, topic: &str, sub_id: &str, filter: Option<&str>) -> Frame {
        let mut c = Command::subscribe(topic).sub_id(sub_id);
        if let Some(f) = filter {
            c = c.filter(f);
        }
        self.request(&c)
    }
}

/// A frame's bytes exactly as docs/protocol.md §18 writes them: prefix from the hex length.
pub fn vector(hex_len: &str, text: &str) -> Vec<u8> {
    let len = u32::from_str_radix(hex_len, 16).unwrap();
    assert_eq!(len as usize, text.len(), "vector length");
    let mut v = len.to_be_bytes().to_vec();
    v.extend_from_slice(text.as_bytes());
    v
}

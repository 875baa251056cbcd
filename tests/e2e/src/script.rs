//! A scripted server for the hostile-server suite: a loopback listener whose every accepted
//! connection runs the test's script, a plain function that reads and writes frames as it
//! likes (lying, stalling, trickling, flooding, resetting). Reading waits at most the guard,
//! so a script never outlives its test by much; [`Script::hold`] parks a script until the
//! test releases it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use amps_core::codec::{Message, RawValue, Scratch};

use crate::GUARD;

/// One frame as the server read it.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Header and payload, without the length prefix.
    pub bytes: Vec<u8>,
}

impl Frame {
    /// The text of header field `key` (numbers as written), if present.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut scratch = vec![0u8; self.bytes.len()];
        let m = Message::parse(&self.bytes, &mut Scratch::new(&mut scratch)).ok()?;
        match m.header().get(key)? {
            RawValue::Str { raw, .. } => Some(raw.to_string()),
            RawValue::Num(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The command (`c`).
    pub fn command(&self) -> String {
        self.get("c").unwrap_or_default()
    }
}

/// The test's side of the scripts: releases held scripts when dropped.
#[derive(Clone, Default)]
struct Release(Arc<(Mutex<bool>, Condvar)>);

/// One accepted connection, as its script sees it.
pub struct Script {
    stream: TcpStream,
    release: Release,
}

impl Script {
    /// The next frame from the client; `None` when it closed (or nothing came within the
    /// guard).
    pub fn read_frame(&mut self) -> Option<Frame> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut bytes = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut bytes).ok()?;
        Some(Frame { bytes })
    }

    /// Frames until one with command `c` (others are skipped); `None` when the client closed.
    pub fn expect(&mut self, c: &str) -> Option<Frame> {
        loop {
            let f = self.read_frame()?;
            if f.command() == c {
                return Some(f);
            }
        }
    }

    /// Send one frame: `header` (JSON text) then `payload`.
    pub fn send(&mut self, header: &str, payload: &[u8]) -> io::Result<()> {
        let mut wire = ((header.len() + payload.len()) as u32)
            .to_be_bytes()
            .to_vec();
        wire.extend_from_slice(header.as_bytes());
        wire.extend_from_slice(payload);
        self.stream.write_all(&wire)
    }

    /// Send bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Answer a command with an ack.
    pub fn ack(&mut self, to: &Frame, ack: &str, status: &str) -> io::Result<()> {
        let cid = to.get("cid").unwrap_or_default();
        self.send(
            &format!(r#"{{"c":"ack","cid":"{cid}","a":"{ack}","status":"{status}"}}"#),
            b"",
        )
    }

    /// Read the logon and accept it. `None` if the client closed first.
    pub fn accept_logon(&mut self) -> Option<Frame> {
        let f = self.expect("logon")?;
        let cid = f.get("cid").unwrap_or_default();
        let name = f.get("client_name").unwrap_or_default();
        self.send(
            &format!(
                r#"{{"c":"ack","cid":"{cid}","a":"processed","status":"success","client_name":"{name}","version":"5.3.5.0"}}"#
            ),
            b"",
        )
        .ok()?;
        Some(f)
    }

    /// Read until the client closes the connection (or the guard passes).
    pub fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while matches!(self.stream.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Wait, reading nothing, until the test ends (the server is dropped).
    pub fn hold(&self) {
        let (m, cv) = &*self.release.0;
        let mut released = m.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
    }

    /// End the connection with a reset (RST) instead of an orderly close.
    pub fn reset(self) {
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
    }

    /// Limit how long one write may block (a client that stopped reading).
    pub fn set_write_timeout(&self, t: Duration) {
        self.stream.set_write_timeout(Some(t)).unwrap();
    }
}

/// A listener running `script` on every connection, each on its own thread.
pub struct ScriptServer {
    addr: SocketAddr,
    release: Release,
}

impl ScriptServer {
    pub fn start(script: impl Fn(Script) + Send + Sync + 'static) -> ScriptServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let release = Release::default();
        let script = Arc::new(script);
        let rel = release.clone();
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(stream) = stream else { return };
                if *rel.0.0.lock().unwrap() {
                    return;
                }
                stream.set_read_timeout(Some(GUARD)).unwrap();
                let script = script.clone();
                let release = rel.clone();
                std::thread::spawn(move || script(Script { stream, release }));
            }
        });
        ScriptServer { addr, release }
    }

    /// The connection string of this server.
    pub fn uri(&self) -> String {
        format!("tcp://{}/amps/json", self.addr)
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let (m, cv) = &*self.release.0;
        *m.lock().unwrap() = true;
        cv.notify_all();
        // Wake the accept loop so it ends.
        let _ = TcpStream::connect(self.addr);
    }
}

//! Shared by the end-to-end tests: a broker on loopback, the `amps` binary as a child
//! process with a deadline, and a library client to check what the binary did.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use amps_broker::config::{ConfDuration, QueueTopic};
use amps_broker::{Config, ServerHandle};

/// A test never waits longer than this for the binary.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The default broker topics (SOW `orders` keyed by /id, logged `events`, queue `jobs`) plus a
/// queue `work` that allows a backlog of 100.
pub fn config() -> Config {
    let mut c = Config::default();
    c.queues.push(QueueTopic {
        topic: "work".into(),
        lease_period: ConfDuration(amps::core::Duration::from_secs(60)),
        max_backlog: 100,
        ..QueueTopic::default()
    });
    c
}

/// A broker on 127.0.0.1 with [`config`].
pub fn broker() -> ServerHandle {
    broker_with(config())
}

/// A broker on 127.0.0.1 with `config`.
pub fn broker_with(config: Config) -> ServerHandle {
    ServerHandle::start_blocking(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// `host:port` of `b`, as `-server` takes it.
pub fn server(b: &ServerHandle) -> String {
    b.local_addr().to_string()
}

/// The `amps` binary, with no connection string from the environment.
pub fn amps(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_amps"));
    c.args(args).env_remove("AMPS_URI");
    c
}

/// What a finished run of the binary left.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Standard output, one entry per line.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run the binary with `args` (and `stdin` as its input) to completion, at most [`DEADLINE`].
pub fn run_with_input(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = amps(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let out = wait(child);
    writer.join().unwrap();
    out
}

/// Run the binary with `args` and no input.
pub fn run(args: &[&str]) -> Run {
    run_with_input(args, b"")
}

/// Wait for `child` to exit, at most [`DEADLINE`] (then kill it and fail).
pub fn wait(child: Child) -> Run {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => finish(out.unwrap()),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("amps (pid {pid}) did not finish within {DEADLINE:?}");
        }
    }
}

/// A running binary whose standard output and standard error are read line by line.
pub struct Running {
    pub child: Child,
    pub out: mpsc::Receiver<String>,
    pub err: mpsc::Receiver<String>,
    /// Every stderr line seen so far.
    pub err_seen: Vec<String>,
}

fn lines_of(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    /// Start the binary with `args`.
    pub fn start(args: &[&str]) -> Running {
        let mut child = amps(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        let err = lines_of(child.stderr.take().unwrap());
        Running {
            child,
            out,
            err,
            err_seen: Vec::new(),
        }
    }

    /// Wait for a stderr line containing `text` (the readiness line of subscriptions).
    pub fn wait_stderr(&mut self, text: &str) {
        loop {
            match self.err.recv_timeout(DEADLINE) {
                Ok(line) => {
                    let hit = line.contains(text);
                    self.err_seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("no `{text}` on stderr; saw {:?}", self.err_seen),
            }
        }
    }

    /// The next stdout line.
    pub fn line(&mut self) -> String {
        self.out
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no output line; stderr: {:?}", self.err_seen))
    }

    /// The next `n` stdout lines.
    pub fn lines(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.line()).collect()
    }

    /// Send SIGINT, as Ctrl-C does.
    #[cfg(unix)]
    pub fn interrupt(&self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT failed");
    }

    /// Wait for the exit; the rest of stdout and stderr.
    pub fn finish(mut self) -> Run {
        let pid = self.child.id();
        let (tx, rx) = mpsc::channel();
        let mut child = self.child;
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(DEADLINE) {
            Ok(s) => s.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("amps (pid {pid}) did not exit; stderr: {:?}", self.err_seen);
            }
        };
        let stdout: Vec<String> = self.out.iter().collect();
        self.err_seen.extend(self.err.iter());
        Run {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join("\n"),
            stderr: self.err_seen.join("\n"),
        }
    }
}

/// A logged-on library client (to publish test data and check what the binary sent).
pub fn client(b: &ServerHandle, name: &str) -> amps::blocking::Client {
    let c = amps::blocking::Client::new(name).unwrap();
    c.connect(&format!("tcp://{}/amps/json", b.local_addr()))
        .unwrap();
    c.logon().unwrap();
    c
}

/// Write `n` records of exactly `size` bytes (JSON with an `id` and padding) to `path`.
pub fn write_records(path: &Path, n: usize, size: usize) {
    let mut text = Vec::with_capacity(n * (size + 1));
    for i in 0..n {
        let head = format!(r#"{{"id":{i},"pad":""#);
        let pad = size - head.len() - 2;
        text.extend_from_slice(head.as_bytes());
        text.extend(std::iter::repeat_n(b'x', pad));
        text.extend_from_slice(b"\"}\n");
    }
    std::fs::write(path, text).unwrap();
}

//! The tokio TCP front end: one task owns the [`Engine`]; each connection has a reader task and
//! a writer task. Output is written in batches: while a write is in flight the engine keeps
//! accumulating, and the next write takes everything at once, so a fast subscriber gets large
//! writes and a slow one grows the engine's buffer until the slow-consumer limits close it (the
//! engine counts a batch until its write completes).
//!
//! What one client may cost is bounded by the configuration's [`crate::config::Limits`]: past
//! `max_connections` a new connection is closed at once (a FIN, nothing sent); bytes read and
//! not yet processed are bounded by `input_queue_bytes`; regex topics and filters are compiled
//! on tokio's blocking pool (`compile_threads` at a time) while the engine task goes on with
//! every other connection; the connection that waits for its pattern is not read meanwhile.
//! [`ServerHandle::stats`] reports the accounted figures.

mod control;
mod io;
mod tasks;

use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;

use amps_core::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::engine::{Engine, Stats};
use crate::faults::Faults;

use io::{Clock, Ctl, EngineTask};

/// Starts brokers.
pub struct Server;

impl Server {
    /// Bind `listen` and serve `config` on the current tokio runtime (multi-threaded or not).
    pub async fn start(config: Config, listen: SocketAddr) -> std::io::Result<ServerHandle> {
        Server::start_with_clock(config, listen, Clock::System).await
    }

    /// As [`Server::start`], with a manual clock that starts at `start` and moves only with
    /// [`ServerHandle::advance_clock`]: tests of timeouts need not wait.
    pub async fn start_manual_clock(
        config: Config,
        listen: SocketAddr,
        start: Instant,
    ) -> std::io::Result<ServerHandle> {
        Server::start_with_clock(config, listen, Clock::Manual(start)).await
    }

    async fn start_with_clock(
        config: Config,
        listen: SocketAddr,
        clock: Clock,
    ) -> std::io::Result<ServerHandle> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (data_tx, data_rx) = mpsc::channel(1024);
        let task = EngineTask::new(Engine::new(config), ctl_tx.clone(), data_tx, clock);
        let accept_ctl = ctl_tx.clone();
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        if accept_ctl.send(Ctl::Accept(stream)).is_err() {
                            break;
                        }
                    }
                    // Out of descriptors or a connection reset before accept: keep serving.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        });
        tokio::spawn(task.run(ctl_rx, data_rx, accept.abort_handle()));
        Ok(ServerHandle {
            addr,
            ctl: ctl_tx,
            handle: Handle::current(),
            runtime: None,
            owner: true,
        })
    }
}

/// A running broker. Dropping it shuts the broker down.
pub struct ServerHandle {
    addr: SocketAddr,
    ctl: mpsc::UnboundedSender<Ctl>,
    handle: Handle,
    runtime: Option<Runtime>,
    owner: bool,
}

impl ServerHandle {
    /// Start a broker on its own two-thread runtime (for synchronous tests and the binary).
    pub fn start_blocking(config: Config, listen: SocketAddr) -> std::io::Result<ServerHandle> {
        ServerHandle::start_blocking_with(config, listen, Clock::System)
    }

    /// As [`ServerHandle::start_blocking`], with a manual clock that starts at `start` and
    /// moves only with [`ServerHandle::advance_clock`].
    pub fn start_blocking_manual_clock(
        config: Config,
        listen: SocketAddr,
        start: Instant,
    ) -> std::io::Result<ServerHandle> {
        ServerHandle::start_blocking_with(config, listen, Clock::Manual(start))
    }

    fn start_blocking_with(
        config: Config,
        listen: SocketAddr,
        clock: Clock,
    ) -> std::io::Result<ServerHandle> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("amps-broker")
            .enable_all()
            .build()?;
        let mut h = rt.block_on(Server::start_with_clock(config, listen, clock))?;
        h.runtime = Some(rt);
        Ok(h)
    }

    /// Move a manual clock forward by `by` and run every timer that became due (logon and
    /// idle timeouts, heartbeats, leases); returns once the engine has done so and handed the
    /// resulting closes to the connections' tasks. `false` (and nothing done) when the broker
    /// runs on the system clock. Blocks: call it from synchronous code.
    pub fn advance_clock(&self, by: Duration) -> bool {
        let (tx, rx) = std_mpsc::channel();
        if self.ctl.send(Ctl::Advance(by, tx)).is_err() {
            return false;
        }
        rx.recv().unwrap_or(false)
    }

    /// The accounted figures ([`Stats`]), including the server's own (refused connections,
    /// input queue). `None` once the broker is shut down. Blocks: call it from synchronous
    /// code.
    pub fn stats(&self) -> Option<Stats> {
        let (tx, rx) = std_mpsc::channel();
        self.ctl.send(Ctl::Stats(tx)).ok()?;
        rx.recv().ok()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Change the fault hooks. Applied by the engine task before any input that arrives later
    /// (so a fault set before a client writes affects that write).
    pub fn faults(&self, f: impl FnOnce(&mut Faults) + Send + 'static) {
        let _ = self
            .ctl
            .send(Ctl::Engine(Box::new(move |e, _| f(e.faults()))));
    }

    /// Drop every connection, keeping the SOW, transaction log, queues and sequences.
    pub fn restart(&self) {
        let _ = self
            .ctl
            .send(Ctl::Engine(Box::new(|e, now| e.restart(now))));
    }

    /// Close every connection now.
    pub fn kill_connections(&self) {
        self.faults(Faults::close_all);
    }

    /// Stop serving: the listener and every connection close.
    pub fn shutdown(&self) {
        let _ = self.ctl.send(Ctl::Shutdown);
    }

    /// Run `f` on the engine and return its result. Blocks the calling thread: call it from
    /// synchronous code (tests), never from inside the broker's runtime.
    pub fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = std_mpsc::channel();
        let sent = self.ctl.send(Ctl::Engine(Box::new(move |e, _| {
            let _ = tx.send(f(e));
        })));
        sent.ok()?;
        rx.recv().ok()
    }

    /// Apply one control-port command (see the crate docs): `restart`, or a fault line for
    /// [`Faults::apply_command`].
    pub fn control(&self, line: &str) -> Result<(), String> {
        match line.trim() {
            "restart" => {
                self.restart();
                Ok(())
            }
            "" => Err("empty command".into()),
            other => {
                // Validate here so the caller gets the error; apply in the engine task.
                Faults::default().apply_command(other)?;
                let line = other.to_owned();
                self.faults(move |f| {
                    let _ = f.apply_command(&line);
                });
                Ok(())
            }
        }
    }

    /// Listen for control connections on `addr` (one command per line, `ok` / `error: …`).
    pub fn listen_control(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let ctl = self.ctl.clone();
        let listener = match &self.runtime {
            Some(rt) => rt.block_on(TcpListener::bind(addr))?,
            None => {
                let std = std::net::TcpListener::bind(addr)?;
                std.set_nonblocking(true)?;
                let _guard = self.handle.enter();
                TcpListener::from_std(std)?
            }
        };
        let bound = listener.local_addr()?;
        let me = ServerHandle {
            addr: self.addr,
            ctl,
            handle: self.handle.clone(),
            runtime: None,
            owner: false,
        };
        self.handle.spawn(control::serve(listener, me));
        Ok(bound)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.owner {
            let _ = self.ctl.send(Ctl::Shutdown);
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

//! Opening a transport: the caller's connect function.
//!
//! The driver asks for a connection whenever the session wants one (the first `connect`, and
//! after every loss, spaced by the session's reconnect policy); how a connection is made is the
//! application's business: an embassy-net `TcpSocket` connecting to an endpoint, a TLS session
//! over one, a UART bridge, a tokio socket in tests.

use core::future::Future;

use amps_core::session::ConnectRequest;
use embedded_io_async::{Read, Write};

/// Opens connections to the server.
///
/// A connection may borrow the connector (`Conn<'c>`), so a connector can own an embassy-net
/// socket and its buffers and hand out `&mut TcpSocket` for each attempt. Closures
/// `FnMut(ConnectRequest) -> impl Future<Output = Result<T, E>>` returning an owned transport
/// are connectors too.
///
/// # Requirements on the transport
///
/// `read` and `write` must be cancel-safe (no bytes consumed or written when the future is
/// dropped before it completes): the driver waits for input, timers and commands at once and
/// drops the read that lost. embassy-net's `TcpSocket` and embedded-io-adapters' tokio
/// wrappers are. A read of 0 bytes means the peer closed the connection. Counts that break
/// the traits' contract (a `write` of 0 bytes, a `read` or `write` claiming more bytes than
/// the buffer) end the connection like an error, with a [`Disconnect`](crate::Disconnect)
/// that names them in [`Stats::last_disconnect`](crate::Stats::last_disconnect).
pub trait Connect {
    /// One open connection.
    type Conn<'c>: Read + Write
    where
        Self: 'c;

    /// Why an attempt failed (only counted and logged: the session's policy decides whether
    /// to try again).
    type Error: core::fmt::Debug;

    /// Open a connection to the server (`req.attempt` counts the attempts of this outage,
    /// from 1). The driver bounds each attempt by `Options::connect_timeout` and drops the
    /// future when it runs out.
    fn connect(
        &mut self,
        req: ConnectRequest,
    ) -> impl Future<Output = Result<Self::Conn<'_>, Self::Error>>;

    /// End a connection before it is dropped: `graceful` when the application asked
    /// (`disconnect`, `close`: end with FIN after what was written), not when the session gave
    /// up on it (heartbeat silence, bad input: a reset is fine). The default just drops it.
    fn close(conn: &mut Self::Conn<'_>, graceful: bool) -> impl Future<Output = ()> {
        let _ = (conn, graceful);
        async {}
    }
}

impl<F, Fut, T, E> Connect for F
where
    F: FnMut(ConnectRequest) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: Read + Write,
    E: core::fmt::Debug,
{
    type Conn<'c>
        = T
    where
        Self: 'c;
    type Error = E;

    fn connect(&mut self, req: ConnectRequest) -> impl Future<Output = Result<T, E>> {
        self(req)
    }
}

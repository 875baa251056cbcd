//! The driver task: the host driver's loop (see `amps_host::Driver`) in one tokio task that
//! owns the socket. It sleeps until the socket is readable or writable, the driver's signal
//! is raised (a command, a publish, room in a full stream) or the driver's next deadline.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use amps_core::uri::{Host, Transport, Uri};
#[cfg(feature = "tls")]
use amps_host::net::server_name;
use amps_host::net::{order_addrs, socket_for, unix_path};
use amps_host::{Driver, Error, ErrorKind, IoRequest, OpenRequest, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;

/// Most bytes read at once (into the session's buffer, which is far larger): a busy
/// connection still moves many frames per system call, while the work of one loop turn
/// (decoding what one read brought, before the writer is polled again) stays bounded and the
/// bytes are still in the cache when the session decodes them.
const READ_MAX: usize = 256 * 1024;

/// Start the driver task on the current runtime.
pub(crate) fn spawn(driver: Driver) -> Result<()> {
    let rt = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::new(
            ErrorKind::Usage,
            "amps-tokio clients must first be used from within a tokio runtime",
        )
    })?;
    rt.spawn(run(driver));
    Ok(())
}

/// An open connection to a server.
enum Stream {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// What the loop found ready when it woke.
#[derive(Default)]
struct Ready {
    /// Bytes the socket took.
    wrote: Option<usize>,
    /// Bytes read into the driver's input buffer.
    read: Option<usize>,
    /// The connection ended (`None`: by the peer).
    closed: Option<Option<io::Error>>,
}

async fn run(mut driver: Driver) {
    let signal = driver.signal();
    let mut io: Option<Stream> = None;
    let mut sleep = Box::pin(tokio::time::sleep(std::time::Duration::ZERO));
    loop {
        // Yield to the runtime when this task used its budget.
        tokio::task::consume_budget().await;
        driver.step();
        while let Some(req) = driver.poll_io() {
            io = None;
            if let IoRequest::Open(r) = req {
                let opened = open(&r).await.map(|s| io = Some(s));
                driver.handle_opened(opened);
            }
        }
        if driver.is_finished() {
            return;
        }
        // The socket reads straight into the session's receive buffer (no copy in between);
        // none while it is full (outputs wait for room: TCP pushes back).
        let want_read = io.is_some() && driver.wants_input() && !driver.input_buffer().is_empty();
        let busy = driver.has_work();
        let deadline = driver.deadline();
        if let Some(d) = deadline {
            sleep.as_mut().reset(d.into());
        }
        // Every source is polled each time (a busy writer must not starve the reader).
        let ready = poll_fn(|cx| {
            let mut r = Ready::default();
            let raised = signal.poll_raised(cx).is_ready();
            if let Some(s) = io.as_mut() {
                let out = driver.output();
                if !out.is_empty() {
                    match Pin::new(&mut *s).poll_write(cx, out) {
                        Poll::Ready(Ok(0)) => {
                            r.closed = Some(Some(io::ErrorKind::WriteZero.into()));
                        }
                        Poll::Ready(Ok(n)) => r.wrote = Some(n),
                        Poll::Ready(Err(e)) => r.closed = Some(Some(e)),
                        Poll::Pending => {}
                    }
                } else if let Poll::Ready(Err(e)) = Pin::new(&mut *s).poll_flush(cx) {
                    r.closed = Some(Some(e));
                }
                if want_read && r.closed.is_none() {
                    // Lent again: the same buffer as checked above. Never read into an empty
                    // one: that would look like the end of the stream.
                    let into = driver.input_buffer();
                    let cap = into.len().min(READ_MAX);
                    if let Some(into) = into.get_mut(..cap).filter(|b| !b.is_empty()) {
                        let mut rb = ReadBuf::new(into);
                        match Pin::new(&mut *s).poll_read(cx, &mut rb) {
                            Poll::Ready(Ok(())) => match rb.filled().len() {
                                0 => r.closed = Some(None),
                                n => r.read = Some(n),
                            },
                            Poll::Ready(Err(e)) => r.closed = Some(Some(e)),
                            Poll::Pending => {}
                        }
                    }
                }
            }
            let timer = deadline.is_some() && sleep.as_mut().poll(cx).is_ready();
            let any = r.wrote.is_some() || r.read.is_some() || r.closed.is_some();
            if raised || busy || timer || any {
                Poll::Ready(r)
            } else {
                Poll::Pending
            }
        })
        .await;
        if let Some(n) = ready.wrote {
            driver.handle_written(n);
        }
        if let Some(n) = ready.read {
            // Before anything else may touch the receive buffer.
            driver.input_received(n);
        }
        if let Some(e) = ready.closed {
            // Everything read before the end is in the session already: it still delivers
            // the frames it holds.
            io = None;
            driver.handle_closed(e);
        }
    }
}

/// Open what `req` names, within its time limit (TLS handshake included).
async fn open(req: &OpenRequest) -> Result<Stream> {
    match tokio::time::timeout(req.timeout, open_inner(req)).await {
        Ok(r) => r,
        Err(_) => Err(Error::connect(
            "the server",
            io::Error::new(io::ErrorKind::TimedOut, "no connection within the limit"),
        )),
    }
}

async fn open_inner(req: &OpenRequest) -> Result<Stream> {
    let uri = Uri::parse(&req.uri)?;
    let shown = uri.to_string();
    match uri.transport {
        Transport::Tcp => Ok(Stream::Tcp(connect_tcp(&uri, &shown).await?)),
        #[cfg(feature = "tls")]
        Transport::Tcps => {
            let config = req.tls.rustls_config()?;
            let name = server_name(&uri.host)?;
            let tcp = connect_tcp(&uri, &shown).await?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| Error::connect(&shown, e))?;
            Ok(Stream::Tls(Box::new(tls)))
        }
        #[cfg(unix)]
        Transport::Unix => {
            let path = unix_path(&uri)?;
            let s = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| Error::connect(&shown, e))?;
            Ok(Stream::Unix(s))
        }
        _ => Err(Error::new(
            ErrorKind::TransportType,
            "this transport is not available here",
        )),
    }
}

/// Connect to the first address of the URI's host that accepts, with its transport options.
async fn connect_tcp(uri: &Uri<'_>, shown: &str) -> Result<TcpStream> {
    let mut addrs: Vec<std::net::SocketAddr> = match uri.host {
        Host::Ipv4(a) => vec![(a, uri.port).into()],
        Host::Ipv6(a) => vec![(a, uri.port).into()],
        Host::Name(n) => tokio::net::lookup_host((n, uri.port))
            .await
            .map_err(|e| Error::connect(shown, e))?
            .collect(),
    };
    order_addrs(&mut addrs, uri.options.ip_protocol_prefer);
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host resolves to no address");
    for addr in addrs {
        let attempt = async {
            let s = socket_for(addr, &uri.options)?;
            s.set_nonblocking(true)?;
            TcpSocket::from_std_stream(s.into()).connect(addr).await
        };
        match attempt.await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(Error::connect(shown, last))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

//! Clients with options: `ws+unix:` URLs, proxies (HTTP CONNECT, SOCKS5,
//! or from the environment), redirects, a handshake timeout per attempt,
//! the body of an unexpected response, and a reconnect iterator.
//!
//! Every decision (URL rules, which headers survive a redirect, which proxy,
//! the proxy handshakes, the backoff) is made by `ws-proto`
//! ([`ClientPlan`], [`ProxyHandshake`](ws_proto::ProxyHandshake),
//! [`Backoff`]); this module opens sockets and moves bytes.
//!
//! ```no_run
//! # fn demo() -> Result<(), ws_blocking::Error> {
//! use ws_blocking::client::{connect_with_options, ClientOptions, Proxy, ProxySetting};
//! use ws_blocking::Message;
//! let options = ClientOptions::new()
//!     .protocols(["chat"])
//!     .proxy(ProxySetting::Explicit(Proxy::parse("http://127.0.0.1:3128").unwrap()))
//!     .follow_redirects(true);
//! let (mut ws, _response) = connect_with_options("ws://example.com/chat", options)?;
//! ws.send(Message::text("hello"))?;
//! # Ok(()) }
//! ```
//!
//! [`WebSocket::split`] works on a `WebSocket<ClientStream>` over TCP (also
//! through a proxy) or a Unix socket; over TLS the halves fail with
//! [`io::ErrorKind::Unsupported`] (one TLS session cannot be driven from
//! two threads).

use crate::{is_timeout, seed, Transport, WebSocket};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use ws_proto::{
    extend_unexpected_body, http, unexpected_body_remaining, ClientHandshake, Error,
    HandshakeError, Transmit,
};

pub use ws_proto::{
    Backoff, ClientOptions, ClientPlan, ClientUrl, Proxy, ProxyProtocol, ProxySetting, Redirect,
};

/// The stream under a client [`WebSocket`]: TCP (also through a proxy's
/// tunnel), a Unix domain socket, or TLS over either (feature `rustls`).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientStream {
    /// A TCP connection, to the server or to the proxy that tunnels to it.
    Tcp(TcpStream),
    /// A Unix domain socket (`ws+unix:` URLs).
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
    /// TLS (`wss://`) over one of the others. (In a mutex only so that the
    /// stream is `Sync` like the others; reads and writes take it through
    /// `&mut` without locking.)
    #[cfg(feature = "rustls")]
    Tls(Box<std::sync::Mutex<crate::tls::ClientTlsStream<ClientStream>>>),
}

#[cfg(feature = "rustls")]
fn tls_mut(
    m: &mut std::sync::Mutex<crate::tls::ClientTlsStream<ClientStream>>,
) -> &mut crate::tls::ClientTlsStream<ClientStream> {
    m.get_mut().unwrap_or_else(|e| e.into_inner())
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            ClientStream::Tcp($s) => $e,
            #[cfg(unix)]
            ClientStream::Unix($s) => $e,
            #[cfg(feature = "rustls")]
            ClientStream::Tls(m) => {
                let $s = tls_mut(m);
                $e
            }
        }
    };
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

/// Reads and writes through a shared reference, so that
/// [`WebSocket::split`] works on TCP and Unix streams. A TLS session cannot
/// be driven from two threads: through `&ClientStream` it fails with
/// [`io::ErrorKind::Unsupported`].
impl Read for &ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match *self {
            ClientStream::Tcp(s) => (&*s).read(buf),
            #[cfg(unix)]
            ClientStream::Unix(s) => (&*s).read(buf),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(_) => Err(no_shared_tls()),
        }
    }
}

impl Write for &ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match *self {
            ClientStream::Tcp(s) => (&*s).write(buf),
            #[cfg(unix)]
            ClientStream::Unix(s) => (&*s).write(buf),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(_) => Err(no_shared_tls()),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match *self {
            ClientStream::Tcp(s) => (&*s).write_vectored(bufs),
            #[cfg(unix)]
            ClientStream::Unix(s) => (&*s).write_vectored(bufs),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(_) => Err(no_shared_tls()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match *self {
            ClientStream::Tcp(s) => (&*s).flush(),
            #[cfg(unix)]
            ClientStream::Unix(s) => (&*s).flush(),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(_) => Err(no_shared_tls()),
        }
    }
}

#[cfg(feature = "rustls")]
fn no_shared_tls() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a TLS WebSocket cannot be split",
    )
}

impl Transport for ClientStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => Transport::set_read_timeout(s, timeout),
            #[cfg(unix)]
            ClientStream::Unix(s) => Transport::set_read_timeout(s, timeout),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(m) => {
                Transport::set_read_timeout(&*m.lock().unwrap_or_else(|e| e.into_inner()), timeout)
            }
        }
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => Transport::set_write_timeout(s, timeout),
            #[cfg(unix)]
            ClientStream::Unix(s) => Transport::set_write_timeout(s, timeout),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(m) => {
                Transport::set_write_timeout(&*m.lock().unwrap_or_else(|e| e.into_inner()), timeout)
            }
        }
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        match self {
            ClientStream::Tcp(s) => Transport::write_timeout(s),
            #[cfg(unix)]
            ClientStream::Unix(s) => Transport::write_timeout(s),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(m) => {
                Transport::write_timeout(&*m.lock().unwrap_or_else(|e| e.into_inner()))
            }
        }
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => Transport::shutdown(s, how),
            #[cfg(unix)]
            ClientStream::Unix(s) => Transport::shutdown(s, how),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(m) => {
                Transport::shutdown(&*m.lock().unwrap_or_else(|e| e.into_inner()), how)
            }
        }
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => Transport::set_nonblocking(s, nonblocking),
            #[cfg(unix)]
            ClientStream::Unix(s) => Transport::set_nonblocking(s, nonblocking),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(m) => Transport::set_nonblocking(
                &*m.lock().unwrap_or_else(|e| e.into_inner()),
                nonblocking,
            ),
        }
    }
}

/// Connects with options (see [`ClientOptions`]): `ws://`, `ws+unix:`,
/// and `wss://` with the `rustls` feature (webpki roots; use
/// `Connector::tls_config` for others). Returns the socket and the
/// server's 101 response. Errors as in `ws_tokio::client`:
/// [`HandshakeError::UnexpectedStatus`] carries the status, headers and up
/// to [`ClientOptions::max_response_body`] bytes of body.
pub fn connect_with_options(
    url: &str,
    options: ClientOptions,
) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
    Connector::new(options).connect(url)
}

/// Client options plus the TLS configuration: connects any number of
/// times (and makes [`Reconnect`] iterators).
#[derive(Debug, Clone)]
pub struct Connector {
    options: ClientOptions,
    #[cfg(feature = "rustls")]
    tls: Option<std::sync::Arc<crate::tls::ClientConfig>>,
}

impl Connector {
    /// A connector with these options.
    pub fn new(options: ClientOptions) -> Self {
        Connector {
            options,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// The TLS client configuration for `wss://` (default: the webpki
    /// roots, see `tls::ClientTls`).
    #[cfg(feature = "rustls")]
    pub fn tls_config(mut self, config: std::sync::Arc<crate::tls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Connects to `url`, following redirects if the options say so.
    pub fn connect(
        &self,
        url: &str,
    ) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
        let mut plan = ClientPlan::new(url, self.options.clone())?;
        loop {
            match self.attempt(&plan) {
                Ok(done) => return Ok(done),
                Err(e) => plan.handle_failure(e)?,
            }
        }
    }

    /// A reconnect iterator for `url` (see [`Reconnect`]).
    pub fn reconnect(self, url: impl Into<String>) -> Reconnect {
        Reconnect {
            connector: self,
            url: url.into(),
            backoff: Backoff::new(),
            max_failures: None,
            done: false,
        }
    }

    fn attempt(
        &self,
        plan: &ClientPlan,
    ) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
        let url = plan.url();
        let proxy = plan.proxy(|k| std::env::var(k).ok())?;
        let hs = plan.handshake(Instant::now(), seed()?)?;
        let deadline = hs.poll_timeout();
        // Checked by the proxy handshake: no leftover before TLS.
        let (mut stream, leftover) = open(url, proxy.as_ref(), deadline)?;
        if url.is_secure() {
            stream = self.start_tls(stream, url)?;
        }
        handshake(
            stream,
            hs,
            leftover,
            deadline,
            plan.options().response_body_limit(),
        )
    }

    #[cfg(feature = "rustls")]
    fn start_tls(&self, stream: ClientStream, url: &ClientUrl) -> Result<ClientStream, Error> {
        // The hook for wss://: TLS over whatever transport was opened (TCP,
        // a proxy's tunnel, a Unix socket), the URL's host as SNI. The TLS
        // handshake runs with the first write, under the same read
        // deadlines as the WebSocket handshake.
        let config = match &self.tls {
            Some(c) => c.clone(),
            None => crate::tls::webpki_client_config()?,
        };
        let name = crate::tls::server_name(url.host())?;
        let conn = crate::tls::ClientConnection::new(config, name)
            .map_err(|e| Error::from(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        Ok(ClientStream::Tls(Box::new(std::sync::Mutex::new(
            crate::tls::TlsStream::new(conn, stream),
        ))))
    }

    #[cfg(not(feature = "rustls"))]
    fn start_tls(&self, _stream: ClientStream, _url: &ClientUrl) -> Result<ClientStream, Error> {
        Err(Error::Usage(ws_proto::UsageError::InvalidUrl(
            "wss:// needs the `rustls` feature",
        )))
    }
}

/// Reads once, waiting at most until `deadline`; a timeout is
/// [`HandshakeError::Timeout`].
fn read_by<S: Read + Transport>(
    io: &mut S,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> Result<usize, Error> {
    loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HandshakeError::Timeout.into());
                }
                Some(left)
            }
            None => None,
        };
        io.set_read_timeout(timeout)?;
        match io.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Opens the transport to `url`: its Unix socket, TCP to it, or TCP to the
/// proxy and the proxy's tunnel. Returns the bytes the proxy sent after
/// opening the tunnel.
fn open(
    url: &ClientUrl,
    proxy: Option<&Proxy>,
    deadline: Option<Instant>,
) -> Result<(ClientStream, Vec<u8>), Error> {
    if let Some(path) = url.unix_socket() {
        #[cfg(unix)]
        return Ok((
            ClientStream::Unix(std::os::unix::net::UnixStream::connect(path)?),
            Vec::new(),
        ));
        #[cfg(not(unix))]
        {
            let _ = path;
            return Err(ws_proto::UsageError::InvalidUrl("ws+unix: URLs need Unix").into());
        }
    }
    let Some(proxy) = proxy else {
        let tcp = crate::handshake::tcp_connect((url.host(), url.port()), deadline)?;
        tcp.set_nodelay(true)?;
        return Ok((ClientStream::Tcp(tcp), Vec::new()));
    };
    let mut tcp = crate::handshake::tcp_connect((proxy.host(), proxy.port()), deadline)?;
    tcp.set_nodelay(true)?;
    let mut hs = proxy.handshake(url.host(), url.port())?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1024];
    loop {
        out.clear();
        while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
        if !out.is_empty() {
            tcp.write_all(&out)?;
        }
        if hs.is_done() {
            break;
        }
        let n = read_by(&mut tcp, &mut buf, deadline)?;
        if n == 0 {
            return Err(HandshakeError::Proxy("the proxy closed the connection".into()).into());
        }
        hs.handle_input(&buf[..n])?;
    }
    Ok((ClientStream::Tcp(tcp), hs.into_leftover_for(url)?))
}

/// Runs the WebSocket handshake; on a non-101 answer, reads its body
/// (bounded by `limit` and by the deadline) into the error.
fn handshake(
    mut io: ClientStream,
    mut hs: ClientHandshake,
    leftover: Vec<u8>,
    deadline: Option<Instant>,
    limit: usize,
) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
    let mut buf = vec![0u8; 4096];
    let res = (|| -> Result<(), Error> {
        let mut out = Vec::new();
        while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
        io.write_all(&out)?;
        io.flush()?;
        if !leftover.is_empty() && hs.handle_input(&leftover)? {
            return Ok(());
        }
        loop {
            let n = read_by(&mut io, &mut buf, deadline)?;
            if n == 0 {
                return Err(Error::Handshake(HandshakeError::Eof));
            }
            if hs.handle_input(&buf[..n])? {
                return Ok(());
            }
        }
    })();
    match res {
        Ok(()) => {
            io.set_read_timeout(None)?;
            let (resp, conn) = hs.into_connection(Instant::now())?;
            Ok((WebSocket::from_connection(io, conn), resp))
        }
        Err(mut e) => {
            while let Some(want) = unexpected_body_remaining(&mut e, limit) {
                match read_by(&mut io, &mut buf[..want.min(4096)], deadline) {
                    Ok(n) if n > 0 => extend_unexpected_body(&mut e, &buf[..n]),
                    _ => break,
                }
            }
            Err(e)
        }
    }
}

/// Reconnects with exponential backoff and jitter, for long-lived clients
/// (like Python websockets' `for ws in connect(...)`): an iterator whose
/// every item is a new connection. Attempts that fail with a transient
/// error ([`ws_proto::is_transient`]: I/O errors, timeouts, 5xx answers,
/// proxy failures) are retried after sleeping [`Backoff::next_delay`];
/// another error (or [`Reconnect::max_failures`] failures in a row) is
/// yielded once, and then the iterator ends. A success resets the backoff.
///
/// ```no_run
/// use ws_blocking::client::{ClientOptions, Connector};
/// for attempt in Connector::new(ClientOptions::new()).reconnect("ws://127.0.0.1:9001/") {
///     let Ok((mut ws, _)) = attempt else { break };
///     while let Some(Ok(msg)) = ws.recv() {
///         println!("{msg:?}");
///     }
///     // The connection ended: the loop reconnects.
/// }
/// ```
#[derive(Debug)]
pub struct Reconnect {
    connector: Connector,
    url: String,
    backoff: Backoff,
    max_failures: Option<u32>,
    done: bool,
}

impl Reconnect {
    /// The backoff between failed attempts (default [`Backoff::new`]: 1 s
    /// doubling to 60 s, up to half taken off at random).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Gives up (yielding the last error) after this many consecutive
    /// failed attempts; by default it retries forever.
    pub fn max_failures(mut self, n: u32) -> Self {
        self.max_failures = Some(n);
        self
    }

    /// Failed attempts since the last success.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }
}

impl Iterator for Reconnect {
    type Item = Result<(WebSocket<ClientStream>, http::Response<()>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            match self.connector.connect(&self.url) {
                Ok(done) => {
                    self.backoff.reset();
                    return Some(Ok(done));
                }
                Err(e) => {
                    let mut r = [0u8; 8];
                    if let Err(e) = getrandom::getrandom(&mut r) {
                        self.done = true;
                        return Some(Err(io::Error::other(e).into()));
                    }
                    let random = u64::from_le_bytes(r);
                    match self.backoff.retry_after(&e, self.max_failures, random) {
                        Some(delay) => std::thread::sleep(delay),
                        None => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
    }
}

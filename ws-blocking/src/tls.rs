//! TLS (`wss://`) with rustls over blocking streams (feature `rustls`).
//!
//! A WebSocket over TLS is the same [`WebSocket<S>`](crate::WebSocket),
//! with `S` a [`TlsStream`]: a rustls session over a blocking stream (like
//! rustls' `StreamOwned`), plus the [`Transport`] the adapter needs (read timeouts go to
//! the socket; shutting the write half first sends TLS `close_notify`).
//! Configs come from [`ClientTls`] and [`ServerTls`] (shared with the
//! other adapters through `ws-rustls`), which use ring as their crypto
//! provider explicitly: nothing depends on a process-wide default
//! provider.
//!
//! ```no_run
//! # fn demo() -> Result<(), ws_blocking::Error> {
//! use ws_blocking::tls;
//! // Server, from PEM files.
//! let server = tls::ServerTls::from_pem_files("cert.pem", "key.pem")?.build()?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:8443")?;
//! let (tcp, _peer) = ws_blocking::accept_stream(&listener);
//! let mut ws = tls::accept(tcp, server.clone())?;
//! // Client, trusting a private CA besides the webpki roots.
//! let client = tls::ClientTls::new().add_roots_from_pem_file("ca.pem")?.build()?;
//! let request = ws_blocking::http::Request::get("wss://localhost:8443/").body(()).unwrap();
//! let (mut ws, _response) = tls::connect_with(request, Default::default(), client)?;
//! # Ok(()) }
//! ```
//!
//! A TLS WebSocket has no [`split`](crate::WebSocket::split): one TLS
//! session cannot be read and written from two threads at once.
//!
//! # Timeouts
//!
//! [`Config::handshake_timeout`] bounds the TCP connect and the TLS
//! handshake together, and then, again, the WebSocket handshake.
//!
//! The core's timers keep working over TLS: a read that times out inside
//! rustls keeps the partial record for the next read.
//!
//! # Errors
//!
//! A TLS failure (untrusted certificate, wrong host name, a required
//! client certificate missing) is an [`Error::Io`] whose
//! source is a [`rustls::Error`]; [`tls_error`] finds it.

use crate::{is_timeout, Transport, WebSocket};
use std::cell::{Ref, RefCell};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ws_proto::{http, Accept, Config, Error, HandshakeError, Reject, UsageError};

pub use rustls::{ClientConnection, ServerConnection};
pub use ws_rustls::{
    crypto_provider, load_certs, load_private_key, parse_certs, parse_private_key, pki_types,
    rustls, server_name, tls_error, webpki_client_config, ClientConfig, ClientTls, RootCertStore,
    ServerConfig, ServerTls,
};

/// A TLS session over a blocking stream `S`, with the adapter's
/// [`Transport`]. Reads and writes go through `rustls::Stream`.
pub struct TlsStream<C, S> {
    // A `RefCell` only so that `Transport::shutdown(&self)` can send
    // `close_notify`: reads and writes take `&mut self` and use `get_mut`,
    // so no borrow is ever held across calls and none can conflict.
    inner: RefCell<Parts<C, S>>,
}

struct Parts<C, S> {
    conn: C,
    sock: S,
}

/// The client side of a TLS session over `S`.
pub type ClientTlsStream<S> = TlsStream<ClientConnection, S>;

/// The server side of a TLS session over `S`.
pub type ServerTlsStream<S> = TlsStream<ServerConnection, S>;

/// The client's TLS stream over TCP: what [`connect`] returns.
pub type WssStream = ClientTlsStream<TcpStream>;

impl<C, S> std::fmt::Debug for TlsStream<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

impl<C, S> TlsStream<C, S> {
    /// Wraps a rustls session and the stream it runs over.
    pub fn new(session: C, socket: S) -> Self {
        TlsStream {
            inner: RefCell::new(Parts {
                conn: session,
                sock: socket,
            }),
        }
    }

    /// The rustls session: negotiated ALPN, SNI (server side), the peer's
    /// certificates. Drop the guard before using the stream again.
    pub fn session(&self) -> Ref<'_, C> {
        Ref::map(self.inner.borrow(), |s| &s.conn)
    }

    /// The stream under the TLS session.
    pub fn socket(&self) -> Ref<'_, S> {
        Ref::map(self.inner.borrow(), |s| &s.sock)
    }

    /// The session and the stream.
    pub fn into_parts(self) -> (C, S) {
        let s = self.inner.into_inner();
        (s.conn, s.sock)
    }
}

/// Reads never wait to write: unlike `rustls::Stream`, which first writes
/// every TLS record rustls holds (blocking), a read writes them only as far
/// as the socket takes them without waiting ([`Transport::set_nonblocking`];
/// on a socket without it, blocking as before). Those records are what a
/// full socket did not take from `recv`'s answers (see the crate docs), so
/// a peer that floods pings and reads nothing cannot hold a read.
impl<C, S, D> Read for TlsStream<C, S>
where
    C: DerefMut + Deref<Target = rustls::ConnectionCommon<D>>,
    S: Read + Write + Transport,
    D: rustls::SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Parts { conn, sock } = self.inner.get_mut();
        if conn.is_handshaking() {
            return rustls::Stream::new(conn, sock).read(buf);
        }
        push_pending(conn, sock)?;
        loop {
            match conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // No plaintext yet: one read of TLS records (bounded by the
            // socket's read timeout).
            let n = conn.read_tls(sock)?;
            let processed = conn.process_new_packets();
            // An alert, or the answer to a key update.
            push_pending(conn, sock)?;
            if let Err(e) = processed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if n == 0 {
                // The end of the stream, with or without close_notify, as
                // `rustls::Stream` reports it: what is left, then 0.
                return Ok(conn.reader().read(buf).unwrap_or(0));
            }
        }
    }
}

/// On a non-blocking socket, rustls takes no plaintext while its buffer
/// of records the socket did not take is full: `Ok(0)`, which is "would
/// block", not the end of the stream.
fn full_is_would_block(n: usize, empty: bool) -> io::Result<usize> {
    if n == 0 && !empty {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(n)
}

/// Writes the TLS records rustls holds as far as the socket takes them
/// without waiting; blocking on a socket without a non-blocking mode.
fn push_pending<D, S>(conn: &mut rustls::ConnectionCommon<D>, sock: &mut S) -> io::Result<()>
where
    S: Write + Transport,
{
    if !conn.wants_write() {
        return Ok(());
    }
    let blocking = match sock.set_nonblocking(true) {
        Ok(()) => false,
        Err(e) if e.kind() == io::ErrorKind::Unsupported => true,
        Err(e) => return Err(e),
    };
    let r = loop {
        if !conn.wants_write() {
            break Ok(());
        }
        match conn.write_tls(sock) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if !blocking && e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if !blocking {
        sock.set_nonblocking(false)?;
    }
    r
}

impl<C, S, D> Write for TlsStream<C, S>
where
    C: DerefMut + Deref<Target = rustls::ConnectionCommon<D>>,
    S: Read + Write,
    D: rustls::SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Parts { conn, sock } = self.inner.get_mut();
        let n = rustls::Stream::new(conn, sock).write(buf)?;
        full_is_would_block(n, buf.is_empty())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // The adapter hands over its whole queue at once: one TLS record
        // and one write for a burst of frames.
        let Parts { conn, sock } = self.inner.get_mut();
        let n = rustls::Stream::new(conn, sock).write_vectored(bufs)?;
        full_is_would_block(n, bufs.iter().all(|b| b.is_empty()))
    }

    fn flush(&mut self) -> io::Result<()> {
        let Parts { conn, sock } = self.inner.get_mut();
        rustls::Stream::new(conn, sock).flush()
    }
}

impl<C, S, D> Transport for TlsStream<C, S>
where
    C: DerefMut + Deref<Target = rustls::ConnectionCommon<D>>,
    S: Read + Write + Transport,
    D: rustls::SideData,
{
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.borrow().sock.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.borrow().sock.set_write_timeout(timeout)
    }

    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.inner.borrow().sock.write_timeout()
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        // A record the socket does not take at once stays in rustls'
        // buffer and goes out with the next write or flush.
        self.inner.borrow().sock.set_nonblocking(nonblocking)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        if how != Shutdown::Read {
            // Ends the TLS session cleanly before the transport's FIN.
            let Parts { conn, sock } = &mut *inner;
            conn.send_close_notify();
            if how == Shutdown::Both {
                // Giving up on the connection: only what goes out without
                // waiting (the peer may have stopped reading).
                let _ = push_pending(conn, sock);
            } else {
                while conn.wants_write() {
                    if conn.write_tls(sock).is_err() {
                        break;
                    }
                }
            }
            let _ = sock.flush();
        }
        inner.sock.shutdown(how)
    }
}

/// Runs the TLS handshake to its end, each read bounded by `deadline`.
fn handshake<C, S, D>(stream: &mut TlsStream<C, S>, deadline: Option<Instant>) -> Result<(), Error>
where
    C: DerefMut + Deref<Target = rustls::ConnectionCommon<D>>,
    S: Read + Write + Transport,
    D: rustls::SideData,
{
    let Parts { conn, sock } = stream.inner.get_mut();
    while conn.is_handshaking() {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Handshake(HandshakeError::Timeout));
            }
            sock.set_read_timeout(Some(left))?;
        }
        match conn.complete_io(sock) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Flush the last handshake flight (a client's Finished) now.
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    sock.set_read_timeout(None)?;
    Ok(())
}

/// Runs the TLS handshake on `io`, then the WebSocket handshake, accepting
/// every valid request.
pub fn accept<S>(io: S, config: Arc<ServerConfig>) -> Result<WebSocket<ServerTlsStream<S>>, Error>
where
    S: Read + Write + Transport,
{
    accept_with(io, config, Config::default(), |_| Ok(Accept::new()))
}

/// [`accept`] with a WebSocket config and a callback that decides on the
/// request, as in [`crate::accept_with`]. The TLS handshake is bounded by
/// `ws_config.handshake_timeout`.
pub fn accept_with<S, F>(
    io: S,
    config: Arc<ServerConfig>,
    ws_config: Config,
    decide: F,
) -> Result<WebSocket<ServerTlsStream<S>>, Error>
where
    S: Read + Write + Transport,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let deadline = ws_config.handshake_timeout.map(|d| Instant::now() + d);
    let conn = ServerConnection::new(config).map_err(tls_io)?;
    let mut stream = TlsStream::new(conn, io);
    handshake(&mut stream, deadline)?;
    crate::accept_with(stream, ws_config, decide)
}

fn tls_io(e: rustls::Error) -> Error {
    io::Error::new(io::ErrorKind::InvalidInput, e).into()
}

/// Connects to a `wss://` URL, trusting the webpki (Mozilla) roots and
/// offering permessage-deflate, like the plain `connect`.
pub fn connect(url: &str) -> Result<(WebSocket<WssStream>, http::Response<()>), Error> {
    let req = http::Request::get(url)
        .body(())
        .map_err(|_| Error::Usage(UsageError::InvalidRequest))?;
    let config = Config::default().deflate(Some(ws_proto::DeflateConfig::default()));
    connect_with(req, config, webpki_client_config()?)
}

/// Connects to a `wss://` URL with a request you built, a config and a
/// TLS client config (from [`ClientTls::build`], or your own). The
/// server's certificate is checked against the URL's host, which is also
/// sent as SNI (unless it is an IP address). Any other scheme is
/// [`UsageError::InvalidRequest`].
pub fn connect_with(
    request: http::Request<()>,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<WssStream>, http::Response<()>), Error> {
    let (host, port) = ws_rustls::wss_host_port(request.uri())?;
    let deadline = config.handshake_timeout.map(|d| Instant::now() + d);
    let tcp = crate::handshake::tcp_connect((host.as_str(), port), deadline)?;
    tcp.set_nodelay(true)?;
    tls_client_handshake(tcp, request, config, tls, deadline)
}

/// Runs the TLS handshake and then the WebSocket handshake over a stream
/// you opened (through a proxy, say). The certificate is checked against
/// the request's host.
pub fn client_handshake<S>(
    io: S,
    request: http::Request<()>,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<ClientTlsStream<S>>, http::Response<()>), Error>
where
    S: Read + Write + Transport,
{
    let deadline = config.handshake_timeout.map(|d| Instant::now() + d);
    tls_client_handshake(io, request, config, tls, deadline)
}

fn tls_client_handshake<S>(
    io: S,
    request: http::Request<()>,
    config: Config,
    tls: Arc<ClientConfig>,
    deadline: Option<Instant>,
) -> Result<(WebSocket<ClientTlsStream<S>>, http::Response<()>), Error>
where
    S: Read + Write + Transport,
{
    let host = request
        .uri()
        .host()
        .ok_or(Error::Usage(UsageError::InvalidRequest))?;
    let name = server_name(host)?;
    let conn = ClientConnection::new(tls, name).map_err(tls_io)?;
    let mut stream = TlsStream::new(conn, io);
    handshake(&mut stream, deadline)?;
    crate::client_handshake(stream, request, config)
}

//! Opening handshakes: `connect*`, `client_handshake`, `accept*`.
//!
//! The handshake timeout from [`Config::handshake_timeout`] bounds every
//! read (through [`Transport::set_read_timeout`]) and the TCP connect; the
//! core decides when it has passed.

use crate::{is_timeout, seed, Transport, WebSocket};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use ws_proto::{
    http, Accept, ClientHandshake, Config, Error, HandshakeError, Reject, ServerHandshake,
    Transmit, UsageError,
};

/// Size of the handshake read buffer.
const HANDSHAKE_BUF: usize = 4096;

/// Reads once, waiting at most until `deadline`. `Ok(None)`: the read timed
/// out (or was interrupted); ask the handshake whether its time is up.
fn read_until<S: Read + Transport>(
    io: &mut S,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> Result<Option<usize>, Error> {
    let timeout = deadline.map(|d| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    });
    io.set_read_timeout(timeout)?;
    match io.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Connects to a `ws://` URL over TCP with the default configuration,
/// offering permessage-deflate (like Node's `ws`; [`connect_with`] or
/// [`crate::client::connect_with_options`] with `deflate(None)` do not).
/// Returns the socket and the server's 101 response. For `ws+unix:`,
/// proxies, redirects and the other options see [`crate::client`]. A
/// `wss://` URL is [`UsageError::InvalidRequest`] here: use `tls::connect`
/// (feature `rustls`) or [`crate::client::connect_with_options`].
pub fn connect(url: &str) -> Result<(WebSocket<TcpStream>, http::Response<()>), Error> {
    let req = http::Request::get(url)
        .body(())
        .map_err(|_| Error::Usage(UsageError::InvalidRequest))?;
    let config = Config::default().deflate(Some(ws_proto::DeflateConfig::default()));
    connect_with(req, config)
}

/// Connects with a request you built (headers such as
/// `Sec-WebSocket-Protocol` or `Origin` are sent as given) and a config.
/// The handshake timeout bounds the TCP connect and, again, the handshake
/// (name resolution is not bounded).
pub fn connect_with(
    request: http::Request<()>,
    config: Config,
) -> Result<(WebSocket<TcpStream>, http::Response<()>), Error> {
    let uri = request.uri();
    let host = uri.host().ok_or(Error::Usage(UsageError::InvalidRequest))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = match uri.scheme_str() {
        Some("ws") | Some("http") | None => uri.port_u16().unwrap_or(80),
        // wss:// is refused rather than spoken as plain TCP to a TLS port:
        // `tls::connect_with` (feature `rustls`) and
        // `client::connect_with_options` take it.
        _ => return Err(Error::Usage(UsageError::InvalidRequest)),
    };
    let deadline = config.handshake_timeout.map(|d| Instant::now() + d);
    let tcp = tcp_connect((host.as_str(), port), deadline)?;
    tcp.set_nodelay(true)?;
    client_handshake(tcp, request, config)
}

/// Tries each address in turn until one connects or the deadline passes.
pub(crate) fn tcp_connect(
    addr: impl ToSocketAddrs,
    deadline: Option<Instant>,
) -> Result<TcpStream, Error> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        let res = match deadline {
            None => TcpStream::connect(a),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Handshake(HandshakeError::Timeout));
                }
                TcpStream::connect_timeout(&a, left)
            }
        };
        match res {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) if e.kind() == io::ErrorKind::TimedOut && deadline.is_some() => {
            Err(Error::Handshake(HandshakeError::Timeout))
        }
        Some(e) => Err(e.into()),
        None => Err(io::Error::new(io::ErrorKind::NotFound, "no address for host").into()),
    }
}

/// Runs the client handshake over any stream.
pub fn client_handshake<S: Read + Write + Transport>(
    mut io: S,
    request: http::Request<()>,
    config: Config,
) -> Result<(WebSocket<S>, http::Response<()>), Error> {
    let mut hs = ClientHandshake::new(Instant::now(), request, config, seed()?)?;
    let deadline = hs.poll_timeout();
    let mut out = Vec::new();
    while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
    io.write_all(&out)?;
    io.flush()?;
    let mut buf = vec![0u8; HANDSHAKE_BUF];
    loop {
        hs.handle_timeout(Instant::now())?;
        match read_until(&mut io, &mut buf, deadline)? {
            Some(0) => return Err(Error::Handshake(HandshakeError::Eof)),
            Some(n) if hs.handle_input(&buf[..n])? => break,
            Some(_) | None => {}
        }
    }
    let (resp, conn) = hs.into_connection(Instant::now())?;
    Ok((WebSocket::from_connection(io, conn), resp))
}

/// Accepts a WebSocket on a stream, accepting every valid request.
pub fn accept<S: Read + Write + Transport>(io: S) -> Result<WebSocket<S>, Error> {
    accept_with(io, Config::default(), accept_all)
}

/// The decision of [`accept`]. The callback type is the core's
/// (`Result<Accept, Reject>`, shared by every adapter), whose error side is
/// large; that is fine for a call made once per connection.
#[allow(clippy::result_large_err)]
fn accept_all(_: &http::Request<()>) -> Result<Accept, Reject> {
    Ok(Accept::new())
}

/// Accepts with a config and a callback that sees the request (path,
/// headers, offered subprotocols in `Sec-WebSocket-Protocol`) and accepts
/// (choosing a subprotocol, adding headers) or rejects with an HTTP
/// response.
///
/// A decision that cannot be applied (a subprotocol the client did not
/// offer: [`UsageError::ProtocolNotOffered`](crate::UsageError)) is the
/// server's mistake: the client gets `500 Internal Server Error`, and this
/// returns the usage error.
pub fn accept_with<S, F>(
    io: S,
    config: impl Into<std::sync::Arc<Config>>,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: Read + Write + Transport,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    accept_prefixed(io, &[], config, decide)
}

/// Like [`accept_with`], for a stream from which some bytes of the request
/// were already read (`head`), e.g. by an HTTP router that peeked at it.
pub fn accept_prefixed<S, F>(
    mut io: S,
    head: &[u8],
    config: impl Into<std::sync::Arc<Config>>,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: Read + Write + Transport,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let mut hs = ServerHandshake::new(Instant::now(), config);
    let req = match read_request(&mut io, &mut hs, head) {
        Ok(req) => req,
        Err(e) => {
            // An automatic error response (400, 426, 431...) if one is queued.
            let _ = write_handshake(&mut io, &mut hs);
            return Err(e);
        }
    };
    let decision = decide(&req);
    let status = decision.as_ref().err().map(|r| r.status);
    match hs.decide(Instant::now(), decision) {
        Ok(Ok(conn)) => {
            let mut ws = WebSocket::from_connection(io, conn);
            ws.flush()?;
            Ok(ws)
        }
        Ok(Err(mut hs)) => {
            write_handshake(&mut io, &mut hs)?;
            Err(Error::Handshake(HandshakeError::Rejected(
                status.unwrap_or(0),
            )))
        }
        Err(mut e) => {
            // The decision is the server's mistake (say, a subprotocol the
            // client did not offer): the client gets a 500, the caller the
            // usage error.
            e.refuse();
            let _ = write_handshake(&mut io, &mut e.handshake);
            Err(e.into())
        }
    }
}

/// Reads until the request head is complete, within the handshake timeout.
fn read_request<S: Read + Transport>(
    io: &mut S,
    hs: &mut ServerHandshake,
    head: &[u8],
) -> Result<http::Request<()>, Error> {
    if !head.is_empty() {
        if let Some(req) = hs.handle_input(head)? {
            return Ok(req);
        }
    }
    let deadline = hs.poll_timeout();
    let mut buf = vec![0u8; HANDSHAKE_BUF];
    loop {
        hs.handle_timeout(Instant::now())?;
        match read_until(io, &mut buf, deadline)? {
            Some(0) => return Err(Error::Handshake(HandshakeError::Eof)),
            Some(n) => {
                if let Some(req) = hs.handle_input(&buf[..n])? {
                    return Ok(req);
                }
            }
            None => {}
        }
    }
}

/// Writes a refusal or rejection queued in the handshake, then shuts the
/// write half when it asks.
fn write_handshake<S: Write + Transport>(
    io: &mut S,
    hs: &mut ServerHandshake,
) -> Result<(), Error> {
    let mut out = Vec::new();
    loop {
        out.clear();
        match hs.poll_transmit(&mut out) {
            Some(Transmit::Data) => {
                io.write_all(&out)?;
                io.flush()?;
            }
            Some(Transmit::Shutdown) => {
                let _ = io.shutdown(Shutdown::Write);
            }
            None => return Ok(()),
        }
    }
}

/// Accepts the next TCP connection on `listener` and runs the server
/// handshake on it. Returns the socket and the peer's address.
///
/// The handshake runs on the calling thread (bounded by the handshake
/// timeout). A server that serves each connection on its own thread can
/// instead take the `TcpStream` from `listener.accept()` and call
/// [`accept`] on that thread.
pub fn accept_tcp(listener: &TcpListener) -> Result<(WebSocket<TcpStream>, SocketAddr), Error> {
    let (tcp, addr) = accept_stream(listener);
    Ok((accept(tcp)?, addr))
}

/// Accepts the next TCP connection on a listener that your own loop
/// serves (handing each to a thread that calls [`accept_with`], say), with
/// `TCP_NODELAY` set, waiting out the failures of `accept` as
/// [`accept_retry_after`](ws_proto::server::accept_retry_after) says: a
/// connection lost in the listen queue is skipped, and out of file
/// descriptors or memory the thread sleeps 50 ms at a time until
/// connections close. `for tcp in listener.incoming()` that skips errors
/// would instead spin on a core while the descriptors are out, and
/// `listener.accept()?` would end the server, which any client can cause
/// by opening enough connections.
pub fn accept_stream(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept() {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                return (tcp, peer);
            }
            Err(e) => std::thread::sleep(ws_proto::server::accept_retry_after(&e)),
        }
    }
}

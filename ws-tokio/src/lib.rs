//! Tokio adapter for the [`ws_proto`] WebSocket core.
//!
//! Every protocol decision is made by `ws-proto`, and the loop that drives
//! it over a stream is `ws-pump`'s, shared with the other async adapter:
//! this crate supplies the runtime's reads, writes, clock and sleep, and
//! the API. Reads go through one shared per-thread buffer, so an idle
//! connection holds no read buffer at all.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_tokio::Error> {
//! use ws_tokio::Message;
//! let (mut ws, _response) = ws_tokio::connect("ws://127.0.0.1:9001/").await?;
//! ws.send(Message::text("hello")).await?;
//! while let Some(msg) = ws.recv().await {
//!     println!("{:?}", msg?);
//! }
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! - [`server`]: a server like `ws`'s `WebSocketServer`: a listener with a
//!   [`ServerPolicy`](server::ServerPolicy) (path, origins, verification,
//!   subprotocols, limits, compression), the request of each client
//!   ([`RequestInfo`](server::RequestInfo)), the set of connected clients
//!   with broadcast ([`Clients`](server::Clients)), upgrades of sockets
//!   that your own code accepted ([`Upgrader`](server::Upgrader)) and,
//!   with the feature `hyper`, of hyper 1.x or axum requests.
//! - [`client`]: clients with `ws`'s options
//!   ([`ClientOptions`](client::ClientOptions): origin, headers,
//!   subprotocols, redirects, proxies, `ws+unix:` URLs) and a reconnect
//!   helper ([`Reconnect`](client::Reconnect)).
//! - `tls` (feature `rustls`): `wss://` clients and servers with rustls.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_tokio::Error> {
//! use ws_tokio::server::{Server, ServerPolicy};
//! // Echo server on /echo; other paths get 404.
//! let server = Server::bind("127.0.0.1:8080", ServerPolicy::new().path("/echo")).await?;
//! loop {
//!     let (mut ws, _info) = server.accept().await?;
//!     tokio::spawn(async move {
//!         while let Some(Ok(msg)) = ws.recv().await {
//!             if msg.is_data() && ws.send(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_tokio::Error> {
//! use ws_tokio::client::{connect_with_options, ClientOptions};
//! let options = ClientOptions::new().origin("https://example.com").follow_redirects(true);
//! // `wss://` URLs too, with the feature `rustls`.
//! let (mut ws, _response) = connect_with_options("ws://127.0.0.1:8080/echo", options).await?;
//! ws.send(ws_tokio::Message::text("hello")).await?;
//! # Ok(()) }
//! ```
//!
//! # Cancel safety
//!
//! - [`WebSocket::recv`] is cancel safe: bytes read from the socket are
//!   handed to the core before any await point, so dropping the future
//!   loses nothing; the next call picks up where it stopped.
//! - [`WebSocket::send`], [`WebSocket::send_prepared`], [`WebSocket::ping`],
//!   [`WebSocket::close`] and [`WebSocket::flush`] queue their frame
//!   synchronously on first poll and then wait for the socket to take it.
//!   If cancelled after the first poll, the frame is still sent by the next
//!   call that flushes (or by `recv`); it is never lost or duplicated. One
//!   exception: while `Config::max_send_buffer` or more is queued, a send
//!   under `SendBufferPolicy::Wait` first writes the queue out, and if
//!   cancelled during that wait, its message was not queued (nor sent).

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use ws_proto::{ClientHandshake, Connection, ServerHandshake, Transmit};

pub mod client;
pub mod server;
#[cfg(feature = "rustls")]
pub mod tls;
#[cfg(feature = "hyper")]
mod upgrade_hyper;

pub use ws_proto::{
    http, Accept, CloseCode, CloseFrame, CloseInfo, Config, DeflateConfig, Error, HandshakeError,
    Message, ProtocolError, Reject, Role, UsageError, Utf8Bytes,
};

pub use ws_proto::{PreparedMessage, SendBufferPolicy};

fn now() -> std::time::Instant {
    // tokio's clock, so that paused time in tests drives the core's timers.
    tokio::time::Instant::now().into_std()
}

fn seed() -> Result<[u8; 32], Error> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).map_err(|e| Error::from(io::Error::other(e)))?;
    Ok(s)
}

/// The stream as the pump drives it: tokio's poll functions.
struct TokioIo<S>(S);

impl<S: AsyncRead + AsyncWrite + Unpin> ws_pump::Io for TokioIo<S> {
    // tokio-util's `poll_read_buf` reads into uninitialized memory
    // without unsafe code of ours.
    const READS_INTO_BUF: bool = true;

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut bytes::buf::Limit<&mut Vec<u8>>,
    ) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// tokio's clock (paused time in tests drives the core's timers too).
struct TokioClock;

impl ws_pump::Clock for TokioClock {
    type Sleep = TokioSleep;
    fn now(&self) -> std::time::Instant {
        now()
    }
    fn sleep_until(&self, deadline: std::time::Instant) -> TokioSleep {
        TokioSleep(Box::pin(tokio::time::sleep_until(
            tokio::time::Instant::from_std(deadline),
        )))
    }
}

/// A tokio sleep, moved in place when the core's deadline changes.
struct TokioSleep(Pin<Box<Sleep>>);

impl ws_pump::Sleep for TokioSleep {
    fn deadline(&self) -> std::time::Instant {
        self.0.deadline().into_std()
    }
    fn reset(&mut self, deadline: std::time::Instant) {
        self.0
            .as_mut()
            .reset(tokio::time::Instant::from_std(deadline));
    }
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// The pump (`ws-pump`) over a tokio stream.
type Inner<S> = ws_pump::Pump<TokioIo<S>, TokioClock>;

fn new_inner<S>(io: S, conn: Connection) -> Inner<S> {
    ws_pump::Pump::new(TokioIo(io), TokioClock, conn)
}

/// A WebSocket over any `AsyncRead + AsyncWrite` stream.
///
/// Receive with [`recv`](Self::recv) (or as a [`Stream`]), send with
/// [`send`](Self::send) (or as a [`Sink`]). `recv` also answers pings and
/// completes the closing handshake, so keep calling it until it returns
/// `None`. After a clean close `recv` yields `Message::Close` once, then
/// `None`; any other ending yields one `Err`, then `None`.
pub struct WebSocket<S> {
    // Boxed: a task holding a `WebSocket` keeps one pointer, so that with
    // its own state it still fits tokio's smallest task allocations (an
    // idle connection costs less; `layout` below).
    inner: Box<Inner<S>>,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.inner.connection().state())
            .field("role", &self.inner.connection().role())
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream on which the handshake is already done, with a
    /// connection from `ws_proto` (for example after an upgrade by hyper:
    /// `Connection::server(config)`).
    pub fn from_connection(io: S, conn: Connection) -> Self {
        WebSocket {
            inner: Box::new(new_inner(io, conn)),
        }
    }

    /// Receives the next message; `None` after the end. Cancel safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.inner.poll_recv(cx)).await
    }

    /// Sends a message and waits until the socket has taken it.
    ///
    /// While [`Config::max_send_buffer`] bytes or more are queued, the
    /// [`Config::send_buffer_policy`] decides: `Wait` (the default) first
    /// writes what is queued, `Fail` returns
    /// [`UsageError::SendBufferFull`] and queues nothing.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room().await?;
        self.inner.queue(msg)?;
        self.flush().await
    }

    /// Sends a [`PreparedMessage`] (a frame built once for many
    /// connections: a broadcast) and waits until the socket has taken it.
    /// Server side only ([`UsageError::ServerOnly`] otherwise); the send
    /// buffer policy applies as for [`send`](Self::send).
    pub async fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<(), Error> {
        self.wait_room().await?;
        self.inner.queue_prepared(msg)?;
        self.flush().await
    }

    /// [`SendBufferPolicy::Wait`]: writes what is queued while it is over
    /// the bound.
    async fn wait_room(&mut self) -> Result<(), Error> {
        while self.inner.should_wait() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues a message without flushing. It is written by the next
    /// [`flush`](Self::flush), `send`, or `recv` (which flushes before it
    /// waits for input, so an echo loop of `recv` + `feed` writes all the
    /// answers to one read in one write).
    pub fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.inner.queue(msg.into())
    }

    /// [`send`](Self::send) without compression: the message goes out
    /// uncompressed even when permessage-deflate is negotiated (Node's
    /// `ws.send(data, { compress: false })`), for data that is already
    /// compressed or too small to gain. Cancel safe like `send`.
    pub async fn send_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room().await?;
        self.inner.queue_with(msg, false)?;
        self.flush().await
    }

    /// [`feed`](Self::feed) without compression, like
    /// [`send_uncompressed`](Self::send_uncompressed).
    pub fn feed_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.inner.queue_with(msg.into(), false)
    }

    /// Writes everything queued.
    ///
    /// While the peer does not read, the core's timers still run: when the
    /// idle timeout or the close timeout ends the connection, this returns
    /// an error (`TimedOut`) and `recv` reports the ending.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_flush_timed(cx)).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Ping(payload.into())).await
    }

    /// Starts the closing handshake and flushes the close frame. Keep
    /// calling [`recv`](Self::recv) until `None` to complete it.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.inner.close(code, reason)?;
        self.flush().await
    }

    /// The protocol state machine, for its getters.
    pub fn connection(&self) -> &Connection {
        self.inner.connection()
    }

    /// How the connection ended, once `recv` reported the end.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.inner.close_info()
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        self.inner.buffered_amount()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.io().0
    }

    /// Splits into a reading and a writing half, usable from two tasks.
    pub fn split(self) -> (WebSocketReader<S>, WebSocketWriter<S>) {
        let shared = Arc::new(Mutex::new(*self.inner));
        (
            WebSocketReader {
                shared: shared.clone(),
            },
            WebSocketWriter { shared },
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_sink_ready(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().inner.queue(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush_timed(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_sink_close(cx)
    }
}

fn lock<S>(m: &Mutex<Inner<S>>) -> std::sync::MutexGuard<'_, Inner<S>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reading half from [`WebSocket::split`]. It also answers pings and
/// completes the closing handshake, so keep polling it.
pub struct WebSocketReader<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

/// The writing half from [`WebSocket::split`].
pub struct WebSocketWriter<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

impl<S> std::fmt::Debug for WebSocketReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebSocketReader")
    }
}

impl<S> std::fmt::Debug for WebSocketWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebSocketWriter")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketReader<S> {
    /// Receives the next message; `None` after the end. Cancel safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| lock(&self.shared).poll_recv(cx)).await
    }

    /// Puts the halves back together.
    ///
    /// # Panics
    /// If `writer` comes from another socket.
    pub fn unsplit(self, writer: WebSocketWriter<S>) -> WebSocket<S> {
        assert!(
            Arc::ptr_eq(&self.shared, &writer.shared),
            "halves of different sockets"
        );
        drop(writer);
        let inner = match Arc::try_unwrap(self.shared) {
            Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(_) => unreachable!("both halves were given"),
        };
        WebSocket {
            inner: Box::new(inner),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketWriter<S> {
    /// Sends a message and waits until the socket has taken it.
    /// The send buffer policy applies as for [`WebSocket::send`].
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room().await?;
        lock(&self.shared).queue(msg)?;
        self.flush().await
    }

    /// Sends a message uncompressed; see [`WebSocket::send_uncompressed`].
    pub async fn send_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room().await?;
        lock(&self.shared).queue_with(msg, false)?;
        self.flush().await
    }

    /// Sends a prepared message; see [`WebSocket::send_prepared`].
    pub async fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<(), Error> {
        self.wait_room().await?;
        lock(&self.shared).queue_prepared(msg)?;
        self.flush().await
    }

    async fn wait_room(&mut self) -> Result<(), Error> {
        while lock(&self.shared).should_wait() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything queued. While the write waits, the core's timers
    /// run here too (whether or not the reading half is polled), so a peer
    /// that stopped reading ends it with an error once they end the
    /// connection, as for [`WebSocket::flush`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_flush_timed(cx)).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Ping(payload.into())).await
    }

    /// Starts the closing handshake; the reading half completes it.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        lock(&self.shared).close(code, reason)?;
        self.flush().await
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        let g = lock(&self.shared);
        g.buffered_amount()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketReader<S> {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        lock(&self.shared).poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketWriter<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_sink_ready(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        lock(&self.shared).queue(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_flush_timed(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_sink_close(cx)
    }
}

// ------------------------------------------------------------- handshakes --

/// Writes all of `buf` and flushes.
async fn write_all<S: AsyncWrite + Unpin>(io: &mut S, buf: &[u8]) -> Result<(), Error> {
    io.write_all(buf).await?;
    io.flush().await?;
    Ok(())
}

/// Runs `fut` until the handshake deadline.
async fn with_deadline<T>(
    deadline: Option<std::time::Instant>,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match deadline {
        Some(d) => tokio::time::timeout_at(tokio::time::Instant::from_std(d), fut)
            .await
            .unwrap_or(Err(Error::Handshake(HandshakeError::Timeout))),
        None => fut.await,
    }
}

/// Connects to a `ws://` URL over TCP with the default configuration,
/// offering permessage-deflate (like Node's `ws`; [`connect_with`] or
/// [`client::connect_with_options`] with `deflate(None)` do not). Returns
/// the socket and the server's 101 response. For `ws+unix:`, proxies,
/// redirects and the other options see [`client`]. A `wss://` URL is
/// [`UsageError::InvalidRequest`] here: use `tls::connect` (feature
/// `rustls`) or [`client::connect_with_options`].
pub async fn connect(url: &str) -> Result<(WebSocket<TcpStream>, http::Response<()>), Error> {
    let req = http::Request::get(url)
        .body(())
        .map_err(|_| Error::Usage(UsageError::InvalidRequest))?;
    let config = Config::default().deflate(Some(DeflateConfig::default()));
    connect_with(req, config).await
}

/// Connects with a request you built (headers such as
/// `Sec-WebSocket-Protocol` or `Origin` are sent as given) and a config.
pub async fn connect_with(
    request: http::Request<()>,
    config: Config,
) -> Result<(WebSocket<TcpStream>, http::Response<()>), Error> {
    let uri = request.uri();
    let host = uri.host().ok_or(Error::Usage(UsageError::InvalidRequest))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    // wss:// is refused here rather than spoken as plain TCP to a TLS
    // port: this function returns a TCP socket. `tls::connect_with`
    // (feature `rustls`) and `client::connect_with_options` take wss://.
    let port = match uri.scheme_str() {
        Some("ws") | Some("http") | None => uri.port_u16().unwrap_or(80),
        _ => return Err(Error::Usage(UsageError::InvalidRequest)),
    };
    let deadline = config.handshake_timeout.map(|d| now() + d);
    let tcp = with_deadline(deadline, async {
        Ok(TcpStream::connect((host.as_str(), port)).await?)
    })
    .await?;
    tcp.set_nodelay(true)?;
    client_handshake(tcp, request, config).await
}

/// Runs the client handshake over any stream.
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    request: http::Request<()>,
    config: Config,
) -> Result<(WebSocket<S>, http::Response<()>), Error> {
    let mut hs = ClientHandshake::new(now(), request, config, seed()?)?;
    let deadline = hs.poll_timeout();
    with_deadline(deadline, async move {
        let mut out = Vec::new();
        while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
        write_all(&mut io, &out).await?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = io.read(&mut buf).await?;
            if n == 0 {
                return Err(Error::Handshake(HandshakeError::Eof));
            }
            if hs.handle_input(&buf[..n])? {
                break;
            }
        }
        let (resp, conn) = hs.into_connection(now())?;
        Ok((WebSocket::from_connection(io, conn), resp))
    })
    .await
}

/// Accepts a WebSocket on a stream, accepting every valid request.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(io: S) -> Result<WebSocket<S>, Error> {
    accept_with(io, Config::default(), |_| Ok(Accept::new())).await
}

/// Accepts with a config and a callback that sees the request (path,
/// headers, offered subprotocols in `Sec-WebSocket-Protocol`) and accepts
/// (choosing a subprotocol, adding headers) or rejects with an HTTP
/// response.
///
/// The returned future holds one pointer: the handshake's state is boxed
/// when it is created and freed as soon as the handshake ends. A task
/// that awaits it keeps its slot for its whole life, so creating it before
/// spawning (as `examples/echo_server.rs` does) rather than inside the
/// task keeps the socket's slot out of every connection's task.
pub fn accept_with<S, F>(
    io: S,
    config: impl Into<Arc<Config>>,
    decide: F,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    FreeOnReady(Some(Box::pin(accept_handshake(
        io,
        &[],
        config.into(),
        decide,
    ))))
}

/// A boxed future that frees its box as soon as it completes, even while
/// the caller keeps the wrapper (a task that awaited it keeps its slot).
struct FreeOnReady<F>(Option<Pin<Box<F>>>);

impl<F: Future> Future for FreeOnReady<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let Some(fut) = this.0.as_mut() else {
            panic!("the accept future was polled after it completed");
        };
        let out = std::task::ready!(fut.as_mut().poll(cx));
        this.0 = None;
        Poll::Ready(out)
    }
}

/// Like [`accept_with`], for a stream from which some bytes of the request
/// were already read (`head`), e.g. by an HTTP router that peeked at it.
pub async fn accept_prefixed<S, F>(
    io: S,
    head: &[u8],
    config: impl Into<Arc<Config>>,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let config = config.into();
    // The handshake's state (the handshake object, its read buffer, the
    // request, the timeout) is several KiB. Boxed, it is freed once the
    // handshake is done; inline, it would stay part of every connection
    // task that awaited it, for the connection's whole life (issue 5: idle
    // memory per connection).
    Box::pin(accept_handshake(io, head, config, decide)).await
}

async fn accept_handshake<S, F>(
    mut io: S,
    head: &[u8],
    config: Arc<Config>,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let mut hs = ServerHandshake::new(now(), config);
    let deadline = hs.poll_timeout();
    let mut out = Vec::new();
    let res = with_deadline(deadline, async {
        if !head.is_empty() {
            if let Some(req) = hs.handle_input(head)? {
                return Ok(req);
            }
        }
        // Read through the shared per-thread buffer, handing each read to
        // the handshake before the next await: a pending handshake holds
        // no read buffer of its own.
        poll_fn(|cx| loop {
            let read = ws_pump::with_read_buffer(|buf| {
                let mut rb = ReadBuf::new(buf);
                match Pin::new(&mut io).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                        Poll::Ready(Err(Error::Handshake(HandshakeError::Eof)))
                    }
                    Poll::Ready(Ok(())) => {
                        Poll::Ready(hs.handle_input(rb.filled()).map_err(Error::from))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(Error::from(e))),
                    Poll::Pending => Poll::Pending,
                }
            });
            match read {
                Poll::Ready(Ok(None)) => continue,
                Poll::Ready(Ok(Some(req))) => return Poll::Ready(Ok(req)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    })
    .await;
    let req = match res {
        Ok(req) => req,
        Err(e) => {
            // An automatic error response (400, 426, 431...) if one is queued.
            while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
            if !out.is_empty() {
                let _ = write_all(&mut io, &out).await;
                let _ = io.shutdown().await;
            }
            return Err(e);
        }
    };
    let decision = decide(&req);
    let status = decision.as_ref().err().map(|r| r.status);
    match hs.decide(now(), decision) {
        Ok(Ok(conn)) => {
            let mut ws = WebSocket::from_connection(io, conn);
            ws.flush().await?;
            Ok(ws)
        }
        Ok(Err(mut hs)) => {
            while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
            write_all(&mut io, &out).await?;
            let _ = io.shutdown().await;
            Err(Error::Handshake(HandshakeError::Rejected(
                status.unwrap_or(0),
            )))
        }
        Err(mut e) => {
            // The decision is the server's mistake (say, a subprotocol the
            // client did not offer): the client gets a 500, the caller the
            // usage error.
            e.refuse();
            while let Some(Transmit::Data) = e.handshake.poll_transmit(&mut out) {}
            let _ = write_all(&mut io, &out).await;
            let _ = io.shutdown().await;
            Err(e.into())
        }
    }
}

/// Accepts the next TCP connection on `listener` and runs the server
/// handshake on it. Returns the socket and the peer's address.
pub async fn accept_tcp(
    listener: &TcpListener,
) -> Result<(WebSocket<TcpStream>, std::net::SocketAddr), Error> {
    let (tcp, addr) = accept_stream(listener).await;
    Ok((accept(tcp).await?, addr))
}

/// Accepts the next TCP connection on a listener that your own loop
/// serves (with [`accept_with`], say), with
/// `TCP_NODELAY` set, waiting out the failures of `accept` like
/// [`Server::accept`](server::Server::accept) does: a connection lost in the listen queue is
/// skipped, and out of file descriptors or memory the loop pauses 50 ms at
/// a time until connections close. `listener.accept().await?` in a loop
/// would instead end the server at the first such failure, which any
/// client can cause by opening enough connections.
pub async fn accept_stream(listener: &TcpListener) -> (TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                return (tcp, peer);
            }
            Err(e) => {
                let wait = ws_proto::server::accept_retry_after(&e);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod layout {
    //! Issue 5: an idle connection should cost about 1 KiB in all. tokio
    //! allocates a task in steps of 128 bytes (the task cell is aligned to
    //! 128), so a few bytes here can cost 128 per connection.

    use std::sync::Arc;
    use tokio::net::TcpStream;

    /// The task of `examples/echo_server.rs`.
    fn echo(tcp: TcpStream, config: Arc<crate::Config>) -> impl std::future::Future<Output = ()> {
        let accepting = crate::accept_with(tcp, config, |_| Ok(crate::Accept::new()));
        async move {
            let Ok(mut ws) = accepting.await else {
                return;
            };
            while let Some(msg) = ws.recv().await {
                match msg {
                    Ok(m) if m.is_data() => {
                        if ws.feed(m).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
    }

    fn future_size<F>(_: fn(TcpStream, Arc<crate::Config>) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn connection_task_stays_small() {
        let inner = std::mem::size_of::<super::Inner<TcpStream>>();
        let task = future_size(echo);
        // x86_64: the `WebSocket` is a pointer to its boxed `Inner`, so
        // the echo task's future is 48 bytes and tokio's task allocation
        // (header, future, trailer, 128-byte aligned) is the smallest,
        // 256 bytes (it was 384 with the `Inner` in the future). `Inner`
        // is 216 bytes: with glibc's 8-byte header, a 224-byte block.
        assert!(inner <= 216, "Inner<TcpStream> is {inner} bytes");
        assert!(task <= 144, "the echo task's future is {task} bytes");
    }
}

//! `futures-io` adapter for the [`ws_proto`] WebSocket core: runs on
//! async-std and on smol (and on any executor, given a [`Timer`]).
//!
//! Every protocol decision is made by `ws-proto`, and the loop that drives
//! it over a stream is `ws-pump`'s, shared with the other async adapter:
//! this crate supplies the runtime's reads, writes, clock and sleep, and
//! the API. Reads go through one shared per-thread buffer, so an idle
//! connection holds no read buffer at all.
//!
//! The socket is any `futures_io::AsyncRead + AsyncWrite` stream; the only
//! other thing the adapter needs from a runtime is a [`Timer`]. Each runtime
//! has a module, behind a Cargo feature of the same name, with its timer, its
//! TCP helpers ([`connect`](crate::smol::connect),
//! [`accept_tcp`](crate::smol::accept_tcp)) and the handshake functions
//! with the same signatures as in `ws-tokio`:
//!
//! | feature | module | timer | TCP types |
//! |---|---|---|---|
//! | `smol` (default) | [`smol`] | `async_io::Timer` (`smol::Timer`) | `async_net` (`smol::net`) |
//! | `async-std` | `async_std` | `async_std::task::sleep` | `async_std::net` |
//!
//! The default feature, `smol`, brings only `async-io` and `async-net`, the
//! building blocks that both smol and async-std 1.x run on, so its types
//! also work inside an async-std program. async-std itself is discontinued
//! upstream (it points users to smol).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_async_std::Error> {
//! use ws_async_std::Message;
//! let (mut ws, _response) = ws_async_std::smol::connect("ws://127.0.0.1:9001/").await?;
//! ws.send(Message::text("hello")).await?;
//! while let Some(msg) = ws.recv().await {
//!     println!("{:?}", msg?);
//! }
//! # Ok(()) }
//! ```
//!
//! The functions at the crate root ([`accept`], [`client_handshake`], ...)
//! take the timer as an argument; the runtime modules pass their own.
//!
//! # Modules
//!
//! - [`server`]: a server like `ws`'s `WebSocketServer` (the same API as
//!   `ws_tokio::server`): [`Server`](server::Server) (feature `smol`) with
//!   a [`ServerPolicy`](server::ServerPolicy), the request of each client
//!   ([`RequestInfo`](server::RequestInfo)), the connected clients with
//!   broadcast ([`Clients`](server::Clients)), and upgrades of sockets
//!   that your own code accepted ([`Upgrader`](server::Upgrader)).
//! - [`client`] (feature `smol`): clients with `ws`'s options
//!   ([`ClientOptions`](client::ClientOptions): origin, headers,
//!   subprotocols, redirects, proxies, `ws+unix:` URLs) and a reconnect
//!   helper.
//! - `tls` (feature `rustls`): `wss://` clients and servers with rustls,
//!   with functions per runtime in `tls::smol` and `tls::async_std`.
//!
//! Both run on smol and on async-std:
//!
//! ```no_run
//! # #[cfg(feature = "smol")]
//! # fn main() -> Result<(), ws_async_std::Error> {
//! use ws_async_std::client::{connect_with_options, ClientOptions};
//! use ws_async_std::server::{Server, ServerPolicy};
//! smol::block_on(async {
//!     // Echo server on /echo; other paths get 404.
//!     let server = Server::bind("127.0.0.1:8080", ServerPolicy::new().path("/echo")).await?;
//!     smol::spawn(async move {
//!         while let Ok((mut ws, _info)) = server.accept().await {
//!             smol::spawn(async move {
//!                 while let Some(Ok(msg)) = ws.recv().await {
//!                     if msg.is_data() && ws.send(msg).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             })
//!             .detach();
//!         }
//!     })
//!     .detach();
//!     // A client with options (`wss://` URLs too, with the feature `rustls`).
//!     let options = ClientOptions::new().origin("https://example.com");
//!     let (mut ws, _response) =
//!         connect_with_options("ws://127.0.0.1:8080/echo", options).await?;
//!     ws.send(ws_async_std::Message::text("hello")).await?;
//!     Ok(())
//! })
//! # }
//! # #[cfg(not(feature = "smol"))]
//! # fn main() {}
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
//! - The same holds for the methods of the halves from
//!   [`WebSocket::split`].
//! - The handshake functions (`connect`, `accept`, ...) are not cancel
//!   safe: dropping one drops the stream with it.

// Without a runtime feature, the TCP helpers and the macro that writes the
// runtime modules have no user.
#![cfg_attr(
    not(any(feature = "smol", feature = "async-std")),
    allow(dead_code, unused_macros)
)]

use bytes::Bytes;
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_sink::Sink;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use ws_proto::{ClientHandshake, Connection, ServerHandshake, Transmit};

pub use ws_proto::{
    http, Accept, CloseCode, CloseFrame, CloseInfo, Config, DeflateConfig, Error, HandshakeError,
    Message, ProtocolError, Reject, Role, UsageError, Utf8Bytes,
};

mod timer;
pub use timer::{Sleep, Timer};
pub use ws_proto::{PreparedMessage, SendBufferPolicy};

/// Writes the runtime-specific API of a runtime module: the handshake
/// functions with this runtime's timer, and the TCP helpers. `$socket` is
/// applied to every new `WebSocket` (see `async_std::socket`); `$bound`
/// adds a bound on the stream type that it may need.
macro_rules! runtime_api {
    ($timer:expr, $tcp:ty, $listener:ty, $socket:path $(, $bound:lifetime)?) => {
        /// Wraps a stream on which the handshake is already done, with a
        /// connection from `ws_proto` (for example after an upgrade by an
        /// HTTP server: `Connection::server(config)`).
        pub fn from_connection<S: AsyncRead + AsyncWrite + Unpin $(+ $bound)?>(
            io: S,
            conn: Connection,
        ) -> WebSocket<S> {
            $socket(WebSocket::from_connection(io, conn, $timer))
        }

        /// Connects to a `ws://` URL over TCP with the default configuration,
        /// offering permessage-deflate (like Node's `ws`; `connect_with` or
        /// `client::connect_with_options` with `deflate(None)` do not).
        /// Returns the socket and the server's 101 response. For `ws+unix:`,
        /// proxies, redirects and the other options see `crate::client`.
        pub async fn connect(url: &str) -> Result<(WebSocket<$tcp>, http::Response<()>), Error> {
            let req = http::Request::get(url)
                .body(())
                .map_err(|_| Error::Usage(UsageError::InvalidRequest))?;
            let config = Config::default().deflate(Some(crate::DeflateConfig::default()));
            connect_with(req, config).await
        }

        /// Connects with a request you built (headers such as
        /// `Sec-WebSocket-Protocol` or `Origin` are sent as given) and a config.
        pub async fn connect_with(
            request: http::Request<()>,
            config: Config,
        ) -> Result<(WebSocket<$tcp>, http::Response<()>), Error> {
            let (host, port) = crate::target(&request)?;
            let timer = $timer;
            let deadline = config.handshake_timeout.map(|d| timer.now() + d);
            let tcp = crate::before(&timer, deadline, <$tcp>::connect((host.as_str(), port)))
                .await
                .ok_or(Error::Handshake(HandshakeError::Timeout))??;
            tcp.set_nodelay(true)?;
            client_handshake(tcp, request, config).await
        }

        /// Runs the client handshake over any stream.
        pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin $(+ $bound)?>(
            io: S,
            request: http::Request<()>,
            config: Config,
        ) -> Result<(WebSocket<S>, http::Response<()>), Error> {
            let (ws, resp) = crate::client_handshake(io, request, config, $timer).await?;
            Ok(($socket(ws), resp))
        }

        /// Accepts a WebSocket on a stream, accepting every valid request.
        // `Reject` is large (headers and a body): the core's type.
        #[allow(clippy::result_large_err)]
        pub async fn accept<S: AsyncRead + AsyncWrite + Unpin $(+ $bound)?>(
            io: S,
        ) -> Result<WebSocket<S>, Error> {
            accept_with(io, Config::default(), |_| Ok(Accept::new())).await
        }

        /// Accepts with a config and a callback that sees the request (path,
        /// headers, offered subprotocols in `Sec-WebSocket-Protocol`) and
        /// accepts (choosing a subprotocol, adding headers) or rejects with
        /// an HTTP response.
        pub async fn accept_with<S, F>(
            io: S,
            config: impl Into<std::sync::Arc<Config>>,
            decide: F,
        ) -> Result<WebSocket<S>, Error>
        where
            S: AsyncRead + AsyncWrite + Unpin $(+ $bound)?,
            F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
        {
            accept_prefixed(io, &[], config, decide).await
        }

        /// Like [`accept_with`], for a stream from which some bytes of the
        /// request were already read (`head`), e.g. by an HTTP router that
        /// peeked at it.
        pub async fn accept_prefixed<S, F>(
            io: S,
            head: &[u8],
            config: impl Into<std::sync::Arc<Config>>,
            decide: F,
        ) -> Result<WebSocket<S>, Error>
        where
            S: AsyncRead + AsyncWrite + Unpin $(+ $bound)?,
            F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
        {
            Ok($socket(
                crate::accept_prefixed(io, head, config, $timer, decide).await?,
            ))
        }

        /// Accepts the next TCP connection on `listener` and runs the server
        /// handshake on it. Returns the socket and the peer's address.
        pub async fn accept_tcp(
            listener: &$listener,
        ) -> Result<(WebSocket<$tcp>, std::net::SocketAddr), Error> {
            let (tcp, addr) = accept_stream(listener).await;
            Ok((accept(tcp).await?, addr))
        }

        /// Accepts the next TCP connection on a listener that your own
        /// loop serves (with `accept_with`, say), with `TCP_NODELAY` set,
        /// waiting out the failures of `accept` as
        /// [`accept_retry_after`](ws_proto::server::accept_retry_after)
        /// says: a connection lost in the listen queue is skipped, and out
        /// of file descriptors or memory the loop pauses 50 ms at a time
        /// until connections close. `listener.accept().await?` in a loop
        /// would instead end the server at the first such failure, which
        /// any client can cause by opening enough connections.
        pub async fn accept_stream(listener: &$listener) -> ($tcp, std::net::SocketAddr) {
            loop {
                match listener.accept().await {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        return (tcp, peer);
                    }
                    Err(e) => {
                        let wait = ws_proto::server::accept_retry_after(&e);
                        if !wait.is_zero() {
                            let timer = $timer;
                            let mut sleep = crate::Timer::sleep_until(&timer, crate::Timer::now(&timer) + wait);
                            std::future::poll_fn(|cx| sleep.as_mut().poll_elapsed(cx)).await;
                        }
                    }
                }
            }
        }
    };
}

#[cfg(feature = "async-std")]
pub mod async_std;
#[cfg(feature = "smol")]
pub mod client;
pub mod server;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "rustls")]
pub mod tls;

fn seed() -> Result<[u8; 32], Error> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).map_err(|e| Error::from(io::Error::other(e)))?;
    Ok(s)
}

/// The stream as the pump drives it: futures-io's poll functions.
struct FuturesIo<S> {
    io: S,
    /// Shuts the write half where `poll_close` of the stream does not
    /// (async-std's `TcpStream` only flushes there).
    shutdown_write: Option<fn(&mut S) -> io::Result<()>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ws_pump::Io for FuturesIo<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // For a TCP stream, `poll_close` shuts the write half.
        match self.shutdown_write {
            Some(shutdown) => Poll::Ready(shutdown(&mut self.io)),
            None => Pin::new(&mut self.io).poll_close(cx),
        }
    }
}

/// The connection's [`Timer`], as the pump's clock.
struct SharedTimer(Arc<dyn Timer>);

impl ws_pump::Clock for SharedTimer {
    type Sleep = BoxedSleep;
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn sleep_until(&self, deadline: Instant) -> BoxedSleep {
        BoxedSleep(self.0.sleep_until(deadline))
    }
}

/// A [`Sleep`] of the connection's timer, as the pump's sleep.
struct BoxedSleep(Pin<Box<dyn Sleep>>);

impl ws_pump::Sleep for BoxedSleep {
    fn deadline(&self) -> Instant {
        self.0.deadline()
    }
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline)
    }
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll_elapsed(cx)
    }
}

/// The pump (`ws-pump`) over a futures-io stream.
type Inner<S> = ws_pump::Pump<FuturesIo<S>, SharedTimer>;

fn new_inner<S>(io: S, conn: Connection, timer: Arc<dyn Timer>) -> Inner<S> {
    let io = FuturesIo {
        io,
        shutdown_write: None,
    };
    ws_pump::Pump::new(io, SharedTimer(timer), conn)
}

/// A WebSocket over any `AsyncRead + AsyncWrite` stream.
///
/// Receive with [`recv`](Self::recv) (or as a [`Stream`]), send with
/// [`send`](Self::send) (or as a [`Sink`]). `recv` also answers pings and
/// completes the closing handshake, so keep calling it until it returns
/// `None`. After a clean close `recv` yields `Message::Close` once, then
/// `None`; any other ending yields one `Err`, then `None`.
pub struct WebSocket<S> {
    inner: Inner<S>,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.inner.connection().state())
            .field("role", &self.inner.connection().role())
            .finish()
    }
}

impl<S> WebSocket<S> {
    /// Uses `shutdown` instead of `poll_close` to shut the write half.
    #[cfg_attr(not(feature = "async-std"), allow(dead_code))]
    fn with_shutdown(mut self, shutdown: fn(&mut S) -> io::Result<()>) -> Self {
        self.inner.io_mut().shutdown_write = Some(shutdown);
        self
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream on which the handshake is already done, with a
    /// connection from `ws_proto` (for example after an upgrade by an HTTP
    /// server: `Connection::server(config)`), and the timer that drives the
    /// core's timers. The runtime modules have a `from_connection` that
    /// passes their own timer.
    pub fn from_connection(io: S, conn: Connection, timer: impl Timer) -> Self {
        Self::with_shared_timer(io, conn, Arc::new(timer))
    }

    fn with_shared_timer(io: S, conn: Connection, timer: Arc<dyn Timer>) -> Self {
        WebSocket {
            inner: new_inner(io, conn, timer),
        }
    }

    /// Receives the next message; `None` after the end. Cancel safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.inner.poll_recv(cx)).await
    }

    /// Sends a message and waits until the socket has taken it. Cancel safe
    /// after the first poll: the message is queued then, and written by
    /// the next call that flushes.
    ///
    /// While [`Config::max_send_buffer`] bytes or more are queued, the
    /// [`Config::send_buffer_policy`] decides: `Wait` (the default) first
    /// writes what is queued (cancelled then, the message was not
    /// queued), `Fail` returns [`UsageError::SendBufferFull`] and queues
    /// nothing.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room().await?;
        self.inner.queue(msg)?;
        self.flush().await
    }

    /// Sends a [`PreparedMessage`] (a frame built once for many
    /// connections: a broadcast) and waits until the socket has taken it.
    /// Server side only ([`UsageError::ServerOnly`] otherwise); the send
    /// buffer policy and cancel safety are as for [`send`](Self::send).
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

    /// Writes everything queued. Cancel safe: what was not written stays
    /// queued.
    ///
    /// While the peer does not read, the core's timers still run: when the
    /// idle timeout or the close timeout ends the connection, this returns
    /// an error (`TimedOut`) and `recv` reports the ending.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_flush_timed(cx)).await
    }

    /// Sends a ping. Cancel safe after the first poll, like `send`.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Ping(payload.into())).await
    }

    /// Starts the closing handshake and flushes the close frame. Keep
    /// calling [`recv`](Self::recv) until `None` to complete it. Cancel
    /// safe after the first poll, like `send`.
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
        &self.inner.io().io
    }

    /// Splits into a reading and a writing half, usable from two tasks.
    pub fn split(self) -> (WebSocketReader<S>, WebSocketWriter<S>) {
        let shared = Arc::new(Mutex::new(self.inner));
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

    /// How the connection ended, once `recv` reported the end.
    pub fn close_info(&self) -> Option<CloseInfo> {
        lock(&self.shared).close_info().cloned()
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
        WebSocket { inner }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketWriter<S> {
    /// Sends a message and waits until the socket has taken it. Cancel safe
    /// after the first poll, like [`WebSocket::send`].
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room().await?;
        lock(&self.shared).queue(msg)?;
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

    /// Queues a message without flushing; see [`WebSocket::feed`].
    pub fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        lock(&self.shared).queue(msg.into())
    }

    /// Sends a message uncompressed; see [`WebSocket::send_uncompressed`].
    pub async fn send_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room().await?;
        lock(&self.shared).queue_with(msg, false)?;
        self.flush().await
    }

    /// Writes everything queued. Cancel safe: what was not written stays
    /// queued. While the write waits, the core's timers run here too
    /// (whether or not the reading half is polled), so a peer that stopped
    /// reading ends it with an error once they end the connection, as for
    /// [`WebSocket::flush`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_flush_timed(cx)).await
    }

    /// Sends a ping. Cancel safe after the first poll, like `send`.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Ping(payload.into())).await
    }

    /// Starts the closing handshake; the reading half completes it. Cancel
    /// safe after the first poll, like `send`.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        lock(&self.shared).close(code, reason)?;
        self.flush().await
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        lock(&self.shared).buffered_amount()
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

/// Reads once.
async fn read<S: AsyncRead + Unpin>(io: &mut S, buf: &mut [u8]) -> Result<usize, Error> {
    loop {
        match poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, buf)).await {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            res => return Ok(res?),
        }
    }
}

/// Writes all of `buf` and flushes.
async fn write_all<S: AsyncWrite + Unpin>(io: &mut S, mut buf: &[u8]) -> Result<(), Error> {
    while !buf.is_empty() {
        match poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, buf)).await {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await?;
    Ok(())
}

/// Closes the stream (for TCP: shuts the write half).
async fn close<S: AsyncWrite + Unpin>(io: &mut S) -> io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *io).poll_close(cx)).await
}

/// Runs `fut` unless `deadline` passes first (then `None`). For the
/// transport, before the core exists.
async fn before<T>(
    timer: &dyn Timer,
    deadline: Option<Instant>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let mut fut = pin!(fut);
    let mut sleep = deadline.map(|d| timer.sleep_until(d));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        match &mut sleep {
            Some(s) => s.as_mut().poll_elapsed(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await
}

/// Runs one handshake I/O step; when the handshake's deadline passes first,
/// asks the core (`handle_timeout`) whether that ends the handshake.
async fn step<T>(
    timer: &dyn Timer,
    sleep: &mut Option<Pin<Box<dyn Sleep>>>,
    fut: impl Future<Output = Result<T, Error>>,
    mut handle_timeout: impl FnMut(Instant) -> Result<(), HandshakeError>,
) -> Result<T, Error> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if let Some(s) = sleep {
            if s.as_mut().poll_elapsed(cx).is_ready() {
                handle_timeout(timer.now())?;
                // The core does not see a timeout: the deadline no longer
                // applies to this handshake.
                *sleep = None;
            }
        }
        Poll::Pending
    })
    .await
}

/// The host and port to connect to for a `ws://` request.
fn target(request: &http::Request<()>) -> Result<(String, u16), Error> {
    let uri = request.uri();
    let host = uri.host().ok_or(Error::Usage(UsageError::InvalidRequest))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // wss:// is refused (with or without a port) rather than spoken as
    // plain TCP to a TLS port: `tls::smol::connect_with` and
    // `tls::async_std::connect_with` (feature `rustls`) take it.
    let port = match uri.scheme_str() {
        Some("ws") | Some("http") | None => uri.port_u16().unwrap_or(80),
        _ => return Err(Error::Usage(UsageError::InvalidRequest)),
    };
    Ok((host.to_string(), port))
}

/// Runs the client handshake over any stream, with `timer` for the
/// handshake timeout and, afterwards, the connection's timers.
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    request: http::Request<()>,
    config: Config,
    timer: impl Timer,
) -> Result<(WebSocket<S>, http::Response<()>), Error> {
    let timer: Arc<dyn Timer> = Arc::new(timer);
    let mut hs = ClientHandshake::new(timer.now(), request, config, seed()?)?;
    let mut sleep = hs.poll_timeout().map(|d| timer.sleep_until(d));
    let mut out = Vec::new();
    while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
    step(&*timer, &mut sleep, write_all(&mut io, &out), |now| {
        hs.handle_timeout(now)
    })
    .await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = step(&*timer, &mut sleep, read(&mut io, &mut buf), |now| {
            hs.handle_timeout(now)
        })
        .await?;
        if n == 0 {
            return Err(Error::Handshake(HandshakeError::Eof));
        }
        if hs.handle_input(&buf[..n])? {
            break;
        }
    }
    let (resp, conn) = hs.into_connection(timer.now())?;
    Ok((WebSocket::with_shared_timer(io, conn, timer), resp))
}

/// Accepts a WebSocket on a stream, accepting every valid request.
// `Reject` is large (headers and a body): the core's type.
#[allow(clippy::result_large_err)]
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    timer: impl Timer,
) -> Result<WebSocket<S>, Error> {
    accept_with(io, Config::default(), timer, |_| Ok(Accept::new())).await
}

/// Accepts with a config, a timer, and a callback that sees the request
/// (path, headers, offered subprotocols in `Sec-WebSocket-Protocol`) and
/// accepts (choosing a subprotocol, adding headers) or rejects with an HTTP
/// response.
///
/// A decision that cannot be applied (a subprotocol the client did not
/// offer: [`UsageError::ProtocolNotOffered`](ws_proto::UsageError)) is
/// the server's mistake: the client gets `500 Internal Server Error`, and
/// this returns the usage error.
pub async fn accept_with<S, F>(
    io: S,
    config: impl Into<Arc<Config>>,
    timer: impl Timer,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    accept_prefixed(io, &[], config, timer, decide).await
}

/// Like [`accept_with`], for a stream from which some bytes of the request
/// were already read (`head`), e.g. by an HTTP router that peeked at it.
pub async fn accept_prefixed<S, F>(
    io: S,
    head: &[u8],
    config: impl Into<Arc<Config>>,
    timer: impl Timer,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let config = config.into();
    // Boxed, the handshake's state (several KiB: the handshake object, its
    // read buffer, the request) is freed after the upgrade; inline, it
    // would stay part of every connection task that awaited it.
    Box::pin(accept_handshake(io, head, config, timer, decide)).await
}

async fn accept_handshake<S, F>(
    mut io: S,
    head: &[u8],
    config: Arc<Config>,
    timer: impl Timer,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let timer: Arc<dyn Timer> = Arc::new(timer);
    let mut hs = ServerHandshake::new(timer.now(), config);
    let mut sleep = hs.poll_timeout().map(|d| timer.sleep_until(d));
    let res = async {
        if !head.is_empty() {
            if let Some(req) = hs.handle_input(head)? {
                return Ok(req);
            }
        }
        let mut buf = vec![0u8; 4096];
        loop {
            let n = step(&*timer, &mut sleep, read(&mut io, &mut buf), |now| {
                hs.handle_timeout(now)
            })
            .await?;
            if n == 0 {
                return Err(Error::Handshake(HandshakeError::Eof));
            }
            if let Some(req) = hs.handle_input(&buf[..n])? {
                return Ok(req);
            }
        }
    }
    .await;
    let mut out = Vec::new();
    let req = match res {
        Ok(req) => req,
        Err(e) => {
            // An automatic error response (400, 426, 431...) if one is queued.
            while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
            if !out.is_empty() {
                let _ = write_all(&mut io, &out).await;
                let _ = close(&mut io).await;
            }
            return Err(e);
        }
    };
    let decision = decide(&req);
    let status = decision.as_ref().err().map(|r| r.status);
    match hs.decide(timer.now(), decision) {
        Ok(Ok(conn)) => {
            let mut ws = WebSocket::with_shared_timer(io, conn, timer);
            ws.flush().await?;
            Ok(ws)
        }
        Ok(Err(mut hs)) => {
            while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
            write_all(&mut io, &out).await?;
            let _ = close(&mut io).await;
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
            let _ = close(&mut io).await;
            Err(e.into())
        }
    }
}

//! `futures-io` adapter for the [`ws_proto`] WebSocket core: runs on
//! async-std and on smol (and on any executor, given a [`Timer`]).
//!
//! Only the pump loop lives here: every protocol decision is made by
//! `ws-proto`. Reads go through one shared per-thread buffer, so an idle
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
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use ws_proto::{ClientHandshake, Connection, Event, ServerHandshake, Transmit};

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

/// Unwritten bytes above which `recv` stops reading until the socket drains.
const READ_PAUSE: usize = 1 << 20;

/// Size of the shared per-thread read buffer.
/// Most slices handed to one vectored write.
const WRITE_SLICES: usize = 32;

const READ_BUF: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

fn seed() -> Result<[u8; 32], Error> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).map_err(|e| Error::from(io::Error::other(e)))?;
    Ok(s)
}

/// Wakes every task that waits for the socket to become writable: the
/// reading half flushes pongs and close echoes, the writing half flushes
/// messages, and a socket keeps only one write waker.
#[derive(Default)]
struct WriteWakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

impl WriteWakers {
    fn register(&self, side: Side, waker: &Waker) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match &mut slots[side as usize] {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = std::mem::take(&mut *self.slots.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }
}

/// Which half is polling: indexes [`WriteWakers::slots`].
#[derive(Clone, Copy)]
enum Side {
    Read = 0,
    Write = 1,
}

/// Where the shutdown of our write half stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shut {
    No,
    /// The core asked for it; `poll_close` has not completed yet.
    Wanted,
    Done,
}

struct Inner<S> {
    io: S,
    conn: Connection,
    shut: Shut,
    /// Shuts the write half where `poll_close` of the stream does not
    /// (async-std's `TcpStream` only flushes there).
    shutdown_write: Option<fn(&mut S) -> io::Result<()>>,
    write_wakers: Arc<WriteWakers>,
    write_waker: Waker,
    /// The tasks waiting on the timer: split halves both run it, and the
    /// sleep keeps only one waker.
    timer_wakers: Arc<WriteWakers>,
    timer_waker: Waker,
    /// A timer ended the connection: what is unwritten will never be taken.
    timer_closed: bool,
    timer: Arc<dyn Timer>,
    sleep: Option<Pin<Box<dyn Sleep>>>,
    io_error: Option<Error>,
    close_info: Option<CloseInfo>,
    finished: bool,
    /// Set when the connection is in a [`server::Clients`] set.
    tracker: Option<ws_proto::clients::Tracker>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    fn new(io: S, conn: Connection, timer: Arc<dyn Timer>) -> Self {
        let write_wakers = Arc::new(WriteWakers::default());
        let timer_wakers = Arc::new(WriteWakers::default());
        Inner {
            io,
            conn,
            shut: Shut::No,
            shutdown_write: None,
            write_waker: Waker::from(write_wakers.clone()),
            write_wakers,
            timer_waker: Waker::from(timer_wakers.clone()),
            timer_wakers,
            timer_closed: false,
            timer,
            sleep: None,
            io_error: None,
            close_info: None,
            finished: false,
            tracker: None,
        }
    }

    fn now(&self) -> Instant {
        self.timer.now()
    }

    /// Writes everything the core has queued. `Ready(Ok)` once it is all
    /// in the socket.
    fn poll_flush(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<(), Error>> {
        if let Some(e) = &self.io_error {
            return Poll::Ready(Err(e.clone()));
        }
        // The socket keeps one write waker: give it one that wakes both
        // halves, and remember which task this one is.
        self.write_wakers.register(side, cx.waker());
        let mut wcx = Context::from_waker(&self.write_waker);
        loop {
            // Vectored writes straight from the core's queue: large
            // payloads are not copied into a write buffer, and the frames
            // queued since the last write go out in one system call (one
            // slice with `send`, cheaper than a one-slice `writev`).
            let mut slices = [io::IoSlice::new(&[]); WRITE_SLICES];
            let n = self.conn.transmit_slices(&mut slices);
            if n > 0 {
                let res = if n == 1 {
                    Pin::new(&mut self.io).poll_write(&mut wcx, &slices[0])
                } else {
                    Pin::new(&mut self.io).poll_write_vectored(&mut wcx, &slices[..n])
                };
                match res {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(self.io_failed(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(w)) => {
                        self.conn.advance_transmit(w);
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(self.io_failed(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if let Some(Transmit::Shutdown) = self.conn.poll_shutdown() {
                self.shut = Shut::Wanted;
            }
            if self.shut == Shut::Wanted {
                // RFC 6455 §7.1.1: our side of TCP closes now (for a TCP
                // stream, `poll_close` shuts the write half). Errors are
                // irrelevant at this point: the peer may already be gone.
                let closed = match self.shutdown_write {
                    Some(shutdown) => Poll::Ready(shutdown(&mut self.io)),
                    None => Pin::new(&mut self.io).poll_close(&mut wcx),
                };
                return match closed {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(_) => {
                        self.shut = Shut::Done;
                        Poll::Ready(Ok(()))
                    }
                };
            }
            if self.shut == Shut::Done {
                return Poll::Ready(Ok(()));
            }
            return match Pin::new(&mut self.io).poll_flush(&mut wcx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(self.io_failed(e))),
                other => other.map(|_| Ok(())),
            };
        }
    }

    /// Arms the sleep for the core's next deadline and fires
    /// `handle_timeout` when it passed; `true` if it fired. The sleep wakes
    /// the tasks of both halves (`side` is the one polling).
    fn poll_timer(&mut self, cx: &mut Context<'_>, side: Side) -> bool {
        let Some(deadline) = self.conn.poll_timeout() else {
            return false;
        };
        match &mut self.sleep {
            Some(s) if s.deadline() == deadline => {}
            Some(s) => s.as_mut().reset(deadline),
            None => self.sleep = Some(self.timer.sleep_until(deadline)),
        }
        self.timer_wakers.register(side, cx.waker());
        let mut tcx = Context::from_waker(&self.timer_waker);
        let fired = match &mut self.sleep {
            Some(s) => s.as_mut().poll_elapsed(&mut tcx).is_ready(),
            None => false,
        };
        if fired {
            let now = self.now();
            self.conn.handle_timeout(now);
            if self.conn.is_closed() {
                self.timer_closed = true;
            }
        }
        fired
    }

    /// [`poll_flush`](Self::poll_flush) for `send`/`flush` (of a
    /// `WebSocket` or its writing half): while a
    /// peer that does not read keeps the write waiting, the core's timers
    /// still run (the heartbeat's idle timeout, the close timeout); when
    /// one ends the connection, what was queued is dropped and the wait
    /// ends with an error (`recv` then reports how the connection ended).
    fn poll_flush_timed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match self.poll_flush(cx, Side::Write) {
                Poll::Pending => {}
                ready => return ready,
            }
            // A timer of either half may have ended the connection (then
            // the reading half's timer woke this task too).
            if !self.timer_closed && !self.poll_timer(cx, Side::Write) {
                return Poll::Pending;
            }
            if self.timer_closed {
                // The shutdown the core asks for, best effort (the core
                // dropped what the peer did not take).
                let _ = self.poll_flush(cx, Side::Write);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection timed out before the peer took the data",
                )
                .into()));
            }
        }
    }

    fn io_failed(&mut self, e: io::Error) -> Error {
        let err = Error::from(e);
        if self.io_error.is_none() {
            self.io_error = Some(err.clone());
            let now = self.now();
            self.conn.handle_eof(now);
        }
        err
    }

    /// Drives the connection until the next message or the end.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if let Some(t) = &self.tracker {
                // Messages other tasks queued for this client.
                t.drain(&mut self.conn, cx.waker(), self.timer.now());
            }
            if let Some(ev) = self.conn.poll_event() {
                match ev {
                    Event::Text(t) => return Poll::Ready(Some(Ok(Message::Text(t)))),
                    Event::Binary(b) => return Poll::Ready(Some(Ok(Message::Binary(b)))),
                    Event::Ping(p) => {
                        // Answer promptly; a blocked write must not stop reading.
                        let _ = self.poll_flush(cx, Side::Read);
                        return Poll::Ready(Some(Ok(Message::Ping(p))));
                    }
                    Event::Pong(p) => return Poll::Ready(Some(Ok(Message::Pong(p)))),
                    Event::Closed(info) => {
                        // Last words (a shutdown after a timeout): best effort.
                        let _ = self.poll_flush(cx, Side::Read);
                        self.close_info = Some(info.clone());
                        self.finished = true;
                        // Out of the client set: the connection ended.
                        self.tracker = None;
                        return Poll::Ready(Some(info.into_result(self.io_error.take())));
                    }
                    _ => continue,
                }
            }
            if self.finished || self.conn.is_closed() {
                return Poll::Ready(None);
            }
            let paused = match self.poll_flush(cx, Side::Read) {
                Poll::Ready(Err(_)) => continue, // the core saw it as EOF; report it
                // The shutdown after a finished close handshake ends a
                // server's connection: report it.
                Poll::Ready(Ok(())) if self.conn.is_closed() => continue,
                // Backpressure: while the peer does not take what we owe it,
                // stop reading what it sends (but keep the timers running:
                // the heartbeat is what drops a peer that stopped reading
                // for good).
                Poll::Pending => self.conn.buffered_amount() > READ_PAUSE,
                _ => false,
            };
            if self.tracker.as_ref().is_some_and(|t| t.stalled()) && !self.conn.should_wait() {
                // Messages for this client waited for room; the flush made some.
                continue;
            }
            if self.poll_timer(cx, Side::Read) {
                continue;
            }
            if paused {
                return Poll::Pending;
            }
            let res = READ_BUFFER.with(|cell| {
                let mut guard;
                let mut local;
                let buf: &mut Vec<u8> = match cell.try_borrow_mut() {
                    Ok(g) => {
                        guard = g;
                        &mut guard
                    }
                    Err(_) => {
                        local = vec![0; READ_BUF];
                        &mut local
                    }
                };
                match Pin::new(&mut self.io).poll_read(cx, buf) {
                    Poll::Ready(Ok(0)) => {
                        let now = self.timer.now();
                        self.conn.handle_eof(now);
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Ok(n)) => {
                        let now = self.timer.now();
                        self.conn.handle_input(now, &buf[..n]);
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            });
            match res {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => {
                    self.io_failed(e);
                    continue;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn queue(&mut self, msg: Message) -> Result<(), Error> {
        self.queue_with(msg, true)
    }

    fn queue_with(&mut self, msg: Message, compress: bool) -> Result<(), Error> {
        if let Some(e) = &self.io_error {
            return Err(e.clone());
        }
        // The clock is read only for a close frame.
        let timer = &self.timer;
        self.conn.send_with_clock(|| timer.now(), msg, compress)?;
        Ok(())
    }

    fn queue_prepared(&mut self, msg: &PreparedMessage) -> Result<(), Error> {
        if let Some(e) = &self.io_error {
            return Err(e.clone());
        }
        self.conn.send_prepared(msg)?;
        Ok(())
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let now = self.now();
        Ok(self.conn.close(now, code, reason)?)
    }

    fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount()
    }
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
            .field("state", &self.inner.conn.state())
            .field("role", &self.inner.conn.role())
            .finish()
    }
}

impl<S> WebSocket<S> {
    /// Uses `shutdown` instead of `poll_close` to shut the write half.
    #[cfg_attr(not(feature = "async-std"), allow(dead_code))]
    fn with_shutdown(mut self, shutdown: fn(&mut S) -> io::Result<()>) -> Self {
        self.inner.shutdown_write = Some(shutdown);
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
            inner: Inner::new(io, conn, timer),
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
        while self.inner.conn.should_wait() {
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
        &self.inner.conn
    }

    /// How the connection ended, once `recv` reported the end.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.inner.close_info.as_ref()
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        self.inner.buffered_amount()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.io
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

/// Queue limit above which `Sink::poll_ready` flushes first (it also does
/// when `Config::max_send_buffer` is reached under `SendBufferPolicy::Wait`).
const SINK_HIGH_WATER: usize = 64 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let inner = &mut self.get_mut().inner;
        if inner.conn.buffered_amount() > SINK_HIGH_WATER || inner.conn.should_wait() {
            inner.poll_flush_timed(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().inner.queue(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush_timed(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let inner = &mut self.get_mut().inner;
        // Polled again after `Pending`: the close frame is already queued.
        if inner.conn.is_open() {
            inner.close(CloseCode::NORMAL, "")?;
        }
        inner.poll_flush_timed(cx)
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
        lock(&self.shared).close_info.clone()
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
        while lock(&self.shared).conn.should_wait() {
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
        let mut g = lock(&self.shared);
        if g.conn.buffered_amount() > SINK_HIGH_WATER || g.conn.should_wait() {
            g.poll_flush_timed(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        lock(&self.shared).queue(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_flush_timed(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut g = lock(&self.shared);
        // Polled again after `Pending`: the close frame is already queued.
        if g.conn.is_open() {
            g.close(CloseCode::NORMAL, "")?;
        }
        g.poll_flush_timed(cx)
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

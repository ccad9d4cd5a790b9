//! Blocking adapter for the [`ws_proto`] WebSocket core, over `std::net`
//! and any [`Read`] + [`Write`] stream.
//!
//! Only the pump loop lives here: every protocol decision is made by
//! `ws-proto`. No thread is started behind your back.
//!
//! ```no_run
//! # fn demo() -> Result<(), ws_blocking::Error> {
//! use ws_blocking::Message;
//! let (mut ws, _response) = ws_blocking::connect("ws://127.0.0.1:9001/")?;
//! ws.send(Message::text("hello"))?;
//! while let Some(msg) = ws.recv() {
//!     println!("{:?}", msg?);
//! }
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! - [`server`]: a server like `ws`'s `WebSocketServer`:
//!   [`Server`](server::Server) with a
//!   [`ServerPolicy`](server::ServerPolicy), the request of each client
//!   ([`RequestInfo`](server::RequestInfo)), the connected clients with
//!   broadcast ([`Clients`](server::Clients)), and upgrades of sockets
//!   that your own code accepted ([`Upgrader`](server::Upgrader)).
//!   Each connection comes as the two halves of [`WebSocket::split`], so
//!   other threads can send to it while its own thread waits in `recv`.
//! - [`client`]: clients with `ws`'s options
//!   ([`ClientOptions`](client::ClientOptions): origin, headers,
//!   subprotocols, redirects, proxies, `ws+unix:` URLs) and a reconnect
//!   helper.
//! - `tls` (feature `rustls`): `wss://` clients and servers with rustls.
//!
//! ```no_run
//! # fn demo() -> Result<(), ws_blocking::Error> {
//! use ws_blocking::server::{Server, ServerPolicy};
//! // Echo server on /echo, one thread per client; other paths get 404.
//! let server = Server::bind("127.0.0.1:8080", ServerPolicy::new().path("/echo"))?;
//! loop {
//!     let (reader, writer, _info) = server.accept()?;
//!     std::thread::spawn(move || {
//!         let mut ws = reader.unsplit(writer);
//!         while let Some(Ok(msg)) = ws.recv() {
//!             if msg.is_data() && ws.send(msg).is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! ```no_run
//! # fn demo() -> Result<(), ws_blocking::Error> {
//! use ws_blocking::client::{connect_with_options, ClientOptions};
//! let options = ClientOptions::new().origin("https://example.com").follow_redirects(true);
//! // `wss://` URLs too, with the feature `rustls`.
//! let (mut ws, _response) = connect_with_options("ws://127.0.0.1:8080/echo", options)?;
//! ws.send(ws_blocking::Message::text("hello"))?;
//! # Ok(()) }
//! ```
//!
//! # Timers
//!
//! The core's timers (the close timeout, and the handshake timeout while
//! connecting or accepting) run on read timeouts: before each blocking read
//! the adapter sets the stream's read timeout to the time left until
//! [`Connection::poll_timeout`], and a read that fails with `WouldBlock` or
//! `TimedOut` becomes [`Connection::handle_timeout`]. The adapter owns the
//! read timeout of the stream it drives; [`Transport`] is the small trait
//! that gives it access (implemented for `TcpStream` and `UnixStream`).
//!
//! Writes block until the stream takes the bytes, or until one of the
//! core's deadlines passes (the heartbeat's idle timeout, the close
//! timeout: the unsplit [`WebSocket`] bounds each write by the next one, as
//! it does reads). To bound them further, set a write timeout on the
//! socket yourself (`TcpStream::set_write_timeout`) before handing it
//! over: a write that times out is an I/O error, which ends the connection.
//!
//! # Answers: pongs and close echoes
//!
//! `recv` answers pings and close frames itself, but it never waits for
//! the peer to take those answers: it writes them only as far as the
//! stream takes them at once (in non-blocking mode, switched on around the
//! write and off again before it reads or returns), and what is left stays
//! queued. So a peer that floods pings and reads nothing cannot hold the
//! reading thread in a write: `recv` keeps reading and delivering
//! messages. Memory stays bounded: the core answers only the latest ping
//! once 64 KiB wait to be written (RFC 6455 §5.5.3), and while the stream
//! stays full `recv` tries again with a growing pause (1 ms, doubling, at
//! most 1 s while 128 KiB or less are queued), waking from its read to do
//! so. What is left goes out with the next `send` or `flush` (blocking, in
//! order, before the new message), or with a later `recv` once the peer
//! reads again.
//!
//! Two exceptions: data you queued with [`WebSocket::feed`] is written by
//! `recv` blocking, as `feed` promises (the answers queued with it go out
//! in the same write); and on a stream whose [`Transport::set_nonblocking`]
//! returns `Unsupported` (the default, for streams of your own), `recv`
//! writes blocking as it did before. When the connection ends, its last
//! words (a close echo, the shutdown of the write half) get a blocking
//! write bounded by [`Config::close_timeout`]; past that the stream is
//! shut down both ways.
//!
//! `TcpStream` and `UnixStream` switch modes with their `set_nonblocking`,
//! on every platform std supports (Windows included). Over TLS
//! (`tls::TlsStream`, feature `rustls`), records the socket does not take stay
//! in rustls' buffer and go out the same way: a read of a `TlsStream`
//! writes them only as far as the socket takes them, where
//! `rustls::Stream` would wait until all are written. The mode belongs to the
//! socket, not to a handle: do not write to the socket from a clone
//! (`try_clone`) of it while a `WebSocket` or its halves use it.
//!
//! # Sending while another thread receives
//!
//! [`WebSocket::split`] gives a [`WebSocketReader`] and a
//! [`WebSocketWriter`] that can live on two threads (for `TcpStream` and
//! `UnixStream`, or any `S` with `&S: Read + Write`). The reader reads
//! without holding any lock and hands the bytes to the core under a short
//! lock; both halves write under one write lock, so a pong or close echo
//! from the reader never lands in the middle of the writer's frame. The
//! reader never waits for the writer: while the writer is sending, the
//! writer also writes the pongs and close echoes the reader queued, before
//! it returns. The writer waits for the reader only while the reader
//! writes a pong or a close echo, which it does without waiting for the
//! peer (see [Answers](#answers-pongs-and-close-echoes)): the reader
//! switches the socket to non-blocking mode only while it holds the write
//! lock, so the writer's writes stay blocking.
//!
//! ```no_run
//! # fn demo() -> Result<(), ws_blocking::Error> {
//! use ws_blocking::{CloseCode, Message};
//! let (ws, _) = ws_blocking::connect("ws://127.0.0.1:9001/")?;
//! let (mut rx, mut tx) = ws.split();
//! let printer = std::thread::spawn(move || {
//!     for msg in rx {
//!         println!("{:?}", msg);
//!     }
//! });
//! tx.send(Message::text("hello"))?;
//! tx.close(CloseCode::NORMAL, "")?;
//! printer.join().unwrap();
//! # Ok(()) }
//! ```
//!
//! # Endings
//!
//! `recv` answers pings and completes the closing handshake, so keep
//! calling it until it returns `None`. After a clean close it yields
//! `Message::Close` once, then `None`; any other ending yields one `Err`,
//! then `None`. [`WebSocket::close_info`] then says how it ended.
//!
//! By the time `recv` reports the end, the write half of the stream is shut
//! (the core asks for it), so the peer sees the end at once even if the
//! `WebSocket` lives on.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use ws_proto::{Bytes, Connection, Event, Transmit};

pub use ws_proto::{
    http, Accept, CloseCode, CloseFrame, CloseInfo, Config, DeflateConfig, Error, HandshakeError,
    Message, ProtocolError, Reject, Role, UsageError, Utf8Bytes,
};

pub mod client;
mod handshake;
pub mod server;
mod split;
#[cfg(feature = "rustls")]
pub mod tls;

pub use handshake::{
    accept, accept_prefixed, accept_stream, accept_tcp, accept_with, client_handshake, connect,
    connect_with,
};
pub use split::{WebSocketReader, WebSocketWriter};
pub use ws_proto::{PreparedMessage, SendBufferPolicy};

/// Size of the shared per-thread read buffer.
const READ_BUF: usize = 64 * 1024;

/// Slices handed to one vectored write.
const WRITE_SLICES: usize = 64;

/// After `recv` found the stream full while writing answers, it tries again
/// this soon, then backs off (doubling) while the peer takes nothing.
const RETRY_MIN: Duration = Duration::from_millis(1);

/// The longest wait between two tries while little is queued.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// With more than this queued, the wait keeps doubling past
/// [`RETRY_MAX`] (up to [`RETRY_FAR`]): each try that finds the stream full
/// lets the core queue one more pong (it coalesces the others), so the
/// doubling is what bounds the queue when the peer never reads.
const RETRY_HARD: usize = 128 * 1024;

/// The longest wait between two tries.
const RETRY_FAR: Duration = Duration::from_secs(24 * 60 * 60);

/// The largest control frame: 2 header bytes, a mask key, 125 bytes.
const MAX_CONTROL_FRAME: usize = 131;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

// -------------------------------------------------------------- transport --

/// What the adapter needs from a blocking stream besides `Read + Write`.
///
/// - `set_read_timeout` bounds the next read, so that the core's timers
///   fire while the adapter waits for input. The adapter never passes a zero
///   duration.
/// - `set_write_timeout` and `write_timeout` (optional: by default there
///   is none) bound a write in the same way, so that the timers (the
///   heartbeat's idle timeout, the close timeout) also end a write to a
///   peer that stopped reading. A write timeout the stream had when it was
///   handed over is kept as an upper bound.
/// - `shutdown` carries out [`Transmit::Shutdown`] (the TCP FIN after the
///   closing handshake) with [`Shutdown::Write`]. Split halves also use
///   [`Shutdown::Both`] in place of dropping the transport once the
///   connection has ended, when the other half may be blocked on it.
/// - `set_nonblocking` (optional) lets `recv` write the answers the core
///   queued by itself (pongs, a close echo) only as far as the stream
///   takes them without waiting (see [Answers](crate#answers-pongs-and-close-echoes)).
///   Without it (the default returns [`io::ErrorKind::Unsupported`]),
///   `recv` writes them blocking, bounded only by the core's timers and
///   the stream's write timeout.
///
/// The signatures are those of [`TcpStream`], which implements it, as does
/// `UnixStream` on Unix. For a stream without timeouts (an in-memory pipe),
/// `set_read_timeout` may do nothing: timers then run only when a read
/// returns.
pub trait Transport {
    /// Sets how long a read may block; `None` blocks until data arrives.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sets how long a write may block; `None` blocks until the stream
    /// takes the bytes. The default does nothing (writes then block until
    /// the stream takes the bytes, whatever the timers say).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// The write timeout set on the stream; the default says there is
    /// none.
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(None)
    }

    /// Shuts down the read half, the write half, or both.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;

    /// Moves the stream into or out of non-blocking mode: in it, a write
    /// the stream cannot take at once fails with
    /// [`io::ErrorKind::WouldBlock`]. The adapter turns it on only around
    /// the writes of `recv` (which it makes under the write lock, so a
    /// split writing half never sees it), and off again before it reads or
    /// returns. The default returns [`io::ErrorKind::Unsupported`]: then
    /// `recv` writes blocking.
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let _ = nonblocking;
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::write_timeout(self)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        std::os::unix::net::UnixStream::write_timeout(self)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_nonblocking(self, nonblocking)
    }
}

impl<T: Transport + ?Sized> Transport for &T {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        (**self).write_timeout()
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        (**self).shutdown(how)
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        (**self).set_nonblocking(nonblocking)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        (**self).write_timeout()
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        (**self).shutdown(how)
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        (**self).set_nonblocking(nonblocking)
    }
}

/// The read timeout last set on the stream, to skip redundant system calls.
#[derive(Debug, Default, Clone, Copy)]
struct ReadTimeout(Option<Option<Duration>>);

impl ReadTimeout {
    fn set<T: Transport + ?Sized>(&mut self, io: &T, t: Option<Duration>) -> io::Result<()> {
        if self.0 != Some(t) {
            self.0 = None;
            io.set_read_timeout(t)?;
            self.0 = Some(t);
        }
        Ok(())
    }
}

/// The write timeout last set on the stream, like [`ReadTimeout`], and
/// the one the stream had when the adapter took it over (the user's bound
/// on every write).
#[derive(Debug, Default, Clone, Copy)]
struct WriteTimeout {
    set: Option<Option<Duration>>,
    user: Option<Duration>,
}

impl WriteTimeout {
    fn of<T: Transport + ?Sized>(io: &T) -> Self {
        let user = io.write_timeout().unwrap_or(None);
        WriteTimeout {
            set: Some(user),
            user,
        }
    }

    /// Bounds the next write by `deadline` (the time left until the core's
    /// next deadline) and the user's timeout.
    fn set<T: Transport + ?Sized>(&mut self, io: &T, deadline: Option<Duration>) -> io::Result<()> {
        let t = match (deadline, self.user) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.set != Some(t) {
            self.set = None;
            io.set_write_timeout(t)?;
            self.set = Some(t);
        }
        Ok(())
    }
}

fn seed() -> Result<[u8; 32], Error> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).map_err(|e| Error::from(io::Error::other(e)))?;
    Ok(s)
}

/// Whether a read error means "the read timeout expired".
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads once into the per-thread buffer and hands the result to `f`.
fn read_into<R: Read + ?Sized, T>(r: &mut R, f: impl FnOnce(io::Result<&[u8]>) -> T) -> T {
    READ_BUFFER.with(|cell| {
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
        match r.read(buf) {
            Ok(n) => f(Ok(&buf[..n])),
            Err(e) => f(Err(e)),
        }
    })
}

// ------------------------------------------------------------------- core --

/// The connection and what the adapter remembers about its end; shared by
/// [`WebSocket`] and, behind a mutex, by its split halves.
#[derive(Debug)]
struct Core {
    conn: Connection,
    /// The transport failure that ended the connection, if any.
    io_error: Option<Error>,
    close_info: Option<CloseInfo>,
    /// `recv` reported the end.
    finished: bool,
    /// Split halves only: the writing half is flushing, and writes what
    /// the reading half queues meanwhile.
    writer_active: bool,
    /// Set when the connection is in a [`server::Clients`] set.
    tracker: Option<server::Tracker>,
    /// The user queued data with `feed` that is not written yet: `recv`
    /// writes it blocking, as `feed` promises.
    fed: bool,
    /// `recv` last found the stream full while writing answers.
    stall: Option<Stall>,
    /// The stream has no non-blocking mode: `recv` writes blocking.
    blocking_only: bool,
}

/// When `recv` tries again to write the answers a full stream did not
/// take, and how long it waited last.
#[derive(Debug, Clone, Copy)]
struct Stall {
    at: Instant,
    wait: Duration,
}

/// What `recv` does with one event.
enum Step {
    /// Hand the message to the user; `true`: write the queued pong first.
    Deliver(Message, bool),
    /// The terminal result; write what is left, then report it.
    End(Result<Message, Error>),
    /// Nothing for the user.
    Skip,
}

impl Core {
    fn new(conn: Connection) -> Self {
        Core {
            conn,
            io_error: None,
            close_info: None,
            finished: false,
            writer_active: false,
            tracker: None,
            fed: false,
            stall: None,
            blocking_only: false,
        }
    }

    /// Whether `recv` writes what is queued blocking: the user fed data
    /// (which `recv` promises to write), or the stream cannot do otherwise.
    fn writes_blocking(&self) -> bool {
        self.fed || self.blocking_only
    }

    /// Whether `recv` may try to write answers now.
    fn answer_due(&self, now: Instant) -> bool {
        self.stall.map_or(true, |s| now >= s.at)
    }

    /// When `recv`, waiting for input, must wake up to try writing again.
    fn answer_deadline(&self) -> Option<Instant> {
        if self.writes_blocking() || !self.conn.wants_transmit() {
            return None;
        }
        self.stall.map(|s| s.at)
    }

    /// Everything queued went out.
    fn written(&mut self) {
        self.stall = None;
        self.fed = false;
    }

    /// `recv`'s non-blocking write found the stream full after `wrote`
    /// bytes. A peer that took a frame's worth is reading: try again
    /// soon. Otherwise wait twice as long as last time.
    fn stalled(&mut self, now: Instant, wrote: usize) {
        let wait = match self.stall {
            Some(s) if wrote < MAX_CONTROL_FRAME => {
                let w = s.wait.saturating_mul(2);
                if self.conn.buffered_amount() <= RETRY_HARD {
                    w.min(RETRY_MAX)
                } else {
                    w.min(RETRY_FAR)
                }
            }
            _ => RETRY_MIN,
        };
        self.stall = Some(Stall {
            at: now + wait,
            wait,
        });
    }

    fn done(&self) -> bool {
        self.finished || self.conn.is_closed()
    }

    fn on_event(&mut self, ev: Event) -> Step {
        match ev {
            Event::Text(t) => Step::Deliver(Message::Text(t), false),
            Event::Binary(b) => Step::Deliver(Message::Binary(b), false),
            // Answer promptly, before the user gets to it.
            Event::Ping(p) => Step::Deliver(Message::Ping(p), true),
            Event::Pong(p) => Step::Deliver(Message::Pong(p), false),
            Event::Closed(info) => {
                self.close_info = Some(info.clone());
                self.finished = true;
                // Out of the client set: the connection ended.
                self.tracker = None;
                Step::End(info.into_result(self.io_error.clone()))
            }
            _ => Step::Skip,
        }
    }

    /// Records a transport failure; the core sees it as the end of input.
    fn io_failed(&mut self, e: io::Error) -> Error {
        let err = Error::from(e);
        if self.io_error.is_none() {
            self.io_error = Some(err.clone());
            self.conn.handle_eof(Instant::now());
        }
        err
    }

    /// Hands the result of one read to the core.
    fn handle_read(&mut self, r: io::Result<&[u8]>) {
        let now = Instant::now();
        match r {
            Ok([]) => self.conn.handle_eof(now),
            Ok(b) => self.conn.handle_input(now, b),
            // A deadline may have passed; the core checks.
            Err(e) if is_timeout(&e) => self.conn.handle_timeout(now),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.io_failed(e);
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
        self.conn.send_with_clock(Instant::now, msg, compress)?;
        Ok(())
    }

    fn queue_prepared(&mut self, msg: &PreparedMessage) -> Result<(), Error> {
        if let Some(e) = &self.io_error {
            return Err(e.clone());
        }
        self.conn.send_prepared(msg)?;
        Ok(())
    }
}

// -------------------------------------------------------------- WebSocket --

/// A WebSocket over a blocking stream.
///
/// Receive with [`recv`](Self::recv) (or as an [`Iterator`]), send with
/// [`send`](Self::send). `recv` also answers pings and completes the
/// closing handshake, so keep calling it until it returns `None`. After a
/// clean close `recv` yields `Message::Close` once, then `None`; any other
/// ending yields one `Err`, then `None`.
///
/// To send from one thread while another waits in `recv`, use
/// [`split`](Self::split).
pub struct WebSocket<S> {
    io: S,
    core: Core,
    read_timeout: ReadTimeout,
    write_timeout: WriteTimeout,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.core.conn.state())
            .field("role", &self.core.conn.role())
            .finish()
    }
}

impl<S> WebSocket<S> {
    /// The protocol state machine, for its getters.
    pub fn connection(&self) -> &Connection {
        &self.core.conn
    }

    /// How the connection ended, once `recv` reported the end.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.core.close_info.as_ref()
    }

    /// Bytes queued and not yet written to the stream.
    pub fn buffered_amount(&self) -> usize {
        self.core.conn.buffered_amount()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl<S: Read + Write + Transport> WebSocket<S> {
    /// Wraps a stream on which the handshake is already done, with a
    /// connection from `ws_proto` (for example after an upgrade by another
    /// HTTP server: `Connection::server(config)`). The adapter takes over
    /// the stream's read timeout.
    pub fn from_connection(io: S, conn: Connection) -> Self {
        WebSocket {
            write_timeout: WriteTimeout::of(&io),
            io,
            core: Core::new(conn),
            read_timeout: ReadTimeout::default(),
        }
    }

    /// Receives the next message, blocking; `None` after the end.
    pub fn recv(&mut self) -> Option<Result<Message, Error>> {
        loop {
            if let Some(ev) = self.core.conn.poll_event() {
                match self.core.on_event(ev) {
                    Step::Deliver(m, flush) => {
                        if flush {
                            // An error here is reported by a later `recv`.
                            let _ = self.write_answers();
                        }
                        return Some(Ok(m));
                    }
                    Step::End(r) => {
                        // Rule 2 of the core: last words (the shutdown of
                        // our write half), best effort.
                        self.write_last_words();
                        // A transport error is reported once, here (as in
                        // ws-tokio and ws-async-std); from now on the
                        // connection is simply closed.
                        self.core.io_error = None;
                        return Some(r);
                    }
                    Step::Skip => continue,
                }
            }
            if self.core.done() {
                return None;
            }
            if self.write_answers().is_err() {
                continue; // the core saw it as the end; report it
            }
            if self.core.conn.is_closed() {
                // The shutdown after a finished close handshake ended a
                // server's connection: report it.
                continue;
            }
            let now = Instant::now();
            let core_deadline = self.core.conn.poll_timeout();
            if core_deadline.is_some_and(|d| d <= now) {
                self.core.conn.handle_timeout(now);
                continue;
            }
            // Wake up in time to try the answers a full stream did not take.
            let deadline = match (core_deadline, self.core.answer_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = match deadline {
                Some(d) if d <= now => continue,
                Some(d) => Some(d - now),
                None => None,
            };
            if let Err(e) = self.read_timeout.set(&self.io, timeout) {
                self.core.io_failed(e);
                continue;
            }
            let core = &mut self.core;
            read_into(&mut self.io, |r| core.handle_read(r));
        }
    }

    /// Sends a message: queues it and writes everything queued.
    ///
    /// While [`Config::max_send_buffer`] bytes or more are queued, the
    /// [`Config::send_buffer_policy`] decides: `Wait` (the default) first
    /// writes what is queued, `Fail` returns
    /// [`UsageError::SendBufferFull`] and queues nothing.
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room()?;
        self.core.queue(msg)?;
        self.flush()
    }

    /// Sends a [`PreparedMessage`] (a frame built once for many
    /// connections: a broadcast): queues it and writes everything queued.
    /// Server side only ([`UsageError::ServerOnly`] otherwise); the send
    /// buffer policy applies as for [`send`](Self::send).
    pub fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<(), Error> {
        self.wait_room()?;
        self.core.queue_prepared(msg)?;
        self.flush()
    }

    /// [`SendBufferPolicy::Wait`]: writes what is queued while it is over
    /// the bound.
    fn wait_room(&mut self) -> Result<(), Error> {
        while self.core.conn.should_wait() {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues a message without writing it. It is written by the next
    /// [`flush`](Self::flush), `send`, or `recv` (which writes before it
    /// waits for input, so an echo loop of `recv` + `feed` writes all the
    /// answers to one read in one write).
    pub fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.core.queue(msg.into())?;
        self.core.fed = true;
        Ok(())
    }

    /// [`send`](Self::send) without compression: the message goes out
    /// uncompressed even when permessage-deflate is negotiated (Node's
    /// `ws.send(data, { compress: false })`), for data that is already
    /// compressed or too small to gain.
    pub fn send_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room()?;
        self.core.queue_with(msg, false)?;
        self.flush()
    }

    /// [`feed`](Self::feed) without compression, like
    /// [`send_uncompressed`](Self::send_uncompressed).
    pub fn feed_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.core.queue_with(msg.into(), false)?;
        self.core.fed = true;
        Ok(())
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.write_queued()
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Ping(payload.into()))
    }

    /// Starts the closing handshake and writes the close frame. Keep
    /// calling [`recv`](Self::recv) until `None` to complete it.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.core.conn.close(Instant::now(), code, reason)?;
        self.flush()
    }

    /// Splits into a reading and a writing half, usable from two threads
    /// (see the crate docs). Available for streams that can be read and
    /// written through a shared reference, such as `TcpStream` and
    /// `UnixStream`.
    ///
    /// Keep calling [`WebSocketReader::recv`]: it answers pings, completes
    /// the closing handshake and runs the close timer, also after
    /// [`WebSocketWriter::close`].
    pub fn split(self) -> (WebSocketReader<S>, WebSocketWriter<S>)
    where
        for<'a> &'a S: Read + Write,
    {
        // The halves do not bound writes by the core's deadlines: leave
        // the stream with the user's write timeout.
        let mut wt = self.write_timeout;
        let _ = wt.set(&self.io, None);
        split::split(self.io, self.core, self.read_timeout)
    }

    /// The writes of `recv`: what the core queued by itself (pongs, a
    /// close echo) goes out only as far as the stream takes it without
    /// waiting; the rest stays queued (the core coalesces pongs, and the
    /// backoff of [`Core::stalled`] bounds how often a full stream is
    /// tried) for the next `send`, `flush` or `recv`. Data the user queued
    /// with `feed` is written blocking, as `feed` promises, and so is
    /// everything on a stream without a non-blocking mode.
    fn write_answers(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.core.io_error {
            return Err(e.clone());
        }
        if !self.core.conn.wants_transmit() && self.core.stall.is_none() {
            return Ok(());
        }
        if self.core.writes_blocking() {
            return self.write_queued();
        }
        let now = Instant::now();
        if !self.core.answer_due(now) {
            return Ok(());
        }
        match self.io.set_nonblocking(true) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                self.core.blocking_only = true;
                return self.write_queued();
            }
            Err(e) => return Err(self.core.io_failed(e)),
        }
        let r = self.write_nonblocking(now);
        // Back to blocking before anything else reads or writes.
        if let Err(e) = self.io.set_nonblocking(false) {
            return Err(self.core.io_failed(e));
        }
        r
    }

    /// One write of what the core queued; `None` when nothing is.
    fn write_some(&mut self) -> Option<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let n = self.core.conn.transmit_slices(&mut slices);
        match n {
            0 => None,
            // `send` rather than a one-slice `writev`: cheaper in the kernel.
            1 => Some(self.io.write(&slices[0])),
            _ => Some(self.io.write_vectored(&slices[..n])),
        }
    }

    /// The body of [`write_answers`](Self::write_answers), with the stream
    /// in non-blocking mode.
    fn write_nonblocking(&mut self, now: Instant) -> Result<(), Error> {
        let mut wrote = 0;
        loop {
            match self.write_some() {
                None => break,
                Some(Ok(0)) => {
                    return Err(self.core.io_failed(io::ErrorKind::WriteZero.into()));
                }
                Some(Ok(n)) => {
                    self.core.conn.advance_transmit(n);
                    wrote += n;
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.core.stalled(now, wrote);
                    return Ok(());
                }
                Some(Err(e)) => return Err(self.core.io_failed(e)),
            }
        }
        // A TLS stream may still hold records the socket did not take.
        match self.io.flush() {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                self.core.stalled(now, wrote);
                return Ok(());
            }
            Err(e) => return Err(self.core.io_failed(e)),
        }
        self.core.written();
        if let Some(Transmit::Shutdown) = self.core.conn.poll_shutdown() {
            // RFC 6455 §7.1.1: our side of TCP closes now. Errors are
            // irrelevant at this point: the peer may already be gone.
            let _ = self.io.shutdown(Shutdown::Write);
        }
        Ok(())
    }

    /// The end of the connection: what is still queued (a close echo, the
    /// shutdown of our write half) gets a blocking write bounded by
    /// [`Config::close_timeout`]; past that the stream is shut down both
    /// ways, so that a peer that never reads cannot hold `recv`.
    fn write_last_words(&mut self) {
        if !self.core.conn.wants_transmit() && self.core.stall.is_none() {
            return;
        }
        let limit = Instant::now() + self.core.conn.config().close_timeout;
        if self.write_queued_until(Some(limit)).is_err() {
            let _ = self.io.shutdown(Shutdown::Both);
        }
    }

    /// Writes what the core queued, then shuts the write half if it asks.
    fn write_queued(&mut self) -> Result<(), Error> {
        self.write_queued_until(None)
    }

    /// [`write_queued`](Self::write_queued), giving up with `TimedOut` at
    /// `limit`.
    fn write_queued_until(&mut self, limit: Option<Instant>) -> Result<(), Error> {
        if let Some(e) = &self.core.io_error {
            return Err(e.clone());
        }
        let mut fired = false;
        loop {
            // Each write is bounded by the next deadline, so that the
            // timers (the heartbeat's idle timeout, the close timeout) also
            // run while a peer that stopped reading blocks the write.
            let now = Instant::now();
            if limit.is_some_and(|l| l <= now) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer took nothing within the close timeout",
                )
                .into());
            }
            let deadline = match (self.core.conn.poll_timeout(), limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = match deadline {
                Some(d) if d <= now && self.core.conn.wants_transmit() => {
                    self.core.conn.handle_timeout(now);
                    fired = true;
                    continue;
                }
                Some(d) => Some((d.saturating_duration_since(now)).max(Duration::from_millis(1))),
                None => None,
            };
            if let Err(e) = self.write_timeout.set(&self.io, timeout) {
                return Err(self.core.io_failed(e));
            }
            match self.write_some() {
                None => break,
                Some(Ok(0)) => {
                    return Err(self.core.io_failed(io::ErrorKind::WriteZero.into()));
                }
                Some(Ok(n)) => self.core.conn.advance_transmit(n),
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                // A deadline passed: the next round fires the timer. Else
                // it was the user's write timeout: an I/O error.
                Some(Err(e))
                    if is_timeout(&e)
                        && (self
                            .core
                            .conn
                            .poll_timeout()
                            .is_some_and(|d| d <= Instant::now())
                            || limit.is_some()) => {}
                Some(Err(e)) => return Err(self.core.io_failed(e)),
            }
        }
        self.core.written();
        // A timer ended the connection while we were writing (the peer
        // read nothing within the idle or close timeout): what was queued
        // is dropped, and `recv` reports how the connection ended.
        let ended = fired && self.core.conn.is_closed();
        if let Some(Transmit::Shutdown) = self.core.conn.poll_shutdown() {
            // RFC 6455 §7.1.1: our side of TCP closes now. Errors are
            // irrelevant at this point: the peer may already be gone.
            let _ = self.io.flush();
            let _ = self.io.shutdown(Shutdown::Write);
            if ended {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection timed out before the peer took the data",
                )
                .into());
            }
            return Ok(());
        }
        self.io.flush().map_err(|e| self.core.io_failed(e))
    }
}

impl<S: Read + Write + Transport> Iterator for WebSocket<S> {
    type Item = Result<Message, Error>;

    /// Same as [`WebSocket::recv`].
    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}

impl<S: Read + Write + Transport> std::iter::FusedIterator for WebSocket<S> {}

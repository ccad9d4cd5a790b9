//! The [`ws_proto`] core on its own: a hand-written, single-threaded
//! readiness loop over [`mio`], serving many WebSocket connections (server
//! and client side) from one thread.
//!
//! This is not a full adapter with a message API like `ws-tokio` or
//! `ws-blocking`. It shows what driving the sans-IO core from a plain event
//! loop takes, using only the public API of `ws-proto`; the examples
//! (`echo_server`, `client`) and the Autobahn testee run on it. You hand an
//! [`EventLoop`] a [`Handler`]; the loop calls it with each connection's
//! events and a `&mut Connection` to answer through.
//!
//! ```no_run
//! use ws_mio::{Config, Echo, EventLoop};
//!
//! # fn main() -> std::io::Result<()> {
//! let mut el = EventLoop::new()?;
//! let addr = el.listen("127.0.0.1:9001".parse().unwrap(), Config::default())?;
//! eprintln!("echo server on ws://{addr}");
//! el.run(&mut Echo)
//! # }
//! ```
//!
//! # How the loop works
//!
//! One [`EventLoop::turn`]:
//!
//! 1. **Wait.** `Poll::poll` waits for readiness, at most until the earliest
//!    connection deadline. Deadlines come from each connection's
//!    `poll_timeout()` (the handshake timeout while the opening handshake
//!    runs, then [`Connection::poll_timeout`]) and are kept in [`Timers`],
//!    an ordered set of `(deadline, token)`.
//! 2. **Note readiness.** Sockets are registered edge-triggered. A readable
//!    event sets the connection's "readable" flag, which stays set until a
//!    read returns `WouldBlock` (or a short read, when the peer has not
//!    hung up); any event puts the connection on the ready list.
//! 3. **Fire timers.** Every deadline that passed puts its connection on
//!    the ready list, to call `handle_timeout`.
//! 4. **Drive each ready connection**, in this order, until it has nothing
//!    left to do:
//!    - drain `poll_event` into [`Handler::on_event`] (the handler's
//!      answers are queued in the core);
//!    - write: what is left from an earlier write first, then
//!      `poll_transmit` into the loop's shared write buffer and `write` it;
//!      what the socket does not take stays with the connection and the
//!      socket is registered for write interest until it is written. The
//!      core is not asked for more while that is so: the bytes wait in the
//!      core, where [`Connection::buffered_amount`] counts them.
//!      `Transmit::Shutdown` becomes `shutdown(Write)`;
//!    - after [`Event::Closed`] (and that last write) the socket is dropped;
//!    - otherwise, if the socket is readable and nothing waits to be
//!      written, read once into the loop's shared 64 KiB read buffer and
//!      feed it to the handshake or to `handle_input` (`handle_eof` on 0
//!      bytes or an error). A connection that is still readable after 16
//!      reads goes back on the ready list for the next turn, so that one
//!      fast peer cannot starve the others.
//!
//! A server connection starts as a [`ServerHandshake`]; once the request
//! is complete, [`Handler::on_request`] accepts or rejects it and the
//! handshake becomes a [`Connection`] (the 101 response is its first
//! output) or writes the refusal and is dropped. A client connection is a
//! non-blocking TCP connect plus a [`ClientHandshake`] (seeded from the OS
//! CSPRNG with `getrandom`), whose handshake timeout also bounds the
//! connect.
//!
//! Per connection, the loop keeps the socket, the core's state, a few
//! flags and, only while the socket would block, the unwritten bytes; the
//! read and write buffers are shared by all connections.
//!
//! # Talking to a connection from outside the handler
//!
//! [`EventLoop::connection_mut`] gives a connection to send on, for
//! example after a [`mio::Waker`] (see [`EventLoop::waker`]) woke the loop
//! because another thread has something to send; the next turn writes what
//! was queued.
//!
//! # Limits
//!
//! `ws://` only (no TLS yet); a client resolves the host with the blocking
//! `ToSocketAddrs` and connects to the first address. Transport failures
//! end the connection (reported to [`Handler::on_error`], then as
//! [`Event::Closed`]).

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry};
use ws_proto::{ClientHandshake, HandshakeError, ServerHandshake, Transmit, UsageError};

pub use mio::{self, Token, Waker};
pub use ws_proto::{
    self, http, Accept, Bytes, CloseCode, CloseInfo, Config, Connection, DeflateConfig, Ending,
    Error, Event, Reject, Role, Utf8Bytes,
};

/// The token of the listening socket.
pub const LISTENER: Token = Token(usize::MAX);
/// The token of the loop's [`Waker`].
pub const WAKER: Token = Token(usize::MAX - 1);

/// Size of the read buffer shared by all connections.
/// Most slices handed to one vectored write.
const WRITE_SLICES: usize = 32;

const READ_BUF: usize = 64 * 1024;
/// Reads per connection per turn before the others get their turn.
const READS_PER_TURN: usize = 16;
/// Readiness events taken per `poll`.
const EVENTS: usize = 1024;
/// The shared write buffer is freed after a burst larger than this.
const KEEP_WRITE_BUF: usize = 1 << 20;
/// Time allowed for writing an HTTP refusal before the socket is dropped.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

// ----------------------------------------------------------------- timers --

/// Connection deadlines in time order: an ordered set of
/// `(deadline, token)`, the loop's timer queue.
///
/// Each connection remembers the deadline it registered, so that moving it
/// is one removal and one insertion.
#[derive(Debug, Default, Clone)]
pub struct Timers {
    queue: BTreeSet<(Instant, Token)>,
}

impl Timers {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves `token`'s deadline from `old` (what it registered before, if
    /// anything) to `new` (`None`: no deadline).
    pub fn reschedule(&mut self, token: Token, old: Option<Instant>, new: Option<Instant>) {
        if old == new {
            return;
        }
        if let Some(o) = old {
            self.queue.remove(&(o, token));
        }
        if let Some(n) = new {
            self.queue.insert((n, token));
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|&(d, _)| d)
    }

    /// Removes and returns a token whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Token> {
        match self.queue.first() {
            Some(&(d, _)) if d <= now => self.queue.pop_first().map(|(_, t)| t),
            _ => None,
        }
    }

    /// The number of deadlines queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no deadline is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

// ---------------------------------------------------------------- handler --

/// What the application does with its connections; the loop calls it.
///
/// Tokens identify connections; a token is reused after its connection is
/// dropped.
pub trait Handler {
    /// Server side: decides on a complete, valid upgrade request (path,
    /// headers, offered subprotocols in `Sec-WebSocket-Protocol`). The
    /// default accepts it with no subprotocol. A decision that cannot be
    /// applied (a subprotocol the client did not offer) is answered with
    /// `500 Internal Server Error`, and reported to
    /// [`on_error`](Self::on_error) as the usage error.
    // The core's decision type, shared by every adapter; its error side is
    // large, which is fine once per connection.
    #[allow(clippy::result_large_err)]
    fn on_request(
        &mut self,
        _token: Token,
        _request: &http::Request<()>,
    ) -> Result<Accept, Reject> {
        Ok(Accept::new())
    }

    /// The opening handshake completed: `response` is the server's 101
    /// response on the client side, `None` on the server side. What the
    /// handler sends here follows the 101 response.
    fn on_open(
        &mut self,
        _token: Token,
        _conn: &mut Connection,
        _response: Option<&http::Response<()>>,
    ) {
    }

    /// An event of an open connection; answer through `conn`. After
    /// [`Event::Closed`], always the last one, the loop drops the socket.
    fn on_event(&mut self, token: Token, conn: &mut Connection, event: Event);

    /// A connection failed outside the protocol: a handshake error (then
    /// the connection is dropped and there is no [`Event::Closed`]), a
    /// failed connect, or a transport error on an open connection (then
    /// [`Event::Closed`] follows).
    fn on_error(&mut self, _token: Token, _error: Error) {}
}

/// A [`Handler`] that echoes every text and binary message.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    fn on_event(&mut self, _token: Token, conn: &mut Connection, event: Event) {
        // A send fails only once the connection is closing: nothing to do.
        let _ = match event {
            Event::Text(t) => conn.send_text(t),
            Event::Binary(b) => conn.send_binary(b),
            _ => Ok(()),
        };
    }
}

// ------------------------------------------------------------- connection --

/// Where a connection is in its life.
// Almost every connection spends its life in `Open`: boxing the
// `Connection` to shrink the handshake stages would cost an allocation and
// a pointer chase per connection for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Stage {
    /// Server: reading the upgrade request.
    Accepting(ServerHandshake),
    /// Client: TCP connect, request, response.
    Connecting(ClientHandshake),
    /// The opening handshake is done.
    Open(Connection),
    /// Server: writing an HTTP refusal, then dropping the socket.
    Refusing(ServerHandshake, Instant),
    /// Between two stages (never seen outside a method).
    Gone,
}

impl Stage {
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        match self {
            Stage::Accepting(_) | Stage::Gone => None,
            Stage::Connecting(hs) => hs.poll_transmit(buf),
            Stage::Open(c) => c.poll_transmit(buf),
            Stage::Refusing(hs, _) => hs.poll_transmit(buf),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Stage::Accepting(hs) => hs.poll_timeout(),
            Stage::Connecting(hs) => hs.poll_timeout(),
            Stage::Open(c) => c.poll_timeout(),
            Stage::Refusing(_, d) => Some(*d),
            Stage::Gone => None,
        }
    }

    fn wants_input(&self) -> bool {
        match self {
            Stage::Accepting(_) | Stage::Connecting(_) => true,
            Stage::Open(c) => c.wants_read(),
            Stage::Refusing(..) | Stage::Gone => false,
        }
    }
}

/// What driving a connection left to do.
enum Outcome {
    /// Keep it; `true`: still readable, drive it again next turn.
    Keep(bool),
    /// Drop the socket.
    Drop,
}

/// One socket and its protocol state.
#[derive(Debug)]
struct Conn {
    sock: TcpStream,
    stage: Stage,
    /// False while a client's non-blocking connect is in progress.
    tcp_connected: bool,
    /// Edge-triggered read readiness not used up yet.
    readable: bool,
    /// The peer hung up (seen in a readiness event): read to the end.
    hup: bool,
    /// A read returned 0 or failed.
    read_done: bool,
    /// The write half is shut (or broken): nothing more is written.
    write_shut: bool,
    /// Bytes the socket did not take yet, from `pending_off` on.
    pending: Vec<u8>,
    pending_off: usize,
    /// The socket refused part of the open connection's queue (which stays
    /// in the core: written from there, without a copy).
    blocked: bool,
    /// The interest registered with the poller.
    interest: Interest,
    /// The deadline registered in [`Timers`].
    timer: Option<Instant>,
    /// The deadline passed: call `handle_timeout`.
    timer_fired: bool,
    /// On the loop's ready list.
    queued: bool,
}

impl Conn {
    fn new(sock: TcpStream, stage: Stage, tcp_connected: bool) -> Self {
        Conn {
            sock,
            stage,
            tcp_connected,
            readable: false,
            hup: false,
            read_done: false,
            write_shut: false,
            pending: Vec::new(),
            pending_off: 0,
            blocked: false,
            interest: if tcp_connected {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            },
            timer: None,
            timer_fired: false,
            queued: false,
        }
    }

    fn has_pending(&self) -> bool {
        self.pending_off < self.pending.len() || self.blocked
    }

    /// Runs the connection until it waits for the socket or a timer.
    fn drive(
        &mut self,
        token: Token,
        h: &mut impl Handler,
        rbuf: &mut [u8],
        wbuf: &mut Vec<u8>,
    ) -> Outcome {
        if self.timer_fired {
            self.timer_fired = false;
            if !self.on_timeout(token, h) {
                return Outcome::Drop;
            }
        }
        if !self.tcp_connected {
            match self.check_connected() {
                Ok(true) => {}
                Ok(false) => return Outcome::Keep(false),
                Err(e) => {
                    h.on_error(token, e.into());
                    return Outcome::Drop;
                }
            }
        }
        let mut reads = 0;
        loop {
            // Events first: handling them can queue bytes.
            if let Stage::Open(c) = &mut self.stage {
                while let Some(ev) = c.poll_event() {
                    h.on_event(token, c, ev);
                }
            }
            // Then write everything queued, as far as the socket takes it.
            if let Err(e) = self.flush(wbuf) {
                if !self.transport_failed(token, h, e) {
                    return Outcome::Drop;
                }
                continue; // deliver the end
            }
            match &mut self.stage {
                // The connection ended and the last bytes were written
                // (best effort): deliver the terminal event (the shutdown
                // after a finished close handshake ends a server's
                // connection, so that flush may have produced it) and drop
                // the socket.
                Stage::Open(c) if c.is_closed() => {
                    while let Some(ev) = c.poll_event() {
                        h.on_event(token, c, ev);
                    }
                    return Outcome::Drop;
                }
                Stage::Refusing(..) if self.write_shut => return Outcome::Drop,
                _ => {}
            }
            // Read while readable, unless writes are blocked (then the
            // peer waits: backpressure instead of an ever-growing queue).
            if !self.readable || self.read_done || self.has_pending() || !self.stage.wants_input() {
                return Outcome::Keep(false);
            }
            if reads == READS_PER_TURN {
                return Outcome::Keep(true);
            }
            reads += 1;
            match self.sock.read(rbuf) {
                Ok(0) => {
                    self.read_done = true;
                    self.readable = false;
                    if !self.on_eof(token, h) {
                        return Outcome::Drop;
                    }
                }
                Ok(n) => {
                    // A short read drained the socket, unless the peer hung
                    // up: then read on to see the end (no new edge comes).
                    if n < rbuf.len() && !self.hup {
                        self.readable = false;
                    }
                    if !self.on_input(token, h, &rbuf[..n]) {
                        return Outcome::Drop;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !self.transport_failed(token, h, e) {
                        return Outcome::Drop;
                    }
                }
            }
        }
    }

    /// Whether a client's non-blocking connect finished; `Err` if it failed.
    fn check_connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.sock.take_error()? {
            return Err(e);
        }
        match self.sock.peer_addr() {
            Ok(_) => {
                self.tcp_connected = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Feeds bytes read; `false`: drop the connection.
    fn on_input(&mut self, token: Token, h: &mut impl Handler, data: &[u8]) -> bool {
        let now = Instant::now();
        // The hot path, without moving the stage.
        if let Stage::Open(c) = &mut self.stage {
            c.handle_input(now, data);
            return true;
        }
        match std::mem::replace(&mut self.stage, Stage::Gone) {
            Stage::Accepting(mut hs) => match hs.handle_input(data) {
                Ok(None) => self.stage = Stage::Accepting(hs),
                Ok(Some(request)) => {
                    let decision = h.on_request(token, &request);
                    match hs.decide(now, decision) {
                        Ok(Ok(mut c)) => {
                            h.on_open(token, &mut c, None);
                            self.stage = Stage::Open(c);
                        }
                        Ok(Err(hs)) => self.stage = Stage::Refusing(hs, now + REFUSAL_TIMEOUT),
                        Err(mut e) => {
                            // The handler's mistake (say, a subprotocol the
                            // client did not offer): the client gets a 500.
                            e.refuse();
                            h.on_error(token, e.error.into());
                            self.stage = Stage::Refusing(*e.handshake, now + REFUSAL_TIMEOUT);
                        }
                    }
                }
                Err(e) => {
                    // The handshake queued an HTTP error response.
                    h.on_error(token, e.into());
                    self.stage = Stage::Refusing(hs, now + REFUSAL_TIMEOUT);
                }
            },
            Stage::Connecting(mut hs) => match hs.handle_input(data) {
                Ok(false) => self.stage = Stage::Connecting(hs),
                Ok(true) => match hs.into_connection(now) {
                    Ok((response, mut c)) => {
                        h.on_open(token, &mut c, Some(&response));
                        self.stage = Stage::Open(c);
                    }
                    Err(e) => {
                        h.on_error(token, e.into());
                        return false;
                    }
                },
                Err(e) => {
                    h.on_error(token, e.into());
                    return false;
                }
            },
            other => self.stage = other,
        }
        true
    }

    /// The read half ended; `false`: drop the connection.
    fn on_eof(&mut self, token: Token, h: &mut impl Handler) -> bool {
        match &mut self.stage {
            Stage::Open(c) => {
                c.handle_eof(Instant::now());
                true
            }
            Stage::Accepting(_) | Stage::Connecting(_) => {
                h.on_error(token, HandshakeError::Eof.into());
                false
            }
            Stage::Refusing(..) | Stage::Gone => false,
        }
    }

    /// The deadline passed; `false`: drop the connection.
    fn on_timeout(&mut self, token: Token, h: &mut impl Handler) -> bool {
        let now = Instant::now();
        let res = match &mut self.stage {
            Stage::Open(c) => {
                c.handle_timeout(now);
                return true;
            }
            Stage::Accepting(hs) => hs.handle_timeout(now),
            Stage::Connecting(hs) => hs.handle_timeout(now),
            Stage::Refusing(..) | Stage::Gone => return false,
        };
        // Only the handshake timeout runs during the handshake: its
        // deadline passed, whatever the handshake says.
        h.on_error(token, res.err().unwrap_or(HandshakeError::Timeout).into());
        false
    }

    /// A read or write failed. An open connection sees it as the end of
    /// input (and reports it); `false`: drop the connection.
    fn transport_failed(&mut self, token: Token, h: &mut impl Handler, e: io::Error) -> bool {
        self.read_done = true;
        self.readable = false;
        self.write_shut = true;
        self.pending = Vec::new();
        self.pending_off = 0;
        self.blocked = false;
        h.on_error(token, e.into());
        match &mut self.stage {
            Stage::Open(c) if !c.is_closed() => {
                c.handle_eof(Instant::now());
                true
            }
            _ => false,
        }
    }

    /// Writes the leftover bytes, then whatever the core hands out, until
    /// the socket would block or nothing is left. `Err`: the transport
    /// failed.
    fn flush(&mut self, wbuf: &mut Vec<u8>) -> io::Result<()> {
        if self.write_shut {
            // Nothing can be written any more: discard what is queued.
            self.blocked = false;
            wbuf.clear();
            while self.stage.poll_transmit(wbuf).is_some() {
                wbuf.clear();
            }
            return Ok(());
        }
        if self.pending_off < self.pending.len() {
            match write_some(&mut self.sock, &self.pending[self.pending_off..])? {
                n if self.pending_off + n < self.pending.len() => {
                    self.pending_off += n;
                    return Ok(()); // still blocked
                }
                _ => {
                    self.pending = Vec::new();
                    self.pending_off = 0;
                }
            }
        }
        if let Stage::Open(c) = &mut self.stage {
            // Vectored writes straight from the core's queue: large
            // payloads are not copied, and the frames queued since the last
            // write go out in one system call (`send` for a single slice).
            self.blocked = false;
            loop {
                let mut slices = [io::IoSlice::new(&[]); WRITE_SLICES];
                let n = c.transmit_slices(&mut slices);
                if n == 0 {
                    break;
                }
                let res = if n == 1 {
                    self.sock.write(&slices[0])
                } else {
                    self.sock.write_vectored(&slices[..n])
                };
                match res {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(w) => c.advance_transmit(w),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.blocked = true;
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        loop {
            wbuf.clear();
            match self.stage.poll_transmit(wbuf) {
                None => return Ok(()),
                Some(Transmit::Data) => {
                    let n = write_some(&mut self.sock, wbuf)?;
                    if n < wbuf.len() {
                        // The socket is full: the connection keeps the rest
                        // (the buffer itself, no copy) and waits for write
                        // readiness.
                        std::mem::swap(&mut self.pending, wbuf);
                        self.pending_off = n;
                        return Ok(());
                    }
                }
                Some(Transmit::Shutdown) => {
                    // RFC 6455 §7.1.1: the core decides when TCP closes.
                    // The peer may be gone already: errors do not matter.
                    let _ = self.sock.shutdown(Shutdown::Write);
                    self.write_shut = true;
                    return Ok(());
                }
            }
        }
    }

    /// Registers the interest the connection needs now: write interest
    /// while bytes wait or the connect is in progress.
    fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want = if self.has_pending() || !self.tcp_connected {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if want != self.interest {
            registry.reregister(&mut self.sock, token, want)?;
            self.interest = want;
        }
        Ok(())
    }
}

/// Writes as much of `buf` as the socket takes; returns how much.
fn write_some(sock: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
    let mut off = 0;
    while off < buf.len() {
        match sock.write(&buf[off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(off)
}

fn seed() -> Result<[u8; 32], Error> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).map_err(|e| Error::from(io::Error::other(e)))?;
    Ok(s)
}

// -------------------------------------------------------------- the loop --

/// A single-threaded readiness loop driving WebSocket connections: an
/// optional listener, client connections, their timers, and one read and
/// one write buffer shared by all of them. See the crate docs for what one
/// [`turn`](Self::turn) does.
#[derive(Debug)]
pub struct EventLoop {
    poll: Poll,
    events: Events,
    /// Connections by token; `free` lists the empty slots.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    len: usize,
    timers: Timers,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    listener: Option<(TcpListener, std::sync::Arc<Config>)>,
    /// The listener was readable: accept until `WouldBlock`.
    accept_ready: bool,
    /// `accept` failed for lack of resources: try again then.
    accept_retry: Option<Instant>,
    /// Connections to drive in this turn (or the next).
    ready: VecDeque<Token>,
    waker: Option<Arc<Waker>>,
}

impl EventLoop {
    /// A loop with no connections.
    pub fn new() -> io::Result<Self> {
        Ok(EventLoop {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS),
            conns: Vec::new(),
            free: Vec::new(),
            len: 0,
            timers: Timers::new(),
            read_buf: vec![0; READ_BUF],
            write_buf: Vec::new(),
            listener: None,
            accept_ready: false,
            accept_retry: None,
            ready: VecDeque::new(),
            waker: None,
        })
    }

    /// Listens on `addr` and accepts WebSocket connections with `config`
    /// (one listener per loop; a second call replaces the first). Returns
    /// the bound address (useful with port 0).
    pub fn listen(
        &mut self,
        addr: SocketAddr,
        config: impl Into<std::sync::Arc<Config>>,
    ) -> io::Result<SocketAddr> {
        let config = config.into();
        let mut listener = TcpListener::bind(addr)?;
        self.poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let local = listener.local_addr()?;
        if let Some((mut old, _)) = self.listener.replace((listener, config)) {
            let _ = self.poll.registry().deregister(&mut old);
        }
        Ok(local)
    }

    /// Starts a client connection to a `ws://` URL (`request`'s URI; its
    /// headers are sent as given, see [`ClientHandshake::new`]). Returns
    /// its token at once: the TCP connect and the handshake run in the
    /// loop, bounded by the handshake timeout; [`Handler::on_open`] or
    /// [`Handler::on_error`] tells how it went.
    ///
    /// The host name is resolved here, blocking, and the first address is
    /// used. `wss://` is refused with [`UsageError::InvalidRequest`] (TLS
    /// comes later).
    pub fn connect(&mut self, request: http::Request<()>, config: Config) -> Result<Token, Error> {
        let uri = request.uri();
        let port = match uri.scheme_str() {
            Some("ws") | Some("http") => uri.port_u16().unwrap_or(80),
            _ => return Err(UsageError::InvalidRequest.into()),
        };
        let host = uri.host().ok_or(UsageError::InvalidRequest)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"))?;
        let hs = ClientHandshake::new(Instant::now(), request, config, seed()?)?;
        let sock = TcpStream::connect(addr)?;
        let _ = sock.set_nodelay(true);
        Ok(self.insert(Conn::new(sock, Stage::Connecting(hs), false))?)
    }

    /// The loop's waker: `wake()` from any thread makes the current or next
    /// [`turn`](Self::turn) return `true`. Created on first use.
    pub fn waker(&mut self) -> io::Result<Arc<Waker>> {
        if let Some(w) = &self.waker {
            return Ok(w.clone());
        }
        let w = Arc::new(Waker::new(self.poll.registry(), WAKER)?);
        self.waker = Some(w.clone());
        Ok(w)
    }

    /// Whether the connection `token` is still there (it is dropped after
    /// its [`Event::Closed`] or a handshake failure).
    pub fn contains(&self, token: Token) -> bool {
        matches!(self.conns.get(token.0), Some(Some(_)))
    }

    /// The number of connections (in any stage).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no connections.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The open connection `token`, to send on or close from outside the
    /// handler; `None` while its opening handshake runs or once it is
    /// gone. The next [`turn`](Self::turn) writes what was queued (without
    /// waiting), so call this only when there is something to do.
    pub fn connection_mut(&mut self, token: Token) -> Option<&mut Connection> {
        let c = self.conns.get_mut(token.0)?.as_mut()?;
        let Stage::Open(conn) = &mut c.stage else {
            return None;
        };
        if !c.queued {
            c.queued = true;
            self.ready.push_back(token);
        }
        Some(conn)
    }

    /// Runs turns forever (until polling fails).
    pub fn run(&mut self, handler: &mut impl Handler) -> io::Result<()> {
        loop {
            self.turn(handler, None)?;
        }
    }

    /// One turn: waits for readiness (at most `max_wait`, and never past
    /// the earliest deadline), then accepts, fires timers and drives the
    /// ready connections. Returns whether the [`waker`](Self::waker) woke
    /// the loop.
    pub fn turn(
        &mut self,
        handler: &mut impl Handler,
        max_wait: Option<Duration>,
    ) -> io::Result<bool> {
        let now = Instant::now();
        let mut wait = max_wait;
        let deadline = match (self.timers.next_deadline(), self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(now);
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        if !self.ready.is_empty() {
            wait = Some(Duration::ZERO);
        }
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        }
        let mut woken = false;
        for ev in self.events.iter() {
            match ev.token() {
                LISTENER => self.accept_ready = true,
                WAKER => woken = true,
                t => {
                    let Some(Some(c)) = self.conns.get_mut(t.0) else {
                        continue;
                    };
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        c.readable = true;
                    }
                    if ev.is_read_closed() || ev.is_error() {
                        c.hup = true;
                    }
                    if !c.queued {
                        c.queued = true;
                        self.ready.push_back(t);
                    }
                }
            }
        }
        let now = Instant::now();
        if self.accept_ready || self.accept_retry.is_some_and(|r| r <= now) {
            self.accept(now);
        }
        while let Some(t) = self.timers.pop_expired(now) {
            if let Some(Some(c)) = self.conns.get_mut(t.0) {
                c.timer = None;
                c.timer_fired = true;
                if !c.queued {
                    c.queued = true;
                    self.ready.push_back(t);
                }
            }
        }
        // Connections queued from here on (still readable after their
        // share of reads) wait for the next turn.
        for _ in 0..self.ready.len() {
            let Some(t) = self.ready.pop_front() else {
                break;
            };
            self.drive(t, handler);
        }
        if self.write_buf.capacity() > KEEP_WRITE_BUF {
            self.write_buf = Vec::new();
        }
        Ok(woken)
    }

    /// Accepts until `WouldBlock`; new connections start their server
    /// handshake.
    fn accept(&mut self, now: Instant) {
        self.accept_ready = false;
        self.accept_retry = None;
        let Some((listener, config)) = self.listener.take() else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    let hs = ServerHandshake::new(now, config.clone());
                    // A connection that cannot be registered is dropped.
                    let _ = self.insert(Conn::new(sock, Stage::Accepting(hs), true));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    let pause = ws_proto::server::accept_retry_after(&e);
                    if !pause.is_zero() {
                        // Out of file descriptors or memory: the readiness
                        // edge is used up, so come back shortly.
                        self.accept_retry = Some(now + pause);
                        break;
                    }
                }
            }
        }
        self.listener = Some((listener, config));
    }

    /// Registers a new connection and its first deadline.
    fn insert(&mut self, mut conn: Conn) -> io::Result<Token> {
        let idx = self.free.pop().unwrap_or(self.conns.len());
        let token = Token(idx);
        assert!(token != WAKER && token != LISTENER, "out of tokens");
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut conn.sock, token, conn.interest)
        {
            if idx < self.conns.len() {
                self.free.push(idx);
            }
            return Err(e);
        }
        conn.timer = conn.stage.deadline();
        self.timers.reschedule(token, None, conn.timer);
        if idx == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[idx] = Some(conn);
        }
        self.len += 1;
        Ok(token)
    }

    /// Drives one connection, then re-registers its interest and deadline,
    /// or drops it.
    fn drive(&mut self, token: Token, handler: &mut impl Handler) {
        let Some(Some(c)) = self.conns.get_mut(token.0) else {
            return;
        };
        c.queued = false;
        let mut outcome = c.drive(token, handler, &mut self.read_buf, &mut self.write_buf);
        if let Outcome::Keep(again) = &mut outcome {
            let deadline = c.stage.deadline();
            self.timers.reschedule(token, c.timer, deadline);
            c.timer = deadline;
            if let Err(e) = c.update_interest(self.poll.registry(), token) {
                // Without readiness the connection cannot make progress:
                // an open one delivers its end next turn, others go.
                if c.transport_failed(token, handler, e) {
                    *again = true;
                } else {
                    outcome = Outcome::Drop;
                }
            }
        }
        match outcome {
            Outcome::Keep(true) => {
                c.queued = true;
                self.ready.push_back(token);
            }
            Outcome::Keep(false) => {}
            Outcome::Drop => {
                self.timers.reschedule(token, c.timer, None);
                let _ = self.poll.registry().deregister(&mut c.sock);
                self.conns[token.0] = None;
                self.free.push(token.0);
                self.len -= 1;
            }
        }
    }
}

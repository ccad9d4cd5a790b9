//! The pump shared by the async adapters (`ws-tokio`, `ws-async-std`):
//! drives a [`ws_proto::Connection`] over a stream with poll-based reads
//! and writes, and a sleep for the core's timers.
//!
//! The adapters wrap a [`Pump`] in their `WebSocket` types and supply what
//! differs between runtimes through two small traits: [`Io`] (the stream)
//! and [`Clock`] (the time and a [`Sleep`]). Everything else, the order in
//! which the core is polled, backpressure, the timers of split halves, the
//! shutdown of the write half, is written once here, so that the adapters
//! behave the same. This crate is their building block; applications use
//! an adapter.
//!
//! Memory: a connection that never waited for a write, has no deadline and
//! is not tracked holds the stream, the clock, the core and two flags;
//! the rest ([`Pump`]'s cold part) is allocated on first use. Reads go
//! through one buffer per thread.

use bytes::buf::Limit;
use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use ws_proto::clients::Tracker;
use ws_proto::{
    CloseCode, CloseInfo, Connection, Error, Event, Message, PreparedMessage, Transmit,
};

/// Unwritten bytes above which `poll_recv` stops reading until the socket
/// drains.
pub const READ_PAUSE: usize = 1 << 20;

/// Queue size above which [`Pump::poll_sink_ready`] flushes first (it also
/// does when `Config::max_send_buffer` is reached under
/// `SendBufferPolicy::Wait`).
pub const SINK_HIGH_WATER: usize = 64 * 1024;

/// Most slices handed to one vectored write.
const WRITE_SLICES: usize = 32;

/// Size of the shared per-thread read buffer.
pub const READ_BUF: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// Runs `f` with the shared per-thread read buffer (or, if it is already
/// in use further up the stack, a temporary one).
pub fn with_read_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    READ_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut vec![0; READ_BUF]),
    })
}

/// The stream, as the pump uses it: the poll functions of tokio's
/// `AsyncRead`/`AsyncWrite` or of futures-io's, without the pinning (the
/// adapters' streams are `Unpin`).
pub trait Io: Unpin {
    /// Whether [`poll_read_buf`](Self::poll_read_buf) is implemented: the
    /// rest of a large frame is then read straight into the message
    /// (`Connection::read_direct`).
    const READS_INTO_BUF: bool = false;

    /// Reads into `buf`; `Ok(0)` at the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Appends what it reads to `buf` through `bytes::BufMut` (into its
    /// spare capacity, uninitialized); only called when
    /// [`READS_INTO_BUF`](Self::READS_INTO_BUF) is set.
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Limit<&mut Vec<u8>>,
    ) -> Poll<io::Result<usize>> {
        let _ = (cx, buf);
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }

    /// Writes from `buf`.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes from `bufs`, in order.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Flushes what the stream buffers itself (TLS).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Shuts the write half (for TCP, sends the FIN).
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A sleep that the pump polls, and moves when the core's deadline changes.
///
/// Contract: once the deadline has passed, [`poll_elapsed`](Self::poll_elapsed)
/// returns `Ready` on every call until [`reset`](Self::reset) moves it.
pub trait Sleep: Unpin {
    /// The deadline this sleep ends at.
    fn deadline(&self) -> Instant;
    /// Moves the deadline, earlier or later.
    fn reset(&mut self, deadline: Instant);
    /// `Ready` once the deadline has passed; otherwise `Pending`, and the
    /// waker of `cx` is woken when it passes.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// The runtime's clock: the time handed to the core, and sleeps that agree
/// with it (once a sleep ended, `now()` is at or past its deadline).
pub trait Clock {
    /// The runtime's sleep.
    type Sleep: Sleep;
    /// The current time.
    fn now(&self) -> Instant;
    /// A sleep that ends at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
}

/// Wakes every task that waits on one readiness: the reading half flushes
/// pongs and close echoes, the writing half flushes messages, and a socket
/// (or a sleep) keeps only one waker.
#[derive(Default)]
struct Wakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

impl Wake for Wakers {
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

/// Which half is polling: indexes the slots of a [`SharedWaker`].
#[derive(Clone, Copy, Debug)]
enum Side {
    /// `recv` and what it flushes (pongs, close echoes).
    Read = 0,
    /// `send`, `flush`, `close`.
    Write = 1,
}

/// One socket readiness (or one timer) that two tasks may wait on: the
/// socket or the sleep keeps a single waker, this one, which wakes both.
struct SharedWaker {
    wakers: Arc<Wakers>,
    waker: Waker,
}

impl SharedWaker {
    fn new() -> Self {
        let wakers = Arc::new(Wakers::default());
        SharedWaker {
            waker: Waker::from(wakers.clone()),
            wakers,
        }
    }

    /// Puts `cx`'s waker in `side`'s slot.
    fn register(&self, cx: &Context<'_>, side: Side) {
        let mut slots = self.wakers.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut slots[side as usize];
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
    }
}

/// The core's timer: allocated for connections that have a deadline.
struct TimerState<S> {
    sleep: S,
    shared: SharedWaker,
}

/// The part of [`Pump`] that most connections never use (issue 5: an idle
/// connection should cost almost nothing).
struct Cold<S> {
    /// Set once a write had to wait: from then on every write registers
    /// this waker, which wakes both halves' tasks.
    write: Option<SharedWaker>,
    /// The core's timer, for connections that have a deadline.
    timer: Option<TimerState<S>>,
    /// A timer ended the connection: what is unwritten will never be
    /// taken, and a write waiting for it fails.
    timer_closed: bool,
    io_error: Option<Error>,
    close_info: Option<CloseInfo>,
    /// Set when the connection is in a `Clients` set.
    tracker: Option<Tracker>,
}

impl<S> Default for Cold<S> {
    fn default() -> Self {
        Cold {
            write: None,
            timer: None,
            timer_closed: false,
            io_error: None,
            close_info: None,
            tracker: None,
        }
    }
}

/// A [`Connection`] driven over a stream: what an adapter's `WebSocket`
/// holds. The `poll_*` functions are those of its `recv`, `flush` and
/// `Sink`; the `queue*` ones queue without writing.
pub struct Pump<T, C: Clock> {
    io: T,
    clock: C,
    conn: Connection,
    /// The core asked for the write half to be shut and that is not done
    /// yet (it is done once: a repeated `shutdown(2)` is a wasted system
    /// call, and fails once the peer closed too).
    shutdown: bool,
    /// `poll_recv` reported the end.
    finished: bool,
    cold: Option<Box<Cold<C::Sleep>>>,
}

impl<T, C: Clock> std::fmt::Debug for Pump<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pump")
            .field("state", &self.conn.state())
            .field("role", &self.conn.role())
            .finish()
    }
}

impl<T, C: Clock> Pump<T, C> {
    /// Drives `conn` (the handshake done) over `io`, with `clock`'s time.
    pub fn new(io: T, clock: C, conn: Connection) -> Self {
        Pump {
            io,
            clock,
            conn,
            shutdown: false,
            finished: false,
            cold: None,
        }
    }

    fn cold_mut(&mut self) -> &mut Cold<C::Sleep> {
        self.cold.get_or_insert_with(Default::default)
    }

    fn io_error(&self) -> Option<&Error> {
        self.cold.as_ref()?.io_error.as_ref()
    }

    /// The protocol state machine, for its getters.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The stream.
    pub fn io(&self) -> &T {
        &self.io
    }

    /// The stream, mutably.
    pub fn io_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// How the connection ended, once `poll_recv` reported the end.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.cold.as_ref()?.close_info.as_ref()
    }

    /// The connection's entry in its `Clients` set, if tracked.
    pub fn tracker(&self) -> Option<&Tracker> {
        self.cold.as_ref()?.tracker.as_ref()
    }

    /// Puts the connection in a `Clients` set: messages queued for it
    /// there are sent by `poll_recv`, and it leaves the set when it ends.
    pub fn set_tracker(&mut self, t: Tracker) {
        self.cold_mut().tracker = Some(t);
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount()
    }

    /// Whether a send must first write what is queued
    /// (`SendBufferPolicy::Wait` with `max_send_buffer` reached).
    pub fn should_wait(&self) -> bool {
        self.conn.should_wait()
    }

    /// Queues a message (compressed when permessage-deflate is on).
    pub fn queue(&mut self, msg: Message) -> Result<(), Error> {
        self.queue_with(msg, true)
    }

    /// Queues a message, compressed or not (when permessage-deflate is on).
    pub fn queue_with(&mut self, msg: Message, compress: bool) -> Result<(), Error> {
        if let Some(e) = self.io_error() {
            return Err(e.clone());
        }
        // The clock is read only for a close frame.
        let clock = &self.clock;
        self.conn.send_with_clock(|| clock.now(), msg, compress)?;
        Ok(())
    }

    /// Queues a prepared message (a broadcast frame).
    pub fn queue_prepared(&mut self, msg: &PreparedMessage) -> Result<(), Error> {
        if let Some(e) = self.io_error() {
            return Err(e.clone());
        }
        self.conn.send_prepared(msg)?;
        Ok(())
    }

    /// Starts the closing handshake (queues the close frame).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let now = self.clock.now();
        Ok(self.conn.close(now, code, reason)?)
    }
}

impl<T: Io, C: Clock> Pump<T, C> {
    /// Writes everything the core has queued. `Ready(Ok)` once it is all
    /// in the socket.
    fn poll_flush(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<(), Error>> {
        if let Some(e) = self.io_error() {
            return Poll::Ready(Err(e.clone()));
        }
        // Whether this task's waker is in its slot: it is put there only
        // when a write waits (the common write completes at once, and
        // taking the lock for every message would cost more than the rest
        // of this function).
        let mut registered = false;
        loop {
            if !self.conn.wants_transmit() && !self.shutdown {
                // Nothing queued: only the stream's own flush is left.
                return match self.io.poll_flush(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(self.io_failed(e))),
                    other => other.map(|_| Ok(())),
                };
            }
            // Vectored writes straight from the core's queue: large payloads
            // are never copied into a write buffer, and all the frames
            // queued since the last write go out in one syscall.
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let n = self.conn.transmit_slices(&mut slices);
            if n > 0 {
                // Until a write first waits, the polling task registers
                // itself; see `register_write_waker`.
                let mut wcx = Context::from_waker(write_waker(&self.cold).unwrap_or(cx.waker()));
                // One slice (small frames are copied together into the
                // queue's tail) goes out with `send`, cheaper in the kernel
                // than `writev` (no iovec import, no VFS write path).
                let res = if n == 1 {
                    self.io.poll_write(&mut wcx, &slices[0])
                } else {
                    self.io.poll_write_vectored(&mut wcx, &slices[..n])
                };
                match res {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(self.io_failed(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(w)) => {
                        self.conn.advance_transmit(w);
                        continue;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(self.io_failed(e))),
                    Poll::Pending if registered => return Poll::Pending,
                    Poll::Pending => {
                        // Put this task's waker where the shared waker
                        // finds it, then try once more with the shared
                        // one, so that the socket holds it and a wake-up
                        // between the write and the registration is not
                        // lost.
                        self.register_write_waker(cx, side);
                        registered = true;
                        continue;
                    }
                }
            }
            if let Some(Transmit::Shutdown) = self.conn.poll_shutdown() {
                self.shutdown = true;
            }
            if self.shutdown {
                // RFC 6455 §7.1.1: our side of TCP closes now. Errors are
                // irrelevant at this point: the peer may already be gone.
                let mut wcx = Context::from_waker(write_waker(&self.cold).unwrap_or(cx.waker()));
                match self.io.poll_shutdown(&mut wcx) {
                    Poll::Pending if registered => return Poll::Pending,
                    Poll::Pending => {
                        self.register_write_waker(cx, side);
                        registered = true;
                        continue;
                    }
                    Poll::Ready(_) => {
                        self.shutdown = false;
                        return Poll::Ready(Ok(()));
                    }
                }
            }
            return match self.io.poll_flush(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(self.io_failed(e))),
                other => other.map(|_| Ok(())),
            };
        }
    }

    /// Puts `cx`'s waker in `side`'s slot of the wakers the socket's
    /// write readiness wakes. Split halves (ours, or a `StreamExt::split`
    /// of the whole socket) both wait for write readiness from their own
    /// tasks.
    fn register_write_waker(&mut self, cx: &Context<'_>, side: Side) {
        self.cold_mut()
            .write
            .get_or_insert_with(SharedWaker::new)
            .register(cx, side);
    }

    /// Arms the sleep for the core's next deadline and fires
    /// `handle_timeout` when it passed; `true` if it fired. The sleep wakes
    /// the tasks of both halves (`side` is the one polling).
    fn poll_timer(&mut self, cx: &mut Context<'_>, side: Side) -> bool {
        let Some(deadline) = self.conn.poll_timeout() else {
            return false;
        };
        let clock = &self.clock;
        let cold = self.cold.get_or_insert_with(Default::default);
        let timer = match &mut cold.timer {
            Some(t) => {
                if t.sleep.deadline() != deadline {
                    t.sleep.reset(deadline);
                }
                t
            }
            slot @ None => slot.insert(TimerState {
                sleep: clock.sleep_until(deadline),
                shared: SharedWaker::new(),
            }),
        };
        timer.shared.register(cx, side);
        let mut tcx = Context::from_waker(&timer.shared.waker);
        let fired = timer.sleep.poll_elapsed(&mut tcx).is_ready();
        if fired {
            self.conn.handle_timeout(self.clock.now());
            if self.conn.is_closed() {
                self.cold_mut().timer_closed = true;
            }
        }
        fired
    }

    /// Writes everything queued, for `send`/`flush` (of a
    /// `WebSocket` or its writing half): while a peer that does not read
    /// keeps the write waiting, the core's timers still run (the
    /// heartbeat's idle timeout, the close timeout); when one ends the
    /// connection, what was queued is dropped and the wait ends with an
    /// error, `TimedOut` (`recv` then reports how the connection ended).
    pub fn poll_flush_timed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if !self.timer_closed() {
                match self.poll_flush(cx, Side::Write) {
                    Poll::Pending => {}
                    ready => return ready,
                }
                // A timer of either half may end the connection (the
                // reading half's timer then wakes this task too).
                if !self.poll_timer(cx, Side::Write) && !self.timer_closed() {
                    return Poll::Pending;
                }
            }
            if self.timer_closed() {
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

    fn timer_closed(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.timer_closed)
    }

    fn io_failed(&mut self, e: io::Error) -> Error {
        let err = Error::from(e);
        if self.io_error().is_none() {
            self.cold_mut().io_error = Some(err.clone());
            self.conn.handle_eof(self.clock.now());
        }
        err
    }

    /// `Sink::poll_ready`: flushes first while more than
    /// [`SINK_HIGH_WATER`] bytes are queued or the send buffer policy says
    /// to wait.
    pub fn poll_sink_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.buffered_amount() > SINK_HIGH_WATER || self.conn.should_wait() {
            self.poll_flush_timed(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    /// `Sink::poll_close`: queues a close frame (1000) unless the closing
    /// handshake started, and flushes.
    pub fn poll_sink_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Polled again after `Pending`: the close frame is already queued.
        if self.conn.is_open() {
            self.close(CloseCode::NORMAL, "")?;
        }
        self.poll_flush_timed(cx)
    }

    /// Drives the connection until the next message or the end: the
    /// function behind `recv` and `Stream::poll_next`. Answers pings,
    /// completes the closing handshake, writes what is queued before it
    /// waits for input, and runs the timers.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if let Some(t) = self.cold.as_ref().and_then(|c| c.tracker.as_ref()) {
                // Messages other tasks queued for this client.
                t.drain(&mut self.conn, cx.waker(), self.clock.now());
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
                        let io_error = {
                            let cold = self.cold_mut();
                            cold.close_info = Some(info.clone());
                            // Out of the client set: the connection ended.
                            cold.tracker = None;
                            cold.io_error.take()
                        };
                        self.finished = true;
                        return Poll::Ready(Some(info.into_result(io_error)));
                    }
                    _ => continue,
                }
            }
            if self.finished || self.conn.is_closed() {
                return Poll::Ready(None);
            }
            // Backpressure: while the peer does not take what we owe it,
            // stop reading what it sends (but keep the timers running: the
            // heartbeat is what drops a peer that stopped reading for good).
            let paused = match self.poll_flush(cx, Side::Read) {
                Poll::Ready(Err(_)) => continue, // the core saw it as EOF; report it
                // The shutdown after a finished close handshake ends a
                // server's connection: report it.
                Poll::Ready(Ok(())) if self.conn.is_closed() => continue,
                Poll::Pending => self.conn.buffered_amount() > READ_PAUSE,
                _ => false,
            };
            if self.tracker().is_some_and(|t| t.stalled()) && !self.conn.should_wait() {
                // Messages for this client waited for room; the flush made some.
                continue;
            }
            if self.poll_timer(cx, Side::Read) {
                continue;
            }
            if paused {
                return Poll::Pending;
            }
            let res = self.poll_read(cx);
            match res {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) => {
                    self.io_failed(e);
                    continue;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// One read, handed to the core.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (io, conn, clock) = (&mut self.io, &mut self.conn, &self.clock);
        if T::READS_INTO_BUF {
            // The rest of a large frame goes straight into the message:
            // no copy out of the read buffer, and reads larger than it.
            let direct =
                conn.read_direct(|| clock.now(), READ_BUF, |buf| io.poll_read_buf(cx, buf));
            match direct {
                Some(Poll::Ready(Ok(0))) => {
                    conn.handle_eof(clock.now());
                    return Poll::Ready(Ok(()));
                }
                Some(Poll::Ready(Ok(_))) => return Poll::Ready(Ok(())),
                Some(Poll::Ready(Err(e))) => return Poll::Ready(Err(e)),
                Some(Poll::Pending) => return Poll::Pending,
                None => {}
            }
        }
        with_read_buffer(|buf| match io.poll_read(cx, buf) {
            Poll::Ready(Ok(0)) => {
                conn.handle_eof(clock.now());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(n)) => {
                conn.handle_input(clock.now(), &buf[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        })
    }
}

/// The shared write waker, once a write has waited.
fn write_waker<S>(cold: &Option<Box<Cold<S>>>) -> Option<&Waker> {
    Some(&cold.as_ref()?.write.as_ref()?.waker)
}

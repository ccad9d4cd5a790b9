//! The halves from [`WebSocket::split`](crate::WebSocket::split).
//!
//! Locks: `core` guards the connection and is only ever held for short,
//! non-blocking work (never across a read or a write). `write` is the write
//! lock: whoever holds it moves bytes from the core to the stream, so
//! frames from the two halves never interleave. Order: `write` before
//! `core`.
//!
//! The writing half marks itself active (`Core::writer_active`) in the
//! critical section where it queues, and clears the mark in the one where
//! it finds nothing left to write. While it is active, the reading half
//! writes nothing: the writer writes the reader's pongs and close echoes
//! after its own frames. Otherwise the reader only *tries* the write lock.
//! So the reader never waits for the writer and never writes the writer's
//! messages, and the writer waits for the reader only while the reader
//! writes a pong or a close echo. Nothing queued is left to nobody: each
//! side checks for leftovers after it lets go of the write lock.
//!
//! The reader writes in non-blocking mode (unless the user fed data, which
//! `recv` promises to write): what the stream does not take at once stays
//! in the write buffer, and goes out first with the next write of either
//! half. Only the holder of the write lock switches the mode, and turns it
//! off before it lets go, so the writer never writes in non-blocking mode
//! (writes happen only under the write lock, reads only on the reader's
//! thread).

use crate::{Core, Message, ReadTimeout, Step, Transport, WebSocket};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};
use ws_proto::{Bytes, CloseCode, CloseInfo, Error, Transmit};

/// Write buffers above this size are not kept between flushes.
const KEEP_WRITE_BUF: usize = 64 * 1024;

pub(crate) struct Shared<S> {
    io: S,
    core: Mutex<Core>,
    /// The write lock, with the buffer bytes are copied into so that they
    /// can be written without holding `core`.
    write: Mutex<Pending>,
    /// Bytes in `write` a non-blocking write left (for `buffered_amount`).
    unwritten: AtomicUsize,
}

/// Bytes taken from the core; `buf[pos..]` is not written yet.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    pos: usize,
}

pub(crate) fn split<S>(
    io: S,
    core: Core,
    read_timeout: ReadTimeout,
) -> (WebSocketReader<S>, WebSocketWriter<S>) {
    let shared = Arc::new(Shared {
        io,
        core: Mutex::new(core),
        write: Mutex::new(Pending::default()),
        unwritten: AtomicUsize::new(0),
    });
    (
        WebSocketReader {
            shared: shared.clone(),
            read_timeout,
        },
        WebSocketWriter { shared },
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Transport> Shared<S>
where
    for<'a> &'a S: Read + Write,
{
    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    /// Moves what the core queued to the stream, under the write lock.
    ///
    /// The writing half (`writer`) waits for the write lock and writes
    /// blocking. The reading half only tries it, and while the writer is
    /// active it leaves all writing to the writer, which writes what the
    /// reader queued before it lets go (see the recheck at the end of the
    /// loop). So the reader never waits for the writer, and never gets
    /// stuck writing the writer's messages. The reader writes only as far
    /// as the stream takes the bytes without waiting (see the module
    /// docs), except data the user fed.
    fn flush(&self, writer: bool) -> Result<(), Error> {
        loop {
            let mut w = if writer {
                lock(&self.write)
            } else {
                match self.write.try_lock() {
                    Ok(g) => g,
                    Err(TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(TryLockError::WouldBlock) => return Ok(()),
                }
            };
            let now = Instant::now();
            let nonblocking = !writer && {
                let c = self.core();
                if let Some(e) = &c.io_error {
                    return Err(e.clone());
                }
                if c.writer_active {
                    return Ok(());
                }
                if !c.writes_blocking() && !c.answer_due(now) {
                    return Ok(());
                }
                !c.writes_blocking()
            };
            if nonblocking {
                match self.io.set_nonblocking(true) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                        self.core().blocking_only = true;
                        continue;
                    }
                    Err(e) => return Err(self.failed(e)),
                }
                let r = self.write_pending(&mut w, writer, false, now);
                // Back to blocking before the writer can take the lock.
                if let Err(e) = self.io.set_nonblocking(false) {
                    return Err(self.failed(e));
                }
                if !r? {
                    return Ok(()); // the stream is full: try again later
                }
            } else {
                self.write_pending(&mut w, writer, true, now)?;
            }
            if w.buf.capacity() > KEEP_WRITE_BUF {
                w.buf = Vec::new();
            }
            drop(w);
            // The other half may have queued bytes while we held the write
            // lock, and left them to us. Checked and cleared in one critical
            // section, so that nothing queued is left to nobody.
            let mut c = self.core();
            if !c.conn.wants_transmit() || (!writer && c.writer_active) {
                if writer {
                    c.writer_active = false;
                }
                return Ok(());
            }
        }
    }

    /// Writes what an earlier non-blocking write left, then what the core
    /// queued, until the core has nothing more (`Ok(true)`) or, when not
    /// `blocking`, the stream is full (`Ok(false)`: the rest stays in `w`).
    /// The reader stops early when the writer becomes active.
    fn write_pending(
        &self,
        w: &mut Pending,
        writer: bool,
        blocking: bool,
        now: Instant,
    ) -> Result<bool, Error> {
        use std::io::ErrorKind;
        let mut wrote = 0;
        loop {
            while w.pos < w.buf.len() {
                match (&self.io).write(&w.buf[w.pos..]) {
                    Ok(0) => return Err(self.failed(ErrorKind::WriteZero.into())),
                    Ok(n) => {
                        w.pos += n;
                        wrote += n;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if !blocking && e.kind() == ErrorKind::WouldBlock => {
                        self.unwritten.store(w.buf.len() - w.pos, Ordering::Relaxed);
                        self.core().stalled(now, wrote);
                        return Ok(false);
                    }
                    Err(e) => return Err(self.failed(e)),
                }
            }
            w.buf.clear();
            w.pos = 0;
            self.unwritten.store(0, Ordering::Relaxed);
            let t = {
                let mut c = self.core();
                if let Some(e) = &c.io_error {
                    return Err(e.clone());
                }
                if !writer && c.writer_active {
                    return Ok(true);
                }
                let t = c.conn.poll_transmit(&mut w.buf);
                if t.is_none() {
                    c.written();
                }
                t
            };
            match t {
                Some(Transmit::Data) => {}
                Some(Transmit::Shutdown) => {
                    // RFC 6455 §7.1.1: our side of TCP closes now.
                    // Errors are irrelevant: the peer may be gone.
                    let _ = (&self.io).flush();
                    let _ = self.io.shutdown(Shutdown::Write);
                }
                None => break,
            }
        }
        match (&self.io).flush() {
            Ok(()) => Ok(true),
            Err(e) if !blocking && e.kind() == ErrorKind::WouldBlock => {
                self.core().stalled(now, wrote);
                Ok(false)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// The reader's last words when the connection ended: what is left
    /// (a close echo, the shutdown of our write half) is written blocking,
    /// each write bounded by the close timeout. Whether nothing is left.
    fn flush_last_words(&self) -> bool {
        let mut w = match self.write.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let limit = {
            let c = self.core();
            if c.writer_active || c.io_error.is_some() {
                return false;
            }
            if !c.conn.wants_transmit() && w.pos == w.buf.len() {
                return true;
            }
            c.conn.config().close_timeout
        };
        let user = self.io.write_timeout().unwrap_or(None);
        let bound = user
            .map_or(limit, |u| u.min(limit))
            .max(Duration::from_millis(1));
        if self.io.set_write_timeout(Some(bound)).is_err() {
            return false;
        }
        let r = self.write_pending(&mut w, false, true, Instant::now());
        let _ = self.io.set_write_timeout(user);
        matches!(r, Ok(true)) && w.pos == w.buf.len() && !self.core().conn.wants_transmit()
    }

    /// The writing half's flush: `queue` runs under the core lock, and in
    /// the same critical section the writer is marked active, so that the
    /// reader leaves the writing to it.
    pub(crate) fn write_out(
        &self,
        queue: impl FnOnce(&mut Core) -> Result<(), Error>,
    ) -> Result<(), Error> {
        {
            let mut c = self.core();
            queue(&mut c)?;
            c.writer_active = true;
        }
        let r = self.flush(true);
        if r.is_err() {
            self.core().writer_active = false;
        }
        r
    }

    /// A write failed: the core sees the end of input, and the stream is
    /// shut down both ways so that a reader blocked on it wakes up (the
    /// core says to drop the transport, which the other half still holds).
    fn failed(&self, e: std::io::Error) -> Error {
        let err = self.core().io_failed(e);
        let _ = self.io.shutdown(Shutdown::Both);
        err
    }
}

/// The reading half from [`WebSocket::split`].
///
/// It also answers pings, completes the closing handshake and runs the
/// close timer, so keep calling [`recv`](Self::recv) until `None`. It
/// yields the same items as [`WebSocket::recv`] and is also an
/// [`Iterator`].
pub struct WebSocketReader<S> {
    pub(crate) shared: Arc<Shared<S>>,
    read_timeout: ReadTimeout,
}

/// The writing half from [`WebSocket::split`].
///
/// Its methods block until the stream has taken the bytes.
pub struct WebSocketWriter<S> {
    pub(crate) shared: Arc<Shared<S>>,
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

impl<S: Transport> WebSocketReader<S>
where
    for<'a> &'a S: Read + Write,
{
    /// Receives the next message, blocking; `None` after the end.
    ///
    /// The read happens without any lock held, so the writing half can send
    /// meanwhile. The read timeout is the time left until the core's next
    /// deadline, and never more than the configured close timeout: a close
    /// started by the writing half arms its timer at least that far ahead,
    /// so the reader always wakes up in time to run it.
    pub fn recv(&mut self) -> Option<Result<Message, Error>> {
        let sh = &*self.shared;
        loop {
            let mut c = sh.core();
            if let Some(ev) = c.conn.poll_event() {
                let step = c.on_event(ev);
                drop(c);
                match step {
                    Step::Deliver(m, flush) => {
                        if flush {
                            // An error here is reported by a later `recv`.
                            let _ = sh.flush(false);
                        }
                        return Some(Ok(m));
                    }
                    Step::End(r) => {
                        // Rule 2 of the core: last words (the shutdown of
                        // our write half), best effort. If they are left to
                        // the writer, it may be stuck on a peer that stopped
                        // reading: the connection is over, so stand in for
                        // dropping the transport and wake it.
                        if !sh.flush_last_words() {
                            let _ = sh.io.shutdown(Shutdown::Both);
                        }
                        // Reported once, as in `WebSocket::recv`.
                        sh.core().io_error = None;
                        return Some(r);
                    }
                    Step::Skip => continue,
                }
            }
            if c.done() {
                return None;
            }
            let now = Instant::now();
            let deadline = c.conn.poll_timeout();
            if deadline.is_some_and(|d| d <= now) {
                c.conn.handle_timeout(now);
                continue;
            }
            // Queued bytes, or bytes a full stream did not take.
            let wants_transmit = c.conn.wants_transmit() || c.stall.is_some();
            // Commands from the writing half arm timers no sooner than this.
            let cap = c.conn.config().close_timeout;
            drop(c);
            if wants_transmit && sh.flush(false).is_err() {
                continue; // the core saw it as the end; report it
            }
            // Wake up in time to try what a full stream did not take.
            let deadline = match (deadline, sh.core().answer_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = deadline
                .map_or(cap, |d| d.saturating_duration_since(now).min(cap))
                .max(Duration::from_millis(1));
            if let Err(e) = self.read_timeout.set(&sh.io, Some(timeout)) {
                sh.core().io_failed(e);
                continue;
            }
            let mut r = &sh.io;
            crate::read_into(&mut r, |res| sh.core().handle_read(res));
        }
    }

    /// How the connection ended, once `recv` reported the end.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.shared.core().close_info.clone()
    }

    /// Puts the halves back together. What the reading half's last
    /// non-blocking write left (a full stream) is written first, blocking.
    ///
    /// # Panics
    /// If `writer` comes from another socket.
    pub fn unsplit(self, writer: WebSocketWriter<S>) -> WebSocket<S> {
        assert!(
            Arc::ptr_eq(&self.shared, &writer.shared),
            "halves of different sockets"
        );
        drop(writer);
        let shared = match Arc::try_unwrap(self.shared) {
            Ok(s) => s,
            Err(_) => unreachable!("both halves were given"),
        };
        let mut core = shared.core.into_inner().unwrap_or_else(|e| e.into_inner());
        // What a non-blocking write of the reader left goes out first.
        let w = shared.write.into_inner().unwrap_or_else(|e| e.into_inner());
        if w.pos < w.buf.len() && core.io_error.is_none() {
            if let Err(e) = (&shared.io).write_all(&w.buf[w.pos..]) {
                core.io_failed(e);
            }
        }
        WebSocket {
            core,
            read_timeout: self.read_timeout,
            // The halves do not change it: what is set is the user's.
            write_timeout: crate::WriteTimeout::of(&shared.io),
            io: shared.io,
        }
    }
}

impl<S: Transport> Iterator for WebSocketReader<S>
where
    for<'a> &'a S: Read + Write,
{
    type Item = Result<Message, Error>;

    /// Same as [`WebSocketReader::recv`].
    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}

impl<S: Transport> std::iter::FusedIterator for WebSocketReader<S> where for<'a> &'a S: Read + Write {}

impl<S: Transport> WebSocketWriter<S>
where
    for<'a> &'a S: Read + Write,
{
    /// Sends a message: queues it and writes everything queued. The send
    /// buffer policy applies as for [`WebSocket::send`].
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room()?;
        self.shared.write_out(|c| c.queue(msg))
    }

    /// Sends a prepared message; see [`WebSocket::send_prepared`].
    pub fn send_prepared(&mut self, msg: &crate::PreparedMessage) -> Result<(), Error> {
        self.wait_room()?;
        self.shared.write_out(|c| c.queue_prepared(msg))
    }

    fn wait_room(&mut self) -> Result<(), Error> {
        while self.shared.core().conn.should_wait() {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues a message without writing it; see [`WebSocket::feed`].
    pub fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let mut c = self.shared.core();
        c.queue(msg.into())?;
        c.fed = true;
        Ok(())
    }

    /// Sends a message uncompressed; see [`WebSocket::send_uncompressed`].
    pub fn send_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.wait_room()?;
        self.shared.write_out(|c| c.queue_with(msg, false))
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.shared.write_out(|_| Ok(()))
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Ping(payload.into()))
    }

    /// Starts the closing handshake and writes the close frame; the reading
    /// half completes it (and times it out).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.shared.write_out(|c| {
            c.conn.close(Instant::now(), code, reason)?;
            Ok(())
        })
    }

    /// Bytes queued and not yet written to the stream.
    pub fn buffered_amount(&self) -> usize {
        self.shared.core().conn.buffered_amount() + self.shared.unwritten.load(Ordering::Relaxed)
    }
}

//! The connection state machine: frames, messages, control frames, closing.

use crate::close::{CloseCode, CloseFrame};
use crate::config::{Config, SendBufferPolicy};
use crate::deflate::{Deflate, DeflateParams, InflateError};
use crate::error::{parse_close_payload, Error, ProtocolError, UsageError};
use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::mask::{apply_mask, extend_unmasked};
use crate::message::{Message, Utf8Bytes};
use crate::out::OutQueue;
use crate::prepared::{PreparedFrame, PreparedMessage};
use crate::rng::Rng;
use crate::utf8::Utf8Stream;
use bytes::buf::Limit;
use bytes::{BufMut, Bytes};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We opened the connection: our frames are masked.
    Client,
    /// We accepted the connection: the peer's frames must be masked.
    Server,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame (or failed the connection); waiting for the
    /// peer's close frame and then for the transport to close.
    LocalClosing,
    /// The peer sent a close frame and we answered it; waiting for the
    /// transport to close.
    RemoteClosing,
    /// The terminal [`Event::Closed`] was emitted. Drop the transport.
    Closed,
}

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// How a connection ended: the payload of the terminal [`Event::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close frame we sent, if any. A frame without a body is
    /// represented with [`CloseCode::NO_STATUS`].
    pub sent: Option<CloseFrame>,
    /// The close frame we received, if any (same convention).
    pub received: Option<CloseFrame>,
    /// Whether the peer sent its close frame before we sent ours.
    pub remote_initiated: bool,
    /// Why it ended.
    pub ending: Ending,
}

/// The cause of the end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Both close frames were exchanged: a normal end, whatever the codes.
    Clean,
    /// The peer broke the protocol and we failed the connection with the
    /// error's close code.
    Protocol(ProtocolError),
    /// The transport ended before the close handshake finished (1006).
    Abnormal,
    /// The peer did not finish the close handshake within the close timeout.
    Timeout,
    /// Nothing was received within [`Config::idle_timeout`]: the transport
    /// was dropped without a close handshake (what was queued was
    /// discarded; the code reported is 1006).
    IdleTimeout,
}

impl CloseInfo {
    /// Whether the close handshake completed.
    pub fn is_clean(&self) -> bool {
        self.ending == Ending::Clean
    }

    /// The code an application should report, like `ws`'s `close` event:
    /// the received code, 1005 if the peer's close frame had none, 1006 if
    /// none was received.
    pub fn code(&self) -> CloseCode {
        match &self.received {
            Some(f) => f.code,
            None => CloseCode::ABNORMAL,
        }
    }

    /// What an adapter's `recv` yields for this ending, the same on every
    /// runtime: `Message::Close` (with the peer's frame, if it had a body)
    /// after a clean close; the peer's protocol error; otherwise the
    /// transport error that ended the connection, if any, or
    /// `Error::Closed` with these details.
    pub fn into_result(self, transport_error: Option<Error>) -> Result<Message, Error> {
        match self.ending {
            Ending::Clean => Ok(Message::Close(
                self.received.filter(|f| f.code != CloseCode::NO_STATUS),
            )),
            Ending::Protocol(e) => Err(Error::Protocol(e)),
            _ => Err(transport_error.unwrap_or_else(|| Error::Closed(Box::new(self)))),
        }
    }

    /// The received reason, or an empty string.
    pub fn reason(&self) -> &str {
        self.received.as_ref().map_or("", |f| f.reason.as_str())
    }
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ending {
            Ending::Clean => f.write_str("closed cleanly")?,
            Ending::Protocol(e) => write!(f, "failed: {e}")?,
            Ending::Abnormal => f.write_str("transport closed without a close handshake")?,
            Ending::Timeout => f.write_str("close handshake timed out")?,
            Ending::IdleTimeout => f.write_str("nothing received within the idle timeout")?,
        }
        if let Some(r) = &self.received {
            write!(f, "; received {r}")?;
        }
        if let Some(s) = &self.sent {
            write!(f, "; sent {s}")?;
        }
        Ok(())
    }
}

/// Something that happened on the connection, from [`Connection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete text message.
    Text(Utf8Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping; with auto-pong on, the pong is already queued.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The terminal event: fires exactly once, on every path, and is always
    /// the last event.
    Closed(CloseInfo),
}

/// What [`Connection::poll_transmit`] asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Transmit {
    /// Bytes were appended to the buffer: write them all.
    Data,
    /// Everything is written: shut down the write half of the transport now
    /// (TCP FIN). Returned once. For a server whose close handshake is
    /// complete the connection ends with it: [`Event::Closed`] follows.
    Shutdown,
}

/// Timers of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The closing handshake and the transport close after it.
    Close = 0,
    /// [`Config::ping_interval`]: the next heartbeat ping.
    Ping = 1,
    /// [`Config::idle_timeout`]: the peer counts as gone.
    Idle = 2,
}
const TIMERS: usize = 3;

/// An action waiting for the event queue to drain.
#[derive(Debug, Clone)]
enum Deferred {
    Close(Option<CloseFrame>),
    Fail(ProtocolError),
}

/// RSV1 in [`FrameHeader::rsv`]: "Per-Message Compressed" (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// Pongs are queued one per ping until this many bytes wait to be sent;
/// beyond it only the latest ping is answered (RFC 6455 §5.5.3), so a ping
/// flood from a peer that does not read cannot grow the queue.
const PONG_QUEUE_LIMIT: usize = 64 * 1024;

/// Where the transport close stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// Not requested.
    No,
    /// Requested once the queued bytes are out.
    Wanted,
    /// Handed to the caller.
    Done,
}

/// The frame whose payload is being received.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes seen so far, modulo 4: the mask phase.
    phase: u8,
}

/// A WebSocket connection after the opening handshake: a sans-IO state
/// machine.
///
/// # Data flow
///
/// ```text
///            handle_input(now, bytes) ──►┌────────────┐──► poll_event()     (messages, pings, Closed)
///   socket   handle_eof(now)          ──►│ Connection │──► poll_transmit()  (bytes to write / shutdown)
///            handle_timeout(now)      ──►└────────────┘──► poll_timeout()   (when to call handle_timeout)
///                      send_*/close  ──►      ▲
/// ```
///
/// # Call order
///
/// A driver (an "adapter") loops:
///
/// 1. Feed what the transport produced: [`handle_input`](Self::handle_input)
///    with the bytes read, [`handle_eof`](Self::handle_eof) when the read
///    half ends (or the transport fails), [`handle_timeout`](Self::handle_timeout)
///    when the deadline from [`poll_timeout`](Self::poll_timeout) passed.
///    Commands (`send_*`, [`close`](Self::close)) may come at any time.
/// 2. Drain [`poll_transmit`](Self::poll_transmit) until it returns `None`,
///    writing every byte it appends before calling it again, and shutting
///    the write half when it returns [`Transmit::Shutdown`]. A server's
///    connection ends with that shutdown when the close handshake is
///    complete (RFC 6455 §7.1.1: the server closes TCP at once), so check
///    for events after it.
/// 3. Drain [`poll_event`](Self::poll_event) and hand events to the user.
///    After [`Event::Closed`], drain `poll_transmit` one last time and drop
///    the transport.
/// 4. Handling events can queue bytes (the application's answers, or a
///    close frame that arrived behind the messages just taken and takes
///    effect once they are): while [`wants_transmit`](Self::wants_transmit),
///    go back to step 2. Then wait for transport readiness or the deadline
///    from `poll_timeout`, whichever comes first.
///
/// The connection never blocks, allocates in proportion to what the peer
/// actually sent (bounded by [`Config`]), and never panics on peer input.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    /// Shared: every connection of a server can hold the same one.
    config: Arc<Config>,
    state: State,
    /// Boxed: 336 bytes that servers (most connections) never need.
    rng: Option<Box<Rng>>,

    // Input.
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: u8,
    frame: Option<InFrame>,
    /// Kind of the data message being received, if any.
    msg: Option<DataKind>,
    /// The data message being received. A `Vec` sized to the declared
    /// frame, so that a single-frame message becomes its `Bytes` without
    /// another allocation or copy, and an idle connection holds no buffer.
    msg_buf: Vec<u8>,
    /// Frames of the message being received (saturating).
    msg_frames: u32,
    msg_utf8: Utf8Stream,
    /// Whether the message being received is compressed (RSV1 on its
    /// first frame, RFC 7692 §6).
    msg_compressed: bool,
    /// False once input must be ignored (after a close frame or a failure).
    reading: bool,

    // Output.
    out: OutQueue,
    shutdown: Shutdown,
    /// Kind of the fragmented message being sent, if any.
    sending: Option<DataKind>,
    send_utf8: Utf8Stream,
    /// Whether the fragmented message being sent is compressed.
    send_compressed: bool,

    /// permessage-deflate, when negotiated.
    deflate: Option<Box<Deflate>>,

    // Closing.
    /// What most connections never need (the closing handshake, a
    /// failure, timers, a held-back pong), boxed on first use: an idle
    /// connection stays small (issue 5).
    cold: Option<Box<Cold>>,

    /// Events not yet taken by `poll_event`. Boxed (8 bytes instead of
    /// 32) and allocated with the first event: connections that never
    /// receive anything do not pay for it.
    #[allow(clippy::box_collection)]
    events: Option<Box<VecDeque<Event>>>,
}

/// The rarely needed part of a [`Connection`].
#[derive(Debug, Default)]
struct Cold {
    /// The latest ping's payload, when pongs were held back (the queue was
    /// over `PONG_QUEUE_LIMIT`).
    pending_pong: Option<Bytes>,
    /// The payload of the control frame being received.
    ctrl_buf: Vec<u8>,
    sent_close: Option<CloseFrame>,
    received_close: Option<CloseFrame>,
    remote_initiated: bool,
    failure: Option<ProtocolError>,
    timed_out: bool,
    /// Nothing was received within `idle_timeout`.
    idle_expired: bool,
    /// A close frame or failure that arrived behind undelivered messages:
    /// it takes effect once the application has drained them, so that it
    /// can still answer them (and nothing it was given is cut off).
    deferred: Option<(Instant, Deferred)>,
    timers: [Option<Instant>; TIMERS],
}

impl Connection {
    /// A server-side connection, for use after an upgrade completed
    /// elsewhere (for example by hyper); [`crate::ServerHandshake`] builds
    /// one for you otherwise.
    pub fn server(config: impl Into<Arc<Config>>) -> Self {
        Self::new(Role::Server, config.into(), None)
    }

    /// A client-side connection; `seed` seeds the CSPRNG for mask keys and
    /// must come from the OS CSPRNG. [`crate::ClientHandshake`] builds one
    /// for you.
    pub fn client(config: impl Into<Arc<Config>>, seed: [u8; 32]) -> Self {
        Self::new(Role::Client, config.into(), Some(Rng::from_seed(seed)))
    }

    pub(crate) fn new(role: Role, config: Arc<Config>, rng: Option<Rng>) -> Self {
        Connection {
            role,
            config,
            state: State::Open,
            rng: rng.map(Box::new),
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            frame: None,
            msg: None,
            msg_buf: Vec::new(),
            msg_frames: 0,
            msg_utf8: Utf8Stream::default(),
            msg_compressed: false,
            reading: true,
            out: OutQueue::default(),
            shutdown: Shutdown::No,
            sending: None,
            send_utf8: Utf8Stream::default(),
            send_compressed: false,
            deflate: None,
            cold: None,
            events: None,
        }
    }

    /// Turns on permessage-deflate with parameters negotiated elsewhere
    /// (see [`DeflateConfig::accept_offers`](crate::DeflateConfig::accept_offers)
    /// and [`DeflateConfig::check_response`](crate::DeflateConfig::check_response));
    /// the level and threshold come from [`Config::deflate`] (or its
    /// defaults). The handshake objects call this for you. Call it before
    /// any input or command.
    pub fn with_deflate(mut self, params: DeflateParams) -> Self {
        let cfg = self.config.deflate.clone().unwrap_or_default();
        self.deflate = Some(Box::new(Deflate::new(params, &cfg)));
        self
    }

    // ----- getters -----

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The negotiated permessage-deflate parameters, if it is in use.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref().map(|d| &d.params)
    }

    /// Whether the terminal event was emitted.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether data messages can still be sent.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Bytes queued for sending and not yet handed out by `poll_transmit`
    /// (like `bufferedAmount` in browsers and `ws`).
    pub fn buffered_amount(&self) -> usize {
        // An owed pong: 2 header bytes, plus the mask key from a client.
        let mask = if self.rng.is_some() { 4 } else { 0 };
        let pong = self.cold.as_ref().and_then(|c| c.pending_pong.as_ref());
        self.out.len() + pong.map_or(0, |p| p.len() + 2 + mask)
    }

    /// Whether a send would be refused with [`UsageError::SendBufferFull`]
    /// now: the queue holds [`Config::max_send_buffer`] bytes or more (and
    /// is not empty). Any message is accepted below the bound, so the queue
    /// holds at most the bound plus one message (plus control frames the
    /// core owes the peer). Closing is never refused.
    pub fn would_block(&self) -> bool {
        let queued = self.buffered_amount();
        queued != 0 && queued >= self.config.max_send_buffer
    }

    /// Whether a driver must write out what is queued before sending: the
    /// policy is [`SendBufferPolicy::Wait`] and a send would be refused now
    /// ([`would_block`](Self::would_block)). With
    /// [`SendBufferPolicy::Fail`] it is always false: the send is made and
    /// returns the error.
    pub fn should_wait(&self) -> bool {
        self.config.send_buffer_policy == SendBufferPolicy::Wait && self.would_block()
    }

    /// How many more bytes the send queue takes before
    /// [`Config::max_send_buffer`] is reached.
    pub fn send_capacity(&self) -> usize {
        self.config
            .max_send_buffer
            .saturating_sub(self.buffered_amount())
    }

    /// Whether `poll_transmit` has something to hand out.
    pub fn wants_transmit(&self) -> bool {
        !self.out.is_empty() || self.has_pending_pong() || self.shutdown == Shutdown::Wanted
    }

    /// Whether the connection still wants to read from the transport.
    pub fn wants_read(&self) -> bool {
        self.state != State::Closed
    }

    // ----- inputs -----

    /// Starts the heartbeat timers ([`Config::ping_interval`],
    /// [`Config::idle_timeout`]) at `now`, if they are configured and not
    /// running yet. The handshake objects call it; after building a
    /// connection with [`Connection::server`] or [`Connection::client`],
    /// call it once the connection is established (otherwise the timers
    /// start with the first input).
    pub fn start(&mut self, now: Instant) {
        if self.timer(Timer::Ping).is_none() && self.timer(Timer::Idle).is_none() {
            self.touch(now);
        }
    }

    /// Feeds bytes read from the transport. Partial frames are buffered
    /// (bounded by the configured limits); complete messages become events.
    /// Any bytes count as a sign of life for the heartbeat.
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        if self.state == State::Open && !data.is_empty() {
            self.touch(now);
        }
        while !data.is_empty() && self.reading {
            match self.frame {
                None => {
                    let consumed = self.read_header(now, data);
                    data = &data[consumed..];
                }
                Some(f) => {
                    let n = (f.remaining.min(data.len() as u64)) as usize;
                    self.read_payload(now, &data[..n]);
                    data = &data[n..];
                }
            }
        }
    }

    /// Reads the rest of a large frame straight into the message: for
    /// adapters whose transport can read into uninitialized memory (tokio's
    /// `ReadBuf`, `bytes::BufMut`), this saves the copy from their read
    /// buffer and lets one read take more than that buffer holds.
    ///
    /// When the connection is inside the payload of an uncompressed data
    /// frame with at least `at_least` bytes still to come (pass the size of
    /// your read buffer: below that, a normal read may also take the frames
    /// that follow), `read` gets the message's buffer, limited to what it
    /// may take (at most the rest of the frame, at most 1 MiB), and must
    /// only append to it through [`BufMut`](bytes::BufMut) (as
    /// `tokio_util::io::poll_read_buf` does). What it appended is then
    /// handled like [`handle_input`](Self::handle_input) would: unmasked,
    /// checked, counted as a sign of life (at the time `clock` gives: it is
    /// called only when bytes arrived, so an adapter can try this before
    /// every read at no cost). Returns `read`'s result, or
    /// `None` (without calling it) otherwise: then read into your own
    /// buffer and call `handle_input`. A read of 0 bytes is the caller's
    /// to report (end of stream: [`handle_eof`](Self::handle_eof)).
    ///
    /// # Panics
    /// If `read` removed bytes from the buffer.
    pub fn read_direct<R>(
        &mut self,
        clock: impl FnOnce() -> Instant,
        at_least: usize,
        read: impl FnOnce(&mut Limit<&mut Vec<u8>>) -> R,
    ) -> Option<R> {
        let f = self.frame?;
        if !self.reading
            || f.opcode.is_control()
            || self.msg_compressed
            || f.remaining < at_least.max(1) as u64
        {
            return None;
        }
        // Never more than 1 MiB ahead of what arrived (see
        // `check_data_frame`); a single-frame message is already sized.
        let want = f.remaining.min(1 << 20) as usize;
        self.msg_buf.reserve(want);
        let start = self.msg_buf.len();
        let r = read(&mut (&mut self.msg_buf).limit(want));
        let end = self.msg_buf.len();
        assert!(end >= start, "read_direct: the buffer must only grow");
        let n = (end - start).min(want);
        self.msg_buf.truncate(start + n);
        if n > 0 {
            let now = clock();
            if self.state == State::Open {
                self.touch(now);
            }
            if let Some(key) = f.mask {
                apply_mask(&mut self.msg_buf[start..], key, usize::from(f.phase));
            }
            if self.payload_checked(now, start) {
                self.frame_advanced(now, f, n);
            }
        }
        Some(r)
    }

    /// Reports that the transport's read half ended (or the transport
    /// failed). Ends the connection; the close is clean only if the close
    /// handshake had finished.
    pub fn handle_eof(&mut self, now: Instant) {
        self.reading = false;
        if let Some((_, d)) = self.take_deferred() {
            match d {
                Deferred::Close(frame) => {
                    self.on_close_frame(now, frame);
                }
                Deferred::Fail(e) => self.fail(now, e),
            }
        }
        self.finish();
    }

    /// Reports that the deadline from [`Connection::poll_timeout`] passed.
    /// Fires every timer that is due: the close timeout, a heartbeat ping,
    /// the idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Open {
            if self.due(Timer::Idle, now) && !self.has_deferred() {
                self.expire_idle();
                return;
            }
            if self.due(Timer::Ping, now) {
                // RFC 6455 §5.5.2: a ping may serve as a keepalive. It is
                // not counted against `max_send_buffer` (2 bytes).
                self.queue_frame(OpCode::Ping, true, Bytes::new());
                let next = self.config.ping_interval.map(|d| now + d);
                self.set_timer(Timer::Ping, next);
            }
        }
        if let Some(t) = self.timer(Timer::Close) {
            if now >= t {
                self.set_timer(Timer::Close, None);
                if self.state != State::Closed {
                    if self.received_close().is_none() || self.sent_close().is_none() {
                        self.cold_mut().timed_out = true;
                    }
                    self.reading = false;
                    if self.shutdown == Shutdown::No {
                        self.shutdown = Shutdown::Wanted;
                    }
                    self.finish();
                }
            }
        }
    }

    // ----- commands -----

    /// Queues any [`Message`]: text and binary as messages, ping and pong
    /// as control frames, and `Close` as [`Connection::close`] (`None`: a
    /// close frame without a body).
    pub fn send(&mut self, now: Instant, msg: Message) -> Result<(), UsageError> {
        match msg {
            Message::Text(t) => self.send_text(t),
            Message::Binary(b) => self.send_binary(b),
            Message::Ping(p) => self.send_ping(p),
            Message::Pong(p) => self.send_pong(p),
            Message::Close(Some(f)) => self.close(now, f.code, &f.reason),
            Message::Close(None) => self.close(now, CloseCode::NO_STATUS, ""),
        }
    }

    /// [`send`](Self::send) with a per-message compression choice, like
    /// `ws.send(data, { compress: false })` in Node's `ws`: with
    /// `compress: false` a text or binary message goes out uncompressed
    /// (no RSV1) even when permessage-deflate is negotiated; `true` is the
    /// same as `send` (compressed from [`DeflateConfig::threshold`](crate::DeflateConfig::threshold)
    /// bytes up). Control frames are never compressed.
    pub fn send_with(
        &mut self,
        now: Instant,
        msg: Message,
        compress: bool,
    ) -> Result<(), UsageError> {
        self.send_with_clock(|| now, msg, compress)
    }

    /// [`send_with`](Self::send_with), reading the clock only for the
    /// messages that need it: only a close frame starts a timer (the close
    /// timeout), so `clock` is called for `Message::Close` and not for
    /// text, binary, ping or pong. For adapters that send many messages
    /// per wake-up, where reading the clock for each costs more than
    /// queueing it.
    pub fn send_with_clock(
        &mut self,
        clock: impl FnOnce() -> Instant,
        msg: Message,
        compress: bool,
    ) -> Result<(), UsageError> {
        match msg {
            Message::Text(t) => {
                self.check_whole_message()?;
                self.queue_message(OpCode::Text, t.into_bytes(), compress);
                Ok(())
            }
            Message::Binary(b) => {
                self.check_whole_message()?;
                self.queue_message(OpCode::Binary, b, compress);
                Ok(())
            }
            Message::Ping(p) => self.send_ping(p),
            Message::Pong(p) => self.send_pong(p),
            Message::Close(Some(f)) => self.close(clock(), f.code, &f.reason),
            Message::Close(None) => self.close(clock(), CloseCode::NO_STATUS, ""),
        }
    }

    /// Queues a text message. With permessage-deflate negotiated, it is
    /// compressed when at least [`DeflateConfig::threshold`](crate::DeflateConfig::threshold)
    /// bytes long.
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), UsageError> {
        let text = text.into();
        self.check_whole_message()?;
        self.queue_message(OpCode::Text, text.into_bytes(), true);
        Ok(())
    }

    /// Queues a binary message; compressed like [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), UsageError> {
        let data = data.into();
        self.check_whole_message()?;
        self.queue_message(OpCode::Binary, data, true);
        Ok(())
    }

    /// Queues a [`PreparedMessage`] (a broadcast): the frame built once is
    /// shared, not encoded again. With permessage-deflate negotiated and a
    /// compressed form prepared for a window this connection allows, those
    /// bytes are sent (and our compressor forgets its history); with a
    /// smaller negotiated window the message is compressed here; without
    /// permessage-deflate, or if the message was prepared without
    /// compression, it goes uncompressed.
    ///
    /// Only a server can send prepared messages ([`UsageError::ServerOnly`]
    /// for a client, whose frames must each be masked with a fresh key).
    pub fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<(), UsageError> {
        if self.role != Role::Server {
            return Err(UsageError::ServerOnly);
        }
        self.check_whole_message()?;
        match self.deflate.as_mut() {
            Some(d) if msg.is_compressed() => {
                match msg.compressed_for(d.params.local_max_window_bits) {
                    Some(f) => {
                        d.reset_compressor();
                        self.queue_prepared(f);
                    }
                    None => {
                        let opcode = match msg.kind() {
                            DataKind::Text => OpCode::Text,
                            DataKind::Binary => OpCode::Binary,
                        };
                        self.queue_message(opcode, msg.payload().clone(), true);
                    }
                }
            }
            _ => self.queue_prepared(msg.plain()),
        }
        Ok(())
    }

    /// Queues a message of either kind; `compress: false` sends it
    /// uncompressed even when permessage-deflate is negotiated (for data
    /// that is already compressed), `true` behaves like `send_text` /
    /// `send_binary`. Text must be UTF-8.
    pub fn send_message(
        &mut self,
        kind: DataKind,
        data: impl Into<Bytes>,
        compress: bool,
    ) -> Result<(), UsageError> {
        let data = data.into();
        self.check_whole_message()?;
        let opcode = match kind {
            DataKind::Text => {
                if simdutf8::basic::from_utf8(&data).is_err() {
                    return Err(UsageError::InvalidUtf8);
                }
                OpCode::Text
            }
            DataKind::Binary => OpCode::Binary,
        };
        self.queue_message(opcode, data, compress);
        Ok(())
    }

    /// Queues one fragment of a message, for streaming: the first fragment
    /// picks the kind, `fin` ends the message. Text fragments may split a
    /// character across fragments; the whole message must be UTF-8.
    ///
    /// With permessage-deflate negotiated, the first fragment decides: if
    /// it is at least [`DeflateConfig::threshold`](crate::DeflateConfig::threshold)
    /// bytes, the whole message is compressed as one DEFLATE stream, each
    /// fragment flushed so that it can be decoded as soon as it arrives
    /// (RFC 7692 §7.2.1); otherwise the whole message goes uncompressed.
    pub fn send_fragment(
        &mut self,
        kind: DataKind,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), UsageError> {
        self.send_fragment_with(kind, data, fin, true)
    }

    /// [`send_fragment`](Self::send_fragment) with a per-message opt-out:
    /// `compress: false` on the first fragment sends the whole message
    /// uncompressed (later fragments follow the first one's choice).
    pub fn send_fragment_with(
        &mut self,
        kind: DataKind,
        data: impl Into<Bytes>,
        fin: bool,
        compress: bool,
    ) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closed);
        }
        let data = data.into();
        let opcode = match self.sending {
            Some(k) if k != kind => return Err(UsageError::FragmentKindMismatch),
            Some(_) => OpCode::Continuation,
            None => match kind {
                DataKind::Text => OpCode::Text,
                DataKind::Binary => OpCode::Binary,
            },
        };
        if self.would_block() {
            return Err(UsageError::SendBufferFull);
        }
        if kind == DataKind::Text {
            let mut v = self.send_utf8.clone();
            if !v.feed(&data) || (fin && !v.is_complete()) {
                return Err(UsageError::InvalidUtf8);
            }
            self.send_utf8 = v;
        }
        let first = self.sending.is_none();
        if first {
            self.send_compressed = compress
                && self
                    .deflate
                    .as_ref()
                    .is_some_and(|d| data.len() >= d.threshold);
        }
        match self.deflate.as_mut() {
            Some(d) if self.send_compressed => {
                // RFC 7692 §6.1: RSV1 on the first frame only.
                let rsv = if first { RSV1 } else { 0 };
                let z = d.compress(&data, fin);
                self.queue_frame_rsv(opcode, fin, rsv, z);
            }
            _ => self.queue_frame(opcode, fin, data),
        }
        if fin {
            self.sending = None;
            self.send_utf8.reset();
        } else {
            self.sending = Some(kind);
        }
        Ok(())
    }

    /// Queues a ping with up to 125 bytes of payload.
    pub fn send_ping(&mut self, data: impl Into<Bytes>) -> Result<(), UsageError> {
        self.send_control(OpCode::Ping, data.into())
    }

    /// Queues an unsolicited pong with up to 125 bytes of payload.
    pub fn send_pong(&mut self, data: impl Into<Bytes>) -> Result<(), UsageError> {
        self.send_control(OpCode::Pong, data.into())
    }

    /// Starts the closing handshake. `CloseCode::NO_STATUS` sends a close
    /// frame without a body (and then `reason` must be empty). The reason
    /// is at most 123 bytes. Closing again while closing is a no-op.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        // 1005 stands for "no body", so it cannot carry a reason.
        let no_status = code == CloseCode::NO_STATUS;
        if (!no_status && !code.is_valid_on_wire()) || (no_status && !reason.is_empty()) {
            return Err(UsageError::InvalidCloseCode(code.0));
        }
        if reason.len() > 123 {
            return Err(UsageError::ControlPayloadTooLong);
        }
        if self.state != State::Open {
            return Ok(());
        }
        self.send_close_frame(CloseFrame::new(code, reason));
        self.state = State::LocalClosing;
        self.stop_heartbeat();
        self.arm(Timer::Close, now + self.config.close_timeout);
        Ok(())
    }

    // ----- outputs -----

    /// Appends the bytes to write to `buf`, or asks for the write half to be
    /// shut. Returns `None` when there is nothing to do. Write every byte
    /// appended before calling again: a `Shutdown` comes only after the
    /// bytes before it.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.flush_pong();
        if !self.out.is_empty() {
            self.out.drain_into(buf);
            return Some(Transmit::Data);
        }
        self.poll_shutdown()
    }

    /// Vectored alternative to `poll_transmit`: fills `dst` with slices of
    /// the queued bytes, in order, and returns how many were filled. Call
    /// [`Connection::advance_transmit`] with the number of bytes written.
    /// When nothing is queued, check [`Connection::poll_shutdown`].
    pub fn transmit_slices<'a>(&'a mut self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        self.flush_pong();
        self.out.chunks(dst)
    }

    /// Drops `n` bytes that were written from the front of the queue.
    ///
    /// # Panics
    /// If `n` is larger than [`Connection::buffered_amount`] (a caller bug).
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n)
    }

    /// With `transmit_slices`: once the queue is empty, returns
    /// `Some(Transmit::Shutdown)` once if the write half must be shut. For a
    /// server whose close handshake is complete this also ends the
    /// connection: [`Event::Closed`] follows.
    pub fn poll_shutdown(&mut self) -> Option<Transmit> {
        if self.out.is_empty() && !self.has_pending_pong() && self.shutdown == Shutdown::Wanted {
            self.shutdown = Shutdown::Done;
            if self.role == Role::Server
                && self.failure().is_none()
                && self.sent_close().is_some()
                && self.received_close().is_some()
            {
                // RFC 6455 §7.1.1: once both close frames are exchanged "the
                // server MUST close the underlying TCP connection
                // immediately". Everything is written: nothing is left to
                // wait for, so the connection ends here, cleanly.
                self.finish();
            }
            // Otherwise it ends when the peer closes its side in turn
            // (`handle_eof`) or the close timer fires.
            return Some(Transmit::Shutdown);
        }
        None
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        // Apply a deferred close or failure only once the application came
        // back after taking the last message, so its answers go out first.
        if self.events.as_ref().map_or(true, |e| e.is_empty()) {
            if let Some((now, d)) = self.take_deferred() {
                match d {
                    Deferred::Close(frame) => self.on_close_frame(now, frame),
                    Deferred::Fail(e) => self.fail(now, e),
                }
            }
        }
        self.events.as_mut()?.pop_front()
    }

    /// The earliest deadline at which [`Connection::handle_timeout`] must be
    /// called, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.cold.as_ref()?.timers.iter().flatten().min().copied()
    }

    // ----- internals: input -----

    /// Parses a header from buffered bytes plus `data`; returns how many
    /// bytes of `data` were consumed.
    fn read_header(&mut self, now: Instant, data: &[u8]) -> usize {
        let hdr_len = usize::from(self.hdr_len);
        let (res, consumed) = if hdr_len == 0 {
            match FrameHeader::decode(data) {
                Ok(Some((h, n))) => (Ok(Some(h)), n),
                Ok(None) => {
                    // Less than a whole header: keep it.
                    self.hdr[..data.len()].copy_from_slice(data);
                    // Less than MAX_HEADER_LEN (14) bytes.
                    self.hdr_len = data.len() as u8;
                    (Ok(None), data.len())
                }
                Err(e) => (Err(e), data.len()),
            }
        } else {
            let take = (MAX_HEADER_LEN - hdr_len).min(data.len());
            self.hdr[hdr_len..hdr_len + take].copy_from_slice(&data[..take]);
            match FrameHeader::decode(&self.hdr[..hdr_len + take]) {
                Ok(Some((h, n))) => {
                    let used = n - hdr_len;
                    self.hdr_len = 0;
                    (Ok(Some(h)), used)
                }
                Ok(None) => {
                    self.hdr_len += take as u8;
                    (Ok(None), take)
                }
                Err(e) => (Err(e), data.len()),
            }
        };
        match res {
            Ok(Some(h)) => {
                if let Err(e) = self.begin_frame(now, h) {
                    self.fail(now, e);
                }
            }
            Ok(None) => {}
            Err(e) => self.fail(now, e),
        }
        consumed
    }

    fn begin_frame(&mut self, now: Instant, h: FrameHeader) -> Result<(), ProtocolError> {
        // RFC 6455 §5.2: RSV bits must be 0 unless an extension defines
        // them. RFC 7692 §6: permessage-deflate defines RSV1 ("compressed"),
        // on the first frame of a data message only.
        let rsv1 = h.rsv & RSV1 != 0;
        if h.rsv & !RSV1 != 0
            || (rsv1
                && (self.deflate.is_none() || !matches!(h.opcode, OpCode::Text | OpCode::Binary)))
        {
            return Err(ProtocolError::ReservedBits);
        }
        // RFC 6455 §5.1: clients mask, servers do not.
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        match h.opcode {
            OpCode::Continuation => {
                if self.msg.is_none() {
                    return Err(ProtocolError::UnexpectedContinuation);
                }
                self.check_data_frame(&h)?;
            }
            OpCode::Text | OpCode::Binary => {
                if self.msg.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                self.msg = Some(if h.opcode == OpCode::Text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                });
                self.msg_frames = 0;
                self.msg_utf8.reset();
                self.msg_compressed = rsv1;
                self.check_data_frame(&h)?;
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                if let Some(c) = &mut self.cold {
                    c.ctrl_buf.clear();
                }
            }
        }
        let f = InFrame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            remaining: h.len,
            phase: 0,
        };
        if h.len == 0 {
            self.end_frame(now, f);
        } else {
            self.frame = Some(f);
        }
        Ok(())
    }

    fn check_data_frame(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        self.msg_frames = self.msg_frames.saturating_add(1);
        if self.msg_frames as usize > self.config.max_fragments {
            return Err(ProtocolError::TooManyFragments);
        }
        if h.len > self.config.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge);
        }
        if self.msg_compressed {
            // The limit applies to the inflated bytes, while inflating.
            return Ok(());
        }
        if self.msg_buf.len() as u64 + h.len > self.config.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge);
        }
        // Reserve for what was declared, but never more than 1 MiB ahead of
        // what actually arrived: a peer that declares a big frame and sends
        // nothing must not cost us the declared size.
        let ahead = (h.len as usize).min(1 << 20);
        if self.msg_buf.is_empty() {
            // Exactly: a message of one frame then fills its buffer, which
            // `Bytes::from` takes over as it is.
            self.msg_buf.reserve_exact(ahead);
        } else {
            self.msg_buf.reserve(ahead);
        }
        Ok(())
    }

    fn read_payload(&mut self, now: Instant, chunk: &[u8]) {
        let Some(f) = self.frame else { return };
        if f.opcode.is_control() {
            let ctrl = &mut self.cold_mut().ctrl_buf;
            let start = ctrl.len();
            ctrl.extend_from_slice(chunk);
            if let Some(key) = f.mask {
                apply_mask(&mut ctrl[start..], key, usize::from(f.phase));
            }
        } else if self.msg_compressed {
            // RFC 7692 §7.2.2: inflated as it arrives, straight into the
            // message buffer.
            let start = self.msg_buf.len();
            let res = match self.deflate.as_mut() {
                Some(d) => d.inflate(
                    chunk,
                    f.mask,
                    usize::from(f.phase),
                    &mut self.msg_buf,
                    self.config.max_message_size,
                ),
                None => Ok(()),
            };
            if !self.check_inflated(now, start, res) {
                return;
            }
        } else {
            // One copy from the transport's buffer, unmasked on the way.
            let start = self.msg_buf.len();
            match f.mask {
                Some(key) => {
                    extend_unmasked(&mut self.msg_buf, chunk, key, usize::from(f.phase));
                }
                None => self.msg_buf.extend_from_slice(chunk),
            }
            if !self.payload_checked(now, start) {
                return;
            }
        }
        self.frame_advanced(now, f, chunk.len());
    }

    /// Unmasked payload bytes of the current (uncompressed data) frame
    /// were appended to `msg_buf` from `start`: checks UTF-8. `false` if
    /// that failed the connection.
    fn payload_checked(&mut self, now: Instant, start: usize) -> bool {
        // Fail fast: invalid UTF-8 is reported as soon as it arrives.
        if self.msg == Some(DataKind::Text) && !self.msg_utf8.feed(&self.msg_buf[start..]) {
            self.fail(now, ProtocolError::InvalidUtf8);
            return false;
        }
        true
    }

    /// `n` more payload bytes of frame `f` were handled.
    fn frame_advanced(&mut self, now: Instant, mut f: InFrame, n: usize) {
        f.phase = ((usize::from(f.phase) + n) & 3) as u8;
        f.remaining -= n as u64;
        if f.remaining == 0 {
            self.frame = None;
            self.end_frame(now, f);
        } else {
            self.frame = Some(f);
        }
    }

    fn end_frame(&mut self, now: Instant, f: InFrame) {
        match f.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !f.fin {
                    return;
                }
                if self.msg_compressed {
                    self.msg_compressed = false;
                    let start = self.msg_buf.len();
                    let res = match self.deflate.as_mut() {
                        Some(d) => {
                            d.finish_inflate(&mut self.msg_buf, self.config.max_message_size)
                        }
                        None => Ok(()),
                    };
                    if !self.check_inflated(now, start, res) {
                        return;
                    }
                }
                let kind = self.msg.take();
                // The message takes the buffer with it (no copy; no
                // allocation when it was sized exactly, as for a message of
                // one frame): nothing stays behind on an idle connection.
                let payload = Bytes::from(std::mem::take(&mut self.msg_buf));
                match kind {
                    Some(DataKind::Text) => {
                        if !self.msg_utf8.is_complete() {
                            self.fail(now, ProtocolError::InvalidUtf8);
                            return;
                        }
                        self.events_mut()
                            .push_back(Event::Text(Utf8Bytes::from_bytes_unchecked(payload)));
                    }
                    _ => self.events_mut().push_back(Event::Binary(payload)),
                }
            }
            OpCode::Ping => {
                let payload = Bytes::copy_from_slice(self.ctrl_payload());
                // RFC 6455 §5.5.3: answering only the latest ping is allowed.
                if self.config.auto_pong && self.sent_close().is_none() {
                    if self.out.len() < PONG_QUEUE_LIMIT {
                        self.flush_pong();
                        self.queue_frame(OpCode::Pong, true, payload.clone());
                    } else {
                        self.cold_mut().pending_pong = Some(payload.clone());
                    }
                }
                self.events_mut().push_back(Event::Ping(payload));
            }
            OpCode::Pong => {
                let payload = Bytes::copy_from_slice(self.ctrl_payload());
                self.events_mut().push_back(Event::Pong(payload));
            }
            OpCode::Close => {
                let payload = self
                    .cold
                    .as_mut()
                    .map(|c| std::mem::take(&mut c.ctrl_buf))
                    .unwrap_or_default();
                match parse_close_payload(&payload) {
                    Ok(frame) if self.has_data_events() => {
                        self.reading = false;
                        self.cold_mut().deferred = Some((now, Deferred::Close(frame)));
                    }
                    Ok(frame) => self.on_close_frame(now, frame),
                    Err(e) => self.fail(now, e),
                }
            }
        }
    }

    /// After inflating into `msg_buf[start..]`: fails the connection on a
    /// bad stream, an oversized message or invalid UTF-8; `false` then.
    fn check_inflated(
        &mut self,
        now: Instant,
        start: usize,
        res: Result<(), InflateError>,
    ) -> bool {
        // Fail fast: invalid UTF-8 is reported as soon as it inflates, and
        // before an inflate error met later in the same input, so that the
        // outcome does not depend on how the input was split.
        let bad_utf8 =
            self.msg == Some(DataKind::Text) && !self.msg_utf8.feed(&self.msg_buf[start..]);
        let err = match res {
            _ if bad_utf8 => Some(ProtocolError::InvalidUtf8),
            Err(InflateError::TooLarge) => Some(ProtocolError::MessageTooLarge),
            Err(InflateError::Corrupt) => Some(ProtocolError::InvalidCompressedData),
            Ok(()) => None,
        };
        match err {
            Some(e) => {
                self.fail(now, e);
                false
            }
            None => true,
        }
    }

    fn on_close_frame(&mut self, now: Instant, frame: Option<CloseFrame>) {
        let frame = frame.unwrap_or(CloseFrame::new(CloseCode::NO_STATUS, ""));
        // RFC 6455 §5.5.1: nothing may follow a close frame.
        self.reading = false;
        match self.state {
            State::Open => {
                self.cold_mut().remote_initiated = true;
                // Echo the code (RFC 6455 §5.5.1), without the reason.
                let echo = CloseFrame::new(frame.code, "");
                self.cold_mut().received_close = Some(frame);
                self.send_close_frame(echo);
                self.state = State::RemoteClosing;
            }
            State::LocalClosing => {
                self.cold_mut().received_close = Some(frame);
            }
            State::RemoteClosing | State::Closed => return,
        }
        self.close_transport(now);
    }

    /// Both close frames are exchanged (or the connection failed): close
    /// the transport. RFC 6455 §7.1.1: the server closes TCP first; the
    /// client waits for it, and closes after the close timeout.
    fn close_transport(&mut self, now: Instant) {
        self.stop_heartbeat();
        let server_first = self.role == Role::Server || self.failure().is_some();
        if server_first && self.shutdown == Shutdown::No {
            self.shutdown = Shutdown::Wanted;
        }
        self.arm(Timer::Close, now + self.config.close_timeout);
    }

    /// Fails the connection (RFC 6455 §7.1.7) because the peer broke the
    /// protocol.
    fn fail(&mut self, now: Instant, e: ProtocolError) {
        if self.failure().is_some() || self.state == State::Closed {
            return;
        }
        // Defer only while reading input: a deferred failure applied later
        // (by `poll_event` or `handle_eof`) must take effect, not be
        // deferred again behind the same messages.
        if self.reading && self.has_data_events() && !self.has_deferred() {
            // Let the application see (and answer) what came before.
            self.reading = false;
            self.frame = None;
            self.cold_mut().deferred = Some((now, Deferred::Fail(e)));
            return;
        }
        self.cold_mut().failure = Some(e);
        self.reading = false;
        self.frame = None;
        self.msg = None;
        self.msg_buf = Vec::new();
        if let Some(c) = &mut self.cold {
            c.pending_pong = None;
        }
        if self.sent_close().is_none() {
            let mut reason = e.to_string();
            reason.truncate(123);
            self.send_close_frame(CloseFrame::new(e.close_code(), reason));
        }
        if self.state == State::Open {
            self.state = State::LocalClosing;
        }
        self.close_transport(now);
    }

    fn has_data_events(&self) -> bool {
        self.events
            .iter()
            .flat_map(|e| e.iter())
            .any(|e| matches!(e, Event::Text(_) | Event::Binary(_)))
    }

    /// Emits the terminal event (once): called when the transport ended or
    /// the close timer fired.
    fn finish(&mut self) {
        if self.state == State::Closed {
            return;
        }
        let ending = if let Some(e) = self.failure() {
            Ending::Protocol(e)
        } else if self.sent_close().is_some() && self.received_close().is_some() {
            Ending::Clean
        } else if self.cold.as_ref().is_some_and(|c| c.timed_out) {
            Ending::Timeout
        } else if self.cold.as_ref().is_some_and(|c| c.idle_expired) {
            Ending::IdleTimeout
        } else {
            Ending::Abnormal
        };
        self.state = State::Closed;
        // Whatever the role, once the connection is over our write half is
        // shut too, so a caller that keeps the transport around does not
        // keep the peer waiting for our FIN.
        if self.shutdown == Shutdown::No {
            self.shutdown = Shutdown::Wanted;
        }
        if let Some(c) = &mut self.cold {
            c.timers = [None; TIMERS];
        }
        self.msg_buf = Vec::new();
        if let Some(d) = &mut self.deflate {
            d.release();
        }
        if let Some(c) = &mut self.cold {
            c.ctrl_buf = Vec::new();
        }
        let closed = Event::Closed(CloseInfo {
            sent: self.sent_close().cloned(),
            received: self.received_close().cloned(),
            remote_initiated: self.cold.as_ref().is_some_and(|c| c.remote_initiated),
            ending,
        });
        self.events_mut().push_back(closed);
    }

    // ----- internals: output -----

    fn check_whole_message(&self) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closed);
        }
        if self.sending.is_some() {
            return Err(UsageError::FragmentedMessageInProgress);
        }
        if self.would_block() {
            return Err(UsageError::SendBufferFull);
        }
        Ok(())
    }

    fn send_control(&mut self, op: OpCode, data: Bytes) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closed);
        }
        if data.len() > 125 {
            return Err(UsageError::ControlPayloadTooLong);
        }
        if self.would_block() {
            return Err(UsageError::SendBufferFull);
        }
        self.queue_frame(op, true, data);
        Ok(())
    }

    fn send_close_frame(&mut self, frame: CloseFrame) {
        // A pong owed for an earlier ping goes out before the close.
        self.flush_pong();
        let body = if frame.code == CloseCode::NO_STATUS {
            Bytes::new()
        } else {
            frame.encode()
        };
        self.queue_frame(OpCode::Close, true, body);
        self.cold_mut().sent_close = Some(frame);
    }

    fn flush_pong(&mut self) {
        if let Some(p) = self.cold.as_mut().and_then(|c| c.pending_pong.take()) {
            if self.sent_close().is_none() {
                self.queue_frame(OpCode::Pong, true, p);
            }
        }
    }

    /// Queues a whole data message, compressed when permessage-deflate is
    /// negotiated, `compress` allows it and it reaches the threshold.
    fn queue_message(&mut self, opcode: OpCode, payload: Bytes, compress: bool) {
        match self.deflate.as_mut() {
            Some(d) if compress && payload.len() >= d.threshold => {
                let z = d.compress(&payload, true);
                self.queue_frame_rsv(opcode, true, RSV1, z);
            }
            _ => self.queue_frame(opcode, true, payload),
        }
    }

    fn queue_frame(&mut self, opcode: OpCode, fin: bool, payload: Bytes) {
        self.queue_frame_rsv(opcode, fin, 0, payload)
    }

    fn queue_frame_rsv(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: Bytes) {
        let mask = self.rng.as_mut().map(|r| r.mask_key());
        let h = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            len: payload.len() as u64,
        };
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut hdr);
        self.out.extend(&hdr[..n]);
        match mask {
            Some(key) => {
                // Clients must copy to mask; do it in one pass over the tail.
                let start = self.out.extend(&payload);
                apply_mask(&mut self.out.tail_mut()[start..], key, 0);
            }
            None => self.out.push(payload),
        }
    }

    /// Queues bytes verbatim (the 101 response ahead of the first frame).
    pub(crate) fn queue_raw(&mut self, b: Vec<u8>) {
        self.out.push_chunk(Bytes::from(b));
    }

    fn events_mut(&mut self) -> &mut VecDeque<Event> {
        self.events.get_or_insert_with(Default::default)
    }

    /// The cold part, allocated on first use.
    fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }

    /// The payload of the control frame just received.
    fn ctrl_payload(&self) -> &[u8] {
        self.cold.as_ref().map_or(&[], |c| &c.ctrl_buf)
    }

    fn sent_close(&self) -> Option<&CloseFrame> {
        self.cold.as_ref().and_then(|c| c.sent_close.as_ref())
    }

    fn received_close(&self) -> Option<&CloseFrame> {
        self.cold.as_ref().and_then(|c| c.received_close.as_ref())
    }

    fn failure(&self) -> Option<ProtocolError> {
        self.cold.as_ref().and_then(|c| c.failure)
    }

    fn has_deferred(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.deferred.is_some())
    }

    fn take_deferred(&mut self) -> Option<(Instant, Deferred)> {
        self.cold.as_mut().and_then(|c| c.deferred.take())
    }

    fn has_pending_pong(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.pending_pong.is_some())
    }

    fn timer(&self, t: Timer) -> Option<Instant> {
        self.cold.as_ref().and_then(|c| c.timers[t as usize])
    }

    fn set_timer(&mut self, t: Timer, at: Option<Instant>) {
        if at.is_some() || self.cold.is_some() {
            self.cold_mut().timers[t as usize] = at;
        }
    }

    fn arm(&mut self, t: Timer, at: Instant) {
        self.set_timer(t, Some(at));
    }

    /// Whether timer `t` is armed and due at `now`.
    fn due(&self, t: Timer, now: Instant) -> bool {
        self.timer(t).is_some_and(|at| now >= at)
    }

    /// Something arrived: the heartbeat timers start over.
    fn touch(&mut self, now: Instant) {
        if let Some(d) = self.config.ping_interval {
            self.arm(Timer::Ping, now + d);
        }
        if let Some(d) = self.config.idle_timeout {
            self.arm(Timer::Idle, now + d);
        }
    }

    /// The heartbeat runs only while the connection is open; once closing,
    /// the close timer bounds what is left.
    fn stop_heartbeat(&mut self) {
        self.set_timer(Timer::Ping, None);
        self.set_timer(Timer::Idle, None);
    }

    /// Nothing arrived within `idle_timeout`: the peer counts as gone. It
    /// reads nothing, so nothing more is written (what was queued is
    /// dropped) and no close handshake is waited for: the write half is
    /// shut and the connection ends now.
    fn expire_idle(&mut self) {
        self.cold_mut().idle_expired = true;
        self.reading = false;
        self.frame = None;
        self.msg = None;
        if let Some(c) = &mut self.cold {
            c.pending_pong = None;
        }
        self.out = OutQueue::default();
        if self.shutdown == Shutdown::No {
            self.shutdown = Shutdown::Wanted;
        }
        self.finish();
    }

    /// Queues a prepared frame: header by copy, payload shared.
    fn queue_prepared(&mut self, f: &PreparedFrame) {
        self.out.extend(f.header());
        self.out.push(f.payload.clone());
    }
}

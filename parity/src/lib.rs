//! The parity suite: scenarios written once and run against every adapter
//! (ws-tokio, ws-async-std on async-std and on smol, ws-blocking), so that
//! `cargo test --workspace` proves they behave identically (DESIGN.md,
//! "Tests: what goes where", item 6).
//!
//! # Pieces
//!
//! - [`Adapter`]: what a scenario needs from an adapter — listen (accept one
//!   connection, with a decision callback) and connect — implemented for
//!   each adapter with its public API only ([`adapters`]).
//! - [`Socket`]: one connection of any adapter, driven with blocking calls
//!   (`send`, `feed`, `flush`, `recv`, `close`, `close_info`,
//!   `buffered_amount`). Each socket lives on a driver thread of its own
//!   (with its runtime, for the async adapters); every call waits at most
//!   [`LIMIT`].
//! - [`raw::RawPeer`]: a scripted peer on a plain `TcpStream` that writes
//!   hand-built frames and reads frames back, for what the adapters cannot
//!   produce themselves (fragments, invalid UTF-8, masking violations,
//!   oversized frames, a peer that vanishes or stops reading).
//! - [`obs`]: normalized observations; a run of a scenario yields a
//!   transcript (`Vec<Obs>`).
//! - [`harness`]: runs a scenario on every adapter in parallel, each within
//!   a time limit, and asserts that every transcript equals the expected
//!   one and tokio's.
//!
//! The scenarios themselves are in `tests/parity/`.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

pub use ws_proto::{
    http, Accept, CloseCode, CloseFrame, CloseInfo, Config, Ending, Error, HandshakeError, Message,
    ProtocolError, Reject, Role, UsageError,
};
pub use ws_proto::{DeflateConfig, PreparedMessage, SendBufferPolicy};

mod adapters;
pub mod harness;
pub mod obs;
pub mod raw;

pub use adapters::{AsyncStd, Blocking, Smol, Tokio};
pub use harness::{
    adapters, check, check_roles, echo_server, run_each, spawn_helper, with_raw_peer,
};
pub use obs::{Msg, Obs, Payload, Wire};

/// The longest any single blocking step of a scenario may take (a call on a
/// [`Socket`], a read of a raw peer). A safety net that turns a hang into a
/// failure, never a way to wait for something.
pub const LIMIT: Duration = Duration::from_secs(20);

/// The server's decision on an upgrade request.
pub type Decide = Box<dyn FnOnce(&http::Request<()>) -> Result<Accept, Reject> + Send>;

/// What a client connect returns: the socket and the server's 101 response.
pub type Connected = Result<(Socket, http::Response<()>), Error>;

/// Accepts every request, choosing no subprotocol.
pub fn accept_all() -> Decide {
    Box::new(|_| Ok(Accept::new()))
}

/// An adapter under test.
pub trait Adapter: Sync {
    /// A short name for reports: `tokio`, `async-std`, `smol`, `blocking`.
    fn name(&self) -> &'static str;

    /// Binds an ephemeral port of 127.0.0.1 and, in the background, accepts
    /// one TCP connection and runs the adapter's server handshake on it with
    /// `config` and `decide`.
    fn listen(&self, config: Config, decide: Decide) -> Listener;

    /// Connects with the adapter's `connect_with(request, config)`.
    fn connect(&self, request: http::Request<()>, config: Config) -> Connected;

    /// Connects to `ws://{addr}/`.
    fn connect_to(&self, addr: SocketAddr, config: Config) -> Connected {
        self.connect(request(addr), config)
    }
}

/// A GET request for `ws://{addr}/`.
pub fn request(addr: SocketAddr) -> http::Request<()> {
    http::Request::get(format!("ws://{addr}/"))
        .body(())
        .expect("valid request")
}

/// A command for a socket's driver thread.
pub(crate) enum Cmd {
    Send(Message, mpsc::Sender<Result<(), Error>>),
    Feed(Message, mpsc::Sender<Result<(), Error>>),
    SendUncompressed(Message, mpsc::Sender<Result<(), Error>>),
    SendPrepared(PreparedMessage, mpsc::Sender<Result<(), Error>>),
    Flush(mpsc::Sender<Result<(), Error>>),
    Recv(mpsc::Sender<Option<Result<Message, Error>>>),
    Close(CloseCode, String, mpsc::Sender<Result<(), Error>>),
    CloseInfo(mpsc::Sender<Option<CloseInfo>>),
    Buffered(mpsc::Sender<usize>),
}

/// One connection of any adapter, driven with blocking calls.
///
/// The adapter's socket lives on a driver thread that runs one command at a
/// time, so the adapter does exactly what a user of its API would see:
/// nothing happens on the connection between calls (as with a blocking
/// socket that is not being read). Dropping the `Socket` drops the
/// adapter's socket.
pub struct Socket {
    adapter: &'static str,
    tx: smol::channel::Sender<Cmd>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("adapter", &self.adapter)
            .finish()
    }
}

impl Socket {
    /// A socket whose driver reads commands from the other end of `tx`.
    pub(crate) fn new(adapter: &'static str, tx: smol::channel::Sender<Cmd>) -> Self {
        Socket { adapter, tx }
    }

    /// The adapter's name.
    pub fn adapter(&self) -> &'static str {
        self.adapter
    }

    fn start<T>(&self, what: &'static str, cmd: impl FnOnce(mpsc::Sender<T>) -> Cmd) -> Pending<T> {
        let (tx, rx) = mpsc::channel();
        if self.tx.try_send(cmd(tx)).is_err() {
            panic!("{}: the socket's driver thread is gone", self.adapter);
        }
        Pending {
            adapter: self.adapter,
            what,
            rx,
        }
    }

    /// Sends a message with the adapter's `send`: returns once the socket
    /// has taken it.
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.start_send(msg).wait()
    }

    /// Starts a `send` and returns without waiting for it, for a scenario
    /// that checks whether sending blocks. No other call may be made until
    /// it has completed.
    pub fn start_send(&mut self, msg: impl Into<Message>) -> Pending<Result<(), Error>> {
        let msg = msg.into();
        self.start("send", |r| Cmd::Send(msg, r))
    }

    /// Sends a message with the adapter's `send_uncompressed` (no
    /// permessage-deflate for this message).
    pub fn send_uncompressed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.start("send_uncompressed", |r| Cmd::SendUncompressed(msg, r))
            .wait()
    }

    /// Sends a prepared (broadcast) message with the adapter's
    /// `send_prepared`.
    pub fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<(), Error> {
        let msg = msg.clone();
        self.start("send_prepared", |r| Cmd::SendPrepared(msg, r))
            .wait()
    }

    /// Queues a message with the adapter's `feed`, without writing it.
    pub fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        self.start("feed", |r| Cmd::Feed(msg, r)).wait()
    }

    /// Writes what was queued, with the adapter's `flush`.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.start("flush", Cmd::Flush).wait()
    }

    /// Receives with the adapter's `recv`.
    pub fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.start("recv", Cmd::Recv).wait()
    }

    /// Starts the closing handshake with the adapter's `close`.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        let (code, reason) = (code.into(), reason.to_string());
        self.start("close", |r| Cmd::Close(code, reason, r)).wait()
    }

    /// The adapter's `close_info`.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.start("close_info", Cmd::CloseInfo).wait()
    }

    /// The adapter's `buffered_amount`.
    pub fn buffered_amount(&self) -> usize {
        self.start("buffered_amount", Cmd::Buffered).wait()
    }

    /// `recv` as an observation.
    pub fn recv_obs(&mut self) -> Obs {
        Obs::recv(self.recv())
    }

    /// `send` as an observation.
    pub fn send_obs(&mut self, msg: impl Into<Message>) -> Obs {
        Obs::Sent(self.send(msg))
    }

    /// `close` as an observation.
    pub fn close_obs(&mut self, code: impl Into<CloseCode>, reason: &str) -> Obs {
        Obs::Closed(self.close(code, reason))
    }

    /// Receives until `recv` returns `None`, then adds `close_info`. More
    /// than 10 000 items before the end is a failure (a safety net).
    pub fn drain(&mut self) -> Vec<Obs> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let o = self.recv_obs();
            let end = o == Obs::End;
            out.push(o);
            if end {
                out.push(Obs::Info(self.close_info()));
                return out;
            }
        }
        panic!("{}: recv did not end: {out:?}", self.adapter);
    }
}

/// A call on a [`Socket`] that has been started and not yet waited for.
#[derive(Debug)]
pub struct Pending<T> {
    adapter: &'static str,
    what: &'static str,
    rx: mpsc::Receiver<T>,
}

impl<T> Pending<T> {
    /// Waits for the result, at most [`LIMIT`].
    pub fn wait(self) -> T {
        match self.rx.recv_timeout(LIMIT) {
            Ok(v) => v,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: {} did not return within {LIMIT:?}",
                    self.adapter, self.what
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{}: the driver stopped during {}", self.adapter, self.what)
            }
        }
    }

    /// Waits for the result at most `d`; `None` if the call is still
    /// running then (it goes on: call `wait` later).
    pub fn wait_for(&self, d: Duration) -> Option<T> {
        match self.rx.recv_timeout(d) {
            Ok(v) => Some(v),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{}: the driver stopped during {}", self.adapter, self.what)
            }
        }
    }
}

/// A server of some adapter that accepts one connection.
#[derive(Debug)]
pub struct Listener {
    adapter: &'static str,
    addr: SocketAddr,
    accepted: mpsc::Receiver<Result<Socket, Error>>,
}

impl Listener {
    /// Runs `serve` on a new thread; it binds, reports the address, then
    /// accepts and reports the result of the server handshake.
    pub(crate) fn spawn(
        adapter: &'static str,
        serve: impl FnOnce(mpsc::Sender<SocketAddr>, mpsc::Sender<Result<Socket, Error>>)
            + Send
            + 'static,
    ) -> Listener {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (acc_tx, acc_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{adapter}-server"))
            .spawn(move || serve(addr_tx, acc_tx))
            .expect("spawn server thread");
        let addr = addr_rx
            .recv_timeout(LIMIT)
            .unwrap_or_else(|e| panic!("{adapter}: the server did not bind: {e}"));
        Listener {
            adapter,
            addr,
            accepted: acc_rx,
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the connection and the result of its server handshake.
    pub fn accept(self) -> Result<Socket, Error> {
        self.accepted
            .recv_timeout(LIMIT)
            .unwrap_or_else(|e| panic!("{}: no connection accepted: {e}", self.adapter))
    }

    /// [`accept`](Self::accept) as an observation, with the socket.
    pub fn accept_obs(self) -> (Obs, Option<Socket>) {
        match self.accept() {
            Ok(s) => (Obs::Accepted(Ok(())), Some(s)),
            Err(e) => (Obs::Accepted(Err(e)), None),
        }
    }
}

/// A client connect as an observation (with the chosen subprotocol), with
/// the socket.
pub fn connected_obs(c: Connected) -> (Obs, Option<Socket>) {
    match c {
        Ok((s, resp)) => {
            let proto = resp
                .headers()
                .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            (Obs::Connected(Ok(proto)), Some(s))
        }
        Err(e) => (Obs::Connected(Err(e)), None),
    }
}

/// The README's code blocks, compiled (and, unless marked `no_run`, run)
/// as doc tests, so that the usage it shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The code blocks of `docs/from-node-ws.md`, compiled as doc tests, so
/// that the names the guide gives stay real.
#[cfg(doctest)]
#[doc = include_str!("../../docs/from-node-ws.md")]
pub struct NodeGuideDoctests;

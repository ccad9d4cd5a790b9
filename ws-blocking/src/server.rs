//! A blocking WebSocket server: a listener with a [`ServerPolicy`], the
//! request of every client, the set of connected clients, broadcast, and
//! upgrades of connections that other code accepted and partly read. The
//! same policy and request info as `ws_tokio::server`.
//!
//! A connection's thread spends its time blocked in `recv`, so other
//! threads reach it through its writing half: [`Server::accept`] and
//! [`Upgrader::handle_upgrade`] return the halves of
//! [`WebSocket::split`](crate::WebSocket::split), and the client set sends
//! through the same writer. `reader.unsplit(writer)` gives back a
//! [`WebSocket`](crate::WebSocket).
//!
//! ```no_run
//! # fn main() -> Result<(), ws_blocking::Error> {
//! use ws_blocking::server::{Server, ServerPolicy};
//! use ws_blocking::Message;
//! let server = Server::bind("127.0.0.1:8080", ServerPolicy::new().path("/chat"))?;
//! loop {
//!     let (mut reader, _writer, info) = server.accept()?;
//!     let clients = server.clients();
//!     std::thread::spawn(move || {
//!         println!("{} connected from {:?}", info.path(), info.peer_addr());
//!         while let Some(Ok(msg)) = reader.recv() {
//!             if let Message::Text(t) = msg {
//!                 // To everyone else, written from this thread.
//!                 clients.broadcast_except(reader.client_id(), Message::Text(t));
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! # Client tracking and broadcast
//!
//! Each accepted connection is in its [`Clients`] set (like `wss.clients`
//! in `ws`) until its reading half reports the end or both halves are
//! dropped. [`Client::send`] and the broadcasts write to the client's
//! socket from the calling thread, like [`WebSocketWriter::send`]; a
//! client whose send queue is over [`Config::max_send_buffer`] is skipped
//! ([`QueueError::Full`]) rather than waited for, and [`Server`] sets a
//! write timeout on its sockets ([`Upgrader::write_timeout`], 10 s) so that
//! a peer that stops reading fails instead of blocking the sender.

use crate::split::Shared;
use crate::{http, Config, Error, Message, Transport, WebSocketReader, WebSocketWriter};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use ws_proto::server::parse_request_head;
use ws_proto::{CloseCode, DeflateConfig, HandshakeError, PreparedMessage};

pub use ws_proto::server::{is_upgrade_request, RequestInfo, Router, ServerPolicy};

/// Default write timeout of the sockets a [`Server`] accepts.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------- clients --

/// Why a message for a [`Client`] was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// The connection has ended (or failed while writing this message).
    Closed,
    /// The client's send queue is full: it does not read fast enough.
    Full,
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Closed => f.write_str("the client's connection has ended"),
            QueueError::Full => f.write_str("the client's send queue is full"),
        }
    }
}

impl std::error::Error for QueueError {}

enum Outgoing<'a> {
    Message(&'a Message),
    Prepared(&'a PreparedMessage),
    Close(CloseCode, &'a str),
}

/// Where a [`Client`] handle writes: the shared state of a split socket.
trait Outlet: Send + Sync {
    fn deliver(&self, item: Outgoing<'_>) -> Result<(), QueueError>;
    fn is_closed(&self) -> bool;
}

impl<S> Outlet for Shared<S>
where
    S: Transport + Send + Sync,
    for<'a> &'a S: Read + Write,
{
    fn deliver(&self, item: Outgoing<'_>) -> Result<(), QueueError> {
        {
            let c = self.core();
            if c.done() || c.io_error.is_some() || !c.conn.is_open() {
                return Err(QueueError::Closed);
            }
            if c.conn.should_wait() {
                return Err(QueueError::Full);
            }
        }
        self.write_out(|c| match item {
            Outgoing::Message(m) => c.queue(m.clone()),
            Outgoing::Prepared(p) => c.queue_prepared(p),
            Outgoing::Close(code, reason) => Ok(c.conn.close(Instant::now(), code, reason)?),
        })
        .map_err(|_| QueueError::Closed)
    }

    fn is_closed(&self) -> bool {
        let c = self.core();
        c.done() || c.io_error.is_some()
    }
}

/// Keeps one connection in its [`Clients`] set; held by the connection's
/// core, removes it when the connection ends or is dropped.
pub(crate) struct Tracker {
    id: u64,
    set: Weak<ClientsInner>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Some(set) = self.set.upgrade() {
            set.lock().remove(&self.id);
        }
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("id", &self.id).finish()
    }
}

struct ClientsInner {
    map: Mutex<HashMap<u64, Client>>,
    deflate: Option<DeflateConfig>,
}

impl ClientsInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Client>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The set of connected clients of a [`Server`] or [`Upgrader`] (`ws`'s
/// `wss.clients`). Cheap to clone; all clones are the same set.
#[derive(Clone)]
pub struct Clients {
    inner: Arc<ClientsInner>,
}

impl Default for Clients {
    fn default() -> Self {
        Self::with_deflate(None)
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").field("len", &self.len()).finish()
    }
}

impl Clients {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set whose broadcasts are compressed once with these
    /// settings (see [`PreparedMessage::with_deflate`]). An [`Upgrader`]
    /// creates its set with its policy's deflate settings.
    pub fn with_deflate(deflate: Option<DeflateConfig>) -> Self {
        Clients {
            inner: Arc::new(ClientsInner {
                map: Mutex::new(HashMap::new()),
                deflate,
            }),
        }
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().is_empty()
    }

    /// A snapshot of the connected clients, in no particular order.
    pub fn iter(&self) -> std::vec::IntoIter<Client> {
        self.inner
            .lock()
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// The client with this id, if still connected.
    pub fn get(&self, id: u64) -> Option<Client> {
        self.inner.lock().get(&id).cloned()
    }

    /// Sends `msg` to every connected client, one after the other from
    /// this thread; returns how many took it. A text or binary message is
    /// framed once (and compressed once when the set has deflate settings)
    /// as a [`PreparedMessage`].
    pub fn broadcast(&self, msg: impl Into<Message>) -> usize {
        self.broadcast_filter(msg.into(), |_| true)
    }

    /// Sends `msg` to every connected client but the one with id `except`
    /// (the sender, [`WebSocketReader::client_id`]); returns how many took
    /// it.
    pub fn broadcast_except(&self, except: u64, msg: impl Into<Message>) -> usize {
        self.broadcast_filter(msg.into(), |c| c.id != except)
    }

    /// Sends a message you prepared to every connected client; returns how
    /// many took it.
    pub fn broadcast_prepared(&self, msg: &PreparedMessage) -> usize {
        self.iter().filter(|c| c.send_prepared(msg).is_ok()).count()
    }

    fn broadcast_filter(&self, msg: Message, keep: impl Fn(&Client) -> bool) -> usize {
        let prepared = match &msg {
            Message::Text(t) => PreparedMessage::text(t.clone()),
            Message::Binary(b) => PreparedMessage::binary(b.clone()),
            _ => {
                return self
                    .iter()
                    .filter(|c| keep(c) && c.send(msg.clone()).is_ok())
                    .count()
            }
        };
        let prepared = match &self.inner.deflate {
            Some(d) => prepared.with_deflate(d),
            None => prepared,
        };
        self.iter()
            .filter(|c| keep(c) && c.send_prepared(&prepared).is_ok())
            .count()
    }

    /// Adds a split connection to the set.
    fn track<S>(&self, writer: &WebSocketWriter<S>, info: Arc<RequestInfo>) -> u64
    where
        S: Transport + Send + Sync + 'static,
        for<'a> &'a S: Read + Write,
    {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared: Arc<Shared<S>> = writer.shared.clone();
        let outlet: Arc<dyn Outlet> = shared.clone();
        let client = Client {
            id,
            info,
            outlet: Arc::downgrade(&outlet),
        };
        self.inner.lock().insert(id, client);
        shared.core().tracker = Some(Tracker {
            id,
            set: Arc::downgrade(&self.inner),
        });
        id
    }
}

/// A handle to one connected client, from [`Clients`]: its id, its
/// request, and sending from any thread.
#[derive(Clone)]
pub struct Client {
    id: u64,
    info: Arc<RequestInfo>,
    outlet: Weak<dyn Outlet>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("path", &self.info.path())
            .field("peer", &self.info.peer_addr())
            .finish()
    }
}

impl Client {
    /// The client's id, unique in the process
    /// ([`WebSocketReader::client_id`] on its connection).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's upgrade request and address.
    pub fn info(&self) -> &RequestInfo {
        &self.info
    }

    fn deliver(&self, item: Outgoing<'_>) -> Result<(), QueueError> {
        self.outlet
            .upgrade()
            .ok_or(QueueError::Closed)?
            .deliver(item)
    }

    /// Sends a message to the client (written from this thread).
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), QueueError> {
        self.deliver(Outgoing::Message(&msg.into()))
    }

    /// Sends a prepared message (see [`PreparedMessage`]).
    pub fn send_prepared(&self, msg: &PreparedMessage) -> Result<(), QueueError> {
        self.deliver(Outgoing::Prepared(msg))
    }

    /// Starts the closing handshake with the client; its reading half
    /// completes it.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), QueueError> {
        self.deliver(Outgoing::Close(code, reason))
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.outlet.upgrade().map_or(true, |o| o.is_closed())
    }
}

impl<S> WebSocketReader<S>
where
    S: Transport,
    for<'a> &'a S: Read + Write,
{
    /// The id of this connection in its [`Clients`] set (see
    /// [`Client::id`]); 0 when it is not tracked.
    pub fn client_id(&self) -> u64 {
        self.shared.core().tracker.as_ref().map_or(0, |t| t.id)
    }
}

// ------------------------------------------------------------ upgrader --

/// Completes WebSocket upgrades on connections accepted elsewhere, with a
/// policy and a client set (`new WebSocketServer({ noServer: true })` and
/// `handleUpgrade` in `ws`). Cheap to clone; clones share the client set.
///
/// Several upgraders behind one port, one per path, is `ws`'s "multiple
/// servers sharing a single HTTP server": read the request head with
/// [`read_request`], pick the upgrader by path ([`Router`]), and pass it
/// the bytes read.
#[derive(Clone, Debug)]
pub struct Upgrader {
    policy: Arc<ServerPolicy>,
    clients: Option<Clients>,
    write_timeout: Option<Duration>,
}

impl Upgrader {
    /// An upgrader with this policy, tracking its clients.
    pub fn new(policy: ServerPolicy) -> Self {
        Upgrader {
            clients: Some(Clients::with_deflate(policy.config().deflate.clone())),
            policy: Arc::new(policy),
            write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
        }
    }

    /// Turns client tracking on (the default) or off (`clientTracking` in
    /// `ws`). Without it [`clients`](Self::clients) stays empty.
    pub fn track_clients(mut self, on: bool) -> Self {
        let deflate = self.policy.config().deflate.clone();
        self.clients = on.then(|| {
            self.clients
                .take()
                .unwrap_or_else(|| Clients::with_deflate(deflate))
        });
        self
    }

    /// Tracks clients in `clients` (for instance one set shared by several
    /// endpoints).
    pub fn with_clients(mut self, clients: Clients) -> Self {
        self.clients = Some(clients);
        self
    }

    /// The write timeout [`Server`] sets on the sockets it accepts
    /// (default 10 s; `None`: none), so that a peer that stops reading
    /// fails a send instead of blocking it forever.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &ServerPolicy {
        &self.policy
    }

    /// The connected clients (empty when tracking is off).
    pub fn clients(&self) -> Clients {
        self.clients.clone().unwrap_or_default()
    }

    /// Completes an upgrade on `io`, of which `head` was already read (the
    /// request head, or part of it, or nothing), on the calling thread:
    /// runs the handshake with the policy (answering refusals with their
    /// HTTP response) within the handshake timeout, splits the socket and
    /// tracks the client. `peer` is reported in
    /// [`RequestInfo::peer_addr`].
    #[allow(clippy::type_complexity)]
    pub fn handle_upgrade<S>(
        &self,
        io: S,
        head: &[u8],
        peer: Option<SocketAddr>,
    ) -> Result<(WebSocketReader<S>, WebSocketWriter<S>, RequestInfo), Error>
    where
        S: Read + Write + Transport + Send + Sync + 'static,
        for<'a> &'a S: Read + Write,
    {
        let mut seen: Option<(http::Request<()>, Option<String>)> = None;
        let policy = &self.policy;
        let ws = crate::accept_prefixed(io, head, policy.shared_config(), |req| {
            let d = policy.decide(req);
            let protocol = d.as_ref().ok().and_then(|a| a.protocol.clone());
            seen = Some((req.clone(), protocol));
            d
        })?;
        let (req, protocol) = seen.ok_or(Error::Handshake(HandshakeError::Eof))?;
        let info = RequestInfo::new(req, peer, protocol);
        let (reader, writer) = ws.split();
        if let Some(clients) = &self.clients {
            clients.track(&writer, Arc::new(info.clone()));
        }
        Ok((reader, writer, info))
    }
}

/// Reads an HTTP/1.1 request head from `io`, within `config`'s handshake
/// size, header count and timeout: returns the request and every byte
/// read (the head and whatever followed it), to pass to
/// [`Upgrader::handle_upgrade`] when it is an upgrade, or to answer as
/// plain HTTP (a page, a 404) otherwise. Uses the stream's read timeout.
pub fn read_request<S>(io: &mut S, config: &Config) -> Result<(http::Request<()>, Vec<u8>), Error>
where
    S: Read + Transport,
{
    let deadline = config.handshake_timeout.map(|d| Instant::now() + d);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Handshake(HandshakeError::Timeout));
                }
                Some(left)
            }
            None => None,
        };
        io.set_read_timeout(timeout)?;
        let n = match io.read(&mut chunk) {
            Ok(0) => return Err(Error::Handshake(HandshakeError::Eof)),
            Ok(n) => n,
            Err(e) if crate::is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some((req, _)) = parse_request_head(&buf, config)? {
            return Ok((req, buf));
        }
    }
}

/// Writes a rejection (status, headers, body) as an HTTP/1.1 response
/// and shuts the write half: for requests a server that routes by path
/// does not serve.
pub fn write_reject<S>(io: &mut S, reject: &ws_proto::Reject) -> Result<(), Error>
where
    S: Write + Transport,
{
    io.write_all(&reject.to_http())?;
    io.flush()?;
    let _ = io.shutdown(Shutdown::Write);
    Ok(())
}

// -------------------------------------------------------------- server --

/// A WebSocket server on a TCP listener (`new WebSocketServer({ port })`).
///
/// [`accept`](Self::accept) runs the handshake on the calling thread
/// (bounded by the handshake timeout) and skips requests that fail or are
/// refused (they were answered). To keep a slow client from holding up
/// the others, accept TCP connections from [`listener`](Self::listener)
/// and call [`Upgrader::handle_upgrade`] on each connection's own thread.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    upgrader: Upgrader,
}

impl Server {
    /// Binds a TCP listener and serves it with `policy`.
    pub fn bind(addr: impl ToSocketAddrs, policy: ServerPolicy) -> Result<Self, Error> {
        Ok(Self::from_listener(
            TcpListener::bind(addr)?,
            Upgrader::new(policy),
        ))
    }

    /// Serves a listener you bound, with an upgrader (policy, client
    /// tracking, write timeout).
    pub fn from_listener(listener: TcpListener, upgrader: Upgrader) -> Self {
        Server { listener, upgrader }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The listener, to accept connections yourself.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// The connected clients.
    pub fn clients(&self) -> Clients {
        self.upgrader.clients()
    }

    /// The upgrader: policy and client set.
    pub fn upgrader(&self) -> &Upgrader {
        &self.upgrader
    }

    /// Waits for the next client whose handshake succeeds; returns the
    /// halves of its socket and its request. Failures of `accept` itself
    /// are waited out, as
    /// [`accept_retry_after`](ws_proto::server::accept_retry_after) says:
    /// out of file descriptors, the thread sleeps 50 ms at a time until
    /// connections close, instead of failing. (The `Result` is for
    /// failures that waiting cannot mend: an owned listener has none
    /// today.)
    #[allow(clippy::type_complexity)]
    pub fn accept(
        &self,
    ) -> Result<
        (
            WebSocketReader<TcpStream>,
            WebSocketWriter<TcpStream>,
            RequestInfo,
        ),
        Error,
    > {
        loop {
            let (tcp, peer) = crate::accept_stream(&self.listener);
            let _ = tcp.set_write_timeout(self.upgrader.write_timeout);
            if let Ok(accepted) = self.upgrader.handle_upgrade(tcp, &[], Some(peer)) {
                return Ok(accepted);
            }
        }
    }
}

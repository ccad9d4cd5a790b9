//! A WebSocket server over futures-io, for any executor: a
//! [`ServerPolicy`], the request of every client, the set of connected
//! clients, broadcast, and upgrades of connections that another HTTP
//! server accepted. The same API as `ws_tokio::server`.
//!
//! Every decision about a request is the policy's ([`ws_proto::server`]);
//! this module only moves bytes and keeps the client set.
//!
//! ```no_run
//! # #[cfg(feature = "smol")]
//! # fn main() -> Result<(), ws_async_std::Error> {
//! use ws_async_std::server::{Server, ServerPolicy};
//! use ws_async_std::Message;
//! smol::block_on(async {
//!     let server = Server::bind("127.0.0.1:8080", ServerPolicy::new().path("/chat")).await?;
//!     loop {
//!         let (mut ws, info) = server.accept().await?;
//!         let clients = server.clients();
//!         smol::spawn(async move {
//!             println!("{} connected from {:?}", info.path(), info.peer_addr());
//!             while let Some(Ok(Message::Text(t))) = ws.recv().await {
//!                 // To everyone else; `recv` delivers what others send us.
//!                 clients.broadcast_except(ws.client_id(), Message::Text(t));
//!             }
//!         })
//!         .detach();
//!     }
//! })
//! # }
//! # #[cfg(not(feature = "smol"))]
//! # fn main() {}
//! ```
//!
//! # Client tracking
//!
//! Each accepted connection is in its [`Clients`] set (like `wss.clients`
//! in `ws`) until it ends: its `recv` reported the end, or the
//! [`WebSocket`] was dropped. Messages sent through a [`Client`] handle or
//! a broadcast wait in the client's own queue and are handed to its
//! connection by its `recv` (which the task owning it calls anyway, to
//! answer pings and complete the close), then written like any other
//! message. Each queue is bounded ([`Upgrader::max_queue`]): a client that
//! does not keep up misses messages instead of growing memory, and the
//! sender learns it from [`QueueError::Full`].

use crate::{Error, Timer, WebSocket};
use futures_io::{AsyncRead, AsyncWrite};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use ws_proto::server::parse_request_head;
use ws_proto::HandshakeError;

pub use ws_proto::server::{is_upgrade_request, RequestInfo, Router, ServerPolicy};

pub use ws_proto::clients::{Client, Clients, QueueError};
use ws_proto::clients::{Tracker, DEFAULT_MAX_QUEUE};

impl<S> WebSocket<S> {
    /// The id of this connection in its [`Clients`] set (see
    /// [`Client::id`]); 0 when it is not tracked.
    pub fn client_id(&self) -> u64 {
        self.inner.tracker().map_or(0, Tracker::id)
    }
}

// ------------------------------------------------------------ upgrader --

/// A timer shared by every connection of an [`Upgrader`].
#[derive(Clone)]
struct SharedTimer(Arc<dyn Timer>);

impl Timer for SharedTimer {
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn crate::Sleep>> {
        self.0.sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// Completes WebSocket upgrades on connections accepted elsewhere, with a
/// policy, a timer and a client set (`new WebSocketServer({ noServer: true })`
/// and `handleUpgrade` in `ws`). Cheap to clone; clones share the client
/// set.
///
/// Several upgraders behind one port, one per path, is `ws`'s "multiple
/// servers sharing a single HTTP server": read the request head with
/// [`read_request`], pick the upgrader by path ([`Router`]), and pass it
/// the bytes read.
#[derive(Clone)]
pub struct Upgrader {
    policy: Arc<ServerPolicy>,
    clients: Option<Clients>,
    max_queue: usize,
    timer: SharedTimer,
}

impl std::fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrader")
            .field("policy", &self.policy)
            .field("clients", &self.clients)
            .field("max_queue", &self.max_queue)
            .finish()
    }
}

impl Upgrader {
    /// An upgrader with this policy and the runtime's timer
    /// (`smol::SmolTimer`, `async_std::AsyncStdTimer`, or your own),
    /// tracking its clients.
    pub fn new(policy: ServerPolicy, timer: impl Timer) -> Self {
        Upgrader {
            clients: Some(Clients::with_deflate(policy.config().deflate.clone())),
            policy: Arc::new(policy),
            max_queue: DEFAULT_MAX_QUEUE,
            timer: SharedTimer(Arc::new(timer)),
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

    /// Bound, in payload bytes, of each client's queue of messages from
    /// other tasks (default 4 MiB). A message is always accepted into an
    /// empty queue.
    pub fn max_queue(mut self, bytes: usize) -> Self {
        self.max_queue = bytes;
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
    /// request head, or part of it, or nothing): runs the handshake with
    /// the policy (answering refusals with their HTTP response) within
    /// the handshake timeout, and tracks the client. `peer` is reported in
    /// [`RequestInfo::peer_addr`].
    pub async fn handle_upgrade<S>(
        &self,
        io: S,
        head: &[u8],
        peer: Option<SocketAddr>,
    ) -> Result<(WebSocket<S>, RequestInfo), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let mut seen: Option<(http::Request<()>, Option<String>)> = None;
        let policy = &self.policy;
        let config = policy.shared_config();
        let res = crate::accept_prefixed(io, head, config, self.timer.clone(), |req| {
            let d = policy.decide(req);
            let protocol = d.as_ref().ok().and_then(|a| a.protocol.clone());
            seen = Some((req.clone(), protocol));
            d
        })
        .await;
        let ws = res?;
        // async-std's TCP stream needs an explicit shutdown of its write half.
        #[cfg(feature = "async-std")]
        let ws = crate::async_std::socket(ws);
        let mut ws = ws;
        let (req, protocol) = seen.ok_or(Error::Handshake(HandshakeError::Eof))?;
        let info = RequestInfo::new(req, peer, protocol);
        if let Some(clients) = &self.clients {
            ws.inner
                .set_tracker(clients.track(Arc::new(info.clone()), self.max_queue));
        }
        Ok((ws, info))
    }
}

/// Reads an HTTP/1.1 request head from `io`, within `config`'s handshake
/// size, header count and timeout (measured with `timer`): returns the
/// request and every byte read (the head and whatever followed it), to
/// pass to [`Upgrader::handle_upgrade`] when it is an upgrade, or to
/// answer as plain HTTP (a page, a 404) otherwise.
pub async fn read_request<S>(
    io: &mut S,
    config: &ws_proto::Config,
    timer: &dyn Timer,
) -> Result<(http::Request<()>, Vec<u8>), Error>
where
    S: AsyncRead + Unpin,
{
    let deadline = config.handshake_timeout.map(|d| timer.now() + d);
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 2048];
        loop {
            let n = crate::read(io, &mut chunk).await?;
            if n == 0 {
                return Err(Error::Handshake(HandshakeError::Eof));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some((req, _)) = parse_request_head(&buf, config)? {
                return Ok((req, buf));
            }
        }
    };
    crate::before(timer, deadline, read)
        .await
        .unwrap_or(Err(Error::Handshake(HandshakeError::Timeout)))
}

/// Writes a rejection (status, headers, body) as an HTTP/1.1 response
/// and closes the stream: for requests a server that routes by path does
/// not serve.
pub async fn write_reject<S>(io: &mut S, reject: &ws_proto::Reject) -> Result<(), Error>
where
    S: AsyncWrite + Unpin,
{
    crate::write_all(io, &reject.to_http()).await?;
    let _ = crate::close(io).await;
    Ok(())
}

// -------------------------------------------------------------- server --

#[cfg(feature = "smol")]
mod tcp {
    use super::*;
    use async_net::{TcpListener, TcpStream};
    use std::future::Future;
    use std::io;
    use std::task::{Context, Poll};

    type Handshake =
        Pin<Box<dyn Future<Output = Result<(WebSocket<TcpStream>, RequestInfo), Error>> + Send>>;
    type Accepting = Pin<Box<dyn Future<Output = (TcpStream, SocketAddr)> + Send>>;

    struct Pending {
        accepting: Option<Accepting>,
        handshakes: Vec<Handshake>,
    }

    /// A WebSocket server on a TCP listener (`new WebSocketServer({ port })`),
    /// on `async_net` (feature `smol`), which runs on smol, async-std and
    /// any other executor.
    ///
    /// [`accept`](Self::accept) runs the handshakes of several clients at
    /// once (while it is awaited), so a slow client does not hold up the
    /// others; requests the policy refuses are answered and skipped.
    pub struct Server {
        listener: TcpListener,
        upgrader: Upgrader,
        pending: Mutex<Pending>,
    }

    impl std::fmt::Debug for Server {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Server")
                .field("local_addr", &self.listener.local_addr().ok())
                .field("upgrader", &self.upgrader)
                .finish()
        }
    }

    impl Server {
        /// Binds a TCP listener and serves it with `policy` and the smol
        /// timer (`async_io`, which works on every runtime).
        pub async fn bind(
            addr: impl async_net::AsyncToSocketAddrs,
            policy: ServerPolicy,
        ) -> Result<Self, Error> {
            let listener = TcpListener::bind(addr).await?;
            Ok(Self::from_listener(
                listener,
                Upgrader::new(policy, crate::smol::SmolTimer),
            ))
        }

        /// Serves a listener you bound, with an upgrader (policy, timer,
        /// client tracking, queue bound).
        pub fn from_listener(listener: TcpListener, upgrader: Upgrader) -> Self {
            Server {
                listener,
                upgrader,
                pending: Mutex::new(Pending {
                    accepting: None,
                    handshakes: Vec::new(),
                }),
            }
        }

        /// The address the listener is bound to.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.listener.local_addr()
        }

        /// The connected clients.
        pub fn clients(&self) -> Clients {
            self.upgrader.clients()
        }

        /// The upgrader: policy and client set.
        pub fn upgrader(&self) -> &Upgrader {
            &self.upgrader
        }

        /// Waits for the next client whose handshake succeeds. Handshakes
        /// run concurrently while this is awaited; failed ones (refused by
        /// the policy, invalid, timed out) were answered and are skipped.
        /// Failures of `accept` itself are waited out, as
        /// [`accept_retry_after`](ws_proto::server::accept_retry_after)
        /// says: out of file descriptors, the server pauses 50 ms at a
        /// time (serving the handshakes in progress) until connections
        /// close, instead of failing. (The `Result` is for failures that
        /// waiting cannot mend: an owned listener has none today.) Cancel
        /// safe: handshakes in progress are kept for the next call.
        pub async fn accept(&self) -> Result<(WebSocket<TcpStream>, RequestInfo), Error> {
            std::future::poll_fn(|cx| self.poll_accept(cx)).await
        }

        fn poll_accept(
            &self,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(WebSocket<TcpStream>, RequestInfo), Error>> {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let Pending {
                accepting,
                handshakes,
            } = &mut *pending;
            loop {
                let fut = accepting.get_or_insert_with(|| {
                    let l = self.listener.clone();
                    // Waits out failures of `accept` (out of file
                    // descriptors: a pause, not an error).
                    Box::pin(async move { crate::smol::accept_stream(&l).await })
                });
                match fut.as_mut().poll(cx) {
                    Poll::Ready((tcp, peer)) => {
                        *accepting = None;
                        let up = self.upgrader.clone();
                        handshakes.push(Box::pin(async move {
                            up.handle_upgrade(tcp, &[], Some(peer)).await
                        }));
                    }
                    Poll::Pending => break,
                }
            }
            let mut i = 0;
            while i < handshakes.len() {
                match handshakes[i].as_mut().poll(cx) {
                    Poll::Ready(res) => {
                        drop(handshakes.swap_remove(i));
                        if let Ok(ok) = res {
                            return Poll::Ready(Ok(ok));
                        }
                    }
                    Poll::Pending => i += 1,
                }
            }
            Poll::Pending
        }
    }
}

#[cfg(feature = "smol")]
pub use tcp::Server;

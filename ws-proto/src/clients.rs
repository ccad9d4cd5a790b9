//! Client tracking for servers (`ws`'s `wss.clients`): the set of
//! connected clients, a bounded queue per client that any thread can send
//! to, and broadcast built once as a [`PreparedMessage`].
//!
//! Runtime-agnostic: the adapters keep a [`Tracker`] with each connection
//! and call [`Tracker::drain`] when they poll it for input; the
//! [`Waker`] they pass is woken when another task queues a message.
//! Messages wait in the client's own queue until its connection takes
//! them, then are written like any other message. A client that does not
//! keep up misses messages instead of growing memory: the sender learns it
//! from [`QueueError::Full`].

use crate::server::RequestInfo;
use crate::{CloseCode, Connection, DeflateConfig, Message, PreparedMessage, UsageError};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;
use std::time::Instant;

/// Default bound of a client's queue of messages from other tasks: 4 MiB.
pub const DEFAULT_MAX_QUEUE: usize = 4 << 20;

// ------------------------------------------------------------- clients --

/// Why a message for a [`Client`] was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// The connection has ended.
    Closed,
    /// The client's queue is full: it does not read fast enough.
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

#[derive(Clone)]
enum Outgoing {
    Message(Message),
    Prepared(PreparedMessage),
    Close(CloseCode, String),
}

impl Outgoing {
    fn size(&self) -> usize {
        match self {
            Outgoing::Message(m) => m.as_payload().len(),
            Outgoing::Prepared(p) => p.payload().len(),
            Outgoing::Close(_, r) => r.len() + 2,
        }
    }
}

#[derive(Default)]
struct OutboxState {
    items: VecDeque<Outgoing>,
    bytes: usize,
    waker: Option<Waker>,
    closed: bool,
    /// Items wait because the connection's send queue was full.
    stalled: bool,
}

/// A client's queue of messages from other tasks.
struct Outbox {
    state: Mutex<OutboxState>,
    max: usize,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, item: Outgoing) -> Result<(), QueueError> {
        let mut st = self.lock();
        if st.closed {
            return Err(QueueError::Closed);
        }
        let size = item.size();
        // A message is always accepted into an empty queue, and a close
        // request always.
        let is_close = matches!(item, Outgoing::Close(..));
        if !is_close && st.bytes > 0 && st.bytes + size > self.max {
            return Err(QueueError::Full);
        }
        st.bytes += size;
        st.items.push_back(item);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        Ok(())
    }
}

/// Keeps one connection in its [`Clients`] set and feeds it the messages
/// others queue for it; held by the connection, removes it when dropped.
pub struct Tracker {
    id: u64,
    outbox: Arc<Outbox>,
    set: Weak<ClientsInner>,
}

impl Tracker {
    /// Hands queued messages to the connection; remembers `waker` so that
    /// the next queued message wakes the task that reads.
    pub fn drain(&self, conn: &mut Connection, waker: &Waker, now: Instant) {
        let mut st = self.outbox.lock();
        while let Some(item) = st.items.pop_front() {
            let res = match &item {
                Outgoing::Message(m) => conn.send(now, m.clone()),
                Outgoing::Prepared(p) => conn.send_prepared(p),
                Outgoing::Close(code, reason) => conn.close(now, *code, reason),
            };
            if res == Err(UsageError::SendBufferFull) {
                // The connection's own queue is full: try again once the
                // socket took some (the reading task is woken then).
                st.items.push_front(item);
                break;
            }
            // Other errors mean the connection is closing or closed: what
            // others queued for it can no longer be sent.
            st.bytes -= item.size();
        }
        st.stalled = !st.items.is_empty();
        if !st.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            st.waker = Some(waker.clone());
        }
    }

    /// Whether queued messages wait for room in the connection's send
    /// queue: the adapter drains again once a flush made room.
    pub fn stalled(&self) -> bool {
        self.outbox.lock().stalled
    }

    /// The connection's id in its set ([`Client::id`]).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        {
            let mut st = self.outbox.lock();
            st.closed = true;
            st.items.clear();
            st.bytes = 0;
        }
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

/// The set of connected clients of a server (`ws`'s
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
    /// settings (for the clients that negotiated permessage-deflate; see
    /// [`PreparedMessage::with_deflate`]). The adapters' upgraders create their set
    /// with its policy's deflate settings.
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

    /// Queues `msg` for every connected client; returns how many took it
    /// (a client whose queue is full misses it). A text or binary message
    /// is framed once, and compressed once when the set has deflate
    /// settings, as a [`PreparedMessage`]; the payload is shared, not
    /// copied, between the clients.
    pub fn broadcast(&self, msg: impl Into<Message>) -> usize {
        let item = self.prepare(msg.into());
        self.broadcast_filter(item, |_| true)
    }

    /// Queues `msg` for every connected client but the one with id
    /// `except` (the sender, its [`Tracker::id`]); returns how many
    /// took it.
    pub fn broadcast_except(&self, except: u64, msg: impl Into<Message>) -> usize {
        let item = self.prepare(msg.into());
        self.broadcast_filter(item, |c| c.id != except)
    }

    /// Queues a message you prepared for every connected client; returns
    /// how many took it.
    pub fn broadcast_prepared(&self, msg: &PreparedMessage) -> usize {
        self.broadcast_filter(Outgoing::Prepared(msg.clone()), |_| true)
    }

    fn prepare(&self, msg: Message) -> Outgoing {
        let prepared = match msg {
            Message::Text(t) => PreparedMessage::text(t),
            Message::Binary(b) => PreparedMessage::binary(b),
            other => return Outgoing::Message(other),
        };
        Outgoing::Prepared(match &self.inner.deflate {
            Some(d) => prepared.with_deflate(d),
            None => prepared,
        })
    }

    fn broadcast_filter(&self, item: Outgoing, keep: impl Fn(&Client) -> bool) -> usize {
        self.iter()
            .filter(|c| keep(c))
            .filter(|c| c.outbox.push(item.clone()).is_ok())
            .count()
    }

    /// Adds a connection to the set with the request it came with and the
    /// bound of its queue (in bytes). The adapter keeps the returned
    /// [`Tracker`] with the connection, calls [`Tracker::drain`] whenever
    /// it polls for input, and drops it when the connection ends: the
    /// client then leaves the set.
    pub fn track(&self, info: Arc<RequestInfo>, max_queue: usize) -> Tracker {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox {
            state: Mutex::new(OutboxState::default()),
            max: max_queue,
        });
        let client = Client {
            id,
            info,
            outbox: outbox.clone(),
        };
        self.inner.lock().insert(id, client);
        Tracker {
            id,
            outbox,
            set: Arc::downgrade(&self.inner),
        }
    }
}

/// A handle to one connected client, from [`Clients`]: its id, its
/// request, and a queue to send it messages from any task.
#[derive(Clone)]
pub struct Client {
    id: u64,
    info: Arc<RequestInfo>,
    outbox: Arc<Outbox>,
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
    /// The client's id, unique in the process ([`Tracker::id`]
    /// on its connection).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's upgrade request and address.
    pub fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// Queues a message for the client; its connection sends it.
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), QueueError> {
        self.outbox.push(Outgoing::Message(msg.into()))
    }

    /// Queues a prepared message (see [`PreparedMessage`]) for the client.
    pub fn send_prepared(&self, msg: &PreparedMessage) -> Result<(), QueueError> {
        self.outbox.push(Outgoing::Prepared(msg.clone()))
    }

    /// Asks the client's connection to start the closing handshake (after
    /// the messages queued before). Never refused for a full queue.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), QueueError> {
        self.outbox.push(Outgoing::Close(code, reason.to_string()))
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.outbox.lock().closed
    }
}

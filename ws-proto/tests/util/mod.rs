//! Test harness shared by the integration tests: an in-memory client/server
//! pair with a virtual clock, raw frame builders independent of the crate's
//! encoder, and event helpers.
//!
//! Only the public API of `ws-proto` is used.
#![allow(dead_code)]

use std::time::{Duration, Instant};
use ws_proto::http::{self, HeaderMap};
use ws_proto::{
    apply_mask, ClientHandshake, CloseCode, CloseInfo, Config, Connection, Event, FrameHeader,
    OpCode, ServerHandshake, Transmit,
};

/// A fixed seed for the client CSPRNG.
pub fn seed(n: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in s.iter_mut().enumerate() {
        *b = n.wrapping_mul(31).wrapping_add(i as u8);
    }
    s
}

// ------------------------------------------------------------ raw frames --

/// Encodes a frame by hand (independently of `FrameHeader::encode`).
/// `b0` is the first byte: FIN, RSV1-3 and the opcode.
pub fn frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        v.push(m | len as u8);
    } else if len <= 0xffff {
        v.push(m | 126);
        v.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        v.push(m | 127);
        v.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            v.extend_from_slice(&key);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

/// A frame as a client would send it (masked with a fixed key).
pub fn cframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, Some([0x37, 0xfa, 0x21, 0x3d]), payload)
}

/// A frame as a server would send it (unmasked).
pub fn sframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, None, payload)
}

/// A frame as the peer of `role` would send it: masked iff we are a server.
pub fn peer_frame(we: ws_proto::Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    match we {
        ws_proto::Role::Server => cframe(b0, payload),
        ws_proto::Role::Client => sframe(b0, payload),
    }
}

/// A close frame body.
pub fn close_body(code: u16, reason: &str) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(reason.as_bytes());
    v
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

/// Splits a byte stream into frames (payloads unmasked). Panics on a
/// malformed or truncated stream: use it only on our own output.
pub fn decode_frames(mut bytes: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = FrameHeader::decode(bytes)
            .expect("valid header")
            .expect("complete header");
        let len = h.len as usize;
        assert!(bytes.len() >= n + len, "truncated frame");
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut payload, k, 0);
        }
        out.push(Decoded {
            fin: h.fin,
            rsv: h.rsv,
            opcode: h.opcode,
            mask: h.mask,
            payload,
        });
        bytes = &bytes[n + len..];
    }
    out
}

// ---------------------------------------------------------------- events --

/// Drains every event of a connection.
pub fn drain_events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Drains every transmit of a connection: (bytes, whether a shutdown was
/// requested). Asserts that nothing follows a shutdown.
///
/// Also checks the output getters against what is handed out:
/// `wants_transmit` predicts whether `poll_transmit` has something,
/// `buffered_amount` counts exactly the bytes handed out, and `Data` always
/// comes with bytes.
pub fn drain_transmit(conn: &mut Connection) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut shut = false;
    loop {
        let wants = conn.wants_transmit();
        let amount = conn.buffered_amount();
        let before = buf.len();
        let t = conn.poll_transmit(&mut buf);
        assert_eq!(wants, t.is_some(), "wants_transmit disagrees with {t:?}");
        let Some(t) = t else { break };
        match t {
            Transmit::Data => {
                assert!(!shut, "data after shutdown");
                assert!(buf.len() > before, "Transmit::Data without bytes");
                assert_eq!(amount, buf.len() - before, "buffered_amount");
            }
            Transmit::Shutdown => {
                assert!(!shut, "shutdown twice");
                shut = true;
            }
        }
    }
    (buf, shut)
}

/// Asserts that `events` holds exactly one `Closed`, as the last event, and
/// returns its info.
pub fn the_close(events: &[Event]) -> &CloseInfo {
    let n = events
        .iter()
        .filter(|e| matches!(e, Event::Closed(_)))
        .count();
    assert_eq!(n, 1, "Closed must fire exactly once: {events:?}");
    match events.last() {
        Some(Event::Closed(info)) => info,
        _ => panic!("Closed must be the last event: {events:?}"),
    }
}

/// The events other than `Closed`.
pub fn non_close(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::Closed(_)))
        .cloned()
        .collect()
}

/// Feeds raw bytes from a fake peer to `conn` and returns what `conn` wrote
/// back and its events.
pub fn feed(conn: &mut Connection, now: Instant, bytes: &[u8]) -> (Vec<u8>, bool, Vec<Event>) {
    conn.handle_input(now, bytes);
    let (out, shut) = drain_transmit(conn);
    (out, shut, drain_events(conn))
}

/// Decodes `bytes` (written by a connection of the opposite role) with a
/// fresh connection of `role`, ends it with EOF, and returns the close frame
/// it received (code and reason) along with its events.
pub fn peer_decodes(role: ws_proto::Role, bytes: &[u8]) -> (Option<(u16, String)>, Vec<Event>) {
    let now = Instant::now();
    let mut c = match role {
        ws_proto::Role::Client => Connection::client(Config::default(), seed(99)),
        ws_proto::Role::Server => Connection::server(Config::default()),
    };
    c.handle_input(now, bytes);
    c.handle_eof(now);
    let events = drain_events(&mut c);
    let info = the_close(&events).clone();
    (
        info.received.map(|f| (f.code.0, f.reason)),
        non_close(&events),
    )
}

/// The close code a connection of `role` sends when fed `bytes` by its
/// peer, as decoded by a connection of the peer's role; also checks that the
/// failing side ended with `Ending::Protocol` and the same code.
pub fn fault_code(role: ws_proto::Role, config: Config, bytes: &[u8]) -> u16 {
    let now = Instant::now();
    let mut c = match role {
        ws_proto::Role::Client => Connection::client(config, seed(1)),
        ws_proto::Role::Server => Connection::server(config),
    };
    c.handle_input(now, bytes);
    let (out, _shut) = drain_transmit(&mut c);
    let peer = match role {
        ws_proto::Role::Client => ws_proto::Role::Server,
        ws_proto::Role::Server => ws_proto::Role::Client,
    };
    let (received, _) = peer_decodes(peer, &out);
    let (code, _reason) = received.expect("the failing side sends a close frame");
    // The failing side ends with the matching protocol error.
    c.handle_eof(now);
    let events = drain_events(&mut c);
    match the_close(&events).ending {
        ws_proto::Ending::Protocol(e) => assert_eq!(e.close_code().0, code, "{e:?}"),
        other => panic!("expected a protocol failure, got {other:?}"),
    }
    code
}

// ------------------------------------------------------------------ pair --

/// Which end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Client,
    Server,
}

impl Who {
    pub fn other(self) -> Who {
        match self {
            Who::Client => Who::Server,
            Who::Server => Who::Client,
        }
    }
    pub const BOTH: [Who; 2] = [Who::Client, Who::Server];
}

/// Something that happened on the simulated transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// `who` shut its write half (Transmit::Shutdown).
    Shutdown(Who),
    /// `who` saw the end of its read half (handle_eof was called).
    Eof(Who),
    /// `who` dropped its transport after `Event::Closed`.
    Drop(Who),
}

/// One end of the simulated connection.
#[derive(Debug)]
pub struct Side {
    pub conn: Connection,
    /// Every event seen so far, in order.
    pub events: Vec<Event>,
    /// Bytes in flight toward this side.
    pub inbox: Vec<u8>,
    /// The peer shut its write half or dropped: EOF after the inbox drains.
    pub peer_done: bool,
    pub eof_given: bool,
    /// This side sent Transmit::Shutdown.
    pub write_shut: bool,
    /// This side dropped its transport (after Closed).
    pub dropped: bool,
    /// A hung peer: receives nothing, writes nothing, runs no timers.
    pub frozen: bool,
    /// Largest piece handed to one `handle_input` call.
    pub chunk: usize,
    /// Virtual time at which Closed fired.
    pub closed_at: Option<Duration>,
    /// Bytes this side wrote, in total.
    pub written: usize,
}

impl Side {
    fn new(conn: Connection) -> Self {
        Side {
            conn,
            events: Vec::new(),
            inbox: Vec::new(),
            peer_done: false,
            eof_given: false,
            write_shut: false,
            dropped: false,
            frozen: false,
            chunk: usize::MAX,
            closed_at: None,
            written: 0,
        }
    }

    /// Takes the events seen so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The terminal info; asserts Closed fired exactly once and last.
    pub fn close_info(&self) -> CloseInfo {
        the_close(&self.events).clone()
    }
}

/// Options of a pair.
#[derive(Debug, Clone)]
pub struct Opts {
    pub client: Config,
    pub server: Config,
    pub seed: [u8; 32],
    pub uri: String,
    pub offer: Option<String>,
    pub choose: Option<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            client: Config::default(),
            server: Config::default(),
            seed: seed(7),
            uri: "ws://example.com/chat".into(),
            offer: None,
            choose: None,
        }
    }
}

/// An in-memory client/server pair on a virtual clock.
#[derive(Debug)]
pub struct Pair {
    pub client: Side,
    pub server: Side,
    pub base: Instant,
    pub now: Instant,
    pub log: Vec<(Duration, Net)>,
    pub request: http::Request<()>,
    pub response: http::Response<()>,
}

impl Pair {
    /// A pair with default configs, after a real handshake.
    pub fn new() -> Pair {
        Pair::with(Opts::default())
    }

    /// A pair after a real handshake (ClientHandshake → ServerHandshake →
    /// accept → ClientHandshake::into_connection).
    pub fn with(opts: Opts) -> Pair {
        let base = Instant::now();
        let now = base;
        let mut req = http::Request::get(opts.uri.as_str());
        if let Some(p) = &opts.offer {
            req = req.header("Sec-WebSocket-Protocol", p.as_str());
        }
        let req = req.body(()).unwrap();
        let mut chs = ClientHandshake::new(now, req, opts.client.clone(), opts.seed).unwrap();
        let mut to_server = Vec::new();
        assert_eq!(chs.poll_transmit(&mut to_server), Some(Transmit::Data));
        assert_eq!(chs.poll_transmit(&mut to_server), None);
        let mut shs = ServerHandshake::new(now, opts.server.clone());
        let request = shs
            .handle_input(&to_server)
            .expect("valid request")
            .expect("complete request");
        let mut server = shs
            .accept(now, opts.choose.as_deref(), &HeaderMap::new())
            .expect("accept");
        let (to_client, shut) = drain_transmit(&mut server);
        assert!(!shut);
        assert!(chs.handle_input(&to_client).expect("valid response"));
        let (response, client) = chs.into_connection(now).unwrap();
        Pair {
            client: Side::new(client),
            server: Side::new(server),
            base,
            now,
            log: Vec::new(),
            request,
            response,
        }
    }

    /// Virtual time elapsed since the pair was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    pub fn side(&mut self, who: Who) -> &mut Side {
        match who {
            Who::Client => &mut self.client,
            Who::Server => &mut self.server,
        }
    }

    pub fn conn(&mut self, who: Who) -> &mut Connection {
        &mut self.side(who).conn
    }

    /// Both sides, `who` first.
    pub fn both(&mut self, who: Who) -> (&mut Side, &mut Side) {
        match who {
            Who::Client => (&mut self.client, &mut self.server),
            Who::Server => (&mut self.server, &mut self.client),
        }
    }

    /// `who` starts the close handshake at the current virtual time.
    pub fn close(
        &mut self,
        who: Who,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), ws_proto::UsageError> {
        let now = self.now;
        self.conn(who).close(now, code, reason)
    }

    /// The peer vanishes: its transport is dropped without a close frame.
    pub fn vanish(&mut self, who: Who) {
        let t = self.elapsed();
        let (me, peer) = self.both(who);
        me.dropped = true;
        me.inbox.clear();
        peer.peer_done = true;
        self.log.push((t, Net::Drop(who)));
    }

    /// Moves bytes, EOFs and events until nothing changes, without moving
    /// the clock. Returns whether anything happened.
    pub fn drive(&mut self) -> bool {
        let mut any = false;
        for _ in 0..1_000_000 {
            let mut progress = false;
            for who in Who::BOTH {
                progress |= self.step(who);
            }
            if !progress {
                return any;
            }
            any = true;
        }
        panic!("the pair does not settle");
    }

    /// One round for `who`: write out, read in, collect events.
    fn step(&mut self, who: Who) -> bool {
        let now = self.now;
        let t = self.elapsed();
        let mut log = Vec::new();
        let (me, peer) = self.both(who);
        if me.frozen || me.dropped {
            return false;
        }
        let mut progress = transmit(me, peer, who, t, &mut log);
        // Read.
        while !me.inbox.is_empty() && !me.conn.is_closed() {
            let n = me.chunk.min(me.inbox.len());
            let piece: Vec<u8> = me.inbox.drain(..n).collect();
            me.conn.handle_input(now, &piece);
            progress = true;
        }
        if me.inbox.is_empty() && me.peer_done && !me.eof_given && !me.conn.is_closed() {
            me.eof_given = true;
            me.conn.handle_eof(now);
            log.push((t, Net::Eof(who)));
            progress = true;
        }
        progress |= transmit(me, peer, who, t, &mut log);
        // Events; after Closed, a last transmit, then drop the transport.
        while let Some(ev) = me.conn.poll_event() {
            progress = true;
            let closed = matches!(ev, Event::Closed(_));
            me.events.push(ev);
            if closed {
                me.closed_at = Some(t);
                transmit(me, peer, who, t, &mut log);
                me.dropped = true;
                me.inbox.clear();
                peer.peer_done = true;
                log.push((t, Net::Drop(who)));
            }
        }
        self.log.extend(log);
        progress
    }

    /// Drives the pair, advancing the virtual clock to each deadline, until
    /// both sides dropped their transports or nothing is left to do.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            self.drive();
            let mut next: Option<Instant> = None;
            for who in Who::BOTH {
                let s = self.side(who);
                if s.frozen || s.dropped {
                    continue;
                }
                if let Some(t) = s.conn.poll_timeout() {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            let Some(deadline) = next else { return };
            if deadline > self.now {
                self.now = deadline;
            }
            let now = self.now;
            for who in Who::BOTH {
                let s = self.side(who);
                if s.frozen || s.dropped {
                    continue;
                }
                if s.conn.poll_timeout().is_some_and(|t| t <= now) {
                    s.conn.handle_timeout(now);
                }
            }
        }
        panic!("the pair does not finish");
    }

    /// Whether `a` happened before `b` in the transport log.
    pub fn before(&self, a: Net, b: Net) -> bool {
        let pa = self.log.iter().position(|(_, n)| *n == a);
        let pb = self.log.iter().position(|(_, n)| *n == b);
        match (pa, pb) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            _ => false,
        }
    }

    pub fn logged(&self, n: Net) -> bool {
        self.log.iter().any(|(_, x)| *x == n)
    }
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

fn transmit(
    me: &mut Side,
    peer: &mut Side,
    who: Who,
    t: Duration,
    log: &mut Vec<(Duration, Net)>,
) -> bool {
    let mut progress = false;
    let mut buf = Vec::new();
    loop {
        let wants = me.conn.wants_transmit();
        let amount = me.conn.buffered_amount();
        let tx = me.conn.poll_transmit(&mut buf);
        assert_eq!(wants, tx.is_some(), "{who:?}: wants_transmit disagrees");
        let Some(tx) = tx else { break };
        progress = true;
        match tx {
            Transmit::Data => {
                assert!(
                    !me.write_shut,
                    "{who:?} wrote after shutting its write half"
                );
                assert!(!buf.is_empty(), "{who:?}: Transmit::Data without bytes");
                assert_eq!(amount, buf.len(), "{who:?}: buffered_amount");
                me.written += buf.len();
                if !peer.dropped {
                    peer.inbox.extend_from_slice(&buf);
                }
                buf.clear();
            }
            Transmit::Shutdown => {
                assert!(!me.write_shut, "{who:?} shut its write half twice");
                me.write_shut = true;
                peer.peer_done = true;
                log.push((t, Net::Shutdown(who)));
            }
        }
    }
    progress
}

/// The code in a close frame we expect to see for a `CloseCode`.
pub fn code(c: u16) -> CloseCode {
    CloseCode(c)
}

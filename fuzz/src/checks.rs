//! The invariants the fuzz targets check, one function per target.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and by the
//! plain `#[test]` that replays the committed corpus
//! (`ws-proto/tests/fuzz_corpus.rs`, which includes this file by path), so
//! it uses only `std`, `ws_proto` and crates `ws-proto` depends on
//! (`httparse`, `miniz_oxide`).
//!
//! Every check panics (that is, reports a finding) when an invariant breaks:
//!
//! - nothing reachable from the wire panics;
//! - `Event::Closed` fires exactly once per connection, as the last event,
//!   and nothing follows it;
//! - splitting the input at arbitrary points changes no outcome;
//! - memory held by a connection stays within bounds derived from its
//!   `Config` (measured with a counting allocator when one is given);
//! - our own output is a well-formed frame stream (masked iff client,
//!   nothing after our close frame, the close frame we report is the one
//!   on the wire);
//! - caller operations that are valid in the current state never fail,
//!   invalid ones fail with the documented `UsageError` and change nothing;
//! - what one side of a pair sends arrives intact and in order.
#![allow(dead_code)]

use std::time::{Duration, Instant};
use ws_proto::http::{self, HeaderMap};
use ws_proto::{
    accept_key, ClientHandshake, ClientUrl, CloseCode, CloseInfo, Config, Connection, DataKind,
    DeflateConfig, DeflateParams, Ending, Event, FrameHeader, HandshakeError, OpCode,
    ProtocolError, Proxy, ProxyHandshake, Role, ServerHandshake, State, Transmit, UsageError,
};

/// A meter of live heap bytes (see `ws_fuzz::live`); `None` skips the
/// memory checks.
pub type Live = Option<fn() -> usize>;

/// Limits of the connections under test: small, so that a fuzzer reaches
/// every limit with short inputs.
pub const MAX_FRAME: usize = 16 << 10;
/// See [`MAX_FRAME`].
pub const MAX_MESSAGE: usize = 64 << 10;
/// See [`MAX_FRAME`].
pub const MAX_FRAGMENTS: usize = 64;
/// Queued bytes beyond which the core coalesces pongs (connection.rs).
pub const PONG_QUEUE: usize = 64 << 10;
/// The largest control frame on the wire: 14 header bytes + 125.
const CTRL: usize = 139;
/// RSV1: "compressed" (RFC 7692 §6).
const RSV1: u8 = 0x40;
/// Seed of every client CSPRNG here, so that client output (the key and
/// the expected `Sec-WebSocket-Accept`) is exact.
pub const CLIENT_SEED: [u8; 32] = [7; 32];
/// The tail a permessage-deflate sender strips (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Whether `WS_FUZZ_DEBUG` is set: the checks then print what they saw.
pub fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("WS_FUZZ_DEBUG").is_some())
}

/// The configuration of the connections under test.
pub fn small_config() -> Config {
    Config::default()
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE)
        .max_fragments(MAX_FRAGMENTS)
        .close_timeout(Duration::from_secs(2))
}

// ------------------------------------------------------------ input tools --

/// Reads the fuzz input as a stream of fields; past the end, every field
/// reads as zero.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }
    /// One byte, or 0 at the end.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Splits `data` into the pieces a transport might deliver: `mode` 0 is
/// one piece, 1 is byte by byte, otherwise pseudo-random sizes from 1 to
/// `mode` (times 64 when `mode >= 128`), from a generator seeded by `seed`.
pub fn split(data: &[u8], mode: u8, seed: u8) -> Vec<&[u8]> {
    let mut x = (0x9e37_79b9u32 ^ u32::from(seed).wrapping_mul(0x0101_0101)) | 1;
    let max = if mode >= 128 {
        usize::from(mode - 127) * 64
    } else {
        usize::from(mode)
    };
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = match mode {
            0 => rest.len(),
            1 => 1,
            _ => {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                1 + (x as usize % max)
            }
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

/// FNV-1a, to remember payloads without holding them.
pub fn fnv(b: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &x in b {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// An event, with payloads reduced to their length and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sig {
    /// A data message.
    Data(DataKind, usize, u64),
    /// A ping.
    Ping(usize, u64),
    /// A pong.
    Pong(usize, u64),
    /// The terminal event.
    Closed(CloseInfo),
    /// An event this file does not know yet.
    Other,
}

impl Sig {
    fn of(ev: &Event) -> Sig {
        match ev {
            Event::Text(t) => Sig::Data(DataKind::Text, t.len(), fnv(t.as_bytes())),
            Event::Binary(b) => Sig::Data(DataKind::Binary, b.len(), fnv(b)),
            Event::Ping(p) => Sig::Ping(p.len(), fnv(p)),
            Event::Pong(p) => Sig::Pong(p.len(), fnv(p)),
            Event::Closed(i) => Sig::Closed(i.clone()),
            _ => Sig::Other,
        }
    }

    fn data(kind: DataKind, b: &[u8]) -> Sig {
        Sig::Data(kind, b.len(), fnv(b))
    }
}

// ------------------------------------------------------- connection tools --

/// Drains `poll_event` into `sigs`, checking that nothing follows
/// `Closed` and that `is_closed` agrees with it.
fn drain_events(conn: &mut Connection, sigs: &mut Vec<Sig>) {
    while let Some(ev) = conn.poll_event() {
        assert!(
            !matches!(sigs.last(), Some(Sig::Closed(_))),
            "event after Closed: {ev:?}"
        );
        if let Event::Closed(_) = &ev {
            assert!(conn.is_closed(), "Closed fired but is_closed() is false");
            assert_eq!(conn.state(), State::Closed);
        }
        sigs.push(Sig::of(&ev));
    }
    let closed = matches!(sigs.last(), Some(Sig::Closed(_)));
    assert_eq!(
        conn.is_closed(),
        closed,
        "is_closed() without a Closed event"
    );
}

/// The terminal event of `sigs`: exactly one `Closed`, and it is the last.
fn the_close(sigs: &[Sig]) -> &CloseInfo {
    let n = sigs.iter().filter(|s| matches!(s, Sig::Closed(_))).count();
    assert_eq!(n, 1, "Closed must fire exactly once");
    match sigs.last() {
        Some(Sig::Closed(info)) => info,
        _ => panic!("Closed must be the last event"),
    }
}

/// Drains `poll_transmit` into `wire`, checking the output getters:
/// `wants_transmit` predicts it, `buffered_amount` counts the bytes
/// exactly, `Data` comes with bytes, `Shutdown` once and last.
fn drain_transmit(conn: &mut Connection, wire: &mut Vec<u8>, shut: &mut bool) {
    loop {
        let wants = conn.wants_transmit();
        let amount = conn.buffered_amount();
        let before = wire.len();
        let t = conn.poll_transmit(wire);
        assert_eq!(wants, t.is_some(), "wants_transmit disagrees with {t:?}");
        match t {
            None => return,
            Some(Transmit::Data) => {
                assert!(!*shut, "data after Transmit::Shutdown");
                let n = wire.len() - before;
                assert!(n > 0, "Transmit::Data without bytes");
                assert_eq!(amount, n, "buffered_amount is not what poll_transmit gave");
            }
            Some(Transmit::Shutdown) => {
                assert!(!*shut, "Transmit::Shutdown twice");
                assert_eq!(wire.len(), before, "Transmit::Shutdown with bytes");
                *shut = true;
            }
        }
    }
}

/// Checks that `wire`, written by a connection of role `role`, is a
/// well-formed frame stream and returns its frames: masked iff client,
/// only control frames or (with `data` set) data frames, complete, nothing
/// after the close frame, and that close frame is `sent`.
fn check_output(
    role: Role,
    wire: &[u8],
    sent: Option<&ws_proto::CloseFrame>,
    data: bool,
) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut rest = wire;
    let mut close = None;
    while !rest.is_empty() {
        assert!(close.is_none(), "a frame after our close frame");
        let (h, n) = match FrameHeader::decode(rest) {
            Ok(Some(x)) => x,
            other => panic!("our output does not decode: {other:?}"),
        };
        assert_eq!(
            h.mask.is_some(),
            role == Role::Client,
            "masking of our frame"
        );
        let len = usize::try_from(h.len).expect("length");
        assert!(rest.len() >= n + len, "our output ends inside a frame");
        let mut payload = rest[n..n + len].to_vec();
        if let Some(k) = h.mask {
            ws_proto::apply_mask(&mut payload, k, 0);
        }
        rest = &rest[n + len..];
        match h.opcode {
            OpCode::Close => {
                assert!(h.rsv == 0);
                let frame = match payload.len() {
                    0 => ws_proto::CloseFrame::new(CloseCode::NO_STATUS, ""),
                    1 => panic!("we sent a 1-byte close payload"),
                    _ => {
                        let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                        assert!(code.is_valid_on_wire(), "we sent close code {code}");
                        let reason = std::str::from_utf8(&payload[2..]).expect("UTF-8 reason");
                        ws_proto::CloseFrame::new(code, reason)
                    }
                };
                close = Some(frame);
            }
            OpCode::Ping | OpCode::Pong => assert!(h.rsv == 0 && len <= 125),
            _ => assert!(data, "unexpected data frame {h:?}"),
        }
        frames.push((h, payload));
    }
    if let Some(sent) = sent {
        assert_eq!(close.as_ref(), Some(sent), "the close frame on the wire");
    }
    frames
}

/// How a connection run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The transport reports EOF.
    Eof,
    /// The clock reaches the connection's deadline, then EOF.
    Timeout,
}

/// What a single-connection run produced.
struct ConnRun {
    sigs: Vec<Sig>,
    wire: Vec<u8>,
}

/// Bytes a connection may hold beyond what one input piece justifies: the
/// message buffer (twice, for growth and a buffer still shared with the
/// last message), the pong queue (twice, for growth), the inflater, slack.
fn memory_bound(deflate: bool) -> usize {
    4 * MAX_MESSAGE
        + 2 * MAX_FRAME
        + 4 * (PONG_QUEUE + 4 * CTRL)
        + (64 << 10) * usize::from(deflate)
        + (64 << 10)
}

/// Feeds `pieces` to `conn`, draining events after each (and output when
/// `drain_out`), checking memory; then ends the connection and checks the
/// terminal event.
fn run_conn(conn: Connection, pieces: &[&[u8]], drain_out: bool, end: End, live: Live) -> ConnRun {
    run_conn_with(conn, pieces, drain_out, end, live, false)
}

/// `run_conn`; with `direct`, each piece first goes through
/// `Connection::read_direct` as far as the core takes it that way (the
/// rest of a data frame's payload, as an adapter reading straight into
/// the message would), the rest through `handle_input`.
fn run_conn_with(
    mut conn: Connection,
    pieces: &[&[u8]],
    drain_out: bool,
    end: End,
    live: Live,
    direct: bool,
) -> ConnRun {
    let now = Instant::now();
    let deflate = conn.deflate().is_some();
    let mut sigs = Vec::new();
    let mut wire = Vec::new();
    let mut shut = false;
    let base = live.map(|f| f());
    let mut largest = 0;
    for p in pieces {
        largest = largest.max(p.len());
        let mut p: &[u8] = p;
        while direct && !p.is_empty() {
            let took = conn.read_direct(
                || now,
                1,
                |buf| {
                    let n = p.len().min(buf.limit());
                    buf.get_mut().extend_from_slice(&p[..n]);
                    n
                },
            );
            match took {
                Some(n) => {
                    assert!(n > 0, "read_direct offered no room");
                    p = &p[n..];
                }
                None => break,
            }
        }
        conn.handle_input(now, p);
        drain_events(&mut conn, &mut sigs);
        if drain_out {
            drain_transmit(&mut conn, &mut wire, &mut shut);
        } else {
            // RFC 6455 §5.5.3 and ws-rs RUSTSEC-2020-0043: a peer that
            // sends pings and never reads cannot grow the queue.
            assert!(
                conn.buffered_amount() <= PONG_QUEUE + 4 * CTRL,
                "{} bytes queued for a peer that does not read",
                conn.buffered_amount()
            );
        }
        if let (Some(f), Some(b)) = (live, base) {
            let held = sigs.capacity() * std::mem::size_of::<Sig>() + wire.capacity();
            let grown = f().saturating_sub(b).saturating_sub(held);
            // The event queue keeps the capacity one piece needed.
            let bound = memory_bound(deflate) + 256 * largest;
            assert!(
                grown <= bound,
                "the connection holds {grown} bytes (bound {bound}) after a {largest}-byte piece"
            );
        }
    }
    let t = match end {
        End::Timeout => match conn.poll_timeout() {
            Some(t) => {
                assert!(t >= now, "a deadline in the past");
                conn.handle_timeout(t);
                t
            }
            None => now,
        },
        End::Eof => now,
    };
    conn.handle_eof(t);
    drain_events(&mut conn, &mut sigs);
    drain_transmit(&mut conn, &mut wire, &mut shut);
    the_close(&sigs);
    // After the end, nothing happens any more.
    conn.handle_input(t, &[0x81, 0x00, 0x89, 0x00]);
    conn.handle_eof(t);
    conn.handle_timeout(t + Duration::from_secs(3600));
    assert!(conn.poll_event().is_none(), "an event after Closed");
    let mut extra = Vec::new();
    let mut shut2 = shut;
    drain_transmit(&mut conn, &mut extra, &mut shut2);
    assert!(extra.is_empty(), "output after the end");
    assert!(conn.poll_timeout().is_none(), "a deadline after the end");
    ConnRun { sigs, wire }
}

/// A connection of `role` with the test limits.
fn new_conn(role: Role, config: Config) -> Connection {
    match role {
        Role::Client => Connection::client(config, CLIENT_SEED),
        Role::Server => Connection::server(config),
    }
}

// ------------------------------------------------------------ frame_decoder --

/// `frame_decoder`: a connection (either role, deflate optionally on)
/// receives arbitrary bytes, whole and split at fuzzer-chosen points.
///
/// Input: `flags`, `split mode`, `split seed`, then the bytes.
/// `flags`: bit 0 client, bit 1 auto-pong off, bit 2 output never drained
/// until the end, bit 3 ended by the close timer, bit 4 deflate negotiated
/// (bit 5 peer without context takeover).
pub fn frame_decoder(data: &[u8], live: Live) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let mode = r.u8();
    let seed = r.u8();
    let input = r.rest();
    let role = if flags & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let config = small_config().auto_pong(flags & 2 == 0);
    let drain_out = flags & 4 == 0;
    let end = if flags & 8 == 0 {
        End::Eof
    } else {
        End::Timeout
    };
    let make = || {
        let c = new_conn(role, config.clone());
        if flags & 16 != 0 {
            let mut p = DeflateParams::default();
            p.remote_no_context_takeover = flags & 32 != 0;
            c.with_deflate(p)
        } else {
            c
        }
    };
    let whole = run_conn(make(), &[input], drain_out, end, live);
    let pieces = split(input, mode, seed);
    let parts = run_conn(make(), &pieces, drain_out, end, live);
    if debug() {
        eprintln!("frame_decoder {role:?}: {:?}", whole.sigs);
    }
    assert_eq!(
        whole.sigs, parts.sigs,
        "splitting the input changed the events"
    );
    let direct = run_conn_with(make(), &pieces, drain_out, end, live, true);
    assert_eq!(
        whole.sigs, direct.sigs,
        "reading payloads directly changed the events"
    );
    assert_eq!(
        parts.wire, direct.wire,
        "reading payloads directly changed the output"
    );
    for run in [&whole, &parts, &direct] {
        let info = the_close(&run.sigs);
        if let Ending::Protocol(e) = info.ending {
            // We only ever close because of the failure: its code (the one
            // mapping from errors to codes) is on the wire.
            let sent = info.sent.as_ref().map(|f| f.code);
            assert_eq!(sent, Some(e.close_code()), "failed with {e:?}");
            assert!(info.received.is_none() && !info.remote_initiated);
        }
        let frames = check_output(role, &run.wire, info.sent.as_ref(), false);
        // Only pongs and a close: never more pongs than pings.
        let pings = run
            .sigs
            .iter()
            .filter(|s| matches!(s, Sig::Ping(..)))
            .count();
        let pongs = frames
            .iter()
            .filter(|(h, _)| h.opcode == OpCode::Pong)
            .count();
        assert!(pongs <= pings, "{pongs} pongs for {pings} pings");
        if flags & 2 != 0 {
            assert_eq!(pongs, 0, "a pong with auto_pong off");
        }
    }
}

// ------------------------------------------------------- handshake_request --

/// The outcome of a server handshake, comparable across input splits.
#[derive(Debug, PartialEq, Eq)]
enum ServerOutcome {
    Incomplete,
    Refused(HandshakeError, Vec<u8>),
    ProtocolNotOffered,
    Accepted {
        uri: String,
        headers: Headers,
        response: Vec<u8>,
        sigs: Vec<Sig>,
    },
}

/// Header names and values, in order.
type Headers = Vec<(String, Vec<u8>)>;

fn header_list(h: &HeaderMap) -> Headers {
    h.iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Parses an HTTP response head with httparse: status, headers, body.
fn parse_response(bytes: &[u8]) -> (u16, Headers, Vec<u8>) {
    let mut raw = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut raw);
    let n = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "our response does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    let headers = resp
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    (resp.code.unwrap_or(0), headers, bytes[n..].to_vec())
}

fn get<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| &v[..])
        .collect()
}

/// The server configuration of the handshake targets, from `flags`.
fn server_hs_config(flags: u8) -> Config {
    let mut c = small_config();
    if flags & 1 != 0 {
        c = c.deflate(Some(DeflateConfig::default()));
    }
    if flags & 2 != 0 {
        c = c.max_headers(8);
    }
    if flags & 4 != 0 {
        c = c.max_handshake_size(512);
    }
    c
}

fn server_handshake(config: &Config, pieces: &[&[u8]], flags: u8) -> ServerOutcome {
    let now = Instant::now();
    let mut hs = ServerHandshake::new(now, config.clone());
    for (i, p) in pieces.iter().enumerate() {
        match hs.handle_input(p) {
            Ok(None) => {
                let mut out = Vec::new();
                assert_eq!(hs.poll_transmit(&mut out), None, "output while incomplete");
            }
            Ok(Some(req)) => return server_accept(hs, req, &pieces[i + 1..], flags),
            Err(e) => {
                let mut out = Vec::new();
                assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Data));
                let (status, headers, body) = parse_response(&out);
                let expected: &[u16] = match &e {
                    HandshakeError::TooLarge | HandshakeError::TooManyHeaders => &[431],
                    HandshakeError::UnsupportedVersion(_) => &[426],
                    HandshakeError::BadRequest(_) | HandshakeError::Malformed(_) => &[400, 405],
                    other => panic!("unexpected server handshake error {other:?}"),
                };
                assert!(expected.contains(&status), "{e:?} answered with {status}");
                let cl = get(&headers, "content-length");
                assert_eq!(cl.len(), 1);
                assert_eq!(cl[0], body.len().to_string().as_bytes(), "content-length");
                if status == 426 {
                    assert_eq!(get(&headers, "sec-websocket-version"), [b"13, 8"]);
                }
                let mut more = Vec::new();
                assert_eq!(hs.poll_transmit(&mut more), Some(Transmit::Shutdown));
                assert_eq!(hs.poll_transmit(&mut more), None);
                assert!(more.is_empty());
                return ServerOutcome::Refused(e, out);
            }
        }
    }
    let mut out = Vec::new();
    assert_eq!(hs.poll_transmit(&mut out), None);
    if let Some(d) = hs.poll_timeout() {
        assert_eq!(hs.handle_timeout(d), Err(HandshakeError::Timeout));
    }
    ServerOutcome::Incomplete
}

fn server_accept(
    hs: ServerHandshake,
    req: http::Request<()>,
    rest: &[&[u8]],
    flags: u8,
) -> ServerOutcome {
    let now = Instant::now();
    let offered = hs.offered_protocols().to_vec();
    let key = req
        .headers()
        .get("sec-websocket-key")
        .expect("an accepted request has a key")
        .as_bytes()
        .to_vec();
    let version = req
        .headers()
        .get("sec-websocket-version")
        .map(|v| v.as_bytes());
    assert!(matches!(version, Some(b"13") | Some(b"8")));
    let negotiated = hs.deflate().copied();
    let protocol = if flags & 8 != 0 {
        if offered.iter().any(|p| p == "zz-not-offered") {
            None
        } else {
            let r = hs.accept(now, Some("zz-not-offered"), &HeaderMap::new());
            assert_eq!(r.err(), Some(UsageError::ProtocolNotOffered));
            return ServerOutcome::ProtocolNotOffered;
        }
    } else {
        offered.first().cloned()
    };
    let mut conn = hs
        .accept(now, protocol.as_deref(), &HeaderMap::new())
        .expect("accepting a complete request");
    assert_eq!(conn.deflate(), negotiated.as_ref());
    assert_eq!(conn.role(), Role::Server);
    let mut wire = Vec::new();
    let mut shut = false;
    let mut sigs = Vec::new();
    drain_events(&mut conn, &mut sigs);
    drain_transmit(&mut conn, &mut wire, &mut shut);
    // The 101 response: parseable, with exactly the headers we mean (no
    // injection through an echoed subprotocol).
    let (status, headers, after) = parse_response(&wire);
    assert_eq!(status, 101);
    assert_eq!(
        get(&headers, "sec-websocket-accept"),
        [accept_key(&key).as_bytes()]
    );
    assert_eq!(get(&headers, "upgrade"), [b"websocket"]);
    assert_eq!(get(&headers, "connection"), [b"Upgrade"]);
    match &protocol {
        Some(p) => assert_eq!(get(&headers, "sec-websocket-protocol"), [p.as_bytes()]),
        None => assert!(get(&headers, "sec-websocket-protocol").is_empty()),
    }
    assert_eq!(
        get(&headers, "sec-websocket-extensions").len(),
        usize::from(negotiated.is_some())
    );
    assert_eq!(
        headers.len(),
        3 + usize::from(protocol.is_some()) + usize::from(negotiated.is_some())
    );
    let head_len = wire.len() - after.len();
    for p in rest {
        conn.handle_input(now, p);
        drain_events(&mut conn, &mut sigs);
        drain_transmit(&mut conn, &mut wire, &mut shut);
    }
    conn.handle_eof(now);
    drain_events(&mut conn, &mut sigs);
    drain_transmit(&mut conn, &mut wire, &mut shut);
    let info = the_close(&sigs).clone();
    check_output(Role::Server, &wire[head_len..], info.sent.as_ref(), false);
    let response = wire[..head_len].to_vec();
    ServerOutcome::Accepted {
        uri: req.uri().to_string(),
        headers: header_list(req.headers()),
        response,
        sigs,
    }
}

/// `handshake_request`: a server handshake fed arbitrary bytes, whole and
/// split. Input: `flags` (bit 0 deflate on, bit 1 at most 8 headers, bit 2
/// a 512-byte head limit, bit 3 answer with a subprotocol that was not
/// offered), `split mode`, `split seed`, then the bytes.
pub fn handshake_request(data: &[u8], _live: Live) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let mode = r.u8();
    let seed = r.u8();
    let input = r.rest();
    let config = server_hs_config(flags);
    let whole = server_handshake(&config, &[input], flags);
    let pieces = split(input, mode, seed);
    let parts = server_handshake(&config, &pieces, flags);
    if debug() {
        eprintln!("handshake_request: {whole:?}");
    }
    assert_eq!(whole, parts, "splitting the request changed the outcome");
}

// ------------------------------------------------------ handshake_response --

/// The outcome of a client handshake, comparable across input splits.
#[derive(Debug, PartialEq, Eq)]
enum ClientOutcome {
    Incomplete,
    Failed(HandshakeError),
    Accepted {
        headers: Headers,
        deflate: Option<DeflateParams>,
        sigs: Vec<Sig>,
    },
}

/// The client configuration and request of `handshake_response`, from
/// `flags`: bit 0 offers permessage-deflate (bit 1 with
/// `client_no_context_takeover`, bit 2 with `server_max_window_bits=10`),
/// bit 3 offers subprotocols `chat, superchat`, bit 4 a 512-byte limit
/// and at most 8 headers.
pub fn client_hs_setup(flags: u8) -> (Config, http::Request<()>) {
    let mut c = small_config();
    if flags & 1 != 0 {
        let d = DeflateConfig::default()
            .client_no_context_takeover(flags & 2 != 0)
            .server_max_window_bits(if flags & 4 != 0 { 10 } else { 15 });
        c = c.deflate(Some(d));
    }
    if flags & 16 != 0 {
        c = c.max_handshake_size(512).max_headers(8);
    }
    let mut req = http::Request::get("ws://example.com/chat");
    if flags & 8 != 0 {
        req = req.header("Sec-WebSocket-Protocol", "chat, superchat");
    }
    (c, req.body(()).expect("request"))
}

fn client_handshake(flags: u8, pieces: &[&[u8]]) -> ClientOutcome {
    let now = Instant::now();
    let (config, req) = client_hs_setup(flags);
    let mut hs = ClientHandshake::new(now, req, config.clone(), CLIENT_SEED).expect("request");
    let offered = hs.offered_protocols().to_vec();
    let mut out = Vec::new();
    assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Data));
    assert_eq!(hs.poll_transmit(&mut out), None);
    let mut fed = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        fed.extend_from_slice(p);
        match hs.handle_input(p) {
            Ok(false) => {}
            Ok(true) => {
                for p in &pieces[i + 1..] {
                    assert_eq!(hs.handle_input(p), Ok(true), "input after the response");
                }
                let (resp, mut conn) = hs.into_connection(now).expect("a complete handshake");
                assert_eq!(resp.status(), 101);
                assert_eq!(conn.role(), Role::Client);
                if config.deflate.is_none() {
                    assert!(conn.deflate().is_none());
                }
                if conn.deflate().is_some() {
                    assert!(resp.headers().contains_key("sec-websocket-extensions"));
                }
                let chosen: Vec<_> = resp
                    .headers()
                    .get_all("sec-websocket-protocol")
                    .iter()
                    .collect();
                assert!(chosen.len() <= 1);
                for c in chosen {
                    let c = c.to_str().expect("a chosen protocol is text").trim();
                    assert!(offered.iter().any(|o| o == c), "not offered: {c:?}");
                }
                let deflate = conn.deflate().copied();
                let mut sigs = Vec::new();
                let mut wire = Vec::new();
                let mut shut = false;
                drain_events(&mut conn, &mut sigs);
                drain_transmit(&mut conn, &mut wire, &mut shut);
                conn.handle_eof(now);
                drain_events(&mut conn, &mut sigs);
                drain_transmit(&mut conn, &mut wire, &mut shut);
                let info = the_close(&sigs).clone();
                check_output(Role::Client, &wire, info.sent.as_ref(), false);
                return ClientOutcome::Accepted {
                    headers: header_list(resp.headers()),
                    deflate,
                    sigs,
                };
            }
            Err(mut e) => {
                let r = hs.into_connection(now);
                assert_eq!(r.err(), Some(UsageError::HandshakeIncomplete));
                if let HandshakeError::UnexpectedStatus { body, .. } = &mut e {
                    // The body bytes that came with the head: how many
                    // depends on the split.
                    assert!(fed.ends_with(body), "the body is what followed the head");
                    body.clear();
                }
                return ClientOutcome::Failed(e);
            }
        }
    }
    if let Some(d) = hs.poll_timeout() {
        assert_eq!(hs.handle_timeout(d), Err(HandshakeError::Timeout));
    }
    let r = hs.into_connection(now);
    assert_eq!(r.err(), Some(UsageError::HandshakeIncomplete));
    ClientOutcome::Incomplete
}

/// `handshake_response`: a client handshake that sent its request
/// ([`CLIENT_SEED`], so the expected accept value is fixed) fed arbitrary
/// bytes, whole and split. Input: `flags` (see [`client_hs_setup`]),
/// `split mode`, `split seed`, then the bytes.
pub fn handshake_response(data: &[u8], _live: Live) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let mode = r.u8();
    let seed = r.u8();
    let input = r.rest();
    let whole = client_handshake(flags, &[input]);
    let pieces = split(input, mode, seed);
    let parts = client_handshake(flags, &pieces);
    if debug() {
        eprintln!("handshake_response: {whole:?}");
    }
    assert_eq!(whole, parts, "splitting the response changed the outcome");
}

// ------------------------------------------------------------------ deflate --

/// A frame as the peer of `we` sends it (masked iff we are a server).
pub fn peer_frame(we: Role, b0: u8, key: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let masked = we == Role::Server;
    let mut v = vec![b0];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => v.push(m | n as u8),
        n if n <= 0xffff => {
            v.push(m | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(m | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        v.extend_from_slice(&key);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        v.extend_from_slice(payload);
    }
    v
}

/// Why the reference inflater refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefError {
    TooLarge,
    Corrupt,
}

/// A reference permessage-deflate receiver: miniz_oxide's decompressor over
/// a flat history buffer (back-references past the start of the history
/// are errors here, where the core's ring reads zeros: such streams are
/// not compared).
struct RefInflater {
    d: Box<miniz_oxide::inflate::core::DecompressorOxide>,
    hist: Vec<u8>,
}

impl RefInflater {
    fn new() -> Self {
        RefInflater {
            d: Box::default(),
            hist: Vec::new(),
        }
    }

    /// Inflates one message (RFC 7692 §7.2.2: with the tail appended); a
    /// block with BFINAL ends the stream and the rest of the message is
    /// ignored (§7.2.3.4); the history is kept for the next message.
    fn message(&mut self, payload: &[u8], limit: usize, tail: bool) -> Result<Vec<u8>, RefError> {
        use miniz_oxide::inflate::core::{decompress, inflate_flags};
        use miniz_oxide::inflate::TINFLStatus;
        let mut input = payload.to_vec();
        if tail {
            input.extend_from_slice(&TAIL);
        }
        let start = self.hist.len();
        self.hist.resize(start + limit + 1, 0);
        let flags = inflate_flags::TINFL_FLAG_HAS_MORE_INPUT
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        let mut pos = 0;
        let mut out = start;
        let res = loop {
            let (status, used, written) =
                decompress(&mut self.d, &input[pos..], &mut self.hist, out, flags);
            pos += used;
            out += written;
            if out - start > limit {
                break Err(RefError::TooLarge);
            }
            match status {
                TINFLStatus::Done => {
                    self.d.init();
                    break Ok(());
                }
                TINFLStatus::NeedsMoreInput if pos == input.len() => break Ok(()),
                TINFLStatus::HasMoreOutput => break Err(RefError::TooLarge),
                TINFLStatus::NeedsMoreInput if used > 0 || written > 0 => {}
                _ => break Err(RefError::Corrupt),
            }
        };
        self.hist.truncate(out);
        let msg = self.hist[start..].to_vec();
        if self.hist.len() > 1 << 15 {
            self.hist.drain(..self.hist.len() - (1 << 15));
        }
        res.map(|()| msg)
    }
}

/// One data message as framed by the `deflate` target.
struct Framed {
    kind: DataKind,
    compressed: bool,
    payload: Vec<u8>,
}

/// `deflate`: a connection with permessage-deflate negotiated receives
/// well-framed messages with arbitrary (mostly compressed) payloads, with
/// pings and pongs between frames; what it delivers must equal a reference
/// inflater's output, and whatever the ratio its memory stays bounded.
///
/// Input: `flags` (bit 0 client, bit 1 the peer has no context takeover,
/// bit 2 output never drained until the end), `split mode`, `split seed`,
/// then frames as `ctrl`, `len`, `len` payload bytes. `ctrl`: bits 0–1
/// ping / pong / data / data; for data, bit 2 binary, bit 3 uncompressed
/// (both decided by the first frame of a message), bit 4 not the last
/// frame; bits 5–7 pick the mask key.
pub fn deflate(data: &[u8], live: Live) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let mode = r.u8();
    let seed = r.u8();
    let role = if flags & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let mut params = DeflateParams::default();
    params.remote_no_context_takeover = flags & 2 != 0;
    let drain_out = flags & 4 == 0;

    let mut wire = Vec::new();
    let mut messages = Vec::new();
    let mut cur: Option<(Framed, usize)> = None;
    // Expected control events, by the index of the message they precede.
    let mut controls: Vec<(usize, Sig)> = Vec::new();
    while !r.is_empty() {
        let c = r.u8();
        let len = usize::from(r.u8());
        let payload = r.bytes(len);
        let key = [c, c.wrapping_mul(3), 0x5a, c >> 1];
        match c & 3 {
            0 | 1 => {
                let payload = &payload[..payload.len().min(125)];
                let (b0, sig) = if c & 3 == 0 {
                    (0x89, Sig::Ping(payload.len(), fnv(payload)))
                } else {
                    (0x8a, Sig::Pong(payload.len(), fnv(payload)))
                };
                wire.extend(peer_frame(role, b0, key, payload));
                controls.push((messages.len(), sig));
            }
            _ => {
                let (mut m, frames) = cur.take().unwrap_or_else(|| {
                    let kind = if c & 4 == 0 {
                        DataKind::Text
                    } else {
                        DataKind::Binary
                    };
                    let m = Framed {
                        kind,
                        compressed: c & 8 == 0,
                        payload: Vec::new(),
                    };
                    (m, 0)
                });
                let fin = c & 16 == 0 || frames + 1 >= MAX_FRAGMENTS;
                let mut b0 = if frames > 0 {
                    0x00
                } else if m.kind == DataKind::Text {
                    0x01
                } else {
                    0x02
                };
                if frames == 0 && m.compressed {
                    b0 |= RSV1;
                }
                if fin {
                    b0 |= 0x80;
                }
                wire.extend(peer_frame(role, b0, key, payload));
                m.payload.extend_from_slice(payload);
                if fin {
                    messages.push(m);
                } else {
                    cur = Some((m, frames + 1));
                }
            }
        }
    }

    let make = || new_conn(role, small_config()).with_deflate(params);
    let pieces = split(&wire, mode, seed);
    let run = run_conn(make(), &pieces, drain_out, End::Eof, live);
    let info = the_close(&run.sigs).clone();
    check_output(role, &run.wire, info.sent.as_ref(), false);

    // The reference: what must be delivered, up to the first message that
    // must fail the connection (or that the reference cannot judge).
    let mut reference = RefInflater::new();
    let mut expected = Vec::new();
    let mut failing = None;
    let mut unsure = false;
    for m in &messages {
        let bytes = if m.compressed {
            if params.remote_no_context_takeover {
                reference = RefInflater::new();
            }
            match reference.message(&m.payload, MAX_MESSAGE, true) {
                Ok(b) => b,
                Err(RefError::TooLarge) => {
                    failing = Some(expected.len());
                    break;
                }
                Err(RefError::Corrupt) => {
                    unsure = true;
                    break;
                }
            }
        } else {
            if m.payload.len() > MAX_MESSAGE {
                failing = Some(expected.len());
                break;
            }
            m.payload.clone()
        };
        if m.kind == DataKind::Text && std::str::from_utf8(&bytes).is_err() {
            failing = Some(expected.len());
            break;
        }
        expected.push(Sig::data(m.kind, &bytes));
    }
    if debug() {
        eprintln!(
            "deflate {role:?}: {} messages, expected {} (failing {failing:?}, unsure {unsure}), events {:?}",
            messages.len(),
            expected.len(),
            run.sigs
        );
    }
    // The core inflates and checks UTF-8 as frames arrive: a message that
    // never ends can fail too.
    if let (None, false, Some((m, _))) = (failing, unsure, &cur) {
        let so_far = if m.compressed {
            if params.remote_no_context_takeover {
                reference = RefInflater::new();
            }
            reference.message(&m.payload, MAX_MESSAGE, false)
        } else {
            Ok(m.payload.clone())
        };
        match so_far {
            Err(RefError::TooLarge) => failing = Some(expected.len()),
            Err(RefError::Corrupt) => unsure = true,
            Ok(b) => {
                let bad_text = m.kind == DataKind::Text
                    && std::str::from_utf8(&b).is_err_and(|e| e.error_len().is_some());
                if bad_text {
                    failing = Some(expected.len());
                }
            }
        }
    }
    let got: Vec<Sig> = run
        .sigs
        .iter()
        .filter(|s| matches!(s, Sig::Data(..)))
        .cloned()
        .collect();
    if unsure {
        assert!(
            got.len() >= expected.len() && got[..expected.len()] == expected[..],
            "messages before an undecidable one differ"
        );
        return;
    }
    assert_eq!(
        got, expected,
        "delivered messages differ from the reference"
    );
    match failing {
        Some(_) => match info.ending {
            Ending::Protocol(
                ProtocolError::MessageTooLarge
                | ProtocolError::InvalidUtf8
                | ProtocolError::InvalidCompressedData,
            ) => {}
            other => panic!("expected a failure (1009 or 1007), got {other:?}"),
        },
        None => assert_eq!(info.ending, Ending::Abnormal, "{info:?}"),
    }
    // Control frames before the first message that fails are reported in
    // order (later ones may be cut off by the failure).
    let limit = failing.unwrap_or(usize::MAX);
    let must: Vec<&Sig> = controls
        .iter()
        .filter(|(i, _)| *i < limit)
        .map(|(_, s)| s)
        .collect();
    let got_ctrl: Vec<&Sig> = run
        .sigs
        .iter()
        .filter(|s| matches!(s, Sig::Ping(..) | Sig::Pong(..)))
        .collect();
    assert!(
        got_ctrl.len() >= must.len() && got_ctrl[..must.len()] == must[..],
        "control frames were lost or reordered"
    );
}

// ----------------------------------------------------------------- pair_ops --

/// Limits of the pair: the generated messages stay within them, so a
/// protocol failure without injected garbage is a finding.
fn pair_config(auto_pong: bool) -> Config {
    Config::default()
        .max_frame_size(64 << 10)
        .max_message_size(256 << 10)
        .max_fragments(64)
        .auto_pong(auto_pong)
        .close_timeout(Duration::from_secs(2))
}

/// The most fragments the pair target puts in one message.
const PAIR_FRAGMENTS: usize = 32;

/// One end of the simulated connection, and the model of it.
struct Side {
    conn: Connection,
    sigs: Vec<Sig>,
    /// Bytes in flight toward this side.
    inbox: Vec<u8>,
    /// The peer shut its write half (or vanished): EOF after the inbox.
    peer_done: bool,
    eof_given: bool,
    write_shut: bool,
    /// Dropped its transport after `Closed`.
    dropped: bool,
    /// Bytes the application queued since the last transmit (framed,
    /// with room for compression overhead).
    queued: usize,
    /// Complete messages this side sent and received.
    sent: Vec<Sig>,
    received: Vec<Sig>,
    /// The fragmented message being sent: kind, bytes so far, frames.
    frag: Option<(DataKind, Vec<u8>, usize)>,
    /// Text bytes generated for fragments but not sent yet.
    pending_text: Vec<u8>,
    /// Garbage was injected into this side's inbox.
    garbage: bool,
}

impl Side {
    fn new(conn: Connection) -> Self {
        Side {
            conn,
            sigs: Vec::new(),
            inbox: Vec::new(),
            peer_done: false,
            eof_given: false,
            write_shut: false,
            dropped: false,
            queued: 0,
            sent: Vec::new(),
            received: Vec::new(),
            frag: None,
            pending_text: Vec::new(),
            garbage: false,
        }
    }
}

struct Pair {
    sides: [Side; 2],
    now: Instant,
    /// An EOF was forced on a read half.
    eof_forced: bool,
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// Characters text payloads are made of: 1- to 4-byte UTF-8.
const CHARS: [char; 8] = [
    'a',
    'Z',
    ' ',
    '\u{e9}',
    '\u{3b1}',
    '\u{20ac}',
    '\u{4e2d}',
    '\u{1f600}',
];

fn text_from(b: &[u8]) -> String {
    b.iter().map(|x| CHARS[usize::from(x % 8)]).collect()
}

impl Pair {
    /// A pair after a real handshake.
    fn new(flags: u8, knobs: u8) -> Pair {
        let now = Instant::now();
        let auto_pong = flags & 0x40 == 0;
        let mut client_cfg = pair_config(auto_pong);
        let mut server_cfg = pair_config(auto_pong);
        if flags & 1 != 0 {
            let bits = 8 + ((flags >> 3) & 7);
            let threshold = if flags & 0x80 != 0 { 64 } else { 0 };
            let level = knobs % 11;
            client_cfg = client_cfg.deflate(Some(
                DeflateConfig::default()
                    .client_no_context_takeover(flags & 2 != 0)
                    .server_max_window_bits(if knobs & 0x80 != 0 { bits } else { 15 })
                    .client_max_window_bits(bits)
                    .level(level)
                    .threshold(threshold),
            ));
            server_cfg = server_cfg.deflate(Some(
                DeflateConfig::default()
                    .server_no_context_takeover(flags & 4 != 0)
                    .level(knobs.wrapping_mul(7) % 11)
                    .threshold(threshold),
            ));
        }
        let req = http::Request::get("ws://example.com/chat")
            .header("Sec-WebSocket-Protocol", "chat")
            .body(())
            .expect("request");
        let mut chs = ClientHandshake::new(now, req, client_cfg, CLIENT_SEED).expect("client");
        let mut to_server = Vec::new();
        assert_eq!(chs.poll_transmit(&mut to_server), Some(Transmit::Data));
        let mut shs = ServerHandshake::new(now, server_cfg);
        let req = shs
            .handle_input(&to_server)
            .expect("our request is valid")
            .expect("our request is complete");
        assert_eq!(req.uri().path(), "/chat");
        let mut server = shs
            .accept(now, Some("chat"), &HeaderMap::new())
            .expect("accept");
        let mut to_client = Vec::new();
        let mut shut = false;
        drain_transmit(&mut server, &mut to_client, &mut shut);
        assert!(chs.handle_input(&to_client).expect("our response is valid"));
        let (resp, client) = chs.into_connection(now).expect("client connection");
        assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
        if flags & 1 != 0 {
            let c = client.deflate().expect("client negotiated deflate");
            let s = server.deflate().expect("server negotiated deflate");
            assert_eq!(c.local_max_window_bits, s.remote_max_window_bits);
            assert_eq!(c.remote_max_window_bits, s.local_max_window_bits);
            assert_eq!(c.local_no_context_takeover, s.remote_no_context_takeover);
            assert_eq!(c.remote_no_context_takeover, s.local_no_context_takeover);
        } else {
            assert!(client.deflate().is_none() && server.deflate().is_none());
        }
        Pair {
            sides: [Side::new(client), Side::new(server)],
            now,
            eof_forced: false,
        }
    }

    /// `who` writes what its connection queued into the peer's inbox.
    fn transmit(&mut self, who: usize) -> bool {
        let (me, peer) = pick(&mut self.sides, who);
        if me.dropped {
            return false;
        }
        let mut wire = Vec::new();
        let was_shut = me.write_shut;
        drain_transmit(&mut me.conn, &mut wire, &mut me.write_shut);
        me.queued = 0;
        let progress = !wire.is_empty() || me.write_shut != was_shut;
        if !peer.dropped && !peer.eof_given {
            peer.inbox.extend_from_slice(&wire);
        }
        if me.write_shut {
            peer.peer_done = true;
        }
        progress
    }

    /// `who` reads up to `n` bytes of its inbox, then sees EOF if the
    /// inbox is empty and the peer is done.
    fn deliver(&mut self, who: usize, n: usize) -> bool {
        let now = self.now;
        let me = &mut self.sides[who];
        if me.dropped {
            return false;
        }
        let mut progress = false;
        if !me.inbox.is_empty() {
            let n = n.min(me.inbox.len());
            let piece: Vec<u8> = me.inbox.drain(..n).collect();
            me.conn.handle_input(now, &piece);
            progress = true;
        }
        if me.inbox.is_empty() && me.peer_done && !me.eof_given {
            me.eof_given = true;
            me.conn.handle_eof(now);
            progress = true;
        }
        progress
    }

    /// `who`'s application takes its events; after `Closed` it writes a
    /// last time and drops the transport.
    fn events(&mut self, who: usize) -> bool {
        let me = &mut self.sides[who];
        if me.dropped {
            return false;
        }
        let before = me.sigs.len();
        drain_events(&mut me.conn, &mut me.sigs);
        let new: Vec<Sig> = me.sigs[before..].to_vec();
        let mut closed = false;
        for s in new.iter() {
            match s {
                Sig::Data(..) => me.received.push(s.clone()),
                Sig::Closed(_) => closed = true,
                _ => {}
            }
        }
        if closed {
            self.transmit(who);
            let (me, peer) = pick(&mut self.sides, who);
            me.dropped = true;
            me.inbox.clear();
            peer.peer_done = true;
        }
        before != self.sides[who].sigs.len()
    }

    /// Moves everything until nothing changes, without moving the clock.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut progress = false;
            for who in [CLIENT, SERVER] {
                progress |= self.transmit(who);
                progress |= self.deliver(who, usize::MAX);
                progress |= self.events(who);
            }
            if !progress {
                return;
            }
        }
        panic!("the pair does not settle");
    }

    /// Advances the clock by `d` and fires due timers.
    fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        for s in &mut self.sides {
            if s.dropped {
                continue;
            }
            if s.conn.poll_timeout().is_some_and(|t| t <= now) {
                s.conn.handle_timeout(now);
                assert!(
                    s.conn.poll_timeout().map_or(true, |t| t > now),
                    "a deadline that does not move after handle_timeout"
                );
            }
        }
    }

    /// Runs a send operation on `who`, checking its result against the
    /// model's prediction; an error must change nothing.
    fn command(
        &mut self,
        who: usize,
        expect: Result<(), UsageError>,
        f: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> bool {
        let s = &mut self.sides[who];
        let state = s.conn.state();
        let amount = s.conn.buffered_amount();
        let got = f(&mut s.conn);
        assert_eq!(got, expect, "command result (state {state:?})");
        if got.is_err() {
            assert_eq!(s.conn.state(), state, "a usage error changed the state");
            assert_eq!(
                s.conn.buffered_amount(),
                amount,
                "a usage error queued bytes"
            );
        }
        got.is_ok()
    }

    fn whole_message_expect(&self, who: usize) -> Result<(), UsageError> {
        let s = &self.sides[who];
        if s.conn.state() != State::Open {
            Err(UsageError::Closed)
        } else if s.frag.is_some() {
            Err(UsageError::FragmentedMessageInProgress)
        } else {
            Ok(())
        }
    }

    fn send_whole(&mut self, who: usize, kind: DataKind, data: Vec<u8>, how: u8) {
        let mut expect = self.whole_message_expect(who);
        if expect.is_ok() && kind == DataKind::Text && std::str::from_utf8(&data).is_err() {
            expect = Err(UsageError::InvalidUtf8);
        }
        let sig = Sig::data(kind, &data);
        let len = data.len();
        let ok = self.command(who, expect, |c| match (how % 3, kind) {
            (0, DataKind::Text) => {
                c.send_text(String::from_utf8(data).expect("text ops make UTF-8"))
            }
            (0, DataKind::Binary) => c.send_binary(data),
            (n, k) => c.send_message(k, data, n == 1),
        });
        if ok {
            let s = &mut self.sides[who];
            s.sent.push(sig);
            s.queued += 2 * len + 64;
        }
    }

    fn send_fragment(
        &mut self,
        who: usize,
        kind: DataKind,
        data: Vec<u8>,
        fin: bool,
        compress: bool,
    ) {
        let s = &self.sides[who];
        let expect = if s.conn.state() != State::Open {
            Err(UsageError::Closed)
        } else {
            match &s.frag {
                Some((k, _, _)) if *k != kind => Err(UsageError::FragmentKindMismatch),
                other => {
                    let mut all = other.as_ref().map(|f| f.1.clone()).unwrap_or_default();
                    all.extend_from_slice(&data);
                    match (kind, std::str::from_utf8(&all)) {
                        (DataKind::Binary, _) | (_, Ok(_)) => Ok(()),
                        (_, Err(e)) if e.error_len().is_none() && !fin => Ok(()),
                        _ => Err(UsageError::InvalidUtf8),
                    }
                }
            }
        };
        let len = data.len();
        let copy = data.clone();
        if self.command(who, expect, |c| {
            c.send_fragment_with(kind, data, fin, compress)
        }) {
            let s = &mut self.sides[who];
            s.queued += 2 * len + 64;
            let (k, mut acc, n) = s.frag.take().unwrap_or((kind, Vec::new(), 0));
            acc.extend_from_slice(&copy);
            if fin {
                s.sent.push(Sig::data(k, &acc));
            } else {
                s.frag = Some((k, acc, n + 1));
            }
        }
    }

    /// Whether `who`'s fragmented message must end with the next fragment.
    fn must_fin(&self, who: usize) -> bool {
        self.sides[who]
            .frag
            .as_ref()
            .is_some_and(|f| f.2 + 1 >= PAIR_FRAGMENTS)
    }

    fn check_bounds(&self) {
        for s in &self.sides {
            if s.dropped {
                continue;
            }
            let bound = s.queued + PONG_QUEUE + 4 * CTRL;
            assert!(
                s.conn.buffered_amount() <= bound,
                "{} bytes queued, bound {bound}",
                s.conn.buffered_amount()
            );
        }
    }
}

fn pick(sides: &mut [Side; 2], who: usize) -> (&mut Side, &mut Side) {
    let (a, b) = sides.split_at_mut(1);
    if who == CLIENT {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}

/// Close codes the ops pick from: valid, 1005 (no body), and invalid ones.
const CODES: [u16; 12] = [
    1000, 1001, 1003, 1008, 1011, 3000, 4999, 1005, 1006, 1004, 999, 5000,
];

/// `pair_ops`: a client and a server after a real handshake (deflate
/// optionally negotiated), driven by operations decoded from the input:
/// sends of every kind, fragments, pings, pongs, closes, bytes delivered
/// in pieces, garbage, EOFs, the clock. See the match below for the
/// encoding: `flags`, `knobs`, then ops of one byte (bit 7 picks the side)
/// plus their arguments.
pub fn pair_ops(data: &[u8], _live: Live) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let knobs = r.u8();
    let mut p = Pair::new(flags, knobs);
    let mut steps = 0;
    while !r.is_empty() && steps < 2000 {
        steps += 1;
        let op = r.u8();
        let who = usize::from(op >> 7);
        let other = 1 - who;
        match op & 0x0f {
            0 => {
                let n = usize::from(r.u8());
                let t = text_from(r.bytes(n));
                p.send_whole(who, DataKind::Text, t.into_bytes(), 0);
            }
            1 => {
                let n = usize::from(r.u8()) * (1 + usize::from((op >> 4) & 3));
                let b = r.bytes(n).to_vec();
                p.send_whole(who, DataKind::Binary, b, op >> 4);
            }
            2 => {
                // Raw bytes as text or binary: invalid UTF-8 is a usage error.
                let n = usize::from(r.u8());
                let b = r.bytes(n).to_vec();
                let kind = if op & 0x10 == 0 {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                p.send_whole(who, kind, b, 1 + ((op >> 5) & 1));
            }
            3 => {
                // A text fragment: a prefix of generated text, possibly
                // cutting a character in two.
                let n = usize::from(r.u8());
                let t = text_from(r.bytes(n));
                let cut = usize::from(r.u8());
                let fin = op & 0x10 != 0 || p.must_fin(who);
                let s = &mut p.sides[who];
                let expect_ok = s.conn.state() == State::Open
                    && !matches!(s.frag, Some((DataKind::Binary, _, _)));
                // At most 4 KiB waits, so that a message (32 fragments)
                // stays within the peer's limits.
                if expect_ok && s.pending_text.len() < 4 << 10 {
                    s.pending_text.extend_from_slice(t.as_bytes());
                }
                let take = if fin {
                    s.pending_text.len()
                } else {
                    cut.min(s.pending_text.len())
                };
                let frag: Vec<u8> = s.pending_text[..take].to_vec();
                if expect_ok {
                    s.pending_text.drain(..take);
                }
                p.send_fragment(who, DataKind::Text, frag, fin, op & 0x20 == 0);
            }
            4 => {
                let n = usize::from(r.u8()) * 4;
                let b = r.bytes(n).to_vec();
                let fin = op & 0x10 != 0 || p.must_fin(who);
                p.send_fragment(who, DataKind::Binary, b, fin, op & 0x20 == 0);
            }
            5 | 6 => {
                let n = usize::from(r.u8() % 131);
                let b = r.bytes(n).to_vec();
                let s = &p.sides[who];
                let expect = if s.conn.state() != State::Open {
                    Err(UsageError::Closed)
                } else if b.len() > 125 {
                    Err(UsageError::ControlPayloadTooLong)
                } else {
                    Ok(())
                };
                let ping = op & 0x0f == 5;
                if p.command(who, expect, |c| {
                    if ping {
                        c.send_ping(b)
                    } else {
                        c.send_pong(b)
                    }
                }) {
                    p.sides[who].queued += CTRL;
                }
            }
            7 => {
                let code = CloseCode(CODES[usize::from(r.u8()) % CODES.len()]);
                let n = usize::from(r.u8() % 64);
                let reason = text_from(r.bytes(n));
                let now = p.now;
                let s = &p.sides[who];
                let no_status = code == CloseCode::NO_STATUS;
                let expect = if (!no_status && !code.is_valid_on_wire())
                    || (no_status && !reason.is_empty())
                {
                    Err(UsageError::InvalidCloseCode(code.0))
                } else if reason.len() > 123 {
                    Err(UsageError::ControlPayloadTooLong)
                } else {
                    Ok(())
                };
                let was_open = s.conn.state() == State::Open;
                if p.command(who, expect, |c| c.close(now, code, &reason)) {
                    let s = &mut p.sides[who];
                    s.queued += CTRL;
                    if was_open {
                        assert_eq!(s.conn.state(), State::LocalClosing);
                    }
                }
            }
            8 => {
                p.transmit(who);
            }
            9 => {
                let n = usize::from(r.u8()) * 8 + 1;
                p.deliver(who, n);
            }
            10 => p.settle(),
            11 => {
                let n = usize::from(r.u8() % 32);
                let g = r.bytes(n).to_vec();
                let s = &mut p.sides[who];
                if !s.dropped && !s.eof_given && !g.is_empty() {
                    s.garbage = true;
                    s.inbox.extend_from_slice(&g);
                }
            }
            12 => {
                // `who`'s read half ends (the network broke).
                let s = &mut p.sides[who];
                if !s.peer_done {
                    s.peer_done = true;
                    p.eof_forced = true;
                }
            }
            13 => {
                let ms = u64::from(r.u8()) * 20;
                p.advance(Duration::from_millis(ms));
            }
            14 => {
                p.events(who);
            }
            _ => {
                // Both deliver a random amount to each other.
                let n = usize::from(r.u8()) * 16 + 1;
                p.transmit(who);
                p.deliver(other, n);
                p.transmit(other);
                p.deliver(who, n);
            }
        }
        p.check_bounds();
    }

    // The end: deliver everything; close what is still open; let the
    // timers run. Both sides must end, each with one Closed.
    for round in 0..64 {
        p.settle();
        if p.sides.iter().all(|s| s.dropped) {
            break;
        }
        if round == 0 {
            for who in [CLIENT, SERVER] {
                if p.sides[who].conn.state() == State::Open {
                    let now = p.now;
                    p.sides[who]
                        .conn
                        .close(now, CloseCode::NORMAL, "end")
                        .expect("close");
                }
            }
            continue;
        }
        let next = p
            .sides
            .iter()
            .filter(|s| !s.dropped)
            .filter_map(|s| s.conn.poll_timeout())
            .min();
        match next {
            Some(t) => {
                let d = t.saturating_duration_since(p.now);
                p.advance(d);
            }
            None => break,
        }
    }
    if debug() {
        for s in &p.sides {
            eprintln!(
                "pair_ops: sent {} received {} garbage {} {:?}",
                s.sent.len(),
                s.received.len(),
                s.garbage,
                s.sigs.last()
            );
        }
    }
    for (who, s) in p.sides.iter().enumerate() {
        assert!(s.dropped, "side {who} never ended ({:?})", s.conn.state());
        let info = the_close(&s.sigs);
        if !s.garbage {
            // Only garbage can make a side fail: our messages are valid.
            assert!(
                !matches!(info.ending, Ending::Protocol(_)),
                "side {who} failed without garbage: {info:?}"
            );
        }
    }
    for who in [CLIENT, SERVER] {
        let (me, peer) = (&p.sides[who], &p.sides[1 - who]);
        if me.garbage {
            continue;
        }
        // What arrives is what was sent, in order, without gaps.
        assert!(
            me.received.len() <= peer.sent.len()
                && me.received[..] == peer.sent[..me.received.len()],
            "side {who} received something else than was sent"
        );
        let clean = the_close(&me.sigs).is_clean() && the_close(&peer.sigs).is_clean();
        if clean && !p.eof_forced && !peer.garbage {
            assert_eq!(
                me.received.len(),
                peer.sent.len(),
                "side {who} lost messages on a clean close"
            );
            let mine = the_close(&me.sigs);
            let theirs = the_close(&peer.sigs);
            assert_eq!(
                mine.received, theirs.sent,
                "the close frame changed on the way"
            );
            assert!(!(mine.remote_initiated && theirs.remote_initiated));
        }
    }
}

// ------------------------------------------------------------ client_proxy --

/// How a proxy tunnel handshake ended, comparable across input splits.
#[derive(Debug, PartialEq, Eq)]
enum ProxyOutcome {
    /// More of the proxy's answer is needed.
    Pending,
    /// The proxy refused or answered something else.
    Failed(HandshakeError),
    /// The tunnel is open; `leftover` came after the proxy's answer.
    Open { leftover: Vec<u8> },
}

/// Runs the tunnel handshake over `pieces` of the proxy's answer; returns
/// what we sent and how it ended.
fn proxy_run(hs: &mut ProxyHandshake, pieces: &[&[u8]]) -> (Vec<u8>, ProxyOutcome) {
    let mut sent = Vec::new();
    while hs.poll_transmit(&mut sent).is_some() {}
    let mut open = false;
    for p in pieces {
        match hs.handle_input(p) {
            Err(e) => {
                // What was queued before the failure counts as sent: a
                // split answer would have let it out in between.
                while hs.poll_transmit(&mut sent).is_some() {}
                return (sent, ProxyOutcome::Failed(e));
            }
            Ok(done) => {
                assert_eq!(done, hs.is_done());
                open = done;
            }
        }
        while hs.poll_transmit(&mut sent).is_some() {}
    }
    if open {
        let hs = std::mem::replace(hs, Proxy::http("x", 1).handshake("y", 2).unwrap());
        (
            sent,
            ProxyOutcome::Open {
                leftover: hs.into_leftover(),
            },
        )
    } else {
        (sent, ProxyOutcome::Pending)
    }
}

/// Client URLs, `Location` resolution, proxy URLs and the proxy tunnel
/// handshake (HTTP CONNECT and SOCKS5) against arbitrary input.
///
/// Input: `flags` (bit 0 SOCKS5 rather than CONNECT when the proxy URL
/// does not parse, bit 1 with credentials, bits 2-3 the fallback target
/// host), `split mode`, `split seed`, a length-prefixed URL, a
/// length-prefixed `Location`, a length-prefixed proxy URL, then the
/// proxy's answer.
///
/// Checks: nothing panics; a parsed URL has a resource starting with `/`
/// and a usable host; the tunnel's outcome, the bytes we sent and the
/// bytes left over do not depend on how the answer was split; what is left
/// over is a suffix of the answer; a pending handshake never holds more
/// than the 16 KiB answer limit (plus one read).
pub fn client_proxy(data: &[u8], _live: Live) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let mode = r.u8();
    let seed = r.u8();
    let n = usize::from(r.u8());
    let url = String::from_utf8_lossy(r.bytes(n)).into_owned();
    let n = usize::from(r.u8());
    let location = String::from_utf8_lossy(r.bytes(n)).into_owned();
    let n = usize::from(r.u8());
    let proxy_url = String::from_utf8_lossy(r.bytes(n)).into_owned();
    let answer = r.rest();

    let parsed = ClientUrl::parse(&url).ok();
    if let Some(u) = &parsed {
        assert!(u.resource().starts_with('/'), "{u:?}");
        let _ = (u.is_secure(), u.port(), u.unix_socket(), u.credentials());
        let _ = (u.host_header(), u.authority());
        assert!(u.same_host(u));
        if let Ok(next) = u.join(&location) {
            assert!(next.resource().starts_with('/'), "{next:?}");
            let _ = (next.host_header(), next.authority(), u.same_host(&next));
        }
    }
    let (host, port) = match &parsed {
        Some(u) if u.unix_socket().is_none() => (u.host().to_string(), u.port()),
        _ => {
            let host = ["example.com", "127.0.0.1", "::1", "[::1]"][usize::from(flags >> 2) & 3];
            (host.to_string(), 443)
        }
    };
    let proxy = match Proxy::parse(&proxy_url) {
        Ok(p) => p,
        Err(_) => {
            let p = if flags & 1 != 0 {
                Proxy::socks5("proxy", 1080)
            } else {
                Proxy::http("proxy", 8080)
            };
            if flags & 2 != 0 {
                p.with_credentials("user", "pass")
            } else {
                p
            }
        }
    };
    let _ = (proxy.protocol(), proxy.host(), proxy.port(), proxy.user());
    let Ok(mut whole_hs) = proxy.handshake(&host, port) else {
        return;
    };
    let mut split_hs = proxy
        .handshake(&host, port)
        .expect("the same handshake twice");
    let whole = proxy_run(&mut whole_hs, &[answer]);
    let pieces = split(answer, mode, seed);
    let parts = proxy_run(&mut split_hs, &pieces);
    if debug() {
        eprintln!("client_proxy: {whole:?}");
    }
    assert_eq!(whole, parts, "splitting the answer changed the outcome");
    match &whole.1 {
        ProxyOutcome::Open { leftover } => assert!(answer.ends_with(leftover)),
        ProxyOutcome::Pending => {
            let largest = pieces.iter().map(|p| p.len()).max().unwrap_or(0);
            assert!(
                answer.len() <= (16 << 10) + largest + 1024,
                "{} bytes of answer still pending",
                answer.len()
            );
        }
        ProxyOutcome::Failed(_) => {}
    }
}

//! Regression tests for advisories of other WebSocket libraries: each test
//! replays the input that triggered the advisory against our core and
//! asserts the right outcome with bounded CPU and memory. Memory is
//! measured with a counting allocator (process-wide counters, so the tests
//! of this file run one at a time); CPU with generous wall-clock budgets
//! that only a super-linear algorithm could exceed, next to deterministic
//! allocation counts that a per-read re-parse would inflate.
//!
//! The tokio adapter replays the same inputs over in-memory streams in
//! `ws-tokio/tests/advisories.rs`.

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use ws_proto::http::{self, HeaderMap};
use ws_proto::{
    ClientHandshake, CloseCode, CloseInfo, Config, Connection, DeflateConfig, DeflateParams,
    Ending, Event, FrameHeader, HandshakeError, OpCode, ProtocolError, Role, ServerHandshake,
    Transmit,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

/// The allocation counters are process-wide: one test at a time.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `f` allocated: the total (every allocation and growth, even if
/// freed) and the net growth of live bytes when it returned.
#[derive(Debug, Clone, Copy)]
struct Alloc {
    total: usize,
    live: isize,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Alloc) {
    let region = Region::new(GLOBAL);
    let out = f();
    let c = region.change();
    // stats_alloc counts growth by realloc in `bytes_allocated` (and
    // shrinking in `bytes_deallocated`).
    let total = c.bytes_allocated;
    let live = c.bytes_allocated as isize - c.bytes_deallocated as isize;
    (out, Alloc { total, live })
}

// ----------------------------------------------------------------- helpers --

/// The RFC 6455 §1.3 request head, without the final empty line.
const HEAD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn seed(n: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in s.iter_mut().enumerate() {
        *b = n.wrapping_mul(31).wrapping_add(i as u8);
    }
    s
}

fn conn(we: Role, config: Config) -> Connection {
    match we {
        Role::Client => Connection::client(config, seed(1)),
        Role::Server => Connection::server(config),
    }
}

/// A frame as the peer of `we` sends it (masked iff we are a server).
fn peer_frame(we: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    let masked = we == Role::Server;
    let mut v = header(we, b0, payload.len() as u64);
    if masked {
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        v.extend_from_slice(payload);
    }
    v
}

/// A frame header declaring `len` bytes, as the peer of `we` sends it.
fn header(we: Role, b0: u8, len: u64) -> Vec<u8> {
    let m = if we == Role::Server { 0x80 } else { 0 };
    let mut v = vec![b0];
    if len < 126 {
        v.push(m | len as u8);
    } else if len <= 0xffff {
        v.push(m | 126);
        v.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        v.push(m | 127);
        v.extend_from_slice(&len.to_be_bytes());
    }
    if we == Role::Server {
        v.extend_from_slice(&KEY);
    }
    v
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(t) = c.poll_transmit(&mut out) {
        if t == Transmit::Shutdown {
            break;
        }
    }
    out
}

/// Splits our own output into (opcode, unmasked payload).
fn frames(mut b: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
    let mut v = Vec::new();
    while !b.is_empty() {
        let (h, n) = FrameHeader::decode(b).unwrap().expect("complete frame");
        let len = h.len as usize;
        let mut p = b[n..n + len].to_vec();
        if let Some(k) = h.mask {
            ws_proto::apply_mask(&mut p, k, 0);
        }
        v.push((h.opcode, p));
        b = &b[n + len..];
    }
    v
}

/// The code of the close frame in our output, if any.
fn close_code(out: &[u8]) -> Option<u16> {
    frames(out)
        .into_iter()
        .find(|(op, _)| *op == OpCode::Close)
        .map(|(_, p)| u16::from_be_bytes([p[0], p[1]]))
}

/// Ends `c` with EOF and returns its terminal info (exactly one Closed).
fn end(c: &mut Connection) -> CloseInfo {
    c.handle_eof(Instant::now());
    let ev = events(c);
    let closed: Vec<&CloseInfo> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Closed(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1, "{ev:?}");
    closed[0].clone()
}

/// Pieces of 1 to 16 bytes, in a fixed pattern.
fn dribble(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut sizes = [1usize, 7, 2, 16, 3, 11, 5, 13].iter().cycle();
    let mut rest = b;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = (*sizes.next().unwrap()).min(rest.len());
        let (a, r) = rest.split_at(n);
        rest = r;
        Some(a)
    })
}

/// Generous: linear work here takes milliseconds even in debug builds;
/// quadratic work on these sizes takes minutes.
const BUDGET: Duration = Duration::from_secs(20);

// ------------------------------------------- tungstenite RUSTSEC-2023-0065 --

/// tungstenite RUSTSEC-2023-0065 (CVE-2023-43669): the handshake was
/// re-parsed from the start on every read, so a long header dribbled in
/// small pieces cost minutes of CPU. Ours looks for the end of the head
/// where the previous read stopped and parses once.
#[test]
fn rustsec_2023_0065_tungstenite_quadratic_header_parsing() {
    let _g = serial();
    let size = 1 << 20;
    // One long header, then thousands of short ones: both shapes.
    let mut req = HEAD.to_string();
    req.push_str(&format!("X-Long: {}\r\n", "a".repeat(size / 2)));
    let mut i = 0;
    while req.len() < size {
        req.push_str(&format!("X-{i}: {}\r\n", "b".repeat(40)));
        i += 1;
    }
    req.push_str("\r\n");
    let config = Config::default()
        .max_handshake_size(2 << 20)
        .max_headers(20_000)
        .handshake_timeout(None);

    // Server: 1 MiB in pieces of 1..16 bytes.
    let start = Instant::now();
    let (got, alloc) = measure(|| {
        let mut hs = ServerHandshake::new(start, config.clone());
        let mut got = None;
        for piece in dribble(req.as_bytes()) {
            if let Some(r) = hs.handle_input(piece).expect("a valid request") {
                got = Some(r);
            }
            assert!(start.elapsed() < BUDGET, "server handshake too slow");
        }
        got
    });
    let took = start.elapsed();
    let got = got.expect("accepted");
    assert_eq!(got.headers().len(), 6 + i);
    assert!(took < BUDGET, "server: {took:?}");
    // One parse: the buffer (grown by doubling), one header array, the
    // header map. A parse per read would allocate a header array per read.
    // (A parse per read would allocate that array 150 000 times.)
    assert!(
        alloc.total < 16 * size,
        "server allocated {} bytes for a {size}-byte head",
        alloc.total
    );

    // Client: a 1 MiB response dribbled the same way.
    let mut resp = "HTTP/1.1 400 Bad Request\r\n".to_string();
    resp.push_str(&format!("X-Long: {}\r\n", "c".repeat(size / 2)));
    let mut j = 0;
    while resp.len() < size {
        resp.push_str(&format!("X-{j}: {}\r\n", "d".repeat(40)));
        j += 1;
    }
    resp.push_str("\r\n");
    let start = Instant::now();
    let req2 = http::Request::get("ws://h/").body(()).unwrap();
    let mut chs = ClientHandshake::new(start, req2, config, seed(2)).unwrap();
    let mut sink = Vec::new();
    let _ = chs.poll_transmit(&mut sink);
    let (res, alloc) = measure(|| {
        let mut res = Ok(false);
        for piece in dribble(resp.as_bytes()) {
            res = chs.handle_input(piece);
            if !matches!(res, Ok(false)) {
                break;
            }
        }
        res
    });
    let took = start.elapsed();
    assert!(
        matches!(res, Err(HandshakeError::UnexpectedStatus { status: 400, ref headers, .. }) if headers.len() == 1 + j),
        "{res:?}"
    );
    assert!(took < BUDGET, "client: {took:?}");
    assert!(alloc.total < 16 * size, "client allocated {}", alloc.total);

    // With the default limits the same dribble is refused with 431 as soon
    // as it passes 16 KiB, without looking further.
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    let mut fed = 0;
    let err = dribble(req.as_bytes())
        .find_map(|p| {
            fed += p.len();
            hs.handle_input(p).err()
        })
        .expect("refused");
    assert_eq!(err, HandshakeError::TooLarge);
    assert!(fed <= (16 << 10) + 16, "refused after {fed} bytes");
    let mut out = Vec::new();
    let _ = hs.poll_transmit(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 431 "));
}

// --------------------------------------- rust-websocket RUSTSEC-2022-0035 --

/// rust-websocket RUSTSEC-2022-0035: the payload buffer was allocated from
/// the length a frame header declares, so a 14-byte header declaring 2^62
/// bytes aborted the process. Ours refuses it from the header (1009) and,
/// even with the limits off, reserves at most 1 MiB ahead of what arrived.
#[test]
fn rustsec_2022_0035_websocket_declared_length_2_pow_62() {
    let _g = serial();
    let now = Instant::now();
    for we in [Role::Server, Role::Client] {
        // Default limits: 1009 from the header alone.
        let mut c = conn(we, Config::default());
        let h = header(we, 0x82, 1 << 62);
        let ((), alloc) = measure(|| c.handle_input(now, &h));
        assert!(alloc.total < 16 << 10, "{we:?}: {alloc:?}");
        assert_eq!(close_code(&output(&mut c)), Some(1009), "{we:?}");
        assert_eq!(
            end(&mut c).ending,
            Ending::Protocol(ProtocolError::FrameTooLarge)
        );

        // The same declaration on a continuation frame.
        let mut c = conn(we, Config::default());
        let mut b = peer_frame(we, 0x02, b"start");
        b.extend(header(we, 0x00, 1 << 62));
        let ((), alloc) = measure(|| c.handle_input(now, &b));
        assert!(alloc.total < 16 << 10, "{we:?}: {alloc:?}");
        assert_eq!(close_code(&output(&mut c)), Some(1009));

        // Limits off: the frame is legal, so we wait for its payload, but
        // reserve no more than 1 MiB; arriving payload costs what it is.
        let open = Config::default()
            .max_frame_size(usize::MAX)
            .max_message_size(usize::MAX);
        let mut c = conn(we, open);
        let ((), alloc) = measure(|| c.handle_input(now, &h));
        assert!(alloc.total <= (1 << 20) + (16 << 10), "{we:?}: {alloc:?}");
        assert!(c.is_open());
        let chunk = vec![0x55u8; 64 << 10];
        let ((), alloc) = measure(|| {
            for _ in 0..16 {
                c.handle_input(now, &chunk);
            }
        });
        // 1 MiB arrived: the buffer grows to hold it (doubling), no more.
        assert!(alloc.live <= 3 << 20, "{we:?}: {alloc:?}");
        assert!(events(&mut c).is_empty());
        assert_eq!(end(&mut c).ending, Ending::Abnormal);

        // 2^63 breaks RFC 6455 §5.2 (the top bit must be 0): 1002.
        let mut c = conn(we, Config::default());
        c.handle_input(now, &header(we, 0x82, 1 << 63));
        assert_eq!(close_code(&output(&mut c)), Some(1002));
        // A control frame declaring it: 1002 as well.
        let mut c = conn(we, Config::default());
        c.handle_input(now, &header(we, 0x89, 1 << 62));
        assert_eq!(close_code(&output(&mut c)), Some(1002));
    }
}

// ------------------------------------------------- ws-rs RUSTSEC-2020-0043 --

/// ws-rs RUSTSEC-2020-0043: a peer that sends pings and never reads made
/// the library queue pongs without bound. Ours answers every ping while
/// less than 64 KiB is queued, then only the latest one (RFC 6455 §5.5.3).
#[test]
fn rustsec_2020_0043_ws_rs_ping_flood_unbounded_queue() {
    let _g = serial();
    let now = Instant::now();
    for we in [Role::Server, Role::Client] {
        let mut c = conn(we, Config::default());
        let mut last = Vec::new();
        let mut read = Vec::new();
        let mut pings = 0u32;
        let start = Instant::now();
        let ((), alloc) = measure(|| {
            // 100 000 pings of 125 bytes (13 MB) in 64 KiB reads; the
            // application takes its events, nobody takes the output.
            while pings < 100_000 {
                while read.len() < 64 << 10 && pings < 100_000 {
                    last = pings.to_be_bytes().repeat(31);
                    last.push(0xee);
                    read.extend(peer_frame(we, 0x89, &last));
                    pings += 1;
                }
                c.handle_input(now, &read);
                read.clear();
                let n = std::iter::from_fn(|| c.poll_event()).count();
                assert!(n > 0);
                assert!(
                    c.buffered_amount() <= (64 << 10) + 2 * 139,
                    "{we:?}: {} bytes queued",
                    c.buffered_amount()
                );
            }
        });
        assert!(start.elapsed() < BUDGET);
        // The queue, the event queue of one read, the read buffer.
        assert!(alloc.live < 1 << 20, "{we:?}: {alloc:?}");
        let out = output(&mut c);
        let pongs = frames(&out);
        assert!(pongs.iter().all(|(op, _)| *op == OpCode::Pong));
        // The first pings were answered in order, the last one is answered.
        assert_eq!(pongs[0].1[..4], 0u32.to_be_bytes());
        assert_eq!(pongs[1].1[..4], 1u32.to_be_bytes());
        assert_eq!(pongs.last().unwrap().1, last, "{we:?}");
        assert!(out.len() <= (64 << 10) + 2 * 139);
        // Still a working connection: a close is echoed.
        c.handle_input(now, &peer_frame(we, 0x88, &1000u16.to_be_bytes()));
        assert!(events(&mut c).is_empty());
        assert_eq!(close_code(&output(&mut c)), Some(1000));
        assert!(end(&mut c).is_clean());

        // With auto-pong off nothing is queued at all.
        let mut c = conn(we, Config::default().auto_pong(false));
        let flood: Vec<u8> = (0..1000).flat_map(|_| peer_frame(we, 0x89, b"x")).collect();
        c.handle_input(now, &flood);
        assert_eq!(c.buffered_amount(), 0);
        assert_eq!(events(&mut c).len(), 1000);
    }
}

// ------------------------------------------------------ ws CVE-2021-32640 --

/// Node ws CVE-2021-32640: a regular expression splitting
/// `Sec-WebSocket-Protocol` backtracked on a value with many spaces. Ours
/// splits on commas and trims, in linear time.
#[test]
fn cve_2021_32640_ws_redos_sec_websocket_protocol() {
    let _g = serial();
    let n = 256 << 10;
    let config = Config::default()
        .max_handshake_size(1 << 20)
        .handshake_timeout(None);
    let shapes = [
        format!("a{}b, c", " ".repeat(n)),
        format!("a,{}c", " ,".repeat(n / 2)),
        format!("c,{}", " ".repeat(n)),
        format!("{}c", "\t".repeat(n)),
    ];
    for value in &shapes {
        let mut req = HEAD.to_string();
        req.push_str(&format!("Sec-WebSocket-Protocol: {value}\r\n\r\n"));
        let start = Instant::now();
        let (offered, alloc) = measure(|| {
            let mut hs = ServerHandshake::new(start, config.clone());
            hs.handle_input(req.as_bytes())
                .expect("valid")
                .expect("complete");
            let offered = hs.offered_protocols().to_vec();
            // Choosing one of them answers with exactly that one.
            let mut c = hs.accept(start, Some("c"), &HeaderMap::new()).unwrap();
            let resp = String::from_utf8(output(&mut c)).unwrap();
            assert!(resp.contains("\r\nSec-WebSocket-Protocol: c\r\n"), "{resp}");
            offered
        });
        assert!(start.elapsed() < BUDGET, "{:?}", start.elapsed());
        assert!(offered.iter().any(|p| p == "c"), "{:?}", offered.len());
        assert!(offered.iter().all(|p| !p.is_empty()));
        assert!(alloc.total < 16 * n, "{alloc:?}");
    }

    // The client checking such a value in a response: refused, quickly.
    let config = config.clone();
    for value in &shapes {
        let req = http::Request::get("ws://h/")
            .header("Sec-WebSocket-Protocol", "chat")
            .body(())
            .unwrap();
        let start = Instant::now();
        let mut chs = ClientHandshake::new(start, req, config.clone(), seed(3)).unwrap();
        let mut out = Vec::new();
        let _ = chs.poll_transmit(&mut out);
        let key = String::from_utf8(out)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").map(str::to_string))
            .unwrap();
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {value}\r\n\r\n",
            ws_proto::accept_key(key.as_bytes())
        );
        let r = chs.handle_input(resp.as_bytes());
        assert!(matches!(r, Err(HandshakeError::BadResponse(_))), "{r:?}");
        assert!(start.elapsed() < BUDGET);
    }

    // With the default 16 KiB limit such a head is simply too large.
    let mut req = HEAD.to_string();
    req.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n\r\n", shapes[0]));
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    assert_eq!(
        hs.handle_input(req.as_bytes()).unwrap_err(),
        HandshakeError::TooLarge
    );
}

// ------------------------------------------------------ ws CVE-2024-37890 --

/// Node ws CVE-2024-37890: a request with more headers than
/// `server.maxHeadersCount` crashed the server. Ours answers 431 (too
/// many headers, or too large) and carries on; raising `max_headers`
/// accepts it.
#[test]
fn cve_2024_37890_ws_too_many_headers() {
    let _g = serial();
    let mut req = HEAD.to_string();
    for i in 0..10_000 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");

    let refuse = |config: Config| -> (HandshakeError, Vec<u8>) {
        let mut hs = ServerHandshake::new(Instant::now(), config);
        let e = hs.handle_input(req.as_bytes()).unwrap_err();
        let mut out = Vec::new();
        assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Data));
        assert_eq!(hs.poll_transmit(&mut Vec::new()), Some(Transmit::Shutdown));
        (e, out)
    };
    // Default limits: too large before anything else.
    let (e, out) = refuse(Config::default());
    assert_eq!(e, HandshakeError::TooLarge);
    assert!(out.starts_with(b"HTTP/1.1 431 "));
    // Room for the bytes, not for the count.
    let start = Instant::now();
    let ((e, out), alloc) = measure(|| refuse(Config::default().max_handshake_size(1 << 20)));
    assert_eq!(e, HandshakeError::TooManyHeaders);
    assert!(out.starts_with(b"HTTP/1.1 431 "));
    assert!(start.elapsed() < BUDGET);
    assert!(alloc.total < 4 << 20, "{alloc:?}");
    // Exactly max_headers is fine, one more is 431, the edge where ws
    // crashed.
    let with = |n: usize| {
        let mut r = HEAD.to_string();
        for i in 0..n {
            r.push_str(&format!("X-{i}: v\r\n"));
        }
        r + "\r\n"
    };
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    assert!(hs.handle_input(with(64 - 5).as_bytes()).unwrap().is_some());
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    assert_eq!(
        hs.handle_input(with(64 - 4).as_bytes()).unwrap_err(),
        HandshakeError::TooManyHeaders
    );
    // Raised limits: accepted, every header kept.
    let config = Config::default()
        .max_handshake_size(1 << 20)
        .max_headers(20_000);
    let mut hs = ServerHandshake::new(Instant::now(), config.clone());
    let got = hs.handle_input(req.as_bytes()).unwrap().unwrap();
    assert_eq!(got.headers().len(), 10_005);
    assert!(hs.accept(Instant::now(), None, &HeaderMap::new()).is_ok());

    // The client side: a response with 10 000 headers is an error, not a
    // crash.
    let mut resp = "HTTP/1.1 101 Switching Protocols\r\n".to_string();
    for i in 0..10_000 {
        resp.push_str(&format!("X-{i}: v\r\n"));
    }
    resp.push_str("\r\n");
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let config = Config::default().max_handshake_size(1 << 20);
    let mut chs = ClientHandshake::new(Instant::now(), req, config, seed(4)).unwrap();
    assert_eq!(
        chs.handle_input(resp.as_bytes()),
        Err(HandshakeError::TooManyHeaders)
    );
}

// -------------------------------------------- floods of tiny continuations --

/// Floods of empty or 1-byte continuation frames (a CPU and memory
/// amplification several libraries were hit by): bounded by
/// `max_fragments`, failed with 1009 at the first fragment over it, with
/// no allocation per fragment.
#[test]
fn continuation_flood_empty_and_tiny_fragments_1009() {
    let _g = serial();
    let now = Instant::now();
    for we in [Role::Server, Role::Client] {
        // 200 000 empty continuations against the default 131 072 limit.
        let max = Config::default().max_fragments;
        let mut flood = peer_frame(we, 0x02, b"");
        let one = peer_frame(we, 0x00, b"");
        for _ in 0..200_000 {
            flood.extend_from_slice(&one);
        }
        let mut c = conn(we, Config::default());
        let start = Instant::now();
        let (fed, alloc) = measure(|| {
            // In 64 KiB reads, counting the bytes taken before the failure.
            let mut fed = 0;
            for piece in flood.chunks(64 << 10) {
                if !c.is_open() {
                    break;
                }
                c.handle_input(now, piece);
                fed += piece.len();
            }
            fed
        });
        assert!(start.elapsed() < BUDGET);
        assert!(alloc.total < 64 << 10, "{we:?}: {alloc:?}");
        // It failed within the read that carried fragment max + 1.
        let fail_at = one.len() * (max + 1);
        assert!(fed >= fail_at && fed < fail_at + (64 << 10), "{fed}");
        assert_eq!(close_code(&output(&mut c)), Some(1009), "{we:?}");
        assert_eq!(
            end(&mut c).ending,
            Ending::Protocol(ProtocolError::TooManyFragments)
        );

        // 1-byte fragments against a limit of 1000: the 1000th completes a
        // message, the 1001st of the next message fails.
        let config = Config::default().max_fragments(1000);
        let mut ok = peer_frame(we, 0x01, b"a");
        for i in 1..1000 {
            let b0 = if i == 999 { 0x80 } else { 0x00 };
            ok.extend(peer_frame(we, b0, b"a"));
        }
        let mut c = conn(we, config);
        c.handle_input(now, &ok);
        match &events(&mut c)[..] {
            [Event::Text(t)] => assert_eq!(t.len(), 1000),
            other => panic!("{other:?}"),
        }
        let mut over = peer_frame(we, 0x02, b"b");
        for _ in 0..1000 {
            over.extend(peer_frame(we, 0x00, b"b"));
        }
        c.handle_input(now, &over);
        assert_eq!(close_code(&output(&mut c)), Some(1009));
        assert!(events(&mut c).is_empty());

        // A character split over 1-byte fragments is still one character.
        let mut c = conn(we, Config::default());
        let euro = "\u{20ac}".as_bytes();
        let mut b = peer_frame(we, 0x01, &euro[..1]);
        b.extend(peer_frame(we, 0x00, &euro[1..2]));
        b.extend(peer_frame(we, 0x80, &euro[2..]));
        c.handle_input(now, &b);
        assert!(matches!(&events(&mut c)[..], [Event::Text(t)] if t == "\u{20ac}"));
    }
}

// ------------------------------------------- websockets CVE-2018-1000518 --

/// A compressed message payload: raw DEFLATE from miniz_oxide, ending in
/// a final block (which RFC 7692 §7.2.3.4 allows).
fn compress(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(data, 9)
}

/// Python websockets CVE-2018-1000518: a small compressed message inflated
/// without a limit (a decompression bomb). Ours inflates straight into the
/// message buffer and fails with 1009 before it grows past
/// `max_message_size`, whatever the compression ratio.
#[test]
fn cve_2018_1000518_websockets_decompression_bomb() {
    let _g = serial();
    let now = Instant::now();
    let limit = 1 << 20;
    let bomb = compress(&vec![0u8; 16 << 20]); // 16 MiB of zeros
    assert!(bomb.len() < 32 << 10, "{}", bomb.len());
    for we in [Role::Server, Role::Client] {
        for no_context in [false, true] {
            let mut p = DeflateParams::default();
            p.remote_no_context_takeover = no_context;
            let config = Config::default().max_message_size(limit);
            // Whole, and as 100 fragments.
            for fragments in [1usize, 100] {
                let mut c = conn(we, config.clone()).with_deflate(p);
                let mut wire = Vec::new();
                let pieces: Vec<&[u8]> = bomb.chunks(bomb.len().div_ceil(fragments)).collect();
                for (i, piece) in pieces.iter().enumerate() {
                    let mut b0 = if i == 0 { 0x42 } else { 0x00 }; // RSV1 on the first
                    if i + 1 == pieces.len() {
                        b0 |= 0x80;
                    }
                    wire.extend(peer_frame(we, b0, piece));
                }
                let start = Instant::now();
                let ((), alloc) = measure(|| c.handle_input(now, &wire));
                assert!(start.elapsed() < BUDGET);
                // The message buffer up to the limit (grown by doubling),
                // the 43 KiB inflater; never the 16 MiB.
                assert!(
                    alloc.total < 3 * limit,
                    "{we:?} {no_context} {fragments}: {alloc:?}"
                );
                assert!(events(&mut c).is_empty());
                assert_eq!(close_code(&output(&mut c)), Some(1009));
                assert_eq!(
                    end(&mut c).ending,
                    Ending::Protocol(ProtocolError::MessageTooLarge)
                );
            }
            // Just under the limit inflates and is delivered.
            let mut c = conn(we, config.clone()).with_deflate(p);
            let z = compress(&vec![b'x'; limit]);
            c.handle_input(now, &peer_frame(we, 0xc1, &z));
            assert!(matches!(&events(&mut c)[..], [Event::Text(t)] if t.len() == limit));
        }
    }

    // End to end, with deflate negotiated by the handshakes: our own
    // client compresses 16 MiB of zeros; the server refuses it with 1009.
    let deflate = Some(DeflateConfig::default());
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let mut chs = ClientHandshake::new(
        now,
        req,
        Config::default().deflate(deflate.clone()),
        seed(5),
    )
    .unwrap();
    let mut to_server = Vec::new();
    let _ = chs.poll_transmit(&mut to_server);
    let mut shs = ServerHandshake::new(
        now,
        Config::default().deflate(deflate).max_message_size(limit),
    );
    shs.handle_input(&to_server).unwrap().unwrap();
    let mut server = shs.accept(now, None, &HeaderMap::new()).unwrap();
    assert!(chs.handle_input(&output(&mut server)).unwrap());
    let (_, mut client) = chs.into_connection(now).unwrap();
    assert!(client.deflate().is_some() && server.deflate().is_some());
    client.send_binary(vec![0u8; 16 << 20]).unwrap();
    let wire = output(&mut client);
    assert!(wire.len() < 1 << 20, "{}", wire.len());
    let ((), alloc) = measure(|| server.handle_input(now, &wire));
    assert!(alloc.total < 3 * limit, "{alloc:?}");
    assert_eq!(close_code(&output(&mut server)), Some(1009));
}

// ------------------------------------------ gorilla GHSA-w67g-5rqw-f597 --

/// The mask keys of `n` frames sent by a client seeded with `s`.
fn mask_keys(s: [u8; 32], n: usize) -> Vec<[u8; 4]> {
    let mut c = Connection::client(Config::default(), s);
    let mut out = Vec::new();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        c.send_binary(vec![(i % 251) as u8]).unwrap();
        out.clear();
        let _ = c.poll_transmit(&mut out);
        let (h, _) = FrameHeader::decode(&out).unwrap().unwrap();
        keys.push(h.mask.expect("a client masks every frame"));
    }
    keys
}

/// gorilla/websocket GHSA-w67g-5rqw-f597: mask keys came from a
/// predictable generator, which defeats masking's purpose (RFC 6455 §10.3:
/// an attacker must not predict the key of the next frame). Ours come
/// from a ChaCha CSPRNG seeded by the adapter from the OS; this checks
/// that keys are not constant, sequential or repeating, have balanced
/// bits, and differ across seeds.
#[test]
fn ghsa_w67g_5rqw_f597_gorilla_predictable_mask_keys() {
    let _g = serial();
    let n = 10_000;
    let keys = mask_keys(seed(6), n);
    let as_u32: Vec<u32> = keys.iter().map(|k| u32::from_be_bytes(*k)).collect();
    // Distinct: 10 000 random 32-bit values collide with probability ~1%.
    let distinct: HashSet<u32> = as_u32.iter().copied().collect();
    assert!(distinct.len() >= n - 2, "{} distinct keys", distinct.len());
    assert!(as_u32.iter().filter(|&&k| k == 0).count() <= 1, "zero keys");
    // Not sequential: a constant step between keys would repeat.
    let steps: Vec<u32> = as_u32.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let repeated = steps.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(repeated <= 2, "{repeated} repeated steps");
    // Every bit set in about half of the keys (±10 sigma).
    for bit in 0..32 {
        let ones = as_u32.iter().filter(|&&k| (k >> bit) & 1 == 1).count();
        assert!(
            (4500..=5500).contains(&ones),
            "bit {bit} is set in {ones} of {n} keys"
        );
    }
    // The same seed gives the same keys (tests need that); another seed,
    // even one bit apart, gives unrelated ones.
    assert_eq!(mask_keys(seed(6), 100), keys[..100]);
    let mut near = seed(6);
    near[31] ^= 1;
    for other in [mask_keys(seed(7), n), mask_keys(near, n)] {
        let same = other.iter().zip(&keys).filter(|(a, b)| a == b).count();
        assert!(same <= 2, "{same} equal keys at the same position");
        let theirs: HashSet<[u8; 4]> = other.iter().copied().collect();
        let shared = keys.iter().filter(|k| theirs.contains(*k)).count();
        assert!(shared <= 10, "{shared} keys in common");
    }

    // The handshake nonce comes from the same generator and differs
    // across seeds; the mask keys that follow do not repeat it.
    let nonce = |s: [u8; 32]| {
        let req = http::Request::get("ws://h/").body(()).unwrap();
        let mut hs = ClientHandshake::new(Instant::now(), req, Config::default(), s).unwrap();
        let mut out = Vec::new();
        let _ = hs.poll_transmit(&mut out);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").map(str::to_string))
            .unwrap()
    };
    let nonces: HashSet<String> = (0..100u8).map(|i| nonce(seed(i))).collect();
    assert_eq!(nonces.len(), 100);
    assert_ne!(nonce(seed(6)), nonce(near));
}

/// Sanity check of the helpers above: a close frame from `close_code` and
/// an end that is clean.
#[test]
fn helpers_work() {
    let _g = serial();
    let mut c = conn(Role::Server, Config::default());
    c.close(Instant::now(), CloseCode::NORMAL, "").unwrap();
    assert_eq!(close_code(&output(&mut c)), Some(1000));
    c.handle_input(
        Instant::now(),
        &peer_frame(Role::Server, 0x88, &[0x03, 0xe8]),
    );
    assert!(end(&mut c).is_clean());
}

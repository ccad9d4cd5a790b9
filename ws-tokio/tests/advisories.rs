//! The advisories of `ws-proto/tests/advisories.rs`, replayed through the
//! tokio adapter: a hostile peer on the other end of an in-memory pipe
//! (loopback TCP where the transport matters) sends the input that
//! triggered each advisory in another library; we check what it gets back,
//! what the application sees, that buffers stay bounded and that it all
//! takes bounded time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use ws_proto::{Connection, FrameHeader, OpCode, ServerHandshake, Transmit};
use ws_tokio::http::{self, HeaderMap};
use ws_tokio::{
    Accept, Config, DeflateConfig, Error, HandshakeError, Message, ProtocolError, WebSocket,
};

/// The RFC 6455 §1.3 request head, without the final empty line.
const HEAD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Generous: linear work takes far less even in debug builds; the
/// quadratic or unbounded behaviour of the advisories takes far more.
const BUDGET: Duration = Duration::from_secs(30);

/// A frame header as a client sends it (masked), declaring `len` bytes.
fn header(b0: u8, len: u64) -> Vec<u8> {
    let mut v = vec![b0];
    if len < 126 {
        v.push(0x80 | len as u8);
    } else if len <= 0xffff {
        v.push(0x80 | 126);
        v.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        v.push(0x80 | 127);
        v.extend_from_slice(&len.to_be_bytes());
    }
    v.extend_from_slice(&KEY);
    v
}

/// A frame as a client sends it.
fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = header(b0, payload.len() as u64);
    v.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    v
}

/// Reads until EOF (or an error: the other end may reset).
async fn read_to_end(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// The complete frames at the start of `b` (unmasked payloads).
fn frames(mut b: &[u8]) -> Vec<(OpCode, Vec<u8>, Option<[u8; 4]>)> {
    let mut v = Vec::new();
    while let Ok(Some((h, n))) = FrameHeader::decode(b) {
        let len = h.len as usize;
        if b.len() < n + len {
            break;
        }
        let mut p = b[n..n + len].to_vec();
        if let Some(k) = h.mask {
            ws_proto::apply_mask(&mut p, k, 0);
        }
        v.push((h.opcode, p, h.mask));
        b = &b[n + len..];
    }
    v
}

fn close_code(b: &[u8]) -> Option<u16> {
    frames(b)
        .into_iter()
        .find(|(op, _, _)| *op == OpCode::Close)
        .map(|(_, p, _)| u16::from_be_bytes([p[0], p[1]]))
}

/// Pieces of 1 to 16 bytes, in a fixed pattern.
fn dribble(b: &[u8]) -> Vec<&[u8]> {
    let mut sizes = [1usize, 7, 2, 16, 3, 11, 5, 13].iter().cycle();
    let mut rest = b;
    let mut v = Vec::new();
    while !rest.is_empty() {
        let (a, r) = rest.split_at((*sizes.next().unwrap()).min(rest.len()));
        v.push(a);
        rest = r;
    }
    v
}

/// A request head of about `size` bytes: one long header and many short.
fn long_request(size: usize) -> String {
    let mut req = HEAD.to_string();
    req.push_str(&format!("X-Long: {}\r\n", "a".repeat(size / 2)));
    let mut i = 0;
    while req.len() < size {
        req.push_str(&format!("X-{i}: {}\r\n", "b".repeat(40)));
        i += 1;
    }
    req + "\r\n"
}

/// tungstenite RUSTSEC-2023-0065: a long handshake dribbled in small
/// writes must cost linear time, and with the default limits is refused
/// with 431 at 16 KiB.
#[tokio::test]
async fn rustsec_2023_0065_tungstenite_quadratic_header_parsing() {
    let req = long_request(256 << 10);
    let n_headers = req.matches("\r\n").count() - 2;
    let (a, b) = tokio::io::duplex(4096);
    let config = Config::default()
        .max_handshake_size(1 << 20)
        .max_headers(10_000)
        .handshake_timeout(None);
    let start = Instant::now();
    let server = tokio::spawn(async move {
        ws_tokio::accept_with(a, config, move |r| {
            assert_eq!(r.headers().len(), n_headers);
            Ok(Accept::new())
        })
        .await
    });
    let (rb, mut wb) = tokio::io::split(b);
    for piece in dribble(req.as_bytes()) {
        wb.write_all(piece).await.unwrap();
    }
    let ws = server.await.unwrap().expect("accepted");
    assert!(start.elapsed() < BUDGET, "{:?}", start.elapsed());
    drop(ws);
    let resp = read_to_end(rb).await;
    assert!(resp.starts_with(b"HTTP/1.1 101 "));

    // Default limits: 431 once 16 KiB arrived, whatever follows.
    let (a, b) = tokio::io::duplex(4096);
    let server = tokio::spawn(async move { ws_tokio::accept(a).await });
    let (rb, mut wb) = tokio::io::split(b);
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        for piece in dribble(req.as_bytes()) {
            if wb.write_all(piece).await.is_err() {
                break;
            }
            sent += piece.len();
        }
        sent
    });
    let resp = read_to_end(rb).await;
    assert!(resp.starts_with(b"HTTP/1.1 431 "), "{resp:?}");
    match server.await.unwrap() {
        Err(Error::Handshake(HandshakeError::TooLarge)) => {}
        other => panic!("{other:?}"),
    }
    let sent = writer.await.unwrap();
    assert!(sent < 64 << 10, "the server read {sent} bytes");
}

/// A server connection over one end of a pipe, the raw peer on the other.
fn raw_server(config: Config) -> (WebSocket<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
    let (a, b) = tokio::io::duplex(64 << 10);
    (WebSocket::from_connection(a, Connection::server(config)), b)
}

/// rust-websocket RUSTSEC-2022-0035: a header declaring 2^62 bytes must
/// not allocate them. The peer gets 1009, the application the error.
#[tokio::test]
async fn rustsec_2022_0035_websocket_declared_length_2_pow_62() {
    let (mut ws, b) = raw_server(Config::default());
    let (rb, mut wb) = tokio::io::split(b);
    let peer = tokio::spawn(async move {
        wb.write_all(&header(0x82, 1 << 62)).await.unwrap();
        let got = read_to_end(rb).await; // our close, then our FIN
        drop(wb);
        got
    });
    match ws.recv().await {
        Some(Err(Error::Protocol(ProtocolError::FrameTooLarge))) => {}
        other => panic!("{other:?}"),
    }
    assert!(ws.recv().await.is_none());
    assert_eq!(close_code(&peer.await.unwrap()), Some(1009));

    // With the limits off the frame is legal: we wait for its payload
    // with a bounded buffer; the peer sends 1 MiB and vanishes.
    let open = Config::default()
        .max_frame_size(usize::MAX)
        .max_message_size(usize::MAX);
    let (mut ws, b) = raw_server(open);
    let peer = tokio::spawn(async move {
        let (_rb, mut wb) = tokio::io::split(b);
        wb.write_all(&header(0x82, 1 << 62)).await.unwrap();
        wb.write_all(&vec![0x55; 1 << 20]).await.unwrap();
    });
    match ws.recv().await {
        Some(Err(Error::Closed(info))) => assert_eq!(info.ending, ws_proto::Ending::Abnormal),
        other => panic!("{other:?}"),
    }
    assert_eq!(ws.buffered_amount(), 0);
    peer.await.unwrap();
}

/// ws-rs RUSTSEC-2020-0043, pings: a peer floods pings and never reads.
/// We keep reading (pongs beyond 64 KiB are coalesced by the core), and
/// what waits to be written stays small.
#[tokio::test]
async fn rustsec_2020_0043_ws_rs_ping_flood_unbounded_queue() {
    let (mut ws, b) = raw_server(Config::default());
    let (rb, mut wb) = tokio::io::split(b);
    let n = 20_000u32;
    let flood = tokio::spawn(async move {
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend(masked(0x89, &i.to_be_bytes().repeat(31)));
            if batch.len() > 16 << 10 || i + 1 == n {
                wb.write_all(&batch).await.unwrap();
                batch.clear();
            }
        }
        wb.shutdown().await.unwrap();
        wb
    });
    let start = Instant::now();
    let mut pings = 0;
    let mut max_buffered = 0;
    loop {
        match ws.recv().await {
            Some(Ok(Message::Ping(_))) => {
                pings += 1;
                max_buffered = max_buffered.max(ws.buffered_amount());
            }
            Some(Err(Error::Closed(_))) | None => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pings, n);
    assert!(start.elapsed() < BUDGET);
    // The core's coalesced queue plus one batch being written.
    assert!(max_buffered <= 192 << 10, "{max_buffered} bytes waited");
    let _wb = flood.await.unwrap();
    drop(rb);
}

/// ws-rs RUSTSEC-2020-0043, echoes: a peer sends messages to an echo
/// server and never reads the answers. The adapter stops reading once
/// 1 MiB waits to be written, so the peer's writes stall instead of our
/// memory growing.
#[tokio::test(start_paused = true)]
async fn rustsec_2020_0043_ws_rs_echo_flood_stops_reading() {
    let (mut ws, b) = raw_server(Config::default());
    let max = Arc::new(AtomicUsize::new(0));
    let seen = max.clone();
    let server = tokio::spawn(async move {
        while let Some(Ok(m)) = ws.recv().await {
            if m.is_data() {
                ws.feed(m).unwrap();
                seen.fetch_max(ws.buffered_amount(), Ordering::Relaxed);
            }
        }
    });
    let (rb, mut wb) = tokio::io::split(b);
    let msg = masked(0x82, &[0xab; 64 << 10]);
    let mut sent = 0usize;
    loop {
        // Virtual time: the timeout fires only once every task is stuck.
        match tokio::time::timeout(Duration::from_secs(5), wb.write_all(&msg)).await {
            Ok(Ok(())) => sent += msg.len(),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
        assert!(sent < 64 << 20, "the server never stopped reading");
    }
    let max = max.load(Ordering::Relaxed);
    // It pauses near 1 MiB (counting the write buffer it is working
    // through), not at the first blocked write.
    assert!(max > 768 << 10, "stopped early at {max}");
    assert!(max <= (1 << 20) + (256 << 10), "{max} bytes waited");
    // What it took: the paused backlog, the two pipe buffers, one read.
    assert!(sent <= (2 << 20) + (256 << 10), "{sent} bytes accepted");
    // The peer goes away: the server ends.
    drop((rb, wb));
    server.await.unwrap();
}

/// Node ws CVE-2021-32640: `Sec-WebSocket-Protocol` with many spaces
/// must split in linear time; our own client offering such a value gets
/// the subprotocol the server picks.
#[tokio::test]
async fn cve_2021_32640_ws_redos_sec_websocket_protocol() {
    let value = format!("a{}b, c", " ".repeat(256 << 10));
    let (a, b) = tokio::io::duplex(64 << 10);
    let config = Config::default()
        .max_handshake_size(1 << 20)
        .handshake_timeout(None);
    let start = Instant::now();
    let server = tokio::spawn(async move {
        ws_tokio::accept_with(a, config, |r| {
            assert!(r.headers().contains_key("sec-websocket-protocol"));
            Ok(Accept::new().protocol("c"))
        })
        .await
    });
    let req = http::Request::get("ws://localhost/")
        .header("Sec-WebSocket-Protocol", value)
        .body(())
        .unwrap();
    let (_client, resp) = ws_tokio::client_handshake(b, req, Config::default())
        .await
        .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "c");
    server.await.unwrap().unwrap();
    assert!(start.elapsed() < BUDGET, "{:?}", start.elapsed());
}

fn many_headers(n: usize) -> String {
    let mut req = HEAD.to_string();
    for i in 0..n {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req + "\r\n"
}

/// Node ws CVE-2024-37890: thousands of headers crashed the server. Ours
/// answers 431 and keeps serving.
#[tokio::test]
async fn cve_2024_37890_ws_too_many_headers() {
    let req = many_headers(10_000);
    for (config, expected) in [
        (Config::default(), HandshakeError::TooLarge),
        (
            Config::default().max_handshake_size(1 << 20),
            HandshakeError::TooManyHeaders,
        ),
    ] {
        let (a, b) = tokio::io::duplex(64 << 10);
        let server =
            tokio::spawn(
                async move { ws_tokio::accept_with(a, config, |_| Ok(Accept::new())).await },
            );
        let (rb, mut wb) = tokio::io::split(b);
        let r = req.clone();
        let writer = tokio::spawn(async move {
            let _ = wb.write_all(r.as_bytes()).await;
            wb
        });
        let resp = read_to_end(rb).await;
        assert!(resp.starts_with(b"HTTP/1.1 431 "), "{resp:?}");
        match server.await.unwrap() {
            Err(Error::Handshake(e)) => assert_eq!(e, expected),
            other => panic!("{other:?}"),
        }
        drop(writer.await.unwrap());
    }

    // Over TCP: the server refuses the first connection and serves the
    // next one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let first = ws_tokio::accept_tcp(&listener).await;
        assert!(matches!(first, Err(Error::Handshake(_))), "{first:?}");
        let (mut ws, _) = ws_tokio::accept_tcp(&listener).await.unwrap();
        while let Some(Ok(m)) = ws.recv().await {
            if m.is_data() {
                ws.send(m).await.unwrap();
            }
        }
    });
    let mut attacker = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = attacker.write_all(req.as_bytes()).await;
    let mut first = [0u8; 12];
    // The 431 may be lost to a reset (we close with unread input), so
    // only wait for the end.
    let _ = attacker.read(&mut first).await;
    drop(attacker);
    let (mut ws, _) = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    ws.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("still here")
    );
    ws.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    while ws.recv().await.is_some() {}
    server.await.unwrap();
}

/// Floods of empty continuation frames: 1009 at the first fragment over
/// `max_fragments`, in bounded time.
#[tokio::test]
async fn continuation_flood_empty_fragments_1009() {
    let (mut ws, b) = raw_server(Config::default());
    let (rb, mut wb) = tokio::io::split(b);
    let start = Instant::now();
    let peer = tokio::spawn(async move {
        let mut flood = masked(0x02, b"");
        let one = masked(0x00, b"");
        for _ in 0..200_000 {
            flood.extend_from_slice(&one);
        }
        let reader = tokio::spawn(read_to_end(rb));
        let _ = wb.write_all(&flood).await;
        let _ = wb.shutdown().await;
        let got = reader.await.unwrap();
        drop(wb);
        got
    });
    match ws.recv().await {
        Some(Err(Error::Protocol(ProtocolError::TooManyFragments))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(close_code(&peer.await.unwrap()), Some(1009));
    assert!(start.elapsed() < BUDGET);
}

/// Python websockets CVE-2018-1000518: a decompression bomb. With
/// permessage-deflate negotiated by the handshakes, our client compresses
/// 16 MiB of zeros into a few KiB; the server, limited to 1 MiB, fails
/// the connection with 1009 instead of inflating it.
#[tokio::test]
async fn cve_2018_1000518_websockets_decompression_bomb() {
    let (a, b) = tokio::io::duplex(64 << 10);
    let server_config = Config::default()
        .deflate(Some(DeflateConfig::default()))
        .max_message_size(1 << 20);
    let server = tokio::spawn(async move {
        let mut ws = ws_tokio::accept_with(a, server_config, |_| Ok(Accept::new()))
            .await
            .unwrap();
        assert!(ws.connection().deflate().is_some());
        ws.recv().await
    });
    let req = http::Request::get("ws://localhost/").body(()).unwrap();
    let config = Config::default().deflate(Some(DeflateConfig::default()));
    let (mut c, _) = ws_tokio::client_handshake(b, req, config).await.unwrap();
    assert!(c.connection().deflate().is_some());
    let start = Instant::now();
    c.send(Message::binary(vec![0u8; 16 << 20])).await.unwrap();
    match c.recv().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code.0, 1009),
        other => panic!("{other:?}"),
    }
    assert!(c.recv().await.is_none());
    drop(c);
    match server.await.unwrap() {
        Some(Err(Error::Protocol(ProtocolError::MessageTooLarge))) => {}
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < BUDGET);
}

/// Runs a client through the handshake against a raw server and returns
/// its `Sec-WebSocket-Key` and the mask keys of `n` frames it sends.
async fn client_keys(n: usize) -> (String, Vec<[u8; 4]>) {
    let (a, mut b) = tokio::io::duplex(64 << 10);
    let client = tokio::spawn(async move {
        let req = http::Request::get("ws://localhost/").body(()).unwrap();
        let (mut ws, _) = ws_tokio::client_handshake(a, req, Config::default())
            .await
            .unwrap();
        for i in 0..n {
            ws.send(Message::binary(vec![i as u8])).await.unwrap();
        }
        ws
    });
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    let mut buf = vec![0u8; 4096];
    let req = loop {
        let k = b.read(&mut buf).await.unwrap();
        if let Some(r) = hs.handle_input(&buf[..k]).unwrap() {
            break r;
        }
    };
    let key = req.headers()["sec-websocket-key"]
        .to_str()
        .unwrap()
        .to_string();
    let mut conn = hs.accept(Instant::now(), None, &HeaderMap::new()).unwrap();
    let mut out = Vec::new();
    while let Some(Transmit::Data) = conn.poll_transmit(&mut out) {}
    b.write_all(&out).await.unwrap();
    let mut got = Vec::new();
    while frames(&got).len() < n {
        let k = b.read(&mut buf).await.unwrap();
        assert!(k > 0);
        got.extend_from_slice(&buf[..k]);
    }
    drop(client.await.unwrap());
    let keys = frames(&got)
        .into_iter()
        .map(|(_, _, m)| m.expect("masked"))
        .collect();
    (key, keys)
}

/// gorilla/websocket GHSA-w67g-5rqw-f597: predictable mask keys. Each
/// connection the adapter opens is seeded from the OS: keys and nonces
/// differ between connections and do not repeat within one.
#[tokio::test]
async fn ghsa_w67g_5rqw_f597_gorilla_predictable_mask_keys() {
    let (key1, masks1) = client_keys(256).await;
    let (key2, masks2) = client_keys(256).await;
    assert_ne!(key1, key2);
    let distinct = |m: &[[u8; 4]]| m.iter().collect::<std::collections::HashSet<_>>().len();
    assert!(distinct(&masks1) >= 255);
    assert!(distinct(&masks2) >= 255);
    let same = masks1.iter().zip(&masks2).filter(|(a, b)| a == b).count();
    assert!(same <= 1, "{same} equal keys at the same position");
    assert!(masks1.iter().all(|k| *k != [0; 4]));
}

//! permessage-deflate (RFC 7692) end to end: negotiation through the real
//! handshake objects, RFC 7692 §7.2.3 vectors through a `Connection`,
//! round trips for every parameter combination, bombs and RSV1 misuse.

mod util;

use std::time::Instant;
use util::*;
use ws_proto::http::{self, HeaderMap};
use ws_proto::{
    ClientHandshake, Config, Connection, DataKind, DeflateConfig, DeflateParams, Ending, Event,
    HandshakeError, Message, OpCode, ProtocolError, Role, ServerHandshake, Transmit,
};

/// Compressible text of `len` bytes (ASCII, so any cut is valid UTF-8).
fn text(len: usize, seed: u32) -> String {
    let words = [
        "lorem ",
        "ipsum ",
        "dolor ",
        "sit ",
        "amet ",
        "consectetur ",
        "adipiscing ",
    ];
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s.push_str(words[(x % 7) as usize]);
        if x % 11 == 0 {
            s.push_str(&(x % 1000).to_string());
        }
    }
    s.truncate(len);
    s
}

fn binary(len: usize, seed: u32) -> Vec<u8> {
    let mut v = text(len, seed).into_bytes();
    for (i, b) in v.iter_mut().enumerate().step_by(97) {
        *b = (i % 251) as u8;
    }
    v
}

/// A client and a server after a real handshake, with the response the
/// client saw.
struct Ends {
    client: Connection,
    server: Connection,
    response: http::Response<()>,
}

fn handshake(client: Config, server: Config) -> Ends {
    handshake_with(client, server, |_| {})
}

/// Like `handshake`, letting `edit` change the request bytes.
fn handshake_with(client: Config, server: Config, edit: impl FnOnce(&mut Vec<u8>)) -> Ends {
    let now = Instant::now();
    let req = http::Request::get("ws://example.com/").body(()).unwrap();
    let mut chs = ClientHandshake::new(now, req, client, seed(3)).unwrap();
    let mut to_server = Vec::new();
    assert_eq!(chs.poll_transmit(&mut to_server), Some(Transmit::Data));
    edit(&mut to_server);
    let mut shs = ServerHandshake::new(now, server);
    shs.handle_input(&to_server).unwrap().unwrap();
    let mut server = shs.accept(now, None, &HeaderMap::new()).unwrap();
    let (to_client, _) = drain_transmit(&mut server);
    assert!(chs.handle_input(&to_client).unwrap());
    let (response, client) = chs.into_connection(now).unwrap();
    Ends {
        client,
        server,
        response,
    }
}

fn extensions(r: &http::Response<()>) -> Option<String> {
    r.headers()
        .get("sec-websocket-extensions")
        .map(|v| v.to_str().unwrap().to_string())
}

/// Moves everything `from` wrote to `to`, in pieces of `chunk` bytes;
/// returns the frames on the wire and the events of `to`.
fn pass(from: &mut Connection, to: &mut Connection, chunk: usize) -> (Vec<Decoded>, Vec<Event>) {
    let (bytes, _) = drain_transmit(from);
    let frames = decode_frames(&bytes);
    for piece in bytes.chunks(chunk.max(1)) {
        to.handle_input(Instant::now(), piece);
    }
    (frames, drain_events(to))
}

fn deflate_conn(role: Role, config: Config, params: DeflateParams) -> Connection {
    match role {
        Role::Client => Connection::client(config, seed(5)),
        Role::Server => Connection::server(config),
    }
    .with_deflate(params)
}

// ------------------------------------------------------------ negotiation --

#[test]
fn off_by_default() {
    let e = handshake(Config::default(), Config::default());
    assert_eq!(extensions(&e.response), None);
    assert!(e.client.deflate().is_none() && e.server.deflate().is_none());
}

#[test]
fn server_without_deflate_ignores_the_offer() {
    let on = Config::default().deflate(Some(DeflateConfig::default()));
    let mut e = handshake(on, Config::default());
    assert_eq!(extensions(&e.response), None);
    assert!(e.client.deflate().is_none());
    // Messages flow uncompressed.
    e.client.send_text(text(5000, 1)).unwrap();
    let (frames, events) = pass(&mut e.client, &mut e.server, usize::MAX);
    assert_eq!(frames[0].rsv, 0);
    assert_eq!(events, vec![Event::Text(text(5000, 1).into())]);
}

#[test]
fn client_without_deflate_is_not_answered_with_it() {
    let on = Config::default().deflate(Some(DeflateConfig::default()));
    let e = handshake(Config::default(), on);
    assert_eq!(extensions(&e.response), None);
    assert!(e.server.deflate().is_none());
}

#[test]
fn default_negotiation() {
    let on = Config::default().deflate(Some(DeflateConfig::default()));
    let e = handshake(on.clone(), on);
    assert_eq!(
        extensions(&e.response).as_deref(),
        Some("permessage-deflate")
    );
    assert_eq!(e.client.deflate(), Some(&DeflateParams::default()));
    assert_eq!(e.server.deflate(), Some(&DeflateParams::default()));
}

#[test]
fn client_offer_replaces_a_user_extension_header() {
    let now = Instant::now();
    let req = http::Request::get("ws://example.com/")
        .header("Sec-WebSocket-Extensions", "x-custom")
        .body(())
        .unwrap();
    let cfg = Config::default().deflate(Some(DeflateConfig::default().server_max_window_bits(10)));
    let mut chs = ClientHandshake::new(now, req, cfg, seed(1)).unwrap();
    let mut out = Vec::new();
    let _ = chs.poll_transmit(&mut out);
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits\r\n"
        ),
        "{s}"
    );
    assert!(!s.contains("x-custom"), "{s}");
}

#[test]
fn server_answer_for_offers() {
    // The server's answer, seen as the raw 101 response.
    let on = Config::default().deflate(Some(DeflateConfig::default().client_max_window_bits(10)));
    for (offers, answer, params) in [
        (
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=11, permessage-deflate",
            Some("permessage-deflate; server_max_window_bits=11; client_max_window_bits=10"),
            Some((11, 10)),
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover"),
            Some((15, 15)),
        ),
        ("permessage-deflate; server_max_window_bits=16", None, None),
        ("permessage-deflate; client_max_window_bits=8; client_max_window_bits=8", None, None),
        ("x-foo", None, None),
    ] {
        let now = Instant::now();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: {offers}\r\n\r\n"
        );
        let mut shs = ServerHandshake::new(now, on.clone());
        shs.handle_input(req.as_bytes()).unwrap().unwrap();
        assert_eq!(
            shs.deflate()
                .map(|p| (p.local_max_window_bits, p.remote_max_window_bits)),
            params,
            "{offers}"
        );
        let mut conn = shs.accept(now, None, &HeaderMap::new()).unwrap();
        let (out, _) = drain_transmit(&mut conn);
        let head = String::from_utf8(out).unwrap();
        match answer {
            Some(a) => assert!(
                head.contains(&format!("\r\nSec-WebSocket-Extensions: {a}\r\n")),
                "{head}"
            ),
            None => assert!(!head.to_ascii_lowercase().contains("extensions"), "{head}"),
        }
        assert_eq!(conn.deflate().is_some(), answer.is_some());
    }
}

#[test]
fn user_extension_header_is_dropped_when_negotiated() {
    let on = Config::default().deflate(Some(DeflateConfig::default()));
    let now = Instant::now();
    let req = http::Request::get("ws://x/").body(()).unwrap();
    let mut chs = ClientHandshake::new(now, req, on.clone(), seed(2)).unwrap();
    let mut to_server = Vec::new();
    let _ = chs.poll_transmit(&mut to_server);
    let mut shs = ServerHandshake::new(now, on);
    shs.handle_input(&to_server).unwrap().unwrap();
    let mut extra = HeaderMap::new();
    extra.insert("sec-websocket-extensions", "x-other".parse().unwrap());
    extra.insert("x-note", "kept".parse().unwrap());
    let mut server = shs.accept(now, None, &extra).unwrap();
    let (to_client, _) = drain_transmit(&mut server);
    let head = String::from_utf8_lossy(&to_client).to_string();
    assert!(
        !head.contains("x-other") && head.contains("x-note: kept"),
        "{head}"
    );
    assert!(chs.handle_input(&to_client).unwrap());
}

/// Feeds a hand-written 101 response carrying `ext` to a client that
/// offered `cfg`.
fn client_sees(cfg: DeflateConfig, ext: &str) -> Result<Option<DeflateParams>, HandshakeError> {
    let now = Instant::now();
    let req = http::Request::get("ws://x/")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    let mut chs =
        ClientHandshake::new(now, req, Config::default().deflate(Some(cfg)), seed(1)).unwrap();
    let mut out = Vec::new();
    let _ = chs.poll_transmit(&mut out);
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: {ext}\r\n\r\n"
    );
    chs.handle_input(resp.as_bytes())?;
    let (_, conn) = chs.into_connection(now).unwrap();
    Ok(conn.deflate().copied())
}

#[test]
fn client_validates_the_response() {
    let d = DeflateConfig::default;
    assert_eq!(
        client_sees(
            d(),
            "permessage-deflate; client_max_window_bits=9; server_no_context_takeover"
        )
        .unwrap()
        .map(|p| (p.local_max_window_bits, p.remote_no_context_takeover)),
        Some((9, true))
    );
    for (cfg, bad) in [
        (d(), "permessage-deflate; client_max_window_bits"),
        (d(), "permessage-deflate; client_max_window_bits=16"),
        (d(), "permessage-deflate; server_max_window_bits=7"),
        (d(), "permessage-deflate; foo"),
        (
            d(),
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ),
        (d(), "permessage-deflate, permessage-deflate"),
        (d(), "x-webkit-deflate-frame"),
        (
            d().server_max_window_bits(10),
            "permessage-deflate; server_max_window_bits=12",
        ),
        (d().server_max_window_bits(10), "permessage-deflate"),
        (d().server_no_context_takeover(true), "permessage-deflate"),
        (
            d().client_max_window_bits(9),
            "permessage-deflate; client_max_window_bits=10",
        ),
    ] {
        match client_sees(cfg, bad) {
            Err(HandshakeError::BadResponse(_)) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
}

// ------------------------------------------------- RFC 7692 §7.2.3 vectors --

/// (frames as the server sends them, text they carry)
fn rfc_vectors() -> Vec<(Vec<Vec<u8>>, Vec<&'static str>)> {
    vec![
        // §7.2.3.1: "Hello" in one frame, and in two fragments.
        (
            vec![vec![0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]],
            vec!["Hello"],
        ),
        (
            vec![
                vec![0x41, 0x03, 0xf2, 0x48, 0xcd],
                vec![0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00],
            ],
            vec!["Hello"],
        ),
        // §7.2.3.2: the second message refers to the first.
        (
            vec![
                vec![0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                vec![0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00],
            ],
            vec!["Hello", "Hello"],
        ),
        // §7.2.3.3: a stored block.
        (
            vec![vec![
                0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ]],
            vec!["Hello"],
        ),
        // §7.2.3.4: a block with BFINAL set, then a message using the window.
        (
            vec![
                vec![0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
                vec![0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00],
            ],
            vec!["Hello", "Hello"],
        ),
        // §7.2.3.5: two blocks in one message.
        (
            vec![vec![
                0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07,
                0x00,
            ]],
            vec!["Hello"],
        ),
        // §7.2.3.6: an empty message, and an empty payload.
        (vec![vec![0xc1, 0x01, 0x00]], vec![""]),
        (vec![vec![0xc1, 0x00]], vec![""]),
    ]
}

#[test]
fn rfc7692_vectors_received_by_a_client() {
    for (frames, texts) in rfc_vectors() {
        let wire: Vec<u8> = frames.concat();
        // Whole, and byte by byte (inflating partial frames).
        for chunk in [usize::MAX, 1] {
            let mut c = deflate_conn(Role::Client, Config::default(), DeflateParams::default());
            for piece in wire.chunks(chunk.min(wire.len())) {
                c.handle_input(Instant::now(), piece);
            }
            let got = drain_events(&mut c);
            let want: Vec<Event> = texts.iter().map(|t| Event::Text((*t).into())).collect();
            assert_eq!(got, want, "{frames:02x?} chunk {chunk}");
        }
    }
}

#[test]
fn rfc7692_vectors_received_by_a_server() {
    for (frames, texts) in rfc_vectors() {
        // The same frames, masked as a client sends them.
        let wire: Vec<u8> = frames
            .iter()
            .flat_map(|f| {
                let (h, n) = ws_proto::FrameHeader::decode(f).unwrap().unwrap();
                let b0 = f[0];
                assert_eq!(h.len as usize, f.len() - n);
                cframe(b0, &f[n..])
            })
            .collect();
        let mut s = deflate_conn(Role::Server, Config::default(), DeflateParams::default());
        s.handle_input(Instant::now(), &wire);
        let want: Vec<Event> = texts.iter().map(|t| Event::Text((*t).into())).collect();
        assert_eq!(drain_events(&mut s), want, "{frames:02x?}");
    }
}

#[test]
fn rfc7692_hello_is_what_we_send() {
    // §7.2.3.1 from the sending side (threshold 0 so "Hello" is compressed).
    let cfg = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let mut s = deflate_conn(Role::Server, cfg, DeflateParams::default());
    s.send_text("Hello").unwrap();
    let (out, _) = drain_transmit(&mut s);
    assert_eq!(out, [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
}

// ------------------------------------------------------------ round trips --

fn check_pair_params(e: &Ends) {
    let (c, s) = (e.client.deflate().unwrap(), e.server.deflate().unwrap());
    assert_eq!(c.local_max_window_bits, s.remote_max_window_bits);
    assert_eq!(s.local_max_window_bits, c.remote_max_window_bits);
    assert_eq!(c.local_no_context_takeover, s.remote_no_context_takeover);
    assert_eq!(s.local_no_context_takeover, c.remote_no_context_takeover);
}

const SIZES: [usize; 6] = [0, 10, 1024, 4000, 20_000, 70_000];

/// Sends every size of both kinds from each side, twice (so context
/// takeover matters), and checks what arrives and that big messages were
/// compressed.
fn exchange(e: &mut Ends, chunk: usize) {
    for round in 0..2u32 {
        for (i, &len) in SIZES.iter().enumerate() {
            for from in [Role::Client, Role::Server] {
                let seed = round * 100 + len as u32;
                let (msg, want) = if (i + round as usize) % 2 == 0 {
                    let t = text(len, seed);
                    (Event::Text(t.clone().into()), Event::Text(t.into()))
                } else {
                    let b = binary(len, seed);
                    (Event::Binary(b.clone().into()), Event::Binary(b.into()))
                };
                let (tx, rx) = match from {
                    Role::Client => (&mut e.client, &mut e.server),
                    Role::Server => (&mut e.server, &mut e.client),
                };
                match msg {
                    Event::Text(t) => tx.send_text(t).unwrap(),
                    Event::Binary(b) => tx.send_binary(b).unwrap(),
                    _ => unreachable!(),
                }
                let (frames, events) = pass(tx, rx, chunk);
                assert_eq!(frames.len(), 1);
                let compressed = frames[0].rsv == 4;
                assert_eq!(compressed, len >= 1024, "{from:?} {len}");
                if len >= 4000 {
                    assert!(frames[0].payload.len() < len / 2, "{from:?} {len}");
                }
                assert_eq!(events.len(), 1, "{from:?} {len}");
                assert!(events[0] == want, "{from:?} {len}: wrong payload");
            }
        }
    }
}

#[test]
fn round_trip_every_parameter_combination() {
    let mut n = 0;
    for cbits in 8..=15u8 {
        for sbits in 8..=15u8 {
            for cnct in [false, true] {
                for snct in [false, true] {
                    // Alternate who asks for the limits: the client's offer
                    // or the server's own settings.
                    let limits = DeflateConfig::default()
                        .client_max_window_bits(cbits)
                        .server_max_window_bits(sbits)
                        .client_no_context_takeover(cnct)
                        .server_no_context_takeover(snct);
                    let plain = DeflateConfig::default();
                    let (c, s) = if n % 2 == 0 {
                        (limits, plain)
                    } else {
                        (plain, limits)
                    };
                    let mut e = handshake(
                        Config::default().deflate(Some(c)),
                        Config::default().deflate(Some(s)),
                    );
                    check_pair_params(&e);
                    let p = *e.client.deflate().unwrap();
                    assert_eq!(
                        (p.local_max_window_bits, p.remote_max_window_bits),
                        (cbits, sbits),
                        "{:?}",
                        extensions(&e.response)
                    );
                    assert_eq!(
                        (p.local_no_context_takeover, p.remote_no_context_takeover),
                        (cnct, snct)
                    );
                    // Some in small reads, inflating partial frames.
                    exchange(&mut e, if n % 3 == 0 { 1000 } else { usize::MAX });
                    n += 1;
                }
            }
        }
    }
}

#[test]
fn round_trip_with_context_takeover_in_small_reads() {
    let on = Config::default().deflate(Some(DeflateConfig::default()));
    let mut e = handshake(on.clone(), on);
    exchange(&mut e, 7);
}

#[test]
fn many_messages_share_the_context() {
    let on = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let mut e = handshake(on.clone(), on);
    let msg = text(2000, 42);
    let mut sizes = Vec::new();
    for _ in 0..5 {
        e.client.send_text(msg.clone()).unwrap();
        let (frames, events) = pass(&mut e.client, &mut e.server, usize::MAX);
        sizes.push(frames[0].payload.len());
        assert_eq!(events, vec![Event::Text(msg.clone().into())]);
    }
    // Repeats of the same message cost a few bytes with context takeover.
    assert!(sizes[1] < 100 && sizes[4] < 100, "{sizes:?}");
}

#[test]
fn fragmented_send_is_one_compressed_stream() {
    let on = Config::default().deflate(Some(DeflateConfig::default()));
    let mut e = handshake(on.clone(), on);
    let msg = text(30_000, 8);
    let pieces: Vec<&str> = vec![
        &msg[..2000],
        &msg[2000..2000],
        &msg[2000..25_000],
        &msg[25_000..],
    ];
    for (i, p) in pieces.iter().enumerate() {
        e.client
            .send_fragment(DataKind::Text, p.as_bytes().to_vec(), i == pieces.len() - 1)
            .unwrap();
    }
    let (frames, events) = pass(&mut e.client, &mut e.server, 333);
    assert_eq!(
        frames
            .iter()
            .map(|f| (f.rsv, f.opcode, f.fin))
            .collect::<Vec<_>>(),
        vec![
            (4, OpCode::Text, false),
            (0, OpCode::Continuation, false),
            (0, OpCode::Continuation, false),
            (0, OpCode::Continuation, true),
        ]
    );
    assert!(frames.iter().map(|f| f.payload.len()).sum::<usize>() < 15_000);
    assert_eq!(events, vec![Event::Text(msg.clone().into())]);
    // A first fragment under the threshold sends the message uncompressed,
    // and `send_fragment_with(.., false)` opts out.
    e.server
        .send_fragment(DataKind::Binary, vec![1u8; 10], false)
        .unwrap();
    e.server
        .send_fragment(DataKind::Binary, vec![2u8; 5000], true)
        .unwrap();
    e.server
        .send_fragment_with(DataKind::Binary, vec![3u8; 5000], true, false)
        .unwrap();
    let (frames, events) = pass(&mut e.server, &mut e.client, usize::MAX);
    assert!(frames.iter().all(|f| f.rsv == 0));
    assert_eq!(events.len(), 2);
    // And the context still works afterwards.
    e.client.send_text(msg.clone()).unwrap();
    let (frames, events) = pass(&mut e.client, &mut e.server, usize::MAX);
    assert_eq!(frames[0].rsv, 4);
    assert!(
        frames[0].payload.len() < 1000,
        "{}",
        frames[0].payload.len()
    );
    assert_eq!(events, vec![Event::Text(msg.into())]);
}

#[test]
fn per_message_opt_out_and_threshold() {
    let on = Config::default().deflate(Some(DeflateConfig::default().threshold(100)));
    let mut e = handshake(on.clone(), on);
    e.client.send_text(text(99, 1)).unwrap();
    e.client.send_text(text(100, 1)).unwrap();
    e.client
        .send_message(DataKind::Binary, binary(5000, 1), false)
        .unwrap();
    e.client
        .send_message(DataKind::Text, text(5000, 1), true)
        .unwrap();
    assert_eq!(
        e.client.send_message(DataKind::Text, vec![0xffu8], true),
        Err(ws_proto::UsageError::InvalidUtf8)
    );
    let (frames, events) = pass(&mut e.client, &mut e.server, usize::MAX);
    assert_eq!(
        frames.iter().map(|f| f.rsv).collect::<Vec<_>>(),
        vec![0, 4, 0, 4]
    );
    assert_eq!(
        events,
        vec![
            Event::Text(text(99, 1).into()),
            Event::Text(text(100, 1).into()),
            Event::Binary(binary(5000, 1).into()),
            Event::Text(text(5000, 1).into()),
        ]
    );
}

#[test]
fn send_with_compress_false_sends_without_rsv1() {
    let on = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let mut e = handshake(on.clone(), on);
    let now = Instant::now();
    for (msg, compress) in [
        (Message::text(text(4000, 3)), false),
        (Message::binary(binary(4000, 3)), false),
        (Message::text(text(4000, 3)), true),
        (Message::binary(binary(4000, 3)), true),
        (Message::Ping(b"p".to_vec().into()), false),
    ] {
        e.server.send_with(now, msg, compress).unwrap();
    }
    let (frames, events) = pass(&mut e.server, &mut e.client, usize::MAX);
    assert_eq!(
        frames.iter().map(|f| f.rsv).collect::<Vec<_>>(),
        vec![0, 0, 4, 4, 0]
    );
    assert!(frames[2].payload.len() < 4000 && frames[3].payload.len() < 4000);
    assert_eq!(events[0], Event::Text(text(4000, 3).into()));
    assert_eq!(events[1], Event::Binary(binary(4000, 3).into()));
    assert_eq!(events[2], Event::Text(text(4000, 3).into()));
    assert_eq!(events[3], Event::Binary(binary(4000, 3).into()));
    // A fragmented message in progress refuses whole messages, as `send` does.
    e.client
        .send_fragment(DataKind::Binary, vec![1u8; 10], false)
        .unwrap();
    assert_eq!(
        e.client.send_with(now, Message::binary(vec![2u8]), false),
        Err(ws_proto::UsageError::FragmentedMessageInProgress)
    );
}

#[test]
fn threshold_max_never_compresses_but_still_inflates() {
    let off = Config::default().deflate(Some(DeflateConfig::default().threshold(usize::MAX)));
    let on = Config::default().deflate(Some(DeflateConfig::default()));
    let mut e = handshake(off, on);
    e.client.send_text(text(50_000, 2)).unwrap();
    let (frames, _) = pass(&mut e.client, &mut e.server, usize::MAX);
    assert_eq!(frames[0].rsv, 0);
    e.server.send_text(text(50_000, 2)).unwrap();
    let (frames, events) = pass(&mut e.server, &mut e.client, usize::MAX);
    assert_eq!(frames[0].rsv, 4);
    assert_eq!(events, vec![Event::Text(text(50_000, 2).into())]);
}

// -------------------------------------------------------- hostile input --

/// Writes bits LSB first, as DEFLATE does.
struct BitWriter {
    out: Vec<u8>,
    nbits: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            out: Vec::new(),
            nbits: 0,
        }
    }
    fn bits(&mut self, v: u32, n: u32) {
        for i in 0..n {
            if self.nbits % 8 == 0 {
                self.out.push(0);
            }
            let b = (v >> i) & 1;
            *self.out.last_mut().unwrap() |= (b as u8) << (self.nbits % 8);
            self.nbits += 1;
        }
    }
    /// A Huffman code, most significant bit first.
    fn code(&mut self, c: u32, n: u32) {
        for i in (0..n).rev() {
            self.bits((c >> i) & 1, 1);
        }
    }
}

/// A fixed-Huffman block: one zero byte, then `n` copies of 258 bytes at
/// distance 1 (13 bits each: the densest DEFLATE gets, about 1:1000). The
/// block is left open, as a hostile peer would.
fn bomb(n: usize) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.bits(0, 1); // BFINAL
    w.bits(1, 2); // fixed Huffman
    w.code(0x30, 8); // literal 0
    for _ in 0..n {
        w.code(0xc5, 8); // length symbol 285: 258 bytes
        w.code(0, 5); // distance code 0: distance 1
    }
    w.out
}

#[test]
fn bomb_in_one_small_frame_fails_with_1009() {
    // 1 KiB on the wire, about 160 KiB inflated, against a 64 KiB limit.
    let z = bomb(620);
    assert!(z.len() <= 1024, "{}", z.len());
    for we in [Role::Client, Role::Server] {
        let config = Config::default().max_message_size(64 << 10);
        let mut c = deflate_conn(we, config, DeflateParams::default());
        c.handle_input(Instant::now(), &peer_frame(we, 0xC2, &z));
        let (out, _) = drain_transmit(&mut c);
        let frames = decode_frames(&out);
        assert_eq!(frames.last().unwrap().opcode, OpCode::Close);
        assert_eq!(&frames.last().unwrap().payload[..2], &1009u16.to_be_bytes());
        c.handle_eof(Instant::now());
        let events = drain_events(&mut c);
        assert_eq!(
            the_close(&events).ending,
            Ending::Protocol(ProtocolError::MessageTooLarge)
        );
        assert_eq!(non_close(&events), vec![]);
    }
}

#[test]
fn gigabyte_bomb_is_cut_off_without_inflating_it() {
    // ~6.5 MiB of frames that would inflate to ~1 GiB; with a 1 MiB limit
    // the connection fails after inflating about that much. (Inflating the
    // whole gigabyte would take this test far longer than it does.)
    let z = bomb(4_100_000);
    assert!(z.len() > 6_000_000 && z.len() < 7_000_000, "{}", z.len());
    let config = Config::default().max_message_size(1 << 20);
    let mut c = deflate_conn(Role::Client, config, DeflateParams::default());
    // Split into 64 KiB frames, fed as they would be read.
    let mut wire = Vec::new();
    for (i, piece) in z.chunks(64 << 10).enumerate() {
        let b0 = if i == 0 { 0x42 } else { 0x00 };
        wire.extend(sframe(b0, piece));
    }
    let start = Instant::now();
    for piece in wire.chunks(16 << 10) {
        c.handle_input(Instant::now(), piece);
    }
    assert!(start.elapsed().as_secs() < 20);
    c.handle_eof(Instant::now());
    let events = drain_events(&mut c);
    assert_eq!(
        the_close(&events).ending,
        Ending::Protocol(ProtocolError::MessageTooLarge)
    );
}

#[test]
fn compressed_message_at_the_limit_is_accepted() {
    let limit = 100_000;
    let cfg = Config::default()
        .max_message_size(limit)
        .deflate(Some(DeflateConfig::default()));
    let mut e = handshake(cfg.clone(), cfg);
    e.server.send_binary(binary(limit, 1)).unwrap();
    let (_, events) = pass(&mut e.server, &mut e.client, usize::MAX);
    assert_eq!(events, vec![Event::Binary(binary(limit, 1).into())]);
    e.server.send_binary(binary(limit + 1, 1)).unwrap();
    let (_, events) = pass(&mut e.server, &mut e.client, usize::MAX);
    assert!(events.is_empty());
    let (out, _) = drain_transmit(&mut e.client);
    assert_eq!(&decode_frames(&out)[0].payload[..2], &1009u16.to_be_bytes());
}

/// Frames as (first byte, payload).
type Frames = Vec<(u8, Vec<u8>)>;

#[test]
fn rsv1_misuse_fails_with_1002() {
    let cases: Vec<(&str, Frames)> = vec![
        ("rsv1 on ping", vec![(0xC9, vec![])]),
        ("rsv1 on pong", vec![(0xCA, vec![])]),
        ("rsv1 on close", vec![(0xC8, vec![0x03, 0xe8])]),
        (
            "rsv1 on a continuation",
            vec![
                (0x41, vec![0xf2, 0x48, 0xcd]),
                (0xC0, vec![0xc9, 0xc9, 0x07, 0x00]),
            ],
        ),
        (
            "rsv1 on an uncompressed message's continuation",
            vec![(0x01, b"He".to_vec()), (0xC0, b"llo".to_vec())],
        ),
        ("rsv2", vec![(0xA1, b"Hello".to_vec())]),
        ("rsv3", vec![(0x91, b"Hello".to_vec())]),
        ("rsv1+rsv2", vec![(0xE1, b"Hello".to_vec())]),
    ];
    for we in [Role::Client, Role::Server] {
        for (name, frames) in &cases {
            let bytes: Vec<u8> = frames
                .iter()
                .flat_map(|(b0, p)| peer_frame(we, *b0, p))
                .collect();
            let now = Instant::now();
            let mut c = deflate_conn(we, Config::default(), DeflateParams::default());
            c.handle_input(now, &bytes);
            let (out, _) = drain_transmit(&mut c);
            let close = decode_frames(&out).pop().unwrap();
            assert_eq!(close.opcode, OpCode::Close, "{we:?} {name}");
            assert_eq!(&close.payload[..2], &1002u16.to_be_bytes(), "{we:?} {name}");
        }
        // Without negotiation, RSV1 on a data frame is a protocol error.
        assert_eq!(
            fault_code(
                we,
                Config::default(),
                &peer_frame(we, 0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
            ),
            1002
        );
        // A config with deflate but no negotiation is the same.
        assert_eq!(
            fault_code(
                we,
                Config::default().deflate(Some(DeflateConfig::default())),
                &peer_frame(we, 0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
            ),
            1002
        );
    }
}

#[test]
fn corrupt_compressed_data_fails_with_1007() {
    for we in [Role::Client, Role::Server] {
        for payload in [
            vec![0xff, 0xff, 0xff],
            vec![0x00, 0x05, 0x00, 0x00, 0x00, 1],
        ] {
            let now = Instant::now();
            let mut c = deflate_conn(we, Config::default(), DeflateParams::default());
            c.handle_input(now, &peer_frame(we, 0xC2, &payload));
            let (out, _) = drain_transmit(&mut c);
            let close = decode_frames(&out).pop().unwrap();
            assert_eq!(
                &close.payload[..2],
                &1007u16.to_be_bytes(),
                "{payload:02x?}"
            );
            c.handle_eof(now);
            let events = drain_events(&mut c);
            assert_eq!(
                the_close(&events).ending,
                Ending::Protocol(ProtocolError::InvalidCompressedData)
            );
        }
    }
}

#[test]
fn invalid_utf8_is_found_in_the_inflated_text() {
    // A stored block holding 0xff, as a compressed text message.
    let z = [0x00, 0x01, 0x00, 0xfe, 0xff, 0xff];
    for we in [Role::Client, Role::Server] {
        assert_eq!(fault_code_deflate(we, &peer_frame(we, 0xC1, &z)), 1007);
        // Split across fragments: "é" cut in half is fine ...
        let mut bytes = peer_frame(we, 0x41, &[0x00, 0x01, 0x00, 0xfe, 0xff, 0xc3]);
        bytes.extend(peer_frame(we, 0x80, &[0x00, 0x01, 0x00, 0xfe, 0xff, 0xa9]));
        let mut c = deflate_conn(we, Config::default(), DeflateParams::default());
        c.handle_input(Instant::now(), &bytes);
        assert_eq!(drain_events(&mut c), vec![Event::Text("é".into())]);
        // ... but not at the end of the message.
        let mut bytes = peer_frame(we, 0x41, &[0x00, 0x01, 0x00, 0xfe, 0xff, 0x41]);
        bytes.extend(peer_frame(we, 0x80, &[0x00, 0x01, 0x00, 0xfe, 0xff, 0xc3]));
        assert_eq!(fault_code_deflate(we, &bytes), 1007);
    }
}

/// The close code a deflate connection of `role` sends when fed `bytes`.
fn fault_code_deflate(we: Role, bytes: &[u8]) -> u16 {
    let mut c = deflate_conn(we, Config::default(), DeflateParams::default());
    c.handle_input(Instant::now(), bytes);
    let (out, _) = drain_transmit(&mut c);
    let close = decode_frames(&out).pop().unwrap();
    assert_eq!(close.opcode, OpCode::Close);
    u16::from_be_bytes([close.payload[0], close.payload[1]])
}

#[test]
fn uncompressed_messages_still_work_when_negotiated() {
    for we in [Role::Client, Role::Server] {
        let mut c = deflate_conn(we, Config::default(), DeflateParams::default());
        let mut bytes = peer_frame(we, 0x81, b"plain");
        bytes.extend(peer_frame(
            we,
            0xC1,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        ));
        bytes.extend(peer_frame(we, 0x02, b"a"));
        bytes.extend(peer_frame(we, 0x89, b"ping"));
        bytes.extend(peer_frame(we, 0x80, b"b"));
        c.handle_input(Instant::now(), &bytes);
        assert_eq!(
            drain_events(&mut c),
            vec![
                Event::Text("plain".into()),
                Event::Text("Hello".into()),
                Event::Ping(b"ping".to_vec().into()),
                Event::Binary(b"ab".to_vec().into()),
            ]
        );
    }
}

#[test]
fn peer_without_context_takeover_is_forgotten_between_messages() {
    // The peer promised no context takeover: a back-reference into the
    // previous message is then outside the (fresh) window, so the second
    // §7.2.3.2 message does not reproduce "Hello".
    let mut params = DeflateParams::default();
    params.remote_no_context_takeover = true;
    let mut c = deflate_conn(Role::Client, Config::default(), params);
    c.handle_input(
        Instant::now(),
        &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    c.handle_input(Instant::now(), &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    let events = drain_events(&mut c);
    assert_eq!(events[0], Event::Text("Hello".into()));
    assert_ne!(events.get(1), Some(&Event::Text("Hello".into())));
}

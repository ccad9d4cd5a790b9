//! Hand-made seeds of the corpus: RFC 6455 §5.7 frames, RFC 7692 §7.2.3
//! compressed payloads, real handshakes, and one input per limit.
//!
//! `ws-proto/tests/fuzz_corpus.rs` replays these (and the files under
//! `fuzz/corpus/`), and writes them as `fuzz/corpus/<target>/seed-<name>`
//! when run with `WS_FUZZ_WRITE_SEEDS=1`.
#![allow(dead_code)]

use crate::checks::{client_hs_setup, peer_frame, CLIENT_SEED, MAX_FRAGMENTS, MAX_FRAME};
use std::time::Instant;
use ws_proto::{accept_key, ClientHandshake, Role, Transmit};

/// A seed: target, name, bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// The RFC 6455 §5.7 masking key.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn with(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(body);
    v
}

/// Frames as the peer of `we` sends them.
fn pf(we: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    peer_frame(we, b0, KEY, payload)
}

fn close_body(code: u16, reason: &str) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(reason.as_bytes());
    v
}

/// A header declaring `len` bytes, as the peer of `we` sends it.
fn long_header(we: Role, b0: u8, len: u64) -> Vec<u8> {
    let mut v = vec![b0, if we == Role::Server { 0xff } else { 0x7f }];
    v.extend_from_slice(&len.to_be_bytes());
    if we == Role::Server {
        v.extend_from_slice(&KEY);
    }
    v
}

/// Seeds of `frame_decoder`: flags (bit 0 client), split mode, split seed,
/// then the bytes.
fn frame_decoder() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |name: &str, flags: u8, mode: u8, body: Vec<u8>| {
        out.push((
            "frame_decoder",
            name.to_string(),
            with(&[flags, mode, 3], &body),
        ));
    };
    // RFC 6455 §5.7, exactly as printed.
    add("rfc6455-unmasked-hello", 1, 0, b"\x81\x05Hello".to_vec());
    add(
        "rfc6455-masked-hello",
        0,
        1,
        vec![
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    );
    add(
        "rfc6455-fragmented-hello",
        1,
        2,
        vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
    );
    add("rfc6455-ping-hello", 1, 0, b"\x89\x05Hello".to_vec());
    add(
        "rfc6455-masked-pong-hello",
        0,
        0,
        vec![
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    );
    let mut b256 = vec![0x82, 0x7e, 0x01, 0x00];
    b256.extend((0..=255u8).collect::<Vec<_>>());
    add("rfc6455-binary-256", 1, 7, b256);
    let mut b64k = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
    b64k.extend_from_slice(&[0xaa; 64]);
    add("rfc6455-binary-64k-header", 1, 0, b64k);

    for (we, flags, tag) in [(Role::Server, 0u8, "server"), (Role::Client, 1u8, "client")] {
        let mut v = pf(we, 0x01, "h\u{e9}".as_bytes());
        v.extend(pf(we, 0x89, b"in-between"));
        v.extend(pf(we, 0x00, "llo \u{20ac}".as_bytes()));
        v.extend(pf(we, 0x80, "\u{1f600}".as_bytes()));
        v.extend(pf(we, 0x82, &[0, 1, 2, 3]));
        v.extend(pf(we, 0x88, &close_body(1000, "bye")));
        add(&format!("{tag}-session"), flags, 3, v);

        add(
            &format!("{tag}-declared-2pow62"),
            flags,
            0,
            long_header(we, 0x82, 1 << 62),
        );
        add(
            &format!("{tag}-declared-2pow63"),
            flags,
            1,
            long_header(we, 0x82, 1 << 63),
        );
        add(
            &format!("{tag}-frame-over-limit"),
            flags,
            0,
            long_header(we, 0x82, MAX_FRAME as u64 + 1),
        );
        let mut v = Vec::new();
        for i in 0..300u32 {
            v.extend(pf(we, 0x89, &i.to_be_bytes()));
        }
        add(&format!("{tag}-ping-flood-unread"), flags | 4, 0x90, v);
        let mut v = pf(we, 0x02, b"");
        for _ in 0..MAX_FRAGMENTS + 2 {
            v.extend(pf(we, 0x00, b""));
        }
        add(&format!("{tag}-empty-continuations"), flags, 0x85, v);
        add(
            &format!("{tag}-invalid-utf8"),
            flags,
            1,
            pf(
                we,
                0x81,
                b"ok \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            ),
        );
        add(
            &format!("{tag}-close-1005-invalid"),
            flags,
            0,
            pf(we, 0x88, &close_body(1005, "")),
        );
        let mut v = pf(we, 0x81, b"first");
        v.extend(pf(we, 0x88, &close_body(4000, "app")));
        v.extend(pf(we, 0x81, b"after close"));
        add(&format!("{tag}-close-then-data"), flags | 8, 0, v);
        add(
            &format!("{tag}-reserved-opcode"),
            flags,
            0,
            pf(we, 0x83, b"x"),
        );
        add(&format!("{tag}-rsv-bits"), flags, 0, pf(we, 0xf1, b"x"));
        // RFC 7692 §7.2.3.1 with deflate negotiated (flag bit 4).
        add(
            &format!("{tag}-deflate-hello"),
            flags | 16,
            1,
            pf(we, 0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
        );
        // Invalid UTF-8 just before max_message_size, inflated (when read
        // whole) in one chunk with the excess, because a first message
        // moved the inflater's ring off the 32 KiB boundaries: 1007
        // however the input is split (read byte by byte, it was 1007
        // where read whole it was 1009).
        let first = miniz_oxide::deflate::compress_to_vec(&[b'x'; 1000], 6);
        let mut text = vec![b'a'; 65_000];
        text.push(0xff);
        text.extend(vec![b'b'; 20 << 10]);
        let mut v = pf(we, 0xc1, &first);
        v.extend(pf(
            we,
            0xc1,
            &miniz_oxide::deflate::compress_to_vec(&text, 6),
        ));
        add(&format!("{tag}-deflate-utf8-at-limit"), flags | 16, 1, v);
        // A masked frame to a client, an unmasked one to a server.
        let wrong = if we == Role::Server {
            peer_frame(Role::Client, 0x81, KEY, b"x")
        } else {
            peer_frame(Role::Server, 0x81, KEY, b"x")
        };
        add(&format!("{tag}-wrong-masking"), flags, 0, wrong);
    }
    out
}

/// The RFC 6455 §1.3 opening handshake request.
pub const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A browser's request (Chromium's header set, with permessage-deflate).
const BROWSER_REQUEST: &str = "GET /socket?room=1 HTTP/1.1\r\nHost: localhost:9001\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\nOrigin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// Seeds of `handshake_request`: flags (bit 0 deflate), split mode, split
/// seed, then the bytes.
fn handshake_request() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |name: &str, flags: u8, mode: u8, body: Vec<u8>| {
        out.push((
            "handshake_request",
            name.to_string(),
            with(&[flags, mode, 5], &body),
        ));
    };
    add("rfc6455-request", 0, 0, RFC_REQUEST.into());
    add("rfc6455-request-dribbled", 0, 1, RFC_REQUEST.into());
    let mut v = RFC_REQUEST.as_bytes().to_vec();
    v.extend(peer_frame(Role::Server, 0x81, KEY, b"Hello"));
    add("rfc6455-request-and-frame", 0, 9, v);
    add("browser-request-deflate", 1, 17, BROWSER_REQUEST.into());
    add(
        "browser-request-no-deflate",
        0,
        0x83,
        BROWSER_REQUEST.into(),
    );
    add("protocol-not-offered", 8, 0, RFC_REQUEST.into());
    // Our own client's request, with a deflate offer.
    let (config, req) = client_hs_setup(1 | 4 | 8);
    let mut hs = ClientHandshake::new(Instant::now(), req, config, CLIENT_SEED).expect("request");
    let mut ours = Vec::new();
    let _ = hs.poll_transmit(&mut ours);
    add("our-client-request", 1, 4, ours);
    add(
        "hybi-version-8",
        0,
        0,
        RFC_REQUEST
            .replace("Version: 13", "Version: 8")
            .into_bytes(),
    );
    add(
        "version-12",
        0,
        0,
        RFC_REQUEST
            .replace("Version: 13", "Version: 12")
            .into_bytes(),
    );
    add(
        "post",
        0,
        0,
        RFC_REQUEST.replace("GET", "POST").into_bytes(),
    );
    add(
        "http10",
        0,
        0,
        RFC_REQUEST.replace("HTTP/1.1", "HTTP/1.0").into_bytes(),
    );
    add(
        "no-key",
        0,
        0,
        RFC_REQUEST
            .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")
            .into_bytes(),
    );
    let mut many = RFC_REQUEST.trim_end().to_string();
    for i in 0..20 {
        many.push_str(&format!("\r\nX-{i}: v"));
    }
    many.push_str("\r\n\r\n");
    add("too-many-headers", 2, 0, many.into_bytes());
    let mut big = RFC_REQUEST.trim_end().to_string();
    big.push_str(&format!("\r\nX-Pad: {}\r\n\r\n", "a".repeat(600)));
    add("too-large", 4, 0x84, big.into_bytes());
    let spaces = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a{}b, , c\r\n\r\n",
        " ".repeat(200)
    );
    add("protocol-with-spaces", 0, 0x81, spaces.into_bytes());
    add(
        "extension-offers",
        1,
        0,
        RFC_REQUEST
            .replace(
                "Sec-WebSocket-Version: 13\r\n",
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n",
            )
            .into_bytes(),
    );
    add(
        "tls-hello",
        0,
        0,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n".to_vec(),
    );
    out
}

/// The response a server gives our client for `flags` (see
/// `checks::client_hs_setup`), with `extra` headers.
fn response_for(flags: u8, extra: &str) -> String {
    let (config, req) = client_hs_setup(flags);
    let mut hs = ClientHandshake::new(Instant::now(), req, config, CLIENT_SEED).expect("request");
    let mut out = Vec::new();
    assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Data));
    let text = String::from_utf8(out).expect("ASCII request");
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("a key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(key.as_bytes())
    )
}

/// Seeds of `handshake_response`: flags, split mode, split seed, then the
/// bytes.
fn handshake_response() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |name: &str, flags: u8, mode: u8, body: Vec<u8>| {
        out.push((
            "handshake_response",
            name.to_string(),
            with(&[flags, mode, 9], &body),
        ));
    };
    add("accept", 0, 0, response_for(0, "").into_bytes());
    add("accept-dribbled", 0, 1, response_for(0, "").into_bytes());
    let mut v = response_for(0, "").into_bytes();
    v.extend(peer_frame(Role::Client, 0x81, KEY, b"Hello"));
    v.extend(peer_frame(Role::Client, 0x88, KEY, &close_body(1001, "")));
    add("accept-and-frames", 0, 3, v);
    add(
        "accept-protocol",
        8,
        0,
        response_for(8, "Sec-WebSocket-Protocol: superchat\r\n").into_bytes(),
    );
    add(
        "protocol-not-offered",
        8,
        0,
        response_for(8, "Sec-WebSocket-Protocol: other\r\n").into_bytes(),
    );
    add(
        "accept-deflate",
        1,
        0,
        response_for(1, "Sec-WebSocket-Extensions: permessage-deflate\r\n").into_bytes(),
    );
    let mut v = response_for(
        1 | 2 | 4,
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9; client_no_context_takeover\r\n",
    )
    .into_bytes();
    v.extend(peer_frame(
        Role::Client,
        0xc1,
        KEY,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ));
    add("accept-deflate-params-and-frame", 1 | 2 | 4, 2, v);
    add(
        "deflate-not-offered",
        0,
        0,
        response_for(0, "Sec-WebSocket-Extensions: permessage-deflate\r\n").into_bytes(),
    );
    add(
        "wrong-accept",
        0,
        0,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".to_vec(),
    );
    add(
        "no-upgrade",
        0,
        0,
        response_for(0, "")
            .replace("Upgrade: websocket\r\n", "")
            .into_bytes(),
    );
    add(
        "status-400-body",
        0,
        0,
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n"
            .to_vec(),
    );
    add(
        "status-426",
        0,
        0x82,
        b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13, 8\r\nContent-Length: 0\r\n\r\n".to_vec(),
    );
    let mut big = response_for(16, "");
    big.insert_str(big.len() - 2, &format!("X-Pad: {}\r\n", "b".repeat(600)));
    add("too-large", 16, 0x88, big.into_bytes());
    out
}

/// A `deflate` frame op: `ctrl`, `len`, payload (at most 255 bytes).
fn op(out: &mut Vec<u8>, ctrl: u8, payload: &[u8]) {
    assert!(payload.len() <= 255);
    out.push(ctrl);
    out.push(payload.len() as u8);
    out.extend_from_slice(payload);
}

/// Data ops: ctrl bit 1 set (data), bit 2 binary, bit 3 uncompressed,
/// bit 4 not the last frame.
const TEXT_Z: u8 = 2;
const BIN_Z: u8 = 2 | 4;
const MORE: u8 = 16;

/// Seeds of `deflate`: flags (bit 0 client, bit 1 peer without context
/// takeover, bit 2 output not drained), split mode, split seed, then ops.
fn deflate() -> Vec<Seed> {
    let mut out = Vec::new();
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    for (flags, tag) in [(0u8, "server"), (1u8, "client")] {
        let mut add = |name: &str, fl: u8, mode: u8, ops: Vec<u8>| {
            out.push((
                "deflate",
                format!("{tag}-{name}"),
                with(&[flags | fl, mode, 11], &ops),
            ));
        };
        // RFC 7692 §7.2.3.1: "Hello", whole and in two frames.
        let mut v = Vec::new();
        op(&mut v, TEXT_Z, &hello);
        op(&mut v, TEXT_Z | MORE, &hello[..3]);
        op(&mut v, 0, b"ping between");
        op(&mut v, TEXT_Z, &hello[3..]);
        add("rfc7692-hello", 0, 0, v.clone());
        add("rfc7692-hello-split", 0, 1, v);
        // §7.2.3.2: the second "Hello" refers to the first (shared window).
        let mut v = Vec::new();
        op(&mut v, TEXT_Z, &hello);
        op(&mut v, TEXT_Z, &[0xf2, 0x00, 0x11, 0x00, 0x00]);
        add("rfc7692-shared-window", 0, 0, v);
        // §7.2.3.3: a stored block; §7.2.3.4: BFINAL set.
        let mut v = Vec::new();
        op(
            &mut v,
            BIN_Z,
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
        );
        op(
            &mut v,
            TEXT_Z,
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
        );
        op(&mut v, TEXT_Z, &hello);
        add("rfc7692-stored-and-bfinal", 0, 0, v);
        // An uncompressed message between compressed ones, a pong.
        let mut v = Vec::new();
        op(&mut v, TEXT_Z | 8, b"plain");
        op(&mut v, 1, b"pong");
        op(&mut v, TEXT_Z, &hello);
        add("mixed", 2, 0x83, v);
        // A bomb: a megabyte of zeros, about a kilobyte compressed, far
        // past the 64 KiB message limit (1009 without inflating it all).
        let z = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 1 << 20], 9);
        let mut v = Vec::new();
        let chunks: Vec<&[u8]> = z.chunks(255).collect();
        for (i, c) in chunks.iter().enumerate() {
            let more = if i + 1 < chunks.len() { MORE } else { 0 };
            op(&mut v, BIN_Z | more, c);
        }
        add("bomb-1mib-zeros", 0, 0x90, v);
        // Just under the limit: 60 KiB of text that inflates fine.
        let z = miniz_oxide::deflate::compress_to_vec(&vec![b'a'; 60 << 10], 6);
        let mut v = Vec::new();
        let chunks: Vec<&[u8]> = z.chunks(255).collect();
        for (i, c) in chunks.iter().enumerate() {
            let more = if i + 1 < chunks.len() { MORE } else { 0 };
            op(&mut v, TEXT_Z | more, c);
        }
        add("just-under-limit", 2, 0x84, v);
        // Corrupt streams: a reserved block type, a distance too far back.
        let mut v = Vec::new();
        op(&mut v, BIN_Z, &[0xff, 0xff, 0xff]);
        add("corrupt-block-type", 0, 0, v);
        let mut v = Vec::new();
        let z = miniz_oxide::deflate::compress_to_vec(b"ok \xff\xfe not utf8", 6);
        op(&mut v, TEXT_Z, &z);
        add("invalid-utf8-inflated", 0, 0, v);
        let mut v = Vec::new();
        op(&mut v, BIN_Z, &[0x4a, 0x04, 0x00, 0x00, 0x00]);
        add("tiny-stream", 0, 0, v);
        // A compressed empty message; a ping flood that is never read.
        let mut v = Vec::new();
        op(&mut v, BIN_Z, &[0x00]);
        for i in 0..200u8 {
            op(&mut v, 0, &[i; 100]);
        }
        add("ping-flood-unread", 4, 0x88, v);
    }
    out
}

/// Seeds of `pair_ops`: flags, knobs, then ops (see `checks::pair_ops`).
fn pair_ops() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |name: &str, prefix: [u8; 2], ops: Vec<u8>| {
        out.push(("pair_ops", name.to_string(), with(&prefix, &ops)));
    };
    const S: u8 = 0x80; // the server side
                        // text, binary, deliver everything, events, close, settle.
    let mut v = vec![0, 5];
    v.extend_from_slice(b"hello");
    v.extend_from_slice(&[S | 1, 4, 1, 2, 3, 4]);
    v.extend_from_slice(&[10, 14, S | 14]);
    v.extend_from_slice(&[7, 0, 3]);
    v.extend_from_slice(b"bye");
    v.push(10);
    add("echo-and-close", [0, 0], v.clone());
    add("echo-and-close-deflate", [1, 6], v.clone());
    add(
        "echo-and-close-deflate-small-window",
        [1 | 2 | 4 | (1 << 3) | 0x80, 0x85],
        v,
    );
    // Fragments (text cut inside characters), pings between, pieces.
    let mut v = vec![0x03, 10, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 7];
    v.extend_from_slice(&[S | 5, 4, 1, 2, 3, 4]);
    v.extend_from_slice(&[0x03, 4, 5, 6, 7, 7, 3]);
    v.extend_from_slice(&[0x13, 2, 1, 2, 0]);
    v.extend_from_slice(&[8, S | 9, 3, S | 9, 200, S | 14]);
    v.extend_from_slice(&[0x04, 2, 9, 9, 9, 9, 9, 9, 9, 9, 0x14, 0]);
    v.extend_from_slice(&[15, 3, 15, 40, 14, S | 14]);
    add("fragments", [0, 0], v.clone());
    add("fragments-deflate", [1 | 0x80, 3], v);
    // Usage errors: a whole message inside a fragmented one, kind
    // mismatch, a long ping, a bad close code, invalid UTF-8 text.
    let mut v = vec![0x04, 1, 1, 2, 3, 4];
    v.extend_from_slice(&[0, 2, 1, 1]);
    v.extend_from_slice(&[0x03, 1, 1, 0]);
    v.extend_from_slice(&[5, 130]);
    v.extend((0..130).collect::<Vec<u8>>());
    v.extend_from_slice(&[0x14, 0]);
    v.extend_from_slice(&[2, 2, 0xff, 0xfe]);
    v.extend_from_slice(&[7, 8, 0]);
    v.extend_from_slice(&[7, 7, 1, b'x']);
    v.extend_from_slice(&[7, 0, 0, 10, 1]);
    add("usage-errors", [0, 0], v);
    // Garbage into the server, an EOF, the clock.
    let mut v = vec![0, 3, b'a', b'b', b'c', 8];
    v.extend_from_slice(&[S | 11, 4, 0x81, 0x05, 0, 0]);
    v.extend_from_slice(&[10, 13, 200, 13, 200]);
    add("garbage", [0, 0], v);
    let mut v = vec![0, 3, b'a', b'b', b'c', 8, S | 12, 10, 13, 255];
    v.extend_from_slice(&[S, 1, b'z', 10]); // the server sends text
    add("eof", [0, 0], v);
    // Close from both sides at once; close with no status.
    let v = vec![7, 0, 0, S | 7, 1, 0, 8, S | 8, 10];
    add("simultaneous-close", [0, 0], v);
    let v = vec![S | 7, 7, 0, 10];
    add("close-no-status", [0, 0], v);
    // The client does not write: 550 pings of 125 bytes, answered with
    // more than 64 KiB of pongs that pile up; then it closes.
    let mut v = Vec::new();
    for i in 0..550u16 {
        v.extend_from_slice(&[S | 5, 125]);
        v.extend_from_slice(&[i as u8; 125]);
    }
    v.push(S | 8);
    v.extend(std::iter::repeat([9u8, 255]).take(40).flatten());
    v.extend_from_slice(&[7, 0, 0, 8, 13, 255]);
    add("pings-unwritten", [0, 0], v);
    out
}

/// Every seed.
pub fn all() -> Vec<Seed> {
    let mut v = frame_decoder();
    v.extend(handshake_request());
    v.extend(handshake_response());
    v.extend(deflate());
    v.extend(pair_ops());
    v.extend(client_proxy());
    v
}

/// Seeds of `client_proxy`: URL, `Location`, proxy URL and the proxy's
/// answer (see `checks::client_proxy`).
fn client_proxy() -> Vec<Seed> {
    let one = |name: &str, flags: u8, url: &str, loc: &str, proxy: &str, answer: &[u8]| {
        let mut v = vec![flags, 3, 1];
        for part in [url, loc, proxy] {
            v.push(part.len() as u8);
            v.extend_from_slice(part.as_bytes());
        }
        v.extend_from_slice(answer);
        ("client_proxy", name.to_string(), v)
    };
    vec![
        one(
            "connect-200",
            0,
            "ws://example.com:9001/chat?x=1",
            "/other",
            "http://u:p@127.0.0.1:3128",
            b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n\x81\x02hi",
        ),
        one(
            "connect-407",
            0,
            "wss://[::1]/",
            "https://elsewhere.example/x",
            "127.0.0.1:8080",
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
        ),
        one(
            "socks5-domain",
            1,
            "ws://example.com/",
            "//host:81/a",
            "socks5h://proxy:1080",
            &[
                5, 0, 5, 0, 0, 3, 11, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o',
                0, 80, 0x81,
            ],
        ),
        one(
            "socks5-auth-ipv6",
            2,
            "ws+unix:/tmp/s.sock:/path",
            "ws+unix:/tmp/t.sock",
            "socks5://user:pass@[::1]:1080",
            &[
                5, 2, 1, 0, 5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187,
            ],
        ),
        one(
            "socks5-refused",
            1,
            "http://127.0.0.1:80/",
            "",
            "socks5://127.0.0.1",
            &[5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
    ]
}

//! A hostile or broken peer: each fault gets the right close code (as sent
//! on the wire and decoded by the other side), limits hold, and the
//! handshake parsers refuse bad input in bounded time.

mod util;

use std::time::{Duration, Instant};
use util::*;
use ws_proto::http::{self, HeaderMap};
use ws_proto::{
    ClientHandshake, CloseCode, CloseFrame, Config, Connection, Ending, Event, HandshakeError,
    ProtocolError, Role, ServerHandshake, State, Transmit,
};

const ROLES: [Role; 2] = [Role::Client, Role::Server];

fn conn(we: Role, config: Config) -> Connection {
    match we {
        Role::Client => Connection::client(config, seed(1)),
        Role::Server => Connection::server(config),
    }
}

fn peer_of(we: Role) -> Role {
    match we {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// The close code `we` sends when its peer sends `bytes`.
fn code_for(we: Role, bytes: &[u8]) -> u16 {
    fault_code(we, Config::default(), bytes)
}

/// A peer frame for `we` with the first byte `b0`.
fn pf(we: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    peer_frame(we, b0, payload)
}

// ------------------------------------------------------------- framing --

#[test]
fn reserved_bits() {
    for we in ROLES {
        for rsv in [0x40u8, 0x20, 0x10, 0x70] {
            for op in [0x1u8, 0x2, 0x9, 0xA, 0x8] {
                let payload: &[u8] = if op == 0x8 { &[0x03, 0xe8] } else { b"x" };
                assert_eq!(
                    code_for(we, &pf(we, 0x80 | rsv | op, payload)),
                    1002,
                    "{we:?} rsv {rsv:#x} op {op}"
                );
            }
        }
        // On a continuation, too.
        let mut bytes = pf(we, 0x01, b"a");
        bytes.extend(pf(we, 0x80 | 0x40, b"b"));
        assert_eq!(code_for(we, &bytes), 1002);
    }
}

#[test]
fn reserved_opcodes() {
    for we in ROLES {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(code_for(we, &pf(we, 0x80 | op, b"")), 1002, "{we:?} {op}");
            // Inside a fragmented message.
            let mut bytes = pf(we, 0x01, b"a");
            bytes.extend(pf(we, 0x80 | op, b"zz"));
            assert_eq!(code_for(we, &bytes), 1002, "{we:?} {op}");
        }
    }
}

#[test]
fn masking_rules() {
    // RFC 6455 §5.1: a server fails on an unmasked frame, a client on a
    // masked one; control frames included.
    for b0 in [0x81u8, 0x82, 0x89, 0x8A, 0x88, 0x01] {
        assert_eq!(code_for(Role::Server, &sframe(b0, b"")), 1002, "{b0:#x}");
        assert_eq!(code_for(Role::Client, &cframe(b0, b"")), 1002, "{b0:#x}");
    }
}

#[test]
fn control_frame_too_long() {
    for we in ROLES {
        for op in [0x89u8, 0x8A, 0x88] {
            let mut payload = vec![b'x'; 126];
            payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            assert_eq!(code_for(we, &pf(we, op, &payload)), 1002, "{we:?} {op:#x}");
            // Refused from the header alone.
            let full = pf(we, op, &payload);
            let hdr_len = if we == Role::Server { 8 } else { 4 };
            assert_eq!(code_for(we, &full[..hdr_len]), 1002);
        }
        // 125 is fine.
        let (_, _, ev) = feed(
            &mut conn(we, Config::default()),
            Instant::now(),
            &pf(we, 0x89, &[7; 125]),
        );
        assert_eq!(ev, [Event::Ping(vec![7u8; 125].into())]);
    }
}

#[test]
fn fragmented_control_frames() {
    for we in ROLES {
        for op in [0x09u8, 0x0A, 0x08] {
            assert_eq!(code_for(we, &pf(we, op, b"")), 1002, "{we:?} {op:#x}");
        }
    }
}

#[test]
fn continuation_without_start() {
    for we in ROLES {
        assert_eq!(code_for(we, &pf(we, 0x80, b"x")), 1002);
        assert_eq!(code_for(we, &pf(we, 0x00, b"x")), 1002);
        // After a complete message, too.
        let mut bytes = pf(we, 0x81, b"done");
        bytes.extend(pf(we, 0x80, b"x"));
        let mut c = conn(we, Config::default());
        c.handle_input(Instant::now(), &bytes);
        assert_eq!(c.poll_event(), Some(Event::Text("done".into())));
        assert_eq!(c.poll_event(), None);
        let (out, _) = drain_transmit(&mut c);
        assert_eq!(peer_decodes(peer_of(we), &out).0.map(|r| r.0), Some(1002));
    }
}

#[test]
fn new_data_frame_inside_a_fragmented_message() {
    for we in ROLES {
        for (first, second) in [(0x01u8, 0x81u8), (0x02, 0x82), (0x01, 0x82), (0x02, 0x01)] {
            let mut bytes = pf(we, first, b"a");
            bytes.extend(pf(we, second, b"b"));
            assert_eq!(code_for(we, &bytes), 1002, "{we:?} {first:#x} {second:#x}");
        }
        // Control frames may interleave.
        let mut bytes = pf(we, 0x01, b"a");
        bytes.extend(pf(we, 0x89, b"p"));
        bytes.extend(pf(we, 0x80, b"b"));
        let (_, _, ev) = feed(&mut conn(we, Config::default()), Instant::now(), &bytes);
        assert_eq!(
            ev,
            [
                Event::Ping(ws_proto::Bytes::from_static(b"p")),
                Event::Text("ab".into())
            ]
        );
    }
}

#[test]
fn invalid_length_2_pow_63() {
    for we in ROLES {
        let mut bytes = vec![0x82, 127 | if we == Role::Server { 0x80 } else { 0 }];
        bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
        if we == Role::Server {
            bytes.extend_from_slice(&[1, 2, 3, 4]);
        }
        assert_eq!(code_for(we, &bytes), 1002);
        bytes[2] = 0xff;
        assert_eq!(code_for(we, &bytes), 1002);
    }
}

// ---------------------------------------------------------------- UTF-8 --

#[test]
fn invalid_utf8_text() {
    let bad: [&[u8]; 8] = [
        &[0xff],
        &[0xc0, 0x80],             // overlong
        &[0xed, 0xa0, 0x80],       // surrogate
        &[0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
        &[0xce, 0xba, 0xe1],       // truncated at the end of the message
        &[0x80],                   // lone continuation
        b"valid then \xf8",
        &[0xe2, 0x28, 0xa1],
    ];
    for we in ROLES {
        for b in bad {
            assert_eq!(code_for(we, &pf(we, 0x81, b)), 1007, "{we:?} {b:x?}");
            // Split over fragments.
            let mut bytes = pf(we, 0x01, &b[..1]);
            bytes.extend(pf(we, 0x80, &b[1..]));
            assert_eq!(code_for(we, &bytes), 1007, "{we:?} {b:x?} fragmented");
        }
        // Binary is not checked.
        let (_, _, ev) = feed(
            &mut conn(we, Config::default()),
            Instant::now(),
            &pf(we, 0x82, &[0xff]),
        );
        assert_eq!(ev, [Event::Binary(vec![0xffu8].into())]);
    }
}

#[test]
fn invalid_utf8_fails_fast() {
    // Invalid bytes in the first part of a frame whose rest has not
    // arrived fail at once: the close frame is out before the rest.
    let now = Instant::now();
    for we in ROLES {
        let mut payload = b"hello \xff".to_vec();
        payload.resize(10_000, b'a');
        let full = pf(we, 0x81, &payload);
        let hdr = if we == Role::Server { 8 } else { 4 };
        let mut c = conn(we, Config::default());
        c.handle_input(now, &full[..hdr + 7]);
        let (out, shut) = drain_transmit(&mut c);
        assert!(shut, "{we:?}");
        assert_eq!(peer_decodes(peer_of(we), &out).0.map(|r| r.0), Some(1007));
        assert_eq!(c.state(), State::LocalClosing);
        // The rest is ignored.
        c.handle_input(now, &full[hdr + 7..]);
        assert_eq!(drain_transmit(&mut c), (vec![], false));
        c.handle_eof(now);
        let ev = drain_events(&mut c);
        assert_eq!(
            the_close(&ev).ending,
            Ending::Protocol(ProtocolError::InvalidUtf8)
        );

        // In a non-final fragment, and even inside a character split across
        // reads: 0xF0 0x28 cannot start a valid sequence.
        let mut c = conn(we, Config::default());
        let first = pf(we, 0x01, b"ab\xf0");
        c.handle_input(now, &first);
        assert_eq!(
            drain_transmit(&mut c),
            (vec![], false),
            "still valid so far"
        );
        let cont = pf(we, 0x80, b"\x28 and much more to come");
        c.handle_input(now, &cont[..hdr + 1]);
        let (out, _) = drain_transmit(&mut c);
        assert_eq!(peer_decodes(peer_of(we), &out).0.map(|r| r.0), Some(1007));
    }
}

#[test]
fn valid_utf8_split_anywhere() {
    let s = "κόσμε 𝄞 €uro";
    for we in ROLES {
        for cut in 0..=s.len() {
            let mut bytes = pf(we, 0x01, &s.as_bytes()[..cut]);
            bytes.extend(pf(we, 0x80, &s.as_bytes()[cut..]));
            let (out, _, ev) = feed(&mut conn(we, Config::default()), Instant::now(), &bytes);
            assert_eq!(ev, [Event::Text(s.into())], "cut {cut}");
            assert!(out.is_empty());
        }
    }
}

// ---------------------------------------------------------------- close --

#[test]
fn invalid_utf8_close_reason() {
    for we in ROLES {
        let mut body = 1000u16.to_be_bytes().to_vec();
        body.extend_from_slice(b"bad \xff reason");
        assert_eq!(code_for(we, &pf(we, 0x88, &body)), 1007);
    }
}

#[test]
fn one_byte_close_payload() {
    for we in ROLES {
        assert_eq!(code_for(we, &pf(we, 0x88, &[0x03])), 1002);
    }
}

#[test]
fn invalid_close_codes() {
    for we in ROLES {
        for c in [
            0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                code_for(we, &pf(we, 0x88, &close_body(c, ""))),
                1002,
                "{we:?} {c}"
            );
        }
    }
}

#[test]
fn valid_close_codes_are_echoed() {
    let now = Instant::now();
    for we in ROLES {
        for c in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            let mut conn = conn(we, Config::default());
            conn.handle_input(now, &pf(we, 0x88, &close_body(c, "why")));
            assert_eq!(conn.state(), State::RemoteClosing);
            let (out, shut) = drain_transmit(&mut conn);
            assert_eq!(shut, we == Role::Server, "the server closes TCP first");
            let (received, _) = peer_decodes(peer_of(we), &out);
            assert_eq!(received, Some((c, String::new())), "{we:?} {c}");
            conn.handle_eof(now);
            let ev = drain_events(&mut conn);
            let info = the_close(&ev);
            assert_eq!(info.ending, Ending::Clean);
            assert_eq!(info.received, Some(CloseFrame::new(c, "why")));
            assert_eq!(info.code(), CloseCode(c));
        }
    }
}

#[test]
fn nothing_after_the_close_frame_is_reported() {
    let now = Instant::now();
    for we in ROLES {
        let mut bytes = pf(we, 0x88, &close_body(1000, ""));
        bytes.extend(pf(we, 0x81, b"after"));
        bytes.extend(pf(we, 0x89, b"ping"));
        bytes.extend([0xff; 20]);
        let mut c = conn(we, Config::default());
        c.handle_input(now, &bytes);
        let (out, _) = drain_transmit(&mut c);
        assert_eq!(decode_frames(&out).len(), 1, "only the close echo");
        c.handle_input(now, b"more garbage");
        c.handle_eof(now);
        let ev = drain_events(&mut c);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(the_close(&ev).ending, Ending::Clean);
    }
}

// --------------------------------------------------------------- limits --

#[test]
fn frame_over_max_frame_size() {
    let now = Instant::now();
    for we in ROLES {
        let cfg = Config::default().max_frame_size(1000);
        // Exactly the limit is fine.
        let (_, _, ev) = feed(&mut conn(we, cfg.clone()), now, &pf(we, 0x82, &[1; 1000]));
        assert_eq!(ev, [Event::Binary(vec![1u8; 1000].into())]);
        // One more: 1009 from the header alone.
        let full = pf(we, 0x82, &[1; 1001]);
        let hdr = if we == Role::Server { 8 } else { 4 };
        assert_eq!(fault_code(we, cfg.clone(), &full[..hdr]), 1009);
        // A huge declaration with the default limit.
        let mut h = vec![0x82, 127 | if we == Role::Server { 0x80 } else { 0 }];
        h.extend_from_slice(&(1u64 << 40).to_be_bytes());
        if we == Role::Server {
            h.extend_from_slice(&[0; 4]);
        }
        assert_eq!(code_for(we, &h), 1009);
        // Per frame, not per message: fragments below the limit are fine.
        let mut bytes = pf(we, 0x02, &[2; 800]);
        bytes.extend(pf(we, 0x80, &[3; 800]));
        let (_, _, ev) = feed(&mut conn(we, cfg.clone()), now, &bytes);
        assert_eq!(ev.len(), 1);
    }
}

#[test]
fn message_over_max_message_size() {
    let now = Instant::now();
    for we in ROLES {
        let cfg = Config::default().max_message_size(1000);
        let hdr = if we == Role::Server { 8 } else { 4 };
        // Exactly the limit across fragments is fine.
        let mut ok = pf(we, 0x02, &[1; 600]);
        ok.extend(pf(we, 0x80, &[1; 400]));
        let (_, _, ev) = feed(&mut conn(we, cfg.clone()), now, &ok);
        assert_eq!(ev, [Event::Binary(vec![1u8; 1000].into())]);
        // One byte more: refused at the header of the fragment that would
        // exceed, before any of its payload is buffered.
        let mut c = conn(we, cfg.clone());
        c.handle_input(now, &pf(we, 0x02, &[1; 600]));
        assert_eq!(drain_transmit(&mut c), (vec![], false));
        let second = pf(we, 0x80, &[1; 401]);
        c.handle_input(now, &second[..hdr]);
        let (out, shut) = drain_transmit(&mut c);
        assert!(shut);
        assert_eq!(peer_decodes(peer_of(we), &out).0.map(|r| r.0), Some(1009));
        // Text too, and a single frame.
        assert_eq!(
            fault_code(we, cfg.clone(), &pf(we, 0x81, &[b'a'; 1001])),
            1009
        );
        // Control frames interleaved do not count.
        let mut bytes = pf(we, 0x01, &[b'a'; 600]);
        bytes.extend(pf(we, 0x89, &[0; 125]));
        bytes.extend(pf(we, 0x80, &[b'b'; 400]));
        let (_, _, ev) = feed(&mut conn(we, cfg.clone()), now, &bytes);
        assert_eq!(ev.len(), 2);
        // The limit is per message: the next message starts from zero.
        let mut bytes = pf(we, 0x82, &[1; 1000]);
        bytes.extend(pf(we, 0x82, &[1; 1000]));
        let (_, _, ev) = feed(&mut conn(we, cfg.clone()), now, &bytes);
        assert_eq!(ev.len(), 2);
    }
}

#[test]
fn too_many_fragments() {
    let now = Instant::now();
    for we in ROLES {
        let cfg = Config::default().max_fragments(100);
        // 100 frames are fine.
        let mut ok = pf(we, 0x02, b"");
        for _ in 0..98 {
            ok.extend(pf(we, 0x00, b""));
        }
        ok.extend(pf(we, 0x80, b"end"));
        let (_, _, ev) = feed(&mut conn(we, cfg.clone()), now, &ok);
        assert_eq!(ev, [Event::Binary(ws_proto::Bytes::from_static(b"end"))]);
        // A flood of empty continuations is cut at the limit.
        let mut flood = pf(we, 0x01, b"");
        for _ in 0..10_000 {
            flood.extend(pf(we, 0x00, b""));
        }
        assert_eq!(fault_code(we, cfg.clone(), &flood), 1009, "{we:?}");
        // The count restarts with each message.
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.extend(pf(we, 0x02, b""));
            for _ in 0..98 {
                bytes.extend(pf(we, 0x00, b""));
            }
            bytes.extend(pf(we, 0x80, b""));
        }
        let (_, _, ev) = feed(&mut conn(we, cfg.clone()), now, &bytes);
        assert_eq!(ev.len(), 3);
    }
}

#[test]
fn truncated_frames_then_eof() {
    let now = Instant::now();
    for we in ROLES {
        let frames = [
            pf(we, 0x81, b"hello"),
            pf(we, 0x82, &[9; 300]),
            pf(we, 0x82, &[9; 70_000]),
            pf(we, 0x89, b"ping"),
            pf(we, 0x88, &close_body(1000, "x")),
        ];
        for f in &frames {
            for cut in [1, 2, 3, f.len() / 2, f.len() - 1] {
                let mut c = conn(we, Config::default());
                c.handle_input(now, &f[..cut]);
                assert!(drain_events(&mut c).is_empty());
                c.handle_eof(now);
                let (out, _) = drain_transmit(&mut c);
                assert!(out.is_empty(), "nothing to say on a dead transport");
                let ev = drain_events(&mut c);
                assert_eq!(ev.len(), 1);
                let info = the_close(&ev);
                assert_eq!(info.ending, Ending::Abnormal, "{we:?} cut {cut}");
                assert_eq!(info.code(), CloseCode::ABNORMAL);
                assert!(c.is_closed());
            }
        }
    }
}

#[test]
fn input_after_a_failure_is_ignored() {
    let now = Instant::now();
    for we in ROLES {
        let mut c = conn(we, Config::default());
        c.handle_input(now, &pf(we, 0x83, b""));
        let (out, shut) = drain_transmit(&mut c);
        assert!(!out.is_empty() && shut);
        for _ in 0..3 {
            c.handle_input(now, &pf(we, 0x81, b"x"));
            c.handle_input(now, &pf(we, 0x88, &close_body(1000, "")));
        }
        assert_eq!(drain_transmit(&mut c), (vec![], false));
        assert!(drain_events(&mut c).is_empty());
        // The close timer still ends it if the peer never closes.
        let deadline = c.poll_timeout().expect("close timer");
        c.handle_timeout(deadline);
        let ev = drain_events(&mut c);
        assert_eq!(
            the_close(&ev).ending,
            Ending::Protocol(ProtocolError::ReservedOpcode(3))
        );
    }
}

// ------------------------------------------------------------ handshake --

const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
                    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                    Sec-WebSocket-Version: 13\r\n";

/// Feeds a request to a fresh server handshake and returns the error and
/// the response status line.
fn refuse(config: Config, req: &[u8]) -> (HandshakeError, String) {
    let mut hs = ServerHandshake::new(Instant::now(), config);
    let err = hs.handle_input(req).expect_err("refused");
    let mut out = Vec::new();
    assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Data));
    assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Shutdown));
    assert_eq!(hs.poll_transmit(&mut out), None);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or("").to_string();
    // Input after a refusal is refused too.
    assert!(hs.handle_input(b"more").is_err());
    (err, status)
}

#[test]
fn handshake_dribbled_byte_by_byte() {
    let now = Instant::now();
    let mut req = GOOD.as_bytes().to_vec();
    req.extend_from_slice(b"\r\n");
    req.extend(cframe(0x81, b"tail"));
    let mut hs = ServerHandshake::new(now, Config::default());
    let head_len = GOOD.len() + 2;
    let mut got = None;
    for (i, b) in req.iter().enumerate() {
        match hs.handle_input(std::slice::from_ref(b)).unwrap() {
            Some(r) => {
                assert_eq!(i + 1, head_len, "complete exactly at the end of the head");
                got = Some(r);
                // Frame bytes after the head: keep feeding.
                let mut c = {
                    for b in &req[i + 1..] {
                        let _ = hs.handle_input(std::slice::from_ref(b)).unwrap();
                    }
                    hs.accept(now, None, &HeaderMap::new()).unwrap()
                };
                assert_eq!(drain_events(&mut c), [Event::Text("tail".into())]);
                break;
            }
            None => assert!(i + 1 < head_len),
        }
    }
    assert_eq!(got.unwrap().uri().path(), "/chat");
}

/// RFC 9112 §2.2: a recipient may accept a bare LF as a line end. A head
/// whose lines (or only its last, empty one) end that way completes at
/// once, in both roles, whole or dribbled, instead of waiting for the
/// handshake timeout; bytes after it are frames.
#[test]
fn heads_with_bare_lf_line_ends() {
    let now = Instant::now();
    let lf_only = GOOD.replace("\r\n", "\n") + "\n";
    let lf_last = GOOD.to_string() + "\n";
    let crlf_last = GOOD.replace("\r\n", "\n") + "\r\n";
    for head in [lf_only, lf_last, crlf_last] {
        for dribble in [false, true] {
            let mut input = head.as_bytes().to_vec();
            input.extend(cframe(0x81, b"tail"));
            let mut hs = ServerHandshake::new(now, Config::default());
            let mut req = None;
            let chunks: Vec<&[u8]> = if dribble {
                input.chunks(1).collect()
            } else {
                vec![&input[..]]
            };
            for (i, c) in chunks.iter().enumerate() {
                if req.is_some() {
                    // The frame bytes after the head.
                    let _ = hs.handle_input(c).unwrap();
                } else if let Some(r) = hs.handle_input(c).unwrap() {
                    if dribble {
                        assert_eq!(i + 1, head.len(), "{head:?}");
                    }
                    req = Some(r);
                }
            }
            let req = req.unwrap_or_else(|| panic!("{head:?} not complete"));
            assert_eq!(req.uri().path(), "/chat");
            let mut c = hs.accept(now, None, &HeaderMap::new()).unwrap();
            assert_eq!(drain_events(&mut c), [Event::Text("tail".into())]);
        }
    }
    // The client, from a server that ends its lines with LF.
    let (mut hs, accept) = client_hs();
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\
         Sec-WebSocket-Accept: {accept}\n\n"
    );
    assert_eq!(hs.handle_input(resp.as_bytes()), Ok(true));
    // A head of lone CRs is still not complete (and refused at the limit).
    let mut hs = ServerHandshake::new(now, Config::default());
    assert!(hs
        .handle_input(b"GET / HTTP/1.1\r\r\r\r")
        .unwrap()
        .is_none());
}

/// RFC 9112 §3.2.2: a server accepts the absolute form of a target (what a
/// client speaking through a forward proxy may send); `*` and a bare
/// authority are refused (`bad_requests`).
#[test]
fn absolute_form_target_is_accepted() {
    for target in ["ws://example.com/chat?x=1", "http://example.com/chat?x=1"] {
        let req = GOOD.replace("GET /chat", &format!("GET {target}")) + "\r\n";
        let mut hs = ServerHandshake::new(Instant::now(), Config::default());
        let r = hs.handle_input(req.as_bytes()).unwrap().expect("complete");
        assert_eq!(r.uri().path(), "/chat", "{target}");
        assert_eq!(r.uri().query(), Some("x=1"));
    }
}

#[test]
fn oversized_handshake_refused_at_the_limit() {
    // Counting: a head with no end is refused with 431 as soon as it
    // exceeds max_handshake_size, not later.
    let max = 16 * 1024;
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    let mut fed = 0usize;
    let pad = format!("{GOOD}X-Pad: ");
    let err = loop {
        let b = pad.as_bytes().get(fed).copied().unwrap_or(b'a');
        fed += 1;
        match hs.handle_input(&[b]) {
            Ok(None) => assert!(fed <= max, "not refused at {fed} bytes"),
            Ok(Some(_)) => panic!("accepted"),
            Err(e) => break e,
        }
    };
    assert_eq!(err, HandshakeError::TooLarge);
    assert_eq!(fed, max + 1);
    let mut out = Vec::new();
    let _ = hs.poll_transmit(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&out)
    );

    // A complete head just over the limit, in one piece.
    let mut big = GOOD.to_string();
    big.push_str(&format!("X-Pad: {}\r\n\r\n", "a".repeat(max)));
    let (err, status) = refuse(Config::default(), big.as_bytes());
    assert_eq!(err, HandshakeError::TooLarge);
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
}

#[test]
fn dribbling_is_linear() {
    // 4 MiB of head, one byte per call: linear work finishes in well under
    // a second even in debug builds; quadratic rescanning (~8·10^12 byte
    // comparisons) would not finish at all. The budget is generous.
    let size = 4 << 20;
    let cfg = Config::default().max_handshake_size(size + 4096);
    let mut req = GOOD.to_string();
    req.push_str("X-Pad: ");
    req.push_str(&"a".repeat(size - req.len() - 4));
    req.push_str("\r\n\r\n");
    let budget = Duration::from_secs(20);
    let start = Instant::now();
    let mut hs = ServerHandshake::new(start, cfg.clone());
    let mut done = false;
    for (i, b) in req.as_bytes().iter().enumerate() {
        if hs.handle_input(std::slice::from_ref(b)).unwrap().is_some() {
            done = true;
        }
        if i % 4096 == 0 {
            assert!(
                start.elapsed() < budget,
                "server: only {i} bytes in {budget:?}"
            );
        }
    }
    assert!(done);
    let server_time = start.elapsed();

    // The client parser, too.
    let req2 = http::Request::get("ws://h/").body(()).unwrap();
    let start = Instant::now();
    let mut chs = ClientHandshake::new(start, req2, cfg, seed(1)).unwrap();
    let mut resp = "HTTP/1.1 400 Bad Request\r\nX-Pad: ".to_string();
    resp.push_str(&"b".repeat(size - resp.len() - 4));
    resp.push_str("\r\n\r\n");
    let mut result = Ok(false);
    for (i, b) in resp.as_bytes().iter().enumerate() {
        result = chs.handle_input(std::slice::from_ref(b));
        if !matches!(result, Ok(false)) {
            break;
        }
        if i % 4096 == 0 {
            assert!(
                start.elapsed() < budget,
                "client: only {i} bytes in {budget:?}"
            );
        }
    }
    assert!(matches!(
        result,
        Err(HandshakeError::UnexpectedStatus { status: 400, .. })
    ));
    let client_time = start.elapsed();
    assert!(server_time < budget, "server: {server_time:?}");
    assert!(client_time < budget, "client: {client_time:?}");
}

#[test]
fn thousands_of_headers() {
    let mut req = GOOD.to_string();
    for i in 0..2000 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    // Under the size limit, over the header count.
    let cfg = Config::default().max_handshake_size(64 * 1024);
    let (err, status) = refuse(cfg, req.as_bytes());
    assert_eq!(err, HandshakeError::TooManyHeaders);
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    // With the default size limit it is too large anyway: 431 as well.
    let (_, status) = refuse(Config::default(), req.as_bytes());
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    // Exactly max_headers (GOOD has 5) is fine; one more is not.
    let with = |n: usize| {
        let mut req = GOOD.to_string();
        for i in 0..n {
            req.push_str(&format!("X-{i}: v\r\n"));
        }
        req + "\r\n"
    };
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    assert!(hs.handle_input(with(64 - 5).as_bytes()).unwrap().is_some());
    let (err, _) = refuse(Config::default(), with(64 - 4).as_bytes());
    assert_eq!(err, HandshakeError::TooManyHeaders);
}

#[test]
fn bad_requests() {
    let cases: Vec<(String, &str)> = vec![
        ("\x16\x03\x01\x02\x00 garbage\r\n\r\n".into(), "400"),
        ("HELLO\r\n\r\n".into(), "400"),
        ("GET\r\n\r\n".into(), "400"),
        (GOOD.replace("GET /chat", "POST /chat") + "\r\n", "405"),
        (GOOD.replace("GET /chat", "PUT /chat") + "\r\n", "405"),
        (
            GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "") + "\r\n",
            "400",
        ),
        (
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=") + "\r\n",
            "400",
        ),
        (
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!notbase64!!!") + "\r\n",
            "400",
        ),
        (
            GOOD.to_string() + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "400",
        ),
        (GOOD.replace("Upgrade: websocket\r\n", "") + "\r\n", "400"),
        (
            GOOD.replace("Upgrade: websocket", "Upgrade: h2c") + "\r\n",
            "400",
        ),
        (
            GOOD.replace("Connection: Upgrade", "Connection: close") + "\r\n",
            "400",
        ),
        (GOOD.replace("Host: example.com\r\n", "") + "\r\n", "400"),
        (GOOD.to_string() + "Host: other.example\r\n\r\n", "400"),
        (GOOD.replace("GET /chat", "GET *") + "\r\n", "400"),
        (
            GOOD.replace("GET /chat", "GET example.com:80") + "\r\n",
            "400",
        ),
        (GOOD.replace("HTTP/1.1", "HTTP/1.0") + "\r\n", "400"),
        (
            GOOD.replace("Sec-WebSocket-Version: 13\r\n", "") + "\r\n",
            "400",
        ),
        (
            GOOD.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 14") + "\r\n",
            "426",
        ),
        // RFC 9112 §3.2: an absolute-form target does not stand in for Host.
        (
            GOOD.replace("GET /chat", "GET ws://example.com/chat")
                .replace("Host: example.com\r\n", "")
                + "\r\n",
            "400",
        ),
    ];
    let policy = ws_proto::server::ServerPolicy::new();
    for (req, want) in cases {
        let (_, status) = refuse(Config::default(), req.as_bytes());
        assert!(
            status.starts_with(&format!("HTTP/1.1 {want} ")),
            "{req:?} → {status}"
        );
        // A request another HTTP server parsed is held to the same rules
        // (`ServerPolicy::upgrade`, for hyper and axum).
        if let Ok(Some((parsed, _))) =
            ws_proto::server::parse_request_head(req.as_bytes(), &Config::default())
        {
            let r = policy.upgrade(&parsed).expect_err(&req);
            assert_eq!(r.status.to_string(), want, "upgrade of {req:?}");
        }
    }
    // Tokens are matched case-insensitively and in lists.
    let ok = GOOD
        .replace("Upgrade: websocket", "Upgrade: WebSocket")
        .replace("Connection: Upgrade", "Connection: keep-alive, upgrade")
        + "\r\n";
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    assert!(hs.handle_input(ok.as_bytes()).unwrap().is_some());
}

#[test]
fn method_not_allowed_says_get() {
    let req = GOOD.replace("GET /chat", "POST /chat") + "\r\n";
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    assert!(hs.handle_input(req.as_bytes()).is_err());
    let mut out = Vec::new();
    let _ = hs.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap().to_ascii_lowercase();
    assert!(text.contains("\r\nallow: get\r\n"), "{text}");
}

fn client_hs() -> (ClientHandshake, String) {
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let mut hs = ClientHandshake::new(Instant::now(), req, Config::default(), seed(1)).unwrap();
    let mut out = Vec::new();
    let _ = hs.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_string();
    (hs, ws_proto::accept_key(key.as_bytes()))
}

#[test]
fn bad_responses() {
    let good = |accept: &str| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n"
        )
    };
    // Sanity: the good one passes.
    let (mut hs, accept) = client_hs();
    assert_eq!(
        hs.handle_input((good(&accept) + "\r\n").as_bytes()),
        Ok(true)
    );

    type Check = fn(&HandshakeError) -> bool;
    type Make<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let cases: Vec<(Make, Check)> = vec![
        (
            Box::new(|a| good(a).replace("Upgrade: websocket\r\n", "") + "\r\n"),
            |e| matches!(e, HandshakeError::BadResponse(_)),
        ),
        (
            Box::new(|a| good(a).replace("Connection: Upgrade\r\n", "") + "\r\n"),
            |e| matches!(e, HandshakeError::BadResponse(_)),
        ),
        (
            Box::new(|a| good(a).replace(a, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=") + "\r\n"),
            |e| matches!(e, HandshakeError::BadResponse(_)),
        ),
        (
            Box::new(|a| good(a) + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
            |e| matches!(e, HandshakeError::BadResponse(_)),
        ),
        (Box::new(|_| "NOT HTTP AT ALL\r\n\r\n".to_string()), |e| {
            matches!(e, HandshakeError::Malformed(_))
        }),
        (
            Box::new(|a| {
                let mut s = good(a);
                for i in 0..100 {
                    s.push_str(&format!("X-{i}: v\r\n"));
                }
                s + "\r\n"
            }),
            |e| matches!(e, HandshakeError::TooManyHeaders),
        ),
        (
            Box::new(|a| good(a) + &format!("X-Pad: {}\r\n\r\n", "p".repeat(20_000))),
            |e| matches!(e, HandshakeError::TooLarge),
        ),
        (
            Box::new(|_| "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi".to_string()),
            |e| matches!(e, HandshakeError::UnexpectedStatus { status: 200, body, .. } if body == b"hi"),
        ),
    ];
    for (make, check) in cases {
        let (mut hs, accept) = client_hs();
        let resp = make(&accept);
        let err = hs.handle_input(resp.as_bytes()).expect_err(&resp);
        assert!(check(&err), "{resp:?} → {err:?}");
    }
    // A response that never ends is refused at the limit.
    let (mut hs, _) = client_hs();
    let mut fed = 0;
    let err = loop {
        fed += 1000;
        match hs.handle_input(&[b'a'; 1000]) {
            Ok(false) => assert!(fed <= 17_000),
            other => break other,
        }
    };
    assert_eq!(err, Err(HandshakeError::TooLarge));
}

/// The close codes a peer may send (RFC 6455 §7.4.1/§7.4.2 and the IANA
/// registry), written out independently of `CloseCode::is_valid_on_wire`.
fn valid_on_wire(c: u16) -> bool {
    (1000..=1003).contains(&c) || (1007..=1014).contains(&c) || (3000..=4999).contains(&c)
}

#[test]
fn every_close_code_received() {
    let now = Instant::now();
    let mut valid = 0;
    for c in 0..=u16::MAX {
        let mut s = conn(Role::Server, Config::default());
        s.handle_input(now, &cframe(0x88, &c.to_be_bytes()));
        let (out, shut) = drain_transmit(&mut s);
        assert!(shut, "the server closes TCP first");
        // The answer is unmasked: its code is at bytes 2..4.
        assert_eq!(out[0], 0x88);
        let answered = u16::from_be_bytes([out[2], out[3]]);
        if valid_on_wire(c) {
            valid += 1;
            assert_eq!(answered, c, "{c} is echoed");
            // The close handshake is complete and TCP shut: the connection
            // ended, cleanly, without waiting for the peer's FIN.
            assert_eq!(s.state(), State::Closed);
            assert!(matches!(
                &drain_events(&mut s)[..],
                [Event::Closed(i)] if i.ending == Ending::Clean && i.remote_initiated
            ));
        } else {
            assert_eq!(answered, 1002, "{c} is a protocol error");
            assert_eq!(s.state(), State::LocalClosing);
        }
    }
    assert_eq!(valid, 4 + 8 + 2000);
}

#[test]
fn every_close_code_sent() {
    let now = Instant::now();
    for c in 0..=u16::MAX {
        let mut s = conn(Role::Server, Config::default());
        let r = s.close(now, CloseCode(c), "");
        if valid_on_wire(c) || c == 1005 {
            assert_eq!(r, Ok(()), "{c}");
            assert_eq!(s.state(), State::LocalClosing);
        } else {
            assert_eq!(r, Err(ws_proto::UsageError::InvalidCloseCode(c)));
            assert_eq!(s.state(), State::Open);
            assert_eq!(s.buffered_amount(), 0);
        }
    }
}

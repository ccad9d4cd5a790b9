//! Issue 8's advisories (see `ws-proto/tests/advisories.rs` for the core
//! and the README's "Security and limits" table), replayed against every
//! adapter over loopback TCP, in each role where the advisory applies: the
//! triggering input from a hostile peer, the outcome (close code, HTTP
//! status, error), and bounds on time and on what waits in memory.
//!
//! Time bounds are generous ([`BUDGET`]): linear work takes a small part
//! of it even in a debug build on a busy machine; the quadratic or
//! unbounded behaviour of the advisories takes far more, or never ends.
//! A bound that was exceeded shows up as a note that differs from the
//! expected one.
//!
//! RUSTSEC-2020-0043's second half (an echo peer that never reads the
//! answers) is `backpressure.rs`'s `peer_that_stops_reading`: `send`
//! blocks before 16 MiB were taken.

use crate::{clean_end, failed, failed_wire, info};
use parity::raw::{read_head, switching_protocols, tcp_accept, tcp_connect, RawFrame};
use parity::{
    check, check_roles, http, spawn_helper, with_raw_peer, Accept, Config, DeflateConfig, Ending,
    Error, HandshakeError, Message, Obs, ProtocolError, Role, Wire, LIMIT,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous: see the module documentation.
const BUDGET: Duration = Duration::from_secs(15);

/// The raw client's masking key (the one `RawFrame` uses).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// "within budget" or how long it took.
fn timed(what: &str, t0: Instant) -> Obs {
    let took = t0.elapsed();
    if took < BUDGET {
        Obs::note(format!("{what}: within budget"))
    } else {
        Obs::note(format!("{what}: took {took:?}"))
    }
}

/// A request head (without the final empty line) for `addr`.
fn request_head(addr: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
}

/// Header lines adding up to about `size` bytes: one long header and
/// many short ones (RUSTSEC-2023-0065's input).
fn long_headers(size: usize) -> String {
    let mut s = format!("X-Long: {}\r\n", "a".repeat(size / 2));
    let mut i = 0;
    while s.len() < size {
        s.push_str(&format!("X-{i}: {}\r\n", "b".repeat(40)));
        i += 1;
    }
    s
}

/// `n` short header lines (CVE-2024-37890's input).
fn many_headers(n: usize) -> String {
    (0..n).map(|i| format!("X-{i}: v\r\n")).collect()
}

/// Writes `b` in pieces of 1 to 16 bytes; stops at the first error (the
/// other end may have refused and closed).
fn dribble(tcp: &mut TcpStream, b: &[u8]) {
    let mut sizes = [1usize, 7, 2, 16, 3, 11, 5, 13].iter().cycle();
    let mut rest = b;
    while !rest.is_empty() {
        let (a, r) = rest.split_at((*sizes.next().expect("cycle")).min(rest.len()));
        if tcp.write_all(a).is_err() {
            return;
        }
        rest = r;
    }
}

/// Everything until EOF (or a reset), as text.
fn read_rest(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status line of an HTTP response, without `HTTP/1.1 `.
fn status(resp: &str) -> String {
    let line = resp.lines().next().unwrap_or("");
    line.strip_prefix("HTTP/1.1 ").unwrap_or(line).to_string()
}

/// A raw server for one client connection: reads the request and writes
/// `answer(request head)`, dribbled or in one write; then keeps the
/// connection open until the client goes away.
fn raw_server(
    answer: impl FnOnce(&str) -> String + Send + 'static,
    dribbled: bool,
) -> (SocketAddr, parity::harness::Helper<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("address");
    let h = spawn_helper("raw-server", move || {
        let mut tcp = tcp_accept(&l);
        let head = read_head(&mut tcp).expect("a request");
        let resp = answer(&head);
        if dribbled {
            dribble(&mut tcp, resp.as_bytes());
        } else {
            let _ = tcp.write_all(resp.as_bytes());
        }
        read_rest(&mut tcp);
    });
    (addr, h)
}

fn handshake_err(e: HandshakeError) -> Error {
    Error::Handshake(e)
}

/// tungstenite RUSTSEC-2023-0065 (quadratic header parsing), server side:
/// a 256 KiB request dribbled in writes of 1 to 16 bytes is parsed in
/// linear time when the limits allow it, and refused with 431 at the
/// default 16 KiB limit.
#[test]
fn rustsec_2023_0065_quadratic_header_parsing_server() {
    let expected = vec![
        Obs::note("101 Switching Protocols"),
        Obs::Accepted(Ok(())),
        Obs::note("every header reached the decision"),
        Obs::note("256 KiB head: within budget"),
        Obs::note("431 Request Header Fields Too Large"),
        Obs::Accepted(Err(handshake_err(HandshakeError::TooLarge))),
    ];
    check("RUSTSEC-2023-0065, server", expected, |a| {
        let mut out = Vec::new();
        let config = Config::default()
            .max_handshake_size(1 << 20)
            .max_headers(10_000)
            .handshake_timeout(None);
        let (n_tx, n_rx) = mpsc::channel();
        let l = a.listen(
            config,
            Box::new(move |r| {
                let _ = n_tx.send(r.headers().len());
                Ok(Accept::new())
            }),
        );
        let extra = long_headers(256 << 10);
        let req = format!("{}{extra}\r\n", request_head(l.addr()));
        let n_headers = req.matches("\r\n").count() - 2;
        let t0 = Instant::now();
        let mut tcp = tcp_connect(l.addr());
        dribble(&mut tcp, req.as_bytes());
        let head = read_head(&mut tcp).expect("a response");
        out.push(Obs::note(status(&head)));
        let accepted = l.accept_obs();
        out.push(accepted.0);
        out.push(Obs::note(
            if n_rx.recv_timeout(LIMIT).ok() == Some(n_headers) {
                "every header reached the decision".to_string()
            } else {
                "the decision saw another number of headers".to_string()
            },
        ));
        out.push(timed("256 KiB head", t0));
        drop(accepted.1);

        // Default limits: 431 once 16 KiB arrived, whatever follows.
        let l = a.listen(Config::default(), parity::accept_all());
        let mut tcp = tcp_connect(l.addr());
        let mut writer = tcp.try_clone().expect("clone");
        let req2 = format!("{}{extra}\r\n", request_head(l.addr()));
        let w = spawn_helper("dribbler", move || dribble(&mut writer, req2.as_bytes()));
        out.push(Obs::note(status(&read_rest(&mut tcp))));
        out.push(l.accept_obs().0);
        drop(tcp);
        w.join();
        out
    });
}

/// RUSTSEC-2023-0065, client side: a 101 response with a 256 KiB head,
/// dribbled, is parsed in linear time when the limits allow it, and
/// refused at the default limit.
#[test]
fn rustsec_2023_0065_quadratic_header_parsing_client() {
    let expected = vec![
        Obs::Connected(Ok(None)),
        Obs::note("256 KiB head: within budget"),
        Obs::Connected(Err(handshake_err(HandshakeError::TooLarge))),
    ];
    check("RUSTSEC-2023-0065, client", expected, |a| {
        let mut out = Vec::new();
        let extra = long_headers(256 << 10);
        for config in [
            Config::default()
                .max_handshake_size(1 << 20)
                .max_headers(10_000)
                .handshake_timeout(None),
            Config::default(),
        ] {
            let limited = config.max_handshake_size < (1 << 20);
            let e = extra.clone();
            let (addr, server) = raw_server(move |head| switching_protocols(head, &e), true);
            let t0 = Instant::now();
            let (obs, socket) = parity::connected_obs(a.connect_to(addr, config));
            out.push(obs);
            if !limited {
                out.push(timed("256 KiB head", t0));
            }
            drop(socket);
            server.join();
        }
        out
    });
}

/// rust-websocket RUSTSEC-2022-0035: a frame header declaring 2^62 bytes.
/// The adapter fails the connection with 1009 at once, without waiting
/// for (or allocating) the payload.
#[test]
fn rustsec_2022_0035_declared_length_2_pow_62() {
    let expected = |_role| {
        let mut v = failed(ProtocolError::FrameTooLarge);
        v.push(Obs::note("1009 before any payload: within budget"));
        v.extend(failed_wire(ProtocolError::FrameTooLarge));
        v
    };
    check_roles("RUSTSEC-2022-0035", expected, |a, role| {
        let t0 = Instant::now();
        with_raw_peer(
            a,
            role,
            Config::default(),
            move |p| {
                // Binary, FIN, length 127 + 2^62; masked when the raw peer
                // is the client. No payload follows.
                let mut h = vec![0x82];
                if role == Role::Server {
                    h.push(0x80 | 127);
                    h.extend_from_slice(&(1u64 << 62).to_be_bytes());
                    h.extend_from_slice(&MASK);
                } else {
                    h.push(127);
                    h.extend_from_slice(&(1u64 << 62).to_be_bytes());
                }
                p.write(&h);
                let mut wire = p.read_until_close();
                wire.extend(p.finish());
                wire.into_iter().map(Obs::from).collect()
            },
            move |s| {
                let mut out = s.drain();
                out.push(timed("1009 before any payload", t0));
                out
            },
        )
    });
}

/// ws-rs RUSTSEC-2020-0043 (unbounded outgoing queue), pings: a peer sends
/// 60 000 pings of 124 bytes (7.5 MiB of pongs to answer, more than the
/// socket buffers take: the peer's receive buffer is 16 KiB), then a text
/// message, and reads nothing until it is done. Every ping is delivered, then the text (the reading
/// side is not stuck writing pongs), and what waits to be written stays
/// under 192 KiB (the core coalesces pongs beyond 64 KiB; measured: up to
/// about 104 KiB on the async adapters).
#[test]
fn rustsec_2020_0043_ping_flood() {
    let expected = |_role| {
        vec![
            Obs::note("every ping received"),
            Obs::note("buffered_amount stayed under 192 KiB"),
            Obs::note("ping flood: within budget"),
            Obs::text("after the flood"),
            Obs::Recv(Err(Error::Closed(Box::new(info(
                None,
                None,
                false,
                Ending::Abnormal,
            ))))),
            Obs::End,
            Obs::note("the peer read pongs, then the end"),
        ]
    };
    check_roles("RUSTSEC-2020-0043, ping flood", expected, |a, role| {
        // 60 000 pings make ~7.9 MB of pongs, more than the loopback
        // buffers hold, so every adapter's queue bound is exercised: they
        // keep reading and the core coalesces pongs (ws-blocking's `recv`
        // writes them only as far as the stream takes them at once).
        let n: u32 = 60_000;
        let t0 = Instant::now();
        with_raw_peer(
            a,
            role,
            Config::default(),
            move |p| {
                // A small receive buffer (no autotuning): the adapter's
                // socket buffers alone cannot absorb the pongs, whatever
                // the machine's limits, so an adapter that waits in a pong
                // write stops reading and the flood stalls.
                socket2::SockRef::from(p.tcp())
                    .set_recv_buffer_size(16 << 10)
                    .expect("SO_RCVBUF");
                let mut batch = Vec::new();
                for i in 0..n {
                    let f = RawFrame::ping(i.to_be_bytes().repeat(31));
                    batch.push(f);
                    if batch.len() == 128 || i + 1 == n {
                        p.send_all(&batch);
                        batch.clear();
                    }
                }
                // Still reading nothing: data after the flood.
                p.send(RawFrame::text("after the flood"));
                p.shutdown_write();
                // Now read what came back: pongs, then the end.
                let mut pongs = 0usize;
                let end = loop {
                    match p.read() {
                        Wire::Frame { op: 0xA, .. } => pongs += 1,
                        w => break w,
                    }
                };
                let ok = pongs > 0 && pongs <= n as usize && matches!(end, Wire::Eof | Wire::Reset);
                vec![Obs::note(if ok {
                    "the peer read pongs, then the end".to_string()
                } else {
                    format!("the peer read {pongs} pongs, then {end:?}")
                })]
            },
            move |s| {
                let (mut pings, mut max_buffered) = (0u32, 0usize);
                let last = loop {
                    match s.recv() {
                        Some(Ok(Message::Ping(_))) => {
                            pings += 1;
                            max_buffered = max_buffered.max(s.buffered_amount());
                        }
                        other => break Obs::recv(other),
                    }
                };
                let mut out = vec![
                    Obs::note(if pings == n {
                        "every ping received".to_string()
                    } else {
                        format!("{pings} of {n} pings received")
                    }),
                    Obs::note(if max_buffered <= 192 << 10 {
                        "buffered_amount stayed under 192 KiB".to_string()
                    } else {
                        format!("buffered_amount reached {max_buffered}")
                    }),
                    timed("ping flood", t0),
                    last,
                ];
                out.push(s.recv_obs());
                out.push(s.recv_obs());
                // The pongs the peer's small buffer did not take yet, and
                // the end of the stream: `recv` writes its last words best
                // effort (the async adapters without waiting); a flush
                // writes the rest while the socket lives on.
                let _ = s.flush();
                out
            },
        )
    });
}

/// Node ws CVE-2021-32640 (ReDoS in `Sec-WebSocket-Protocol`): the client
/// offers `a<256 KiB of spaces>b, c`; the server picks `c`. Both ends
/// split the value (the server to check its pick, the client to check
/// the answer) in linear time.
#[test]
fn cve_2021_32640_redos_sec_websocket_protocol() {
    let expected = vec![
        Obs::Connected(Ok(Some("c".into()))),
        Obs::Accepted(Ok(())),
        Obs::note("handshake: within budget"),
    ];
    check("CVE-2021-32640", expected, |a| {
        let value = format!("a{}b, c", " ".repeat(256 << 10));
        let config = Config::default()
            .max_handshake_size(1 << 20)
            .handshake_timeout(None);
        let l = a.listen(config, Box::new(|_| Ok(Accept::new().protocol("c"))));
        let req = http::Request::get(format!("ws://{}/", l.addr()))
            .header("Sec-WebSocket-Protocol", value)
            .body(())
            .expect("request");
        let t0 = Instant::now();
        let (obs, client) = parity::connected_obs(a.connect(req, Config::default()));
        let (acc, server) = l.accept_obs();
        let out = vec![obs, acc, timed("handshake", t0)];
        drop((client, server));
        out
    });
}

/// Node ws CVE-2024-37890 (crash on too many headers), server side:
/// 10 000 headers get 431 and a handshake error, at the size limit by
/// default and at the header-count limit when the size allows them.
#[test]
fn cve_2024_37890_too_many_headers_server() {
    let expected = vec![
        Obs::note("431 Request Header Fields Too Large"),
        Obs::Accepted(Err(handshake_err(HandshakeError::TooLarge))),
        Obs::note("431 Request Header Fields Too Large"),
        Obs::Accepted(Err(handshake_err(HandshakeError::TooManyHeaders))),
    ];
    check("CVE-2024-37890, server", expected, |a| {
        let mut out = Vec::new();
        for config in [
            Config::default(),
            Config::default().max_handshake_size(1 << 20),
        ] {
            let l = a.listen(config, parity::accept_all());
            let req = format!("{}{}\r\n", request_head(l.addr()), many_headers(10_000));
            let mut tcp = tcp_connect(l.addr());
            let mut writer = tcp.try_clone().expect("clone");
            let w = spawn_helper("header-flood", move || {
                let _ = writer.write_all(req.as_bytes());
            });
            out.push(Obs::note(status(&read_rest(&mut tcp))));
            out.push(l.accept_obs().0);
            drop(tcp);
            w.join();
        }
        out
    });
}

/// CVE-2024-37890, client side: a 101 response with 10 000 headers is a
/// handshake error, not a crash.
#[test]
fn cve_2024_37890_too_many_headers_client() {
    let expected = vec![
        Obs::Connected(Err(handshake_err(HandshakeError::TooLarge))),
        Obs::Connected(Err(handshake_err(HandshakeError::TooManyHeaders))),
    ];
    check("CVE-2024-37890, client", expected, |a| {
        let mut out = Vec::new();
        for config in [
            Config::default(),
            Config::default().max_handshake_size(1 << 20),
        ] {
            let (addr, server) = raw_server(
                |head| switching_protocols(head, &many_headers(10_000)),
                false,
            );
            let (obs, socket) = parity::connected_obs(a.connect_to(addr, config));
            out.push(obs);
            drop(socket);
            server.join();
        }
        out
    });
}

/// Floods of tiny and empty continuation frames (Node ws, 2026): a
/// fragmented message followed by 200 000 empty (then 1-byte)
/// continuations fails with 1009 at the first fragment over
/// `max_fragments` (131 072 by default), in bounded time.
#[test]
fn continuation_flood() {
    let expected = |_role| {
        let mut v = Vec::new();
        for name in ["empty continuations", "1-byte continuations"] {
            v.push(Obs::note(name));
            v.extend(failed(ProtocolError::TooManyFragments));
            v.push(Obs::note("flood: within budget"));
            v.push(Wire::close(1009, &ProtocolError::TooManyFragments.to_string()).into());
            v.push(Obs::note("then the end"));
        }
        v
    };
    check_roles("continuation flood", expected, |a, role| {
        let mut out = Vec::new();
        for (name, payload) in [
            ("empty continuations", &b""[..]),
            ("1-byte continuations", &b"x"[..]),
        ] {
            out.push(Obs::note(name));
            let t0 = Instant::now();
            out.extend(with_raw_peer(
                a,
                role,
                Config::default(),
                move |p| {
                    let client = role == Role::Server;
                    let mut flood = RawFrame::binary(payload).fin(false).encode(client);
                    let one = RawFrame::cont(payload).fin(false).encode(client);
                    for _ in 0..200_000 {
                        flood.extend_from_slice(&one);
                    }
                    // Written from another thread: the adapter stops
                    // reading once it failed the connection.
                    let mut w = p.tcp().try_clone().expect("clone");
                    let writer = spawn_helper("flood", move || {
                        let _ = w.write_all(&flood);
                    });
                    let close = p.read();
                    p.shutdown_write();
                    let end = loop {
                        match p.read() {
                            w @ (Wire::Eof | Wire::Reset) => break w,
                            Wire::Frame { .. } | Wire::Close(_) => {}
                        }
                    };
                    writer.join();
                    vec![
                        close.into(),
                        Obs::note(match end {
                            Wire::Eof | Wire::Reset => "then the end".to_string(),
                            w => format!("then {w:?}"),
                        }),
                    ]
                },
                move |s| {
                    let mut out = s.drain();
                    out.push(timed("flood", t0));
                    out
                },
            ));
        }
        out
    });
}

/// Python websockets CVE-2018-1000518 (decompression bomb): with
/// permessage-deflate negotiated between two adapters, a 16 MiB message
/// of zeros compresses to about 16 KiB; the receiver, limited to 1 MiB,
/// fails the connection with 1009 instead of inflating it (the core stops
/// inflating at the limit; `ws-proto/tests/advisories.rs` checks what it
/// allocates).
#[test]
fn cve_2018_1000518_decompression_bomb() {
    let e = ProtocolError::MessageTooLarge;
    let reason = e.to_string();
    let expected = |_role| {
        let mut v = vec![Obs::note("deflate negotiated"), Obs::Sent(Ok(()))];
        // The sender sees the receiver's close frame: a clean close.
        v.extend(clean_end(
            (1009, ""),
            (1009, &reason),
            true,
            Obs::close(1009, &reason),
        ));
        // The receiver failed the connection.
        v.extend(failed(e));
        v.push(Obs::note("bomb: within budget"));
        v
    };
    check_roles(
        "CVE-2018-1000518 (adapter as the receiver)",
        expected,
        |a, role| {
            let deflate = Config::default().deflate(Some(DeflateConfig::default()));
            let limited = deflate.clone().max_message_size(1 << 20);
            // `role` is the receiver's.
            let (server_config, client_config) = match role {
                Role::Server => (limited, deflate),
                Role::Client => (deflate, limited),
            };
            let l = a.listen(server_config, parity::accept_all());
            let (c, resp) = a.connect_to(l.addr(), client_config).expect("connect");
            let s = l.accept().expect("accept");
            let negotiated = resp
                .headers()
                .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
                .is_some_and(|v| v.as_bytes().starts_with(b"permessage-deflate"));
            let (mut sender, mut receiver) = match role {
                Role::Server => (c, s),
                Role::Client => (s, c),
            };
            let t0 = Instant::now();
            let mut out = vec![
                Obs::note(if negotiated {
                    "deflate negotiated"
                } else {
                    "deflate not negotiated"
                }),
                sender.send_obs(Message::binary(vec![0u8; 16 << 20])),
            ];
            // Both ends at once: the sender answers the receiver's close
            // frame while the receiver waits for that answer.
            let sender = spawn_helper("sender", move || sender.drain());
            let got = receiver.drain();
            out.extend(sender.join());
            out.extend(got);
            out.push(timed("bomb", t0));
            out
        },
    );
}

/// The `Sec-WebSocket-Key` and the mask keys of 256 one-byte messages of
/// one client connection of adapter `a`, read by a raw server.
fn client_keys(a: &dyn parity::Adapter) -> (String, Vec<[u8; 4]>) {
    const N: usize = 256;
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("address");
    let server = spawn_helper("raw-server", move || {
        let mut tcp = tcp_accept(&l);
        let head = read_head(&mut tcp).expect("a request");
        tcp.write_all(switching_protocols(&head, "").as_bytes())
            .expect("write 101");
        let key = parity::raw::header(&head, "sec-websocket-key")
            .expect("key")
            .to_string();
        // Each frame: 2 header bytes, 4 mask bytes, 1 payload byte.
        let mut b = vec![0u8; N * 7];
        tcp.read_exact(&mut b).expect("the frames");
        let masks = b
            .chunks(7)
            .map(|f| {
                assert_eq!(f[..2], [0x82, 0x81], "a masked 1-byte binary frame");
                [f[2], f[3], f[4], f[5]]
            })
            .collect();
        (key, masks)
    });
    let (mut c, _) = a.connect_to(addr, Config::default()).expect("connect");
    for i in 0..N {
        c.send(Message::binary(vec![i as u8])).expect("send");
    }
    let keys = server.join();
    drop(c);
    keys
}

/// gorilla/websocket GHSA-w67g-5rqw-f597 (predictable mask keys): the
/// client adapters seed each connection from the OS, so handshake keys
/// and mask keys differ between connections and do not repeat within
/// one.
#[test]
fn ghsa_w67g_5rqw_f597_predictable_mask_keys() {
    let expected = vec![
        Obs::note("handshake keys differ"),
        Obs::note("mask keys distinct within each connection"),
        Obs::note("mask keys differ between connections"),
        Obs::note("no all-zero mask key"),
    ];
    check("GHSA-w67g-5rqw-f597", expected, |a| {
        let (key1, masks1) = client_keys(a);
        let (key2, masks2) = client_keys(a);
        let distinct = |m: &[[u8; 4]]| m.iter().collect::<std::collections::HashSet<_>>().len();
        let same = masks1.iter().zip(&masks2).filter(|(x, y)| x == y).count();
        let note =
            |ok: bool, yes: &str, no: String| Obs::note(if ok { yes.to_string() } else { no });
        vec![
            note(
                key1 != key2,
                "handshake keys differ",
                format!("same key {key1}"),
            ),
            note(
                distinct(&masks1) >= 255 && distinct(&masks2) >= 255,
                "mask keys distinct within each connection",
                format!("{} and {} distinct", distinct(&masks1), distinct(&masks2)),
            ),
            note(
                same <= 1,
                "mask keys differ between connections",
                format!("{same} equal at the same position"),
            ),
            note(
                masks1.iter().chain(&masks2).all(|k| *k != [0; 4]),
                "no all-zero mask key",
                "an all-zero mask key".to_string(),
            ),
        ]
    });
}

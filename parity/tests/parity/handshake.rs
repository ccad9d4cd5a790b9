//! Opening handshakes: rejection, refusal of bad requests, bad responses,
//! timeouts, a peer that leaves during the handshake.

use parity::raw::{read_head, switching_protocols, tcp_accept, tcp_connect, KEY};
use parity::{
    accept_all, check, connected_obs, http, spawn_helper, Config, Error, HandshakeError, Obs,
    Reject,
};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Reads what is left on `tcp` until the end, as text.
fn rest(tcp: &mut std::net::TcpStream) -> String {
    let mut v = Vec::new();
    tcp.read_to_end(&mut v).expect("read to the end");
    String::from_utf8_lossy(&v).into_owned()
}

fn reject() -> Reject {
    Reject::new(403).body("no token").header(
        http::HeaderName::from_static("x-reason"),
        http::HeaderValue::from_static("missing-token"),
    )
}

fn handshake_err(e: HandshakeError) -> Error {
    Error::Handshake(e)
}

#[test]
fn rejection_between_two_adapters() {
    let expected = vec![
        Obs::Connected(Err(handshake_err(HandshakeError::UnexpectedStatus {
            status: 403,
            headers: vec![
                ("x-reason".into(), b"missing-token".to_vec()),
                ("content-length".into(), b"8".to_vec()),
                ("connection".into(), b"close".to_vec()),
            ],
            body: b"no token".to_vec(),
        }))),
        Obs::Accepted(Err(handshake_err(HandshakeError::Rejected(403)))),
    ];
    check("rejection between two adapters", expected, |a| {
        let l = a.listen(Config::default(), Box::new(|_| Err(reject())));
        let addr = l.addr();
        let (client, _) = connected_obs(a.connect_to(addr, Config::default()));
        vec![client, l.accept_obs().0]
    });
}

#[test]
fn rejection_on_the_wire() {
    // What a raw client reads from a rejecting server, byte for byte.
    let expected = vec![
        Obs::note(
            "HTTP/1.1 403 Forbidden\r\nx-reason: missing-token\r\ncontent-length: 8\r\nconnection: close\r\n\r\nno token",
        ),
        Obs::Accepted(Err(handshake_err(HandshakeError::Rejected(403)))),
    ];
    check("rejection on the wire", expected, |a| {
        let l = a.listen(Config::default(), Box::new(|_| Err(reject())));
        let mut tcp = tcp_connect(l.addr());
        let req = format!(
            "GET /chat HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            l.addr()
        );
        tcp.write_all(req.as_bytes()).expect("write request");
        vec![Obs::note(rest(&mut tcp)), l.accept_obs().0]
    });
}

#[test]
fn client_sees_status_headers_and_body_of_a_refusal() {
    let expected = vec![Obs::Connected(Err(handshake_err(
        HandshakeError::UnexpectedStatus {
            status: 404,
            headers: vec![
                ("content-length".into(), b"9".to_vec()),
                ("x-trace".into(), b"abc".to_vec()),
            ],
            body: b"not found".to_vec(),
        },
    )))];
    check("client sees a refusal", expected, |a| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("address");
        let server = spawn_helper("raw-server", move || {
            let mut tcp = tcp_accept(&l);
            read_head(&mut tcp).expect("request");
            tcp.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nX-Trace: abc\r\n\r\nnot found",
            )
            .expect("write");
            // Wait for the client to leave.
            rest(&mut tcp);
        });
        let out = vec![connected_obs(a.connect_to(addr, Config::default())).0];
        server.join();
        out
    });
}

/// The `Sec-WebSocket-Accept` value for the key of request `head`.
fn accept_for(head: &str) -> String {
    let key = parity::raw::header(head, "sec-websocket-key").expect("key");
    ws_proto::accept_key(key.as_bytes())
}

#[test]
fn bad_responses() {
    type Case = (&'static str, fn(&str) -> String, HandshakeError);
    let cases: Vec<Case> = vec![
        (
            "wrong accept key",
            |_| {
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n".into()
            },
            HandshakeError::BadResponse("wrong Sec-WebSocket-Accept".into()),
        ),
        (
            "no upgrade header",
            |h| {
                format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n", accept_for(h))
            },
            HandshakeError::BadResponse("missing `Upgrade: websocket`".into()),
        ),
        (
            "an extension that was not offered",
            |h| switching_protocols(h, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            HandshakeError::BadResponse("extension that was not offered".into()),
        ),
        (
            "a subprotocol that was not offered",
            |h| switching_protocols(h, "Sec-WebSocket-Protocol: chat\r\n"),
            HandshakeError::BadResponse("subprotocol that was not offered".into()),
        ),
        (
            "not HTTP",
            |_| "SSH-2.0-OpenSSH\r\n\r\n".into(),
            HandshakeError::Malformed("invalid HTTP version".into()),
        ),
    ];
    let expected: Vec<Obs> = cases
        .iter()
        .flat_map(|(name, _, e)| {
            [
                Obs::note(*name),
                Obs::Connected(Err(handshake_err(e.clone()))),
            ]
        })
        .collect();
    check("bad responses", expected, move |a| {
        let mut out = Vec::new();
        for (name, respond, _) in cases.clone() {
            out.push(Obs::note(name));
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = l.local_addr().expect("address");
            let server = spawn_helper("raw-server", move || {
                let mut tcp = tcp_accept(&l);
                let head = read_head(&mut tcp).expect("request");
                tcp.write_all(respond(&head).as_bytes()).expect("write");
                rest(&mut tcp);
            });
            out.push(connected_obs(a.connect_to(addr, Config::default())).0);
            server.join();
        }
        out
    });
}

#[test]
fn bad_requests_get_an_http_error() {
    type Case = (&'static str, &'static str, HandshakeError, &'static str);
    let cases: Vec<Case> = vec![
        (
            "no key",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
            HandshakeError::BadRequest("missing or repeated Sec-WebSocket-Key".into()),
            "400 Bad Request",
        ),
        (
            "POST",
            "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            HandshakeError::BadRequest("method is not GET".into()),
            "405 Method Not Allowed",
        ),
        (
            "version 12",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n",
            HandshakeError::UnsupportedVersion("12".into()),
            "426 Upgrade Required",
        ),
    ];
    let expected: Vec<Obs> = cases
        .iter()
        .flat_map(|(name, _, e, status)| {
            [
                Obs::note(*name),
                Obs::note(*status),
                Obs::Accepted(Err(handshake_err(e.clone()))),
            ]
        })
        .collect();
    check("bad requests get an HTTP error", expected, move |a| {
        let mut out = Vec::new();
        for (name, req, _, _) in cases.clone() {
            out.push(Obs::note(name));
            let l = a.listen(Config::default(), accept_all());
            let mut tcp = tcp_connect(l.addr());
            tcp.write_all(req.as_bytes()).expect("write request");
            let resp = rest(&mut tcp);
            let status = resp
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("HTTP/1.1 "))
                .unwrap_or(&resp)
                .to_string();
            out.push(Obs::note(status));
            out.push(l.accept_obs().0);
        }
        out
    });
}

/// The handshake timeout of [`handshake_timeouts`].
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether at least the handshake timeout passed since `t0`.
fn not_early(t0: Instant) -> Obs {
    let d = t0.elapsed();
    Obs::note(if d >= HANDSHAKE_TIMEOUT {
        "not before the timeout".to_string()
    } else {
        format!("after {d:?} only")
    })
}

#[test]
fn handshake_timeouts() {
    let expected = vec![
        Obs::note("silent server"),
        Obs::Connected(Err(handshake_err(HandshakeError::Timeout))),
        Obs::note("not before the timeout"),
        Obs::note("the client left; after its request it sent: \"\""),
        Obs::note("silent client"),
        Obs::Accepted(Err(handshake_err(HandshakeError::Timeout))),
        Obs::note("not before the timeout"),
        Obs::note("the server left, sending: \"\""),
    ];
    check("handshake timeouts", expected, |a| {
        let config = Config::default().handshake_timeout(Some(HANDSHAKE_TIMEOUT));
        let mut out = vec![Obs::note("silent server")];
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("address");
        let server = spawn_helper("raw-server", move || {
            let mut tcp = tcp_accept(&l);
            read_head(&mut tcp).expect("request");
            rest(&mut tcp)
        });
        let t0 = Instant::now();
        out.push(connected_obs(a.connect_to(addr, config.clone())).0);
        out.push(not_early(t0));
        out.push(Obs::note(format!(
            "the client left; after its request it sent: {:?}",
            server.join()
        )));
        out.push(Obs::note("silent client"));
        let l = a.listen(config, accept_all());
        // The server's clock starts when it accepts, which can come before
        // `tcp_connect` returns here: start ours before connecting.
        let t0 = Instant::now();
        let mut tcp = tcp_connect(l.addr());
        out.push(l.accept_obs().0);
        out.push(not_early(t0));
        out.push(Obs::note(format!(
            "the server left, sending: {:?}",
            rest(&mut tcp)
        )));
        out
    });
}

#[test]
fn peer_leaves_during_the_handshake() {
    let expected = vec![
        Obs::note("server leaves"),
        Obs::Connected(Err(handshake_err(HandshakeError::Eof))),
        Obs::note("client leaves"),
        Obs::Accepted(Err(handshake_err(HandshakeError::Eof))),
    ];
    check("peer leaves during the handshake", expected, |a| {
        let mut out = vec![Obs::note("server leaves")];
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("address");
        let server = spawn_helper("raw-server", move || {
            let mut tcp = tcp_accept(&l);
            read_head(&mut tcp).expect("request");
        });
        out.push(connected_obs(a.connect_to(addr, Config::default())).0);
        server.join();
        out.push(Obs::note("client leaves"));
        let l = a.listen(Config::default(), accept_all());
        let mut tcp = tcp_connect(l.addr());
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .expect("half a request");
        drop(tcp);
        out.push(l.accept_obs().0);
        out
    });
}

#[test]
fn handshake_bytes_on_the_wire() {
    // The request each client writes (with its random key and the port
    // replaced) and the 101 each server writes, byte for byte.
    let expected = vec![
        Obs::note("GET / HTTP/1.1\r\nHost: <addr>\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: <key>\r\nSec-WebSocket-Version: 13\r\n\r\n"),
        Obs::note("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
    ];
    check("handshake bytes on the wire", expected, |a| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("address");
        let server = spawn_helper("raw-server", move || {
            let mut tcp = tcp_accept(&l);
            let head = read_head(&mut tcp).expect("request");
            tcp.write_all(switching_protocols(&head, "").as_bytes())
                .expect("write 101");
            let key = parity::raw::header(&head, "sec-websocket-key").expect("key");
            head.replace(key, "<key>")
                .replace(&addr.to_string(), "<addr>")
        });
        let (_client, _) = a.connect_to(addr, Config::default()).expect("connect");
        let request = server.join();
        let l = a.listen(Config::default(), accept_all());
        let mut tcp = tcp_connect(l.addr());
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            l.addr()
        );
        tcp.write_all(req.as_bytes()).expect("write request");
        let response = read_head(&mut tcp).expect("response");
        let _server = l.accept().expect("accepted");
        vec![Obs::note(request), Obs::note(response)]
    });
}

#[test]
fn frames_right_behind_the_handshake() {
    // The peer's first frames arrive with the end of its handshake (in one
    // write), or its handshake arrives one byte per write.
    use crate::clean_end;
    use parity::raw::{RawFrame, RawPeer};
    use parity::{check_roles, Role, Wire};
    let expected = |_role| {
        let mut v = Vec::new();
        for case in ["in one write", "one byte per write"] {
            v.push(Obs::note(case));
            v.extend([Obs::text("early"), Obs::ping(b"p"), Obs::Closed(Ok(()))]);
            v.extend(clean_end(
                (1000, ""),
                (1000, ""),
                false,
                Obs::close(1000, ""),
            ));
            v.extend([
                Wire::pong(b"p").into(),
                Wire::close(1000, "").into(),
                Wire::Eof.into(),
            ]);
        }
        v
    };
    check_roles("frames right behind the handshake", expected, |a, role| {
        let mut out = Vec::new();
        for bytewise in [false, true] {
            out.push(Obs::note(if bytewise {
                "one byte per write"
            } else {
                "in one write"
            }));
            let write = move |tcp: &mut std::net::TcpStream, b: &[u8]| {
                if bytewise {
                    for byte in b {
                        tcp.write_all(&[*byte]).expect("write");
                    }
                } else {
                    tcp.write_all(b).expect("write");
                }
            };
            let client = role == Role::Server;
            let frames: Vec<u8> = [RawFrame::text("early"), RawFrame::ping("p")]
                .iter()
                .flat_map(|f| f.encode(client))
                .collect();
            // The raw peer's script once its handshake is done.
            let rest_of_it = |mut p: RawPeer| {
                let mut wire = vec![p.read()];
                wire.extend(p.read_until_close());
                wire.extend(p.answer_close(RawFrame::close(1000, "")));
                wire.into_iter().map(Obs::from).collect::<Vec<_>>()
            };
            let (mut s, peer) = match role {
                Role::Client => {
                    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                    let addr = l.local_addr().expect("address");
                    let peer = spawn_helper("raw-server", move || {
                        let mut tcp = tcp_accept(&l);
                        let head = read_head(&mut tcp).expect("request");
                        let mut b = switching_protocols(&head, "").into_bytes();
                        b.extend(frames);
                        write(&mut tcp, &b);
                        rest_of_it(RawPeer::new(tcp, false))
                    });
                    (
                        a.connect_to(addr, Config::default()).expect("connect").0,
                        peer,
                    )
                }
                Role::Server => {
                    let l = a.listen(Config::default(), accept_all());
                    let addr = l.addr();
                    let peer = spawn_helper("raw-client", move || {
                        let mut tcp = tcp_connect(addr);
                        let mut b = format!(
                            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                        )
                        .into_bytes();
                        b.extend(frames);
                        write(&mut tcp, &b);
                        read_head(&mut tcp).expect("101");
                        rest_of_it(RawPeer::new(tcp, true))
                    });
                    (l.accept().expect("accept"), peer)
                }
            };
            out.extend([s.recv_obs(), s.recv_obs(), s.close_obs(1000, "")]);
            out.extend(s.drain());
            out.extend(peer.join());
        }
        out
    });
}

#[test]
fn urls_the_client_refuses() {
    // The plain connect functions refuse wss:// (TLS has its own `tls`
    // functions behind the `rustls` feature), with or without a port,
    // before any connection is made.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("address");
    let urls = [
        format!("wss://{addr}/"),
        "wss://127.0.0.1/".to_string(),
        format!("ftp://{addr}/"),
    ];
    let expected: Vec<Obs> = urls
        .iter()
        .flat_map(|u| {
            [
                Obs::note(u.replace(&addr.to_string(), "<addr>")),
                Obs::Connected(Err(Error::Usage(parity::UsageError::InvalidRequest))),
            ]
        })
        .collect();
    check("URLs the client refuses", expected, move |a| {
        // Nobody answers on `addr`: a client that connects anyway fails
        // with a handshake timeout instead.
        let config = Config::default().handshake_timeout(Some(Duration::from_millis(300)));
        let mut out = Vec::new();
        for u in &urls {
            out.push(Obs::note(u.replace(&addr.to_string(), "<addr>")));
            let req = http::Request::get(u.as_str()).body(()).expect("request");
            out.push(connected_obs(a.connect(req, config.clone())).0);
        }
        out
    });
    drop(l);
}

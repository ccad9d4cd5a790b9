//! Core server features through every adapter: the heartbeat
//! (`ping_interval`, `idle_timeout`), prepared (broadcast) messages, and
//! the send buffer bound with its policy.

use crate::{clean_end, info};
use parity::raw::RawFrame;
use parity::{
    accept_all, check, check_roles, with_raw_peer, Config, DeflateConfig, Ending, Error, Message,
    Obs, PreparedMessage, Role, SendBufferPolicy, UsageError, Wire,
};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

fn heartbeat() -> Config {
    Config::default()
        .ping_interval(Some(100 * MS))
        .idle_timeout(Some(600 * MS))
}

/// A peer that reads everything and answers nothing is pinged, then
/// dropped: `recv` ends with the idle timeout, without a close handshake.
#[test]
fn heartbeat_drops_a_silent_peer() {
    let ended = info(None, None, false, Ending::IdleTimeout);
    let expected = |_role| {
        vec![
            Obs::err(Error::Closed(Box::new(ended.clone()))),
            Obs::End,
            Obs::Info(Some(ended.clone())),
            Obs::note("pinged (empty pings), then the end of the stream"),
        ]
    };
    check_roles("heartbeat drops a silent peer", expected, |a, role| {
        with_raw_peer(
            a,
            role,
            heartbeat(),
            |p| {
                let mut pings = 0;
                let end = loop {
                    match p.read() {
                        w if w == Wire::ping(b"") => pings += 1,
                        w => break w,
                    }
                };
                // The number of pings depends on how punctual the timers
                // are; at least one must come before the end.
                vec![Obs::note(if pings >= 1 && end == Wire::Eof {
                    "pinged (empty pings), then the end of the stream".to_string()
                } else {
                    format!("{pings} pings, then {end:?}")
                })]
            },
            |s| s.drain(),
        )
    });
}

/// A peer that answers the pings stays connected well past the idle
/// timeout; it then closes normally.
#[test]
fn heartbeat_keeps_a_responsive_peer() {
    const ANSWERED: usize = 10; // 10 pings at 100 ms: past the 600 ms idle timeout
    let expected = |_role| {
        let mut v = vec![Obs::note(format!("{ANSWERED} pongs received"))];
        v.extend(clean_end(
            (1000, ""),
            (1000, "done"),
            true,
            Obs::close(1000, "done"),
        ));
        v.extend([
            Obs::note(format!("answered {ANSWERED} empty pings")),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("heartbeat keeps a responsive peer", expected, |a, role| {
        with_raw_peer(
            a,
            role,
            heartbeat(),
            |p| {
                let mut answered = 0;
                let mut other = Vec::new();
                while answered < ANSWERED {
                    match p.read() {
                        w if w == Wire::ping(b"") => {
                            p.send(RawFrame::pong(b""));
                            answered += 1;
                        }
                        w => {
                            other.push(w);
                            break;
                        }
                    }
                }
                p.send(RawFrame::close(1000, "done"));
                // A ping may still cross our close frame.
                let echo = loop {
                    match p.read() {
                        w if w == Wire::ping(b"") => continue,
                        w => break w,
                    }
                };
                let mut out = vec![Obs::note(if other.is_empty() {
                    format!("answered {answered} empty pings")
                } else {
                    format!("answered {answered} pings, then {other:?}")
                })];
                out.push(echo.into());
                out.extend(p.finish().into_iter().map(Obs::from));
                out
            },
            |s| {
                let mut pongs = 0;
                let first = loop {
                    let o = s.recv_obs();
                    if o == Obs::pong(b"") {
                        pongs += 1;
                    } else {
                        break o;
                    }
                };
                let mut out = vec![Obs::note(format!("{pongs} pongs received")), first];
                out.extend(s.drain());
                out
            },
        )
    });
}

/// A prepared message goes out as a normal send would (the raw peer
/// checks the frames); a client refuses it.
#[test]
fn prepared_messages() {
    let big = crate::binary_of(70_000);
    let expected = {
        let big = big.clone();
        move |role| match role {
            Role::Server => {
                let mut v = vec![Obs::Sent(Ok(())), Obs::Sent(Ok(())), Obs::Closed(Ok(()))];
                v.extend(clean_end(
                    (1000, ""),
                    (1000, ""),
                    false,
                    Obs::close(1000, ""),
                ));
                v.extend([
                    Wire::text("to everyone").into(),
                    Wire::binary(&big).into(),
                    Wire::close(1000, "").into(),
                    Wire::Eof.into(),
                ]);
                v
            }
            Role::Client => {
                let mut v = vec![
                    Obs::Sent(Err(Error::Usage(UsageError::ServerOnly))),
                    Obs::Closed(Ok(())),
                ];
                v.extend(clean_end(
                    (1000, ""),
                    (1000, ""),
                    false,
                    Obs::close(1000, ""),
                ));
                v.extend([Wire::close(1000, "").into(), Wire::Eof.into()]);
                v
            }
        }
    };
    check_roles("prepared messages", expected, move |a, role| {
        let big = big.clone();
        with_raw_peer(
            a,
            role,
            Config::default(),
            |p| {
                let mut out: Vec<Obs> = Vec::new();
                loop {
                    let w = p.read();
                    let close = matches!(w, Wire::Close(_));
                    out.push(w.into());
                    if close || out.len() > 4 {
                        break;
                    }
                }
                out.extend(
                    p.answer_close(RawFrame::close(1000, ""))
                        .into_iter()
                        .map(Obs::from),
                );
                out
            },
            move |s| {
                let mut out = Vec::new();
                out.push(Obs::Sent(
                    s.send_prepared(&PreparedMessage::text("to everyone")),
                ));
                if role == Role::Server {
                    out.push(Obs::Sent(s.send_prepared(&PreparedMessage::binary(big))));
                }
                out.push(s.close_obs(1000, ""));
                out.extend(s.drain());
                out
            },
        )
    });
}

/// A prepared message compressed once reaches a deflate client of the
/// same adapter intact, between normally compressed messages (the
/// connection compresses with context takeover around it).
#[test]
fn prepared_messages_with_deflate() {
    let text = crate::text_of(20_000);
    let expected = {
        let t = text.clone();
        vec![
            Obs::note("the server negotiated permessage-deflate"),
            Obs::text(&t),
            Obs::text(&t),
            Obs::text(&t),
            Obs::note("the server's sends: all Ok"),
        ]
    };
    check("prepared messages with deflate", expected, move |a| {
        let text = text.clone();
        let config = Config::default().deflate(Some(DeflateConfig::default()));
        let l = a.listen(config.clone(), accept_all());
        let addr = l.addr();
        let (mut client, resp) = a.connect_to(addr, config.clone()).expect("connect");
        let mut server = l.accept().expect("accept");
        let negotiated = resp
            .headers()
            .get("sec-websocket-extensions")
            .is_some_and(|v| v.as_bytes().starts_with(b"permessage-deflate"));
        let msg = PreparedMessage::text(text.clone()).with_deflate(&DeflateConfig::default());
        let sends = [
            server.send(Message::text(text.clone())),
            server.send_prepared(&msg),
            server.send(Message::text(text.clone())),
        ];
        let mut out = vec![Obs::note(if negotiated {
            "the server negotiated permessage-deflate"
        } else {
            "no permessage-deflate"
        })];
        for _ in 0..3 {
            out.push(client.recv_obs());
        }
        out.push(Obs::note(if sends.iter().all(Result::is_ok) {
            "the server's sends: all Ok".to_string()
        } else {
            format!("the server's sends: {sends:?}")
        }));
        out
    });
}

/// The send buffer bound (a high-water mark): `feed` fills the queue past
/// it; then `feed` is refused under either policy (it cannot wait), and
/// `send` is refused with `Fail` (nothing queued, nothing lost) or first
/// writes the queue out with `Wait`.
#[test]
fn send_buffer_policy() {
    let chunk = |b: u8| Message::binary(vec![b; 600]);
    let full = || Obs::Sent(Err(Error::Usage(UsageError::SendBufferFull)));
    let expected = move |role| {
        // Two frames of 600 bytes and a 4-byte header, plus the mask keys
        // from a client.
        let queued = if role == Role::Client { 1216 } else { 1208 };
        let mut v = Vec::new();
        for policy in ["Fail", "Wait"] {
            v.push(Obs::note(policy));
            v.push(Obs::Sent(Ok(()))); // feed a
            v.push(Obs::Sent(Ok(()))); // feed b: below the bound, taken
            v.push(Obs::Buffered(queued));
            v.push(full()); // feed c
            if policy == "Fail" {
                v.push(full()); // send d
                v.push(Obs::Buffered(queued));
                v.push(Obs::Sent(Ok(()))); // flush
            } else {
                v.push(Obs::Sent(Ok(()))); // send d: writes a and b first
                v.push(Obs::Buffered(0));
            }
            v.push(Obs::Closed(Ok(())));
            v.extend(clean_end(
                (1000, ""),
                (1000, ""),
                false,
                Obs::close(1000, ""),
            ));
            v.push(Wire::binary(&[b'a'; 600]).into());
            v.push(Wire::binary(&[b'b'; 600]).into());
            if policy == "Wait" {
                v.push(Wire::binary(&[b'd'; 600]).into());
            }
            v.push(Wire::close(1000, "").into());
            v.push(Wire::Eof.into());
        }
        v
    };
    check_roles("send buffer policy", expected, move |a, role| {
        let mut all = Vec::new();
        for policy in [SendBufferPolicy::Fail, SendBufferPolicy::Wait] {
            let config = Config::default()
                .max_send_buffer(1000)
                .send_buffer_policy(policy);
            all.push(Obs::note(format!("{policy:?}")));
            all.extend(with_raw_peer(
                a,
                role,
                config,
                |p| {
                    let mut out: Vec<Obs> = Vec::new();
                    loop {
                        let w = p.read();
                        let close = matches!(w, Wire::Close(_));
                        out.push(w.into());
                        if close || out.len() > 5 {
                            break;
                        }
                    }
                    out.extend(
                        p.answer_close(RawFrame::close(1000, ""))
                            .into_iter()
                            .map(Obs::from),
                    );
                    out
                },
                move |s| {
                    let mut out = vec![
                        Obs::Sent(s.feed(chunk(b'a'))),
                        Obs::Sent(s.feed(chunk(b'b'))),
                        Obs::Buffered(s.buffered_amount()),
                        Obs::Sent(s.feed(chunk(b'c'))),
                        Obs::Sent(s.send(chunk(b'd'))),
                        Obs::Buffered(s.buffered_amount()),
                    ];
                    if policy == SendBufferPolicy::Fail {
                        out.push(Obs::Sent(s.flush()));
                    }
                    out.push(s.close_obs(1000, ""));
                    out.extend(s.drain());
                    out
                },
            ));
        }
        all
    });
}

/// What a raw peer that stopped reading sees once told to read again: the
/// frames that were written, then the end of the stream.
fn read_to_the_end(p: &mut parity::raw::RawPeer) -> Vec<Obs> {
    for _ in 0..100_000 {
        match p.read() {
            Wire::Eof | Wire::Reset => return vec![Obs::note("the stream ended")],
            Wire::Close(c) => return vec![Obs::note(format!("a close frame {c:?}"))],
            _ => {}
        }
    }
    vec![Obs::note("the stream did not end")]
}

/// A peer that stops reading (and sends nothing) blocks `send` once the
/// socket buffers are full; the heartbeat's idle timeout still runs and
/// ends the blocked send with an error, and `recv` reports the ending.
#[test]
fn heartbeat_ends_a_send_blocked_by_a_dead_peer() {
    let ended = info(None, None, false, Ending::IdleTimeout);
    let timed_out = Error::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let expected = move |_role| {
        vec![
            Obs::note("sends went through until the socket was full"),
            Obs::Sent(Err(timed_out.clone())),
            Obs::err(Error::Closed(Box::new(ended.clone()))),
            Obs::End,
            Obs::Info(Some(ended.clone())),
            Obs::note("the stream ended"),
        ]
    };
    check_roles("heartbeat ends a blocked send", expected, |a, role| {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        with_raw_peer(
            a,
            role,
            heartbeat(),
            move |p| {
                go_rx.recv_timeout(parity::LIMIT).expect("told to read");
                read_to_the_end(p)
            },
            move |s| {
                let chunk = Message::binary(vec![0x5a; 256 << 10]);
                let mut sent = 0usize;
                let err = loop {
                    match s.send(chunk.clone()) {
                        Ok(()) => sent += 1,
                        Err(e) => break e,
                    }
                    if sent > 256 {
                        break Error::Usage(UsageError::Closed); // 64 MiB: never blocked
                    }
                };
                let mut out = vec![
                    Obs::note(if sent <= 64 {
                        "sends went through until the socket was full".to_string()
                    } else {
                        format!("{sent} sends went through")
                    }),
                    Obs::Sent(Err(err)),
                ];
                out.extend(s.drain());
                let _ = go_tx.send(());
                out
            },
        )
    });
}

/// The same while the application waits in `recv` with more than the
/// adapters' read pause (1 MiB) unwritten: reading stops, the timers do
/// not, and the idle timeout ends the connection.
#[test]
fn heartbeat_ends_a_recv_stalled_by_a_dead_peer() {
    let ended = info(None, None, false, Ending::IdleTimeout);
    let expected = move |_role| {
        vec![
            Obs::Sent(Ok(())),
            Obs::Sent(Ok(())),
            Obs::Sent(Ok(())),
            Obs::err(Error::Closed(Box::new(ended.clone()))),
            Obs::End,
            Obs::Info(Some(ended.clone())),
            Obs::note("the stream ended"),
        ]
    };
    check_roles("heartbeat ends a stalled recv", expected, |a, role| {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        with_raw_peer(
            a,
            role,
            heartbeat(),
            move |p| {
                go_rx.recv_timeout(parity::LIMIT).expect("told to read");
                read_to_the_end(p)
            },
            move |s| {
                // 12 MiB queued: more than the socket buffers take.
                let chunk = Message::binary(vec![0x5a; 4 << 20]);
                let mut out: Vec<Obs> = (0..3).map(|_| Obs::Sent(s.feed(chunk.clone()))).collect();
                out.extend(s.drain());
                let _ = go_tx.send(());
                out
            },
        )
    });
}

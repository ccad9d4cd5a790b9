//! Closing: from each side, with codes and reasons; a peer that vanishes;
//! a peer that never answers.

use crate::{abnormal, after_end, after_end_expected, clean_end, failed, failed_wire, info};
use parity::raw::RawFrame;
use parity::{
    check, check_roles, with_raw_peer, Config, Ending, Error, Message, Obs, ProtocolError, Role,
    UsageError, Wire,
};
use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The close timeout of the timeout scenarios.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(300);

fn usage(e: UsageError) -> Obs {
    Obs::Closed(Err(Error::Usage(e)))
}

#[test]
fn close_from_the_adapter() {
    let expected = |_role| {
        let mut v = vec![
            usage(UsageError::InvalidCloseCode(1006)),
            usage(UsageError::InvalidCloseCode(1005)),
            usage(UsageError::ControlPayloadTooLong),
            Obs::Sent(Ok(())),
            Obs::Closed(Ok(())),
            Obs::Sent(Err(Error::Usage(UsageError::Closed))),
            Obs::Closed(Ok(())),
        ];
        v.extend(clean_end(
            (4000, "app bye"),
            (4000, "ack"),
            false,
            Obs::close(4000, "ack"),
        ));
        v.extend([
            Obs::Sent(Err(Error::Usage(UsageError::Closed))),
            Obs::Closed(Ok(())),
            Wire::text("still open").into(),
            Wire::close(4000, "app bye").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("close from the adapter", expected, |a, role| {
        with_raw_peer(
            a,
            role,
            Config::default(),
            |p| {
                let mut wire = p.read_until_close();
                wire.extend(p.answer_close(RawFrame::close(4000, "ack")));
                wire.into_iter().map(Obs::from).collect()
            },
            |s| {
                // Caller mistakes leave the connection as it was.
                let mut out = vec![
                    s.close_obs(1006, ""),
                    s.close_obs(1005, "with a reason"),
                    s.close_obs(1000, &"r".repeat(124)),
                    s.send_obs(Message::text("still open")),
                    s.close_obs(4000, "app bye"),
                    s.send_obs(Message::text("too late")),
                    s.close_obs(4001, "again"),
                ];
                out.extend(s.drain());
                // After the end.
                out.push(s.send_obs(Message::text("later")));
                out.push(s.close_obs(1000, ""));
                out
            },
        )
    });
}

/// The peer starts the close with `frame`; the adapter echoes its code.
fn peer_closes(name: &str, frame: RawFrame, recv: Obs, received: (u16, &'static str), echo: Wire) {
    let expected = move |_role| {
        let mut v = clean_end((received.0, ""), received, true, recv.clone());
        v.extend([echo.clone().into(), Wire::Eof.into()]);
        v
    };
    check_roles(name, expected, move |a, role| {
        let frame = frame.clone();
        with_raw_peer(
            a,
            role,
            Config::default(),
            move |p| {
                p.send(frame);
                let mut wire = p.read_until_close();
                wire.extend(p.finish());
                wire.into_iter().map(Obs::from).collect()
            },
            |s| s.drain(),
        )
    });
}

#[test]
fn close_from_the_peer() {
    peer_closes(
        "close from the peer",
        RawFrame::close(1001, "going away"),
        Obs::close(1001, "going away"),
        (1001, "going away"),
        Wire::close(1001, ""),
    );
}

#[test]
fn close_from_the_peer_with_an_application_code() {
    peer_closes(
        "close from the peer with code 4999",
        RawFrame::close(4999, ""),
        Obs::close(4999, ""),
        (4999, ""),
        Wire::close(4999, ""),
    );
}

#[test]
fn close_from_the_peer_without_status() {
    // An empty close frame: `recv` yields `Close(None)`, the close info
    // says 1005, and the echo is empty too.
    peer_closes(
        "close from the peer without status",
        RawFrame::close_raw([]),
        Obs::Recv(Ok(parity::Msg::Close(None))),
        (1005, ""),
        Wire::Close(None),
    );
}

#[test]
fn messages_before_the_peers_close_are_delivered() {
    let expected = |_role| {
        let mut v = vec![Obs::text("last words"), Obs::binary(b"and bytes")];
        v.extend(clean_end(
            (1000, ""),
            (1000, "bye"),
            true,
            Obs::close(1000, "bye"),
        ));
        v.extend([Wire::close(1000, "").into(), Wire::Eof.into()]);
        v
    };
    check_roles("messages before the peer's close", expected, |a, role| {
        with_raw_peer(
            a,
            role,
            Config::default(),
            |p| {
                p.send_all(&[
                    RawFrame::text("last words"),
                    RawFrame::binary("and bytes"),
                    RawFrame::close(1000, "bye"),
                ]);
                let mut wire = p.read_until_close();
                wire.extend(p.finish());
                wire.into_iter().map(Obs::from).collect()
            },
            |s| s.drain(),
        )
    });
}

#[test]
fn invalid_close_frames_from_the_peer() {
    let cases: Vec<(&str, Vec<u8>, ProtocolError)> = vec![
        ("1-byte body", vec![3], ProtocolError::InvalidCloseFrame),
        (
            "code 1005 on the wire",
            vec![0x03, 0xED],
            ProtocolError::InvalidCloseCode(1005),
        ),
        (
            "code 999",
            vec![0x03, 0xE7],
            ProtocolError::InvalidCloseCode(999),
        ),
        (
            "code 5000",
            vec![0x13, 0x88],
            ProtocolError::InvalidCloseCode(5000),
        ),
        (
            "reason not UTF-8",
            vec![0x03, 0xE8, 0xFF],
            ProtocolError::InvalidUtf8,
        ),
    ];
    let expected = {
        let cases = cases.clone();
        move |_role| {
            let mut v = Vec::new();
            for (name, _, e) in &cases {
                v.push(Obs::note(*name));
                v.extend(failed(*e));
                v.extend(after_end_expected());
                v.extend(failed_wire(*e));
            }
            v
        }
    };
    check_roles(
        "invalid close frames from the peer",
        expected,
        move |a, role| {
            let mut out = Vec::new();
            for (name, body, _) in cases.clone() {
                out.push(Obs::note(name));
                out.extend(with_raw_peer(
                    a,
                    role,
                    Config::default(),
                    move |p| {
                        p.send(RawFrame::close_raw(body));
                        let mut wire = p.read_until_close();
                        wire.extend(p.finish());
                        wire.into_iter().map(Obs::from).collect()
                    },
                    |s| {
                        let mut out = s.drain();
                        out.extend(after_end(s));
                        out
                    },
                ));
            }
            out
        },
    );
}

#[test]
fn peer_vanishes_without_a_close() {
    let expected = |_role| {
        let mut v = Vec::new();
        for name in [
            "after the handshake",
            "inside a frame",
            "inside a fragmented message",
        ] {
            v.push(Obs::note(name));
            v.extend(abnormal(None, None));
            v.extend(after_end_expected());
        }
        v.push(Obs::note("after the adapter's close"));
        v.push(Obs::Closed(Ok(())));
        v.extend(abnormal(Some((1000, "")), None));
        v.extend(after_end_expected());
        v.push(Wire::close(1000, "").into());
        v
    };
    check_roles("peer vanishes without a close", expected, |a, role| {
        let mut out = Vec::new();
        // The raw peer writes these bytes, then closes the connection.
        let cut_frame = {
            let mut b = RawFrame::binary([7u8; 10]).encode(role == Role::Server);
            b.truncate(b.len() - 7);
            b
        };
        let cut_message = RawFrame::text("part")
            .fin(false)
            .encode(role == Role::Server);
        for (name, bytes) in [
            ("after the handshake", Vec::new()),
            ("inside a frame", cut_frame),
            ("inside a fragmented message", cut_message),
        ] {
            out.push(Obs::note(name));
            out.extend(with_raw_peer(
                a,
                role,
                Config::default(),
                move |p| {
                    p.write(&bytes);
                    Vec::new()
                },
                |s| {
                    let mut out = s.drain();
                    out.extend(after_end(s));
                    out
                },
            ));
        }
        out.push(Obs::note("after the adapter's close"));
        out.extend(with_raw_peer(
            a,
            role,
            Config::default(),
            |p| vec![p.read().into()],
            |s| {
                let mut out = vec![s.close_obs(1000, "")];
                out.extend(s.drain());
                out.extend(after_end(s));
                out
            },
        ));
        out
    });
}

#[test]
fn peer_resets_the_connection() {
    // The raw peer closes with unread data in its receive buffer: the
    // kernel answers with a reset, which the adapter reports as an I/O
    // error.
    let expected = |_role| {
        let mut v = abnormal(
            None,
            Some(Error::from(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
        );
        v.extend(after_end_expected());
        v
    };
    check_roles("peer resets the connection", expected, |a, role| {
        let (sent_tx, sent_rx) = mpsc::channel::<()>();
        with_raw_peer(
            a,
            role,
            Config::default(),
            move |p| {
                sent_rx.recv().expect("the adapter sent");
                // Read the first bytes of the frame; the rest arrived with
                // them and stays unread.
                let mut b = [0u8; 2];
                p.tcp().read_exact(&mut b).expect("frame header");
                Vec::new()
            },
            |s| {
                s.send(Message::binary(vec![1u8; 1000])).expect("send");
                sent_tx.send(()).expect("raw peer waits");
                let mut out = s.drain();
                out.extend(after_end(s));
                out
            },
        )
    });
}

#[test]
fn close_timeout_against_a_silent_peer() {
    let expected = |_role| {
        let i = info(Some((1000, "")), None, false, Ending::Timeout);
        vec![
            Obs::Closed(Ok(())),
            Obs::err(Error::Closed(Box::new(i.clone()))),
            Obs::End,
            Obs::Info(Some(i)),
            Obs::note("not before the timeout"),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]
    };
    check_roles(
        "close timeout against a silent peer",
        expected,
        |a, role| {
            let config = Config::default().close_timeout(CLOSE_TIMEOUT);
            with_raw_peer(
                a,
                role,
                config,
                // Reads the close frame and never answers; the adapter shuts
                // its write half when its close timer fires.
                |p| p.read_to_end().into_iter().map(Obs::from).collect(),
                |s| {
                    let t0 = Instant::now();
                    let mut out = vec![s.close_obs(1000, "")];
                    out.extend(s.drain());
                    let d = t0.elapsed();
                    out.push(Obs::note(if d >= CLOSE_TIMEOUT {
                        "not before the timeout".to_string()
                    } else {
                        format!("after {d:?} only")
                    }));
                    out
                },
            )
        },
    );
}

#[test]
fn close_timeout_when_the_peer_keeps_tcp_open() {
    // Both close frames are exchanged but the peer never closes TCP: the
    // close timer ends the connection, and the close counts as clean.
    let expected = |_role| {
        let mut v = vec![Obs::Closed(Ok(()))];
        v.extend(clean_end(
            (1000, ""),
            (1000, ""),
            false,
            Obs::close(1000, ""),
        ));
        v.extend([Wire::close(1000, "").into(), Wire::Eof.into()]);
        v
    };
    check_roles(
        "close timeout when the peer keeps TCP open",
        expected,
        |a, role| {
            let config = Config::default().close_timeout(CLOSE_TIMEOUT);
            with_raw_peer(
                a,
                role,
                config,
                |p| {
                    let mut wire = p.read_until_close();
                    p.send(RawFrame::close(1000, ""));
                    // No shutdown: wait for the adapter's end of the stream.
                    wire.extend(p.read_to_end());
                    wire.into_iter().map(Obs::from).collect()
                },
                |s| {
                    let mut out = vec![s.close_obs(1000, "")];
                    out.extend(s.drain());
                    out
                },
            )
        },
    );
}

#[test]
fn close_with_send() {
    // `send(Message::Close(..))` starts the closing handshake like `close`.
    let expected = |_role| {
        let mut v = vec![Obs::note("with a frame"), Obs::Sent(Ok(()))];
        v.extend(clean_end(
            (4002, "via send"),
            (4002, ""),
            false,
            Obs::close(4002, ""),
        ));
        v.extend([Wire::close(4002, "via send").into(), Wire::Eof.into()]);
        v.extend([Obs::note("without a frame"), Obs::Sent(Ok(()))]);
        v.extend(clean_end(
            (1005, ""),
            (1005, ""),
            false,
            Obs::Recv(Ok(parity::Msg::Close(None))),
        ));
        v.extend([Wire::Close(None).into(), Wire::Eof.into()]);
        v
    };
    check_roles("close with send", expected, |a, role| {
        let mut out = Vec::new();
        for (name, frame, answer) in [
            (
                "with a frame",
                Some(parity::CloseFrame::new(4002, "via send")),
                RawFrame::close(4002, ""),
            ),
            ("without a frame", None, RawFrame::close_raw([])),
        ] {
            out.push(Obs::note(name));
            out.extend(with_raw_peer(
                a,
                role,
                Config::default(),
                move |p| {
                    let mut wire = p.read_until_close();
                    wire.extend(p.answer_close(answer));
                    wire.into_iter().map(Obs::from).collect()
                },
                move |s| {
                    let mut out = vec![s.send_obs(Message::Close(frame))];
                    out.extend(s.drain());
                    out
                },
            ));
        }
        out
    });
}

#[test]
fn messages_in_flight_when_the_adapter_closes() {
    // After its close frame the adapter still delivers what the peer sent
    // before answering, reports pings but no longer answers them.
    let expected = |_role| {
        let mut v = vec![
            Obs::Closed(Ok(())),
            Obs::text("in flight"),
            Obs::ping(b"late"),
        ];
        v.extend(clean_end(
            (1000, "closing"),
            (1000, ""),
            false,
            Obs::close(1000, ""),
        ));
        v.extend([Wire::close(1000, "closing").into(), Wire::Eof.into()]);
        v
    };
    check_roles(
        "messages in flight when the adapter closes",
        expected,
        |a, role| {
            with_raw_peer(
                a,
                role,
                Config::default(),
                |p| {
                    let mut wire = p.read_until_close();
                    p.send_all(&[
                        RawFrame::text("in flight"),
                        RawFrame::ping("late"),
                        RawFrame::close(1000, ""),
                    ]);
                    wire.extend(p.finish());
                    wire.into_iter().map(Obs::from).collect()
                },
                |s| {
                    let mut out = vec![s.close_obs(1000, "closing")];
                    out.extend(s.drain());
                    out
                },
            )
        },
    );
}

#[test]
fn server_ends_at_once_after_the_close_handshake() {
    // RFC 6455 §7.1.1: once both close frames are exchanged "the server MUST
    // close the underlying TCP connection immediately". The server's
    // connection ends with its shutdown: not when the client closes TCP in
    // turn (this one keeps it open for HOLD), nor at the close timeout.
    const HOLD: Duration = Duration::from_millis(1500);
    for who in ["peer", "adapter"] {
        let mut expected = vec![];
        if who == "adapter" {
            expected.push(Obs::Closed(Ok(())));
            expected.extend(clean_end(
                (1000, "bye"),
                (1000, ""),
                false,
                Obs::close(1000, ""),
            ));
        } else {
            expected.extend(clean_end(
                (1000, ""),
                (1000, "bye"),
                true,
                Obs::close(1000, "bye"),
            ));
        }
        expected.push(Obs::Note("ended before the client closed TCP".into()));
        let ours = if who == "adapter" {
            Wire::close(1000, "bye")
        } else {
            Wire::close(1000, "")
        };
        expected.extend([ours.into(), Wire::Eof.into()]);
        check(
            &format!("server ends at once after the close handshake ({who} closes)"),
            expected,
            move |a| {
                let config = Config::default().close_timeout(Duration::from_secs(10));
                with_raw_peer(
                    a,
                    Role::Server,
                    config,
                    move |p| {
                        if who == "peer" {
                            p.send(RawFrame::close(1000, "bye"));
                        }
                        let mut wire = p.read_until_close();
                        if who == "adapter" {
                            p.send(RawFrame::close(1000, ""));
                        }
                        // The server's FIN, while this side stays open.
                        wire.extend(p.read_to_end());
                        std::thread::sleep(HOLD);
                        wire.into_iter().map(Obs::from).collect()
                    },
                    move |s| {
                        let start = Instant::now();
                        let mut out = vec![];
                        if who == "adapter" {
                            out.push(s.close_obs(1000, "bye"));
                        }
                        out.extend(s.drain());
                        let took = start.elapsed();
                        out.push(Obs::Note(if took < HOLD {
                            "ended before the client closed TCP".into()
                        } else {
                            format!("ended after {took:?}")
                        }));
                        out
                    },
                )
            },
        );
    }
}

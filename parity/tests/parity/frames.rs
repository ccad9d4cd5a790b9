//! Fragmented messages, control frames between fragments, ping/pong.

use crate::clean_end;
use parity::raw::RawFrame;
use parity::{check_roles, with_raw_peer, Config, Error, Message, Obs, Role, UsageError, Wire};

/// The fragmented messages the raw peer sends, in order.
fn fragmented_frames() -> Vec<Vec<RawFrame>> {
    let hundred: Vec<RawFrame> = (0u8..100)
        .map(|i| {
            let f = if i == 0 {
                RawFrame::binary([i])
            } else {
                RawFrame::cont([i])
            };
            f.fin(i == 99)
        })
        .collect();
    vec![
        // A ping between two fragments of a text message.
        vec![RawFrame::text("Hel").fin(false)],
        vec![RawFrame::ping("mid")],
        vec![RawFrame::cont("lo")],
        // A pong and an empty fragment inside a binary message, one write.
        vec![
            RawFrame::binary([1, 2]).fin(false),
            RawFrame::pong("unsolicited"),
            RawFrame::cont([]).fin(false),
            RawFrame::cont([3]),
        ],
        // A character split across fragments: "€" is E2 82 AC.
        vec![RawFrame::text([0xE2]).fin(false)],
        vec![RawFrame::cont([0x82, 0xAC, b'!'])],
        // A hundred one-byte fragments.
        hundred,
        // An empty first fragment.
        vec![RawFrame::text("").fin(false), RawFrame::cont("x")],
        // Fifty messages in one write, then a close behind them.
        (0..50)
            .map(|i| RawFrame::text(format!("m{i}")))
            .chain([RawFrame::close(1000, "end")])
            .collect(),
    ]
}

#[test]
fn fragmented_messages_from_the_peer() {
    let expected = |_role| {
        let mut v = vec![
            Obs::ping(b"mid"),
            Obs::text("Hello"),
            Obs::pong(b"unsolicited"),
            Obs::binary(&[1, 2, 3]),
            Obs::text("€!"),
            Obs::binary(&(0u8..100).collect::<Vec<_>>()),
            Obs::text("x"),
        ];
        v.extend((0..50).map(|i| Obs::text(&format!("m{i}"))));
        v.extend(clean_end(
            (1000, ""),
            (1000, "end"),
            true,
            Obs::close(1000, "end"),
        ));
        // The raw peer: the auto-pong, the close echo, the end.
        v.extend([
            Wire::pong(b"mid").into(),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("fragmented messages from the peer", expected, |a, role| {
        with_raw_peer(
            a,
            role,
            Config::default(),
            |p| {
                for write in fragmented_frames() {
                    p.send_all(&write);
                }
                let mut wire = p.read_until_close();
                wire.extend(p.finish());
                wire.into_iter().map(Obs::from).collect()
            },
            |s| s.drain(),
        )
    });
}

#[test]
fn ping_and_pong() {
    let big_ping = [b'p'; 125];
    let expected = move |_role| {
        let mut v = vec![
            Obs::ping(b""),
            Obs::ping(&big_ping),
            Obs::pong(b"hi"),
            Obs::Sent(Ok(())),
            Obs::Sent(Err(Error::Usage(UsageError::ControlPayloadTooLong))),
            Obs::Closed(Ok(())),
        ];
        v.extend(clean_end(
            (1000, ""),
            (1000, ""),
            false,
            Obs::close(1000, ""),
        ));
        v.extend([
            Wire::pong(b"").into(),
            Wire::pong(&big_ping).into(),
            Wire::ping(b"hi").into(),
            Wire::pong(b"unsolicited").into(),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("ping and pong", expected, move |a, role| {
        with_raw_peer(
            a,
            role,
            Config::default(),
            move |p| {
                p.send(RawFrame::ping(""));
                p.send(RawFrame::ping(big_ping));
                // The auto-pongs, then the adapter's ping.
                let mut wire = vec![p.read(), p.read(), p.read()];
                p.send(RawFrame::pong("hi"));
                wire.extend(p.read_until_close());
                wire.extend(p.answer_close(RawFrame::close(1000, "")));
                wire.into_iter().map(Obs::from).collect()
            },
            |s| {
                let mut out = vec![s.recv_obs(), s.recv_obs()];
                s.send(Message::Ping(b"hi".to_vec().into()))
                    .expect("send ping");
                out.push(s.recv_obs());
                out.push(s.send_obs(Message::Pong(b"unsolicited".to_vec().into())));
                out.push(s.send_obs(Message::Ping(vec![0; 126].into())));
                out.push(s.close_obs(1000, ""));
                out.extend(s.drain());
                out
            },
        )
    });
}

#[test]
fn auto_pong_off() {
    let expected = |_role| {
        let mut v = vec![Obs::ping(b"x"), Obs::text("after"), Obs::Closed(Ok(()))];
        v.extend(clean_end(
            (1000, ""),
            (1000, ""),
            false,
            Obs::close(1000, ""),
        ));
        // Only the pong the application sent itself.
        v.extend([
            Wire::pong(b"x").into(),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("auto-pong off", expected, |a, role: Role| {
        with_raw_peer(
            a,
            role,
            Config::default().auto_pong(false),
            |p| {
                p.send_all(&[RawFrame::ping("x"), RawFrame::text("after")]);
                let mut wire = p.read_until_close();
                wire.extend(p.answer_close(RawFrame::close(1000, "")));
                wire.into_iter().map(Obs::from).collect()
            },
            |s| {
                let mut out = vec![s.recv_obs(), s.recv_obs()];
                s.send(Message::Pong(b"x".to_vec().into())).expect("pong");
                out.push(s.close_obs(1000, ""));
                out.extend(s.drain());
                out
            },
        )
    });
}

#[test]
fn a_message_written_one_byte_per_write() {
    let text = "one byte at a time: é€𝄞";
    let expected = move |_role| {
        let mut v = vec![Obs::text(text), Obs::binary(&[0u8; 300])];
        v.extend(clean_end(
            (1000, ""),
            (1000, "bye"),
            true,
            Obs::close(1000, "bye"),
        ));
        v.extend([Wire::close(1000, "").into(), Wire::Eof.into()]);
        v
    };
    check_roles(
        "a message written one byte per write",
        expected,
        move |a, role| {
            with_raw_peer(
                a,
                role,
                Config::default(),
                move |p| {
                    for f in [
                        RawFrame::text(text),
                        RawFrame::binary([0u8; 300]),
                        RawFrame::close(1000, "bye"),
                    ] {
                        for b in f.encode(role == Role::Server) {
                            p.write(&[b]);
                        }
                    }
                    let mut wire = p.read_until_close();
                    wire.extend(p.finish());
                    wire.into_iter().map(Obs::from).collect()
                },
                |s| s.drain(),
            )
        },
    );
}

#[test]
fn feed_flush_and_recv() {
    // `feed` queues without writing (`buffered_amount` counts the frames),
    // `flush` writes, and `recv` writes what was fed before it waits.
    let expected = |role| {
        // Frame headers: 2 bytes, and a 4-byte mask key from a client.
        let header = if role == Role::Client { 6 } else { 2 };
        let mut v = vec![
            Obs::Buffered(0),
            Obs::Buffered(3 * (header + 5)),
            Obs::Sent(Ok(())),
            Obs::Buffered(0),
            Obs::text("reply"),
            Obs::Closed(Ok(())),
        ];
        v.extend(clean_end(
            (1000, ""),
            (1000, ""),
            false,
            Obs::close(1000, ""),
        ));
        v.extend([
            Wire::text("one-1").into(),
            Wire::text("two-2").into(),
            Wire::text("three").into(),
            Wire::text("fed-4").into(),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("feed, flush and recv", expected, |a, role| {
        with_raw_peer(
            a,
            role,
            Config::default(),
            |p| {
                let mut wire = vec![p.read(), p.read(), p.read(), p.read()];
                p.send(RawFrame::text("reply"));
                wire.extend(p.read_until_close());
                wire.extend(p.answer_close(RawFrame::close(1000, "")));
                wire.into_iter().map(Obs::from).collect()
            },
            |s| {
                let mut out = vec![Obs::Buffered(s.buffered_amount())];
                for m in ["one-1", "two-2", "three"] {
                    s.feed(Message::text(m)).expect("feed");
                }
                out.push(Obs::Buffered(s.buffered_amount()));
                out.push(Obs::Sent(s.flush()));
                out.push(Obs::Buffered(s.buffered_amount()));
                s.feed(Message::text("fed-4")).expect("feed");
                out.push(s.recv_obs());
                out.push(s.close_obs(1000, ""));
                out.extend(s.drain());
                out
            },
        )
    });
}

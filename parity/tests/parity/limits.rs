//! Size limits: 1009 on the wire and `Error::Protocol(...)` from `recv`.

use crate::{after_end, after_end_expected, binary_of, clean_end, failed, failed_wire, info};
use parity::harness::echo_server;
use parity::raw::RawFrame;
use parity::{check, check_roles, with_raw_peer, Config, Ending, Message, Obs, ProtocolError};

/// A case: its name, the adapter's config, the frames the raw peer sends,
/// the messages `recv` yields before the failure, and the failure.
type Case = (&'static str, Config, Vec<RawFrame>, Vec<Obs>, ProtocolError);

fn cases() -> Vec<Case> {
    let limit = Config::default().max_message_size(1000);
    vec![
        (
            "a message at the limit, then one over it",
            limit.clone(),
            vec![
                RawFrame::binary(binary_of(1000)),
                RawFrame::binary(binary_of(1001)),
            ],
            vec![Obs::binary(&binary_of(1000))],
            ProtocolError::MessageTooLarge,
        ),
        (
            "a text over the limit",
            limit.clone(),
            vec![RawFrame::text("t".repeat(1001))],
            vec![],
            ProtocolError::MessageTooLarge,
        ),
        (
            "fragments that add up to more than the limit",
            limit,
            vec![
                RawFrame::binary(binary_of(600)).fin(false),
                RawFrame::cont(binary_of(600)),
            ],
            vec![],
            ProtocolError::MessageTooLarge,
        ),
        (
            "a frame over the frame limit",
            Config::default().max_frame_size(500),
            vec![RawFrame::binary(binary_of(501))],
            vec![],
            ProtocolError::FrameTooLarge,
        ),
        (
            "more fragments than the limit",
            Config::default().max_fragments(4),
            (0..5)
                .map(|i| {
                    let f = if i == 0 {
                        RawFrame::text("a")
                    } else {
                        RawFrame::cont("a")
                    };
                    f.fin(i == 4)
                })
                .collect(),
            vec![],
            ProtocolError::TooManyFragments,
        ),
    ]
}

#[test]
fn oversized_messages_from_the_peer() {
    let expected = |_role| {
        let mut v = Vec::new();
        for (name, _, _, before, e) in cases() {
            v.push(Obs::note(name));
            v.extend(before);
            v.extend(failed(e));
            v.extend(after_end_expected());
            v.extend(failed_wire(e));
        }
        v
    };
    check_roles("oversized messages from the peer", expected, |a, role| {
        let mut out = Vec::new();
        for (name, config, frames, _, _) in cases() {
            out.push(Obs::note(name));
            out.extend(with_raw_peer(
                a,
                role,
                config,
                move |p| {
                    p.send_all(&frames);
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
    });
}

#[test]
fn oversized_message_between_two_adapters() {
    let e = ProtocolError::MessageTooLarge;
    let reason = e.to_string();
    // The client sees the server's close frame: a clean close with 1009.
    let mut expected = vec![Obs::binary(&binary_of(1000))];
    expected.extend(clean_end(
        (1009, ""),
        (1009, &reason),
        true,
        Obs::close(1009, &reason),
    ));
    // The server failed the connection.
    expected.extend([
        Obs::err(e),
        Obs::End,
        Obs::Info(Some(info(
            Some((1009, &reason)),
            None,
            false,
            Ending::Protocol(e),
        ))),
    ]);
    check("oversized message between two adapters", expected, |a| {
        let (addr, server) = echo_server(a, Config::default().max_message_size(1000));
        let (mut c, _) = a.connect_to(addr, Config::default()).expect("connect");
        c.send(Message::binary(binary_of(1000))).expect("send");
        let mut out = vec![c.recv_obs()];
        c.send(Message::binary(binary_of(1001))).expect("send");
        out.extend(c.drain());
        out.extend(server.join());
        out
    });
}

//! Protocol violations by the peer: invalid UTF-8 (1007), masking, reserved
//! bits and opcodes, broken fragmentation, bad control frames (1002).

use crate::{after_end, after_end_expected, failed, failed_wire};
use parity::raw::RawFrame;
use parity::{check_roles, with_raw_peer, Config, Obs, ProtocolError, Role};

/// A case: its name, the bytes the raw peer writes (given whether it is the
/// client), what `recv` yields first, and the failure.
type Case = (&'static str, fn(bool) -> Vec<u8>, Vec<Obs>, ProtocolError);

/// Encodes frames as the raw peer of role `client` would.
fn frames(client: bool, fs: &[RawFrame]) -> Vec<u8> {
    fs.iter().flat_map(|f| f.encode(client)).collect()
}

/// Runs `cases` against every adapter in both roles.
fn run(name: &str, cases: fn(Role) -> Vec<Case>) {
    let expected = move |role| {
        let mut v = Vec::new();
        for (name, _, before, e) in cases(role) {
            v.push(Obs::note(name));
            v.extend(before);
            v.extend(failed(e));
            v.extend(after_end_expected());
            v.extend(failed_wire(e));
        }
        v
    };
    check_roles(name, expected, move |a, role| {
        let mut out = Vec::new();
        for (name, bytes, _, _) in cases(role) {
            out.push(Obs::note(name));
            out.extend(with_raw_peer(
                a,
                role,
                Config::default(),
                move |p| {
                    p.write(&bytes(role == Role::Server));
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
fn invalid_utf8() {
    run("invalid UTF-8", |_role| {
        vec![
            (
                "a text message",
                |c| frames(c, &[RawFrame::text([b'H', 0xFF])]),
                vec![],
                ProtocolError::InvalidUtf8,
            ),
            (
                "a fragmented text ending inside a character",
                |c| {
                    frames(
                        c,
                        &[
                            RawFrame::text("ok").fin(false),
                            RawFrame::cont([0xE2, 0x82]),
                        ],
                    )
                },
                vec![],
                ProtocolError::InvalidUtf8,
            ),
            (
                "an overlong encoding in a first fragment",
                |c| frames(c, &[RawFrame::text([0xC0, 0x80]).fin(false)]),
                vec![],
                ProtocolError::InvalidUtf8,
            ),
            (
                "a valid text, then an invalid one",
                |c| frames(c, &[RawFrame::text("fine"), RawFrame::text([0xFF])]),
                vec![Obs::text("fine")],
                ProtocolError::InvalidUtf8,
            ),
        ]
    });
}

#[test]
fn framing_violations() {
    run("framing violations", |role| {
        let masking: Case = match role {
            Role::Server => (
                "an unmasked frame from the client",
                |c| frames(c, &[RawFrame::text("x").masked(false)]),
                vec![],
                ProtocolError::UnmaskedFrame,
            ),
            Role::Client => (
                "a masked frame from the server",
                |c| frames(c, &[RawFrame::text("x").masked(true)]),
                vec![],
                ProtocolError::MaskedFrame,
            ),
        };
        vec![
            masking,
            (
                "RSV1 without an extension",
                |c| frames(c, &[RawFrame::text("x").rsv(0b100)]),
                vec![],
                ProtocolError::ReservedBits,
            ),
            (
                "RSV3",
                |c| frames(c, &[RawFrame::binary("x").rsv(0b001)]),
                vec![],
                ProtocolError::ReservedBits,
            ),
            (
                "reserved data opcode 3",
                |c| frames(c, &[RawFrame::op(0x3, "x")]),
                vec![],
                ProtocolError::ReservedOpcode(0x3),
            ),
            (
                "reserved control opcode 0xB",
                |c| frames(c, &[RawFrame::op(0xB, "")]),
                vec![],
                ProtocolError::ReservedOpcode(0xB),
            ),
            (
                "a continuation with no message",
                |c| frames(c, &[RawFrame::cont("x")]),
                vec![],
                ProtocolError::UnexpectedContinuation,
            ),
            (
                "a new message inside a fragmented one",
                |c| frames(c, &[RawFrame::text("a").fin(false), RawFrame::binary("b")]),
                vec![],
                ProtocolError::ExpectedContinuation,
            ),
            (
                "a ping of 126 bytes",
                |c| frames(c, &[RawFrame::ping([0u8; 126])]),
                vec![],
                ProtocolError::ControlFrameTooLong,
            ),
            (
                "a fragmented ping",
                |c| frames(c, &[RawFrame::ping("x").fin(false)]),
                vec![],
                ProtocolError::FragmentedControlFrame,
            ),
            (
                "a 64-bit length with the top bit set",
                |c| {
                    let mut b = vec![
                        0x82,
                        127 | if c { 0x80 } else { 0 },
                        0x80,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        1,
                    ];
                    if c {
                        b.extend_from_slice(&[1, 2, 3, 4]);
                    }
                    b
                },
                vec![],
                ProtocolError::InvalidLength,
            ),
            (
                "a message, then a broken frame",
                |c| frames(c, &[RawFrame::text("before"), RawFrame::op(0x4, "")]),
                vec![Obs::text("before")],
                ProtocolError::ReservedOpcode(0x4),
            ),
        ]
    });
}

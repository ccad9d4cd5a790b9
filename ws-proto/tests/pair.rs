//! Scenarios on an in-memory client/server pair with a virtual clock, each
//! run from both sides where it applies.

mod util;

use std::time::{Duration, Instant};
use util::*;
use ws_proto::http::{self, HeaderMap, HeaderValue};
use ws_proto::{
    Bytes, ClientHandshake, CloseCode, CloseFrame, Config, Connection, DataKind, Ending, Event,
    HandshakeError, OpCode, ProtocolError, Role, ServerHandshake, State, Transmit, UsageError,
};

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Valid UTF-8 of exactly `len` bytes, with multi-byte characters.
fn text(len: usize) -> String {
    let mut s = String::with_capacity(len);
    let alphabet = ['a', 'é', '€', '𝄞', 'z', ' '];
    let mut i = 0;
    while s.len() < len {
        let c = alphabet[i % alphabet.len()];
        if s.len() + c.len_utf8() <= len {
            s.push(c);
        } else {
            s.push('x');
        }
        i += 1;
    }
    assert_eq!(s.len(), len);
    s
}

// ------------------------------------------------------------------ echo --

const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

#[test]
fn echo_all_sizes_both_directions() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        for &len in &SIZES {
            for kind in [DataKind::Text, DataKind::Binary] {
                let msg = match kind {
                    DataKind::Text => Event::Text(text(len).into()),
                    DataKind::Binary => Event::Binary(payload(len).into()),
                };
                let send = |c: &mut Connection| match &msg {
                    Event::Text(t) => c.send_text(t.clone()),
                    Event::Binary(b) => c.send_binary(b.clone()),
                    _ => unreachable!(),
                };
                send(p.conn(from)).unwrap();
                p.drive();
                let got = p.side(from.other()).take_events();
                assert_eq!(got.len(), 1, "{from:?} {kind:?} {len}");
                assert!(got[0] == msg, "{from:?} {kind:?} {len}: wrong payload");
                // The receiver echoes it back.
                send(p.conn(from.other())).unwrap();
                p.drive();
                let back = p.side(from).take_events();
                assert_eq!(back.len(), 1);
                assert!(back[0] == msg, "{from:?} {kind:?} {len}: wrong echo");
            }
        }
        assert_eq!(p.elapsed(), Duration::ZERO);
        assert!(p.client.conn.is_open() && p.server.conn.is_open());
    }
}

#[test]
fn echo_in_small_reads() {
    // The same, with every read cut to 7 bytes.
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.client.chunk = 7;
        p.server.chunk = 7;
        for &len in &[0, 5, 126, 70_000] {
            let t = text(len);
            p.conn(from).send_text(t.clone()).unwrap();
            p.conn(from).send_binary(payload(len)).unwrap();
            p.drive();
            let got = p.side(from.other()).take_events();
            assert_eq!(
                got,
                [Event::Text(t.into()), Event::Binary(payload(len).into())]
            );
        }
    }
}

#[test]
fn many_messages_keep_order() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        let mut want = Vec::new();
        for i in 0..500usize {
            if i % 3 == 0 {
                p.conn(from).send_binary(payload(i)).unwrap();
                want.push(Event::Binary(payload(i).into()));
            } else {
                let t = format!("message {i} {}", text(i % 50));
                p.conn(from).send_text(t.clone()).unwrap();
                want.push(Event::Text(t.into()));
            }
        }
        p.drive();
        assert_eq!(p.side(from.other()).take_events(), want);
    }
}

// --------------------------------------------------------- fragmentation --

#[test]
fn fragmented_sends() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        // Binary in three fragments, one of them empty.
        let c = p.conn(from);
        c.send_fragment(DataKind::Binary, &b"abc"[..], false)
            .unwrap();
        c.send_fragment(DataKind::Binary, &b""[..], false).unwrap();
        c.send_fragment(DataKind::Binary, &b"def"[..], true)
            .unwrap();
        // A single fragment with fin is a whole message.
        c.send_fragment(DataKind::Text, &b"one"[..], true).unwrap();
        p.drive();
        assert_eq!(
            p.side(from.other()).take_events(),
            [
                Event::Binary(Bytes::from_static(b"abcdef")),
                Event::Text("one".into())
            ]
        );
        // Text split inside multi-byte characters, byte by byte.
        let s = "h€llo 𝄞 wörld";
        let bytes = s.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            let fin = i + 1 == bytes.len();
            p.conn(from)
                .send_fragment(DataKind::Text, vec![*b], fin)
                .unwrap();
        }
        // And at every split point in two pieces.
        for cut in 0..=bytes.len() {
            let c = p.conn(from);
            c.send_fragment(DataKind::Text, bytes[..cut].to_vec(), false)
                .unwrap();
            c.send_fragment(DataKind::Text, bytes[cut..].to_vec(), true)
                .unwrap();
        }
        p.drive();
        let got = p.side(from.other()).take_events();
        assert_eq!(got.len(), bytes.len() + 2);
        assert!(got.iter().all(|e| *e == Event::Text(s.into())), "{got:?}");
    }
}

#[test]
fn fragmented_sends_interleave_with_control_frames() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        let c = p.conn(from);
        c.send_fragment(DataKind::Text, "ab".as_bytes().to_vec(), false)
            .unwrap();
        c.send_ping(&b"mid"[..]).unwrap();
        c.send_pong(&b"unsolicited"[..]).unwrap();
        c.send_fragment(DataKind::Text, "cd".as_bytes().to_vec(), true)
            .unwrap();
        p.drive();
        assert_eq!(
            p.side(from.other()).take_events(),
            [
                Event::Ping(Bytes::from_static(b"mid")),
                Event::Pong(Bytes::from_static(b"unsolicited")),
                Event::Text("abcd".into()),
            ]
        );
        assert_eq!(
            p.side(from).take_events(),
            [Event::Pong(Bytes::from_static(b"mid"))]
        );
    }
}

#[test]
fn fragment_usage_errors_leave_state_unchanged() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        let c = p.conn(from);
        c.send_fragment(DataKind::Text, vec![0xe2, 0x82], false)
            .unwrap(); // first two bytes of '€'
        let before = c.buffered_amount();
        // A whole message while a fragmented one is in progress.
        assert_eq!(
            c.send_text("x"),
            Err(UsageError::FragmentedMessageInProgress)
        );
        assert_eq!(
            c.send_binary(&b"x"[..]),
            Err(UsageError::FragmentedMessageInProgress)
        );
        // A fragment of another kind.
        assert_eq!(
            c.send_fragment(DataKind::Binary, &b"x"[..], true),
            Err(UsageError::FragmentKindMismatch)
        );
        // Bytes that cannot continue the character.
        assert_eq!(
            c.send_fragment(DataKind::Text, &b"A"[..], false),
            Err(UsageError::InvalidUtf8)
        );
        // Ending the message inside a character.
        assert_eq!(
            c.send_fragment(DataKind::Text, &b""[..], true),
            Err(UsageError::InvalidUtf8)
        );
        assert_eq!(c.buffered_amount(), before, "nothing was queued");
        assert_eq!(c.state(), State::Open);
        // The message can still be finished.
        c.send_fragment(DataKind::Text, vec![0xac], false).unwrap();
        c.send_fragment(DataKind::Text, &b"!"[..], true).unwrap();
        // And a new one started.
        c.send_text("next").unwrap();
        // Invalid UTF-8 in a first fragment is refused too.
        assert_eq!(
            c.send_fragment(DataKind::Text, vec![0xff], false),
            Err(UsageError::InvalidUtf8)
        );
        c.send_text("after").unwrap();
        p.drive();
        assert_eq!(
            p.side(from.other()).take_events(),
            [
                Event::Text("€!".into()),
                Event::Text("next".into()),
                Event::Text("after".into())
            ]
        );
    }
}

// ------------------------------------------------------------- ping/pong --

#[test]
fn auto_pong_answers_and_reports() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.conn(from).send_ping(&b"Hello"[..]).unwrap();
        p.conn(from).send_ping(&b""[..]).unwrap();
        p.conn(from).send_ping(vec![b'x'; 125]).unwrap();
        p.drive();
        let pings = [
            Bytes::from_static(b"Hello"),
            Bytes::new(),
            Bytes::from(vec![b'x'; 125]),
        ];
        // Each ping is reported...
        assert_eq!(
            p.side(from.other()).take_events(),
            pings.iter().cloned().map(Event::Ping).collect::<Vec<_>>()
        );
        // ... and answered, in order, while the output queue is short.
        assert_eq!(
            p.side(from).take_events(),
            pings.iter().cloned().map(Event::Pong).collect::<Vec<_>>()
        );
    }
}

#[test]
fn pongs_are_answered_across_reads() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        for i in 0..5u8 {
            p.conn(from).send_ping(vec![i]).unwrap();
            p.drive();
        }
        let pongs = p.side(from).take_events();
        assert_eq!(
            pongs,
            (0..5u8)
                .map(|i| Event::Pong(vec![i].into()))
                .collect::<Vec<_>>()
        );
    }
}

fn conn_of(we: Role) -> Connection {
    match we {
        Role::Client => Connection::client(Config::default(), seed(1)),
        Role::Server => Connection::server(Config::default()),
    }
}

#[test]
fn pong_coalescing_when_the_queue_is_long() {
    // While a large amount of output waits (the peer does not read), pings
    // are coalesced: only the latest is answered (RFC 6455 §5.5.3), after
    // what was already queued; every ping is still reported.
    let now = Instant::now();
    for we in [Role::Client, Role::Server] {
        let mut c = conn_of(we);
        c.send_binary(payload(100_000)).unwrap();
        let mut input = Vec::new();
        for p in [&b"1"[..], b"22", b"333"] {
            input.extend(peer_frame(we, 0x89, p));
        }
        c.handle_input(now, &input);
        assert_eq!(
            drain_events(&mut c),
            [
                Event::Ping(Bytes::from_static(b"1")),
                Event::Ping(Bytes::from_static(b"22")),
                Event::Ping(Bytes::from_static(b"333")),
            ]
        );
        let amount = c.buffered_amount();
        let (out, _) = drain_transmit(&mut c);
        assert_eq!(
            amount,
            out.len(),
            "{we:?}: buffered_amount counts the owed pong"
        );
        let frames = decode_frames(&out);
        let ops: Vec<_> = frames.iter().map(|f| f.opcode).collect();
        assert_eq!(ops, [OpCode::Binary, OpCode::Pong], "{we:?}");
        assert_eq!(frames[1].payload, b"333");
    }
}

#[test]
fn ping_flood_does_not_grow_the_queue() {
    let now = Instant::now();
    for we in [Role::Client, Role::Server] {
        let mut c = conn_of(we);
        let mut input = Vec::new();
        for i in 0..20_000u32 {
            input.extend(peer_frame(we, 0x89, &i.to_be_bytes()));
        }
        c.handle_input(now, &input);
        // At most 64 KiB of pongs, plus one owed pong.
        assert!(
            c.buffered_amount() < 64 * 1024 + 200,
            "{we:?}: {}",
            c.buffered_amount()
        );
        let events = drain_events(&mut c);
        assert_eq!(events.len(), 20_000, "every ping is reported");
        let (out, _) = drain_transmit(&mut c);
        let frames = decode_frames(&out);
        assert!(frames.iter().all(|f| f.opcode == OpCode::Pong));
        // The last ping is always answered.
        assert_eq!(frames.last().unwrap().payload, 19_999u32.to_be_bytes());
    }
}

#[test]
fn auto_pong_off() {
    for from in Who::BOTH {
        let mut opts = Opts::default();
        opts.client = opts.client.auto_pong(false);
        opts.server = opts.server.auto_pong(false);
        let mut p = Pair::with(opts);
        p.conn(from).send_ping(&b"x"[..]).unwrap();
        p.drive();
        assert_eq!(
            p.side(from.other()).take_events(),
            [Event::Ping(Bytes::from_static(b"x"))]
        );
        assert!(p.side(from).take_events().is_empty(), "no pong");
        // The application answers by hand.
        p.conn(from.other()).send_pong(&b"x"[..]).unwrap();
        p.drive();
        assert_eq!(
            p.side(from).take_events(),
            [Event::Pong(Bytes::from_static(b"x"))]
        );
    }
}

#[test]
fn owed_pong_goes_out_before_our_close() {
    for from in Who::BOTH {
        let now = Instant::now();
        let we = match from {
            Who::Client => Role::Client,
            Who::Server => Role::Server,
        };
        let mut c = conn_of(we);
        c.handle_input(now, &peer_frame(we, 0x89, b"p"));
        c.close(now, CloseCode::NORMAL, "").unwrap();
        let (out, _) = drain_transmit(&mut c);
        let ops: Vec<_> = decode_frames(&out).iter().map(|f| f.opcode).collect();
        assert_eq!(ops, [OpCode::Pong, OpCode::Close]);
    }
}

#[test]
fn answers_go_out_before_a_close_that_arrived_behind_messages() {
    // Messages and a close frame in one read: the application still gets
    // to answer the messages before the close is echoed.
    let now = Instant::now();
    for we in [Role::Client, Role::Server] {
        let mut c = conn_of(we);
        let mut input = peer_frame(we, 0x81, b"one");
        input.extend(peer_frame(we, 0x82, b"two"));
        input.extend(peer_frame(we, 0x88, &close_body(1000, "bye")));
        c.handle_input(now, &input);
        let mut got = Vec::new();
        while let Some(ev) = c.poll_event() {
            match &ev {
                Event::Text(t) => c.send_text(t.clone()).unwrap(),
                Event::Binary(b) => c.send_binary(b.clone()).unwrap(),
                _ => {}
            }
            got.push(ev);
        }
        assert_eq!(
            got,
            [
                Event::Text("one".into()),
                Event::Binary(Bytes::from_static(b"two"))
            ]
        );
        assert_eq!(c.state(), State::RemoteClosing);
        let (out, _) = drain_transmit(&mut c);
        let ops: Vec<_> = decode_frames(&out).iter().map(|f| f.opcode).collect();
        assert_eq!(ops, [OpCode::Text, OpCode::Binary, OpCode::Close], "{we:?}");
        c.handle_eof(now);
        let ev = drain_events(&mut c);
        let info = the_close(&ev);
        assert_eq!(info.ending, Ending::Clean);
        assert!(info.remote_initiated);
        assert_eq!(info.received, Some(CloseFrame::new(1000, "bye")));
    }
}

#[test]
fn failure_behind_messages_then_eof() {
    // A message, a protocol violation and the end of the stream, all before
    // the application polls: the message is delivered, and the ending says
    // which rule was broken (not "abnormal"), with the close code sent.
    let now = Instant::now();
    for we in [Role::Client, Role::Server] {
        let mut c = conn_of(we);
        let mut input = peer_frame(we, 0x81, b"ok");
        input.extend(peer_frame(we, 0xC1, b"rsv1"));
        c.handle_input(now, &input);
        c.handle_eof(now);
        let ev = drain_events(&mut c);
        assert_eq!(non_close(&ev), [Event::Text("ok".into())]);
        assert_eq!(
            the_close(&ev).ending,
            Ending::Protocol(ProtocolError::ReservedBits),
            "{we:?}"
        );
        let (out, _) = drain_transmit(&mut c);
        let frames = decode_frames(&out);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload[..2], 1002u16.to_be_bytes());
    }
}

#[test]
fn failure_behind_messages_is_applied_once_they_are_taken() {
    let now = Instant::now();
    for we in [Role::Client, Role::Server] {
        let mut c = conn_of(we);
        let mut input = peer_frame(we, 0x81, b"ok");
        input.extend(peer_frame(we, 0x81, &[0xff]));
        input.extend(peer_frame(we, 0x81, b"never"));
        c.handle_input(now, &input);
        assert_eq!(c.poll_event(), Some(Event::Text("ok".into())));
        c.send_text("answer").unwrap();
        assert_eq!(c.poll_event(), None);
        let (out, shut) = drain_transmit(&mut c);
        let frames = decode_frames(&out);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].payload, b"answer");
        assert_eq!(frames[1].opcode, OpCode::Close);
        assert_eq!(frames[1].payload[..2], 1007u16.to_be_bytes());
        assert!(shut, "{we:?}: a failed connection shuts its write half");
        c.handle_eof(now);
        let ev = drain_events(&mut c);
        assert_eq!(
            the_close(&ev).ending,
            Ending::Protocol(ProtocolError::InvalidUtf8)
        );
    }
}

// ----------------------------------------------------------------- close --

#[test]
fn clean_close_from_each_side() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.conn(from).send_text("last words").unwrap();
        p.close(from, CloseCode(4000), "bye now").unwrap();
        assert_eq!(p.conn(from).state(), State::LocalClosing);
        p.run();
        let closer = p.side(from).close_info();
        let other_events = p.side(from.other()).events.clone();
        let other = the_close(&other_events).clone();
        assert_eq!(non_close(&other_events), [Event::Text("last words".into())]);

        assert_eq!(closer.ending, Ending::Clean, "{from:?}");
        assert_eq!(closer.sent, Some(CloseFrame::new(4000, "bye now")));
        assert_eq!(closer.received, Some(CloseFrame::new(4000, "")));
        assert!(!closer.remote_initiated);
        assert!(closer.is_clean());

        assert_eq!(other.ending, Ending::Clean);
        assert_eq!(other.received, Some(CloseFrame::new(4000, "bye now")));
        assert_eq!(other.sent, Some(CloseFrame::new(4000, "")));
        assert!(other.remote_initiated);
        assert_eq!(other.code(), CloseCode(4000));
        assert_eq!(other.reason(), "bye now");

        for who in Who::BOTH {
            assert!(p.conn(who).is_closed());
            assert_eq!(p.conn(who).state(), State::Closed);
            assert_eq!(p.conn(who).poll_timeout(), None);
            assert_eq!(p.conn(who).poll_event(), None);
        }
        // No timer was needed.
        assert_eq!(p.elapsed(), Duration::ZERO, "{from:?}");
        // RFC 6455 §7.1.1: the server closes TCP first; the client waits
        // for the server's FIN and shuts its own half only after it.
        assert!(p.logged(Net::Shutdown(Who::Server)));
        if p.logged(Net::Shutdown(Who::Client)) {
            assert!(p.before(Net::Eof(Who::Client), Net::Shutdown(Who::Client)));
        }
        assert!(p.before(Net::Shutdown(Who::Server), Net::Eof(Who::Client)));
        assert!(p.before(Net::Eof(Who::Client), Net::Drop(Who::Client)));
        assert!(p.before(Net::Drop(Who::Client), Net::Eof(Who::Server)));
    }
}

#[test]
fn close_without_status() {
    // NO_STATUS sends a close frame without a body; the peer sees 1005.
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.close(from, CloseCode::NO_STATUS, "").unwrap();
        p.run();
        let a = p.side(from).close_info();
        let b = p.side(from.other()).close_info();
        assert_eq!(a.ending, Ending::Clean);
        assert_eq!(b.ending, Ending::Clean);
        assert_eq!(b.code(), CloseCode::NO_STATUS);
        assert_eq!(a.code(), CloseCode::NO_STATUS);
        assert_eq!(b.received, Some(CloseFrame::new(1005, "")));
    }
}

#[test]
fn simultaneous_close() {
    let mut p = Pair::new();
    p.client.conn.close(p.now, CloseCode(1001), "c").unwrap();
    p.server.conn.close(p.now, CloseCode(1000), "s").unwrap();
    p.run();
    let c = p.client.close_info();
    let s = p.server.close_info();
    assert_eq!((c.ending, s.ending), (Ending::Clean, Ending::Clean));
    assert!(!c.remote_initiated && !s.remote_initiated);
    assert_eq!(c.received, Some(CloseFrame::new(1000, "s")));
    assert_eq!(s.received, Some(CloseFrame::new(1001, "c")));
    assert_eq!(p.elapsed(), Duration::ZERO);
}

#[test]
fn messages_after_a_received_close_are_not_reported() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.close(from, CloseCode::NORMAL, "").unwrap();
        // The peer's application still sends before it reads the close.
        p.conn(from.other()).send_text("late").unwrap();
        p.run();
        // Data sent before the peer saw our close is still delivered.
        let ev = p.side(from).events.clone();
        assert_eq!(non_close(&ev), [Event::Text("late".into())]);
        assert_eq!(the_close(&ev).ending, Ending::Clean);
    }
}

#[test]
fn close_timeout_when_the_peer_never_answers() {
    for from in Who::BOTH {
        let mut opts = Opts::default();
        let timeout = Duration::from_secs(3);
        opts.client = opts.client.close_timeout(timeout);
        opts.server = opts.server.close_timeout(timeout);
        let mut p = Pair::with(opts);
        p.side(from.other()).frozen = true;
        p.close(from, CloseCode::NORMAL, "").unwrap();
        let t0 = p.now;
        assert_eq!(p.conn(from).poll_timeout(), Some(t0 + timeout));
        p.run();
        let info = p.side(from).close_info();
        assert_eq!(info.ending, Ending::Timeout, "{from:?}");
        assert_eq!(info.received, None);
        assert_eq!(info.sent, Some(CloseFrame::new(1000, "")));
        assert_eq!(info.code(), CloseCode::ABNORMAL);
        assert_eq!(p.side(from).closed_at, Some(timeout), "virtual time");
        // The write half is shut after the timeout.
        assert!(p.logged(Net::Shutdown(from)));
    }
}

#[test]
fn close_timer_does_not_fire_early() {
    let now = Instant::now();
    let mut c = Connection::client(
        Config::default().close_timeout(Duration::from_secs(5)),
        seed(1),
    );
    c.close(now, CloseCode::NORMAL, "").unwrap();
    let _ = drain_transmit(&mut c);
    c.handle_timeout(now + Duration::from_millis(4999));
    assert!(drain_events(&mut c).is_empty());
    assert_eq!(c.state(), State::LocalClosing);
    c.handle_timeout(now + Duration::from_secs(5));
    let ev = drain_events(&mut c);
    assert_eq!(the_close(&ev).ending, Ending::Timeout);
    // Later inputs change nothing.
    c.handle_timeout(now + Duration::from_secs(50));
    c.handle_eof(now + Duration::from_secs(50));
    c.handle_input(now, &sframe(0x88, &[]));
    assert!(drain_events(&mut c).is_empty());
}

#[test]
fn client_waits_for_the_server_to_close_tcp() {
    // The server answers the close but never closes TCP: the client waits
    // the close timeout, then shuts the connection itself; the close
    // handshake did complete, so the ending is clean.
    let timeout = Duration::from_secs(4);
    let mut opts = Opts::default();
    opts.client = opts.client.close_timeout(timeout);
    let mut p = Pair::with(opts);
    p.client.conn.close(p.now, CloseCode::NORMAL, "").unwrap();
    p.drive();
    // Normally the server answers and shuts its side at once, and the
    // client ends as soon as it sees the FIN.
    assert!(p.logged(Net::Shutdown(Who::Server)));
    assert_eq!(p.client.close_info().ending, Ending::Clean);
    assert_eq!(p.client.closed_at, Some(Duration::ZERO));

    // Now the same with a server that never sends its FIN.
    let mut opts = Opts::default();
    opts.client = opts.client.close_timeout(timeout);
    let mut p = Pair::with(opts);
    p.server.conn.close(p.now, CloseCode::NORMAL, "").unwrap();
    let (out, _) = drain_transmit(&mut p.server.conn);
    p.server.frozen = true;
    p.client.inbox.extend(out);
    p.run();
    let info = p.client.close_info();
    assert_eq!(info.ending, Ending::Clean);
    assert!(info.remote_initiated);
    assert_eq!(p.client.closed_at, Some(timeout));
    // The client shut its write half only at the timeout.
    assert!(p.logged(Net::Shutdown(Who::Client)));
    assert_eq!(
        p.log
            .iter()
            .find(|(_, n)| *n == Net::Shutdown(Who::Client))
            .map(|(t, _)| *t),
        Some(timeout)
    );
}

/// RFC 6455 §7.1.1: once both close frames are exchanged, "the server MUST
/// close the underlying TCP connection immediately": its connection ends
/// with the shutdown, cleanly, whether or not the client ever sends its FIN.
#[test]
fn server_does_not_wait_for_the_client_fin() {
    let mut opts = Opts::default();
    opts.server = opts.server.close_timeout(Duration::from_secs(2));
    let mut p = Pair::with(opts);
    p.client.conn.close(p.now, CloseCode::NORMAL, "").unwrap();
    let (out, _) = drain_transmit(&mut p.client.conn);
    p.client.frozen = true;
    p.server.inbox.extend(out);
    p.run();
    let info = p.server.close_info();
    assert_eq!(info.ending, Ending::Clean);
    assert_eq!(p.server.closed_at, Some(Duration::ZERO));
    // The same when the server started the close.
    let mut p = Pair::new();
    p.server.conn.close(p.now, CloseCode::NORMAL, "").unwrap();
    let (out, shut) = drain_transmit(&mut p.server.conn);
    assert!(!shut, "no shutdown before the client's close frame");
    p.client.inbox.extend(out);
    p.run();
    assert_eq!(p.server.close_info().ending, Ending::Clean);
    assert_eq!(p.server.closed_at, Some(Duration::ZERO));
    assert_eq!(p.client.close_info().ending, Ending::Clean);
}

#[test]
fn peer_vanishes_without_close() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.conn(from).send_text("hi").unwrap();
        p.drive();
        p.vanish(from.other());
        p.run();
        let ev = p.side(from).events.clone();
        let info = the_close(&ev);
        assert_eq!(info.ending, Ending::Abnormal);
        assert_eq!(info.code(), CloseCode::ABNORMAL);
        assert_eq!(info.code().0, 1006);
        assert_eq!(info.sent, None);
        assert_eq!(info.received, None);
        assert!(!info.is_clean());
        assert_eq!(p.elapsed(), Duration::ZERO);
    }
}

#[test]
fn peer_vanishes_during_close() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.close(from, CloseCode::NORMAL, "").unwrap();
        p.vanish(from.other());
        p.run();
        let info = p.side(from).close_info();
        assert_eq!(info.ending, Ending::Abnormal);
        assert_eq!(info.sent, Some(CloseFrame::new(1000, "")));
        assert_eq!(info.received, None);
    }
}

#[test]
fn peer_vanishes_mid_message() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        p.conn(from).send_binary(payload(1000)).unwrap();
        // Deliver only half of it, then EOF.
        let (out, _) = drain_transmit(p.conn(from));
        let half = out[..out.len() / 2].to_vec();
        p.side(from).frozen = true;
        p.side(from.other()).inbox.extend(half);
        p.side(from.other()).peer_done = true;
        p.run();
        let ev = p.side(from.other()).events.clone();
        assert_eq!(ev.len(), 1, "no partial message is reported: {ev:?}");
        assert_eq!(the_close(&ev).ending, Ending::Abnormal);
    }
}

// ----------------------------------------------------------- usage errors --

#[test]
fn send_after_close_is_a_usage_error() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        let now = p.now;
        let c = p.conn(from);
        c.close(now, CloseCode::NORMAL, "bye").unwrap();
        let amount = c.buffered_amount();
        assert_eq!(c.send_text("x"), Err(UsageError::Closed));
        assert_eq!(c.send_binary(&b"x"[..]), Err(UsageError::Closed));
        assert_eq!(c.send_ping(&b"x"[..]), Err(UsageError::Closed));
        assert_eq!(c.send_pong(&b"x"[..]), Err(UsageError::Closed));
        assert_eq!(
            c.send_fragment(DataKind::Binary, &b"x"[..], true),
            Err(UsageError::Closed)
        );
        // Closing again is a no-op.
        assert_eq!(c.close(now, CloseCode(3000), "again"), Ok(()));
        assert_eq!(c.buffered_amount(), amount);
        assert_eq!(c.state(), State::LocalClosing);
        assert!(!c.is_open());
        p.run();
        let info = p.side(from).close_info();
        assert_eq!(info.sent, Some(CloseFrame::new(1000, "bye")));
        // After the end, too.
        let c = p.conn(from);
        assert_eq!(c.send_text("x"), Err(UsageError::Closed));
        assert_eq!(c.close(now, CloseCode::NORMAL, ""), Ok(()));
        assert!(drain_events(c).is_empty(), "no second Closed");
        assert_eq!(drain_transmit(c), (vec![], false));
    }
}

#[test]
fn send_after_remote_close_is_a_usage_error() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        let now = p.now;
        p.conn(from).close(now, CloseCode::NORMAL, "").unwrap();
        // Deliver the close to the peer only.
        let (out, _) = drain_transmit(p.conn(from));
        let other = p.conn(from.other());
        other.handle_input(now, &out);
        assert_eq!(other.state(), State::RemoteClosing);
        assert_eq!(other.send_text("x"), Err(UsageError::Closed));
        assert_eq!(other.send_ping(&b""[..]), Err(UsageError::Closed));
    }
}

#[test]
fn control_usage_errors_leave_state_unchanged() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        let now = p.now;
        let c = p.conn(from);
        assert_eq!(
            c.send_ping(vec![0u8; 126]),
            Err(UsageError::ControlPayloadTooLong)
        );
        assert_eq!(
            c.send_pong(vec![0u8; 126]),
            Err(UsageError::ControlPayloadTooLong)
        );
        for bad in [1006u16, 1015, 999, 0, 1004, 1016, 2999, 5000, 65535] {
            assert_eq!(
                c.close(now, CloseCode(bad), ""),
                Err(UsageError::InvalidCloseCode(bad)),
                "{bad}"
            );
        }
        // 1005 means "no status": only without a reason.
        assert_eq!(
            c.close(now, CloseCode::NO_STATUS, "reason"),
            Err(UsageError::InvalidCloseCode(1005))
        );
        let long = "x".repeat(124);
        assert_eq!(
            c.close(now, CloseCode::NORMAL, &long),
            Err(UsageError::ControlPayloadTooLong)
        );
        // 123 bytes of reason, counted in bytes, not characters.
        let euros = "€".repeat(41) + "x"; // 124 bytes
        assert_eq!(
            c.close(now, CloseCode::NORMAL, &euros),
            Err(UsageError::ControlPayloadTooLong)
        );
        assert_eq!(c.state(), State::Open);
        assert_eq!(c.buffered_amount(), 0, "nothing was queued");
        assert_eq!(c.poll_timeout(), None, "no timer was armed");
        // The connection still works, and the limits are inclusive.
        c.send_ping(vec![1u8; 125]).unwrap();
        c.close(now, CloseCode(4999), &"y".repeat(123)).unwrap();
        p.run();
        let ev = p.side(from.other()).events.clone();
        assert_eq!(non_close(&ev), [Event::Ping(vec![1u8; 125].into())]);
        let info = the_close(&ev);
        assert_eq!(info.received, Some(CloseFrame::new(4999, "y".repeat(123))));
        assert_eq!(info.ending, Ending::Clean);
    }
}

#[test]
fn buffered_amount_matches_transmit() {
    for from in Who::BOTH {
        let mut p = Pair::new();
        let c = p.conn(from);
        assert_eq!(c.buffered_amount(), 0);
        assert!(!c.wants_transmit());
        c.send_text("hello").unwrap();
        c.send_binary(payload(70_000)).unwrap();
        c.send_ping(&b"p"[..]).unwrap();
        let amount = c.buffered_amount();
        assert!(c.wants_transmit());
        let (out, _) = drain_transmit(c);
        assert_eq!(amount, out.len());
        assert_eq!(c.buffered_amount(), 0);
    }
}

// ----------------------------------------------------------- subprotocols --

#[test]
fn subprotocol_selection() {
    let opts = Opts {
        offer: Some("chat, superchat".into()),
        choose: Some("superchat".into()),
        ..Opts::default()
    };
    let mut p = Pair::with(opts);
    assert_eq!(
        p.request.headers()["sec-websocket-protocol"],
        "chat, superchat"
    );
    assert_eq!(p.response.headers()["sec-websocket-protocol"], "superchat");
    p.client.conn.send_text("works").unwrap();
    p.drive();
    assert_eq!(p.server.take_events(), [Event::Text("works".into())]);

    // None chosen: no header in the response.
    let opts = Opts {
        offer: Some("chat".into()),
        ..Opts::default()
    };
    let p = Pair::with(opts);
    assert!(p.response.headers().get("sec-websocket-protocol").is_none());
}

fn request_with(extra: &str) -> Vec<u8> {
    format!(
        "GET /x HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[test]
fn protocol_not_offered() {
    let now = Instant::now();
    let mut hs = ServerHandshake::new(now, Config::default());
    hs.handle_input(&request_with("Sec-WebSocket-Protocol: a, b\r\n"))
        .unwrap()
        .unwrap();
    assert_eq!(hs.offered_protocols(), ["a", "b"]);
    assert_eq!(
        hs.accept(now, Some("c"), &HeaderMap::new()).err(),
        Some(UsageError::ProtocolNotOffered)
    );
    let mut hs = ServerHandshake::new(now, Config::default());
    hs.handle_input(&request_with("")).unwrap().unwrap();
    assert!(hs.offered_protocols().is_empty());
    assert_eq!(
        hs.accept(now, Some("a"), &HeaderMap::new()).err(),
        Some(UsageError::ProtocolNotOffered)
    );
}

#[test]
fn client_refuses_a_protocol_it_did_not_offer() {
    let now = Instant::now();
    for offer in [None, Some("a")] {
        let mut req = http::Request::get("ws://h/");
        if let Some(o) = offer {
            req = req.header("Sec-WebSocket-Protocol", o);
        }
        let mut hs =
            ClientHandshake::new(now, req.body(()).unwrap(), Config::default(), seed(1)).unwrap();
        let mut out = Vec::new();
        let _ = hs.poll_transmit(&mut out);
        let text = String::from_utf8(out).unwrap();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: b\r\n\r\n",
            ws_proto::accept_key(key.as_bytes())
        );
        assert!(matches!(
            hs.handle_input(resp.as_bytes()),
            Err(HandshakeError::BadResponse(_))
        ));
    }
}

/// The client's answer to a response whose `Sec-WebSocket-Protocol` lines
/// are `lines`, after offering "a, b".
fn client_given_protocol_lines(lines: &str) -> Result<bool, HandshakeError> {
    let now = Instant::now();
    let req = http::Request::get("ws://h/").header("Sec-WebSocket-Protocol", "a, b");
    let mut hs =
        ClientHandshake::new(now, req.body(()).unwrap(), Config::default(), seed(1)).unwrap();
    let mut out = Vec::new();
    let _ = hs.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{lines}\r\n",
        ws_proto::accept_key(key.as_bytes())
    );
    hs.handle_input(resp.as_bytes())
}

#[test]
fn client_accepts_only_one_offered_protocol_token() {
    // Found by fuzzing (handshake_response): an empty value was taken for
    // "no subprotocol" while the response still named one.
    for bad in [
        "Sec-WebSocket-Protocol: \r\n",
        "Sec-WebSocket-Protocol: a, b\r\n",
        "Sec-WebSocket-Protocol: a,\r\n",
        "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: a\r\n",
        "Sec-WebSocket-Protocol: c\r\n",
    ] {
        assert!(
            matches!(
                client_given_protocol_lines(bad),
                Err(HandshakeError::BadResponse(_))
            ),
            "{bad:?}"
        );
    }
    for good in [
        "",
        "Sec-WebSocket-Protocol: b\r\n",
        "Sec-WebSocket-Protocol:  a \r\n",
    ] {
        assert_eq!(client_given_protocol_lines(good), Ok(true), "{good:?}");
    }
}

#[test]
fn extra_response_headers_are_sent() {
    let now = Instant::now();
    let mut hs = ServerHandshake::new(now, Config::default());
    hs.handle_input(&request_with("")).unwrap().unwrap();
    let mut h = HeaderMap::new();
    h.insert("set-cookie", HeaderValue::from_static("a=b"));
    let mut conn = hs.accept(now, None, &h).unwrap();
    let (out, _) = drain_transmit(&mut conn);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("set-cookie: a=b\r\n"), "{text}");
}

// ------------------------------------------------------------- handshake --

#[test]
fn handshake_rejection() {
    let now = Instant::now();
    let req = http::Request::get("ws://example.com/").body(()).unwrap();
    let mut chs = ClientHandshake::new(now, req, Config::default(), seed(1)).unwrap();
    let mut out = Vec::new();
    let _ = chs.poll_transmit(&mut out);
    let mut shs = ServerHandshake::new(now, Config::default());
    shs.handle_input(&out).unwrap().unwrap();
    let mut h = HeaderMap::new();
    h.insert("x-why", HeaderValue::from_static("policy"));
    shs.reject(403, &h, b"go away");
    let mut resp = Vec::new();
    assert_eq!(shs.poll_transmit(&mut resp), Some(Transmit::Data));
    assert_eq!(shs.poll_transmit(&mut resp), Some(Transmit::Shutdown));
    assert_eq!(shs.poll_transmit(&mut resp), None);
    assert!(resp.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
    match chs.handle_input(&resp) {
        Err(HandshakeError::UnexpectedStatus {
            status,
            headers,
            body,
        }) => {
            assert_eq!(status, 403);
            assert_eq!(body, b"go away");
            assert!(headers.iter().any(|(k, v)| k == "x-why" && v == b"policy"));
            assert!(headers
                .iter()
                .any(|(k, v)| k == "content-length" && v == b"7"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn version_8_request_is_accepted() {
    let now = Instant::now();
    let req = http::Request::get("ws://example.com/old")
        .header("Sec-WebSocket-Version", "8")
        .header("Origin", "http://example.com")
        .body(())
        .unwrap();
    let mut chs = ClientHandshake::new(now, req, Config::default(), seed(1)).unwrap();
    let mut out = Vec::new();
    let _ = chs.poll_transmit(&mut out);
    let text = String::from_utf8(out.clone()).unwrap().to_ascii_lowercase();
    assert!(
        text.contains("sec-websocket-origin: http://example.com\r\n"),
        "{text}"
    );
    assert!(!text.contains("\r\norigin:"), "{text}");
    assert!(text.contains("sec-websocket-version: 8\r\n"), "{text}");
    assert!(!text.contains("sec-websocket-version: 13"), "{text}");

    let mut shs = ServerHandshake::new(now, Config::default());
    let request = shs.handle_input(&out).unwrap().unwrap();
    assert_eq!(
        request.headers()["sec-websocket-origin"],
        "http://example.com"
    );
    let mut sconn = shs.accept(now, None, &HeaderMap::new()).unwrap();
    sconn.send_text("old but fine").unwrap();
    let (resp, _) = drain_transmit(&mut sconn);
    assert_eq!(chs.handle_input(&resp), Ok(true));
    let (_, mut c) = chs.into_connection(now).unwrap();
    assert_eq!(drain_events(&mut c), [Event::Text("old but fine".into())]);
}

#[test]
fn unsupported_version_gets_426() {
    let now = Instant::now();
    let req = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n";
    let mut shs = ServerHandshake::new(now, Config::default());
    assert_eq!(
        shs.handle_input(req.as_bytes()).err(),
        Some(HandshakeError::UnsupportedVersion("7".into()))
    );
    let mut out = Vec::new();
    assert_eq!(shs.poll_transmit(&mut out), Some(Transmit::Data));
    assert_eq!(shs.poll_transmit(&mut out), Some(Transmit::Shutdown));
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 "), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nsec-websocket-version: 13, 8\r\n"),
        "{text}"
    );
    // A client cannot be built for a version we do not speak.
    let req = http::Request::get("ws://h/")
        .header("Sec-WebSocket-Version", "7")
        .body(())
        .unwrap();
    assert_eq!(
        ClientHandshake::new(now, req, Config::default(), seed(1)).err(),
        Some(UsageError::InvalidRequest)
    );
}

#[test]
fn handshake_timeouts() {
    let now = Instant::now();
    let t = Duration::from_secs(10);
    let cfg = Config::default().handshake_timeout(Some(t));
    // Server.
    let mut shs = ServerHandshake::new(now, cfg.clone());
    assert_eq!(shs.poll_timeout(), Some(now + t));
    assert!(matches!(shs.handle_input(b"GET / HT"), Ok(None)));
    assert_eq!(
        shs.handle_timeout(now + t - Duration::from_nanos(1)),
        Ok(())
    );
    assert_eq!(shs.handle_timeout(now + t), Err(HandshakeError::Timeout));
    // Client.
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let mut chs = ClientHandshake::new(now, req, cfg, seed(1)).unwrap();
    assert_eq!(chs.poll_timeout(), Some(now + t));
    assert_eq!(chs.handle_input(b"HTTP/1.1 101 Swi"), Ok(false));
    assert_eq!(
        chs.handle_timeout(now + t - Duration::from_nanos(1)),
        Ok(())
    );
    assert_eq!(chs.handle_timeout(now + t), Err(HandshakeError::Timeout));
    assert_eq!(
        chs.handle_timeout(now + t * 2),
        Err(HandshakeError::Timeout)
    );
    // Without a timeout.
    let cfg = Config::default().handshake_timeout(None);
    let shs = ServerHandshake::new(now, cfg.clone());
    assert_eq!(shs.poll_timeout(), None);
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let chs = ClientHandshake::new(now, req, cfg, seed(1)).unwrap();
    assert_eq!(chs.poll_timeout(), None);
}

#[test]
fn completed_handshakes_do_not_time_out() {
    let now = Instant::now();
    let t = Duration::from_secs(1);
    let cfg = Config::default().handshake_timeout(Some(t));
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let mut chs = ClientHandshake::new(now, req, cfg.clone(), seed(1)).unwrap();
    let mut out = Vec::new();
    let _ = chs.poll_transmit(&mut out);
    let mut shs = ServerHandshake::new(now, cfg);
    shs.handle_input(&out).unwrap().unwrap();
    assert_eq!(shs.handle_timeout(now + t * 5), Ok(()));
    let mut sconn = shs.accept(now, None, &HeaderMap::new()).unwrap();
    let (resp, _) = drain_transmit(&mut sconn);
    assert_eq!(chs.handle_input(&resp), Ok(true));
    assert_eq!(chs.handle_timeout(now + t * 5), Ok(()));
}

#[test]
fn incomplete_handshake_cannot_become_a_connection() {
    let now = Instant::now();
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let chs = ClientHandshake::new(now, req, Config::default(), seed(1)).unwrap();
    assert_eq!(
        chs.into_connection(now).err(),
        Some(UsageError::HandshakeIncomplete)
    );
    let shs = ServerHandshake::new(now, Config::default());
    assert_eq!(
        shs.accept(now, None, &HeaderMap::new()).err(),
        Some(UsageError::HandshakeIncomplete)
    );
}

#[test]
fn leftover_bytes_after_the_handshake_are_kept() {
    let now = Instant::now();
    // Client side: frames in the same read as the 101 response.
    let req = http::Request::get("ws://h/").body(()).unwrap();
    let mut chs = ClientHandshake::new(now, req, Config::default(), seed(1)).unwrap();
    let mut request = Vec::new();
    let _ = chs.poll_transmit(&mut request);
    let mut shs = ServerHandshake::new(now, Config::default());
    // Server side: a frame in the same read as the request, and another in
    // the next read, before the application accepts.
    let mut input = request.clone();
    input.extend(cframe(0x81, b"early"));
    let second = cframe(0x82, b"later");
    assert!(shs.handle_input(&input).unwrap().is_some());
    let mut sconn = shs.accept(now, None, &HeaderMap::new()).unwrap();
    assert_eq!(drain_events(&mut sconn), [Event::Text("early".into())]);
    sconn.handle_input(now, &second);
    assert_eq!(
        drain_events(&mut sconn),
        [Event::Binary(Bytes::from_static(b"later"))]
    );
    sconn.send_text("first").unwrap();
    sconn.send_ping(&b"p"[..]).unwrap();
    let (resp, _) = drain_transmit(&mut sconn);
    // The response and the frames, in one read, or in two cut anywhere.
    for cut in 0..=resp.len() {
        let req = http::Request::get("ws://h/").body(()).unwrap();
        let mut chs = ClientHandshake::new(now, req, Config::default(), seed(1)).unwrap();
        let _ = chs.poll_transmit(&mut Vec::new());
        // Once complete, later bytes are kept for the connection too.
        let _ = chs.handle_input(&resp[..cut]).unwrap();
        assert!(chs.handle_input(&resp[cut..]).unwrap());
        let (_, mut c) = chs.into_connection(now).unwrap();
        assert_eq!(
            drain_events(&mut c),
            [
                Event::Text("first".into()),
                Event::Ping(Bytes::from_static(b"p"))
            ],
            "cut {cut}"
        );
    }
}

#[test]
fn server_request_split_anywhere() {
    let now = Instant::now();
    let mut input = request_with("");
    input.extend(cframe(0x81, b"x"));
    for cut in 0..=input.len() {
        let mut shs = ServerHandshake::new(now, Config::default());
        let first = shs.handle_input(&input[..cut]).unwrap();
        let req = match first {
            Some(r) => {
                // More bytes after the request was returned are kept too.
                shs.handle_input(&input[cut..]).unwrap();
                r
            }
            None => shs.handle_input(&input[cut..]).unwrap().unwrap(),
        };
        assert_eq!(req.uri().path(), "/x");
        let mut c = shs.accept(now, None, &HeaderMap::new()).unwrap();
        assert_eq!(drain_events(&mut c), [Event::Text("x".into())], "cut {cut}");
    }
}

#[test]
fn connection_built_after_an_external_upgrade() {
    // A server connection made without ServerHandshake (e.g. after hyper).
    let now = Instant::now();
    let mut s = Connection::server(Config::default());
    let mut c = Connection::client(Config::default(), seed(5));
    c.send_text("hi").unwrap();
    let (out, _) = drain_transmit(&mut c);
    s.handle_input(now, &out);
    assert_eq!(drain_events(&mut s), [Event::Text("hi".into())]);
    assert_eq!(s.role(), Role::Server);
    assert_eq!(c.role(), Role::Client);
}

// ------------------------------------------------- the documented pump --

/// An adapter that follows the documented order to the letter and wakes up
/// only when input arrives or a deadline passes: feed, then (events, then
/// transmit) while `wants_transmit`, then wait. `app` handles each event.
struct Strict {
    conn: Connection,
    events: Vec<Event>,
    shut: bool,
    dropped: bool,
}

impl Strict {
    fn settle(
        &mut self,
        to_peer: &mut Vec<u8>,
        peer_eof: &mut bool,
        app: &mut dyn FnMut(&mut Connection, &Event),
    ) {
        loop {
            let mut handled = 0;
            while let Some(ev) = self.conn.poll_event() {
                app(&mut self.conn, &ev);
                self.events.push(ev);
                handled += 1;
            }
            let (bytes, shut) = drain_transmit(&mut self.conn);
            let wrote = !bytes.is_empty() || shut;
            to_peer.extend(bytes);
            if shut {
                self.shut = true;
                *peer_eof = true;
            }
            // Events after a transmit too: a server's shutdown after a
            // finished close handshake ends its connection.
            if handled == 0 && !wrote {
                break;
            }
        }
        if self.conn.is_closed() && !self.dropped {
            self.dropped = true;
            *peer_eof = true;
        }
    }
}

/// Runs a pair of strict adapters until both end; returns them and the
/// virtual time it took.
fn run_strict(
    mut a: Connection,
    mut b: Connection,
    app_a: &mut dyn FnMut(&mut Connection, &Event),
    app_b: &mut dyn FnMut(&mut Connection, &Event),
) -> (Strict, Strict, Duration) {
    let start = Instant::now();
    let mut now = start;
    // Whatever the connections start with (e.g. the 101 response).
    let (mut to_b, _) = drain_transmit(&mut a);
    let (mut to_a, _) = drain_transmit(&mut b);
    let mut sides = [
        Strict {
            conn: a,
            events: vec![],
            shut: false,
            dropped: false,
        },
        Strict {
            conn: b,
            events: vec![],
            shut: false,
            dropped: false,
        },
    ];
    let mut eof = [false, false]; // eof[i]: side i will see EOF after its inbox
    let mut eof_given = [false, false];
    for _ in 0..10_000 {
        let mut woke = false;
        for i in 0..2 {
            let (inbox, outbox) = if i == 0 {
                (&mut to_a, &mut to_b)
            } else {
                (&mut to_b, &mut to_a)
            };
            let s = &mut sides[i];
            if s.dropped {
                inbox.clear();
                continue;
            }
            let mut peer_eof = eof[1 - i];
            let app: &mut dyn FnMut(&mut Connection, &Event) =
                if i == 0 { &mut *app_a } else { &mut *app_b };
            if !inbox.is_empty() {
                let input = std::mem::take(inbox);
                s.conn.handle_input(now, &input);
                s.settle(outbox, &mut peer_eof, app);
                woke = true;
            } else if eof[i] && !eof_given[i] {
                eof_given[i] = true;
                s.conn.handle_eof(now);
                s.settle(outbox, &mut peer_eof, app);
                woke = true;
            }
            eof[1 - i] = peer_eof;
        }
        if woke {
            continue;
        }
        // Idle: sleep until the earliest deadline.
        let next = sides
            .iter()
            .filter(|s| !s.dropped)
            .filter_map(|s| s.conn.poll_timeout())
            .min();
        let Some(t) = next else { break };
        now = now.max(t);
        for i in 0..2 {
            let outbox = if i == 0 { &mut to_b } else { &mut to_a };
            let s = &mut sides[i];
            if !s.dropped && s.conn.poll_timeout().is_some_and(|d| d <= now) {
                let mut peer_eof = eof[1 - i];
                let app: &mut dyn FnMut(&mut Connection, &Event) =
                    if i == 0 { &mut *app_a } else { &mut *app_b };
                s.conn.handle_timeout(now);
                s.settle(outbox, &mut peer_eof, app);
                eof[1 - i] = peer_eof;
            }
        }
    }
    let [a, b] = sides;
    (a, b, now - start)
}

#[test]
fn documented_pump_order_closes_without_waiting() {
    for closer in [Role::Client, Role::Server] {
        // The closer sends messages and its close in one write; the other
        // side echoes every message. Nothing should wait for a timer, and
        // the echoes arrive before the close completes.
        let mut a = conn_of(closer);
        let b = conn_of(if closer == Role::Client {
            Role::Server
        } else {
            Role::Client
        });
        a.send_text("one").unwrap();
        a.send_binary(&b"two"[..]).unwrap();
        a.close(Instant::now(), CloseCode::NORMAL, "done").unwrap();
        let mut echo = |c: &mut Connection, ev: &Event| match ev {
            Event::Text(t) => c.send_text(t.clone()).unwrap(),
            Event::Binary(b) => c.send_binary(b.clone()).unwrap(),
            _ => {}
        };
        let (a, b, took) = run_strict(a, b, &mut |_, _| {}, &mut echo);
        assert_eq!(took, Duration::ZERO, "{closer:?}: waited for a timer");
        assert_eq!(
            non_close(&a.events),
            [
                Event::Text("one".into()),
                Event::Binary(Bytes::from_static(b"two"))
            ]
        );
        assert_eq!(the_close(&a.events).ending, Ending::Clean);
        assert_eq!(the_close(&b.events).ending, Ending::Clean);
        assert!(b.shut || a.shut);

        // The application closes when it gets a message.
        let mut a = conn_of(closer);
        let b = conn_of(if closer == Role::Client {
            Role::Server
        } else {
            Role::Client
        });
        a.send_text("please close").unwrap();
        let mut close_on_text = |c: &mut Connection, ev: &Event| {
            if matches!(ev, Event::Text(_)) {
                c.close(Instant::now(), CloseCode(4001), "as asked")
                    .unwrap();
            }
        };
        let (a, b, took) = run_strict(a, b, &mut |_, _| {}, &mut close_on_text);
        assert_eq!(took, Duration::ZERO, "{closer:?}");
        let info = the_close(&a.events);
        assert_eq!(info.ending, Ending::Clean);
        assert_eq!(info.received, Some(CloseFrame::new(4001, "as asked")));
        assert_eq!(the_close(&b.events).ending, Ending::Clean);
    }
}

#[test]
fn decide_accepts_or_rejects() {
    use ws_proto::{Accept, Reject};
    let now = Instant::now();
    let request = || request_with("Sec-WebSocket-Protocol: chat, superchat\r\n");

    // Accept, with a subprotocol and an extra header.
    let mut hs = ServerHandshake::new(now, Config::default());
    hs.handle_input(&request()).unwrap().unwrap();
    let accept = Accept::new()
        .protocol("superchat")
        .header(http::header::SET_COOKIE, HeaderValue::from_static("id=1"));
    let Ok(Ok(mut conn)) = hs.decide(now, Ok(accept)) else {
        panic!("accepted");
    };
    let (out, _) = drain_transmit(&mut conn);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(
        text.contains("Sec-WebSocket-Protocol: superchat\r\n"),
        "{text}"
    );
    assert!(text.contains("set-cookie: id=1\r\n"), "{text}");

    // Reject, with a status, a header and a body.
    let mut hs = ServerHandshake::new(now, Config::default());
    hs.handle_input(&request()).unwrap().unwrap();
    let reject = Reject::new(401)
        .header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic"),
        )
        .body("who are you?");
    let Ok(Err(mut hs)) = hs.decide(now, Err(reject)) else {
        panic!("rejected");
    };
    let mut out = Vec::new();
    assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Data));
    assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Shutdown));
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    assert!(text.contains("www-authenticate: Basic\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nwho are you?"), "{text}");

    // A subprotocol that was not offered is a usage error.
    let mut hs = ServerHandshake::new(now, Config::default());
    hs.handle_input(&request()).unwrap().unwrap();
    assert_eq!(
        hs.decide(now, Ok(Accept::new().protocol("other")))
            .err()
            .map(|e| e.error),
        Some(UsageError::ProtocolNotOffered)
    );
}

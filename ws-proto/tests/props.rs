//! Property tests: encode∘decode is identity, input splitting does not
//! change events, and `Event::Closed` fires exactly once on any sequence of
//! operations. Case counts are kept moderate for debug builds.

mod util;

use proptest::prelude::*;
use std::time::{Duration, Instant};
use util::*;
use ws_proto::{
    Bytes, ClientHandshake, CloseCode, Config, Connection, DataKind, Event, Role, ServerHandshake,
    State,
};

/// What the sender does.
#[derive(Debug, Clone)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    /// A message sent in pieces; for text, cut at arbitrary byte offsets
    /// (possibly inside characters). `ping` interleaves a ping after the
    /// first piece.
    Fragments {
        kind: DataKind,
        pieces: Vec<Vec<u8>>,
        ping: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        out.push(bytes[prev..p].to_vec());
        prev = p;
    }
    out.push(bytes[prev..].to_vec());
    out
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-z]{0,300}",
        proptest::collection::vec(any::<char>(), 0..30).prop_map(|v| v.into_iter().collect()),
    ]
}

fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any_text().prop_map(Op::Text),
        3 => prop_oneof![
            4 => any_bytes(200),
            // Large payloads (16- and 64-bit lengths) from a cheap pattern.
            1 => (60_000usize..70_000, any::<u8>())
                .prop_map(|(n, k)| (0..n).map(|i| (i as u8).wrapping_mul(k) ^ k).collect()),
        ]
        .prop_map(Op::Binary),
        3 => (any::<bool>(), any_text(), any_bytes(300), proptest::collection::vec(any::<usize>(), 0..6), any::<bool>())
            .prop_map(|(text, s, b, cuts, ping)| {
                let (kind, bytes) = if text {
                    (DataKind::Text, s.into_bytes())
                } else {
                    (DataKind::Binary, b)
                };
                Op::Fragments { kind, pieces: cut(&bytes, &cuts), ping }
            }),
        1 => any_bytes(126).prop_map(Op::Ping),
        1 => any_bytes(126).prop_map(Op::Pong),
    ]
}

/// Queues `ops` on `sender` and returns the events the receiver must see.
fn apply(sender: &mut Connection, ops: &[Op]) -> Vec<Event> {
    let mut want = Vec::new();
    for op in ops {
        match op {
            Op::Text(s) => {
                sender.send_text(s.clone()).unwrap();
                want.push(Event::Text(s.clone().into()));
            }
            Op::Binary(b) => {
                sender.send_binary(b.clone()).unwrap();
                want.push(Event::Binary(b.clone().into()));
            }
            Op::Fragments { kind, pieces, ping } => {
                let n = pieces.len();
                for (i, p) in pieces.iter().enumerate() {
                    sender.send_fragment(*kind, p.clone(), i + 1 == n).unwrap();
                    if i == 0 && *ping && n > 1 {
                        sender.send_ping(&b"mid"[..]).unwrap();
                        want.push(Event::Ping(Bytes::from_static(b"mid")));
                    }
                }
                let all: Vec<u8> = pieces.concat();
                want.push(match kind {
                    DataKind::Text => Event::Text(String::from_utf8(all).unwrap().into()),
                    DataKind::Binary => Event::Binary(all.into()),
                });
            }
            Op::Ping(p) => {
                let p = &p[..p.len().min(125)];
                sender.send_ping(p.to_vec()).unwrap();
                want.push(Event::Ping(p.to_vec().into()));
            }
            Op::Pong(p) => {
                let p = &p[..p.len().min(125)];
                sender.send_pong(p.to_vec()).unwrap();
                want.push(Event::Pong(p.to_vec().into()));
            }
        }
    }
    want
}

fn make(role: Role, s: u8) -> Connection {
    match role {
        Role::Client => Connection::client(Config::default(), seed(s)),
        Role::Server => Connection::server(Config::default()),
    }
}

/// Feeds `stream` to a fresh connection of `role` in pieces of the given
/// sizes (cycled; 0 means 1), then EOF; returns every event and every byte
/// written. With `drain_between`, events are taken after each piece.
fn receive(
    role: Role,
    stream: &[u8],
    sizes: &[usize],
    drain_between: bool,
) -> (Vec<Event>, Vec<u8>) {
    let now = Instant::now();
    let mut c = make(role, 9);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let n = if sizes.is_empty() {
            stream.len()
        } else {
            sizes[i % sizes.len()].max(1)
        };
        i += 1;
        let end = (pos + n).min(stream.len());
        c.handle_input(now, &stream[pos..end]);
        pos = end;
        if drain_between {
            events.extend(drain_events(&mut c));
        }
    }
    c.handle_eof(now);
    events.extend(drain_events(&mut c));
    let (bytes, _) = drain_transmit(&mut c);
    out.extend(bytes);
    (events, out)
}

fn other(r: Role) -> Role {
    match r {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever one side sends, the other receives, in order, exactly.
    #[test]
    fn encode_decode_identity(
        ops in proptest::collection::vec(any_op(), 0..12),
        sender_is_client in any::<bool>(),
        s in any::<u8>(),
    ) {
        let role = if sender_is_client { Role::Client } else { Role::Server };
        let mut sender = make(role, s);
        let want = apply(&mut sender, &ops);
        let (stream, _) = drain_transmit(&mut sender);
        let now = Instant::now();
        let mut receiver = make(other(role), 1);
        receiver.handle_input(now, &stream);
        let got = drain_events(&mut receiver);
        prop_assert_eq!(got, want);
        prop_assert!(receiver.is_open());
        // Every frame the client wrote is masked, none the server wrote.
        for f in decode_frames(&stream) {
            prop_assert_eq!(f.mask.is_some(), role == Role::Client);
            prop_assert_eq!(f.rsv, 0);
        }
    }

    /// Splitting the input anywhere, down to single bytes, changes nothing:
    /// not the events, not the bytes written back.
    #[test]
    fn splitting_does_not_matter(
        ops in proptest::collection::vec(any_op(), 0..8),
        sender_is_client in any::<bool>(),
        sizes in prop_oneof![
            Just(vec![1usize]),
            proptest::collection::vec(1usize..20, 1..10),
            proptest::collection::vec(1usize..3000, 1..10),
        ],
        close in proptest::option::of((1000u16..1004, ".{0,10}")),
        drain_between in any::<bool>(),
    ) {
        let role = if sender_is_client { Role::Client } else { Role::Server };
        let mut sender = make(role, 3);
        apply(&mut sender, &ops);
        if let Some((code, reason)) = &close {
            sender.close(Instant::now(), CloseCode(*code), reason).unwrap();
        }
        let (stream, _) = drain_transmit(&mut sender);
        let (whole_ev, whole_out) = receive(other(role), &stream, &[], false);
        let (ev, out) = receive(other(role), &stream, &sizes, drain_between);
        prop_assert_eq!(&ev, &whole_ev);
        if !drain_between {
            prop_assert_eq!(out, whole_out);
        }
        the_close(&ev);
    }

    /// The same with a corrupted stream: bytes flipped, garbage inserted,
    /// the stream cut short. Whatever the fault, splitting does not change
    /// the outcome, and the connection ends exactly once.
    #[test]
    fn splitting_corrupted_streams(
        ops in proptest::collection::vec(any_op(), 1..6),
        sender_is_client in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        garbage in proptest::option::of((any::<usize>(), any_bytes(20))),
        truncate in proptest::option::of(any::<usize>()),
        sizes in prop_oneof![Just(vec![1usize]), proptest::collection::vec(1usize..50, 1..10)],
    ) {
        let role = if sender_is_client { Role::Client } else { Role::Server };
        let mut sender = make(role, 3);
        apply(&mut sender, &ops);
        let (mut stream, _) = drain_transmit(&mut sender);
        for (pos, x) in flips {
            if !stream.is_empty() {
                let i = pos % stream.len();
                stream[i] ^= x;
            }
        }
        if let Some((pos, g)) = garbage {
            let i = pos % (stream.len() + 1);
            stream.splice(i..i, g);
        }
        if let Some(t) = truncate {
            stream.truncate(t % (stream.len() + 1));
        }
        let (whole_ev, whole_out) = receive(other(role), &stream, &[], false);
        let (ev, out) = receive(other(role), &stream, &sizes, false);
        prop_assert_eq!(&ev, &whole_ev);
        prop_assert_eq!(out, whole_out);
        the_close(&ev);
    }

    /// Text validity agrees with `std::str::from_utf8`, however the
    /// message is fragmented and the stream split: a Text event iff valid,
    /// otherwise a 1007 close.
    #[test]
    fn utf8_agrees_with_std(
        parts in proptest::collection::vec(prop_oneof![
            any_text().prop_map(String::into_bytes),
            any_bytes(6),
            Just(vec![0xf0, 0x9f]),
            Just(vec![0x98, 0x80]),
            Just(vec![0xed, 0xa0, 0x80]),
            Just(vec![0xf4, 0x90]),
        ], 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..5),
        sizes in proptest::collection::vec(1usize..8, 1..4),
        role in prop_oneof![Just(Role::Client), Just(Role::Server)],
    ) {
        let bytes = parts.concat();
        let valid = std::str::from_utf8(&bytes).is_ok();
        let pieces = cut(&bytes, &cuts);
        let mut stream = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let op = if i == 0 { 0x01 } else { 0x00 };
            let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
            stream.extend(peer_frame(role, op | fin, p));
        }
        let (events, out) = receive(role, &stream, &sizes, false);
        if valid {
            prop_assert_eq!(
                non_close(&events),
                vec![Event::Text(String::from_utf8(bytes).unwrap().into())]
            );
            prop_assert!(out.is_empty());
        } else {
            prop_assert!(non_close(&events).is_empty());
            let frames = decode_frames(&out);
            prop_assert_eq!(frames.len(), 1);
            prop_assert_eq!(&frames[0].payload[..2], &1007u16.to_be_bytes()[..]);
        }
    }

    /// Random bytes never panic any parser.
    #[test]
    fn garbage_never_panics(
        bytes in any_bytes(400),
        sizes in proptest::collection::vec(1usize..64, 1..5),
    ) {
        for role in [Role::Client, Role::Server] {
            let (ev, _) = receive(role, &bytes, &sizes, true);
            the_close(&ev);
        }
        let now = Instant::now();
        let mut shs = ServerHandshake::new(now, Config::default());
        let _ = shs.handle_input(&bytes);
        let _ = shs.poll_transmit(&mut Vec::new());
        let req = ws_proto::http::Request::get("ws://h/").body(()).unwrap();
        let mut chs = ClientHandshake::new(now, req, Config::default(), seed(1)).unwrap();
        let _ = chs.handle_input(&bytes);
        let mut resp = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        resp.extend_from_slice(&bytes);
        let req = ws_proto::http::Request::get("ws://h/").body(()).unwrap();
        let mut chs = ClientHandshake::new(now, req, Config::default(), seed(1)).unwrap();
        let _ = chs.handle_input(&resp);
        let _ = chs.handle_input(b"\r\n\r\n");
    }
}

// ------------------------------------------------- random pair operations --

#[derive(Debug, Clone)]
enum PairOp {
    Text(bool, String),
    Binary(bool, usize),
    Fragment(bool, bool, Vec<u8>, bool),
    Ping(bool, Vec<u8>),
    Close(bool, u16, String),
    Drive,
    /// Advance the clock by this many milliseconds and fire due timers.
    Sleep(u64),
    Eof(bool),
    Garbage(bool, Vec<u8>),
    Chunk(bool, usize),
}

fn any_pair_op() -> impl Strategy<Value = PairOp> {
    prop_oneof![
        4 => (any::<bool>(), ".{0,20}").prop_map(|(w, s)| PairOp::Text(w, s)),
        2 => (any::<bool>(), 0usize..2000).prop_map(|(w, n)| PairOp::Binary(w, n)),
        2 => (any::<bool>(), any::<bool>(), any_bytes(10), any::<bool>())
            .prop_map(|(w, t, b, f)| PairOp::Fragment(w, t, b, f)),
        2 => (any::<bool>(), any_bytes(130)).prop_map(|(w, b)| PairOp::Ping(w, b)),
        2 => (any::<bool>(), prop_oneof![Just(1000u16), Just(1005), Just(1006), Just(4000), 0u16..5000], ".{0,5}")
            .prop_map(|(w, c, r)| PairOp::Close(w, c, r)),
        4 => Just(PairOp::Drive),
        2 => (0u64..15_000).prop_map(PairOp::Sleep),
        1 => any::<bool>().prop_map(PairOp::Eof),
        1 => (any::<bool>(), any_bytes(16)).prop_map(|(w, b)| PairOp::Garbage(w, b)),
        1 => (any::<bool>(), 1usize..40).prop_map(|(w, n)| PairOp::Chunk(w, n)),
    ]
}

fn who(client: bool) -> Who {
    if client {
        Who::Client
    } else {
        Who::Server
    }
}

/// Data messages each side sent successfully, as the peer should see them.
#[derive(Default)]
struct Sent {
    messages: [Vec<Event>; 2],
    partial: [Vec<u8>; 2],
}

fn idx(w: Who) -> usize {
    match w {
        Who::Client => 0,
        Who::Server => 1,
    }
}

fn run_ops(ops: &[PairOp]) -> (Pair, Sent) {
    let mut p = Pair::new();
    let mut sent = Sent::default();
    for op in ops {
        match op {
            PairOp::Text(w, s) => {
                if p.conn(who(*w)).send_text(s.clone()).is_ok() {
                    sent.messages[idx(who(*w))].push(Event::Text(s.clone().into()));
                }
            }
            PairOp::Binary(w, n) => {
                if p.conn(who(*w)).send_binary(vec![7u8; *n]).is_ok() {
                    sent.messages[idx(who(*w))].push(Event::Binary(vec![7u8; *n].into()));
                }
            }
            PairOp::Fragment(w, text, b, fin) => {
                let kind = if *text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                if p.conn(who(*w)).send_fragment(kind, b.clone(), *fin).is_ok() {
                    let i = idx(who(*w));
                    sent.partial[i].extend_from_slice(b);
                    if *fin {
                        let all = std::mem::take(&mut sent.partial[i]);
                        sent.messages[i].push(match kind {
                            DataKind::Text => Event::Text(String::from_utf8(all).unwrap().into()),
                            DataKind::Binary => Event::Binary(all.into()),
                        });
                    }
                }
            }
            PairOp::Ping(w, b) => {
                let _ = p.conn(who(*w)).send_ping(b.clone());
            }
            PairOp::Close(w, c, r) => {
                let _ = p.close(who(*w), CloseCode(*c), r);
            }
            PairOp::Drive => {
                p.drive();
            }
            PairOp::Sleep(ms) => {
                p.now += Duration::from_millis(*ms);
                let now = p.now;
                for w in Who::BOTH {
                    if !p.side(w).dropped {
                        p.conn(w).handle_timeout(now);
                    }
                }
                p.drive();
            }
            PairOp::Eof(w) => {
                // The read half of `w` breaks: it sees EOF once its inbox
                // is drained (its peer sees EOF when `w` drops).
                let s = p.side(who(*w));
                if !s.dropped {
                    s.peer_done = true;
                }
            }
            PairOp::Garbage(w, b) => {
                // Bytes injected toward `w` (e.g. a broken middlebox).
                let s = p.side(who(*w));
                if !s.dropped {
                    s.inbox.extend_from_slice(b);
                }
            }
            PairOp::Chunk(w, n) => p.side(who(*w)).chunk = *n,
        }
    }
    // Finish: both close (errors ignored), then time runs out.
    for w in Who::BOTH {
        let _ = p.close(w, CloseCode::NORMAL, "end");
    }
    p.run();
    (p, sent)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// On any sequence of operations, each side ends, with exactly one
    /// `Closed`, always last, and nothing panics.
    #[test]
    fn closed_fires_exactly_once(ops in proptest::collection::vec(any_pair_op(), 0..40)) {
        let (mut p, sent) = run_ops(&ops);
        for w in Who::BOTH {
            let s = p.side(w);
            prop_assert!(s.conn.is_closed(), "{:?} did not end: {:?}", w, s.conn.state());
            prop_assert_eq!(s.conn.state(), State::Closed);
            the_close(&s.events);
            prop_assert!(s.conn.poll_event().is_none());
            prop_assert_eq!(s.conn.poll_timeout(), None);
            // Later inputs never produce a second terminal event.
            let now = p.now + Duration::from_secs(3600);
            let s = p.side(w);
            s.conn.handle_input(now, &[0x88, 0x00, 0xff]);
            s.conn.handle_timeout(now);
            s.conn.handle_eof(now);
            prop_assert!(s.conn.poll_event().is_none());
        }
        // Both closed within the close timeouts (plus the time slept).
        let slept: u64 = ops.iter().map(|o| if let PairOp::Sleep(ms) = o { *ms } else { 0 }).sum();
        prop_assert!(p.elapsed() <= Duration::from_millis(slept) + Duration::from_secs(20));

        // Between two correct peers (no injected garbage): no protocol
        // error, messages arrive in order (a prefix of what was sent, as a
        // broken transport may cut the tail), and the two accounts of the
        // close agree.
        if !ops.iter().any(|o| matches!(o, PairOp::Garbage(..))) {
            for w in Who::BOTH {
                let me = p.side(w).close_info();
                let got: Vec<Event> = non_close(&p.side(w).events)
                    .into_iter()
                    .filter(|e| matches!(e, Event::Text(_) | Event::Binary(_)))
                    .collect();
                let want = &sent.messages[idx(w.other())];
                prop_assert!(
                    !matches!(me.ending, ws_proto::Ending::Protocol(_)),
                    "{:?}: {:?}", w, me
                );
                prop_assert!(got.len() <= want.len() && got[..] == want[..got.len()],
                    "{:?} got {:?}, peer sent {:?}", w, got, want);
                let peer = p.side(w.other()).close_info();
                if let Some(r) = &me.received {
                    prop_assert_eq!(Some(r), peer.sent.as_ref());
                }
                if me.ending == ws_proto::Ending::Clean {
                    prop_assert!(me.sent.is_some() && me.received.is_some());
                }
                if me.remote_initiated {
                    prop_assert!(!peer.remote_initiated);
                }
            }
        }
    }
}

// ------------------------------------------------------- vectored output --

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `transmit_slices` + `advance_transmit` with partial writes of any
    /// size hand out exactly the bytes `poll_transmit` does, and
    /// `poll_shutdown` comes only once everything is written.
    #[test]
    fn vectored_output_matches_poll_transmit(
        ops in proptest::collection::vec(any_op(), 0..8),
        is_client in any::<bool>(),
        writes in proptest::collection::vec(1usize..9000, 1..20),
        max_slices in 1usize..5,
        close in any::<bool>(),
    ) {
        let role = if is_client { Role::Client } else { Role::Server };
        let now = Instant::now();
        let mut a = make(role, 5);
        let mut b = make(role, 5);
        apply(&mut a, &ops);
        apply(&mut b, &ops);
        let mut peer_close = Vec::new();
        if close {
            // A close from the peer: the echo, then (for a server) a shutdown.
            let body = close_body(1000, "");
            peer_close = peer_frame(role, 0x88, &body);
            a.handle_input(now, &peer_close);
            b.handle_input(now, &peer_close);
        }
        let (want, want_shut) = drain_transmit(&mut a);
        prop_assert_eq!(want_shut, close && role == Role::Server);

        let mut got = Vec::new();
        let mut shut = false;
        let mut i = 0;
        loop {
            let amount = b.buffered_amount();
            let mut slices = vec![std::io::IoSlice::new(&[]); max_slices];
            let n = b.transmit_slices(&mut slices);
            let avail: usize = slices[..n].iter().map(|s| s.len()).sum();
            if n == 0 {
                prop_assert_eq!(amount, 0);
                if let Some(t) = b.poll_shutdown() {
                    prop_assert_eq!(t, ws_proto::Transmit::Shutdown);
                    prop_assert!(!shut);
                    shut = true;
                    continue;
                }
                break;
            }
            prop_assert!(avail <= amount);
            // A partial write across the slices.
            let w = writes[i % writes.len()].min(avail);
            i += 1;
            let mut left = w;
            for s in &slices[..n] {
                let k = left.min(s.len());
                got.extend_from_slice(&s[..k]);
                left -= k;
            }
            drop(slices);
            // Nothing to shut while bytes are queued.
            prop_assert_eq!(b.poll_shutdown(), None);
            b.advance_transmit(w);
            prop_assert_eq!(b.buffered_amount(), amount - w);
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(shut, want_shut);
        let _ = peer_close;
    }
}

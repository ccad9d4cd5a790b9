//! Backpressure: against a peer that stops reading, `send` blocks once the
//! socket buffers are full; nothing grows without bound.

use crate::clean_end;
use parity::raw::RawFrame;
use parity::{check_roles, with_raw_peer, Config, Message, Obs, Payload, Wire, LIMIT};
use std::sync::mpsc;
use std::time::Duration;

/// The size of each message.
const CHUNK: usize = 256 << 10;

/// What may be taken by `send` before it blocks: the kernel's buffers at
/// both ends (on this loopback: a send buffer that grows to 4 MiB and a
/// receive buffer that does not grow while nobody reads) and one message,
/// with room to spare.
const BOUND: usize = 16 << 20;

/// The most the scenario sends if `send` never blocks.
const CAP: usize = 64 << 20;

/// How long a `send` may take before the scenario calls it blocked. A send
/// that is merely slow only makes the scenario stop earlier: the checks
/// below hold either way.
const QUIET: Duration = Duration::from_millis(300);

#[test]
fn peer_that_stops_reading() {
    let expected = |_role| {
        let mut v = vec![
            Obs::note("send blocked before 16 MiB were taken"),
            Obs::note("buffered_amount after each completed send: 0"),
            Obs::Sent(Ok(())),
            Obs::Buffered(0),
            Obs::Closed(Ok(())),
        ];
        v.extend(clean_end(
            (1000, ""),
            (1000, ""),
            false,
            Obs::close(1000, ""),
        ));
        v.extend([
            Obs::note("the peer got every message, intact"),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("a peer that stops reading", expected, |a, role| {
        let (go_tx, go_rx) = mpsc::channel::<usize>();
        with_raw_peer(
            a,
            role,
            Config::default(),
            move |p| {
                // Read nothing until told how many messages were sent.
                let n = go_rx.recv_timeout(LIMIT).expect("told to read");
                let want = Payload::of(&[0x5a; CHUNK]);
                let (mut count, mut intact) = (0, true);
                let close = loop {
                    match p.read() {
                        Wire::Frame {
                            fin: true,
                            rsv: 0,
                            op: 0x2,
                            payload,
                        } => {
                            count += 1;
                            intact &= payload == want;
                        }
                        w => break w,
                    }
                };
                let mut out = vec![
                    Obs::note(if count == n && intact {
                        "the peer got every message, intact".to_string()
                    } else {
                        format!("the peer got {count} messages of {n} (intact: {intact})")
                    }),
                    close.into(),
                ];
                out.extend(
                    p.answer_close(RawFrame::close(1000, ""))
                        .into_iter()
                        .map(Obs::from),
                );
                out
            },
            move |s| {
                let msg = Message::binary(vec![0x5a; CHUNK]);
                let (mut sent, mut max_buffered, mut pending) = (0, 0, None);
                while sent * CHUNK < CAP {
                    let p = s.start_send(msg.clone());
                    match p.wait_for(QUIET) {
                        Some(r) => {
                            r.expect("send");
                            sent += 1;
                            max_buffered = max_buffered.max(s.buffered_amount());
                        }
                        None => {
                            pending = Some(p);
                            break;
                        }
                    }
                }
                let taken = sent * CHUNK;
                let mut out = vec![
                    Obs::note(match &pending {
                        Some(_) if taken <= BOUND => {
                            "send blocked before 16 MiB were taken".to_string()
                        }
                        Some(_) => format!("send blocked only after {taken} bytes"),
                        None => format!("send never blocked ({taken} bytes taken)"),
                    }),
                    Obs::note(format!(
                        "buffered_amount after each completed send: {max_buffered}"
                    )),
                ];
                go_tx
                    .send(sent + usize::from(pending.is_some()))
                    .expect("the peer waits");
                // The peer reads again: the blocked send completes.
                if let Some(p) = pending {
                    out.push(Obs::Sent(p.wait()));
                }
                out.push(Obs::Buffered(s.buffered_amount()));
                out.push(s.close_obs(1000, ""));
                out.extend(s.drain());
                out
            },
        )
    });
}

//! The heartbeat in the core's timer table (`Config::ping_interval`,
//! `Config::idle_timeout`), on a virtual clock, in both roles.

mod util;

use std::time::{Duration, Instant};
use util::*;
use ws_proto::{CloseCode, Config, Connection, Ending, Event, OpCode, State};

const MS: Duration = Duration::from_millis(1);

fn heartbeat(ping: u32, idle: u32) -> Config {
    Config::default()
        .ping_interval(Some(ping * MS))
        .idle_timeout(Some(idle * MS))
}

/// Fires every deadline of `conn` up to `until`, in order; returns the
/// virtual times at which `handle_timeout` ran.
fn run_timers(conn: &mut Connection, until: Instant) -> Vec<Instant> {
    let mut fired = Vec::new();
    while let Some(t) = conn.poll_timeout() {
        if t > until {
            break;
        }
        conn.handle_timeout(t);
        fired.push(t);
        assert!(
            conn.poll_timeout().map_or(true, |n| n > t),
            "a deadline that does not move"
        );
        assert!(fired.len() < 10_000, "timers run away");
    }
    fired
}

/// Advances the pair's clock in steps to `until`, firing every due timer
/// on every side that is not frozen and moving all bytes between steps.
fn advance(p: &mut Pair, until: Instant) {
    loop {
        p.drive();
        let next = Who::BOTH
            .into_iter()
            .filter_map(|w| {
                let s = p.side(w);
                (!s.frozen && !s.dropped)
                    .then(|| s.conn.poll_timeout())
                    .flatten()
            })
            .min();
        match next {
            Some(t) if t <= until => {
                p.now = p.now.max(t);
                let now = p.now;
                for w in Who::BOTH {
                    let s = p.side(w);
                    if !s.frozen && !s.dropped && s.conn.poll_timeout().is_some_and(|t| t <= now) {
                        s.conn.handle_timeout(now);
                    }
                }
            }
            _ => {
                p.now = p.now.max(until);
                p.drive();
                return;
            }
        }
    }
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[test]
fn off_by_default() {
    let mut p = Pair::new();
    assert_eq!(p.client.conn.poll_timeout(), None);
    assert_eq!(p.server.conn.poll_timeout(), None);
    let until = p.now + Duration::from_secs(3600);
    advance(&mut p, until);
    assert!(p.client.conn.is_open() && p.server.conn.is_open());
    assert!(p.client.events.is_empty() && p.server.events.is_empty());
}

#[test]
fn silent_peer_is_pinged_at_the_interval_then_dropped() {
    for who in Who::BOTH {
        let mut opts = Opts::default();
        match who {
            Who::Server => opts.server = heartbeat(100, 250),
            Who::Client => opts.client = heartbeat(100, 250),
        }
        let mut p = Pair::with(opts);
        let start = p.now;
        let conn = p.conn(who);
        assert_eq!(conn.poll_timeout(), Some(start + 100 * MS), "{who:?}");
        let fired = run_timers(conn, start + Duration::from_secs(10));
        // Pings at 100 and 200 ms, the end at 250 ms: bounded, and then no
        // timer is left.
        assert_eq!(
            fired,
            vec![start + 100 * MS, start + 200 * MS, start + 250 * MS],
            "{who:?}"
        );
        assert_eq!(conn.poll_timeout(), None, "{who:?}");
        assert_eq!(conn.state(), State::Closed);
        let events = drain_events(conn);
        let info = the_close(&events);
        assert_eq!(info.ending, Ending::IdleTimeout, "{who:?}");
        assert_eq!(info.sent, None, "no close frame: the peer is gone");
        assert_eq!(info.received, None);
        assert_eq!(info.code(), CloseCode::ABNORMAL);
        // Nothing drained the two pings here: a dead peer reads nothing, so
        // what is still queued at the end is dropped and the write half is
        // shut.
        let (bytes, shut) = drain_transmit(conn);
        assert!(shut, "{who:?}: the transport is shut");
        assert!(
            bytes.is_empty(),
            "{who:?}: queued bytes are dropped: {bytes:?}"
        );
    }
}

#[test]
fn pings_go_out_when_due_and_are_empty() {
    let mut p = Pair::with(Opts {
        server: heartbeat(100, 1000),
        ..Opts::default()
    });
    let start = p.now;
    p.client.frozen = true;
    for i in 1..=3u32 {
        let t = start + 100 * MS * i;
        let fired = run_timers(&mut p.server.conn, t);
        assert_eq!(fired, vec![t]);
        let (bytes, shut) = drain_transmit(&mut p.server.conn);
        assert!(!shut);
        let frames = decode_frames(&bytes);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].opcode, OpCode::Ping);
        assert!(frames[0].payload.is_empty());
        assert_eq!(frames[0].mask, None);
    }
    // The client's pings are masked like every client frame.
    let mut p = Pair::with(Opts {
        client: heartbeat(100, 1000),
        ..Opts::default()
    });
    let t = p.now + 100 * MS;
    run_timers(&mut p.client.conn, t);
    let (bytes, _) = drain_transmit(&mut p.client.conn);
    let frames = decode_frames(&bytes);
    assert_eq!(frames[0].opcode, OpCode::Ping);
    assert!(frames[0].mask.is_some());
}

#[test]
fn answered_pings_keep_the_connection_alive() {
    for who in Who::BOTH {
        let mut opts = Opts::default();
        match who {
            Who::Server => opts.server = heartbeat(100, 250),
            Who::Client => opts.client = heartbeat(100, 250),
        }
        let mut p = Pair::with(opts);
        let until = p.now + Duration::from_secs(5);
        advance(&mut p, until);
        let me = p.side(who);
        assert!(me.conn.is_open(), "{who:?}: {:?}", me.events);
        let pongs = count(&me.events, |e| matches!(e, Event::Pong(_)));
        // 5 s of silence apart from the pongs: a ping every 100 ms.
        assert_eq!(pongs, 50, "{who:?}");
        let other = p.side(who.other());
        assert!(other.conn.is_open());
        assert_eq!(count(&other.events, |e| matches!(e, Event::Ping(_))), 50);
        // Then the peer hangs: dropped 250 ms after its last pong.
        let last = p.now;
        p.side(who.other()).frozen = true;
        let until = last + Duration::from_secs(10);
        advance(&mut p, until);
        let expected = last - p.base + 250 * MS;
        let me = p.side(who);
        assert_eq!(me.close_info().ending, Ending::IdleTimeout, "{who:?}");
        assert_eq!(me.closed_at, Some(expected), "{who:?}");
    }
}

#[test]
fn incoming_data_resets_the_idle_timer() {
    let mut p = Pair::with(Opts {
        server: Config::default().idle_timeout(Some(250 * MS)),
        ..Opts::default()
    });
    // A message every 200 ms for 4 s: never idle for 250 ms.
    for _ in 0..20 {
        let until = p.now + 200 * MS;
        advance(&mut p, until);
        p.client.conn.send_text("tick").unwrap();
        p.drive();
    }
    assert!(p.server.conn.is_open());
    assert_eq!(count(&p.server.events, |e| matches!(e, Event::Text(_))), 20);
    // No pings without ping_interval.
    assert_eq!(count(&p.client.events, |e| matches!(e, Event::Ping(_))), 0);
    // Silence: the idle timeout fires 250 ms after the last message.
    let last = p.now;
    let until = last + Duration::from_secs(1);
    advance(&mut p, until);
    assert_eq!(p.server.close_info().ending, Ending::IdleTimeout);
    assert_eq!(p.server.closed_at, Some(last - p.base + 250 * MS));
    // The client sees the transport end without a close handshake.
    assert_eq!(p.client.close_info().ending, Ending::Abnormal);
}

#[test]
fn outgoing_traffic_is_not_a_sign_of_life() {
    let mut p = Pair::with(Opts {
        server: heartbeat(100, 250),
        ..Opts::default()
    });
    p.client.frozen = true;
    let start = p.now;
    let mut now = start;
    while p.server.conn.is_open() {
        now += 50 * MS;
        run_timers(&mut p.server.conn, now);
        let _ = p.server.conn.send_text("still here");
        drain_transmit(&mut p.server.conn);
        assert!(now < start + Duration::from_secs(1), "never dropped");
    }
    assert_eq!(now, start + 250 * MS);
}

#[test]
fn timers_stop_once_closing_and_after_closed() {
    let mut p = Pair::with(Opts {
        server: heartbeat(100, 250).close_timeout(Duration::from_secs(2)),
        client: heartbeat(100, 250).close_timeout(Duration::from_secs(2)),
        ..Opts::default()
    });
    let now = p.now + 50 * MS;
    p.now = now;
    p.server.conn.close(now, CloseCode::NORMAL, "bye").unwrap();
    // Only the close timer is left.
    assert_eq!(
        p.server.conn.poll_timeout(),
        Some(now + Duration::from_secs(2))
    );
    p.client.frozen = true;
    let until = now + Duration::from_secs(10);
    advance(&mut p, until);
    let info = p.server.close_info();
    assert_eq!(info.ending, Ending::Timeout, "{info}");
    assert_eq!(p.server.conn.poll_timeout(), None);
    // No ping went out while closing.
    let n = p.client.inbox.len();
    let frames = decode_frames(&p.client.inbox[..n]);
    assert!(
        frames.iter().all(|f| f.opcode != OpCode::Ping),
        "{frames:?}"
    );

    // A clean close: neither side keeps a timer, and nothing fires later.
    let mut p = Pair::with(Opts {
        server: heartbeat(100, 250),
        client: heartbeat(100, 250),
        ..Opts::default()
    });
    p.close(Who::Client, CloseCode::NORMAL, "").unwrap();
    p.run();
    for who in Who::BOTH {
        assert!(p.side(who).close_info().is_clean());
        assert_eq!(p.conn(who).poll_timeout(), None);
        let later = p.now + Duration::from_secs(60);
        p.conn(who).handle_timeout(later);
        assert_eq!(drain_events(p.conn(who)), vec![]);
    }
}

#[test]
fn a_connection_built_directly_starts_its_timers_on_start_or_first_input() {
    let t0 = Instant::now();
    let mut c = Connection::server(heartbeat(100, 250));
    assert_eq!(c.poll_timeout(), None);
    c.start(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + 100 * MS));
    // `start` again does not move running timers.
    c.start(t0 + 50 * MS);
    assert_eq!(c.poll_timeout(), Some(t0 + 100 * MS));

    let mut c = Connection::server(heartbeat(100, 250));
    c.handle_input(t0 + 7 * MS, &cframe(0x81, b"hi"));
    assert_eq!(c.poll_timeout(), Some(t0 + 107 * MS));
    assert_eq!(drain_events(&mut c).len(), 1);
}

#[test]
fn idle_timeout_alone_is_a_watchdog() {
    // The client watches the server's pings (ws's "heartbeat watchdog").
    let mut p = Pair::with(Opts {
        server: Config::default().ping_interval(Some(100 * MS)),
        client: Config::default().idle_timeout(Some(250 * MS)),
        ..Opts::default()
    });
    let until = p.now + Duration::from_secs(3);
    advance(&mut p, until);
    assert!(p.client.conn.is_open());
    assert_eq!(count(&p.client.events, |e| matches!(e, Event::Ping(_))), 30);
    // The client sends no pings of its own.
    assert_eq!(count(&p.server.events, |e| matches!(e, Event::Ping(_))), 0);
    p.server.frozen = true;
    let last = p.now;
    let until = last + Duration::from_secs(3);
    advance(&mut p, until);
    assert_eq!(p.client.close_info().ending, Ending::IdleTimeout);
    assert_eq!(p.client.closed_at, Some(last - p.base + 250 * MS));
}

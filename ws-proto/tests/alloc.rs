//! Allocation bounds under hostile input, measured with a counting global
//! allocator. One test function only: the counters are process-wide, so
//! nothing else may run concurrently in this binary.

mod util;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::time::Instant;
use util::*;
use ws_proto::{Config, Connection, Event, Role};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated (including growth by realloc) while running `f`.
fn allocated(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let c = region.change();
    c.bytes_allocated + c.bytes_reallocated.max(0) as usize
}

/// A header declaring `len` payload bytes, as the peer of `we` sends it.
fn header(we: Role, b0: u8, len: u64) -> Vec<u8> {
    let mut v = vec![b0];
    let m = if we == Role::Server { 0x80 } else { 0 };
    v.push(m | 127);
    v.extend_from_slice(&len.to_be_bytes());
    if we == Role::Server {
        v.extend_from_slice(&[1, 2, 3, 4]);
    }
    v
}

fn conn(we: Role, config: Config) -> Connection {
    match we {
        Role::Client => Connection::client(config, seed(1)),
        Role::Server => Connection::server(config),
    }
}

#[test]
fn hostile_declarations_do_not_allocate() {
    let now = Instant::now();
    // The counter works.
    let big = allocated(|| drop(std::hint::black_box(vec![1u8; 1 << 20])));
    assert!(big >= 1 << 20, "{big}");

    for we in [Role::Client, Role::Server] {
        // A frame declaring 1 TiB, far over max_frame_size: refused with
        // 1009 from the header alone, without allocating for it.
        let mut c = conn(we, Config::default());
        let h = header(we, 0x82, 1 << 40);
        let bytes = allocated(|| c.handle_input(now, &h));
        assert!(
            bytes < 16 * 1024,
            "{we:?}: {bytes} bytes for a refused frame"
        );
        let (out, shut) = drain_transmit(&mut c);
        assert!(shut);
        let peer = if we == Role::Client {
            Role::Server
        } else {
            Role::Client
        };
        let (received, _) = peer_decodes(peer, &out);
        assert_eq!(received.map(|r| r.0), Some(1009));

        // Just over a small max_frame_size.
        let mut c = conn(we, Config::default().max_frame_size(1 << 20));
        let h = header(we, 0x82, (1 << 20) + 1);
        let bytes = allocated(|| c.handle_input(now, &h));
        assert!(bytes < 16 * 1024, "{we:?}: {bytes}");

        // A frame within the limits whose payload does not come: the
        // reservation is bounded (1 MiB ahead of what arrived), not the
        // declared 64 MiB.
        let cfg = Config::default()
            .max_frame_size(64 << 20)
            .max_message_size(64 << 20);
        let mut c = conn(we, cfg);
        let h = header(we, 0x82, 64 << 20);
        let bytes = allocated(|| c.handle_input(now, &h));
        assert!(
            bytes <= (1 << 20) + 16 * 1024,
            "{we:?}: {bytes} bytes reserved"
        );
        assert!(drain_events(&mut c).is_empty());
        assert!(c.is_open());

        // The second fragment of a message that would exceed
        // max_message_size is refused from its header, before its payload.
        let cfg = Config::default().max_message_size(100_000);
        let mut c = conn(we, cfg);
        c.handle_input(now, &peer_frame(we, 0x02, &vec![0u8; 60_000]));
        let h = header(we, 0x00, 60_000);
        let bytes = allocated(|| c.handle_input(now, &h));
        assert!(bytes < 16 * 1024, "{we:?}: {bytes}");
        let (out, _) = drain_transmit(&mut c);
        let (received, _) = peer_decodes(peer, &out);
        assert_eq!(received.map(|r| r.0), Some(1009));
        let ev = drain_events(&mut c);
        assert!(!ev.iter().any(|e| matches!(e, Event::Binary(_))));
    }
}

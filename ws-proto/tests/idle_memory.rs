//! What a connection keeps after a message has been delivered and dropped:
//! a large message's buffer must go with the message, not stay with the
//! (idle) connection. One test only: the allocator counters are
//! process-wide.

mod util;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::time::Instant;
use util::*;
use ws_proto::{Config, Connection, Event};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes that `f` left behind.
fn retained(f: impl FnOnce()) -> isize {
    let region = Region::new(GLOBAL);
    f();
    let c = region.change();
    // stats_alloc counts realloc growth in `bytes_allocated` too.
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

#[test]
fn a_delivered_message_does_not_stay_with_the_connection() {
    let now = Instant::now();
    let mut server = Connection::server(Config::default());
    // Warm up the connection's small buffers (event queue, one small message).
    server.handle_input(now, &cframe(0x82, b"warm"));
    assert!(matches!(server.poll_event(), Some(Event::Binary(_))));
    for len in [64 * 1024, 1 << 20] {
        let wire = cframe(0x82, &vec![7u8; len]);
        let kept = retained(|| {
            server.handle_input(now, &wire);
            match server.poll_event() {
                Some(Event::Binary(b)) => assert_eq!(b.len(), len),
                other => panic!("expected the message, got {other:?}"),
            }
            // The application drops the message here.
        });
        assert!(
            kept < 1024,
            "{len}-byte message: {kept} bytes stayed allocated"
        );
    }
}

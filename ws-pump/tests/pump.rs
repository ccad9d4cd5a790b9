//! The pump on its own, over an in-memory stream and a manual clock: no
//! runtime, every step polled by hand, so each outcome is deterministic.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use ws_proto::{Config, Connection, Ending, Error, Message};
use ws_pump::{Clock, Io, Pump, Sleep};

/// What the test sees of the stream: input still to read, output written,
/// how many more bytes a write takes (`None`: any).
#[derive(Default)]
struct Wire {
    input: VecDeque<u8>,
    eof: bool,
    output: Vec<u8>,
    room: Option<usize>,
    shut: bool,
}

struct MemIo(Rc<RefCell<Wire>>);

impl Io for MemIo {
    fn poll_read(&mut self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut w = self.0.borrow_mut();
        if w.input.is_empty() {
            return if w.eof {
                Poll::Ready(Ok(0))
            } else {
                Poll::Pending
            };
        }
        let n = buf.len().min(w.input.len());
        for (b, x) in buf.iter_mut().zip(w.input.drain(..n)) {
            *b = x;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut w = self.0.borrow_mut();
        let n = w.room.map_or(buf.len(), |r| r.min(buf.len()));
        if n == 0 && !buf.is_empty() {
            return Poll::Pending;
        }
        w.output.extend_from_slice(&buf[..n]);
        if let Some(r) = &mut w.room {
            *r -= n;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        self.poll_write(cx, first)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.borrow_mut().shut = true;
        Poll::Ready(Ok(()))
    }
}

/// A clock that moves only when the test says so.
#[derive(Clone)]
struct ManualClock(Rc<Cell<Instant>>);

struct ManualSleep {
    deadline: Instant,
    clock: ManualClock,
}

impl Sleep for ManualSleep {
    fn deadline(&self) -> Instant {
        self.deadline
    }
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
    fn poll_elapsed(&mut self, _: &mut Context<'_>) -> Poll<()> {
        if self.clock.0.get() >= self.deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Clock for ManualClock {
    type Sleep = ManualSleep;
    fn now(&self) -> Instant {
        self.0.get()
    }
    fn sleep_until(&self, deadline: Instant) -> ManualSleep {
        ManualSleep {
            deadline,
            clock: self.clone(),
        }
    }
}

struct Nop;
impl Wake for Nop {
    fn wake(self: Arc<Self>) {}
}

type TestPump = Pump<MemIo, ManualClock>;

fn server(config: Config) -> (TestPump, Rc<RefCell<Wire>>, ManualClock) {
    let wire = Rc::new(RefCell::new(Wire::default()));
    let clock = ManualClock(Rc::new(Cell::new(Instant::now())));
    let mut conn = Connection::server(config);
    conn.start(clock.now());
    (
        Pump::new(MemIo(wire.clone()), clock.clone(), conn),
        wire,
        clock,
    )
}

/// A masked binary frame (mask key 0, so the payload reads as is).
fn client_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![0x82, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

#[test]
fn echo_goes_out_in_one_write_after_the_read() {
    let waker = Waker::from(Arc::new(Nop));
    let mut cx = Context::from_waker(&waker);
    let (mut pump, wire, _) = server(Config::default());
    assert!(pump.poll_recv(&mut cx).is_pending());
    let mut input = client_frame(b"hello");
    input.extend(client_frame(b"world"));
    wire.borrow_mut().input.extend(input);
    for want in [&b"hello"[..], b"world"] {
        match pump.poll_recv(&mut cx) {
            Poll::Ready(Some(Ok(Message::Binary(b)))) => {
                assert_eq!(&b[..], want);
                pump.queue(Message::Binary(b)).unwrap();
            }
            other => panic!("{other:?}"),
        }
    }
    // Nothing is written until the pump waits for input again.
    assert!(wire.borrow().output.is_empty());
    assert!(pump.poll_recv(&mut cx).is_pending());
    assert_eq!(wire.borrow().output, b"\x82\x05hello\x82\x05world");
}

#[test]
fn a_timeout_fires_while_a_write_waits_and_the_flush_fails() {
    let waker = Waker::from(Arc::new(Nop));
    let mut cx = Context::from_waker(&waker);
    let config = Config::default().idle_timeout(Some(Duration::from_secs(1)));
    let (mut pump, wire, clock) = server(config);
    wire.borrow_mut().room = Some(3);
    pump.queue(Message::binary(vec![7u8; 100])).unwrap();
    // The socket takes 3 bytes, then waits.
    assert!(pump.poll_flush_timed(&mut cx).is_pending());
    assert_eq!(wire.borrow().output.len(), 3);
    assert!(pump.buffered_amount() > 0);
    // The reading side finds the idle timeout passed and ends the
    // connection, dropping what was unwritten.
    clock.0.set(clock.now() + Duration::from_secs(2));
    match pump.poll_recv(&mut cx) {
        Poll::Ready(Some(Err(Error::Closed(info)))) => {
            assert_eq!(info.ending, Ending::IdleTimeout, "{info}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(pump.poll_recv(&mut cx), Poll::Ready(None)));
    // The write that waited does not report it written.
    match pump.poll_flush_timed(&mut cx) {
        Poll::Ready(Err(Error::Io(e))) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
        other => panic!("{other:?}"),
    }
}

#[test]
fn close_handshake_then_shutdown_and_end() {
    let waker = Waker::from(Arc::new(Nop));
    let mut cx = Context::from_waker(&waker);
    let (mut pump, wire, _) = server(Config::default());
    // A close frame, code 1000.
    wire.borrow_mut()
        .input
        .extend([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
    match pump.poll_recv(&mut cx) {
        Poll::Ready(Some(Ok(Message::Close(Some(f))))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("{other:?}"),
    }
    // The echo went out, then the server shut its side (RFC 6455 §7.1.1)
    // without waiting for the client's.
    assert_eq!(wire.borrow().output, [0x88, 0x02, 0x03, 0xe8]);
    assert!(wire.borrow().shut);
    assert!(matches!(pump.poll_recv(&mut cx), Poll::Ready(None)));
    assert!(pump.close_info().is_some_and(|i| i.is_clean()));
}

#[test]
fn end_of_stream_mid_connection_is_reported_once() {
    let waker = Waker::from(Arc::new(Nop));
    let mut cx = Context::from_waker(&waker);
    let (mut pump, wire, _) = server(Config::default());
    wire.borrow_mut().eof = true;
    assert!(matches!(pump.poll_recv(&mut cx), Poll::Ready(Some(Err(_)))));
    assert!(matches!(pump.poll_recv(&mut cx), Poll::Ready(None)));
    assert!(pump.queue(Message::text("late")).is_err());
}

//! `--churn`: the cost of a whole connection. Each of `--conns` slots opens
//! a connection, completes the handshake, sends one message, checks its
//! echo, sends a close frame, checks the server's close frame and its TCP
//! close (RFC 6455 §7.1.1: the server closes first), closes its socket and
//! opens the next connection. Reports connections per second, the time from
//! `connect` to the server's close, and the server's CPU per connection.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::args::Args;
use crate::hist::Histogram;
use crate::procfs::{self, CpuSample};
use crate::proto::{self, Rng};
use crate::{connect_done, io_err, write_pending, Report};

/// The whole server answer after the 101 is at most this long (the echo of
/// a `--size` message plus a close frame): anything longer is an error.
const CLOSE_FRAME_MAX: usize = 2 + 125;

#[derive(PartialEq, Eq)]
enum Step {
    Connecting,
    /// The request is (being) written; waiting for the 101.
    Handshake,
    /// The message is (being) written; waiting for its echo.
    Echo,
    /// The close frame is (being) written; waiting for the server's close
    /// frame and its TCP close.
    Closing,
}

struct Slot {
    sock: TcpStream,
    step: Step,
    opened: Instant,
    /// What to write next (the request, then the frames) and how far.
    out: Vec<u8>,
    out_off: usize,
    /// The handshake response, then the bytes after it.
    inb: Vec<u8>,
    accept: String,
}

/// What one connection sends after the handshake and must get back.
struct Script {
    /// The masked message.
    message: Vec<u8>,
    /// A masked close frame (code 1000).
    close: Vec<u8>,
    /// The server's echo of the message (unmasked frame).
    echo: Vec<u8>,
}

impl Script {
    fn new(opcode: u8, template: &[u8], mask: [u8; 4]) -> Script {
        let mut message = proto::client_header(opcode, template.len(), mask);
        message.extend(template.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let mut echo = proto::server_header(opcode, template.len());
        echo.extend_from_slice(template);
        Script {
            message,
            close: proto::client_close_frame(mask),
            echo,
        }
    }

    /// Checks what the server sent after the echo and before its TCP
    /// close: one close frame (any code, any reason), nothing else.
    fn check_close(got: &[u8]) -> Result<(), String> {
        match got {
            [0x88, len, body @ ..] if usize::from(*len) == body.len() && *len <= 125 => Ok(()),
            [] => Err("the server closed TCP without a close frame".into()),
            _ => Err(format!(
                "after the echo, {} bytes that are not one close frame",
                got.len()
            )),
        }
    }
}

fn open(a: &Args, poll: &Poll, token: Token, rng: &mut Rng) -> Result<Slot, String> {
    let mut sock = TcpStream::connect(a.addr).map_err(|e| io_err("connect", e))?;
    let _ = sock.set_nodelay(true);
    poll.registry()
        .register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)
        .map_err(|e| io_err("epoll register", e))?;
    let key = proto::new_key(rng);
    Ok(Slot {
        sock,
        step: Step::Connecting,
        opened: Instant::now(),
        out: proto::handshake_request(&a.host_header, &a.path, &key, None),
        out_off: 0,
        inb: Vec::new(),
        accept: proto::accept_for(&key),
    })
}

impl Slot {
    /// Handles readiness; `Ok(true)` once the connection is complete (the
    /// server closed TCP after its close frame, all checked).
    fn handle(&mut self, script: &Script, rbuf: &mut [u8], limit: usize) -> Result<bool, String> {
        if self.step == Step::Connecting {
            if !connect_done(&self.sock)? {
                return Ok(false);
            }
            self.step = Step::Handshake;
        }
        write_pending(&mut self.sock, &self.out, &mut self.out_off, "write")?;
        loop {
            match self.sock.read(rbuf) {
                Ok(0) if self.step == Step::Closing => {
                    Script::check_close(&self.inb)?;
                    return Ok(true);
                }
                Ok(0) if self.step == Step::Echo => {
                    return Err("the server closed TCP before the echo".into())
                }
                Ok(0) => return Err("the server closed TCP during the handshake".into()),
                Ok(n) => {
                    self.inb.extend_from_slice(&rbuf[..n]);
                    if self.inb.len() > limit {
                        return Err("the server sent more than expected".into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("read", e)),
            }
        }
        let next = match self.step {
            Step::Handshake => {
                match proto::check_handshake_response(&self.inb, &self.accept, false)? {
                    Some((n, _)) => {
                        self.inb.drain(..n);
                        Some((Step::Echo, &script.message))
                    }
                    None => None,
                }
            }
            Step::Echo if self.inb.len() >= script.echo.len() => {
                if !self.inb.starts_with(&script.echo) {
                    return Err("the server's answer is not the echo of the message".into());
                }
                self.inb.drain(..script.echo.len());
                Some((Step::Closing, &script.close))
            }
            _ => None,
        };
        if let Some((step, out)) = next {
            self.step = step;
            self.out.clone_from(out);
            self.out_off = 0;
            // What was read may already hold the answer to this too.
            return self.handle(script, rbuf, limit);
        }
        Ok(false)
    }
}

/// Runs the churn and returns the report: `messages` counts connections.
pub fn run(a: &Args) -> Result<Report, String> {
    let pid = a.server_pid.map(|p| p.to_string());
    let pid = pid.as_deref();
    if let Some(p) = pid {
        if procfs::cpu_ticks(p).is_none() {
            return Err(format!("--server-pid {p}: no such process"));
        }
    }
    let opcode = if a.binary {
        proto::OP_BINARY
    } else {
        proto::OP_TEXT
    };
    let mut rng = Rng::from_os();
    let mut mask = [0u8; 4];
    rng.fill(&mut mask);
    let script = Script::new(opcode, &proto::payload_template(a.size), mask);
    let limit = 64 * 1024 + script.echo.len() + CLOSE_FRAME_MAX;
    let mut poll = Poll::new().map_err(|e| io_err("epoll", e))?;
    let mut events = Events::with_capacity(1024);
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut rep = Report {
        rss_before_kb: pid.and_then(procfs::rss_kb),
        ..Report::default()
    };
    let mut slots = Vec::with_capacity(a.conns);
    for i in 0..a.conns {
        slots.push(open(a, &poll, Token(i), &mut rng)?);
    }
    let start = Instant::now();
    let window_start = start + a.warmup;
    let window_end = window_start + a.duration;
    let mut measuring = false;
    let mut hist = Histogram::new();
    let mut done = 0u64;
    let (mut cpu0, mut self0) = (CpuSample::default(), CpuSample::default());
    let mut last_progress = start;
    loop {
        let now = Instant::now();
        if !measuring && now >= window_start {
            measuring = true;
            cpu0 = pid.map(CpuSample::take).unwrap_or_default();
            self0 = CpuSample::take("self");
            rep.rss_open_kb = pid.and_then(procfs::rss_kb);
        }
        if measuring && now >= window_end {
            let cpu1 = pid.map(CpuSample::take).unwrap_or_default();
            let self1 = CpuSample::take("self");
            rep.window_secs = now.duration_since(window_start).as_secs_f64();
            rep.messages = done;
            rep.server_cpu_us = cpu1.stat_us_since(&cpu0);
            rep.server_cpu_sched_us = cpu1.sched_us_since(&cpu0);
            rep.loadgen_cpu_us = self1.stat_us_since(&self0);
            rep.p50_ns = hist.quantile(0.50);
            rep.p99_ns = hist.quantile(0.99);
            rep.p999_ns = hist.quantile(0.999);
            rep.max_ns = hist.max();
            rep.mean_ns = hist.mean();
            rep.rss_end_kb = pid.and_then(procfs::rss_kb);
            return Ok(rep);
        }
        if now.duration_since(last_progress) > a.stall_timeout {
            return Err(format!(
                "no connection completed for {:?} (server stuck, or it does not close TCP after the close handshake?)",
                a.stall_timeout
            ));
        }
        let wait = if measuring { window_end } else { window_start };
        let timeout = wait
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("epoll_wait", e)),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if !slots[i].handle(&script, &mut rbuf, limit)? {
                continue;
            }
            let t = Instant::now();
            last_progress = t;
            if measuring {
                done += 1;
                hist.record(t.duration_since(slots[i].opened).as_nanos() as u64);
            }
            let _ = poll.registry().deregister(&mut slots[i].sock);
            slots[i] = open(a, &poll, Token(i), &mut rng)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_echo_headers() {
        for (len, header) in [
            (16usize, vec![0x82, 16]),
            (126, vec![0x82, 126, 0, 126]),
            (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let s = Script::new(proto::OP_BINARY, &vec![b'a'; len], [1, 2, 3, 4]);
            assert_eq!(s.echo[..header.len()], header[..], "{len}");
            assert_eq!(s.echo.len(), header.len() + len);
            // The message goes out masked, the close frame after it.
            assert_eq!(s.message[0], 0x82);
            assert_eq!(s.message[1] & 0x80, 0x80);
            assert_eq!(s.close[0], 0x88);
        }
    }

    #[test]
    fn close_answers() {
        assert!(Script::check_close(&[0x88, 0]).is_ok());
        assert!(Script::check_close(&[0x88, 2, 0x03, 0xe8]).is_ok());
        assert!(Script::check_close(&[]).is_err(), "no close frame");
        assert!(Script::check_close(&[0x88, 2, 0x03]).is_err(), "truncated");
        assert!(
            Script::check_close(&[0x88, 0, 0x82, 0]).is_err(),
            "trailing"
        );
        assert!(Script::check_close(&[0x82, 0]).is_err(), "not a close");
    }
}

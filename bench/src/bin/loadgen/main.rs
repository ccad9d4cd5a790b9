//! `loadgen`: a single-threaded WebSocket echo load generator.
//!
//! One mio event loop drives every connection: a real client handshake
//! (random key, checked `Sec-WebSocket-Accept`), then pre-built masked frames
//! with a per-message sequence stamp, `--inflight` of them outstanding per
//! connection, and an incremental parser that checks every echoed byte.
//! Run `loadgen --help` for the options; `bench/README.md` for the context.

mod args;
mod churn;
mod hist;
mod procfs;
mod proto;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use args::Args;
use hist::Histogram;
use procfs::CpuSample;
use proto::{Expect, Rng, Rx, TxFrames};

/// Shared read buffer size; also the largest chunk one read returns.
const READ_BUF: usize = 256 * 1024;
/// Upper bound for the pre-built frame copies of one connection.
const TX_BATCH_BYTES: usize = 256 * 1024;
/// How long to wait for outstanding echoes after the window.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the servers' close frames.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Handshake,
    Open,
    Closed,
}

struct Conn {
    sock: TcpStream,
    state: State,
    hs_req: Vec<u8>,
    hs_off: usize,
    hs_resp: Vec<u8>,
    accept: String,
    mask: [u8; 4],
    /// Pre-built frames, built once the handshake is done (plain or
    /// compressed, as negotiated); `None` in `--idle` mode.
    tx: Option<TxFrames>,
    /// Copies of the frame to pre-build; `None`: send nothing (`--idle`).
    tx_copies: Option<usize>,
    /// permessage-deflate was offered (`--deflate`).
    offer_deflate: bool,
    tx_off: usize,
    tx_end: usize,
    /// The last write returned `WouldBlock`; wait for a writable event.
    blocked: bool,
    /// Messages this connection may send now.
    credits: usize,
    tx_seq: u32,
    /// Send times of the messages whose echo is outstanding, oldest first.
    sent: VecDeque<Instant>,
    rx: Rx,
    close_sent: bool,
}

struct Stats {
    measuring: bool,
    refill: bool,
    window_msgs: u64,
    outstanding: u64,
    hist: Histogram,
    last_progress: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Connect,
    Hold,
    Warmup,
    Measure,
    Drain,
    Closing,
}

pub(crate) fn io_err(what: &str, e: io::Error) -> String {
    format!("{what}: {e}")
}

/// Whether the non-blocking connect of `sock` finished: `Ok(false)` while
/// it is still in progress.
pub(crate) fn connect_done(sock: &TcpStream) -> Result<bool, String> {
    if let Some(e) = sock.take_error().map_err(|e| io_err("connect", e))? {
        return Err(io_err("connect", e));
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(io_err("connect", e)),
    }
}

/// Writes `buf[*off..]` as far as the socket takes it, advancing `*off`.
pub(crate) fn write_pending(
    sock: &mut TcpStream,
    buf: &[u8],
    off: &mut usize,
    what: &str,
) -> Result<(), String> {
    while *off < buf.len() {
        match sock.write(&buf[*off..]) {
            Ok(0) => return Err(format!("{what}: write returned 0")),
            Ok(n) => *off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(what, e)),
        }
    }
    Ok(())
}

impl Conn {
    /// Sends as many queued messages as the socket takes.
    fn try_send(&mut self, now: Instant, stats: &mut Stats) -> Result<(), String> {
        let Some(tx) = self.tx.as_mut() else {
            return Ok(());
        };
        loop {
            if self.tx_off < self.tx_end {
                if self.blocked {
                    return Ok(());
                }
                match self.sock.write(&tx.buf[self.tx_off..self.tx_end]) {
                    Ok(0) => return Err("write returned 0".into()),
                    Ok(n) => self.tx_off += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.blocked = true;
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err("write", e)),
                }
            } else if self.credits > 0 {
                let n = self.credits.min(tx.copies);
                for i in 0..n {
                    tx.stamp(i, self.tx_seq);
                    self.tx_seq = self.tx_seq.wrapping_add(1);
                    self.sent.push_back(now);
                }
                self.credits -= n;
                stats.outstanding += n as u64;
                self.tx_off = 0;
                self.tx_end = n * tx.frame_len;
            } else {
                return Ok(());
            }
        }
    }

    fn tx_idle(&self) -> bool {
        self.tx_off >= self.tx_end
    }

    /// Feeds server bytes to the parser.
    fn on_bytes(
        &mut self,
        data: &[u8],
        exp: &Expect,
        stats: &mut Stats,
        now: Instant,
    ) -> Result<(), String> {
        let sent = &mut self.sent;
        let credits = &mut self.credits;
        let res = self.rx.feed(data, exp, || {
            let t0 = sent
                .pop_front()
                .ok_or_else(|| "server sent a message that is not an echo of ours".to_string())?;
            stats.outstanding -= 1;
            stats.last_progress = now;
            if stats.measuring {
                stats.window_msgs += 1;
                stats
                    .hist
                    .record(now.saturating_duration_since(t0).as_nanos() as u64);
            }
            if stats.refill {
                *credits += 1;
            }
            Ok(())
        })?;
        if let Some(code) = res.close {
            if self.close_sent {
                self.state = State::Closed;
            } else {
                return Err(format!("server sent a close frame (code {code:?})"));
            }
        }
        Ok(())
    }

    fn on_eof(&mut self) -> Result<(), String> {
        if self.close_sent {
            self.state = State::Closed;
            Ok(())
        } else {
            Err("server closed the TCP connection".into())
        }
    }

    fn handle(
        &mut self,
        readable: bool,
        writable: bool,
        exp: &Expect,
        stats: &mut Stats,
        rbuf: &mut [u8],
    ) -> Result<(), String> {
        if writable {
            self.blocked = false;
        }
        let mut readable = readable;
        if self.state == State::Connecting {
            if !connect_done(&self.sock)? {
                return Ok(());
            }
            self.state = State::Handshake;
        }
        if self.state == State::Handshake {
            write_pending(
                &mut self.sock,
                &self.hs_req,
                &mut self.hs_off,
                "handshake write",
            )?;
            if !readable {
                return Ok(());
            }
            loop {
                match self.sock.read(rbuf) {
                    Ok(0) => return Err("server closed the connection during the handshake".into()),
                    Ok(n) => {
                        self.hs_resp.extend_from_slice(&rbuf[..n]);
                        if self.hs_resp.len() > 64 * 1024 {
                            return Err("handshake response too large".into());
                        }
                        if n < rbuf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err("handshake read", e)),
                }
            }
            match proto::check_handshake_response(&self.hs_resp, &self.accept, self.offer_deflate)?
            {
                None => return Ok(()),
                Some((n, deflate)) => {
                    if self.offer_deflate && !deflate {
                        return Err("the server declined permessage-deflate".into());
                    }
                    if deflate {
                        self.rx.enable_deflate();
                    }
                    if let Some(copies) = self.tx_copies {
                        let (op, t) = (exp.opcode, &exp.template);
                        self.tx = Some(if deflate && t.len() >= proto::DEFLATE_THRESHOLD {
                            TxFrames::new_deflate(op, t, self.mask, copies)
                        } else {
                            TxFrames::new(op, t, self.mask, copies)
                        });
                    }
                    let rest = self.hs_resp.split_off(n);
                    self.hs_resp = Vec::new();
                    self.hs_req = Vec::new();
                    self.state = State::Open;
                    if !rest.is_empty() {
                        self.on_bytes(&rest, exp, stats, Instant::now())?;
                    }
                    readable = false; // drained above
                }
            }
        }
        if self.state != State::Open {
            return Ok(());
        }
        let mut now = None;
        if readable {
            loop {
                match self.sock.read(rbuf) {
                    Ok(0) => return self.on_eof(),
                    Ok(n) => {
                        let t = Instant::now();
                        now = Some(t);
                        self.on_bytes(&rbuf[..n], exp, stats, t)?;
                        if self.state != State::Open {
                            return Ok(());
                        }
                        // A short read drained the socket; epoll reports
                        // the next arrival as a new edge.
                        if n < rbuf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if self.close_sent => {
                        let _ = e;
                        self.state = State::Closed;
                        return Ok(());
                    }
                    Err(e) => return Err(io_err("read", e)),
                }
            }
        }
        if self.credits > 0 || (writable && !self.tx_idle()) {
            self.try_send(now.unwrap_or_else(Instant::now), stats)?;
        }
        Ok(())
    }

    /// Best-effort close frame (only between messages).
    fn send_close(&mut self) {
        if self.state != State::Open || !self.tx_idle() || self.blocked {
            return;
        }
        let frame = proto::client_close_frame(self.mask);
        if let Ok(n) = self.sock.write(&frame) {
            if n == frame.len() {
                self.close_sent = true;
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Report {
    connect_secs: f64,
    window_secs: f64,
    messages: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    mean_ns: f64,
    server_cpu_us: Option<u64>,
    server_cpu_sched_us: Option<u64>,
    loadgen_cpu_us: Option<u64>,
    /// Machine-wide busy CPU time not spent in the server or loadgen.
    other_cpu_us: Option<u64>,
    steal_us: Option<u64>,
    rss_before_kb: Option<u64>,
    rss_open_kb: Option<u64>,
    rss_end_kb: Option<u64>,
    /// Echoes that arrived compressed (RSV1), over the whole run.
    compressed_echoes: u64,
}

fn run(a: &Args) -> Result<Report, String> {
    let pid = a.server_pid.map(|p| p.to_string());
    let pid = pid.as_deref();
    if let Some(p) = pid {
        if procfs::cpu_ticks(p).is_none() {
            return Err(format!(
                "--server-pid {p}: no such process (or /proc unreadable)"
            ));
        }
    }
    let rss = |p: Option<&str>| p.and_then(procfs::rss_kb);
    let mut rep = Report {
        rss_before_kb: rss(pid),
        ..Report::default()
    };

    let opcode = if a.binary {
        proto::OP_BINARY
    } else {
        proto::OP_TEXT
    };
    let exp = Expect {
        opcode,
        template: proto::payload_template(a.size),
    };
    let frame_len = proto::client_header(opcode, a.size, [0; 4]).len() + a.size;
    let copies = a.inflight.min((TX_BATCH_BYTES / frame_len).max(1));
    let mut rng = Rng::from_os();
    let mut poll = Poll::new().map_err(|e| io_err("epoll", e))?;
    let mut events = Events::with_capacity(1024);
    let mut rbuf = vec![0u8; READ_BUF];
    let mut conns: Vec<Conn> = Vec::with_capacity(a.conns);
    let mut n_open = 0usize;
    let mut n_closed = 0usize;
    let mut n_close_sent = 0usize;
    let mut stats = Stats {
        measuring: false,
        refill: true,
        window_msgs: 0,
        outstanding: 0,
        hist: Histogram::new(),
        last_progress: Instant::now(),
    };

    let t_start = Instant::now();
    let mut phase = Phase::Connect;
    let mut phase_end = t_start + a.connect_timeout;
    let mut t_window = t_start;
    let (mut cpu0, mut self0) = (CpuSample::default(), CpuSample::default());
    let mut sys0 = None;
    let mut last_server_ticks: Option<u64> = None;

    loop {
        if phase == Phase::Connect {
            while conns.len() < a.conns && conns.len() - n_open < a.connect_concurrency {
                let id = conns.len();
                let mut sock =
                    TcpStream::connect(a.addr).map_err(|e| io_err(&format!("connect #{id}"), e))?;
                let _ = sock.set_nodelay(true);
                poll.registry()
                    .register(
                        &mut sock,
                        Token(id),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map_err(|e| io_err("epoll register", e))?;
                let key = proto::new_key(&mut rng);
                let mut mask = [0u8; 4];
                rng.fill(&mut mask);
                conns.push(Conn {
                    sock,
                    state: State::Connecting,
                    hs_req: proto::handshake_request(
                        &a.host_header,
                        &a.path,
                        &key,
                        a.deflate.then_some(a.deflate_offer.as_str()),
                    ),
                    hs_off: 0,
                    hs_resp: Vec::new(),
                    accept: proto::accept_for(&key),
                    mask,
                    tx: None,
                    tx_copies: (!a.idle || a.idle_echo).then_some(copies),
                    offer_deflate: a.deflate,
                    tx_off: 0,
                    tx_end: 0,
                    blocked: false,
                    credits: 0,
                    tx_seq: 0,
                    sent: if a.idle {
                        VecDeque::new()
                    } else {
                        VecDeque::with_capacity(a.inflight)
                    },
                    rx: Rx::new(),
                    close_sent: false,
                });
            }
        }

        let now = Instant::now();
        let timeout = if a.spin && phase != Phase::Connect {
            Duration::ZERO
        } else {
            phase_end
                .saturating_duration_since(now)
                .min(Duration::from_millis(100))
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io_err("epoll_wait", e));
            }
        }
        for ev in events.iter() {
            let id = ev.token().0;
            let c = &mut conns[id];
            let before = c.state;
            if before == State::Closed {
                continue;
            }
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let writable = ev.is_writable() || ev.is_error();
            c.handle(readable, writable, &exp, &mut stats, &mut rbuf)
                .map_err(|e| format!("connection #{id}: {e}"))?;
            if before != State::Open && c.state == State::Open {
                n_open += 1;
            }
            if c.state == State::Closed {
                n_closed += 1;
            }
        }

        // Phase transitions (several may happen in one pass).
        loop {
            let now = Instant::now();
            match phase {
                Phase::Connect => {
                    if n_open == a.conns {
                        rep.connect_secs = (now - t_start).as_secs_f64();
                        rep.rss_open_kb = rss(pid);
                        if a.idle {
                            phase = Phase::Hold;
                            phase_end = now + a.warmup + a.duration;
                            if a.idle_echo {
                                // One message each, then hold: memory after
                                // first use (lazily allocated compressors).
                                stats.refill = false;
                                stats.last_progress = now;
                                for (id, c) in conns.iter_mut().enumerate() {
                                    c.credits = 1;
                                    c.try_send(now, &mut stats)
                                        .map_err(|e| format!("connection #{id}: {e}"))?;
                                }
                            }
                        } else {
                            stats.last_progress = now;
                            for (id, c) in conns.iter_mut().enumerate() {
                                c.credits = a.inflight;
                                c.try_send(now, &mut stats)
                                    .map_err(|e| format!("connection #{id}: {e}"))?;
                            }
                            phase = Phase::Warmup;
                            phase_end = now + a.warmup;
                        }
                        continue;
                    }
                    if now >= phase_end {
                        return Err(format!(
                            "only {n_open} of {} connections open after {:.1}s",
                            a.conns,
                            a.connect_timeout.as_secs_f64()
                        ));
                    }
                }
                Phase::Hold => {
                    if now >= phase_end && stats.outstanding > 0 {
                        // --idle-echo: hold until every echo is back (a slow
                        // server is given time), unless echoes stopped coming.
                        if now.saturating_duration_since(stats.last_progress) > a.stall_timeout {
                            return Err(format!(
                                "{} echoes missing after the hold",
                                stats.outstanding
                            ));
                        }
                        phase_end = now + Duration::from_millis(500);
                    }
                    if now >= phase_end {
                        rep.rss_end_kb = rss(pid);
                        rep.window_secs = a.duration.as_secs_f64();
                        phase = Phase::Closing;
                        phase_end = now;
                        continue;
                    }
                }
                Phase::Warmup | Phase::Measure => {
                    if now.saturating_duration_since(stats.last_progress) > a.stall_timeout {
                        return Err(format!(
                            "no echo for {:.1}s ({} messages outstanding) in {phase:?}",
                            a.stall_timeout.as_secs_f64(),
                            stats.outstanding
                        ));
                    }
                    if now >= phase_end && phase == Phase::Warmup {
                        if let Some(p) = pid {
                            cpu0 = CpuSample::take(p);
                        }
                        self0 = CpuSample::take("self");
                        sys0 = procfs::system_ticks();
                        stats.hist.reset();
                        stats.window_msgs = 0;
                        stats.measuring = true;
                        t_window = Instant::now();
                        phase = Phase::Measure;
                        phase_end = t_window + a.duration;
                        continue;
                    }
                    if now >= phase_end && phase == Phase::Measure {
                        stats.measuring = false;
                        stats.refill = false;
                        let t_end = Instant::now();
                        if let Some(p) = pid {
                            let cpu1 = CpuSample::take(p);
                            last_server_ticks = cpu1.ticks;
                            rep.server_cpu_us = cpu1.stat_us_since(&cpu0);
                            rep.server_cpu_sched_us = cpu1.sched_us_since(&cpu0);
                            rep.rss_end_kb = rss(pid);
                        }
                        let self1 = CpuSample::take("self");
                        rep.loadgen_cpu_us = self1.stat_us_since(&self0);
                        if let (Some((b0, st0)), Some((b1, st1))) = (sys0, procfs::system_ticks()) {
                            let ours = self1
                                .ticks
                                .unwrap_or(0)
                                .saturating_sub(self0.ticks.unwrap_or(0))
                                + last_server_ticks
                                    .zip(cpu0.ticks)
                                    .map_or(0, |(a, b)| a.saturating_sub(b));
                            let busy = b1.saturating_sub(b0);
                            rep.other_cpu_us =
                                Some(busy.saturating_sub(ours) * procfs::USEC_PER_TICK);
                            rep.steal_us = Some(st1.saturating_sub(st0) * procfs::USEC_PER_TICK);
                        }
                        rep.window_secs = (t_end - t_window).as_secs_f64();
                        rep.messages = stats.window_msgs;
                        rep.p50_ns = stats.hist.quantile(0.50);
                        rep.p99_ns = stats.hist.quantile(0.99);
                        rep.p999_ns = stats.hist.quantile(0.999);
                        rep.max_ns = stats.hist.max();
                        rep.mean_ns = stats.hist.mean();
                        debug_assert_eq!(stats.hist.count(), stats.window_msgs);
                        phase = Phase::Drain;
                        phase_end = t_end + DRAIN_TIMEOUT;
                        continue;
                    }
                }
                Phase::Drain => {
                    if stats.outstanding == 0 || now >= phase_end {
                        phase = Phase::Closing;
                        phase_end = now;
                        continue;
                    }
                }
                Phase::Closing => {
                    if n_close_sent == 0 && phase_end <= now && n_closed < conns.len() {
                        for c in conns.iter_mut() {
                            c.send_close();
                            if c.close_sent {
                                n_close_sent += 1;
                            }
                        }
                        phase_end = now + CLOSE_TIMEOUT;
                        if n_close_sent == 0 {
                            rep.compressed_echoes =
                                conns.iter().map(|c| c.rx.compressed_msgs).sum();
                            return Ok(rep);
                        }
                    }
                    if n_closed >= n_close_sent || now >= phase_end {
                        rep.compressed_echoes = conns.iter().map(|c| c.rx.compressed_msgs).sum();
                        return Ok(rep);
                    }
                }
            }
            break;
        }
    }
}

/// Minimal JSON object writer.
struct Json(String);

impl Json {
    fn new() -> Json {
        Json(String::from("{"))
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push('"');
        for ch in v.chars() {
            match ch {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }
    fn raw(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }
    fn num(&mut self, k: &str, v: Option<f64>, decimals: usize) -> &mut Self {
        match v {
            Some(x) if x.is_finite() => self.raw(k, format!("{x:.decimals$}")),
            _ => self.raw(k, "null"),
        }
    }
    fn finish(&mut self) -> String {
        self.0.push('}');
        std::mem::take(&mut self.0)
    }
}

fn human_size(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn mode(a: &Args) -> &'static str {
    match (a.idle, a.churn) {
        (true, _) => "idle",
        (_, true) => "churn",
        _ => "echo",
    }
}

fn report(a: &Args, r: &Report) {
    let kind = if a.binary { "binary" } else { "text" };
    let per_conn = |x: Option<u64>| -> Option<f64> {
        Some((x? as f64 - r.rss_before_kb? as f64) * 1024.0 / a.conns as f64)
    };
    let mut j = Json::new();
    j.str("mode", mode(a))
        .str("label", &a.label)
        .str("url", &a.url)
        .raw("conns", a.conns)
        .raw("size", a.size)
        .str("type", kind)
        .raw("inflight", a.inflight)
        .raw("deflate", a.deflate)
        .raw("compressed_echoes", r.compressed_echoes)
        .raw("idle_echo", a.idle_echo)
        .num("warmup_s", Some(a.warmup.as_secs_f64()), 3)
        .num("window_s", Some(r.window_secs), 4)
        .num("connect_s", Some(r.connect_secs), 4);
    let mut human = String::new();
    if a.idle {
        let _ = write!(
            human,
            "idle: {} conns open in {:.2}s",
            a.conns, r.connect_secs
        );
    } else {
        let mps = r.messages as f64 / r.window_secs;
        let bps = mps * a.size as f64;
        let us = |ns: u64| ns as f64 / 1000.0;
        if a.churn {
            let _ = write!(
                human,
                "churn, {} at a time, one {} {kind} message each: {:.0} connections/s, connect to server close p50 {:.1} us p99 {:.1} us max {:.1} us",
                a.conns,
                human_size(a.size),
                mps,
                us(r.p50_ns),
                us(r.p99_ns),
                us(r.max_ns)
            );
        } else {
            let _ = write!(
            human,
            "{} conns x {} {kind}, {} in flight: {:.0} msg/s, {:.2} MiB/s, latency p50 {:.1} us p99 {:.1} us max {:.1} us",
            a.conns,
            human_size(a.size),
            a.inflight,
            mps,
            bps / (1024.0 * 1024.0),
            us(r.p50_ns),
            us(r.p99_ns),
            us(r.max_ns)
        );
        }
        let unit = if a.churn { "conn" } else { "msg" };
        let cpu_per_msg = |cpu: Option<u64>| {
            cpu.filter(|_| r.messages > 0)
                .map(|c| c as f64 / r.messages as f64)
        };
        let util = |cpu: Option<u64>| cpu.map(|c| c as f64 / (r.window_secs * 1e6) * 100.0);
        if a.server_pid.is_some() {
            let _ = write!(
                human,
                "; server {:.2} us/{unit} ({:.0}% of a core)",
                cpu_per_msg(r.server_cpu_us).unwrap_or(f64::NAN),
                util(r.server_cpu_us).unwrap_or(f64::NAN)
            );
        }
        let _ = write!(
            human,
            "; loadgen {:.0}% of a core",
            util(r.loadgen_cpu_us).unwrap_or(f64::NAN)
        );
        if a.deflate {
            let _ = write!(human, "; {} echoes compressed", r.compressed_echoes);
        }
        if let Some(o) = util(r.other_cpu_us).filter(|o| *o >= 10.0) {
            let _ = write!(human, "; other processes {o:.0}% of a core (noisy run)");
        }
        j.raw("messages", r.messages)
            .num("msgs_per_sec", Some(mps), 1)
            .num("bytes_per_sec", Some(bps), 0)
            .num("lat_p50_us", Some(us(r.p50_ns)), 2)
            .num("lat_p99_us", Some(us(r.p99_ns)), 2)
            .num("lat_p999_us", Some(us(r.p999_ns)), 2)
            .num("lat_max_us", Some(us(r.max_ns)), 2)
            .num("lat_mean_us", Some(r.mean_ns / 1000.0), 2)
            .num("server_cpu_us_per_msg", cpu_per_msg(r.server_cpu_us), 3)
            .num(
                "server_cpu_us_per_msg_sched",
                cpu_per_msg(r.server_cpu_sched_us),
                3,
            )
            .num("server_cpu_pct", util(r.server_cpu_us), 1)
            .num("loadgen_cpu_pct", util(r.loadgen_cpu_us), 1)
            .num("other_cpu_pct", util(r.other_cpu_us), 1)
            .num("steal_pct", util(r.steal_us), 1);
    }
    if a.server_pid.is_some() {
        let _ = write!(
            human,
            "; server RSS {} -> {} -> {} KiB",
            r.rss_before_kb.unwrap_or(0),
            r.rss_open_kb.unwrap_or(0),
            r.rss_end_kb.unwrap_or(0)
        );
        if a.idle {
            let _ = write!(
                human,
                " ({:.0} B per idle conn)",
                per_conn(r.rss_end_kb).unwrap_or(f64::NAN)
            );
        }
    }
    j.raw(
        "server_pid",
        a.server_pid.map_or("null".to_string(), |p| p.to_string()),
    )
    .num("server_rss_before_kb", r.rss_before_kb.map(|v| v as f64), 0)
    .num("server_rss_open_kb", r.rss_open_kb.map(|v| v as f64), 0)
    .num("server_rss_end_kb", r.rss_end_kb.map(|v| v as f64), 0)
    .num("rss_per_conn_open_b", per_conn(r.rss_open_kb), 0)
    .num("rss_per_conn_end_b", per_conn(r.rss_end_kb), 0)
    .raw("error", "null");
    emit(&format!("{human}\n{}\n", j.finish()));
}

/// Writes to stdout, ignoring a closed pipe (e.g. `loadgen ... | head -1`).
fn emit(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn main() {
    let a = match args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    if let Some(n) = a.autogroup_nice {
        // Only when alone in our session, so no other process is affected.
        if procfs::session_id("self") != Some(std::process::id()) {
            eprintln!(
                "loadgen: not a session leader (run under setsid); ignoring --autogroup-nice"
            );
        } else if let Err(e) = std::fs::write("/proc/self/autogroup", n.to_string()) {
            eprintln!("loadgen: cannot set autogroup nice {n}: {e}");
        }
    }
    let result = if a.churn { churn::run(&a) } else { run(&a) };
    match result {
        Ok(r) => report(&a, &r),
        Err(e) => {
            eprintln!("loadgen: error: {e}");
            let mut j = Json::new();
            j.str("mode", mode(&a))
                .str("label", &a.label)
                .raw("conns", a.conns)
                .raw("size", a.size)
                .raw("inflight", a.inflight)
                .str("error", &e);
            emit(&format!("{}\n", j.finish()));
            std::process::exit(1);
        }
    }
}

//! Client-side throughput: our clients as load generators against one echo
//! server, so that each client's own cost per message is visible beside
//! loadgen's (`bench/run.sh --clients`).
//!
//! `client-bench --client tokio|mio --url ws://127.0.0.1:9001/ --conns N
//! --size BYTES --warmup S --duration S`
//!
//! Each of N connections keeps one binary message in flight: send, wait
//! for the echo, check that it equals what was sent, send again. The
//! process runs on one thread (tokio `current_thread`, or the ws-mio event
//! loop) and measures its own CPU time over the window from
//! `/proc/self/schedstat`. Prints one human line and one JSON line.

use std::time::Duration;

struct Args {
    client: String,
    url: String,
    conns: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        client: "tokio".into(),
        url: "ws://127.0.0.1:9001/".into(),
        conns: 1,
        size: 16,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(4),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        let secs = |s: String| {
            s.parse::<f64>()
                .ok()
                .filter(|v| (0.0..86_400.0).contains(v))
                .map(Duration::from_secs_f64)
                .ok_or(format!("bad duration {s:?}"))
        };
        match arg.as_str() {
            "--client" => a.client = val()?,
            "--url" => a.url = val()?,
            "--conns" => a.conns = val()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--size" => {
                let v = val()?;
                let (n, mult) = if let Some(k) = v.strip_suffix("KiB") {
                    (k, 1024)
                } else if let Some(m) = v.strip_suffix("MiB") {
                    (m, 1 << 20)
                } else {
                    (v.as_str(), 1)
                };
                a.size = n.parse::<usize>().map_err(|e| format!("--size: {e}"))? * mult;
            }
            "--warmup" => a.warmup = secs(val()?)?,
            "--duration" => a.duration = secs(val()?)?,
            "-h" | "--help" => {
                println!(
                    "usage: client-bench --client tokio|mio [--url URL] [--conns N] [--size N[KiB|MiB]] [--warmup S] [--duration S]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    Ok(a)
}

/// CPU time of this (single-threaded) process's main thread, in ns.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Payload bytes that differ from message to message position.
fn payload(size: usize) -> bytes::Bytes {
    (0..size)
        .map(|i| (i * 7 % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// What a run measured.
struct Measured {
    messages: u64,
    window: Duration,
    cpu_ns: u64,
}

fn report(a: &Args, r: Result<Measured, String>) -> i32 {
    match r {
        Ok(m) => {
            let secs = m.window.as_secs_f64();
            let mps = m.messages as f64 / secs;
            let us_per_msg = if m.messages > 0 {
                m.cpu_ns as f64 / 1000.0 / m.messages as f64
            } else {
                f64::NAN
            };
            let pct = m.cpu_ns as f64 / 1e9 / secs * 100.0;
            println!(
                "client {}: {} conns x {} B: {mps:.0} msg/s; client {us_per_msg:.2} us/msg ({pct:.0}% of a core)",
                a.client, a.conns, a.size
            );
            println!(
                "{{\"mode\":\"client\",\"client\":\"{}\",\"conns\":{},\"size\":{},\"window_s\":{secs:.4},\"messages\":{},\"msgs_per_sec\":{mps:.1},\"client_cpu_us_per_msg\":{us_per_msg:.3},\"client_cpu_pct\":{pct:.1},\"error\":null}}",
                a.client, a.conns, a.size, m.messages
            );
            0
        }
        Err(e) => {
            eprintln!("client-bench: {e}");
            println!(
                "{{\"mode\":\"client\",\"client\":\"{}\",\"conns\":{},\"size\":{},\"error\":\"{}\"}}",
                a.client,
                a.conns,
                a.size,
                e.replace(['"', '\\'], "'")
            );
            1
        }
    }
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("client-bench: {e}");
            std::process::exit(2);
        }
    };
    let r = match a.client.as_str() {
        "tokio" => tokio_client::run(&a),
        "mio" => mio_client::run(&a),
        other => Err(format!("unknown client {other:?} (tokio, mio)")),
    };
    std::process::exit(report(&a, r));
}

/// ws-tokio: one task per connection on a `current_thread` runtime, each
/// `send` then `recv`, as an application would write it.
mod tokio_client {
    use super::{cpu_ns, payload, Args, Measured};
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Instant;
    use ws_tokio::{CloseCode, Config, Message};

    #[derive(Default)]
    struct Shared {
        open: Cell<usize>,
        echoes: Cell<u64>,
        stop: Cell<bool>,
        error: std::cell::RefCell<Option<String>>,
    }

    async fn one(url: String, data: bytes::Bytes, sh: Rc<Shared>) -> Result<(), String> {
        let req = ws_tokio::http::Request::get(url.as_str())
            .body(())
            .map_err(|e| e.to_string())?;
        let (mut ws, _) = ws_tokio::connect_with(req, Config::default())
            .await
            .map_err(|e| format!("connect: {e}"))?;
        sh.open.set(sh.open.get() + 1);
        while !sh.stop.get() {
            ws.send(Message::Binary(data.clone()))
                .await
                .map_err(|e| format!("send: {e}"))?;
            match ws.recv().await {
                Some(Ok(Message::Binary(b))) if b == data => sh.echoes.set(sh.echoes.get() + 1),
                other => return Err(format!("unexpected echo: {other:?}")),
            }
        }
        ws.close(CloseCode::NORMAL, "")
            .await
            .map_err(|e| format!("close: {e}"))?;
        while let Some(m) = ws.recv().await {
            if let Err(e) = m {
                return Err(format!("closing: {e}"));
            }
        }
        Ok(())
    }

    pub fn run(a: &Args) -> Result<Measured, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let local = tokio::task::LocalSet::new();
        let sh = Rc::new(Shared::default());
        let data = payload(a.size);
        local.block_on(&rt, async {
            let mut tasks = Vec::new();
            for _ in 0..a.conns {
                let (url, data, sh) = (a.url.clone(), data.clone(), sh.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    if let Err(e) = one(url, data, sh.clone()).await {
                        sh.error.borrow_mut().get_or_insert(e);
                        sh.stop.set(true);
                    }
                }));
            }
            let limit = Instant::now() + std::time::Duration::from_secs(30);
            while sh.open.get() < a.conns && sh.error.borrow().is_none() {
                if Instant::now() > limit {
                    return Err(format!("only {} connections open", sh.open.get()));
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            tokio::time::sleep(a.warmup).await;
            let (m0, c0, t0) = (sh.echoes.get(), cpu_ns(), Instant::now());
            tokio::time::sleep(a.duration).await;
            let (m1, c1, t1) = (sh.echoes.get(), cpu_ns(), Instant::now());
            sh.stop.set(true);
            for t in tasks {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
            }
            if let Some(e) = sh.error.borrow().clone() {
                return Err(e);
            }
            Ok(Measured {
                messages: m1 - m0,
                window: t1 - t0,
                cpu_ns: c1.saturating_sub(c0),
            })
        })
    }
}

/// ws-mio: the hand-written mio loop of the `ws-mio` crate, as its client
/// example uses it, with a handler that sends the next message from
/// `on_event`.
mod mio_client {
    use super::{cpu_ns, payload, Args, Measured};
    use std::time::{Duration, Instant};
    use ws_mio::{http, CloseCode, Config, Connection, Error, Event, EventLoop, Handler, Token};

    struct Pinger {
        data: bytes::Bytes,
        open: usize,
        echoes: u64,
        stop: bool,
        closed: usize,
        error: Option<String>,
    }

    impl Handler for Pinger {
        fn on_open(&mut self, _: Token, conn: &mut Connection, _: Option<&http::Response<()>>) {
            self.open += 1;
            if let Err(e) = conn.send_binary(self.data.clone()) {
                self.error.get_or_insert(format!("send: {e}"));
            }
        }

        fn on_event(&mut self, _: Token, conn: &mut Connection, event: Event) {
            match event {
                Event::Binary(b) if b == self.data => {
                    self.echoes += 1;
                    let r = if self.stop {
                        conn.close(Instant::now(), CloseCode::NORMAL, "")
                    } else {
                        conn.send_binary(self.data.clone())
                    };
                    if let Err(e) = r {
                        self.error.get_or_insert(format!("send: {e}"));
                    }
                }
                Event::Closed(info) => {
                    self.closed += 1;
                    if !info.is_clean() {
                        self.error.get_or_insert(format!("closed: {info}"));
                    }
                }
                Event::Binary(_) | Event::Text(_) => {
                    self.error.get_or_insert("unexpected echo".into());
                }
                _ => {}
            }
        }

        fn on_error(&mut self, _: Token, error: Error) {
            self.error.get_or_insert(format!("{error}"));
        }
    }

    pub fn run(a: &Args) -> Result<Measured, String> {
        let mut el = EventLoop::new().map_err(|e| e.to_string())?;
        let mut h = Pinger {
            data: payload(a.size),
            open: 0,
            echoes: 0,
            stop: false,
            closed: 0,
            error: None,
        };
        for _ in 0..a.conns {
            let req = http::Request::get(a.url.as_str())
                .body(())
                .map_err(|e| e.to_string())?;
            el.connect(req, Config::default())
                .map_err(|e| format!("connect: {e}"))?;
        }
        let step = Some(Duration::from_millis(10));
        let turn = |el: &mut EventLoop, h: &mut Pinger| -> Result<(), String> {
            el.turn(h, step).map_err(|e| e.to_string())?;
            match &h.error {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            }
        };
        let limit = Instant::now() + Duration::from_secs(30);
        while h.open < a.conns {
            turn(&mut el, &mut h)?;
            if Instant::now() > limit {
                return Err(format!("only {} connections open", h.open));
            }
        }
        let warm_end = Instant::now() + a.warmup;
        while Instant::now() < warm_end {
            turn(&mut el, &mut h)?;
        }
        let (m0, c0, t0) = (h.echoes, cpu_ns(), Instant::now());
        let end = t0 + a.duration;
        while Instant::now() < end {
            turn(&mut el, &mut h)?;
        }
        let (m1, c1, t1) = (h.echoes, cpu_ns(), Instant::now());
        h.stop = true;
        let limit = Instant::now() + Duration::from_secs(5);
        while !el.is_empty() && Instant::now() < limit {
            turn(&mut el, &mut h)?;
        }
        Ok(Measured {
            messages: m1 - m0,
            window: t1 - t0,
            cpu_ns: c1.saturating_sub(c0),
        })
    }
}

//! Command line of loadgen.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

pub const USAGE: &str = "\
usage: loadgen [options]

Single-threaded WebSocket echo load generator. Opens --conns connections to
a ws:// echo server, keeps --inflight messages of --size bytes in flight on
each, verifies every echoed byte, and after --warmup seconds measures for
--duration seconds. Prints one human-readable line and one JSON line.

  --url URL               ws://HOST:PORT/PATH            [ws://127.0.0.1:9001/]
  --conns N               connections                    [1]
  --size S                payload bytes; K/KiB/M/MiB ok  [16]
  --binary | --text       message type                   [--binary]
  --inflight K            messages in flight per conn    [1]
  --duration SECS         measured window (idle: hold)   [5]
  --warmup SECS           unmeasured lead-in (idle: settle before the RSS sample) [1]
  --idle                  only open and hold the connections (memory runs)
  --idle-echo             with --idle: each connection sends one message and
                          gets its echo first (memory after first use)
  --churn                 a new connection per message: each of --conns slots
                          connects, handshakes, sends one message and a close
                          frame, checks the echo, the close frame and the
                          server's TCP close, and starts over; msgs_per_sec
                          and server CPU per message are then per connection
  --deflate               offer permessage-deflate (client_max_window_bits);
                          the server must accept it; messages of at least
                          1 KiB go out compressed (pre-built), compressed
                          echoes are inflated and verified
  --deflate-offer OFFER   with --deflate: the extension offer to send
                          [permessage-deflate; client_max_window_bits]
                          e.g. \"permessage-deflate; server_no_context_takeover\"
  --server-pid PID        sample the server's CPU (/proc/PID/stat) and RSS
                          (/proc/PID/status) around the measured window
  --spin                  busy-poll (epoll_wait with zero timeout) instead of
                          sleeping: less wake-up latency, 100% of a core
  --autogroup-nice N      set the nice value of this process's scheduler
                          autogroup (run loadgen under `setsid` so it is
                          alone in it); needs root for N < 0
  --label TEXT            copied into the JSON line
  --connect-concurrency N handshakes in progress at once [256]
  --connect-timeout SECS  limit for opening all conns    [60]
  --stall-timeout SECS    fail when no echo arrives for this long [10]
";

pub struct Args {
    pub url: String,
    pub addr: SocketAddr,
    pub host_header: String,
    pub path: String,
    pub conns: usize,
    pub size: usize,
    pub binary: bool,
    pub inflight: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub idle: bool,
    pub idle_echo: bool,
    pub churn: bool,
    pub deflate: bool,
    pub deflate_offer: String,
    pub server_pid: Option<u32>,
    pub label: String,
    pub connect_concurrency: usize,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub spin: bool,
    pub autogroup_nice: Option<i32>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("bad size unit in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} too large"))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let t = s.trim().trim_end_matches('s');
    let v: f64 = t.parse().map_err(|_| format!("bad duration {s:?}"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_num(s: &str, what: &str) -> Result<usize, String> {
    s.trim().parse().map_err(|_| format!("bad {what} {s:?}"))
}

/// Splits `ws://host:port/path` into (host header, address, path).
fn parse_url(url: &str) -> Result<(String, SocketAddr, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("only ws:// URLs are supported, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("bad IPv6 host in {url:?}"))?;
        let port = v6[end + 1..].strip_prefix(':').unwrap_or("80");
        (&v6[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (authority, "80"),
        }
    };
    let port: u16 = port.parse().map_err(|_| format!("bad port in {url:?}"))?;
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    let addr = *addrs
        .first()
        .ok_or_else(|| format!("{host:?} resolves to nothing"))?;
    Ok((authority.to_string(), addr, path.to_string()))
}

pub fn parse() -> Result<Args, String> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut a = Args {
        url: String::new(),
        addr: "127.0.0.1:9001".parse().unwrap(),
        host_header: String::new(),
        path: String::new(),
        conns: 1,
        size: 16,
        binary: true,
        inflight: 1,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        idle: false,
        idle_echo: false,
        churn: false,
        deflate: false,
        deflate_offer: crate::proto::DEFLATE_OFFER.to_string(),
        server_pid: None,
        label: String::new(),
        connect_concurrency: 256,
        connect_timeout: Duration::from_secs(60),
        stall_timeout: Duration::from_secs(10),
        spin: false,
        autogroup_nice: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--url" => url = value()?,
            "--conns" | "-c" => a.conns = parse_num(&value()?, "--conns")?,
            "--size" | "-s" => a.size = parse_size(&value()?)?,
            "--binary" => a.binary = true,
            "--text" => a.binary = false,
            "--inflight" => a.inflight = parse_num(&value()?, "--inflight")?,
            "--duration" | "-d" => a.duration = parse_secs(&value()?)?,
            "--warmup" => a.warmup = parse_secs(&value()?)?,
            "--idle" => a.idle = true,
            "--idle-echo" => a.idle_echo = true,
            "--churn" => a.churn = true,
            "--deflate" => a.deflate = true,
            "--deflate-offer" => {
                a.deflate = true;
                a.deflate_offer = value()?;
            }
            "--spin" => a.spin = true,
            "--autogroup-nice" => {
                let v: i32 = value()?
                    .trim()
                    .parse()
                    .map_err(|_| "bad --autogroup-nice".to_string())?;
                if !(-20..=19).contains(&v) {
                    return Err("--autogroup-nice must be in -20..=19".into());
                }
                a.autogroup_nice = Some(v);
            }
            "--server-pid" => {
                a.server_pid = Some(
                    value()?
                        .trim()
                        .parse()
                        .map_err(|_| "bad --server-pid".to_string())?,
                )
            }
            "--label" => a.label = value()?,
            "--connect-concurrency" => {
                a.connect_concurrency = parse_num(&value()?, "--connect-concurrency")?
            }
            "--connect-timeout" => a.connect_timeout = parse_secs(&value()?)?,
            "--stall-timeout" => a.stall_timeout = parse_secs(&value()?)?,
            _ => return Err(format!("unknown argument {arg:?}\n\n{USAGE}")),
        }
    }
    if a.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    if a.inflight == 0 {
        return Err("--inflight must be at least 1".into());
    }
    if a.churn && (a.idle || a.deflate || a.inflight != 1) {
        return Err("--churn sends one uncompressed message per connection: no --idle, --deflate or --inflight".into());
    }
    if a.connect_concurrency == 0 {
        return Err("--connect-concurrency must be at least 1".into());
    }
    if !a.idle && a.duration.is_zero() {
        return Err("--duration must be above 0".into());
    }
    let (host, addr, path) = parse_url(&url)?;
    a.url = url;
    a.host_header = host;
    a.addr = addr;
    a.path = path;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16").unwrap(), 16);
        assert_eq!(parse_size("16KiB").unwrap(), 16384);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert!(parse_size("1x").is_err());
    }

    #[test]
    fn urls() {
        let (h, a, p) = parse_url("ws://127.0.0.1:9100/echo").unwrap();
        assert_eq!(
            (h.as_str(), a.port(), p.as_str()),
            ("127.0.0.1:9100", 9100, "/echo")
        );
        let (_, a, p) = parse_url("ws://[::1]:9101").unwrap();
        assert_eq!((a.port(), p.as_str()), (9101, "/"));
        assert!(parse_url("wss://x/").is_err());
    }
}

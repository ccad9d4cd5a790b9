//! Loopback helpers for the client tests of every adapter, on plain
//! threads and `std::net` so that any adapter's tests can use them: an HTTP
//! CONNECT proxy, a SOCKS5 proxy, a scripted HTTP server (redirects, error
//! answers with bodies, upgrades, silence), and third-party peer servers
//! (Python's `websockets`, Node's `ws`).
//!
//! Every socket has read/write timeouts, so every thread ends by itself.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn timeouts(s: &TcpStream) {
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
}

/// Reads an HTTP head (up to `\r\n\r\n`), byte by byte so that nothing
/// after it is consumed. `None` on EOF, timeout or more than 16 KiB.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 << 10 {
            return None;
        }
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    String::from_utf8(head).ok()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Copies both ways until both sides are done.
fn splice(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let t = thread::spawn(move || pipe(a2, b2));
    pipe(b, a);
    let _ = t.join();
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// What a proxy saw.
#[derive(Default, Debug)]
pub struct ProxyLog {
    /// Tunnels opened.
    pub tunnels: AtomicUsize,
    /// Requests refused (bad credentials).
    pub refused: AtomicUsize,
    /// The targets asked for, as the client wrote them.
    pub targets: Mutex<Vec<String>>,
}

/// An HTTP CONNECT proxy on 127.0.0.1; with `auth`, it answers 407 unless
/// `Proxy-Authorization: Basic base64(user:pass)` matches.
pub fn http_proxy(auth: Option<&'static str>) -> (SocketAddr, Arc<ProxyLog>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let log = Arc::new(ProxyLog::default());
    let log2 = log.clone();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let log = log2.clone();
            thread::spawn(move || {
                timeouts(&s);
                let Some(head) = read_head(&mut s) else {
                    return;
                };
                let mut words = head.split_whitespace();
                let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
                    let _ = s.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
                    return;
                };
                log.targets.lock().unwrap().push(target.to_string());
                if let Some(want) = auth {
                    if header(&head, "proxy-authorization") != Some(want) {
                        log.refused.fetch_add(1, Ordering::SeqCst);
                        let _ = s.write_all(
                            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                              Proxy-Authenticate: Basic realm=\"t\"\r\ncontent-length: 0\r\n\r\n",
                        );
                        return;
                    }
                }
                let target = target.trim_start_matches('[').replace("]:", ":");
                let up = match resolve_connect(&target) {
                    Some(up) => up,
                    None => {
                        let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                        return;
                    }
                };
                log.tunnels.fetch_add(1, Ordering::SeqCst);
                let _ = s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                splice(s, up);
            });
        }
    });
    (addr, log)
}

fn resolve_connect(target: &str) -> Option<TcpStream> {
    use std::net::ToSocketAddrs;
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let up = TcpStream::connect_timeout(&addr, IO_TIMEOUT).ok()?;
    timeouts(&up);
    Some(up)
}

/// A SOCKS5 proxy on 127.0.0.1 (RFC 1928); with `auth` = (user, pass) it
/// requires username/password (RFC 1929). Targets are logged as
/// `domain:<name>:<port>` or `ip:<addr>:<port>`.
pub fn socks5_proxy(auth: Option<(&'static str, &'static str)>) -> (SocketAddr, Arc<ProxyLog>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let log = Arc::new(ProxyLog::default());
    let log2 = log.clone();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let log = log2.clone();
            thread::spawn(move || {
                timeouts(&s);
                let _ = socks_session(&mut s, auth, &log).map(|up| splice(s, up));
            });
        }
    });
    (addr, log)
}

fn socks_session(
    s: &mut TcpStream,
    auth: Option<(&str, &str)>,
    log: &ProxyLog,
) -> std::io::Result<TcpStream> {
    let bad = || std::io::Error::other("socks");
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr)?;
    let mut methods = vec![0u8; hdr[1] as usize];
    s.read_exact(&mut methods)?;
    if hdr[0] != 5 {
        return Err(bad());
    }
    let want = if auth.is_some() { 2 } else { 0 };
    if !methods.contains(&want) {
        s.write_all(&[5, 0xff])?;
        log.refused.fetch_add(1, Ordering::SeqCst);
        return Err(bad());
    }
    s.write_all(&[5, want])?;
    if let Some((user, pass)) = auth {
        let mut v = [0u8; 2];
        s.read_exact(&mut v)?;
        let mut u = vec![0u8; v[1] as usize];
        s.read_exact(&mut u)?;
        let mut pl = [0u8; 1];
        s.read_exact(&mut pl)?;
        let mut p = vec![0u8; pl[0] as usize];
        s.read_exact(&mut p)?;
        if u != user.as_bytes() || p != pass.as_bytes() {
            s.write_all(&[1, 1])?;
            log.refused.fetch_add(1, Ordering::SeqCst);
            return Err(bad());
        }
        s.write_all(&[1, 0])?;
    }
    let mut req = [0u8; 4];
    s.read_exact(&mut req)?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a)?;
            format!("ip:{}", std::net::Ipv4Addr::from(a))
        }
        4 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a)?;
            format!("ip:{}", std::net::Ipv6Addr::from(a))
        }
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l)?;
            let mut d = vec![0u8; l[0] as usize];
            s.read_exact(&mut d)?;
            format!("domain:{}", String::from_utf8_lossy(&d))
        }
        _ => return Err(bad()),
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port)?;
    let port = u16::from_be_bytes(port);
    log.targets.lock().unwrap().push(format!("{host}:{port}"));
    let name = host.split_once(':').unwrap().1;
    let name = if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_string()
    };
    match resolve_connect(&format!("{name}:{port}")) {
        Some(up) => {
            log.tunnels.fetch_add(1, Ordering::SeqCst);
            // Bound address 0.0.0.0:0.
            s.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
            Ok(up)
        }
        None => {
            s.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
            Err(bad())
        }
    }
}

/// One request a [`scripted`] server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request target.
    pub path: String,
    /// The whole head.
    pub head: String,
}

impl Seen {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.head, name)
    }
}

/// How a [`scripted`] server answers a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 302 with this `Location`.
    Redirect(String),
    /// A valid 101 (then the server reads until the client goes away).
    Upgrade,
    /// This status with a body (sent in two parts, the second a bit later),
    /// announced by `Content-Length`.
    Status(u16, Vec<u8>),
    /// Nothing at all (for handshake timeouts).
    Silence,
}

/// An HTTP server on 127.0.0.1 that answers each request with
/// `script(path)` and logs every request.
pub fn scripted<F>(script: F) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>)
where
    F: Fn(&str) -> Reply + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let script = Arc::new(script);
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let seen = seen2.clone();
            let script = script.clone();
            thread::spawn(move || {
                timeouts(&s);
                let Some(head) = read_head(&mut s) else {
                    return;
                };
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(Seen {
                    path: path.clone(),
                    head: head.clone(),
                });
                match script(&path) {
                    Reply::Redirect(to) => {
                        let _ = write!(
                            s,
                            "HTTP/1.1 302 Found\r\nLocation: {to}\r\ncontent-length: 0\r\n\r\n"
                        );
                    }
                    Reply::Upgrade => {
                        let key = header(&head, "sec-websocket-key").unwrap_or("");
                        let accept = ws_proto::accept_key(key.as_bytes());
                        let _ = write!(
                            s,
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                        );
                        let mut sink = [0u8; 1024];
                        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                    }
                    Reply::Status(code, body) => {
                        let _ = write!(
                            s,
                            "HTTP/1.1 {code} Nope\r\nContent-Type: text/plain\r\n\
                             Content-Length: {}\r\n\r\n",
                            body.len()
                        );
                        let half = body.len() / 2;
                        let _ = s.write_all(&body[..half]);
                        let _ = s.flush();
                        thread::sleep(Duration::from_millis(50));
                        let _ = s.write_all(&body[half..]);
                        let mut sink = [0u8; 1024];
                        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                    }
                    Reply::Silence => {
                        let mut sink = [0u8; 1024];
                        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A third-party peer server process, killed (by its PID) when dropped.
pub struct Peer {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_peers() -> bool {
    std::env::var("WS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn skip(what: &str) -> Option<Peer> {
    if require_peers() {
        panic!("{what} is not available and WS_REQUIRE_PEERS=1");
    }
    eprintln!("NOTICE: skipping: {what} is not installed (set WS_REQUIRE_PEERS=1 to fail instead)");
    None
}

fn spawn_peer(mut cmd: std::process::Command, what: &str) -> Option<Peer> {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => return skip(what),
    };
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _ = out.read_line(&mut line);
    match line.trim().parse::<u16>() {
        Ok(port) => Some(Peer { child, port }),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            skip(what)
        }
    }
}

/// Python `websockets` echo server (permessage-deflate on, subprotocol
/// `chat` selected when offered), printing its port; it exits after 60 s.
/// With `unix`, it listens on that socket path instead (and prints 0).
pub fn python_websockets(unix: Option<&str>) -> Option<Peer> {
    let script = r#"
import asyncio, sys
try:
    from websockets.asyncio.server import serve, unix_serve
except ImportError:
    sys.exit(3)
async def echo(ws):
    await ws.send("path " + ws.request.path)
    async for m in ws:
        await ws.send(m)
async def main():
    kw = dict(subprotocols=["chat"], compression="deflate", max_size=2**24)
    if len(sys.argv) > 1:
        async with unix_serve(echo, sys.argv[1], **kw):
            print(0, flush=True)
            await asyncio.sleep(60)
    else:
        async with serve(echo, "127.0.0.1", 0, **kw) as server:
            print(server.sockets[0].getsockname()[1], flush=True)
            await asyncio.sleep(60)
asyncio.run(main())
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(script);
    if let Some(p) = unix {
        cmd.arg(p);
    }
    spawn_peer(cmd, "Python websockets (pip install websockets)")
}

/// The `node_modules` directory that holds Node's `ws`: `$WS_NODE_MODULES`,
/// or `target/peers/node_modules` of the workspace (`npm install --prefix
/// target/peers ws`).
fn node_modules() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("WS_NODE_MODULES") {
        return p.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/node_modules")
}

/// Node `ws` echo server (perMessageDeflate on, subprotocol `chat` chosen
/// when offered), printing its port; it exits after 60 s.
pub fn node_ws() -> Option<Peer> {
    let dir = node_modules();
    if !dir.join("ws").exists() {
        return skip("Node's ws (npm install --prefix target/peers ws)");
    }
    let script = r#"
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true,
  handleProtocols: (p) => p.has('chat') ? 'chat' : false });
wss.on('listening', () => console.log(wss.address().port));
wss.on('connection', (ws, req) => {
  ws.send('path ' + req.url);
  ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
});
setTimeout(() => process.exit(0), 60000).unref();
"#;
    let mut cmd = std::process::Command::new("node");
    cmd.arg("-e").arg(script).env("NODE_PATH", dir);
    spawn_peer(cmd, "Node.js with ws")
}

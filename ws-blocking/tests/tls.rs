//! wss:// between our blocking client and server on 127.0.0.1, with a test
//! CA and certificates generated at test time (rcgen).

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use ws_blocking::tls::{self, rustls, ClientTls, RootCertStore, ServerTls};
use ws_blocking::{Config, Error, HandshakeError, Message};

struct Pki {
    ca_cert: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

struct Issued {
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ws-rs test CA");
        let ca_cert = params.self_signed(&ca_key).unwrap();
        Pki { ca_cert, ca_key }
    }

    fn issue(&self, names: &[&str]) -> Issued {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        Issued {
            cert: cert.der().clone(),
            key: rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_cert.der().clone()).unwrap();
        roots
    }

    fn client(&self) -> ClientTls {
        ClientTls::new()
            .without_webpki_roots()
            .add_root(self.ca_cert.der().clone())
    }
}

fn config() -> Config {
    Config::default().handshake_timeout(Some(Duration::from_secs(5)))
}

fn request(url: &str) -> ws_blocking::http::Request<()> {
    ws_blocking::http::Request::get(url).body(()).unwrap()
}

/// An echo server for `n` connections, one thread each; each accept's
/// outcome (the SNI seen, or the error) goes to the returned channel.
fn serve(
    config: Arc<rustls::ServerConfig>,
    n: usize,
) -> (u16, mpsc::Receiver<Result<Option<String>, Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for _ in 0..n {
            let (tcp, _) = listener.accept().unwrap();
            let (config, tx) = (config.clone(), tx.clone());
            thread::spawn(move || {
                match tls::accept_with(tcp, config, self::config(), |_| {
                    Ok(ws_blocking::Accept::new())
                }) {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                    Ok(mut ws) => {
                        let sni = ws.get_ref().session().server_name().map(str::to_string);
                        let _ = tx.send(Ok(sni));
                        while let Some(Ok(m)) = ws.recv() {
                            if m.is_data() && ws.send(m).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    (port, rx)
}

fn echo_round_trip(ws: &mut ws_blocking::WebSocket<tls::WssStream>) {
    ws.send(Message::text("hello over tls")).unwrap();
    assert_eq!(ws.recv().unwrap().unwrap(), Message::text("hello over tls"));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.recv().unwrap().unwrap(), Message::binary(big));
    ws.close(ws_blocking::CloseCode::NORMAL, "bye").unwrap();
    // The server closes TCP first, after TLS close_notify: a clean end.
    while let Some(m) = ws.recv() {
        match m {
            Ok(Message::Close(_)) => {}
            other => panic!("after close: {other:?}"),
        }
    }
    let info = ws.close_info().expect("closed").clone();
    assert!(info.into_result(None).is_ok(), "clean close");
}

#[test]
fn echo_with_sni_and_alpn() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let (port, seen) = serve(ServerTls::new(vec![id.cert], id.key).build().unwrap(), 1);
    let (mut ws, resp) = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        pki.client().build().unwrap(),
    )
    .unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(
        ws.get_ref().session().alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(seen.recv().unwrap().unwrap().as_deref(), Some("localhost"));
    echo_round_trip(&mut ws);
}

#[test]
fn ip_literal_and_no_sni() {
    let pki = Pki::new();
    let id = pki.issue(&["127.0.0.1"]);
    let (port, seen) = serve(ServerTls::new(vec![id.cert], id.key).build().unwrap(), 1);
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://127.0.0.1:{port}/")),
        config(),
        pki.client().build().unwrap(),
    )
    .unwrap();
    assert_eq!(seen.recv().unwrap().unwrap(), None);
    echo_round_trip(&mut ws);
}

#[test]
fn untrusted_ca_and_wrong_name_are_tls_errors() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let (port, seen) = serve(ServerTls::new(vec![id.cert], id.key).build().unwrap(), 2);
    let err = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        ClientTls::new().build().unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        tls::tls_error(&err),
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "{err}"
    );
    assert!(seen.recv().unwrap().is_err());
    let err = tls::connect_with(
        request(&format!("wss://127.0.0.1:{port}/")),
        config(),
        pki.client().build().unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(
            tls::tls_error(&err),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn mutual_tls() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let cfg = ServerTls::new(vec![id.cert], id.key)
        .require_client_certs(pki.roots())
        .build()
        .unwrap();
    let (port, seen) = serve(cfg, 2);
    let url = format!("wss://localhost:{port}/");
    let err =
        tls::connect_with(request(&url), config(), pki.client().build().unwrap()).unwrap_err();
    assert!(tls::tls_error(&err).is_some(), "{err:?}");
    assert!(seen.recv().unwrap().is_err());
    let me = pki.issue(&["client"]);
    let client = pki
        .client()
        .client_auth(vec![me.cert], me.key)
        .build()
        .unwrap();
    let (mut ws, _) = tls::connect_with(request(&url), config(), client).unwrap();
    assert!(seen.recv().unwrap().is_ok());
    assert!(ws.get_ref().session().peer_certificates().is_some());
    echo_round_trip(&mut ws);
}

/// The core's timers run through TLS reads that time out: a server with a
/// heartbeat drops a client that stopped reading (no pong) on time.
#[test]
fn heartbeat_drops_a_dead_client_over_tls() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let cfg = ServerTls::new(vec![id.cert], id.key).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let heartbeat = config()
            .ping_interval(Some(Duration::from_millis(100)))
            .idle_timeout(Some(Duration::from_millis(400)));
        let mut ws =
            tls::accept_with(tcp, cfg, heartbeat, |_| Ok(ws_blocking::Accept::new())).unwrap();
        let start = std::time::Instant::now();
        while let Some(Ok(_)) = ws.recv() {}
        (start.elapsed(), ws.close_info().cloned())
    });
    // Connected, then never reads: pings go unanswered.
    let (client, _) = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        pki.client().build().unwrap(),
    )
    .unwrap();
    let (elapsed, info) = server.join().unwrap();
    assert_eq!(
        info.expect("ended").ending,
        ws_proto::Ending::IdleTimeout,
        "dropped by the idle timeout"
    );
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    drop(client);
}

/// Write timeouts reach the socket under the TLS session: the idle
/// timeout ends a `send` blocked on a client that stopped reading.
#[test]
fn idle_timeout_ends_a_blocked_send_over_tls() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let cfg = ServerTls::new(vec![id.cert], id.key).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client_cfg = pki.client().build().unwrap();
    let client = thread::spawn(move || {
        tls::connect_with(
            request(&format!("wss://localhost:{port}/")),
            config(),
            client_cfg,
        )
        .unwrap()
        .0
    });
    let (tcp, _) = listener.accept().unwrap();
    let idle = config().idle_timeout(Some(Duration::from_millis(500)));
    let mut ws = tls::accept_with(tcp, cfg, idle, |_| Ok(ws_blocking::Accept::new())).unwrap();
    // Connected, then never reads.
    let _client = client.join().unwrap();
    let start = std::time::Instant::now();
    let chunk = Message::binary(vec![0x5a; 256 << 10]);
    let err = (0..256)
        .find_map(|_| ws.send(chunk.clone()).err())
        .expect("64 MiB taken by a peer that reads nothing");
    let took = start.elapsed();
    match &err {
        Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{err}"),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    match ws.recv() {
        Some(Err(Error::Closed(info))) => {
            assert_eq!(info.ending, ws_proto::Ending::IdleTimeout, "{info}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn silent_client_hits_the_tls_handshake_timeout() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let cfg = ServerTls::new(vec![id.cert], id.key).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _silent = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (tcp, _) = listener.accept().unwrap();
    let ws_config = Config::default().handshake_timeout(Some(Duration::from_millis(200)));
    let r = tls::accept_with(tcp, cfg, ws_config, |_| Ok(ws_blocking::Accept::new()));
    assert_eq!(r.unwrap_err(), Error::Handshake(HandshakeError::Timeout));
}

#[test]
fn silent_server_hits_the_client_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = Config::default().handshake_timeout(Some(Duration::from_millis(200)));
    let r = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        cfg,
        ClientTls::new().build().unwrap(),
    );
    assert_eq!(r.unwrap_err(), Error::Handshake(HandshakeError::Timeout));
    drop(listener);
}

// ------------------------------------------------- a third-party peer --

/// Python's `websockets` as a TLS client (`client URL CA`) or server
/// (`server CERT KEY`: prints its port, lives at most 30 s).
const PEER_PY: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.server import serve
from websockets.asyncio.client import connect

async def echo(ws):
    async for m in ws:
        await ws.send(m)

async def server(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    async with serve(echo, "127.0.0.1", 0, ssl=ctx) as srv:
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(30)

async def client(url, ca):
    ctx = ssl.create_default_context(cafile=ca)
    async with connect(url, ssl=ctx) as ws:
        await ws.send("hello from python")
        assert await ws.recv() == "hello from python"
        await ws.send(bytes(range(256)) * 100)
        assert await ws.recv() == bytes(range(256)) * 100
    print("OK", flush=True)

if sys.argv[1] == "server":
    asyncio.run(server(sys.argv[2], sys.argv[3]))
else:
    asyncio.run(client(sys.argv[2], sys.argv[3]))
"#;

/// A directory with the peer script, the CA, and a server certificate and
/// key for localhost; `None` (the test is skipped, with a notice) when
/// Python's `websockets` is missing, unless `WS_REQUIRE_PEERS=1`.
fn python_peer(pki: &Pki, tag: &str) -> Option<std::path::PathBuf> {
    let found = std::process::Command::new("python3")
        .args(["-c", "import websockets.asyncio.server"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("WS_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("WS_REQUIRE_PEERS=1 but `python3 -c 'import websockets'` fails");
        }
        eprintln!("SKIPPED: Python's websockets is not installed (pip install websockets)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("ws-blocking-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("peer.py"), PEER_PY).unwrap();
    std::fs::write(dir.join("ca.pem"), pki.ca_cert.pem()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &pki.ca_cert, &pki.ca_key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    Some(dir)
}

/// A child process that is killed (by its handle) when dropped.
struct Peer(std::process::Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the Python server; returns it and its port.
fn python_server(dir: &std::path::Path) -> (Peer, u16) {
    use std::io::BufRead;
    let mut child = std::process::Command::new("python3")
        .arg(dir.join("peer.py"))
        .arg("server")
        .args([dir.join("cert.pem"), dir.join("key.pem")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let peer = Peer(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse::<u16>()
        .expect("the Python server prints its port");
    (peer, port)
}

#[test]
fn python_websockets_client_against_our_wss_server() {
    let pki = Pki::new();
    let Some(dir) = python_peer(&pki, "pyclient") else {
        return;
    };
    let cfg = ServerTls::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))
        .unwrap()
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws =
            tls::accept_with(tcp, cfg, config(), |_| Ok(ws_blocking::Accept::new())).unwrap();
        let mut echoed = 0;
        while let Some(m) = ws.recv() {
            let m = m.unwrap();
            if m.is_data() {
                ws.send(m).unwrap();
                echoed += 1;
            }
        }
        echoed
    });
    let child = std::process::Command::new("python3")
        .arg(dir.join("peer.py"))
        .args(["client", &format!("wss://localhost:{port}/")])
        .arg(dir.join("ca.pem"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The script is bounded by the server's handshake and close timeouts.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python client failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    assert_eq!(server.join().unwrap(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_wss_client_against_python_websockets_server() {
    let pki = Pki::new();
    let Some(dir) = python_peer(&pki, "pyserver") else {
        return;
    };
    let (peer, port) = python_server(&dir);
    let client = pki.client().build().unwrap();
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        client,
    )
    .unwrap();
    echo_round_trip(&mut ws);
    drop(peer);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that floods pings over TLS and reads nothing: the server's
/// `recv` writes its pongs only as far as the socket takes them (records
/// it does not take wait in rustls), keeps reading, delivers the text that
/// follows the flood, and writes the rest once the client reads. Over a
/// Unix socket pair, whose small buffers take far less than the pongs.
#[cfg(unix)]
#[test]
fn ping_flood_over_tls_does_not_hold_the_server() {
    use std::os::unix::net::UnixStream;
    const PINGS: u32 = 20_000;
    let pki = Pki::new();
    let server_tls = {
        let id = pki.issue(&["localhost"]);
        ServerTls::new(vec![id.cert], id.key).build().unwrap()
    };
    let client_tls = pki.client().build().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let client = thread::spawn(move || {
        let (mut ws, _) =
            tls::client_handshake(b, request("wss://localhost/"), config(), client_tls).unwrap();
        let payload = |i: u32| i.to_be_bytes().repeat(31);
        for i in 0..PINGS {
            ws.send(Message::Ping(payload(i).into())).unwrap();
        }
        ws.send(Message::text("after the flood")).unwrap();
        // Now read: pongs until the answer to the last ping.
        let mut pongs = 0;
        loop {
            match ws.recv() {
                Some(Ok(Message::Pong(p))) => {
                    pongs += 1;
                    if p[..] == payload(PINGS - 1)[..] {
                        break;
                    }
                }
                other => panic!("expected pongs, got {other:?}"),
            }
        }
        ws.close(ws_blocking::CloseCode::NORMAL, "").unwrap();
        while let Some(m) = ws.recv() {
            assert!(
                matches!(m, Ok(Message::Close(_)) | Ok(Message::Pong(_))),
                "{m:?}"
            );
        }
        pongs
    });
    let server = thread::spawn(move || {
        let mut ws = tls::accept(a, server_tls).unwrap();
        let (mut pings, mut max_queued) = (0, 0);
        let next = loop {
            match ws.recv() {
                Some(Ok(Message::Ping(_))) => {
                    pings += 1;
                    max_queued = max_queued.max(ws.buffered_amount());
                }
                other => break other,
            }
        };
        assert_eq!(pings, PINGS);
        assert!(max_queued <= 192 << 10, "{max_queued} bytes queued");
        assert_eq!(next.unwrap().unwrap(), Message::text("after the flood"));
        match ws.recv() {
            Some(Ok(Message::Close(_))) => {}
            other => panic!("expected the client's close, got {other:?}"),
        }
        assert!(ws.recv().is_none());
        let _ = done_tx.send(());
    });
    // Bounded: a server stuck in a pong write never gets here.
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server finished");
    server.join().unwrap();
    let pongs = client.join().unwrap();
    assert!(pongs > 0 && pongs <= PINGS as usize, "{pongs} pongs");
}

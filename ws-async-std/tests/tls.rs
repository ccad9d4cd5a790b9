//! wss:// between our client and our server on 127.0.0.1, on smol and on
//! async-std, with a test CA and certificates generated at test time.

use std::sync::Arc;
use std::time::Duration;
use ws_async_std::tls::{self, rustls, ClientTls, RootCertStore, ServerTls};
use ws_async_std::{Config, Error, HandshakeError, Message};

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

fn request(url: &str) -> ws_async_std::http::Request<()> {
    ws_async_std::http::Request::get(url).body(()).unwrap()
}

/// A smol echo server for `n` connections; each accept's outcome (the SNI
/// seen, or the error) goes to the returned channel.
fn serve_smol(
    config: Arc<rustls::ServerConfig>,
    n: usize,
) -> (u16, smol::channel::Receiver<Result<Option<String>, Error>>) {
    let listener = smol::block_on(async_net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls::TlsAcceptor::from(config);
    let (tx, rx) = smol::channel::unbounded();
    smol::spawn(async move {
        for _ in 0..n {
            let (tcp, _) = listener.accept().await.unwrap();
            let r = tls::smol::accept_with(tcp, &acceptor, config_(), |_| {
                Ok(ws_async_std::Accept::new())
            })
            .await;
            match r {
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
                Ok(mut ws) => {
                    let sni = ws.get_ref().get_ref().1.server_name().map(str::to_string);
                    let _ = tx.send(Ok(sni)).await;
                    smol::spawn(async move {
                        while let Some(Ok(m)) = ws.recv().await {
                            if m.is_data() && ws.send(m).await.is_err() {
                                break;
                            }
                        }
                    })
                    .detach();
                }
            }
        }
    })
    .detach();
    (port, rx)
}

fn config_() -> Config {
    config()
}

async fn echo_round_trip<S>(ws: &mut ws_async_std::WebSocket<S>)
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
    ws.send(Message::text("hello over tls")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("hello over tls")
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::binary(big));
    ws.close(ws_async_std::CloseCode::NORMAL, "bye")
        .await
        .unwrap();
    while let Some(m) = ws.recv().await {
        match m {
            Ok(Message::Close(_)) => {}
            other => panic!("after close: {other:?}"),
        }
    }
    let info = ws.close_info().expect("closed").clone();
    assert!(info.into_result(None).is_ok(), "clean close");
}

#[test]
fn smol_echo_with_sni() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let (port, seen) = serve_smol(ServerTls::new(vec![id.cert], id.key).build().unwrap(), 1);
    smol::block_on(async {
        let (mut ws, resp) = tls::smol::connect_with(
            request(&format!("wss://localhost:{port}/")),
            config(),
            pki.client().build().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 101);
        assert_eq!(
            seen.recv().await.unwrap().unwrap().as_deref(),
            Some("localhost")
        );
        echo_round_trip(&mut ws).await;
    });
}

#[test]
fn async_std_client_and_server() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost", "127.0.0.1"]);
    let acceptor = tls::TlsAcceptor::from(ServerTls::new(vec![id.cert], id.key).build().unwrap());
    async_std::task::block_on(async {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = async_std::task::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tls::async_std::accept(tcp, &acceptor).await.unwrap();
            // An IP address is not sent as SNI (RFC 6066 §3).
            assert_eq!(ws.get_ref().get_ref().1.server_name(), None);
            while let Some(Ok(m)) = ws.recv().await {
                ws.send(m).await.unwrap();
            }
        });
        let (mut ws, _) = tls::async_std::connect_with(
            request(&format!("wss://127.0.0.1:{port}/")),
            config(),
            pki.client().build().unwrap(),
        )
        .await
        .unwrap();
        echo_round_trip(&mut ws).await;
        server.await;
    });
}

#[test]
fn untrusted_ca_and_wrong_name_are_tls_errors() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let (port, seen) = serve_smol(ServerTls::new(vec![id.cert], id.key).build().unwrap(), 2);
    smol::block_on(async {
        let err = tls::smol::connect_with(
            request(&format!("wss://localhost:{port}/")),
            config(),
            ClientTls::new().build().unwrap(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            tls::tls_error(&err),
            Some(&rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )),
            "{err}"
        );
        assert!(seen.recv().await.unwrap().is_err());
        // Trusted CA, but the certificate names localhost, not 127.0.0.1.
        let err = tls::smol::connect_with(
            request(&format!("wss://127.0.0.1:{port}/")),
            config(),
            pki.client().build().unwrap(),
        )
        .await
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
    });
}

#[test]
fn mutual_tls() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let cfg = ServerTls::new(vec![id.cert], id.key)
        .require_client_certs(pki.roots())
        .build()
        .unwrap();
    let (port, seen) = serve_smol(cfg, 2);
    let url = format!("wss://localhost:{port}/");
    smol::block_on(async {
        let err = tls::smol::connect_with(request(&url), config(), pki.client().build().unwrap())
            .await
            .unwrap_err();
        assert!(tls::tls_error(&err).is_some(), "{err:?}");
        assert!(seen.recv().await.unwrap().is_err());
        let me = pki.issue(&["client"]);
        let client = pki
            .client()
            .client_auth(vec![me.cert], me.key)
            .build()
            .unwrap();
        let (mut ws, _) = tls::smol::connect_with(request(&url), config(), client)
            .await
            .unwrap();
        assert!(seen.recv().await.unwrap().is_ok());
        echo_round_trip(&mut ws).await;
    });
}

#[test]
fn silent_client_hits_the_tls_handshake_timeout() {
    let pki = Pki::new();
    let id = pki.issue(&["localhost"]);
    let acceptor = tls::TlsAcceptor::from(ServerTls::new(vec![id.cert], id.key).build().unwrap());
    smol::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _silent = async_net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let cfg = Config::default().handshake_timeout(Some(Duration::from_millis(200)));
        let r =
            tls::smol::accept_with(tcp, &acceptor, cfg, |_| Ok(ws_async_std::Accept::new())).await;
        assert_eq!(r.unwrap_err(), Error::Handshake(HandshakeError::Timeout));
    });
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
    let dir = std::env::temp_dir().join(format!("ws-async-std-tls-{tag}-{}", std::process::id()));
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

#[test]
fn our_smol_and_async_std_clients_against_python_websockets_server() {
    use std::io::BufRead;
    let pki = Pki::new();
    let Some(dir) = python_peer(&pki, "pyserver") else {
        return;
    };
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
    let url = format!("wss://localhost:{port}/");
    smol::block_on(async {
        let client = pki.client().build().unwrap();
        let (mut ws, _) = tls::smol::connect_with(request(&url), config(), client)
            .await
            .unwrap();
        echo_round_trip(&mut ws).await;
    });
    async_std::task::block_on(async {
        let client = pki.client().build().unwrap();
        let (mut ws, _) = tls::async_std::connect_with(request(&url), config(), client)
            .await
            .unwrap();
        echo_round_trip(&mut ws).await;
    });
    drop(peer);
    let _ = std::fs::remove_dir_all(&dir);
}

//! wss:// between our client and our server on 127.0.0.1, with a test CA
//! and certificates generated at test time (rcgen).

use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use ws_tokio::tls::{self, rustls, ClientTls, RootCertStore, ServerTls};
use ws_tokio::{Config, Error, HandshakeError, Message};

/// A test CA and certificates it issued.
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

    fn issue(&self, names: &[&str], client: bool) -> Issued {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
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

fn server_tls(id: Issued) -> ServerTls {
    ServerTls::new(vec![id.cert], id.key)
}

/// What the server saw on one connection.
#[derive(Debug)]
struct Seen {
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    client_cert: bool,
}

/// An echo server for `n` connections; each accept's outcome goes to the
/// returned channel.
async fn serve(
    config: Arc<rustls::ServerConfig>,
    n: usize,
) -> (u16, mpsc::UnboundedReceiver<Result<Seen, Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls::TlsAcceptor::from(config);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for _ in 0..n {
            let (tcp, _) = listener.accept().await.unwrap();
            let cfg = Config::default().handshake_timeout(Some(Duration::from_secs(5)));
            match tls::accept_with(tcp, &acceptor, cfg, |_| Ok(ws_tokio::Accept::new())).await {
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
                Ok(mut ws) => {
                    let (_, session) = ws.get_ref().get_ref();
                    let seen = Seen {
                        sni: session.server_name().map(str::to_string),
                        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
                        client_cert: session.peer_certificates().is_some(),
                    };
                    let _ = tx.send(Ok(seen));
                    tokio::spawn(async move {
                        while let Some(Ok(m)) = ws.recv().await {
                            if m.is_data() && ws.send(m).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        }
    });
    (port, rx)
}

fn request(url: &str) -> ws_tokio::http::Request<()> {
    ws_tokio::http::Request::get(url).body(()).unwrap()
}

fn config() -> Config {
    Config::default().handshake_timeout(Some(Duration::from_secs(5)))
}

async fn echo_round_trip<S>(ws: &mut ws_tokio::WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text("hello over tls")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("hello over tls")
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::binary(big));
    ws.close(ws_tokio::CloseCode::NORMAL, "bye").await.unwrap();
    while let Some(m) = ws.recv().await {
        match m {
            Ok(Message::Close(_)) => {}
            other => panic!("after close: {other:?}"),
        }
    }
    let info = ws.close_info().expect("closed").clone();
    assert!(info.into_result(None).is_ok(), "clean close");
}

fn tls_cause(e: &Error) -> rustls::Error {
    tls::tls_error(e)
        .unwrap_or_else(|| panic!("expected a TLS error, got {e:?}"))
        .clone()
}

#[tokio::test]
async fn echo_text_and_binary_by_host_name() {
    let pki = Pki::new();
    let cfg = server_tls(pki.issue(&["localhost"], false))
        .build()
        .unwrap();
    let (port, mut seen) = serve(cfg, 1).await;
    let client = pki.client().build().unwrap();
    let (mut ws, resp) = tls::connect_with(
        request(&format!("wss://localhost:{port}/chat")),
        config(),
        client,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 101);
    let seen = seen.recv().await.unwrap().unwrap();
    assert_eq!(
        seen.sni.as_deref(),
        Some("localhost"),
        "SNI from the URL host"
    );
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(!seen.client_cert);
    let (_, client_session) = ws.get_ref().get_ref();
    assert_eq!(client_session.alpn_protocol(), Some(&b"http/1.1"[..]));
    echo_round_trip(&mut ws).await;
}

#[tokio::test]
async fn ip_literal_checked_against_ip_san_and_no_sni() {
    let pki = Pki::new();
    let cfg = server_tls(pki.issue(&["localhost", "127.0.0.1"], false))
        .build()
        .unwrap();
    let (port, mut seen) = serve(cfg, 1).await;
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://127.0.0.1:{port}/")),
        config(),
        pki.client().build().unwrap(),
    )
    .await
    .unwrap();
    // RFC 6066 §3: an IP address is not sent as SNI.
    assert_eq!(seen.recv().await.unwrap().unwrap().sni, None);
    echo_round_trip(&mut ws).await;
}

#[tokio::test]
async fn ipv6_literal() {
    let pki = Pki::new();
    let id = pki.issue(&["::1"], false);
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("SKIPPED: no IPv6 loopback here");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls::TlsAcceptor::from(server_tls(id).build().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tls::accept(tcp, &acceptor).await.unwrap();
        assert_eq!(ws.get_ref().get_ref().1.server_name(), None);
        while let Some(Ok(m)) = ws.recv().await {
            if m.is_data() {
                ws.send(m).await.unwrap();
            }
        }
    });
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://[::1]:{port}/")),
        config(),
        pki.client().build().unwrap(),
    )
    .await
    .unwrap();
    echo_round_trip(&mut ws).await;
    server.await.unwrap();
}

#[tokio::test]
async fn untrusted_ca_is_a_clear_tls_error() {
    let pki = Pki::new();
    let cfg = server_tls(pki.issue(&["localhost"], false))
        .build()
        .unwrap();
    let (port, mut seen) = serve(cfg, 1).await;
    // Only the webpki roots: the test CA is not among them.
    let err = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        ClientTls::new().build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        tls_cause(&err),
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        "{err}"
    );
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    // The server's accept fails too, with the client's alert.
    let server_err = seen.recv().await.unwrap().unwrap_err();
    assert!(tls::tls_error(&server_err).is_some(), "{server_err:?}");
}

#[tokio::test]
async fn host_name_must_match_the_certificate() {
    let pki = Pki::new();
    // Issued for a name that is not the one we connect to.
    let cfg = server_tls(pki.issue(&["example.test"], false))
        .build()
        .unwrap();
    let (port, _seen) = serve(cfg, 2).await;
    let client = pki.client().build().unwrap();
    for url in [
        format!("wss://localhost:{port}/"),
        format!("wss://127.0.0.1:{port}/"),
    ] {
        let err = tls::connect_with(request(&url), config(), client.clone())
            .await
            .unwrap_err();
        match tls_cause(&err) {
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            ) => {}
            other => panic!("{url}: expected a name mismatch, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn mutual_tls_required_client_certificate() {
    let pki = Pki::new();
    let cfg = server_tls(pki.issue(&["localhost"], false))
        .require_client_certs(pki.roots())
        .build()
        .unwrap();
    let (port, mut seen) = serve(cfg, 3).await;
    let url = format!("wss://localhost:{port}/");

    // No client certificate: refused by the server.
    let err = tls::connect_with(request(&url), config(), pki.client().build().unwrap())
        .await
        .unwrap_err();
    assert!(tls::tls_error(&err).is_some(), "{err:?}");
    let server_err = seen.recv().await.unwrap().unwrap_err();
    assert!(tls::tls_error(&server_err).is_some(), "{server_err:?}");

    // A certificate from another CA: refused.
    let other = Pki::new().issue(&["client"], true);
    let err = tls::connect_with(
        request(&url),
        config(),
        pki.client()
            .client_auth(vec![other.cert], other.key)
            .build()
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(tls::tls_error(&err).is_some(), "{err:?}");
    let server_err = seen.recv().await.unwrap().unwrap_err();
    // (Both test CAs have the same name, so webpki finds the issuer and
    // then a bad signature.)
    assert!(
        matches!(tls_cause(&server_err), rustls::Error::InvalidCertificate(_)),
        "{server_err:?}"
    );

    // A certificate from the trusted CA: accepted, and the server sees it.
    let id = pki.issue(&["client"], true);
    let client = pki
        .client()
        .client_auth(vec![id.cert], id.key)
        .build()
        .unwrap();
    let (mut ws, _) = tls::connect_with(request(&url), config(), client)
        .await
        .unwrap();
    assert!(seen.recv().await.unwrap().unwrap().client_cert);
    echo_round_trip(&mut ws).await;
}

#[tokio::test]
async fn optional_client_certificate() {
    let pki = Pki::new();
    let cfg = server_tls(pki.issue(&["localhost"], false))
        .allow_client_certs(pki.roots())
        .build()
        .unwrap();
    let (port, mut seen) = serve(cfg, 1).await;
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        pki.client().build().unwrap(),
    )
    .await
    .unwrap();
    assert!(!seen.recv().await.unwrap().unwrap().client_cert);
    echo_round_trip(&mut ws).await;
}

#[tokio::test]
async fn pem_files_and_acceptor_helper() {
    let pki = Pki::new();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &pki.ca_cert, &pki.ca_key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ws-tokio-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path, ca_path) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::write(&ca_path, pki.ca_cert.pem()).unwrap();

    let acceptor = tls::acceptor_from_pem(&cert_path, &key_path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tls::accept(tcp, &acceptor).await.unwrap();
        while let Some(Ok(m)) = ws.recv().await {
            ws.send(m).await.unwrap();
        }
    });
    let client = ClientTls::new()
        .add_roots_from_pem_file(&ca_path)
        .unwrap()
        .build()
        .unwrap();
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://localhost:{port}")),
        config(),
        client,
    )
    .await
    .unwrap();
    echo_round_trip(&mut ws).await;
    server.await.unwrap();

    // A key file with no key in it is a clear error, not a panic.
    let Err(e) = tls::acceptor_from_pem(&cert_path, &cert_path) else {
        panic!("a certificate is no private key");
    };
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("private key"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn silent_client_hits_the_tls_handshake_timeout() {
    let pki = Pki::new();
    let acceptor = tls::TlsAcceptor::from(
        server_tls(pki.issue(&["localhost"], false))
            .build()
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let cfg = Config::default().handshake_timeout(Some(Duration::from_millis(200)));
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        tls::accept_with(tcp, &acceptor, cfg, |_| Ok(ws_tokio::Accept::new())),
    )
    .await
    .expect("the handshake timeout fires");
    assert_eq!(r.unwrap_err(), Error::Handshake(HandshakeError::Timeout));
}

#[tokio::test]
async fn wss_functions_refuse_other_schemes() {
    let err = tls::connect("ws://127.0.0.1:1/").await.unwrap_err();
    assert_eq!(
        err,
        Error::Usage(ws_tokio::UsageError::InvalidRequest),
        "tls::connect speaks TLS only"
    );
}

#[tokio::test]
async fn custom_client_config_is_used_as_given() {
    let pki = Pki::new();
    let cfg = server_tls(pki.issue(&["localhost"], false))
        .build()
        .unwrap();
    let (port, _seen) = serve(cfg, 1).await;
    // A config built by hand (no ALPN, our roots), passed through ClientTls.
    let mut own = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    own.alpn_protocols.clear();
    let client = ClientTls::from_config(Arc::new(own)).build().unwrap();
    assert!(client.alpn_protocols.is_empty());
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        client,
    )
    .await
    .unwrap();
    assert_eq!(ws.get_ref().get_ref().1.alpn_protocol(), None);
    echo_round_trip(&mut ws).await;
}

#[tokio::test]
async fn plain_client_to_tls_server_and_tls_client_to_plain_server_fail_cleanly() {
    let pki = Pki::new();
    let cfg = server_tls(pki.issue(&["localhost"], false))
        .build()
        .unwrap();
    let (port, mut seen) = serve(cfg, 1).await;
    // ws:// to a TLS port: the server reads an HTTP request where a TLS
    // record should be and fails the TLS handshake; the client sees the
    // connection end (or TLS bytes) during its handshake.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        ws_tokio::connect(&format!("ws://localhost:{port}/")),
    )
    .await
    .expect("no hang");
    assert!(r.is_err(), "plain WebSocket over a TLS port");
    let server_err = seen.recv().await.unwrap().unwrap_err();
    assert!(tls::tls_error(&server_err).is_some(), "{server_err:?}");

    // wss:// to a plain server: its 400 answer to the ClientHello is no
    // TLS record.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        ws_tokio::accept(tcp).await.map(|_| ())
    });
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        tls::connect_with(
            request(&format!("wss://localhost:{port}/")),
            config(),
            pki.client().build().unwrap(),
        ),
    )
    .await
    .expect("no hang")
    .unwrap_err();
    assert!(tls::tls_error(&err).is_some(), "{err:?}");
    assert!(server.await.unwrap().is_err());
}

/// An HTTPS server that also upgrades (the `wss_server` example's shape):
/// the server module's `read_request` and `Upgrader` over a TLS stream.
#[tokio::test]
async fn https_page_and_wss_upgrade_on_one_port() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use ws_tokio::server::{is_upgrade_request, read_request, ServerPolicy, Upgrader};
    let pki = Pki::new();
    let acceptor = tls::TlsAcceptor::from(
        server_tls(pki.issue(&["localhost"], false))
            .build()
            .unwrap(),
    );
    let upgrader = Upgrader::new(ServerPolicy::new().path("/ws"));
    let clients = upgrader.clients();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (info_tx, mut info_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for _ in 0..2 {
            let (tcp, peer) = listener.accept().await.unwrap();
            let mut stream = acceptor.accept(tcp).await.unwrap();
            let (req, head) = read_request(&mut stream, &Config::default()).await.unwrap();
            if !is_upgrade_request(&req) {
                stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                    )
                    .await
                    .unwrap();
                stream.shutdown().await.unwrap();
                continue;
            }
            let (mut ws, info) = upgrader
                .handle_upgrade(stream, &head, Some(peer))
                .await
                .unwrap();
            info_tx.send(info).unwrap();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.recv().await {
                    if m.is_data() {
                        ws.send(m).await.unwrap();
                    }
                }
            });
        }
    });

    // HTTPS: a plain GET over TLS gets the page.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut https = tls::TlsConnector::from(pki.client().build().unwrap())
        .connect(tls::server_name("localhost").unwrap(), tcp)
        .await
        .unwrap();
    https
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    https.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.ends_with("hello"), "{page}");

    // wss on the same port, tracked with its request and address.
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://localhost:{port}/ws?room=1")),
        config(),
        pki.client().build().unwrap(),
    )
    .await
    .unwrap();
    let info = info_rx.recv().await.unwrap();
    assert_eq!(info.path(), "/ws");
    assert_eq!(info.query(), Some("room=1"));
    assert!(info.peer_addr().unwrap().ip().is_loopback());
    assert_eq!(clients.len(), 1);
    echo_round_trip(&mut ws).await;
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
    let dir = std::env::temp_dir().join(format!("ws-tokio-tls-{tag}-{}", std::process::id()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_against_our_wss_server() {
    let pki = Pki::new();
    let Some(dir) = python_peer(&pki, "pyclient") else {
        return;
    };
    let acceptor = tls::acceptor_from_pem(dir.join("cert.pem"), dir.join("key.pem")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tls::accept_with(tcp, &acceptor, config(), |_| Ok(ws_tokio::Accept::new()))
            .await
            .unwrap();
        let mut echoed = 0;
        while let Some(m) = ws.recv().await {
            let m = m.unwrap();
            if m.is_data() {
                ws.send(m).await.unwrap();
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
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the Python client finishes")
        .unwrap();
    assert!(out.status.success(), "python client failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let echoed = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_wss_client_against_python_websockets_server() {
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
    let port = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line.trim()
            .parse::<u16>()
            .expect("the Python server prints its port")
    });
    let port = tokio::time::timeout(Duration::from_secs(30), port)
        .await
        .expect("the Python server starts")
        .unwrap();
    let client = pki.client().build().unwrap();
    let (mut ws, _) = tls::connect_with(
        request(&format!("wss://localhost:{port}/")),
        config(),
        client,
    )
    .await
    .unwrap();
    echo_round_trip(&mut ws).await;
    // And one that does not trust the CA fails cleanly against it too.
    let err = tls::connect(&format!("wss://localhost:{port}/"))
        .await
        .unwrap_err();
    assert!(tls::tls_error(&err).is_some(), "{err:?}");
    drop(peer);
    let _ = std::fs::remove_dir_all(&dir);
}

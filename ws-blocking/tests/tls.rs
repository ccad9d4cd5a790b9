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

//! Client features against our own server, loopback proxies, a scripted
//! HTTP server, and third-party peers (Python websockets, Node ws).

#[path = "../../ws-tokio/tests/client_support/mod.rs"]
mod client_support;

use client_support::{http_proxy, node_ws, python_websockets, scripted, socks5_proxy, Reply};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use ws_blocking::client::{
    connect_with_options, Backoff, ClientOptions, ClientStream, Connector, Proxy, ProxySetting,
};
use ws_blocking::http::{header, HeaderValue};
use ws_blocking::{
    Accept, CloseCode, Config, DeflateConfig, Error, HandshakeError, Message, WebSocket,
};

/// Serves one WebSocket on our own adapter: sends `path <request path>`,
/// then echoes; deflate accepted, subprotocol `chat` chosen when offered.
fn serve<S>(io: S)
where
    S: std::io::Read + std::io::Write + ws_blocking::Transport,
{
    let path = Arc::new(Mutex::new(String::new()));
    let p2 = path.clone();
    let config = Config::default().deflate(Some(DeflateConfig::default()));
    let Ok(mut ws) = ws_blocking::accept_with(io, config, move |req| {
        *p2.lock().unwrap() = req.uri().to_string();
        let mut a = Accept::new();
        if let Some(p) = req.headers().get("sec-websocket-protocol") {
            if p.to_str().unwrap().split(',').any(|p| p.trim() == "chat") {
                a = a.protocol("chat");
            }
        }
        Ok(a)
    }) else {
        return;
    };
    let p = path.lock().unwrap().clone();
    if ws.send(Message::text(format!("path {p}"))).is_err() {
        return;
    }
    while let Some(Ok(m)) = ws.recv() {
        if ws.send(m).is_err() {
            return;
        }
    }
}

fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            thread::spawn(move || serve(tcp));
        }
    });
    addr
}

fn exchange(ws: &mut WebSocket<ClientStream>) -> String {
    let greeting = match ws.recv().unwrap().unwrap() {
        Message::Text(t) => t.to_string(),
        m => panic!("expected the greeting, got {m:?}"),
    };
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.recv().unwrap().unwrap(), Message::text("hello"));
    let big = vec![7u8; 100_000];
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.recv().unwrap().unwrap(), Message::binary(big));
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.recv().is_some() {}
    greeting
}

#[test]
fn connect_offers_deflate_by_default() {
    let addr = echo_server();
    let (ws, resp) = ws_blocking::connect(&format!("ws://{addr}/")).unwrap();
    assert!(ws.connection().deflate().is_some());
    assert!(resp.headers().contains_key("sec-websocket-extensions"));
    let (mut ws, _) =
        connect_with_options(&format!("ws://{addr}/a?b=c"), ClientOptions::new()).unwrap();
    assert!(ws.connection().deflate().is_some());
    assert_eq!(exchange(&mut ws), "path /a?b=c");
    let (ws, _) =
        connect_with_options(&format!("ws://{addr}/"), ClientOptions::new().deflate(None)).unwrap();
    assert!(ws.connection().deflate().is_none());
}

#[test]
fn options_reach_the_server() {
    let (addr, seen) = scripted(|_| Reply::Upgrade);
    let opts = ClientOptions::new()
        .origin("https://app.example")
        .protocols(["chat", "v2"])
        .header(header::COOKIE, HeaderValue::from_static("sid=1"));
    connect_with_options(&format!("ws://u:pw@{addr}/o?x"), opts).unwrap();
    let s = seen.lock().unwrap()[0].clone();
    assert_eq!(s.path, "/o?x");
    assert_eq!(s.header("origin"), Some("https://app.example"));
    assert_eq!(s.header("sec-websocket-version"), Some("13"));
    assert_eq!(s.header("sec-websocket-protocol"), Some("chat, v2"));
    assert_eq!(s.header("cookie"), Some("sid=1"));
    assert_eq!(s.header("authorization"), Some("Basic dTpwdw=="));
}

#[test]
fn through_http_connect_proxy_with_auth() {
    let server = echo_server();
    let (proxy, log) = http_proxy(Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
    let p = Proxy::http("127.0.0.1", proxy.port()).with_credentials("aladdin", "opensesame");
    let url = format!("ws://localhost:{}/via-http", server.port());
    let (mut ws, _) =
        connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p))).unwrap();
    assert_eq!(exchange(&mut ws), "path /via-http");
    assert_eq!(log.tunnels.load(Ordering::SeqCst), 1);
    let p = Proxy::http("127.0.0.1", proxy.port());
    let e = connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p)))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Handshake(HandshakeError::Proxy(s)) if s.contains("407")),
        "{e:?}"
    );
}

#[test]
fn through_socks5_proxy() {
    let server = echo_server();
    let (proxy, log) = socks5_proxy(None);
    let p = Proxy::socks5("127.0.0.1", proxy.port());
    let url = format!("ws://localhost:{}/via-socks", server.port());
    let (mut ws, _) =
        connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p))).unwrap();
    assert_eq!(exchange(&mut ws), "path /via-socks");
    assert_eq!(
        log.targets.lock().unwrap()[0],
        format!("domain:localhost:{}", server.port())
    );
    let (proxy, log) = socks5_proxy(Some(("user", "pass")));
    let p = Proxy::socks5("127.0.0.1", proxy.port()).with_credentials("user", "pass");
    let (mut ws, _) =
        connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p))).unwrap();
    assert_eq!(exchange(&mut ws), "path /via-socks");
    assert_eq!(log.tunnels.load(Ordering::SeqCst), 1);
    let p = Proxy::socks5("127.0.0.1", proxy.port()).with_credentials("user", "bad");
    let e = connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p)))
        .unwrap_err();
    assert!(
        matches!(e, Error::Handshake(HandshakeError::Proxy(_))),
        "{e:?}"
    );
}

#[test]
fn redirects() {
    let (b, seen_b) = scripted(|_| Reply::Upgrade);
    let (a, seen_a) = scripted(move |path| match path {
        "/cross" => Reply::Redirect(format!("ws://{b}/landed")),
        "/same" => Reply::Redirect("/ws".into()),
        "/loop" => Reply::Redirect("loop".into()),
        _ => Reply::Upgrade,
    });
    let secret = ClientOptions::new()
        .follow_redirects(true)
        .header(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        )
        .header(header::COOKIE, HeaderValue::from_static("k=v"));
    connect_with_options(&format!("ws://{a}/same"), secret.clone()).unwrap();
    let s = seen_a.lock().unwrap().clone();
    assert_eq!(s[1].path, "/ws");
    assert_eq!(s[1].header("authorization"), Some("Bearer s3cret"));
    assert_eq!(s[1].header("cookie"), Some("k=v"));
    connect_with_options(&format!("ws://{a}/cross"), secret.clone()).unwrap();
    let s = seen_b.lock().unwrap().clone();
    assert_eq!(s[0].path, "/landed");
    assert_eq!(s[0].header("authorization"), None);
    assert_eq!(s[0].header("cookie"), None);
    seen_a.lock().unwrap().clear();
    let e = connect_with_options(&format!("ws://{a}/loop"), secret.max_redirects(2)).unwrap_err();
    assert_eq!(e, Error::Handshake(HandshakeError::TooManyRedirects(2)));
    assert_eq!(seen_a.lock().unwrap().len(), 3);
    let e = connect_with_options(&format!("ws://{a}/same"), ClientOptions::new()).unwrap_err();
    assert!(matches!(
        e,
        Error::Handshake(HandshakeError::UnexpectedStatus { status: 302, .. })
    ));
}

#[test]
fn unexpected_response_with_body() {
    let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let b2 = body.clone();
    let (addr, _) = scripted(move |_| Reply::Status(403, b2.clone()));
    match connect_with_options(&format!("ws://{addr}/"), ClientOptions::new()).unwrap_err() {
        Error::Handshake(HandshakeError::UnexpectedStatus {
            status, body: got, ..
        }) => {
            assert_eq!(status, 403);
            assert_eq!(got, body);
        }
        e => panic!("{e:?}"),
    }
    let opts = ClientOptions::new().max_response_body(10);
    match connect_with_options(&format!("ws://{addr}/"), opts).unwrap_err() {
        Error::Handshake(HandshakeError::UnexpectedStatus { body: got, .. }) => {
            assert_eq!(got, &body[..10]);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn handshake_timeout() {
    let (addr, _) = scripted(|_| Reply::Silence);
    let start = Instant::now();
    let opts = ClientOptions::new().handshake_timeout(Some(Duration::from_millis(300)));
    let e = connect_with_options(&format!("ws://{addr}/"), opts).unwrap_err();
    assert_eq!(e, Error::Handshake(HandshakeError::Timeout));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[cfg(unix)]
#[test]
fn unix_socket() {
    let dir = std::env::temp_dir().join(format!("ws-blocking-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        serve(s);
    });
    let url = format!("ws+unix:{}:/unix?q=1", path.display());
    let (mut ws, _) = connect_with_options(&url, ClientOptions::new()).unwrap();
    assert!(matches!(ws.get_ref(), ClientStream::Unix(_)));
    assert_eq!(exchange(&mut ws), "path /unix?q=1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reconnect_with_backoff() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (down_tx, down_rx) = std::sync::mpsc::channel::<()>();
    thread::spawn(move || {
        let (tcp, _) = l.accept().unwrap();
        serve(tcp);
        drop(l);
        let _ = down_tx.send(());
        thread::sleep(Duration::from_millis(400));
        let l = TcpListener::bind(addr).unwrap();
        let (tcp, _) = l.accept().unwrap();
        serve(tcp);
    });
    let backoff = Backoff::new()
        .initial(Duration::from_millis(50))
        .max(Duration::from_millis(200));
    let mut rc = Connector::new(ClientOptions::new())
        .reconnect(format!("ws://{addr}/again"))
        .backoff(backoff);
    let (mut ws, _) = rc.next().unwrap().unwrap();
    assert_eq!(exchange(&mut ws), "path /again");
    down_rx.recv().unwrap();
    let start = Instant::now();
    let (mut ws, _) = rc.next().unwrap().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(exchange(&mut ws), "path /again");
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut rc = Connector::new(ClientOptions::new())
        .reconnect(format!("ws://{closed}/"))
        .backoff(Backoff::new().initial(Duration::from_millis(10)))
        .max_failures(3);
    assert!(matches!(rc.next(), Some(Err(Error::Io(_)))));
    assert!(rc.next().is_none());
}

#[test]
fn python_websockets_peer() {
    let Some(peer) = python_websockets(None) else {
        return;
    };
    let url = format!("ws://127.0.0.1:{}/py", peer.port);
    let (mut ws, resp) = connect_with_options(&url, ClientOptions::new().protocol("chat")).unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
    assert!(ws.connection().deflate().is_some());
    assert_eq!(exchange(&mut ws), "path /py");
    let (sp, _) = socks5_proxy(None);
    let opts = ClientOptions::new()
        .protocol("chat")
        .proxy(ProxySetting::Explicit(Proxy::socks5(
            "127.0.0.1",
            sp.port(),
        )));
    let (mut ws, _) = connect_with_options(&url, opts).unwrap();
    assert_eq!(exchange(&mut ws), "path /py");
}

#[test]
fn node_ws_peer() {
    let Some(peer) = node_ws() else { return };
    let url = format!("ws://127.0.0.1:{}/node", peer.port);
    let (mut ws, _) = connect_with_options(&url, ClientOptions::new().protocol("chat")).unwrap();
    assert!(ws.connection().deflate().is_some());
    assert_eq!(exchange(&mut ws), "path /node");
    let (hp, _) = http_proxy(None);
    let opts = ClientOptions::new()
        .protocol("chat")
        .proxy(ProxySetting::Explicit(Proxy::http("127.0.0.1", hp.port())));
    let (mut ws, _) = connect_with_options(&url, opts).unwrap();
    assert_eq!(exchange(&mut ws), "path /node");
}

/// wss:// through the TLS hook: directly and through both proxies.
#[test]
fn wss_directly_and_through_proxies() {
    use ws_blocking::tls::{rustls, ClientTls, ServerConnection, ServerTls, TlsStream};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let server = ServerTls::new(vec![cert.clone()], key).build().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let server = server.clone();
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                serve(TlsStream::new(ServerConnection::new(server).unwrap(), tcp));
            });
        }
    });
    let trust = ClientTls::new()
        .without_webpki_roots()
        .add_root(cert)
        .build()
        .unwrap();
    let url = format!("wss://localhost:{port}/secure");
    let (hp, hlog) = http_proxy(None);
    let (sp, slog) = socks5_proxy(None);
    for proxy in [
        ProxySetting::None,
        ProxySetting::Explicit(Proxy::http("127.0.0.1", hp.port())),
        ProxySetting::Explicit(Proxy::socks5("127.0.0.1", sp.port())),
    ] {
        let connector = Connector::new(ClientOptions::new().proxy(proxy)).tls_config(trust.clone());
        let (mut ws, _) = connector.connect(&url).unwrap();
        assert!(matches!(ws.get_ref(), ClientStream::Tls(_)));
        assert_eq!(exchange(&mut ws), "path /secure");
    }
    assert_eq!(hlog.tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(slog.tunnels.load(Ordering::SeqCst), 1);
    let e = connect_with_options(&url, ClientOptions::new()).unwrap_err();
    assert!(ws_blocking::tls::tls_error(&e).is_some(), "{e:?}");
}

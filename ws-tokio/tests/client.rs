//! Client features against our own server, loopback proxies, a scripted
//! HTTP server, and third-party peers (Python websockets, Node ws).

mod client_support;

use client_support::{http_proxy, node_ws, python_websockets, scripted, socks5_proxy, Reply};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use ws_tokio::client::{
    connect_with_options, Backoff, ClientOptions, ClientStream, Connector, Proxy, ProxySetting,
};
use ws_tokio::http::{header, HeaderValue};
use ws_tokio::{Accept, Config, DeflateConfig, Error, HandshakeError, Message, WebSocket};

const T: Duration = Duration::from_secs(20);

/// An echo server on our own adapter that first sends `path <request path>`;
/// deflate accepted.
async fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(serve(tcp));
        }
    });
    addr
}

async fn serve<S>(io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let path = Arc::new(Mutex::new(String::new()));
    let p2 = path.clone();
    let config = Config::default().deflate(Some(DeflateConfig::default()));
    let Ok(mut ws) = ws_tokio::accept_with(io, config, move |req| {
        *p2.lock().unwrap() = req.uri().to_string();
        let mut a = Accept::new();
        if let Some(p) = req.headers().get("sec-websocket-protocol") {
            if p.to_str().unwrap().split(',').any(|p| p.trim() == "chat") {
                a = a.protocol("chat");
            }
        }
        Ok(a)
    })
    .await
    else {
        return;
    };
    let p = path.lock().unwrap().clone();
    if ws.send(Message::text(format!("path {p}"))).await.is_err() {
        return;
    }
    while let Some(Ok(m)) = ws.recv().await {
        if ws.send(m).await.is_err() {
            return;
        }
    }
}

/// Text and binary round trips; returns the greeting.
async fn exchange(ws: &mut WebSocket<ClientStream>) -> String {
    let greeting = match ws.recv().await.unwrap().unwrap() {
        Message::Text(t) => t.to_string(),
        m => panic!("expected the greeting, got {m:?}"),
    };
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("hello"));
    let big = vec![7u8; 100_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::binary(big));
    ws.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    while ws.recv().await.is_some() {}
    greeting
}

async fn timed<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(T, f).await.expect("test timed out")
}

#[tokio::test]
async fn connect_offers_deflate_by_default() {
    timed(async {
        let addr = echo_server().await;
        let (ws, resp) = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
        assert!(ws.connection().deflate().is_some());
        assert!(resp.headers().contains_key("sec-websocket-extensions"));
        let (mut ws, _) = connect_with_options(&format!("ws://{addr}/a?b=c"), ClientOptions::new())
            .await
            .unwrap();
        assert!(ws.connection().deflate().is_some());
        assert_eq!(exchange(&mut ws).await, "path /a?b=c");
        let (ws, resp) =
            connect_with_options(&format!("ws://{addr}/"), ClientOptions::new().deflate(None))
                .await
                .unwrap();
        assert!(ws.connection().deflate().is_none());
        assert!(!resp.headers().contains_key("sec-websocket-extensions"));
    })
    .await
}

#[tokio::test]
async fn options_reach_the_server() {
    timed(async {
        let (addr, seen) = scripted(|_| Reply::Upgrade);
        let opts = ClientOptions::new()
            .origin("https://app.example")
            .protocols(["chat", "v2"])
            .header(header::COOKIE, HeaderValue::from_static("sid=1"))
            .protocol_version(8);
        let r = connect_with_options(&format!("ws://u:pw@{addr}/o?x"), opts).await;
        // The scripted server does not answer a subprotocol: refused by the
        // client (RFC 6455 §4.1 allows none), so the connection succeeds.
        r.unwrap();
        let s = seen.lock().unwrap()[0].clone();
        assert_eq!(s.path, "/o?x");
        assert_eq!(
            s.header("sec-websocket-origin"),
            Some("https://app.example")
        );
        assert_eq!(s.header("sec-websocket-version"), Some("8"));
        assert_eq!(s.header("sec-websocket-protocol"), Some("chat, v2"));
        assert_eq!(s.header("cookie"), Some("sid=1"));
        assert_eq!(s.header("authorization"), Some("Basic dTpwdw=="));
        assert_eq!(s.header("host"), Some(addr.to_string().as_str()));
    })
    .await
}

#[tokio::test]
async fn ipv6_literal() {
    let Ok(l) = TcpListener::bind("[::1]:0").await else {
        eprintln!("NOTICE: skipping: no IPv6 loopback");
        return;
    };
    timed(async {
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            serve(tcp).await;
        });
        let url = format!("ws://[::1]:{}/six", addr.port());
        let (mut ws, _) = connect_with_options(&url, ClientOptions::new())
            .await
            .unwrap();
        assert_eq!(exchange(&mut ws).await, "path /six");
    })
    .await
}

#[tokio::test]
async fn through_http_connect_proxy_with_auth() {
    timed(async {
        let server = echo_server().await;
        // "aladdin:opensesame"
        let (proxy, log) = http_proxy(Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
        let p = Proxy::http("127.0.0.1", proxy.port()).with_credentials("aladdin", "opensesame");
        let opts = ClientOptions::new().proxy(ProxySetting::Explicit(p));
        let url = format!("ws://localhost:{}/via-http", server.port());
        let (mut ws, _) = connect_with_options(&url, opts).await.unwrap();
        assert_eq!(exchange(&mut ws).await, "path /via-http");
        assert_eq!(log.tunnels.load(Ordering::SeqCst), 1);
        assert_eq!(
            log.targets.lock().unwrap()[0],
            format!("localhost:{}", server.port())
        );
        // Wrong password: 407 as a proxy error.
        let p = Proxy::parse(&format!("http://aladdin:nope@127.0.0.1:{}", proxy.port())).unwrap();
        let e = connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p)))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Handshake(HandshakeError::Proxy(s)) if s.contains("407")),
            "{e:?}"
        );
        assert_eq!(log.refused.load(Ordering::SeqCst), 1);
    })
    .await
}

#[tokio::test]
async fn through_socks5_proxy() {
    timed(async {
        let server = echo_server().await;
        // No auth, domain-name addressing.
        let (proxy, log) = socks5_proxy(None);
        let p = Proxy::parse(&format!("socks5://127.0.0.1:{}", proxy.port())).unwrap();
        let url = format!("ws://localhost:{}/via-socks", server.port());
        let (mut ws, _) =
            connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p)))
                .await
                .unwrap();
        assert_eq!(exchange(&mut ws).await, "path /via-socks");
        assert_eq!(
            log.targets.lock().unwrap()[0],
            format!("domain:localhost:{}", server.port())
        );
        // Username/password; an IP literal goes as an address.
        let (proxy, log) = socks5_proxy(Some(("user", "pass")));
        let p = Proxy::socks5("127.0.0.1", proxy.port()).with_credentials("user", "pass");
        let url = format!("ws://127.0.0.1:{}/auth", server.port());
        let opts = ClientOptions::new().proxy(ProxySetting::Explicit(p));
        let (mut ws, _) = connect_with_options(&url, opts).await.unwrap();
        assert_eq!(exchange(&mut ws).await, "path /auth");
        assert_eq!(
            log.targets.lock().unwrap()[0],
            format!("ip:127.0.0.1:{}", server.port())
        );
        let p = Proxy::socks5("127.0.0.1", proxy.port()).with_credentials("user", "wrong");
        let e = connect_with_options(&url, ClientOptions::new().proxy(ProxySetting::Explicit(p)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Handshake(HandshakeError::Proxy(_))),
            "{e:?}"
        );
        // A SOCKS proxy that cannot reach the target.
        let p = Proxy::socks5("127.0.0.1", proxy.port()).with_credentials("user", "pass");
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = connect_with_options(
            &format!("ws://{closed}/"),
            ClientOptions::new().proxy(ProxySetting::Explicit(p)),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            Error::Handshake(HandshakeError::Proxy("connection refused".into()))
        );
    })
    .await
}

#[tokio::test]
async fn redirects() {
    timed(async {
        // B upgrades anything; A redirects /cross to B, /same to A's /ws,
        // /loop to itself, and upgrades /ws.
        let (b, seen_b) = scripted(|_| Reply::Upgrade);
        let (a, seen_a) = scripted(move |path| match path {
            "/cross" => Reply::Redirect(format!("ws://{b}/landed")),
            "/same" => Reply::Redirect("/ws".into()),
            "/loop" => Reply::Redirect("loop".into()),
            _ => Reply::Upgrade,
        });
        let secret = ClientOptions::new()
            .follow_redirects(true)
            .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"))
            .header(header::COOKIE, HeaderValue::from_static("k=v"));
        // Same origin: credentials kept.
        connect_with_options(&format!("ws://{a}/same"), secret.clone())
            .await
            .unwrap();
        let s = seen_a.lock().unwrap().clone();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].path, "/ws");
        assert_eq!(s[1].header("authorization"), Some("Bearer s3cret"));
        assert_eq!(s[1].header("cookie"), Some("k=v"));
        // Another origin (port): stripped.
        let hops = Arc::new(Mutex::new(Vec::new()));
        let h2 = hops.clone();
        let opts = secret.clone().on_redirect(move |r, _| {
            h2.lock().unwrap().push((r.status, r.to.to_string(), r.stripped_credentials));
            true
        });
        connect_with_options(&format!("ws://{a}/cross"), opts).await.unwrap();
        let s = seen_b.lock().unwrap().clone();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].path, "/landed");
        assert_eq!(s[0].header("host"), Some(b.to_string().as_str()));
        assert_eq!(s[0].header("authorization"), None);
        assert_eq!(s[0].header("cookie"), None);
        assert_eq!(
            *hops.lock().unwrap(),
            [(302, format!("ws://{b}/landed"), true)]
        );
        // max_redirects.
        seen_a.lock().unwrap().clear();
        let e = connect_with_options(&format!("ws://{a}/loop"), secret.clone().max_redirects(3))
            .await
            .unwrap_err();
        assert_eq!(e, Error::Handshake(HandshakeError::TooManyRedirects(3)));
        assert_eq!(seen_a.lock().unwrap().len(), 4);
        // Not followed by default: the 302 is the error.
        let e = connect_with_options(&format!("ws://{a}/same"), ClientOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Handshake(HandshakeError::UnexpectedStatus { status: 302, headers, .. })
                if headers.iter().any(|(k, v)| k == "location" && v == b"/ws")),
            "{e:?}"
        );
        // The hook can stop.
        let opts = secret.on_redirect(|_, _| false);
        let e = connect_with_options(&format!("ws://{a}/cross"), opts).await.unwrap_err();
        assert!(matches!(e, Error::Handshake(HandshakeError::UnexpectedStatus { status: 302, .. })));
    })
    .await
}

#[tokio::test]
async fn unexpected_response_with_body() {
    timed(async {
        let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let b2 = body.clone();
        let (addr, _) = scripted(move |_| Reply::Status(403, b2.clone()));
        let e = connect_with_options(&format!("ws://{addr}/"), ClientOptions::new())
            .await
            .unwrap_err();
        match e {
            Error::Handshake(HandshakeError::UnexpectedStatus {
                status,
                headers,
                body: got,
            }) => {
                assert_eq!(status, 403);
                assert!(headers.iter().any(|(k, _)| k == "content-type"));
                assert_eq!(got, body);
            }
            e => panic!("{e:?}"),
        }
        let e = connect_with_options(
            &format!("ws://{addr}/"),
            ClientOptions::new().max_response_body(100),
        )
        .await
        .unwrap_err();
        match e {
            Error::Handshake(HandshakeError::UnexpectedStatus { body: got, .. }) => {
                assert_eq!(got, &body[..100]);
            }
            e => panic!("{e:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn handshake_timeout() {
    timed(async {
        let (addr, _) = scripted(|_| Reply::Silence);
        let start = std::time::Instant::now();
        let opts = ClientOptions::new().handshake_timeout(Some(Duration::from_millis(300)));
        let e = connect_with_options(&format!("ws://{addr}/"), opts)
            .await
            .unwrap_err();
        assert_eq!(e, Error::Handshake(HandshakeError::Timeout));
        assert!(start.elapsed() < Duration::from_secs(5));
    })
    .await
}

#[tokio::test]
async fn bad_urls_are_usage_errors() {
    for url in ["http//x", "ws://h/#f", "ftp://h/", "ws://[::1/"] {
        let e = connect_with_options(url, ClientOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{url}: {e:?}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket() {
    timed(async {
        let dir = std::env::temp_dir().join(format!("ws-tokio-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            serve(s).await;
        });
        let url = format!("ws+unix:{}:/unix?q=1", path.display());
        let (mut ws, _) = connect_with_options(&url, ClientOptions::new())
            .await
            .unwrap();
        assert!(matches!(ws.get_ref(), ClientStream::Unix(_)));
        assert_eq!(exchange(&mut ws).await, "path /unix?q=1");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
}

#[tokio::test]
async fn reconnect_with_backoff() {
    timed(async {
        // A server that serves one connection, goes away, and comes back
        // on the same port.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (down_tx, down_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            serve(tcp).await;
            drop(l);
            let _ = down_tx.send(());
            tokio::time::sleep(Duration::from_millis(400)).await;
            let l = TcpListener::bind(addr).await.unwrap();
            let (tcp, _) = l.accept().await.unwrap();
            serve(tcp).await;
        });
        let backoff = Backoff::new()
            .initial(Duration::from_millis(50))
            .max(Duration::from_millis(200));
        let mut rc = Connector::new(ClientOptions::new())
            .reconnect(format!("ws://{addr}/again"))
            .backoff(backoff);
        let (mut ws, _) = rc.next().await.unwrap();
        assert_eq!(rc.failures(), 0);
        assert_eq!(exchange(&mut ws).await, "path /again");
        down_rx.await.unwrap();
        let start = std::time::Instant::now();
        let (mut ws, _) = rc.next().await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(exchange(&mut ws).await, "path /again");
        // Gives up after max_failures, with the last error.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut rc = Connector::new(ClientOptions::new())
            .reconnect(format!("ws://{closed}/"))
            .backoff(Backoff::new().initial(Duration::from_millis(10)))
            .max_failures(3);
        let e = rc.next().await.unwrap_err();
        assert!(matches!(e, Error::Io(_)), "{e:?}");
        // A 4xx is not retried.
        let (addr, seen) = scripted(|_| Reply::Status(404, b"no".to_vec()));
        let mut rc = Connector::new(ClientOptions::new()).reconnect(format!("ws://{addr}/"));
        let e = rc.next().await.unwrap_err();
        assert!(matches!(
            e,
            Error::Handshake(HandshakeError::UnexpectedStatus { status: 404, .. })
        ));
        assert_eq!(seen.lock().unwrap().len(), 1);
    })
    .await
}

#[tokio::test]
async fn python_websockets_peer() {
    let Some(peer) = python_websockets(None) else {
        return;
    };
    timed(async {
        let url = format!("ws://127.0.0.1:{}/py?x=1", peer.port);
        let (mut ws, resp) = connect_with_options(&url, ClientOptions::new().protocol("chat"))
            .await
            .unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
        assert!(ws.connection().deflate().is_some());
        assert_eq!(exchange(&mut ws).await, "path /py?x=1");
        // It requires a subprotocol: its 400 answer, body included.
        let e = connect_with_options(&url, ClientOptions::new())
            .await
            .unwrap_err();
        match e {
            Error::Handshake(HandshakeError::UnexpectedStatus { status, body, .. }) => {
                assert_eq!(status, 400);
                let body = String::from_utf8(body).unwrap();
                assert!(body.contains("missing subprotocol"), "{body}");
            }
            e => panic!("{e:?}"),
        }
        // Through both proxies to the real peer.
        let (hp, _) = http_proxy(None);
        let (sp, _) = socks5_proxy(None);
        for p in [
            Proxy::http("127.0.0.1", hp.port()),
            Proxy::socks5("127.0.0.1", sp.port()),
        ] {
            let opts = ClientOptions::new()
                .protocol("chat")
                .proxy(ProxySetting::Explicit(p));
            let (mut ws, _) = connect_with_options(&url, opts).await.unwrap();
            assert_eq!(exchange(&mut ws).await, "path /py?x=1");
        }
    })
    .await;
    #[cfg(unix)]
    {
        let path = std::env::temp_dir().join(format!("ws-tokio-py-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let Some(_unix_peer) = python_websockets(Some(path.to_str().unwrap())) else {
            return;
        };
        timed(async {
            let url = format!("ws+unix:{}:/over-unix", path.display());
            let opts = ClientOptions::new().protocol("chat");
            let (mut ws, _) = connect_with_options(&url, opts).await.unwrap();
            assert_eq!(exchange(&mut ws).await, "path /over-unix");
        })
        .await;
        let _ = std::fs::remove_file(&path);
    }
}

#[tokio::test]
async fn node_ws_peer() {
    let Some(peer) = node_ws() else { return };
    timed(async {
        let url = format!("ws://127.0.0.1:{}/node", peer.port);
        let (mut ws, resp) = connect_with_options(&url, ClientOptions::new().protocol("chat"))
            .await
            .unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
        assert!(ws.connection().deflate().is_some());
        assert_eq!(exchange(&mut ws).await, "path /node");
        let (ws, _) = ws_tokio::connect(&url).await.unwrap();
        assert!(ws.connection().deflate().is_some());
    })
    .await
}

/// wss:// through the TLS hook: directly, and through both proxies (TLS
/// runs inside the tunnel, with the URL's host for SNI and the
/// certificate check).
#[tokio::test]
async fn wss_directly_and_through_proxies() {
    use ws_tokio::tls::{self, rustls, ClientTls, ServerTls};
    timed(async {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ck.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
        let acceptor =
            tls::TlsAcceptor::from(ServerTls::new(vec![cert.clone()], key).build().unwrap());
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls).await;
                    }
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
            let connector =
                Connector::new(ClientOptions::new().proxy(proxy)).tls_config(trust.clone());
            let (mut ws, _) = connector.connect(&url).await.unwrap();
            assert!(matches!(ws.get_ref(), ClientStream::Tls(_)));
            assert_eq!(exchange(&mut ws).await, "path /secure");
        }
        assert_eq!(hlog.tunnels.load(Ordering::SeqCst), 1);
        assert_eq!(slog.tunnels.load(Ordering::SeqCst), 1);
        // The default roots do not trust the test certificate.
        let e = connect_with_options(&url, ClientOptions::new())
            .await
            .unwrap_err();
        assert!(tls::tls_error(&e).is_some(), "{e:?}");
    })
    .await
}

/// Dropping `connect` or `Reconnect::next` mid-way leaves nothing behind:
/// the next call starts afresh.
#[tokio::test]
async fn cancelled_connects() {
    timed(async {
        let (silent, _) = scripted(|_| Reply::Silence);
        let connector = Connector::new(ClientOptions::new());
        let r = tokio::time::timeout(
            Duration::from_millis(100),
            connector.connect(&format!("ws://{silent}/")),
        )
        .await;
        assert!(r.is_err(), "the silent server cannot complete a handshake");
        let addr = echo_server().await;
        let (mut ws, _) = connector
            .connect(&format!("ws://{addr}/after"))
            .await
            .unwrap();
        assert_eq!(exchange(&mut ws).await, "path /after");
        // Cancelled while backing off: the failure count stays, and the
        // next call connects once the server is there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let mut rc = Connector::new(ClientOptions::new())
            .reconnect(format!("ws://127.0.0.1:{port}/late"))
            .backoff(
                Backoff::new()
                    .initial(Duration::from_millis(20))
                    .jitter(0.0),
            );
        let r = tokio::time::timeout(Duration::from_millis(100), rc.next()).await;
        assert!(r.is_err());
        assert!(rc.failures() >= 1);
        let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            serve(tcp).await;
        });
        let (mut ws, _) = rc.next().await.unwrap();
        assert_eq!(rc.failures(), 0);
        assert_eq!(exchange(&mut ws).await, "path /late");
    })
    .await
}

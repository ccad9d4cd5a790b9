//! An HTTPS server that also takes WebSocket upgrades (`wss://`) on the
//! same port, like `ws`'s "external HTTPS server" example: the
//! certificate chain and private key come from PEM files; a plain GET gets
//! a short page, an upgrade request an echoing WebSocket.
//!
//! ```text
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!     -addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem
//! cargo run -p ws-tokio --features rustls --example wss_server -- --cert cert.pem --key key.pem
//! cargo run -p ws-tokio --features rustls --example wss_client -- --ca cert.pem wss://localhost:8443/
//! curl --cacert cert.pem https://localhost:8443/
//! ```
//!
//! (`CA:FALSE`: rustls refuses a CA certificate as a server's own, and
//! OpenSSL marks a self-signed certificate as a CA unless told otherwise.)

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use ws_tokio::server::{is_upgrade_request, read_request, ServerPolicy, Upgrader};
use ws_tokio::{tls, Config, Error};

const PAGE: &str =
    "<!doctype html><title>wss</title><p>Connect a WebSocket client to wss:// on this port.";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:8443".to_string();
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--cert" => cert = Some(args.next().ok_or("--cert needs a PEM file")?),
            "--key" => key = Some(args.next().ok_or("--key needs a PEM file")?),
            "-h" | "--help" => {
                println!("usage: wss_server --cert CERT.pem --key KEY.pem [--addr HOST:PORT]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err("--cert and --key are required".into());
    };
    // The HTTPS server's TLS: ALPN http/1.1, ring as the crypto provider.
    let acceptor = tls::acceptor_from_pem(&cert, &key)?;
    // The WebSocket side (`new WebSocketServer({ server })`).
    let upgrader = Upgrader::new(ServerPolicy::new());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on https:// and wss://{}", listener.local_addr()?);
    loop {
        // Waits out `accept` failures (out of file descriptors...).
        let (tcp, peer) = ws_tokio::accept_stream(&listener).await;
        let (acceptor, upgrader) = (acceptor.clone(), upgrader.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(tcp, peer, &acceptor, &upgrader).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: &tls::TlsAcceptor,
    upgrader: &Upgrader,
) -> Result<(), Error> {
    let config = Config::default();
    let mut stream = tokio::time::timeout(
        config.handshake_timeout.unwrap_or(std::time::Duration::MAX),
        acceptor.accept(tcp),
    )
    .await
    .map_err(|_| Error::Handshake(ws_tokio::HandshakeError::Timeout))??;
    let (req, head) = read_request(&mut stream, &config).await?;
    if !is_upgrade_request(&req) {
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
            PAGE.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        return Ok(());
    }
    let (mut ws, info) = upgrader.handle_upgrade(stream, &head, Some(peer)).await?;
    eprintln!("{peer}: WebSocket on {}", info.path());
    while let Some(msg) = ws.recv().await {
        let msg = msg?;
        if msg.is_data() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

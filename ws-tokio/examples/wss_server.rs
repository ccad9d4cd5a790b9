//! TLS echo server (`wss://`): the certificate chain and private key come
//! from PEM files, like `ws`'s "external HTTPS server" example.
//!
//! ```text
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!     -addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem
//! cargo run -p ws-tokio --features rustls --example wss_server -- --cert cert.pem --key key.pem
//! cargo run -p ws-tokio --features rustls --example wss_client -- --ca cert.pem wss://localhost:8443/
//! ```
//!
//! (`CA:FALSE`: rustls refuses a CA certificate as a server's own, and
//! OpenSSL marks a self-signed certificate as a CA unless told otherwise.)

use tokio::net::TcpListener;
use ws_tokio::tls;

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
    let acceptor = tls::acceptor_from_pem(&cert, &key)?;
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("wss_server listening on wss://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let mut ws = match tls::accept(tcp, &acceptor).await {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("{peer}: {e}");
                    return;
                }
            };
            while let Some(msg) = ws.recv().await {
                match msg {
                    Ok(m) if m.is_data() => {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
    }
}

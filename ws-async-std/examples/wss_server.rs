//! TLS echo server (`wss://`) on smol: the certificate chain and private
//! key come from PEM files.
//!
//! ```text
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!     -addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem
//! cargo run -p ws-async-std --features rustls --example wss_server -- --cert cert.pem --key key.pem
//! cargo run -p ws-tokio --features rustls --example wss_client -- --ca cert.pem wss://localhost:8443/
//! ```

use ws_async_std::tls;

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    smol::block_on(async move {
        let listener = async_net::TcpListener::bind(&addr).await?;
        eprintln!("wss_server listening on wss://{}", listener.local_addr()?);
        loop {
            // Waits out `accept` failures (out of file descriptors...).
            let (tcp, _) = ws_async_std::smol::accept_stream(&listener).await;
            let acceptor = acceptor.clone();
            smol::spawn(async move {
                let mut ws = match tls::smol::accept(tcp, &acceptor).await {
                    Ok(ws) => ws,
                    Err(e) => {
                        eprintln!("handshake failed: {e}");
                        return;
                    }
                };
                while let Some(Ok(msg)) = ws.recv().await {
                    if msg.is_data() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            })
            .detach();
        }
    })
}

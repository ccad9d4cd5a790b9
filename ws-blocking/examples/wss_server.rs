//! TLS echo server (`wss://`) on std::net, a thread per connection: the
//! certificate chain and private key come from PEM files.
//!
//! ```text
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!     -addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem
//! cargo run -p ws-blocking --features rustls --example wss_server -- --cert cert.pem --key key.pem
//! cargo run -p ws-tokio --features rustls --example wss_client -- --ca cert.pem wss://localhost:8443/
//! ```

use std::net::TcpListener;
use ws_blocking::tls;

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
    let config = tls::ServerTls::from_pem_files(&cert, &key)?.build()?;
    let listener = TcpListener::bind(&addr)?;
    eprintln!("wss_server listening on wss://{}", listener.local_addr()?);
    loop {
        // Not `listener.incoming()`: out of file descriptors, this sleeps
        // instead of spinning on failed accepts.
        let (tcp, _) = ws_blocking::accept_stream(&listener);
        let config = config.clone();
        std::thread::spawn(move || {
            let mut ws = match tls::accept(tcp, config) {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("handshake failed: {e}");
                    return;
                }
            };
            while let Some(Ok(msg)) = ws.recv() {
                if msg.is_data() && ws.send(msg).is_err() {
                    break;
                }
            }
        });
    }
}

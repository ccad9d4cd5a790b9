//! Line client for `wss://` URLs: sends each stdin line as a text message
//! and prints each received message. `--ca FILE` trusts the certificates in
//! a PEM file besides the webpki roots (for a private or test CA).
//!
//! `cargo run -p ws-tokio --features rustls --example wss_client -- --ca cert.pem wss://localhost:8443/`

use tokio::io::{AsyncBufReadExt, BufReader};
use ws_tokio::{tls, CloseCode, Config, Message};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = rt.block_on(run()) {
        // Display, not Debug: "I/O error: invalid peer certificate: UnknownIssuer".
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "wss://localhost:8443/".to_string();
    let mut client = tls::ClientTls::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ca" => {
                client =
                    client.add_roots_from_pem_file(args.next().ok_or("--ca needs a PEM file")?)?
            }
            "-h" | "--help" => {
                println!("usage: wss_client [--ca CA.pem] [wss://HOST:PORT/PATH]");
                return Ok(());
            }
            _ => url = a,
        }
    }
    let req = ws_tokio::http::Request::get(url.as_str()).body(())?;
    let (ws, _resp) = tls::connect_with(req, Config::default(), client.build()?).await?;
    let (mut rx, mut tx) = ws.split();
    let printer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Ok(Message::Text(t)) => println!("{t}"),
                Ok(Message::Binary(b)) => println!("{}", String::from_utf8_lossy(&b)),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(e);
                }
            }
        }
        Ok(())
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        tx.send(Message::text(line)).await?;
    }
    tx.close(CloseCode::NORMAL, "").await?;
    printer.await??;
    Ok(())
}

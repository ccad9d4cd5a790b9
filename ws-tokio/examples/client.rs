//! Line client: sends each stdin line as a text message and prints each
//! received message on stdout, one per line. Exits when stdin ends and the
//! close handshake is done.
//!
//! `cargo run -p ws-tokio --example client -- ws://127.0.0.1:9001/`
//!
//! It offers permessage-deflate (RFC 7692); `--no-deflate` does not.

use tokio::io::{AsyncBufReadExt, BufReader};
use ws_tokio::{CloseCode, Config, DeflateConfig, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut config = Config::default().deflate(Some(DeflateConfig::default()));
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--no-deflate" => config = config.deflate(None),
            "-h" | "--help" => {
                println!("usage: client [--no-deflate] [URL]");
                return Ok(());
            }
            _ => url = a,
        }
    }
    let req = ws_tokio::http::Request::get(url.as_str()).body(())?;
    let (ws, _resp) = ws_tokio::connect_with(req, config).await?;
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

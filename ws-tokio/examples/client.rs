//! Line client: sends each stdin line as a text message and prints each
//! received message on stdout, one per line. Exits when stdin ends and the
//! close handshake is done.
//!
//! `cargo run -p ws-tokio --example client -- ws://127.0.0.1:9001/`

use tokio::io::{AsyncBufReadExt, BufReader};
use ws_tokio::{CloseCode, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let (ws, _resp) = ws_tokio::connect(&url).await?;
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

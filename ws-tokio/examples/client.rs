//! Line client: sends each stdin line as a text message and prints each
//! received message on stdout, one per line. Exits when stdin ends and the
//! close handshake is done.
//!
//! `cargo run -p ws-tokio --example client -- ws://127.0.0.1:9001/`
//!
//! It offers permessage-deflate (RFC 7692); `--no-deflate` does not.
//! `--proxy URL` connects through an HTTP CONNECT (`http://[user:pass@]host:port`)
//! or SOCKS5 (`socks5://[user:pass@]host:port`) proxy; `--proxy-env` takes
//! it from `ws_proxy` / `wss_proxy` / `http_proxy` / `https_proxy` /
//! `all_proxy` (minus `no_proxy`). `ws+unix:/path.sock:/resource` URLs
//! connect to a Unix socket, and `wss://` URLs need `--features rustls`.

use tokio::io::{AsyncBufReadExt, BufReader};
use ws_tokio::client::{connect_with_options, ClientOptions, Proxy, ProxySetting};
use ws_tokio::{CloseCode, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut options = ClientOptions::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-deflate" => options = options.deflate(None),
            "--proxy" => {
                let p = args.next().ok_or("--proxy needs a URL")?;
                options = options.proxy(ProxySetting::Explicit(Proxy::parse(&p)?));
            }
            "--proxy-env" => options = options.proxy(ProxySetting::FromEnv),
            "-h" | "--help" => {
                println!("usage: client [--no-deflate] [--proxy URL | --proxy-env] [URL]");
                return Ok(());
            }
            _ => url = a,
        }
    }
    let (ws, _resp) = connect_with_options(&url, options).await?;
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

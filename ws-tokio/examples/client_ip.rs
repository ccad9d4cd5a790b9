//! The client's IP address: the TCP peer, and `X-Forwarded-For` when the
//! server runs behind a reverse proxy (like the `ws` README's example).
//!
//! `cargo run -p ws-tokio --example client_ip -- --addr 127.0.0.1:8080 [--proxies N]`
//!
//! `--proxies N` trusts the last N entries of `X-Forwarded-For` (the ones
//! your own proxies appended); with 0 (the default) the header is shown
//! but not believed.

use ws_tokio::server::{Server, ServerPolicy};
use ws_tokio::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut proxies = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--proxies" => proxies = args.next().ok_or("--proxies needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let server = Server::bind(&addr, ServerPolicy::new()).await?;
    eprintln!("listening on ws://{}", server.local_addr()?);
    loop {
        let (mut ws, info) = server.accept().await?;
        let peer = info.peer_addr();
        let forwarded = info.forwarded_for().join(", ");
        let client = info.client_ip(proxies);
        println!("peer {peer:?}, X-Forwarded-For [{forwarded}], client {client:?}");
        tokio::spawn(async move {
            let text = format!("your address: {client:?}");
            if ws.send(Message::text(text)).await.is_ok() {
                while let Some(Ok(_)) = ws.recv().await {}
            }
        });
    }
}

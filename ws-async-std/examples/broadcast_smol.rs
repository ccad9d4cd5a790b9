//! Broadcast, like the `ws` README: every text message a client sends goes
//! to every other client (`--all`: to every client, the sender included).
//!
//! `cargo run -p ws-async-std --example broadcast_smol -- --addr 127.0.0.1:8080 [--all]`
//!
//! Runs on smol; the same code runs under `async_std::task::block_on`.

use ws_async_std::server::{Server, ServerPolicy};
use ws_async_std::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut to_all = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--all" => to_all = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    smol::block_on(async {
        let server = Server::bind(addr.as_str(), ServerPolicy::new()).await?;
        eprintln!("broadcast server on ws://{}", server.local_addr()?);
        loop {
            let (mut ws, _info) = server.accept().await?;
            let clients = server.clients();
            smol::spawn(async move {
                // `recv` also delivers what the others broadcast to this client.
                while let Some(Ok(msg)) = ws.recv().await {
                    if let Message::Text(text) = msg {
                        if to_all {
                            clients.broadcast(Message::Text(text));
                        } else {
                            clients.broadcast_except(ws.client_id(), Message::Text(text));
                        }
                    }
                }
            })
            .detach();
        }
    })
}

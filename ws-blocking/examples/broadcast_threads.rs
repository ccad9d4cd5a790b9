//! Broadcast, like the `ws` README: every text message a client sends goes
//! to every other client (`--all`: to every client, the sender included).
//!
//! `cargo run -p ws-blocking --example broadcast_threads -- --addr 127.0.0.1:8080 [--all]`
//!
//! One thread per client, blocked in `recv`; the broadcast writes to the
//! other clients' sockets from that thread (through their writing halves,
//! which the client set holds).

use ws_blocking::server::{Server, ServerPolicy};
use ws_blocking::Message;

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
    let server = Server::bind(addr.as_str(), ServerPolicy::new())?;
    eprintln!("broadcast server on ws://{}", server.local_addr()?);
    loop {
        // The writer half stays in the client set; this thread only reads.
        let (mut reader, _writer, _info) = server.accept()?;
        let clients = server.clients();
        std::thread::spawn(move || {
            while let Some(Ok(msg)) = reader.recv() {
                if let Message::Text(text) = msg {
                    if to_all {
                        clients.broadcast(Message::Text(text));
                    } else {
                        clients.broadcast_except(reader.client_id(), Message::Text(text));
                    }
                }
            }
        });
    }
}

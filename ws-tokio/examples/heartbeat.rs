//! Heartbeat: the server pings a client that has been silent for
//! `--ping-ms` milliseconds and drops it when nothing at all (not even the
//! pong) arrived for `--idle-ms` milliseconds. The `ws` README does this by hand with
//! `setInterval` and `terminate()`; here the core's timers do it
//! (`Config::ping_interval`, `Config::idle_timeout`), so it works the same
//! on every adapter and costs nothing while traffic flows.
//!
//! `cargo run -p ws-tokio --example heartbeat -- --addr 127.0.0.1:8080 --ping-ms 30000 --idle-ms 60000`

use std::time::Duration;
use ws_tokio::server::{Server, ServerPolicy};
use ws_tokio::{Config, Error};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:8080".to_string();
    let (mut ping, mut idle) = (30_000u64, 60_000u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--ping-ms" => ping = args.next().ok_or("--ping-ms needs a value")?.parse()?,
            "--idle-ms" => idle = args.next().ok_or("--idle-ms needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let config = Config::default()
        .ping_interval(Some(Duration::from_millis(ping)))
        .idle_timeout(Some(Duration::from_millis(idle)));
    let server = Server::bind(&addr, ServerPolicy::new().with_config(config)).await?;
    eprintln!("heartbeat server on ws://{}", server.local_addr()?);
    loop {
        let (mut ws, info) = server.accept().await?;
        let clients = server.clients();
        tokio::spawn(async move {
            let peer = info.peer_addr();
            // `recv` drives the timers: it sends the pings and reports the
            // end of a connection that stopped answering.
            loop {
                match ws.recv().await {
                    Some(Ok(msg)) => println!("{peer:?}: {msg:?}"),
                    Some(Err(Error::Closed(why))) => {
                        println!("{peer:?} dropped: {why}");
                        break;
                    }
                    Some(Err(e)) => {
                        println!("{peer:?} failed: {e}");
                        break;
                    }
                    None => break,
                }
            }
            println!("{} clients left", clients.len());
        });
    }
}

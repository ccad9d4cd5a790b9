//! Echo server: echoes every text and binary message; every connection is
//! served by one thread, in one mio readiness loop (see the `ws_mio` crate
//! docs for what the loop does).
//!
//! `cargo run --release -p ws-mio --example echo_server -- --addr 127.0.0.1:9001 --threads 1`
//!
//! `--deflate` accepts permessage-deflate (RFC 7692) when a client offers it.
//!
//! `--threads N` is accepted so that every adapter's echo server takes the
//! same command line, and is ignored: this server is one loop on one
//! thread. (To use N cores, run N such loops, each with its own listener
//! on a port shared with `SO_REUSEPORT`, or hand accepted sockets to N
//! loops; that is beyond this example.)

use std::net::ToSocketAddrs;
use ws_mio::{Config, DeflateConfig, Echo, EventLoop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--threads" => {
                // Checked, then ignored (see the module docs).
                let _: usize = args.next().ok_or("--threads needs a value")?.parse()?;
            }
            "--deflate" => config = config.deflate(Some(DeflateConfig::default())),
            "-h" | "--help" => {
                println!("usage: echo_server [--addr HOST:PORT] [--threads N] [--deflate]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or("--addr resolves to no address")?;
    let mut el = EventLoop::new()?;
    let local = el.listen(addr, config)?;
    eprintln!("echo_server listening on ws://{local}");
    el.run(&mut Echo)?;
    Ok(())
}

//! Echo server: echoes every text and binary message, one thread per
//! connection.
//!
//! `cargo run --release -p ws-blocking --example echo_server -- --addr 127.0.0.1:9001 --threads 1`
//!
//! `--deflate` accepts permessage-deflate (RFC 7692) when a client offers it.
//!
//! `--threads N` is accepted so that every adapter's echo server takes the
//! same command line, and is ignored: a blocking socket needs a thread of
//! its own, so each connection gets one (a pool of N threads would serve
//! only N connections at a time and stall the rest).

// The `accept_with` callback returns the core's `Result<Accept, Reject>`,
// whose error side is large; fine for a once-per-connection decision.
#![allow(clippy::result_large_err)]

use std::net::TcpListener;
use ws_blocking::{Config, DeflateConfig};

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
    let listener = TcpListener::bind(&addr)?;
    eprintln!("echo_server listening on ws://{}", listener.local_addr()?);
    let config = std::sync::Arc::new(config);
    loop {
        // Not `listener.incoming()`: out of file descriptors, this sleeps
        // instead of spinning on failed accepts.
        let (tcp, _) = ws_blocking::accept_stream(&listener);
        let config = config.clone(); // an Arc: shared by every connection
        let spawned = std::thread::Builder::new()
            .name("echo".into())
            .spawn(move || {
                let accepted =
                    ws_blocking::accept_with(tcp, config, |_| Ok(ws_blocking::Accept::new()));
                let Ok(mut ws) = accepted else {
                    return;
                };
                while let Some(msg) = ws.recv() {
                    match msg {
                        // `feed` queues; `recv` writes every answer to one
                        // read with one write before it waits again.
                        Ok(m) if m.is_data() => {
                            if ws.feed(m).is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
        if let Err(e) = spawned {
            // Out of threads: this connection is dropped, the server goes on.
            eprintln!("echo_server: cannot start a thread: {e}");
        }
    }
}

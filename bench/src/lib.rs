//! Shared helpers for the benchmark binaries in this crate.
//!
//! The crate holds `loadgen` (a single-threaded WebSocket echo load
//! generator) and a few peer echo servers built on published third-party WebSocket
//! implementations. Every peer server takes the same command line:
//! `--addr HOST:PORT`, and runs on a single-threaded (`current_thread`)
//! tokio runtime. See `bench/README.md`.

use std::net::SocketAddr;
use std::time::Duration;

/// Default listen address of the peer servers.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9001";

/// Parses the peer servers' command line (`--addr HOST:PORT`) and exits the
/// process with a usage message on anything else.
pub fn peer_addr(name: &str) -> SocketAddr {
    let mut addr = DEFAULT_ADDR.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            match args.next() {
                Some(v) => addr = v,
                None => usage(name, "--addr needs a value"),
            }
        } else if let Some(v) = arg.strip_prefix("--addr=") {
            addr = v.to_string();
        } else if arg == "-h" || arg == "--help" {
            println!("usage: {name} [--addr HOST:PORT]   (default {DEFAULT_ADDR})");
            std::process::exit(0);
        } else {
            usage(name, &format!("unknown argument {arg:?}"));
        }
    }
    match addr.parse() {
        Ok(a) => a,
        Err(e) => usage(name, &format!("bad --addr {addr:?}: {e}")),
    }
}

fn usage(name: &str, msg: &str) -> ! {
    eprintln!("{name}: {msg}\nusage: {name} [--addr HOST:PORT]");
    std::process::exit(2);
}

/// Builds the single-threaded tokio runtime every peer server runs on.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("failed to build tokio runtime")
}

/// Binds a listener and prints the line the bench script waits for.
pub async fn bind(name: &str, addr: SocketAddr) -> tokio::net::TcpListener {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            println!("{name} listening on {addr}");
            l
        }
        Err(e) => {
            eprintln!("{name}: cannot bind {addr}: {e}");
            std::process::exit(1);
        }
    }
}

/// Accepts the next connection, riding out transient errors (for example
/// running out of file descriptors) instead of exiting. Sets `TCP_NODELAY`,
/// as every server in the comparison does.
pub async fn accept(listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

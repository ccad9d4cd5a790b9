//! Echo server: echoes every text and binary message.
//!
//! `cargo run --release -p ws-tokio --example echo_server -- --addr 127.0.0.1:9001 --threads 1`
//!
//! `--deflate` accepts permessage-deflate (RFC 7692) when a client offers it.

use tokio::net::TcpListener;
use ws_tokio::{Config, DeflateConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut threads = 0usize;
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--threads" => threads = args.next().ok_or("--threads needs a value")?.parse()?,
            "--deflate" => config = config.deflate(Some(DeflateConfig::default())),
            "-h" | "--help" => {
                println!("usage: echo_server [--addr HOST:PORT] [--threads N] [--deflate]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    raise_fd_limit();
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads);
        }
        b.enable_all().build()?
    };
    // One configuration shared by every connection.
    let config = std::sync::Arc::new(config);
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("echo_server listening on ws://{}", listener.local_addr()?);
        loop {
            // Not `listener.accept().await?`: out of file descriptors
            // (a flood of connections), this pauses instead of failing.
            let (tcp, _) = ws_tokio::accept_stream(&listener).await;
            // Created before the spawn, the handshake future is all the
            // task keeps of the socket and the config (one pointer, the
            // handshake's state being boxed and freed once it is done):
            // this keeps every connection's task small.
            let accepting =
                ws_tokio::accept_with(tcp, config.clone(), |_| Ok(ws_tokio::Accept::new()));
            tokio::spawn(async move {
                let Ok(mut ws) = accepting.await else {
                    return;
                };
                while let Some(msg) = ws.recv().await {
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
        }
    })
}

/// One file descriptor per connection: the soft limit is often 1024 while
/// the hard one is far higher, and a server under a load generator holds
/// thousands (Go programs raise it the same way at start). Best effort.
#[cfg(unix)]
#[allow(unsafe_code)]
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls only read or write the `rlimit` passed, which
    // lives across them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let soft = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                // macOS refuses an unlimited soft limit: try a large one.
                lim.rlim_cur = soft.max(lim.rlim_max.min(10240));
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

#[cfg(not(unix))]
fn raise_fd_limit() {}

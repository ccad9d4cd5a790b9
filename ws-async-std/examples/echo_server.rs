//! Echo server: echoes every text and binary message.
//!
//! `cargo run --release -p ws-async-std --example echo_server -- --addr 127.0.0.1:9001 --threads 1 --runtime smol`
//!
//! `--runtime async-std|smol` (default async-std) picks the executor.
//! `--threads N` sets its worker threads (0, the default: one per core);
//! with 1, everything runs on the main thread under smol, and on one worker
//! thread under async-std.

use futures_io::{AsyncRead, AsyncWrite};
use std::sync::Arc;
use ws_async_std::WebSocket;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut threads = 0usize;
    let mut runtime = "async-std".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--threads" => threads = args.next().ok_or("--threads needs a value")?.parse()?,
            "--runtime" => runtime = args.next().ok_or("--runtime needs a value")?,
            "-h" | "--help" => {
                println!(
                    "usage: echo_server [--addr HOST:PORT] [--threads N] [--runtime async-std|smol]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    match runtime.as_str() {
        "async-std" => {
            if threads > 0 {
                // Read once, when async-std's executor starts.
                std::env::set_var("ASYNC_STD_THREAD_COUNT", threads.to_string());
            }
            async_std::task::block_on(async {
                let listener = async_std::net::TcpListener::bind(&addr).await?;
                eprintln!(
                    "echo_server (async-std) listening on ws://{}",
                    listener.local_addr()?
                );
                loop {
                    // Not `listener.accept().await?`: out of file
                    // descriptors, this pauses instead of failing.
                    let (tcp, _) = ws_async_std::async_std::accept_stream(&listener).await;
                    async_std::task::spawn(async move {
                        if let Ok(ws) = ws_async_std::async_std::accept(tcp).await {
                            echo(ws).await;
                        }
                    });
                }
            })
        }
        "smol" => {
            let threads = match threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            let ex = Arc::new(smol::Executor::new());
            // The main thread runs the executor too.
            for _ in 1..threads {
                let ex = ex.clone();
                std::thread::spawn(move || smol::block_on(ex.run(smol::future::pending::<()>())));
            }
            smol::block_on(ex.clone().run(async {
                let listener = smol::net::TcpListener::bind(&addr).await?;
                eprintln!(
                    "echo_server (smol) listening on ws://{}",
                    listener.local_addr()?
                );
                loop {
                    let (tcp, _) = ws_async_std::smol::accept_stream(&listener).await;
                    ex.spawn(async move {
                        if let Ok(ws) = ws_async_std::smol::accept(tcp).await {
                            echo(ws).await;
                        }
                    })
                    .detach();
                }
            }))
        }
        other => Err(format!("unknown runtime {other:?}; use async-std or smol").into()),
    }
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) {
    while let Some(msg) = ws.recv().await {
        match msg {
            // `feed` queues; `recv` writes every answer to one read with
            // one write before it waits again.
            Ok(m) if m.is_data() => {
                if ws.feed(m).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

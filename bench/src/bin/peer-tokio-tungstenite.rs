//! Echo server on `tokio-tungstenite`, for comparison benchmarks.
//!
//! Follows the crate's own echo-server example: accept, then forward the
//! read half into the write half (which batches flushes while more input is
//! ready), dropping everything but text and binary messages. Control frames
//! (ping/pong/close) are answered by tungstenite itself.

use futures_util::{future, StreamExt, TryStreamExt};

const NAME: &str = "peer-tokio-tungstenite";

fn main() {
    let addr = bench::peer_addr(NAME);
    bench::current_thread_runtime().block_on(async move {
        let listener = bench::bind(NAME, addr).await;
        loop {
            let stream = bench::accept(&listener).await;
            tokio::spawn(async move {
                let ws = match tokio_tungstenite::accept_async(stream).await {
                    Ok(ws) => ws,
                    Err(e) => {
                        eprintln!("{NAME}: handshake failed: {e}");
                        return;
                    }
                };
                let (write, read) = ws.split();
                let res = read
                    .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
                    .forward(write)
                    .await;
                if let Err(e) = res {
                    use tokio_tungstenite::tungstenite::Error;
                    if !matches!(e, Error::ConnectionClosed | Error::AlreadyClosed) {
                        eprintln!("{NAME}: connection error: {e}");
                    }
                }
            });
        }
    });
}

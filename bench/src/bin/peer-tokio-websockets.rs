//! Echo server on `tokio-websockets`, for comparison benchmarks.
//!
//! Configured like the crate's own benchmark echo server: `server` +
//! `sha1_smol` features only, no outgoing fragmentation
//! (`frame_size(usize::MAX)`), no payload limit, and the per-connection task
//! wrapped in `tokio::task::unconstrained`.

use futures_util::{SinkExt, StreamExt};
use tokio_websockets::{Config, Limits, ServerBuilder};

const NAME: &str = "peer-tokio-websockets";

fn main() {
    let addr = bench::peer_addr(NAME);
    bench::current_thread_runtime().block_on(async move {
        let listener = bench::bind(NAME, addr).await;
        loop {
            let stream = bench::accept(&listener).await;
            tokio::spawn(tokio::task::unconstrained(async move {
                let accepted = ServerBuilder::new()
                    .config(Config::default().frame_size(usize::MAX))
                    .limits(Limits::unlimited())
                    .accept(stream)
                    .await;
                let mut ws = match accepted {
                    Ok((_request, ws)) => ws,
                    Err(e) => {
                        eprintln!("{NAME}: handshake failed: {e}");
                        return;
                    }
                };
                while let Some(item) = ws.next().await {
                    match item {
                        Ok(msg) => {
                            if msg.is_text() || msg.is_binary() {
                                if let Err(e) = ws.send(msg).await {
                                    eprintln!("{NAME}: send failed: {e}");
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            eprintln!("{NAME}: connection error: {e}");
                            return;
                        }
                    }
                }
            }));
        }
    });
}

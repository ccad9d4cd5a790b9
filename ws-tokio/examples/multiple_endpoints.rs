//! Several WebSocket endpoints on one port, routed by path (the `ws`
//! README's "multiple servers sharing a single HTTP server"): `/foo`
//! echoes, `/bar` shouts back in capitals, every other path gets 404, and
//! a plain GET gets a short page.
//!
//! `cargo run -p ws-tokio --example multiple_endpoints -- --addr 127.0.0.1:8080`

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use ws_tokio::server::{
    is_upgrade_request, read_request, write_reject, Router, ServerPolicy, Upgrader,
};
use ws_tokio::{Config, Error, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!(
        "endpoints ws://{0}/foo and ws://{0}/bar",
        listener.local_addr()?
    );
    // One upgrader per endpoint (`new WebSocketServer({ noServer: true })`),
    // each with its own policy and client set.
    let router = Router::new()
        .route("/foo", Upgrader::new(ServerPolicy::new()))
        .route("/bar", Upgrader::new(ServerPolicy::new().max_payload(1024)));
    loop {
        // Waits out `accept` failures (out of file descriptors...).
        let (mut tcp, peer) = ws_tokio::accept_stream(&listener).await;
        let router = router.clone();
        tokio::spawn(async move {
            // The HTTP server's part: read the request, decide who gets it.
            let (req, head) = read_request(&mut tcp, &Config::default()).await?;
            if !is_upgrade_request(&req) {
                tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 23\r\nconnection: close\r\n\r\ntry ws://.../foo or bar")
                    .await?;
                return Ok::<_, Error>(());
            }
            let Some(endpoint) = router.find(req.uri().path()) else {
                return write_reject(&mut tcp, &router.not_found()).await;
            };
            // `handleUpgrade(request, socket, head)`: the bytes already read
            // are handed over with the socket.
            let (mut ws, info) = endpoint.handle_upgrade(tcp, &head, Some(peer)).await?;
            let shout = info.path() == "/bar";
            while let Some(msg) = ws.recv().await {
                match msg? {
                    Message::Text(t) if shout => ws.send(Message::text(t.to_uppercase())).await?,
                    m if m.is_data() => ws.send(m).await?,
                    _ => {}
                }
            }
            Ok(())
        });
    }
}

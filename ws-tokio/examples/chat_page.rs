//! A chat server that serves its own web page: `GET /` returns an HTML page
//! whose script opens a WebSocket to `/ws` on the same server; every message
//! a browser sends is broadcast to every connected browser.
//!
//! `cargo run -p ws-tokio --example chat_page -- --addr 127.0.0.1:8080`,
//! then open <http://127.0.0.1:8080/> in two browser windows.
//!
//! `tests/chromium.rs` runs this file's `serve` with a headless Chromium.

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use ws_tokio::server::{is_upgrade_request, read_request, write_reject, ServerPolicy, Upgrader};
use ws_tokio::{Config, Message, Reject};

/// The page: a log, an input, and a script that connects, says hello, and
/// writes every message it receives into the log.
pub const PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>chat</title></head>
<body>
<h1>chat</h1>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off"><button>send</button></form>
<script>
const log = document.getElementById("log");
function show(text) {
  const li = document.createElement("li");
  li.textContent = text;
  log.appendChild(li);
}
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onopen = () => {
  document.body.dataset.state = "open";
  ws.send("hello from " + navigator.userAgent.split(" ")[0]);
};
ws.onmessage = (e) => show(e.data);
ws.onclose = () => { document.body.dataset.state = "closed"; };
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
</script>
</body>
</html>
"#;

/// Serves the page and the chat on `listener`. Every message received is
/// also reported on `seen` (for tests); pass `None` to skip that.
pub async fn serve(listener: TcpListener, seen: Option<mpsc::UnboundedSender<String>>) {
    let chat = Upgrader::new(ServerPolicy::new().path("/ws").max_payload(64 << 10));
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let chat = chat.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let _ = handle(tcp, peer, chat, seen).await;
        });
    }
}

async fn handle(
    mut tcp: TcpStream,
    peer: std::net::SocketAddr,
    chat: Upgrader,
    seen: Option<mpsc::UnboundedSender<String>>,
) -> Result<(), ws_tokio::Error> {
    let (req, head) = read_request(&mut tcp, &Config::default()).await?;
    if !is_upgrade_request(&req) {
        if req.uri().path() != "/" {
            return write_reject(&mut tcp, &Reject::new(404).body("not found\n")).await;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            PAGE.len()
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(PAGE.as_bytes()).await?;
        tcp.shutdown().await?;
        return Ok(());
    }
    let (mut ws, info) = chat.handle_upgrade(tcp, &head, Some(peer)).await?;
    let clients = chat.clients();
    let me = ws.client_id();
    ws.send(Message::text(format!("welcome, {} online", clients.len())))
        .await?;
    while let Some(msg) = ws.recv().await {
        if let Message::Text(text) = msg? {
            if let Some(seen) = &seen {
                let _ = seen.send(text.to_string());
            }
            eprintln!(
                "{} ({me}): {}",
                info.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
                &*text
            );
            // To everyone, the sender included: the payload is shared.
            clients.broadcast(Message::text(format!("{me}: {}", &*text)));
        }
    }
    Ok(())
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("chat on http://{}/", listener.local_addr()?);
        serve(listener, None).await;
        Ok(())
    })
}

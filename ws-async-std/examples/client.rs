//! Line client: sends each stdin line as a text message and prints each
//! received message on stdout, one per line. Exits when stdin ends and the
//! close handshake is done.
//!
//! `cargo run -p ws-async-std --example client -- ws://127.0.0.1:9001/`
//!
//! `--runtime async-std|smol` (default async-std) picks the executor.
//! It offers permessage-deflate (RFC 7692); `--no-deflate` does not.
//! `--proxy URL` connects through an HTTP CONNECT (`http://[user:pass@]host:port`)
//! or SOCKS5 (`socks5://[user:pass@]host:port`) proxy; `--proxy-env` takes
//! it from `ws_proxy` / `wss_proxy` / `http_proxy` / `https_proxy` /
//! `all_proxy` (minus `no_proxy`). With any of these three, or a
//! `ws+unix:/path.sock:/resource` URL, it connects with
//! `ws_async_std::client` (async-net sockets, on either executor).

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{Stream, StreamExt};
use std::io;
use ws_async_std::client::{connect_with_options, ClientOptions, Proxy, ProxySetting};
use ws_async_std::{CloseCode, Error, Message, WebSocket, WebSocketReader, WebSocketWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut runtime = "async-std".to_string();
    let mut options: Option<ClientOptions> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runtime" => runtime = args.next().ok_or("--runtime needs a value")?,
            "--no-deflate" => options = Some(options.unwrap_or_default().deflate(None)),
            "--proxy" => {
                let p = Proxy::parse(&args.next().ok_or("--proxy needs a URL")?)?;
                options = Some(options.unwrap_or_default().proxy(ProxySetting::Explicit(p)));
            }
            "--proxy-env" => {
                options = Some(options.unwrap_or_default().proxy(ProxySetting::FromEnv));
            }
            "-h" | "--help" => {
                println!(
                    "usage: client [URL] [--runtime async-std|smol] [--no-deflate] \
                     [--proxy URL | --proxy-env]"
                );
                return Ok(());
            }
            other => url = other.to_string(),
        }
    }
    if url.starts_with("ws+unix:") {
        options = Some(options.unwrap_or_default());
    }
    match runtime.as_str() {
        "async-std" => async_std::task::block_on(async {
            match options {
                Some(o) => on_async_std(connect_with_options(&url, o).await?.0).await,
                None => on_async_std(ws_async_std::async_std::connect(&url).await?.0).await,
            }
        }),
        "smol" => smol::block_on(async {
            match options {
                Some(o) => on_smol(connect_with_options(&url, o).await?.0).await,
                None => on_smol(ws_async_std::smol::connect(&url).await?.0).await,
            }
        }),
        other => Err(format!("unknown runtime {other:?}; use async-std or smol").into()),
    }
}

async fn on_async_std<S>(ws: WebSocket<S>) -> Result<(), Box<dyn std::error::Error>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use async_std::io::prelude::BufReadExt;
    let (rx, tx) = ws.split();
    let printer = async_std::task::spawn(print_all(rx));
    let lines = async_std::io::BufReader::new(async_std::io::stdin()).lines();
    send_lines(tx, lines).await?;
    Ok(printer.await?)
}

async fn on_smol<S>(ws: WebSocket<S>) -> Result<(), Box<dyn std::error::Error>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use smol::io::AsyncBufReadExt;
    let (rx, tx) = ws.split();
    let printer = smol::spawn(print_all(rx));
    let lines = smol::io::BufReader::new(smol::Unblock::new(io::stdin())).lines();
    send_lines(tx, lines).await?;
    Ok(printer.await?)
}

/// Prints every message until the end of the connection.
async fn print_all<S: AsyncRead + AsyncWrite + Unpin>(
    mut rx: WebSocketReader<S>,
) -> Result<(), Error> {
    while let Some(msg) = rx.recv().await {
        match msg {
            Ok(Message::Text(t)) => println!("{t}"),
            Ok(Message::Binary(b)) => println!("{}", String::from_utf8_lossy(&b)),
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: {e}");
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Sends every line, then starts the closing handshake.
async fn send_lines<S: AsyncRead + AsyncWrite + Unpin>(
    mut tx: WebSocketWriter<S>,
    lines: impl Stream<Item = io::Result<String>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut lines = std::pin::pin!(lines);
    while let Some(line) = lines.next().await {
        tx.send(Message::text(line?)).await?;
    }
    tx.close(CloseCode::NORMAL, "").await?;
    Ok(())
}

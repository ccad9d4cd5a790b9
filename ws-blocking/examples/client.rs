//! Line client: sends each stdin line as a text message and prints each
//! received message on stdout, one per line. Exits when stdin ends and the
//! close handshake is done.
//!
//! `cargo run -p ws-blocking --example client -- ws://127.0.0.1:9001/`
//!
//! It offers permessage-deflate (RFC 7692); `--no-deflate` does not.
//! `--proxy URL` connects through an HTTP CONNECT (`http://[user:pass@]host:port`)
//! or SOCKS5 (`socks5://[user:pass@]host:port`) proxy; `--proxy-env` takes
//! it from `ws_proxy` / `wss_proxy` / `http_proxy` / `https_proxy` /
//! `all_proxy` (minus `no_proxy`). `ws+unix:/path.sock:/resource` URLs
//! connect to a Unix socket.

use std::io::BufRead;
use ws_blocking::client::{connect_with_options, ClientOptions, Proxy, ProxySetting};
use ws_blocking::{CloseCode, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut options = ClientOptions::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-deflate" => options = options.deflate(None),
            "--proxy" => {
                let p = args.next().ok_or("--proxy needs a URL")?;
                options = options.proxy(ProxySetting::Explicit(Proxy::parse(&p)?));
            }
            "--proxy-env" => options = options.proxy(ProxySetting::FromEnv),
            "-h" | "--help" => {
                println!("usage: client [--no-deflate] [--proxy URL | --proxy-env] [URL]");
                return Ok(());
            }
            _ => url = a,
        }
    }
    let (ws, _resp) = connect_with_options(&url, options)?;
    // The reading half prints on its own thread while this one sends.
    let (rx, mut tx) = ws.split();
    let printer = std::thread::spawn(move || -> Result<(), ws_blocking::Error> {
        for msg in rx {
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
    });
    for line in std::io::stdin().lock().lines() {
        tx.send(Message::text(line?))?;
    }
    tx.close(CloseCode::NORMAL, "")?;
    printer.join().map_err(|_| "printer thread panicked")??;
    Ok(())
}

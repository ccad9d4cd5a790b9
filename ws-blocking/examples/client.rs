//! Line client: sends each stdin line as a text message and prints each
//! received message on stdout, one per line. Exits when stdin ends and the
//! close handshake is done.
//!
//! `cargo run -p ws-blocking --example client -- ws://127.0.0.1:9001/`
//!
//! It offers permessage-deflate (RFC 7692); `--no-deflate` does not.

use std::io::BufRead;
use ws_blocking::{CloseCode, Config, DeflateConfig, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut config = Config::default().deflate(Some(DeflateConfig::default()));
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--no-deflate" => config = config.deflate(None),
            "-h" | "--help" => {
                println!("usage: client [--no-deflate] [URL]");
                return Ok(());
            }
            _ => url = a,
        }
    }
    let req = ws_blocking::http::Request::get(url.as_str()).body(())?;
    let (ws, _resp) = ws_blocking::connect_with(req, config)?;
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

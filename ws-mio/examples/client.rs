//! Line client: sends each stdin line as a text message and prints each
//! received message on stdout, one per line. Exits when stdin ends and the
//! close handshake is done (or when the server ends the connection).
//!
//! `cargo run -p ws-mio --example client -- ws://127.0.0.1:9001/`
//!
//! It offers permessage-deflate (RFC 7692); `--no-deflate` does not.
//!
//! The connection runs in a mio loop on the main thread. Reading stdin
//! blocks, so a helper thread reads it and hands each line over through a
//! channel, waking the loop with its `mio::Waker`.

use std::collections::VecDeque;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::Instant;
use ws_mio::{
    http, CloseCode, CloseInfo, Config, Connection, DeflateConfig, Error, Event, EventLoop, Handler,
};

/// Prints what arrives and remembers how the connection ended.
#[derive(Debug, Default)]
struct Printer {
    ended: Option<CloseInfo>,
    error: Option<Error>,
}

impl Handler for Printer {
    fn on_event(&mut self, _: ws_mio::Token, _: &mut Connection, event: Event) {
        match event {
            Event::Text(t) => println!("{t}"),
            Event::Binary(b) => println!("{}", String::from_utf8_lossy(&b)),
            Event::Closed(info) => self.ended = Some(info),
            _ => {}
        }
    }

    fn on_error(&mut self, _: ws_mio::Token, error: Error) {
        eprintln!("error: {error}");
        self.error = Some(error);
    }
}

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
    let mut el = EventLoop::new()?;

    // stdin on a helper thread: `Some(line)` per line, `None` at the end.
    let (tx, rx) = mpsc::channel::<Option<String>>();
    let waker = el.waker()?;
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(Some(line)).is_err() {
                return;
            }
            let _ = waker.wake();
        }
        let _ = tx.send(None);
        let _ = waker.wake();
    });

    let token = el.connect(http::Request::get(url.as_str()).body(())?, config)?;
    let mut printer = Printer::default();
    // Lines that arrived before the handshake completed wait here.
    let mut lines = VecDeque::new();
    while el.contains(token) {
        if el.turn(&mut printer, None)? {
            lines.extend(rx.try_iter());
        }
        if lines.is_empty() {
            continue;
        }
        let Some(conn) = el.connection_mut(token) else {
            continue; // still connecting
        };
        for line in lines.drain(..) {
            // Sends fail only once the connection is closing (say the
            // server closed it): the rest of the input is dropped.
            let _ = match line {
                Some(text) => conn.send_text(text),
                None => conn.close(Instant::now(), CloseCode::NORMAL, ""),
            };
        }
    }
    match (printer.ended, printer.error) {
        (Some(info), _) if info.is_clean() => Ok(()),
        (Some(info), _) => Err(info.to_string().into()),
        (None, Some(e)) => Err(e.into()),
        (None, None) => Err("the connection ended".into()),
    }
}

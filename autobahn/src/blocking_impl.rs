//! The testee on the blocking adapter: one thread per connection.

// The `accept_with` callback returns the core's `Result<Accept, Reject>`,
// whose error side is large; fine for a once-per-connection decision.
#![allow(clippy::result_large_err)]

use ws_blocking::{Config, DeflateConfig, Message};

/// The testees' config: permessage-deflate on (the server accepts every
/// offer the suite makes, the client offers it), for cases 12.* and 13.*.
fn config() -> Config {
    Config::default().deflate(Some(DeflateConfig::default()))
}

/// Echo server for the fuzzingclient.
pub fn server(addr: &str) {
    let listener = std::net::TcpListener::bind(addr).expect("bind");
    eprintln!("autobahn-server (blocking) on {addr}");
    for tcp in listener.incoming() {
        let Ok(tcp) = tcp else { continue };
        std::thread::spawn(move || {
            let _ = tcp.set_nodelay(true);
            let ws = ws_blocking::accept_with(tcp, config(), |_| Ok(ws_blocking::Accept::new()));
            let Ok(mut ws) = ws else { return };
            while let Some(Ok(msg)) = ws.recv() {
                if msg.is_data() && ws.feed(msg).is_err() {
                    break;
                }
            }
        });
    }
}

/// Testee client for the fuzzingserver.
pub fn client(base: &str, agent: &str) -> Result<(), String> {
    let base = base.trim_end_matches('/');
    let count = {
        let (mut ws, _) = ws_blocking::connect(&format!("{base}/getCaseCount"))
            .map_err(|e| format!("getCaseCount: {e}"))?;
        let mut count = None;
        while let Some(Ok(msg)) = ws.recv() {
            if let Message::Text(t) = msg {
                count = t.trim().parse::<u32>().ok();
            }
        }
        count.ok_or("no case count")?
    };
    eprintln!("autobahn-client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let req = ws_blocking::http::Request::get(url)
            .body(())
            .map_err(|e| e.to_string())?;
        let Ok((mut ws, _)) = ws_blocking::connect_with(req, config()) else {
            continue;
        };
        while let Some(Ok(msg)) = ws.recv() {
            if msg.is_data() && ws.feed(msg).is_err() {
                break;
            }
        }
    }
    let (mut ws, _) = ws_blocking::connect(&format!("{base}/updateReports?agent={agent}"))
        .map_err(|e| format!("updateReports: {e}"))?;
    while ws.recv().is_some() {}
    Ok(())
}

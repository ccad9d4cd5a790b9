//! The testee on the futures-io adapter (`ws-async-std`), on async-std or
//! on smol.

// The decide callbacks return `Result<Accept, Reject>`, and `Reject` (the
// core's type) is large.
#![allow(clippy::result_large_err)]

use ws_async_std::{http, Accept, Config, DeflateConfig, Message};

/// The executor (and the adapter's matching runtime module) to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// async-std's executor, `async_std::net`, `ws_async_std::async_std`.
    AsyncStd,
    /// smol's executor, `smol::net`, `ws_async_std::smol`.
    Smol,
}

/// The testees' config: permessage-deflate on (the server accepts every
/// offer the suite makes, the client offers it), for cases 12.* and 13.*.
fn config() -> Config {
    Config::default().deflate(Some(DeflateConfig::default()))
}

/// Echoes every data message until the connection ends.
macro_rules! echo {
    ($ws:expr) => {{
        let mut ws = $ws;
        while let Some(Ok(msg)) = ws.recv().await {
            if msg.is_data() && ws.feed(msg).is_err() {
                break;
            }
        }
    }};
}

/// Echo server for the fuzzingclient.
pub fn server(addr: &str, runtime: Runtime) {
    match runtime {
        Runtime::AsyncStd => async_std::task::block_on(async {
            let listener = async_std::net::TcpListener::bind(addr).await.expect("bind");
            eprintln!("autobahn-server (async-std) on {addr}");
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                async_std::task::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let ws =
                        ws_async_std::async_std::accept_with(tcp, config(), |_| Ok(Accept::new()))
                            .await;
                    if let Ok(ws) = ws {
                        echo!(ws);
                    }
                });
            }
        }),
        Runtime::Smol => smol::block_on(async {
            let listener = smol::net::TcpListener::bind(addr).await.expect("bind");
            eprintln!("autobahn-server (smol) on {addr}");
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                smol::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let ws =
                        ws_async_std::smol::accept_with(tcp, config(), |_| Ok(Accept::new())).await;
                    if let Ok(ws) = ws {
                        echo!(ws);
                    }
                })
                .detach();
            }
        }),
    }
}

/// The fuzzingserver's protocol with one runtime module's `connect_with`.
macro_rules! run_client {
    ($rt:ident, $base:expr, $agent:expr) => {{
        let base = $base.trim_end_matches('/');
        let agent = $agent;
        let request = |url: String| http::Request::get(url).body(()).map_err(|e| e.to_string());
        let count = {
            let req = request(format!("{base}/getCaseCount"))?;
            let (mut ws, _) = ws_async_std::$rt::connect_with(req, Config::default())
                .await
                .map_err(|e| format!("getCaseCount: {e}"))?;
            let mut count = None;
            while let Some(Ok(msg)) = ws.recv().await {
                if let Message::Text(t) = msg {
                    count = t.trim().parse::<u32>().ok();
                }
            }
            count.ok_or("no case count")?
        };
        eprintln!("autobahn-client: {count} cases");
        for case in 1..=count {
            let req = request(format!("{base}/runCase?case={case}&agent={agent}"))?;
            let Ok((ws, _)) = ws_async_std::$rt::connect_with(req, config()).await else {
                continue;
            };
            echo!(ws);
        }
        let req = request(format!("{base}/updateReports?agent={agent}"))?;
        let (mut ws, _) = ws_async_std::$rt::connect_with(req, Config::default())
            .await
            .map_err(|e| format!("updateReports: {e}"))?;
        while ws.recv().await.is_some() {}
        Ok(())
    }};
}

/// Testee client for the fuzzingserver.
pub fn client(base: &str, agent: &str, runtime: Runtime) -> Result<(), String> {
    match runtime {
        Runtime::AsyncStd => {
            async_std::task::block_on(async { run_client!(async_std, base, agent) })
        }
        Runtime::Smol => smol::block_on(async { run_client!(smol, base, agent) }),
    }
}

//! The testee on the tokio adapter.

use ws_tokio::{Config, DeflateConfig, Message};

/// The testees' config: permessage-deflate on (the server accepts every
/// offer the suite makes, the client offers it), for cases 12.* and 13.*.
fn config() -> Config {
    Config::default().deflate(Some(DeflateConfig::default()))
}

/// Echo server for the fuzzingclient.
pub fn server(addr: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        eprintln!("autobahn-server (tokio) on {addr}");
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let ws =
                    ws_tokio::accept_with(tcp, config(), |_| Ok(ws_tokio::Accept::new())).await;
                let Ok(mut ws) = ws else { return };
                while let Some(Ok(msg)) = ws.recv().await {
                    if msg.is_data() && ws.feed(msg).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// Testee client for the fuzzingserver.
pub fn client(base: &str, agent: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let base = base.trim_end_matches('/');
        let count = {
            let (mut ws, _) = ws_tokio::connect(&format!("{base}/getCaseCount"))
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
            let url = format!("{base}/runCase?case={case}&agent={agent}");
            let req = ws_tokio::http::Request::get(url)
                .body(())
                .map_err(|e| e.to_string())?;
            let Ok((mut ws, _)) = ws_tokio::connect_with(req, config()).await else {
                continue;
            };
            while let Some(Ok(msg)) = ws.recv().await {
                if msg.is_data() && ws.feed(msg).is_err() {
                    break;
                }
            }
        }
        let (mut ws, _) = ws_tokio::connect(&format!("{base}/updateReports?agent={agent}"))
            .await
            .map_err(|e| format!("updateReports: {e}"))?;
        while ws.recv().await.is_some() {}
        Ok(())
    })
}

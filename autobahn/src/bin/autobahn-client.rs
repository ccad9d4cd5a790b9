//! Autobahn testee client, following the fuzzingserver's protocol: asks
//! `/getCaseCount`, runs `/runCase?case=N&agent=NAME` for each case echoing
//! every message, then calls `/updateReports?agent=NAME`.
//!
//! `autobahn-client --adapter tokio --url ws://127.0.0.1:9001 --agent NAME`

use ws_tokio::{Config, Message};

fn main() {
    let args = match autobahn::parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("autobahn-client: {e}");
            std::process::exit(2);
        }
    };
    let res = match args.adapter.as_str() {
        "tokio" => tokio_client(&args.url, &args.agent),
        _ => unreachable!("checked by parse_args"),
    };
    if let Err(e) = res {
        eprintln!("autobahn-client: {e}");
        std::process::exit(1);
    }
}

fn tokio_client(base: &str, agent: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
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
            let req = ws_tokio::http::Request::get(url).body(()).map_err(|e| e.to_string())?;
            let Ok((mut ws, _)) = ws_tokio::connect_with(req, Config::default()).await else {
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

//! Autobahn testee server: an echo server on the chosen adapter.
//!
//! `autobahn-server --adapter tokio --addr 127.0.0.1:9001`

use ws_tokio::Config;

fn config() -> Config {
    // Autobahn's largest messages are 16 MiB.
    Config::default()
}

fn main() {
    let args = match autobahn::parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("autobahn-server: {e}");
            std::process::exit(2);
        }
    };
    match args.adapter.as_str() {
        "tokio" => tokio_server(&args.addr),
        _ => unreachable!("checked by parse_args"),
    }
}

fn tokio_server(addr: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        eprintln!("autobahn-server (tokio) on {addr}");
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let ws = ws_tokio::accept_with(tcp, config(), |_| Ok(ws_tokio::Accept::new())).await;
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

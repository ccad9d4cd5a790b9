//! The server examples run: each is started as its own process on a free
//! loopback port and driven by a client (`chat_page` is covered by
//! `tests/chromium.rs`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use ws_tokio::{http, Config, Error, Message, WebSocket};

// Generous: it includes building the example when it is out of date.
const LIMIT: Duration = Duration::from_secs(180);

/// The newest modification time of the files under `dir` (recursively).
fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let m = if p.is_dir() {
                newest(&p)
            } else {
                e.metadata().and_then(|m| m.modified()).unwrap_or(t)
            };
            t = t.max(m);
        }
    }
    t
}

/// The example's binary, built first unless it is newer than its source
/// and the crates it uses (`cargo test` builds the examples, but not for
/// `--test examples` alone).
fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        crate_dir.join("src"),
        crate_dir.join("examples"),
        crate_dir.join("../ws-proto/src"),
    ]
    .iter()
    .map(|d| newest(d))
    .max()
    .unwrap();
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    if built.map_or(true, |b| b < sources) {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "-p", "ws-tokio", "--example", name]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "building example {name}");
    }
    path
}

/// Starts an example on port 0 and returns it with the address it printed.
async fn start(name: &str, args: &[&str]) -> (Child, String) {
    let path = tokio::task::spawn_blocking({
        let name = name.to_string();
        move || example(&name)
    })
    .await
    .unwrap();
    let mut child = Command::new(path)
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("no output");
    let at = line.find("127.0.0.1:").expect(&line);
    let addr: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    // Keep draining stderr so the example never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

async fn connect(url: String) -> WebSocket<TcpStream> {
    let req = http::Request::get(url).body(()).unwrap();
    ws_tokio::connect_with(req, Config::default())
        .await
        .unwrap()
        .0
}

async fn next_text(ws: &mut WebSocket<TcpStream>) -> String {
    loop {
        match ws.recv().await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn broadcast_example() {
    tokio::time::timeout(LIMIT, async {
        let (_child, addr) = start("broadcast", &[]).await;
        let mut a = connect(format!("ws://{addr}/")).await;
        let mut b = connect(format!("ws://{addr}/")).await;
        let mut c = connect(format!("ws://{addr}/")).await;
        // Wait until all three are tracked: c's message reaches a and b.
        c.send(Message::text("c is here")).await.unwrap();
        assert_eq!(next_text(&mut a).await, "c is here");
        assert_eq!(next_text(&mut b).await, "c is here");
        a.send(Message::text("from a")).await.unwrap();
        assert_eq!(next_text(&mut b).await, "from a");
        assert_eq!(next_text(&mut c).await, "from a");
        b.send(Message::text("from b")).await.unwrap();
        // a's next message is b's: its own was not sent back to it.
        assert_eq!(next_text(&mut a).await, "from b");
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn multiple_endpoints_example() {
    tokio::time::timeout(LIMIT, async {
        let (_child, addr) = start("multiple_endpoints", &[]).await;
        let mut foo = connect(format!("ws://{addr}/foo")).await;
        let mut bar = connect(format!("ws://{addr}/bar")).await;
        foo.send(Message::text("hello")).await.unwrap();
        bar.send(Message::text("hello")).await.unwrap();
        assert_eq!(next_text(&mut foo).await, "hello");
        assert_eq!(next_text(&mut bar).await, "HELLO");
        let req = http::Request::get(format!("ws://{addr}/baz"))
            .body(())
            .unwrap();
        match ws_tokio::connect_with(req, Config::default()).await {
            Err(Error::Handshake(ws_tokio::HandshakeError::UnexpectedStatus {
                status, ..
            })) => assert_eq!(status, 404),
            other => panic!("{:?}", other.map(|_| ())),
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn client_ip_example() {
    tokio::time::timeout(LIMIT, async {
        for (proxies, expect) in [("0", "127.0.0.1"), ("1", "198.51.100.4")] {
            let (_child, addr) = start("client_ip", &["--proxies", proxies]).await;
            let req = http::Request::get(format!("ws://{addr}/"))
                .header("x-forwarded-for", "198.51.100.4")
                .body(())
                .unwrap();
            let (mut ws, _) = ws_tokio::connect_with(req, Config::default())
                .await
                .unwrap();
            assert_eq!(
                next_text(&mut ws).await,
                format!("your address: Some({expect})")
            );
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn heartbeat_example() {
    tokio::time::timeout(LIMIT, async {
        let (_child, addr) = start("heartbeat", &["--ping-ms", "200", "--idle-ms", "800"]).await;
        // Answers pings: `recv` runs all the time.
        let mut alive = connect(format!("ws://{addr}/")).await;
        // Reads nothing, so it never answers a ping.
        let mut silent = connect(format!("ws://{addr}/")).await;
        let mut pings = 0;
        let silent_end = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // By now the server has dropped it: what it reads ends in an
            // abnormal closure (no close frame).
            let mut end = None;
            while let Some(m) = silent.recv().await {
                if let Err(e) = m {
                    end = Some(e);
                }
            }
            end
        });
        let deadline = tokio::time::Instant::now() + Duration::from_millis(2000);
        while let Ok(m) = tokio::time::timeout_at(deadline, alive.recv()).await {
            match m {
                Some(Ok(Message::Ping(_))) => pings += 1,
                other => panic!("the live client ended: {other:?}"),
            }
        }
        assert!(pings >= 3, "{pings} pings");
        let end = silent_end.await.unwrap();
        match end {
            Some(Error::Closed(info)) => assert_eq!(info.code().0, 1006, "{info}"),
            other => panic!("the silent client was not dropped: {other:?}"),
        }
        assert!(alive.connection().is_open());
    })
    .await
    .expect("timed out");
}

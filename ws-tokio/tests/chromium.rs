//! A real browser against the `chat_page` example: headless Chromium loads
//! the page, its script connects over WebSocket, sends a message, and
//! writes what the server broadcasts into the page; the test reads the
//! page back (`--dump-dom`) and checks the server saw the browser's
//! message.
//!
//! Skipped, with a notice, when no Chromium is installed, unless
//! `WS_REQUIRE_CHROMIUM=1` (CI), which turns its absence into a failure.
//! `WS_CHROMIUM` names the binary when it is not `chromium` on the PATH.

#[path = "../examples/chat_page.rs"]
#[allow(dead_code)]
mod chat_page;

use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use ws_tokio::Message;

fn chromium() -> Option<String> {
    let candidates = match std::env::var("WS_CHROMIUM") {
        Ok(c) => vec![c],
        Err(_) => vec![
            "chromium".to_string(),
            "chromium-browser".to_string(),
            "google-chrome".to_string(),
        ],
    };
    candidates.into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_chats_with_the_example_server() {
    let Some(browser) = chromium() else {
        if std::env::var("WS_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("WS_REQUIRE_CHROMIUM=1 but no chromium binary was found");
        }
        eprintln!("NOTICE: chromium not found; skipping the browser test (install the `chromium` package, or set WS_CHROMIUM)");
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(chat_page::serve(listener, Some(tx)));

    // A Rust client in the same chat: it must get the browser's message
    // through the broadcast too.
    let (mut rust, _) = ws_tokio::connect(&format!("ws://{addr}/ws")).await.unwrap();
    let welcome = rust.recv().await.unwrap().unwrap();
    assert_eq!(welcome, Message::text("welcome, 1 online"));

    let profile = std::env::temp_dir().join(format!("ws-chromium-{}", std::process::id()));
    let mut cmd = tokio::process::Command::new(&browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--virtual-time-budget=5000",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("http://{addr}/"))
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("chromium did not finish within 60 s")
        .expect("chromium failed to start");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);

    // The server saw the browser's message.
    let said = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("the server never heard from the browser")
        .unwrap();
    assert!(said.starts_with("hello from "), "{said}");
    // The other client got it by broadcast.
    let relayed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Message::Text(t) = rust.recv().await.unwrap().unwrap() {
                return t.to_string();
            }
        }
    })
    .await
    .expect("the broadcast never reached the Rust client");
    assert!(relayed.ends_with(&said), "{relayed}");
    // The browser connected, and wrote the welcome and its own message,
    // broadcast back to it, into the page.
    assert!(dom.contains("<li>welcome, 2 online</li>"), "{dom}");
    assert!(dom.contains(&format!(": {said}</li>")), "{dom}");
}

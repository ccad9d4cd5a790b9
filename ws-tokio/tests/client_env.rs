//! `ProxySetting::FromEnv` with the real environment. The only test in its
//! binary: it sets environment variables, which no other thread reads.

mod client_support;

use client_support::{http_proxy, scripted, socks5_proxy, Reply};
use std::sync::atomic::Ordering;
use ws_tokio::client::{connect_with_options, ClientOptions, ProxySetting};

#[tokio::test(flavor = "current_thread")]
async fn proxy_from_the_environment() {
    let (server, seen) = scripted(|_| Reply::Upgrade);
    let (hp, hlog) = http_proxy(None);
    let (sp, slog) = socks5_proxy(None);
    let url = format!("ws://localhost:{}/env", server.port());
    let from_env = || ClientOptions::new().proxy(ProxySetting::FromEnv);
    for k in [
        "ws_proxy",
        "WS_PROXY",
        "http_proxy",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        std::env::remove_var(k);
    }
    // ws_proxy first.
    std::env::set_var("ws_proxy", format!("http://127.0.0.1:{}", hp.port()));
    std::env::set_var("all_proxy", format!("socks5://127.0.0.1:{}", sp.port()));
    connect_with_options(&url, from_env()).await.unwrap();
    assert_eq!(hlog.tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(slog.tunnels.load(Ordering::SeqCst), 0);
    // Then all_proxy.
    std::env::remove_var("ws_proxy");
    connect_with_options(&url, from_env()).await.unwrap();
    assert_eq!(slog.tunnels.load(Ordering::SeqCst), 1);
    // no_proxy exempts the host: direct.
    std::env::set_var("no_proxy", "example.org, localhost");
    connect_with_options(&url, from_env()).await.unwrap();
    assert_eq!(slog.tunnels.load(Ordering::SeqCst), 1);
    // Without FromEnv the environment is ignored.
    std::env::remove_var("no_proxy");
    connect_with_options(&url, ClientOptions::new())
        .await
        .unwrap();
    assert_eq!(slog.tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(hlog.tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().unwrap().len(), 4);
    std::env::remove_var("all_proxy");
}

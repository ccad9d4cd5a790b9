//! The `broadcast_smol` example runs: started as its own process on a free
//! loopback port and driven by three clients.

use smol::net::TcpStream;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};
use ws_async_std::{http, Config, Message, WebSocket};

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
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "-p", "ws-async-std", "--example", name]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "building example {name}");
    }
    path
}

/// The example's process, killed when the test ends (also on panic).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an example on port 0 and returns it with the address it printed.
fn start(name: &str, args: &[&str]) -> (Running, String) {
    let mut child = Command::new(example(name))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let running = Running(child);
    let line = lines.next().expect("no output").unwrap();
    let at = line.find("127.0.0.1:").expect(&line);
    let addr: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    // Keep draining stderr so the example never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (running, addr)
}

fn connect(addr: &str) -> WebSocket<TcpStream> {
    let req = http::Request::get(format!("ws://{addr}/"))
        .body(())
        .unwrap();
    smol::block_on(ws_async_std::smol::connect_with(req, Config::default()))
        .unwrap()
        .0
}

/// The next text message, within 20 s (a lost message fails instead of
/// hanging).
fn next_text(ws: &mut WebSocket<TcpStream>) -> String {
    smol::block_on(smol::future::or(
        async {
            loop {
                match ws.recv().await {
                    Some(Ok(Message::Text(t))) => return t.to_string(),
                    Some(Ok(_)) => continue,
                    other => panic!("expected text, got {other:?}"),
                }
            }
        },
        async {
            smol::Timer::after(Duration::from_secs(20)).await;
            panic!("no message within 20 s");
        },
    ))
}

fn send(ws: &mut WebSocket<TcpStream>, text: &str) {
    smol::block_on(ws.send(Message::text(text))).unwrap();
}

#[test]
fn broadcast_smol_example() {
    let (_server, addr) = start("broadcast_smol", &[]);
    let mut a = connect(&addr);
    let mut b = connect(&addr);
    let mut c = connect(&addr);
    // Wait until all three are tracked: c's message reaches a and b.
    send(&mut c, "c is here");
    assert_eq!(next_text(&mut a), "c is here");
    assert_eq!(next_text(&mut b), "c is here");
    send(&mut a, "from a");
    assert_eq!(next_text(&mut b), "from a");
    assert_eq!(next_text(&mut c), "from a");
    send(&mut b, "from b");
    // a's next message is b's: its own was not sent back to it.
    assert_eq!(next_text(&mut a), "from b");
    // A client that left is no longer sent to; the others still are.
    drop(c);
    send(&mut a, "after c");
    assert_eq!(next_text(&mut b), "after c");
}

#[test]
fn broadcast_smol_example_all() {
    let (_server, addr) = start("broadcast_smol", &["--all"]);
    let mut a = connect(&addr);
    let mut b = connect(&addr);
    // Wait until both are tracked: b's message reaches a.
    send(&mut b, "b is here");
    assert_eq!(next_text(&mut a), "b is here");
    assert_eq!(next_text(&mut b), "b is here");
    // With --all the sender gets its own message back.
    send(&mut a, "hello");
    assert_eq!(next_text(&mut a), "hello");
    assert_eq!(next_text(&mut b), "hello");
}

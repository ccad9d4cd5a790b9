//! A flood of connections that uses up a server's file descriptors must
//! not end its accept loop, nor make it spin (every adapter's `Server`,
//! the `accept_stream` helpers that the examples use, and the mio loop).
//!
//! Linux only: the servers run in a child process (this test binary run
//! again) whose open-file limit is lowered to 64 with `ulimit -n`, so that
//! the descriptors of the test's own process are not involved. The parent
//! floods each server with 150 raw TCP connections (the listen queues
//! take them, the server runs out of descriptors while accepting them),
//! checks that the child uses little CPU meanwhile, closes the flood and
//! then expects a WebSocket echo from that server within 10 s.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "WS_ACCEPT_EXHAUSTION_CHILD";
const TEST: &str = "servers_survive_running_out_of_file_descriptors";

#[test]
fn servers_survive_running_out_of_file_descriptors() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" --exact \"$1\" --nocapture --test-threads 1")
        .arg(&exe)
        .arg(TEST)
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let servers: Vec<(String, u16)> = loop {
        let line = lines
            .next()
            .expect("the child prints its ports")
            .expect("utf-8");
        // libtest prints the test's name on the same line.
        if let Some(at) = line.find("PORTS ") {
            break line[at + 6..]
                .split(' ')
                .map(|s| {
                    let (name, port) = s.split_once('=').unwrap();
                    (name.to_string(), port.parse().unwrap())
                })
                .collect();
        }
    };
    let mut failures = Vec::new();
    for (name, port) in &servers {
        if let Err(e) = flood_then_echo(pid, *port) {
            failures.push(format!("{name}: {e}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Floods the server on `port`, then expects it to serve a WebSocket.
fn flood_then_echo(pid: u32, port: u16) -> Result<(), String> {
    let addr = format!("127.0.0.1:{port}");
    let mut flood = Vec::new();
    for _ in 0..150 {
        match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)) {
            Ok(s) => flood.push(s),
            Err(_) => break, // the listen queue is full: flooded enough
        }
    }
    if flood.len() < 64 {
        return Err(format!("only {} connections opened", flood.len()));
    }
    // Let the server run into the limit, then measure it while it is
    // there: a loop that retried at once would use a whole core.
    std::thread::sleep(Duration::from_millis(300));
    let cpu0 = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(1));
    let cpu = cpu_time(pid) - cpu0;
    drop(flood);
    if cpu > Duration::from_millis(500) {
        return Err(format!("{cpu:?} of CPU in 1 s while out of descriptors"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match echo(&addr) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("no echo 10 s after the flood ended: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn echo(addr: &str) -> Result<(), String> {
    let (mut ws, _) = ws_blocking::connect(&format!("ws://{addr}/")).map_err(|e| e.to_string())?;
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    ws.send(ws_blocking::Message::text("still there?"))
        .map_err(|e| e.to_string())?;
    match ws.recv() {
        Some(Ok(ws_blocking::Message::Text(t))) if t == "still there?" => Ok(()),
        other => Err(format!("unexpected {other:?}")),
    }
}

/// User + system CPU time of a process, from /proc (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of the line; the name was field 2.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The child: one server of each kind, echoing, for at most 60 s.
fn child() {
    use ws_blocking::server::{Server as BlockingServer, ServerPolicy as BlockingPolicy};
    use ws_tokio::server::{Server as TokioServer, ServerPolicy as TokioPolicy};
    let mut ports = Vec::new();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(TokioServer::bind("127.0.0.1:0", TokioPolicy::new()))
        .unwrap();
    ports.push(format!(
        "tokio-Server={}",
        server.local_addr().unwrap().port()
    ));
    rt.spawn(async move {
        loop {
            match server.accept().await {
                Ok((ws, _)) => drop(tokio::spawn(echo_tokio(ws))),
                Err(e) => return eprintln!("tokio Server::accept ended: {e}"),
            }
        }
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    ports.push(format!(
        "tokio-accept_stream={}",
        listener.local_addr().unwrap().port()
    ));
    rt.spawn(async move {
        loop {
            let (tcp, _) = ws_tokio::accept_stream(&listener).await;
            tokio::spawn(async move {
                if let Ok(ws) = ws_tokio::accept(tcp).await {
                    echo_tokio(ws).await;
                }
            });
        }
    });

    let server = smol::block_on(ws_async_std::server::Server::bind(
        "127.0.0.1:0",
        ws_async_std::server::ServerPolicy::new(),
    ))
    .unwrap();
    ports.push(format!(
        "smol-Server={}",
        server.local_addr().unwrap().port()
    ));
    std::thread::spawn(move || {
        let ex = smol::LocalExecutor::new();
        smol::block_on(ex.run(async {
            loop {
                match server.accept().await {
                    Ok((mut ws, _)) => ex
                        .spawn(async move {
                            while let Some(Ok(m)) = ws.recv().await {
                                if m.is_data() && ws.send(m).await.is_err() {
                                    break;
                                }
                            }
                        })
                        .detach(),
                    Err(e) => return eprintln!("smol Server::accept ended: {e}"),
                }
            }
        }))
    });

    let server = BlockingServer::bind("127.0.0.1:0", BlockingPolicy::new()).unwrap();
    ports.push(format!(
        "blocking-Server={}",
        server.local_addr().unwrap().port()
    ));
    std::thread::spawn(move || loop {
        match server.accept() {
            Ok((mut reader, mut writer, _)) => drop(std::thread::spawn(move || {
                while let Some(Ok(m)) = reader.recv() {
                    if m.is_data() && writer.send(m).is_err() {
                        break;
                    }
                }
            })),
            Err(e) => return eprintln!("blocking Server::accept ended: {e}"),
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ports.push(format!(
        "blocking-accept_stream={}",
        listener.local_addr().unwrap().port()
    ));
    std::thread::spawn(move || loop {
        let (tcp, _) = ws_blocking::accept_stream(&listener);
        std::thread::spawn(move || {
            if let Ok(mut ws) = ws_blocking::accept(tcp) {
                while let Some(Ok(m)) = ws.recv() {
                    if m.is_data() && ws.send(m).is_err() {
                        break;
                    }
                }
            }
        });
    });

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut el = ws_mio::EventLoop::new().unwrap();
        let local = el
            .listen(([127, 0, 0, 1], 0).into(), ws_mio::Config::default())
            .unwrap();
        tx.send(local.port()).unwrap();
        if let Err(e) = el.run(&mut ws_mio::Echo) {
            eprintln!("mio event loop ended: {e}");
        }
    });
    ports.push(format!("mio-EventLoop={}", rx.recv().unwrap()));

    println!("PORTS {}", ports.join(" "));
    // The parent kills this process when it is done; if it does not, this
    // process ends by itself.
    std::thread::sleep(Duration::from_secs(60));
}

async fn echo_tokio(mut ws: ws_tokio::WebSocket<tokio::net::TcpStream>) {
    while let Some(Ok(m)) = ws.recv().await {
        if m.is_data() && ws.send(m).await.is_err() {
            break;
        }
    }
}

//! A blocking client whose server stopped reading: with an idle timeout
//! set, the heartbeat bounds each write on the client's stream (TCP and
//! Unix), so a `send` loop ends with an error instead of blocking forever.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use ws_blocking::client::{connect_with_options, ClientOptions, ClientStream};
use ws_blocking::{Config, Error, Message};

/// Reads the client's request, answers 101 and then reads nothing more.
/// Returns the stream so that the caller keeps it open.
fn silent_server<S: Read + Write>(mut s: S) -> S {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .expect("a Sec-WebSocket-Key");
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        ws_proto::accept_key(key.as_bytes())
    );
    s.write_all(reply.as_bytes()).unwrap();
    s
}

/// Connects to `url` with a 300 ms idle timeout and sends 256 KiB messages
/// in a thread until one fails; the error and the time taken, or a panic
/// when the loop is still blocked after 15 s.
fn send_until_error(url: String) -> (Error, Duration) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
        let options = ClientOptions::new().config(config);
        let (mut ws, _) = connect_with_options(&url, options).unwrap();
        let t0 = Instant::now();
        let chunk = Message::binary(vec![0x5a; 256 << 10]);
        for _ in 0..256 {
            if let Err(e) = ws.send(chunk.clone()) {
                let _ = tx.send(Ok((e, t0.elapsed())));
                return;
            }
        }
        let _ = tx.send(Err("64 MiB taken by a peer that reads nothing"));
    });
    match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(Ok(r)) => r,
        Ok(Err(msg)) => panic!("{msg}"),
        Err(_) => panic!("the client's send is still blocked after 15 s"),
    }
}

fn assert_timed_out(e: &Error, took: Duration) {
    match e {
        Error::Io(io) => assert!(
            matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            "{e}"
        ),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn tcp_client_send_to_a_silent_server_times_out() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (keep_tx, keep_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (tcp, _) = l.accept().unwrap();
        let _s = silent_server(tcp);
        let _ = keep_rx.recv_timeout(Duration::from_secs(30));
    });
    let (e, took) = send_until_error(format!("ws://{addr}/"));
    assert_timed_out(&e, took);
    drop(keep_tx);
}

#[cfg(unix)]
#[test]
fn unix_client_send_to_a_silent_server_times_out() {
    let dir = std::env::temp_dir().join(format!("ws-blocking-cwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let (keep_tx, keep_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let _s = silent_server(s);
        let _ = keep_rx.recv_timeout(Duration::from_secs(30));
    });
    let url = format!("ws+unix:{}:/", path.display());
    let (e, took) = send_until_error(url);
    assert_timed_out(&e, took);
    drop(keep_tx);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_stream_forwards_write_timeouts() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let (tcp, _) = l.accept().unwrap();
        let _s = silent_server(tcp);
        thread::sleep(Duration::from_secs(2));
    });
    let (ws, _) = connect_with_options(&format!("ws://{addr}/"), ClientOptions::new()).unwrap();
    let stream: &ClientStream = ws.get_ref();
    use ws_blocking::Transport;
    Transport::set_write_timeout(stream, Some(Duration::from_millis(700))).unwrap();
    assert_eq!(
        Transport::write_timeout(stream).unwrap(),
        Some(Duration::from_millis(700))
    );
}

//! The send buffer bound against a peer that stops reading, with the
//! cancel safety of `send` under each policy: a send cancelled while it
//! waits for room (Wait) was never queued; a refused send (Fail) returns at
//! once; nothing queued is lost or duplicated.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;
use ws_tokio::{Config, Error, Message, SendBufferPolicy, UsageError};

const BOUND: usize = 256 << 10;
const CHUNK: usize = 256 << 10;

/// A raw client: handshake, then nothing read until `go`; then every data
/// frame's tag (its first 4 bytes) until the close frame.
fn raw_client(addr: std::net::SocketAddr, go: mpsc::Receiver<()>) -> Vec<u32> {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    go.recv_timeout(Duration::from_secs(20)).unwrap();
    let mut tags = Vec::new();
    loop {
        let mut h = [0u8; 2];
        tcp.read_exact(&mut h).unwrap();
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                tcp.read_exact(&mut l).unwrap();
                u64::from(u16::from_be_bytes(l))
            }
            127 => {
                let mut l = [0u8; 8];
                tcp.read_exact(&mut l).unwrap();
                u64::from_be_bytes(l)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        tcp.read_exact(&mut payload).unwrap();
        if h[0] & 0x0f == 0x8 {
            return tags; // the close frame: dropping the socket ends it
        }
        tags.push(u32::from_be_bytes(payload[..4].try_into().unwrap()));
    }
}

fn tagged(tag: u32) -> Message {
    let mut v = vec![0x5a; CHUNK];
    v[..4].copy_from_slice(&tag.to_be_bytes());
    Message::binary(v)
}

async fn scenario(policy: SendBufferPolicy) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel();
    let peer = std::thread::spawn(move || raw_client(addr, go_rx));
    let (tcp, _) = listener.accept().await.unwrap();
    let config = Config::default()
        .max_send_buffer(BOUND)
        .send_buffer_policy(policy);
    let mut ws = ws_tokio::accept_with(tcp, config, |_| Ok(ws_tokio::Accept::new()))
        .await
        .unwrap();
    // Fill the socket buffers: sends that complete, until one does not
    // within a while (the peer reads nothing). Cancelled after its first
    // poll, that send's message stays queued and is sent later.
    let mut tag = 0u32;
    let mut sent = Vec::new();
    loop {
        assert!(tag < 400, "send never blocked");
        let r = tokio::time::timeout(Duration::from_millis(300), ws.send(tagged(tag))).await;
        sent.push(tag);
        tag += 1;
        match r {
            Ok(r) => r.unwrap(),
            Err(_) => break,
        }
    }
    // Then the queue past the bound with `feed` (which never waits).
    loop {
        match ws.feed(tagged(tag)) {
            Ok(()) => sent.push(tag),
            Err(Error::Usage(UsageError::SendBufferFull)) => break,
            Err(e) => panic!("{e}"),
        }
        tag += 1;
        assert!(tag < 400);
    }
    assert!(ws.buffered_amount() >= BOUND);
    let before = ws.buffered_amount();
    let refused = tag;
    match policy {
        SendBufferPolicy::Wait => {
            // The send waits for room; cancelled meanwhile, it queued nothing.
            let r =
                tokio::time::timeout(Duration::from_millis(300), ws.send(tagged(refused))).await;
            assert!(r.is_err(), "the send waited for room");
        }
        _ => {
            let r = tokio::time::timeout(Duration::from_secs(5), ws.send(tagged(refused)))
                .await
                .expect("a refused send returns at once");
            assert_eq!(r, Err(Error::Usage(UsageError::SendBufferFull)));
        }
    }
    assert_eq!(ws.buffered_amount(), before, "nothing was queued");
    // The peer reads again: a send now goes through (Wait: after the queue
    // is written out; Fail: after an explicit flush).
    go_tx.send(()).unwrap();
    if policy == SendBufferPolicy::Fail {
        ws.flush().await.unwrap();
    }
    let last = refused + 1;
    ws.send(tagged(last)).await.unwrap();
    sent.push(last);
    ws.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    while ws.recv().await.is_some() {}
    let got = peer.join().unwrap();
    assert_eq!(
        got, sent,
        "every queued message once, in order, without the refused one"
    );
}

#[tokio::test]
async fn wait_policy_against_a_peer_that_stops_reading() {
    scenario(SendBufferPolicy::Wait).await;
}

#[tokio::test]
async fn fail_policy_against_a_peer_that_stops_reading() {
    scenario(SendBufferPolicy::Fail).await;
}

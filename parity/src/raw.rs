//! A scripted peer on a plain `std::net::TcpStream`: it writes hand-built
//! frames (including ones no adapter would send) and reads back, frame by
//! frame, what the adapter under test writes.

use crate::obs::{Payload, Wire};
use crate::LIMIT;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

/// The masking key of the raw client's frames (RFC 6455 §5.7).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The client key of the raw client's upgrade request (RFC 6455 §1.3).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A frame to write, built by hand: any opcode, RSV bits and length.
#[derive(Debug, Clone)]
pub struct RawFrame {
    fin: bool,
    rsv: u8,
    op: u8,
    payload: Vec<u8>,
    /// `None`: masked when the raw peer is the client, as RFC 6455 says.
    masked: Option<bool>,
}

impl RawFrame {
    /// A final frame with opcode `op` (any 4-bit value).
    pub fn op(op: u8, payload: impl AsRef<[u8]>) -> Self {
        RawFrame {
            fin: true,
            rsv: 0,
            op,
            payload: payload.as_ref().to_vec(),
            masked: None,
        }
    }
    /// A text frame (the payload need not be UTF-8).
    pub fn text(payload: impl AsRef<[u8]>) -> Self {
        Self::op(0x1, payload)
    }
    /// A binary frame.
    pub fn binary(payload: impl AsRef<[u8]>) -> Self {
        Self::op(0x2, payload)
    }
    /// A continuation frame.
    pub fn cont(payload: impl AsRef<[u8]>) -> Self {
        Self::op(0x0, payload)
    }
    /// A ping.
    pub fn ping(payload: impl AsRef<[u8]>) -> Self {
        Self::op(0x9, payload)
    }
    /// A pong.
    pub fn pong(payload: impl AsRef<[u8]>) -> Self {
        Self::op(0xA, payload)
    }
    /// A close frame with a code and a reason.
    pub fn close(code: u16, reason: impl AsRef<[u8]>) -> Self {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason.as_ref());
        Self::op(0x8, p)
    }
    /// A close frame with this exact payload (empty: no status).
    pub fn close_raw(payload: impl AsRef<[u8]>) -> Self {
        Self::op(0x8, payload)
    }
    /// Sets the FIN bit.
    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }
    /// Sets the RSV bits (3 bits).
    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }
    /// Masks or not, whatever the role.
    pub fn masked(mut self, masked: bool) -> Self {
        self.masked = Some(masked);
        self
    }

    /// The bytes of this frame; `client` decides masking unless overridden.
    pub fn encode(&self, client: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 14);
        out.push((u8::from(self.fin) << 7) | ((self.rsv & 7) << 4) | (self.op & 0xf));
        let mbit = if self.masked.unwrap_or(client) {
            0x80
        } else {
            0
        };
        let len = self.payload.len();
        if len < 126 {
            out.push(mbit | len as u8);
        } else if len <= 0xffff {
            out.push(mbit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mbit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if mbit != 0 {
            out.extend_from_slice(&MASK);
            out.extend(
                self.payload
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ MASK[i % 4]),
            );
        } else {
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// Reads an HTTP head (through the blank line) byte by byte, so that
/// nothing after it is consumed. `None` on a clean EOF before any byte.
pub fn read_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut b) {
            Ok(0) if head.is_empty() => return None,
            Ok(0) => panic!("raw peer: EOF inside an HTTP head: {head:?}"),
            Ok(_) => head.push(b[0]),
            Err(e) => panic!("raw peer: reading an HTTP head: {e}"),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The value of header `name` in an HTTP head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The valid 101 answer to the request `head`, with `extra` header lines
/// (each ending in `\r\n`).
pub fn switching_protocols(head: &str, extra: &str) -> String {
    let key = header(head, "sec-websocket-key").expect("request has a key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        ws_proto::accept_key(key.as_bytes())
    )
}

/// A raw TCP connection with a timeout on every read.
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("raw peer: connect");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(LIMIT)).expect("read timeout");
    tcp
}

/// Accepts one raw TCP connection, with a timeout on every read.
pub fn tcp_accept(l: &TcpListener) -> TcpStream {
    let (tcp, _) = l.accept().expect("raw peer: accept");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(LIMIT)).expect("read timeout");
    tcp
}

/// A peer that speaks WebSocket by hand.
#[derive(Debug)]
pub struct RawPeer {
    tcp: TcpStream,
    /// The raw peer is the client: it masks, and expects unmasked frames.
    client: bool,
    buf: Vec<u8>,
    pos: usize,
}

impl RawPeer {
    /// Wraps a stream whose opening handshake is done.
    pub fn new(tcp: TcpStream, client: bool) -> Self {
        RawPeer {
            tcp,
            client,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Accepts one connection, reads its upgrade request and answers with
    /// a valid 101. Returns the peer and the request head.
    pub fn accept(l: &TcpListener) -> (RawPeer, String) {
        let mut tcp = tcp_accept(l);
        let head = read_head(&mut tcp).expect("an upgrade request");
        tcp.write_all(switching_protocols(&head, "").as_bytes())
            .expect("write 101");
        (RawPeer::new(tcp, false), head)
    }

    /// Connects and upgrades with a valid request (extra header lines in
    /// `extra`); panics unless the answer is a 101.
    pub fn connect(addr: SocketAddr, extra: &str) -> RawPeer {
        let mut tcp = tcp_connect(addr);
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        tcp.write_all(req.as_bytes()).expect("write request");
        let head = read_head(&mut tcp).expect("an upgrade response");
        assert!(head.starts_with("HTTP/1.1 101 "), "not upgraded: {head}");
        RawPeer::new(tcp, true)
    }

    /// The stream.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Writes one frame (masked when the raw peer is the client, unless the
    /// frame says otherwise).
    pub fn send(&mut self, f: RawFrame) {
        let b = f.encode(self.client);
        self.write(&b);
    }

    /// Writes several frames with one write.
    pub fn send_all(&mut self, frames: &[RawFrame]) {
        let b: Vec<u8> = frames.iter().flat_map(|f| f.encode(self.client)).collect();
        self.write(&b);
    }

    /// Writes raw bytes.
    pub fn write(&mut self, b: &[u8]) {
        self.tcp.write_all(b).expect("raw peer: write");
    }

    /// Shuts the write half (TCP FIN).
    pub fn shutdown_write(&self) {
        let _ = self.tcp.shutdown(Shutdown::Write);
    }

    /// Makes sure `n` bytes are buffered; `Err` with what ended the stream.
    fn fill(&mut self, n: usize) -> Result<(), Wire> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        while self.buf.len() - self.pos < n {
            match self.tcp.read(&mut chunk) {
                Ok(0) => return Err(Wire::Eof),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(Wire::Reset),
                Err(e) => panic!("raw peer: read failed (after {LIMIT:?} at most): {e}"),
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, Wire> {
        self.fill(n)?;
        let v = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(v)
    }

    /// Reads the next frame, or the end of the stream ([`Wire::Eof`],
    /// [`Wire::Reset`]). Panics if the frame is masked wrongly for its
    /// sender's role (RFC 6455 §5.1).
    pub fn read(&mut self) -> Wire {
        match self.read_frame() {
            Ok(w) | Err(w) => w,
        }
    }

    fn read_frame(&mut self) -> Result<Wire, Wire> {
        let h = self.take(2)?;
        let (fin, rsv, op) = (h[0] & 0x80 != 0, (h[0] >> 4) & 7, h[0] & 0xf);
        let masked = h[1] & 0x80 != 0;
        assert_eq!(
            masked,
            !self.client,
            "the adapter as {} sent a frame with the wrong masking",
            if self.client { "server" } else { "client" }
        );
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize,
            127 => u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")) as usize,
            n => n as usize,
        };
        let key = if masked { Some(self.take(4)?) } else { None };
        let mut payload = self.take(len)?;
        if let Some(k) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        Ok(if op == 0x8 && fin && rsv == 0 && payload.len() != 1 {
            if payload.is_empty() {
                Wire::Close(None)
            } else {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                Wire::Close(Some((
                    code,
                    String::from_utf8_lossy(&payload[2..]).into_owned(),
                )))
            }
        } else {
            Wire::Frame {
                fin,
                rsv,
                op,
                payload: Payload::of(&payload),
            }
        })
    }

    /// Reads frames up to and including the first close frame or the end of
    /// the stream.
    pub fn read_until_close(&mut self) -> Vec<Wire> {
        let mut out = Vec::new();
        loop {
            let w = self.read();
            let stop = matches!(w, Wire::Close(_) | Wire::Eof | Wire::Reset);
            out.push(w);
            if stop {
                return out;
            }
        }
    }

    /// Reads frames up to and including the end of the stream.
    pub fn read_to_end(&mut self) -> Vec<Wire> {
        let mut out = Vec::new();
        loop {
            let w = self.read();
            let stop = matches!(w, Wire::Eof | Wire::Reset);
            out.push(w);
            if stop {
                return out;
            }
        }
    }

    /// Ends the connection after both close frames were exchanged, as
    /// RFC 6455 §7.1.1 has it: a server shuts its write half first; a
    /// client waits for the server's. Returns what was read until the end of
    /// the stream.
    pub fn finish(&mut self) -> Vec<Wire> {
        if !self.client {
            self.shutdown_write();
        }
        self.read_to_end()
    }

    /// Answers a close frame from the adapter with `answer`, then ends the
    /// connection ([`finish`](Self::finish)).
    pub fn answer_close(&mut self, answer: RawFrame) -> Vec<Wire> {
        self.send(answer);
        self.finish()
    }
}

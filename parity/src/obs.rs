//! Observations: what a scenario saw, normalized so that transcripts from
//! different adapters compare with `==` and print readably.

use std::fmt;
use ws_proto::{CloseInfo, Error, Message};

/// Payloads up to this size are kept whole; longer ones are kept as a
/// length, a digest and their first bytes.
const KEEP: usize = 48;

/// A payload, normalized: short payloads whole, long ones as length, FNV-1a
/// digest and head. Two payloads are equal when their bytes are (up to the
/// digest, for long ones).
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    len: usize,
    digest: u64,
    head: Vec<u8>,
}

impl Payload {
    /// Normalizes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            digest ^= u64::from(b);
            digest = digest.wrapping_mul(0x0100_0000_01b3);
        }
        let keep = if bytes.len() <= KEEP { bytes.len() } else { 16 };
        Payload {
            len: bytes.len(),
            digest,
            head: bytes[..keep].to_vec(),
        }
    }

    /// The payload length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |f: &mut fmt::Formatter<'_>, b: &[u8]| match std::str::from_utf8(b) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "b\"{}\"", b.escape_ascii()),
        };
        if self.len <= KEEP {
            show(f, &self.head)
        } else {
            write!(f, "<{} bytes #{:016x} ", self.len, self.digest)?;
            show(f, &self.head)?;
            f.write_str("…>")
        }
    }
}

/// A message as `recv` yielded it, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A text message.
    Text(Payload),
    /// A binary message.
    Binary(Payload),
    /// A ping.
    Ping(Payload),
    /// A pong.
    Pong(Payload),
    /// The end of a clean close: the peer's code and reason, if it sent any.
    Close(Option<(u16, String)>),
}

impl Msg {
    /// Normalizes a message.
    pub fn of(m: &Message) -> Self {
        match m {
            Message::Text(t) => Msg::Text(Payload::of(t.as_bytes())),
            Message::Binary(b) => Msg::Binary(Payload::of(b)),
            Message::Ping(b) => Msg::Ping(Payload::of(b)),
            Message::Pong(b) => Msg::Pong(Payload::of(b)),
            Message::Close(f) => Msg::Close(f.as_ref().map(|f| (f.code.0, f.reason.clone()))),
        }
    }
}

/// A frame or event seen on the wire by a [`RawPeer`](crate::raw::RawPeer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// A data, ping or pong frame (a close frame whose payload does not
    /// parse also lands here).
    Frame {
        /// The FIN bit.
        fin: bool,
        /// The RSV bits.
        rsv: u8,
        /// The opcode.
        op: u8,
        /// The unmasked payload.
        payload: Payload,
    },
    /// A close frame: its code and reason, `None` for an empty body.
    Close(Option<(u16, String)>),
    /// The peer shut its write half (read returned 0).
    Eof,
    /// The connection was reset.
    Reset,
}

impl Wire {
    /// A final text frame.
    pub fn text(s: &str) -> Self {
        Wire::data(0x1, s.as_bytes())
    }
    /// A final binary frame.
    pub fn binary(b: &[u8]) -> Self {
        Wire::data(0x2, b)
    }
    /// A final frame with opcode `op`.
    pub fn data(op: u8, b: &[u8]) -> Self {
        Wire::Frame {
            fin: true,
            rsv: 0,
            op,
            payload: Payload::of(b),
        }
    }
    /// A ping frame.
    pub fn ping(b: &[u8]) -> Self {
        Wire::data(0x9, b)
    }
    /// A pong frame.
    pub fn pong(b: &[u8]) -> Self {
        Wire::data(0xA, b)
    }
    /// A close frame with a code and reason.
    pub fn close(code: u16, reason: &str) -> Self {
        Wire::Close(Some((code, reason.to_string())))
    }
}

/// One observation of a scenario: the transcript of a run is a `Vec<Obs>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obs {
    /// The client handshake finished: `Ok` with the subprotocol the server
    /// chose, if any.
    Connected(Result<Option<String>, Error>),
    /// The server handshake finished.
    Accepted(Result<(), Error>),
    /// What `recv` yielded.
    Recv(Result<Msg, Error>),
    /// `recv` returned `None`.
    End,
    /// What `send` returned.
    Sent(Result<(), Error>),
    /// What `close` returned.
    Closed(Result<(), Error>),
    /// What `close_info` returned.
    Info(Option<CloseInfo>),
    /// What `buffered_amount` returned.
    Buffered(usize),
    /// Something a raw peer saw on the wire.
    Wire(Wire),
    /// A fact the scenario checked in its own way (a count, a bound, a
    /// header), stated so that it reads the same for every adapter.
    Note(String),
}

impl Obs {
    /// Normalizes what `recv` returned.
    pub fn recv(r: Option<Result<Message, Error>>) -> Self {
        match r {
            None => Obs::End,
            Some(r) => Obs::Recv(r.as_ref().map(Msg::of).map_err(Clone::clone)),
        }
    }

    /// `recv` yielded a text message.
    pub fn text(s: &str) -> Self {
        Obs::Recv(Ok(Msg::Text(Payload::of(s.as_bytes()))))
    }
    /// `recv` yielded a binary message.
    pub fn binary(b: &[u8]) -> Self {
        Obs::Recv(Ok(Msg::Binary(Payload::of(b))))
    }
    /// `recv` yielded a ping.
    pub fn ping(b: &[u8]) -> Self {
        Obs::Recv(Ok(Msg::Ping(Payload::of(b))))
    }
    /// `recv` yielded a pong.
    pub fn pong(b: &[u8]) -> Self {
        Obs::Recv(Ok(Msg::Pong(Payload::of(b))))
    }
    /// `recv` yielded the end of a clean close with this frame.
    pub fn close(code: u16, reason: &str) -> Self {
        Obs::Recv(Ok(Msg::Close(Some((code, reason.to_string())))))
    }
    /// `recv` yielded an error.
    pub fn err(e: impl Into<Error>) -> Self {
        Obs::Recv(Err(e.into()))
    }
    /// A note.
    pub fn note(s: impl Into<String>) -> Self {
        Obs::Note(s.into())
    }
}

impl From<Wire> for Obs {
    fn from(w: Wire) -> Self {
        Obs::Wire(w)
    }
}

//! Messages built once and sent on many connections (broadcast).

use crate::connection::DataKind;
use crate::deflate::{compress_standalone, DeflateConfig};
use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::message::Utf8Bytes;
use bytes::Bytes;

/// RSV1: "Per-Message Compressed" (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// An unmasked frame: its header bytes and its payload (shared).
#[derive(Debug, Clone)]
pub(crate) struct PreparedFrame {
    pub(crate) header: [u8; MAX_HEADER_LEN],
    pub(crate) header_len: u8,
    pub(crate) payload: Bytes,
}

impl PreparedFrame {
    fn new(opcode: OpCode, rsv: u8, payload: Bytes) -> Self {
        let h = FrameHeader {
            fin: true,
            rsv,
            opcode,
            mask: None,
            len: payload.len() as u64,
        };
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut header);
        PreparedFrame {
            header,
            header_len: n as u8,
            payload,
        }
    }

    pub(crate) fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }
}

/// A data message encoded once, to be queued on many server-side
/// connections without encoding it again: a broadcast.
///
/// Each connection gets the same frame: the header is copied (at most 10
/// bytes) and the payload is shared (`Bytes`, reference-counted; payloads
/// of 4 KiB and more are never copied into the connection's queue).
/// Server frames are unmasked, which is what makes this possible; a client
/// must mask every frame with a fresh key, so
/// [`Connection::send_prepared`](crate::Connection::send_prepared) refuses
/// a client-side connection with
/// [`UsageError::ServerOnly`](crate::UsageError::ServerOnly).
///
/// # Compression
///
/// [`with_deflate`](Self::with_deflate) also compresses the message once,
/// with an empty history (as with `server_no_context_takeover`) and a
/// window of [`DeflateConfig::server_max_window_bits`] bits. A connection
/// that negotiated permessage-deflate with a window at least that large
/// sends these compressed bytes as they are: the peer can inflate a
/// message that refers to nothing before it, and the connection's own
/// compressor forgets its history (keeping its memory) so that its next
/// message does not refer back across text it never saw. A connection
/// whose negotiated window is smaller compresses the message itself, and
/// a connection without permessage-deflate sends it uncompressed. A
/// prepared message built without `with_deflate` is sent uncompressed
/// everywhere.
///
/// ```
/// use ws_proto::{Config, Connection, PreparedMessage};
/// let msg = PreparedMessage::text("to everyone");
/// let mut clients: Vec<Connection> =
///     (0..3).map(|_| Connection::server(Config::default())).collect();
/// for c in &mut clients {
///     c.send_prepared(&msg)?;
/// }
/// # Ok::<(), ws_proto::UsageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    kind: DataKind,
    plain: PreparedFrame,
    /// The compressed frame and the window (bits) it was compressed with.
    compressed: Option<(u8, PreparedFrame)>,
}

impl PreparedMessage {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::new(DataKind::Text, text.into().into_bytes())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::new(DataKind::Binary, data.into())
    }

    fn new(kind: DataKind, payload: Bytes) -> Self {
        PreparedMessage {
            kind,
            plain: PreparedFrame::new(opcode(kind), 0, payload),
            compressed: None,
        }
    }

    /// Compresses the message once for connections with permessage-deflate
    /// (see the type's documentation), with `config`'s level and
    /// `server_max_window_bits`. Messages shorter than `config.threshold`
    /// stay uncompressed, as with a normal send.
    pub fn with_deflate(mut self, config: &DeflateConfig) -> Self {
        let payload = &self.plain.payload;
        if payload.len() < config.threshold {
            self.compressed = None;
            return self;
        }
        let bits = config.server_max_window_bits.clamp(8, 15);
        let z = compress_standalone(config.level, bits, payload);
        self.compressed = Some((bits, PreparedFrame::new(opcode(self.kind), RSV1, z)));
        self
    }

    /// The kind of the message.
    pub fn kind(&self) -> DataKind {
        self.kind
    }

    /// The (uncompressed) payload.
    pub fn payload(&self) -> &Bytes {
        &self.plain.payload
    }

    /// Whether a compressed form was built (by [`with_deflate`](Self::with_deflate)).
    pub fn is_compressed(&self) -> bool {
        self.compressed.is_some()
    }

    pub(crate) fn plain(&self) -> &PreparedFrame {
        &self.plain
    }

    /// The compressed frame, if one was built for a window of at most
    /// `window_bits`.
    pub(crate) fn compressed_for(&self, window_bits: u8) -> Option<&PreparedFrame> {
        match &self.compressed {
            Some((bits, f)) if *bits <= window_bits => Some(f),
            _ => None,
        }
    }
}

fn opcode(kind: DataKind) -> OpCode {
    match kind {
        DataKind::Text => OpCode::Text,
        DataKind::Binary => OpCode::Binary,
    }
}

//! Error types, named by whose fault they are.

use crate::close::{CloseCode, CloseFrame};
use crate::connection::CloseInfo;
use std::fmt;
use std::sync::Arc;

/// The peer broke the protocol. The connection is failed with the close code
/// given by [`ProtocolError::close_code`], the one mapping from protocol
/// errors to close codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reserved bit (RSV1–3) was set without an extension that defines
    /// it: RSV1 means "compressed" only with permessage-deflate negotiated,
    /// and only on the first frame of a data message (RFC 7692 §6).
    ReservedBits,
    /// A reserved opcode (3–7, 0xB–0xF).
    ReservedOpcode(u8),
    /// A client sent an unmasked frame (RFC 6455 §5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1).
    MaskedFrame,
    /// A control frame with a payload over 125 bytes (RFC 6455 §5.5).
    ControlFrameTooLong,
    /// A fragmented control frame (RFC 6455 §5.5).
    FragmentedControlFrame,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new data frame while a fragmented message was in progress.
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set (RFC 6455 §5.2).
    InvalidLength,
    /// A text message (or close reason) that is not valid UTF-8.
    InvalidUtf8,
    /// A close frame with a 1-byte payload.
    InvalidCloseFrame,
    /// A close frame with a code that may not be sent on the wire.
    InvalidCloseCode(u16),
    /// A frame larger than the configured limit.
    FrameTooLarge,
    /// A message larger than the configured limit.
    MessageTooLarge,
    /// A message split into more fragments than the configured limit.
    TooManyFragments,
    /// Data after the peer's close frame.
    DataAfterClose,
    /// A compressed message that is not a valid DEFLATE stream (RFC 7692
    /// §7.2.2).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code sent to the peer when the connection fails with this
    /// error.
    pub fn close_code(self) -> CloseCode {
        use ProtocolError::*;
        match self {
            InvalidUtf8 | InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            FrameTooLarge | MessageTooLarge | TooManyFragments => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProtocolError::*;
        match self {
            ReservedBits => f.write_str("reserved bits set"),
            ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            UnmaskedFrame => f.write_str("unmasked frame from client"),
            MaskedFrame => f.write_str("masked frame from server"),
            ControlFrameTooLong => f.write_str("control frame payload over 125 bytes"),
            FragmentedControlFrame => f.write_str("fragmented control frame"),
            UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            ExpectedContinuation => f.write_str("new data frame inside a fragmented message"),
            InvalidLength => f.write_str("invalid 64-bit payload length"),
            InvalidUtf8 => f.write_str("invalid UTF-8 in text"),
            InvalidCloseFrame => f.write_str("close frame with a 1-byte payload"),
            InvalidCloseCode(c) => write!(f, "invalid close code {c}"),
            FrameTooLarge => f.write_str("frame exceeds the size limit"),
            MessageTooLarge => f.write_str("message exceeds the size limit"),
            TooManyFragments => f.write_str("message exceeds the fragment limit"),
            DataAfterClose => f.write_str("data after the close frame"),
            InvalidCompressedData => f.write_str("invalid compressed data"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The caller used the API wrongly. The connection state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// Sending after the close handshake started or the connection closed.
    Closed,
    /// A control frame payload (ping, pong, close reason + 2) over 125 bytes.
    ControlPayloadTooLong,
    /// A close code that may not be sent on the wire (e.g. 1005, 1006).
    InvalidCloseCode(u16),
    /// A whole message sent while a fragmented message is in progress.
    FragmentedMessageInProgress,
    /// A fragment whose kind differs from the message in progress.
    FragmentKindMismatch,
    /// Text that is not valid UTF-8.
    InvalidUtf8,
    /// A client request that cannot be sent (no host, bad header value,
    /// unsupported version).
    InvalidRequest,
    /// The handshake was used before it completed.
    HandshakeIncomplete,
    /// A subprotocol the client did not offer was chosen.
    ProtocolNotOffered,
    /// A URL (of a WebSocket server or of a proxy) that cannot be used; the
    /// text says why.
    InvalidUrl(&'static str),
    /// The send queue holds more than [`Config::max_send_buffer`](crate::Config::max_send_buffer)
    /// would allow with this message; nothing was queued. Write what is
    /// queued (or wait for it to drain) and try again.
    SendBufferFull,
    /// A [`PreparedMessage`](crate::PreparedMessage) holds an unmasked
    /// server frame: only a server-side connection can send it (a client
    /// must mask every frame with a fresh key).
    ServerOnly,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UsageError::*;
        match self {
            Closed => f.write_str("the connection is closing or closed"),
            ControlPayloadTooLong => f.write_str("control frame payload over 125 bytes"),
            InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            FragmentedMessageInProgress => f.write_str("a fragmented message is in progress"),
            FragmentKindMismatch => {
                f.write_str("fragment kind differs from the message in progress")
            }
            InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            InvalidRequest => f.write_str("invalid client request"),
            HandshakeIncomplete => f.write_str("the handshake has not completed"),
            ProtocolNotOffered => f.write_str("the client did not offer that subprotocol"),
            InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            SendBufferFull => f.write_str("the send buffer is full"),
            ServerOnly => f.write_str("prepared messages can only be sent by a server"),
        }
    }
}

impl std::error::Error for UsageError {}

/// The opening handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The HTTP message could not be parsed.
    Malformed(String),
    /// The HTTP head is larger than the configured limit.
    TooLarge,
    /// More headers than the configured limit.
    TooManyHeaders,
    /// The request is not a valid WebSocket upgrade (server side); the text
    /// says which rule it breaks.
    BadRequest(String),
    /// The client asked for a WebSocket version we do not speak.
    UnsupportedVersion(String),
    /// The server answered with a status other than 101.
    UnexpectedStatus {
        /// The status code.
        status: u16,
        /// The response headers.
        headers: Vec<(String, Vec<u8>)>,
        /// The body bytes received with the head (possibly incomplete).
        body: Vec<u8>,
    },
    /// The 101 response does not complete a valid upgrade; the text says why.
    BadResponse(String),
    /// The handshake did not finish in time.
    Timeout,
    /// The connection ended before the handshake finished.
    Eof,
    /// The server rejected the request (the response was written).
    Rejected(u16),
    /// More redirects than the client's `max_redirects` (the number).
    TooManyRedirects(usize),
    /// A redirect whose `Location` cannot be followed; the text says why.
    BadRedirect(String),
    /// The proxy did not open the tunnel (an HTTP CONNECT status other than
    /// 2xx, a SOCKS5 failure reply, a malformed answer); the text says why.
    Proxy(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HandshakeError::*;
        match self {
            Malformed(s) => write!(f, "malformed HTTP: {s}"),
            TooLarge => f.write_str("handshake too large"),
            TooManyHeaders => f.write_str("too many headers"),
            BadRequest(s) => write!(f, "bad upgrade request: {s}"),
            UnsupportedVersion(v) => write!(f, "unsupported WebSocket version {v:?}"),
            UnexpectedStatus { status, .. } => write!(f, "unexpected HTTP status {status}"),
            BadResponse(s) => write!(f, "bad upgrade response: {s}"),
            Timeout => f.write_str("handshake timed out"),
            Eof => f.write_str("connection closed during the handshake"),
            Rejected(s) => write!(f, "request rejected with status {s}"),
            TooManyRedirects(n) => write!(f, "more than {n} redirects"),
            BadRedirect(s) => write!(f, "bad redirect: {s}"),
            Proxy(s) => write!(f, "proxy: {s}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The error type shared by every adapter.
///
/// A normal close is never an error: adapters end their message streams
/// cleanly instead. Everything else lands here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol; the connection was failed with the
    /// matching close code.
    Protocol(ProtocolError),
    /// The caller misused the API.
    Usage(UsageError),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The transport failed.
    Io(IoError),
    /// The connection ended abnormally (no close handshake, a timeout, or
    /// after an earlier error); the details say how.
    Closed(Box<CloseInfo>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Usage(e) => write!(f, "usage error: {e}"),
            Error::Handshake(e) => write!(f, "handshake error: {e}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Closed(info) => write!(f, "connection closed: {info}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            Error::Usage(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Io(e) => Some(&*e.0),
            Error::Closed(_) => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}
impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}
impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(IoError(Arc::new(e)))
    }
}

/// A shared, cloneable `std::io::Error`; equality compares the error kind.
#[derive(Debug, Clone)]
pub struct IoError(pub Arc<std::io::Error>);

impl IoError {
    /// The kind of the underlying error.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.0.kind()
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind()
    }
}
impl Eq for IoError {}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Used by the close-frame helpers; kept here so the error module is the one
/// place that knows about codes.
pub(crate) fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    // RFC 6455 §5.5.1: empty, or a 2-byte code followed by a UTF-8 reason.
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::InvalidCloseFrame),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !CloseCode(code).is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason = simdutf8::basic::from_utf8(&payload[2..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame::new(code, reason)))
        }
    }
}

//! The server's answer to an upgrade request, shared by every adapter.

use crate::connection::Connection;
use crate::error::{Error, UsageError};
use crate::handshake::{http_status_response, ServerHandshake};
use http::HeaderMap;
use std::fmt;
use std::time::Instant;

/// Accept an upgrade request: optionally pick a subprotocol and add
/// response headers.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    /// The subprotocol to answer with; must be one the client offered.
    pub protocol: Option<String>,
    /// Extra response headers (cookies, ...).
    pub headers: HeaderMap,
}

impl Accept {
    /// Accept with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers with the subprotocol `p`.
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocol = Some(p.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// Reject an upgrade request with an HTTP response.
#[derive(Debug, Clone)]
pub struct Reject {
    /// The HTTP status (e.g. 401, 403, 404).
    pub status: u16,
    /// Extra response headers (boxed to keep `Result<Accept, Reject>` small).
    pub headers: Box<HeaderMap>,
    /// The response body.
    pub body: Vec<u8>,
}

impl Reject {
    /// A rejection with `status` and an empty body.
    pub fn new(status: u16) -> Self {
        Reject {
            status,
            headers: Box::default(),
            body: Vec::new(),
        }
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The rejection as the bytes of an HTTP/1.1 response: status line,
    /// headers, `content-length` and `connection: close` (unless the
    /// headers have them), body. What an adapter writes before closing a
    /// stream whose request it refuses; [`ServerHandshake::reject`] queues
    /// the same bytes.
    ///
    /// ```
    /// let r = ws_proto::Reject::new(404).body("no such endpoint");
    /// let text = String::from_utf8(r.to_http()).unwrap();
    /// assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
    /// assert!(text.contains("content-length: 16\r\n"));
    /// assert!(text.ends_with("\r\n\r\nno such endpoint"));
    /// ```
    pub fn to_http(&self) -> Vec<u8> {
        http_status_response(self.status, &self.headers, &self.body)
    }
}

/// A decision [`ServerHandshake::decide`] cannot carry out (a usage
/// error of the server's code, such as a subprotocol the client did not
/// offer), with the handshake handed back as it was, so that the request
/// still gets an answer.
///
/// The usual answer is [`refuse`](Self::refuse): 500 Internal Server Error,
/// since the mistake is the server's, not the client's. The handshake can
/// also be [rejected](ServerHandshake::reject) otherwise or accepted with
/// a valid choice. It converts into [`Error::Usage`].
#[derive(Debug)]
pub struct DecideError {
    /// What was wrong with the decision.
    pub error: UsageError,
    /// The handshake, unchanged: nothing was queued and nothing consumed.
    pub handshake: Box<ServerHandshake>,
}

impl DecideError {
    /// Answers the request with `500 Internal Server Error` (no body): the
    /// response is queued in the handshake's
    /// [`poll_transmit`](ServerHandshake::poll_transmit); write it out,
    /// then close, as after a rejection.
    pub fn refuse(&mut self) {
        self.handshake.reject(500, &HeaderMap::new(), b"");
    }
}

impl fmt::Display for DecideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the upgrade decision cannot be applied: {}", self.error)
    }
}

impl std::error::Error for DecideError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<DecideError> for Error {
    fn from(e: DecideError) -> Self {
        Error::Usage(e.error)
    }
}

impl ServerHandshake {
    /// Applies a decision: `Ok(Ok(connection))` when accepted (the 101
    /// response is the first thing its `poll_transmit` hands out),
    /// `Ok(Err(handshake))` when rejected (write out this handshake's
    /// `poll_transmit`, then close).
    ///
    /// `Err` is a usage error of [`ServerHandshake::try_accept`] (e.g. a
    /// subprotocol that was not offered): the [`DecideError`] hands the
    /// handshake back unchanged, so the request still gets an answer
    /// (usually [`DecideError::refuse`]: a 500).
    ///
    /// ```
    /// # use std::time::Instant;
    /// use ws_proto::{Accept, Config, ServerHandshake, Transmit, UsageError};
    /// let now = Instant::now();
    /// let mut hs = ServerHandshake::new(now, Config::default());
    /// let req = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    ///             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    ///             Sec-WebSocket-Protocol: chat\r\n\r\n";
    /// hs.handle_input(req).unwrap().unwrap();
    /// // The server's code picks a subprotocol the client did not offer.
    /// let mut e = hs.decide(now, Ok(Accept::new().protocol("mqtt"))).unwrap_err();
    /// assert_eq!(e.error, UsageError::ProtocolNotOffered);
    /// e.refuse();
    /// let mut out = Vec::new();
    /// while let Some(Transmit::Data) = e.handshake.poll_transmit(&mut out) {}
    /// assert!(out.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
    /// ```
    pub fn decide(
        mut self,
        now: Instant,
        decision: Result<Accept, Reject>,
    ) -> Result<Result<Connection, ServerHandshake>, DecideError> {
        match decision {
            // `try_accept` leaves the handshake as it was on a usage error.
            Ok(a) => match self.try_accept(now, a.protocol.as_deref(), &a.headers) {
                Ok(conn) => Ok(Ok(conn)),
                Err(error) => Err(DecideError {
                    error,
                    handshake: Box::new(self),
                }),
            },
            Err(r) => {
                self.reject(r.status, &r.headers, &r.body);
                Ok(Err(self))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Transmit};

    const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\n\r\n";

    fn ready(now: Instant) -> ServerHandshake {
        let mut hs = ServerHandshake::new(now, Config::default());
        hs.handle_input(REQUEST).unwrap().expect("a whole request");
        hs
    }

    fn output(hs: &mut ServerHandshake) -> (String, bool) {
        let mut out = Vec::new();
        let mut shutdown = false;
        while let Some(t) = hs.poll_transmit(&mut out) {
            if t == Transmit::Shutdown {
                shutdown = true;
                break;
            }
        }
        (String::from_utf8(out).unwrap(), shutdown)
    }

    fn unoffered(now: Instant) -> DecideError {
        match ready(now).decide(now, Ok(Accept::new().protocol("c"))) {
            Err(e) => e,
            Ok(_) => panic!("accepted a subprotocol the client did not offer"),
        }
    }

    #[test]
    fn unoffered_protocol_hands_the_handshake_back_untouched() {
        let now = Instant::now();
        let mut e = unoffered(now);
        assert_eq!(e.error, UsageError::ProtocolNotOffered);
        // Nothing was queued.
        assert_eq!(output(&mut e.handshake), (String::new(), false));
        assert_eq!(Error::from(e), Error::Usage(UsageError::ProtocolNotOffered));
    }

    #[test]
    fn refuse_answers_500_then_shuts_down() {
        let now = Instant::now();
        let mut e = unoffered(now);
        e.refuse();
        let (text, shutdown) = output(&mut e.handshake);
        assert!(
            text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        assert!(shutdown);
    }

    #[test]
    fn handed_back_handshake_can_be_rejected_or_accepted() {
        let now = Instant::now();
        let mut e = unoffered(now);
        e.handshake.reject(403, &HeaderMap::new(), b"no");
        let (text, shutdown) = output(&mut e.handshake);
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nno"), "{text}");
        assert!(shutdown);

        // Or decided again, validly.
        let e = unoffered(now);
        let Ok(Ok(mut conn)) = e.handshake.decide(now, Ok(Accept::new().protocol("b"))) else {
            panic!("a valid second decision is accepted");
        };
        let mut out = Vec::new();
        let _ = conn.poll_transmit(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
        assert!(text.contains("Sec-WebSocket-Protocol: b\r\n"), "{text}");
    }

    #[test]
    fn decide_before_the_request_is_incomplete() {
        let now = Instant::now();
        let hs = ServerHandshake::new(now, Config::default());
        let mut e = match hs.decide(now, Ok(Accept::new())) {
            Err(e) => e,
            Ok(_) => panic!("decided without a request"),
        };
        assert_eq!(e.error, UsageError::HandshakeIncomplete);
        e.refuse();
        assert!(output(&mut e.handshake).0.starts_with("HTTP/1.1 500 "));
    }
}

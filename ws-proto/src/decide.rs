//! The server's answer to an upgrade request, shared by every adapter.

use crate::connection::Connection;
use crate::error::UsageError;
use crate::handshake::ServerHandshake;
use http::HeaderMap;
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
}

impl ServerHandshake {
    /// Applies a decision: `Ok(Ok(connection))` when accepted (the 101
    /// response is the first thing its `poll_transmit` hands out),
    /// `Ok(Err(handshake))` when rejected (write out this handshake's
    /// `poll_transmit`, then close). `Err` is a usage error of
    /// [`ServerHandshake::accept`] (e.g. a subprotocol that was not offered).
    pub fn decide(
        mut self,
        now: Instant,
        decision: Result<Accept, Reject>,
    ) -> Result<Result<Connection, ServerHandshake>, UsageError> {
        match decision {
            Ok(a) => self.accept(now, a.protocol.as_deref(), &a.headers).map(Ok),
            Err(r) => {
                self.reject(r.status, &r.headers, &r.body);
                Ok(Err(self))
            }
        }
    }
}

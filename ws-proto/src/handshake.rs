//! The opening handshake (RFC 6455 §4), client and server, sans-IO.

use crate::config::Config;
use crate::connection::{Connection, Role, Transmit};
use crate::deflate::DeflateParams;
use crate::error::{HandshakeError, UsageError};
use crate::rng::Rng;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use sha1::{Digest, Sha1};
use std::sync::Arc;
use std::time::Instant;

/// The GUID of RFC 6455 §1.3.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The WebSocket versions a server accepts: 13 (RFC 6455) and 8 (HyBi
/// drafts 07–12).
pub const SUPPORTED_VERSIONS: &str = "13, 8";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §1.3).
///
/// ```
/// assert_eq!(
///     ws_proto::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    BASE64.encode(h.finalize())
}

/// Finds the end of an HTTP head, the first empty line, in `buf`,
/// resuming at `*scan` so that a head dribbled in byte by byte costs linear
/// time in total. Lines end with CRLF or, as RFC 9112 §2.2 allows a
/// recipient to accept, a bare LF (httparse parses both): a head that ends
/// `\n\n` is answered at once instead of waiting for the timeout.
pub(crate) fn find_head_end(buf: &[u8], scan: &mut usize) -> Option<usize> {
    // The longest terminator, `\n\r\n`, may have started in the last two
    // bytes seen.
    let mut at = scan.saturating_sub(2);
    while let Some(p) = buf[at..].iter().position(|&b| b == b'\n') {
        let lf = at + p;
        match &buf[lf + 1..] {
            [b'\n', ..] => return Some(lf + 2),
            [b'\r', b'\n', ..] => return Some(lf + 3),
            _ => at = lf + 1,
        }
    }
    *scan = buf.len();
    None
}

/// Whether a comma-separated header contains `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// The comma-separated tokens of every instance of a header.
fn tokens(headers: &HeaderMap, name: HeaderName) -> Vec<String> {
    let mut out = Vec::new();
    for v in headers.get_all(name).iter() {
        if let Ok(s) = v.to_str() {
            out.extend(
                s.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            );
        }
    }
    out
}

fn to_header_map(raw: &[httparse::Header<'_>]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(raw.len());
    for h in raw {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_bytes(h.value).map_err(|e| e.to_string())?;
        map.append(name, value);
    }
    Ok(map)
}

/// A request head parsed by httparse as an `http::Request`: method,
/// target, version and headers as sent. Errors say what `http` refused.
pub(crate) fn to_http_request(
    req: &httparse::Request<'_, '_>,
) -> Result<http::Request<()>, String> {
    let mut request = http::Request::builder()
        .method(req.method.unwrap_or("GET"))
        .uri(req.path.unwrap_or("/"))
        .version(if req.version == Some(0) {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        })
        .body(())
        .map_err(|e| e.to_string())?;
    *request.headers_mut() = to_header_map(req.headers)?;
    Ok(request)
}

fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// An HTTP/1.1 response with `status` (and its reason phrase), `headers`,
/// `content-length` and `connection: close` unless `headers` has them, and
/// `body`.
pub(crate) fn http_status_response(status: u16, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let reason = reason_phrase(status);
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    write_headers(&mut out, headers);
    if !headers.contains_key(header::CONTENT_LENGTH) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    if !headers.contains_key(header::CONNECTION) {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// The rules every opening handshake request follows (RFC 6455 §4.2.1,
/// RFC 9112 §3.2), checked in one place for the core's own parser
/// ([`ServerHandshake`]) and for requests another HTTP server parsed
/// ([`ServerPolicy::upgrade`](crate::server::ServerPolicy::upgrade)).
/// Returns the client's `Sec-WebSocket-Key`, or the status to refuse the
/// request with (400, 405 or 426; see [`refusal_headers`]) and why.
pub(crate) fn check_request<B>(req: &http::Request<B>) -> Result<String, (u16, HandshakeError)> {
    let bad = |s: &str| (400, HandshakeError::BadRequest(s.to_string()));
    if req.method() != http::Method::GET {
        return Err((405, HandshakeError::BadRequest("method is not GET".into())));
    }
    if req.version() != http::Version::HTTP_11 {
        return Err(bad("HTTP version is not 1.1"));
    }
    let h = req.headers();
    // RFC 9112 §3.2: a request without Host, or with more than one, is
    // answered 400, whatever its target.
    if h.get_all(header::HOST).iter().count() != 1 {
        return Err(bad("missing or repeated Host"));
    }
    // RFC 9112 §3.2: a GET names a resource in origin form (`/chat`) or
    // absolute form (`ws://host/chat`); `*` and a bare authority are for
    // OPTIONS and CONNECT.
    if req.uri().scheme().is_none() && !req.uri().path().starts_with('/') {
        return Err(bad("request target is not a path"));
    }
    if !has_token(h, header::UPGRADE, "websocket") {
        return Err(bad("missing `Upgrade: websocket`"));
    }
    if !has_token(h, header::CONNECTION, "upgrade") {
        return Err(bad("missing `Connection: Upgrade`"));
    }
    match h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) {
        Some(b"13") | Some(b"8") => {}
        Some(v) => {
            return Err((
                426,
                HandshakeError::UnsupportedVersion(String::from_utf8_lossy(v).into_owned()),
            ))
        }
        None => return Err(bad("missing Sec-WebSocket-Version")),
    }
    let mut keys = h.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k,
        _ => return Err(bad("missing or repeated Sec-WebSocket-Key")),
    };
    match BASE64.decode(key.as_bytes()) {
        // Base64 text is ASCII: `to_str` cannot fail here.
        Ok(n) if n.len() == 16 => key
            .to_str()
            .map(String::from)
            .map_err(|_| bad("bad Sec-WebSocket-Key")),
        _ => Err(bad("Sec-WebSocket-Key is not 16 bytes in base64")),
    }
}

/// The headers a refusal with `status` carries: `Allow: GET` with 405
/// (RFC 9110 §15.5.6), the supported versions with 426 (RFC 6455 §4.4).
pub(crate) fn refusal_headers(status: u16) -> HeaderMap {
    let mut headers = HeaderMap::new();
    match status {
        405 => {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        426 => {
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static(SUPPORTED_VERSIONS),
            );
        }
        _ => {}
    }
    headers
}

// ---------------------------------------------------------------- client --

/// The client side of the opening handshake.
///
/// ```
/// # use std::time::Instant;
/// use ws_proto::{ClientHandshake, Config};
/// let req = http::Request::get("ws://example.com/chat").body(()).unwrap();
/// let mut hs = ClientHandshake::new(Instant::now(), req, Config::default(), [7; 32]).unwrap();
/// let mut out = Vec::new();
/// let _ = hs.poll_transmit(&mut out);
/// assert!(out.starts_with(b"GET /chat HTTP/1.1\r\n"));
/// // Then feed the server's answer to `handle_input` until it returns
/// // `Ok(true)` and call `into_connection`.
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    config: Arc<Config>,
    rng: Rng,
    request: Vec<u8>,
    sent: bool,
    expected_accept: String,
    offered_protocols: Vec<String>,
    /// permessage-deflate as the server accepted it.
    deflate: Option<DeflateParams>,
    buf: Vec<u8>,
    scan: usize,
    head_end: Option<usize>,
    response: Option<http::Response<()>>,
    deadline: Option<Instant>,
}

impl ClientHandshake {
    /// Prepares the upgrade request for `request`'s URI (`ws://` or
    /// `wss://`, or a bare path with a `Host` header). Headers in `request`
    /// are sent as given (`Sec-WebSocket-Protocol` to offer subprotocols,
    /// `Origin`, cookies, ...); the handshake adds `Host`, `Upgrade`,
    /// `Connection`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`
    /// unless present. With `Sec-WebSocket-Version: 8`, `Origin` is sent as
    /// `Sec-WebSocket-Origin` (HyBi drafts 07–12). `seed` seeds the CSPRNG
    /// for the key and later the mask keys.
    ///
    /// With [`Config::deflate`] set, the handshake writes the
    /// `Sec-WebSocket-Extensions` offer itself (any such header in
    /// `request` is dropped) and checks the server's answer.
    pub fn new(
        now: Instant,
        request: http::Request<()>,
        config: impl Into<Arc<Config>>,
        seed: [u8; 32],
    ) -> Result<Self, UsageError> {
        let config = config.into();
        let mut rng = Rng::from_seed(seed);
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce);
        let key = BASE64.encode(nonce);
        let (parts, ()) = request.into_parts();
        let uri = parts.uri;
        let mut headers = parts.headers;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        if !headers.contains_key(header::HOST) {
            let host = uri.host().ok_or(UsageError::InvalidRequest)?;
            let default_port = match uri.scheme_str() {
                Some("wss") | Some("https") => 443,
                _ => 80,
            };
            let host = match uri.port_u16() {
                Some(p) if p != default_port => format!("{host}:{p}"),
                _ => host.to_string(),
            };
            let v = HeaderValue::from_str(&host).map_err(|_| UsageError::InvalidRequest)?;
            headers.insert(header::HOST, v);
        }
        let version = headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_else(|| b"13".to_vec());
        if version != b"13" && version != b"8" {
            return Err(UsageError::InvalidRequest);
        }
        if version == b"8" {
            if let Some(origin) = headers.remove(header::ORIGIN) {
                headers.insert(HeaderName::from_static("sec-websocket-origin"), origin);
            }
        }
        let offered_protocols = tokens(&headers, header::SEC_WEBSOCKET_PROTOCOL);
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let host = headers.remove(header::HOST).expect("host set above");
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
        if !headers.contains_key(header::UPGRADE) {
            out.extend_from_slice(b"Upgrade: websocket\r\n");
        }
        if !headers.contains_key(header::CONNECTION) {
            out.extend_from_slice(b"Connection: Upgrade\r\n");
        }
        let key = match headers.remove(header::SEC_WEBSOCKET_KEY) {
            Some(k) => k
                .to_str()
                .map_err(|_| UsageError::InvalidRequest)?
                .to_string(),
            None => key,
        };
        out.extend_from_slice(b"Sec-WebSocket-Key: ");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\r\n");
        if !headers.contains_key(header::SEC_WEBSOCKET_VERSION) {
            out.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
        }
        if let Some(d) = &config.deflate {
            // RFC 7692 §5: the offer.
            headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
            out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
            out.extend_from_slice(d.client_offer().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        write_headers(&mut out, &headers);
        out.extend_from_slice(b"\r\n");
        Ok(ClientHandshake {
            expected_accept: accept_key(key.as_bytes()),
            deadline: config.handshake_timeout.map(|d| now + d),
            config,
            rng,
            request: out,
            sent: false,
            offered_protocols,
            deflate: None,
            buf: Vec::new(),
            scan: 0,
            head_end: None,
            response: None,
        })
    }

    /// Appends the request to `buf` (once).
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.sent {
            return None;
        }
        self.sent = true;
        buf.extend_from_slice(&self.request);
        Some(Transmit::Data)
    }

    /// The subprotocols offered in the request.
    pub fn offered_protocols(&self) -> &[String] {
        &self.offered_protocols
    }

    /// Feeds bytes from the server. Returns `Ok(false)` while more are
    /// needed, `Ok(true)` once the response is complete and valid (then call
    /// [`ClientHandshake::into_connection`]).
    pub fn handle_input(&mut self, data: &[u8]) -> Result<bool, HandshakeError> {
        if self.response.is_some() {
            self.buf.extend_from_slice(data);
            return Ok(true);
        }
        self.buf.extend_from_slice(data);
        let end = match find_head_end(&self.buf, &mut self.scan) {
            Some(e) => e,
            None => {
                if self.buf.len() > self.config.max_handshake_size {
                    return Err(HandshakeError::TooLarge);
                }
                return Ok(false);
            }
        };
        if end > self.config.max_handshake_size {
            return Err(HandshakeError::TooLarge);
        }
        let mut raw = vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut resp = httparse::Response::new(&mut raw);
        match resp.parse(&self.buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete response head".into()))
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
            Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
        }
        let status = resp.code.unwrap_or(0);
        let headers = to_header_map(resp.headers).map_err(HandshakeError::Malformed)?;
        if status != 101 {
            return Err(HandshakeError::UnexpectedStatus {
                status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body: self.buf[end..].to_vec(),
            });
        }
        // RFC 6455 §4.1: the client validates the server's answer.
        if !has_token(&headers, header::UPGRADE, "websocket") {
            return Err(HandshakeError::BadResponse(
                "missing `Upgrade: websocket`".into(),
            ));
        }
        if !has_token(&headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::BadResponse(
                "missing `Connection: Upgrade`".into(),
            ));
        }
        match headers.get(header::SEC_WEBSOCKET_ACCEPT) {
            Some(v) if v.as_bytes() == self.expected_accept.as_bytes() => {}
            _ => {
                return Err(HandshakeError::BadResponse(
                    "wrong Sec-WebSocket-Accept".into(),
                ))
            }
        }
        // RFC 6455 §4.1, RFC 7692 §5: only extensions that were offered,
        // with parameters within the offer.
        self.deflate = match &self.config.deflate {
            Some(d) => d
                .check_response(&headers)
                .map_err(HandshakeError::BadResponse)?,
            None if headers.contains_key(header::SEC_WEBSOCKET_EXTENSIONS) => {
                return Err(HandshakeError::BadResponse(
                    "extension that was not offered".into(),
                ))
            }
            None => None,
        };
        // RFC 6455 §4.1: the server names one subprotocol (a token, not a
        // list) that we offered, or sends no such header. A header that is
        // empty, not text, repeated or a list names no offered one either.
        let mut chosen = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
        let bad_protocol = match (chosen.next(), chosen.next()) {
            (None, _) => false,
            (Some(_), Some(_)) => true,
            (Some(v), None) => match v.to_str() {
                Ok(p) => !self.offered_protocols.iter().any(|o| o == p.trim()),
                Err(_) => true,
            },
        };
        if bad_protocol {
            return Err(HandshakeError::BadResponse(
                "subprotocol that was not offered".into(),
            ));
        }
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        *response.headers_mut() = headers;
        self.response = Some(response);
        self.head_end = Some(end);
        Ok(true)
    }

    /// The deadline of the handshake timeout.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Fails with [`HandshakeError::Timeout`] once the deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        match self.deadline {
            Some(d) if now >= d && self.response.is_none() => Err(HandshakeError::Timeout),
            _ => Ok(()),
        }
    }

    /// Turns a completed handshake into the server's response and a
    /// [`Connection`]; bytes received after the response head are fed to it.
    pub fn into_connection(
        self,
        now: Instant,
    ) -> Result<(http::Response<()>, Connection), UsageError> {
        let (Some(response), Some(end)) = (self.response, self.head_end) else {
            return Err(UsageError::HandshakeIncomplete);
        };
        let mut conn = Connection::new(Role::Client, self.config, Some(self.rng));
        if let Some(p) = self.deflate {
            conn = conn.with_deflate(p);
        }
        conn.start(now);
        conn.handle_input(now, &self.buf[end..]);
        Ok((response, conn))
    }
}

// ---------------------------------------------------------------- server --

/// The server side of the opening handshake.
///
/// Feed the client's bytes to [`ServerHandshake::handle_input`] until it
/// returns the request; inspect it, then [`accept`](ServerHandshake::accept)
/// (optionally choosing a subprotocol and adding headers) or
/// [`reject`](ServerHandshake::reject). Invalid requests are answered
/// automatically (400, 405, 426 or 431): write out
/// [`poll_transmit`](ServerHandshake::poll_transmit) and close.
#[derive(Debug)]
pub struct ServerHandshake {
    config: Arc<Config>,
    buf: Vec<u8>,
    scan: usize,
    head_end: usize,
    key: Option<String>,
    offered_protocols: Vec<String>,
    /// The permessage-deflate answer and parameters, when negotiated.
    deflate: Option<(String, DeflateParams)>,
    out: Vec<u8>,
    done: bool,
    /// `try_accept` succeeded: the request went to the connection.
    accepted: bool,
    deadline: Option<Instant>,
}

impl ServerHandshake {
    /// Starts a handshake; `now` starts the handshake timeout.
    pub fn new(now: Instant, config: impl Into<Arc<Config>>) -> Self {
        let config = config.into();
        ServerHandshake {
            deadline: config.handshake_timeout.map(|d| now + d),
            config,
            buf: Vec::new(),
            scan: 0,
            head_end: 0,
            key: None,
            offered_protocols: Vec::new(),
            deflate: None,
            out: Vec::new(),
            done: false,
            accepted: false,
        }
    }

    /// Feeds bytes from the client. Returns `Ok(None)` while more are
    /// needed and the parsed request once the head is complete and valid.
    /// On `Err`, an HTTP error response is queued in `poll_transmit`.
    pub fn handle_input(
        &mut self,
        data: &[u8],
    ) -> Result<Option<http::Request<()>>, HandshakeError> {
        if self.done || self.accepted {
            return Err(HandshakeError::Malformed(
                "input after the handshake ended".into(),
            ));
        }
        self.buf.extend_from_slice(data);
        // An HTTP request starts with a method token: refuse binary garbage
        // (a TLS ClientHello on a plain port) at its first byte instead of
        // waiting for a whole head or the timeout.
        if !self.buf.is_empty() && !self.buf[0].is_ascii_alphabetic() {
            return Err(self.refuse(400, HandshakeError::Malformed("not an HTTP request".into())));
        }
        let end = match find_head_end(&self.buf, &mut self.scan) {
            Some(e) if e <= self.config.max_handshake_size => e,
            Some(_) => return Err(self.refuse(431, HandshakeError::TooLarge)),
            None if self.buf.len() > self.config.max_handshake_size => {
                return Err(self.refuse(431, HandshakeError::TooLarge))
            }
            None => return Ok(None),
        };
        match self.parse(end) {
            Ok(req) => {
                self.head_end = end;
                Ok(Some(req))
            }
            Err((status, e)) => Err(self.refuse(status, e)),
        }
    }

    fn parse(&mut self, end: usize) -> Result<http::Request<()>, (u16, HandshakeError)> {
        let malformed = |e: &dyn std::fmt::Display| (400, HandshakeError::Malformed(e.to_string()));
        let mut raw = vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut req = httparse::Request::new(&mut raw);
        match req.parse(&self.buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err((
                    400,
                    HandshakeError::BadRequest("incomplete request head".into()),
                ))
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err((431, HandshakeError::TooManyHeaders))
            }
            Err(e) => return Err(malformed(&e)),
        }
        let request = to_http_request(&req).map_err(|e| malformed(&e))?;
        self.key = Some(check_request(&request)?);
        self.offered_protocols = tokens(request.headers(), header::SEC_WEBSOCKET_PROTOCOL);
        // RFC 7692 §5: pick the first offer we can honour, if any.
        self.deflate = self
            .config
            .deflate
            .as_ref()
            .and_then(|d| d.accept_offers(request.headers()));
        Ok(request)
    }

    fn refuse(&mut self, status: u16, e: HandshakeError) -> HandshakeError {
        let headers = refusal_headers(status);
        let body = format!("{e}\n");
        self.out = http_status_response(status, &headers, body.as_bytes());
        self.done = true;
        e
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn offered_protocols(&self) -> &[String] {
        &self.offered_protocols
    }

    /// The permessage-deflate parameters `accept` will use: `Some` when
    /// [`Config::deflate`] is set and the client made an acceptable offer.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref().map(|(_, p)| p)
    }

    /// The response bytes of a refusal or rejection, once; then
    /// `Transmit::Shutdown`.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        if !self.out.is_empty() {
            buf.append(&mut self.out);
            return Some(Transmit::Data);
        }
        if self.done {
            self.done = false;
            self.key = None;
            return Some(Transmit::Shutdown);
        }
        None
    }

    /// The deadline of the handshake timeout.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Fails with [`HandshakeError::Timeout`] once the deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        match self.deadline {
            Some(d) if now >= d && self.key.is_none() => Err(HandshakeError::Timeout),
            _ => Ok(()),
        }
    }

    /// Rejects the request with `status`, extra headers and a body; the
    /// response is queued in [`ServerHandshake::poll_transmit`].
    pub fn reject(&mut self, status: u16, headers: &HeaderMap, body: &[u8]) {
        self.out = http_status_response(status, headers, body);
        self.done = true;
    }

    /// Accepts the request: queues the 101 response (with the chosen
    /// subprotocol, if any, and extra headers) in the returned connection's
    /// output, and feeds it the bytes that followed the request.
    ///
    /// When permessage-deflate was negotiated (see
    /// [`deflate`](Self::deflate)), the response carries its
    /// `Sec-WebSocket-Extensions` header and a `Sec-WebSocket-Extensions`
    /// in `headers` is dropped.
    pub fn accept(
        mut self,
        now: Instant,
        protocol: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Connection, UsageError> {
        self.try_accept(now, protocol, headers)
    }

    /// [`accept`](Self::accept) through `&mut self`: on a usage error
    /// ([`UsageError::HandshakeIncomplete`],
    /// [`UsageError::ProtocolNotOffered`]) nothing is queued and the
    /// handshake is left as it was, so the caller can still
    /// [`reject`](Self::reject) the request or accept it differently. On
    /// success the handshake is spent: its request bytes went to the
    /// connection, and a second `try_accept` fails with
    /// `HandshakeIncomplete`.
    pub fn try_accept(
        &mut self,
        now: Instant,
        protocol: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Connection, UsageError> {
        let Some(key) = self.key.as_deref() else {
            return Err(UsageError::HandshakeIncomplete);
        };
        if let Some(p) = protocol {
            if !self.offered_protocols.iter().any(|o| o == p) {
                return Err(UsageError::ProtocolNotOffered);
            }
        }
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
        out.extend_from_slice(accept_key(key.as_bytes()).as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(p) = protocol {
            out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        match &self.deflate {
            Some((answer, _)) => {
                out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
                out.extend_from_slice(answer.as_bytes());
                out.extend_from_slice(b"\r\n");
                let mut headers = headers.clone();
                headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
                write_headers(&mut out, &headers);
            }
            None => write_headers(&mut out, headers),
        }
        out.extend_from_slice(b"\r\n");
        // Validated: from here on the handshake is spent.
        self.key = None;
        self.deadline = None;
        self.accepted = true;
        let mut conn = Connection::new(Role::Server, self.config.clone(), None);
        if let Some((_, p)) = self.deflate.take() {
            conn = conn.with_deflate(p);
        }
        conn.queue_raw(out);
        conn.start(now);
        conn.handle_input(now, &self.buf[self.head_end..]);
        self.buf = Vec::new();
        self.head_end = 0;
        self.scan = 0;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_1_3_accept() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn head_end_scan_is_resumable() {
        for (msg, end) in [
            (&b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"[..], 27),
            (b"GET / HTTP/1.1\nHost: x\n\nrest", 24),
            (b"GET / HTTP/1.1\nHost: x\n\r\nrest", 25),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\nrest", 26),
        ] {
            // Whole, and resumed after every byte.
            assert_eq!(find_head_end(msg, &mut 0), Some(end));
            let mut scan = 0;
            for i in 1..msg.len() {
                let r = find_head_end(&msg[..i], &mut scan);
                if i < end {
                    assert_eq!(r, None, "{i}");
                } else {
                    assert_eq!(r, Some(end), "{msg:?}");
                    break;
                }
            }
        }
        // A lone CR is not a line end.
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\r\r\r", &mut 0), None);
    }
}

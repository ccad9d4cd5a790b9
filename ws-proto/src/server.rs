//! Server policy, sans-IO: which upgrade requests a server accepts and how.
//!
//! A [`ServerPolicy`] holds everything a WebSocket server decides about an
//! upgrade request besides the RFC 6455 rules that
//! [`ServerHandshake`](crate::ServerHandshake) enforces on its own: the
//! path it serves, the origins it allows, a verification callback that can
//! reject with any status and headers (like `verifyClient` in Node's `ws`),
//! subprotocol selection (like `handleProtocols`), extra response headers,
//! and the [`Config`] (message size limit, compression) of the connections
//! it accepts. [`ServerPolicy::decide`] turns a request into the
//! [`Accept`]/[`Reject`] that [`ServerHandshake::decide`](crate::ServerHandshake::decide)
//! applies, so an adapter's server is a thin loop around it.
//!
//! For upgrades done by another HTTP server (hyper, axum),
//! [`ServerPolicy::upgrade`] checks a parsed request, applies the policy and
//! returns the 101 response to send plus the [`Connection`] to drive after
//! it. [`Router`] picks an endpoint by path when one port serves several;
//! [`parse_request_head`] reads an HTTP/1.1 request head for servers that
//! look at the request before deciding who handles it; [`RequestInfo`] is
//! what a connection handler gets to see about its client.
//!
//! ```
//! use ws_proto::server::ServerPolicy;
//! let policy = ServerPolicy::new()
//!     .path("/chat")
//!     .allow_origin("https://example.com")
//!     .protocols(["chat.v2", "chat.v1"])
//!     .max_payload(1 << 20);
//! let req = http::Request::get("/chat")
//!     .header("origin", "https://example.com")
//!     .header("sec-websocket-protocol", "chat.v1, chat.v2")
//!     .body(())
//!     .unwrap();
//! let accept = policy.decide(&req).unwrap();
//! // The client's order of preference wins among the protocols we support.
//! assert_eq!(accept.protocol.as_deref(), Some("chat.v1"));
//! let other = http::Request::get("/admin").body(()).unwrap();
//! assert_eq!(policy.decide(&other).unwrap_err().status, 404);
//! ```

use crate::config::Config;
use crate::connection::Connection;
use crate::decide::{Accept, Reject};
use crate::deflate::DeflateConfig;
use crate::error::HandshakeError;
use crate::handshake::{accept_key, check_request, refusal_headers, to_http_request};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

type VerifyFn = dyn Fn(&http::Request<()>) -> Result<(), Reject> + Send + Sync;
type ProtocolFn = dyn Fn(&[String], &http::Request<()>) -> Option<String> + Send + Sync;

/// What a server accepts and how: path, origins, verification,
/// subprotocols, response headers and connection [`Config`].
///
/// Cheap to clone (the callbacks are shared). Checks run in this order,
/// each with its own answer:
///
/// | check | default | rejection |
/// |---|---|---|
/// | [`path`](Self::path) | any path | 404 |
/// | [`allow_origin`](Self::allow_origin) | any origin | 403 |
/// | [`verify`](Self::verify) | accept | the callback's [`Reject`] |
/// | subprotocol ([`protocols`](Self::protocols), [`handle_protocols`](Self::handle_protocols)) | none chosen | 500 if the callback picks one the client did not offer |
#[derive(Clone, Default)]
pub struct ServerPolicy {
    /// Shared with every accepted connection.
    config: Arc<Config>,
    paths: Vec<String>,
    origins: Vec<String>,
    protocols: Vec<String>,
    select_protocol: Option<Arc<ProtocolFn>>,
    verify: Option<Arc<VerifyFn>>,
    headers: HeaderMap,
}

impl fmt::Debug for ServerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerPolicy")
            .field("config", &self.config)
            .field("paths", &self.paths)
            .field("origins", &self.origins)
            .field("protocols", &self.protocols)
            .field("handle_protocols", &self.select_protocol.is_some())
            .field("verify", &self.verify.is_some())
            .field("headers", &self.headers)
            .finish()
    }
}

impl ServerPolicy {
    /// Accepts every valid upgrade request, with [`Config::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the configuration of accepted connections (limits, timeouts,
    /// compression).
    pub fn with_config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// The configuration of accepted connections.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same configuration, shared: handing this to an accept function
    /// (rather than a clone of [`config`](Self::config)) lets every
    /// connection of the server point to one copy.
    pub fn shared_config(&self) -> Arc<Config> {
        self.config.clone()
    }

    /// Largest message accepted, in bytes (`maxPayload` in `ws`): sets
    /// [`Config::max_message_size`] and caps [`Config::max_frame_size`] to it.
    /// Larger messages close the connection with 1009.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.max_message_size = bytes;
        config.max_frame_size = config.max_frame_size.min(bytes);
        self
    }

    /// Accepts permessage-deflate offers with these settings
    /// (`perMessageDeflate` in `ws`; off by default).
    pub fn deflate(mut self, deflate: DeflateConfig) -> Self {
        Arc::make_mut(&mut self.config).deflate = Some(deflate);
        self
    }

    /// Serves this path (the request target's path, without the query,
    /// compared exactly). Call it several times to serve several paths;
    /// without any call every path is served. Other paths get 404.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Allows browsers from this origin (`scheme://host[:port]`, compared
    /// case-insensitively). Once one origin is allowed, a request whose
    /// `Origin` (or `Sec-WebSocket-Origin` for version 8) names another is
    /// rejected with 403. A request without an `Origin` header is allowed:
    /// browsers always send one, and other clients can send any value they
    /// like, so only a browser's origin means something. Use
    /// [`verify`](Self::verify) to require one.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// The subprotocols this server speaks. The first protocol in the
    /// client's `Sec-WebSocket-Protocol` list that is also in this list is
    /// chosen; when none matches, the connection is accepted without a
    /// subprotocol (as `ws` does; reject in [`verify`](Self::verify) to
    /// insist on one).
    pub fn protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Chooses the subprotocol with a callback (`handleProtocols` in `ws`):
    /// it gets the protocols the client offered, in its order, and the
    /// request, and returns the one to use or `None`. Replaces
    /// [`protocols`](Self::protocols). Returning a protocol the client did
    /// not offer is a bug: the request is rejected with 500.
    pub fn handle_protocols<F>(mut self, f: F) -> Self
    where
        F: Fn(&[String], &http::Request<()>) -> Option<String> + Send + Sync + 'static,
    {
        self.select_protocol = Some(Arc::new(f));
        self
    }

    /// Verifies each request (`verifyClient` in `ws`) after the path and
    /// origin checks: return `Err(Reject::new(401).header(..))` to refuse
    /// with any status, headers and body.
    pub fn verify<F>(mut self, f: F) -> Self
    where
        F: Fn(&http::Request<()>) -> Result<(), Reject> + Send + Sync + 'static,
    {
        self.verify = Some(Arc::new(f));
        self
    }

    /// Adds a header to every 101 response (cookies, server name, ...).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Whether this policy serves `path` (a request target; the query is
    /// ignored).
    pub fn matches_path(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        self.paths.is_empty() || self.paths.iter().any(|p| p == path)
    }

    /// Decides about a request that [`ServerHandshake`](crate::ServerHandshake)
    /// found to be a valid upgrade: the answer to pass to
    /// [`ServerHandshake::decide`](crate::ServerHandshake::decide).
    pub fn decide(&self, req: &http::Request<()>) -> Result<Accept, Reject> {
        if !self.matches_path(req.uri().path()) {
            return Err(text_reject(404, "no WebSocket endpoint at this path"));
        }
        if !self.origins.is_empty() {
            if let Some(origin) = origin_of(req.headers()) {
                let allowed = origin
                    .to_str()
                    .map(|o| self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)))
                    .unwrap_or(false);
                if !allowed {
                    return Err(text_reject(403, "origin not allowed"));
                }
            }
        }
        if let Some(verify) = &self.verify {
            verify(req)?;
        }
        let offered = offered_protocols(req.headers());
        let protocol = match &self.select_protocol {
            Some(select) => match select(&offered, req) {
                Some(p) if offered.contains(&p) => Some(p),
                Some(_) => {
                    return Err(text_reject(
                        500,
                        "the server chose a subprotocol the client did not offer",
                    ))
                }
                None => None,
            },
            None => offered.into_iter().find(|p| self.protocols.contains(p)),
        };
        Ok(Accept {
            protocol,
            headers: self.headers.clone(),
        })
    }

    /// Completes an upgrade that another HTTP server parsed (hyper, axum):
    /// checks that `req` is a valid WebSocket upgrade (RFC 6455 §4.2.1),
    /// applies the policy, negotiates permessage-deflate when the config
    /// has it, and returns the 101 response to send and the server
    /// [`Connection`] to drive on the upgraded stream. A refusal is a
    /// [`Reject`] to send as the HTTP response instead: 400 (not a valid
    /// upgrade), 405 (not GET), 426 (unsupported version, with
    /// `Sec-WebSocket-Version`), or the policy's rejection.
    pub fn upgrade<B>(&self, req: &http::Request<B>) -> Result<Upgrade, Reject> {
        let key = check_upgrade(req)?;
        let mut plain = http::Request::new(());
        *plain.method_mut() = req.method().clone();
        *plain.uri_mut() = req.uri().clone();
        *plain.version_mut() = req.version();
        *plain.headers_mut() = req.headers().clone();
        let accept = self.decide(&plain)?;
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        for (name, value) in &accept.headers {
            h.append(name, value.clone());
        }
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept_value = HeaderValue::from_str(&accept_key(key.as_bytes()))
            .map_err(|_| text_reject(400, "bad Sec-WebSocket-Key"))?;
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept_value);
        if let Some(p) = &accept.protocol {
            let v = HeaderValue::from_str(p)
                .map_err(|_| text_reject(500, "subprotocol is not a header value"))?;
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
        h.remove(header::SEC_WEBSOCKET_EXTENSIONS);
        let mut connection = Connection::server(self.config.clone());
        // RFC 7692 §5: answer the first offer we can honour, if any.
        let deflate = self
            .config
            .deflate
            .as_ref()
            .and_then(|d| d.accept_offers(req.headers()));
        if let Some((answer, params)) = deflate {
            let v = HeaderValue::from_str(&answer)
                .map_err(|_| text_reject(500, "bad extension answer"))?;
            h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
            connection = connection.with_deflate(params);
        }
        Ok(Upgrade {
            response,
            connection,
            protocol: accept.protocol,
        })
    }
}

/// An accepted upgrade from [`ServerPolicy::upgrade`]: send `response`,
/// then drive `connection` on the upgraded stream.
#[derive(Debug)]
#[non_exhaustive]
pub struct Upgrade {
    /// The 101 Switching Protocols response (status and headers).
    pub response: http::Response<()>,
    /// The server connection, ready for the first frame.
    pub connection: Connection,
    /// The subprotocol chosen, if any.
    pub protocol: Option<String>,
}

fn text_reject(status: u16, text: &str) -> Reject {
    Reject::new(status)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )
        .body(format!("{text}\n"))
}

/// `Origin`, or `Sec-WebSocket-Origin` (HyBi drafts 07–12, version 8).
fn origin_of(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers
        .get(header::ORIGIN)
        .or_else(|| headers.get("sec-websocket-origin"))
}

/// The comma-separated subprotocols the client offered, in its order.
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// RFC 6455 §4.2.1 on a request parsed elsewhere; returns the key.
/// [`check_request`], its refusal as a [`Reject`] (a plain-text body
/// saying why, and the headers the status calls for).
fn check_upgrade<B>(req: &http::Request<B>) -> Result<String, Reject> {
    check_request(req).map_err(|(status, e)| {
        let mut reject = text_reject(status, &e.to_string());
        for (name, value) in &refusal_headers(status) {
            reject = reject.header(name.clone(), value.clone());
        }
        reject
    })
}

/// How long a server's accept loop pauses after `accept` failed for lack
/// of resources (see [`accept_retry_after`]).
pub const ACCEPT_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// What a server's accept loop does after `accept` failed with `e`, the
/// same in every adapter: `Duration::ZERO` (accept the next connection at
/// once) when only that connection is lost (it was aborted or reset while
/// it waited in the listen queue) or the call was interrupted; otherwise
/// [`ACCEPT_PAUSE`]. The other failures of a listener that the server owns
/// are a lack of resources: out of file descriptors (`EMFILE`, `ENFILE`),
/// memory or buffers. They pass once connections close, and until then
/// the listener stays readable, so trying again at once would spin; ending
/// the loop would let a flood of connections stop the server.
pub fn accept_retry_after(e: &std::io::Error) -> std::time::Duration {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {
            std::time::Duration::ZERO
        }
        _ => ACCEPT_PAUSE,
    }
}

/// Whether a request asks for a WebSocket upgrade (`Upgrade: websocket`
/// and `Connection: Upgrade`), so that a server sharing its port with plain
/// HTTP knows whom to hand it to. Full validation happens in the handshake.
pub fn is_upgrade_request<B>(req: &http::Request<B>) -> bool {
    has_token(req.headers(), header::UPGRADE, "websocket")
        && has_token(req.headers(), header::CONNECTION, "upgrade")
}

/// Parses an HTTP/1.1 request head from the start of `buf`:
/// `Ok(None)` while the head is incomplete, `Ok(Some((request, len)))`
/// once it is there (`len` bytes of `buf` are the head; the rest is
/// what followed it). For servers that read a request before deciding
/// who handles it (a page, or one of several WebSocket endpoints): pass
/// all the bytes read so far, head included, to the chosen endpoint's
/// upgrade, which parses them again with its own limits.
///
/// Errors: [`HandshakeError::TooLarge`] past `config.max_handshake_size`,
/// [`HandshakeError::TooManyHeaders`] past `config.max_headers`,
/// [`HandshakeError::Malformed`] for anything else that is not HTTP.
pub fn parse_request_head(
    buf: &[u8],
    config: &Config,
) -> Result<Option<(http::Request<()>, usize)>, HandshakeError> {
    let mut raw = vec![httparse::EMPTY_HEADER; config.max_headers];
    let mut req = httparse::Request::new(&mut raw);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > config.max_handshake_size => {
            return Err(HandshakeError::TooLarge)
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > config.max_handshake_size => {
            return Err(HandshakeError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    };
    let request = to_http_request(&req).map_err(HandshakeError::Malformed)?;
    Ok(Some((request, len)))
}

/// Picks an endpoint by request path when one port serves several (the
/// `ws` pattern of several `WebSocketServer`s with `noServer` behind one
/// HTTP server). Paths are compared exactly, without the query; the first
/// route added wins.
///
/// ```
/// use ws_proto::server::Router;
/// let router = Router::new().route("/chat", "chat").route("/feed", "feed");
/// assert_eq!(router.find("/feed?since=3"), Some(&"feed"));
/// assert_eq!(router.find("/other"), None);
/// assert_eq!(router.not_found().status, 404);
/// ```
#[derive(Debug, Clone)]
pub struct Router<T> {
    routes: Vec<(String, T)>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

impl<T> Router<T> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an endpoint at `path`.
    pub fn route(mut self, path: impl Into<String>, endpoint: T) -> Self {
        self.routes.push((path.into(), endpoint));
        self
    }

    /// The endpoint for a request target (the query is ignored).
    pub fn find(&self, target: &str) -> Option<&T> {
        let path = target.split('?').next().unwrap_or(target);
        self.routes.iter().find(|(p, _)| p == path).map(|(_, t)| t)
    }

    /// The paths served, in the order they were added.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(p, _)| p.as_str())
    }

    /// The answer for a path no route serves: 404.
    pub fn not_found(&self) -> Reject {
        text_reject(404, "no WebSocket endpoint at this path")
    }
}

/// What a connection handler knows about its client: the upgrade request
/// (path, query, headers), the peer's socket address and the chosen
/// subprotocol.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    request: http::Request<()>,
    peer: Option<SocketAddr>,
    protocol: Option<String>,
}

impl RequestInfo {
    /// Request info for `request` from `peer`, answered with `protocol`.
    pub fn new(
        request: http::Request<()>,
        peer: Option<SocketAddr>,
        protocol: Option<String>,
    ) -> Self {
        RequestInfo {
            request,
            peer,
            protocol,
        }
    }

    /// The upgrade request (method, target, version, headers).
    pub fn request(&self) -> &http::Request<()> {
        &self.request
    }

    /// The request path, without the query.
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.request.uri().query()
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.request.headers()
    }

    /// A header's value as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers().get(name)?.to_str().ok()
    }

    /// The browser's origin (`Origin`, or `Sec-WebSocket-Origin` for
    /// version 8).
    pub fn origin(&self) -> Option<&str> {
        origin_of(self.request.headers())?.to_str().ok()
    }

    /// The address of the TCP peer, when the adapter knows it. Behind a
    /// reverse proxy this is the proxy; see [`forwarded_for`](Self::forwarded_for).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The subprotocol the server answered with.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The addresses in `X-Forwarded-For`, client first, as written by the
    /// proxies (all instances of the header, in order; entries trimmed).
    /// Anyone can send this header: believe it only when a proxy you run
    /// sets it, and then read it from the right (the entry your proxy
    /// appended is the last one).
    pub fn forwarded_for(&self) -> Vec<&str> {
        self.request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The client's IP address as the last `trusted_proxies` proxies saw
    /// it: with 0, the peer's address (the header is ignored); with `n`,
    /// the `n`-th `X-Forwarded-For` entry from the right, falling back to
    /// the leftmost entry when there are fewer, and to the peer when the
    /// header is absent or that entry is not an IP address.
    pub fn client_ip(&self, trusted_proxies: usize) -> Option<IpAddr> {
        let peer = self.peer.map(|p| p.ip());
        if trusted_proxies == 0 {
            return peer;
        }
        let list = self.forwarded_for();
        if list.is_empty() {
            return peer;
        }
        let idx = list.len().saturating_sub(trusted_proxies);
        list[idx].parse().ok().or(peer)
    }
}

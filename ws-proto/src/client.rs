//! The client's plan, sans-IO: URLs, handshake options, redirects, proxy
//! choice, the body of an unexpected response, and reconnect backoff.
//!
//! An adapter's `connect` is a loop over [`ClientPlan`]:
//!
//! 1. open a transport to [`ClientPlan::url`] (TCP to `host:port`, or the
//!    Unix socket of a `ws+unix:` URL), through the proxy of
//!    [`ClientPlan::proxy`] if there is one ([`ProxyHandshake`]);
//! 2. for `wss://`, run TLS over it (the adapter's TLS layer);
//! 3. run the [`ClientHandshake`] from [`ClientPlan::handshake`];
//! 4. on failure, read the rest of an unexpected response's body
//!    ([`unexpected_body_remaining`]) and hand the error to
//!    [`ClientPlan::handle_failure`]: `Ok(())` means "follow the redirect,
//!    go to 1 with the new URL", `Err` is the final error.
//!
//! Everything that decides something (which proxy, which headers survive a
//! redirect, when to stop) is here; the adapters only move bytes.
//!
//! [`ProxyHandshake`]: crate::ProxyHandshake

use crate::config::Config;
use crate::deflate::DeflateConfig;
use crate::error::{Error, HandshakeError, UsageError};
use crate::handshake::ClientHandshake;
use crate::proxy::{proxy_from_env, Proxy, ProxySetting};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ URL --

/// A parsed WebSocket URL: `ws://`, `wss://` (and `http://`, `https://`,
/// taken as `ws://` and `wss://` as Node's `ws` does), IPv6 literals in
/// brackets, default ports 80 and 443, a path and a query, and
/// `ws+unix:` URLs for Unix domain sockets.
///
/// A `ws+unix:` URL names the socket file and the request path separated by
/// a colon, as in `ws`: `ws+unix:/run/app.sock:/chat?room=1` (or
/// `ws+unix:///run/app.sock:/chat`) connects to `/run/app.sock` and asks for
/// `/chat?room=1`; without a colon the path is `/`. As in `ws`, the socket
/// path is taken as written (not percent-decoded). The `Host` header of
/// such a request is `localhost`.
///
/// ```
/// use ws_proto::ClientUrl;
/// let u = ClientUrl::parse("ws://[::1]:9001/chat?x=1").unwrap();
/// assert_eq!((u.host(), u.port(), u.resource()), ("::1", 9001, "/chat?x=1"));
/// assert_eq!(u.host_header(), "[::1]:9001");
/// let u = ClientUrl::parse("wss://example.com").unwrap();
/// assert_eq!((u.port(), u.resource(), u.is_secure()), (443, "/", true));
/// let u = ClientUrl::parse("ws+unix:/tmp/app.sock:/echo").unwrap();
/// assert_eq!((u.unix_socket(), u.resource()), (Some("/tmp/app.sock"), "/echo"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientUrl {
    secure: bool,
    host: String,
    port: u16,
    unix_socket: Option<String>,
    resource: String,
    credentials: Option<String>,
}

/// Checks that `resource` can be a request target (the same rules as the
/// request line the handshake writes).
fn check_resource(resource: String) -> Result<String, UsageError> {
    match http::uri::PathAndQuery::try_from(resource.as_str()) {
        Ok(_) => Ok(resource),
        Err(_) => Err(UsageError::InvalidUrl("invalid path or query")),
    }
}

/// Bytes that may not appear anywhere in a URL we send on the wire.
fn has_bad_bytes(s: &str) -> bool {
    s.bytes().any(|b| b <= b' ' || b == 0x7f)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(user, password)`, percent-decoded.
pub(crate) type Credentials = (String, String);

/// Splits `authority` (`[user[:pass]@]host[:port]`) into credentials, host
/// and port.
pub(crate) fn parse_authority(
    authority: &str,
    default_port: u16,
) -> Result<(Option<Credentials>, String, u16), UsageError> {
    let (creds, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or(UsageError::InvalidUrl("unclosed `[` in the host"))?;
        let host = &rest[..end];
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| UsageError::InvalidUrl("invalid IPv6 address"))?;
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(UsageError::InvalidUrl("junk after the IPv6 address"))?,
            ),
        };
        (host.to_ascii_lowercase(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (hostport.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err(UsageError::InvalidUrl("empty host"));
    }
    // RFC 3986 §3.2.2 reg-name, ASCII only (a non-ASCII name must be given
    // in its punycode form); percent-encoded names are not accepted.
    let bracketed = hostport.starts_with('[');
    if !bracketed
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b))
    {
        return Err(UsageError::InvalidUrl("invalid host"));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(UsageError::InvalidUrl("invalid port"))?,
    };
    let creds = creds
        .filter(|c| !c.is_empty())
        .map(|c| match c.split_once(':') {
            Some((u, p)) => (percent_decode(u), percent_decode(p)),
            None => (percent_decode(c), String::new()),
        });
    Ok((creds, host, port))
}

impl ClientUrl {
    /// Parses a URL. Fragments are refused (RFC 6455 §3), as are URLs with
    /// spaces or control characters, an empty host, a bad port, or a
    /// scheme other than `ws`, `wss`, `http`, `https`, `ws+unix`.
    pub fn parse(url: &str) -> Result<ClientUrl, UsageError> {
        if has_bad_bytes(url) {
            return Err(UsageError::InvalidUrl("spaces or control characters"));
        }
        let (scheme, rest) = url
            .split_once(':')
            .ok_or(UsageError::InvalidUrl("no scheme"))?;
        if rest.contains('#') {
            // RFC 6455 §3: fragment identifiers are not allowed.
            return Err(UsageError::InvalidUrl("fragment in a WebSocket URL"));
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "ws+unix" {
            // `ws+unix:/sock:/path`, `ws+unix:///sock:/path`,
            // `ws+unix://localhost/sock:/path` hold the same pathname.
            let mut path = rest;
            if let Some(r) = path.strip_prefix("//") {
                path = &r[r.find('/').unwrap_or(r.len())..];
            }
            let (sock, resource) = match path.split_once(':') {
                Some((s, r)) => (s, r),
                None => (path, ""),
            };
            if sock.is_empty() {
                return Err(UsageError::InvalidUrl("no socket path in a ws+unix URL"));
            }
            let resource = check_resource(match resource {
                "" => "/".to_string(),
                r if r.starts_with('/') => r.to_string(),
                r if r.starts_with('?') => format!("/{r}"),
                r => format!("/{r}"),
            })?;
            return Ok(ClientUrl {
                secure: false,
                host: "localhost".into(),
                port: 80,
                unix_socket: Some(sock.to_string()),
                resource,
                credentials: None,
            });
        }
        let secure = match scheme.as_str() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            _ => {
                return Err(UsageError::InvalidUrl(
                    "the scheme must be ws, wss or ws+unix",
                ))
            }
        };
        let rest = rest
            .strip_prefix("//")
            .ok_or(UsageError::InvalidUrl("no `//` after the scheme"))?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(end);
        let (credentials, host, port) = parse_authority(authority, if secure { 443 } else { 80 })?;
        let resource = check_resource(match resource {
            "" => "/".to_string(),
            r if r.starts_with('?') => format!("/{r}"),
            r => r.to_string(),
        })?;
        Ok(ClientUrl {
            secure,
            host,
            port,
            unix_socket: None,
            resource,
            credentials: credentials.map(|(u, p)| format!("{u}:{p}")),
        })
    }

    /// Whether the URL asks for TLS (`wss://`, `https://`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host, lowercase, without brackets around an IPv6 literal; it is
    /// also the name for SNI and certificate checks. `localhost` for a Unix
    /// socket.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80 or 443 unless the URL gives one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket file of a `ws+unix:` URL.
    pub fn unix_socket(&self) -> Option<&str> {
        self.unix_socket.as_deref()
    }

    /// The request target: path and query, `/` when the URL has none.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// `user:password` from the URL (percent-decoded), sent as basic
    /// `Authorization` unless the options set that header.
    pub fn credentials(&self) -> Option<&str> {
        self.credentials.as_deref()
    }

    /// The `Host` header: the host (bracketed if IPv6) and the port unless
    /// it is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.secure { 443 } else { 80 };
        if self.port == default || self.unix_socket.is_some() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port` as an HTTP CONNECT target or a `Host` header with the
    /// port always present (IPv6 bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `other` is the same host for credentials: the same host and
    /// port (or the same socket file), as `ws` compares them on redirects.
    pub fn same_host(&self, other: &ClientUrl) -> bool {
        match (&self.unix_socket, &other.unix_socket) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.host == other.host && self.port == other.port,
            _ => false,
        }
    }

    /// Resolves a `Location` header against this URL: absolute
    /// (`ws`, `wss`, `http`, `https`, `ws+unix`), scheme-relative (`//host/`),
    /// absolute path, or relative path.
    pub fn join(&self, location: &str) -> Result<ClientUrl, UsageError> {
        let location = location.trim();
        if location.is_empty() {
            return Err(UsageError::InvalidUrl("empty Location"));
        }
        let has_scheme = location
            .split_once(':')
            .map(|(s, _)| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
            })
            .unwrap_or(false);
        if has_scheme {
            return ClientUrl::parse(location);
        }
        // A fragment on a redirect target is dropped, not an error.
        let location = location.split('#').next().unwrap_or("");
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.secure { "wss" } else { "ws" };
            return ClientUrl::parse(&format!("{scheme}://{rest}"));
        }
        if has_bad_bytes(location) {
            return Err(UsageError::InvalidUrl("spaces or control characters"));
        }
        let resource = if location.starts_with('/') {
            location.to_string()
        } else if location.starts_with('?') {
            let path = self.resource.split('?').next().unwrap_or("/");
            format!("{path}{location}")
        } else {
            let path = self.resource.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        let resource = check_resource(if resource.starts_with('/') {
            resource
        } else {
            format!("/{resource}")
        })?;
        Ok(ClientUrl {
            resource,
            credentials: None,
            ..self.clone()
        })
    }
}

impl fmt::Debug for ClientUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("ClientUrl")
            .field("secure", &self.secure)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("unix_socket", &self.unix_socket)
            .field("resource", &self.resource)
            .field(
                "user",
                &self
                    .credentials
                    .as_deref()
                    .map(|c| c.split(':').next().unwrap_or("")),
            )
            .finish()
    }
}

impl fmt::Display for ClientUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.unix_socket {
            Some(sock) => write!(f, "ws+unix:{sock}:{}", self.resource),
            None => {
                let scheme = if self.secure { "wss" } else { "ws" };
                write!(f, "{scheme}://{}{}", self.host_header(), self.resource)
            }
        }
    }
}

impl std::str::FromStr for ClientUrl {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientUrl::parse(s)
    }
}

// -------------------------------------------------------------- options --

/// One redirect the client is about to follow, shown to the
/// [`ClientOptions::on_redirect`] hook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redirect {
    /// The 3xx status.
    pub status: u16,
    /// The URL that answered with the redirect.
    pub from: ClientUrl,
    /// Where the client goes next.
    pub to: ClientUrl,
    /// Which redirect this is (1 for the first).
    pub hop: usize,
    /// Whether `Authorization` and `Cookie` were removed from the next
    /// request (another host, or from `wss` to `ws`).
    pub stripped_credentials: bool,
}

/// The redirect hook: sees each hop and the headers of the next request
/// (after the automatic stripping, so it may add some back), and returns
/// `false` to stop and report the redirect response as the error.
pub type RedirectHook = Arc<dyn Fn(&Redirect, &mut HeaderMap) -> bool + Send + Sync>;

/// What a client asks for, like the options of Node's `new WebSocket(url,
/// protocols, options)`: `origin`, `protocolVersion`, subprotocols, extra
/// `headers`, `handshakeTimeout`, `maxPayload`, `perMessageDeflate`,
/// `followRedirects`, `maxRedirects`, plus a proxy.
///
/// The defaults: version 13, permessage-deflate offered (like `ws`;
/// [`ClientOptions::deflate`] with `None` turns it off), the limits and
/// the 10 s handshake timeout of [`Config::default`], redirects not
/// followed (at most 10 when turned on), no proxy, and up to 64 KiB of an
/// unexpected response's body kept.
///
/// ```
/// use ws_proto::{ClientOptions, ClientPlan};
/// let opts = ClientOptions::new()
///     .origin("https://example.com")
///     .protocols(["chat", "superchat"])
///     .header(http::header::COOKIE, http::HeaderValue::from_static("a=b"))
///     .max_payload(1 << 20)
///     .follow_redirects(true);
/// let plan = ClientPlan::new("ws://example.com/chat", opts).unwrap();
/// let req = plan.request().unwrap();
/// assert_eq!(req.headers()["origin"], "https://example.com");
/// assert_eq!(req.headers()["sec-websocket-protocol"], "chat, superchat");
/// ```
#[derive(Clone)]
pub struct ClientOptions {
    origin: Option<String>,
    protocol_version: u8,
    protocols: Vec<String>,
    headers: HeaderMap,
    config: Config,
    follow_redirects: bool,
    max_redirects: usize,
    proxy: ProxySetting,
    max_response_body: usize,
    on_redirect: Option<RedirectHook>,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("origin", &self.origin)
            .field("protocol_version", &self.protocol_version)
            .field("protocols", &self.protocols)
            .field("headers", &self.headers)
            .field("config", &self.config)
            .field("follow_redirects", &self.follow_redirects)
            .field("max_redirects", &self.max_redirects)
            .field("proxy", &self.proxy)
            .field("max_response_body", &self.max_response_body)
            .field("on_redirect", &self.on_redirect.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            origin: None,
            protocol_version: 13,
            protocols: Vec::new(),
            headers: HeaderMap::new(),
            config: Config::default().deflate(Some(DeflateConfig::default())),
            follow_redirects: false,
            max_redirects: 10,
            proxy: ProxySetting::None,
            max_response_body: 64 << 10,
            on_redirect: None,
        }
    }
}

impl ClientOptions {
    /// The defaults (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `Origin` (`Sec-WebSocket-Origin` with version 8).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// The `Sec-WebSocket-Version`: 13 (RFC 6455, the default) or 8 (HyBi
    /// drafts 07–12). Other values make the request fail with
    /// [`UsageError::InvalidRequest`].
    pub fn protocol_version(mut self, version: u8) -> Self {
        self.protocol_version = version;
        self
    }

    /// Offers one more subprotocol (`Sec-WebSocket-Protocol`).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Offers these subprotocols, in order of preference.
    pub fn protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols.extend(protocols.into_iter().map(Into::into));
        self
    }

    /// Adds a header to the request (appended to earlier values of the same
    /// name). The handshake's own headers (`Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key`, `-Version`, `-Extensions` when deflate is on)
    /// are written by the handshake.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The extra headers, to change them in place.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Replaces the limits and timeouts (and the deflate setting) with
    /// `config`.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The time allowed for each connection attempt: TCP connect, proxy,
    /// TLS and the HTTP upgrade (`handshakeTimeout`); `None` waits forever.
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// The largest message (and frame) accepted, like `maxPayload`; larger
    /// ones fail the connection with close code 1009.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self.config.max_frame_size = self.config.max_frame_size.min(bytes);
        self
    }

    /// permessage-deflate settings; `None` does not offer it.
    pub fn deflate(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.config.deflate = deflate;
        self
    }

    /// Follows 3xx answers with a `Location` (`followRedirects`; off by
    /// default).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// The most redirects followed before failing with
    /// [`HandshakeError::TooManyRedirects`] (`maxRedirects`, default 10).
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }

    /// A hook called before each redirect is followed (see
    /// [`RedirectHook`]).
    pub fn on_redirect<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Redirect, &mut HeaderMap) -> bool + Send + Sync + 'static,
    {
        self.on_redirect = Some(Arc::new(hook));
        self
    }

    /// How to reach the server: directly (the default), through a proxy
    /// chosen from the environment, or through a given proxy.
    pub fn proxy(mut self, proxy: ProxySetting) -> Self {
        self.proxy = proxy;
        self
    }

    /// How many bytes of an unexpected (non-101) response's body are kept
    /// in [`HandshakeError::UnexpectedStatus`] (default 64 KiB).
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// The limits, timeouts and deflate settings the connection gets.
    pub fn connection_config(&self) -> &Config {
        &self.config
    }

    /// The proxy setting.
    pub fn proxy_setting(&self) -> &ProxySetting {
        &self.proxy
    }

    /// The bound on a kept response body.
    pub fn response_body_limit(&self) -> usize {
        self.max_response_body
    }
}

/// Whether `s` is an HTTP token (RFC 7230 §3.2.6), as a subprotocol must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

// ----------------------------------------------------------------- plan --

/// The sequence of connection attempts for one `connect`: the current URL
/// and request headers, and the redirect policy between attempts.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    options: ClientOptions,
    original: ClientUrl,
    current: ClientUrl,
    headers: HeaderMap,
    redirects: usize,
}

impl ClientPlan {
    /// Checks the URL and the options. Fails on an invalid URL, a version
    /// other than 8 or 13, or subprotocols that are not tokens or repeat
    /// (as `ws` does).
    pub fn new(url: &str, options: ClientOptions) -> Result<ClientPlan, UsageError> {
        let url = ClientUrl::parse(url)?;
        Self::from_url(url, options)
    }

    /// Like [`ClientPlan::new`] with a parsed URL.
    pub fn from_url(url: ClientUrl, options: ClientOptions) -> Result<ClientPlan, UsageError> {
        if options.protocol_version != 13 && options.protocol_version != 8 {
            return Err(UsageError::InvalidRequest);
        }
        for (i, p) in options.protocols.iter().enumerate() {
            if !is_token(p) || options.protocols[..i].contains(p) {
                return Err(UsageError::InvalidRequest);
            }
        }
        let mut headers = options.headers.clone();
        if let Some(o) = &options.origin {
            let v = HeaderValue::from_str(o).map_err(|_| UsageError::InvalidRequest)?;
            headers.insert(header::ORIGIN, v);
        }
        set_basic_auth(&mut headers, &url);
        Ok(ClientPlan {
            options,
            original: url.clone(),
            current: url,
            headers,
            redirects: 0,
        })
    }

    /// Where the next attempt connects.
    pub fn url(&self) -> &ClientUrl {
        &self.current
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// How many redirects were followed so far.
    pub fn redirects(&self) -> usize {
        self.redirects
    }

    /// The proxy for the current URL: none for `ws+unix:`, otherwise as
    /// [`ClientOptions::proxy`] says; `env` looks up environment variables
    /// for [`ProxySetting::FromEnv`] (adapters pass `std::env::var`).
    pub fn proxy(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<Proxy>, UsageError> {
        if self.current.unix_socket.is_some() {
            return Ok(None);
        }
        match &self.options.proxy {
            ProxySetting::None => Ok(None),
            ProxySetting::Explicit(p) => Ok(Some(p.clone())),
            ProxySetting::FromEnv => proxy_from_env(&self.current, env),
        }
    }

    /// The upgrade request of the current attempt.
    pub fn request(&self) -> Result<http::Request<()>, UsageError> {
        let mut headers = self.headers.clone();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&self.current.host_header())
                .map_err(|_| UsageError::InvalidUrl("host not valid in a header"))?,
        );
        if !self.options.protocols.is_empty() {
            let v = HeaderValue::from_str(&self.options.protocols.join(", "))
                .map_err(|_| UsageError::InvalidRequest)?;
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from(self.options.protocol_version as u16),
        );
        let mut req = http::Request::get(self.current.resource())
            .body(())
            .map_err(|_| UsageError::InvalidUrl("invalid path"))?;
        *req.headers_mut() = headers;
        Ok(req)
    }

    /// The opening handshake of the current attempt.
    pub fn handshake(&self, now: Instant, seed: [u8; 32]) -> Result<ClientHandshake, UsageError> {
        ClientHandshake::new(now, self.request()?, self.options.config.clone(), seed)
    }

    /// Decides what follows a failed attempt. `Ok(())`: a redirect is to be
    /// followed, and [`ClientPlan::url`] and the request now name the next
    /// hop. `Err`: the final error (`err` itself, or
    /// [`HandshakeError::TooManyRedirects`] / [`HandshakeError::BadRedirect`]).
    ///
    /// Following `ws`: `Authorization` and `Cookie` (and credentials from
    /// the URL) are dropped when the next hop is another host (host and
    /// port, or socket file) than the first URL, or goes from `wss` to
    /// `ws`; they are kept on the same host.
    pub fn handle_failure(&mut self, err: Error) -> Result<(), Error> {
        let Error::Handshake(HandshakeError::UnexpectedStatus {
            status, headers, ..
        }) = &err
        else {
            return Err(err);
        };
        let status = *status;
        if !self.options.follow_redirects || !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return Err(err);
        }
        let Some((_, location)) = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        else {
            return Err(err);
        };
        if self.redirects >= self.options.max_redirects {
            return Err(HandshakeError::TooManyRedirects(self.options.max_redirects).into());
        }
        let location = std::str::from_utf8(location)
            .map_err(|_| HandshakeError::BadRedirect("Location is not text".into()))?;
        let next = self
            .current
            .join(location)
            .map_err(|e| HandshakeError::BadRedirect(format!("{location:?}: {e}")))?;
        let strip = !self.original.same_host(&next) || (self.original.secure && !next.secure);
        let mut headers = self.headers.clone();
        if strip {
            headers.remove(header::AUTHORIZATION);
            headers.remove(header::COOKIE);
        } else if next.credentials.is_some() {
            set_basic_auth(&mut headers, &next);
        }
        let hop = Redirect {
            status,
            from: self.current.clone(),
            to: next.clone(),
            hop: self.redirects + 1,
            stripped_credentials: strip,
        };
        if let Some(hook) = &self.options.on_redirect {
            if !hook(&hop, &mut headers) {
                return Err(err);
            }
        }
        self.redirects += 1;
        self.current = next;
        self.headers = headers;
        Ok(())
    }
}

fn set_basic_auth(headers: &mut HeaderMap, url: &ClientUrl) {
    if let Some(c) = &url.credentials {
        if !headers.contains_key(header::AUTHORIZATION) {
            let v = format!("Basic {}", BASE64.encode(c.as_bytes()));
            if let Ok(mut v) = HeaderValue::from_str(&v) {
                v.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, v);
            }
        }
    }
}

// ------------------------------------------------ unexpected responses --

/// How many more body bytes an adapter should read for an unexpected
/// response before reporting it: `None` when the body is complete (by
/// `Content-Length`, or the end of a chunked body) or `limit` bytes are
/// kept; otherwise at most that many more (the adapter also stops at end
/// of stream or at the handshake deadline). Trims a body already longer
/// than `limit`. Errors other than [`HandshakeError::UnexpectedStatus`]
/// need nothing.
pub fn unexpected_body_remaining(err: &mut Error, limit: usize) -> Option<usize> {
    let Error::Handshake(HandshakeError::UnexpectedStatus { headers, body, .. }) = err else {
        return None;
    };
    body.truncate(limit);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    let want = if let Some(cl) = get("content-length") {
        std::str::from_utf8(cl)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0)
            .min(limit)
    } else if get("transfer-encoding").is_some_and(|te| {
        std::str::from_utf8(te).is_ok_and(|s| s.to_ascii_lowercase().contains("chunked"))
    }) {
        if body.ends_with(b"0\r\n\r\n") {
            return None;
        }
        limit
    } else {
        // Neither: the body ends with the connection (RFC 9112 §6.3).
        limit
    };
    want.checked_sub(body.len()).filter(|n| *n > 0)
}

/// Appends body bytes read after an [`HandshakeError::UnexpectedStatus`]
/// (see [`unexpected_body_remaining`]).
pub fn extend_unexpected_body(err: &mut Error, data: &[u8]) {
    if let Error::Handshake(HandshakeError::UnexpectedStatus { body, .. }) = err {
        body.extend_from_slice(data);
    }
}

// --------------------------------------------------------------- backoff --

/// Exponential backoff with jitter between reconnect attempts, sans-IO: the
/// adapter's reconnect helper sleeps for [`Backoff::next_delay`] (feeding it
/// random bits) after each failed attempt and calls [`Backoff::reset`]
/// after a connection succeeds.
///
/// The n-th delay is `initial * factor^(n-1)`, capped at `max`, minus a
/// random part of up to `jitter` of it (so clients that lost the same
/// server spread out).
///
/// ```
/// use std::time::Duration;
/// use ws_proto::Backoff;
/// let mut b = Backoff::new().jitter(0.0);
/// assert_eq!(b.next_delay(0), Duration::from_secs(1));
/// assert_eq!(b.next_delay(0), Duration::from_secs(2));
/// b.reset();
/// assert_eq!(b.next_delay(0), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: 0.5,
            failures: 0,
        }
    }
}

impl Backoff {
    /// 1 s, doubling, at most 60 s, up to half of each delay taken off at
    /// random.
    pub fn new() -> Self {
        Self::default()
    }
    /// The first delay.
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }
    /// The longest delay.
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }
    /// The growth factor (at least 1).
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = if f.is_finite() { f.max(1.0) } else { 1.0 };
        self
    }
    /// The random share taken off each delay, 0 (none) to 1.
    pub fn jitter(mut self, j: f64) -> Self {
        self.jitter = if j.is_finite() {
            j.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }
    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
    /// Counts a failure and returns how long to wait before the next
    /// attempt; `random` is any 64 random bits.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let exp = self.factor.powi(self.failures.min(1000) as i32);
        self.failures = self.failures.saturating_add(1);
        let base = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let r = (random >> 11) as f64 / (1u64 << 53) as f64;
        let d = base * (1.0 - self.jitter * r);
        Duration::try_from_secs_f64(d.max(0.0)).unwrap_or(self.max)
    }
    /// Back to the first delay (after a successful connection).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
    /// What a reconnecting client does after a failed attempt: `None` to
    /// give up and return `err` (it is not [transient](is_transient), or
    /// it is failure number `max_failures` in a row; the backoff is then
    /// reset), otherwise how long to wait before the next attempt
    /// ([`next_delay`](Self::next_delay): counted as a failure). `random`
    /// is any 64 random bits.
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use ws_proto::{Backoff, Error};
    /// let mut b = Backoff::new().jitter(0.0);
    /// let refused = || Error::from(io::Error::from(io::ErrorKind::ConnectionRefused));
    /// assert_eq!(b.retry_after(&refused(), Some(3), 0), Some(Duration::from_secs(1)));
    /// assert_eq!(b.retry_after(&refused(), Some(3), 0), Some(Duration::from_secs(2)));
    /// assert_eq!(b.retry_after(&refused(), Some(3), 0), None); // the third
    /// assert_eq!(b.failures(), 0);
    /// // Not worth retrying: given up at once.
    /// let rejected = Error::from(ws_proto::HandshakeError::UnexpectedStatus {
    ///     status: 403,
    ///     headers: Vec::new(),
    ///     body: Vec::new(),
    /// });
    /// assert_eq!(b.retry_after(&rejected, None, 0), None);
    /// ```
    pub fn retry_after(
        &mut self,
        err: &Error,
        max_failures: Option<u32>,
        random: u64,
    ) -> Option<Duration> {
        let failures = self.failures.saturating_add(1);
        if !is_transient(err) || max_failures.is_some_and(|m| failures >= m) {
            self.reset();
            return None;
        }
        Some(self.next_delay(random))
    }
}

/// Whether a failed connection attempt is worth retrying: I/O errors,
/// timeouts, a connection that ended early, 5xx answers (and 429), proxy
/// failures; not usage errors, redirects we refused, or a server that
/// rejected the request (4xx) or answered wrongly.
pub fn is_transient(err: &Error) -> bool {
    match err {
        Error::Io(_) | Error::Closed(_) => true,
        Error::Handshake(h) => match h {
            HandshakeError::Timeout | HandshakeError::Eof | HandshakeError::Proxy(_) => true,
            HandshakeError::UnexpectedStatus { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> ClientUrl {
        ClientUrl::parse(s).unwrap()
    }

    #[test]
    fn urls() {
        let x = u("ws://Example.COM/a/b?c=d");
        assert_eq!(
            (x.host(), x.port(), x.resource()),
            ("example.com", 80, "/a/b?c=d")
        );
        assert_eq!(x.host_header(), "example.com");
        assert!(!x.is_secure());
        let x = u("wss://h:8443");
        assert_eq!(
            (x.port(), x.resource(), x.host_header()),
            (8443, "/", "h:8443".into())
        );
        let x = u("wss://h:443/");
        assert_eq!(x.host_header(), "h");
        let x = u("ws://h?q");
        assert_eq!(x.resource(), "/?q");
        let x = u("http://h/x");
        assert!(!x.is_secure());
        assert!(u("https://h/x").is_secure());
        let x = u("ws://[::1]/");
        assert_eq!(
            (x.host(), x.port(), x.host_header()),
            ("::1", 80, "[::1]".into())
        );
        assert_eq!(x.authority(), "[::1]:80");
        let x = u("ws://[2001:DB8::1]:9001/p");
        assert_eq!((x.host(), x.port()), ("2001:db8::1", 9001));
        let x = u("ws://us%40er:p%3Ass@h/");
        assert_eq!(x.credentials(), Some("us@er:p:ss"));
        assert!(!format!("{x:?}").contains("p:ss"));
        let plan = ClientPlan::from_url(x.clone(), ClientOptions::new()).unwrap();
        assert!(!format!("{plan:?}").contains("dXNAZXI6cDpzcw"));
        assert_eq!(x.host(), "h");
        assert_eq!(x.to_string(), "ws://h/");
        assert_eq!(u("ws://[::1]:9001/a").to_string(), "ws://[::1]:9001/a");
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "",
            "example.com",
            "ftp://h/",
            "ws:/h",
            "ws://",
            "ws:///p",
            "ws://h:0/",
            "ws://h:70000/",
            "ws://h:x/",
            "ws://h/#frag",
            "ws://h/a b",
            "ws://[::1/",
            "ws://[nope]/",
            "ws://[::1]x/",
            "ws://h\r\nX: y/",
            "ws+unix:",
            "ws+unix::/path",
            "ws://%41/",
            "ws://h%2fx/",
            "ws://bücher.example/",
            "ws://h/`",
            "ws://h/<x>",
            "ws+unix:/s:/a`b",
        ] {
            assert!(ClientUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unix_urls() {
        let x = u("ws+unix:/tmp/s.sock:/chat?x=1");
        assert_eq!(x.unix_socket(), Some("/tmp/s.sock"));
        assert_eq!(x.resource(), "/chat?x=1");
        assert_eq!(x.host_header(), "localhost");
        let y = u("ws+unix:///tmp/s.sock:/chat?x=1");
        assert_eq!(x, y);
        let z = u("ws+unix:/tmp/s.sock");
        assert_eq!((z.unix_socket(), z.resource()), (Some("/tmp/s.sock"), "/"));
        assert_eq!(z.to_string(), "ws+unix:/tmp/s.sock:/");
        assert!(x.same_host(&z));
        assert!(!x.same_host(&u("ws+unix:/tmp/other:/chat")));
        assert!(!x.same_host(&u("ws://localhost/")));
    }

    #[test]
    fn join_locations() {
        let base = u("ws://h:1/a/b?q");
        assert_eq!(base.join("/x").unwrap().to_string(), "ws://h:1/x");
        assert_eq!(base.join("c?d").unwrap().to_string(), "ws://h:1/a/c?d");
        assert_eq!(base.join("?z").unwrap().to_string(), "ws://h:1/a/b?z");
        assert_eq!(base.join("//o:2/p").unwrap().to_string(), "ws://o:2/p");
        assert_eq!(base.join("wss://o/p").unwrap().to_string(), "wss://o/p");
        assert_eq!(base.join("http://o:3/").unwrap().to_string(), "ws://o:3/");
        assert_eq!(base.join("/x#f").unwrap().to_string(), "ws://h:1/x");
        assert!(base.join("ftp://o/").is_err());
        assert!(base.join("").is_err());
        assert!(base.join("/a b").is_err());
    }

    fn status(code: u16, location: &str) -> Error {
        Error::Handshake(HandshakeError::UnexpectedStatus {
            status: code,
            headers: vec![("location".into(), location.as_bytes().to_vec())],
            body: Vec::new(),
        })
    }

    fn auth_of(plan: &ClientPlan) -> Option<String> {
        plan.request()
            .unwrap()
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn request_from_options() {
        let opts = ClientOptions::new()
            .origin("http://o")
            .protocols(["a", "b"])
            .header(header::COOKIE, HeaderValue::from_static("k=v"));
        let plan = ClientPlan::new("ws://u:p@h:81/x?y", opts).unwrap();
        let req = plan.request().unwrap();
        assert_eq!(req.uri(), "/x?y");
        assert_eq!(req.headers()[header::HOST], "h:81");
        assert_eq!(req.headers()[header::ORIGIN], "http://o");
        assert_eq!(req.headers()[header::SEC_WEBSOCKET_PROTOCOL], "a, b");
        assert_eq!(req.headers()[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(auth_of(&plan).unwrap(), "Basic dTpw");
        // The whole request as written by the handshake: deflate offered by
        // default.
        let mut hs = plan.handshake(Instant::now(), [1; 32]).unwrap();
        let mut out = Vec::new();
        let _ = hs.poll_transmit(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("GET /x?y HTTP/1.1\r\nHost: h:81\r\n"),
            "{text}"
        );
        assert!(
            text.contains("sec-websocket-extensions: permessage-deflate")
                || text.contains("Sec-WebSocket-Extensions: permessage-deflate")
        );
        // Turned off.
        let plan = ClientPlan::new("ws://h/", ClientOptions::new().deflate(None)).unwrap();
        let mut out = Vec::new();
        let _ = plan
            .handshake(Instant::now(), [1; 32])
            .unwrap()
            .poll_transmit(&mut out);
        assert!(!String::from_utf8(out)
            .unwrap()
            .to_ascii_lowercase()
            .contains("extensions"));
        // Version 8 sends Sec-WebSocket-Origin.
        let plan = ClientPlan::new(
            "ws://h/",
            ClientOptions::new().protocol_version(8).origin("http://o"),
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = plan
            .handshake(Instant::now(), [1; 32])
            .unwrap()
            .poll_transmit(&mut out);
        let text = String::from_utf8(out).unwrap().to_ascii_lowercase();
        assert!(text.contains("sec-websocket-version: 8\r\n"), "{text}");
        assert!(
            text.contains("sec-websocket-origin: http://o\r\n"),
            "{text}"
        );
        // Refused options.
        for bad in [
            ClientOptions::new().protocol_version(7),
            ClientOptions::new().protocols(["a", "a"]),
            ClientOptions::new().protocol("a b"),
            ClientOptions::new().protocol(""),
        ] {
            assert!(ClientPlan::new("ws://h/", bad).is_err());
        }
        let o = ClientOptions::new().max_payload(1000);
        assert_eq!(o.connection_config().max_message_size, 1000);
        assert_eq!(o.connection_config().max_frame_size, 1000);
    }

    #[test]
    fn redirects_strip_credentials_cross_origin() {
        let opts = ClientOptions::new()
            .follow_redirects(true)
            .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"))
            .header(header::COOKIE, HeaderValue::from_static("c=1"));
        // Same host and port: kept.
        let mut plan = ClientPlan::new("ws://h:1/a", opts.clone()).unwrap();
        plan.handle_failure(status(302, "/b")).unwrap();
        assert_eq!(plan.url().to_string(), "ws://h:1/b");
        assert_eq!(auth_of(&plan).unwrap(), "Bearer t");
        assert!(plan
            .request()
            .unwrap()
            .headers()
            .contains_key(header::COOKIE));
        // Another port: stripped, and it stays stripped coming back.
        plan.handle_failure(status(307, "ws://h:2/c")).unwrap();
        assert_eq!(plan.request().unwrap().headers()[header::HOST], "h:2");
        assert_eq!(auth_of(&plan), None);
        assert!(!plan
            .request()
            .unwrap()
            .headers()
            .contains_key(header::COOKIE));
        plan.handle_failure(status(308, "ws://h:1/d")).unwrap();
        assert_eq!(auth_of(&plan), None);
        assert_eq!(plan.redirects(), 3);
        // wss to ws on the same host: stripped.
        let mut plan = ClientPlan::new("wss://h/a", opts.clone()).unwrap();
        plan.handle_failure(status(301, "ws://h:443/b")).unwrap();
        assert_eq!(auth_of(&plan), None);
        // URL credentials: sent, and stripped cross-origin.
        let mut plan =
            ClientPlan::new("ws://u:p@h/a", ClientOptions::new().follow_redirects(true)).unwrap();
        assert!(auth_of(&plan).is_some());
        plan.handle_failure(status(302, "ws://other/")).unwrap();
        assert_eq!(auth_of(&plan), None);
    }

    #[test]
    fn redirect_policy() {
        // Off by default: the 3xx is the error.
        let mut plan = ClientPlan::new("ws://h/", ClientOptions::new()).unwrap();
        let e = plan.handle_failure(status(302, "/b")).unwrap_err();
        assert!(matches!(
            e,
            Error::Handshake(HandshakeError::UnexpectedStatus { status: 302, .. })
        ));
        // max_redirects.
        let opts = ClientOptions::new().follow_redirects(true).max_redirects(2);
        let mut plan = ClientPlan::new("ws://h/", opts).unwrap();
        plan.handle_failure(status(302, "/1")).unwrap();
        plan.handle_failure(status(302, "/2")).unwrap();
        let e = plan.handle_failure(status(302, "/3")).unwrap_err();
        assert_eq!(e, Error::Handshake(HandshakeError::TooManyRedirects(2)));
        // Not a redirect status, or no Location: the error itself.
        let mut plan =
            ClientPlan::new("ws://h/", ClientOptions::new().follow_redirects(true)).unwrap();
        assert!(plan.handle_failure(status(404, "/x")).is_err());
        let no_loc = Error::Handshake(HandshakeError::UnexpectedStatus {
            status: 302,
            headers: vec![],
            body: vec![],
        });
        assert_eq!(plan.handle_failure(no_loc.clone()).unwrap_err(), no_loc);
        assert!(matches!(
            plan.handle_failure(status(302, "ftp://x/")).unwrap_err(),
            Error::Handshake(HandshakeError::BadRedirect(_))
        ));
        // The hook sees each hop, can add headers, and can stop.
        let opts = ClientOptions::new()
            .follow_redirects(true)
            .header(header::AUTHORIZATION, HeaderValue::from_static("x"))
            .on_redirect(|r, h| {
                if r.to.port() == 9 {
                    return false;
                }
                assert!(r.stripped_credentials);
                assert_eq!(r.hop, 1);
                h.insert("x-hop", HeaderValue::from(r.hop as u16));
                true
            });
        let mut plan = ClientPlan::new("ws://h/", opts).unwrap();
        plan.handle_failure(status(302, "ws://o/")).unwrap();
        assert_eq!(plan.request().unwrap().headers()["x-hop"], "1");
        assert!(plan.handle_failure(status(302, "ws://o:9/")).is_err());
        assert_eq!(plan.url().to_string(), "ws://o/");
    }

    #[test]
    fn response_body_bounds() {
        let mk = |headers: Vec<(&str, &str)>, body: &[u8]| {
            Error::Handshake(HandshakeError::UnexpectedStatus {
                status: 403,
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body: body.to_vec(),
            })
        };
        let mut e = mk(vec![("content-length", "10")], b"abc");
        assert_eq!(unexpected_body_remaining(&mut e, 100), Some(7));
        extend_unexpected_body(&mut e, b"defghij");
        assert_eq!(unexpected_body_remaining(&mut e, 100), None);
        let mut e = mk(vec![("Content-Length", "1000")], b"abc");
        assert_eq!(unexpected_body_remaining(&mut e, 5), Some(2));
        let mut e = mk(vec![], b"abcdefgh");
        assert_eq!(unexpected_body_remaining(&mut e, 5), None);
        let Error::Handshake(HandshakeError::UnexpectedStatus { body, .. }) = &e else {
            unreachable!()
        };
        assert_eq!(body, b"abcde");
        let mut e = mk(
            vec![("transfer-encoding", "chunked")],
            b"3\r\nabc\r\n0\r\n\r\n",
        );
        assert_eq!(unexpected_body_remaining(&mut e, 100), None);
        let mut e = mk(vec![], b"");
        assert_eq!(unexpected_body_remaining(&mut e, 100), Some(100));
        let mut other = Error::Handshake(HandshakeError::Eof);
        assert_eq!(unexpected_body_remaining(&mut other, 100), None);
    }

    #[test]
    fn backoff() {
        let mut b = Backoff::new()
            .initial(Duration::from_millis(100))
            .max(Duration::from_millis(350))
            .jitter(0.0);
        let d: Vec<_> = (0..4).map(|_| b.next_delay(u64::MAX).as_millis()).collect();
        assert_eq!(d, [100, 200, 350, 350]);
        assert_eq!(b.failures(), 4);
        let mut b = Backoff::new().jitter(0.5);
        let lo = b.clone().next_delay(u64::MAX);
        let hi = b.next_delay(0);
        assert_eq!(hi, Duration::from_secs(1));
        assert!(lo >= Duration::from_millis(500) && lo < Duration::from_millis(501));
        let mut b = Backoff::new();
        for _ in 0..100_000 {
            assert!(b.next_delay(12345) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn transient_errors() {
        assert!(is_transient(&HandshakeError::Timeout.into()));
        assert!(is_transient(&status(503, "")));
        assert!(!is_transient(&status(404, "")));
        assert!(!is_transient(&UsageError::InvalidRequest.into()));
        assert!(is_transient(
            &std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()
        ));
    }
}

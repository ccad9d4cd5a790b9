//! Proxies, sans-IO: HTTP CONNECT (RFC 9110 §9.3.6, with basic auth) and
//! SOCKS5 (RFC 1928, username/password from RFC 1929) tunnel handshakes as
//! small state machines, and the choice of a proxy from the usual
//! environment variables.
//!
//! An adapter opens TCP to the proxy, then pumps a [`ProxyHandshake`] like
//! the WebSocket handshake: write what [`ProxyHandshake::poll_transmit`]
//! gives, feed what the proxy answers to [`ProxyHandshake::handle_input`]
//! until it returns `Ok(true)`, then runs TLS (for `wss://`) and the
//! WebSocket handshake through the tunnel, starting with
//! [`ProxyHandshake::into_leftover`].

use crate::client::{parse_authority, ClientUrl};
use crate::connection::Transmit;
use crate::error::{HandshakeError, UsageError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::fmt;

/// The most bytes of a proxy's answer we read before giving up.
const MAX_PROXY_RESPONSE: usize = 16 << 10;

/// Which tunnel protocol a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyProtocol {
    /// An HTTP proxy, asked with `CONNECT host:port`.
    HttpConnect,
    /// A SOCKS5 proxy. The target's name is sent to the proxy, which
    /// resolves it (the `socks5h` behaviour; `socks5://` URLs are treated
    /// the same, so no name is ever resolved locally).
    Socks5,
}

/// A proxy server: protocol, address and optional credentials.
///
/// ```
/// use ws_proto::{Proxy, ProxyProtocol};
/// let p = Proxy::parse("http://user:secret@127.0.0.1:3128").unwrap();
/// assert_eq!(p.protocol(), ProxyProtocol::HttpConnect);
/// assert_eq!((p.host(), p.port()), ("127.0.0.1", 3128));
/// let p = Proxy::parse("socks5h://[::1]:1080").unwrap();
/// assert_eq!(p.protocol(), ProxyProtocol::Socks5);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    protocol: ProxyProtocol,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("Proxy")
            .field("protocol", &self.protocol)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

impl Proxy {
    /// Parses a proxy URL: `http://[user:pass@]host[:port]` (port 80 by
    /// default; a bare `host:port` means `http://`), `socks5://` or
    /// `socks5h://` (port 1080 by default). `https://` proxies (TLS to the
    /// proxy itself) are not supported and are refused.
    pub fn parse(url: &str) -> Result<Proxy, UsageError> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_string(), url),
        };
        let (protocol, default_port) = match scheme.as_str() {
            "http" => (ProxyProtocol::HttpConnect, 80),
            "socks5" | "socks5h" => (ProxyProtocol::Socks5, 1080),
            "https" => return Err(UsageError::InvalidUrl("https proxies are not supported")),
            _ => {
                return Err(UsageError::InvalidUrl(
                    "proxy scheme must be http or socks5",
                ))
            }
        };
        let authority = rest.split('/').next().unwrap_or("");
        if authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UsageError::InvalidUrl("spaces or control characters"));
        }
        let (creds, host, port) = parse_authority(authority, default_port)?;
        Ok(Proxy {
            protocol,
            host,
            port,
            credentials: creds,
        })
    }

    /// An HTTP CONNECT proxy at `host:port`.
    pub fn http(host: impl Into<String>, port: u16) -> Proxy {
        Proxy {
            protocol: ProxyProtocol::HttpConnect,
            host: bare(host.into()),
            port,
            credentials: None,
        }
    }

    /// A SOCKS5 proxy at `host:port`.
    pub fn socks5(host: impl Into<String>, port: u16) -> Proxy {
        Proxy {
            protocol: ProxyProtocol::Socks5,
            host: bare(host.into()),
            port,
            credentials: None,
        }
    }

    /// Authenticates with a user name and password (HTTP basic
    /// `Proxy-Authorization`, or SOCKS5 username/password).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// The protocol.
    pub fn protocol(&self) -> ProxyProtocol {
        self.protocol
    }

    /// The proxy's host (an IPv6 literal without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, if the proxy has credentials.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.0.as_str())
    }

    /// The tunnel handshake to `host:port` through this proxy. Fails when
    /// the target cannot be expressed (a SOCKS5 name or credentials over
    /// 255 bytes).
    pub fn handshake(&self, host: &str, port: u16) -> Result<ProxyHandshake, UsageError> {
        let host = bare(host.to_string());
        let mut out = Vec::new();
        let state = match self.protocol {
            ProxyProtocol::HttpConnect => {
                let authority = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                if authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(UsageError::InvalidRequest);
                }
                out.extend_from_slice(
                    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").as_bytes(),
                );
                if let Some((u, p)) = &self.credentials {
                    let token = BASE64.encode(format!("{u}:{p}"));
                    out.extend_from_slice(
                        format!("Proxy-Authorization: Basic {token}\r\n").as_bytes(),
                    );
                }
                out.extend_from_slice(b"\r\n");
                State::HttpResponse
            }
            ProxyProtocol::Socks5 => {
                if let Some((u, p)) = &self.credentials {
                    if u.is_empty() || u.len() > 255 || p.len() > 255 {
                        return Err(UsageError::InvalidRequest);
                    }
                    // RFC 1928 §3: offer "no auth" and "username/password".
                    out.extend_from_slice(&[5, 2, 0, 2]);
                } else {
                    out.extend_from_slice(&[5, 1, 0]);
                }
                State::SocksMethod
            }
        };
        let connect = if self.protocol == ProxyProtocol::Socks5 {
            // RFC 1928 §4: the CONNECT request, by address or by name.
            let mut req = vec![5, 1, 0];
            if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
                req.push(1);
                req.extend_from_slice(&ip.octets());
            } else if let Ok(ip) = host.parse::<std::net::Ipv6Addr>() {
                req.push(4);
                req.extend_from_slice(&ip.octets());
            } else {
                if host.is_empty() || host.len() > 255 {
                    return Err(UsageError::InvalidRequest);
                }
                req.push(3);
                req.push(host.len() as u8);
                req.extend_from_slice(host.as_bytes());
            }
            req.extend_from_slice(&port.to_be_bytes());
            req
        } else {
            Vec::new()
        };
        Ok(ProxyHandshake {
            state,
            out,
            connect,
            credentials: self.credentials.clone(),
            buf: Vec::new(),
            scan: 0,
            done_at: 0,
        })
    }
}

fn bare(host: String) -> String {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(h) => h.to_string(),
        None => host,
    }
}

/// How a client reaches the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxySetting {
    /// Directly (the default).
    #[default]
    None,
    /// Through the proxy the environment names for the URL (see
    /// [`proxy_from_env`]).
    FromEnv,
    /// Through this proxy.
    Explicit(Proxy),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    HttpResponse,
    SocksMethod,
    SocksAuth,
    SocksReply,
    Done,
}

/// The tunnel handshake with a proxy, sans-IO (see the module docs).
///
/// ```
/// use ws_proto::Proxy;
/// let mut hs = Proxy::http("proxy", 3128).handshake("example.com", 443).unwrap();
/// let mut out = Vec::new();
/// let _ = hs.poll_transmit(&mut out);
/// assert!(out.starts_with(b"CONNECT example.com:443 HTTP/1.1\r\n"));
/// assert_eq!(hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(true));
/// ```
#[derive(Debug)]
pub struct ProxyHandshake {
    state: State,
    out: Vec<u8>,
    connect: Vec<u8>,
    credentials: Option<(String, String)>,
    buf: Vec<u8>,
    scan: usize,
    done_at: usize,
}

fn fail<T>(why: impl Into<String>) -> Result<T, HandshakeError> {
    Err(HandshakeError::Proxy(why.into()))
}

fn socks_reply_text(code: u8) -> &'static str {
    // RFC 1928 §6.
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown SOCKS failure",
    }
}

impl ProxyHandshake {
    /// Appends the bytes to send to the proxy now, if any.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.out.is_empty() {
            return None;
        }
        buf.append(&mut self.out);
        Some(Transmit::Data)
    }

    /// Whether the tunnel is open.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds the proxy's answer. `Ok(false)`: more input needed (send what
    /// [`ProxyHandshake::poll_transmit`] gives first); `Ok(true)`: the
    /// tunnel is open; `Err(HandshakeError::Proxy)`: the proxy refused or
    /// answered something else.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<bool, HandshakeError> {
        if self.state == State::Done {
            self.buf.extend_from_slice(data);
            return Ok(true);
        }
        self.buf.extend_from_slice(data);
        loop {
            let before = self.state;
            match self.state {
                State::HttpResponse => self.http_response()?,
                State::SocksMethod => self.socks_method()?,
                State::SocksAuth => self.socks_auth()?,
                State::SocksReply => self.socks_reply()?,
                State::Done => return Ok(true),
            }
            if self.state == before {
                if self.buf.len() > MAX_PROXY_RESPONSE {
                    return fail("answer too large");
                }
                return Ok(false);
            }
        }
    }

    /// Bytes the proxy sent after opening the tunnel (already from the
    /// server); feed them to the next layer first.
    pub fn into_leftover(mut self) -> Vec<u8> {
        self.buf.split_off(self.done_at.min(self.buf.len()))
    }

    /// [`into_leftover`](Self::into_leftover), checked against what runs
    /// next through the tunnel to `url`. For `wss://` that is TLS, whose
    /// server says nothing before the client's hello: bytes after the
    /// proxy's answer are not the server's, and are an error
    /// ([`HandshakeError::Proxy`]). For `ws://` they go to the WebSocket
    /// handshake.
    pub fn into_leftover_for(self, url: &ClientUrl) -> Result<Vec<u8>, HandshakeError> {
        let leftover = self.into_leftover();
        if url.is_secure() && !leftover.is_empty() {
            return fail("data before the TLS handshake");
        }
        Ok(leftover)
    }

    fn http_response(&mut self) -> Result<(), HandshakeError> {
        let Some(end) = crate::handshake::find_head_end(&self.buf, &mut self.scan) else {
            return Ok(());
        };
        if end > MAX_PROXY_RESPONSE {
            return fail("answer too large");
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&self.buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return fail("incomplete HTTP answer"),
            Err(e) => return fail(format!("malformed HTTP answer: {e}")),
        }
        let code = resp.code.unwrap_or(0);
        if !(200..300).contains(&code) {
            let reason = resp.reason.unwrap_or("");
            return match code {
                407 => fail(format!("407 {reason}: proxy authentication required")),
                _ => fail(format!("CONNECT answered {code} {reason}")),
            };
        }
        self.done_at = end;
        self.state = State::Done;
        Ok(())
    }

    fn socks_method(&mut self) -> Result<(), HandshakeError> {
        if self.buf.len() < 2 {
            return Ok(());
        }
        if self.buf[0] != 5 {
            return fail("not a SOCKS5 proxy");
        }
        let method = self.buf[1];
        self.buf.drain(..2);
        match (method, &self.credentials) {
            (0, _) => {
                self.out.extend_from_slice(&self.connect);
                self.state = State::SocksReply;
            }
            (2, Some((u, p))) => {
                // RFC 1929 §2.
                self.out.push(1);
                self.out.push(u.len() as u8);
                self.out.extend_from_slice(u.as_bytes());
                self.out.push(p.len() as u8);
                self.out.extend_from_slice(p.as_bytes());
                self.state = State::SocksAuth;
            }
            (0xff, _) => return fail("SOCKS5 proxy accepts none of our authentication methods"),
            (m, _) => {
                return fail(format!(
                    "SOCKS5 proxy chose method {m} that was not offered"
                ))
            }
        }
        Ok(())
    }

    fn socks_auth(&mut self) -> Result<(), HandshakeError> {
        if self.buf.len() < 2 {
            return Ok(());
        }
        if self.buf[1] != 0 {
            return fail("SOCKS5 authentication failed");
        }
        self.buf.drain(..2);
        self.out.extend_from_slice(&self.connect);
        self.state = State::SocksReply;
        Ok(())
    }

    fn socks_reply(&mut self) -> Result<(), HandshakeError> {
        if self.buf.len() < 5 {
            return Ok(());
        }
        if self.buf[0] != 5 {
            return fail("malformed SOCKS5 reply");
        }
        if self.buf[1] != 0 {
            return fail(socks_reply_text(self.buf[1]));
        }
        let len = match self.buf[3] {
            1 => 4 + 6,
            4 => 16 + 6,
            3 => 5 + self.buf[4] as usize + 2,
            _ => return fail("malformed SOCKS5 reply"),
        };
        if self.buf.len() < len {
            return Ok(());
        }
        self.done_at = len;
        self.state = State::Done;
        Ok(())
    }
}

/// The environment variables consulted for a URL, in order: for `wss://`
/// `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`, then
/// `all_proxy`, `ALL_PROXY`; for `ws://` `ws_proxy`, `WS_PROXY`,
/// `http_proxy` (not `HTTP_PROXY`, which CGI servers fill from a request
/// header), then `all_proxy`, `ALL_PROXY`. The first non-empty one wins.
pub fn proxy_env_names(secure: bool) -> &'static [&'static str] {
    if secure {
        &[
            "wss_proxy",
            "WSS_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ]
    } else {
        &[
            "ws_proxy",
            "WS_PROXY",
            "http_proxy",
            "all_proxy",
            "ALL_PROXY",
        ]
    }
}

/// The proxy the environment names for `url`, through `env` (a lookup such
/// as `|k| std::env::var(k).ok()`): see [`proxy_env_names`] for the order,
/// and [`no_proxy_matches`] for `no_proxy` / `NO_PROXY`, which exempts
/// hosts. `ws+unix:` URLs never use a proxy. An unparsable proxy URL is an
/// error rather than a silent direct connection.
pub fn proxy_from_env(
    url: &ClientUrl,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, UsageError> {
    if url.unix_socket().is_some() {
        return Ok(None);
    }
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let Some(value) = proxy_env_names(url.is_secure()).iter().find_map(|k| get(k)) else {
        return Ok(None);
    };
    if let Some(list) = get("no_proxy").or_else(|| get("NO_PROXY")) {
        if no_proxy_matches(&list, url.host(), url.port()) {
            return Ok(None);
        }
    }
    Proxy::parse(&value).map(Some)
}

/// Whether a `no_proxy` list exempts `host:port`. The list is separated by
/// commas or spaces; `*` matches every host; an entry matches the host
/// itself and, as a domain, every subdomain (`example.com` and
/// `.example.com` both match `a.example.com`); IP literals match exactly
/// (IPv6 with or without brackets); an entry with `:port` matches only that
/// port. Comparison ignores case.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = bare(host.to_ascii_lowercase());
    let host = host.trim_end_matches('.');
    list.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            // Split an optional port, minding bare IPv6 literals.
            let (name, eport) = if let Some(rest) = entry.strip_prefix('[') {
                match rest.split_once(']') {
                    Some((h, p)) => (h.to_string(), p.strip_prefix(':').map(str::to_string)),
                    None => return false,
                }
            } else if entry.matches(':').count() == 1 {
                let (h, p) = entry.split_once(':').unwrap_or((&entry, ""));
                (h.to_string(), Some(p.to_string()))
            } else {
                (entry.clone(), None)
            };
            if let Some(p) = eport {
                if p.parse::<u16>().ok() != Some(port) {
                    return false;
                }
            }
            let name = name.trim_start_matches("*.").trim_start_matches('.');
            let name = name.trim_end_matches('.');
            if name.is_empty() {
                return false;
            }
            host == name
                || (host.parse::<std::net::IpAddr>().is_err()
                    && host.len() > name.len()
                    && host.ends_with(name)
                    && host.as_bytes()[host.len() - name.len() - 1] == b'.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn drive(hs: &mut ProxyHandshake) -> Vec<u8> {
        let mut out = Vec::new();
        while hs.poll_transmit(&mut out).is_some() {}
        out
    }

    #[test]
    fn parse_proxies() {
        let p = Proxy::parse("http://u%3A1:p%40ss@Proxy.Local:3128/").unwrap();
        assert_eq!(
            (p.protocol(), p.host(), p.port()),
            (ProxyProtocol::HttpConnect, "proxy.local", 3128)
        );
        assert_eq!(p.credentials, Some(("u:1".into(), "p@ss".into())));
        assert!(!format!("{p:?}").contains("p@ss"));
        assert_eq!(Proxy::parse("proxy:8080").unwrap().port(), 8080);
        assert_eq!(Proxy::parse("http://proxy").unwrap().port(), 80);
        assert_eq!(Proxy::parse("socks5://[::1]").unwrap().port(), 1080);
        assert_eq!(
            Proxy::parse("socks5h://h:1").unwrap().protocol(),
            ProxyProtocol::Socks5
        );
        for bad in [
            "https://p:1",
            "ftp://p",
            "http://",
            "http://p:99999",
            "http://p q",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_connect() {
        let mut hs = Proxy::http("p", 1)
            .with_credentials("aladdin", "opensesame")
            .handshake("[::1]", 9001)
            .unwrap();
        let out = drive(&mut hs);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n\
             Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n\r\n"
        );
        // Dribbled answer with bytes from the server behind it.
        let answer = b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nHTTP/1.1 101";
        for (i, b) in answer.iter().enumerate() {
            let done = hs.handle_input(&[*b]).unwrap();
            assert_eq!(done, i >= answer.len() - 13, "at {i}");
        }
        assert_eq!(hs.into_leftover(), b"HTTP/1.1 101");
        // A proxy that ends its lines with a bare LF.
        let mut hs = Proxy::http("p", 1).handshake("h", 80).unwrap();
        assert_eq!(hs.handle_input(b"HTTP/1.1 200 OK\nX: y\n\nrest"), Ok(true));
        assert_eq!(hs.into_leftover(), b"rest");
        // Refusals.
        let mut hs = Proxy::http("p", 1).handshake("h", 80).unwrap();
        let e = hs.handle_input(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        assert!(matches!(e, Err(HandshakeError::Proxy(s)) if s.contains("407")));
        let mut hs = Proxy::http("p", 1).handshake("h", 80).unwrap();
        assert!(hs
            .handle_input(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            .is_err());
        let mut hs = Proxy::http("p", 1).handshake("h", 80).unwrap();
        assert!(hs.handle_input(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        // An endless answer is bounded.
        let mut hs = Proxy::http("p", 1).handshake("h", 80).unwrap();
        let junk = vec![b'a'; 1024];
        let mut r = Ok(false);
        for _ in 0..100 {
            r = hs.handle_input(&junk);
            if r.is_err() {
                break;
            }
        }
        assert!(r.is_err());
        assert!(Proxy::http("p", 1).handshake("a b", 80).is_err());
    }

    #[test]
    fn socks5_no_auth_domain() {
        let mut hs = Proxy::socks5("p", 1).handshake("example.com", 443).unwrap();
        assert_eq!(drive(&mut hs), [5, 1, 0]);
        assert_eq!(hs.handle_input(&[5, 0]), Ok(false));
        let mut want = vec![5, 1, 0, 3, 11];
        want.extend_from_slice(b"example.com");
        want.extend_from_slice(&[1, 187]);
        assert_eq!(drive(&mut hs), want);
        // Reply with a domain-name bound address, split, then server bytes.
        let mut reply = vec![5, 0, 0, 3, 4];
        reply.extend_from_slice(b"abcd");
        reply.extend_from_slice(&[0, 80]);
        reply.extend_from_slice(b"HTTP");
        assert_eq!(hs.handle_input(&reply[..6]), Ok(false));
        assert_eq!(hs.handle_input(&reply[6..]), Ok(true));
        assert!(hs.is_done());
        assert_eq!(hs.into_leftover(), b"HTTP");
    }

    #[test]
    fn socks5_user_pass_and_addresses() {
        let mut hs = Proxy::socks5("p", 1)
            .with_credentials("u", "pw")
            .handshake("127.0.0.1", 9001)
            .unwrap();
        assert_eq!(drive(&mut hs), [5, 2, 0, 2]);
        assert_eq!(hs.handle_input(&[5, 2]), Ok(false));
        assert_eq!(drive(&mut hs), [1, 1, b'u', 2, b'p', b'w']);
        assert_eq!(hs.handle_input(&[1, 0]), Ok(false));
        assert_eq!(drive(&mut hs), [5, 1, 0, 1, 127, 0, 0, 1, 0x23, 0x29]);
        assert_eq!(hs.handle_input(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Ok(true));
        // Bad password.
        let mut hs = Proxy::socks5("p", 1)
            .with_credentials("u", "x")
            .handshake("h", 1)
            .unwrap();
        hs.handle_input(&[5, 2]).unwrap();
        assert!(hs.handle_input(&[1, 1]).is_err());
        // No acceptable method; method not offered; failure replies; IPv6.
        let mut hs = Proxy::socks5("p", 1).handshake("h", 1).unwrap();
        assert!(hs.handle_input(&[5, 0xff]).is_err());
        let mut hs = Proxy::socks5("p", 1).handshake("h", 1).unwrap();
        assert!(hs.handle_input(&[5, 2]).is_err());
        let mut hs = Proxy::socks5("p", 1).handshake("::1", 1).unwrap();
        drive(&mut hs);
        hs.handle_input(&[5, 0]).unwrap();
        let req = drive(&mut hs);
        assert_eq!(&req[..4], &[5, 1, 0, 4]);
        assert_eq!(req.len(), 4 + 16 + 2);
        let e = hs.handle_input(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(e, Err(HandshakeError::Proxy("connection refused".into())));
        let mut hs = Proxy::socks5("p", 1).handshake("h", 1).unwrap();
        assert!(hs.handle_input(&[4, 0]).is_err());
        assert!(Proxy::socks5("p", 1)
            .handshake(&"a".repeat(256), 1)
            .is_err());
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn from_env() {
        let ws = ClientUrl::parse("ws://example.com/").unwrap();
        let wss = ClientUrl::parse("wss://example.com/").unwrap();
        let unix = ClientUrl::parse("ws+unix:/s:/").unwrap();
        let e = env(&[
            ("http_proxy", "http://h:1"),
            ("https_proxy", "socks5://s:2"),
        ]);
        assert_eq!(proxy_from_env(&ws, &e).unwrap().unwrap().port(), 1);
        assert_eq!(
            proxy_from_env(&wss, &e).unwrap().unwrap().protocol(),
            ProxyProtocol::Socks5
        );
        assert_eq!(proxy_from_env(&unix, &e).unwrap(), None);
        // ws_proxy beats http_proxy; all_proxy is the fallback; HTTP_PROXY ignored.
        let e = env(&[("ws_proxy", "h:3"), ("http_proxy", "h:1")]);
        assert_eq!(proxy_from_env(&ws, &e).unwrap().unwrap().port(), 3);
        let e = env(&[("ALL_PROXY", "socks5://a:4"), ("HTTP_PROXY", "h:1")]);
        assert_eq!(proxy_from_env(&ws, &e).unwrap().unwrap().port(), 4);
        assert_eq!(
            proxy_from_env(&ws, env(&[("HTTP_PROXY", "h:1")])).unwrap(),
            None
        );
        assert_eq!(
            proxy_from_env(&ws, env(&[("http_proxy", " ")])).unwrap(),
            None
        );
        // no_proxy.
        let e = env(&[
            ("all_proxy", "h:1"),
            ("NO_PROXY", "localhost, .example.com"),
        ]);
        assert_eq!(proxy_from_env(&ws, &e).unwrap(), None);
        assert!(
            proxy_from_env(&ClientUrl::parse("ws://example.org/").unwrap(), &e)
                .unwrap()
                .is_some()
        );
        assert!(proxy_from_env(&ws, env(&[("all_proxy", "https://x")])).is_err());
    }

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(no_proxy_matches("example.com", "example.com", 1));
        assert!(no_proxy_matches("example.com", "a.b.Example.com", 1));
        assert!(no_proxy_matches(".example.com", "a.example.com", 1));
        assert!(no_proxy_matches("*.example.com", "a.example.com", 1));
        assert!(!no_proxy_matches("example.com", "badexample.com", 1));
        assert!(!no_proxy_matches("example.com", "example.com.evil", 1));
        assert!(no_proxy_matches("a,127.0.0.1 b", "127.0.0.1", 9));
        assert!(!no_proxy_matches("0.0.1", "127.0.0.1", 9));
        assert!(no_proxy_matches("::1", "::1", 9));
        assert!(no_proxy_matches("[::1]:9", "[::1]", 9));
        assert!(!no_proxy_matches("[::1]:9", "::1", 8));
        assert!(no_proxy_matches("h:80", "h", 80));
        assert!(!no_proxy_matches("h:80", "h", 81));
        assert!(!no_proxy_matches("", "h", 81));
        assert!(!no_proxy_matches(".", "h", 81));
    }

    #[test]
    fn nothing_may_follow_the_answer_before_tls() {
        let ws = ClientUrl::parse("ws://example.com/").unwrap();
        let wss = ClientUrl::parse("wss://example.com/").unwrap();
        let open = |extra: &[u8]| {
            let mut hs = Proxy::http("p", 1).handshake("example.com", 443).unwrap();
            let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
            answer.extend_from_slice(extra);
            assert_eq!(hs.handle_input(&answer), Ok(true));
            hs
        };
        // Nothing after the answer: fine either way.
        assert_eq!(open(b"").into_leftover_for(&wss), Ok(Vec::new()));
        assert_eq!(open(b"").into_leftover_for(&ws), Ok(Vec::new()));
        // Bytes after it go to the WebSocket handshake over ws://, and are
        // an error before TLS.
        assert_eq!(
            open(b"HTTP/1.1 101").into_leftover_for(&ws),
            Ok(b"HTTP/1.1 101".to_vec())
        );
        assert_eq!(
            open(b"\x16\x03").into_leftover_for(&wss),
            Err(HandshakeError::Proxy(
                "data before the TLS handshake".into()
            ))
        );
        // Also from SOCKS5: its reply, then a stray byte.
        let mut hs = Proxy::socks5("p", 1).handshake("example.com", 443).unwrap();
        drive(&mut hs);
        assert_eq!(hs.handle_input(&[5, 0]), Ok(false));
        drive(&mut hs);
        assert_eq!(
            hs.handle_input(&[5, 0, 0, 1, 127, 0, 0, 1, 1, 187, 0x16]),
            Ok(true)
        );
        assert!(hs.into_leftover_for(&wss).is_err());
    }
}

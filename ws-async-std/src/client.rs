//! Clients with options: `ws+unix:` URLs, proxies (HTTP CONNECT, SOCKS5,
//! or from the environment), redirects, a handshake timeout per attempt,
//! the body of an unexpected response, and a reconnect helper.
//!
//! Every decision (URL rules, which headers survive a redirect, which proxy,
//! the proxy handshakes, the backoff) is made by `ws-proto`
//! ([`ClientPlan`], [`ProxyHandshake`](ws_proto::ProxyHandshake),
//! [`Backoff`]); this module opens sockets and moves bytes.
//!
//! Built on `async-net` and `async-io` (feature `smol`, the default), so it
//! runs on smol, on async-std and on any executor.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_async_std::Error> {
//! use ws_async_std::client::{connect_with_options, ClientOptions, Proxy, ProxySetting};
//! use ws_async_std::Message;
//! let options = ClientOptions::new()
//!     .origin("https://example.com")
//!     .protocols(["chat"])
//!     .proxy(ProxySetting::Explicit(Proxy::parse("socks5://127.0.0.1:1080").unwrap()))
//!     .follow_redirects(true);
//! let (mut ws, response) = connect_with_options("ws://example.com/chat", options).await?;
//! ws.send(Message::text("hello")).await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! # Cancel safety
//!
//! Dropping a `connect` future drops the socket of the attempt in
//! progress; nothing is left behind. [`Reconnect::next`] is cancel safe in
//! the same way (a cancelled attempt counts for nothing).

use crate::smol::SmolTimer;
use crate::{seed, write_all, Timer, WebSocket};
use async_net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use ws_proto::{
    extend_unexpected_body, http, unexpected_body_remaining, ClientHandshake, Error,
    HandshakeError, Transmit,
};

pub use ws_proto::{
    Backoff, ClientOptions, ClientPlan, ClientUrl, Proxy, ProxyProtocol, ProxySetting, Redirect,
};

/// The stream under a client [`WebSocket`]: TCP (also through a proxy's
/// tunnel), a Unix domain socket, or TLS over either (feature `rustls`).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientStream {
    /// A TCP connection, to the server or to the proxy that tunnels to it.
    Tcp(TcpStream),
    /// A Unix domain socket (`ws+unix:` URLs).
    #[cfg(unix)]
    Unix(async_net::unix::UnixStream),
    /// TLS (`wss://`) over one of the others.
    #[cfg(feature = "rustls")]
    Tls(Box<crate::tls::ClientTlsStream<ClientStream>>),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            ClientStream::Tcp($s) => $e,
            #[cfg(unix)]
            ClientStream::Unix($s) => $e,
            #[cfg(feature = "rustls")]
            ClientStream::Tls($s) => $e,
        }
    };
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_close(cx))
    }
}

async fn read<S: AsyncRead + Unpin>(io: &mut S, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, buf)).await
}

/// Runs `fut` until `deadline`: a timeout is [`HandshakeError::Timeout`].
async fn with_deadline<T>(
    deadline: Option<Instant>,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    crate::before(&SmolTimer, deadline, fut)
        .await
        .unwrap_or(Err(Error::Handshake(HandshakeError::Timeout)))
}

/// Connects with options (see [`ClientOptions`]): `ws://`, `ws+unix:`,
/// and `wss://` with the `rustls` feature (webpki roots; use
/// `Connector::tls_config` for others). Returns the socket and the
/// server's 101 response.
///
/// Errors: [`UsageError::InvalidUrl`](ws_proto::UsageError::InvalidUrl) for a bad URL,
/// [`HandshakeError::UnexpectedStatus`] with the status, headers and (up to
/// [`ClientOptions::max_response_body`]) body of a non-101 answer that is
/// not a redirect being followed, [`HandshakeError::TooManyRedirects`],
/// [`HandshakeError::Proxy`], [`HandshakeError::Timeout`] when an attempt
/// takes longer than the handshake timeout.
pub async fn connect_with_options(
    url: &str,
    options: ClientOptions,
) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
    Connector::new(options).connect(url).await
}

/// Client options plus the TLS configuration: connects any number of
/// times (and makes [`Reconnect`] helpers).
#[derive(Debug, Clone)]
pub struct Connector {
    options: ClientOptions,
    #[cfg(feature = "rustls")]
    tls: Option<std::sync::Arc<crate::tls::ClientConfig>>,
}

impl Connector {
    /// A connector with these options.
    pub fn new(options: ClientOptions) -> Self {
        Connector {
            options,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// The TLS client configuration for `wss://` (default: the webpki
    /// roots, see `tls::ClientTls`).
    #[cfg(feature = "rustls")]
    pub fn tls_config(mut self, config: std::sync::Arc<crate::tls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Connects to `url`, following redirects if the options say so.
    pub async fn connect(
        &self,
        url: &str,
    ) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
        let mut plan = ClientPlan::new(url, self.options.clone())?;
        loop {
            match self.attempt(&plan).await {
                Ok(done) => return Ok(done),
                Err(e) => plan.handle_failure(e)?,
            }
        }
    }

    /// A reconnect helper for `url` (see [`Reconnect`]).
    pub fn reconnect(self, url: impl Into<String>) -> Reconnect {
        Reconnect {
            connector: self,
            url: url.into(),
            backoff: Backoff::new(),
            max_failures: None,
        }
    }

    async fn attempt(
        &self,
        plan: &ClientPlan,
    ) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
        let url = plan.url();
        let proxy = plan.proxy(|k| std::env::var(k).ok())?;
        let hs = plan.handshake(SmolTimer.now(), seed()?)?;
        let deadline = hs.poll_timeout();
        let limit = plan.options().response_body_limit();
        let (stream, leftover) = with_deadline(deadline, async {
            // Checked by the proxy handshake: no leftover before TLS.
            let (stream, leftover) = open(url, proxy.as_ref()).await?;
            if url.is_secure() {
                return Ok((self.start_tls(stream, url).await?, leftover));
            }
            Ok((stream, leftover))
        })
        .await?;
        handshake(stream, hs, leftover, deadline, limit).await
    }

    #[cfg(feature = "rustls")]
    async fn start_tls(
        &self,
        stream: ClientStream,
        url: &ClientUrl,
    ) -> Result<ClientStream, Error> {
        // The hook for wss://: TLS over whatever transport was opened (TCP,
        // a proxy's tunnel, a Unix socket), the URL's host as SNI.
        let config = match &self.tls {
            Some(c) => c.clone(),
            None => crate::tls::webpki_client_config()?,
        };
        let name = crate::tls::server_name(url.host())?;
        let tls = crate::tls::TlsConnector::from(config)
            .connect(name, stream)
            .await?;
        Ok(ClientStream::Tls(Box::new(tls)))
    }

    #[cfg(not(feature = "rustls"))]
    async fn start_tls(
        &self,
        _stream: ClientStream,
        _url: &ClientUrl,
    ) -> Result<ClientStream, Error> {
        Err(Error::Usage(ws_proto::UsageError::InvalidUrl(
            "wss:// needs the `rustls` feature",
        )))
    }
}

/// Opens the transport to `url`: its Unix socket, TCP to it, or TCP to the
/// proxy and the proxy's tunnel. Returns the bytes the proxy sent after
/// opening the tunnel.
async fn open(url: &ClientUrl, proxy: Option<&Proxy>) -> Result<(ClientStream, Vec<u8>), Error> {
    if let Some(path) = url.unix_socket() {
        #[cfg(unix)]
        return Ok((
            ClientStream::Unix(async_net::unix::UnixStream::connect(path).await?),
            Vec::new(),
        ));
        #[cfg(not(unix))]
        {
            let _ = path;
            return Err(ws_proto::UsageError::InvalidUrl("ws+unix: URLs need Unix").into());
        }
    }
    let Some(proxy) = proxy else {
        let tcp = TcpStream::connect((url.host(), url.port())).await?;
        tcp.set_nodelay(true)?;
        return Ok((ClientStream::Tcp(tcp), Vec::new()));
    };
    let mut tcp = TcpStream::connect((proxy.host(), proxy.port())).await?;
    tcp.set_nodelay(true)?;
    let mut hs = proxy.handshake(url.host(), url.port())?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1024];
    loop {
        out.clear();
        while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
        if !out.is_empty() {
            write_all(&mut tcp, &out).await?;
        }
        if hs.is_done() {
            break;
        }
        let n = read(&mut tcp, &mut buf).await?;
        if n == 0 {
            return Err(HandshakeError::Proxy("the proxy closed the connection".into()).into());
        }
        hs.handle_input(&buf[..n])?;
    }
    Ok((ClientStream::Tcp(tcp), hs.into_leftover_for(url)?))
}

/// Runs the WebSocket handshake; on a non-101 answer, reads its body
/// (bounded by `limit` and by the deadline) into the error.
async fn handshake(
    mut io: ClientStream,
    mut hs: ClientHandshake,
    leftover: Vec<u8>,
    deadline: Option<std::time::Instant>,
    limit: usize,
) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
    let res: Result<bool, Error> = with_deadline(deadline, async {
        let mut out = Vec::new();
        while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
        write_all(&mut io, &out).await?;
        if !leftover.is_empty() && hs.handle_input(&leftover)? {
            return Ok(true);
        }
        let mut buf = vec![0u8; 4096];
        loop {
            let n = read(&mut io, &mut buf).await?;
            if n == 0 {
                return Err(Error::Handshake(HandshakeError::Eof));
            }
            if hs.handle_input(&buf[..n])? {
                return Ok(true);
            }
        }
    })
    .await;
    match res {
        Ok(_) => {
            let (resp, conn) = hs.into_connection(SmolTimer.now())?;
            Ok((crate::smol::from_connection(io, conn), resp))
        }
        Err(mut e) => {
            let mut buf = vec![0u8; 4096];
            while let Some(want) = unexpected_body_remaining(&mut e, limit) {
                let n = crate::before(
                    &SmolTimer,
                    deadline,
                    read(&mut io, &mut buf[..want.min(4096)]),
                )
                .await;
                let Some(n) = n else { break };
                match n {
                    Ok(n) if n > 0 => extend_unexpected_body(&mut e, &buf[..n]),
                    _ => break,
                }
            }
            Err(e)
        }
    }
}

/// Reconnects with exponential backoff and jitter, for long-lived clients
/// (like Python websockets' `async for ws in connect(...)`): each call to
/// [`Reconnect::next`] returns a new connection; attempts that fail with a
/// transient error ([`ws_proto::is_transient`]: I/O errors, timeouts, 5xx
/// answers, proxy failures) are retried after [`Backoff::next_delay`],
/// others are returned. A success resets the backoff.
///
/// ```no_run
/// # async fn demo() -> Result<(), ws_async_std::Error> {
/// use ws_async_std::client::{ClientOptions, Connector};
/// let mut reconnect = Connector::new(ClientOptions::new()).reconnect("ws://127.0.0.1:9001/");
/// loop {
///     let (mut ws, _) = reconnect.next().await?;
///     while let Some(msg) = ws.recv().await {
///         match msg {
///             Ok(msg) => println!("{msg:?}"),
///             Err(e) => { eprintln!("{e}"); break; }
///         }
///     }
///     // The connection ended: loop to reconnect.
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Reconnect {
    connector: Connector,
    url: String,
    backoff: Backoff,
    max_failures: Option<u32>,
}

impl Reconnect {
    /// The backoff between failed attempts (default [`Backoff::new`]: 1 s
    /// doubling to 60 s, up to half taken off at random).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Gives up (returning the last error) after this many consecutive
    /// failed attempts; by default it retries forever.
    pub fn max_failures(mut self, n: u32) -> Self {
        self.max_failures = Some(n);
        self
    }

    /// Failed attempts since the last success.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// Connects, retrying transient failures with backoff.
    pub async fn next(&mut self) -> Result<(WebSocket<ClientStream>, http::Response<()>), Error> {
        loop {
            match self.connector.connect(&self.url).await {
                Ok(done) => {
                    self.backoff.reset();
                    return Ok(done);
                }
                Err(e) => {
                    let mut r = [0u8; 8];
                    getrandom::getrandom(&mut r).map_err(|e| Error::from(io::Error::other(e)))?;
                    let random = u64::from_le_bytes(r);
                    match self.backoff.retry_after(&e, self.max_failures, random) {
                        Some(delay) => {
                            async_io::Timer::after(delay).await;
                        }
                        None => return Err(e),
                    }
                }
            }
        }
    }
}

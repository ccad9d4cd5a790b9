//! TLS (`wss://`) with rustls and tokio-rustls (feature `rustls`).
//!
//! A WebSocket over TLS is the same [`WebSocket<S>`](crate::WebSocket),
//! with `S` a TLS stream: [`WssStream`] on the client, [`ServerTlsStream`]
//! on the server. Configs come from [`ClientTls`] and [`ServerTls`]
//! (shared with the other adapters through `ws-rustls`), which use ring as
//! their crypto provider explicitly: nothing depends on a process-wide
//! default provider.
//!
//! Server, from PEM files:
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_tokio::Error> {
//! use ws_tokio::tls;
//! let acceptor = tls::acceptor_from_pem("cert.pem", "key.pem")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let (tcp, _peer) = listener.accept().await?;
//! let mut ws = tls::accept(tcp, &acceptor).await?;
//! while let Some(msg) = ws.recv().await {
//!     ws.send(msg?).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! Client, trusting a private CA besides the webpki roots:
//!
//! ```no_run
//! # async fn demo() -> Result<(), ws_tokio::Error> {
//! use ws_tokio::{tls, Config};
//! let client = tls::ClientTls::new().add_roots_from_pem_file("ca.pem")?.build()?;
//! let request = ws_tokio::http::Request::get("wss://localhost:8443/").body(()).unwrap();
//! let (mut ws, _response) = tls::connect_with(request, Config::default(), client).await?;
//! ws.send(ws_tokio::Message::text("hello")).await?;
//! # Ok(()) }
//! ```
//!
//! # Timeouts
//!
//! [`Config::handshake_timeout`] bounds the TCP connect and the TLS
//! handshake together, and then, again, the WebSocket handshake.
//!
//! # Cancel safety
//!
//! The handshake functions here are not cancel safe: dropping one drops
//! the stream and the TLS session with it. The `WebSocket` they return is
//! as cancel safe as over TCP (see the crate docs): tokio-rustls keeps
//! decrypted bytes that a cancelled read did not return.
//!
//! # Errors
//!
//! A TLS failure (untrusted certificate, wrong host name, a required
//! client certificate missing) is an [`Error::Io`] whose
//! source is a [`rustls::Error`]; [`tls_error`] finds it.

use crate::{now, with_deadline, WebSocket};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use ws_proto::{http, Accept, Config, Error, Reject};

pub use tokio_rustls::{TlsAcceptor, TlsConnector};
pub use ws_rustls::{
    crypto_provider, load_certs, load_private_key, parse_certs, parse_private_key, pki_types,
    rustls, server_name, tls_error, webpki_client_config, ClientConfig, ClientTls, RootCertStore,
    ServerConfig, ServerTls,
};

/// The client's TLS stream over TCP: what [`connect`] returns.
pub type WssStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A server-side TLS stream over `S`.
pub type ServerTlsStream<S> = tokio_rustls::server::TlsStream<S>;

/// A client-side TLS stream over `S`.
pub type ClientTlsStream<S> = tokio_rustls::client::TlsStream<S>;

/// A [`TlsAcceptor`] for the certificate chain and key in two PEM files,
/// with ALPN `http/1.1` and no client certificates. Use [`ServerTls`] for
/// mutual TLS.
pub fn acceptor_from_pem(
    cert: impl AsRef<std::path::Path>,
    key: impl AsRef<std::path::Path>,
) -> io::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(
        ServerTls::from_pem_files(cert, key)?.build()?,
    ))
}

/// Runs the TLS handshake on `io`, then the WebSocket handshake, accepting
/// every valid request.
pub async fn accept<S>(
    io: S,
    acceptor: &TlsAcceptor,
) -> Result<WebSocket<ServerTlsStream<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(io, acceptor, Config::default(), |_| Ok(Accept::new())).await
}

/// [`accept`] with a config and a callback that decides on the request,
/// as in [`crate::accept_with`]. The TLS handshake is bounded by
/// `config.handshake_timeout`.
pub async fn accept_with<S, F>(
    io: S,
    acceptor: &TlsAcceptor,
    config: impl Into<Arc<Config>>,
    decide: F,
) -> Result<WebSocket<ServerTlsStream<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let config = config.into();
    let deadline = config.handshake_timeout.map(|d| now() + d);
    let tls = with_deadline(deadline, async { Ok(acceptor.accept(io).await?) }).await?;
    crate::accept_with(tls, config, decide).await
}

/// Connects to a `wss://` URL, trusting the webpki (Mozilla) roots and
/// offering permessage-deflate, like the plain `connect`.
pub async fn connect(url: &str) -> Result<(WebSocket<WssStream>, http::Response<()>), Error> {
    let req = http::Request::get(url)
        .body(())
        .map_err(|_| Error::Usage(ws_proto::UsageError::InvalidRequest))?;
    let config = Config::default().deflate(Some(crate::DeflateConfig::default()));
    connect_with(req, config, webpki_client_config()?).await
}

/// Connects to a `wss://` URL with a request you built, a config and a
/// TLS client config (from [`ClientTls::build`], or your own). The
/// server's certificate is checked against the URL's host, which is also
/// sent as SNI (unless it is an IP address). Any other scheme is
/// [`UsageError::InvalidRequest`](crate::UsageError::InvalidRequest).
pub async fn connect_with(
    request: http::Request<()>,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<WssStream>, http::Response<()>), Error> {
    let (host, port) = ws_rustls::wss_host_port(request.uri())?;
    let name = server_name(&host)?;
    let deadline = config.handshake_timeout.map(|d| now() + d);
    let stream = with_deadline(deadline, async {
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        Ok(TlsConnector::from(tls).connect(name, tcp).await?)
    })
    .await?;
    crate::client_handshake(stream, request, config).await
}

/// Runs the TLS handshake and then the WebSocket handshake over a stream
/// you opened (through a proxy, say). The certificate is checked against
/// the request's host.
pub async fn client_handshake<S>(
    io: S,
    request: http::Request<()>,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<ClientTlsStream<S>>, http::Response<()>), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let host = request
        .uri()
        .host()
        .ok_or(Error::Usage(ws_proto::UsageError::InvalidRequest))?;
    let name = server_name(host)?;
    let deadline = config.handshake_timeout.map(|d| now() + d);
    let stream = with_deadline(deadline, async {
        Ok(TlsConnector::from(tls).connect(name, io).await?)
    })
    .await?;
    crate::client_handshake(stream, request, config).await
}

//! TLS (`wss://`) with rustls and futures-rustls (feature `rustls`).
//!
//! A WebSocket over TLS is the same [`WebSocket<S>`](crate::WebSocket),
//! with `S` a futures-rustls stream. Configs come from [`ClientTls`] and
//! [`ServerTls`] (shared with the other adapters through `ws-rustls`),
//! which use ring as their crypto provider explicitly: nothing depends on
//! a process-wide default provider.
//!
//! The functions here take a [`Timer`] like the crate-root functions; the
//! [`smol`] and `async_std` submodules (features `smol`, `async-std`) pass
//! their runtime's timer and open the TCP connection.
//!
//! ```no_run
//! # fn main() -> Result<(), ws_async_std::Error> {
//! use ws_async_std::tls;
//! smol::block_on(async {
//!     // Server: certificate chain and key from PEM files.
//!     let acceptor = tls::acceptor_from_pem("cert.pem", "key.pem")?;
//!     let listener = async_net::TcpListener::bind("127.0.0.1:8443").await?;
//!     let (tcp, _peer) = ws_async_std::smol::accept_stream(&listener).await;
//!     let mut ws = tls::smol::accept(tcp, &acceptor).await?;
//!     while let Some(msg) = ws.recv().await {
//!         ws.send(msg?).await?;
//!     }
//!     // Client: a private CA besides the webpki roots.
//!     let client = tls::ClientTls::new().add_roots_from_pem_file("ca.pem")?.build()?;
//!     let request = ws_async_std::http::Request::get("wss://localhost:8443/").body(()).unwrap();
//!     let (ws, _response) = tls::smol::connect_with(request, Default::default(), client).await?;
//!     Ok(())
//! })
//! # }
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
//! as cancel safe as over TCP (see the crate docs).
//!
//! # Errors
//!
//! A TLS failure (untrusted certificate, wrong host name, a required
//! client certificate missing) is an [`Error::Io`] whose
//! source is a [`rustls::Error`]; [`tls_error`] finds it.

use crate::{before, Timer, WebSocket};
use futures_io::{AsyncRead, AsyncWrite};
use std::io;
use std::sync::Arc;
use ws_proto::{http, Accept, Config, Error, HandshakeError, Reject, UsageError};

pub use futures_rustls::{TlsAcceptor, TlsConnector};
pub use ws_rustls::{
    crypto_provider, load_certs, load_private_key, parse_certs, parse_private_key, pki_types,
    rustls, server_name, tls_error, webpki_client_config, ClientConfig, ClientTls, RootCertStore,
    ServerConfig, ServerTls,
};

/// A server-side TLS stream over `S`.
pub type ServerTlsStream<S> = futures_rustls::server::TlsStream<S>;

/// A client-side TLS stream over `S`.
pub type ClientTlsStream<S> = futures_rustls::client::TlsStream<S>;

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
    timer: impl Timer,
) -> Result<WebSocket<ServerTlsStream<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(
        io,
        acceptor,
        Config::default(),
        timer,
        |_| Ok(Accept::new()),
    )
    .await
}

/// [`accept`] with a config and a callback that decides on the request,
/// as in [`crate::accept_with`]. The TLS handshake is bounded by
/// `config.handshake_timeout`.
pub async fn accept_with<S, F>(
    io: S,
    acceptor: &TlsAcceptor,
    config: Config,
    timer: impl Timer,
    decide: F,
) -> Result<WebSocket<ServerTlsStream<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
{
    let deadline = config.handshake_timeout.map(|d| timer.now() + d);
    let tls = before(&timer, deadline, acceptor.accept(io))
        .await
        .ok_or(Error::Handshake(HandshakeError::Timeout))??;
    crate::accept_with(tls, config, timer, decide).await
}

/// Runs the TLS handshake and then the WebSocket handshake over a stream
/// you opened. The certificate is checked against the request's host,
/// which is also sent as SNI (unless it is an IP address).
pub async fn client_handshake<S>(
    io: S,
    request: http::Request<()>,
    config: Config,
    tls: Arc<ClientConfig>,
    timer: impl Timer,
) -> Result<(WebSocket<ClientTlsStream<S>>, http::Response<()>), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let host = request
        .uri()
        .host()
        .ok_or(Error::Usage(UsageError::InvalidRequest))?;
    let name = server_name(host)?;
    let deadline = config.handshake_timeout.map(|d| timer.now() + d);
    let stream = before(&timer, deadline, TlsConnector::from(tls).connect(name, io))
        .await
        .ok_or(Error::Handshake(HandshakeError::Timeout))??;
    crate::client_handshake(stream, request, config, timer).await
}

/// Writes a runtime's TLS functions: `connect`, `connect_with` over its
/// TCP type, and `accept`, `accept_with`, `client_handshake` with its timer.
macro_rules! runtime_tls {
    ($timer:expr, $tcp:ty) => {
        use super::{ClientConfig, ClientTlsStream, ServerTlsStream, TlsAcceptor};
        use crate::{Timer, WebSocket};
        use futures_io::{AsyncRead, AsyncWrite};
        use std::sync::Arc;
        use ws_proto::{http, Accept, Config, Error, HandshakeError, Reject, UsageError};

        /// The client's TLS stream over TCP: what [`connect`] returns.
        pub type WssStream = ClientTlsStream<$tcp>;

        /// Connects to a `wss://` URL, trusting the webpki (Mozilla) roots and
        /// offering permessage-deflate, like the plain `connect`.
        pub async fn connect(
            url: &str,
        ) -> Result<(WebSocket<WssStream>, http::Response<()>), Error> {
            let req = http::Request::get(url)
                .body(())
                .map_err(|_| Error::Usage(UsageError::InvalidRequest))?;
            let config = Config::default().deflate(Some(crate::DeflateConfig::default()));
            connect_with(req, config, super::webpki_client_config()?).await
        }

        /// Connects to a `wss://` URL with a request you built, a config
        /// and a TLS client config (from [`ClientTls::build`](super::ClientTls::build),
        /// or your own). The server's certificate is checked against the
        /// URL's host, which is also sent as SNI (unless it is an IP
        /// address). Any other scheme is [`UsageError::InvalidRequest`].
        pub async fn connect_with(
            request: http::Request<()>,
            config: Config,
            tls: Arc<ClientConfig>,
        ) -> Result<(WebSocket<WssStream>, http::Response<()>), Error> {
            let (host, port) = ws_rustls::wss_host_port(request.uri())?;
            let timer = $timer;
            let deadline = config.handshake_timeout.map(|d| timer.now() + d);
            let tcp = crate::before(&timer, deadline, <$tcp>::connect((host.as_str(), port)))
                .await
                .ok_or(Error::Handshake(HandshakeError::Timeout))??;
            tcp.set_nodelay(true)?;
            super::client_handshake(tcp, request, config, tls, timer).await
        }

        /// Runs the TLS and WebSocket client handshakes over a stream you
        /// opened, with this runtime's timer.
        pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
            io: S,
            request: http::Request<()>,
            config: Config,
            tls: Arc<ClientConfig>,
        ) -> Result<(WebSocket<ClientTlsStream<S>>, http::Response<()>), Error> {
            super::client_handshake(io, request, config, tls, $timer).await
        }

        /// Runs the TLS handshake, then the WebSocket handshake, accepting
        /// every valid request.
        pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
            io: S,
            acceptor: &TlsAcceptor,
        ) -> Result<WebSocket<ServerTlsStream<S>>, Error> {
            super::accept(io, acceptor, $timer).await
        }

        /// [`accept`] with a config and a callback that decides on the
        /// request.
        pub async fn accept_with<S, F>(
            io: S,
            acceptor: &TlsAcceptor,
            config: Config,
            decide: F,
        ) -> Result<WebSocket<ServerTlsStream<S>>, Error>
        where
            S: AsyncRead + AsyncWrite + Unpin,
            F: FnOnce(&http::Request<()>) -> Result<Accept, Reject>,
        {
            super::accept_with(io, acceptor, config, $timer, decide).await
        }
    };
}

/// TLS on smol (feature `smol`): TCP over `async_net`, the smol timer.
#[cfg(feature = "smol")]
pub mod smol {
    runtime_tls!(crate::smol::SmolTimer, async_net::TcpStream);
}

/// TLS on async-std (feature `async-std`): TCP over `async_std::net`, the
/// async-std timer. futures-rustls closes a stream by sending
/// `close_notify` and closing the stream under it, which for async-std's
/// `TcpStream` only flushes: the TCP connection ends when the `WebSocket`
/// is dropped.
#[cfg(feature = "async-std")]
pub mod async_std {
    runtime_tls!(crate::async_std::AsyncStdTimer, ::async_std::net::TcpStream);
}

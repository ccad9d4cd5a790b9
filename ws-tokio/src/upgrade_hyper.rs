//! WebSocket upgrades of hyper 1.x requests (feature `hyper`); axum's
//! requests are hyper's, so this works in an axum handler too.
//!
//! ```no_run
//! # use std::convert::Infallible;
//! use http_body_util::Full;
//! use hyper::{body::Bytes, Request, Response};
//! use ws_tokio::server::{ServerPolicy, Upgrader};
//!
//! async fn handle(
//!     upgrader: Upgrader,
//!     mut req: Request<hyper::body::Incoming>,
//! ) -> Result<Response<Full<Bytes>>, Infallible> {
//!     if !ws_tokio::server::is_upgrade_request(&req) {
//!         return Ok(Response::new(Full::from("a plain page")));
//!     }
//!     match upgrader.upgrade_hyper(&mut req, None) {
//!         Ok((response, pending)) => {
//!             tokio::spawn(async move {
//!                 let Ok((mut ws, _info)) = pending.finish().await else { return };
//!                 while let Some(Ok(msg)) = ws.recv().await {
//!                     if msg.is_data() && ws.send(msg).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             Ok(response)
//!         }
//!         Err(refusal) => Ok(refusal),
//!     }
//! }
//! ```

use crate::server::{RequestInfo, Upgrader};
use crate::{Error, WebSocket};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use ws_proto::Connection;

/// The stream of a WebSocket upgraded by hyper.
pub type HyperStream = TokioIo<hyper::upgrade::Upgraded>;

/// An accepted upgrade waiting for hyper to hand over the connection:
/// return the 101 response from your service first, then
/// [`finish`](Self::finish) (in a spawned task).
#[must_use = "the WebSocket exists only once `finish` is awaited"]
pub struct PendingUpgrade {
    on_upgrade: hyper::upgrade::OnUpgrade,
    connection: Connection,
    info: RequestInfo,
    upgrader: Upgrader,
}

impl std::fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpgrade")
            .field("path", &self.info.path())
            .finish()
    }
}

impl PendingUpgrade {
    /// The request that was upgraded.
    pub fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// Waits for hyper to send the 101 response and hand over the
    /// connection, and returns the WebSocket (tracked in the upgrader's
    /// client set) and the request info.
    pub async fn finish(self) -> Result<(WebSocket<HyperStream>, RequestInfo), Error> {
        let upgraded = self
            .on_upgrade
            .await
            .map_err(|e| Error::from(std::io::Error::other(e)))?;
        let mut ws = WebSocket::from_connection(TokioIo::new(upgraded), self.connection);
        self.upgrader.track(&mut ws, &self.info);
        Ok((ws, self.info))
    }
}

impl Upgrader {
    /// Upgrades a hyper (or axum) request with this upgrader's policy:
    /// `Ok` with the 101 response to return from the service and the
    /// [`PendingUpgrade`] to finish once it is sent, or `Err` with the
    /// refusal to return instead (400/405/426 for an invalid upgrade, the
    /// policy's status, headers and body otherwise). `peer` is the
    /// client's address, if the service knows it.
    ///
    /// The hyper connection must be served with upgrades enabled
    /// (`serve_connection(..).with_upgrades()`). Only HTTP/1.1 upgrades
    /// are supported.
    #[allow(clippy::result_large_err)]
    pub fn upgrade_hyper<B, R>(
        &self,
        req: &mut hyper::Request<B>,
        peer: Option<SocketAddr>,
    ) -> Result<(hyper::Response<R>, PendingUpgrade), hyper::Response<R>>
    where
        R: Default + From<Vec<u8>>,
    {
        let up = match self.policy().upgrade(req) {
            Ok(up) => up,
            Err(reject) => {
                let mut resp = hyper::Response::new(R::from(reject.body));
                *resp.status_mut() = http::StatusCode::from_u16(reject.status)
                    .unwrap_or(http::StatusCode::BAD_REQUEST);
                *resp.headers_mut() = *reject.headers;
                return Err(resp);
            }
        };
        let mut plain = http::Request::new(());
        *plain.method_mut() = req.method().clone();
        *plain.uri_mut() = req.uri().clone();
        *plain.version_mut() = req.version();
        *plain.headers_mut() = req.headers().clone();
        let info = RequestInfo::new(plain, peer, up.protocol.clone());
        let on_upgrade = hyper::upgrade::on(req);
        let response = up.response.map(|()| R::default());
        Ok((
            response,
            PendingUpgrade {
                on_upgrade,
                connection: up.connection,
                info,
                upgrader: self.clone(),
            },
        ))
    }
}

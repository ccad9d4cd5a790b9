//! [`Adapter`] for each adapter, with its public API only: the TCP types and
//! handshake functions a user would call, and a driver loop that runs the
//! commands of a [`Socket`] with the adapter's `send`, `recv`, `close`,
//! `close_info` and `buffered_amount`.

use crate::{Adapter, Cmd, Config, Connected, Decide, Error, Listener, Socket, LIMIT};
use smol::channel::{unbounded, Receiver};
use std::sync::mpsc;
use ws_proto::http;

/// Runs `connect` on a new driver thread and waits for the result of the
/// client handshake.
fn spawn_client(
    adapter: &'static str,
    connect: impl FnOnce(mpsc::Sender<Connected>) + Send + 'static,
) -> Connected {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("{adapter}-client"))
        .spawn(move || connect(tx))
        .expect("spawn client thread");
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|e| panic!("{adapter}: connect did not return: {e}"))
}

/// Reports the result of a server handshake; on success, returns the
/// socket and its command queue for the driver loop.
fn accepted<W>(
    adapter: &'static str,
    res: Result<W, Error>,
    to: &mpsc::Sender<Result<Socket, Error>>,
) -> Option<(W, Receiver<Cmd>)> {
    match res {
        Ok(ws) => {
            let (tx, rx) = unbounded();
            let _ = to.send(Ok(Socket::new(adapter, tx)));
            Some((ws, rx))
        }
        Err(e) => {
            let _ = to.send(Err(e));
            None
        }
    }
}

/// Reports the result of a client handshake, like [`accepted`].
fn connected<W>(
    adapter: &'static str,
    res: Result<(W, http::Response<()>), Error>,
    to: &mpsc::Sender<Connected>,
) -> Option<(W, Receiver<Cmd>)> {
    match res {
        Ok((ws, resp)) => {
            let (tx, rx) = unbounded();
            let _ = to.send(Ok((Socket::new(adapter, tx), resp)));
            Some((ws, rx))
        }
        Err(e) => {
            let _ = to.send(Err(e));
            None
        }
    }
}

// ------------------------------------------------------------------ tokio --

/// ws-tokio, on a current-thread tokio runtime per connection.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn drive_tokio(mut ws: ws_tokio::WebSocket<tokio::net::TcpStream>, rx: Receiver<Cmd>) {
    while let Ok(cmd) = rx.recv().await {
        match cmd {
            Cmd::Send(m, r) => drop(r.send(ws.send(m).await)),
            Cmd::Feed(m, r) => drop(r.send(ws.feed(m))),
            Cmd::SendUncompressed(m, r) => drop(r.send(ws.send_uncompressed(m).await)),
            Cmd::SendPrepared(m, r) => drop(r.send(ws.send_prepared(&m).await)),
            Cmd::Flush(r) => drop(r.send(ws.flush().await)),
            Cmd::Recv(r) => drop(r.send(ws.recv().await)),
            Cmd::Close(c, reason, r) => drop(r.send(ws.close(c, &reason).await)),
            Cmd::CloseInfo(r) => drop(r.send(ws.close_info().cloned())),
            Cmd::Buffered(r) => drop(r.send(ws.buffered_amount())),
        }
    }
}

impl Adapter for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn listen(&self, config: Config, decide: Decide) -> Listener {
        Listener::spawn(self.name(), move |addr_tx, acc_tx| {
            tokio_runtime().block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = addr_tx.send(l.local_addr().expect("local address"));
                let res = match l.accept().await {
                    Ok((tcp, _)) => {
                        tcp.set_nodelay(true).expect("nodelay");
                        ws_tokio::accept_with(tcp, config, decide).await
                    }
                    Err(e) => Err(e.into()),
                };
                if let Some((ws, rx)) = accepted("tokio", res, &acc_tx) {
                    drive_tokio(ws, rx).await;
                }
            })
        })
    }

    fn connect(&self, request: http::Request<()>, config: Config) -> Connected {
        spawn_client(self.name(), move |done| {
            tokio_runtime().block_on(async move {
                let res = ws_tokio::connect_with(request, config).await;
                if let Some((ws, rx)) = connected("tokio", res, &done) {
                    drive_tokio(ws, rx).await;
                }
            })
        })
    }
}

// ------------------------------------------------------ async-std and smol --

async fn drive_futures_io<S>(mut ws: ws_async_std::WebSocket<S>, rx: Receiver<Cmd>)
where
    S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin,
{
    while let Ok(cmd) = rx.recv().await {
        match cmd {
            Cmd::Send(m, r) => drop(r.send(ws.send(m).await)),
            Cmd::Feed(m, r) => drop(r.send(ws.feed(m))),
            Cmd::SendUncompressed(m, r) => drop(r.send(ws.send_uncompressed(m).await)),
            Cmd::SendPrepared(m, r) => drop(r.send(ws.send_prepared(&m).await)),
            Cmd::Flush(r) => drop(r.send(ws.flush().await)),
            Cmd::Recv(r) => drop(r.send(ws.recv().await)),
            Cmd::Close(c, reason, r) => drop(r.send(ws.close(c, &reason).await)),
            Cmd::CloseInfo(r) => drop(r.send(ws.close_info().cloned())),
            Cmd::Buffered(r) => drop(r.send(ws.buffered_amount())),
        }
    }
}

/// ws-async-std on the async-std runtime: `async_std::net` and the
/// `ws_async_std::async_std` module, on `async_std::task::block_on`.
#[derive(Debug, Clone, Copy)]
pub struct AsyncStd;

impl Adapter for AsyncStd {
    fn name(&self) -> &'static str {
        "async-std"
    }

    fn listen(&self, config: Config, decide: Decide) -> Listener {
        Listener::spawn(self.name(), move |addr_tx, acc_tx| {
            async_std::task::block_on(async move {
                let l = async_std::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = addr_tx.send(l.local_addr().expect("local address"));
                let res = match l.accept().await {
                    Ok((tcp, _)) => {
                        tcp.set_nodelay(true).expect("nodelay");
                        ws_async_std::async_std::accept_with(tcp, config, decide).await
                    }
                    Err(e) => Err(e.into()),
                };
                if let Some((ws, rx)) = accepted("async-std", res, &acc_tx) {
                    drive_futures_io(ws, rx).await;
                }
            })
        })
    }

    fn connect(&self, request: http::Request<()>, config: Config) -> Connected {
        spawn_client(self.name(), move |done| {
            async_std::task::block_on(async move {
                let res = ws_async_std::async_std::connect_with(request, config).await;
                if let Some((ws, rx)) = connected("async-std", res, &done) {
                    drive_futures_io(ws, rx).await;
                }
            })
        })
    }
}

/// ws-async-std on the smol runtime: `smol::net` and the
/// `ws_async_std::smol` module, on `smol::block_on`.
#[derive(Debug, Clone, Copy)]
pub struct Smol;

impl Adapter for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn listen(&self, config: Config, decide: Decide) -> Listener {
        Listener::spawn(self.name(), move |addr_tx, acc_tx| {
            smol::block_on(async move {
                let l = smol::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = addr_tx.send(l.local_addr().expect("local address"));
                let res = match l.accept().await {
                    Ok((tcp, _)) => {
                        tcp.set_nodelay(true).expect("nodelay");
                        ws_async_std::smol::accept_with(tcp, config, decide).await
                    }
                    Err(e) => Err(e.into()),
                };
                if let Some((ws, rx)) = accepted("smol", res, &acc_tx) {
                    drive_futures_io(ws, rx).await;
                }
            })
        })
    }

    fn connect(&self, request: http::Request<()>, config: Config) -> Connected {
        spawn_client(self.name(), move |done| {
            smol::block_on(async move {
                let res = ws_async_std::smol::connect_with(request, config).await;
                if let Some((ws, rx)) = connected("smol", res, &done) {
                    drive_futures_io(ws, rx).await;
                }
            })
        })
    }
}

// --------------------------------------------------------------- blocking --

/// ws-blocking over `std::net`, on a plain thread per connection.
#[derive(Debug, Clone, Copy)]
pub struct Blocking;

fn drive_blocking(mut ws: ws_blocking::WebSocket<std::net::TcpStream>, rx: Receiver<Cmd>) {
    while let Ok(cmd) = rx.recv_blocking() {
        match cmd {
            Cmd::Send(m, r) => drop(r.send(ws.send(m))),
            Cmd::Feed(m, r) => drop(r.send(ws.feed(m))),
            Cmd::SendUncompressed(m, r) => drop(r.send(ws.send_uncompressed(m))),
            Cmd::SendPrepared(m, r) => drop(r.send(ws.send_prepared(&m))),
            Cmd::Flush(r) => drop(r.send(ws.flush())),
            Cmd::Recv(r) => drop(r.send(ws.recv())),
            Cmd::Close(c, reason, r) => drop(r.send(ws.close(c, &reason))),
            Cmd::CloseInfo(r) => drop(r.send(ws.close_info().cloned())),
            Cmd::Buffered(r) => drop(r.send(ws.buffered_amount())),
        }
    }
}

impl Adapter for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn listen(&self, config: Config, decide: Decide) -> Listener {
        Listener::spawn(self.name(), move |addr_tx, acc_tx| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let _ = addr_tx.send(l.local_addr().expect("local address"));
            let res = match l.accept() {
                Ok((tcp, _)) => {
                    tcp.set_nodelay(true).expect("nodelay");
                    ws_blocking::accept_with(tcp, config, decide)
                }
                Err(e) => Err(e.into()),
            };
            if let Some((ws, rx)) = accepted("blocking", res, &acc_tx) {
                drive_blocking(ws, rx);
            }
        })
    }

    fn connect(&self, request: http::Request<()>, config: Config) -> Connected {
        spawn_client(self.name(), move |done| {
            let res = ws_blocking::connect_with(request, config);
            if let Some((ws, rx)) = connected("blocking", res, &done) {
                drive_blocking(ws, rx);
            }
        })
    }
}

//! Echo server on `fastwebsockets`, for comparison benchmarks.
//!
//! Uses the crate's recommended server path: a hyper HTTP/1 connection with
//! upgrades and `fastwebsockets::upgrade::upgrade`, vectored writes,
//! auto-close and auto-pong on, a `FragmentCollector` so whole messages are
//! echoed, and the per-connection task wrapped in
//! `tokio::task::unconstrained` as in the crate's echo server example.

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

const NAME: &str = "peer-fastwebsockets";

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_writev(true);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn upgrade_handler(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(tokio::task::unconstrained(async move {
        match echo(fut).await {
            Ok(()) | Err(WebSocketError::ConnectionClosed) | Err(WebSocketError::UnexpectedEOF) => {
            }
            Err(e) => eprintln!("{NAME}: connection error: {e}"),
        }
    }));
    Ok(response)
}

fn main() {
    let addr = bench::peer_addr(NAME);
    bench::current_thread_runtime().block_on(async move {
        let listener = bench::bind(NAME, addr).await;
        loop {
            let stream = bench::accept(&listener).await;
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let conn = http1::Builder::new()
                    .serve_connection(io, service_fn(upgrade_handler))
                    .with_upgrades();
                if let Err(e) = conn.await {
                    eprintln!("{NAME}: http error: {e}");
                }
            });
        }
    });
}

//! The smol runtime (feature `smol`, on by default): a timer on
//! `async_io::Timer` (`smol::Timer`), TCP over `async_net` (`smol::net`),
//! and the handshake functions with that timer.
//!
//! Both smol and async-std 1.x run on async-io, so these types work on
//! either runtime, and on any executor.
//!
//! ```no_run
//! # fn main() -> Result<(), ws_async_std::Error> {
//! smol::block_on(async {
//!     let listener = async_net::TcpListener::bind("127.0.0.1:9001").await?;
//!     loop {
//!         let (mut ws, _peer) = ws_async_std::smol::accept_tcp(&listener).await?;
//!         smol::spawn(async move {
//!             while let Some(Ok(msg)) = ws.recv().await {
//!                 if msg.is_data() && ws.feed(msg).is_err() {
//!                     break;
//!                 }
//!             }
//!         })
//!         .detach();
//!     }
//! })
//! # }
//! ```

use crate::{
    http, Accept, Config, Error, HandshakeError, Reject, Sleep, Timer, UsageError, WebSocket,
};
use async_net::{TcpListener, TcpStream};
use futures_io::{AsyncRead, AsyncWrite};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use ws_proto::Connection;

/// The smol timer: [`async_io::Timer`], the timer smol re-exports.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolTimer;

impl Timer for SmolTimer {
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(AsyncIoSleep {
            timer: async_io::Timer::at(deadline),
            deadline,
            elapsed: false,
        })
    }
}

/// An `async_io::Timer` moved in place on reset.
struct AsyncIoSleep {
    timer: async_io::Timer,
    deadline: Instant,
    elapsed: bool,
}

impl Sleep for AsyncIoSleep {
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        this.timer.set_at(deadline);
        this.deadline = deadline;
        this.elapsed = false;
    }

    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // A fired `async_io::Timer` never fires again: remember it.
        if !this.elapsed && Pin::new(&mut this.timer).poll(cx).is_ready() {
            this.elapsed = true;
        }
        if this.elapsed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// `async_net::TcpStream::poll_close` shuts the write half: nothing to add.
fn socket<S>(ws: WebSocket<S>) -> WebSocket<S> {
    ws
}

runtime_api!(SmolTimer, TcpStream, TcpListener, socket);

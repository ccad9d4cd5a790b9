//! The async-std runtime (feature `async-std`): a timer on
//! `async_std::task::sleep`, TCP over `async_std::net`, and the handshake
//! functions with that timer.
//!
//! async-std is discontinued upstream (it points users to smol); the
//! [`smol`](crate::smol) module's types work inside async-std programs too.
//!
//! When the core asks to shut the write half (RFC 6455 §7.1.1: the server
//! closes TCP first), the adapter calls `poll_close` on the stream, but
//! async-std's `TcpStream::poll_close` only flushes. So this module's
//! functions, given an `async_std::net::TcpStream`, call
//! `TcpStream::shutdown(Write)` instead; that is why their stream type must
//! be `'static`. (The crate-root functions with an `AsyncStdTimer` do not:
//! there, such a stream is shut when the `WebSocket` is dropped.)
//!
//! ```no_run
//! # fn main() -> Result<(), ws_async_std::Error> {
//! async_std::task::block_on(async {
//!     let listener = async_std::net::TcpListener::bind("127.0.0.1:9001").await?;
//!     loop {
//!         let (mut ws, _peer) = ws_async_std::async_std::accept_tcp(&listener).await?;
//!         async_std::task::spawn(async move {
//!             while let Some(Ok(msg)) = ws.recv().await {
//!                 if msg.is_data() && ws.feed(msg).is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! })
//! # }
//! ```

use crate::{
    http, Accept, Config, Error, HandshakeError, Reject, Sleep, Timer, UsageError, WebSocket,
};
use ::async_std::net::{TcpListener, TcpStream};
use futures_io::{AsyncRead, AsyncWrite};
use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use ws_proto::Connection;

/// The async-std timer: [`::async_std::task::sleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdTimer;

impl Timer for AsyncStdTimer {
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(AsyncStdSleep {
            fut: sleep_future(deadline),
            deadline,
            elapsed: false,
        })
    }
}

type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

fn sleep_future(deadline: Instant) -> SleepFuture {
    Box::pin(::async_std::task::sleep(
        deadline.saturating_duration_since(Instant::now()),
    ))
}

/// `async_std::task::sleep` cannot move: a reset starts a new one.
struct AsyncStdSleep {
    fut: SleepFuture,
    deadline: Instant,
    elapsed: bool,
}

impl Sleep for AsyncStdSleep {
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        this.fut = sleep_future(deadline);
        this.deadline = deadline;
        this.elapsed = false;
    }

    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !this.elapsed && this.fut.as_mut().poll(cx).is_ready() {
            this.elapsed = true;
        }
        if this.elapsed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// async-std's `TcpStream::poll_close` only flushes: on its TCP stream,
/// shut the write half with `TcpStream::shutdown` when the core asks for it.
pub(crate) fn socket<S: 'static>(ws: WebSocket<S>) -> WebSocket<S> {
    if TypeId::of::<S>() != TypeId::of::<TcpStream>() {
        return ws;
    }
    ws.with_shutdown(
        |io| match (io as &mut dyn Any).downcast_mut::<TcpStream>() {
            Some(tcp) => tcp.shutdown(std::net::Shutdown::Write),
            None => Ok(()),
        },
    )
}

runtime_api!(AsyncStdTimer, TcpStream, TcpListener, socket, 'static);

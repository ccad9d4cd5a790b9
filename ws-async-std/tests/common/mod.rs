//! What the tests need from a runtime, for async-std and for smol, and a
//! virtual clock. Every scenario is written once as `async fn name<R: Rt>()`
//! and run on both runtimes by `on_both_runtimes!`.

#![allow(dead_code)]

use futures_io::{AsyncRead, AsyncWrite};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use ws_async_std::{http, Error, Sleep, Timer, WebSocket};

/// Every test ends within this time, or fails.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Boxed future, for spawned tasks and trait methods.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a client handshake gives.
pub type Connected<T> = Result<(WebSocket<T>, http::Response<()>), Error>;

/// A runtime: executor, TCP types and the matching adapter module.
pub trait Rt: 'static {
    /// The TCP stream type.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static;
    /// The TCP listener type.
    type Listener: Send + Sync + 'static;
    /// The adapter's timer for this runtime.
    type Timer: Timer + Copy + Default;

    fn block_on<T>(f: impl Future<Output = T>) -> T;
    fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> BoxFut<'static, T>;
    fn bind() -> BoxFut<'static, (Self::Listener, SocketAddr)>;
    fn tcp_accept(l: &Self::Listener) -> BoxFut<'_, Self::Tcp>;
    fn tcp_connect(addr: SocketAddr) -> BoxFut<'static, Self::Tcp>;
    fn accept_tcp(l: &Self::Listener) -> BoxFut<'_, Result<WebSocket<Self::Tcp>, Error>>;
    fn accept_prefixed(
        tcp: Self::Tcp,
        head: Vec<u8>,
    ) -> BoxFut<'static, Result<WebSocket<Self::Tcp>, Error>>;
    fn connect(url: String) -> BoxFut<'static, Result<WebSocket<Self::Tcp>, Error>>;
    fn connect_with(req: http::Request<()>) -> BoxFut<'static, Connected<Self::Tcp>>;
}

/// async-std: its executor, `async_std::net`, `ws_async_std::async_std`.
pub struct AsyncStd;

impl Rt for AsyncStd {
    type Tcp = async_std::net::TcpStream;
    type Listener = async_std::net::TcpListener;
    type Timer = ws_async_std::async_std::AsyncStdTimer;

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        async_std::task::block_on(f)
    }
    fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> BoxFut<'static, T> {
        Box::pin(async_std::task::spawn(f))
    }
    fn bind() -> BoxFut<'static, (Self::Listener, SocketAddr)> {
        Box::pin(async {
            let l = async_std::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let a = l.local_addr().unwrap();
            (l, a)
        })
    }
    fn tcp_accept(l: &Self::Listener) -> BoxFut<'_, Self::Tcp> {
        Box::pin(async move { l.accept().await.unwrap().0 })
    }
    fn tcp_connect(addr: SocketAddr) -> BoxFut<'static, Self::Tcp> {
        Box::pin(async move { async_std::net::TcpStream::connect(addr).await.unwrap() })
    }
    fn accept_tcp(l: &Self::Listener) -> BoxFut<'_, Result<WebSocket<Self::Tcp>, Error>> {
        Box::pin(async move { Ok(ws_async_std::async_std::accept_tcp(l).await?.0) })
    }
    fn accept_prefixed(
        tcp: Self::Tcp,
        head: Vec<u8>,
    ) -> BoxFut<'static, Result<WebSocket<Self::Tcp>, Error>> {
        Box::pin(async move {
            ws_async_std::async_std::accept_prefixed(
                tcp,
                &head,
                ws_async_std::Config::default(),
                |_| Ok(ws_async_std::Accept::new()),
            )
            .await
        })
    }
    fn connect(url: String) -> BoxFut<'static, Result<WebSocket<Self::Tcp>, Error>> {
        Box::pin(async move { Ok(ws_async_std::async_std::connect(&url).await?.0) })
    }
    fn connect_with(req: http::Request<()>) -> BoxFut<'static, Connected<Self::Tcp>> {
        Box::pin(ws_async_std::async_std::connect_with(
            req,
            Default::default(),
        ))
    }
}

/// smol: its executor, `smol::net`, `ws_async_std::smol`.
pub struct Smol;

impl Rt for Smol {
    type Tcp = smol::net::TcpStream;
    type Listener = smol::net::TcpListener;
    type Timer = ws_async_std::smol::SmolTimer;

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        smol::block_on(f)
    }
    fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> BoxFut<'static, T> {
        Box::pin(smol::spawn(f))
    }
    fn bind() -> BoxFut<'static, (Self::Listener, SocketAddr)> {
        Box::pin(async {
            let l = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = l.local_addr().unwrap();
            (l, a)
        })
    }
    fn tcp_accept(l: &Self::Listener) -> BoxFut<'_, Self::Tcp> {
        Box::pin(async move { l.accept().await.unwrap().0 })
    }
    fn tcp_connect(addr: SocketAddr) -> BoxFut<'static, Self::Tcp> {
        Box::pin(async move { smol::net::TcpStream::connect(addr).await.unwrap() })
    }
    fn accept_tcp(l: &Self::Listener) -> BoxFut<'_, Result<WebSocket<Self::Tcp>, Error>> {
        Box::pin(async move { Ok(ws_async_std::smol::accept_tcp(l).await?.0) })
    }
    fn accept_prefixed(
        tcp: Self::Tcp,
        head: Vec<u8>,
    ) -> BoxFut<'static, Result<WebSocket<Self::Tcp>, Error>> {
        Box::pin(async move {
            ws_async_std::smol::accept_prefixed(tcp, &head, ws_async_std::Config::default(), |_| {
                Ok(ws_async_std::Accept::new())
            })
            .await
        })
    }
    fn connect(url: String) -> BoxFut<'static, Result<WebSocket<Self::Tcp>, Error>> {
        Box::pin(async move { Ok(ws_async_std::smol::connect(&url).await?.0) })
    }
    fn connect_with(req: http::Request<()>) -> BoxFut<'static, Connected<Self::Tcp>> {
        Box::pin(ws_async_std::smol::connect_with(req, Default::default()))
    }
}

/// Runs a scenario on runtime `R`, failing it if it takes longer than
/// [`LIMIT`]. The limit is a safety net, never a way to wait.
pub fn run<R: Rt>(f: impl Future<Output = ()>) {
    R::block_on(smol::future::or(f, async {
        smol::Timer::after(LIMIT).await;
        panic!("test did not finish within {LIMIT:?}");
    }))
}

/// `on_both_runtimes!(name, ...)`: a `#[test]` per runtime for each
/// `async fn name<R: Rt>()`.
#[macro_export]
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod async_std_rt {
            $(
                #[test]
                fn $name() {
                    $crate::common::run::<$crate::common::AsyncStd>(super::$name::<$crate::common::AsyncStd>());
                }
            )*
        }
        mod smol_rt {
            $(
                #[test]
                fn $name() {
                    $crate::common::run::<$crate::common::Smol>(super::$name::<$crate::common::Smol>());
                }
            )*
        }
    };
}

// ------------------------------------------------------------ virtual time --

/// A virtual clock: time moves only when a test calls [`Clock::advance`].
#[derive(Clone)]
pub struct Clock(Arc<Mutex<ClockState>>);

struct ClockState {
    now: Instant,
    /// The pending sleeps: deadline, sleep id, waker.
    waiting: Vec<(Instant, u64, Waker)>,
    next_id: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock(Arc::new(Mutex::new(ClockState {
            now: Instant::now(),
            waiting: Vec::new(),
            next_id: 0,
        })))
    }
}

impl Clock {
    /// Moves time forward and wakes the sleeps that ended.
    pub fn advance(&self, d: Duration) {
        let woken = {
            let mut s = self.0.lock().unwrap();
            s.now += d;
            let now = s.now;
            let (due, rest) = std::mem::take(&mut s.waiting)
                .into_iter()
                .partition::<Vec<_>, _>(|(at, _, _)| *at <= now);
            s.waiting = rest;
            due
        };
        for (_, _, w) in woken {
            w.wake();
        }
    }

    /// How many sleeps are waiting for the clock.
    pub fn sleepers(&self) -> usize {
        self.0.lock().unwrap().waiting.len()
    }
}

impl Timer for Clock {
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let id = {
            let mut s = self.0.lock().unwrap();
            s.next_id += 1;
            s.next_id
        };
        Box::pin(VirtualSleep {
            clock: self.clone(),
            deadline,
            id,
        })
    }
    fn now(&self) -> Instant {
        self.0.lock().unwrap().now
    }
}

struct VirtualSleep {
    clock: Clock,
    deadline: Instant,
    id: u64,
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        // A dropped sleep no longer waits.
        let id = self.id;
        if let Ok(mut s) = self.clock.0.lock() {
            s.waiting.retain(|(_, i, _)| *i != id);
        }
    }
}

impl Sleep for VirtualSleep {
    fn deadline(&self) -> Instant {
        self.deadline
    }
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().deadline = deadline;
    }
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.clock.0.lock().unwrap();
        if s.now >= self.deadline {
            return Poll::Ready(());
        }
        let id = self.id;
        s.waiting.retain(|(_, i, _)| *i != id);
        s.waiting.push((self.deadline, id, cx.waker().clone()));
        Poll::Pending
    }
}

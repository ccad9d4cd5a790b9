//! The timer abstraction: besides the stream, the only thing the adapter
//! needs from a runtime.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A sleep that the pump polls, and moves when the core's deadline changes.
///
/// Contract: once the deadline has passed, [`poll_elapsed`](Self::poll_elapsed)
/// returns `Ready` on every call until [`reset`](Self::reset) moves it.
pub trait Sleep: Send + Sync {
    /// The deadline this sleep ends at.
    fn deadline(&self) -> Instant;

    /// Moves the deadline, earlier or later.
    fn reset(self: Pin<&mut Self>, deadline: Instant);

    /// `Ready` once the deadline has passed; otherwise `Pending`, and the
    /// waker of `cx` is woken when it passes.
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A clock and a source of [`Sleep`]s: what the adapter needs from a
/// runtime to drive the core's timers (close timeout, handshake timeout).
///
/// Implemented by `async_std::AsyncStdTimer` (feature `async-std`) and
/// `smol::SmolTimer` (feature `smol`). Implement it to run the adapter on
/// another executor, or on a virtual clock in tests.
pub trait Timer: Send + Sync + 'static {
    /// A sleep that ends at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>>;

    /// The current time, handed to the core as `now`. It must agree with
    /// [`sleep_until`](Self::sleep_until): once a sleep has ended, `now()`
    /// is at or past its deadline.
    fn now(&self) -> Instant {
        Instant::now()
    }
}

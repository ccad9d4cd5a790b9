//! Connection limits and timeouts, with safe defaults, in one place.

use crate::deflate::DeflateConfig;
use std::time::Duration;

/// Limits and timeouts shared by the handshake and the connection.
///
/// Every limit exists to bound what a hostile peer can make us spend; each
/// violation has a documented outcome.
///
/// | field | default | enforced as |
/// |---|---|---|
/// | `max_frame_size` | 16 MiB | close 1009 when a data frame header declares more (control frames: 125 bytes, RFC 6455 §5.5) |
/// | `max_message_size` | 64 MiB | close 1009 before buffering the excess; for a compressed message, its inflated size, checked while inflating |
/// | `max_fragments` | 131 072 | close 1009 on the next fragment |
/// | `max_handshake_size` | 16 KiB | HTTP 431 (server), handshake error (client) |
/// | `max_headers` | 64 | HTTP 431 (server), handshake error (client) |
/// | `handshake_timeout` | 10 s | handshake error; the server drops the connection |
/// | `close_timeout` | 10 s | the transport is shut without waiting longer |
/// | `auto_pong` | on | pings are answered automatically (and still reported) |
/// | `deflate` | off | permessage-deflate (RFC 7692) offered (client) or accepted (server); settings and defaults in [`DeflateConfig`] |
/// | `ping_interval` | off | a ping is sent after this long without receiving anything, and again every interval while the silence lasts |
/// | `idle_timeout` | off | nothing received for this long: the connection fails at once, without a close handshake ([`Ending::IdleTimeout`](crate::Ending::IdleTimeout), reported as 1006) |
/// | `max_send_buffer` | 16 MiB | a send is refused with [`UsageError::SendBufferFull`](crate::UsageError::SendBufferFull) while this much or more is queued (so the queue holds at most this plus one message) |
/// | `send_buffer_policy` | `Wait` | what an adapter's `send` does then: wait for the socket to drain, or return the error ([`SendBufferPolicy`]) |
///
/// # Heartbeat
///
/// `ping_interval` and `idle_timeout` together are the heartbeat that
/// `ws`'s README leaves to a recipe: a server with
/// `ping_interval(Some(30 s))` and `idle_timeout(Some(60 s))` pings a
/// client that was silent for 30 s, and drops it when nothing, not even
/// the pong, arrived in the 60 s since the last thing received from it. Any bytes received count as
/// a sign of life (a busy connection sends no pings), so this is also
/// Python `websockets`' `ping_interval` / `ping_timeout` with
/// `idle_timeout = ping_interval + ping_timeout`. A client that only
/// watches the server's pings (the "heartbeat watchdog" of `ws`'s README)
/// sets `idle_timeout` alone. Both run only while the connection is open;
/// once closing, `close_timeout` bounds what is left. Choose
/// `idle_timeout` larger than `ping_interval`, or the ping never gets a
/// chance to be answered.
///
/// A dead peer reads nothing, so the idle timeout neither sends a close
/// frame nor waits for one: like `ws`'s `terminate()`, what was queued is
/// discarded and the transport is shut and dropped.
///
/// Timers fire when the driver runs them: in the adapters, while `recv`
/// waits (and while an unsplit socket's `send` waits on a full socket).
/// An application that stops calling `recv` for longer than `idle_timeout`
/// risks having the peer counted as gone when it comes back, before the
/// bytes that arrived meanwhile are read: keep `recv` running (a reader
/// task), as the close handshake needs anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest accepted frame payload, in bytes.
    pub max_frame_size: usize,
    /// Largest accepted message, in bytes (sum of its fragments).
    pub max_message_size: usize,
    /// Largest number of frames in one message. Autobahn's largest case
    /// uses 65 536 fragments of 64 bytes, hence the default.
    pub max_fragments: usize,
    /// Largest HTTP head (request or response line plus headers), in bytes.
    pub max_handshake_size: usize,
    /// Largest number of HTTP headers.
    pub max_headers: usize,
    /// Time allowed for the opening handshake.
    pub handshake_timeout: Option<Duration>,
    /// Time allowed for the closing handshake and the TCP close after it.
    pub close_timeout: Duration,
    /// Answer pings with pongs automatically (RFC 6455 §5.5.2).
    pub auto_pong: bool,
    /// permessage-deflate (RFC 7692): `None` (the default) neither offers
    /// nor accepts it; `Some` makes a client offer it and a server accept
    /// an offer, with these settings. `max_message_size` limits the
    /// inflated size of compressed messages.
    pub deflate: Option<DeflateConfig>,
    /// Send a ping after this long without receiving anything, and again
    /// every interval while nothing arrives. `None` (the default): never.
    pub ping_interval: Option<Duration>,
    /// Fail the connection when nothing was received for this long (while
    /// it is open). `None` (the default): no limit.
    pub idle_timeout: Option<Duration>,
    /// Sends are refused while the send queue holds this many bytes or
    /// more (see [`Connection::would_block`](crate::Connection::would_block)):
    /// a high-water mark, so the queue holds at most this plus one message.
    pub max_send_buffer: usize,
    /// What an adapter's `send` does when the queue is over
    /// `max_send_buffer`.
    pub send_buffer_policy: SendBufferPolicy,
}

/// What an adapter's `send` does when [`Config::max_send_buffer`] would be
/// exceeded (the core itself always refuses such a send with
/// [`UsageError::SendBufferFull`](crate::UsageError::SendBufferFull) and
/// leaves the state unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SendBufferPolicy {
    /// Write the queue out first while it is over the bound
    /// ([`Connection::should_wait`](crate::Connection::should_wait)), then send: nothing
    /// a caller sent is lost, and a slow reader slows the sender down. The
    /// default. Calls that cannot wait (`feed`) return the error.
    #[default]
    Wait,
    /// Return [`UsageError::SendBufferFull`](crate::UsageError::SendBufferFull)
    /// at once; the message is not queued and the connection goes on.
    Fail,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 1 << 17,
            max_handshake_size: 16 << 10,
            max_headers: 64,
            handshake_timeout: Some(Duration::from_secs(10)),
            close_timeout: Duration::from_secs(10),
            auto_pong: true,
            deflate: None,
            ping_interval: None,
            idle_timeout: None,
            max_send_buffer: 16 << 20,
            send_buffer_policy: SendBufferPolicy::Wait,
        }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, v: usize) -> Self {
        self.max_frame_size = v;
        self
    }
    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, v: usize) -> Self {
        self.max_message_size = v;
        self
    }
    /// Sets [`Config::max_fragments`].
    pub fn max_fragments(mut self, v: usize) -> Self {
        self.max_fragments = v;
        self
    }
    /// Sets [`Config::max_handshake_size`].
    pub fn max_handshake_size(mut self, v: usize) -> Self {
        self.max_handshake_size = v;
        self
    }
    /// Sets [`Config::max_headers`].
    pub fn max_headers(mut self, v: usize) -> Self {
        self.max_headers = v;
        self
    }
    /// Sets [`Config::handshake_timeout`].
    pub fn handshake_timeout(mut self, v: Option<Duration>) -> Self {
        self.handshake_timeout = v;
        self
    }
    /// Sets [`Config::close_timeout`].
    pub fn close_timeout(mut self, v: Duration) -> Self {
        self.close_timeout = v;
        self
    }
    /// Sets [`Config::auto_pong`].
    pub fn auto_pong(mut self, v: bool) -> Self {
        self.auto_pong = v;
        self
    }
    /// Sets [`Config::deflate`].
    pub fn deflate(mut self, v: Option<DeflateConfig>) -> Self {
        self.deflate = v;
        self
    }
    /// Sets [`Config::ping_interval`].
    pub fn ping_interval(mut self, v: Option<Duration>) -> Self {
        self.ping_interval = v;
        self
    }
    /// Sets [`Config::idle_timeout`].
    pub fn idle_timeout(mut self, v: Option<Duration>) -> Self {
        self.idle_timeout = v;
        self
    }
    /// Sets [`Config::max_send_buffer`].
    pub fn max_send_buffer(mut self, v: usize) -> Self {
        self.max_send_buffer = v;
        self
    }
    /// Sets [`Config::send_buffer_policy`].
    pub fn send_buffer_policy(mut self, v: SendBufferPolicy) -> Self {
        self.send_buffer_policy = v;
        self
    }
}

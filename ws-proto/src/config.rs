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
}

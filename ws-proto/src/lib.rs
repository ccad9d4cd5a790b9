//! A sans-IO WebSocket protocol core (RFC 6455): bytes in, events and bytes
//! out. No sockets, no clock, no RNG, no async; embeddable in any event loop.
//!
//! # Data flow
//!
//! ```text
//!  transport ──bytes──► ServerHandshake / ClientHandshake ──► Connection
//!                                                            │  ▲
//!   handle_input(now, &[u8]), handle_eof(now) ──────────────►│  │◄── send_text / send_binary /
//!   handle_timeout(now)                       ──────────────►│  │    send_fragment / send_ping /
//!                                                            │  │    send_pong / close
//!   ◄── poll_transmit(&mut Vec<u8>)  bytes to write, or "shut the write half"
//!   ◄── poll_event()                 Text, Binary, Ping, Pong, then Closed (once)
//!   ◄── poll_timeout()               when to call handle_timeout
//! ```
//!
//! # The four method families
//!
//! - inputs, `handle_*`: what the transport and the clock did (and
//!   [`Connection::read_direct`], optional: the rest of a large frame read
//!   from the transport straight into the message);
//! - commands, `send_*` and `close`: what the application wants; caller
//!   mistakes are `Err(UsageError)` and leave the state unchanged;
//! - outputs, `poll_*`: what the driver must do now;
//! - getters: [`Connection::role`], [`Connection::state`],
//!   [`Connection::is_closed`], [`Connection::buffered_amount`], ...
//!
//! Faults of the peer never return errors: they fail the connection with
//! the right close code and end in one [`Event::Closed`] that says what
//! happened ([`CloseInfo`]). That event fires exactly once on every path:
//! clean close, protocol error, timeout, end of stream.
//!
//! # Rules for an adapter
//!
//! 1. After every input or command, drain `poll_transmit` and write every
//!    byte before the next call; shut the write half on
//!    [`Transmit::Shutdown`].
//! 2. Drain `poll_event`; handling events can queue bytes (the
//!    application's answers, or a close that waited behind the messages
//!    just taken), so drain `poll_transmit` again before waiting
//!    ([`Connection::wants_transmit`]). After [`Event::Closed`] drain
//!    `poll_transmit` one last time and drop the transport.
//! 3. Sleep until `poll_timeout()` (re-read it after every call) and call
//!    `handle_timeout` when it passes.
//! 4. Call `handle_eof` when a read returns 0 bytes or the transport fails.
//! 5. Seed [`ClientHandshake`] / [`Connection::client`] from the OS CSPRNG.
//!
//! # Compression
//!
//! permessage-deflate (RFC 7692) is off unless [`Config::deflate`] is set:
//! a client then offers it and a server accepts an acceptable offer;
//! [`Connection::deflate`] tells what was negotiated. Compressed messages
//! are inflated as they arrive, within `max_message_size`; messages from
//! [`DeflateConfig::threshold`] bytes up are compressed, and
//! [`Connection::send_message`] can send one uncompressed. [`DeflateConfig`]
//! documents the settings and their memory cost.
//!
//! # Clients: URLs, proxies, redirects
//!
//! [`ClientPlan`] holds what a client's `connect` decides: the parsed
//! [`ClientUrl`] (`ws`, `wss`, IPv6 literals, `ws+unix:` sockets), the
//! request built from [`ClientOptions`] (origin, version, subprotocols,
//! headers, limits, deflate offered by default), the proxy
//! ([`ProxySetting`], [`proxy_from_env`] with an injected environment
//! lookup) whose tunnel a [`ProxyHandshake`] opens (HTTP CONNECT or SOCKS5,
//! bytes in and out like everything here), and after a failed attempt
//! whether to follow a redirect ([`ClientPlan::handle_failure`], which also
//! drops credentials on a cross-origin hop). [`Backoff`] and
//! [`is_transient`] drive reconnect helpers. The adapters' `client`
//! modules are loops over these.
//!
//! # Limits and defaults
//!
//! Everything a peer can make us spend is bounded, and every bound is a
//! field of [`Config`]; its documentation has the complete table (each
//! field, its default, and what happens when a peer goes past it). In
//! short: `max_frame_size` 16 MiB, `max_message_size` 64 MiB (for a
//! compressed message, its inflated size), `max_fragments` 131 072 (all
//! three: close 1009); `max_handshake_size` 16 KiB and `max_headers` 64
//! (HTTP 431 from a server, a handshake error for a client);
//! `handshake_timeout` 10 s; `close_timeout` 10 s; `auto_pong` on;
//! `deflate` off ([`DeflateConfig`]'s defaults: level 6, 15-bit windows,
//! context takeover, threshold 1024 bytes); `max_send_buffer` 16 MiB (a
//! high-water mark: sends are refused with `UsageError::SendBufferFull`
//! while that much is queued; [`SendBufferPolicy`] tells adapters to wait
//! or to fail).
//!
//! # Heartbeat and broadcast
//!
//! [`Config::ping_interval`] and [`Config::idle_timeout`] (both off by
//! default) live in the connection's timer table, next to the close
//! timer: a peer silent for `ping_interval` is pinged, one silent for
//! `idle_timeout` is dropped ([`Ending::IdleTimeout`]). `poll_timeout`
//! returns the earliest deadline and `handle_timeout` fires whatever is
//! due, so every driver gets the heartbeat by following rule 3 above.
//! [`PreparedMessage`] builds a server frame once (and compresses it once)
//! for [`Connection::send_prepared`] on many connections.
//!
//! A few bounds are fixed by RFC 6455 or by the design and have no knob:
//! control frames carry at most 125 bytes (close 1002) and a close reason
//! at most 123; pongs are queued one per ping only while less than 64 KiB
//! waits to be sent, beyond that only the latest ping is answered; a
//! frame's declared length reserves at most 1 MiB ahead of the bytes that
//! actually arrived.
//!
//! # A complete pump loop over a plain socket
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::Instant;
//! use ws_proto::{ClientHandshake, Config, Event, Transmit};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut sock = TcpStream::connect("127.0.0.1:9001")?;
//! let req = http::Request::get("ws://127.0.0.1:9001/").body(())?;
//! let seed = [42u8; 32]; // use the OS CSPRNG in real code
//! let mut hs = ClientHandshake::new(Instant::now(), req, Config::default(), seed)?;
//! let mut out = Vec::new();
//! while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
//! sock.write_all(&out)?;
//! let mut buf = [0u8; 8192];
//! loop {
//!     let n = sock.read(&mut buf)?;
//!     if n == 0 { return Err("eof during handshake".into()); }
//!     if hs.handle_input(&buf[..n])? { break; }
//! }
//! let (_response, mut conn) = hs.into_connection(Instant::now())?;
//! conn.send_text("hello")?;
//! loop {
//!     // Events first: handling them can queue bytes (answers, a close).
//!     while let Some(ev) = conn.poll_event() {
//!         match ev {
//!             Event::Text(t) => {
//!                 println!("got {t}");
//!                 conn.close(Instant::now(), ws_proto::CloseCode::NORMAL, "bye")?;
//!             }
//!             Event::Closed(info) => println!("{info}"),
//!             _ => {}
//!         }
//!     }
//!     // Then write everything queued before waiting: the bytes handed out
//!     // before a `Shutdown` go out before the write half is shut.
//!     out.clear();
//!     while let Some(t) = conn.poll_transmit(&mut out) {
//!         if t == Transmit::Shutdown {
//!             sock.write_all(&out)?;
//!             out.clear();
//!             sock.shutdown(std::net::Shutdown::Write)?;
//!         }
//!     }
//!     sock.write_all(&out)?;
//!     if conn.is_closed() { return Ok(()); }
//!     // A real loop also waits for conn.poll_timeout() (e.g. with a read timeout).
//!     let n = sock.read(&mut buf)?;
//!     if n == 0 { conn.handle_eof(Instant::now()); } else { conn.handle_input(Instant::now(), &buf[..n]); }
//! }
//! # }
//! ```
#![forbid(unsafe_code)]

mod client;
pub mod clients;
mod close;
mod config;
mod connection;
mod decide;
mod deflate;
mod error;
mod frame;
mod handshake;
mod mask;
mod message;
mod out;
mod prepared;
mod proxy;
mod rng;
pub mod server;
mod utf8;

pub use bytes::Bytes;
pub use client::{
    extend_unexpected_body, is_transient, unexpected_body_remaining, Backoff, ClientOptions,
    ClientPlan, ClientUrl, Redirect, RedirectHook,
};
pub use close::{CloseCode, CloseFrame};
pub use config::{Config, SendBufferPolicy};
pub use connection::{CloseInfo, Connection, DataKind, Ending, Event, Role, State, Transmit};
pub use decide::{Accept, DecideError, Reject};
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::{Error, HandshakeError, IoError, ProtocolError, UsageError};
pub use frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
pub use handshake::{accept_key, ClientHandshake, ServerHandshake, SUPPORTED_VERSIONS};
pub use http;
pub use mask::apply_mask;
pub use message::{Message, Utf8Bytes};
pub use prepared::PreparedMessage;
pub use proxy::{
    no_proxy_matches, proxy_env_names, proxy_from_env, Proxy, ProxyHandshake, ProxyProtocol,
    ProxySetting,
};
pub use rng::Rng;

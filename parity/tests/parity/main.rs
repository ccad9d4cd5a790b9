//! The parity suite: every scenario runs on every adapter (tokio,
//! async-std, smol, blocking), in each role where it applies, and each
//! adapter's transcript must equal the expected one and tokio's.
//!
//! Each `#[test]` is one scenario; `check`/`check_roles` run it on the four
//! adapters in parallel and report every adapter's outcome on failure.

mod advisories;
mod backpressure;
mod closing;
mod compression;
mod echo;
mod frames;
mod handshake;
mod limits;
mod server_features;
mod server_policy;
mod subprotocol;
mod violations;

use parity::{CloseFrame, CloseInfo, Ending, Error, Obs, ProtocolError, Role, Wire};

/// A [`CloseInfo`] from its parts.
pub fn info(
    sent: Option<(u16, &str)>,
    received: Option<(u16, &str)>,
    remote_initiated: bool,
    ending: Ending,
) -> CloseInfo {
    CloseInfo {
        sent: sent.map(|(c, r)| CloseFrame::new(c, r)),
        received: received.map(|(c, r)| CloseFrame::new(c, r)),
        remote_initiated,
        ending,
    }
}

/// What `drain` yields after a clean close with these frames.
pub fn clean_end(
    sent: (u16, &str),
    received: (u16, &str),
    remote_initiated: bool,
    recv: Obs,
) -> Vec<Obs> {
    vec![
        recv,
        Obs::End,
        Obs::Info(Some(info(
            Some(sent),
            Some(received),
            remote_initiated,
            Ending::Clean,
        ))),
    ]
}

/// What `drain` yields after the adapter failed the connection with `e`:
/// one `Err`, then `None`; the close frame it sent carries the error's code
/// and text.
pub fn failed(e: ProtocolError) -> Vec<Obs> {
    let reason = e.to_string();
    vec![
        Obs::err(e),
        Obs::End,
        Obs::Info(Some(info(
            Some((e.close_code().0, &reason)),
            None,
            false,
            Ending::Protocol(e),
        ))),
    ]
}

/// What a raw peer reads after the adapter failed the connection with `e`:
/// the close frame, then the end of the stream.
pub fn failed_wire(e: ProtocolError) -> Vec<Obs> {
    vec![
        Wire::close(e.close_code().0, &e.to_string()).into(),
        Wire::Eof.into(),
    ]
}

/// What `drain` yields after an ending without a close handshake that
/// `recv` reports as `err` (`None`: `Error::Closed` with the close info).
pub fn abnormal(sent: Option<(u16, &str)>, err: Option<Error>) -> Vec<Obs> {
    let i = info(sent, None, false, Ending::Abnormal);
    let e = err.unwrap_or_else(|| Error::Closed(Box::new(i.clone())));
    vec![Obs::err(e), Obs::End, Obs::Info(Some(i))]
}

/// Calls after `recv` reported the end: `recv` again, `send`, `close`.
pub fn after_end(s: &mut parity::Socket) -> Vec<Obs> {
    vec![
        s.recv_obs(),
        s.send_obs(parity::Message::text("after the end")),
        s.close_obs(1000, ""),
    ]
}

/// What [`after_end`] observes: the end again, `send` is a usage error,
/// `close` does nothing.
pub fn after_end_expected() -> Vec<Obs> {
    vec![
        Obs::End,
        Obs::Sent(Err(Error::Usage(parity::UsageError::Closed))),
        Obs::Closed(Ok(())),
    ]
}

/// A text of exactly `n` bytes with characters of every UTF-8 length.
pub fn text_of(n: usize) -> String {
    let mut s = String::with_capacity(n);
    for c in "aé€𝄞".chars().cycle() {
        if s.len() + c.len_utf8() > n {
            break;
        }
        s.push(c);
    }
    while s.len() < n {
        s.push('x');
    }
    s
}

/// `n` bytes of a recognizable pattern.
pub fn binary_of(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A short name for a role, for notes.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Client => "client",
        Role::Server => "server",
    }
}

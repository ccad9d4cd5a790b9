//! Shared argument handling for the Autobahn testee binaries, and one
//! testee module per adapter.

pub mod async_std_impl;
pub mod blocking_impl;
pub mod mio_impl;
pub mod tokio_impl;

/// Parsed command-line flags.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--adapter`: which adapter drives the core.
    pub adapter: String,
    /// `--addr` (server).
    pub addr: String,
    /// `--url` (client).
    pub url: String,
    /// `--agent` (client).
    pub agent: String,
}

/// The adapters the testees support.
pub const ADAPTERS: &[&str] = &["tokio", "blocking", "async-std", "smol", "mio"];

/// Parses `--adapter`, `--addr`, `--url` and `--agent`.
pub fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        adapter: "tokio".into(),
        addr: "127.0.0.1:9001".into(),
        url: "ws://127.0.0.1:9001".into(),
        agent: "ws-rs".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--adapter" => a.adapter = val()?,
            "--addr" => a.addr = val()?,
            "--url" => a.url = val()?,
            "--agent" => a.agent = val()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !ADAPTERS.contains(&a.adapter.as_str()) {
        return Err(format!(
            "unknown adapter {:?}; known: {ADAPTERS:?}",
            a.adapter
        ));
    }
    Ok(a)
}

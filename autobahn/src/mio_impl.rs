//! The testee on `ws-mio`: the core driven directly from one mio readiness
//! loop, no adapter.

use ws_mio::{http, Config, Connection, DeflateConfig, Error, Event, EventLoop, Handler, Token};

/// The testees' config: permessage-deflate on (the server accepts every
/// offer the suite makes, the client offers it), for cases 12.* and 13.*.
fn config() -> Config {
    Config::default().deflate(Some(DeflateConfig::default()))
}

/// Echo server for the fuzzingclient: every connection in one loop.
pub fn server(addr: &str) {
    let addr = addr.parse().expect("--addr must be IP:PORT");
    let mut el = EventLoop::new().expect("poll");
    el.listen(addr, config()).expect("bind");
    eprintln!("autobahn-server (mio) on {addr}");
    el.run(&mut ws_mio::Echo).expect("poll");
}

/// The client's handler: echoes data messages, or keeps the last text
/// (for `/getCaseCount`).
#[derive(Debug, Default)]
struct Testee {
    echo: bool,
    text: Option<String>,
}

impl Handler for Testee {
    fn on_event(&mut self, token: Token, conn: &mut Connection, event: Event) {
        match event {
            Event::Text(t) if !self.echo => self.text = Some(t.to_string()),
            event => ws_mio::Echo.on_event(token, conn, event),
        }
    }
}

/// Runs one connection to its end.
fn run(el: &mut EventLoop, url: &str, config: Config, h: &mut Testee) -> Result<(), Error> {
    let req = http::Request::get(url)
        .body(())
        .map_err(|_| Error::Usage(ws_mio::ws_proto::UsageError::InvalidRequest))?;
    let token = el.connect(req, config)?;
    while el.contains(token) {
        el.turn(h, None)?;
    }
    Ok(())
}

/// Testee client for the fuzzingserver: one case after the other, in one
/// loop.
pub fn client(base: &str, agent: &str) -> Result<(), String> {
    let base = base.trim_end_matches('/');
    let mut el = EventLoop::new().map_err(|e| e.to_string())?;
    let mut h = Testee::default();
    run(
        &mut el,
        &format!("{base}/getCaseCount"),
        Config::default(),
        &mut h,
    )
    .map_err(|e| format!("getCaseCount: {e}"))?;
    let count: u32 = h
        .text
        .as_deref()
        .and_then(|t| t.trim().parse().ok())
        .ok_or("no case count")?;
    eprintln!("autobahn-client: {count} cases");
    h.echo = true;
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        // A failed case is the suite's business: go on with the next.
        let _ = run(&mut el, &url, config(), &mut h);
    }
    h.echo = false;
    run(
        &mut el,
        &format!("{base}/updateReports?agent={agent}"),
        Config::default(),
        &mut h,
    )
    .map_err(|e| format!("updateReports: {e}"))
}

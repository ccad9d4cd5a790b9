//! Subprotocol selection.

use crate::clean_end;
use parity::{
    check, connected_obs, http, Accept, Adapter, Config, Error, HandshakeError, Message, Obs,
    UsageError,
};
use std::sync::mpsc;

/// Connects a client of `a` offering `offer` to a server of `a` that
/// chooses `choice`; records what the server saw offered, both handshake
/// results and, when connected, one echo and a close.
fn negotiate(a: &dyn Adapter, offer: Option<&str>, choice: Option<&'static str>) -> Vec<Obs> {
    let (seen_tx, seen_rx) = mpsc::channel();
    let l = a.listen(
        Config::default(),
        Box::new(move |req| {
            let offered = req
                .headers()
                .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let _ = seen_tx.send(offered);
            let mut accept = Accept::new().header(
                http::HeaderName::from_static("x-server"),
                http::HeaderValue::from_static("parity"),
            );
            if let Some(p) = choice {
                accept = accept.protocol(p);
            }
            Ok(accept)
        }),
    );
    let mut req = http::Request::get(format!("ws://{}/", l.addr()));
    if let Some(o) = offer {
        req = req.header(http::header::SEC_WEBSOCKET_PROTOCOL, o);
    }
    let req = req.body(()).expect("request");
    let res = a.connect(req, Config::default());
    // The response headers, but for the accept key (it answers a random key).
    let headers = res.as_ref().ok().map(|(_, resp)| {
        resp.headers()
            .iter()
            .filter(|(k, _)| *k != http::header::SEC_WEBSOCKET_ACCEPT)
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let (connected, client) = connected_obs(res);
    let mut out = vec![Obs::note(format!(
        "offered: {:?}",
        seen_rx.recv_timeout(parity::LIMIT).expect("decide ran")
    ))];
    out.push(connected);
    if let Some(h) = headers {
        out.push(Obs::note(h));
    }
    let (accepted, server) = l.accept_obs();
    out.push(accepted);
    if let (Some(mut c), Some(mut s)) = (client, server) {
        let echo = parity::spawn_helper("echo", move || parity::harness::echo(&mut s));
        c.send(Message::text("hi")).expect("send");
        out.push(c.recv_obs());
        c.close(1000, "").expect("close");
        out.extend(c.drain());
        out.extend(echo.join());
    }
    out
}

fn closed_after_echo() -> Vec<Obs> {
    let mut v = vec![Obs::text("hi")];
    v.extend(clean_end(
        (1000, ""),
        (1000, ""),
        false,
        Obs::close(1000, ""),
    ));
    v.extend(clean_end(
        (1000, ""),
        (1000, ""),
        true,
        Obs::close(1000, ""),
    ));
    v
}

#[test]
fn server_picks_one_of_the_offered_subprotocols() {
    let mut expected = vec![
        Obs::note("offered: Some(\"chat, superchat\")"),
        Obs::Connected(Ok(Some("superchat".into()))),
        Obs::note("upgrade: websocket, connection: Upgrade, sec-websocket-protocol: superchat, x-server: parity"),
        Obs::Accepted(Ok(())),
    ];
    expected.extend(closed_after_echo());
    check("server picks a subprotocol", expected, |a| {
        negotiate(a, Some("chat, superchat"), Some("superchat"))
    });
}

#[test]
fn server_picks_no_subprotocol() {
    let mut expected = vec![
        Obs::note("offered: Some(\"chat\")"),
        Obs::Connected(Ok(None)),
        Obs::note("upgrade: websocket, connection: Upgrade, x-server: parity"),
        Obs::Accepted(Ok(())),
    ];
    expected.extend(closed_after_echo());
    check("server picks no subprotocol", expected, |a| {
        negotiate(a, Some("chat"), None)
    });
}

#[test]
fn server_picks_a_subprotocol_that_was_not_offered() {
    // A usage error on the server (its bug, not the client's): the client
    // gets a 500, the server's accept the usage error.
    let expected = vec![
        Obs::note("offered: Some(\"chat\")"),
        Obs::Connected(Err(Error::Handshake(HandshakeError::UnexpectedStatus {
            status: 500,
            headers: vec![
                ("content-length".into(), b"0".to_vec()),
                ("connection".into(), b"close".to_vec()),
            ],
            body: Vec::new(),
        }))),
        Obs::Accepted(Err(Error::Usage(UsageError::ProtocolNotOffered))),
    ];
    check(
        "server picks a subprotocol that was not offered",
        expected,
        |a| negotiate(a, Some("chat"), Some("superchat")),
    );
}

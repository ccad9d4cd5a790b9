//! The sans-IO server policy (`ws_proto::server::ServerPolicy`) behind every
//! adapter's accept: path, origin and verification refusals, subprotocol
//! choice and extra headers, and the policy's message-size limit, with the
//! same results on the wire everywhere.

use crate::failed;
use parity::{check, connected_obs, http, Adapter, Config, Error, HandshakeError, Message, Obs};
use ws_proto::server::ServerPolicy;
use ws_proto::{ProtocolError, Reject};

fn policy() -> ServerPolicy {
    ServerPolicy::new()
        .path("/chat")
        .allow_origin("https://good.example")
        .verify(|req| {
            if req.headers().contains_key(http::header::AUTHORIZATION) {
                Ok(())
            } else {
                Err(Reject::new(401)
                    .header(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Bearer"),
                    )
                    .body("who are you?"))
            }
        })
        .protocols(["v2", "v1"])
        .header(
            http::HeaderName::from_static("x-server"),
            http::HeaderValue::from_static("policy"),
        )
        .max_payload(64)
}

/// One connection attempt against a server of `a` run by `policy()`:
/// what the client saw of the handshake, what the server's accept
/// returned, and, when connected, a 65-byte message (over the limit).
fn attempt(a: &dyn Adapter, path: &str, origin: &str, auth: bool) -> Vec<Obs> {
    let p = policy();
    let l = a.listen(p.config().clone(), Box::new(move |req| p.decide(req)));
    let mut req = http::Request::get(format!("ws://{}{path}", l.addr()))
        .header(http::header::ORIGIN, origin)
        .header(http::header::SEC_WEBSOCKET_PROTOCOL, "v1, v2");
    if auth {
        req = req.header(http::header::AUTHORIZATION, "Bearer x");
    }
    let res = a.connect(req.body(()).expect("request"), Config::default());
    let mut out = Vec::new();
    match &res {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus {
            status,
            headers,
            body,
        })) => {
            let auth = headers
                .iter()
                .find(|(k, _)| k == "www-authenticate")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
            out.push(Obs::note(format!(
                "refused {status}, www-authenticate {auth:?}, body {:?}",
                String::from_utf8_lossy(body)
            )));
        }
        Ok((_, resp)) => out.push(Obs::note(format!(
            "101, protocol {:?}, x-server {:?}",
            resp.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL),
            resp.headers().get("x-server"),
        ))),
        Err(e) => out.push(Obs::note(format!("{e}"))),
    }
    let (connected, client) = connected_obs(res);
    if client.is_some() {
        out.push(connected);
    }
    let (accepted, server) = l.accept_obs();
    out.push(accepted);
    if let (Some(mut c), Some(mut s)) = (client, server) {
        let srv = parity::spawn_helper("server", move || s.drain());
        c.send(Message::binary(vec![7u8; 65])).expect("send");
        out.extend(c.drain());
        out.extend(srv.join());
    }
    out
}

fn refused(status: u16, auth: Option<&str>, body: &str) -> Vec<Obs> {
    vec![
        Obs::note(format!(
            "refused {status}, www-authenticate {:?}, body {body:?}",
            auth.map(String::from)
        )),
        Obs::Accepted(Err(Error::Handshake(HandshakeError::Rejected(status)))),
    ]
}

#[test]
fn policy_refuses_other_paths_with_404() {
    check(
        "policy: other path",
        refused(404, None, "no WebSocket endpoint at this path\n"),
        |a| attempt(a, "/other", "https://good.example", true),
    );
}

#[test]
fn policy_refuses_other_origins_with_403() {
    check(
        "policy: other origin",
        refused(403, None, "origin not allowed\n"),
        |a| attempt(a, "/chat", "https://evil.example", true),
    );
}

#[test]
fn policy_verify_refuses_with_its_own_response() {
    check(
        "policy: verify",
        refused(401, Some("Bearer"), "who are you?"),
        |a| attempt(a, "/chat", "https://good.example", false),
    );
}

#[test]
fn policy_accepts_with_protocol_headers_and_size_limit() {
    let mut expected = vec![
        Obs::note("101, protocol Some(\"v1\"), x-server Some(\"policy\")"),
        Obs::Connected(Ok(Some("v1".into()))),
        Obs::Accepted(Ok(())),
    ];
    // The client sees the server's 1009; the server reports its failure.
    let e = ProtocolError::FrameTooLarge;
    let reason = e.to_string();
    expected.extend(vec![
        Obs::recv(Some(Ok(Message::Close(Some(ws_proto::CloseFrame::new(
            1009, &reason,
        )))))),
        Obs::End,
        Obs::Info(Some(crate::info(
            // The client echoes the code without the reason.
            Some((1009, "")),
            Some((1009, &reason)),
            true,
            ws_proto::Ending::Clean,
        ))),
    ]);
    expected.extend(failed(e));
    check("policy: accepted", expected, |a| {
        attempt(a, "/chat?room=1", "https://good.example", true)
    });
}

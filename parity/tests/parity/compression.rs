//! The per-message compression opt-out (`send_uncompressed`, Node's
//! `ws.send(data, { compress: false })`) under negotiated
//! permessage-deflate, seen on the wire by a raw peer, in both roles.

use crate::clean_end;
use parity::harness::spawn_helper;
use parity::raw::{read_head, switching_protocols, tcp_accept, RawFrame, RawPeer};
use parity::{check_roles, Config, Message, Obs, Role, Wire};
use std::io::Write;
use std::net::TcpListener;
use ws_proto::DeflateConfig;

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";

/// Compressible text, longer than any threshold used here.
fn text() -> String {
    "compress me, or do not; ".repeat(40)
}

#[test]
fn send_uncompressed_goes_out_without_rsv1() {
    let expected = |_role: Role| {
        let mut v = vec![Obs::Sent(Ok(())), Obs::Sent(Ok(())), Obs::Closed(Ok(()))];
        v.extend(clean_end(
            (1000, ""),
            (1000, ""),
            false,
            Obs::close(1000, ""),
        ));
        v.extend([
            Wire::text(&text()).into(),
            Obs::note("compressed"),
            Wire::close(1000, "").into(),
            Wire::Eof.into(),
        ]);
        v
    };
    check_roles("send_uncompressed under deflate", expected, |a, role| {
        // threshold 0: without the opt-out every message would be compressed.
        let config = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
        let raw = move |p: &mut RawPeer| {
            let mut out = Vec::new();
            let plain = text();
            out.push(Obs::from(p.read()));
            out.push(match p.read() {
                Wire::Frame {
                    rsv: 4,
                    op: 1,
                    fin: true,
                    payload,
                } if payload.len() < plain.len() => Obs::note("compressed"),
                other => Obs::from(other),
            });
            let mut wire = p.read_until_close();
            wire.extend(p.answer_close(RawFrame::close(1000, "")));
            out.extend(wire.into_iter().map(Obs::from));
            out
        };
        let (mut s, peer) = match role {
            Role::Client => {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = l.local_addr().expect("local address");
                let peer = spawn_helper("raw-deflate-server", move || {
                    let mut tcp = tcp_accept(&l);
                    let head = read_head(&mut tcp).expect("an upgrade request");
                    assert!(head.contains("permessage-deflate"), "no offer: {head}");
                    tcp.write_all(switching_protocols(&head, OFFER).as_bytes())
                        .expect("write 101");
                    raw(&mut RawPeer::new(tcp, false))
                });
                let (s, _) = a.connect_to(addr, config).expect("connect");
                (s, peer)
            }
            Role::Server => {
                let l = a.listen(config, parity::accept_all());
                let addr = l.addr();
                let peer = spawn_helper("raw-deflate-client", move || {
                    raw(&mut RawPeer::connect(addr, OFFER))
                });
                (l.accept().expect("accept"), peer)
            }
        };
        let mut out = vec![
            Obs::Sent(s.send_uncompressed(Message::text(text()))),
            s.send_obs(Message::text(text())),
            s.close_obs(1000, ""),
        ];
        out.extend(s.drain());
        out.extend(peer.join());
        out
    });
}

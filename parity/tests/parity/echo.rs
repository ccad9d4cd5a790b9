//! Echo of every size class between a client and a server of the same
//! adapter, and every client against every server.

use crate::{binary_of, clean_end, text_of};
use parity::harness::echo_server;
use parity::{adapters, check, Config, Message, Obs};

/// 0, 1, the largest 7-bit length, the smallest 16-bit one, the largest
/// 16-bit one, the smallest 64-bit one, and 1 MiB.
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

#[test]
fn echo_of_every_size_class() {
    let mut expected = Vec::new();
    for n in SIZES {
        expected.push(Obs::binary(&binary_of(n)));
        expected.push(Obs::text(&text_of(n)));
    }
    expected.push(Obs::Closed(Ok(())));
    // The client: the server echoes the code without the reason.
    expected.extend(clean_end(
        (1000, "done"),
        (1000, ""),
        false,
        Obs::close(1000, ""),
    ));
    // The echo server.
    expected.extend(clean_end(
        (1000, ""),
        (1000, "done"),
        true,
        Obs::close(1000, "done"),
    ));
    check("echo of every size class", expected, |a| {
        let (addr, server) = echo_server(a, Config::default());
        let (mut c, _) = a.connect_to(addr, Config::default()).expect("connect");
        let mut out = Vec::new();
        for n in SIZES {
            c.send(Message::binary(binary_of(n))).expect("send binary");
            out.push(c.recv_obs());
            c.send(Message::text(text_of(n))).expect("send text");
            out.push(c.recv_obs());
        }
        out.push(c.close_obs(1000, "done"));
        out.extend(c.drain());
        out.extend(server.join());
        out
    });
}

#[test]
fn every_client_with_every_server() {
    let big = binary_of(70_000);
    let mut expected = Vec::new();
    for server in adapters() {
        expected.push(Obs::note(format!("server {}", server.name())));
        expected.push(Obs::text("interop"));
        expected.push(Obs::binary(&big));
        expected.push(Obs::pong(b"p"));
        expected.extend(clean_end(
            (1001, "bye"),
            (1001, ""),
            false,
            Obs::close(1001, ""),
        ));
        // The server reports the ping it answered, then the close.
        expected.push(Obs::ping(b"p"));
        expected.extend(clean_end(
            (1001, ""),
            (1001, "bye"),
            true,
            Obs::close(1001, "bye"),
        ));
    }
    check("every client with every server", expected, move |client| {
        let mut out = Vec::new();
        for server in adapters() {
            out.push(Obs::note(format!("server {}", server.name())));
            let (addr, echo) = echo_server(server, Config::default());
            let (mut c, _) = client.connect_to(addr, Config::default()).expect("connect");
            c.send(Message::text("interop")).expect("send");
            out.push(c.recv_obs());
            c.send(Message::binary(binary_of(70_000))).expect("send");
            out.push(c.recv_obs());
            c.send(Message::Ping(b"p".to_vec().into())).expect("ping");
            out.push(c.recv_obs());
            c.close(1001, "bye").expect("close");
            out.extend(c.drain());
            out.extend(echo.join());
        }
        out
    });
}

#[test]
fn server_closes_and_pings_between_two_adapters() {
    let mut expected = vec![
        // The server.
        Obs::Sent(Ok(())),
        Obs::pong(b"from the server"),
        Obs::Closed(Ok(())),
    ];
    expected.extend(clean_end(
        (4000, "server done"),
        (4000, ""),
        false,
        Obs::close(4000, ""),
    ));
    // The client.
    expected.extend([Obs::ping(b"from the server")]);
    expected.extend(clean_end(
        (4000, ""),
        (4000, "server done"),
        true,
        Obs::close(4000, "server done"),
    ));
    check(
        "server closes and pings between two adapters",
        expected,
        |a| {
            let l = a.listen(Config::default(), parity::accept_all());
            let (mut c, _) = a.connect_to(l.addr(), Config::default()).expect("connect");
            let mut s = l.accept().expect("accept");
            let client = parity::spawn_helper("client", move || c.drain());
            let mut out = vec![s.send_obs(Message::Ping(b"from the server".to_vec().into()))];
            out.push(s.recv_obs());
            out.push(s.close_obs(4000, "server done"));
            out.extend(s.drain());
            out.extend(client.join());
            out
        },
    );
}

#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items
//! Criterion micro-benchmarks of the sans-IO core (`ws-proto`): masking
//! (with memcpy beside it as the memory-bandwidth ceiling), UTF-8
//! validation, frame header decode/encode, receiving a frame, and a whole
//! in-memory echo through a client/server `Connection` pair.
//!
//! Run with `cargo bench -p bench --features micro --bench core` (add
//! `-- mask` to run one group). Not built by `cargo test --workspace`: the
//! target needs the `micro` feature, which brings criterion in.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Instant;
use ws_proto::{
    apply_mask, Bytes, Config, Connection, DeflateConfig, DeflateParams, Event, FrameHeader,
    OpCode, Transmit, Utf8Bytes,
};

const SIZES: [(usize, &str); 4] = [
    (16, "16B"),
    (1024, "1KiB"),
    (16 * 1024, "16KiB"),
    (1 << 20, "1MiB"),
];

/// Bytes that are not all the same, so nothing is special-cased.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Printable ASCII of `n` bytes.
fn ascii(n: usize) -> String {
    (0..n)
        .map(|i| (b' ' + (i * 7 % 95) as u8) as char)
        .collect()
}

/// Text of about `n` bytes with characters of every UTF-8 length.
fn mixed(n: usize) -> String {
    let mut s = String::with_capacity(n + 4);
    for c in "aé€𝄞 plain ascii words".chars().cycle() {
        if s.len() + c.len_utf8() > n {
            break;
        }
        s.push(c);
    }
    s
}

fn masking(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for (n, name) in SIZES {
        let mut data = pattern(n);
        let src = pattern(n);
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(format!("apply_mask/{name}"), |b| {
            b.iter(|| apply_mask(black_box(&mut data), black_box([1, 2, 3, 4]), 0))
        });
        // Unaligned start and key phase, as when a payload is unmasked in
        // the pieces that TCP delivered.
        g.bench_function(format!("apply_mask_offset3/{name}"), |b| {
            b.iter(|| apply_mask(black_box(&mut data[3..]), black_box([1, 2, 3, 4]), 3))
        });
        // The ceiling: masking reads and writes every byte once, like a copy.
        g.bench_function(format!("memcpy/{name}"), |b| {
            b.iter(|| black_box(&mut data).copy_from_slice(black_box(&src)))
        });
        // What the loop would cost without the block trick.
        g.bench_function(format!("bytewise/{name}"), |b| {
            b.iter(|| {
                let key = black_box([1u8, 2, 3, 4]);
                for (i, x) in black_box(&mut data).iter_mut().enumerate() {
                    *x ^= key[i & 3];
                }
            })
        });
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    for (n, name) in [(16usize, "16B"), (1024, "1KiB"), (64 * 1024, "64KiB")] {
        for (kind, text) in [("ascii", ascii(n)), ("mixed", mixed(n))] {
            let bytes = Bytes::from(text.into_bytes());
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            // The validating constructor the core uses for received text.
            g.bench_function(format!("Utf8Bytes/{kind}/{name}"), |b| {
                b.iter(|| Utf8Bytes::try_from_bytes(black_box(bytes.clone())).is_ok())
            });
            g.bench_function(format!("std_from_utf8/{kind}/{name}"), |b| {
                b.iter(|| std::str::from_utf8(black_box(&bytes)).is_ok())
            });
        }
    }
    g.finish();
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let headers = [
        ("small_masked", 16u64, Some([1, 2, 3, 4])),
        ("medium_unmasked", 1024, None),
        ("large_masked", 1 << 20, Some([9, 8, 7, 6])),
    ];
    for (name, len, mask) in headers {
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask,
            len,
        };
        let mut buf = [0u8; ws_proto::MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("header_encode/{name}"), |b| {
            let mut out = [0u8; ws_proto::MAX_HEADER_LEN];
            b.iter(|| black_box(&h).encode(black_box(&mut out)))
        });
        g.bench_function(format!("header_decode/{name}"), |b| {
            b.iter(|| FrameHeader::decode(black_box(&buf[..n])))
        });
    }
    // A server receiving one masked frame: header, unmask, UTF-8 for text,
    // the event. One `handle_input` per frame, as from one read.
    for (n, name) in [(16usize, "16B"), (1024, "1KiB"), (16 * 1024, "16KiB")] {
        for text in [false, true] {
            let mut client = Connection::client(Config::default(), [7; 32]);
            let payload = ascii(n);
            if text {
                client.send_text(payload).unwrap();
            } else {
                client.send_binary(payload.into_bytes()).unwrap();
            }
            let mut wire = Vec::new();
            while client.poll_transmit(&mut wire) == Some(Transmit::Data) {}
            let kind = if text { "text" } else { "binary" };
            g.throughput(Throughput::Bytes(n as u64));
            g.bench_function(format!("server_receive/{kind}/{name}"), |b| {
                let mut server = Connection::server(Config::default());
                let now = Instant::now();
                b.iter(|| {
                    server.handle_input(now, black_box(&wire));
                    match server.poll_event() {
                        Some(Event::Text(t)) => black_box(t.len()),
                        Some(Event::Binary(d)) => black_box(d.len()),
                        other => panic!("unexpected {other:?}"),
                    }
                })
            });
        }
    }
    // Queueing a message and taking its bytes out, both roles.
    for (n, name) in [(16usize, "16B"), (1024, "1KiB"), (16 * 1024, "16KiB")] {
        let data = Bytes::from(pattern(n));
        g.throughput(Throughput::Bytes(n as u64));
        for client in [false, true] {
            let role = if client { "client" } else { "server" };
            g.bench_function(format!("send/{role}/{name}"), |b| {
                let mut conn = if client {
                    Connection::client(Config::default(), [7; 32])
                } else {
                    Connection::server(Config::default())
                };
                let mut out = Vec::with_capacity(n + 64);
                b.iter(|| {
                    conn.send_binary(data.clone()).unwrap();
                    out.clear();
                    while conn.poll_transmit(&mut out) == Some(Transmit::Data) {}
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();
}

/// Moves everything `from` has queued into `to`, in one `handle_input`.
fn pump(from: &mut Connection, to: &mut Connection, buf: &mut Vec<u8>, now: Instant) {
    buf.clear();
    while from.poll_transmit(buf) == Some(Transmit::Data) {}
    to.handle_input(now, buf);
}

fn echo(c: &mut Criterion) {
    let mut g = c.benchmark_group("echo");
    let cases: [(&str, usize, bool); 5] = [
        ("16B", 16, false),
        ("1KiB", 1024, false),
        ("16KiB", 16 * 1024, false),
        ("1KiB_deflate", 1024, true),
        ("16KiB_deflate", 16 * 1024, true),
    ];
    for (name, n, deflate) in cases {
        let text = ascii(n);
        // One element is one round trip (client -> server -> client).
        g.throughput(Throughput::Elements(10));
        g.bench_function(format!("pair_round_trip/{name}"), |b| {
            b.iter_batched_ref(
                || {
                    let config = if deflate {
                        Config::default().deflate(Some(DeflateConfig::default()))
                    } else {
                        Config::default()
                    };
                    let (mut client, mut server) = (
                        Connection::client(config.clone(), [3; 32]),
                        Connection::server(config),
                    );
                    if deflate {
                        let p = DeflateParams::default();
                        client = client.with_deflate(p);
                        server = server.with_deflate(p);
                    }
                    (client, server, Vec::with_capacity(n + 64))
                },
                |(client, server, buf)| {
                    let now = Instant::now();
                    // Ten round trips per batch so that the setup (and the
                    // first message's compressor allocation) is amortised.
                    for _ in 0..10 {
                        client.send_text(text.as_str()).unwrap();
                        pump(client, server, buf, now);
                        let Some(Event::Text(t)) = server.poll_event() else {
                            panic!("server: no text")
                        };
                        server.send_text(t).unwrap();
                        pump(server, client, buf, now);
                        let Some(Event::Text(t)) = client.poll_event() else {
                            panic!("client: no text")
                        };
                        assert_eq!(t.len(), n);
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, masking, utf8, frames, echo);
criterion_main!(benches);

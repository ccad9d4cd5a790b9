//! Autobahn testee server: an echo server on the chosen adapter.
//!
//! `autobahn-server --adapter tokio --addr 127.0.0.1:9001`

use autobahn::async_std_impl::Runtime::{AsyncStd, Smol};

fn main() {
    let args = match autobahn::parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("autobahn-server: {e}");
            std::process::exit(2);
        }
    };
    match args.adapter.as_str() {
        "tokio" => autobahn::tokio_impl::server(&args.addr),
        "blocking" => autobahn::blocking_impl::server(&args.addr),
        "async-std" => autobahn::async_std_impl::server(&args.addr, AsyncStd),
        "smol" => autobahn::async_std_impl::server(&args.addr, Smol),
        "mio" => autobahn::mio_impl::server(&args.addr),
        _ => unreachable!("checked by parse_args"),
    }
}

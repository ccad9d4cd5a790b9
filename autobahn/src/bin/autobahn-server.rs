//! Autobahn testee server: an echo server on the chosen adapter.
//!
//! `autobahn-server --adapter tokio --addr 127.0.0.1:9001`

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
        _ => unreachable!("checked by parse_args"),
    }
}

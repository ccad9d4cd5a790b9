//! Autobahn testee client, following the fuzzingserver's protocol: asks
//! `/getCaseCount`, runs `/runCase?case=N&agent=NAME` for each case echoing
//! every message, then calls `/updateReports?agent=NAME`.
//!
//! `autobahn-client --adapter tokio --url ws://127.0.0.1:9001 --agent NAME`

use autobahn::async_std_impl::Runtime::{AsyncStd, Smol};

fn main() {
    let args = match autobahn::parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("autobahn-client: {e}");
            std::process::exit(2);
        }
    };
    let res = match args.adapter.as_str() {
        "tokio" => autobahn::tokio_impl::client(&args.url, &args.agent),
        "blocking" => autobahn::blocking_impl::client(&args.url, &args.agent),
        "async-std" => autobahn::async_std_impl::client(&args.url, &args.agent, AsyncStd),
        "smol" => autobahn::async_std_impl::client(&args.url, &args.agent, Smol),
        "mio" => autobahn::mio_impl::client(&args.url, &args.agent),
        _ => unreachable!("checked by parse_args"),
    };
    if let Err(e) = res {
        eprintln!("autobahn-client: {e}");
        std::process::exit(1);
    }
}

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ws_fuzz::checks::client_proxy(data, Some(ws_fuzz::live));
});

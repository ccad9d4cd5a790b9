#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ws_fuzz::checks::pair_ops(data, Some(ws_fuzz::live));
});

//! Shared code of the fuzz targets: the checks (also replayed over the
//! committed corpus by `ws-proto/tests/fuzz_corpus.rs`) and the seed
//! generator.

pub mod checks;
pub mod seeds;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes of the process (allocated − freed).
pub fn live() -> usize {
    let s = GLOBAL.stats();
    // Growth by realloc is already counted in `bytes_allocated`.
    s.bytes_allocated.saturating_sub(s.bytes_deallocated)
}
